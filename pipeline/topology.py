"""Vectorised topology of a commune's parcel coverage (shapely 2 / GEOS).

Pure functions on arrays of polygons in metres: overlaps, duplicates, gaps,
slivers, boundary crossings and overlap resolution. The coverage validator
(``coverage_invalid_edges``) picks the few parcels worth a closer look, so a
clean commune of 50 000 parcels costs one pass of GEOS, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely


def meeting_pairs(geoms: np.ndarray, tree: shapely.STRtree, outlines: np.ndarray,
                  test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (geometry, outline) whose boxes meet and for which ``test(outline,
    geometry)`` holds, as ``tree.query(geoms, predicate=...)`` returns them;
    ``outlines`` are the tree's geometries, prepared. The test is made by the
    prepared outlines: a query's predicate prepares the small side (a khoanh,
    a point) and walks a commune's whole outline for each (10 times slower)."""
    k, j = tree.query(geoms)
    holds = test(outlines[j], geoms[k])
    return k[holds], j[holds]


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
    clean coverage. A polygon every edge of which one neighbour shares from
    its other side passes GEOS's check without more (its validator skips such
    a polygon), so GEOS looks only at the others, with the polygons they
    touch: the same answer in about 60 % of the time for communes whose parcels
    tile them (66 ms against 109 a commune of the 1 M-parcel bench province).
    Where most polygons have an edge no neighbour shares (roads and canals left
    out of an export), GEOS looks at all of them at once."""
    geoms = np.asarray(geoms, dtype=object)
    unsure = ~RingSegments.of(geoms).cleanly_shared(len(geoms))
    unsure |= ~np.isin(shapely.get_type_id(geoms), (-1, 3, 6))  # a collection: GEOS decides
    look = np.flatnonzero(unsure)
    if 2 * len(look) > len(geoms):
        return _invalid_edges(geoms)
    suspects = np.zeros(len(geoms), dtype=bool)
    if len(look):  # GEOS checks a polygon against those its envelope meets; only those it touches can fault it
        _, touching = shapely.STRtree(geoms).query(geoms[look], predicate="intersects")
        near = np.union1d(look, touching)
        suspects[look] = _invalid_edges(geoms[near])[np.searchsorted(near, look)]
    return suspects


def _invalid_edges(geoms: np.ndarray) -> np.ndarray:
    """GEOS's coverage validation: whether each polygon has an invalid edge.
    Missing geometries are left out: shapely 2.2 returns the others' results
    moved up past them (the last ones then read as the missing one's)."""
    present = ~shapely.is_missing(geoms)
    edges = shapely.coverage_invalid_edges(geoms[present])
    faulty = np.zeros(len(geoms), dtype=bool)
    faulty[present] = ~(shapely.is_missing(edges) | shapely.is_empty(edges))
    return faulty


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


def polygon_rings(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rings of the polygonal parts of ``geoms``, in the order ``get_parts``
    then ``get_rings`` gives them: one coordinate array, where each ring starts
    (and, last, where the last ends), the geometry each ring belongs to and
    whether it is a hole. From shapely's ragged arrays when every geometry is
    a (multi)polygon: no geometry made for each part and ring."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and np.isin(shapely.get_type_id(geoms), (3, 6)).all():
        kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
        ring_offsets, part_rings = offsets[0], offsets[1]
        part_owner = np.arange(len(geoms)) if kind == shapely.GeometryType.POLYGON \
            else np.repeat(np.arange(len(geoms)), np.diff(offsets[2]))
        ring_part = np.repeat(np.arange(len(part_rings) - 1), np.diff(part_rings))
        hole = np.arange(len(ring_offsets) - 1) != part_rings[ring_part]
        return coords, ring_offsets, part_owner[ring_part], hole
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    rings, ring_of = shapely.get_rings(parts[polygonal], return_index=True)
    coords, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    ring_offsets = np.r_[0, np.cumsum(np.bincount(vertex_ring, minlength=len(rings)))]
    return coords, ring_offsets, part_of[polygonal][ring_of], np.r_[False, ring_of[1:] == ring_of[:-1]][:len(rings)]


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
    crowded: np.ndarray  # segments whose end points two or more others share too
    ring: np.ndarray  # the ring of each segment
    ring_start: np.ndarray  # where each ring starts in coords
    hole: np.ndarray  # whether each ring is a hole

    @classmethod
    def of(cls, geoms: np.ndarray) -> RingSegments:
        coords, ring_offsets, _, hole = rings = polygon_rings(geoms)
        vertex_ring = np.repeat(np.arange(len(hole)), np.diff(ring_offsets))
        start = np.flatnonzero(vertex_ring[1:] == vertex_ring[:-1])
        ring = vertex_ring[start]
        first, second, crowded = _same_segments(coords, start)
        return cls(coords, start, rings[2][ring], first, second, crowded, ring, ring_offsets[:-1], hole)

    def lengths(self) -> np.ndarray:
        step = self.coords[self.start + 1] - self.coords[self.start]
        return np.hypot(step[:, 0], step[:, 1])

    def cleanly_shared(self, count: int) -> np.ndarray:
        """Whether each of ``count`` valid polygons has every edge shared, vertex
        for vertex, by exactly one other polygon lying on its other side (each
        ring's orientation and whether it is a hole tell the side its polygon
        is on): such a polygon meets its neighbours as a coverage needs."""
        a, b = self.start, self.start + 1
        origin = self.coords[self.ring_start[self.ring]]  # each ring's own first vertex: small products
        u, v = self.coords[a] - origin, self.coords[b] - origin
        twice_area = np.bincount(self.ring, weights=u[:, 0] * v[:, 1] - v[:, 0] * u[:, 1], minlength=len(self.hole))
        left = (twice_area > 0) != self.hole  # the polygon's interior lies left of its ring's way round
        i, j = self.first, self.second
        points = np.ascontiguousarray(self.coords, dtype=np.float64).view(np.complex128)[:, 0]
        same_way = points[a[i]] == points[a[j]]
        other_side = np.where(same_way, left[self.ring[i]] != left[self.ring[j]],
                              left[self.ring[i]] == left[self.ring[j]])
        shared = np.zeros(len(a), dtype=bool)
        good = other_side & (self.owner[i] != self.owner[j]) & ~self.crowded[i]
        shared[i[good]] = shared[j[good]] = True
        clean = np.ones(count, dtype=bool)
        clean[self.owner[~shared | (twice_area == 0)[self.ring]]] = False
        return clean


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """Scramble 64-bit keys (multiply by the golden ratio, fold the high bits down)."""
    h = h * _GOLDEN
    return h ^ (h >> np.uint64(31))


def _same_segments(coords: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of segments with the same two end points, either way round,
    and whether each segment shares its key with two or more others (three
    rings along one edge, or a hash collision): sorted on one 64-bit key per
    segment, hashed from its end points' bits (a third less time than a sort
    on four coordinates: 3.5-4.0 s against 5.3-8.3 s for 6.9 M segments);
    each pair found is then checked coordinate by coordinate, so that a hash
    collision can only miss a pair, never make one."""
    with np.errstate(over="ignore"):
        bits = (coords + 0.0).view(np.uint64)  # + 0.0: -0.0 and 0.0 alike
        vertex = _mix(_mix(bits[:, 0]) ^ bits[:, 1])
        h0, h1 = vertex[start], vertex[start + 1]
        key = _mix(np.minimum(h0, h1) ^ _mix(np.maximum(h0, h1)))
    order = np.argsort(key, kind="stable")
    opens = np.r_[True, key[order[1:]] != key[order[:-1]]]
    runs = np.diff(np.r_[np.flatnonzero(opens), len(order)])
    crowded = np.zeros(len(order), dtype=bool)
    crowded[order[np.repeat(runs > 2, runs)]] = True
    candidate = np.flatnonzero(~opens[1:])
    i, j = order[candidate], order[candidate + 1]
    points = np.ascontiguousarray(coords, dtype=np.float64).view(np.complex128)[:, 0]  # one comparison a point
    a0, a1, b0, b1 = points[start[i]], points[start[i] + 1], points[start[j]], points[start[j] + 1]
    same = ((a0 == b0) & (a1 == b1)) | ((a0 == b1) & (a1 == b0))
    return i[same], j[same], crowded


def union_coverage(geoms: np.ndarray, suspected: np.ndarray | None = None):
    """Union of polygons: GEOS coverage union (fast, exact for a clean
    coverage). Where that does not add up, the polygons whose edges do not
    match their neighbours' (``suspected``: :func:`edge_suspects`, found here
    when not given) are overlaid with the coverage union of the others, a few
    polygons against one instead of a full overlay union (0.01 s instead of
    0.17 s for a commune of 5 000 parcels with a few dozen such edges); the full
    overlay union where even that does not add up, and at once for up to
    FEW_TO_OVERLAY polygons without ``suspected`` (finding them costs more)."""
    geoms = np.asarray(geoms, dtype=object)
    merged = _coverage_union(geoms)
    if merged is not None:
        return merged
    if suspected is None and len(geoms) <= FEW_TO_OVERLAY:
        return shapely.union_all(geoms)
    suspects = edge_suspects(geoms) if suspected is None else np.asarray(suspected, dtype=bool)
    clean = _coverage_union(geoms[~suspects]) if suspects.any() and not suspects.all() else None
    if clean is None:
        return shapely.union_all(geoms)
    return _overlaid(clean, geoms[suspects])


#: So few polygons that overlaying them all costs less than finding which need
#: it and overlaying those: the groups a small-scale sheet merges
#: (maps.generalise), across the old commune lines of regrouped khoanh 2.1 ms
#: against 4.0 for 16-31 polygons, 9.0 against 13.3 for 64-127 (the 1 M
#: bench province's units of 2025). With thousands of polygons and a few
#: suspects, looking first wins (0.01 s against 0.17 s, see union_coverage).
FEW_TO_OVERLAY = 128


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


def closed_outline(outline, width_m: float):
    """``outline`` with every gap narrower than ``width_m`` into or through it
    closed and every hole filled: a morphological closing (grown by half the
    width, then shrunk back) with mitred corners, which gives every other
    corner back as it was."""
    if shapely.is_empty(outline):
        return outline
    grown = shapely.buffer(outline, width_m / 2, join_style="mitre")
    shells = shapely.get_exterior_ring(shapely.get_parts(shapely.buffer(grown, -width_m / 2, join_style="mitre")))
    return shapely.union_all(np.r_[shapely.polygons(shells), [outline]])  # never less (a spike the mitre cut)


def polygonal(geom):
    """The polygonal part of a geometry (make_valid can return a collection)."""
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def gaps(geoms: np.ndarray, boundary=None, thresholds: Thresholds = Thresholds(), union=None,
         suspected: np.ndarray | None = None) -> pd.DataFrame:
    """Holes in the coverage (``kind = "inside"``) and, with a commune boundary,
    the parts of the commune no parcel covers (``kind = "boundary"``). With a
    boundary, a hole's part outside it is none: the commune's own hole (another
    commune inside it, a town in a commune) that its parcels leave as they should.
    ``union``: the polygons' union, when the caller has it already;
    ``suspected``: see :func:`union_coverage`."""
    if union is None:
        union = union_coverage(geoms, suspected) if len(geoms) else shapely.Polygon()
    rings, part = shapely.get_rings(shapely.get_parts(union), return_index=True)
    first = np.r_[True, part[1:] != part[:-1]][: len(rings)]  # each part's first ring is its exterior
    holes = shapely.polygons(rings[~first]) if len(rings) else np.array([], dtype=object)
    if boundary is not None and len(holes):
        shapely.prepare(boundary)
        within = shapely.within(holes, boundary)
        clipped = [polygonal(shapely.intersection(hole, boundary)) for hole in holes[~within]]  # no edge or corner
        inside = [*holes[within], *(part for piece in clipped if not piece.is_empty
                                    for part in without_thin_parts(piece, thresholds))]
    else:
        inside = list(holes)
    pieces = [(g, "inside") for g in inside if g.area > thresholds.min_area_m2]
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
