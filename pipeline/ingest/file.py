"""One raw file through ingest: read, text repaired, DGN labels, owner
overrides, CRS chosen from the coordinates, then the contract (:mod:`.core`)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from .. import crs as vn
from ..config import Settings, SourceOverride
from .columns import map_columns
from .core import ingest_frame
from .read import Source, label_dgn_shapes, read_source
from .report import FileReport
from .text import declared_encoding, repair_frame_text


def ingest_file(source: Source | Path, settings: Settings, **rules) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame,
                                                                             FileReport]:
    """Read one layer and map it to the contract (``rules``: see :func:`ingest_frame`)."""
    source = source if isinstance(source, Source) else Source(Path(source))
    override = settings.override_for(source.path)
    frame, info = read_source(source)
    codec, declared_by = declared_encoding(source, override.encoding)
    report = FileReport(path=source.label, driver=info.get("driver", ""),
                        encoding=f"{codec} ({declared_by})" if codec else (
                            "bytes decoded per value (no .cpg)" if info["latin1"] else "UTF-8"))
    frame, text = repair_frame_text(frame, latin1=info["latin1"], codec=codec)
    report.repairs.update(text.counts)
    if text.undecoded:
        report.warn(f"{len(text.undecoded)} words could not be decoded and are kept as read: "
                    + ", ".join(sorted(text.undecoded)[:10]))
    if report.driver == "DGN":
        frame, labels = label_dgn_shapes(frame)
        report.repairs["DGN text elements used as parcel labels"] = labels
    if override.owner_type:
        column = map_columns(frame, settings.column_aliases).get("owner_type")
        if column is None:
            frame["DOITUONG"] = override.owner_type
        else:
            blank = frame[column].isna() | frame[column].astype(str).str.strip().eq("")
            frame.loc[blank, column] = override.owner_type
            if blank.any():
                report.repairs[f"blank owner type set to {override.owner_type} (config)"] = int(blank.sum())
    source_crs = choose_crs(frame, info, override, settings, report)
    parcels, quarantine, found = ingest_frame(frame, source_file=source.label, source_crs=source_crs,
                                              settings=settings, commune_code=override.commune_code, **rules)
    return parcels, quarantine, report.merge(found)


def choose_crs(frame: gpd.GeoDataFrame, info: dict, override: SourceOverride, settings: Settings,
               report: FileReport) -> vn.SourceCRS:
    """How to read the file's coordinates: the declared (or configured) CRS when
    they fit it, else the CRS they fit (:func:`pipeline.crs.detect_crs`)."""
    report.crs_declared = frame.crs.to_string() if frame.crs is not None else None
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
    coords = coords[np.isfinite(coords).all(axis=1)]
    if not len(coords):
        return np.array([np.nan] * 4)
    return np.array([*coords.min(axis=0), *coords.max(axis=0)])
