"""The forms stage: every form of the regime for every commune, district and
the province (XLSX + CSV under ``forms/<level>/<code>/``), checked for
consistency, listed in ``reports/forms.md``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path, PureWindowsPath
from typing import Any

import pandas as pd

from ..change import dominant_previous
from ..errors import KiemkeError
from ..io import up_to_date, write_csv, write_text
from ..parallel import SYNC, executor
from ..records import (
    commune_set,
    digests_record,
    given,
    keep_hand_edits,
    remove_unlisted,
    rewriting,
    tell_kept,
    unit_inputs,
)
from ..regime import Template, form_file_names, load_template
from ..report import markdown_table
from ..rounding import commune_cells
from ..units import LEVEL_VI, Unit, run_units
from ..workdir import RunManifest, WorkDir, in_run_regime
from .base import FormInputs, kind_of
from .change_inputs import ChangeInputs, read_change_inputs
from .checks import check_forms
from .write import PrintedForm, write_form_csv, write_xlsx

log = logging.getLogger(__name__)

KHOANH_LIST_COLUMNS = ["khoanh_no", "landuse", "owner_type", "area_m2", "uses", "flag"]


def compute_forms(areas: pd.DataFrame, units: list[Unit], template: Template,
                  khoanh: Mapping[str, pd.DataFrame] | None = None,
                  change: ChangeInputs | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """Every form table for every unit (pure: no I/O), checked for consistency.
    The change forms are made only when ``change`` is given."""
    return compute_tables(FormInputs(commune_cells(areas), units, template, khoanh or {}, change))


def compute_tables(inputs: FormInputs) -> dict[tuple[str, str], pd.DataFrame]:
    """:func:`compute_forms` from the inputs gathered, for ``inputs.units``
    (with the Biểu 01 of their other sub-units, for the check of their sums)."""
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    for spec in inputs.template.forms:
        tables.update({(spec.id, key): table for key, table in kind_of(spec).tables(spec, inputs).items()})
    check_forms(tables | sub_unit_totals(inputs), inputs.units, inputs.template)
    return tables


def sub_unit_totals(inputs: FormInputs) -> dict[tuple[str, str], pd.DataFrame]:
    """The first by-owner form (Biểu 01) of the sub-units of ``inputs.units``
    that are not among them (a run that redoes one commune checks its district's sum)."""
    first = next((spec for spec in inputs.template.forms if spec.kind == "by_owner"), None)
    listed = {unit.key for unit in inputs.units}
    others = list({child.key: child for unit in inputs.units for child in unit.children
                   if child.key not in listed}.values())
    if first is None or not others:
        return {}
    tables = kind_of(first).tables(first, replace(inputs, units=others))
    return {(first.id, key): table for key, table in tables.items()}


class KhoanhOnDemand(Mapping[str, pd.DataFrame]):
    """Each commune's khoanh for the khoanh list, with the previous code when
    compared, read when first asked for: a run that redoes one commune reads one."""

    def __init__(self, work: WorkDir, change: ChangeInputs | None):
        self._work, self._change = work, change
        self._files = {path.stem: path for path in work.khoanh_files()}
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, code: str) -> pd.DataFrame:
        if code not in self._read:
            self._read[code] = self._khoanh(code, pd.read_parquet(self._files[code], columns=KHOANH_LIST_COLUMNS))
        return self._read[code]

    def __contains__(self, code: object) -> bool:
        return code in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def _khoanh(self, code: str, frame: pd.DataFrame) -> pd.DataFrame:
        work = self._work
        if self._change is None or not work.change(code).exists():
            return frame
        pieces = pd.read_parquet(work.change(code), columns=["khoanh_no", "previous_id", "from_leaf", "area_m2"])
        owners = None
        if work.previous(code).exists():  # the previous layer's rows are previous_id 1…n
            layer = pd.read_parquet(work.previous(code), columns=["owner_type"])
            owners = pd.Series(layer["owner_type"].to_numpy(), index=range(1, len(layer) + 1))
        previous = dominant_previous(pieces, owners)  # the khoanh list's "kỳ trước" column
        return frame.assign(landuse_previous=frame["khoanh_no"].map(previous["from_leaf"]),
                            owner_previous=frame["khoanh_no"].map(previous["from_owner"]))


def _inputs_of(work: WorkDir, manifest: RunManifest, template: Template) -> FormInputs:
    """The forms' inputs from the work directory."""
    if not work.areas_csv.exists():
        raise KiemkeError(f"{work.areas_csv} is missing. Run 'kiemke aggregate --workdir {work.root}' first.")
    areas = pd.read_csv(work.areas_csv, dtype={"commune_code": str})
    change = read_change_inputs(work.transitions_csv, manifest)
    khoanh = KhoanhOnDemand(work, change)
    units = run_units(manifest, sorted(set(areas["commune_code"]) | set(khoanh)))
    sources = pd.read_csv(work.owner_sources_csv, dtype={"commune_code": str}) \
        if work.owner_sources_csv.exists() else None
    holders = pd.read_csv(work.holders_csv, dtype={"commune_code": str}) if work.holders_csv.exists() else None
    return FormInputs(commune_cells(areas), units, template, khoanh, change, sources, holders, str(work.root))


def _form_sources(work: WorkDir, unit: Unit, inputs: FormInputs, change_files: list[Path]) -> list[Path]:
    """What a unit's forms are made of: its khoanh, its communes' parcels (how
    their objects were found: a by-owner note), the run manifest, the comparison's files."""
    sources = unit_inputs(work, unit) + [work.parcels(c) for c in unit.communes] + [work.manifest, *change_files]
    return sources + [work.change(c) for c in unit.communes if inputs.change is not None and work.change(c).exists()]


def current_forms(work: WorkDir, units: list[Unit], template: Template,
                  sources: dict[str, list[Path]]) -> dict[str, list[str]]:
    """The units whose forms the last run listed (``reports/forms.csv``) are
    all there and newer than what they are made of (``sources``): each one's
    form ids. Their figures are not computed again: a run that redoes one
    commune computes its own, its district's and the province's."""
    try:
        previous = pd.read_csv(work.report("forms.csv"), dtype=str, usecols=["form", "level", "unit"])
    except (FileNotFoundError, ValueError, pd.errors.ParserError):  # none yet, or not one kiemke wrote
        return {}
    ids = {spec.number: spec.id for spec in template.forms}
    by_key = {unit.key: unit for unit in units}
    current = {}
    for (level, code), numbers in previous.groupby(["level", "unit"], sort=False)["form"]:
        unit = by_key.get(f"{level}/{code}")
        specs = [template.form(ids[number]) for number in numbers if number in ids]
        files = [work.form_folder(level, code) / f"{spec.file}{ext}" for spec in specs for ext in (".xlsx", ".csv")]
        if unit is not None and len(specs) == len(numbers) and up_to_date(files, sources[unit.key]):
            current[unit.key] = [spec.id for spec in specs]
    return current


def _change_files(work: WorkDir, manifest: RunManifest) -> list[Path]:
    statistics = [given(work, "statistics", [manifest.previous.statistics])] if manifest.previous else []
    return [p for p in (work.transitions_csv, *statistics) if Path(p).exists()]


def _printed(spec, unit: Unit, table: pd.DataFrame, inputs: FormInputs, date: str) -> PrintedForm:
    """A table with its sheet layout; titles carry the years of a comparison."""
    if inputs.change is not None:
        years = {"year": inputs.change.year, "previous": inputs.change.previous_year}
        spec = replace(spec, title=spec.title.format(**years), total_header=spec.total_header.format(**years))
    sheet = kind_of(spec).sheet(spec, unit, table, inputs)
    return PrintedForm(spec, inputs.template, unit, table, sheet, date,
                       int(inputs.template.regime.get("decimals", 2)))


def write_unit_forms(jobs: list[tuple[PrintedForm, Path, Path]], record: Path) -> list[tuple[str, str]]:
    """Task: write one unit's workbooks and CSVs, those changed by hand since
    kiemke wrote them (by ``record``) set aside first; returns those set aside and where."""
    with rewriting(record, [path for _, xlsx, csv in jobs for path in (xlsx, csv)]) as kept:
        for form, xlsx, csv in jobs:
            write_xlsx(xlsx, form)
            write_form_csv(csv, form.table, form.sheet, decimals=form.figure_decimals)
    return [(str(path), str(aside)) for path, aside in kept]


@in_run_regime
def run_forms(work: WorkDir, boundaries: Path | None = None, template_name: str | None = None,
              scheduler: str | None = SYNC) -> dict[str, Any]:
    """Write every form for every commune, district and the province: the
    figures computed here, each unit's workbooks written on a worker."""
    manifest = work.read_manifest().with_boundaries(boundaries)
    template = load_template(template_name)
    change_files = _change_files(work, manifest)
    if up_to_date([work.report("forms.md"), work.report("forms.csv")],
                  [work.areas_csv, work.owner_sources_csv, work.manifest, commune_set(work), *work.khoanh_files(),
                   *change_files]):
        listing = pd.read_csv(work.report("forms.csv"), dtype=str)
        if all_present(work, listing):
            log.info("forms: up to date")
            return {"forms": listing, "units": [], "tables": {}}
    inputs = _inputs_of(work, manifest, template)
    sources = {unit.key: _form_sources(work, unit, inputs, change_files) for unit in inputs.units}
    current = current_forms(work, inputs.units, template, sources)
    tables: dict[tuple[str, str], pd.DataFrame | None] = {
        **{(form_id, key): None for key, form_ids in current.items() for form_id in form_ids},
        **compute_tables(replace(inputs, units=[u for u in inputs.units if u.key not in current]))}
    date = pd.Timestamp(manifest.reference_date).strftime("%d/%m/%Y")
    by_key = {u.key: u for u in inputs.units}
    written: list[dict] = []
    provenance: dict[str, list[str]] = {}
    jobs: dict[str, list[tuple[PrintedForm, Path, Path]]] = {}
    for form_id, key in sorted(tables):
        spec, unit, table = template.form(form_id), by_key[key], tables[(form_id, key)]
        folder = work.form_folder(unit.level, unit.code)
        xlsx, csv = folder / f"{spec.file}.xlsx", folder / f"{spec.file}.csv"
        if table is not None or spec.number not in provenance:
            if table is None:  # a unit whose forms are current: its table only for the notes of the layout
                table = kind_of(spec).tables(spec, replace(inputs, units=[unit]))[key]
            form = _printed(spec, unit, table, inputs, date)
            provenance.setdefault(spec.number, form.sheet.provenance)
            if key not in current and not up_to_date([xlsx, csv], sources[key]):
                jobs.setdefault(key, []).append((form, xlsx, csv))
        written.append({"form": spec.number, "level": unit.level, "unit": unit.code, "name": unit.name,
                        "xlsx": str(xlsx)})
    with executor(scheduler, shared=work.root) as pmap:
        tasks = [(unit_jobs, digests_record(work, unit_jobs[0][1].parent)) for unit_jobs in jobs.values()]
        kept = pmap(write_unit_forms, tasks, "forms")
    tell_kept((pair for unit_kept in kept for pair in unit_kept), "form")
    listing = pd.DataFrame(written)
    remove_unlisted_forms(work, [Path(p) for p in listing["xlsx"]], form_file_names(template))
    write_csv(work.report("forms.csv"), listing)
    write_text(work.report("forms.md"), forms_report(listing, inputs.units, template, provenance))
    log.info("forms: %d written under %s", len(listing), work.forms_dir)
    return {"forms": listing, "units": inputs.units,
            "tables": {key: table for key, table in tables.items() if table is not None}}  # those computed


def all_present(work: WorkDir, listing: pd.DataFrame) -> bool:
    """Whether every form of ``listing`` (``reports/forms.csv``) is there, as
    XLSX and CSV, under this work directory (found by level, unit and file
    name: the listing may hold the paths of another working folder): one an
    officer deleted is written again."""
    return all(path.exists() for level, unit, xlsx in listing[["level", "unit", "xlsx"]].itertuples(index=False)
               for book in [work.form_folder(level, unit) / PureWindowsPath(xlsx).name]
               for path in (book, book.with_suffix(".csv")))


def remove_unlisted_forms(work: WorkDir, workbooks: list[Path], names: frozenset[str]) -> None:
    """Remove the forms of units the run no longer has (a commune whose files
    are gone, a district left without communes) and of forms its regime has
    not: files of a form's name (``names``) only, not an officer's own kept
    beside them (a signed copy, notes)."""
    listed = {*workbooks, *(path.with_suffix(".csv") for path in workbooks)}
    found = [path for suffix in ("xlsx", "csv") for path in work.forms_dir.glob(f"*/*/*.{suffix}")]
    stale = [path for path in found if path.stem in names and path not in listed]
    for folder in sorted({path.parent for path in stale}):  # one typed into is kept, not removed
        typed = keep_hand_edits(digests_record(work, folder), [path for path in stale if path.parent == folder])
        tell_kept(typed, "form")
    remove_unlisted(stale, listed)
    records = digests_record(work, work.forms_dir).with_suffix("").glob("*/*.json")
    remove_unlisted(records, {digests_record(work, path.parent) for path in workbooks})
    for folder in work.forms_dir.glob("*/*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def forms_report(listing: pd.DataFrame, units: list[Unit], template: Template,
                 provenance: dict[str, list[str]]) -> str:
    """``reports/forms.md``: the forms written, the checks passed, the provenance of each layout."""
    districts = sum(u.level == "huyen" for u in units)  # none since 1 July 2025: the province sums its communes
    sums = "huyện = tổng các xã; tỉnh = tổng các huyện" if districts else "tỉnh = tổng các xã"
    lines = [
        f"# Biểu thống kê, kiểm kê ({template.regime['name']})", "",
        f"{len(listing)} biểu cho {sum(u.level == 'xa' for u in units)} xã"
        + (f", {districts} huyện và tỉnh" if districts else " và tỉnh") + ". Đã kiểm tra: tổng Biểu 01 = 1 + 2 + 3; "
        "Biểu 02, 03 = các dòng tương ứng của Biểu 01; Biểu 04 = tổng các đơn vị = Biểu 01; " + sums + ".", "",
        markdown_table(listing.assign(level=listing["level"].map(LEVEL_VI)).rename(columns={
            "form": "biểu", "level": "cấp", "unit": "mã", "name": "đơn vị", "xlsx": "tệp"})), "",
        "## Nguồn mẫu biểu", "",
        "Những gì thông tư xác nhận và những gì được tái dựng (cũng ở trang “Nguồn mẫu biểu” của mỗi tệp XLSX, "
        "không in ra):", ""]
    for number, notes in provenance.items():
        lines += [f"### {number}", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)
