"""The side panel of a map sheet, top to bottom: the location inset with the
units named, the legend (swatch, code, name; point symbols; boundary lines
long enough to show their dashes), the land-use structure chart, the notes,
and at the bottom three signature blocks with the date line and at least
25 mm of signing space under each."""

from __future__ import annotations

import textwrap
from functools import lru_cache

import numpy as np
import shapely
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Affine2D, Bbox, TransformedBbox

from ..drawing import PT_PER_MM, fill, pt, stroke
from ..reference import landuse_colors
from ..report import vn_number
from ..symbology import BOUNDARY_NAMES, BOUNDARY_STYLES, GAP_COLOR, GAP_EDGE, GAP_HATCH
from .content import SheetContent
from .labels import FONT, LINE_EM, map_symbols, point_codes, text_width_pt
from .layout import Box, SheetLayout

SIGNING_MM = 25.0  # blank room under each signature block's title
SIGNATURE_ZONE_MM = 62.0  # date line, three blocks' titles, the signing room
NOTE_ROW_MM = 4.0


def _font(w: float) -> float:
    return max(7.0, min(13.0, w / 10))


def _row_h(w: float) -> float:
    return max(4.0, _font(w) * 0.5)


def legend_rows(content: SheetContent) -> int:
    """Rows of the legend: codes, the gap swatch, point symbols, boundary lines."""
    symbols = point_codes() & set(content.khoanh["landuse"].unique())
    return (len(content.legend) + int(content.khoanh["landuse"].isna().any()) + len(symbols)
            + len(content.boundaries))


def _note_lines(content: SheetContent, w: float) -> list[str]:
    """The notes wrapped to the panel's width."""
    chars = max(20, int((w - 4) / (_font(w) * 0.5 * 0.58 * 0.3528)))
    return [line for note in content.notes for line in textwrap.wrap(note, chars)]


def panel_height(content: SheetContent, w: float) -> float:
    """The height (mm) the panel's content needs at width ``w``."""
    inset = min(w * 0.7, 120.0) + 8
    legend = 10 + legend_rows(content) * _row_h(w)
    chart = (min(w * 0.55, 110.0) + 16) if len(content.structure) else 0.0
    return inset + legend + chart + len(_note_lines(content, w)) * NOTE_ROW_MM + SIGNATURE_ZONE_MM + 12


class MmCanvas:
    """Drawing on the figure in millimetres from ``box``'s corner, clipped to
    it as an axes would clip (text, patches, lines, collections): what an
    axes in millimetres gave, without its axis machinery (3-4 ms an axes,
    five a sheet)."""

    def __init__(self, fig, box: Box):
        self.fig = fig
        self.transform = Affine2D().scale(1 / 25.4).translate(box.x / 25.4, box.y / 25.4) + fig.dpi_scale_trans
        self.clip = TransformedBbox(Bbox.from_bounds(0, 0, box.w, box.h), self.transform)

    def text(self, x: float, y: float, s: str, **kwargs):
        return self.fig.text(x, y, s, transform=self.transform, **kwargs)

    def add_patch(self, patch):
        return self._add(patch)

    def add_collection(self, collection):
        return self._add(collection)

    def plot(self, xs, ys, **kwargs):
        return self._add(Line2D(xs, ys, **kwargs))

    def _add(self, artist):
        artist.set_transform(self.transform)
        artist.set_clip_box(self.clip)
        return self.fig.add_artist(artist)


def _legend(ax, content: SheetContent, w: float, y: float) -> float:
    """Swatch | code | name rows (the code beside its swatch, never on its
    hatch); point symbols; boundary lines two dash periods long."""
    font, row_h = _font(w), _row_h(w)
    sw_w = min(12.0, w * 0.1)
    code_x, name_x = 3 + sw_w + 1.5, 3 + sw_w + 1.5 + font * 0.75 * 1.6
    ax.text(w / 2, y, "CHÚ DẪN", ha="center", va="top", fontsize=font * 1.1, family=FONT, weight="bold")
    y -= font * 0.55 + 3
    for item in content.legend.itertuples():
        ax.add_patch(Rectangle((3, y - row_h * 0.85), sw_w, row_h * 0.75, facecolor=item.hex, edgecolor="#000000",
                               linewidth=pt(0.15), hatch=item.hatch or None))
        ax.text(code_x, y - row_h * 0.47, item.code, ha="left", va="center", fontsize=font * 0.7, family=FONT,
                weight="bold")
        ax.text(name_x, y - row_h * 0.47, item.name_vi, ha="left", va="center", fontsize=font * 0.7,
                family=FONT, gid=f"legend-{item.code}")
        y -= row_h
    if content.khoanh["landuse"].isna().any():
        ax.add_patch(Rectangle((3, y - row_h * 0.85), sw_w, row_h * 0.75, facecolor=GAP_COLOR, edgecolor=GAP_EDGE,
                               linewidth=pt(0.15), hatch=GAP_HATCH))
        ax.text(code_x, y - row_h * 0.47, "Khoảng hở chưa xác định loại đất", ha="left", va="center",
                fontsize=font * 0.7, family=FONT)
        y -= row_h
    symbols = map_symbols()
    for code in sorted(point_codes() & set(content.khoanh["landuse"].dropna())):
        ax.plot([3 + sw_w / 2], [y - row_h * 0.47], marker=symbols.at[code, "marker"], markersize=font * 0.75,
                color=symbols.at[code, "colour"], markeredgecolor="#000000", markeredgewidth=0.3)
        ax.text(code_x, y - row_h * 0.47, symbols.at[code, "legend_vi"], ha="left", va="center",
                fontsize=font * 0.7, family=FONT)
        y -= row_h
    for level in content.boundaries:
        colour, width, dashes = BOUNDARY_STYLES[level]
        length = max(sw_w, 2 * sum(dashes))  # two whole dash periods: the pattern shows
        ax.add_collection(LineCollection([[(3, y - row_h * 0.47), (3 + length, y - row_h * 0.47)]], colors=colour,
                                         linewidths=pt(width), linestyles=[(0, tuple(pt(d) for d in dashes))]))
        ax.text(3 + length + 1.5, y - row_h * 0.47, BOUNDARY_NAMES[level], ha="left", va="center",
                fontsize=font * 0.7, family=FONT)
        y -= row_h
    return y - 3


def _chart(fig, layout: SheetLayout, ax, content: SheetContent, y: float, room: float) -> Box | None:
    """The structure chart, its title wrapped to the panel, Vietnamese decimals."""
    panel, w, font = layout.panel, layout.panel.w, _font(layout.panel.w)
    chart_h = min(w * 0.55, 110.0, room)
    if not len(content.structure) or chart_h < 25:
        return None
    chars = max(12, int(w / (font * 0.62 * 0.3528)))  # characters per line at this size
    title = "\n".join(textwrap.wrap(content.chart_title, chars))
    ax.text(w / 2, y, title, ha="center", va="top", fontsize=font * 0.9, family=FONT, weight="bold",
            linespacing=1.2)
    top = y - (title.count("\n") + 1) * font * 0.9 * 0.3528 * 1.3 - 3
    box = Box(panel.x + w * 0.22, panel.y + top - chart_h + 8, w * 0.7, chart_h - 10)
    chart = fig.add_axes(box.fraction(layout.page_w, layout.page_h))
    data = content.structure.iloc[::-1]
    chart.barh(range(len(data)), data["share"] * 100, color=data["hex"], edgecolor="#000000", linewidth=pt(0.15))
    chart.set_yticks(range(len(data)), labels=data["code"], fontsize=font * 0.65, family=FONT)
    chart.tick_params(axis="x", labelsize=font * 0.6)
    chart.xaxis.set_major_formatter(FuncFormatter(lambda v, _: vn_number(v, 0)))
    for k, share in enumerate(data["share"]):
        chart.text(share * 100, k, " " + vn_number(share * 100, 1), va="center", fontsize=font * 0.55, family=FONT)
    chart.set_xlim(0, max(100 * data["share"].max() * 1.3, 1))
    for side in ("top", "right"):
        chart.spines[side].set_visible(False)
    return Box(panel.x, panel.y + top - chart_h, w, y - top + chart_h)


def _signatures(ax, layout: SheetLayout, content: SheetContent, zone: float) -> list[Box]:
    """The date line and three blocks side by side in the panel's bottom
    ``zone`` mm; returns each block's signing room (page mm)."""
    panel, w = layout.panel, layout.panel.w
    n = len(content.signatures)
    column = w / n
    lines = max(s.count("\n") + 1 for s in content.signatures)
    size = _font(w) * 0.62
    for text in content.signatures:  # shrink until the widest line of every block fits its column
        widest = max(text_width_pt(part, size, "bold") for part in text.split("\n")) / 72 * 25.4
        size = min(size, size * (column - 3) / widest) if widest > column - 3 else size
    line_mm = size * 0.3528 * 1.35
    top = zone - 2
    date_mm = text_width_pt(content.date_line, size) / 72 * 25.4
    ax.text(min(w - column / 2, w - 2 - date_mm / 2), top, content.date_line, ha="center", va="top", fontsize=size,
            family=FONT, style="italic")  # over the last block, and clear of the frame when wider than it
    title_top = top - line_mm - 2
    rooms = []
    for k, text in enumerate(content.signatures):
        for j, line in enumerate(text.split("\n")):  # titles bold, "(Ký tên, đóng dấu)" italic
            note = line.startswith("(")
            ax.text(column * (k + 0.5), title_top - j * line_mm, line, ha="center", va="top", fontsize=size,
                    family=FONT, weight="normal" if note else "bold", style="italic" if note else "normal")
        bottom_of_title = title_top - lines * line_mm
        rooms.append(Box(panel.x + column * k, panel.y + 2, column, bottom_of_title - 2))
    ax.plot([0, w], [zone, zone], color="#000000", linewidth=pt(0.2))
    return rooms


@lru_cache(maxsize=4096)
def _name_point(area) -> tuple[float, float]:
    """Where an inset names a unit: the centre of the widest circle inside it
    (kept: every sheet of a province draws the same inset units, and the circle
    of a commune's outline costs 4 ms)."""
    x, y = shapely.get_coordinates(shapely.maximum_inscribed_circle(area))[0]
    return float(x), float(y)


def _inset(fig, layout: SheetLayout, box: Box, content: SheetContent) -> None:
    ax = fig.add_axes(box.fraction(layout.page_w, layout.page_h))
    ax.set_axis_off()
    context = np.asarray(content.inset_context, dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(np.r_[context, [content.inset_highlight]])
    if np.isnan(x0):  # no boundary file and nothing of the unit to show
        ax.text(0.5, 0.5, "(không có tệp ranh giới)", ha="center", va="center", fontsize=7, family=FONT,
                style="italic", transform=ax.transAxes)
        return
    pad = 0.05 * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal", adjustable="box", anchor="C")
    ax.set_axis_off()
    fill(ax, context, "#F2F2F2")
    stroke(ax, context, "#808080", 0.15)
    if not shapely.is_empty(content.inset_highlight):
        fill(ax, np.array([content.inset_highlight]), "#E31A1C")
        stroke(ax, np.array([content.inset_highlight]), "#000000", 0.3)
    size = max(4.5, min(7.0, box.w / 22))
    m_per_pt = max((x1 - x0 + 2 * pad) / box.w, (y1 - y0 + 2 * pad) / box.h) / PT_PER_MM  # as set_aspect draws it
    for short, x, y in inset_names(content.inset_names, content.inset_highlight, size, m_per_pt):
        ax.text(x, y, short, ha="center", va="center", fontsize=size, family=FONT, color="#202020")


def inset_names(names: list[tuple[str, object]], highlight, size: float, m_per_pt: float
                ) -> list[tuple[str, float, float]]:
    """The inset's names that do not run into one another (text, x, y): the
    unit's own first, then the largest units'; a name with no room is left out."""
    named = [(name.removeprefix("Xã ").removeprefix("Huyện "), area, *_name_point(area)) for name, area in names
             if area is not None and not shapely.is_empty(area)]
    areas = np.array([area for _, area, _, _ in named], dtype=object)
    shared = np.zeros(len(named))
    near = shapely.intersects(areas, highlight)
    shared[near] = shapely.area(shapely.intersection(areas[near], highlight))
    own = int(np.argmax(shared)) if shared.any() else -1  # the unit highlighted
    order = sorted(range(len(named)), key=lambda k: (k != own, -shapely.area(areas[k])))
    kept: list[int] = []
    boxes = np.empty(len(named), dtype=object)
    for k in order:
        short, _, x, y = named[k]
        half_w, half_h = text_width_pt(short, size) * m_per_pt / 2, size * LINE_EM * m_per_pt / 2
        boxes[k] = shapely.box(x - half_w, y - half_h, x + half_w, y + half_h)
        if not shapely.intersects(boxes[k], boxes[kept]).any():
            kept.append(k)
    return [(named[k][0], named[k][2], named[k][3]) for k in sorted(kept)]  # drawn in the units' order


def draw_panel(fig, layout: SheetLayout, content: SheetContent) -> dict:
    """Draw the panel; return what was placed where (page mm) for the checks."""
    panel = layout.panel
    ax = MmCanvas(fig, panel)
    ax.add_patch(Rectangle((0, 0), panel.w, panel.h, fill=False, linewidth=pt(0.5)))
    w, font = panel.w, _font(panel.w)
    inset_h = min(w * 0.7, 120.0, panel.h * 0.25)
    ax.text(w / 2, panel.h - 3, content.inset_title, ha="center", va="top", fontsize=font * 0.9, family=FONT,
            weight="bold")
    _inset(fig, layout, Box(panel.x + 4, panel.y + panel.h - 8 - inset_h, w - 8, inset_h - 2), content)
    y = _legend(ax, content, w, panel.h - 10 - inset_h)
    notes = _note_lines(content, w)
    notes_h = len(notes) * NOTE_ROW_MM
    chart = _chart(fig, layout, ax, content, y, y - SIGNATURE_ZONE_MM - notes_h - 6)
    below = (chart.y - panel.y) if chart is not None else y
    zone = max(SIGNATURE_ZONE_MM, min(panel.h / 3, below - notes_h - 6))  # the panel's empty last third
    for k, line in enumerate(reversed(notes)):  # bottom-up, just above the signature blocks
        ax.text(2, zone + 1.5 + k * NOTE_ROW_MM, line, ha="left", va="bottom", fontsize=font * 0.5,
                family=FONT, style="italic")
    rooms = _signatures(ax, layout, content, zone)
    colours = landuse_colors()
    return {"legend_codes": list(content.legend["code"]),
            # each legend colour and how sure its source is (kiemke's choice for TT 08/2024's new codes: inferred)
            "legend_colours": {c: {"hex": colours.at[c, "hex"], "confidence": colours.at[c, "confidence"]}
                               for c in content.legend["code"] if c in colours.index},
            "legend_bottom_mm": panel.y + y,
            "chart_mm": None if chart is None else [chart.x, chart.y, chart.w, chart.h],
            "notes_mm": [panel.x, panel.y + zone, panel.w, notes_h],
            "signature_zone_mm": [panel.x, panel.y, panel.w, zone],
            "signing_mm": [[r.x, r.y, r.w, r.h] for r in rooms]}
