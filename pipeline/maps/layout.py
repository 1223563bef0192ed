"""Map sheet geometry: the regulation scale, the paper, and where everything
goes on it, in millimetres. Pure: no drawing here.

Scale by level and natural area is Circular 27/2018, Art. 18(4)
(``pipeline/data/map_scales.csv``); the one-step-up/down exception is an
option. The map is drawn at true scale: 1 mm on paper = scale/1000 m.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pandas as pd

from ..report import vn_number

#: The scale series of Vietnamese maps (for the one-step exception).
SCALE_SERIES = (1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
#: ISO A paper, portrait (width, height) in mm, smallest first.
PAPER_MM = {"A4": (210, 297), "A3": (297, 420), "A2": (420, 594), "A1": (594, 841), "A0": (841, 1189)}

MARGIN = 10.0  # outer page margin
TITLE_BAND = 28.0  # above the frame: title and unit
BOTTOM_BAND = 16.0  # below the frame: scale ratio, scale bar, CRS note
GRID_LABEL = 9.0  # between frame and map: grid labels
GAP = 6.0  # between map block and side panel
ORIENTATION_VI = {"landscape": "khổ ngang", "portrait": "khổ dọc"}
ROLL_MM = 1118.0  # a 44-inch plotter roll: no page may be wider than this on its short side
MAX_STEPS = 2  # smaller scales tried (Art. 18(4) exception) before a unit is too big for the roll
#: The inventory's natural area is its unit's when it covers at least this share of the area inside
#: the unit's boundary; below, the unit was inventoried in part (a commune of 2025 of whose old
#: communes only some were run) and the area inside its boundary, which the sheet draws, sets the scale.
COVERED_SHARE = 0.9


@cache
def scale_table() -> pd.DataFrame:
    with (resources.files("pipeline") / "data" / "map_scales.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"level": str})


def regulation_scale(level: str, natural_area_ha: float, step: int = 0) -> int:
    """The scale denominator for a unit (``step`` −1/+1: one step larger/smaller scale,
    the exception for units of particular shape)."""
    for row in scale_table()[scale_table()["level"] == level].itertuples():
        above = natural_area_ha >= row.min_ha if row.min_inclusive == "yes" else natural_area_ha > row.min_ha
        below = pd.isna(row.max_ha) or (
            natural_area_ha <= row.max_ha if row.max_inclusive == "yes" else natural_area_ha < row.max_ha)
        if above and below:
            index = SCALE_SERIES.index(int(row.scale)) + step
            return SCALE_SERIES[min(max(index, 0), len(SCALE_SERIES) - 1)]
    raise ValueError(f"no scale for level {level!r} and {natural_area_ha} ha")


def panel_width(paper_width_mm: float) -> float:
    """Width of the side panel (inset, legend, chart, three signature blocks of
    at least 40 mm each) for a paper width."""
    return max(120.0, min(180.0, 0.2 * paper_width_mm))


@dataclass(frozen=True)
class Box:
    """A rectangle on the page, mm from the bottom-left corner."""

    x: float
    y: float
    w: float
    h: float

    def fraction(self, page_w: float, page_h: float) -> list[float]:
        return [self.x / page_w, self.y / page_h, self.w / page_w, self.h / page_h]


@dataclass(frozen=True)
class SheetLayout:
    """Everything's place on one map sheet."""

    scale: int
    paper: str  # "A3 landscape", or "custom 1300×900 mm (roll)"
    page_w: float
    page_h: float
    extent: tuple[float, float, float, float]  # map extent in metres (x0, y0, x1, y1)
    map_box: Box  # the map at true scale
    frame: Box  # the neat line around the map and its grid labels
    panel: Box  # legend, inset, chart, signatures
    title_box: Box
    bottom_box: Box

    @property
    def mm_per_m(self) -> float:
        return 1000.0 / self.scale


PanelHeight = Callable[[float], float]  # panel width → the height its content needs (mm)


def _needed(extent_w: float, extent_h: float, scale: int, panel_w: float, panel_h: float) -> tuple[float, float]:
    map_w, map_h = extent_w * 1000 / scale, extent_h * 1000 / scale
    width = 2 * MARGIN + map_w + 2 * GRID_LABEL + GAP + panel_w
    height = 2 * MARGIN + TITLE_BAND + max(map_h + 2 * GRID_LABEL + BOTTOM_BAND, panel_h)
    return width, height


def choose_paper(extent_w: float, extent_h: float, scale: int,
                 panel_height: PanelHeight = lambda w: 0.0) -> tuple[str, float, float]:
    """The smallest A-size sheet (either orientation) that holds the map at true
    scale and the panel's content, else a custom roll size rounded up to 1 cm."""
    for name, (short, long) in PAPER_MM.items():
        for orientation, (w, h) in (("landscape", (long, short)), ("portrait", (short, long))):
            panel_w = panel_width(w)
            need_w, need_h = _needed(extent_w, extent_h, scale, panel_w, panel_height(panel_w))
            if need_w <= w and need_h <= h:
                return f"{name} {ORIENTATION_VI[orientation]}", float(w), float(h)
    panel_w = panel_width(1189)
    w0, h0 = _needed(extent_w, extent_h, scale, panel_w, panel_height(panel_w))
    roll_w, roll_h = -(-w0 // 10) * 10, -(-h0 // 10) * 10
    return f"khổ {roll_w:.0f}×{roll_h:.0f} mm (cuộn)", float(roll_w), float(roll_h)


def sheet_layout(bounds: tuple[float, float, float, float], scale: int, pad: float = 0.03,
                 panel_height: PanelHeight = lambda w: 0.0) -> SheetLayout:
    """Place a map of ``bounds`` (metres) at ``scale`` on the smallest sheet that
    holds it. The frame fills the room left of the panel and between the title
    and the scale bar: the unit in its middle, the land around it to the frame
    (on a paper larger than the unit needs, not a small map adrift in white)."""
    x0, y0, x1, y1 = bounds
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    paper, page_w, page_h = choose_paper(x1 - x0 + 2 * dx, y1 - y0 + 2 * dy, scale, panel_height)
    panel_w = panel_width(page_w)
    room_w = page_w - 2 * MARGIN - GAP - panel_w
    room_h = page_h - 2 * MARGIN - TITLE_BAND - BOTTOM_BAND
    map_w, map_h = room_w - 2 * GRID_LABEL, room_h - 2 * GRID_LABEL
    half_w, half_h = map_w * scale / 2000, map_h * scale / 2000
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    frame = Box(MARGIN, MARGIN + BOTTOM_BAND, room_w, room_h)
    return SheetLayout(
        scale=scale, paper=paper, page_w=page_w, page_h=page_h,
        extent=(cx - half_w, cy - half_h, cx + half_w, cy + half_h),
        map_box=Box(frame.x + GRID_LABEL, frame.y + GRID_LABEL, map_w, map_h),
        frame=frame,
        panel=Box(page_w - MARGIN - panel_w, MARGIN, panel_w, page_h - 2 * MARGIN - TITLE_BAND),
        title_box=Box(MARGIN, page_h - MARGIN - TITLE_BAND, page_w - 2 * MARGIN, TITLE_BAND),
        bottom_box=Box(frame.x, MARGIN, room_w, BOTTOM_BAND - 2),
    )


def scale_area_ha(natural_area_ha: float, boundary_ha: float) -> tuple[float, str]:
    """The natural area the Art. 18(4) scale follows: the inventory's, or the
    area inside the unit's boundary (``boundary_ha``, 0 when none) where the
    inventory covers less than ``COVERED_SHARE`` of it; with a note saying so."""
    if natural_area_ha >= COVERED_SHARE * boundary_ha:
        return natural_area_ha, ""
    return boundary_ha, (f"tỷ lệ theo diện tích trong ranh giới đơn vị ({vn_number(boundary_ha)} ha): "
                         f"số liệu kiểm kê chỉ phủ {vn_number(natural_area_ha)} ha")


def fits_roll(layout: SheetLayout) -> bool:
    return min(layout.page_w, layout.page_h) <= ROLL_MM


def plotter_layout(bounds: tuple[float, float, float, float], level: str, natural_area_ha: float, step: int = 0,
                   panel_height: PanelHeight = lambda w: 0.0) -> tuple[SheetLayout, str]:
    """The sheet at the Art. 18(4) scale (with the configured ``step``), or,
    when that page is wider than the plotter roll on its short side, at the
    next smaller scale of the series (the article's exception), up to
    ``MAX_STEPS``; with a note saying which (empty when none was needed)."""
    wanted = regulation_scale(level, natural_area_ha, step)
    for extra in range(MAX_STEPS + 1):
        scale = regulation_scale(level, natural_area_ha, step + extra)
        layout = sheet_layout(bounds, scale, panel_height=panel_height)
        if fits_roll(layout):
            break
    if scale == wanted:
        return layout, "" if fits_roll(layout) else f"khổ giấy vượt cuộn {ROLL_MM:.0f} mm"
    note = (f"tỷ lệ {format_scale(scale)} thay cho {format_scale(wanted)} (ngoại lệ Điều 18 khoản 4): "
            f"ở {format_scale(wanted)} khổ giấy vượt cuộn {ROLL_MM:.0f} mm")
    return layout, note if fits_roll(layout) else note + f"; vẫn vượt cuộn {ROLL_MM:.0f} mm"


def grid_spacing(scale: int) -> float:
    """Kilometre-grid spacing in metres: about every 10 cm on paper, a round value."""
    target = scale / 10
    for step in (100, 200, 250, 500, 1_000, 2_000, 2_500, 5_000, 10_000, 20_000, 25_000, 50_000, 100_000):
        if step >= target:
            return float(step)
    return 100_000.0


def format_scale(scale: int) -> str:
    """``5000`` → ``"1:5.000"`` (Vietnamese thousands separator)."""
    return "1:" + f"{scale:,}".replace(",", ".")
