"""Generalising khoanh for a small-scale sheet (district, province): a khoanh
smaller than the minimum mapped size joins the neighbour it shares the longest
boundary with, on the sheet only (the forms keep every m²). Roads, canals and
rivers (drawn along their line) and the khoanh that carry a point symbol
(UBND, schools, health stations …) are kept as they are, and absorb nothing.
Then the lines between khoanh are simplified to the sheet's scale (a wiggle
whose triangle is under 0.1 × 0.1 mm on paper goes), all khoanh at once so
that neighbours keep one shared line; the commune's outline is kept as it is.

The minimum mapped size is the rule of practice repeated in Circular 08/2024
Art. 18: 16 mm² on paper at 1:1 000–1:10 000, 9 mm² at 1:25 000–1:100 000.
No library does this merge (GRASS ``v.clean rmarea`` is the closest, outside
Python), so it is written here: shared edges matched by their end points (an
overlay only where a ring is not all shared edges), groups merged by GEOS
coverage union. The simplification is GEOS's (coverage clean, then
Visvalingam–Whyatt coverage simplification).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..report import vn_number
from ..topology import RingSegments, union_coverage
from .labels import linear_codes, point_codes

ROUNDS = 4  # a khoanh merged into a small neighbour may still be small: merge again
TOUCH_M = 0.001  # a stretch of ring within this of a neighbour's runs along it (float noise)
SIMPLIFY_MM = 0.1  # on paper, the square root of the triangles dropped; a 1 M province sheet: 24 MB → 9 MB of PDF


def minimum_mapped_m2(scale: int) -> float:
    """The smallest khoanh a sheet at 1:``scale`` shows, in m² on the ground."""
    mm2 = 16.0 if scale <= 10_000 else 9.0
    return mm2 * (scale / 1000.0) ** 2


def _loose_runs(segments: RingSegments) -> tuple[np.ndarray, np.ndarray]:
    """The stretches of ring no other segment matches, as lines, and the
    khoanh each belongs to: where a neighbour's vertices do not fall on the
    edge (or on the sheet's rim), the only places an overlay has to look."""
    loose = np.ones(len(segments.start), dtype=bool)
    loose[segments.first] = loose[segments.second] = False
    seg = np.flatnonzero(loose)
    if not len(seg):
        return np.array([], dtype=object), np.array([], dtype=int)
    begin = segments.start[seg]
    opens = np.r_[True, begin[1:] != begin[:-1] + 1]
    run = np.cumsum(opens) - 1
    ends = np.r_[opens[1:], True]
    vertex, of_run = np.r_[begin, begin[ends] + 1], np.r_[run, run[ends]]
    order = np.lexsort((vertex, of_run))
    lines = shapely.linestrings(segments.coords[vertex[order]], indices=of_run[order])
    return lines, segments.owner[seg][opens]


def _shared_by_overlay(segments: RingSegments, unsure: np.ndarray) -> pd.DataFrame:
    """The boundary length each ``unsure`` khoanh shares with each neighbour
    along the stretches no segment matched: overlay of those stretches only,
    each with a hair-thin band around the neighbour's (two lines along one
    border never meet exactly in floating point)."""
    lines, owner = _loose_runs(segments)
    mine = np.flatnonzero(unsure[owner])
    pairs = shapely.STRtree(lines).query(lines[mine], predicate="intersects")
    i, j = mine[pairs[0]], pairs[1]
    i, j = i[owner[i] != owner[j]], j[owner[i] != owner[j]]
    near = np.unique(j)
    band = np.empty(len(lines), dtype=object)
    band[near] = shapely.buffer(lines[near], TOUCH_M, quad_segs=1, cap_style="flat")
    shared = shapely.length(shapely.intersection(lines[i], band[j]))
    return pd.DataFrame({"a": owner[i], "b": owner[j], "shared": shared})


def _summed(a: np.ndarray, b: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lengths of each (``a``, ``b``) pair added up, one row a pair, in
    the order of ``a`` then ``b`` (one sort of a 64-bit key, no group-by)."""
    width = int(max(a.max(initial=0), b.max(initial=0))) + 1
    pairs, row = np.unique(a.astype(np.int64) * width + b, return_inverse=True)
    return pairs // width, pairs % width, np.bincount(row, length, minlength=len(pairs))


def _shared(geoms: np.ndarray, small: np.ndarray) -> pd.DataFrame:
    """The boundary length each small khoanh shares with each neighbour: from
    the edges both carry (one sort), and for the khoanh whose ring is not all
    such edges (a neighbour's vertex on its edge, the sheet's rim) by overlay
    of the stretches left over."""
    segments = RingSegments.of(geoms)
    owner, first, second = segments.owner, segments.first, segments.second
    length = segments.lengths()
    across = owner[first] != owner[second]
    a, b, shared = owner[first][across], owner[second][across], length[first][across]
    a, b, shared = np.r_[a, b], np.r_[b, a], np.r_[shared, shared]
    perimeter = np.bincount(owner, length, minlength=len(geoms))
    matched = np.bincount(a, shared, minlength=len(geoms))
    unsure = small & (matched < perimeter * (1 - 1e-9))
    overlaid = _shared_by_overlay(segments, unsure)
    mine = small[a]
    a, b, shared = _summed(np.r_[a[mine], overlaid["a"]], np.r_[b[mine], overlaid["b"]],
                           np.r_[shared[mine], overlaid["shared"]])
    return pd.DataFrame({"a": a, "b": b, "shared": shared})


def _targets(a: np.ndarray, b: np.ndarray, length: np.ndarray, small: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """For each group (of the khoanh joined so far), the group it joins: itself,
    or for a small one the neighbour (not ``kept``) sharing the longest
    boundary, the first such on a tie (itself when it has none). ``a``, ``b``,
    ``length``: the boundary length between groups."""
    target = np.arange(len(small))
    mine = small[a] & (length > 0) & ~kept[b]
    a, b, length = a[mine], b[mine], length[mine]
    order = np.lexsort((b, -length, a))
    best = order[np.r_[True, a[order][1:] != a[order][:-1]]] if len(order) else order
    target[a[best]] = b[best]
    return target


def _groups(target: np.ndarray) -> np.ndarray:
    """The khoanh joined together (by the chains and pairs of ``target``): one label per group."""
    label = np.arange(len(target))
    a = np.flatnonzero(target != label)
    b = target[a]
    while True:
        low = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]
        if np.array_equal(label, before):
            return label


def simplified(geoms: np.ndarray, scale: int) -> np.ndarray:
    """The khoanh ``geoms`` (a coverage: one commune's) with the lines between
    them simplified to 1:``scale``; their outline as it is (the next commune's
    matches it), so the total area stays. Near-coincident edges are first made
    one (a clean coverage), so that no gap or overlap opens between neighbours."""
    areal = np.flatnonzero(np.isin(shapely.get_type_id(geoms), [3, 6]) & ~shapely.is_empty(geoms))
    out = np.array(geoms, dtype=object)
    if len(areal):  # (GEOS takes neither empty nor other geometries)
        tolerance = SIMPLIFY_MM * scale / 1000.0
        lines = shapely.coverage_simplify(shapely.coverage_clean(out[areal]), tolerance, simplify_boundary=False)
        kept = ~shapely.is_empty(lines)  # a khoanh of no area (or lying on another) the clean gave away: as it was
        out[areal[kept]] = lines[kept]
    return out


def _joined(shared: pd.DataFrame, area: np.ndarray, kept: np.ndarray, floor_m2: float) -> np.ndarray:
    """For each khoanh, the khoanh whose attributes it takes on the sheet (its
    group's largest): small groups join their neighbour round by round, up to
    ROUNDS times. A small group holds small khoanh only, so the boundary it
    shares with a neighbour is the sum of its members' (``shared``, found once)."""
    heir = np.arange(len(area))
    a, b, length = (shared[c].to_numpy() for c in ("a", "b", "shared"))
    for _ in range(ROUNDS):
        groups, member = np.unique(heir, return_inverse=True)  # in the order of their heirs
        group_area = np.bincount(member, area)
        across = member[a] != member[b]
        between = _summed(member[a][across], member[b][across], length[across])
        label = _groups(_targets(*between, (group_area < floor_m2) & ~kept[groups], kept[groups]))
        if len(np.unique(label)) == len(groups):
            break
        largest = np.lexsort((np.arange(len(groups)), -group_area, label))  # by label, largest first, then in order
        first = largest[np.r_[True, label[largest][1:] != label[largest][:-1]]]
        heir = groups[first][np.searchsorted(label[first], label)][member]
    return heir


def generalise(khoanh: gpd.GeoDataFrame, scale: int) -> tuple[gpd.GeoDataFrame, int]:
    """``khoanh`` as a sheet at 1:``scale`` draws them, and how many were merged
    away. The merged khoanh keeps the attributes of the one it joined (its
    group's largest); the lines between khoanh are :func:`simplified`."""
    frame = khoanh.reset_index(drop=True)
    geoms = frame.geometry.to_numpy()
    area = shapely.area(geoms)
    kept = frame["landuse"].isin(linear_codes() | point_codes()).to_numpy()
    floor_m2 = minimum_mapped_m2(scale)
    small = (area < floor_m2) & ~kept
    heir = _joined(_shared(geoms, small), area, kept, floor_m2) if small.any() else np.arange(len(area))
    heirs, member = np.unique(heir, return_inverse=True)
    out = frame.iloc[heirs].reset_index(drop=True)
    if len(heirs) < len(frame):
        order = np.argsort(member, kind="stable")
        parts = np.split(geoms[order], np.cumsum(np.bincount(member))[:-1])
        out.geometry.values[:] = [union_coverage(p) if len(p) > 1 else p[0] for p in parts]
    lines = gpd.GeoSeries(simplified(out.geometry.to_numpy(), scale), index=out.index, crs=out.crs)
    return out.set_geometry(lines), len(frame) - len(heirs)


def generalised_note(merged: int, scale: int) -> str:
    """What the sheet's generalisation did, in the officer's words (empty when nothing)."""
    if not merged:
        return ""
    mm2 = 16 if scale <= 10_000 else 9
    return f"{vn_number(merged, 0)} khoanh nhỏ hơn {mm2} mm² trên giấy được gộp vào khoanh kề (chỉ trên bản đồ)"
