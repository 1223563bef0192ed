"""The consistency checks of the forms, run on every build: a failed check
stops it with a message naming the form, the unit and what broke."""

from __future__ import annotations

import pandas as pd

from ..regime import Template
from ..units import Unit
from .cells import FormConsistencyError, owner_columns


def check_forms(tables: dict[tuple[str, str], pd.DataFrame], units: list[Unit], template: Template) -> None:
    """The consistency checks; raise FormConsistencyError naming what broke."""
    problems = []
    for (form_id, key), table in tables.items():
        spec = template.form(form_id)
        if spec.kind != "by_owner":
            continue
        users = [c for c in owner_columns(table) if template.columns(spec.column_set)[int(c[1:])].block == "users"]
        if not (table["total"] == table["users_total"] + table["managers_total"]).all():
            problems.append(f"{spec.number} {key}: (4) ≠ users + managers")
        if not (table["users_total"] == table[users].sum(axis=1)).all():
            problems.append(f"{spec.number} {key}: users total ≠ Σ user columns")
        if spec.total_row:
            body = table.set_index("code")
            if table["total"].iat[0] != sum(body.at[g, "total"] for g in spec.row_roots):
                problems.append(f"{spec.number} {key}: total row ≠ rows 1 + 2 + 3")
    for unit in units:
        key = f"{unit.level}/{unit.code}"
        t01 = tables.get(("01", key))
        if t01 is None:
            continue
        t01 = t01.set_index("code")
        for form_id in ("02", "03"):
            table = tables.get((form_id, key))
            if table is None:
                continue
            sub = table.set_index("code")["total"]
            if not (sub == t01.loc[sub.index, "total"]).all():
                problems.append(f"{template.form(form_id).number} {key}: totals differ from Biểu 01 rows "
                                "(a user/manager column of Biểu 01 is missing from this form)")
        t14 = tables.get(("14", key))
        if t14 is not None:
            shown = t14.set_index("code")["current"].drop("", errors="ignore")
            if t14["current"].iat[0] != t01["total"].iat[0] or not (shown == t01.loc[shown.index, "total"]).all():
                problems.append(f"Biểu 14 {key}: (4) differs from Biểu 01")
            matrix = tables.get(("CC", key))
            if matrix is not None:
                body = matrix[matrix["code"] != ""].set_index("code")
                if not (body["previous"] == t14.set_index("code").loc[body.index, "previous"]).all():
                    problems.append(f"Biểu 14 {key}: (5) differs from the matrix's row totals")
                current = matrix.iloc[-1]
                if not all(current[f"to_{c}"] == shown.get(c, current[f"to_{c}"]) for c in body.index):
                    problems.append(f"Transition matrix {key}: column totals differ from Biểu 14 (4)")
        t04 = tables.get(("04", key))
        if t04 is not None:
            units_cols = [c for c in t04.columns if c.startswith("u")]
            if not (t04["total"] == t04[units_cols].sum(axis=1)).all():
                problems.append(f"Biểu 04 {key}: total ≠ Σ sub-units")
            if not (t04.set_index("code")["total"].drop("", errors="ignore")
                    == t01["total"].drop("", errors="ignore")).all():
                problems.append(f"Biểu 04 {key}: totals differ from Biểu 01")
        if unit.children and all(("01", f"{c.level}/{c.code}") in tables for c in unit.children):
            summed = sum(tables[("01", f"{c.level}/{c.code}")]["total"].to_numpy() for c in unit.children)
            if not (summed == t01["total"].to_numpy()).all():
                problems.append(f"Biểu 01 {key}: ≠ Σ of its {len(unit.children)} sub-units")
    if problems:
        raise FormConsistencyError("Forms are inconsistent: " + "; ".join(problems) + ".")
