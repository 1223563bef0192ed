"""The consistency checks of the forms, run on every build: a failed check
stops it with a message naming the form, the unit and what broke.

Checks go by form kind, so every regime's forms are checked: a by-owner form's
columns add up and its rows match the first by-owner form (Biểu 01) on every
code both show; a by-unit form's sub-units add up to Biểu 01; a structure
form's areas are Biểu 01's; a change form and a transition matrix agree with
Biểu 01 and with each other; a unit's Biểu 01 is the sum of its sub-units'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..regime import FormSpec, Template
from ..units import Unit
from .cells import FormConsistencyError, owner_columns


def _by_owner_problems(spec: FormSpec, key: str, table: pd.DataFrame, template: Template) -> list[str]:
    """A by-owner form's columns add up (whole numbers of 0.01 ha: compared exactly, in numpy)."""
    problems = []
    columns = template.columns(spec.column_set)
    users = [c for c in owner_columns(table) if columns[int(c[1:])].block == "users"]
    total, users_total = table["total"].to_numpy(), table["users_total"].to_numpy()
    if not np.array_equal(total, users_total + table["managers_total"].to_numpy()):
        problems.append(f"{spec.number} {key}: (4) ≠ users + managers")
    if not np.array_equal(users_total, table[users].to_numpy().sum(axis=1)):
        problems.append(f"{spec.number} {key}: users total ≠ Σ user columns")
    if spec.total_row:
        by_code = dict(zip(table["code"], total, strict=True))
        if total[0] != sum(by_code[g] for g in spec.row_roots):
            problems.append(f"{spec.number} {key}: total row ≠ rows 1 + 2 + 3")
    return problems


def _against_first(spec: FormSpec, key: str, table: pd.DataFrame, first: dict[str, int]) -> list[str]:
    """A form whose rows are areas of the code tree, against Biểu 01 (its total by code)."""
    problems = []
    column = "a0" if spec.kind == "structure" else "total"
    shown = table["code"].to_numpy() != ""
    expected = [first[code] for code in table["code"].to_numpy()[shown]]
    if not np.array_equal(table[column].to_numpy()[shown], np.asarray(expected)):
        problems.append(f"{spec.number} {key}: totals differ from Biểu 01 rows "
                        "(a user/manager column of Biểu 01 is missing from this form)")
    if spec.kind == "by_unit":
        units = [c for c in table.columns if c.startswith("u") or c == "disputed"]
        if not np.array_equal(table["total"].to_numpy(), table[units].to_numpy().sum(axis=1)):
            problems.append(f"{spec.number} {key}: total ≠ Σ sub-units")
    return problems


def _change_problems(key: str, change: pd.DataFrame | None, matrix: pd.DataFrame | None,
                     first: pd.DataFrame) -> list[str]:
    """Biểu 14 against Biểu 01 and the matrix; the matrix's columns against Biểu 01."""
    problems = []
    if change is not None:
        shown = change.set_index("code")["current"].drop("", errors="ignore")
        if change["current"].iat[0] != first["total"].iat[0] or not (shown == first.loc[shown.index, "total"]).all():
            problems.append(f"Biểu 14 {key}: (4) differs from Biểu 01")
    if matrix is not None:
        body = matrix[matrix["code"] != ""].set_index("code")
        if change is not None and not (body["previous"] == change.set_index("code").loc[body.index, "previous"]).all():
            problems.append(f"Biểu 14 {key}: (5) differs from the matrix's row totals")
        current = matrix.iloc[-1]
        if not all(current[f"to_{c}"] == first.at[c, "total"] for c in body.index if c in first.index):
            problems.append(f"Transition matrix {key}: column totals differ from Biểu 01")
    return problems


def check_forms(tables: dict[tuple[str, str], pd.DataFrame], units: list[Unit], template: Template) -> None:
    """The consistency checks; raise FormConsistencyError naming what broke."""
    problems = []
    for (form_id, key), table in tables.items():
        spec = template.form(form_id)
        if spec.kind == "by_owner":
            problems += _by_owner_problems(spec, key, table, template)
    first_id = next((s.id for s in template.forms if s.kind == "by_owner"), "")
    of_kind = {kind: [s.id for s in template.forms if s.kind == kind]
               for kind in ("by_owner", "by_unit", "structure", "change", "transition")}
    for unit in units:
        key = f"{unit.level}/{unit.code}"
        t01 = tables.get((first_id, key))
        if t01 is None:
            continue
        first_total = dict(zip(t01["code"], t01["total"].to_numpy(), strict=True))
        for form_id in [*of_kind["by_owner"][1:], *of_kind["by_unit"], *of_kind["structure"]]:
            if (form_id, key) in tables:
                problems += _against_first(template.form(form_id), key, tables[(form_id, key)], first_total)
        change = next((tables[(i, key)] for i in of_kind["change"] if (i, key) in tables), None)
        matrix = next((tables[(i, key)] for i in of_kind["transition"] if (i, key) in tables), None)
        if change is not None or matrix is not None:
            problems += _change_problems(key, change, matrix, t01.set_index("code"))
        if unit.children and all((first_id, f"{c.level}/{c.code}") in tables for c in unit.children):
            summed = sum(tables[(first_id, f"{c.level}/{c.code}")]["total"].to_numpy() for c in unit.children)
            if not (summed == t01["total"].to_numpy()).all():
                problems.append(f"Biểu 01 {key}: ≠ Σ of its {len(unit.children)} sub-units")
    if problems:
        raise FormConsistencyError("Forms are inconsistent: " + "; ".join(problems) + ".")
