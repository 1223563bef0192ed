"""The regroup stage: the inventory on new administrative units (the communes
of 1 July 2025, or another reform given under ``[units]``).

Each ``[units]`` entry makes a work directory of its own, ``units_<label>/``,
holding the khoanh cut by the new boundaries (``khoanh/<new code>.parquet``),
a run manifest with the new boundaries and the levels of the reform (no
district since 2025), the crosswalk old commune → new unit
(``stats/crosswalk_<label>.csv`` and ``.xlsx``) and ``reports/regroup.md``;
the aggregate, forms and maps stages then run on it unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyproj import CRS

from ..aggregate import run_aggregate
from ..boundaries import in_province_crs, padded_codes
from ..config import Boundaries, NewUnits
from ..errors import InputFileError
from ..forms import run_forms
from ..io import (
    atomic_path,
    read_columns,
    read_commune_table,
    read_json,
    read_layer_holding,
    read_officer_csv,
    up_to_date,
    write_csv,
    write_geoparquet,
    write_json,
    write_table,
    write_text,
)
from ..maps import run_maps
from ..parallel import SYNC, executor
from ..records import (
    commune_set,
    digests_record,
    given,
    keep_hand_edits,
    record_communes,
    recording,
    rewriting,
    tell_kept,
)
from ..vntext import fold, repair_names
from ..workdir import WorkDir, in_run_regime
from .overlay import UnitIndex, crosswalk, regroup, regroup_parcels
from .report import crosswalk_workbook, regroup_report

log = logging.getLogger(__name__)

PROVISIONAL_PREFIX = "9"  # codes kiemke gives units that come without one (no GSO commune code starts with 9)


def unit_codes(names: pd.Series, spec: NewUnits, frame: pd.DataFrame) -> pd.Series:
    """The new units' codes: from ``code_field``, from the ``codes`` CSV
    (``name,code``, names matched without case or diacritics), or provisional
    (``9`` + the rank of the name) when none is given."""
    if spec.code_field:
        if spec.code_field not in frame:
            raise InputFileError(f"{spec.path}: no field {spec.code_field!r} (code_field of [units]).")
        return padded_codes(frame[spec.code_field], 5)
    if spec.codes:
        table = read_officer_csv(spec.codes)
        by_name = dict(zip(table["name"].map(fold), padded_codes(table["code"], 5), strict=True))
        codes = names.map(lambda n: by_name.get(fold(n)))
        if codes.isna().any():
            raise InputFileError(f"{spec.codes}: no code for {sorted(names[codes.isna()])}. Add them to the CSV.")
        return codes
    rank = names.rank(method="first").astype(int)
    return rank.map(lambda k: f"{PROVISIONAL_PREFIX}{k:04d}")


def load_new_units(spec: NewUnits, meridian: float) -> gpd.GeoDataFrame:
    """The new units in the inventory CRS: ``unit_code``, ``unit_name``, geometry."""
    try:
        frame = read_layer_holding(spec.path, [spec.name_field])
    except Exception as exc:
        raise InputFileError(f"{spec.path}: cannot read the new units ({exc}).") from None
    if spec.name_field not in frame:
        raise InputFileError(f"{spec.path}: no field {spec.name_field!r} (name_field of [units]); "
                             f"fields: {[c for c in frame.columns if c != 'geometry']}.")
    names = pd.Series(repair_names(frame[spec.name_field].astype(str)), index=frame.index)  # an old file's: TCVN3
    frame = in_province_crs(frame, meridian, spec.path)
    return gpd.GeoDataFrame({"unit_code": unit_codes(names, spec, frame), "unit_name": names},
                            geometry=frame.geometry.values, crs=frame.crs).sort_values("unit_code", ignore_index=True)


def _write_boundaries(path: Path, units: gpd.GeoDataFrame) -> Path:
    """The new units as a boundary file with the fields kiemke reads (no district)."""
    frame = gpd.GeoDataFrame({"gso_commune_code": units["unit_code"], "commune_vn": units["unit_name"],
                              "gso_district_code": "", "district_vn": ""}, geometry=units.geometry, crs=units.crs)
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(frame, tmp, driver="GeoJSON", layer=path.stem)
    return path


LAYER_SOURCE_COLUMNS = ["commune_code", "khoanh_no", "landuse", "uses", "owner_type", "area_m2"]


def khoanh_layer_table(pieces: pa.Table, unit_name: str) -> pa.Table:
    """One unit's regrouped khoanh in the columns of an inventory's khoanh map
    (MAXA, TENXA, SOKHOANH, MALOAIDAT, DT_ONT, MADT, DIENTICH; ``geom`` as
    MultiPolygon WKB): the next inventory's ``[previous]`` on the new units."""
    frame = pieces.select(LAYER_SOURCE_COLUMNS).to_pandas()
    uses = frame["uses"].map(lambda u: json.loads(u) if isinstance(u, str) else None)
    codes = pd.Series([("+".join(u) if u else c) for u, c in zip(uses, frame["landuse"], strict=True)], dtype=object)
    keep = codes.notna().to_numpy()  # a gap of the QA has no land use to compare
    geoms = shapely.from_wkb(pieces["geometry"].to_numpy(zero_copy_only=False)[keep])
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    geoms[single] = shapely.multipolygons(geoms[single, None])
    return pa.table({
        "MAXA": pa.array(frame["commune_code"].to_numpy()[keep], pa.string()),
        "TENXA": pa.array([unit_name] * int(keep.sum()), pa.string()),
        "SOKHOANH": pa.array(frame["khoanh_no"].to_numpy()[keep], pa.int64()),
        "MALOAIDAT": pa.array(codes.to_numpy()[keep], pa.string()),
        "DT_ONT": pa.array([float(next(iter(u.values()))) if u else 0.0 for u in uses[keep]], pa.float64()),
        "MADT": pa.array(frame["owner_type"].to_numpy()[keep], pa.string()),
        "DIENTICH": pa.array(frame["area_m2"].round(1).to_numpy()[keep], pa.float64()),
        "geom": pa.array(shapely.to_wkb(geoms), pa.binary()),
    })


def write_khoanh_layer(path: Path, layers: list[Path], crs: CRS) -> Path:
    """The units' khoanh map layers (:func:`khoanh_layer_table`, Arrow IPC files)
    as one GeoPackage layer, streamed through Arrow a unit at a time (no geometry
    decoded), into a file beside that takes ``path``'s name once whole."""
    readers = [pa.ipc.open_file(pa.memory_map(str(p))) for p in layers]
    batches = (reader.get_batch(k) for reader in readers for k in range(reader.num_record_batches))
    with atomic_path(path, suffix=".gpkg") as tmp:
        tmp.unlink()  # GDAL makes the GeoPackage
        pyogrio.write_arrow(pa.RecordBatchReader.from_batches(readers[0].schema, batches), tmp, layer=path.stem,
                            driver="GPKG", geometry_name="geom", geometry_type="MultiPolygon", crs=crs.to_wkt())
    return path


def _units_of(spec: NewUnits, meridian: float) -> tuple[gpd.GeoDataFrame, UnitIndex]:
    """The new units and their index, made once per process and version of the
    units' file (each worker, for its tasks; the client too when it runs them)."""
    path = Path(spec.path)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else (0, 0)  # missing: load says so
    return _units_and_index(spec, meridian, *stamp)


@cache
def _units_and_index(spec: NewUnits, meridian: float, mtime_ns: int, size: int) -> tuple[gpd.GeoDataFrame,
                                                                                          UnitIndex]:
    units = load_new_units(spec, meridian)
    return units, UnitIndex.of(units)


def regroup_commune(workdir: str, code: str, spec: NewUnits, meridian: float, parts: str) -> tuple[pd.DataFrame,
                                                                                                 list[str]]:
    """Task: one old commune's khoanh and parcels cut by the new units, written
    per new unit to ``parts/{khoanh,parcels}/<new code>/<code>.parquet``, and
    its record (:class:`_Cuts`); returns its slivers and the new units it feeds.
    Runs on a worker."""
    work, (units, index) = WorkDir(Path(workdir)), _units_of(spec, meridian)
    khoanh = gpd.read_parquet(work.khoanh(code))
    pieces, slivers = regroup(khoanh, units, index=index)
    parcels = regroup_parcels(gpd.read_parquet(work.parcels(code)), khoanh, pieces, units, index)
    for layer, frame in (("khoanh", pieces), ("parcels", parcels)):
        units_of_rows = frame["commune_code"].to_numpy()  # sorted by unit: each unit's rows a slice (no copy)
        ends = [*(np.flatnonzero(units_of_rows[1:] != units_of_rows[:-1]) + 1).tolist(), len(frame)]
        for start, end in zip([0, *ends[:-1]], ends, strict=True):
            if end > start:
                write_geoparquet(Path(parts) / layer / units_of_rows[start] / f"{code}.parquet",
                                 frame.iloc[start:end], scratch=True)
    feeds = sorted(set(pieces["commune_code"].unique()) | set(parcels["commune_code"].unique()))
    _Cuts(Path(parts)).record(code, slivers, feeds)  # last: a commune recorded is cut whole
    return slivers, feeds


def assemble_unit(parts: str, target_root: str, unit_code: str, unit_name: str, olds: list[str]) -> None:
    """Task: one new unit's khoanh and parcels from its parts cut from the old
    communes (in old-commune order: the order of one overlay of them all), as
    Arrow tables, and its khoanh map layer (``parts/layer/<code>.arrow``); a
    layer it no longer has is removed. Runs on a worker."""
    target = WorkDir(Path(target_root))
    for layer, folder in (("khoanh", target.khoanh_dir), ("parcels", target.parcels_dir)):
        found = [p for old in olds if (p := Path(parts) / layer / unit_code / f"{old}.parquet").exists()]
        arrow = Path(parts) / "layer" / f"{unit_code}.arrow"
        if not found:  # e.g. only a parcel's sliver and no khoanh of the unit
            (folder / f"{unit_code}.parquet").unlink(missing_ok=True)
            if layer == "khoanh":
                arrow.unlink(missing_ok=True)
            continue
        mine = read_commune_table(found, unit_code)
        write_table(folder / f"{unit_code}.parquet", mine)
        if layer == "khoanh":
            table = khoanh_layer_table(mine, unit_name)
            arrow.parent.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)


class _Cuts:
    """The old communes already cut (``parts/cut/<old>.json``: the new units it
    feeds; ``<old>.slivers.parquet``), so that a later run cuts only the old
    communes whose khoanh or parcels changed and puts together only the new
    units they feed."""

    def __init__(self, parts: Path):
        self.folder = parts / "cut"

    def current(self, old: str, inputs: list[Path]) -> bool:
        return up_to_date([self.folder / f"{old}.json", self.folder / f"{old}.slivers.parquet"], inputs)

    def known(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def feeds(self, old: str) -> list[str]:
        path = self.folder / f"{old}.json"
        return read_json(path, {"feeds": []})["feeds"]

    def slivers(self, old: str) -> pd.DataFrame:
        return pd.read_parquet(self.folder / f"{old}.slivers.parquet")

    def forget(self, old: str, parts: Path) -> None:
        """Remove an old commune's record and its parts (before it is cut again, or when it is gone)."""
        (self.folder / f"{old}.json").unlink(missing_ok=True)
        (self.folder / f"{old}.slivers.parquet").unlink(missing_ok=True)
        for stale in parts.glob(f"*/*/{old}.parquet"):
            stale.unlink()

    def record(self, old: str, slivers: pd.DataFrame, feeds: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{old}.slivers.parquet") as tmp:
            slivers.to_parquet(tmp, index=False)
        write_json(self.folder / f"{old}.json", {"feeds": feeds})


def _assembled(target: WorkDir) -> Path:
    """The record of the new units' khoanh and parcels files the last regroup wrote."""
    return target.cache_dir / "assembled.json"


def _missing(target: WorkDir) -> set[str]:
    """The new units one of whose files the last regroup wrote is gone (deleted by hand): put together again."""
    return {Path(name).stem for name in read_json(_assembled(target), []) if not (target.root / name).exists()}


def regroup_units(work: WorkDir, spec: NewUnits, scheduler=SYNC) -> WorkDir:
    """Cut the run's khoanh by ``spec``'s units into ``units_<label>/`` (unless
    current): each old commune cut on a worker (only those changed since the
    last run), then each new unit they feed put together on one."""
    manifest = work.read_manifest()
    target = WorkDir(work.root / f"units_{spec.label}")
    common, boundary_file = _common_inputs(work, spec), _boundary_file(target, spec)
    outputs = [target.report("regroup.md"), *_crosswalk_files(target, spec),
               target.root / f"khoanh_dat_{spec.label}.gpkg"]
    boundary_record = digests_record(target, target.root)  # the units' sheets are drawn on it: edited, kept beside
    tell_kept(keep_hand_edits(boundary_record, [boundary_file]), "boundary file")
    missing = _missing(target)
    if target.manifest.exists() and up_to_date([boundary_file], common) and not missing and \
            up_to_date(outputs, [*work.khoanh_files(), *work.parcel_files(), commune_set(work), work.commune_overlaps,
                                 *common]):
        return target
    olds = [p.stem for p in work.khoanh_files()]
    parts = target.root / "parts"
    cuts = _Cuts(parts)
    stale = [old for old in olds if not cuts.current(old, [work.khoanh(old), work.parcels(old), *common])]
    gone = [old for old in cuts.known() if old not in olds]
    with executor(scheduler, shared=work.root, inputs=[spec.path]) as pmap, \
            ThreadPoolExecutor(2, thread_name_prefix="kiemke-regroup") as beside:
        loaded = beside.submit(_units_of, spec, manifest.meridian)  # here while the workers cut
        if len(stale) == len(olds):  # the units or the run changed: start afresh
            if (aside := _set_aside(parts)) is not None:
                beside.submit(shutil.rmtree, aside, ignore_errors=True)
            for folder in (target.khoanh_dir, target.parcels_dir):
                for leftover in folder.glob("*.parquet"):
                    leftover.unlink()
        affected = {unit for old in [*stale, *gone] for unit in cuts.feeds(old)}
        for old in [*stale, *gone]:
            cuts.forget(old, parts)
        done = pmap(regroup_commune, [(str(work.root), code, spec, manifest.meridian, str(parts)) for code in stale],
                    "regroup")
        units, _ = loaded.result()
        cut_now = dict(zip(stale, done, strict=True))  # old commune → its slivers and the units it feeds
        fed_by = {old: set(cut_now[old][1] if old in cut_now else cuts.feeds(old)) for old in olds}
        affected |= {u for old in olds for u in fed_by[old]
                     if old in stale or u in missing or not (target.khoanh(u).exists() or target.parcels(u).exists())}
        feeds = {u: [old for old in olds if u in fed_by[old]] for u in sorted(affected)}
        names = dict(zip(units["unit_code"], units["unit_name"], strict=True))
        pmap(assemble_unit, [(str(parts), str(target.root), u, names.get(u, ""), feeds[u]) for u in feeds], "")
        layer = beside.submit(pmap, write_khoanh_layer, [(target.root / f"khoanh_dat_{spec.label}.gpkg",
                                                          sorted((parts / "layer").glob("*.arrow")), units.crs)])
        slivers = pd.concat([cut_now[old][0] if old in cut_now else cuts.slivers(old) for old in olds],
                            ignore_index=True)
        khoanh, pieces = _crosswalk_and_report(work, target, spec, units, slivers, boundary_record)
        layer.result()  # beside the crosswalk and report, on a worker
    assembled = [*target.khoanh_files(), *target.parcels_dir.glob("*.parquet")]
    record_communes(target, [p.stem for p in assembled])
    write_json(_assembled(target), sorted(p.relative_to(target.root).as_posix() for p in assembled))
    derived = replace(manifest, boundaries=Boundaries(path=boundary_file, context=boundary_file),
                      natural_area_ha={}, communes=(), previous=None, units=(), levels=spec.levels)
    target.write_manifest(derived)  # its time dates every sheet of the units
    log.info("regroup %s: %d of %d old communes cut again, %d units put together; %d khoanh → %d pieces in %d units "
             "(%d slivers, %.2f m²) → %s", spec.label, len(stale), len(olds), len(feeds), khoanh, len(pieces),
             pieces["commune_code"].nunique(), len(slivers), slivers["area_m2"].sum(), target.root)
    return target


def _common_inputs(work: WorkDir, spec: NewUnits) -> list[Path]:
    """What every output of the regroup depends on: the units' files as given, the run manifest."""
    return [given(work, f"units_{spec.label}", [spec.path, spec.codes]), work.manifest]


def _boundary_file(target: WorkDir, spec: NewUnits) -> Path:
    return target.root / f"ranh_gioi_xa_{spec.label}.geojson"


def _crosswalk_files(target: WorkDir, spec: NewUnits) -> list[Path]:
    return [target.stats_dir / f"crosswalk_{spec.label}{ext}" for ext in (".csv", ".xlsx")]


def _set_aside(folder: Path) -> Path | None:
    """The folder renamed out of the way (a hidden temporary beside it, which
    a killed run's next run removes), to be removed while the work goes on;
    None when there is none."""
    if not folder.exists():
        return None
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    os.replace(folder, aside)
    return aside


def _crosswalk_and_report(work: WorkDir, target: WorkDir, spec: NewUnits, units: gpd.GeoDataFrame,
                          slivers: pd.DataFrame, boundary_record: Path) -> tuple[int, pd.DataFrame]:
    """The new units' boundary file, the crosswalk (CSV, workbook) and
    ``reports/regroup.md``; the number of khoanh regrouped and their pieces."""
    manifest = work.read_manifest()
    boundary_file, crosswalk_files = _boundary_file(target, spec), _crosswalk_files(target, spec)
    khoanh = read_columns(work.khoanh_files(), ["landuse", "area_m2"])
    pieces = read_columns(target.khoanh_files(), ["old_commune_code", "commune_code", "landuse", "area_m2"])
    if not up_to_date([boundary_file], _common_inputs(work, spec)):  # its time, too, dates every sheet of the units
        with recording(boundary_record, [boundary_file]):  # one edited by hand was set aside above
            _write_boundaries(boundary_file, units)
    names = dict(zip(units["unit_code"], units["unit_name"], strict=True))
    table = crosswalk(pieces, manifest.commune_names(), names)
    with rewriting(digests_record(target, target.stats_dir), crosswalk_files) as kept:
        tell_kept(kept, "statistics table")  # an officer's notes in the workbook: kept beside
        write_csv(crosswalk_files[0], table)
        crosswalk_workbook(crosswalk_files[1], table, spec.label)
    provisional = not (spec.code_field or spec.codes)
    unit_m2 = dict(zip(units["unit_code"], units.area, strict=True))
    held_twice = read_columns([work.commune_overlaps], ["area_m2"]) if work.commune_overlaps.exists() else None
    write_text(target.report("regroup.md"),
               regroup_report(khoanh, pieces, slivers, table, spec, provisional, unit_m2, held_twice))
    return len(khoanh), pieces


@in_run_regime
def regroup_all(work: WorkDir, *, scheduler=SYNC) -> list[WorkDir]:
    """Every ``[units]`` of the run regrouped (the overlay, the crosswalk, the report)."""
    return [regroup_units(work, spec, scheduler) for spec in work.read_manifest().units]


def units_outputs(targets: list[WorkDir], *, scheduler: str | None = "sync", maps: bool = True) -> None:
    """The statistics, forms and (unless the run draws them with its own) maps of regrouped work directories."""
    for target in targets:
        run_aggregate(target, scheduler=scheduler)
        run_forms(target, scheduler=scheduler)
        if maps:
            run_maps(target, scheduler=scheduler, progress=False)


@in_run_regime
def run_regroup(work: WorkDir, *, scheduler: str | None = "sync") -> list[WorkDir]:
    """Every ``[units]`` of the run: regroup, then the statistics, forms and maps of the new units."""
    done = regroup_all(work, scheduler=scheduler)
    units_outputs(done, scheduler=scheduler)
    return done
