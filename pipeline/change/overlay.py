"""The exact overlay of two land-use layers and the transitions (chu chuyển)
it gives: every square metre of either layer lands in one cell of the
from → to matrix. Area of a previous unit that the current layer does not
cover goes to the column ``OUTSIDE``, current area outside the previous layer
to the row ``OUTSIDE``, current gaps to the column ``GAP``; so each row sums
to the previous area of its code and each column to the current one.

A raster cross-tabulation (:func:`raster_pairs`) gives the same table from
two rasterised layers, for province-wide runs; it differs from the exact one
by the cells cut by boundaries.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio import features
from rasterio.transform import from_origin

from ..khoanh import resolved_parcels
from ..reference import landuse_tree
from ..topology import Thresholds, mean_width
from .codes import GAP, OUTSIDE, comparison_code

TRANSITION_COLUMNS = ["commune_code", "from_code", "to_code", "area_m2"]
PIECE_COLUMNS = ["commune_code", "previous_id", "khoanh_no", "from_code", "to_code", "from_leaf", "to_leaf",
                 "area_m2", "changed", "geometry"]


def vector_pairs(previous: np.ndarray, current: np.ndarray, *, geometry: bool = False) -> pd.DataFrame:
    """Exact area of every (previous i, current j) intersection, and of each
    polygon's part outside the other layer (the other index is −1).

    Both layers must be free of self-overlaps. With ``geometry`` the pieces are
    kept (the outside parts too).
    """
    previous = np.asarray(previous, dtype=object)
    current = np.asarray(current, dtype=object)
    # a current polygon inside one previous polygon is its own piece: no overlay
    # needed (the usual case when both maps share the cadastral lines)
    inside_i, inside_j = shapely.STRtree(current).query(previous, predicate="covers")
    inside_j, first = np.unique(inside_j, return_index=True)
    inside_i = inside_i[first]
    rest = np.setdiff1d(np.arange(len(current)), inside_j)
    i, k = shapely.STRtree(current[rest]).query(previous, predicate="intersects")
    j = rest[k]
    pieces = shapely.intersection(previous[i], current[j])
    area = shapely.area(pieces)
    keep = area > 0
    i = np.r_[inside_i, i[keep]].astype(np.int64)
    j = np.r_[inside_j, j[keep]].astype(np.int64)
    pieces = np.r_[current[inside_j], pieces[keep]]
    area = np.r_[shapely.area(current[inside_j]), area[keep]]
    prev_left = shapely.area(previous) - np.bincount(i, area, minlength=len(previous))
    cur_left = shapely.area(current) - np.bincount(j, area, minlength=len(current))
    p_out = np.flatnonzero(prev_left > 1e-6)
    c_out = np.flatnonzero(cur_left > 1e-6)
    frame = pd.DataFrame({
        "previous": np.r_[i, p_out, np.full(len(c_out), -1)].astype(np.int64),
        "current": np.r_[j, np.full(len(p_out), -1), c_out].astype(np.int64),
        "area_m2": np.r_[area, prev_left[p_out], cur_left[c_out]],
    })
    if geometry:
        outside_prev = [shapely.difference(previous[k], shapely.union_all(current[j[i == k]])) for k in p_out]
        outside_cur = [shapely.difference(current[k], shapely.union_all(previous[i[j == k]])) for k in c_out]
        frame["geometry"] = np.r_[pieces, np.array(outside_prev + outside_cur, dtype=object)]
    return frame


def raster_pairs(previous: np.ndarray, current: np.ndarray, resolution: float, *,
                 previous_groups: np.ndarray | None = None, current_groups: np.ndarray | None = None) -> pd.DataFrame:
    """The same table as :func:`vector_pairs` from the two layers rasterised on one
    grid of ``resolution`` metres (cell centres decide; areas are cell counts).

    ``*_groups`` map each polygon to a representative polygon of the same uses
    (:func:`share_groups`): cells are then counted per group pair, which keeps
    the tally small however many polygons there are.
    """
    previous, current = np.asarray(previous, dtype=object), np.asarray(current, dtype=object)
    previous_groups = np.arange(len(previous)) if previous_groups is None else np.asarray(previous_groups)
    current_groups = np.arange(len(current)) if current_groups is None else np.asarray(current_groups)
    x0, y0, x1, y1 = shapely.total_bounds(np.r_[previous, current])
    x0, y0 = np.floor(x0 / resolution) * resolution, np.floor(y0 / resolution) * resolution
    shape = (int(np.ceil((y1 - y0) / resolution)), int(np.ceil((x1 - x0) / resolution)))
    transform = from_origin(x0, y0 + shape[0] * resolution, resolution, resolution)

    def burn(geoms: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cells → 0 (outside) or 1 + the rank of the polygon's group; and the groups."""
        representatives, rank = np.unique(groups, return_inverse=True)
        if not len(geoms):
            return np.zeros(shape[0] * shape[1], dtype=np.int64), representatives
        cells = features.rasterize(zip(geoms, (rank + 1).tolist(), strict=True), out_shape=shape, transform=transform,
                                   fill=0, dtype="int32")
        return cells.ravel().astype(np.int64), representatives

    a, prev_rep = burn(previous, previous_groups)
    b, cur_rep = burn(current, current_groups)
    width = len(cur_rep) + 1
    counts = np.bincount(a * width + b, minlength=(len(prev_rep) + 1) * width)
    counts[0] = 0  # outside both layers
    keys = np.flatnonzero(counts)
    prev_of, cur_of = np.r_[[-1], prev_rep], np.r_[[-1], cur_rep]
    return pd.DataFrame({"previous": prev_of[keys // width], "current": cur_of[keys % width],
                         "area_m2": counts[keys] * resolution * resolution})


def share_groups(shares: list[dict[str, float]], *, compound_apart: bool = False) -> np.ndarray:
    """For each unit, the first unit with the same uses and shares: its stand-in
    in a raster tally. ``compound_apart`` keeps every compound unit on its own
    (a previous unit is compared as a whole, see :func:`transitions`)."""
    first: dict[object, int] = {}
    out = np.empty(len(shares), dtype=np.int64)
    for k, uses in enumerate(shares):
        key = k if compound_apart and len(uses) > 1 else tuple(sorted((c, round(v, 9)) for c, v in uses.items()))
        out[k] = first.setdefault(key, k)
    return out


def code_shares(frame: pd.DataFrame, collapse: frozenset[str]) -> list[dict[str, float]]:
    """Per row, the comparison codes it holds and their shares of its area: one
    code of share 1, or one per use of a compound parcel; ``GAP`` if it has no code."""
    out = []
    for landuse, uses in zip(frame["landuse"], frame["uses"], strict=True):
        if not isinstance(landuse, str) or not landuse:
            out.append({GAP: 1.0})
            continue
        parts = json.loads(uses) if isinstance(uses, str) else {landuse: 1.0}
        total = sum(parts.values())
        shares: dict[str, float] = {}
        for code, value in parts.items():
            key = comparison_code(code, collapse)
            shares[key] = shares.get(key, 0.0) + (value / total if total > 0 else 1.0 / len(parts))
        out.append(shares)
    return out


def couple(had: dict[str, float], got: dict[str, float]) -> dict[tuple[str, str], float]:
    """How area moves between the uses a unit had and the uses it has now
    (both in m², equal totals) when nothing says where each use lies: each use
    keeps what it can, the rest moves in proportion. The flows out of each use
    sum to ``had``, the flows into each to ``got``."""
    if len(had) == 1 and len(got) == 1:
        return {(next(iter(had)), next(iter(got))): next(iter(got.values()))}
    kept = {c: min(v, got.get(c, 0.0)) for c, v in had.items()}
    lost = {c: v - kept[c] for c, v in had.items()}
    gained = {c: v - kept.get(c, 0.0) for c, v in got.items()}
    moved = sum(gained.values())
    flows = {(c, c): v for c, v in kept.items() if v > 0}
    if moved > 0:
        scale = sum(lost.values()) / moved  # 1 up to rounding
        for a, x in lost.items():
            for b, y in gained.items():
                if x > 0 and y > 0:
                    flows[(a, b)] = flows.get((a, b), 0.0) + x * y / moved / scale
    return flows


def transitions(pairs: pd.DataFrame, before: list[dict[str, float]], after: list[dict[str, float]]) -> pd.DataFrame:
    """from code × to code → m², from the overlay pairs and each side's use shares.

    Each previous unit is compared as a whole: what it held (its shares of its
    area) against what now lies on it (the current uses of its pieces, summed).
    A unit of one code is exact; the uses of a compound unit have no place
    inside it, so only their amounts are compared (:func:`couple`).
    """
    outside = [{OUTSIDE: 1.0}]
    before, after = before + outside, after + outside  # index −1 → OUTSIDE
    now: dict[int, dict[str, float]] = {}
    columns = (pairs["previous"].to_numpy(), pairs["current"].to_numpy(), pairs["area_m2"].to_numpy())
    for p, c, area in zip(*columns, strict=True):
        uses = now.setdefault(int(p), {})
        for code, share in after[c].items():
            uses[code] = uses.get(code, 0.0) + area * share
    rows: dict[tuple[str, str], float] = {}
    for p, got in now.items():
        total = sum(got.values())
        for key, area in couple({code: total * share for code, share in before[p].items()}, got).items():
            rows[key] = rows.get(key, 0.0) + area
    out = pd.DataFrame([(f, t, a) for (f, t), a in rows.items() if a > 0], columns=["from_code", "to_code", "area_m2"])
    return sort_transitions(out)


def sort_transitions(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the circular's code order, OUTSIDE and GAP last."""
    order = {c: i for i, c in enumerate(landuse_tree().codes)}
    order.update({GAP: len(order), OUTSIDE: len(order) + 1})
    keys = [c for c in ("commune_code", "from_code", "to_code") if c in frame.columns]
    ranked = frame.assign(**{f"_{c}": frame[c].map(order).fillna(-1) if c != "commune_code" else frame[c]
                             for c in keys})
    return ranked.sort_values([f"_{c}" for c in keys]).drop(columns=[f"_{c}" for c in keys]).reset_index(drop=True)


def change_commune(previous: gpd.GeoDataFrame, current: gpd.GeoDataFrame, collapse: frozenset[str], *,
                   thresholds: Thresholds = Thresholds()) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """One commune: the overlay pieces (for the change map) and the transitions.

    Both layers hold ``landuse`` (any code of the tree, compared at the
    ``collapse`` level) and ``uses`` (the m² of each use of a compound code);
    ``current`` also ``khoanh_no``: its units are this inventory's parcels
    (overlaps resolved) and gap khoanh, so a use is placed as precisely as the
    data allows. Pieces thinner than ``thresholds.min_width_m`` (two drawings
    of one boundary) are counted in the transitions but not kept as pieces.
    """
    prev_geoms = np.asarray(previous.geometry.values, dtype=object)
    cur_geoms = np.asarray(current.geometry.values, dtype=object)
    pairs = vector_pairs(prev_geoms, cur_geoms, geometry=True)
    table = transitions(pairs, code_shares(previous, collapse), code_shares(current, collapse))

    prev_leaf = np.r_[previous["landuse"].to_numpy(dtype=object), [OUTSIDE]]
    cur_leaf = np.r_[current["landuse"].fillna(GAP).to_numpy(dtype=object), [OUTSIDE]]
    numbers = np.r_[current["khoanh_no"].to_numpy(dtype=np.int64), [0]]
    ids = np.r_[np.arange(1, len(previous) + 1), [0]]
    p, c = pairs["previous"].to_numpy(), pairs["current"].to_numpy()
    from_code = np.array([comparison_code(x, collapse) for x in prev_leaf[p]], dtype=object)
    to_code = np.array([comparison_code(x, collapse) for x in cur_leaf[c]], dtype=object)
    pieces = gpd.GeoDataFrame({
        "commune_code": "", "previous_id": ids[p], "khoanh_no": numbers[c],
        "from_code": from_code, "to_code": to_code, "from_leaf": prev_leaf[p], "to_leaf": cur_leaf[c],
        "area_m2": pairs["area_m2"].to_numpy(), "changed": from_code != to_code,
    }, geometry=list(pairs["geometry"]), crs=current.crs if current.crs is not None else previous.crs)
    real = (mean_width(pieces.geometry.values) >= thresholds.min_width_m) & (
        pieces["area_m2"].to_numpy() >= thresholds.min_area_m2)
    return pieces[real].reset_index(drop=True), table


def current_units(parcels: gpd.GeoDataFrame, khoanh: gpd.GeoDataFrame,
                  thresholds: Thresholds = Thresholds()) -> gpd.GeoDataFrame:
    """This inventory's units for the overlay: the parcels with overlaps resolved
    (as in their khoanh), with the number of the khoanh each lies in, and the
    gap khoanh. Their areas sum to the khoanh's."""
    resolved = resolved_parcels(parcels, thresholds) if len(parcels) else np.array([], dtype=object)
    alive = shapely.area(resolved) > 0
    geoms = resolved[alive]
    coded = khoanh[khoanh["landuse"].notna()]
    k, hit = shapely.STRtree(shapely.point_on_surface(geoms)).query(coded.geometry.values, predicate="contains")
    number = np.zeros(len(geoms), dtype=np.int64)
    number[hit] = coded["khoanh_no"].to_numpy()[k]
    gaps = khoanh[khoanh["landuse"].isna()]
    return gpd.GeoDataFrame({
        "landuse": np.r_[parcels["landuse"].to_numpy(dtype=object)[alive], gaps["landuse"].to_numpy(dtype=object)],
        "uses": np.r_[parcels["uses"].to_numpy(dtype=object)[alive], gaps["uses"].to_numpy(dtype=object)],
        "khoanh_no": np.r_[number, gaps["khoanh_no"].to_numpy(dtype=np.int64)],
    }, geometry=list(np.r_[geoms, gaps.geometry.values]), crs=khoanh.crs)


def dominant_previous(pieces: pd.DataFrame, previous_owner: pd.Series | None = None) -> pd.DataFrame:
    """Per current khoanh, the previous code and the previous object code each
    covering most of it (the khoanh list's "kỳ trước" columns); ``previous_owner``
    is the previous layer's object code by its ``previous_id`` (1…n)."""
    inside = pieces[(pieces["khoanh_no"] > 0) & (pieces["previous_id"] > 0)]
    owners = previous_owner if previous_owner is not None else pd.Series(dtype=object)
    inside = inside.assign(from_owner=inside["previous_id"].map(owners).fillna(""))
    out = {}
    for column in ("from_leaf", "from_owner"):
        by_code = inside.groupby(["khoanh_no", column], as_index=False)["area_m2"].sum()
        largest = by_code.sort_values("area_m2", ascending=False, kind="stable").drop_duplicates("khoanh_no")
        out[column] = largest.set_index("khoanh_no")[column]
    return pd.DataFrame(out)
