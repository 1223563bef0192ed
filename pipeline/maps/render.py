"""Drawing a current land-use map sheet with matplotlib, fast.

Fills are one compound path per land-use code, built straight from shapely's
coordinate arrays (``to_ragged_array``), so 50 000 khoanh cost a few patches,
not 50 000 artists. Labels are placed greedily, largest khoanh first, only
where the label box fits inside its khoanh and touches no other label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import FancyArrow, Rectangle  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.textpath import TextPath, TextToPath  # noqa: E402

from ..drawing import PT_PER_MM, fill, pt, stroke  # noqa: E402
from ..io import atomic_path, write_json  # noqa: E402
from ..symbology import BOUNDARY_NAMES, BOUNDARY_STYLES, GAP_COLOR, GAP_EDGE, GAP_HATCH, MISSING_COLOUR  # noqa: E402
from .layout import Box, SheetLayout, format_scale, grid_spacing  # noqa: E402

FONT = "DejaVu Sans"  # shipped with matplotlib; covers every Vietnamese letter
LABEL_PT = 6.0


@dataclass
class SheetContent:
    """What one sheet shows (all geometry in the province's VN-2000 TM-3, metres)."""

    title: str
    unit_line: str
    khoanh: pd.DataFrame  # columns landuse (None for gaps), geometry; optional label (text printed, else landuse)
    legend: pd.DataFrame  # code, name_vi, hex, hatch: the codes present, in code-tree order
    boundaries: dict[str, np.ndarray]  # level → polygons whose outlines are drawn
    inset_context: np.ndarray  # the parent's sub-units
    inset_highlight: object  # the unit itself
    inset_title: str
    structure: pd.DataFrame  # code, name_vi, hex, share (0–1), for the structure chart
    crs_note: str
    signatures: list[str]
    notes: list[str] = field(default_factory=list)
    chart_title: str = "CƠ CẤU SỬ DỤNG ĐẤT (%)"


@dataclass
class RenderResult:
    """What was drawn where (also written next to the map as JSON)."""

    layout: SheetLayout
    labels: pd.DataFrame  # text, x_mm, y_mm, w_mm, h_mm (boxes on the page)
    legend_codes: list[str]

    def to_json(self) -> dict:
        lay = self.layout
        return {
            "scale": lay.scale, "paper": lay.paper, "page_mm": [lay.page_w, lay.page_h],
            "extent_m": list(lay.extent), "map_box_mm": [lay.map_box.x, lay.map_box.y, lay.map_box.w, lay.map_box.h],
            "legend_codes": self.legend_codes, "labels": len(self.labels),
        }


# ---------------------------------------------------------------- geometry → paths


# -------------------------------------------------------------------- labels


def text_widthpt(text: str, size_pt: float) -> float:
    """Advance width of ``text`` in the map font, in points (exact font metrics)."""
    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(family=FONT, size=size_pt), False)
    return float(width)


def place_labels(geoms: np.ndarray, texts: np.ndarray, layout: SheetLayout, size_pt: float = LABEL_PT) -> pd.DataFrame:
    """Greedy label placement: biggest khoanh first; a label is kept only when its
    box lies inside its khoanh and overlaps no label already kept."""
    columns = ["text", "x", "y", "w_m", "h_m"]
    if not len(geoms):
        return pd.DataFrame(columns=columns)
    h_mm = size_pt / PT_PER_MM * 1.25  # above the font's line height (ascent + descent ≈ 1.16 em)
    widths = {t: text_widthpt(t, size_pt) for t in set(texts)}
    w_mm = np.array([widths[t] for t in texts]) / PT_PER_MM + 0.5
    m_per_mm = 1 / layout.mm_per_m
    points = shapely.point_on_surface(geoms)
    xy = shapely.get_coordinates(points)
    half_w = w_mm * m_per_mm / 2
    half_h = np.full(len(half_w), h_mm * m_per_mm / 2)
    boxes = shapely.box(xy[:, 0] - half_w, xy[:, 1] - half_h, xy[:, 0] + half_w, xy[:, 1] + half_h)
    shapely.prepare(geoms)
    fits = np.flatnonzero(shapely.contains(geoms, boxes))
    fits = fits[np.argsort(-shapely.area(geoms[fits]), kind="stable")]
    cell = 4 * max(float(half_w.max()), float(half_h.max()))
    taken: dict[tuple[int, int], list[int]] = {}
    kept: list[int] = []
    for i in fits:
        x0, y0 = xy[i] - (half_w[i], half_h[i])
        x1, y1 = xy[i] + (half_w[i], half_h[i])
        keys = [(cx, cy) for cx in range(int(x0 // cell), int(x1 // cell) + 1)
                for cy in range(int(y0 // cell), int(y1 // cell) + 1)]
        clash = any(
            not (x1 <= xy[j, 0] - half_w[j] or x0 >= xy[j, 0] + half_w[j]
                 or y1 <= xy[j, 1] - half_h[j] or y0 >= xy[j, 1] + half_h[j])
            for key in keys for j in taken.get(key, ()))
        if clash:
            continue
        kept.append(int(i))
        for key in keys:
            taken.setdefault(key, []).append(int(i))
    kept_arr = np.array(kept, dtype=int)
    return pd.DataFrame({"text": np.asarray(texts)[kept_arr], "x": xy[kept_arr, 0], "y": xy[kept_arr, 1],
                         "w_m": 2 * half_w[kept_arr], "h_m": 2 * half_h[kept_arr]})


# ------------------------------------------------------------------- drawing


def _axes_mm(fig, box: Box, layout: SheetLayout, **kwargs):
    """Axes covering ``box`` whose data units are millimetres from its corner."""
    ax = fig.add_axes(box.fraction(layout.page_w, layout.page_h), **kwargs)
    ax.set_xlim(0, box.w)
    ax.set_ylim(0, box.h)
    ax.set_axis_off()
    return ax


def draw_fills(ax, content: SheetContent) -> None:
    khoanh = content.khoanh
    style = content.legend.set_index("code")
    for code, group in khoanh[khoanh["landuse"].notna()].groupby("landuse", sort=False):
        colour = style.at[code, "hex"] if code in style.index else MISSING_COLOUR
        fill(ax, group.geometry.values, colour, style.at[code, "hatch"] if code in style.index else "")
    gaps = khoanh[khoanh["landuse"].isna()]
    if len(gaps):
        fill(ax, gaps.geometry.values, GAP_COLOR, GAP_HATCH, GAP_EDGE)


def draw_map(fig, layout: SheetLayout, content: SheetContent) -> pd.DataFrame:
    """The map itself: fills, khoanh edges, boundaries, labels, grid, north arrow."""
    x0, y0, x1, y1 = layout.extent
    ax = fig.add_axes(layout.map_box.fraction(layout.page_w, layout.page_h))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box", anchor="C")
    ax.set_axis_off()
    draw_fills(ax, content)
    stroke(ax, content.khoanh.geometry.values, "#6E6E6E", 0.08)
    for level, polygons in content.boundaries.items():
        colour, width, dashes = BOUNDARY_STYLES[level]
        stroke(ax, polygons, colour, width, dashes)
    texts = content.khoanh["label"] if "label" in content.khoanh else content.khoanh["landuse"]
    labelled = texts.notna() & texts.astype(str).ne("")
    labels = place_labels(content.khoanh.geometry.values[labelled.to_numpy()], texts[labelled].to_numpy(), layout)
    draw_labels(fig, ax, labels)
    _draw_grid(fig, ax, layout)
    return labels


def draw_labels(fig, ax, labels: pd.DataFrame, size_pt: float = LABEL_PT) -> None:
    """Code labels as glyph outlines: one shape per distinct code, stamped at every
    position (the PDF stores each code once), centred on the placement point."""
    prop = FontProperties(family=FONT)
    for text, group in labels.groupby("text", sort=True):
        glyphs = TextPath((0, 0), text, size=size_pt, prop=prop)
        box = glyphs.get_extents()
        centred = MplPath((glyphs.vertices - [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]) / 72, glyphs.codes)
        ax.add_collection(PathCollection([centred], offsets=group[["x", "y"]].to_numpy(),
                                         offset_transform=ax.transData, transform=fig.dpi_scale_trans,
                                         facecolors=["#202020"], edgecolors="none", linewidths=[0]),
                          autolim=False)


def _draw_grid(fig, ax, layout: SheetLayout) -> None:
    """VN-2000 kilometre grid: crosses inside the map, labelled ticks on the frame."""
    x0, y0, x1, y1 = layout.extent
    step = grid_spacing(layout.scale)
    xs = np.arange(np.ceil(x0 / step) * step, x1, step)
    ys = np.arange(np.ceil(y0 / step) * step, y1, step)
    cross = 2.0 / layout.mm_per_m  # 2 mm arms
    segments = []
    for x in xs:
        for y in ys:
            segments += [[(x - cross, y), (x + cross, y)], [(x, y - cross), (x, y + cross)]]
    ax.add_collection(LineCollection(segments, colors="#000000", linewidths=pt(0.15)))
    frame = _axes_mm(fig, layout.frame, layout)
    frame.add_patch(Rectangle((0, 0), layout.frame.w, layout.frame.h, fill=False, linewidth=pt(0.8),
                              edgecolor="#000000", gid="neatline"))
    inner = layout.map_box
    off_x, off_y = inner.x - layout.frame.x, inner.y - layout.frame.y
    frame.add_patch(Rectangle((off_x, off_y), inner.w, inner.h, fill=False, linewidth=pt(0.25)))
    fmt = (lambda v: f"{v / 1000:.1f}") if step % 1000 else (lambda v: f"{v / 1000:.0f}")
    for x in xs:
        px = off_x + (x - x0) * layout.mm_per_m
        for yb, va in ((off_y, "top"), (off_y + inner.h, "bottom")):
            frame.plot([px, px], [yb, yb + (-1.5 if va == "top" else 1.5)], color="#000000", linewidth=pt(0.2))
            frame.text(px, yb + (-2 if va == "top" else 2), fmt(x), ha="center", va=va, fontsize=6, family=FONT)
    for y in ys:
        py = off_y + (y - y0) * layout.mm_per_m
        for xb, ha in ((off_x, "right"), (off_x + inner.w, "left")):
            frame.plot([xb, xb + (-1.5 if ha == "right" else 1.5)], [py, py], color="#000000", linewidth=pt(0.2))
            frame.text(xb + (-2 if ha == "right" else 2), py, fmt(y), ha=ha, va="center", fontsize=6,
                       family=FONT, rotation=90)
    # north arrow, top right inside the map
    ax_n = _axes_mm(fig, Box(inner.x + inner.w - 16, inner.y + inner.h - 22, 12, 18), layout)
    ax_n.add_patch(FancyArrow(6, 2, 0, 11, width=2.2, head_width=6, head_length=5, color="#000000"))
    ax_n.text(6, 17.5, "B", ha="center", va="center", fontsize=9, family=FONT, weight="bold")


def draw_title(fig, layout: SheetLayout, content: SheetContent) -> None:
    ax = _axes_mm(fig, layout.title_box, layout)
    size = min(22.0, max(12.0, layout.page_w / 45))
    ax.text(layout.title_box.w / 2, layout.title_box.h * 0.62, content.title, ha="center", va="center",
            fontsize=size, family=FONT, weight="bold")
    ax.text(layout.title_box.w / 2, layout.title_box.h * 0.22, content.unit_line, ha="center", va="center",
            fontsize=size * 0.65, family=FONT, weight="bold")


def draw_bottom(fig, layout: SheetLayout, content: SheetContent) -> None:
    """Scale ratio, scale bar and the CRS note under the frame."""
    box = layout.bottom_box
    ax = _axes_mm(fig, box, layout)
    ax.text(box.w / 2, box.h - 1, f"TỶ LỆ {format_scale(layout.scale)}", ha="center", va="top", fontsize=10,
            family=FONT, weight="bold")
    # scale bar: 4 segments of a round length, about 1/4 of the frame
    target = box.w / 4 / layout.mm_per_m
    unit = next(u for u in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000)
                if u * 4 >= target * 0.5)
    seg = unit * layout.mm_per_m
    left = box.w / 2 - 2 * seg
    for k in range(4):
        ax.add_patch(Rectangle((left + k * seg, box.h - 10), seg, 1.5, facecolor="#000000" if k % 2 == 0 else "#FFFFFF",
                               edgecolor="#000000", linewidth=pt(0.2)))
        label = f"{k * unit / 1000:g} km" if unit >= 1000 else f"{k * unit:g}"
        ax.text(left + k * seg, box.h - 10.8, label, ha="center", va="top", fontsize=6, family=FONT)
    end = f"{4 * unit / 1000:g} km" if unit * 4 >= 1000 else f"{4 * unit:g} m"
    ax.text(left + 4 * seg, box.h - 10.8, end, ha="center", va="top", fontsize=6, family=FONT)
    ax.text(0, 1, content.crs_note, ha="left", va="bottom", fontsize=7, family=FONT, style="italic")


def draw_panel(fig, layout: SheetLayout, content: SheetContent) -> list[str]:
    """Side panel: location inset, legend (codes present), structure chart, signatures."""
    panel = layout.panel
    ax = _axes_mm(fig, panel, layout)
    ax.add_patch(Rectangle((0, 0), panel.w, panel.h, fill=False, linewidth=pt(0.5)))
    w, top = panel.w, panel.h
    font = max(6.0, min(14.0, w / 9))

    # location inset
    inset_h = min(w * 0.75, panel.h * 0.22)
    ax.text(w / 2, top - 3, content.inset_title, ha="center", va="top", fontsize=font, family=FONT, weight="bold")
    inset_box = Box(panel.x + 4, panel.y + top - 6 - inset_h, w - 8, inset_h - 4)
    _draw_inset(fig, layout, inset_box, content)
    y = top - 8 - inset_h

    # legend
    ax.text(w / 2, y, "CHÚ DẪN", ha="center", va="top", fontsize=font * 1.15, family=FONT, weight="bold")
    y -= font * 0.55 + 2
    row_h = max(3.2, font * 0.5)
    sw_w = min(10.0, w * 0.14)
    for item in content.legend.itertuples():
        ax.add_patch(Rectangle((3, y - row_h * 0.85), sw_w, row_h * 0.75, facecolor=item.hex, edgecolor="#000000",
                               linewidth=pt(0.15), hatch=item.hatch or None))
        ax.text(3 + sw_w / 2, y - row_h * 0.47, item.code, ha="center", va="center", fontsize=font * 0.7,
                family=FONT)
        ax.text(5 + sw_w, y - row_h * 0.47, item.name_vi, ha="left", va="center", fontsize=font * 0.7,
                family=FONT, wrap=True, gid=f"legend-{item.code}")
        y -= row_h
    if content.khoanh["landuse"].isna().any():
        ax.add_patch(Rectangle((3, y - row_h * 0.85), sw_w, row_h * 0.75, facecolor=GAP_COLOR, edgecolor=GAP_EDGE,
                               linewidth=pt(0.15), hatch=GAP_HATCH))
        ax.text(5 + sw_w, y - row_h * 0.47, "Khoảng hở chưa xác định loại đất", ha="left", va="center",
                fontsize=font * 0.7, family=FONT)
        y -= row_h
    for level in content.boundaries:
        colour, width, dashes = BOUNDARY_STYLES[level]
        ax.add_collection(LineCollection([[(3, y - row_h * 0.47), (3 + sw_w, y - row_h * 0.47)]], colors=colour,
                                         linewidths=pt(width), linestyles=[(0, tuple(pt(d) for d in dashes))]))
        ax.text(5 + sw_w, y - row_h * 0.47, BOUNDARY_NAMES[level], ha="left", va="center", fontsize=font * 0.7,
                family=FONT)
        y -= row_h
    y -= 3

    # land-use structure chart
    chart_h = min(w * 0.7, max(25.0, y - panel.h * 0.2))
    if len(content.structure) and chart_h > 20:
        ax.text(w / 2, y, content.chart_title, ha="center", va="top", fontsize=font, family=FONT,
                weight="bold")
        chart = fig.add_axes(Box(panel.x + w * 0.32, panel.y + y - chart_h - 2, w * 0.6, chart_h - 6)
                             .fraction(layout.page_w, layout.page_h))
        data = content.structure.iloc[::-1]
        chart.barh(range(len(data)), data["share"] * 100, color=data["hex"], edgecolor="#000000",
                   linewidth=pt(0.15))
        chart.set_yticks(range(len(data)), labels=data["code"], fontsize=font * 0.65, family=FONT)
        chart.tick_params(axis="x", labelsize=font * 0.6)
        for k, share in enumerate(data["share"]):
            chart.text(share * 100, k, f" {share * 100:.1f}", va="center", fontsize=font * 0.55, family=FONT)
        chart.set_xlim(0, max(100 * data["share"].max() * 1.25, 1))
        for side in ("top", "right"):
            chart.spines[side].set_visible(False)
        y -= chart_h + 2

    # signatures
    ax.text(w / 2, 24, "…………, ngày …… tháng …… năm ……", ha="center", va="center", fontsize=font * 0.7,
            family=FONT, style="italic")
    n = len(content.signatures)
    for k, text in enumerate(content.signatures):
        ax.text(w * (k + 0.5) / n, 19, text, ha="center", va="top", fontsize=font * 0.7, family=FONT,
                weight="bold", linespacing=1.3)
    for k, note in enumerate(content.notes):
        ax.text(2, 3 + k * 3, note, ha="left", va="bottom", fontsize=font * 0.5, family=FONT, style="italic")
    return list(content.legend["code"])


def _draw_inset(fig, layout: SheetLayout, box: Box, content: SheetContent) -> None:
    ax = fig.add_axes(box.fraction(layout.page_w, layout.page_h))
    context = np.asarray(content.inset_context, dtype=object)
    everything = shapely.union_all(np.r_[context, [content.inset_highlight]])
    x0, y0, x1, y1 = everything.bounds
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


def render_sheet(layout: SheetLayout, content: SheetContent, pdf: Path, png: Path | None = None,
                 dpi: int = 150, extra: dict | None = None) -> RenderResult:
    """Draw one sheet; write the vector PDF (true scale) and a PNG preview."""
    fig = plt.figure(figsize=(layout.page_w / 25.4, layout.page_h / 25.4))
    try:
        labels = draw_map(fig, layout, content)
        draw_title(fig, layout, content)
        draw_bottom(fig, layout, content)
        codes = draw_panel(fig, layout, content)
        metadata = {"Title": f"{content.title} — {content.unit_line}", "Creator": "kiemke",
                    "Subject": f"{format_scale(layout.scale)}; {content.crs_note}"}
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata=metadata)
        if png is not None:
            with atomic_path(png) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    mm = layout.mm_per_m
    x0, y0 = layout.extent[:2]
    boxes = pd.DataFrame({
        "text": labels["text"],
        "x_mm": layout.map_box.x + (labels["x"] - labels["w_m"] / 2 - x0) * mm,
        "y_mm": layout.map_box.y + (labels["y"] - labels["h_m"] / 2 - y0) * mm,
        "w_mm": labels["w_m"] * mm, "h_mm": labels["h_m"] * mm,
    })
    result = RenderResult(layout, boxes, codes)
    write_json(pdf.with_suffix(".json"), {**result.to_json(), **(extra or {}),
                                          "label_boxes_mm": boxes.round(3).values.tolist()})
    return result
