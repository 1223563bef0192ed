"""Biểu 04/TKĐĐ: area by land-use code × sub-unit (communes of a district,
districts of the province)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..regime import FormSpec
from ..units import Unit
from .base import FormInputs, Header, Sheet, common_notes, register, tail_notes
from .cells import form_rows, spec_cells, subtree_sums, table_of, unit_leaf_cells, value_columns


def unit_table(cells: pd.DataFrame, spec: FormSpec, unit: Unit, total_label: str = "") -> pd.DataFrame:
    """Biểu 04: rows × [total, one column per sub-unit] (each the sub-unit's total)."""
    rows = form_rows(spec, total_label)
    per_child = []
    for child in unit.children:
        leaf = unit_leaf_cells(cells, child).sum(axis=1).to_frame("all")
        per_child.append(subtree_sums(leaf, rows, spec.row_roots)[:, 0])
    matrix = np.column_stack(per_child) if per_child else np.zeros((len(rows), 0), dtype=np.int64)
    values = {"total": matrix.sum(axis=1), **{f"u{child.code}": column
                                              for child, column in zip(unit.children, matrix.T, strict=True)}}
    if spec.disputed_header:  # no undetermined boundary area is given to kiemke: every unit's land is in a unit
        values["disputed"] = np.zeros(len(rows), dtype=np.int64)
    return table_of(rows, values)


def unit_headers(spec: FormSpec, unit: Unit) -> tuple[list[Header], list[str]]:
    n = len(unit.children)
    cells = [Header("Thứ tự", 0, 0, 3), Header("Loại đất", 0, 1, 3), Header("Mã", 0, 2, 3),
             Header(spec.total_header, 0, 3, 3), Header(spec.units_header, 0, 4, 1, max(n, 1))]
    cells += [Header(child.name, 1, 4 + k, 2) for k, child in enumerate(unit.children)]
    numbers = ["(1)", "(2)", "(3)", f"(4)=(5)+…+({4 + n})" if n > 1 else "(4)"]
    numbers += [f"({5 + k})" for k in range(n)]
    if spec.disputed_header:
        cells.append(Header(spec.disputed_header, 0, 4 + n, 3))
        numbers.append(f"({5 + n})")
    return cells, numbers


@register("by_unit")
class ByUnit:
    """Rows: the code tree; columns: the total, then each sub-unit."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        cells = spec_cells(inputs.areas, spec, inputs.template.columns(spec.column_set))
        return {unit.key: unit_table(cells, spec, unit, inputs.total_label) for unit in inputs.units_of(spec)}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        headers, numbers = unit_headers(spec, unit)
        labels = [spec.total_header, *[c.name for c in unit.children]]
        provenance = common_notes(spec, inputs.template) + tail_notes(spec, inputs.template)
        if spec.disputed_header:
            labels.append(spec.disputed_header)
            provenance.append(f"Cột {numbers[-1]}: bằng 0 — dữ liệu đầu vào không có khu vực chưa thống nhất đường "
                              "địa giới; mọi khoanh đất thuộc một đơn vị hành chính.")
        widths = [9.0, 42.0, 7.0] + [12.0] * (len(numbers) - 3)
        return Sheet(headers, numbers, value_columns(table), labels, widths, [], provenance=provenance)
