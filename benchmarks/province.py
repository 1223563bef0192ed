"""A synthetic province for `make bench`: the sample generator over ~200 real
Lạng Sơn communes (~1 000 000 parcels), shapefiles in mixed CRSs, and the
side-by-side timings of issue 8 — ours, the floor, the naive geopandas
pipelines and ogr2ogr — at 10 k, 100 k and 1 M parcels."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMS = ("shp_prj", "shp_utm48", "shp_wgs84")
UNITS_2025 = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "langson_communes_2025_osm.geojson"
CRS_OF_FORM = {"shp_prj": "EPSG:9215", "shp_utm48": "EPSG:3405", "shp_wgs84": "EPSG:4326"}


def _boundaries():
    from pipeline.sample import commune_boundaries

    bounds = commune_boundaries()
    missing = bounds["gso_commune_code"].isna()
    bounds.loc[missing, "gso_commune_code"] = [f"9{int(i) % 10000:04d}" for i in bounds.loc[missing, "commune_id"]]
    return bounds


def write_commune(code: str, form: str, parcels: int, out: str) -> int:
    """Task: one synthetic commune as a shapefile in its CRS; returns the parcel count."""
    import pyogrio
    import shapely
    from pyproj import CRS

    from pipeline import crs as vn
    from pipeline.sample import SampleCommune, generate_commune

    frame = generate_commune(SampleCommune(code, code, form, parcels), _boundaries())
    frame = frame.set_geometry(shapely.segmentize(frame.geometry.values, 40.0), crs=frame.crs)  # ~10 vertices
    if form != "shp_prj":
        target = CRS.from_user_input(CRS_OF_FORM[form])
        frame = frame.set_geometry(vn.reproject(frame.geometry.values, target, 107.25, inverse=True), crs=target)
    folder = Path(out) / code
    folder.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, folder / f"TD_{code}.shp", encoding="UTF-8", layer_options={"RESIZE": "YES"})
    return len(frame)


def generate_province(out: Path, communes: int = 200, parcels: int = 5_000) -> pd.DataFrame:
    """~``communes`` × ``parcels`` parcels under ``out``, in parallel on a local cluster."""
    from pipeline.parallel import executor

    bounds = _boundaries().sort_values("gso_commune_code")
    codes = list(bounds["gso_commune_code"])[:communes]
    with executor(None) as pmap:
        counts = pmap(write_commune, [(c, FORMS[i % 3], parcels, str(out)) for i, c in enumerate(codes)],
                      "generate")
    return pd.DataFrame({"commune_code": codes, "parcels": counts})


# ------------------------------------------------------------------ contenders


class PeakRSS:
    """Peak resident memory of a process (this one, or ``pid``) and its
    children (dask workers), sampled with their CPU time; per stage when the
    stages' start times are known."""

    def __init__(self, pid: int | None = None):
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self.samples: list[tuple[float, int, float]] = []  # (Unix time, RSS bytes, CPU seconds so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        cpu: dict[int, float] = {}  # per process, its last reading (an ended worker's CPU still counts)
        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):  # the process has ended
                for p in [self.process, *self.process.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a worker that just ended
                        total += p.memory_info().rss
                        times = p.cpu_times()
                        cpu[p.pid] = times.user + times.system
            self.peak = max(self.peak, total)
            self.samples.append((time.time(), total, sum(cpu.values())))
            time.sleep(0.1)

    def by_stage(self, began: dict[str, float], ended: float) -> dict[str, dict[str, float]]:
        """Each stage's peak RSS (MB) and CPU seconds of all the processes."""
        if not self.samples:
            return {}
        t, rss, cpu = (np.array(column) for column in zip(*self.samples, strict=True))
        bounds = [*began.values(), ended]
        out = {}
        for name, start, end in zip(began, bounds[:-1], bounds[1:], strict=True):
            inside = (t >= start) & (t <= end)
            first, last = np.searchsorted(t, [start, end])
            out[name] = {"peak_rss_mb": round(float(rss[inside].max()) / 2**20, 1) if inside.any() else None,
                         "cpu_s": round(float(cpu[min(last, len(t) - 1)] - cpu[min(first, len(t) - 1)]), 2)}
        return out

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _read_in_tm3(path: str):
    """One file's Arrow table (without its geometry) and its polygons in the province's TM-3."""
    import pyogrio
    import shapely
    from pyproj import CRS

    from pipeline import crs as vn

    meta, table = pyogrio.read_arrow(path)
    column = meta["geometry_name"] or "wkb_geometry"
    geoms = shapely.from_wkb(table.column(column).to_numpy(zero_copy_only=False))
    return table.drop_columns([column]), vn.reproject(geoms, CRS.from_user_input(meta["crs"]), 107.25)


def floor_task(path: str) -> float:
    """Arrow read + PROJ transform + area of one file (the floor's unit of work)."""
    import shapely

    return float(shapely.area(_read_in_tm3(path)[1]).sum())


def stored_floor_task(path: str, part: str) -> str:
    """The floor's unit plus what a staged inventory cannot leave out: each
    polygon's validity, and the commune's part stored (Parquet, zstd) to be
    read back by the next stage and reused by a later run."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    table, geoms = _read_in_tm3(path)
    table = (table.append_column("area_m2", pa.array(shapely.area(geoms)))
             .append_column("valid", pa.array(shapely.is_valid(geoms)))
             .append_column("geometry", pa.array(shapely.to_wkb(geoms))))
    pq.write_table(table, part, compression="zstd")
    return part


def stored_sum_task(part: str, code_column: str = "KHLOAIDAT") -> dict[str, float]:
    """A stored part read back and its area summed by land-use code (the aggregate's unit)."""
    import pyarrow.parquet as pq

    frame = pq.read_table(part, columns=[code_column, "area_m2"]).to_pandas()
    return frame.groupby(code_column)["area_m2"].sum().to_dict()


def _timed_maps(*steps: tuple) -> float:
    """Seconds to run each ``(task, args)`` step over the local cluster, one after the other."""
    from pipeline.parallel import executor

    with executor(None) as pmap:
        pmap(os.getpid, [()])  # the cluster starts on its first map: not counted
        start = time.perf_counter()
        for task, args in steps:
            pmap(task, args)
        return time.perf_counter() - start


def floor(files: list[Path]) -> float:
    return _timed_maps((floor_task, [(str(f),) for f in files]))


def stored_floor(files: list[Path], parts: Path) -> float:
    """The floor with validity and a stored part per file, read back and summed:
    the least a staged run (stages that reuse a commune's stored result) does."""
    parts.mkdir(parents=True, exist_ok=True)
    names = [str(parts / f"{i:04d}.parquet") for i in range(len(files))]
    return _timed_maps((stored_floor_task, [(str(f), n) for f, n in zip(files, names, strict=True)]),
                       (stored_sum_task, [(n,) for n in names]))


def ours(files_root: Path, work: Path) -> tuple[float, float]:
    """kiemke ingest (encoding, CRS checks, validation, quarantine) + aggregate."""
    from pipeline.aggregate import run_aggregate
    from pipeline.config import Settings
    from pipeline.ingest import run_ingest
    from pipeline.parallel import executor
    from pipeline.reference import province
    from pipeline.workdir import WorkDir

    settings = Settings(province=province("20"), workdir=work)
    with executor(None) as pmap, PeakRSS() as rss:
        pmap(os.getpid, [()])  # cluster start-up is not counted, as for the floor
        start = time.perf_counter()
        run_ingest(WorkDir(settings.workdir), [files_root], settings, progress=False, scheduler=pmap)
        run_aggregate(WorkDir(work), scheduler=pmap)
        elapsed = time.perf_counter() - start
    return elapsed, rss.peak / 2**20


def naive(files: list[Path], engine: str) -> float:
    """What a user writes by hand: read_file, to_crs, .area, groupby."""
    import geopandas as gpd

    start = time.perf_counter()
    parts = []
    for f in files:
        gdf = gpd.read_file(f, engine=engine).to_crs("EPSG:9215")
        parts.append(gdf.assign(a=gdf.area).groupby(["KHLOAIDAT", "DOITUONG"])["a"].sum())
    pd.concat(parts).groupby(level=[0, 1]).sum()
    return time.perf_counter() - start


def ogr2ogr(files: list[Path]) -> float | None:
    """GDAL's SQLite dialect: SUM(ST_Area(ST_Transform(geometry, 9215))) GROUP BY."""
    exe = shutil.which("ogr2ogr")
    if exe is None:
        return None
    start = time.perf_counter()
    for f in files:
        sql = (f"SELECT KHLOAIDAT, DOITUONG, SUM(ST_Area(ST_Transform(geometry, 9215))) AS a FROM \"{f.stem}\" "
               "GROUP BY KHLOAIDAT, DOITUONG")
        subprocess.run([exe, "-f", "CSV", "/vsistdout/", str(f), "-dialect", "SQLite", "-sql", sql],
                       check=True, capture_output=True)
    return time.perf_counter() - start


def inventory(files_root: Path, work: Path, timeout: float) -> dict | None:
    """The full `kiemke inventory` (QA, khoanh, forms, maps, GeoPackage) in a
    subprocess: its wall time, the time of each stage (reports/timings.json),
    the peak memory of its processes (the CLI and its workers) and, per stage,
    their peak memory and CPU time."""
    config = work.parent / f"{work.name}.toml"
    config.write_text(f'[inventory]\nprovince = "Lạng Sơn"\ninput = "{files_root.as_posix()}"\n'
                      f'workdir = "{work.as_posix()}"\n'
                      f'[[units]]\nlabel = "2025"\npath = "{UNITS_2025.as_posix()}"\n', encoding="utf-8")
    start = time.perf_counter()
    command = [sys.executable, "-m", "pipeline", "-q", "inventory", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    with PeakRSS(process.pid) as rss:  # the inventory's processes only, not this bench's
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
    if process.returncode:
        raise RuntimeError(f"kiemke inventory failed: {err.decode()[-2000:]}")
    elapsed = time.perf_counter() - start
    timings = json.loads((work / "reports" / "timings.json").read_text(encoding="utf-8"))
    rerun_s = _timed_run(command)
    code = change_one_commune(files_root)
    one_s = _timed_run(command)
    redone = json.loads((work / "reports" / "timings.json").read_text(encoding="utf-8"))["stages_s"]
    return {"inventory_s": elapsed, "inventory_stages": timings["stages_s"],
            "inventory_stage_use": rss.by_stage(timings["stages_began"], timings["ended"]),
            "inventory_peak_rss_mb": rss.peak / 2**20, "inventory_rerun_s": rerun_s,
            "inventory_one_commune_s": one_s, "inventory_one_commune_stages": redone, "changed_commune": code,
            "inventory_rerun_after_change_s": _timed_run(command)}  # nothing left to do after a change, either


def _timed_run(command: list[str]) -> float:
    """The wall time of a run of ``command`` (a `kiemke inventory`) that must succeed."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    return time.perf_counter() - start


def change_one_commune(files_root: Path) -> str:
    """Give one parcel of the last commune under ``files_root`` another land-use
    code of its commune, as an officer's correction would; returns the commune.
    The last shapefile (a commune's folder's, or one of a folder of district
    files, each holding many communes) is the one changed.

    The file is written anew: when it is a link into the generated province
    (as the bench's subsets are), the link goes and the shared files stay as
    they were."""
    import pyogrio
    import shapely

    folders = sorted(p for p in files_root.iterdir() if p.is_dir())
    shp = next(folders[-1].glob("*.shp")) if folders else sorted(files_root.glob("*.shp"))[-1]
    frame = pyogrio.read_dataframe(shp)
    row = int(shapely.area(np.asarray(frame.geometry.values)).argmax())
    others = sorted(set(frame["KHLOAIDAT"]) - {frame.at[row, "KHLOAIDAT"]})
    frame.loc[row, "KHLOAIDAT"] = others[0]
    for part in shp.parent.glob(shp.stem + ".*"):
        part.unlink()
    pyogrio.write_dataframe(frame, shp, encoding="UTF-8", layer_options={"RESIZE": "YES"})
    return str(frame.at[row, "MAXA"])


def bench_province(sizes=(2, 20, 200), parcels: int = 5_000, inventory_timeout: float = 1800,
                   inventory_max_communes: int = int(os.environ.get("KIEMKE_BENCH_INVENTORY_MAX", "200"))) -> dict:
    """Generate the province once; time everything at 10 k, 100 k, 1 M parcels.

    The full inventory (every stage, maps at their configured resolution) is
    timed, then run again with nothing changed, up to ``inventory_max_communes``
    communes (env ``KIEMKE_BENCH_INVENTORY_MAX``, default every size)."""
    root = Path(tempfile.mkdtemp(prefix="kiemke_bench_"))
    try:
        start = time.perf_counter()
        table = generate_province(root / "raw", max(sizes), parcels)
        generate_s = time.perf_counter() - start
        rows = []
        for n in sizes:
            subset = root / f"raw_{n}"
            subset.mkdir()
            for code in table["commune_code"][:n]:
                (subset / code).mkdir()
                for part in (root / "raw" / code).iterdir():
                    (subset / code / part.name).symlink_to(part)
            files = sorted(subset.glob("*/*.shp"))
            count = int(table["parcels"][:n].sum())
            ours_s, rss = ours(subset, root / f"work_{n}")
            row = {"parcels": count, "communes": n, "floor_s": floor(files), "ours_s": ours_s, "peak_rss_mb": rss,
                   "stored_floor_s": stored_floor(files, root / f"stored_{n}"),
                   "naive_default_s": naive(files, "pyogrio"), "ogr2ogr_s": ogr2ogr(files)}
            row["naive_fiona_s"] = naive(files, "fiona") if _has("fiona") else None
            full = inventory(subset, root / f"inv_{n}", inventory_timeout) if n <= inventory_max_communes else None
            row.update(full or {"inventory_s": None})
            print(json.dumps(row), flush=True)
            rows.append(row)
        return {"generate_s": generate_s, "rows": rows}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_regroup(communes: int = 200, parcels: int = 5_000) -> dict:
    """Issue 18: the 1 M-parcel province's khoanh stage against its regroup onto
    the 65 communes of 2025 (both on the same local cluster / in this process)."""
    from pipeline.config import NewUnits, Settings
    from pipeline.ingest import run_ingest
    from pipeline.khoanh import run_khoanh
    from pipeline.parallel import executor
    from pipeline.reference import province
    from pipeline.regroup import regroup_all
    from pipeline.workdir import WorkDir

    root = Path(tempfile.mkdtemp(prefix="kiemke_regroup_"))
    try:
        table = generate_province(root / "raw", communes, parcels)
        units = (NewUnits(path=UNITS_2025, label="2025", name_field="name", levels=("xa", "tinh")),)
        settings = Settings(province=province("20"), workdir=root / "work", units=units)
        work = WorkDir(settings.workdir)
        with executor(None) as pmap, PeakRSS() as rss:
            run_ingest(work, [root / "raw"], settings, progress=False, scheduler=pmap)
            start = time.perf_counter()
            run_khoanh(work, progress=False, scheduler=pmap)
            khoanh_s = time.perf_counter() - start
            start = time.perf_counter()
            regroup_all(work, scheduler=pmap)
            regroup_s = time.perf_counter() - start
        pieces = sum(1 for _ in (work.root / "units_2025" / "khoanh").glob("*.parquet"))
        return {"parcels": int(table["parcels"].sum()), "communes": communes, "khoanh_s": round(khoanh_s, 1),
                "regroup_s": round(regroup_s, 1), "regroup_over_khoanh": round(regroup_s / khoanh_s, 2),
                "new_units_with_land": pieces, "peak_rss_mb": round(rss.peak / 2**20), "target_max": 1.0}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for column, label in (("ours_s", "kiemke ingest + aggregate"), ("floor_s", "floor (Arrow read + PROJ + area)"),
                          ("stored_floor_s", "floor + validity + a part stored, read back"),
                          ("naive_default_s", "geopandas read_file (pyogrio)"),
                          ("naive_fiona_s", "geopandas read_file (fiona)"), ("ogr2ogr_s", "ogr2ogr SQLite"),
                          ("inventory_s", "full kiemke inventory")):
        if column in frame and frame[column].notna().any():
            ax.loglog(frame["parcels"], frame[column], marker="o", label=label)
    ax.set_xlabel("parcels")
    ax.set_ylabel("seconds (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
