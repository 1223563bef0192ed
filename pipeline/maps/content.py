"""What a map sheet shows, from the unit's khoanh and the boundaries: the
title and unit line, the legend of the codes present, the boundaries by
level, the location inset, the land-use structure chart and the signatures."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..aggregate import expand_uses
from ..reference import landuse_tree
from ..regime import Template
from ..symbology import colour_of, legend_for
from ..units import Unit
from .render import SheetContent


def structure_for(khoanh: pd.DataFrame) -> pd.DataFrame:
    """Share of the natural area by level-2 code (SXN, LNP, OTC …), for the chart."""
    tree = landuse_tree()
    coded = khoanh[khoanh["landuse"].notna()].assign(commune_code="x")
    long = expand_uses(coded)
    level2 = long["landuse"].map(lambda c: ([c, *tree.ancestors(c)][::-1] + [c])[1])
    area = long.groupby(level2)["area_m2"].sum()
    area = area[[c for c in tree.codes if c in area.index and tree.in_natural_area(c)]]
    return pd.DataFrame({"code": area.index, "name_vi": [tree.name(c) for c in area.index],
                         "hex": [colour_of(c) for c in area.index],
                         "share": (area / area.sum()).to_numpy() if area.sum() else 0.0})


def sheet_content(unit: Unit, khoanh: gpd.GeoDataFrame, bounds: gpd.GeoDataFrame, template: Template,
                  *, year: int, meridian_dms: str, structure: pd.DataFrame | None = None) -> SheetContent:
    """Everything one sheet shows, from the unit's khoanh and the boundaries
    (the chart from the khoanh unless ``structure`` is given)."""
    maps = template.maps
    in_unit = bounds[bounds["commune_code"].isin(unit.communes)]
    communes = (in_unit.geometry.to_numpy() if len(in_unit) else
                np.array([shapely.union_all(g.geometry.values) for _, g in khoanh.groupby("commune_code")]))
    outline = shapely.union_all(communes)
    lines: dict[str, np.ndarray] = {"xa": communes}
    if unit.level in ("huyen", "tinh") and len(in_unit):
        lines["huyen"] = np.array([shapely.union_all(g.geometry.values) for _, g in in_unit.groupby("district_code")])
    if unit.level == "tinh":
        lines["tinh"] = np.array([outline])
    if unit.level == "xa":
        parent = bounds[bounds["district_code"] == unit.parent_code] if len(bounds) else bounds
        context = parent.geometry.to_numpy() if len(parent) else communes
    elif unit.level == "huyen":
        context = np.array([shapely.union_all(g.geometry.values) for _, g in bounds.groupby("district_code")]) \
            if len(bounds) else communes
    else:
        context = lines.get("huyen", communes)
    commune = (f"Xã {unit.commune_name}" if unit.commune_name and not unit.name.startswith(("Thị trấn", "Phường"))
               else unit.name)
    district = unit.name if unit.level == "huyen" else f"Huyện {unit.district_name}"
    names = {"commune": commune.upper(), "district": district.upper(),
             "province": f"Tỉnh {unit.province_name}".upper()}
    parts = {"xa": [unit.name, f"Huyện {unit.district_name}", f"Tỉnh {unit.province_name}"],
             "huyen": [unit.name, f"Tỉnh {unit.province_name}"], "tinh": [f"Tỉnh {unit.province_name}"]}[unit.level]
    codes = set(khoanh["landuse"].dropna())
    return SheetContent(
        title=maps["title"].format(year=year),
        unit_line=" - ".join(p.upper() for p in parts),
        khoanh=khoanh,
        legend=legend_for(codes),
        boundaries=lines,
        inset_context=context,
        inset_highlight=outline if unit.level != "tinh" else shapely.Polygon(),
        inset_title=maps["inset_title"][unit.level],
        structure=structure_for(khoanh) if structure is None else structure,
        crs_note=maps["crs_note"].format(meridian=meridian_dms.replace("'", "′")),
        signatures=[s.format(**names) for s in maps["signatures"][unit.level]],
    )
