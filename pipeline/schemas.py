"""Data contracts at the stage boundaries.

``validate_*`` collects every problem and raises one :class:`SchemaError`
naming the stage, what is wrong and the columns present.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import SchemaError
from .reference import landuse_tree

#: The parcel contract (DESIGN.md), after ingest + reproject, in this order.
PARCEL_COLUMNS = (
    "commune_code", "sheet_no", "parcel_no", "landuse", "landuse_raw", "refined", "owner_type", "owner_source",
    "owner_rule", "owner_name", "area_recorded", "area_m2", "uses", "source_file", "source_fid", "flags",
)
AREAS_COLUMNS = ("commune_code", "landuse", "owner_type", "area_m2")
#: A 5-digit mã ĐVHC, or the file's name when no code is known (DESIGN.md).
COMMUNE_CODE_PATTERN = r"\d{5}|file:.+"


def _raise(stage: str, problems: list[str], columns) -> None:
    if problems:
        raise SchemaError(
            f"{stage}: " + "; ".join(problems) + f". Columns present: {list(columns)}."
        )


def validate_parcels(parcels: gpd.GeoDataFrame, *, crs=None) -> gpd.GeoDataFrame:
    """Check the parcel contract: columns, 5-digit commune codes, leaf land-use
    codes, polygonal non-empty geometry in the province CRS."""
    problems = []
    missing = [c for c in PARCEL_COLUMNS if c not in parcels.columns]
    if missing:
        problems.append(f"missing columns {missing}")
    if "commune_code" in parcels and not parcels["commune_code"].astype(str).str.fullmatch(
        COMMUNE_CODE_PATTERN
    ).all():
        problems.append("commune_code must be 5 digits (or 'file:<name>' when none is known)")
    if "landuse" in parcels:
        leaves = set(landuse_tree().leaves)
        bad = sorted(set(pd.unique(parcels["landuse"])) - leaves)
        if bad:
            problems.append(f"landuse codes not leaves of the Circular 27/2018 tree: {bad[:10]}")
    geoms = parcels.geometry.values
    if len(geoms) and not np.isin(shapely.get_type_id(geoms), [3, 6]).all():
        problems.append("geometry must be Polygon or MultiPolygon")
    if len(geoms) and shapely.is_empty(geoms).any():
        problems.append("empty geometries")
    if crs is not None and parcels.crs != crs:
        problems.append(f"CRS is {parcels.crs}, expected {crs}")
    _raise("parcels", problems, parcels.columns)
    return parcels


def validate_areas(areas: pd.DataFrame) -> pd.DataFrame:
    """Check ``stats/areas.csv``: columns, leaf codes, non-negative areas."""
    problems = []
    missing = [c for c in AREAS_COLUMNS if c not in areas.columns]
    if missing:
        problems.append(f"missing columns {missing}")
    elif (areas["area_m2"] < 0).any():
        problems.append("negative areas")
    _raise("areas", problems, areas.columns)
    return areas
