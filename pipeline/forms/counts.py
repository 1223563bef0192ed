"""Biểu 02/TKKK: how many land users and managers, by land-use row × object
(persons and organisations, not m²: ``stats/holders.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..aggregate import TOTAL_CODE  # the total row of stats/holders.csv
from ..regime import FormSpec
from ..units import Unit
from .base import CONFIDENCE, FormInputs, Header, Sheet, common_notes, register
from .by_owner import block_headers, owner_blocks
from .cells import form_rows, value_columns


def counts_table(holders: pd.DataFrame, spec: FormSpec, unit: Unit, codes: list[list[str]],
                 total_label: str) -> pd.DataFrame:
    """Rows: the code tree; columns: the total, then each object's holders (the
    sum of the unit's communes: one holding land in two communes counts twice)."""
    rows = form_rows(spec, total_label)
    mine = holders[holders["commune_code"].isin(unit.communes)]
    by = mine.groupby(["code", "owner_type"])["holders"].sum()
    values = np.zeros((len(rows), len(codes)), dtype=np.int64)
    for r, row in enumerate(rows):
        code = row["code"] or TOTAL_CODE
        for k, column in enumerate(codes):
            values[r, k] = sum(int(by.get((code, c), 0)) for c in column)
    out = pd.DataFrame(rows)
    out["total"] = values.sum(axis=1)
    for k in range(len(codes)):
        out[f"c{k}"] = values[:, k]
    return out


@register("owner_counts")
class OwnerCounts:
    """Rows: the code tree; columns: the total, then each user/manager object (no subtotals)."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        if inputs.holders is None:
            return {}
        codes = [list(c.codes) for c in inputs.template.columns(spec.column_set)]
        return {unit.key: counts_table(inputs.holders, spec, unit, codes, inputs.total_label)
                for unit in inputs.units_of(spec)}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        template = inputs.template
        columns = template.columns(spec.column_set)
        users, managers, sets = owner_blocks(template, spec)
        headers = [Header("Thứ tự", 0, 0, 3), Header("Loại đất", 0, 1, 3), Header("Mã", 0, 2, 3),
                   Header(spec.total_header, 0, 3, 3), Header(sets["users_header"], 0, 4, 1, len(users)),
                   *block_headers(users, 4),
                   Header(sets["managers_header"], 0, 4 + len(users), 1, len(managers)),
                   *block_headers(managers, 4 + len(users))]
        n = len(columns)
        numbers = ["(1)", "(2)", "(3)", f"(4)=(5)+…+({4 + n})", *[f"({5 + k})" for k in range(n)]]
        provenance = common_notes(spec, template) + [
            f"Cột {numbers[3 + k + 1]} {col.header}: {CONFIDENCE.get(col.confidence, col.confidence)} — {col.source}."
            for k, col in enumerate(columns)]
        provenance.append("Số đối tượng: mỗi tên chủ sử dụng, quản lý (không phân biệt chữ hoa, dấu, khoảng trắng) "
                          "tính một lần trong mỗi dòng loại đất của xã; thửa không có tên chủ tính mỗi thửa một "
                          "đối tượng. Cấp trên xã cộng số của các xã (một chủ có đất ở hai xã tính hai lần).")
        notes = ["Số đối tượng của mỗi dòng là số người sử dụng, quản lý có đất thuộc loại đất đó; một đối tượng có "
                 "nhiều loại đất được tính ở mỗi dòng tương ứng, nên các dòng không cộng thành dòng tổng."]
        widths = [7.0, 34.0, 6.0] + [8.5] * (len(numbers) - 3)
        return Sheet(headers, numbers, value_columns(table), [spec.total_header, *[c.header for c in columns]],
                     widths, notes, provenance=provenance, scale=1.0, decimals=0,
                     unit_line="Đơn vị tính: người (đối tượng)")
