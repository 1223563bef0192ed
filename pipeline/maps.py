"""Maps: current land-use map sheets (bản đồ hiện trạng sử dụng đất) for every
commune, district and the province: ``maps/<level>_<unit>.pdf`` (vector, true
scale, for print) and ``.png`` (150 dpi preview), from the khoanh đất; and,
when a previous inventory was compared, the change maps
``maps/bien_dong_<level>_<unit>`` (changed areas in the colour of their new use,
the rest grey).

Scale from Circular 27/2018 Art. 18(4) by level and natural area (optionally
one step up or down), official colours and hatches, code labels, boundaries,
title, legend of the codes present, scale ratio and bar, north arrow,
VN-2000 kilometre grid, location inset, land-use structure chart, CRS note and
signature blocks. Layout in :mod:`pipeline.map_layout`, drawing in
:mod:`pipeline.map_render`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .aggregate import expand_uses
from .boundaries import load_boundaries
from .config import WorkDir
from .forms import Template, Unit, build_units, load_template
from .map_layout import regulation_scale, sheet_layout
from .map_render import SheetContent, render_sheet
from .reference import landuse_colors, landuse_tree, province as find_province
from .topology import union_coverage

log = logging.getLogger(__name__)


@cache
def hatches() -> dict[str, str]:
    with (resources.files("pipeline") / "data" / "map_hatches.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str)
    return dict(zip(table["code"], table["hatch"]))


def legend_for(codes: set[str]) -> pd.DataFrame:
    """The legend rows for the codes present, in code-tree order, with colour and hatch."""
    tree = landuse_tree()
    colours = landuse_colors()
    present = [c for c in tree.codes if c in codes]
    return pd.DataFrame({
        "code": present, "name_vi": [tree.name(c) for c in present],
        "hex": [colours.at[c, "hex"] for c in present], "hatch": [hatches().get(c, "") for c in present],
    })


def structure_for(khoanh: pd.DataFrame) -> pd.DataFrame:
    """Share of the natural area by level-2 code (SXN, LNP, OTC …), for the chart."""
    tree = landuse_tree()
    coded = khoanh[khoanh["landuse"].notna()].assign(commune_code="x")
    long = expand_uses(coded)
    level2 = long["landuse"].map(lambda c: ([c, *tree.ancestors(c)][::-1] + [c])[1])
    area = long.groupby(level2)["area_m2"].sum()
    area = area[[c for c in tree.codes if c in area.index and tree.in_natural_area(c)]]
    colours = landuse_colors()
    return pd.DataFrame({"code": area.index, "name_vi": [tree.name(c) for c in area.index],
                         "hex": [colours.at[c, "hex"] for c in area.index],
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


UNCHANGED_COLOR = "#E6E6E6"


def change_display(pieces: pd.DataFrame, khoanh: pd.DataFrame) -> gpd.GeoDataFrame:
    """The change map's polygons: the current layer in grey (code ""), over it
    the changed areas in the colour of their new use, labelled "old→new", and
    the current gaps hatched. Previous area outside the current layer is not
    drawn."""
    from .change import GAP, OUTSIDE

    changed = pieces[pieces["changed"].to_numpy() & ~pieces["to_leaf"].isin([GAP, OUTSIDE]).to_numpy()]
    label = np.where(changed["from_code"].to_numpy() == OUTSIDE, changed["to_code"].to_numpy(dtype=object),
                     changed["from_code"].astype(str) + "→" + changed["to_code"].astype(str))
    frame = pd.DataFrame({"landuse": changed["to_leaf"].to_numpy(dtype=object), "label": label,
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
    out = pd.DataFrame(rows, columns=["landuse", "label", "to_code", "changed"])
    return gpd.GeoDataFrame(out.assign(area_m2=shapely.area(geoms)), geometry=list(geoms), crs=pieces.crs)


def change_structure(display: pd.DataFrame) -> pd.DataFrame:
    """Share of the changed area by new use (the change map's chart)."""
    tree = landuse_tree()
    colours = landuse_colors()
    area = display[display["changed"]].groupby("to_code")["area_m2"].sum()
    area = area[[c for c in tree.codes if c in area.index]]
    return pd.DataFrame({"code": area.index, "name_vi": [tree.name(c) for c in area.index],
                         "hex": [colours.at[c, "hex"] if c in colours.index else "#FF00FF" for c in area.index],
                         "share": (area / area.sum()).to_numpy() if area.sum() else 0.0})


def change_sheet_content(unit: Unit, pieces: gpd.GeoDataFrame, khoanh: gpd.GeoDataFrame, bounds: gpd.GeoDataFrame,
                         template: Template, *, year: int, previous_year: int, meridian_dms: str) -> SheetContent:
    """The change map of a unit: the current-use sheet's frame around the
    change pieces, with its own title, legend and chart."""
    display = change_display(pieces, khoanh)
    content = sheet_content(unit, display, bounds, template, year=year, meridian_dms=meridian_dms,
                            structure=change_structure(display))
    legend = legend_for(set(display.loc[display["changed"], "landuse"]))
    unchanged = pd.DataFrame([{"code": "", "name_vi": f"Không thay đổi mục đích sử dụng so với năm {previous_year}",
                               "hex": UNCHANGED_COLOR, "hatch": ""}])
    changed_ha = f"{display.loc[display['changed'], 'area_m2'].sum() / 1e4:,.2f}".replace(",", " ").replace(".", ",")
    return replace(
        content, title=template.maps["change_title"].format(previous=previous_year, year=year),
        legend=pd.concat([legend, unchanged], ignore_index=True),
        chart_title="CƠ CẤU DIỆN TÍCH BIẾN ĐỘNG THEO MỤC ĐÍCH MỚI (%)",
        notes=[f"Khoanh màu: mục đích sử dụng năm {year} khác năm {previous_year} (nhãn: mã cũ→mã mới; "
               f"tổng {changed_ha} ha)"])


def map_sheet_to_files(workdir: str, unit: Unit, scale_step: int, dpi: int, template_name: str,
                       kind: str = "current") -> dict:
    """Task: draw one sheet (PDF, PNG, JSON) unless current; return its row for the report.
    ``kind`` "current" maps the khoanh, "change" the change since the previous
    inventory. Reads the unit's layer and the boundaries itself. Runs on a worker."""
    from .io import read_geoparquets, up_to_date

    work = WorkDir(workdir)
    manifest = work.read_manifest()
    layer = work.khoanh if kind == "current" else work.change
    stem = work.root / "maps" / (f"{unit.level}_{unit.code}" if kind == "current"
                                 else f"bien_dong_{unit.level}_{unit.code}")
    boundary_file = [Path(manifest["boundaries"]["path"])] if manifest.get("boundaries") else []
    files = [layer(c) for c in unit.communes if layer(c).exists()]
    inputs = files + [work.khoanh(c) for c in unit.communes] + [work.manifest, *boundary_file]
    if not up_to_date([stem.with_suffix(".pdf"), stem.with_suffix(".png"), stem.with_suffix(".json")], inputs):
        meridian = float(manifest["central_meridian_deg"])
        bounds = load_boundaries(manifest.get("boundaries"), meridian)
        mine = read_geoparquets(files)
        in_unit = bounds[bounds["commune_code"].isin(unit.communes)]
        natural_ha = float(in_unit.area.sum() if len(in_unit) else mine["area_m2"].sum()) / 1e4
        scale = regulation_scale(unit.level, natural_ha, scale_step)
        extent_geoms = in_unit.geometry.values if len(in_unit) else mine.geometry.values
        layout = sheet_layout(tuple(shapely.total_bounds(np.r_[extent_geoms, mine.geometry.values])), scale)
        texts = dict(year=int(str(manifest["reference_date"])[:4]),
                     meridian_dms=find_province(manifest["province_code"]).central_meridian_dms)
        template = load_template(template_name)
        content = (sheet_content(unit, mine, bounds, template, **texts) if kind == "current" else
                   change_sheet_content(unit, mine, read_geoparquets([work.khoanh(c) for c in unit.communes]),
                                        bounds, template, previous_year=int(manifest["previous"]["year"]), **texts))
        render_sheet(layout, content, stem.with_suffix(".pdf"), stem.with_suffix(".png"), dpi=dpi,
                     extra={"natural_ha": round(natural_ha, 2), "khoanh": len(mine)})
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    return {"sheet": stem.name, "name": unit.name, "natural_ha": meta.get("natural_ha"), "scale": meta["scale"],
            "paper": meta["paper"], "khoanh": meta.get("khoanh"), "labels": meta["labels"],
            "pdf": str(stem.with_suffix(".pdf"))}


def run_maps(workdir: Path, *, scale_step: int | None = None, dpi: int | None = None,
             template_name: str = "tt27_2018", progress: bool = True, scheduler: str | None = "sync") -> list[dict]:
    """Draw every commune, district and province sheet of the work directory (in
    parallel; scale step and dpi from the config unless given)."""
    from .io import up_to_date, write_text
    from .parallel import executor
    from .report import markdown_table

    work = WorkDir(workdir)
    manifest = work.read_manifest()
    options = manifest.get("maps", {})
    scale_step = options.get("scale_step", 0) if scale_step is None else scale_step
    dpi = options.get("dpi", 150) if dpi is None else dpi
    files = sorted(work.khoanh_dir.glob("*.parquet"))
    if not files:
        from .errors import StageInputMissing

        raise StageInputMissing(f"No khoanh in {work.khoanh_dir}. Run 'kiemke khoanh --workdir {work.root}' first.")
    changes = sorted(work.change_dir.glob("*.parquet")) if manifest.get("previous") else []
    if up_to_date([work.reports_dir / "maps.md"], [*files, *changes, work.manifest]):
        log.info("maps: up to date")
        return []
    bounds = load_boundaries(manifest.get("boundaries"), float(manifest["central_meridian_deg"]))
    units = build_units([p.stem for p in files], bounds, manifest["province"], manifest["province_code"])
    # the big sheets first, so that they do not finish last on one worker
    units = sorted(units, key=lambda u: -len(u.communes))
    kinds = ["current", "change"] if changes else ["current"]
    with executor(scheduler) as pmap:
        out = pmap(map_sheet_to_files, [(str(work.root), unit, scale_step, dpi, template_name, kind)
                                        for unit in units for kind in kinds], "maps" if progress else "")
    out = sorted(out, key=lambda row: row["sheet"])
    write_text(work.reports_dir / "maps.md", "\n".join([
        "# Current land-use maps" + (" and change maps (bien_dong_*)" if changes else ""), "",
        "True scale on the PDF (1 mm = scale/1000 m); PNG previews at "
        f"{dpi} dpi. Scale by level and natural area, Circular 27/2018 Art. 18(4)"
        + (f", one step {'larger' if scale_step < 0 else 'smaller'} (exception)." if scale_step else "."), "",
        markdown_table(pd.DataFrame(out)), ""]))
    log.info("maps: %d sheets → %s", len(out), work.root / "maps")
    return out
