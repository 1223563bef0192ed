"""Biểu 01, 02, 03/TKĐĐ: area by land-use code × user/manager object."""

from __future__ import annotations

import pandas as pd

from ..regime import FormSpec, OwnerColumn, Template
from ..units import Unit
from .base import CONFIDENCE, FormInputs, Header, Sheet, common_notes, inferred_note, register, tail_notes
from .cells import form_rows, spec_cells, subtree_sums, table_of, unit_leaf_cells, value_columns


def owner_table(leaf: pd.DataFrame, spec: FormSpec, columns: list[OwnerColumn], total_label: str = "") -> pd.DataFrame:
    """A by-owner form (01/02/03): rows × [total, users total, users…, managers total, managers…]."""
    rows = form_rows(spec, total_label)
    values = subtree_sums(leaf, rows, spec.row_roots)
    users = [i for i, c in enumerate(columns) if c.block == "users"]
    managers = [i for i, c in enumerate(columns) if c.block == "managers"]
    user_total = values[:, users].sum(axis=1)
    manager_total = values[:, managers].sum(axis=1)
    return table_of(rows, {"total": user_total + manager_total, "users_total": user_total,
                           **{f"c{i}": values[:, i] for i in users}, "managers_total": manager_total,
                           **{f"c{i}": values[:, i] for i in managers}})


def block_headers(members: list[OwnerColumn], col: int) -> list[Header]:
    """The header cells of one block's columns, grouped under their group titles."""
    cells = []
    i = 0
    while i < len(members):
        group = members[i].group
        if group:
            span = [m for m in members[i:] if m.group == group]
            span = span[: next((k for k, m in enumerate(span) if m.group != group), len(span))]
            cells.append(Header(group, 1, col, 1, len(span)))
            cells += [Header(member.header, 2, col + k) for k, member in enumerate(span)]
            col += len(span)
            i += len(span)
        else:
            cells.append(Header(members[i].header, 1, col, 2))
            col += 1
            i += 1
    return cells


def owner_blocks(template: Template, spec: FormSpec) -> tuple[list[OwnerColumn], list[OwnerColumn], dict]:
    """A form's user columns, its manager columns, and its column set's texts (block titles)."""
    columns = template.columns(spec.column_set)
    return ([c for c in columns if c.block == "users"], [c for c in columns if c.block == "managers"],
            template.column_sets[spec.column_set])


def owner_headers(spec: FormSpec, columns: list[OwnerColumn], template: Template) -> tuple[list[Header], list[str]]:
    """Header cells of a by-owner form (3 header rows) and the numbered row."""
    users, managers, sets = owner_blocks(template, spec)
    cells = [Header("Thứ tự", 0, 0, 3), Header("Loại đất", 0, 1, 3), Header("Mã", 0, 2, 3),
             Header(spec.total_header, 0, 3, 3)]
    col = 4
    for members, title in ((users, sets["users_header"]), (managers, sets["managers_header"])):
        cells.append(Header(title, 0, col, 1, len(members) + 1))
        cells.append(Header("Tổng số", 1, col, 2))
        cells += block_headers(members, col + 1)
        col += len(members) + 1
    n_users, n_managers = len(users), len(managers)
    user_total, manager_total = 5, 5 + n_users + 1
    numbers = ["(1)", "(2)", "(3)", f"({4})=({user_total})+({manager_total})",
               f"({user_total})=({user_total + 1})+…+({user_total + n_users})"]
    numbers += [f"({user_total + 1 + k})" for k in range(n_users)]
    numbers.append(f"({manager_total})=({manager_total + 1})+…+({manager_total + n_managers})")
    numbers += [f"({manager_total + 1 + k})" for k in range(n_managers)]
    return cells, numbers


def column_numbers(columns: list[OwnerColumn]) -> list[tuple[int, OwnerColumn]]:
    """(index in the numbered row, column) for each owner column of a by-owner form."""
    users = [c for c in columns if c.block == "users"]
    managers = [c for c in columns if c.block == "managers"]
    out = [(5 + k, c) for k, c in enumerate(users)]
    out += [(5 + len(users) + 1 + k, c) for k, c in enumerate(managers)]
    return out


@register("by_owner")
class ByOwner:
    """Rows: the code tree; columns: the total, then each user/manager object."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        columns = inputs.template.columns(spec.column_set)
        cells = spec_cells(inputs.areas, spec, columns)
        return {unit.key: owner_table(unit_leaf_cells(cells, unit), spec, columns, inputs.total_label)
                for unit in inputs.units_of(spec)}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        template = inputs.template
        columns = template.columns(spec.column_set)
        headers, numbers = owner_headers(spec, columns, template)
        labels = [spec.total_header, "Tổng số đối tượng sử dụng", *[c.header for c in columns if c.block == "users"],
                  "Tổng số đối tượng quản lý", *[c.header for c in columns if c.block == "managers"]]
        provenance = common_notes(spec, template) + [
            f"Cột {numbers[k]} {col.header}: {CONFIDENCE.get(col.confidence, col.confidence)} — {col.source}."
            for k, col in column_numbers(columns)]
        provenance += tail_notes(spec, template)
        widths = [9.0, 42.0, 7.0] + [12.0] * (len(numbers) - 3)
        if len(numbers) > 20:  # TT 08/2024: 16 objects and 3 totals on one A3 page, body ≥ 7 pt
            users = sum(c.block == "users" for c in columns)
            totals = {3, 4, 5 + users}  # (4), (5) and the managers' total: their formulas need the room
            widths = [7.0, 34.0, 6.0] + [13.0 if k in totals else 9.0 for k in range(3, len(numbers))]
        return Sheet(headers, numbers, value_columns(table), labels, widths, inferred_note(spec, unit, inputs),
                     provenance=provenance)
