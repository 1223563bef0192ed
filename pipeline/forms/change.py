"""Biểu 14/TKĐĐ: change by purpose against the previous inventory and the
latest yearly statistics, with a note of where each change came from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..regime import FormSpec
from ..report import vn_number
from ..units import Unit
from .base import FormInputs, Header, Sheet, common_notes, register, tail_notes
from .cells import form_rows, subtree_sums, value_columns
from .change_inputs import ChangeInputs, statistics_cells, sum_over
from .matrix import NOT_IN, overlay_note, unit_matrices


def change_table(spec: FormSpec, total_label: str, matrix: pd.DataFrame | None, statistics: pd.Series | None,
                 previous_year: int, year: int) -> pd.DataFrame:
    """Biểu 14 of one unit: (4) current, (5) previous, (6) = (4) − (5),
    (7) statistics, (8) = (4) − (7), (9) the main moves, from the unit's matrix."""
    rows = form_rows(spec, total_label)  # the code tree without the sub-codes of spec.collapse
    out = pd.DataFrame(rows)
    if matrix is None:
        matrix = pd.DataFrame()
    codes = [c for c in matrix.columns if c != NOT_IN]
    current = matrix[codes].sum(axis=0) if len(matrix) else pd.Series(dtype=np.int64)
    previous = matrix.drop(index=NOT_IN, errors="ignore").sum(axis=1) if len(matrix) else pd.Series(dtype=np.int64)
    out["current"] = subtree_sums(current.to_frame("v"), rows, spec.row_roots)[:, 0]
    out["previous"] = subtree_sums(previous.to_frame("v"), rows, spec.row_roots)[:, 0]
    out["change_previous"] = out["current"] - out["previous"]
    if statistics is not None:
        out["statistics"] = subtree_sums(statistics.to_frame("v"), rows, spec.row_roots)[:, 0]
        out["change_statistics"] = out["current"] - out["statistics"]
    else:
        out["statistics"] = None
        out["change_statistics"] = None
    out["note"] = [moves_note(matrix, row["code"], previous_year, year) if row["code"] in codes else ""
                   for row in rows]
    return out


def moves_note(matrix: pd.DataFrame, code: str, previous_year: int, year: int, top: int = 3) -> str:
    """"tăng từ LUA 2,51; giảm sang CLN 0,40" — where a code's change came from."""
    if not len(matrix) or code not in matrix.columns:
        return ""
    gained = matrix[code].drop(index=code, errors="ignore")
    lost = matrix.loc[code].drop(labels=code, errors="ignore") if code in matrix.index else pd.Series(dtype=int)
    parts = []
    for word, series in (("tăng từ", gained), ("giảm sang", lost)):
        series = series[series > 0].sort_values(ascending=False).head(top)
        if len(series):
            label = {NOT_IN: f"ngoài bản đồ năm {previous_year}" if word == "tăng từ"
                     else f"ngoài diện tích năm {year}"}
            parts.append(f"{word} " + ", ".join(f"{label.get(k, k)} {vn_number(v / 100)}"
                                                for k, v in series.items()))
    return "; ".join(parts)


def change_headers(spec: FormSpec, change: ChangeInputs) -> tuple[list[Header], list[str], list[str]]:
    """Biểu 14/TKĐĐ: (4) this year, against the previous inventory (5)(6) and the
    latest statistics (7)(8), (9) note."""
    stats_year = change.statistics_year or "…"
    cells = [Header("Thứ tự", 0, 0, 2), Header("Mục đích sử dụng", 0, 1, 2), Header("Mã", 0, 2, 2),
             Header(spec.total_header, 0, 3, 2),
             Header(f"So với năm {change.previous_year}", 0, 4, 1, 2),
             Header(f"Diện tích năm {change.previous_year}", 1, 4), Header("Tăng (+), giảm (-)", 1, 5),
             Header(f"So với năm {stats_year}", 0, 6, 1, 2), Header(f"Diện tích năm {stats_year}", 1, 6),
             Header("Tăng (+), giảm (-)", 1, 7), Header("Ghi chú", 0, 8, 2)]
    numbers = ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)=(4)-(5)", "(7)", "(8)=(4)-(7)", "(9)"]
    labels = [spec.total_header, f"Diện tích năm {change.previous_year}", "Tăng (+), giảm (-)",
              f"Diện tích năm {stats_year}", "Tăng (+), giảm (-)", "Ghi chú"]
    return cells, numbers, labels


@register("change")
class Change:
    """Biểu 14: rows at the comparison level; this year, the previous inventory, the statistics."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        change = inputs.change
        if change is None:
            return {}
        _, matrices = unit_matrices(spec, inputs)
        collapse = frozenset(spec.collapse)
        statistics = statistics_cells(change.statistics, collapse) if change.statistics is not None else None
        return {unit.key: change_table(spec, inputs.total_label, matrices[unit.key],
                                       sum_over(statistics, unit.communes) if statistics is not None else None,
                                       change.previous_year, change.year)
                for unit in inputs.units_of(spec)}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        change = inputs.change
        assert change is not None
        headers, numbers, labels = change_headers(spec, change)
        provenance = common_notes(spec, inputs.template) + tail_notes(spec, inputs.template) + [overlay_note(change)]
        if change.statistics is None:
            provenance.append("Cột (7), (8): không có số liệu thống kê năm trước trong dữ liệu đầu vào.")
        widths = [9.0, 42.0, 7.0, 12.0, 12.0, 12.0, 12.0, 12.0, 36.0]
        return Sheet(headers, numbers, value_columns(table), labels, widths, [], provenance=provenance)
