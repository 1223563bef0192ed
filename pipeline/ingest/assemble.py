"""Putting a commune together from the cache entries of the files that feed
it, as Arrow tables (the geometry stays WKB), with duplicate sheet/parcel
numbers flagged, never dropped."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io import atomic_path
from ..workdir import WorkDir
from .cache import IngestCache
from .core import UNKNOWN_COMMUNE_PREFIX, join_flag

DUPLICATE_NOTE = "duplicate sheet/parcel number in the commune"


def assemble_commune(workdir: str, code: str, folders: list[str]) -> dict[str, int]:
    """Task: ``parcels/<code>.parquet`` and ``quarantine/<code>.parquet`` from the
    cache entries of the files that feed the commune, with duplicate sheet/parcel
    numbers flagged (never dropped). Arrow tables throughout: the geometry stays
    WKB. Returns the flagged parcels per source file. Runs on a worker."""
    work = WorkDir(Path(workdir))
    if len(folders) == 1 and _link_whole_file(Path(folders[0]), code, work):
        return {}
    parcels = _commune_table([Path(f) / "parcels.parquet" for f in folders], code)
    numbers = parcels.select(["sheet_no", "parcel_no", "source_file", "flags"]).to_pandas()
    dup = (numbers["sheet_no"].notna() & numbers["parcel_no"].notna()
           & numbers.duplicated(["sheet_no", "parcel_no"], keep=False)).to_numpy()
    counts: dict[str, int] = {}
    if dup.any():
        flags = numbers["flags"].to_numpy(dtype=object, copy=True)
        flags[dup] = [join_flag(f, DUPLICATE_NOTE) for f in flags[dup]]
        parcels = parcels.set_column(parcels.schema.get_field_index("flags"), "flags", pa.array(flags, pa.string()))
        counts = {k: int(v) for k, v in numbers.loc[dup, "source_file"].value_counts().items()}
    _write_table(work.parcels(safe_name(code)), parcels)
    quarantine = _commune_table([Path(f) / "quarantine.parquet" for f in folders], code)
    if quarantine.num_rows:
        _write_table(work.quarantine(safe_name(code)), quarantine)
    else:
        work.quarantine(safe_name(code)).unlink(missing_ok=True)
    return counts


def _link_whole_file(folder: Path, code: str, work: WorkDir) -> bool:
    """A commune that is exactly one file with no duplicate numbers: its cache
    entry is the commune file as it is (hard-linked, so nothing is rewritten).
    False when that is not the case."""
    report = IngestCache.read_report(folder)
    numbers = pq.read_table(folder / "parcels.parquet", columns=["sheet_no", "parcel_no"]).to_pandas()
    if report.communes != [code] or numbers.dropna().duplicated().any():
        return False
    for name, target in (("parcels", work.parcels(safe_name(code))), ("quarantine", work.quarantine(safe_name(code)))):
        source = folder / f"{name}.parquet"
        if name == "quarantine" and pq.read_metadata(source).num_rows == 0:
            target.unlink(missing_ok=True)
            continue
        _link(source, target)
    return True


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


def _commune_table(paths: list[Path], code: str):
    """The rows of one commune from GeoParquet files, as one Arrow table with
    GeoParquet metadata (geometry types merged; a bbox only when exact)."""
    tables = [pq.read_table(p) for p in paths]
    tables = [t.filter(pc.equal(t["commune_code"], code)) if len(set(t["commune_code"].to_pylist())) > 1
              else t for t in tables]
    geo = [json.loads(t.schema.metadata[b"geo"]) for t in tables]
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column typed differently in two files
        frames = [t.to_pandas() for t in tables]
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True).astype(
            {c: object for f in frames for c in f.columns if f[c].dtype == object}), preserve_index=False)
    merged = geo[0]
    column = merged["primary_column"]
    types = {t for g in geo for t in g["columns"][column]["geometry_types"]}
    merged["columns"][column]["geometry_types"] = sorted(types)
    if len(tables) > 1 or table.num_rows != pq.read_metadata(paths[0]).num_rows:
        merged["columns"][column].pop("bbox", None)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(merged).encode()})


def _write_table(path: Path, table: pa.Table) -> Path:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def safe_name(code: str) -> str:
    return code.replace(UNKNOWN_COMMUNE_PREFIX, "unknown_").replace("/", "_")
