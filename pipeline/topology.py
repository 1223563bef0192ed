"""Vectorised topology of a commune's parcel coverage (shapely 2 / GEOS).

Pure functions on arrays of polygons in metres: overlaps, duplicates, gaps,
slivers, boundary crossings and overlap resolution. The coverage validator
(``coverage_invalid_edges``) picks the few parcels worth a closer look, so a
clean commune of 50 000 parcels costs one pass of GEOS, not a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely


@dataclass(frozen=True)
class Thresholds:
    """What counts as a problem (configurable under ``[qa]``)."""

    min_area_m2: float = 0.1  # overlaps/gaps/crossings smaller than this are coordinate noise
    min_width_m: float = 0.01  # boundary gaps/crossings thinner than this are noise (a datum round trip)
    sliver_max_width_m: float = 0.5  # mean width 2·area/perimeter below this → sliver
    sliver_max_area_m2: float = 1.0  # any parcel smaller than this → sliver
    reconcile_tolerance_pct: float = 0.5  # Σ parcels vs natural area, in % of the natural area


def mean_width(geoms: np.ndarray) -> np.ndarray:
    """Mean width of polygons, 2·area / perimeter (a strip of width w gives ≈ w)."""
    return 2 * shapely.area(geoms) / np.maximum(shapely.length(geoms), 1e-12)


def without_thin_parts(geom, thresholds: Thresholds) -> np.ndarray:
    """The parts of a boundary difference that are real: a morphological opening
    by ``min_width_m`` (mitred, so corners stay sharp) drops the sub-centimetre
    strips that two renderings of one boundary leave, then parts under
    ``min_area_m2`` are dropped."""
    r = thresholds.min_width_m / 2
    opened = shapely.buffer(shapely.buffer(geom, -r, join_style="mitre"), r, join_style="mitre")
    parts = shapely.get_parts(shapely.intersection(opened, geom))
    parts = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
    return parts[shapely.area(parts) > thresholds.min_area_m2]


def _pairs(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = i != j
    pairs = np.unique(np.sort(np.column_stack([i[keep], j[keep]]), axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def edge_suspects(geoms: np.ndarray) -> np.ndarray:
    """Whether each polygon has an edge that overlaps a neighbour or does not
    meet it vertex for vertex (GEOS's coverage validation): the others form a
    clean coverage. One pass of GEOS over the polygons."""
    edges = shapely.coverage_invalid_edges(np.asarray(geoms, dtype=object))
    return ~(shapely.is_missing(edges) | shapely.is_empty(edges))


def overlapping_pairs(geoms: np.ndarray, thresholds: Thresholds = Thresholds(),
                      suspected: np.ndarray | None = None) -> pd.DataFrame:
    """Pairs of parcels whose interiors overlap: ``i, j, area_m2, duplicate, geometry``.

    ``duplicate`` marks pairs whose geometries are equal (a copied parcel).
    ``suspected``: :func:`edge_suspects` of ``geoms``, when the caller has it.
    """
    columns = ["i", "j", "area_m2", "duplicate", "geometry"]
    if len(geoms) < 2:
        return pd.DataFrame(columns=columns)
    suspects = np.flatnonzero(edge_suspects(geoms) if suspected is None else suspected)
    if not len(suspects):
        return pd.DataFrame(columns=columns)
    tree = shapely.STRtree(geoms)
    hit, other = tree.query(geoms[suspects], predicate="intersects")
    i, j = _pairs(suspects[hit], other)
    overlap = shapely.intersection(geoms[i], geoms[j])
    area = shapely.area(overlap)
    keep = area > thresholds.min_area_m2
    return pd.DataFrame({
        "i": i[keep], "j": j[keep], "area_m2": area[keep],
        "duplicate": shapely.equals(geoms[i[keep]], geoms[j[keep]]),
        "geometry": overlap[keep],
    })


@dataclass(frozen=True)
class RingSegments:
    """Every straight segment of the polygons' rings, and the pairs of segments
    with the same two end points (an edge two polygons share, when both carry
    its vertices): one sort, no overlay."""

    coords: np.ndarray  # the rings' vertices (n × 2)
    start: np.ndarray  # segment k runs coords[start[k]] → coords[start[k] + 1]
    owner: np.ndarray  # the polygon (index into the input) of each segment
    first: np.ndarray  # matched segments: first[i] and second[i] have the same end points
    second: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray) -> RingSegments:
        parts, part_of = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
        polygonal = shapely.get_type_id(parts) == 3
        rings, ring_of = shapely.get_rings(parts[polygonal], return_index=True)
        coords, vertex_ring = shapely.get_coordinates(rings, return_index=True)
        start = np.flatnonzero(vertex_ring[1:] == vertex_ring[:-1])
        owner = part_of[polygonal][ring_of[vertex_ring[start]]]
        first, second = _same_segments(coords, start)
        return cls(coords, start, owner, first, second)

    def lengths(self) -> np.ndarray:
        step = self.coords[self.start + 1] - self.coords[self.start]
        return np.hypot(step[:, 0], step[:, 1])


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """Scramble 64-bit keys (multiply by the golden ratio, fold the high bits down)."""
    h = h * _GOLDEN
    return h ^ (h >> np.uint64(31))


def _same_segments(coords: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of segments with the same two end points, either way round:
    sorted on one 64-bit key per segment, hashed from its end points' bits
    (a third less time than a sort on four coordinates: 3.5-4.0 s against
    5.3-8.3 s for 6.9 M segments); each pair found is then
    checked coordinate by coordinate, so that a hash collision can only
    miss a pair, never make one."""
    with np.errstate(over="ignore"):
        bits = (coords + 0.0).view(np.uint64)  # + 0.0: -0.0 and 0.0 alike
        vertex = _mix(_mix(bits[:, 0]) ^ bits[:, 1])
        h0, h1 = vertex[start], vertex[start + 1]
        key = _mix(np.minimum(h0, h1) ^ _mix(np.maximum(h0, h1)))
    order = np.argsort(key, kind="stable")
    candidate = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    i, j = order[candidate], order[candidate + 1]
    a0, a1, b0, b1 = coords[start[i]], coords[start[i] + 1], coords[start[j]], coords[start[j] + 1]
    same = ((a0 == b0).all(axis=1) & (a1 == b1).all(axis=1)) | ((a0 == b1).all(axis=1) & (a1 == b0).all(axis=1))
    return i[same], j[same]


def union_coverage(geoms: np.ndarray, suspected: np.ndarray | None = None):
    """Union of polygons: GEOS coverage union (fast, exact for a clean
    coverage). Where that does not add up, the polygons whose edges do not
    match their neighbours' (``suspected``: :func:`edge_suspects`, found here
    when not given) are overlaid with the coverage union of the others, a few
    polygons against one instead of a full overlay union (0.01 s instead of
    0.17 s for a commune of 5 000 parcels with a few dozen such edges); the full
    overlay union where even that does not add up."""
    geoms = np.asarray(geoms, dtype=object)
    merged = _coverage_union(geoms)
    if merged is not None:
        return merged
    suspects = edge_suspects(geoms) if suspected is None else np.asarray(suspected, dtype=bool)
    clean = _coverage_union(geoms[~suspects]) if suspects.any() and not suspects.all() else None
    if clean is None:
        return shapely.union_all(geoms)
    return _overlaid(clean, geoms[suspects])


def _overlaid(clean, extra: np.ndarray):
    """``clean`` ∪ ``extra``, overlaying only the parts of ``clean`` whose box
    meets one of ``extra``'s: the other parts cannot touch the result."""
    parts = shapely.get_parts(clean)
    near = np.zeros(len(parts), dtype=bool)
    near[shapely.STRtree(parts).query(extra)[1]] = True
    merged = shapely.get_parts(shapely.union_all(np.r_[parts[near], extra]))
    out = np.r_[parts[~near], merged]
    return out[0] if len(out) == 1 else shapely.multipolygons(out)


def _coverage_union(geoms: np.ndarray):
    """GEOS coverage union, or None where GEOS refuses (overlapping polygons),
    loses area, or returns an invalid polygon (edges that nearly meet)."""
    total = float(shapely.area(geoms).sum())
    try:
        merged = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:  # GEOS ≥ 3.12 refuses overlapping inputs
        return None
    if abs(merged.area - total) > 1e-6 * max(total, 1.0) or not shapely.is_valid(merged):
        return None
    return merged


def polygonal(geom):
    """The polygonal part of a geometry (make_valid can return a collection)."""
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def gaps(geoms: np.ndarray, boundary=None, thresholds: Thresholds = Thresholds(), union=None,
         suspected: np.ndarray | None = None) -> pd.DataFrame:
    """Holes in the coverage (``kind = "inside"``) and, with a commune boundary,
    the parts of the commune no parcel covers (``kind = "boundary"``).
    ``union``: the polygons' union, when the caller has it already;
    ``suspected``: see :func:`union_coverage`."""
    if union is None:
        union = union_coverage(geoms, suspected) if len(geoms) else shapely.Polygon()
    rings, part = shapely.get_rings(shapely.get_parts(union), return_index=True)
    first = np.r_[True, part[1:] != part[:-1]][: len(rings)]  # each part's first ring is its exterior
    holes = list(shapely.polygons(rings[~first])) if len(rings) else []
    pieces = [(g, "inside") for g in holes if g.area > thresholds.min_area_m2]
    if boundary is not None:
        uncovered = shapely.difference(boundary, shapely.union_all([union, *holes]))
        pieces += [(g, "boundary") for g in without_thin_parts(uncovered, thresholds)]
    frame = pd.DataFrame(pieces, columns=["geometry", "kind"])
    if frame.empty:
        return frame.assign(area_m2=pd.Series(dtype=float))
    frame["area_m2"] = shapely.area(frame["geometry"].to_numpy())
    return frame


def slivers(geoms: np.ndarray, thresholds: Thresholds = Thresholds()) -> np.ndarray:
    """Indices of thin or tiny parcels (mean width or area under the thresholds)."""
    area = shapely.area(geoms)
    return np.flatnonzero((mean_width(geoms) < thresholds.sliver_max_width_m) | (area < thresholds.sliver_max_area_m2))


def crossings(geoms: np.ndarray, boundary, thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """Parcels reaching outside the commune boundary: ``i``, the part outside, its area."""
    shapely.prepare(boundary)
    candidates = np.flatnonzero(~shapely.within(geoms, boundary))
    outside = np.array([shapely.union_all(without_thin_parts(g, thresholds))
                        for g in shapely.difference(geoms[candidates], boundary)], dtype=object)
    keep = ~shapely.is_empty(outside) if len(outside) else np.zeros(0, dtype=bool)
    return pd.DataFrame({"i": candidates[keep], "area_m2": shapely.area(outside[keep]),
                         "geometry": outside[keep]})


def resolve_overlaps(geoms: np.ndarray, pairs: pd.DataFrame, priority: np.ndarray) -> np.ndarray:
    """Count every overlap once: of two overlapping parcels, the one with the
    lower ``priority`` value (the earlier sheet/parcel number) keeps the shared
    area; the other loses it. A duplicate loses everything (its area is the
    copy's). Returns the new geometries."""
    out = np.array(geoms, dtype=object)
    if pairs.empty:
        return out
    i, j = pairs["i"].to_numpy(int), pairs["j"].to_numpy(int)
    loser = np.where(priority[i] <= priority[j], j, i)
    winner = np.where(loser == j, i, j)
    for lose in np.unique(loser):
        out[lose] = shapely.difference(out[lose], shapely.union_all(out[winner[loser == lose]]))
    return out


def parcel_priority(parcels: pd.DataFrame) -> np.ndarray:
    """Rank of each parcel by sheet then parcel number (numeric where possible),
    then file order: the lower rank keeps an overlap."""
    def numeric(column: str) -> pd.Series:
        return pd.to_numeric(parcels[column], errors="coerce").fillna(np.inf)

    order = pd.DataFrame({"s": numeric("sheet_no"), "p": numeric("parcel_no"), "i": np.arange(len(parcels))})
    ranked = order.sort_values(["s", "p", "i"], kind="stable").index.to_numpy()
    priority = np.empty(len(parcels), dtype=int)
    priority[ranked] = np.arange(len(parcels))
    return priority


def representative_xy(geoms: np.ndarray) -> np.ndarray:
    """A point inside each geometry (for locating problems), as (easting, northing)."""
    return shapely.get_coordinates(shapely.point_on_surface(geoms))
