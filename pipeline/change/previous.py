"""The previous inventory's current-use layer, read like any input (encodings,
CRS repair, legacy codes) with two rules of its own: the group codes of the
comparison level are kept, and no user/manager code is required."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..config import Previous, Settings, SourceOverride
from ..errors import InputFileError
from ..ingest import UNKNOWN_COMMUNE_PREFIX, ingest_file
from ..ingest.read import discover_pattern
from ..khoanh import resolved_parcels
from ..topology import Thresholds


def read_previous(previous: Previous, settings: Settings, collapse: frozenset[str]):
    """Read the previous layer's files with the ingest (encodings, CRS repair,
    legacy codes); group codes of the comparison level are kept, the owner is
    not required. Returns (layer, quarantine, file reports)."""
    sources = discover_pattern(previous.path)
    override = SourceOverride("*", commune_code=previous.commune_code, crs=previous.crs, encoding=previous.encoding)
    prev_settings = replace(settings, sources=(override,), input_root=None, previous=None)
    layers, quarantines, reports = [], [], []
    for source in sources:
        layer, quarantine, report = ingest_file(source, prev_settings, accept_codes=collapse, require_owner=False,
                                               infer_owner=False, refine=())
        layers.append(layer)
        quarantines.append(quarantine)
        reports.append(report)
    if sum(r.features_in for r in reports) == 0:
        raise InputFileError(f"{previous.path}: the previous inventory's layer holds no features.")
    for source, layer in zip(sources, layers, strict=True):
        unknown = layer["commune_code"].astype(str).str.startswith(UNKNOWN_COMMUNE_PREFIX)
        if unknown.any():
            raise InputFileError(
                f"{source.label}: {int(unknown.sum())} features of the previous inventory have no commune code "
                "(no MAXA / MA_XA / MaXa column, and no commune of [boundaries] holds them). Set commune_code "
                "under [previous] in inventory.toml when the file holds one commune, give the commune boundaries "
                "under [boundaries] so that kiemke places them, or add the commune code column.")
    layer = gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), geometry="geometry", crs=layers[0].crs)
    quarantine = gpd.GeoDataFrame(pd.concat(quarantines, ignore_index=True), geometry="geometry",
                                  crs=layers[0].crs)
    return layer, quarantine, reports


def without_overlaps(layer: gpd.GeoDataFrame, thresholds: Thresholds) -> tuple[gpd.GeoDataFrame, float]:
    """The layer with every overlap counted once (as the khoanh stage does);
    returns it and the m² removed."""
    geoms = np.asarray(layer.geometry.values, dtype=object)
    resolved = resolved_parcels(layer, thresholds)
    removed = float(shapely.area(geoms).sum() - shapely.area(resolved).sum())
    out = layer.set_geometry(list(resolved), crs=layer.crs)
    out["area_m2"] = shapely.area(resolved)
    return out[out["area_m2"] > 0].reset_index(drop=True), removed
