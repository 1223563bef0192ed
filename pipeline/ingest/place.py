"""The commune of each feature of a file: the config's for the file (it wins),
else the file's own code, else found from where the parcels lie, else the
file's name.

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

from collections.abc import Callable
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..topology import meeting_pairs
from .codes import normalise_commune_code

if TYPE_CHECKING:  # the report imports this module's flags
    from .report import FileReport

#: How the code of features no code, config or boundary places starts: the file's name follows.
UNKNOWN_COMMUNE_PREFIX = "file:"

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
    outlines = np.asarray(communes.geometry.values)
    shapely.prepare(outlines)
    point_at, commune_at = meeting_pairs(points[present], shapely.STRtree(outlines), outlines, shapely.intersects)
    order = np.lexsort((commune_at, point_at))  # a point on a shared line: the first commune of the file
    point_at, commune_at = point_at[order], commune_at[order]
    first = ~pd.Series(point_at).duplicated().to_numpy()
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


def feature_communes(values: pd.Series | None, column: str | None, *, given: str | None, unnamed: str,
                     projected: np.ndarray, valid: np.ndarray, area: np.ndarray,
                     communes: Callable[[], gpd.GeoDataFrame] | None,
                     report: FileReport) -> tuple[pd.Series, np.ndarray]:
    """Each feature's commune code (``values``: the file's column of them, or
    None) and the flag of each one inferred (or None): the config's code for
    the file wins, with a warning where the file says otherwise; else the
    file's; a blank one takes the nearest parcel's; a file without any is
    placed by the ``communes`` boundaries (a loader); else it is named
    ``file:<unnamed>``, with a warning."""
    commune = normalise_commune_code(values) if values is not None else pd.Series([""] * len(projected),
                                                                                   dtype="string")
    fallback = normalise_commune_code(pd.Series([given or ""])).iat[0] or (given or "")
    how = np.full(len(commune), None, dtype=object)
    if fallback:
        other = commune.ne("") & commune.ne(fallback)
        if other.any():
            report.warn(f"{int(other.sum())} features say commune {sorted(set(commune[other]))[:3]} in column "
                        f"'{column}'; the config gives {fallback} for this file, which is used")
        return pd.Series([fallback] * len(commune), dtype="string"), how
    blank = commune.eq("").to_numpy()
    if communes is not None and not blank.all():
        _warn_codes_outside(commune, projected, valid, communes(), report)
    if blank.any() and not blank.all():
        how[blank] = NEIGHBOUR_FLAG
        return pd.Series(from_neighbours(projected, valid, commune.to_numpy(dtype=object)), dtype="string"), how
    if blank.any() and communes is not None:
        commune, how = _placed(commune, projected, valid, area, communes(), report)
    if commune.eq("").any():
        fallback = f"{UNKNOWN_COMMUNE_PREFIX}{unnamed}"
        report.warn(f"no commune code known for {int(commune.eq('').sum())} features: named "
                    f"'{fallback}'. Give commune_code in a [[sources]] entry of inventory.toml")
    return commune.mask(commune.eq(""), fallback), how


def _warn_codes_outside(commune: pd.Series, projected: np.ndarray, valid: np.ndarray, communes: gpd.GeoDataFrame,
                        report: FileReport) -> None:
    """Say which commune codes of the file the boundary file does not hold
    (another province's, a typing error), and in which commune those parcels lie."""
    stray = (commune.ne("") & ~commune.isin(set(communes["commune_code"]))).to_numpy()
    if not stray.any():
        return
    lying = communes_holding(inner_points(projected[stray], valid[stray]), communes)
    said = commune.to_numpy(dtype=object)[stray]
    for code in sorted(set(said)):
        where = pd.Series(lying[said == code]).replace("", None).dropna()
        report.warn(f"{int((said == code).sum())} features say commune {code}, which the boundary file does not "
                    "hold" + (f"; they lie in commune {where.mode().iat[0]}" if len(where) else "")
                    + ". Give commune_code in a [[sources]] entry of inventory.toml if that is theirs")


def _placed(commune: pd.Series, projected: np.ndarray, valid: np.ndarray, area: np.ndarray,
            communes: gpd.GeoDataFrame, report: FileReport) -> tuple[pd.Series, np.ndarray]:
    """The blank commune codes filled in from where the features lie, and the flag of those that were."""
    unknown = commune.eq("").to_numpy()
    codes, whole = place_in_communes(projected[unknown], valid[unknown], area[unknown], communes)
    placed = np.zeros(len(commune), dtype=bool)
    placed[np.flatnonzero(unknown)[codes != ""]] = True
    values = commune.to_numpy(dtype=object).copy()
    values[placed] = codes[codes != ""]
    if whole is None and placed.any():
        report.warn(f"the file names no commune; its parcels lie in {len(set(codes) - {''})} communes of the "
                    "boundary file and each is given to the commune it lies in")
    how = np.full(len(commune), None, dtype=object)
    how[placed] = PLACED_FLAG
    return pd.Series(values, dtype="string"), how
