"""Biểu 04/TKKK: area and structure (cơ cấu, %) by land-use row × object."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..regime import FormSpec
from ..units import Unit
from .base import FormInputs, Header, Sheet, common_notes, register, tail_notes
from .by_owner import block_headers, owner_blocks
from .cells import form_rows, spec_cells, subtree_sums, unit_leaf_cells, value_columns

PERCENT = 100 * 100  # a share is kept in hundredths of a percent, printed with 2 decimals


def share(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Each cell's share of its column's total, in hundredths of a percent (0 where the total is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(totals > 0, np.rint(values * PERCENT / np.where(totals > 0, totals, 1)), 0)
    return out.astype(np.int64)


def structure_table(leaf: pd.DataFrame, spec: FormSpec, total_label: str) -> pd.DataFrame:
    """Rows: the code tree (its first row the total); per column — the total,
    then each object — its area (centi-ha) and its share of that column's total."""
    rows = form_rows(spec, total_label)
    values = subtree_sums(leaf, rows, spec.row_roots)
    columns = np.column_stack([values.sum(axis=1), values])
    shares = share(columns, columns[0][None, :])
    out = pd.DataFrame(rows)
    for k in range(columns.shape[1]):
        out[f"a{k}"] = columns[:, k]
        out[f"p{k}"] = shares[:, k]
    return out


@register("structure")
class Structure:
    """Rows: the code tree; columns: (area, share) for the total and for each object."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        columns = inputs.template.columns(spec.column_set)
        cells = spec_cells(inputs.areas, spec, columns)
        return {unit.key: structure_table(unit_leaf_cells(cells, unit), spec, inputs.total_label)
                for unit in inputs.units_of(spec)}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        template = inputs.template
        columns = template.columns(spec.column_set)
        users, managers, sets = owner_blocks(template, spec)
        headers = [Header("Thứ tự", 0, 0, 4), Header("Loại đất", 0, 1, 4), Header("Mã", 0, 2, 4),
                   Header(spec.total_header, 0, 3, 3, 2)]
        col = 5
        for members, title in ((users, sets["users_header"]), (managers, sets["managers_header"])):
            headers.append(Header(title, 0, col, 1, 2 * len(members)))
            headers += [Header(h.text, h.row, col + 2 * (h.col - col), h.rows, 2 * h.cols)
                        for h in block_headers(members, col)]
            col += 2 * len(members)
        for k in range(len(columns) + 1):
            headers += [Header("Diện tích (ha)", 3, 3 + 2 * k), Header("Cơ cấu (%)", 3, 4 + 2 * k)]
        numbers = ["(1)", "(2)", "(3)", *[f"({4 + k})" for k in range(2 * (len(columns) + 1))]]
        labels = [f"{name} — {part}" for name in [spec.total_header, *[c.header for c in columns]]
                  for part in ("diện tích (ha)", "cơ cấu (%)")]
        provenance = common_notes(spec, template) + tail_notes(spec, template) + [
            "Cơ cấu (%) = diện tích của ô / diện tích dòng tổng của cột đó × 100 (suy luận: cách tính chưa thấy "
            "trong văn bản; cột Tổng số là cơ cấu so với tổng diện tích tự nhiên)."]
        widths = [9.0, 38.0, 7.0] + [9.0, 7.0] * (len(columns) + 1)
        return Sheet(headers, numbers, value_columns(table), labels, widths, [], provenance=provenance, wide=True)
