"""The officer's review round trip: ``reports/review/<commune>.xlsx`` lists every
quarantined parcel and every parcel whose object was inferred or whose code
was refined or corrected: sheet, parcel, owner, code as read, what kiemke
decided and why, the candidates, and two empty columns ("Mã loại đất đúng",
"Đối tượng đúng") for the officer. Filled in and saved, the workbook is read
back on the next run (:mod:`.corrections`); the source files are never touched.
"""

from __future__ import annotations

import json
from copy import copy
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from ..io import atomic_path
from ..measure import column_width_pt, lines_needed, row_height_pt
from ..messages import vi
from ..reference import landuse_tree, owner_codes
from ..schemas import PARCEL_COLUMNS
from ..xlsx import FONT, landscape, serif_workbook
from .corrections import REVIEW_HEADER_ROW
from .owners import FROM_CORRECTION, FROM_FILE, SOURCE_VI, rule_text
from .refine import CORRECTED

COLUMNS = [  # header, width, key
    ("STT", 6, "no"), ("Tờ", 6, "sheet_no"), ("Thửa", 7, "parcel_no"), ("Diện tích (m²)", 11, "area_m2"),
    ("Chủ sử dụng (theo tệp)", 26, "owner_name"), ("Mã loại đất (theo tệp)", 14, "landuse_raw"),
    ("Mã loại đất kiemke dùng", 12, "landuse"), ("Đối tượng kiemke dùng", 11, "owner_type"),
    ("Tình trạng", 16, "status"), ("Căn cứ, lý do", 62, "why"), ("Mã có thể", 14, "candidates"),
    ("Mã loại đất đúng", 12, "landuse_fix"), ("Đối tượng đúng", 11, "owner_fix"), ("Ghi chú của cán bộ", 24, "note"),
    ("Tệp nguồn", 30, "source_file"), ("FID", 7, "source_fid"),
]
QUARANTINED, INFERRED, REFINED, FIXED = "Cách ly", "Suy đối tượng", "Chuyển mã", "Đã sửa theo cán bộ"
#: Columns of free text, wrapped in their cells (the row as tall as its longest); the others hold a code or a number.
WRAPPED = frozenset({"owner_name", "status", "why", "candidates", "note", "source_file"})
CENTRED = frozenset({"no", "sheet_no", "parcel_no"})  # numbers read as text or as numbers, aligned alike
NUMBERS = frozenset({"sheet_no", "parcel_no"})  # written as numbers where plain: Excel sorts 2 before 10
TEXT_PT = 11.0
EDITABLE = PatternFill("solid", fgColor="FFF2CC")
KEY = PatternFill("solid", fgColor="EDEDED")
#: A quarantined point or line is drawn in the review layer as the area this far around it (metres).
MARKER_M = 1.5
def _why(row: pd.Series) -> str:
    parts = []
    if isinstance(row.get("refined"), str) and row["refined"]:
        parts.append("Mã: sửa theo cán bộ" if row["refined"] == CORRECTED else f"Mã: {row['refined']}")
    source = row.get("owner_source")
    if source not in (None, FROM_FILE) and isinstance(source, str):
        named = rule_text(row.get("owner_rule") or "")
        parts.append(f"Đối tượng {row['owner_type']}: {SOURCE_VI[source]}" + (f" — {named}" if named else ""))
    return "; ".join(parts)


def _table(parcels: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantined parcels, then the inferred, refined and corrected ones, with their geometry."""
    flagged = parcels[parcels["refined"].notna() | parcels["owner_source"].ne(FROM_FILE)]
    codes = _codes(flagged)
    fixed_code = flagged["refined"].eq(CORRECTED)
    fixed_owner = flagged["owner_source"].eq(FROM_CORRECTION)
    inferred = pd.DataFrame({
        **{k: flagged[k] for k in ("sheet_no", "parcel_no", "owner_name", "landuse_raw", "owner_type", "source_file",
                                   "source_fid")},
        "area_m2": flagged["area_m2"].round(1), "landuse": codes,
        "status": np.where(fixed_code | fixed_owner, FIXED, np.where(flagged["refined"].notna(), REFINED, INFERRED)),
        "why": [_why(r) for _, r in flagged.iterrows()], "candidates": "",
        "landuse_fix": codes.where(fixed_code, ""), "owner_fix": flagged["owner_type"].where(fixed_owner, ""),
        "geometry": flagged.geometry.to_numpy(),
    })
    refused = pd.DataFrame({
        **{k: quarantine.get(k)
           for k in ("sheet_no", "parcel_no", "owner_name", "landuse_raw", "source_file", "candidates", "source_fid")},
        "area_m2": quarantine["area_m2"].round(1), "landuse": "", "owner_type": "", "status": QUARANTINED,
        "why": quarantine["reason"].map(vi), "landuse_fix": "", "owner_fix": "",
        "geometry": quarantine.geometry.to_numpy(),
    })
    out = pd.concat([refused, inferred], ignore_index=True)
    if out.empty:
        return pd.DataFrame(columns=[*(key for _, _, key in COLUMNS), "geometry"])
    order = out.assign(_s=pd.to_numeric(out["sheet_no"], errors="coerce"),
                       _p=pd.to_numeric(out["parcel_no"], errors="coerce"))
    out = out.loc[order.sort_values(["_s", "_p"], kind="stable", na_position="first").index].reset_index(drop=True)
    out["no"] = np.arange(1, len(out) + 1)
    out["note"] = ""
    return out[[*(key for _, _, key in COLUMNS), "geometry"]]


def review_rows(parcels: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The rows of a commune's review workbook (pure), by sheet and parcel number."""
    return _table(parcels, quarantine).drop(columns="geometry")


def review_inputs(parcels: Path, quarantine: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame] | None:
    """A commune's parcels and quarantined parcels when it has parcels to
    review; None when it has none (found from two columns, the geometry unread)."""
    marks = pd.read_parquet(parcels, columns=["refined", "owner_source"]) if parcels.exists() else None
    flagged = marks is not None and bool((marks["refined"].notna() | marks["owner_source"].ne(FROM_FILE)).any())
    if not quarantine.exists() and not flagged:
        return None
    kept = gpd.read_parquet(parcels) if parcels.exists() else \
        gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in PARCEL_COLUMNS}, geometry=[])  # all quarantined
    refused = gpd.read_parquet(quarantine) if quarantine.exists() else kept.iloc[:0].assign(reason="")
    return kept, refused


def review_frame(parcels: gpd.GeoDataFrame, quarantine: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The review rows with their geometry (the GeoPackage's ``review`` layer, of
    polygons): a quarantined point or line (a label in no face, an open
    boundary) drawn as the ring :data:`MARKER_M` around it, where to look."""
    table = _table(parcels, quarantine)
    frame = gpd.GeoDataFrame(table, geometry="geometry", crs=parcels.crs)
    present = frame.geometry.notna() & ~frame.geometry.is_empty
    marked = present & ~frame.geom_type.isin(["Polygon", "MultiPolygon"])
    if marked.any():
        frame.loc[marked, "geometry"] = frame.geometry[marked].buffer(MARKER_M)
    return frame[present].reset_index(drop=True)


def _codes(parcels: pd.DataFrame) -> pd.Series:
    """The code a parcel is counted under: its uses joined for a compound parcel."""
    return pd.Series(["+".join(json.loads(u)) if isinstance(u, str) else str(c)
                      for c, u in zip(parcels["landuse"], parcels["uses"], strict=True)], index=parcels.index)


def write_review_workbook(path: Path, rows: pd.DataFrame, commune: str) -> Path:
    """The review workbook of a commune: its rows, the columns to fill in
    (yellow, with lists of the valid codes), and how to use it."""
    book = serif_workbook()
    sheet = book.active
    sheet.title = "Rà soát"
    sheet["A1"] = f"DANH SÁCH THỬA ĐẤT CẦN RÀ SOÁT — {commune}"
    sheet["A1"].font = Font(name=FONT, bold=True, size=13)
    sheet["A2"] = ("Điền cột “Mã loại đất đúng” và/hoặc “Đối tượng đúng” khi kết quả của kiemke chưa đúng, lưu tệp "
                   "rồi chạy lại: sửa đổi được áp dụng cho xã này, tệp dữ liệu gốc không bị sửa. Ghi chú ở cột “Ghi "
                   "chú của cán bộ” được giữ khi kiemke lập lại sổ và hiện trong lớp rà soát của GeoPackage. "
                   f"Có {len(rows)} thửa.")
    sheet["A2"].font = Font(name=FONT, italic=True, size=10)
    for c, (header, width, key) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(REVIEW_HEADER_ROW, c, header)
        cell.font = Font(name=FONT, bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        sheet.column_dimensions[get_column_letter(c)].width = width
        if key in ("landuse_fix", "owner_fix", "note"):
            cell.fill = EDITABLE
        elif key in ("source_file", "source_fid"):
            cell.fill = KEY
    sheet.row_dimensions[REVIEW_HEADER_ROW].height = _row_height([header for header, _, _ in COLUMNS], bold=True)
    styles = []  # each column's cell style, set once and copied (openpyxl hashes a style set on a cell)
    for c, (_, _, key) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(REVIEW_HEADER_ROW + 1, c)
        cell.alignment = Alignment(vertical="top", wrap_text=key in WRAPPED,
                                   horizontal="center" if key in CENTRED else None)
        if key == "area_m2":
            cell.number_format = "#,##0.0"  # 15 567,8 where the decimal comma is the officer's
        styles.append(cell._style)
    for r, values in enumerate(rows.itertuples(index=False), start=REVIEW_HEADER_ROW + 1):
        texts = []
        for c, (value, (_, _, key)) in enumerate(zip(values, COLUMNS, strict=True), start=1):
            cell = sheet.cell(r, c, _cell_value(value, key in NUMBERS))
            cell._style = copy(styles[c - 1])
            texts.append(value if key in WRAPPED and isinstance(value, str) else "")
        sheet.row_dimensions[r].height = _row_height(texts)
    _validations(book, sheet, len(rows))
    sheet.freeze_panes = sheet.cell(REVIEW_HEADER_ROW + 1, 4)
    landscape(sheet, a3=True, title_rows=f"{REVIEW_HEADER_ROW}:{REVIEW_HEADER_ROW}", numbered=True)
    sheet.auto_filter.ref = f"A{REVIEW_HEADER_ROW}:{get_column_letter(len(COLUMNS))}{REVIEW_HEADER_ROW + len(rows)}"
    with atomic_path(path) as tmp:
        book.save(tmp)
    return path


def _cell_value(value: object, number: bool) -> object:
    """A value as written: blank for nothing; with ``number``, "12" as 12 (not
    "05", whose zero the file gave, nor "12a")."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if number and isinstance(value, str) and value.isascii() and value.isdigit() and not value.startswith("0", 0, -1):
        return int(value)
    return value


def _row_height(texts: list[str], bold: bool = False) -> float:
    """The height (pt) of a row showing ``texts``, one per column, wrapped in their columns' widths."""
    lines = max((lines_needed(text, TEXT_PT, column_width_pt(width), bold)
                 for text, (_, width, _) in zip(texts, COLUMNS, strict=True) if text), default=1)
    return row_height_pt(lines, TEXT_PT)


def _validations(book: Workbook, sheet, n: int) -> None:
    """Drop-down lists of the leaf codes and the user/manager codes for the columns to fill in."""
    lists = book.create_sheet("Danh mục")
    tree = landuse_tree()
    owners = owner_codes()
    for r, code in enumerate(tree.leaves, start=1):
        lists.cell(r, 1, code)
        lists.cell(r, 2, tree.name(code))
    valid = owners[owners["role"].isin(["user", "manager"])]
    for r, (code, name) in enumerate(zip(valid.index, valid["name_vi"], strict=True), start=1):
        lists.cell(r, 4, code)
        lists.cell(r, 5, name)
    lists.sheet_state = "hidden"
    last = REVIEW_HEADER_ROW + max(n, 1)
    keys = [key for _, _, key in COLUMNS]
    for key, ref in (("landuse_fix", f"'Danh mục'!$A$1:$A${len(tree.leaves)}"),
                     ("owner_fix", f"'Danh mục'!$D$1:$D${len(valid)}")):
        column = get_column_letter(keys.index(key) + 1)
        rule = DataValidation(type="list", formula1=ref, allow_blank=True, showErrorMessage=False)
        rule.add(f"{column}{REVIEW_HEADER_ROW + 1}:{column}{last}")
        sheet.add_data_validation(rule)
        for r in range(REVIEW_HEADER_ROW + 1, last + 1):
            sheet[f"{column}{r}"].fill = EDITABLE
