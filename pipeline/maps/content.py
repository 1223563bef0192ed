"""What a map sheet shows, from the unit's khoanh and the boundaries: the
title and unit line, the legend of the codes present, the boundaries by
level, the names of the units on it and of its neighbours, the location
inset, the land-use structure chart and the signature blocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..aggregate import expand_uses
from ..reference import landuse_tree
from ..regime import Template
from ..symbology import colours_of, legend_for
from ..topology import union_coverage
from ..units import Unit

UNIT_NAME_PT = 18.0  # the communes on a district sheet, the districts on the province sheet
NEIGHBOUR_PT = 14.0  # the units around the sheet's unit
TOUCH_M = 50.0  # a neighbour shares at least this much of the outline (metres of buffer)
APART_M = 10.0  # polygons of a boundary file this close but not sharing their line were digitised apart


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
    date_line: str = "…………, ngày …… tháng …… năm ……"
    names: list[tuple[str, object, float, str]] = field(default_factory=list)  # text, area, size pt, kind
    inset_names: list[tuple[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chart_title: str = "CƠ CẤU SỬ DỤNG ĐẤT (%)"
    lines: dict[str, object] | None = None  # the boundaries' lines (linework.boundary_lines) when worked out already


def structure_for(khoanh: pd.DataFrame) -> pd.DataFrame:
    """Share of the natural area by level-2 code (SXN, LNP, OTC …), for the chart."""
    tree = landuse_tree()
    coded = khoanh[khoanh["landuse"].notna()].assign(commune_code="x")
    long = expand_uses(coded)
    level2 = long["landuse"].map({c: ([c, *tree.ancestors(c)][::-1] + [c])[1] for c in long["landuse"].unique()})
    area = long.groupby(level2)["area_m2"].sum()
    area = area[[c for c in tree.codes if c in area.index and tree.in_natural_area(c)]]
    return pd.DataFrame({"code": area.index, "name_vi": [tree.name(c) for c in area.index],
                         "hex": colours_of(area.index),
                         "share": (area / area.sum()).to_numpy() if area.sum() else 0.0})


def unit_kind(name: str, default: str = "Xã") -> str:
    """"Thị trấn", "Phường", "Xã", "Huyện", "Quận", "Thành phố", "Thị xã" or
    "Tỉnh": how a unit's name begins (``default`` when it names no kind)."""
    for kind in ("Thị trấn", "Phường", "Thành phố", "Thị xã", "Huyện", "Quận", "Tỉnh", "Xã"):
        if name.startswith(kind + " "):
            return kind
    return default


def district_title(district_name: str) -> str:
    """A district as a sheet names it: "Huyện Văn Quan", and a city, town or
    urban district by its own kind ("Thành phố Lạng Sơn", not "Huyện Lạng Sơn")."""
    kind = unit_kind(district_name, default="")
    return district_name if kind in ("Thành phố", "Thị xã", "Quận") else f"Huyện {district_name}"


def _communes_named(frame: gpd.GeoDataFrame) -> list[tuple[str, object]]:
    return [(str(n), g) for n, g in zip(frame["commune_name"], frame.geometry.values, strict=True)]


def _districts(bounds: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """District polygons (dissolved communes) with their names."""
    if bounds.empty:
        return gpd.GeoDataFrame(columns=["district_code", "district_name", "geometry"], geometry="geometry")
    return bounds.dissolve(by="district_code", aggfunc={"district_name": "first"}).reset_index()


def _around(unit: Unit, outline, context: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The units around ``outline`` (``name``, ``code``, geometry): communes
    around a commune, districts around a district and the district's own
    communes outside this inventory (the province's neighbours are not in
    the boundary files)."""
    if unit.level == "tinh" or context.empty or shapely.is_empty(outline):
        return gpd.GeoDataFrame({"name": [], "code": []}, geometry=[])
    units = (context.rename(columns={"commune_name": "name", "commune_code": "code"}) if unit.level == "xa"
             else _districts(context).rename(columns={"district_name": "name", "district_code": "code"}))
    mine = set(unit.communes) if unit.level == "xa" else {unit.code}
    near = units[units.geometry.intersects(shapely.buffer(outline, TOUCH_M)) & ~units["code"].isin(mine)]
    if unit.level == "huyen":
        own = context[(context["district_code"] == unit.code) & ~context["commune_code"].isin(unit.communes)]
        near = pd.concat([near, own.rename(columns={"commune_name": "name", "commune_code": "code"})])
    return near


def _neighbours(near: gpd.GeoDataFrame, outline) -> list[tuple[str, object, float, str]]:
    """The names of the units around (:func:`_around`), each for its part off ``outline``."""
    rest = [shapely.difference(g, outline) for g in near.geometry.values]
    return [(str(n), area, NEIGHBOUR_PT, "neighbour") for n, area in zip(near["name"], rest, strict=True)
            if isinstance(n, str) and not shapely.is_empty(area)]


def _lines_around(communes: np.ndarray, near: gpd.GeoDataFrame) -> np.ndarray:
    """The communes around a commune whose lines the sheet draws (between them,
    up to the commune's own): where they and the commune make one clean
    coverage, each shared line once; none where the boundary file's polygons
    were digitised apart (two lines metres apart where one runs, as the 2009
    boundaries of Lạng Sơn: 956 gaps, 2 346 ha of overlap)."""
    around = np.asarray(near.geometry.values, dtype=object)
    if not len(around) or not shapely.coverage_is_valid(np.concatenate([communes, around]), gap_width=APART_M):
        return np.array([], dtype=object)
    return around


def _inset(unit: Unit, outline, bounds: gpd.GeoDataFrame, context: gpd.GeoDataFrame):
    """The inset's units (the parent's sub-units), their names, the unit
    highlighted and which of the template's inset titles fits: a commune of
    no known district is shown among the province's communes (alone where
    no boundary is given)."""
    if unit.without_districts or unit.in_unknown_district:  # the province's communes
        parent = context if not context.empty else bounds
        alone = unit.in_unknown_district and parent.empty
        title = "xa_alone" if alone else "xa_without_districts" if unit.level == "xa" else "tinh"
        return (parent.geometry.to_numpy(), _communes_named(parent),
                outline if unit.level == "xa" else shapely.Polygon(), title)
    if unit.level == "xa":
        parent = context[context["district_code"] == unit.parent_code]
        if parent.empty:
            parent = bounds[bounds["district_code"] == unit.parent_code]
        return parent.geometry.to_numpy(), _communes_named(parent), outline, "xa"
    districts = _districts(context if not context.empty else bounds)
    names = [(str(n), g) for n, g in zip(districts["district_name"], districts.geometry.values, strict=True)]
    return districts.geometry.to_numpy(), names, outline if unit.level == "huyen" else shapely.Polygon(), unit.level


def _inner_names(unit: Unit, in_unit: gpd.GeoDataFrame,
                 areas: dict[str, object]) -> list[tuple[str, object, float, str]]:
    """The communes on a district sheet (on a province sheet without
    districts), the districts on the province sheet: from the boundaries, or
    where none is given (``in_unit`` empty) in their communes' ``areas``, named
    as the units are (``[[communes]]``, else the code), the unknown district not."""
    if unit.level == "huyen" or (unit.level == "tinh" and unit.without_districts):
        in_areas = [(c.name, areas[c.code]) for c in unit.children if c.code in areas]
        named = _communes_named(in_unit) if len(in_unit) else in_areas
    elif unit.level == "tinh" and len(in_unit):
        districts = _districts(in_unit)
        named = list(zip(districts["district_name"], districts.geometry.values, strict=True))
    elif unit.level == "tinh":
        named = [(d.name, shapely.union_all([areas[c] for c in d.communes if c in areas])) for d in unit.children
                 if not d.unknown_district and any(c in areas for c in d.communes)]
    else:
        named = []
    return [(str(name).upper(), area, UNIT_NAME_PT, "unit") for name, area in named]


def _commune_areas(unit: Unit, khoanh: gpd.GeoDataFrame, outlines: dict[str, object]) -> dict[str, object]:
    """The communes' areas by code where no boundary is given: the outlines
    the khoanh stage wrote, else the union of each commune's khoanh (of all
    that is drawn, under no code, for a change map's pieces, which carry none)."""
    if "commune_code" not in khoanh:
        found = {c: outlines[c] for c in unit.communes if c in outlines}
        return found or {"": union_coverage(khoanh.geometry.values)}
    return {str(c): outlines[c] if c in outlines else union_coverage(g.geometry.values)
            for c, g in khoanh.groupby("commune_code")}


def _names_shown(unit: Unit) -> tuple[str, str]:
    """The unit's name and its district's as a sheet shows them (a commune
    known by its code alone is "Xã <code>": :func:`~pipeline.units.nameless_commune`);
    no district where none is known (its signature block leaves the name to fill in)."""
    return unit.name, "" if unit.in_unknown_district else unit.district_name


def sheet_content(unit: Unit, khoanh: gpd.GeoDataFrame, bounds: gpd.GeoDataFrame, template: Template,
                  *, year: int, meridian_dms: str, structure: pd.DataFrame | None = None,
                  context: gpd.GeoDataFrame | None = None, outlines: dict[str, object] | None = None,
                  union: Callable[[np.ndarray], object] = shapely.union_all) -> SheetContent:
    """Everything one sheet shows, from the unit's khoanh and the boundaries
    (``context``: the wider boundaries the neighbours are named from; the
    chart from the khoanh unless ``structure`` is given; ``outlines``: the
    communes' outlines by code where no boundary is given, else the union
    of their khoanh; ``union``: how the communes make the unit's outline)."""
    maps = template.maps
    context = bounds if context is None else context
    in_unit = bounds[bounds["commune_code"].isin(unit.communes)]
    areas = {} if len(in_unit) else _commune_areas(unit, khoanh, outlines or {})
    communes = in_unit.geometry.to_numpy() if len(in_unit) else np.array(list(areas.values()), dtype=object)
    outline = union(communes)
    lines: dict[str, np.ndarray] = {"xa": communes}
    if unit.level in ("huyen", "tinh") and len(in_unit) and not unit.without_districts:
        lines["huyen"] = _districts(in_unit).geometry.to_numpy()
    if unit.level == "tinh":
        lines["tinh"] = np.array([outline])
    near = _around(unit, outline, context)
    if unit.level == "xa":
        lines["xa"] = np.concatenate([communes, _lines_around(communes, near)])
    inset_units, inset_names, highlight, inset_kind = _inset(unit, outline, bounds, context)
    name, district = _names_shown(unit)
    district = district_title(district) if district else ""
    kind = unit_kind(district if unit.level == "huyen" else unit.name)
    names = {"commune": name.upper(), "district": (district or "Huyện ……………").upper(),
             "province": unit.province_heading.upper()}
    parts = {"xa": [name, *([district] if district else []), unit.province_heading],
             "huyen": [district, unit.province_heading], "tinh": [unit.province_heading]}[unit.level]
    codes = set(khoanh["landuse"].dropna())
    return SheetContent(
        title=maps["title"].format(year=year),
        unit_line=" - ".join(p.upper() for p in parts),
        khoanh=khoanh,
        legend=legend_for(codes),
        boundaries=lines,
        inset_context=inset_units,
        inset_highlight=highlight,
        inset_title=maps["inset_title"][inset_kind].format(
            kind=kind.upper(), district_kind=unit_kind(district, "Huyện").upper(),
            province_kind=unit_kind(unit.province_heading, "Tỉnh").upper()),
        structure=structure_for(khoanh) if structure is None else structure,
        crs_note=maps["crs_note"].format(meridian=meridian_dms.replace("'", "′")),
        signatures=[s.format(**names) for s in unit.variant(maps["signatures"], unit.level)],
        date_line=maps.get("date_line", "…………, ngày …… tháng …… năm ……"),
        names=_inner_names(unit, in_unit, areas) + _neighbours(near, outline),
        inset_names=inset_names,
    )


def drawing_khoanh(content: SheetContent, khoanh: gpd.GeoDataFrame) -> SheetContent:
    """The same sheet drawing other khoanh (generalised): its legend the codes
    they show; boundaries, names and the chart as they were."""
    return replace(content, khoanh=khoanh, legend=legend_for(set(khoanh["landuse"].dropna())))
