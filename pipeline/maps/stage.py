"""Maps: current land-use map sheets (bản đồ hiện trạng sử dụng đất) for every
commune, district and the province: ``maps/<level>_<unit>.pdf`` (vector, true
scale, for print) and ``.png`` (preview), from the khoanh đất; and, when a
previous inventory was compared, the change maps ``maps/bien_dong_<level>_<unit>``.

Scale from Circular 27/2018 Art. 18(4) by level and natural area (optionally
one step up or down). Layout in :mod:`.layout`, content in :mod:`.content`
and :mod:`.change`, drawing in :mod:`.render`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..errors import StageInputMissing
from ..io import read_geoparquets, up_to_date, write_text
from ..parallel import executor
from ..regime import load_template
from ..report import markdown_table
from ..units import Unit, build_units
from ..workdir import WorkDir
from .change import change_sheet_content
from .content import sheet_content
from .layout import regulation_scale, sheet_layout
from .render import render_sheet

log = logging.getLogger(__name__)


def map_sheet_to_files(workdir: str, unit: Unit, scale_step: int, dpi: int, template_name: str,
                       kind: str = "current") -> dict:
    """Task: draw one sheet (PDF, PNG, JSON) unless current; return its row for the report.
    ``kind`` "current" maps the khoanh, "change" the change since the previous
    inventory. Reads the unit's layer and the boundaries itself. Runs on a worker."""
    work = WorkDir(Path(workdir))
    manifest = work.read_manifest()
    layer = work.khoanh if kind == "current" else work.change
    stem = work.map_stem(unit.level, unit.code, kind)
    boundary_file = [manifest.boundaries.path] if manifest.boundaries else []
    files = [layer(c) for c in unit.communes if layer(c).exists()]
    inputs = files + [work.khoanh(c) for c in unit.communes] + [work.manifest, *boundary_file]
    if not up_to_date([stem.with_suffix(".pdf"), stem.with_suffix(".png"), stem.with_suffix(".json")], inputs):
        bounds = manifest.load_boundaries()
        mine = read_geoparquets(files)
        in_unit = bounds[bounds["commune_code"].isin(unit.communes)]
        if mine.empty and in_unit.empty:  # no khoanh (every parcel quarantined) and no boundary: nothing to place
            for suffix in (".pdf", ".png", ".json"):
                stem.with_suffix(suffix).unlink(missing_ok=True)
            return {"sheet": stem.name, "name": unit.name, "natural_ha": 0.0, "scale": None,
                    "paper": "không có sheet: không có khoanh đất, không có ranh giới", "khoanh": 0, "labels": 0,
                    "pdf": ""}
        natural_ha = float(in_unit.area.sum() if len(in_unit) else mine["area_m2"].sum()) / 1e4
        scale = regulation_scale(unit.level, natural_ha, scale_step)
        extent_geoms = in_unit.geometry.values if len(in_unit) else mine.geometry.values
        layout = sheet_layout(tuple(shapely.total_bounds(np.r_[extent_geoms, mine.geometry.values])), scale)
        template = load_template(template_name)
        year, dms = manifest.year, manifest.province.central_meridian_dms
        if kind == "current" or manifest.previous is None:
            content = sheet_content(unit, mine, bounds, template, year=year, meridian_dms=dms)
        else:
            current = read_geoparquets([work.khoanh(c) for c in unit.communes])
            content = change_sheet_content(unit, mine, current, bounds, template, year=year,
                                           previous_year=manifest.previous.year, meridian_dms=dms)
        render_sheet(layout, content, stem.with_suffix(".pdf"), stem.with_suffix(".png"), dpi=dpi,
                     extra={"natural_ha": round(natural_ha, 2), "khoanh": len(mine)})
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    return {"sheet": stem.name, "name": unit.name, "natural_ha": meta.get("natural_ha"), "scale": meta["scale"],
            "paper": meta["paper"], "khoanh": meta.get("khoanh"), "labels": meta["labels"],
            "pdf": str(stem.with_suffix(".pdf"))}


def run_maps(work: WorkDir, *, scale_step: int | None = None, dpi: int | None = None,
             template_name: str = "tt27_2018", progress: bool = True, scheduler: str | None = "sync") -> list[dict]:
    """Draw every commune, district and province sheet of the work directory (in
    parallel; scale step and dpi from the config unless given)."""
    manifest = work.read_manifest()
    scale_step = manifest.map_scale_step if scale_step is None else scale_step
    dpi = manifest.map_dpi if dpi is None else dpi
    files = work.khoanh_files()
    if not files:
        raise StageInputMissing(f"No khoanh in {work.khoanh_dir}. Run 'kiemke khoanh --workdir {work.root}' first.")
    changes = sorted(work.change_dir.glob("*.parquet")) if manifest.previous else []
    if up_to_date([work.report("maps.md")], [*files, *changes, work.manifest]):
        log.info("maps: up to date")
        return []
    units = build_units([p.stem for p in files], manifest.load_boundaries(), manifest.province.name_vi,
                        manifest.province.gso_code)
    # the big sheets first, so that they do not finish last on one worker
    units = sorted(units, key=lambda u: -len(u.communes))
    kinds = ["current", "change"] if changes else ["current"]
    with executor(scheduler) as pmap:
        out = pmap(map_sheet_to_files, [(str(work.root), unit, scale_step, dpi, template_name, kind)
                                        for unit in units for kind in kinds], "maps" if progress else "")
    out = sorted(out, key=lambda row: row["sheet"])
    write_text(work.report("maps.md"), "\n".join([
        "# Current land-use maps" + (" and change maps (bien_dong_*)" if changes else ""), "",
        "True scale on the PDF (1 mm = scale/1000 m); PNG previews at "
        f"{dpi} dpi. Scale by level and natural area, Circular 27/2018 Art. 18(4)"
        + (f", one step {'larger' if scale_step < 0 else 'smaller'} (exception)." if scale_step else "."), "",
        markdown_table(pd.DataFrame(out)), ""]))
    log.info("maps: %d sheets → %s", len(out), work.maps_dir)
    return out
