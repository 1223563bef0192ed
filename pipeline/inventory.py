"""The whole inventory of a config: every stage in order on one cluster, the
map sheets drawn in the background from the stage that makes their khoanh,
the timings recorded, and where the outputs are, for the officer."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .aggregate import run_aggregate
from .change import run_change
from .config import Settings
from .forms import run_forms
from .ingest import run_ingest
from .ingest.corrections import review_books
from .io import disk_shortfall, read_json, remove_stale_temporaries, write_json
from .khoanh import run_khoanh
from .maps.background import SheetsInBackground
from .messages import officer_message
from .package import copy_geopackage_ahead, discard_copies, run_package
from .parallel import LOCAL_CLUSTER_FROM, executor, frozen_after_imports, thawed_after
from .qa import run_qa
from .regroup import regroup_all, units_outputs
from .report import vn_number
from .runlock import one_run_at_a_time
from .workdir import WorkDir

log = logging.getLogger("pipeline")


def run_inventory(settings: Settings, scheduler: str | None, workers: int | None) -> float:
    """Run every stage of ``settings`` (whose input folder is given) on the
    ``scheduler``'s cluster, the only run in its work directory;
    ``reports/timings.json`` written. The seconds it took."""
    work = WorkDir(settings.workdir)
    with one_run_at_a_time(work):
        return _run_stages(work, settings, scheduler, workers)


def _run_stages(work: WorkDir, settings: Settings, scheduler: str | None, workers: int | None) -> float:
    """:func:`run_inventory`'s work, once its directory is its own."""
    for leftover in remove_stale_temporaries(work.root) if work.root.exists() else []:
        log.warning("removed %s, left by an interrupted run", leftover)
    assert settings.input_root is not None
    if (short := disk_shortfall(work.root, settings.input_root)) is not None:
        log.warning(officer_message(short))
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    began: dict[str, float] = {}  # each stage's start (Unix time), to line up a profiler's samples
    # the threads drawing sheets in the background are waited for after the cluster closes: a failed stage
    # closes it under them, and they end at once
    with thawed_after(), ThreadPoolExecutor(2, thread_name_prefix="kiemke-maps") as threads, \
            executor(scheduler, workers, local_from=LOCAL_CLUSTER_FROM,
                     start_early=functools.partial(_many_communes, work), shared=work.root,
                     inputs=[settings.input_root, *read_on_workers(settings)]) as cluster:
        sheets = SheetsInBackground(cluster, threads)
        try:
            for name, run in tqdm(_stages(work, settings, cluster, sheets), desc="kiểm kê", unit="bước"):
                t0, began[name] = time.perf_counter(), time.time()
                with frozen_after_imports():  # the libraries a stage imported: out of the collector's way
                    run()
                seconds[name] = round(time.perf_counter() - t0, 2)
                log.info("stage %s done in %.1f s", name, seconds[name])
        finally:
            discard_copies()  # a GeoPackage copied ahead that the package stage did not take
    total = time.perf_counter() - started
    write_json(work.report("timings.json"), {"stages_s": seconds, "stages_began": began, "ended": time.time(),
                                             "total_s": round(total, 2)})
    return total


def read_on_workers(settings: Settings) -> list[Path]:
    """The files besides the input folder that the workers read: the boundary
    files (each sheet is drawn with them) and each ``[units]``' file."""
    boundaries = settings.boundaries.files() if settings.boundaries is not None else []
    return [*boundaries, *(units.path for units in settings.units)]


def _many_communes(work: WorkDir) -> bool:
    """Whether an earlier run ingested enough communes for the local cluster:
    then a re-run with one commune changed starts it early, in the background
    (its first steps have a task each, its maps hundreds)."""
    return sum(1 for _ in work.parcels_dir.glob("*.parquet")) >= LOCAL_CLUSTER_FROM


def _stages(work: WorkDir, settings: Settings, cluster,
            sheets: SheetsInBackground) -> list[tuple[str, Callable[[], object]]]:
    """The stages of a whole inventory, in order, each on the shared cluster;
    the map sheets drawn from the stage that makes their khoanh on (the run's
    after its khoanh and change, the ``[units]``' after the regroup), in the
    background, and waited for at the maps stage."""
    assert settings.input_root is not None
    paths = [settings.input_root]
    regrouped: list[WorkDir] = []  # the regroup stage's work directories, for the next stages
    draw_run = lambda: sheets.start([work])  # noqa: E731 (its khoanh made, and changes when compared)
    khoanh = _then(lambda: run_khoanh(work, scheduler=cluster), None if settings.previous else draw_run)
    return [
        ("ingest", _then(lambda: run_ingest(work, paths, settings, scheduler=cluster),
                         lambda: copy_geopackage_ahead(work))),  # copied while the next stages compute
        ("qa", lambda: run_qa(work, scheduler=cluster)),
        ("khoanh", khoanh),
        *([("change", _then(lambda: run_change(work, scheduler=cluster), draw_run))]
          if settings.previous else []),
        ("aggregate", lambda: run_aggregate(work, scheduler=cluster)),
        ("forms", lambda: run_forms(work, scheduler=cluster)),
        *([("regroup", _then(lambda: regrouped.extend(regroup_all(work, scheduler=cluster)),
                             lambda: sheets.start(regrouped))),
           ("units", lambda: units_outputs(regrouped, scheduler=cluster, maps=False))] if settings.units else []),
        ("maps", sheets.finish),
        ("package", lambda: run_package(work, scheduler=cluster)),
    ]


def _then(run: Callable[[], object], after: Callable[[], object] | None) -> Callable[[], None]:
    """A stage ``run``, then ``after`` (what its outputs let start)."""
    def stage() -> None:
        run()
        if after is not None:
            after()
    return stage


def outputs_summary(work: WorkDir, settings: Settings) -> str:
    """Where an inventory's outputs are, for the closing message the officer
    reads, with what is left to look at: the parcels quarantined, the communes
    with parcels to review, the problems QA found."""
    stem = work.product(work.read_manifest().product_stem, "")
    read = read_json(work.report("ingest.json"), {})
    kept = f"{vn_number(read.get('features_out', 0), 0)} thửa, {vn_number(read.get('area_out_m2', 0) / 1e4)} ha"
    quarantined = read.get("features_quarantined", 0)
    aside = f"{vn_number(quarantined, 0)} thửa, {vn_number(read.get('area_quarantined_m2', 0) / 1e4)} ha"
    books = len(review_books(work))
    problems = sum(sum(entry["counts"].values()) for entry in read_json(work.report("qa.json"), []))
    lines: list[tuple[str, Path | str]] = [
        ("Thửa đất", f"{kept} → {work.parcels_dir}"),
        ("Thửa cách ly", f"{aside} → {work.quarantine_dir}" if quarantined else "không có"),
        ("Sổ rà soát", f"{books} xã có thửa cần rà soát → {work.review_dir}" if books else "không có thửa cần rà soát"),
        ("Kiểm tra QA", f"{vn_number(problems, 0)} vấn đề → {work.report('qa.html')}"),
        ("Khoanh đất", work.khoanh_dir),
        ("Diện tích", f"{vn_number(_total_m2(work.areas_csv) / 1e4)} ha trong thống kê → {work.areas_csv}")]
    if settings.previous:
        lines.append(("Biến động", f"{work.transitions_csv} ({work.report('change.md')})"))
    lines += [("Biểu", work.forms_dir), ("Bản đồ", work.maps_dir), ("GeoPackage", f"{stem}.gpkg (+ .qgz, .tif)"),
              ("Báo cáo", work.reports_dir)]
    lines += [(f"Đơn vị {u.label}", f"{work.root / f'units_{u.label}'} (bảng chuyển đổi, biểu, bản đồ)")
              for u in settings.units]
    return "\n".join(f"  {name:<13} {where}" for name, where in lines)


def _total_m2(areas_csv: Path) -> float:
    """The area the statistics hold (overlaps counted once: less than the parcels' when QA found some)."""
    return float(pd.read_csv(areas_csv, usecols=["area_m2"])["area_m2"].sum()) if areas_csv.exists() else 0.0
