"""The khoanh list (danh sách các khoanh đất) of a commune."""

from __future__ import annotations

import json

import pandas as pd

from ..regime import FormSpec
from ..units import Unit
from .base import FormInputs, Header, Sheet, common_notes, register

KHOANH_HEADERS = [
    Header("Thứ tự khoanh đất", 0, 0, 2), Header("Diện tích (m²)", 0, 1, 2),
    Header("Mã loại đất", 0, 2, 1, 2), Header("Hiện trạng", 1, 2), Header("Kỳ trước", 1, 3),
    Header("Mã loại đất sử dụng kết hợp", 0, 4, 2),
    Header("Mã đối tượng", 0, 5, 1, 2), Header("Hiện trạng", 1, 5), Header("Kỳ trước", 1, 6),
    Header("Mã khu vực tổng hợp", 0, 7, 2), Header("Ghi chú", 0, 8, 2),
]
KHOANH_LABELS = ["Thứ tự khoanh đất", "Diện tích (m²)", "Mã loại đất hiện trạng", "Mã loại đất kỳ trước",
                 "Mã loại đất sử dụng kết hợp", "Mã đối tượng hiện trạng", "Mã đối tượng kỳ trước",
                 "Mã khu vực tổng hợp", "Ghi chú"]


def khoanh_table(khoanh: pd.DataFrame) -> pd.DataFrame:
    """The khoanh list: number, m², current code, combined-use codes, owner, note."""
    def combined(uses: object, landuse: object) -> str:
        return "+".join(c for c in json.loads(uses) if c != landuse) if isinstance(uses, str) else ""

    frame = khoanh.sort_values("khoanh_no")
    return pd.DataFrame({
        "khoanh_no": frame["khoanh_no"].to_numpy(),
        "area_m2": frame["area_m2"].round(1).to_numpy(),
        "landuse": frame["landuse"].fillna("").to_numpy(),
        "landuse_previous": frame["landuse_previous"].fillna("").to_numpy() if "landuse_previous" in frame else "",
        "combined_use": [combined(u, c) for u, c in zip(frame["uses"].to_numpy(dtype=object, na_value=None),
                                                        frame["landuse"].to_numpy(dtype=object, na_value=None),
                                                        strict=True)],  # plain values: no Arrow scalar per cell
        "owner_type": frame["owner_type"].fillna("").to_numpy(),
        "owner_previous": frame["owner_previous"].fillna("").to_numpy() if "owner_previous" in frame else "",
        "zone": "",
        "note": frame["flag"].fillna("").to_numpy(),
    })


@register("khoanh_list")
class KhoanhList:
    """One row per khoanh of a commune."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        return {unit.key: khoanh_table(inputs.khoanh[unit.code]) for unit in inputs.units_of(spec)
                if unit.code in inputs.khoanh}

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        provenance = common_notes(spec, inputs.template)
        change = inputs.change
        if change is None:
            provenance.append("Cột (4), (7): không có bản đồ kiểm kê kỳ trước trong dữ liệu đầu vào.")
        else:
            provenance.append(f"Cột (4), (7): mã loại đất và mã đối tượng năm {change.previous_year} chiếm phần lớn "
                              f"diện tích khoanh (chồng xếp với bản đồ kiểm kê năm {change.previous_year}).")
        provenance.append("Cột (8) Mã khu vực tổng hợp: để trống — dữ liệu đầu vào không có ranh giới các khu vực "
                          "tổng hợp (khu vực chuyên trồng lúa nước, khu dân cư nông thôn, …) của xã.")
        return Sheet(KHOANH_HEADERS, [f"({k})" for k in range(1, 10)], list(table.columns), KHOANH_LABELS,
                     [10.0, 14.0, 10.0, 10.0, 16.0, 10.0, 10.0, 14.0, 40.0], [], row_form=False,
                     provenance=provenance)
