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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd
import shapely

from ..errors import StageInputMissing
from ..io import (
    geoparquet_bounds,
    read_attributes,
    read_geoparquets,
    read_json,
    union_bounds,
    up_to_date,
    write_json,
    write_text,
)
from ..parallel import executor
from ..records import commune_set, given_boundaries, remove_unlisted, set_aside_changed, tell_kept, unit_inputs
from ..regime import load_template
from ..report import markdown_table, vn_number
from ..rounding import natural_area_cells
from ..units import Unit, run_units
from ..workdir import RunManifest, WorkDir, in_run_regime
from .change import change_sheet_content
from .content import drawing_khoanh, sheet_content
from .generalise import generalised_note
from .kept import forget_other_versions, generalised, kept_boundary_lines, kept_union
from .layout import format_scale, plotter_layout, scale_area_ha
from .panel import panel_height
from .render import render_sheet

log = logging.getLogger(__name__)

#: The record of a sheet kiemke drew (see :meth:`.WorkDir.map_stem` and :func:`sheet_outputs`).
SHEET_NAME = re.compile(r"(bien_dong_)?(xa|huyen|tinh)_.+\.json")


def map_sheet_to_files(workdir: str, unit: Unit, scale_step: int, dpi: int, template_name: str,
                       kind: str = "current") -> dict:
    """Task: draw one sheet (PDF, PNG, JSON) unless current; return its row for the report.
    ``kind`` "current" maps the khoanh, "change" the change since the previous
    inventory. Reads the unit's layer and the boundaries itself. Runs on a worker."""
    work = WorkDir(Path(workdir))
    manifest = work.read_manifest()
    stem = work.map_stem(unit.level, unit.code, kind)
    files = layer_files(work, unit, kind)
    if up_to_date(sheet_outputs(stem), sheet_inputs(work, manifest, unit, files)):
        return sheet_row(stem)
    kept = keep_annotated(stem)
    if draw_sheet(work, manifest, unit, kind, files, scale_step, dpi, template_name):
        return sheet_row(stem) | {"kept": kept}
    for path in sheet_outputs(stem):
        path.unlink(missing_ok=True)
    return {"sheet": stem.name, "unit": unit.name, "code": unit.code, "natural_ha": 0.0, "scale": None,
            "paper": "", "note": "không có tờ bản đồ: không có khoanh đất, không có ranh giới",
            "labelled": "", "pdf": "", "kept": kept}


def sheet_outputs(stem: Path) -> list[Path]:
    """A sheet's files: the PDF to print, its PNG preview, its JSON record."""
    return [stem.with_suffix(".pdf"), stem.with_suffix(".png"), stem.with_suffix(".json")]


def keep_annotated(stem: Path) -> list[tuple[str, str]]:
    """Set aside a sheet's PDF and PNG saved since kiemke drew them (notes
    added in Acrobat and saved in place), by the digests its JSON record
    keeps, before the sheet is drawn again or removed: each file and where it
    is kept. The digests are then dropped from the record, so that a drawing
    stopped halfway (a new PDF, the record not yet) is not taken for notes."""
    record = stem.with_suffix(".json")
    meta = read_json(record, {})
    kept = set_aside_changed(sheet_outputs(stem)[:2], meta.get("written", {}))
    if "written" in meta:
        write_json(record, {key: value for key, value in meta.items() if key != "written"})
    return [(str(path), str(aside)) for path, aside in kept]


def layer_files(work: WorkDir, unit: Unit, kind: str) -> list[Path]:
    """The khoanh (or, for a change sheet, the change pieces) of the unit's communes that have them."""
    layer = work.khoanh if kind == "current" else work.change
    return [layer(c) for c in unit.communes if layer(c).exists()]


def sheet_inputs(work: WorkDir, manifest: RunManifest, unit: Unit, files: list[Path]) -> list[Path]:
    """What a sheet is drawn from: its ``files`` (:func:`layer_files`), its
    communes' khoanh and which they are, the run manifest and the boundary files."""
    return files + unit_inputs(work, unit) + [work.manifest, given_boundaries(work, manifest)]


def sheet_current(work: WorkDir, manifest: RunManifest, unit: Unit, kind: str) -> bool:
    """Whether a sheet is newer than everything it is drawn from."""
    return up_to_date(sheet_outputs(work.map_stem(unit.level, unit.code, kind)),
                      sheet_inputs(work, manifest, unit, layer_files(work, unit, kind)))


def sheet_row(stem: Path) -> dict:
    """A drawn sheet's row for the report, from its JSON record."""
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    big, done = meta["big_khoanh"], meta["labelled_big"]
    return {"sheet": stem.name, "unit": meta["unit"], "code": meta["code"], "natural_ha": meta["natural_ha"],
            "scale": format_scale(meta["scale"]), "paper": meta["paper"], "note": meta["note"],
            "labelled": f"{done}/{big}", "pdf": stem.with_suffix(".pdf").name}


def draw_sheet(work: WorkDir, manifest: RunManifest, unit: Unit, kind: str, files: list[Path], scale_step: int,
               dpi: int, template_name: str | None) -> bool:
    """Draw a unit's sheet of ``kind`` from its ``files`` (khoanh or change
    pieces); False when there is nothing to place (no khoanh, no boundary).
    A district or province sheet of current use draws the generalised khoanh:
    its khoanh are read without their shapes, unless a commune has neither
    boundary nor outline and its khoanh's union stands for it."""
    stem = work.map_stem(unit.level, unit.code, kind)
    bounds = manifest.load_boundaries()
    in_unit = bounds[bounds["commune_code"].isin(unit.communes)]
    outlines = commune_outlines(work, unit.communes) if in_unit.empty else {}
    small_scale = unit.level in ("huyen", "tinh")
    generalising = small_scale and kind == "current"
    shapeless = generalising and (len(in_unit) > 0 or all(f.stem in outlines for f in files))
    mine = read_attributes(files) if shapeless else read_geoparquets(files)
    if mine.empty and in_unit.empty:
        return False
    current = mine if kind == "current" else read_geoparquets([work.khoanh(c) for c in unit.communes])
    natural_ha = natural_area_cells(current) / 100  # as the forms print it
    template = load_template(template_name)
    year, dms, context = manifest.year, manifest.province.central_meridian_dms, manifest.load_context()
    if kind == "current" or manifest.previous is None:
        content = sheet_content(unit, mine, bounds, template, year=year, meridian_dms=dms, context=context,
                                outlines=outlines,
                                union=partial(kept_union, work, stem.name) if small_scale else shapely.union_all)
    else:
        content = change_sheet_content(unit, mine, current, bounds, template, year=year,
                                       previous_year=manifest.previous.year, meridian_dms=dms, context=context,
                                       outlines=outlines)
    bounds_m = union_bounds([*(geoparquet_bounds(f) for f in files),
                             *([shapely.total_bounds(in_unit.geometry.values)] if len(in_unit) else [])]) \
        or (float("nan"),) * 4  # only khoanh files recording no extent (kiemke writes none such)
    scale_ha, covered = scale_area_ha(natural_ha, float(shapely.area(in_unit.geometry.values).sum()) / 1e4)
    layout, note = plotter_layout(bounds_m, unit.level, scale_ha, scale_step,
                                  panel_height=lambda w: panel_height(content, w))
    note = "; ".join(filter(None, [covered, note]))
    merged = 0
    if small_scale:
        content = replace(content, lines=kept_boundary_lines(work, stem.name, content.boundaries))
    if generalising:  # small scale: draw what the scale can show
        drawn = generalised(work, [f.stem for f in files], layout.scale)
        merged = len(mine) - len(drawn)
        content = drawing_khoanh(content, drawn)
        note = "; ".join(filter(None, [note, generalised_note(merged, layout.scale)]))
    render_sheet(layout, content, stem.with_suffix(".pdf"), stem.with_suffix(".png"), dpi=dpi,
                 extra={"natural_ha": round(natural_ha, 2), "khoanh": len(mine), "note": note,
                        "unit": unit.name, "code": unit.code, "generalised": merged})
    return True


def commune_outlines(work: WorkDir, codes: Iterable[str]) -> dict[str, object]:
    """The communes' outlines the khoanh stage wrote (by code; none for a commune without one)."""
    frame = work.read_outlines(codes)
    return dict(zip(frame["commune_code"], frame.geometry.values, strict=True))


def unknown_district_row(work: WorkDir, unit: Unit) -> dict:
    """The report's row for the communes no boundary places in a district: no sheet is drawn for them."""
    return {"sheet": work.map_stem(unit.level, unit.code, "current").name, "unit": unit.name, "code": unit.code,
            "natural_ha": "", "scale": "", "paper": "",
            "note": f"không vẽ tờ bản đồ cấp huyện: {len(unit.communes)} xã không có trong tệp ranh giới nên "
                    "không rõ thuộc huyện nào (xem tờ bản đồ của từng xã và của tỉnh; diện tích vẫn được tính vào "
                    "biểu của tỉnh)",
            "labelled": "", "pdf": ""}


def maps_report(rows: list[dict], dpi: int, changes: bool) -> str:
    """``reports/maps.md``, in Vietnamese: every sheet, its scale, paper and labels."""
    table = pd.DataFrame(rows)
    table = table.assign(natural_ha=[vn_number(v) if isinstance(v, float) else "" for v in table["natural_ha"]])
    table.columns = ["Tờ bản đồ", "Đơn vị hành chính", "Mã", "Diện tích tự nhiên (ha)", "Tỷ lệ", "Khổ giấy",
                     "Ghi chú", "Khoanh ≥ 1 cm² có nhãn", "Tệp PDF"]
    return "\n".join([
        "# Bản đồ hiện trạng sử dụng đất" + (" và bản đồ biến động (bien_dong_*)" if changes else ""), "",
        "Tệp PDF in đúng tỷ lệ (1 mm trên giấy = tỷ lệ/1000 m), là bản để in; ảnh PNG là bản xem trước "
        f"(tối đa {dpi} dpi, cạnh dài không quá 6000 điểm ảnh). Tỷ lệ theo cấp đơn vị hành chính và diện tích "
        f"tự nhiên ({load_template().maps.get('scale_rule', '')}); mọi tờ vừa khổ cuộn giấy máy in 1118 mm (44 inch) ở "
        "cạnh ngắn, khi cần thì dùng tỷ lệ nhỏ hơn một bậc (ghi ở cột Ghi chú).", "",
        markdown_table(table), ""])


@dataclass(frozen=True)
class SheetsPlan:
    """The sheets of one work directory to draw (its units of drawn levels,
    each in every kind) and those only reported (the unknown district)."""

    work: WorkDir
    manifest: RunManifest
    units: list[Unit]
    unknown: list[Unit]
    kinds: list[str]
    scale_step: int
    dpi: int

    def tasks(self, template_name: str | None) -> list[tuple]:
        return [(str(self.work.root), unit, self.scale_step, self.dpi, template_name, kind)
                for unit in self.units for kind in self.kinds]

    def current(self, task: tuple) -> bool:
        """Whether a task's sheet is current (its row is then read here, not drawn on a worker)."""
        _, unit, _, _, _, kind = task
        return sheet_current(self.work, self.manifest, unit, kind)

    def row(self, task: tuple) -> dict:
        """A current sheet's row for the report."""
        _, unit, _, _, _, kind = task
        return sheet_row(self.work.map_stem(unit.level, unit.code, kind))

    def all_present(self) -> bool:
        """Whether every sheet's files are there: one an officer deleted is drawn
        again (as is, each run, a unit with nothing to draw: no khoanh, no boundary)."""
        return all(path.exists() for unit in self.units for kind in self.kinds
                   for path in sheet_outputs(self.work.map_stem(unit.level, unit.code, kind)))


def plan_sheets(work: WorkDir, scale_step: int | None, dpi: int | None) -> SheetsPlan | None:
    """What to draw for a work directory (scale step and dpi from its config
    unless given); None when its sheets are up to date."""
    manifest = work.read_manifest()
    files = work.khoanh_files()
    if not files:
        raise StageInputMissing(f"No khoanh in {work.khoanh_dir}. Run 'kiemke khoanh --workdir {work.root}' first.")
    changes = sorted(work.change_dir.glob("*.parquet")) if manifest.previous else []
    units = run_units(manifest, [p.stem for p in files])
    unknown = [u for u in units if u.unknown_district]
    plan = SheetsPlan(work, manifest, [u for u in units if u not in unknown], unknown,
                      ["current", "change"] if changes else ["current"],
                      manifest.map_scale_step if scale_step is None else scale_step,
                      manifest.map_dpi if dpi is None else dpi)
    inputs = [*files, *changes, work.manifest, commune_set(work), given_boundaries(work, manifest)]
    if up_to_date([work.report("maps.md")], inputs) and plan.all_present():
        log.info("maps: up to date (%s)", work.maps_dir)
        return None
    return plan


def report_sheets(plan: SheetsPlan, rows: list[dict]) -> list[dict]:
    """The drawn sheets' rows with the unknown district's, sorted;
    ``reports/maps.md`` written. The sheets kiemke drew (those with a JSON
    record) of no unit or kind of the plan are removed: the unknown district's,
    which an earlier version drew, a gone commune's, the change sheets of a run
    that no longer has a previous inventory; an officer's own file stays, and
    a sheet annotated in place is kept beside (:func:`keep_annotated`)."""
    work = plan.work
    drawn = {path for unit in plan.units for kind in plan.kinds
             for path in sheet_outputs(work.map_stem(unit.level, unit.code, kind))}
    recorded = [record.with_suffix("") for record in work.maps_dir.glob("*.json") if SHEET_NAME.fullmatch(record.name)]
    unknown = [work.map_stem(unit.level, unit.code, kind) for unit in plan.unknown for kind in plan.kinds]
    gone = sorted({stem for stem in [*recorded, *unknown] if stem.with_suffix(".json") not in drawn})
    tell_kept([pair for stem in gone for pair in keep_annotated(stem)], "map sheet")  # annotated: kept, not removed
    remove_unlisted([path for stem in gone for path in sheet_outputs(stem)], drawn)
    rows += [unknown_district_row(work, unit) for unit in plan.unknown]
    rows = sorted(rows, key=lambda row: row["sheet"])
    write_text(work.report("maps.md"), maps_report(rows, plan.dpi, "change" in plan.kinds))
    log.info("maps: %d sheets → %s", sum(1 for row in rows if row["pdf"]), work.maps_dir)
    return rows


@in_run_regime
def run_maps(work: WorkDir, *, others: Sequence[WorkDir] = (), scale_step: int | None = None, dpi: int | None = None,
             template_name: str | None = None, progress: bool = True, scheduler: str | None = "sync") -> list[dict]:
    """Draw every commune, district and province sheet of the work directory
    and of ``others`` of the same run (its ``[units]``), in one parallel map:
    the biggest sheets of all first, so that the provinces' sheets are drawn
    side by side, not one after the other; the sheets still current are not
    sent. Returns the work directory's rows."""
    plans = [plan_sheets(w, scale_step, dpi) for w in [work, *others]]
    drawing = [plan for plan in plans if plan is not None]
    for plan in drawing:
        forget_other_versions(plan.work)
    tasks = [(plan, task) for plan in drawing for task in plan.tasks(template_name)]
    stale = sorted((k for k, (plan, task) in enumerate(tasks) if not plan.current(task)),
                   key=lambda k: -len(tasks[k][1][1].communes))  # the current sheets' rows are read here
    boundaries = work.read_manifest().boundaries  # each sheet drawn with them, on a worker
    with executor(scheduler, shared=work.root, inputs=boundaries.files() if boundaries else []) as pmap:
        drawn = dict(zip(stale, pmap(map_sheet_to_files, [tasks[k][1] for k in stale], "maps" if progress else ""),
                         strict=True))
    tell_kept([pair for row in drawn.values() for pair in row.pop("kept", [])], "map sheet")
    rows = [drawn[k] if k in drawn else plan.row(task) for k, (plan, task) in enumerate(tasks)]
    done = [report_sheets(plan, [row for (owner, _), row in zip(tasks, rows, strict=True) if owner is plan])
            for plan in drawing]
    return done[0] if plans[0] is not None else []
