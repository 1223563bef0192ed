"""Where a map sheet's texts go (pure: no drawing): the names of the units,
then the land-use code of every khoanh that has room for it — inside it, in
smaller type or turned along its length (roads and rivers along their line)
— and, for a khoanh of at least 1 cm² on paper that has no room, beside it
with a leader line; point symbols for small offices, schools and health
stations. Labels never overlap each other or a name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import shapely
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from ..drawing import PT_PER_MM

FONT = "DejaVu Sans"  # shipped with matplotlib; covers every Vietnamese letter
LABEL_SIZES_PT = (6.0, 5.0, 4.5)  # a khoanh's code: tried largest first
LEADER_SIZE_PT = 5.0
MIN_LABELLED_MM2 = 100.0  # a khoanh of 1 cm² on paper always gets its code
LEADER_STEPS_MM = (1.5, 3.0, 5.0, 8.0, 12.0, 16.0)  # distances tried for a label beside its khoanh
REPEAT_MM = 200.0  # a road's or river's code again every 20 cm along it (mapping_rules.md 9.1 b)
LINE_EM = 1.25  # a label box's height in em (ascent + descent ≈ 1.16 em, and a little air)
CLEARANCE_SLACK_M = 1e-6  # an anchor this close to fitting is still tried (rounding of the distance)
LABEL_COLUMNS = ["kind", "text", "x", "y", "angle", "size", "w_m", "h_m", "anchor_x", "anchor_y", "khoanh"]


@cache
def map_symbols() -> pd.DataFrame:
    """``data/map_symbols.csv``: point symbols and linear codes, by land-use code."""
    with (resources.files("pipeline") / "data" / "map_symbols.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False).set_index("code")


def linear_codes() -> set[str]:
    table = map_symbols()
    return set(table.index[table["kind"] == "linear"])


def point_codes() -> set[str]:
    table = map_symbols()
    return set(table.index[table["kind"] == "point"])


@cache
def text_width_pt(text: str, size_pt: float, weight: str = "normal") -> float:
    """Advance width of ``text`` in the map font, in points (exact font metrics)."""
    prop = FontProperties(family=FONT, size=size_pt, weight=weight)
    width, _, _ = TextToPath().get_text_width_height_descent(text, prop, False)
    return float(width)


def box_polygon(x: float, y: float, w: float, h: float, angle_deg: float) -> shapely.Polygon:
    """The rectangle ``w`` × ``h`` centred on (x, y), turned by ``angle_deg``."""
    if angle_deg == 0:  # most labels: GEOS's box, four times faster
        return shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    return shapely.polygons(_corners(x, y, w, h, angle_deg))


def turned_boxes(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, angle_deg: np.ndarray) -> np.ndarray:
    """:func:`box_polygon` of many rectangles at once (GEOS's box where the angle is 0, as it draws them)."""
    boxes = shapely.polygons(np.stack([np.stack(corner, axis=-1) for corner in _corners(x, y, w, h, angle_deg)],
                                      axis=1))
    f = np.flatnonzero(angle_deg == 0)
    boxes[f] = shapely.box(x[f] - w[f] / 2, y[f] - h[f] / 2, x[f] + w[f] / 2, y[f] + h[f] / 2)
    return boxes


def _corners(x, y, w, h, angle_deg) -> list[tuple]:
    """The corners of rectangles ``w`` × ``h`` centred on (x, y), turned by ``angle_deg`` (numbers or arrays)."""
    a = np.radians(angle_deg)
    ux, uy = np.cos(a) * w / 2, np.sin(a) * w / 2
    vx, vy = -np.sin(a) * h / 2, np.cos(a) * h / 2
    return [(x - ux - vx, y - uy - vy), (x + ux - vx, y + uy - vy),
            (x + ux + vx, y + uy + vy), (x - ux + vx, y - uy + vy)]


def local_angle(geom, x: float, y: float, radius: float) -> float:
    """The direction of a khoanh around (x, y) in degrees, −90…90 (text never
    upside down): the long side of the smallest rectangle around the piece
    of the khoanh within the square as large as the circle of ``radius`` (a clip,
    much cheaper than an overlay on a large generalised khoanh)."""
    return float(local_angles(np.array([geom], dtype=object), np.array([x]), np.array([y]), np.array([radius]))[0])


def local_angles(geoms: np.ndarray, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """:func:`local_angle` of many khoanh and places at once."""
    half = 0.886 * radius  # the square as large as the circle of ``radius``
    try:  # the ufunc itself: shapely's wrapper takes one rectangle for all geometries
        pieces = shapely.lib.clip_by_rect(geoms, x - half, y - half, x + half, y + half)
    except shapely.errors.GEOSException:
        pieces = np.array([_clip(*args) for args in zip(geoms, x - half, y - half, x + half, y + half, strict=True)],
                          dtype=object)
    rectangles = shapely.minimum_rotated_rectangle(pieces)
    angles = np.zeros(len(geoms))
    turned = np.flatnonzero(shapely.get_type_id(rectangles) == 3)  # else a point or a line: no direction to follow
    angles[turned] = _directions(shapely.get_coordinates(rectangles[turned]).reshape(len(turned), 5, 2)[:, :3])
    return angles


def _clip(geom, x0: float, y0: float, x1: float, y1: float):
    try:
        return shapely.clip_by_rect(geom, x0, y0, x1, y1)
    except shapely.errors.GEOSException:  # the clip gives up on a ring that touches itself: overlay instead
        return shapely.intersection(geom, shapely.box(x0, y0, x1, y1))


def _directions(corners: np.ndarray) -> np.ndarray:
    """The directions of rectangles' long sides from their first three corners (n × 3 × 2), −90…90 degrees.
    The arc tangent is libm's (``math.atan2``), not numpy's vectorised one, which may differ in the last bit."""
    first, second = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 1]
    side = np.where((np.hypot(first[:, 0], first[:, 1]) >= np.hypot(second[:, 0], second[:, 1]))[:, None],
                    first, second)
    angle = np.degrees(np.fromiter(map(math.atan2, side[:, 1].tolist(), side[:, 0].tolist()), float, len(side)))
    return np.where(angle > 90, angle - 180.0, np.where(angle <= -90, angle + 180.0, angle))


@dataclass
class Room:
    """The map's taken room (boxes in metres), hashed on a grid for fast
    tests; each box kept with its bounds, which rule out most of its
    neighbours before GEOS is asked whether two boxes meet."""

    cell: float
    extent: tuple[float, float, float, float]
    taken: dict[tuple[int, int], list[tuple[tuple[float, float, float, float], object]]] = field(default_factory=dict)

    def _keys(self, bounds: tuple[float, float, float, float]) -> list[tuple[int, int]]:
        x0, y0, x1, y1 = bounds
        return [(i, j) for i in range(int(x0 // self.cell), int(x1 // self.cell) + 1)
                for j in range(int(y0 // self.cell), int(y1 // self.cell) + 1)]

    def take(self, polygon) -> None:
        self._take(polygon, polygon.bounds)

    def claim(self, polygon) -> bool:
        """Take the room of ``polygon`` if it is free; whether it was."""
        bounds = polygon.bounds
        if not self._free(polygon, bounds):
            return False
        self._take(polygon, bounds)
        return True

    def _free(self, polygon, bounds: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = bounds
        e = self.extent
        if x0 < e[0] or y0 < e[1] or x1 > e[2] or y1 > e[3]:
            return False
        return not any(a0 <= x1 and x0 <= a1 and b0 <= y1 and y0 <= b1 and polygon.intersects(other)
                       for key in self._keys(bounds) for (a0, b0, a1, b1), other in self.taken.get(key, ()))

    def _take(self, polygon, bounds: tuple[float, float, float, float]) -> None:
        for key in self._keys(bounds):
            self.taken.setdefault(key, []).append((bounds, polygon))


def _row(kind: str, text: str, x: float, y: float, angle: float, size: float, w: float, h: float,
         anchor: tuple[float, float] = (np.nan, np.nan), khoanh: int = -1) -> dict:
    return dict(zip(LABEL_COLUMNS, [kind, text, x, y, angle, size, w, h, anchor[0], anchor[1], khoanh], strict=True))


def place_names(names: list[tuple[str, object, float, str]], room: Room, m_per_pt: float) -> list[dict]:
    """Unit names (text, area, size in pt, kind), each at the widest point of
    its area, shrunk to 70 % when it does not fit; taken from the room."""
    rows = []
    visible = shapely.box(*room.extent)
    for text, area, size, kind in names:
        if area is None:
            continue
        shown = shapely.intersection(area, visible)  # a neighbour: the part on the sheet
        if shapely.is_empty(shown) or shapely.area(shown) <= 0:
            continue
        circle = shapely.maximum_inscribed_circle(shown, tolerance=5 * m_per_pt)
        x, y = shapely.get_coordinates(circle)[0]
        for s in (size, size * 0.85, size * 0.7):
            w, h = text_width_pt(text, s, "bold") * m_per_pt, s * LINE_EM * m_per_pt
            box = box_polygon(x, y, w, h, 0.0)
            if shapely.contains(shown, box) and room.claim(box):
                rows.append(_row(kind, text, x, y, 0.0, s, w, h))
                break
    return rows


def _fits(geom, box, x: float, y: float, w: float, angle: float, linear: bool) -> bool:
    """A label fits a khoanh when its box is inside it; a road's or river's
    when the line through the label's middle is (the text may overhang a
    narrow road, as on paper)."""
    return bool(shapely.contains(geom, middle_lines(x, y, w, angle) if linear else box))


def middle_lines(x, y, w, angle_deg):
    """The line through a label's middle, ``w`` long, turned by ``angle_deg`` (numbers or arrays)."""
    dx, dy = np.cos(np.radians(angle_deg)) * w / 2, np.sin(np.radians(angle_deg)) * w / 2
    return shapely.linestrings(np.stack([np.stack([x - dx, y - dy], -1), np.stack([x + dx, y + dy], -1)], -2))


def _code_box(width_pt, size_pt, m_per_pt: float):
    """A code label's box w × h in metres: its text and 1.5 pt of air, LINE_EM high (numbers or arrays)."""
    return width_pt * m_per_pt + 1.5 * m_per_pt, size_pt * LINE_EM * m_per_pt


def _cannot_hold(reach, area, w, h):
    """Whether a khoanh (the radius of its widest circle inside, its area) is too small for a w × h box
    anywhere: a box inside holds a circle as wide as the box is high, and its area (numbers or arrays)."""
    return (2 * reach < h) | (area < w * h)


def _too_close(clearance, w, h):
    """Whether an anchor this far from the khoanh's outline can centre no w × h box, level or turned:
    that box's inner circle would cross the outline (numbers or arrays)."""
    return clearance + CLEARANCE_SLACK_M < np.minimum(w, h) / 2


def _attempts(geom, x: float, y: float, w: float, h: float, linear: bool, tries: _Tries | None, k: int, t: int):
    """Level, then along the khoanh; roads and rivers along their line only:
    each direction with its box and whether the label fits there, taken from
    ``tries`` (try ``t`` of its ``k``-th khoanh) where they were worked out,
    else worked out now (the direction only when level does not do)."""
    if not linear:
        box, inside = (tries.level[k, t], bool(tries.level_inside[k, t])) if tries is not None else (None, False)
        if box is None:
            box = box_polygon(x, y, w, h, 0.0)
            inside = _fits(geom, box, x, y, w, 0.0, linear)
        yield 0.0, box, inside
    along = float(tries.along[k, t]) if tries is not None else math.nan
    if math.isnan(along):
        along = local_angle(geom, x, y, w)
    if linear or abs(along) > 5:
        box, inside = (tries.turned[k, t], bool(tries.turned_inside[k, t])) if tries is not None else (None, False)
        if box is None:
            box = box_polygon(x, y, w, h, along)
            inside = _fits(geom, box, x, y, w, along, linear)
        yield along, box, inside


def _inside(geom, anchors, text: str, linear: bool, room: Room, m_per_pt: float, khoanh: int,
            reach: tuple[float, float] = (np.inf, np.inf), clearance: tuple[float, ...] = (),
            tries: _Tries | None = None, k: int = -1) -> dict | None:
    """The first box inside the khoanh and free: largest type first, at its
    widest point, then on its surface. ``reach`` (the radius of the widest
    circle inside the khoanh, its area) skips the sizes that cannot fit: a
    box inside holds a circle as wide as the box is high, and its area.
    ``clearance`` (each anchor's distance to the khoanh's outline) skips an
    anchor where no box of the size can be centred, level or turned: that
    circle would cross the outline. ``tries``: the boxes of the ``k``-th
    khoanh worked out beforehand, with many others (see :class:`_Tries`)."""
    first = 0 if tries is None else int(tries.first[k])  # the tries before it lie outside the khoanh
    if first < 0:
        return None
    for s, size in enumerate(LABEL_SIZES_PT):
        if len(anchors) * (s + 1) <= first:
            continue
        w, h = _code_box(text_width_pt(text, size), size, m_per_pt)
        if not linear and _cannot_hold(reach[0], reach[1], w, h):
            continue
        for a, (x, y) in enumerate(anchors):
            t = len(anchors) * s + a
            if t < first or not linear and a < len(clearance) and _too_close(clearance[a], w, h):
                continue
            for angle, box, inside in _attempts(geom, x, y, w, h, linear, tries, k, t):
                if inside and room.claim(box):
                    return _row("code", text, x, y, angle, size, w, h, khoanh=khoanh)
    return None


@dataclass
class _Tries:
    """The boxes :func:`_inside` tries for many khoanh (roads' and rivers',
    which follow their line: :meth:`of_lines`), worked out at once, each khoanh's
    tries in order (size, largest first × anchor, widest point then surface),
    up to the first that lies inside its khoanh: the level box, whether it lies
    inside, and if not the khoanh's direction there and the box along it.
    Whether the room is free is left to the placing, khoanh after khoanh, which
    works out what is missing (the tries after one inside whose room is taken)."""

    level: np.ndarray  # (khoanh, try): boxes, None where not worked out
    level_inside: np.ndarray
    along: np.ndarray  # NaN where not worked out
    turned: np.ndarray  # None where not worked out
    turned_inside: np.ndarray
    first: np.ndarray  # (khoanh): the first try that lies inside, level or turned; −1 where none does

    @classmethod
    def of(cls, geoms: np.ndarray, anchors: np.ndarray, texts: list[str], reach: np.ndarray, area: np.ndarray,
           clearance: np.ndarray, m_per_pt: float) -> _Tries:
        """``anchors`` (khoanh, anchor, xy) and ``clearance`` (khoanh, anchor); ``reach`` and ``area``
        (khoanh) as in :func:`_inside`."""
        k, a, x, y, w, h, shape = _tries_grid(anchors, texts, m_per_pt)
        valid = ~_cannot_hold(reach[k], area[k], w, h) & ~_too_close(clearance[k, a], w, h)
        level, turned = np.full(len(k), None, dtype=object), np.full(len(k), None, dtype=object)
        level_inside, turned_inside = np.zeros(len(k), dtype=bool), np.zeros(len(k), dtype=bool)
        along = np.full(len(k), np.nan)
        open_ = np.ones(len(geoms), dtype=bool)  # no try so far lies inside: the next one is needed
        for t in range(shape[1]):
            need = np.flatnonzero(open_) * shape[1] + t
            need = need[valid[need]]
            level[need] = shapely.box(x[need] - w[need] / 2, y[need] - h[need] / 2, x[need] + w[need] / 2,
                                      y[need] + h[need] / 2)
            level_inside[need] = shapely.contains(geoms[k[need]], level[need])
            need = need[~level_inside[need]]
            along[need] = local_angles(geoms[k[need]], x[need], y[need], w[need])
            need = need[np.abs(along[need]) > 5]
            turned[need] = turned_boxes(x[need], y[need], w[need], h[need], along[need])
            turned_inside[need] = shapely.contains(geoms[k[need]], turned[need])
            open_ &= ~(level_inside | turned_inside).reshape(shape)[:, t]
        inside = (level_inside | turned_inside).reshape(shape)
        return cls(level.reshape(shape), level_inside.reshape(shape), along.reshape(shape), turned.reshape(shape),
                   turned_inside.reshape(shape), np.where(inside.any(axis=1), inside.argmax(axis=1), -1))

    @classmethod
    def of_lines(cls, geoms: np.ndarray, anchors: np.ndarray, texts: list[str], m_per_pt: float) -> _Tries:
        """The tries of roads and rivers, every one worked out at once: the
        direction there, the box along it, whether the line through its middle lies inside."""
        k, _, x, y, w, h, shape = _tries_grid(anchors, texts, m_per_pt)
        along = local_angles(geoms[k], x, y, w)
        inside = shapely.contains(geoms[k], middle_lines(x, y, w, along)).reshape(shape)
        return cls(np.full(shape, None, dtype=object), np.zeros(shape, dtype=bool), along.reshape(shape),
                   turned_boxes(x, y, w, h, along).reshape(shape), inside,
                   np.where(inside.any(axis=1), inside.argmax(axis=1), -1))


def _tries_grid(anchors: np.ndarray, texts: list[str], m_per_pt: float) -> tuple:
    """Every try of many khoanh, flat in order (khoanh, size largest first, anchor): its khoanh and anchor,
    its box's centre and size (m); and the (khoanh, try) shape they fold to (also for no khoanh)."""
    sizes = np.array(LABEL_SIZES_PT)
    widths = np.array([[text_width_pt(t, s) for s in LABEL_SIZES_PT] for t in texts]).reshape(len(texts), len(sizes))
    w_all, h_all = _code_box(widths, sizes, m_per_pt)
    k, s, a = (i.ravel() for i in np.meshgrid(np.arange(len(texts)), np.arange(len(sizes)),
                                              np.arange(anchors.shape[1]), indexing="ij"))
    return k, a, anchors[k, a, 0], anchors[k, a, 1], w_all[k, s], h_all[s], (len(texts), len(sizes) * anchors.shape[1])


def _beside(anchor: tuple[float, float], text: str, room: Room, m_per_pt: float, m_per_mm: float,
            khoanh: int) -> dict | None:
    """A free place for the label near its khoanh, tied to it by a leader line."""
    w, h = _code_box(text_width_pt(text, LEADER_SIZE_PT), LEADER_SIZE_PT, m_per_pt)
    for step in LEADER_STEPS_MM:
        for k in range(16):
            a = 2 * np.pi * k / 16 + np.pi / 4
            x = anchor[0] + np.cos(a) * (step * m_per_mm + w / 2)
            y = anchor[1] + np.sin(a) * (step * m_per_mm + h / 2)
            box = box_polygon(x, y, w, h, 0.0)
            if room.claim(box):
                return _row("leader", text, x, y, 0.0, LEADER_SIZE_PT, w, h, anchor, khoanh)
    return None


def along_points(geom, radius: float, step: float) -> list[tuple[float, float]]:
    """Points near the middle line of a long narrow khoanh, about ``step``
    apart: on the outline of the khoanh shrunk to its middle (which runs
    along both sides of that line, so points closer than a step are dropped)."""
    core = shapely.buffer(geom, -0.6 * radius)
    parts = shapely.get_parts(core if not shapely.is_empty(core) else geom)
    points: list[tuple[float, float]] = []
    for part in parts:
        ring = shapely.get_exterior_ring(part)
        for k in range(int(ring.length // step) * 2 + 1):
            p = shapely.get_coordinates(ring.interpolate(k * step / 2))[0]
            if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= step for q in points):
                points.append((float(p[0]), float(p[1])))
    return points


def _repeats(geom, first: dict, radius: float, text: str, room: Room, m_per_mm: float, khoanh: int) -> list[dict]:
    """The same code again along a long road or river, a step from every copy."""
    step = REPEAT_MM * m_per_mm
    if shapely.length(geom) / 2 < 1.5 * step:
        return []
    rows = [first]
    for x, y in along_points(geom, radius, step):
        if all(np.hypot(x - r["x"], y - r["y"]) >= 0.75 * step for r in rows):
            placed = _inside(geom, [(x, y)], text, True, room, m_per_mm / PT_PER_MM, khoanh)
            if placed is not None:
                rows.append(placed)
    return rows[1:]


def place_labels(geoms: np.ndarray, texts: np.ndarray, codes: np.ndarray, mm_per_m: float, room: Room) -> pd.DataFrame:
    """The land-use labels of a sheet: biggest khoanh first; every khoanh of
    at least 1 cm² on paper gets its code (inside, else beside it with a
    leader line), smaller ones when it fits inside. ``room`` holds what is
    already placed (the names) and takes the labels."""
    m_per_mm = 1 / mm_per_m
    m_per_pt = m_per_mm / PT_PER_MM
    if not len(geoms):
        return pd.DataFrame(columns=LABEL_COLUMNS)
    geoms, texts = np.asarray(geoms, dtype=object), np.asarray(texts, dtype=object)
    paper_mm2 = shapely.area(geoms) * mm_per_m ** 2
    smallest = text_width_pt("ONT", LABEL_SIZES_PT[-1]) / PT_PER_MM * LABEL_SIZES_PT[-1] * LINE_EM / PT_PER_MM
    linear = np.isin(codes, list(linear_codes()))
    candidates = np.flatnonzero((paper_mm2 >= MIN_LABELLED_MM2) | (paper_mm2 >= smallest) | linear)
    order = candidates[np.argsort(-paper_mm2[candidates], kind="stable")]
    surface = shapely.get_coordinates(shapely.point_on_surface(geoms[order]))
    tolerance = 0.3 * m_per_mm
    circles = shapely.maximum_inscribed_circle(geoms[order], tolerance)
    widest, radii = shapely.get_coordinates(circles)[::2], shapely.length(circles)
    reach = radii + tolerance  # the widest circle inside is at most this much wider
    outlines = shapely.boundary(geoms[order])
    clearance = np.column_stack([shapely.distance(outlines, shapely.points(widest)),
                                 shapely.distance(outlines, shapely.points(surface))])
    area = paper_mm2[order] / mm_per_m ** 2
    shapely.prepare(geoms[order])
    areal = np.flatnonzero(~linear[order])  # khoanh other than roads and rivers: their boxes all at once
    tries = _Tries.of(geoms[order][areal], np.stack([widest, surface], axis=1)[areal],
                      [str(t) for t in texts[order][areal]], reach[areal], area[areal], clearance[areal], m_per_pt)
    lines = np.flatnonzero(linear[order])  # roads and rivers: their first label's tries all at once too
    line_tries = _Tries.of_lines(geoms[order][lines], np.stack([widest, surface], axis=1)[lines],
                                 [str(t) for t in texts[order][lines]], m_per_pt)
    row_of = {k: (of, j) for of, rows in ((tries, areal), (line_tries, lines)) for j, k in enumerate(rows.tolist())}
    rows = []
    each = zip(order.tolist(), widest.tolist(), surface.tolist(), reach.tolist(), area.tolist(), clearance.tolist(),
               strict=True)  # as Python numbers: one khoanh after another
    for k, (i, at_widest, at_surface, reach_m, area_m2, clear) in enumerate(each):
        geom = geoms[i]
        anchors = [tuple(at_widest), tuple(at_surface)]
        placed = _inside(geom, anchors, str(texts[i]), bool(linear[i]), room, m_per_pt, i, (reach_m, area_m2),
                         tuple(clear), *row_of[k])
        if placed is None and paper_mm2[i] >= MIN_LABELLED_MM2:
            placed = _beside(anchors[0], str(texts[i]), room, m_per_pt, m_per_mm, i)
        if placed is not None:
            rows.append(placed)
            if linear[i] and placed["kind"] == "code":
                rows += _repeats(geom, placed, float(radii[k]), str(texts[i]), room, m_per_mm, i)
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def place_symbols(geoms: np.ndarray, codes: np.ndarray, labelled: set[int], m_per_mm: float) -> pd.DataFrame:
    """Point symbols (office, school, health station …) at the widest point
    of each khoanh of a point-symbol code that carries no label inside."""
    wanted = np.flatnonzero(np.isin(codes, list(point_codes())))
    wanted = np.array([i for i in wanted if i not in labelled], dtype=int)
    if not len(wanted):
        return pd.DataFrame(columns=["code", "x", "y"])
    centres = shapely.get_coordinates(shapely.maximum_inscribed_circle(np.asarray(geoms, dtype=object)[wanted],
                                                                       0.3 * m_per_mm))[::2]
    return pd.DataFrame({"code": np.asarray(codes)[wanted], "x": centres[:, 0], "y": centres[:, 1]})


def label_coverage(geoms: np.ndarray, labels: pd.DataFrame, mm_per_m: float) -> tuple[int, int]:
    """(khoanh of at least 1 cm² on paper, how many of them carry their code)."""
    big = np.flatnonzero(shapely.area(np.asarray(geoms, dtype=object)) * mm_per_m ** 2 >= MIN_LABELLED_MM2)
    done = set(labels.loc[labels["kind"].isin(["code", "leader"]), "khoanh"].astype(int))
    return len(big), sum(1 for i in big if i in done)
