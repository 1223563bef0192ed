"""Symbology shared by the map sheets, the QA plots and the QGIS styles:
official land-use colours and hatches, boundary lines, gap and QA colours.

Everything is read from the reference tables (``landuse_colors.csv``,
``data/map_hatches.csv``), never retyped, so maps and styles always agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources

import pandas as pd

from .reference import landuse_colors, landuse_tree

MISSING_COLOUR = "#FF00FF"  # a code without a colour: impossible to miss
GAP_COLOR = "#FFFFFF"
GAP_HATCH = "xx"
GAP_EDGE = "#D00000"
UNCHANGED_COLOR = "#E6E6E6"  # the change maps' unchanged area
BOUNDARY_STYLES = {  # level → (colour, width mm, dash pattern in mm)
    "xa": ("#000000", 0.35, (4.0, 1.0, 0.6, 1.0)),
    "huyen": ("#000000", 0.6, (5.0, 1.0, 0.6, 1.0, 0.6, 1.0)),
    "tinh": ("#000000", 0.9, (6.0, 1.2, 1.5, 1.2)),
}
BOUNDARY_NAMES = {"xa": "Ranh giới xã", "huyen": "Ranh giới huyện", "tinh": "Ranh giới tỉnh"}
QA_COLOURS = {  # QA layer → (RGBA fill, RGBA outline)
    "invalid": ("255,0,255,90", "200,0,200,255"),
    "overlaps": ("255,0,0,160", "200,0,0,255"),
    "duplicates": ("255,80,0,160", "200,60,0,255"),
    "gaps": ("255,255,0,200", "230,0,0,255"),
    "slivers": ("255,140,0,180", "200,90,0,255"),
    "crossings": ("0,120,255,160", "0,60,200,255"),
    "commune_overlaps": ("160,0,200,150", "110,0,150,255"),  # land two communes' khoanh both hold
}


#: The review layer's statuses (as the review workbook writes them) → (RGBA fill, RGBA outline).
REVIEW_COLOURS = {
    "Cách ly": ("230,0,0,120", "180,0,0,255"),
    "Suy đối tượng": ("255,170,0,90", "200,120,0,255"),
    "Chuyển mã": ("0,120,255,90", "0,70,200,255"),
    "Đã sửa theo cán bộ": ("0,170,60,90", "0,120,40,255"),
}


@cache
def hatches() -> dict[str, str]:
    """Land-use code → matplotlib hatch of the codes drawn hatched."""
    with (resources.files("pipeline") / "data" / "map_hatches.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str)
    return dict(zip(table["code"], table["hatch"], strict=True))


def colours_of(codes: Iterable[str]) -> list[str]:
    """The official fill colour (hex) of each land-use code, the regime's
    colour table read once (0.5 ms each time: not per code)."""
    colours = landuse_colors()["hex"]
    return [str(colours[c]) if c in colours.index else MISSING_COLOUR for c in codes]


def legend_for(codes: set[str]) -> pd.DataFrame:
    """The legend rows for the codes present, in code-tree order, with colour and hatch."""
    tree = landuse_tree()
    present = [c for c in tree.codes if c in codes]
    return pd.DataFrame({
        "code": present, "name_vi": [tree.name(c) for c in present],
        "hex": colours_of(present), "hatch": [hatches().get(c, "") for c in present],
    })


def rgba(hex_colour: str, alpha: int = 255) -> str:
    """``#RRGGBB`` → ``"r,g,b,a"`` as QGIS writes colours."""
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


def rgba_to_hex(text: str) -> str:
    """``"r,g,b,a"`` → ``#RRGGBB``."""
    return "#" + "".join(f"{int(v):02X}" for v in text.split(",")[:3])
