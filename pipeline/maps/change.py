"""The change map of a unit (bản đồ biến động): the current layer in grey,
the areas whose use changed in the colour of their new use, labelled
"old→new", the current gaps hatched."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..change import GAP, OUTSIDE
from ..change.report import MIN_SHOWN_M2
from ..reference import landuse_tree
from ..regime import Template
from ..report import vn_number
from ..symbology import UNCHANGED_COLOR, colours_of, legend_for
from ..topology import union_coverage
from ..units import Unit
from .content import SheetContent, sheet_content


def change_display(pieces: pd.DataFrame, khoanh: pd.DataFrame) -> gpd.GeoDataFrame:
    """The change map's polygons: the current layer in grey (code ""), over it
    the changed areas in the colour of their new use, labelled "old→new", and
    the current gaps hatched. Previous area outside the current layer is not
    drawn."""
    changed = pieces[pieces["changed"].to_numpy() & ~pieces["to_leaf"].isin([GAP, OUTSIDE]).to_numpy()]
    label = np.where(changed["from_code"].to_numpy() == OUTSIDE, changed["to_code"].to_numpy(dtype=object),
                     changed["from_code"].astype(str) + "→" + changed["to_code"].astype(str))
    # coloured, labelled and in the legend by the code compared (RSX, not RSN/RST), as the labels say
    frame = pd.DataFrame({"landuse": changed["to_code"].to_numpy(dtype=object), "label": label,
                          "to_code": changed["to_code"].to_numpy()})
    keys, parts = [], []
    for key, index in frame.groupby(list(frame.columns), sort=False).groups.items():
        merged = shapely.get_parts(union_coverage(changed.geometry.values[np.asarray(index)]))
        parts.append(merged)
        keys += [key] * len(merged)
    coded = khoanh[khoanh["landuse"].notna()]
    background = shapely.get_parts(union_coverage(coded.geometry.values)) if len(coded) else []
    gaps = khoanh[khoanh["landuse"].isna()]
    rows = ([("", "", "", False)] * len(background) + [(*k, True) for k in keys]
            + [(None, "", "", False)] * len(gaps))
    geoms = np.r_[np.asarray(background, dtype=object), *parts, gaps.geometry.values]
    out = pd.DataFrame(rows, columns=["landuse", "label", "to_code", "changed"]).assign(area_m2=shapely.area(geoms))
    tiny = out["changed"] & (out.groupby(["to_code", "label"])["area_m2"].transform("sum") < MIN_SHOWN_M2)
    out = out[~tiny.to_numpy()]  # a change that rounds to 0,00 ha is not shown (it stays in transitions.csv)
    return gpd.GeoDataFrame(out, geometry=list(geoms[~tiny.to_numpy()]), crs=pieces.crs)


def change_structure(display: pd.DataFrame) -> pd.DataFrame:
    """Share of the changed area by new use (the change map's chart)."""
    tree = landuse_tree()
    area = display[display["changed"]].groupby("to_code")["area_m2"].sum()
    area = area[[c for c in tree.codes if c in area.index]]
    return pd.DataFrame({"code": area.index, "name_vi": [tree.name(c) for c in area.index],
                         "hex": colours_of(area.index),
                         "share": (area / area.sum()).to_numpy() if area.sum() else 0.0})


def change_sheet_content(unit: Unit, pieces: gpd.GeoDataFrame, khoanh: gpd.GeoDataFrame, bounds: gpd.GeoDataFrame,
                         template: Template, *, year: int, previous_year: int, meridian_dms: str,
                         context: gpd.GeoDataFrame | None = None,
                         outlines: dict[str, object] | None = None) -> SheetContent:
    """The change map of a unit: the current-use sheet's frame around the
    change pieces, with its own title, legend and chart (``outlines``: the
    communes' outlines where no boundary is given)."""
    display = change_display(pieces, khoanh)
    content = sheet_content(unit, display, bounds, template, year=year, meridian_dms=meridian_dms,
                            structure=change_structure(display), context=context, outlines=outlines)
    legend = legend_for(set(display.loc[display["changed"], "landuse"]))
    unchanged = pd.DataFrame([{"code": "", "name_vi": f"Không thay đổi mục đích sử dụng so với năm {previous_year}",
                               "hex": UNCHANGED_COLOR, "hatch": ""}])
    changed_ha = vn_number(display.loc[display["changed"], "area_m2"].sum() / 1e4)
    return replace(
        content, title=template.maps["change_title"].format(previous=previous_year, year=year),
        legend=pd.concat([legend, unchanged], ignore_index=True),
        chart_title="CƠ CẤU DIỆN TÍCH BIẾN ĐỘNG THEO MỤC ĐÍCH MỚI (%)",
        notes=[f"Khoanh màu: mục đích sử dụng năm {year} khác năm {previous_year} (nhãn: mã cũ→mã mới; "
               f"tổng {changed_ha} ha; không vẽ các biến động dưới 0,01 ha)"])
