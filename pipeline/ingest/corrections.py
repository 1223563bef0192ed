"""The officer's corrections: "mã loại đất đúng" / "đối tượng đúng" written in
the review workbooks (``reports/review/<commune>.xlsx``) or in a
``corrections.csv`` (``[review] corrections``), applied on the next run to
the parcels they name, never to the source files.

A correction names its parcel by source file and FID (the review workbook
carries both) or by commune, sheet and parcel number (a hand-written CSV). A
code that is not a Circular 27/2018 leaf (nor a compound of leaves), or an
object code that is not a user/manager code, stops the run with the file,
the row and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.utils.exceptions import InvalidFileException

from ..errors import KiemkeError
from ..io import LAYER_MARK, read_officer_csv, write_csv_if_changed, write_json_if_changed
from ..reference import landuse_tree, owner_codes
from ..vntext import fold
from ..workdir import WorkDir
from .codes import normalise_landuse, resolve_compound

log = logging.getLogger(__name__)

#: Correction columns, and the headers (folded) they are read from.
HEADERS = {
    "source_file": ("tepnguon", "sourcefile", "tep"),
    "source_fid": ("fid", "sourcefid"),
    "commune_code": ("maxa", "communecode"),
    "sheet_no": ("to", "soto", "sheetno"),
    "parcel_no": ("thua", "sothua", "parcelno"),
    "landuse": ("maloaidatdung", "landuse", "maloaidat"),
    "owner_type": ("doituongdung", "ownertype", "doituong"),
    "note": ("ghichucuacanbo", "note", "ghichu"),
}
COLUMNS = [*HEADERS, "origin"]
#: The header row of a review workbook (rows above it are its title).
REVIEW_HEADER_ROW = 4


class CorrectionError(KiemkeError):
    """A correction the officer wrote cannot be applied (names the file and the row)."""


def _columns(header: list[object]) -> dict[int, str]:
    wanted = {alias: name for name, aliases in HEADERS.items() for alias in aliases}
    return {i: wanted[fold(str(h))] for i, h in enumerate(header) if h is not None and fold(str(h)) in wanted}


def _rows(path: Path) -> tuple[list[object], list[tuple[int, list[object]]]]:
    """(header, numbered rows) of a corrections CSV or of a review workbook's first sheet."""
    if path.suffix.lower() == ".csv":
        table = read_officer_csv(path)
        return list(table.columns), [(i + 2, list(r)) for i, r in enumerate(table.itertuples(index=False))]
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        raise KiemkeError(f"{path}: not a workbook Excel saved as .xlsx ({exc}). Save it again from Excel as "
                          "'Excel Workbook (*.xlsx)', or move it out of this folder.") from None
    try:
        rows = list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    start = REVIEW_HEADER_ROW - 1 if len(rows) >= REVIEW_HEADER_ROW and _columns(list(rows[REVIEW_HEADER_ROW - 1])) \
        else 0
    return list(rows[start]) if rows else [], [(start + 2 + i, list(r)) for i, r in enumerate(rows[start + 1:])]


def read_corrections(path: Path) -> pd.DataFrame:
    """The filled corrections of one CSV or review workbook, checked."""
    header, rows = _rows(Path(path))
    where = _columns(header)
    if not {"landuse", "owner_type"} & set(where.values()):
        raise CorrectionError(f"{path}: no 'Mã loại đất đúng' or 'Đối tượng đúng' column. Use the review workbook "
                              "kiemke writes, or a CSV with columns tep_nguon, fid (or ma_xa, to, thua), "
                              "ma_loai_dat_dung, doi_tuong_dung.")
    records = []
    for number, row in rows:
        record = {name: _text(row[i]) if i < len(row) else "" for i, name in where.items()}
        if not (record.get("landuse") or record.get("owner_type")):
            continue
        record["origin"] = f"{Path(path).name}:{number}"
        records.append(_checked(record, path, number))
    return pd.DataFrame(records, columns=COLUMNS).fillna("")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _checked(record: dict, path: Path, number: int) -> dict:
    """A correction with its codes normalised; an error naming the row when one is not a code."""
    if record.get("landuse"):
        code, _ = normalise_landuse(record["landuse"])
        resolved = resolve_compound(code)
        if resolved.refusal or not all(landuse_tree().is_leaf(c) for c in resolved.codes):
            raise CorrectionError(
                f"{path} row {number}: land-use code {record['landuse']!r} is not a Circular 27/2018 code to use "
                f"({resolved.refusal or 'a group code'}). Write a leaf code such as LUC, RST or ONT+CLN, "
                "then run again.")
        record["landuse"] = "+".join(resolved.codes)
    if record.get("owner_type"):
        owners = owner_codes()
        valid = set(owners.index[owners["role"].isin(["user", "manager"])])
        code = record["owner_type"].strip().upper()
        if code not in valid:
            raise CorrectionError(f"{path} row {number}: object code {record['owner_type']!r} is not a user/manager "
                                  f"object code; allowed: {', '.join(sorted(valid))}. Correct it, then run again.")
        record["owner_type"] = code
    if not record.get("source_fid") and not (record.get("sheet_no") and record.get("parcel_no")):
        raise CorrectionError(f"{path} row {number}: say which parcel: its source file and FID (as in the review "
                              "workbook) or its sheet and parcel numbers (Tờ, Thửa).")
    return record


def harvest(work: WorkDir, csv: Path | None) -> pd.DataFrame:
    """Every correction: the config's CSV, then each review workbook (a
    workbook the officer changed is read again; the others' corrections come
    from ``reports/review/corrections.csv``, the record of what was applied)."""
    store = work.review_dir / "corrections.csv"
    state_path = work.review_dir / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    known = pd.read_csv(store, dtype=str, keep_default_na=False) if store.exists() else pd.DataFrame(columns=COLUMNS)
    parts = [read_corrections(csv)] if csv is not None and Path(csv).exists() else []
    # not Excel's owner file of a workbook open in it (~$06253.xlsx, a few bytes of the user's name)
    for book in sorted(p for p in work.review_dir.glob("*.xlsx") if not p.name.startswith("~$")):
        if state.get(book.name) == _stamp(book):
            parts.append(known[known["origin"].str.startswith(f"{book.name}:")])
        else:
            parts.append(read_corrections(book))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=COLUMNS)
    for origin, group in out.groupby(out["origin"].str.split(":").str[0]):
        log.info("corrections: %d from %s (applied to the parcels they name; record in %s)", len(group), origin,
                 store)
    write_csv_if_changed(store, out[COLUMNS])
    return out[COLUMNS]


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def record_written(work: WorkDir, books: list[Path]) -> None:
    """Remember the review workbooks as kiemke wrote them (a later change is the officer's)."""
    state_path = work.review_dir / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    state.update({b.name: _stamp(b) for b in books if b.exists()})
    write_json_if_changed(state_path, state)


def for_source(corrections: pd.DataFrame, label: str) -> pd.DataFrame | None:
    """The corrections that can name parcels of one source file: those naming
    the file (its path, or its path's end), and those by sheet/parcel number."""
    if corrections.empty:
        return None
    named = corrections["source_file"].astype(str)
    file = label.split(LAYER_MARK)[0]  # a GeoPackage's layer: what names the file names each of its layers
    mine = named.isin([label, file]) | named.map(
        lambda n: bool(n) and file.replace("\\", "/").endswith("/" + n.lstrip("./")))
    picked = corrections[mine | named.eq("")]
    return picked.reset_index(drop=True) if len(picked) else None


def fingerprint(corrections: pd.DataFrame | None) -> str:
    """A short hash of the corrections of a file (part of its cache fingerprint)."""
    if corrections is None or corrections.empty:
        return ""
    return hashlib.sha1(corrections.drop(columns="origin").to_csv(index=False).encode()).hexdigest()[:16]
