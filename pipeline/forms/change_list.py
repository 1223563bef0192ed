"""Phụ lục IV of Circular 08/2024: the list of changes (danh sách các trường
hợp biến động) of a commune — each parcel part whose land use or object
changed since the previous inventory, from the change stage's overlay pieces
cut by the parcels."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..regime import FormSpec
from ..units import Unit
from ..workdir import WorkDir
from .base import FormInputs, Header, Sheet, common_notes, register

MIN_CHANGE_M2 = 1.0  # a part of a parcel smaller than this is the two maps' noise, not a change

CHANGE_HEADERS = [
    Header("Số hiệu thửa", 0, 0, 1, 2), Header("Trước biến động", 1, 0), Header("Sau biến động", 1, 1),
    Header("Tên người sử dụng, quản lý đất", 0, 2, 2), Header("Địa chỉ thửa đất", 0, 3, 2),
    Header("Diện tích có biến động (m²)", 0, 4, 2),
    Header("Mã loại đất", 0, 5, 1, 2), Header("Trước", 1, 5), Header("Sau", 1, 6),
    Header("Mã loại đối tượng", 0, 7, 1, 2), Header("Trước", 1, 7), Header("Sau", 1, 8),
    Header("Số thứ tự khoanh đất", 0, 9, 1, 2), Header("Trước", 1, 9), Header("Sau", 1, 10),
    Header("Kết quả kiểm tra thực địa của cấp xã — nội dung thay đổi", 0, 11, 2),
]
CHANGE_LABELS = ["Số hiệu thửa trước", "Số hiệu thửa sau", "Tên người sử dụng, quản lý", "Địa chỉ thửa",
                 "Diện tích có biến động (m²)", "Mã loại đất trước", "Mã loại đất sau", "Mã đối tượng trước",
                 "Mã đối tượng sau", "Khoanh đất trước", "Khoanh đất sau", "Kiểm tra thực địa"]


def changed_parts(pieces: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, previous_owner: pd.Series,
                  address: str) -> pd.DataFrame:
    """The rows of the list: every changed overlay piece cut by the current
    parcels, one row per parcel × (previous khoanh, code before, code after)."""
    changed = pieces[pieces["changed"].astype(bool)].reset_index(drop=True)
    columns = ["parcel_before", "parcel_after", "owner_name", "address", "area_m2", "code_before", "code_after",
               "owner_before", "owner_after", "khoanh_before", "khoanh_after", "field_check"]
    if changed.empty or parcels.empty:
        return pd.DataFrame(columns=columns)
    piece_at, parcel_at = shapely.STRtree(parcels.geometry.values).query(changed.geometry.values,
                                                                         predicate="intersects")
    area = shapely.area(shapely.intersection(changed.geometry.values[piece_at], parcels.geometry.values[parcel_at]))
    keep = area >= MIN_CHANGE_M2
    piece, parcel = changed.iloc[piece_at[keep]], parcels.iloc[parcel_at[keep]]
    sheet, number = parcel["sheet_no"].fillna("").astype(str), parcel["parcel_no"].fillna("").astype(str)
    rows = pd.DataFrame({
        "parcel_before": "",
        "parcel_after": (sheet + "/" + number).to_numpy(),
        "owner_name": parcel["owner_name"].fillna("").to_numpy(),
        "address": address,
        "area_m2": area[keep],
        "code_before": piece["from_leaf"].to_numpy(), "code_after": piece["to_leaf"].to_numpy(),
        "owner_before": piece["previous_id"].map(previous_owner).fillna("").to_numpy(),
        "owner_after": parcel["owner_type"].to_numpy(),
        "khoanh_before": piece["previous_id"].astype("Int64").to_numpy(), "khoanh_after": piece["khoanh_no"].to_numpy(),
        "sort": list(zip(sheet, number.str.zfill(8), strict=True)),
    })
    keys = [c for c in columns if c not in ("area_m2", "field_check")] + ["sort"]
    out = rows.groupby(keys, as_index=False, sort=False, dropna=False)["area_m2"].sum()
    out = out.sort_values(["sort", "khoanh_before"]).drop(columns="sort").reset_index(drop=True)
    out["area_m2"] = out["area_m2"].round(1)
    out["field_check"] = ""
    return out[columns]


def commune_changes(work: WorkDir, code: str, address: str) -> pd.DataFrame | None:
    """A commune's list, read from its change pieces, parcels and previous layer (None: not compared)."""
    if not work.change(code).exists():
        return None
    pieces = gpd.read_parquet(work.change(code))
    parcels = gpd.read_parquet(work.parcels(code), columns=["sheet_no", "parcel_no", "owner_name", "owner_type",
                                                            "geometry"])
    owners = pd.Series(dtype=object)
    if work.previous(code).exists():
        layer = pd.read_parquet(work.previous(code), columns=["owner_type"])
        owners = pd.Series(layer["owner_type"].to_numpy(), index=np.arange(1, len(layer) + 1))
    return changed_parts(pieces, parcels, owners, address)


@register("change_list")
class ChangeList:
    """One row per changed part of a parcel of a commune."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        if inputs.change is None or not inputs.work_root:
            return {}
        work = WorkDir(Path(inputs.work_root))
        out = {}
        for unit in inputs.units_of(spec):
            table = commune_changes(work, unit.code, unit.name)
            if table is not None:
                out[unit.key] = table
        return out

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        change = inputs.change
        assert change is not None
        provenance = common_notes(spec, inputs.template) + [
            f"Lập từ chồng xếp bản đồ kiểm kê năm {change.previous_year} với các khoanh đất và thửa đất năm "
            f"{change.year}: mỗi phần thửa đất có mã loại đất khác nhau giữa hai kỳ là một dòng (phần dưới "
            f"{MIN_CHANGE_M2:g} m² do sai khác hai bản đồ không liệt kê).",
            f"Cột (1): bản đồ kỳ trước là bản đồ khoanh đất, không có số hiệu thửa; cột (8), (10): đối tượng và số "
            f"thứ tự khoanh đất của bản đồ năm {change.previous_year}.",
            "Cột (4): tên đơn vị hành chính (dữ liệu đầu vào không có địa chỉ thửa); cột (12) do công chức địa chính "
            "cấp xã ghi khi kiểm tra thực địa."]
        notes = ["Trường hợp biến động một phần thửa đất thì chỉ liệt kê phần diện tích có biến động."]
        return Sheet(CHANGE_HEADERS, [f"({k})" for k in range(1, 13)], list(table.columns), CHANGE_LABELS,
                     [9.0, 9.0, 24.0, 18.0, 11.0, 7.0, 7.0, 8.0, 8.0, 8.0, 8.0, 28.0], notes, row_form=False,
                     provenance=provenance)
