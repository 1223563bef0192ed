"""Putting a commune together from the cache entries of the files that feed
it, as Arrow tables (the geometry stays WKB), with duplicate sheet/parcel
numbers flagged, never dropped."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..io import atomic_path, holds_table, read_commune_table, read_parquet_table, up_to_date, write_table_if_changed
from ..records import aside_name
from ..report import unit_label
from ..units import UNNAMED_PREFIX
from ..workdir import WorkDir
from .cache import IngestCache
from .corrections import officer_notes, parcel_keys
from .place import UNKNOWN_COMMUNE_PREFIX
from .review import review_inputs, review_rows, write_review_workbook
from .values import join_flag

DUPLICATE_NOTE = "duplicate sheet/parcel number in the commune"
NUMBER_COLUMNS = ["sheet_no", "parcel_no", "source_file", "source_fid"]


@dataclass(frozen=True)
class KeptReview:
    """A commune's review workbook kept under ``da_ra_soat/`` before it was
    written again or removed: it held the officer's notes on parcels the
    commune no longer has to review."""

    path: str
    notes: int  # the notes on parcels no longer listed
    listed: int  # the parcels still to review (0: the workbook is gone)


@dataclass(frozen=True)
class Assembled:
    """What putting a commune together did."""

    duplicates: dict[str, int]  # the parcels flagged for a duplicate number, per source file
    written: bool  # its rows were written (not when they came out as they were)
    reviewed: bool  # its review workbook was made again, or removed
    kept: KeptReview | None  # the workbook kept aside first


def assemble_commune(workdir: str, code: str, folders: list[str], rewrite: bool = False) -> Assembled:
    """Task: ``parcels/<code>.parquet`` and ``quarantine/<code>.parquet`` from the
    cache entries of the files that feed the commune, with duplicate sheet/parcel
    numbers flagged (never dropped), then its review workbook
    (:func:`review_commune`). Arrow tables throughout: the geometry stays WKB.
    Rows that come out as they were (a file read again, exported again as it was
    or one of a district's with other communes changed) are left alone with
    their review workbook, so the later stages leave the commune alone, unless
    ``rewrite``: another kiemke wrote them, whose later stages' outputs must be
    made again. Runs on a worker."""
    work = WorkDir(Path(workdir))
    counts: dict[str, int] = {}
    if len(folders) == 1 and _is_whole_file(Path(folders[0]), code):
        written = _link_whole_file(Path(folders[0]), code, work, rewrite)
    else:
        counts, written = _assemble(work, code, folders, rewrite)
    if not written and up_to_date([review_book(work, code)], [work.manifest]):
        return Assembled(counts, written=False, reviewed=False, kept=None)
    return Assembled(counts, written, reviewed=True, kept=review_commune(work, code))


def review_book(work: WorkDir, code: str) -> Path:
    """The commune's review workbook, ``reports/review/<code>.xlsx``."""
    return work.review_dir / f"{safe_name(code)}.xlsx"


def review_commune(work: WorkDir, code: str) -> KeptReview | None:
    """``reports/review/<code>.xlsx`` written when the commune has parcels to
    review, with the officer's notes on their parcels' rows; removed when it
    has none. A workbook holding notes on parcels it would no longer list (their
    file exported again, fixed) is first kept, under its time, in
    ``da_ra_soat/`` beside it, where it is not read as corrections."""
    path = review_book(work, code)
    rows = _review_rows(work, code)
    notes = officer_notes(path)
    keys = [] if rows is None else parcel_keys(rows)
    left = notes.keys() - set(keys)
    kept = _keep_aside(path) if left else None
    if rows is None:
        path.unlink(missing_ok=True)
    else:
        rows["note"] = [notes.get(key, "") for key in keys]
        write_review_workbook(path, rows, commune_title(work, code))
    return None if kept is None else KeptReview(str(kept), len(left), 0 if rows is None else len(rows))


def _keep_aside(path: Path) -> Path:
    """A copy of a review workbook in ``da_ra_soat/``, named after its code and the time it was saved."""
    folder = path.parent / "da_ra_soat"
    folder.mkdir(exist_ok=True)
    kept = aside_name(path, folder)
    shutil.copy2(path, kept)
    return kept


def _review_rows(work: WorkDir, code: str) -> pd.DataFrame | None:
    """The rows of the commune's review workbook (their source files under the
    raw-data folder, as the parcels hold them); None when it has nothing to review."""
    inputs = review_inputs(work.parcels(safe_name(code)), work.quarantine(safe_name(code)))
    if inputs is None:  # nothing to review: the parcels (and their geometry) are not read again
        return None
    rows = review_rows(*inputs)
    if rows.empty:
        return None
    return rows


def commune_title(work: WorkDir, code: str) -> str:
    """``Xã Yên Phúc (06319)`` from the run's boundaries or ``[[communes]]``, or the code alone."""
    return unit_label(safe_name(code), work.read_manifest().commune_names())


def _assemble(work: WorkDir, code: str, folders: list[str], rewrite: bool) -> tuple[dict[str, int], bool]:
    """The commune from several cache entries (or one with duplicate numbers,
    or one of a file of many communes); whether its files were written."""
    parcels = read_commune_table([Path(f) / "parcels.parquet" for f in folders], code)
    numbers = parcels.select(NUMBER_COLUMNS + ["flags"]).to_pandas()
    dup = duplicate_numbers(numbers)
    counts: dict[str, int] = {}
    if dup.any():
        flags = np.array([f if isinstance(f, str) else None for f in numbers["flags"]], dtype=object)
        flags[dup] = [join_flag(f, DUPLICATE_NOTE) for f in flags[dup]]
        parcels = parcels.set_column(parcels.schema.get_field_index("flags"), "flags", pa.array(flags, pa.string()))
        counts = {k: int(v) for k, v in numbers.loc[dup, "source_file"].value_counts().items()}
    # a commune of a file read again (one of a district's) is rewritten only when its rows changed
    written = write_table_if_changed(work.parcels(safe_name(code)), parcels, force=rewrite)
    quarantine = read_commune_table([Path(f) / "quarantine.parquet" for f in folders], code)
    if quarantine.num_rows:
        written = write_table_if_changed(work.quarantine(safe_name(code)), quarantine, force=rewrite) or written
    elif work.quarantine(safe_name(code)).exists():
        work.quarantine(safe_name(code)).unlink()
        written = True
    return counts, written


def duplicate_numbers(numbers: pd.DataFrame) -> np.ndarray:
    """Rows whose sheet/parcel number another source feature of the commune has
    too (the pieces of one feature split by the forest status map are one feature)."""
    has = (numbers["sheet_no"].notna() & numbers["parcel_no"].notna()).to_numpy()
    if not has.any():
        return has
    feature = numbers["source_file"].astype(str) + "#" + numbers["source_fid"].astype(str)
    features = feature[has].groupby([numbers["sheet_no"][has], numbers["parcel_no"][has]]).transform("nunique")
    out = np.zeros(len(numbers), dtype=bool)
    out[np.flatnonzero(has)] = features.to_numpy() > 1
    return out


def _is_whole_file(folder: Path, code: str) -> bool:
    """Whether the commune is exactly the file of this cache entry, with no duplicate numbers."""
    report = IngestCache.read_report(folder)
    numbers = read_parquet_table(folder / "parcels.parquet", NUMBER_COLUMNS).to_pandas()
    return report.communes == [code] and not duplicate_numbers(numbers).any()


def _link_whole_file(folder: Path, code: str, work: WorkDir, rewrite: bool) -> bool:
    """The commune's files are its file's cache entry as it is (hard-linked, so
    nothing is rewritten); one that already holds what the entry holds (the file
    exported again as it was) is left alone, unless ``rewrite``. Whether any was written."""
    written = False
    for name, target in (("parcels", work.parcels(safe_name(code))), ("quarantine", work.quarantine(safe_name(code)))):
        source = folder / f"{name}.parquet"
        if name == "quarantine" and pq.read_metadata(source).num_rows == 0:
            written = written or target.exists()
            target.unlink(missing_ok=True)
        elif rewrite or not target.exists() or not holds_table(target, pq.read_table(source)):
            _link(source, target)
            written = True
    return written


def _link(source: Path, target: Path) -> None:
    """``target`` becomes ``source`` (a hard link, or a copy across file
    systems), atomically, with a fresh modification time for the later stages."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
    os.utime(target)


def safe_name(code: str) -> str:
    return code.replace(UNKNOWN_COMMUNE_PREFIX, UNNAMED_PREFIX).replace("/", "_")
