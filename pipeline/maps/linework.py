"""Boundary lines drawn once per edge (pure): a shared edge of two communes
is one line, not two overlapping dashed ones out of step, and where a
commune line is also a district or the province line only the higher
level is drawn."""

from __future__ import annotations

import numpy as np
import shapely

#: Highest first: a line of a higher level hides the lower levels' there.
LEVELS = ("tinh", "huyen", "xa")
SNAP_M = 0.5  # lines closer than this are the same line


def boundary_lines(polygons: dict[str, np.ndarray]) -> dict[str, object]:
    """Level → the lines to draw for it: every edge once, merged into long
    lines (so dash patterns run on), none where a higher level's line runs."""
    out: dict[str, object] = {}
    drawn = None
    for level in LEVELS:
        if level not in polygons or not len(polygons[level]):
            continue
        edges = shapely.union_all(shapely.boundary(np.asarray(polygons[level], dtype=object)))
        if drawn is not None:
            edges = shapely.difference(edges, shapely.buffer(drawn, SNAP_M))
        out[level] = shapely.line_merge(edges) if not shapely.is_empty(edges) else edges
        drawn = edges if drawn is None else shapely.union(drawn, edges)
    return out
