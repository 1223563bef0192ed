"""The change stage: the previous layer read once, then every commune overlaid
(in parallel, unless current), ``stats/transitions.csv`` and ``reports/change.md``.
Outputs: ``change/previous/<commune>.parquet`` (the previous layer in the
province's CRS), ``change/<commune>.parquet`` (the overlay pieces)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..errors import InputFileError
from ..ingest.read import discover_pattern
from ..io import (
    read_geoparquet,
    up_to_date,
    write_csv,
    write_csv_if_changed,
    write_geoparquet,
    write_json,
    write_text_if_changed,
)
from ..parallel import executor
from ..records import digests_record, given, keep_hand_edits, record_written_files, tell_kept
from ..regime import load_template
from ..topology import Thresholds
from ..workdir import RunManifest, WorkDir, in_run_regime
from .overlay import PIECE_COLUMNS, TRANSITION_COLUMNS, change_commune, current_units, sort_transitions
from .previous import read_previous, without_overlaps
from .report import change_report

log = logging.getLogger(__name__)


def change_to_file(workdir: str, code: str, collapse: frozenset[str], thresholds: Thresholds) -> None:
    """Task: overlay one commune (one found not current by the stage). Runs on a worker."""
    work = WorkDir(Path(workdir))
    crs = work.read_manifest().crs

    def read(path: Path, columns: list[str]) -> gpd.GeoDataFrame:
        empty = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns}, geometry=[], crs=crs)
        return read_geoparquet(path) if path.exists() else empty

    previous = read(work.previous(code), ["landuse", "uses"])
    current = current_units(read(work.parcels(code), ["landuse", "uses", "sheet_no", "parcel_no"]),
                            read(work.khoanh(code), ["landuse", "uses", "khoanh_no"]), thresholds)
    pieces, table = change_commune(previous, current, collapse, thresholds=thresholds)
    pieces["commune_code"] = code
    write_geoparquet(work.change(code), pieces[PIECE_COLUMNS])
    write_csv(work.change(code).with_suffix(".csv"), table.assign(commune_code=code)[TRANSITION_COLUMNS])


def change_is_current(work: WorkDir, code: str) -> bool:
    """Whether a commune's overlay is newer than its khoanh, parcels, previous layer and the manifest."""
    sources = (work.khoanh(code), work.parcels(code), work.previous(code))
    inputs = [p for p in sources if p.exists()] + [work.manifest]
    return up_to_date([work.change(code), work.change(code).with_suffix(".csv")], inputs)


def read_previous_layer(work: WorkDir, manifest: RunManifest, collapse: frozenset[str]) -> dict:
    """The previous layer per commune under ``change/previous/`` (overlaps counted
    once), read again only when its files (even for older copies) or the
    manifest changed; returns what was read (``read.json``)."""
    previous = manifest.previous
    assert previous is not None  # checked by run_change
    read_state = work.previous_dir / "read.json"
    given_files = given(work, "previous", sorted({source.path for source in discover_pattern(previous.path)}))
    if not up_to_date([read_state], [given_files, work.manifest]):
        layer, quarantine, reports = read_previous(previous, manifest.ingest_settings(work.root), collapse)
        communes = {}
        for code, group in layer.groupby("commune_code", sort=True):
            resolved, removed = without_overlaps(group.reset_index(drop=True), manifest.qa)
            write_geoparquet(work.previous(code), resolved)
            communes[code] = {"features": len(group), "area_m2": float(group["area_m2"].sum()),
                              "overlap_removed_m2": removed}
        for stale in {p.stem for p in work.previous_dir.glob("*.parquet")} - set(communes):
            work.previous(stale).unlink()
        if len(quarantine):
            write_geoparquet(work.previous_dir / "quarantine.parquet", quarantine)
        write_json(read_state, {
            "files": [asdict(r) for r in reports],
            "communes": communes,
            "quarantine": quarantine.drop(columns="geometry").groupby("reason")["area_m2"]
            .agg(["size", "sum"]).rename(columns={"size": "features", "sum": "area_m2"}).reset_index()
            .to_dict("records") if len(quarantine) else [],
        })
    return json.loads(read_state.read_text(encoding="utf-8"))


@in_run_regime
def run_change(work: WorkDir, *, scheduler: str | None = "sync", progress: bool = True) -> dict[str, Path]:
    """Overlay the previous inventory with this one, commune by commune, and
    write ``stats/transitions.csv`` and ``reports/change.md``."""
    manifest = work.read_manifest()
    if manifest.previous is None:
        raise InputFileError("No previous inventory is configured: add a [previous] section with its path "
                             "to inventory.toml (see the bundled inventory.toml) and run ingest again.")
    collapse = load_template().collapse()
    state = read_previous_layer(work, manifest, collapse)
    codes = sorted({p.stem for p in work.khoanh_files()} | set(state["communes"]))
    stale = [code for code in codes if not change_is_current(work, code)]
    with executor(scheduler, shared=work.root) as pmap:
        pmap(change_to_file, [(str(work.root), code, collapse, manifest.qa) for code in stale],
             "change" if progress else "")
    frames = [pd.read_csv(work.change(c).with_suffix(".csv"), dtype={"commune_code": str}) for c in codes]
    table = sort_transitions(pd.concat(frames, ignore_index=True))
    record = digests_record(work, work.stats_dir)
    tell_kept(keep_hand_edits(record, [work.transitions_csv]), "statistics table")  # saved from Excel: kept beside
    write_csv_if_changed(work.transitions_csv, table)  # unchanged → later stages stay up to date
    record_written_files(record, [work.transitions_csv])
    report = work.report("change.md")
    write_text_if_changed(report, change_report(table, state, manifest.previous, manifest))
    log.info("change: %d communes (%d overlaid again) → %s, %s", len(codes), len(stale), work.transitions_csv, report)
    return {"transitions": work.transitions_csv, "report": report}
