"""Atomic writes: every output goes to a temporary file, then is renamed.

A run killed in the middle of a write leaves the previous file (or none),
never a half-written one.
"""

from __future__ import annotations

import codecs
import glob
import io
import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio
from pyproj import CRS


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def scratch_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty file beside ``path``, named ``.<name>.<random><suffix>``: the
    name :func:`remove_stale_temporaries` knows a killed run's leftovers by."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (ending ``suffix``: ".gpkg" for
    GDAL's GeoPackage driver); rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = scratch_beside(path, suffix)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def json_text(data: Any) -> str:
    """``data`` as kiemke writes a JSON file."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json_text(data))


def read_json(path: Path, missing: Any) -> Any:
    """What ``path`` holds as JSON, or ``missing`` when there is no such file (a record not made yet)."""
    return json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).exists() else missing


def write_text_if_changed(path: Path, text: str) -> Path:
    """Rewrite only when the content differs (keeps the mtime, so later stages stay up to date)."""
    if not Path(path).exists() or Path(path).read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path


def write_json_if_changed(path: Path, data: Any) -> Path:
    return write_text_if_changed(path, json_text(data))


def officer_text(raw: bytes) -> str:
    """Text as Windows editors and spreadsheets save it for an officer, in NFC:
    UTF-8 (with or without a byte-order mark), "Unicode" (UTF-16, with its
    mark) or, as Notepad's "ANSI" and Excel's plain "CSV" save it on a
    Vietnamese Windows, cp1258 (whose tones are characters apart)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1258", errors="replace")
    return unicodedata.normalize("NFC", text)


def read_officer_csv(path: Path) -> pd.DataFrame:
    """A CSV as a spreadsheet saves it for an officer (:func:`officer_text`),
    every value as text ("" where empty); its columns separated by commas,
    semicolons (a Vietnamese Windows' list separator) or tabs, whichever its
    header uses."""
    text = officer_text(Path(path).read_bytes())
    header = text.split("\n", 1)[0]
    separator = max([",", ";", "\t"], key=header.count)
    return pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """CSV in UTF-8 with a BOM, so Excel on a Vietnamese Windows shows diacritics."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
    return path


def write_csv_if_changed(path: Path, frame: pd.DataFrame) -> Path:
    """:func:`write_csv`, only when the content differs (keeps the mtime)."""
    return write_text_if_changed(path, "\ufeff" + frame.to_csv(index=False, lineterminator="\n"))


def write_geoparquet(path: Path, frame: gpd.GeoDataFrame, scratch: bool = False) -> Path:
    """A frame as a zstd GeoParquet file; ``scratch``: a file read back once
    soon (LZ4, no dictionaries or statistics: written and read in about half the
    time, 1.3 times larger)."""
    with atomic_path(path) as tmp:
        if len(frame):
            frame.to_parquet(tmp, **(_SCRATCH_PARQUET if scratch else _GEOPARQUET))
        else:
            tmp.write_bytes(_empty_geoparquet(frame))
    return path


_GEOPARQUET: dict[str, Any] = {"index": False, "compression": "zstd", "write_covering_bbox": False}
_SCRATCH_PARQUET = {**_GEOPARQUET, "compression": "lz4", "use_dictionary": False, "write_statistics": False}
_EMPTY_FILES: dict[tuple, bytes] = {}


def _empty_geoparquet(frame: gpd.GeoDataFrame) -> bytes:
    """The bytes geopandas writes for an empty frame, made once per layout in
    a process: most QA layers and quarantines are empty, and geopandas takes
    2-9 ms to write one (a QA layer's file: 2.2 ms, 0.4 ms from the bytes)."""
    key = (tuple(map(str, frame.columns)), tuple(map(str, frame.dtypes)), frame.geometry.name,
           frame.crs.srs if frame.crs is not None else None)
    if key not in _EMPTY_FILES:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, **_GEOPARQUET)
        _EMPTY_FILES[key] = buffer.getvalue()
    return _EMPTY_FILES[key]


def read_geoparquet(path: Path, columns: list[str] | None = None) -> gpd.GeoDataFrame:
    return gpd.read_parquet(path, columns=columns)


def geoparquet_bounds(path: Path) -> np.ndarray:
    """The bounding box (x0, y0, x1, y1) a GeoParquet file's metadata records for its geometry (NaN when empty)."""
    return recorded_bounds(pq.read_schema(path))


def union_bounds(boxes) -> tuple[float, float, float, float] | None:
    """The extent of boxes (minx, miny, maxx, maxy) together, the empty ones
    (None or NaN) left out; None when all are."""
    kept = [b for b in boxes if b is not None and not np.isnan(np.asarray(b, dtype=float)).any()]
    if not kept:
        return None
    stacked = np.array(kept, dtype=float)
    return (*stacked[:, :2].min(axis=0).tolist(), *stacked[:, 2:].max(axis=0).tolist())


def files_bounds(paths) -> tuple[float, float, float, float]:
    """The extent of GeoParquet files together, as their metadata records it
    (an empty file's left out; NaN when every file is empty)."""
    return union_bounds(geoparquet_bounds(Path(p)) for p in paths) or (np.nan,) * 4


def recorded_bounds(schema: pa.Schema) -> np.ndarray:
    """The bounding box a GeoParquet schema's metadata records for its geometry (NaN when it records none)."""
    geo = json.loads((schema.metadata or {}).get(b"geo", b'{"primary_column": "geometry", "columns": {}}'))
    return np.array(geo["columns"].get(geo["primary_column"], {}).get("bbox") or [np.nan] * 4, dtype=float)


def read_parquet_table(path: Path | str, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file as ``pq.read_table`` reads it (its metadata, the columns
    in the order asked, an absent column an error), without its dataset
    machinery: 0.4 ms a small file, not 1.1–1.5 (0.3 s of 400 files' codes)."""
    with pq.ParquetFile(path) as file:
        if columns is not None and not set(columns) <= set(file.schema_arrow.names):
            return pq.read_table(path, columns=columns)  # its error (ParquetFile.read would leave the column out)
        return file.read(columns=columns)


def read_geoparquets(paths, crs=None, columns: list[str] | None = None) -> gpd.GeoDataFrame:
    """Several GeoParquet files (e.g. one per commune) as one frame (``columns``
    only, when given), as geopandas reads each and pandas concatenates them:
    one Arrow table made pandas and shapely once (a frame per file cost ~5 ms
    each in geopandas' metadata, CRS and conversions: 1.1 s for the khoanh of
    200 communes)."""
    tables = [read_parquet_table(p, columns) for p in paths]
    geo = json.loads((tables[0].schema.metadata or {}).get(b"geo", b"{}")) if tables else {}
    table = None
    if tables and {c.get("encoding", "WKB") for c in geo.get("columns", {}).values()} == {"WKB"}:
        with suppress(pa.ArrowTypeError, pa.ArrowInvalid):  # types Arrow cannot unite
            table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="permissive")
    if table is None:  # no file, shapes stored otherwise, types apart: frame by frame
        frame = pd.concat([gpd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)
        return gpd.GeoDataFrame(frame, crs=crs) if crs is not None else gpd.GeoDataFrame(frame)
    shapes = [name for name in table.column_names if name in geo["columns"]]
    attributes = table.drop_columns(shapes).to_pandas()
    if crs is None:  # the first file's, as geopandas reads it (a file that records none is in OGC:CRS84)
        recorded = geo["columns"][geo["primary_column"]].get("crs", "OGC:CRS84")
        crs = CRS.from_user_input(recorded) if recorded is not None else None
    data = {name: gpd.GeoSeries.from_wkb(table[name].to_numpy(zero_copy_only=False), crs=crs)
            if name in shapes else attributes[name] for name in table.column_names}
    return gpd.GeoDataFrame(data, geometry=geo["primary_column"] if geo["primary_column"] in shapes else None)


def read_attributes(paths) -> pd.DataFrame:
    """Every column but the shapes of several GeoParquet files as one frame,
    as :func:`read_geoparquets` gives them, without reading a shape."""
    tables = []
    for path in paths:
        file = pq.ParquetFile(path)
        shapes = json.loads((file.schema_arrow.metadata or {}).get(b"geo", b"{}")).get("columns", {})
        tables.append(file.read(columns=[n for n in file.schema_arrow.names if n not in shapes])
                      .replace_schema_metadata(None))
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas() if tables else pd.DataFrame()
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # types Arrow cannot unite: as pandas concatenates them
        return pd.concat([table.to_pandas() for table in tables], ignore_index=True)


def read_columns(paths: list[Path], columns: list[str]) -> pd.DataFrame:
    """Some attribute columns of several (Geo)Parquet files as one frame, without
    geometry: one Arrow table made pandas once (a frame per file, then a concat,
    took twice the time: 1.2 s for the land-use codes of 400 files), types
    promoted across files (a column empty in one file stays text)."""
    tables = [read_parquet_table(p, columns) for p in paths]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def up_to_date(outputs: list[Path], inputs: list[Path]) -> bool:
    """Like make: every output exists and none is older than any input."""
    try:
        oldest = min(Path(p).stat().st_mtime_ns for p in outputs)
    except (FileNotFoundError, ValueError):
        return False
    newest = max((Path(p).stat().st_mtime_ns for p in inputs if Path(p).exists()), default=0)
    return oldest >= newest


def forget_versions_beside(folder: Path) -> list[Path]:
    """Remove the folders beside ``folder`` (what other versions of kiemke, or
    other grids, kept in ``<parent>/<key>``): they are never read. Returns those removed."""
    others = [p for p in folder.parent.glob("*") if p.is_dir() and p != folder]
    for other in others:
        shutil.rmtree(other, ignore_errors=True)
    return others


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete the temporary files and folders a killed run left behind (``.<name>.<random>.tmp``)."""
    removed = []
    for path in list(Path(root).rglob(".*")):
        if path.is_dir() and path.name.endswith(".tmp"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file() and (path.name.endswith(".tmp") or path.name.endswith(".gpkg")):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


#: A run writes about this many times the size of its input files (the sample:
#: 95 MB from 10 MB; a province of 1 M parcels: 3.4 GB from 405 MB).
OUTPUT_PER_INPUT = 10


def folder_bytes(folder: Path, leave_out: Path | None = None) -> int:
    """The size of the files under ``folder``, those under ``leave_out`` not counted."""
    skip = os.path.realpath(leave_out) if leave_out is not None else None
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip]
        for name in files:
            with suppress(OSError):  # a file removed meanwhile, a broken link
                total += os.stat(os.path.join(root, name)).st_size
    return total


def free_bytes(folder: Path) -> int:
    """The space free on the disk that holds ``folder`` (or will: its nearest existing parent's)."""
    folder = Path(folder)
    return shutil.disk_usage(next(p for p in (folder, *folder.absolute().parents) if p.exists())).free


def disk_shortfall(workdir: Path, inputs: Path) -> str | None:
    """What to say when the disk of ``workdir`` has less space free than a run
    of ``inputs`` is likely to write there (what it holds already counted)."""
    workdir = Path(workdir)
    free = free_bytes(workdir)
    wanted = OUTPUT_PER_INPUT * folder_bytes(inputs, leave_out=workdir)
    if free < wanted and workdir.exists():  # only then is the work directory's own size worth a walk
        wanted -= folder_bytes(workdir)
    if free >= wanted:
        return None
    return (f"the disk holding {workdir} has {free / 2**20:.0f} MB free, and this run may write about "
            f"{wanted / 2**20:.0f} MB more there ({OUTPUT_PER_INPUT} times its input, less what the work "
            "directory holds)")


def read_commune_table(paths: list[Path], code: str) -> pa.Table:
    """The rows of one commune from GeoParquet files, as one Arrow table with
    GeoParquet metadata (geometry types merged; a bbox only when exact)."""
    tables = [read_parquet_table(p) for p in paths]
    tables = [t.filter(pc.equal(t["commune_code"], code)) if pc.count_distinct(t["commune_code"]).as_py() > 1
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


def write_table(path: Path, table: pa.Table) -> Path:
    """An Arrow table (with its GeoParquet metadata) as a zstd Parquet file."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def write_table_if_changed(path: Path, table: pa.Table, force: bool = False) -> bool:
    """:func:`write_table` unless the file already holds the same table (its
    rows, columns and metadata), so that what reads it stays current (always
    when ``force``); whether it was written."""
    if not force and holds_table(path, table):
        return False
    write_table(path, table)
    return True


def holds_table(path: Path, table: pa.Table) -> bool:
    """Whether the Parquet file at ``path`` is there and holds ``table``: its
    rows, columns and metadata."""
    return path.exists() and pq.read_table(path).equals(table, check_metadata=True)


#: How QGIS names one layer of a file of several (``xa.gpkg|layername=thua_dat``).
LAYER_MARK = "|layername="


def layer_file(path: str | Path) -> Path:
    """The file of a path that may name one of its layers (``xa.gpkg|layername=thua``)."""
    return Path(str(path).split(LAYER_MARK, 1)[0])


def is_geodatabase(path: Path) -> bool:
    """An Esri file geodatabase: a folder named ``*.gdb`` (of ``.gdbtable`` files)."""
    return path.suffix.lower() == ".gdb" and path.is_dir()


def file_parts(path: Path) -> list[Path]:
    """A file and those beside it that share its name (a shapefile's .shx, .dbf,
    .prj, .cpg …), sorted; a name with ``[`` or ``*`` in it too."""
    return sorted(path.parent.glob(glob.escape(path.stem) + ".*"))


def file_stamp(path: str | Path) -> list[tuple[str, int, int]]:
    """Name, size and modification time of each part of a file, to see it
    change: all of a shapefile's or a MapInfo table's (whose edits change its
    .dat and .map, not its .tab), a GeoPackage's write-ahead log, a
    geodatabase's tables; nothing for a file that is not there."""
    file = layer_file(path)
    parts = sorted(file.iterdir()) if is_geodatabase(file) else file_parts(file)
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in parts if p.exists()]


def holds_fields(path: str, layer: str | None, fields: Iterable[str]) -> bool:
    """Whether a layer of a file (GDAL's path) has every one of ``fields``."""
    return set(fields) <= set(pyogrio.read_info(path, layer=layer)["fields"])


def read_layer_holding(path: str | Path, fields: Iterable[str]) -> gpd.GeoDataFrame:
    """A reference layer (boundaries, new units): the one the path names as QGIS
    names it, else the first of the file's layers with geometry that holds
    ``fields`` (a GeoPackage of district and commune lines), else its first."""
    file, _, layer = str(path).partition(LAYER_MARK)
    if not layer:
        spatial = [str(name) for name, kind in pyogrio.list_layers(file) if kind is not None]
        holding = [name for name in spatial if holds_fields(file, name, fields)]
        layer = (holding or spatial)[0] if len(spatial) > 1 else ""
    return pyogrio.read_dataframe(file, layer=layer or None)

