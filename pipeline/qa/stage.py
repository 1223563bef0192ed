"""The QA stage: every commune checked (in parallel, unless current), its
layers written under ``qa/<commune>/``, then the reports."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from ..io import atomic_path, read_geoparquet, up_to_date, write_geoparquet, write_json, write_table
from ..parallel import executor
from ..paths import shown_path
from ..records import commune_set
from ..report import unit_label
from ..topology import Thresholds
from ..workdir import WorkDir, in_run_regime
from .core import LAYERS, qa_commune
from .report import QA_REPORTS, QASection, overview_path, overview_png, write_qa_reports

log = logging.getLogger(__name__)


#: What :func:`qa_commune` reads of a commune's parcels (not their codes, owners and areas).
PARCEL_COLUMNS_READ = ["commune_code", "sheet_no", "parcel_no", "flags", "source_file", "geometry"]


def qa_to_files(workdir: str, code: str, boundary_wkb: bytes | None, natural: tuple[float | None, str],
                thresholds: Thresholds, title: str, input_root: Path | None) -> None:
    """Task: QA one commune into ``qa/<code>/`` (one found not current by the stage). Runs on a worker;
    ``input_root`` shows its files' names as the officer reads them."""
    work = WorkDir(Path(workdir))
    parcels = read_geoparquet(work.parcels(code), columns=PARCEL_COLUMNS_READ)
    boundary = shapely.from_wkb(boundary_wkb) if boundary_wkb is not None else None
    result = qa_commune(parcels, boundary=boundary, natural_area_m2=natural[0], thresholds=thresholds,
                        commune_code=code, shown=partial(shown_path, input_root=input_root))
    overview = overview_png(result, parcels[["geometry"]], title)
    with atomic_path(overview_path(work, code)) as tmp:
        tmp.write_bytes(overview)
    for name, layer in result.layers.items():
        write_geoparquet(work.qa_dir / code / f"{name}.parquet", layer)
    write_table(work.overlap_pairs(code), pa.Table.from_pandas(result.pairs, preserve_index=False))
    write_table(work.edge_suspects(code), pa.table({"i": np.flatnonzero(result.suspected)}))
    result = replace(result, natural_area_source=natural[1])
    write_json(section_path(work, code), QASection.of(result, title).to_json())


def section_path(work: WorkDir, code: str) -> Path:
    """A commune's part of the QA reports, written by its task."""
    return work.qa_dir / code / "section.json"


def read_section(work: WorkDir, code: str) -> QASection:
    return QASection(**json.loads(section_path(work, code).read_text(encoding="utf-8")))


def qa_is_current(work: WorkDir, code: str) -> bool:
    """Whether a commune's QA layers are newer than its parcels and the run manifest."""
    outputs = [work.qa_dir / code / f"{name}.parquet" for name in LAYERS] + [section_path(work, code),
                                                                             overview_path(work, code)]
    return up_to_date(outputs, [work.parcels(code), work.manifest])


@in_run_regime
def run_qa(work: WorkDir, boundaries: Path | None = None, *, progress: bool = True,
           scheduler: str | None = "sync") -> list[QASection]:
    """QA every commune of the work directory (in parallel); write layers and
    reports; each commune's part of the reports."""
    manifest = work.read_manifest().with_boundaries(boundaries)
    bounds = manifest.load_boundaries().set_index("commune_code")
    thresholds = manifest.qa
    natural_ha = manifest.natural_area_ha
    names = manifest.commune_names()
    tasks = []
    for path in work.parcel_files():
        code = path.stem
        boundary = bounds.geometry.get(code) if code in bounds.index else None
        natural: tuple[float | None, str] = (None, "")
        if code in natural_ha:
            natural = (natural_ha[code] * 1e4, "config")
        elif boundary is not None:
            natural = (float(boundary.area), "boundary")
        tasks.append((str(work.root), code, shapely.to_wkb(boundary) if boundary is not None else None,
                      natural, thresholds, unit_label(code, names), manifest.input_root))
    stale = [task for task in tasks if not qa_is_current(work, task[1])]  # a current commune: no task at all
    with executor(scheduler, shared=work.root) as pmap:
        pmap(qa_to_files, stale, "qa" if progress else "")
    sections = [read_section(work, task[1]) for task in tasks]
    checked = {task[1] for task in stale}
    for section in sections:  # what QA of a commune found to warn of, said once (its task ran on a worker)
        for warning in section.data["warnings"] if section.commune_code in checked else []:
            log.warning("%s: %s", section.title, warning)
    if stale or not up_to_date([work.report(name) for name in QA_REPORTS], [commune_set(work)]):  # a commune gone
        write_qa_reports(sections, work, manifest.crs.name)
    log.info("qa: %d communes (%d checked again), %d problems → %s", len(sections), len(stale),
             sum(s.problems for s in sections), work.report("qa.md"))
    return sections
