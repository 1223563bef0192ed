"""Shapely geometry as matplotlib paths, fast: one compound path per set of
polygons (fills) or of rings (outlines), straight from shapely's coordinate
arrays, so 50 000 polygons cost a few artists, not 50 000. Used by the map
sheets and the QA report's overview plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from .topology import RingSegments, polygon_rings  # noqa: E402

PT_PER_MM = 72 / 25.4


def pt(mm: float) -> float:
    """Millimetres → points."""
    return mm * PT_PER_MM


def compound_path(geoms: np.ndarray) -> MplPath:
    """One matplotlib path holding every polygon (holes kept by orientation)."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        return MplPath(np.empty((0, 2)))
    oriented = shapely.orient_polygons(geoms)  # exteriors counter-clockwise, holes clockwise
    coords, ring_offsets, _, _ = polygon_rings(oriented)
    starts = ring_offsets[:-1]
    codes = np.full(len(coords), MplPath.LINETO, dtype=np.uint8)
    codes[starts] = MplPath.MOVETO
    codes[np.r_[starts[1:] - 1, len(coords) - 1]] = MplPath.CLOSEPOLY
    return MplPath(coords, codes)


def outline_path(geoms: np.ndarray) -> MplPath:
    """Every ring of the polygons (or every line of line geometries) as one
    stroked path (one PDF drawing operation, where a LineCollection would
    write one per ring)."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and np.isin(shapely.get_type_id(geoms), (3, 6)).all():  # (multi)polygons: from ragged arrays
        coords, ring_offsets, _, _ = polygon_rings(geoms)  # a third of the cost of a geometry per part and ring
        starts = ring_offsets[:-1]
        codes = np.full(len(coords), MplPath.LINETO, dtype=np.uint8)
        codes[starts] = MplPath.MOVETO
        return MplPath(coords, codes)
    parts = shapely.get_parts(geoms)
    polygonal = shapely.get_type_id(parts) == 3
    lines = np.r_[shapely.get_rings(parts[polygonal]), parts[~polygonal]]
    coords, ring_of = shapely.get_coordinates(lines, return_index=True)
    codes = np.full(len(coords), MplPath.LINETO, dtype=np.uint8)
    codes[np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1] if len(coords) else []] = MplPath.MOVETO
    return MplPath(coords, codes)


def dissolved_outline_path(geoms: np.ndarray, keys: np.ndarray) -> MplPath:
    """The polygons' outlines as :func:`outline_path` draws them, less the edges
    two polygons of the same ``key`` share (e.g. the land-use code: as if the
    polygons were dissolved by it, without the overlay). Edges are matched by
    their end points; one whose vertices the neighbour does not share stays."""
    segments = RingSegments.of(geoms)
    coords, start, owner, first, second = (segments.coords, segments.start, segments.owner, segments.first,
                                           segments.second)
    if not len(start):
        return MplPath(np.empty((0, 2)))
    keys = np.asarray(keys)
    dissolved = (owner[first] != owner[second]) & (keys[owner[first]] == keys[owner[second]])
    keep = np.ones(len(start), dtype=bool)
    keep[first[dissolved]] = keep[second[dissolved]] = False
    kept = start[keep]
    opens = np.r_[True, kept[1:] != kept[:-1] + 1]  # a new line where the previous segment was left out
    vertices = np.empty((len(kept) + opens.sum(), 2))
    codes = np.full(len(vertices), MplPath.LINETO, dtype=np.uint8)
    at = np.arange(len(kept)) + np.cumsum(opens)  # where each segment's end goes
    vertices[at] = coords[kept + 1]
    vertices[at[opens] - 1] = coords[kept[opens]]
    codes[at[opens] - 1] = MplPath.MOVETO
    return MplPath(vertices, codes)


def stroke(ax, geoms, colour: str, width_mm: float, dashes: tuple[float, ...] | None = None) -> None:
    """Draw the outlines of polygons (or lines, or a ready path), ``dashes`` in mm."""
    style = [(0, tuple(pt(d) for d in dashes))] if dashes else ["solid"]
    path = geoms if isinstance(geoms, MplPath) else outline_path(geoms)
    ax.add_collection(PathCollection([path], facecolors="none", edgecolors=[colour],
                                     linewidths=[pt(width_mm)], linestyles=style), autolim=False)


def fill(ax, geoms, colour: str, hatch: str = "", hatch_colour: str = "#555555") -> None:
    """One compound path as a collection (no per-vertex data-limit pass, unlike add_patch)."""
    collection = PathCollection([compound_path(geoms)], facecolors=[colour],
                                edgecolors=[hatch_colour if hatch else "none"], linewidths=[0], hatch=hatch or None)
    ax.add_collection(collection, autolim=False)
