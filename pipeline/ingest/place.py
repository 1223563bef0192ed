"""Communes found from where parcels lie, where the file leaves them blank.

A parcel whose commune code is blank in a file that gives other parcels one
takes the code of the nearest parcel that has one (the file's only code, in one
commune's export). A file that names no commune at all is placed by the run's
commune boundaries (``[boundaries]``), which hold each parcel's inner point. A
file is most often one commune's export; its parcels along the commune line
may fall on either side of a boundary drawn at a smaller scale, so a file that
lies almost wholly in one commune is given to that commune as a whole; a file
that spans several (a district's export) is shared out parcel by parcel.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: Flag of a parcel whose commune code was found from the boundary file.
PLACED_FLAG = "commune found from the boundary file"
#: Flag of a parcel whose blank commune code was taken from its nearest parcel.
NEIGHBOUR_FLAG = "blank commune code: the nearest parcel's"
#: A file with this share of its area in one commune is that commune's export.
ONE_COMMUNE_SHARE = 0.9


def inner_points(geoms: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A point inside each valid polygon, the centroid of any other shape (None where none)."""
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    points = np.full(len(geoms), None, dtype=object)
    inside = present & valid
    points[inside] = shapely.point_on_surface(geoms[inside])
    points[present & ~valid] = shapely.centroid(geoms[present & ~valid])  # never fails on a broken ring
    return points


def communes_holding(points: np.ndarray, communes: gpd.GeoDataFrame) -> np.ndarray:
    """The code of the commune that holds each point ('' where none does, or no point)."""
    codes = np.full(len(points), "", dtype=object)
    present = np.flatnonzero(~shapely.is_missing(points))
    if not len(present) or communes.empty:
        return codes
    tree = shapely.STRtree(np.asarray(communes.geometry.values))
    point_at, commune_at = tree.query(points[present], predicate="intersects")
    first = ~pd.Series(point_at).duplicated().to_numpy()  # a point on a shared line: the first commune
    codes[present[point_at[first]]] = communes["commune_code"].to_numpy(dtype=object)[commune_at[first]]
    return codes


def place_in_communes(geoms: np.ndarray, valid: np.ndarray, area: np.ndarray,
                      communes: gpd.GeoDataFrame) -> tuple[np.ndarray, str | None]:
    """Each feature's commune code from the boundaries ('' where none holds it),
    and the commune the whole file is given to when it lies almost wholly in one."""
    codes = communes_holding(inner_points(geoms, valid), communes)
    found = codes != ""
    if not found.any():
        return codes, None
    weight = area if area.sum() > 0 else np.ones(len(area))
    shares = pd.Series(weight[found]).groupby(codes[found]).sum() / weight.sum()
    if shares.max() >= ONE_COMMUNE_SHARE:
        return np.full(len(geoms), shares.idxmax(), dtype=object), str(shares.idxmax())
    return codes, None


def from_neighbours(geoms: np.ndarray, valid: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The blank codes ('') filled in: the code of the nearest valid shape that
    has one; the commonest code where a feature has no shape to measure from."""
    out = codes.copy()
    blank = codes == ""
    coded = np.flatnonzero(~blank & valid & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    points = inner_points(geoms, valid)
    targets = np.flatnonzero(blank & ~shapely.is_missing(points))
    if len(coded) and len(targets):
        target_at, coded_at = shapely.STRtree(geoms[coded]).query_nearest(points[targets], all_matches=False)
        out[targets[target_at]] = codes[coded[coded_at]]
    out[out == ""] = pd.Series(codes[~blank]).mode().iat[0]
    return out
