"""The officer's corrections: "mã loại đất đúng" / "đối tượng đúng" written in
the review workbooks (``reports/review/<commune>.xlsx``) or in a
``corrections.csv`` (``[review] corrections``), applied on the next run to
the parcels they name, never to the source files.

A correction names its parcel by source file and FID (the review workbook
carries both) or by sheet and parcel number, and the commune's code when it
gives one (a hand-written CSV: ``05`` is sheet 5). One that names no parcel
read is said in the report. A
code that is not a Circular 27/2018 leaf (nor a compound of leaves), or an
object code that is not a user/manager code, stops the run with the file,
the row and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl.utils.exceptions import InvalidFileException

from ..boundaries import padded_codes
from ..errors import KiemkeError
from ..io import LAYER_MARK, read_json, read_officer_csv, write_csv_if_changed, write_json_if_changed
from ..reference import landuse_tree, owner_codes
from ..vntext import fold
from ..workdir import WorkDir
from .codes import normalise_landuse, resolve_compound
from .text import map_unique

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
#: What makes a correction the one it is (not its row: a row added above it leaves it the same).
IDENTITY = ["source_file", "source_fid", "commune_code", "sheet_no", "parcel_no", "landuse", "owner_type"]
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
        record = {name: cell_text(row[i]) if i < len(row) else "" for i, name in where.items()}
        if not (record.get("landuse") or record.get("owner_type")):
            continue
        record["origin"] = f"{Path(path).name}:{number}"
        records.append(_checked(record, path, number))
    return pd.DataFrame(records, columns=COLUMNS).astype(object).fillna("")


def officer_notes(book: Path) -> dict[tuple[str, str], str]:
    """The notes an officer wrote in a review workbook ("Ghi chú của cán bộ"),
    by the source file and FID of their parcel (none when there is no workbook)."""
    if not book.exists():
        return {}
    header, rows = _rows(book)
    where = {name: i for i, name in _columns(header).items()}
    if not {"note", "source_file", "source_fid"} <= where.keys():
        return {}
    cells = [[cell_text(row[where[name]]) if where[name] < len(row) else ""
              for name in ("source_file", "source_fid", "note")] for _, row in rows]
    return {(file, fid): note for file, fid, note in cells if note}


def parcel_keys(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Each row's parcel as :func:`officer_notes` names it: (source file, FID as text)."""
    return [(file, "" if pd.isna(fid) else cell_text(fid))
            for file, fid in zip(rows["source_file"], rows["source_fid"], strict=True)]


def cell_text(value: object) -> str:
    """A cell as text: blank for nothing, 12 for 12.0 (an FID or number Excel stored as a float)."""
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


def review_books(work: WorkDir) -> list[Path]:
    """The commune review workbooks in ``reports/review/``, not Excel's owner
    file of a workbook open in it (``~$06253.xlsx``, a few bytes of the user's name)."""
    return sorted(p for p in work.review_dir.glob("*.xlsx") if not p.name.startswith("~$"))


def harvest(work: WorkDir, csv: Path | None) -> pd.DataFrame:
    """Every correction: the config's CSV, then each review workbook (a
    workbook the officer changed is read again; the others' corrections come
    from ``reports/review/corrections.csv``, the record of what was applied)."""
    store = work.review_dir / "corrections.csv"
    state_path = work.review_dir / "state.json"
    state = read_json(state_path, {})
    known = pd.read_csv(store, dtype=str, keep_default_na=False) if store.exists() else pd.DataFrame(columns=COLUMNS)
    parts = [read_corrections(csv)] if csv is not None and Path(csv).exists() else []
    for book in review_books(work):
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
    state = read_json(state_path, {})
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


def in_communes(corrections: pd.DataFrame | None, communes: list[str] | None) -> pd.DataFrame | None:
    """The corrections that can name parcels of ``communes`` (all when None, not
    known): those by FID, and those by number that give no commune or one of them."""
    if corrections is None or communes is None or corrections.empty:
        return corrections
    table = _cells(corrections, ["source_fid", "commune_code"])
    named = padded_codes(table["commune_code"], 5)
    elsewhere = table["source_fid"].eq("") & named.notna() & ~named.isin(communes).fillna(False)
    return _kept(corrections, ~elsewhere.to_numpy())


def by_number(corrections: pd.DataFrame | None) -> bool:
    """Whether some of the corrections name their parcels by number, not by FID."""
    return corrections is not None and bool(_cells(corrections, ["source_fid"])["source_fid"].eq("").any())


def holding(corrections: pd.DataFrame | None, numbers: pa.Array | None) -> pd.DataFrame | None:
    """The corrections but those by number that name none of the sheet/parcel
    ``numbers`` (:func:`number_keys`) of a file (all when None, not known)."""
    if corrections is None or numbers is None or corrections.empty:
        return corrections
    table = _cells(corrections, ["source_fid", "sheet_no", "parcel_no"])
    named = pc.is_in(pa.array(number_keys(table["sheet_no"], table["parcel_no"]), pa.string()), value_set=numbers)
    return _kept(corrections, ~(table["source_fid"].eq("").to_numpy() & ~named.to_numpy(zero_copy_only=False)))


def _cells(corrections: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The corrections' ``columns``, a blank where a row gives nothing."""
    return corrections.reindex(columns=columns).astype(object).fillna("")


def _kept(corrections: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame | None:
    picked = corrections[keep]
    return picked.reset_index(drop=True) if len(picked) else None


def fingerprint(corrections: pd.DataFrame | None) -> str:
    """A short hash of the corrections of a file (part of its cache fingerprint)."""
    if corrections is None or corrections.empty:
        return ""
    return hashlib.sha1(corrections.drop(columns="origin").to_csv(index=False).encode()).hexdigest()[:16]


def correction_ids(corrections: pd.DataFrame) -> pd.Series:
    """Each correction's identity, as a file's report lists those it applied."""
    return corrections.reindex(columns=IDENTITY).astype(object).fillna("").astype(str).agg("|".join, axis=1)


def number_key(value: object) -> str:
    """A sheet or parcel number as a file and a correction are compared: ``05`` is
    ``5``, a blank is ``""``; other text upper-cased (``12a``, ``3²``)."""
    text = "" if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) \
        else str(value).strip()
    return str(int(text)) if text.isdecimal() else text.upper()  # not isdigit: int() refuses '²


def number_keys(sheets: np.ndarray | pd.Series, parcels: np.ndarray | pd.Series) -> list[str]:
    """Each row's ``sheet/parcel``, its numbers as :func:`number_key` compares them
    (once per distinct number: a file's rows repeat their sheets)."""
    if len(sheets) != len(parcels):
        raise ValueError(f"{len(sheets)} sheet numbers for {len(parcels)} parcel numbers")
    keyed = [map_unique(numbers, number_key, missing=number_key(None)) for numbers in (sheets, parcels)]
    return list(keyed[0] + "/" + keyed[1])


def apply_corrections(corrections: pd.DataFrame | None, fids: np.ndarray, communes: np.ndarray,
                      sheets: np.ndarray, parcels: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
    """The officer's ``landuse`` and ``owner_type`` for each row (None where none),
    and the identities of the corrections applied.

    By sheet and parcel number, within the commune a correction names; by FID,
    and when the correction also gives the parcel's sheet and number (a review
    workbook's row does), only where the FID still holds that parcel: in a file
    exported again, whose FIDs moved, it follows the numbers instead. The most
    precise wins (FID, then commune, sheet and parcel)."""
    out = pd.DataFrame({"landuse": None, "owner_type": None}, index=range(len(fids)), dtype=object)
    if corrections is None or corrections.empty:
        return out, []
    table = _cells(corrections, COLUMNS).assign(id=correction_ids(corrections))
    number = number_keys(sheets, parcels)
    row_keys = {"number": number, "fid": [str(f) for f in fids],
                "fid_number": [f"{f}|{n}" for f, n in zip(fids, number, strict=True)],
                "commune": [f"{'' if pd.isna(c) else c}/{n}" for c, n in zip(communes, number, strict=True)]}
    numbers = table["sheet_no"].map(number_key) + "/" + table["parcel_no"].map(number_key)
    table_keys = {"number": numbers, "fid": table["source_fid"].astype(str),
                  "fid_number": table["source_fid"].astype(str) + "|" + numbers,
                  "commune": padded_codes(table["commune_code"], 5).fillna("") + "/" + numbers}
    by_number, in_commune = table["source_fid"].eq(""), table["commune_code"].ne("")
    numbered = table["sheet_no"].ne("") & table["parcel_no"].ne("")
    moved = ~by_number & numbered & ~table_keys["fid_number"].isin(set(row_keys["fid_number"]))
    used: set[str] = set()
    for column in ("landuse", "owner_type"):
        given = table[column].ne("")
        for kind, chosen in (("number", given & ((by_number & ~in_commune) | moved)),
                             ("commune", given & by_number & in_commune),
                             ("fid", given & ~by_number & ~numbered), ("fid_number", given & ~by_number & numbered)):
            position = pd.Series(row_keys[kind]).map(dict(zip(table_keys[kind][chosen], np.flatnonzero(chosen),
                                                              strict=True)))
            hit = position.notna().to_numpy()
            if hit.any():
                at = position[hit].astype(int).to_numpy()
                out.loc[hit, column] = table[column].to_numpy()[at]
                used.update(table["id"].to_numpy()[at])
    return out, sorted(used)


def unused(corrections: pd.DataFrame, used: set[str]) -> list[tuple[str, str]]:
    """(origin file, what to tell) for each correction that named no parcel read."""
    missed = _cells(corrections[~correction_ids(corrections).isin(used)], COLUMNS)
    out = []
    for row in missed.itertuples(index=False):
        book, _, number = str(row.origin).rpartition(":")
        named = (f"file/FID {row.source_file or '?'}/{row.source_fid}" if row.source_fid else
                 f"commune/sheet/parcel {row.commune_code or '?'}/{row.sheet_no}/{row.parcel_no}")
        out.append((book, f"row {number} names no parcel read ({named}): check its numbers"))
    return out
