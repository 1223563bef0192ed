"""One raw layer through ingest: read, text repaired, drawings' labels, CRS chosen
from the coordinates, the contract (:mod:`.core`) with the config's rules and
the officer's corrections, forest groups refined by the forest status map."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .. import crs as vn
from ..boundaries import load_boundaries
from ..config import Boundaries, Settings, SourceOverride
from ..io import file_stamp
from ..paths import shown_path
from .core import Rules, find_columns, ingest_frame
from .linework import DRAWING_DRIVERS, TEXT_COLUMN, close_rings, label_drawing, label_faces
from .read import ARC_STEP_DEG, Source, read_source
from .refine import load_forest_map, refine_by_forest_map, refinements
from .report import FileReport, inference_counts
from .text import declared_encoding, repair_frame_text

#: A column of khoanh numbers, as the inventory's khoanh maps have it (SOKHOANH, So_Khoanh, MAKHOANH).
KHOANH_NUMBER = re.compile(r"(so|ma)_?khoanh", re.IGNORECASE)
#: A year in a file's or a folder's name (HTSD_2014, KiemKe2019).
YEAR_IN_NAME = re.compile(r"(?<!\d)(19[89]\d|20\d\d)(?!\d)")

#: Texts with a land-use code outside every shape or face: parcels the drawing does not close.
_STRAY_TEXTS = ("{count} texts with a land-use code lie in no closed shape: their parcels are missing (the boundary "
                "lines do not close there, or parcels drawn as lines beside closed shapes)")


def file_rules(settings: Settings, override: SourceOverride, corrections: pd.DataFrame | None = None,
               **kinds: object) -> Rules:
    """What the config (and the officer's corrections) say about one file's values;
    ``kinds`` override (the previous inventory's layer keeps group codes, needs no object)."""
    strict = settings.refine.strict
    rules = Rules(commune_code=override.commune_code, refine=refinements(settings, override),
                  infer_owner=not strict, owner_default=override.owner_type, corrections=corrections,
                  communes=commune_boundaries(settings))
    return replace(rules, **kinds) if kinds else rules  # type: ignore[arg-type]


def commune_boundaries(settings: Settings) -> partial[gpd.GeoDataFrame] | None:
    """The run's commune polygons (TM-3) as a loader: read once per process, when
    a file names no commune, and again only when the boundary file changes."""
    spec = settings.boundaries
    if spec is None:
        return None
    return partial(_communes, spec, settings.province.central_meridian_deg, tuple(file_stamp(spec.path)))


@lru_cache(maxsize=2)
def _communes(spec: Boundaries, meridian: float, stamp: tuple) -> gpd.GeoDataFrame:
    del stamp  # in the key only: a changed file is read again
    return load_boundaries(spec, meridian)[["commune_code", "geometry"]]


def ingest_file(source: Source | Path, settings: Settings, *, corrections: pd.DataFrame | None = None,
                **kinds: object) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, FileReport]:
    """Read one layer and map it to the contract; forest groups refined by the
    forest status map when the config gives one (``kinds``: see :func:`file_rules`)."""
    source = source if isinstance(source, Source) else Source(Path(source))
    override = settings.override_for(source.path)
    frame, info = read_source(source)
    codec, declared_by = declared_encoding(source, override.encoding)
    if codec is None and info.get("encoding", "").startswith("bytes that are not UTF-8"):
        codec, declared_by = "cp1258", "assumed: a UTF-8 format holding other bytes, as Vietnamese Windows writes"
    report = FileReport(path=source.label, driver=info.get("driver", ""),
                        encoding=f"{codec} ({declared_by})" if codec else (
                            "bytes decoded per value (no .cpg)" if info["latin1"] else info.get("encoding", "UTF-8")))
    frame, text = repair_frame_text(frame, latin1=info["latin1"], codec=codec)
    if text.codec_found:
        report.encoding = f"{text.codec_found} (found in the values)"
    report.repairs.update(text.counts)
    if text.undecoded:
        report.warn(f"{len(text.undecoded)} words could not be decoded and are kept as read: "
                    + ", ".join(sorted(text.undecoded)[:10]))
    if text.mistyped:
        report.warn(f"{len(text.mistyped)} words in Vietnamese letters are no syllable (mistyped?) and are kept as "
                    "read: " + ", ".join(sorted(text.mistyped)[:10]))
    _note_reading(info, len(frame), report)
    frame = _parcel_shapes(frame, source, settings, report)
    drawing = report.driver in DRAWING_DRIVERS
    # a GeoPackage's roads, labels or boundary beside its parcels, or a file of them beside the parcels' file
    # (a drawing's land use comes from its labels: its shapes without one are parcels to quarantine)
    if (source.layer is not None or (len(frame) and not drawing)) \
            and "landuse" not in find_columns(frame, settings)[0]:
        what = f"layer '{source.layer}'" if source.layer is not None else "the file"
        report.skipped = f"{what} has no land-use column: not parcels, not read ({len(frame)} features)"
        frame = frame.iloc[:0]
    elif (year := earlier_inventory_year(frame, source, settings)) is not None:
        report.skipped = (f"the khoanh map of the {year} inventory (a khoanh-number column, no sheet or parcel "
                          f"number, {year} in its name), not the parcels of {settings.year}: not read "
                          f"({len(frame)} features)")
        frame = frame.iloc[:0]
    source_crs = choose_crs(frame, info, override, settings, report)
    rules = file_rules(settings, override, corrections, **kinds)
    # the file as the officer reads it, under the raw-data folder: the same wherever that folder is moved or copied
    parcels, quarantine, found = ingest_frame(frame, source_file=shown_path(source.label, settings.input_root),
                                              source_crs=source_crs,
                                              settings=settings, rules=rules)
    if settings.forest is not None and rules.refine and len(parcels):
        forest_map = load_forest_map(settings.forest, settings.province.central_meridian_deg)
        parcels, split = refine_by_forest_map(parcels, forest_map)
        if split:
            found.repairs["parcels split by the forest status map"] = split
    found.inferred = inference_counts(parcels)
    return parcels, quarantine, report.merge(found)


def earlier_inventory_year(frame: pd.DataFrame, source: Source, settings: Settings) -> int | None:
    """The year of the earlier inventory a layer is the khoanh map of, left in
    the input folder: a khoanh-number column (SOKHOANH …), no sheet or parcel
    number, another year in its name or its folders under the input folder.
    None for anything else, and for a file a ``[[sources]]`` entry names (an
    officer who means to inventory a commune from its earlier khoanh map)."""
    if any(entry.matches(source.path, settings.input_root) for entry in settings.sources):
        return None
    mapped = find_columns(frame, settings)[0]
    if "sheet_no" in mapped or "parcel_no" in mapped or not any(KHOANH_NUMBER.fullmatch(str(c)) for c in frame):
        return None
    where = shown_path(source.label, settings.input_root) if settings.input_root is not None \
        else "/".join(source.path.parts[-2:])  # its folder and name: not the folders above the data
    years = {int(y) for y in YEAR_IN_NAME.findall(where)} - {settings.year}
    return min(years) if years else None


def _note_reading(info: dict, rows: int, report: FileReport) -> None:
    """What reading the layer repaired, or left, in its report."""
    if info.get("shx_restored"):
        report.repairs["the .shx (index of the shapes) is missing: rebuilt from the .shp in a copy"] = 1
    if info.get("curved"):
        report.repairs[f"curved geometries (arcs) drawn as straight segments of {ARC_STEP_DEG}°"] = info["curved"]
    for name in info.get("merged_columns", []):
        report.repairs[f"column {name!r} listed twice: its values merged into one column"] = 1
    deleted = int(info.get("features", -1)) - rows  # GDAL counts a .dbf's records marked deleted, then skips them
    if report.driver == "ESRI Shapefile" and deleted > 0:
        report.warn(f"{deleted} records marked deleted in the .dbf are not read (deleted in the editing software, "
                    "the file not packed)")


def _parcel_shapes(frame: gpd.GeoDataFrame, source: Source, settings: Settings,
                   report: FileReport) -> gpd.GeoDataFrame:
    """Parcels drawn as lines made polygons: closed lines, a drawing's shapes or
    faces labelled by its texts, the faces of the lines paired with this file
    of labels (:mod:`.linework`)."""
    geoms, closed = close_rings(frame.geometry.values)
    if closed:
        frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
        report.repairs["closed lines read as the parcels they enclose"] = closed
    if report.driver in DRAWING_DRIVERS:
        frame, labels, faces, stray = label_drawing(frame)
        report.repairs[f"{report.driver} text elements used as parcel labels"] = labels
        if faces:
            report.repairs[f"the {report.driver} has no closed shapes: parcels built from the faces its lines "
                           "enclose"] = faces
        if stray:
            report.warn(_STRAY_TEXTS.format(count=stray))
    if source.lines:
        frame = parcels_from_lines(frame, source.lines, settings, report)
    return frame


def parcels_from_lines(labels: gpd.GeoDataFrame, lines: tuple[Source, ...], settings: Settings,
                       report: FileReport) -> gpd.GeoDataFrame:
    """The faces of the boundary lines in ``lines``, each with the attributes of
    this file's label point inside it (:func:`.linework.label_faces`), or with
    the land use and number its texts give (a drawing's texts saved as points)."""
    frames = [read_source(source)[0] for source in lines]
    crs = labels.crs or next((f.crs for f in frames if f.crs is not None), None)
    geoms = np.concatenate([(f.to_crs(crs) if crs and f.crs and f.crs != crs else f).geometry.values for f in frames])
    labels = labels.set_crs(crs, allow_override=True)
    names = ", ".join(Path(s.label).name for s in lines)
    columns = find_columns(labels, settings)[0]
    if TEXT_COLUMN in labels.columns and columns.get("landuse") in (None, TEXT_COLUMN):  # codes and numbers mixed
        drawing = pd.concat([gpd.GeoDataFrame(geometry=geoms, crs=crs), labels], ignore_index=True)
        frame, _, built, stray = label_drawing(drawing)
        report.repairs[f"parcels built from the faces of the boundary lines in {names}, "
                       "labelled by the texts inside them"] = built
        if stray:
            report.warn(_STRAY_TEXTS.format(count=stray))
        return frame
    describe = pd.Series([" ".join(str(v) for v in (parcel, use) if pd.notna(v) and str(v).strip()) or f"FID {fid}"
                          for parcel, use, fid in zip(labels.get(columns.get("parcel_no"), [None] * len(labels)),
                                                      labels[columns["landuse"]], labels["source_fid"], strict=True)])
    shared = tuple(columns[c] for c in ("commune_code", "sheet_no") if c in columns)
    frame, counts = label_faces(geoms, labels, describe, shared)
    report.repairs[f"parcels built from the faces of the boundary lines in {names}, "
                   "each with the label point inside it"] = counts["faces"] - counts["unlabelled"]
    if counts["unlabelled"]:
        report.warn(f"{counts['unlabelled']} faces of the boundary lines hold no label point: "
                    "quarantined without a land-use code")
    if counts["crowded"] or counts["outside"]:
        report.warn(f"{counts['crowded']} faces hold more than one label point and {counts['outside']} label points "
                    "lie in no closed face: the boundary lines are broken there (quarantined)")
    return frame


def choose_crs(frame: gpd.GeoDataFrame, info: dict, override: SourceOverride, settings: Settings,
               report: FileReport) -> vn.SourceCRS:
    """How to read the file's coordinates: the declared (or configured) CRS when
    they fit it, else the CRS they fit (:func:`pipeline.crs.detect_crs`)."""
    report.crs_declared = vn.crs_label(frame.crs) if frame.crs is not None else None
    if info.get("crs_problem"):
        report.warn(info["crs_problem"])
    declared = CRS.from_user_input(override.crs) if override.crs else (
        CRS.from_user_input(frame.crs) if frame.crs is not None else None)
    present = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if present.empty:
        source_crs = vn.SourceCRS(vn.province_crs(settings.province), "no geometry to place")
    else:
        source_crs = vn.detect_crs(_finite_bounds(present.values), declared,
                                   settings.province.central_meridian_deg,
                                   given_by_config=bool(override.crs))
    report.crs_chosen, report.crs_reason = source_crs.describe(), source_crs.reason
    if source_crs.warning:
        report.warn(source_crs.warning)
    return source_crs


def _finite_bounds(geoms: np.ndarray) -> np.ndarray:
    """Bounds of the finite coordinates only (NaN/inf vertices are ignored here
    and quarantined later)."""
    coords = shapely.get_coordinates(geoms)
    if not np.isfinite(coords).all():  # (the copy only then: 3.3 → 0.7 ms a commune, with the columns' own minima)
        coords = coords[np.isfinite(coords).all(axis=1)]
    if not len(coords):
        return np.array([np.nan] * 4)
    x, y = coords[:, 0], coords[:, 1]
    return np.array([x.min(), y.min(), x.max(), y.max()])
