"""Reading raw parcel files as officers have them.

Any OGR vector is read with pyogrio (Arrow where GDAL allows): shapefiles
(also zipped), GeoPackage, GeoJSON, Esri JSON (also when named ``.geojson``),
MapInfo TAB, MicroStation DGN v7 and AutoCAD DXF; arcs as short straight segments.
Byte-oriented formats are read as Latin-1 (every byte kept) and decoded value
by value afterwards (:mod:`pipeline.ingest.text`), so a missing or lying
``.cpg`` cannot garble or crash a read.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from ..errors import InputFileError
from ..io import LAYER_MARK, file_parts, is_geodatabase

#: File endings read as vector data (a folder is searched recursively; an Esri
#: file geodatabase is a folder ending in .gdb).
VECTOR_SUFFIXES = (".shp", ".gpkg", ".gdb", ".geojson", ".json", ".tab", ".dgn", ".dxf", ".kml", ".kmz", ".zip")
#: Files that often hold a commune's parcels but that kiemke cannot open: why (the report says it).
UNREADABLE = {
    ".rar": "a RAR archive, which kiemke cannot open: not read",
    ".7z": "a 7-Zip archive, which kiemke cannot open: not read",
    ".dwg": "an AutoCAD drawing (DWG), which GDAL cannot read: not read",
    ".mdb": "a personal geodatabase (Microsoft Access .mdb), which GDAL here cannot read: not read",
}
#: Datasets whose every layer with geometry is read (those without a land-use column then left).
LAYERED_SUFFIXES = (".gpkg", ".gdb", ".kml", ".kmz")
#: Folders under an input root that hold reference layers, not parcels.
SKIPPED_FOLDERS = ("boundaries",)
#: Drivers whose attribute bytes may be in any 8-bit code page.
BYTE_DRIVERS = {"ESRI Shapefile", "MapInfo File", "DGN"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # DGN v8 files are OLE compound documents


@dataclass(frozen=True)
class Source:
    """One layer to read: the file on disk and what GDAL opens."""

    path: Path  # the real file (for overrides, reports and hashes)
    member: str | None = None  # a shapefile inside a .zip
    layer: str | None = None  # one layer of a GeoPackage that holds several
    lines: tuple[Source, ...] = ()  # files of the boundary lines whose faces this file's label points name

    @property
    def gdal_path(self) -> str:
        return f"/vsizip/{self.path}/{self.member}" if self.member else str(self.path)

    @property
    def label(self) -> str:
        """The file (``a.zip!b.shp`` for a zip's member), then ``|layername=`` and
        the layer as QGIS writes it, for one layer of several."""
        return self.file_label + (f"{LAYER_MARK}{self.layer}" if self.layer is not None else "")

    @property
    def file_label(self) -> str:
        return f"{self.path}!{self.member}" if self.member else str(self.path)

    @property
    def key(self) -> tuple[Path, str | None, str | None]:
        """The same layer, however its path was spelled."""
        return self.path.resolve(), self.member, self.layer


def discover(paths: list[Path], outside: Path | None = None) -> list[Source]:
    """Vector layers named, or found under folders (sorted; zips opened); one
    layer of a GeoPackage named as QGIS names it: ``xa.gpkg|layername=thua``.
    Files under ``outside`` (the work directory: kiemke's own outputs) are left."""
    files: list[Path] = []
    named: list[Source] = []
    for path in map(Path, paths):
        if LAYER_MARK in str(path):
            named.append(_named_layer(str(path)))
        elif path.is_dir() and not is_geodatabase(path):
            files += _files_under(path, VECTOR_SUFFIXES)
        elif path.exists():
            files.append(path)
        else:
            raise InputFileError(f"{path}: no such file or folder. Check the path given to ingest.")
    if outside is not None:
        files = [path for path in files if not path.resolve().is_relative_to(outside.resolve())]
    sources: list[Source] = []
    for path in files:
        files_in = [Source(path, m) for m in _zip_members(path)] if path.suffix.lower() == ".zip" else [Source(path)]
        sources += [layer for source in files_in for layer in _layers_of(source)]
    return named + sources


def unreadable(paths: list[Path], outside: Path | None = None) -> dict[Path, str]:
    """The files under the input folders (or named) that kiemke cannot open
    (:data:`UNREADABLE`), each with why: said, never passed over in silence."""
    found = [p for path in map(Path, paths) if LAYER_MARK not in str(path)
             for p in (_files_under(path, tuple(UNREADABLE)) if path.is_dir() else [path])
             if p.suffix.lower() in UNREADABLE]
    return {p: UNREADABLE[p.suffix.lower()] for p in found
            if outside is None or not p.resolve().is_relative_to(outside.resolve())}


def _files_under(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files (and geodatabase folders) under a folder with one of ``suffixes``,
    sorted, but those in the reference folders (:data:`SKIPPED_FOLDERS`)."""
    return [p for p in sorted(folder.rglob("*"))
            if (p.is_file() or is_geodatabase(p)) and p.suffix.lower() in suffixes
            and not set(SKIPPED_FOLDERS) & set(p.relative_to(folder).parts[:-1])]


def _named_layer(text: str) -> Source:
    """``xa.gpkg|layername=thua``: that layer, when the file holds it."""
    file, layer = text.split(LAYER_MARK, 1)
    if not (Path(file).is_file() or is_geodatabase(Path(file))):
        raise InputFileError(f"{file}: no such file or folder. Check the path given to ingest.")
    layers = [str(name) for name, _ in pyogrio.list_layers(file)]
    if layer not in layers:
        raise InputFileError(f"{file}: no layer named '{layer}'; its layers: {', '.join(layers)}. "
                             "Check the name after |layername= in inventory.toml.")
    return Source(Path(file), layer=layer)


#: The parcels and khoanh layers of kiemke's own GeoPackage (pipeline/package/gpkg.py): the same land twice.
OWN_PACKAGE_LAYERS = frozenset({"thua_dat", "khoanh_dat"})


def _layers_of(source: Source) -> list[Source]:
    """A GeoPackage's (or file geodatabase's) layers with geometry, each a
    source of its own when there are several or the first is not one; any
    other file as it is."""
    if not source.gdal_path.lower().endswith(LAYERED_SUFFIXES):
        return [source]
    try:
        layers = pyogrio.list_layers(source.gdal_path)
    except Exception:  # GDAL raises many types: the read says why, naming the file
        return [source]
    spatial = [str(name) for name, kind in layers if kind is not None]
    if len(spatial) <= 1 and (not spatial or spatial[0] == layers[0][0]):
        return [source]
    if set(spatial) >= OWN_PACKAGE_LAYERS:
        raise InputFileError(
            f"{source.label}: a GeoPackage written by kiemke, whose layers hold the same land more than once "
            f"({', '.join(spatial)}). Name the layer to read: {source.label}{LAYER_MARK}khoanh_dat (that "
            f"inventory's khoanh) or {LAYER_MARK}thua_dat (its parcels).")
    return [replace(source, layer=name) for name in spatial]


def discover_pattern(pattern: str) -> list[Source]:
    """The layers of a file, a folder or a glob pattern (``archive/**/*.shp``)."""
    if any(ch in pattern for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not matches:
            raise InputFileError(f"{pattern}: no file matches this pattern. Check the path in inventory.toml.")
        return discover(matches)
    return discover([Path(pattern)])


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise InputFileError(f"{path}: not a readable zip archive. Zip the shapefile again.") from None
    members = {n for n in names if n.lower().endswith((".shp", ".tab", ".gpkg", ".geojson"))}
    members |= {n.rsplit("/", 1)[0] for n in names if n.lower().endswith(".gdbtable") and ".gdb/" in n.lower()}
    if not members:
        raise InputFileError(f"{path}: the zip holds no .shp/.tab/.gpkg/.gdb/.geojson. Check its content.")
    return sorted(members)


# -------------------------------------------------------------------- reading


def read_source(source: Source) -> tuple[gpd.GeoDataFrame, dict]:
    """Read one layer; the FID becomes ``source_fid``. ``info["latin1"]`` says
    whether text still has to be decoded by :func:`repair_frame_text`;
    ``info["crs_problem"]`` says why a declared CRS was unusable."""
    _refuse_dgn_v8(source)
    _require_shapefile_parts(source)
    restore_shx = _shx_missing(source)
    try:
        with warnings.catch_warnings():  # GDAL knows no WindowsVietnamese table: its bytes are decoded here
            warnings.filterwarnings("ignore", "Cannot find iconv encoding", RuntimeWarning)
            frame, info, latin1, crs_problem = _read_any(source, restore_shx)
    except Exception as exc:  # GDAL raises many types; all mean "cannot read"
        raise InputFileError(
            f"{source.label}: cannot be read as vector data ({exc}). Check the file is complete "
            "(a shapefile needs its .shp, .shx and .dbf) or export it again."
        ) from None
    info["latin1"] = latin1
    info["crs_problem"] = crs_problem
    info["shx_restored"] = restore_shx
    frame, info["merged_columns"] = merge_repeated_columns(frame)
    if "source_fid" in frame.columns:  # e.g. a file written by kiemke itself
        frame = frame.rename(columns={"source_fid": "source_fid_original"})
    return frame.reset_index(names="source_fid"), info


def _read_any(source: Source, restore_shx: bool) -> tuple[gpd.GeoDataFrame, dict, bool, str]:
    """Read a layer in place, or from a copy of a shapefile (its .shx rebuilt, a
    .prj GDAL rejects left out): the frame, the layer's info, whether its text
    is still bytes to decode, why a declared CRS was unusable."""
    try:
        if restore_shx:
            frame, info, crs_problem = _read_copy(source.path, restore_shx=True)
            return frame, info, True, crs_problem
        return _read_in_place(source)
    except pyogrio.errors.CRSError as exc:
        if source.member or source.path.suffix.lower() != ".shp":
            raise
        frame, info, _ = _read_copy(source.path, prj=False, restore_shx=restore_shx)
        return frame, info, True, f"the .prj cannot be read ({exc}); it is ignored"


def _read_in_place(source: Source) -> tuple[gpd.GeoDataFrame, dict, bool, str]:
    """Read a layer where it is: the frame, the layer's info, whether its text
    is still bytes to decode, why a declared CRS was unusable."""
    info = layer_info(source.gdal_path, source.layer)
    latin1 = info.get("driver") in BYTE_DRIVERS
    try:
        frame, crs_problem = _read_layer(source.gdal_path, source.layer, info, latin1)
    except Exception as exc:  # text that is not UTF-8 in a UTF-8 format (a GeoJSON in cp1258 bytes)
        if latin1 or "utf" not in str(exc).lower():
            raise
        frame, crs_problem = _read_layer(source.gdal_path, source.layer, info, True)
        latin1, info["encoding"] = True, "bytes that are not UTF-8, decoded per value"
    return frame, info, latin1, crs_problem


def layer_info(path: str, layer: str | None) -> dict:
    """pyogrio's info on a layer; its field names as Latin-1 where they are
    bytes the declared encoding cannot decode (a TCVN3 name under a .cpg that
    says UTF-8)."""
    try:
        return pyogrio.read_info(path, layer=layer)
    except UnicodeDecodeError:
        return pyogrio.read_info(path, layer=layer, encoding="latin1")


def merge_repeated_columns(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
    """A column listed twice (an Esri JSON field declared twice): one column with
    the first value each row has; returns the names merged."""
    repeated = sorted({c for c in frame.columns[frame.columns.duplicated()] if c != "geometry"})
    if not repeated:
        return frame, []
    merged = {}
    for name in repeated:
        block = frame.loc[:, frame.columns == name]
        merged[name] = block.bfill(axis=1).iloc[:, 0]
    keep = ~frame.columns.duplicated()
    frame = frame.loc[:, keep].copy()
    for name, values in merged.items():
        frame[name] = values
    return frame, repeated


def _read_layer(path: str, layer: str | None, info: dict, latin1: bool) -> tuple[gpd.GeoDataFrame, str]:
    """Read attributes and WKB geometry (Arrow where GDAL allows it), then the
    CRS separately, so that an unreadable .prj costs the CRS, not the data.
    Curved geometries (arcs, a GeoPackage's CurvePolygon or MultiSurface),
    which shapely cannot hold, are read again feature by feature: GDAL draws
    each arc as straight segments of ARC_STEP_DEG (``info["curved"]``: how many)."""
    encoding = "latin1" if latin1 else None
    try:
        if not latin1 or info.get("driver") == "ESRI Shapefile":  # GDAL's Arrow path: shapefiles or UTF-8 only
            raw = latin1 and all(str(name).isascii() for name in info.get("fields", []))
            meta, fids, geometry, data = _read_arrow(path, layer, encoding, validate=not latin1, raw_bytes=raw)
        else:
            meta, fids, geometry, data = _read_features(path, layer, encoding)
    except CurvedGeometry as curved:
        meta, fids, geometry, data = _read_features(path, layer, encoding)
        info["curved"] = curved.count
    crs, problem = None, ""
    if meta.get("crs"):
        try:
            crs = CRS.from_user_input(meta["crs"])
        except ProjCRSError as exc:
            problem = f"the declared CRS cannot be read ({exc}); it is ignored"
    frame = gpd.GeoDataFrame(data, geometry=gpd.array.from_shapely(np.asarray(geometry, dtype=object)), crs=crs)
    frame.index = pd.Index(fids, name="fid")
    return frame, problem


class CurvedGeometry(Exception):
    """A layer holds curved geometries (``count`` features), which shapely cannot read."""

    def __init__(self, count: int):
        super().__init__(f"{count} curved geometries")
        self.count = count


#: Degrees of arc per straight segment where GDAL draws a curve: a segment
#: strays from its arc by 3.8e-5 of the radius (4 mm at 100 m; GDAL's default
#: of 4°: 6 cm) and a disc loses 0.005 % of its area (4°: 0.08 %).
ARC_STEP_DEG = 1


def _read_arrow(path: str, layer: str | None, encoding: str | None, validate: bool,
                raw_bytes: bool = False) -> tuple[dict, np.ndarray, np.ndarray, pd.DataFrame]:
    """GDAL's Arrow read: WKB straight from Arrow to GEOS. ``raw_bytes``: a
    shapefile whose field names are ASCII, its text read as the DBF holds it
    and seen as Latin-1 here, distinct value by distinct value (as GDAL's
    Latin-1 read gives it, in 40 % of the time: GDAL recodes every value)."""
    if raw_bytes:
        meta, table = pyogrio.read_arrow(path, layer=layer, return_fids=True, ENCODING="")  # no recoding
        table = latin1_text(table)
    else:
        meta, table = pyogrio.read_arrow(path, layer=layer, encoding=encoding, return_fids=True)
    if validate:
        table.validate(full=True)  # a UTF-8 format holding other bytes fails here, not later
    geometry_column = meta.get("geometry_name") or "wkb_geometry"
    if geometry_column in table.column_names:
        wkb = table[geometry_column].to_numpy(zero_copy_only=False)
        try:
            geometry = shapely.from_wkb(wkb, on_invalid="ignore")
        except NotImplementedError:  # shapely: "Nonlinear geometry types are not currently supported"
            raise CurvedGeometry(sum(not _is_linear(w) for w in wkb if w is not None)) from None
        table = table.drop_columns([geometry_column])
    else:
        geometry = np.full(table.num_rows, None)
    data = table.to_pandas()
    fids = data.pop("OGC_FID").to_numpy() if "OGC_FID" in data else np.arange(len(data))
    return meta, fids, geometry, data


def latin1_text(table: pa.Table) -> pa.Table:
    """The text columns of ``table``, read as raw bytes, as Latin-1 text (each
    byte one character): decoded once per distinct value."""
    for index, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        as_bytes = table.column(index).cast(pa.large_binary() if pa.types.is_large_string(field.type)
                                            else pa.binary()).combine_chunks()
        coded = pc.dictionary_encode(as_bytes)
        distinct = coded.dictionary.to_pylist()
        if all(value.isascii() for value in distinct):
            continue
        text = pa.array([value.decode("latin-1") for value in distinct], field.type)
        table = table.set_column(index, field, text.take(coded.indices))
    return table


def _read_features(path: str, layer: str | None,
                   encoding: str | None) -> tuple[dict, np.ndarray, np.ndarray, pd.DataFrame]:
    """GDAL's feature-by-feature read, which draws curves as straight segments."""
    with _gdal_option("OGR_ARC_STEPSIZE", str(ARC_STEP_DEG)):
        meta, fids, geometry, fields = pyogrio.raw.read(path, layer=layer, encoding=encoding, return_fids=True)
    geometry = shapely.from_wkb(geometry, on_invalid="ignore") if geometry is not None else np.full(len(fids), None)
    return meta, fids, geometry, pd.DataFrame(dict(zip(meta["fields"], fields, strict=True)))


def _is_linear(wkb: bytes) -> bool:
    """Whether shapely reads this WKB (it reads no curve)."""
    try:
        shapely.from_wkb(wkb, on_invalid="ignore")
    except NotImplementedError:
        return False
    return True


@contextmanager
def _gdal_option(name: str, value: str) -> Iterator[None]:
    """A GDAL config option set for the time of a read, then as it was."""
    before = pyogrio.get_gdal_config_option(name)
    pyogrio.set_gdal_config_options({name: value})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({name: before})


def _read_copy(path: Path, *, prj: bool = True, restore_shx: bool = False) -> tuple[gpd.GeoDataFrame, dict, str]:
    """Read a shapefile from a copy of its parts set aside (the input itself is
    never touched): without its .prj when GDAL rejects it, with its .shx index
    rebuilt from the .shp when it is missing. Returns the frame, the layer's
    info and why a declared CRS was unusable."""
    restore = _gdal_option("SHAPE_RESTORE_SHX", "YES") if restore_shx else nullcontext()
    with tempfile.TemporaryDirectory() as tmp, restore:
        for part in file_parts(path):
            if prj or part.suffix.lower() != ".prj":
                shutil.copy2(part, Path(tmp) / part.name)
        copy = str(Path(tmp) / path.name)
        info = layer_info(copy, None)
        frame, problem = _read_layer(copy, None, info, True)
    return frame, info, problem


def _shx_missing(source: Source) -> bool:
    """A shapefile whose .shx (the index of its shapes) is not beside it."""
    return (not source.member and source.path.suffix.lower() == ".shp"
            and not any(p.suffix.lower() == ".shx" for p in file_parts(source.path)))


def _require_shapefile_parts(source: Source) -> None:
    """A shapefile without its .dbf would lose every attribute: say so."""
    if source.member or source.path.suffix.lower() != ".shp":
        return
    if not any(source.path.with_suffix(s).exists() for s in (".dbf", ".DBF")):
        raise InputFileError(
            f"{source.path}: its .dbf (the attribute table: land-use codes, owners, numbers) is missing. "
            "Copy the .dbf that belongs to this shapefile next to it, or export the layer again.")


def _refuse_dgn_v8(source: Source) -> None:
    if source.member or source.path.suffix.lower() != ".dgn":
        return
    with open(source.path, "rb") as fh:
        if fh.read(4) == _OLE_MAGIC:
            raise InputFileError(
                f"{source.path}: a MicroStation DGN v8 file, which GDAL cannot read without a "
                "proprietary library. In MicroStation, save it as DGN v7 (File > Save As > V7) "
                "or export it to SHP, then run ingest again."
            )
