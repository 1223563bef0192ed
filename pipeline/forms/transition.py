"""The transition matrix (ma trận chu chuyển đất đai) between the previous
inventory and this one, laid out like Biểu 05/TKKK of Circular 08/2024."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..reference import landuse_tree
from ..regime import FormSpec
from ..units import Unit
from .base import FormInputs, Header, Sheet, common_notes, register, tail_notes
from .cells import value_columns
from .change_inputs import ChangeInputs
from .matrix import NOT_IN, overlay_note, unit_matrices


def matrix_table(matrix: pd.DataFrame | None, codes: list[str], previous_year: int, year: int) -> pd.DataFrame:
    """The transition-matrix sheet of one unit: a row per previous code (with
    its previous area and its total decrease), the area not in the previous
    statistics, the total increase and the current area per column."""
    tree = landuse_tree()
    columns = [*codes, NOT_IN]
    m = (matrix if matrix is not None else pd.DataFrame(0, index=columns, columns=columns)).reindex(
        index=columns, columns=columns, fill_value=0)
    body = m.loc[codes]
    diagonal = pd.Series(np.diag(m.loc[codes, codes].to_numpy()), index=codes)
    rows = [{"stt": str(k + 1), "name": tree.name(c), "code": c, "level": 3, "kind": "row"}
            for k, c in enumerate(codes)]
    out = pd.DataFrame(rows)
    out["previous"] = body.sum(axis=1).to_numpy()
    for c in columns:
        out[f"to_{c}"] = body[c].to_numpy()
    out["decrease"] = (body.sum(axis=1) - diagonal).to_numpy()
    column_totals = m.sum(axis=0)
    extra = [
        ({"stt": "", "name": f"Không thuộc diện tích năm {previous_year}", "code": "", "level": 2, "kind": "row"},
         m.loc[NOT_IN]),
        ({"stt": "", "name": "Cộng tăng", "code": "", "level": 1, "kind": "total"},
         column_totals - pd.Series(np.r_[diagonal.to_numpy(), m.at[NOT_IN, NOT_IN]], index=columns)),
        ({"stt": "", "name": f"Diện tích năm {year}", "code": "", "level": 1, "kind": "total"}, column_totals),
    ]
    tail = [{**meta, "previous": None, **{f"to_{c}": int(values[c]) for c in columns}, "decrease": None}
            for meta, values in extra]
    return pd.concat([out, pd.DataFrame(tail)], ignore_index=True)


def matrix_headers(codes: list[str], change: ChangeInputs) -> tuple[list[Header], list[str], list[str]]:
    """The transition matrix: previous area, one column per current code, the
    area leaving the current statistics, and the total decrease."""
    n = len(codes)
    cells = [Header("Thứ tự", 0, 0, 2), Header(f"Loại đất năm {change.previous_year}", 0, 1, 2),
             Header("Mã", 0, 2, 2), Header(f"Diện tích năm {change.previous_year}", 0, 3, 2),
             Header(f"Chu chuyển sang loại đất năm {change.year}", 0, 4, 1, n)]
    cells += [Header(code, 1, 4 + k) for k, code in enumerate(codes[:-1])]
    cells += [Header(f"Không thuộc diện tích năm {change.year}", 1, 4 + n - 1),
              Header("Cộng giảm", 0, 4 + n, 2)]
    numbers = [f"({k})" for k in range(1, n + 6)]
    labels = [f"Diện tích năm {change.previous_year}", *codes[:-1], f"Không thuộc diện tích năm {change.year}",
              "Cộng giảm"]
    return cells, numbers, labels


@register("transition")
class Transition:
    """The from → to matrix of the comparison codes."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        change = inputs.change
        if change is None:
            return {}
        codes, matrices = unit_matrices(spec, inputs)
        return {key: matrix_table(matrix, codes, change.previous_year, change.year)
                for key, matrix in matrices.items()}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        change = inputs.change
        assert change is not None
        codes = [c.removeprefix("to_") for c in table.columns if c.startswith("to_")]
        headers, numbers, labels = matrix_headers(codes, change)
        provenance = common_notes(spec, inputs.template) + tail_notes(spec, inputs.template) + [
            overlay_note(change),
            f"Dòng/cột \"Không thuộc diện tích\": phần diện tích nằm ngoài ranh giới bản đồ của năm kia, "
            f"và các khoảng hở chưa xác định loại đất năm {change.year}."]
        widths = [5.0, 30.0, 6.0, 10.0] + [7.5] * (len(numbers) - 4)
        return Sheet(headers, numbers, value_columns(table), labels, widths, [], provenance=provenance, wide=True)
