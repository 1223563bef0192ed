"""Reliability of whole runs: inputs untouched, incremental re-runs, a run killed
with SIGKILL leaves no partial output and a re-run gives the same bytes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import cli
from pipeline.messages import officer_message
from pipeline.package import geopackage
from pipeline.package.ahead import take_copy
from pipeline.workdir import WorkDir
from tests.conftest import file_hashes, sample_config
from tests.golden import gpkg_tables
from tests.helpers import annotate_pdf, pdf_notes, square

ROOT = Path(__file__).resolve().parents[1]

REPO = Path(__file__).resolve().parents[1]


def _mtimes(work: Path) -> dict[str, int]:
    """When each file of a work folder was written, but the config, the record of the raw files, the
    stages' timings and the run's lock file (filelock's versions keep, touch or delete it)."""
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in work.rglob("*")
            if p.is_file() and p.name not in ("inventory.toml", "raw_hashes.json", "timings.json", "run.lock")}


def test_inputs_are_never_modified(sample_run, sample_raw):
    before = json.loads((sample_run / "raw_hashes.json").read_text(encoding="utf-8"))
    assert file_hashes(sample_raw) == before


def test_a_second_run_does_no_work(sample_run):
    before = _mtimes(sample_run)
    result = CliRunner().invoke(cli, ["inventory", "--config", str(sample_run / "inventory.toml")])
    assert result.exit_code == 0, result.output
    assert _mtimes(sample_run) == before
    assert "Bước package xong" in result.output  # the run's log (stderr) is captured here
    assert "dask:" not in result.output  # nothing to do: no cluster started, no task sent


def test_one_parcel_recoded_redoes_only_its_commune_and_the_rollups(sample_run, sample_raw, monkeypatch):
    """One parcel of commune 06286 recoded in its file: only the commune and
    the roll-ups are made again; the GeoPackage is patched (the commune's rows
    replaced). The file put back, the GeoPackage holds what it held; then a run
    with nothing changed, and one with the file exported again as it was (only
    its time new), make nothing again."""
    gpkg = next(sample_run.glob("*.gpkg"))
    tables = gpkg_tables(gpkg)
    dbf = sample_raw / "van_quan/khanh_khe/TD_06286.dbf"
    original = dbf.read_bytes()

    def run() -> str:
        result = CliRunner().invoke(cli, ["inventory", "--config", str(sample_run / "inventory.toml")])
        assert result.exit_code == 0, result.output
        return result.output

    def export(content: bytes) -> str:
        dbf.write_bytes(content)
        later = time.time() + 5
        os.utime(dbf, (later, later))
        return run()

    def made_again(step) -> list[str]:
        before = _mtimes(sample_run)
        step()
        return sorted(p for p, t in _mtimes(sample_run).items() if before.get(p) != t and not p.startswith("cache/"))

    copies: list[bool] = []  # whether the GeoPackage patched was the one copied while the stages computed
    monkeypatch.setattr(geopackage, "take_copy", lambda *paths: copies.append(take_copy(*paths)) or copies[-1])
    before = _mtimes(sample_run)
    output = export(original.replace(b"RSN", b"RSX", 1))  # the same width: the .dbf stays whole
    after = _mtimes(sample_run)
    changed = {p for p in after if after[p] != before.get(p)}
    others = ("06253", "06274", "06307")
    assert not [p for p in changed if any(code in p for code in others)], sorted(changed)
    for expected in ("parcels/06286.parquet", "khoanh/06286.parquet", "maps/xa_06286.pdf",
                     "forms/xa/06286/Bieu_01_TKDD.xlsx", "forms/huyen/184/Bieu_01_TKDD.xlsx",
                     "forms/tinh/20/Bieu_04_TKDD.xlsx", "maps/tinh_20.pdf", "stats/areas.csv",
                     "change/06286.parquet", "maps/bien_dong_xa_06286.pdf", "forms/xa/06286/Bieu_14_TKDD.xlsx",
                     "LangSon_2019_HTSDD.gpkg"):
        assert expected in changed, expected
    assert "GeoPackage chỉ ghi lại" in output and copies == [True]
    assert gpkg_tables(gpkg) != tables
    assert not list(sample_run.glob(".*.gpkg"))

    export(original)
    assert gpkg_tables(gpkg) == tables
    assert made_again(run) == []  # nothing changed since
    assert made_again(lambda: export(original)) == []  # exported again as it was


def _check_complete(path: Path) -> None:
    """A file with its final name must be whole and readable."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.read_metadata(path)
    elif suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".csv":
        pd.read_csv(path, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        openpyxl.load_workbook(path)
    elif suffix == ".pdf":
        data = path.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:], path
    elif suffix == ".png":
        Image.open(path).verify()
    elif suffix == ".gpkg":
        import sqlite3

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sigkill_mid_stage_leaves_no_partial_output_and_a_rerun_completes_identically(tmp_path, sample_raw, sample_run):
    work = tmp_path / "work"
    config = sample_config(sample_raw, work)
    command = [sys.executable, "-m", "pipeline", "-q", "inventory", "--config", str(config), "--scheduler", "sync"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list((work / "forms").rglob("*.xlsx")):  # killed inside "forms"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list((work / "forms").rglob("*.xlsx")), "the run ended before the forms stage"
    for path in work.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            _check_complete(path)

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not [p for p in work.rglob(".*") if p.is_file()], "temporary files left behind"
    _assert_same_outputs(work, sample_run)  # the sequential run gives the bytes of the uninterrupted run on the cluster


def _assert_same_outputs(work: Path, sample_run: Path) -> None:
    """The forms, statistics, map sheets and khoanh of ``work`` are, byte for byte, those
    of the sample's run on the local cluster, and its GeoPackage holds the same tables."""
    compared = 0
    for path in sorted(sample_run.rglob("*")):
        relative = path.relative_to(sample_run)
        if path.is_file() and relative.parts[0] in ("forms", "stats", "maps", "khoanh"):
            assert (work / relative).read_bytes() == path.read_bytes(), relative
            compared += 1
    assert compared > 100
    assert gpkg_tables(next(work.glob("*.gpkg"))) == gpkg_tables(next(sample_run.glob("*.gpkg")))


def test_a_cluster_given_by_its_address_runs_the_inventory_as_the_local_one_and_is_left_running(
        tmp_path, sample_raw, sample_run):
    """``--scheduler tcp://…``, how a province or the nation scales out: a
    cluster kiemke did not start (its workers neither niced nor freezing what
    each task leaves; they see the work directory by the paths the tasks carry)
    gives the sample's outputs byte for byte, and it is still there with its
    workers when kiemke is done: it is its owner's to close."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      scheduler_kwargs={"dashboard": False}) as cluster, Client(cluster) as owner:
        work = tmp_path / "work"
        result = CliRunner().invoke(cli, ["inventory", "--config", str(sample_config(sample_raw, work)),
                                          "--scheduler", cluster.scheduler_address])
        assert result.exit_code == 0, result.output[-2000:]
        assert cluster.scheduler.status.name == "running" and len(cluster.scheduler.workers) == 2
        assert owner.submit(sum, [1, 2]).result(timeout=60) == 3  # the cluster still takes work
    _assert_same_outputs(work, sample_run)


ANOTHER_CLIENT_CURRENT = '''
import os, sys, threading, time
from distributed import Client, LocalCluster
from pipeline.parallel import call, executor

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, scheduler_kwargs={"dashboard": False}) \\
            as cluster, Client(cluster):
        with executor(cluster.scheduler_address, local_from=2) as pmap:
            pmap(call, [(os.getpid,)] * 2)
            stop, maps = time.monotonic() + 5, 0
            def draw():
                while time.monotonic() < stop:
                    pmap(call, [(time.sleep, 0.001)] * 20, priority=-1)
            drawing = threading.Thread(target=draw)
            drawing.start()
            while time.monotonic() < stop:
                assert pmap(call, [(abs, -maps)] * (3 + 2 * (maps % 2))) == [maps] * (3 + 2 * (maps % 2))
                maps += 1
            drawing.join()
            print(maps)
'''


def test_a_cluster_given_by_its_address_while_another_client_is_the_current_one(tmp_path):
    """A notebook's cluster, its client the current one (``with Client(cluster):``),
    given to kiemke by its address: kiemke's maps, on this thread and behind on
    another, wait for their tasks on kiemke's client. Waiting on the notebook's
    client (dask's default in a ``with``) touched kiemke's connection from its
    event loop: a hang or tornado's write-buffer assertion within seconds."""
    script = tmp_path / "current.py"
    script.write_text(ANOTHER_CLIENT_CURRENT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 10


def _outputs(work: Path) -> dict[str, object]:
    """Every file of a work directory (the ingest cache aside, kept for a file
    that comes back), by content: a GeoPackage by its tables, the QGIS project
    by its XML (uuids aside), what the stages keep under ``cache/`` by its presence (the
    GeoPackage's ledger says where rows were patched in), the others by their bytes."""
    import zipfile

    out: dict[str, object] = {}
    for path in sorted(work.rglob("*")):
        relative = str(path.relative_to(work))
        if not path.is_file() or relative.startswith("cache/ingest/") or path.name in ("timings.json", "console.txt"):
            continue
        if relative.startswith(("cache/", "units_2025/cache/")):
            out[relative] = "kept"
        elif path.suffix == ".gpkg":
            out[relative] = gpkg_tables(path)
        elif path.suffix == ".qgz":
            xml = zipfile.ZipFile(path).read(path.with_suffix(".qgs").name).decode()
            out[relative] = re.sub(r"\{[0-9a-f-]{36}\}", "{uuid}", xml)  # a new one for each layout item
        elif path.name.startswith("crosswalk_") and path.suffix == ".xlsx":  # its CSV twin is compared
            out[relative] = "xlsx"
        else:
            out[relative] = path.read_bytes()
    return out


def _sample_of(tmp_path: Path, sample_dir: Path, *communes: str) -> Path:
    """A copy of the bundled sample with only these communes' folders (``tt_van_quan`` …)."""
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(sample_dir, raw)
    for folder in (raw / "van_quan").iterdir():
        if folder.name not in communes:
            shutil.rmtree(folder)
    return raw


def test_a_commune_whose_files_go_leaves_the_run_as_if_never_given(tmp_path, sample_dir):
    """The officer adds a commune's files and runs again, then takes them away
    (the wrong export) and runs again: every output is what it was before the
    commune came, its district's and the province's forms, sheets, GeoTIFFs
    and GeoPackage too, and nothing of it is left (its forms, sheets, khoanh,
    what the 2025 units kept). Before, the second run said "up to date" and
    the district and the province went on counting it."""
    import shutil

    raw, work = _sample_of(tmp_path, sample_dir, "tt_van_quan", "hoa_binh", "tan_doan"), tmp_path / "work"
    aside = tmp_path / "tan_doan"
    shutil.move(raw / "van_quan/tan_doan", aside)
    config = str(sample_config(raw, work))

    def run() -> str:
        result = CliRunner().invoke(cli, ["inventory", "--config", config])
        assert result.exit_code == 0, result.output
        return result.output

    run()
    before = _outputs(work)
    assert not [name for name in before if "06307" in name and not name.startswith("change/")]  # 2014's land only
    shutil.move(aside, raw / "van_quan/tan_doan")
    run()
    assert "forms/xa/06307/Bieu_01_TKDD.xlsx" in _outputs(work) and (work / "maps/xa_06307.pdf").exists()
    shutil.move(raw / "van_quan/tan_doan", aside)
    signed = work / "maps" / "xa_06307_da_ky.pdf"  # the officer's scan of a signed sheet, kept beside kiemke's
    signed.write_bytes(b"%PDF-1.4 scan")
    own = [work / "forms/xa/06307/Bieu_01_TKDD (bản đã ký).xlsx",  # Excel's "Save As" beside kiemke's forms
           work / "forms/xa/06253/Bieu_01_TKDD (bản đã ký).xlsx", work / "forms/huyen/184/ghi_chu.csv"]
    for path in own:
        shutil.copy(work / "forms/xa/06253/Bieu_01_TKDD.xlsx", path)
    imagery = work / "rasters/anh_ve_tinh_2019.tif"  # a planner's own GeoTIFF beside kiemke's
    shutil.copy(work / "rasters/xa_06307.tif", imagery)
    annotate_pdf(work / "maps/xa_06307.pdf", "Kiểm tra lại ranh giới")  # the gone commune's sheet, noted in Acrobat
    said = run()
    assert signed.exists() and imagery.exists() and all(path.exists() for path in own)
    [noted] = (work / "maps").glob("xa_06307_ban_sua_*.pdf")  # kept, not removed with the commune's sheet
    assert pdf_notes(noted) == ["Kiểm tra lại ranh giới"] and not (work / "maps/xa_06307.pdf").exists()
    assert f"bản đó được giữ lại thành {noted}" in said
    for path in [signed, *own, imagery, noted]:
        path.unlink()
    (work / "forms/xa/06307").rmdir()  # it held the officer's file only
    after = _outputs(work)
    assert sorted(after) == sorted(before)
    assert [name for name in after if after[name] != before[name]] == ["reports/ingest.md"]  # it says so:
    assert ("- Không còn tệp nào cho thửa của Xã Tân Đoàn (06307): mọi kết quả của xã đã được xóa"
            in (work / "reports/ingest.md").read_text(encoding="utf-8"))
    assert "xã 06307 không còn tệp dữ liệu nào" in said
    run()
    assert _outputs(work) == before  # and says it once


def test_what_an_earlier_version_left_of_a_gone_commune_is_forgotten(tmp_path):
    """A work directory with no record of its communes (an earlier version's):
    the khoanh, QA and cached figures of a commune no file gives are removed;
    the others' are kept."""
    from pipeline.records import commune_set, record_communes

    work = WorkDir(tmp_path)
    kept = [work.parcels("06253"), work.khoanh("06253"), work.figures("khoanh", "06253.parquet.areas.feather")]
    gone = [work.khoanh("06307"), work.qa_dir / "06307" / "section.json", work.commune_outline("06307"),
            work.figures("khoanh", "06307.parquet.areas.feather"), work.generalised("06307", 25_000)]
    for path in kept + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert record_communes(work, ["06253"]) == ["06307"]
    assert all(path.exists() for path in kept) and not any(path.exists() for path in gone)
    assert json.loads(commune_set(work).read_text(encoding="utf-8")) == ["06253"]
    assert record_communes(work, ["06253"]) == []


def test_a_previous_inventory_replaced_by_an_older_corrected_copy_is_read_again(tmp_path, sample_dir):
    """The officer replaces the 2014 layer by a corrected copy from the
    archive: unzipped, its files are dated 2015, older than every output. The
    change since 2014 is worked out again from it (before, the run kept the old
    overlay, as nothing was newer)."""

    raw, work = _sample_of(tmp_path, sample_dir, "tt_van_quan"), tmp_path / "work"
    config = str(sample_config(raw, work))

    def rice_2014() -> float:
        result = CliRunner().invoke(cli, ["inventory", "--config", config])
        assert result.exit_code == 0, result.output
        table = pd.read_csv(work / "stats/transitions.csv", dtype={"commune_code": str})
        return table.loc[table["from_code"] == "LUA", "area_m2"].sum()

    before = rice_2014()
    layer = raw / "kiem_ke_2014/HTSD_2014_VanQuan.dbf"
    records = layer.read_bytes()
    assert records.count(b"LUC") > 0  # MALOAIDAT's values only: the rice of 2014 was perennial crops
    layer.write_bytes(records.replace(b"LUC", b"CLN"))  # the same width: the .dbf stays whole
    for part in layer.parent.glob("HTSD_2014_VanQuan.*"):
        os.utime(part, (1_420_070_400, 1_420_070_400))  # 1 January 2015
    assert before > 0 and rice_2014() < 0.9 * before  # LUC is rice (LUA) no more; other rice stays


def test_a_corrected_context_boundary_file_redraws_the_sheets_even_when_older(tmp_path, sample_dir):
    """The wider boundaries the sheets name the neighbours from, corrected and
    copied back with an older date: every sheet is drawn again (before, the
    maps said "up to date"); with no change, none is."""
    import shutil

    raw, work = _sample_of(tmp_path, sample_dir, "tt_van_quan"), tmp_path / "work"
    context = raw / "boundaries" / "langson_2009.geojson"
    shutil.copy(REPO / "pipeline/data/langson_communes_2009.geojson", context)
    config = sample_config(raw, work)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(str(REPO / "pipeline/data/langson_communes_2009.geojson"), str(context)),
                      encoding="utf-8")
    sheet = work / "maps" / "xa_06253.pdf"

    def run() -> int:
        result = CliRunner().invoke(cli, ["inventory", "--config", str(config)])
        assert result.exit_code == 0, result.output
        return sheet.stat().st_mtime_ns

    first = run()
    assert run() == first
    corrected = context.read_text(encoding="utf-8").replace("Văn An", "Vân An")  # a neighbour's name, fixed
    assert corrected != context.read_text(encoding="utf-8")
    context.write_text(corrected, encoding="utf-8")
    os.utime(context, (1_420_070_400, 1_420_070_400))  # 1 January 2015, older than the sheets
    assert run() > first


def test_a_run_no_longer_compared_with_a_previous_inventory_keeps_nothing_of_the_comparison(tmp_path, sample_dir):
    """[previous] taken out of the config: the overlay, transitions, their
    report, the change sheets and Biểu 14 of the run before are removed."""
    raw, work = _sample_of(tmp_path, sample_dir, "tt_van_quan"), tmp_path / "work"
    config = sample_config(raw, work)

    def run() -> None:
        result = CliRunner().invoke(cli, ["inventory", "--config", str(config)])
        assert result.exit_code == 0, result.output

    run()
    compared = [work / "change", work / "stats/transitions.csv", work / "reports/change.md",
                work / "maps/bien_dong_xa_06253.pdf", work / "forms/xa/06253/Bieu_14_TKDD.xlsx"]
    assert all(path.exists() for path in compared)
    text = config.read_text(encoding="utf-8")
    start = text.index("[previous]")
    config.write_text(text[:start] + text[text.index("\n[", start) + 1:], encoding="utf-8")
    run()
    assert [path for path in compared if path.exists()] == []
    assert not any("bien_dong" in name for name in gpkg_tables(next(work.glob("*.gpkg"))))
    assert (work / "forms/xa/06253/Bieu_01_TKDD.xlsx").exists()


def test_the_record_of_given_files_sees_an_older_copy_a_dbf_edit_and_a_file_gone(tmp_path):
    from pipeline.records import given

    work = WorkDir(tmp_path / "work")
    shp, other = tmp_path / "a.shp", tmp_path / "b.geojson"
    for path in (shp, shp.with_suffix(".dbf"), other):
        path.write_bytes(b"x")

    def record_time(paths) -> int:
        return given(work, "test", paths).stat().st_mtime_ns

    first = record_time([shp, other])
    assert record_time([shp, other]) == first  # nothing changed: not rewritten
    os.utime(shp.with_suffix(".dbf"), (1_420_070_400, 1_420_070_400))  # the .dbf alone, older
    second = record_time([shp, other])
    assert second > first
    assert record_time([shp]) > second  # a file no longer given


@contextmanager
def held_by_another_process(work: Path) -> Iterator[int]:
    """The work folder held, as a run holds it, by another process (its pid
    given), killed (SIGKILL) at the end."""
    hold = ("import sys; from pathlib import Path; from pipeline.runlock import one_run_at_a_time; "
            "from pipeline.workdir import WorkDir\nwith one_run_at_a_time(WorkDir(Path(sys.argv[1]))):\n"
            "    print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(work)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def stopped_for(pid: int, result) -> bool:
    """Whether a command stopped (exit 1) because process ``pid`` holds its work folder, saying so in Vietnamese."""
    return result.exit_code == 1 and "Đợi lần chạy đó xong rồi chạy lại" in result.output \
        and f"Một lần chạy kiemke khác đang dùng thư mục làm việc này (tiến trình {pid} trên máy " in result.output


def test_a_run_on_a_work_folder_another_run_holds_stops_at_once_and_touches_nothing(tmp_path, sample_dir):
    """While a run holds the work folder, a second `kiemke inventory` on it
    stops (exit 1), in Vietnamese, naming the process that holds it, and leaves
    its half-written files alone (it removed them as an interrupted run's); once
    that process ends, even killed, the folder is free."""
    from pipeline.runlock import one_run_at_a_time

    config = sample_config(sample_dir, tmp_path / "work")
    writing = tmp_path / "work" / "parcels" / ".06253.parquet.x8a.tmp"  # what the first run is writing
    writing.parent.mkdir(parents=True)
    writing.write_bytes(b"PAR1")
    with held_by_another_process(tmp_path / "work") as pid:
        result = CliRunner().invoke(cli, ["inventory", "--config", str(config)])
        assert stopped_for(pid, result), result.output
        assert writing.exists() and not (tmp_path / "work" / "reports").exists()
    with one_run_at_a_time(WorkDir(tmp_path / "work")):
        assert (tmp_path / "work" / "cache" / "running.json").exists()
    assert not (tmp_path / "work" / "cache" / "running.json").exists()


@pytest.mark.parametrize("command", [["ingest", "--config", "{config}"], ["qa", "--workdir", "{work}"],
                                     ["maps", "--workdir", "{work}"], ["package", "--workdir", "{work}"]])
def test_a_stage_command_on_a_work_folder_a_run_holds_stops_at_once(tmp_path, sample_dir, command):
    """A stage command (`kiemke maps` in a second window while `make inventory`
    runs) stops as a second inventory does, its work folder found as it finds
    it (the config's, for `ingest --config`); on a folder that is not there it
    makes none (it says what is missing, as before)."""
    work = tmp_path / "work"
    args = [a.format(config=sample_config(sample_dir, work), work=work) for a in command]
    work.mkdir(exist_ok=True)
    with held_by_another_process(work) as pid:
        before = sorted(p.relative_to(work) for p in work.rglob("*"))
        result = CliRunner().invoke(cli, args)
        assert stopped_for(pid, result), result.output
        assert sorted(p.relative_to(work) for p in work.rglob("*")) == before
    if command[0] != "ingest":
        result = CliRunner().invoke(cli, [command[0], "--workdir", str(tmp_path / "typo")])
        assert result.exit_code == 1 and not (tmp_path / "typo").exists(), result.output


def test_what_a_killed_run_left_behind_is_removed_and_nothing_else(tmp_path):
    from pipeline.io import remove_stale_temporaries

    cells = tmp_path / "cache" / ".province_cells.k3j1.tmp"  # the scratch folder of an earlier version's package
    cells.mkdir(parents=True)
    (cells / "06253.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / "khoanh").mkdir()
    half = tmp_path / "khoanh" / ".06253.parquet.x8a.tmp"
    half.write_bytes(b"PAR1")
    kept = [tmp_path / "khoanh" / "06253.parquet", tmp_path / "cache" / "communes.json"]
    for path in kept:
        path.write_bytes(b"{}")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([cells, half])
    assert not cells.exists() and not half.exists() and all(path.exists() for path in kept)


def test_local_cluster_gives_the_same_areas_as_in_process(tmp_path, sample_raw):
    """Two dask worker processes over loopback, the same code path as a cluster:
    byte-identical stats/areas.csv."""
    from pipeline.aggregate import run_aggregate
    from pipeline.config import load_settings
    from pipeline.ingest import run_ingest
    from pipeline.khoanh import run_khoanh
    from pipeline.parallel import executor
    from pipeline.qa import run_qa

    outputs = {}
    for name, scheduler in (("sync", "sync"), ("cluster", None)):
        settings = load_settings(sample_config(sample_raw, tmp_path / name))
        with executor(scheduler, workers=2) as pmap:
            run_ingest(WorkDir(settings.workdir), [settings.input_root], settings, progress=False, scheduler=pmap)
            run_qa(WorkDir(settings.workdir), progress=False, scheduler=pmap)
            run_khoanh(WorkDir(settings.workdir), progress=False, scheduler=pmap)
        run_aggregate(WorkDir(settings.workdir))
        outputs[name] = (settings.workdir / "stats/areas.csv").read_bytes()
    assert outputs["sync"] == outputs["cluster"]


def test_the_aggregate_run_again_sums_only_the_changed_commune_and_writes_the_same_tables(sample_run, tmp_path,
                                                                                         monkeypatch):
    """Each commune's figures are kept between runs: after one commune's
    khoanh change only it is summed again, and every table and the report are,
    byte for byte, what summing every commune writes."""
    import shutil

    from pipeline import aggregate

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    outputs = [work.areas_csv, work.summary_csv, work.owner_sources_csv, work.holders_csv, work.report("aggregate.md")]
    before = {path.name: path.read_bytes() for path in outputs}
    summed: list[str] = []
    figures = aggregate.commune_figures
    monkeypatch.setattr(aggregate, "commune_figures",
                        lambda units, *rest: summed.append(units) or figures(units, *rest))
    changed = work.khoanh_files()[2]
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    os.utime(changed, (later, later))
    aggregate.run_aggregate(work)
    assert summed == [str(changed)]
    assert {path.name: path.read_bytes() for path in outputs} == before

    shutil.rmtree(work.figures_dir)  # nothing kept: every commune summed again
    os.utime(changed, (later + 5, later + 5))
    summed.clear()
    aggregate.run_aggregate(work)
    assert sorted(summed) == sorted(map(str, work.khoanh_files()))
    assert {path.name: path.read_bytes() for path in outputs} == before


def test_a_parquet_file_read_without_the_dataset_machinery_is_what_read_table_gives(sample_run):
    """:func:`pipeline.io.read_parquet_table` gives ``pq.read_table``'s table,
    metadata and the columns' order included, and its error for a column the
    file lacks (``ParquetFile.read`` would leave it out without a word)."""
    import pyarrow as pa

    from pipeline.io import read_parquet_table

    path = WorkDir(sample_run).khoanh_files()[0]
    assert read_parquet_table(path).equals(pq.read_table(path), check_metadata=True)
    columns = ["landuse", "commune_code"]
    assert read_parquet_table(path, columns).equals(pq.read_table(path, columns=columns), check_metadata=True)
    assert read_parquet_table(path, columns).column_names == columns
    with pytest.raises(pa.ArrowInvalid, match="no_such_column"):
        read_parquet_table(path, ["landuse", "no_such_column"])


@pytest.mark.parametrize("address", ["tcp//no-colon", "tcp://127.0.0.1:{port}"])
def test_a_scheduler_address_where_none_answers_is_the_officers_error_not_an_internal_one(tmp_path, sample_raw,
                                                                                         address):
    """``--scheduler`` with a mistyped address, or one where no scheduler
    runs (a port nothing listens on): the officer reads which address and what
    to check, in Vietnamese, and the run ends with kiemke's error code, not an
    internal error to send to the developers."""
    import socket

    import dask
    import distributed  # noqa: F401 (its defaults loaded: the setting below, undone, would take them away)

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    address = address.format(port=port)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = CliRunner().invoke(cli, ["inventory", "--config", str(sample_config(sample_raw, tmp_path / "work")),
                                          "--scheduler", address])
    assert result.exit_code == 1, result.output[-2000:]
    assert f"Không có bộ điều phối Dask nào trả lời tại {address}. → Kiểm tra địa chỉ (tcp://MÁY:8786)" in result.output
    assert "internal error" not in result.output


def test_the_code_digest_is_the_packages_files_whatever_their_line_ends(tmp_path):
    """Two machines run the same kiemke when its package's files are the same:
    a copy gives this process's digest, also with a file's line ends as
    Windows writes them; one line added to one file, another digest."""
    import shutil

    from pipeline.build import code_digest, package_digest

    copy = tmp_path / "pipeline"
    shutil.copytree(REPO / "pipeline", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert package_digest(copy) == code_digest()
    write = copy / "forms" / "write.py"
    write.write_bytes(write.read_bytes().replace(b"\n", b"\r\n"))
    assert package_digest(copy) == code_digest()
    write.write_bytes(write.read_bytes() + b"# changed on one machine\r\n")
    assert package_digest(copy) != code_digest()


def _other_kiemke(tmp_path: Path) -> Path:
    """A copy of kiemke with one line added to one file: another kiemke."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(REPO / "pipeline", other / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "pipeline" / "forms" / "write.py", "a", encoding="utf-8") as changed:
        changed.write("# changed on one machine\n")
    return other


def _worker_of(kiemke: Path, address: str) -> subprocess.Popen:
    """A worker (no nanny: its task run in this process) importing the kiemke at ``kiemke``, joining ``address``."""
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                             "--no-dashboard", "--no-nanny"], cwd=kiemke, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(kiemke)})


def _stop(worker: subprocess.Popen) -> None:
    """End a worker process a test started: asked to stop, then killed if it
    has not within 30 s (dask's shutdown of a worker can lag under a loaded machine)."""
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=30)


def test_a_cluster_whose_worker_runs_another_kiemke_is_refused_before_any_task_even_one_that_joins_later(tmp_path):
    """A worker of a cluster given by its address that imports another kiemke
    (here one line added to one file) would write other figures without a
    word: the run stops before its tasks, naming the worker and saying what to
    do, also when the worker joins after the first map (an adaptive cluster grows)."""
    from distributed import Client, LocalCluster

    from pipeline.errors import OtherCodeOnWorkers
    from pipeline.parallel import executor

    other = _other_kiemke(tmp_path)
    with LocalCluster(n_workers=1, processes=True, scheduler_kwargs={"dashboard": False}) as cluster, \
            Client(cluster) as owner, executor(cluster.scheduler_address) as pmap:
        assert len(pmap(os.getpid, [(), ()])) == 2  # the cluster's own worker runs this kiemke
        worker = _worker_of(other, cluster.scheduler_address)
        try:
            owner.wait_for_workers(2, timeout=60)
            (address,) = set(owner.nthreads()) - {cluster.workers[0].worker_address}
            imported = owner.run(eval, "__import__('pipeline').__file__", workers=[address])  # its kiemke
            assert list(imported.values()) == [str(other / "pipeline" / "__init__.py")]
            ran: list[int] = []
            with pytest.raises(OtherCodeOnWorkers) as refused:
                ran += pmap(os.getpid, [(), ()])
            assert ran == []
            said = officer_message(str(refused.value))
            assert f"Các tiến trình phụ {address} của cụm Dask {cluster.scheduler_address} chạy một bản kiemke " \
                   "khác với máy này" in said and "(1 trong 1 tiến trình phụ được kiểm tra)" in said
        finally:
            _stop(worker)


def _join_during_a_map(tmp_path: Path, join, refusal: type[Exception],
                       shared: Path | None = None) -> tuple[str, str, str]:
    """A worker started by ``join(scheduler address)`` joins while a map of
    200 slow tasks runs on a cluster given by its address (40 s on its own
    worker): the map raises ``refusal`` and no task ran in the joiner's process
    (each task leaves a file named by its pid). The joiner's address, the
    cluster's, and what the officer reads."""
    from concurrent.futures import ThreadPoolExecutor

    from distributed import Client, LocalCluster

    from pipeline.parallel import call, executor

    ran = tmp_path / "ran"
    ran.mkdir()
    task = (eval, f"__import__('time').sleep(0.2) or open('{ran.as_posix()}/%d' % __import__('os').getpid(), 'a')"
                  ".close()")
    with LocalCluster(n_workers=1, processes=True, scheduler_kwargs={"dashboard": False}) as cluster, \
            Client(cluster) as owner, executor(cluster.scheduler_address, shared=shared) as pmap, \
            ThreadPoolExecutor(1) as thread:
        mapping = thread.submit(pmap, call, [task] * 200)
        while not any(ran.iterdir()):
            time.sleep(0.05)
        if shared is not None:
            assert len(list(shared.glob(".cluster-run.*"))) == 1  # kept while kiemke is connected
        joiner = join(cluster.scheduler_address)
        try:
            with pytest.raises(refusal) as refused:
                mapping.result(timeout=120)
            (address,) = set(owner.nthreads()) - {cluster.workers[0].worker_address}
            own = cluster.workers[0].pid
        finally:
            _stop(joiner)
    assert sorted(p.name for p in ran.iterdir()) == [str(own)]  # none on the joiner
    return address, cluster.scheduler_address, officer_message(str(refused.value))


def test_a_worker_of_another_kiemke_that_joins_during_a_map_runs_none_of_its_tasks(tmp_path):
    """A worker that joins while a map's tasks are out (an adaptive cluster
    grows during a step) was not asked before the map: each task asks its own
    worker, and the step stops on the first given to the other kiemke, naming
    it, before it ran any (its tasks would have written other figures)."""
    from pipeline.errors import OtherCodeOnWorkers

    other = _other_kiemke(tmp_path)
    joiner, cluster, said = _join_during_a_map(tmp_path, lambda address: _worker_of(other, address),
                                               OtherCodeOnWorkers)
    assert f"Tiến trình phụ {joiner}, tham gia cụm Dask {cluster} khi một bước đang chạy, có bản kiemke khác với " \
           "máy này: nó không chạy việc nào." in said


@pytest.mark.parametrize("hidden", ["work", "input", "boundaries"])
def test_a_cluster_whose_worker_sees_another_folder_by_the_same_name_is_refused(tmp_path, sample_raw, hidden):
    """A worker of a cluster given by its address on a machine where the work
    directory's, the input's or the boundary file's folder is one of its own
    (here: another mount namespace, an empty tmpfs over it) would write its
    outputs there (the sample's inventory stopped on an internal error, a cache
    file not found) or not find what it reads (it said a shapefile's .dbf was
    missing): the inventory stops before any task, naming the worker and what
    it does not see; the probe file is removed. A folder both see passes."""
    import shutil

    from distributed import Client, LocalCluster

    from pipeline.parallel import executor

    work = tmp_path / "work"
    config = sample_config(sample_raw, work)
    given = sample_raw / "boundaries" / "communes_van_quan.geojson"
    moved = shutil.copy(given, (tmp_path / "ranh_gioi").mkdir() or tmp_path / "ranh_gioi")  # a folder of its own
    config.write_text(config.read_text(encoding="utf-8").replace(given.as_posix(), Path(moved).as_posix()),
                      encoding="utf-8")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:  # noqa: S607
        pytest.skip("no mount namespace here (unshare -m needs root)")
    with LocalCluster(n_workers=1, processes=True, scheduler_kwargs={"dashboard": False}) as cluster, \
            Client(cluster) as owner:
        folder = {"work": work, "input": sample_raw, "boundaries": tmp_path / "ranh_gioi"}[hidden]
        blind = subprocess.Popen(["unshare", "-m", "sh", "-c", f'mount -t tmpfs none "{folder}" && exec '  # noqa: S607
                                  f'"{sys.executable}" -m distributed.cli.dask_worker {cluster.scheduler_address} '
                                  "--nthreads 1 --no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            owner.wait_for_workers(2, timeout=60)
            (address,) = [w for w in owner.scheduler_info()["workers"] if w != cluster.workers[0].worker_address]
            result = CliRunner().invoke(cli, ["inventory", "--config", str(config), "--scheduler",
                                              cluster.scheduler_address])
            assert result.exit_code == 1
            unseen = Path(moved) if hidden == "boundaries" else folder
            assert f"Các tiến trình phụ {address} của cụm Dask {cluster.scheduler_address} không thấy {unseen} " \
                   "như máy này thấy (1 trong 2 tiến trình phụ được kiểm tra)" in result.output
            assert not list(work.rglob(".cluster-*")) and not (work / "parcels").exists()  # probe and marker
            with executor(cluster.scheduler_address, shared=tmp_path / "seen") as pmap:  # a folder both see
                assert len(pmap(os.getpid, [(), ()])) == 2
        finally:
            _stop(blind)


def test_a_worker_that_joins_during_a_map_and_sees_another_work_directory_runs_none_of_its_tasks(tmp_path):
    """A worker that joins while a map's tasks are out, on a machine where the
    work directory is a folder of its own (another mount namespace, an empty
    tmpfs over it), would read another run's files there or leave its outputs
    there: each task first looks for the file kiemke keeps in the work
    directory while connected, and the step stops naming the worker before it
    ran any task; the file is gone once kiemke is done."""
    from pipeline.errors import WorkersSeeOtherFiles

    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:  # noqa: S607
        pytest.skip("no mount namespace here (unshare -m needs root)")
    work = tmp_path / "work"
    work.mkdir()

    def blind(address: str) -> subprocess.Popen:
        return subprocess.Popen(["unshare", "-m", "sh", "-c", f'mount -t tmpfs none "{work}" && exec '  # noqa: S607
                                 f'"{sys.executable}" -m distributed.cli.dask_worker {address} '
                                 "--nthreads 1 --no-dashboard --no-nanny"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    joiner, cluster, said = _join_during_a_map(tmp_path, blind, WorkersSeeOtherFiles, shared=work)
    assert f"Tiến trình phụ {joiner}, tham gia cụm Dask {cluster} khi một bước đang chạy, không thấy {work} như " \
           "máy này thấy: nó không chạy việc nào." in said
    assert not list(work.glob(".cluster-run.*"))


def test_a_cluster_map_keeps_the_order_and_raises_a_tasks_own_error():
    """On worker processes: results in the items' order, items of any length
    (one map of different functions), and a task's exception raised again
    here with its own type and message (what the CLI turns into advice)."""
    import warnings

    from pipeline.errors import InputFileError
    from pipeline.parallel import call, executor

    with executor(None, workers=2) as pmap:
        assert pmap(call, [(divmod, 7, 2), (int, "7"), (max, 1, 5, 3), (str.upper, "xa")]) == [(3, 1), 7, 5, "XA"]
        with pytest.raises(InputFileError, match="TD_05971.shp: no .prj"):
            pmap(call, [(int, "1"), (_raise_input_error, "TD_05971.shp: no .prj")])
        with warnings.catch_warnings():  # tasks whose records add up to dask's "large graph": no warning to show
            warnings.simplefilter("error")
            assert pmap(len, [(bytes([k]) * 2**19,) for k in range(30)]) == [2**19] * 30  # 15 MB in all


def test_the_inventorys_local_cluster_starts_at_the_first_map_of_enough_tasks():
    """Maps of fewer tasks than ``local_from`` run in this process while no
    cluster is up (a one-commune export starts none: its steps have one to
    three tasks); the first larger map starts the cluster, and every map after
    it runs there, however small."""
    from pipeline.parallel import LOCAL_CLUSTER_FROM, call, executor

    here = os.getpid()
    with executor(None, workers=1, local_from=3) as pmap:
        assert pmap(call, [(os.getpid,)] * 2) == [here] * 2
        started = pmap(call, [(os.getpid,)] * 3)
        assert len(set(started)) == 1 and started[0] != here  # on the worker
        assert pmap(call, [(os.getpid,)]) == started[:1]
    assert LOCAL_CLUSTER_FROM > 3  # a commune's forms and sheets (commune, district, province) stay here


def test_a_cluster_wanted_early_starts_in_the_background_at_the_first_map_with_work():
    """With ``start_early`` (the inventory's: a province ingested before), the
    first map with work, however small, runs here and starts the local
    cluster in the background; the maps after it run on the worker once it is
    up. A map without work asks nothing and starts nothing."""
    from pipeline.parallel import call, executor

    here, asked = os.getpid(), []
    with executor(None, workers=1, local_from=3, start_early=lambda: asked.append(True) or True) as pmap:
        assert pmap(call, []) == [] and not asked
        assert pmap(call, [(os.getpid,)]) == [here]
        deadline = time.monotonic() + 120
        while (pids := pmap(call, [(os.getpid,)])) == [here] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids != [here]  # one task, on the worker: started without a map of 3
        assert asked == [True]


def test_while_a_map_of_lower_priority_runs_a_small_map_runs_here_and_workers_yield_cpu():
    """Sheets drawn in the background (a map of priority -1 on another thread)
    hold the workers: a stage's map of a few tasks then runs in this process,
    a larger one on the workers; the local workers run at a lower CPU
    priority than this process (its stage work is what the run waits for)."""
    import threading

    from pipeline.parallel import WORKER_NICENESS, _all_busy_behind, call, executor

    here = os.getpid()
    with executor(None, workers=1, local_from=2) as cluster:
        worker = cluster(call, [(os.getpid,)] * 2)[0]
        assert worker != here
        if hasattr(os, "nice"):
            assert cluster(call, [(os.nice, 0)] * 2) == [min(os.nice(0) + WORKER_NICENESS, 19)] * 2
        drawing = threading.Thread(target=cluster, args=(call, [(time.sleep, 3)]), kwargs={"priority": -1})
        drawing.start()
        deadline = time.monotonic() + 30
        while not (cluster.behind and _all_busy_behind(cluster.client)) and time.monotonic() < deadline:
            time.sleep(0.01)  # the sleep is on the worker
        assert cluster(call, [(os.getpid,)] * 3) == [here] * 3
        assert cluster(call, [(os.getpid,)] * 4) == [worker] * 4
        drawing.join()
        assert cluster(call, [(os.getpid,)]) == [worker]  # nothing behind: the workers again


def test_a_local_worker_its_nanny_starts_again_yields_cpu_too():
    """A worker killed (for its memory) is started again by its nanny as a
    new process: it too runs at the workers' lower CPU priority."""
    from pipeline.parallel import WORKER_NICENESS, call, executor

    if not hasattr(os, "nice"):
        pytest.skip("no Unix niceness here")
    expected = [min(os.nice(0) + WORKER_NICENESS, 19)]
    with executor(None, workers=1, local_from=1) as cluster:
        first = cluster(call, [(os.getpid,)])
        assert cluster(call, [(os.nice, 0)]) == expected
        cluster.client.restart()  # as the nanny does after a memory kill
        assert cluster(call, [(os.getpid,)]) != first
        assert cluster(call, [(os.nice, 0)]) == expected


def _raise_input_error(message: str) -> None:
    from pipeline.errors import InputFileError

    raise InputFileError(message)


def test_a_worker_freezes_what_is_alive_after_a_task_that_imported_modules(monkeypatch):
    """On a worker, the objects of the libraries a task imported are frozen out
    of the collector's reach once the task is done (and its garbage collected);
    a task that imports nothing leaves the collector as it is."""
    import gc
    import types

    from pipeline.parallel import _worker_task
    from pipeline.regime import active_regime

    def importing_task(n):
        module = types.ModuleType("kiemke_frozen_probe")
        module.table = {"cycle": [module]}
        monkeypatch.setitem(sys.modules, "kiemke_frozen_probe", module)
        garbage = []
        garbage.append(garbage)  # a cycle the task leaves behind: collected, not frozen
        return n + 1

    gc.unfreeze()
    try:
        assert _worker_task(active_regime(), importing_task, 1) == 2
        frozen = gc.get_freeze_count()
        assert frozen > 0 and gc.collect() == 0  # nothing was left to collect
        assert _worker_task(active_regime(), lambda n: n * 2, 4) == 8 and gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


#: What a task on a worker leaves alive, as a cache keeps what a task made.
_LEFT_ALIVE: list = []


def _leave_alive(n: int) -> int:
    _LEFT_ALIVE.append([n])
    return n


def _still_scanned() -> bool:
    """Task: whether the collector still scans what the last task left alive."""
    import gc

    return any(thing is _LEFT_ALIVE[-1] for thing in gc.get_objects())


def _sampled() -> bool:
    """Task: whether dask's profiler samples this worker's tasks."""
    from distributed import get_worker

    return "profile" in get_worker().periodic_callbacks


def test_a_local_worker_freezes_what_every_task_leaves_and_keeps_glibcs_malloc_thresholds():
    """A local worker, which ends with the run, freezes what each task leaves
    alive, also after a task that imported nothing: every full collection
    would scan it again. Its malloc keeps glibc's own thresholds (dask's 64 KiB
    trim threshold maps and faults in every array above 128 KiB anew), and
    dask's profiler does not sample its tasks (3-6 % of the sheets' CPU, for
    a dashboard the run does not serve)."""
    from pipeline.parallel import call, executor

    with executor(None, workers=1, local_from=1) as cluster:
        assert cluster(_leave_alive, [(1,)]) == [1]  # its first task: it imported this module
        assert cluster(_leave_alive, [(2,)]) == [2]  # imported nothing
        assert cluster(_still_scanned, [()]) == [False]
        assert cluster(call, [(os.environ.get, "MALLOC_TRIM_THRESHOLD_")]) == [None]
        assert cluster(_sampled, [()]) == [False]


SHUTDOWN_RACE = '''
import logging, pathlib, sys
from pipeline.parallel import executor

MARK = pathlib.Path(sys.argv[1])


class HeartbeatRace:
    """Logs, as the worker is closed, what a heartbeat that races the closing
    scheduler logs (dask/distributed#7105)."""

    def teardown(self, worker):
        MARK.write_text("torn down")
        try:
            raise OSError("Stream is closed")
        except OSError:
            logging.getLogger("distributed.worker").exception("Failed to communicate with scheduler during heartbeat.")


def join_race(n):
    from distributed import get_worker
    get_worker().plugins["race"] = HeartbeatRace()
    return n


if __name__ == "__main__":
    with executor(None, workers=1) as pmap:
        print(pmap(join_race, [(1,), (2,)]))
'''


def test_a_local_cluster_closes_without_a_word(tmp_path):
    """Once every result is in, what the workers log while they close (the
    heartbeat race of dask/distributed#7105, a traceback) is not shown: an
    officer would read it as a failed run."""
    script, mark = tmp_path / "race.py", tmp_path / "teardown"
    script.write_text(SHUTDOWN_RACE, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(mark)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1, 2]"
    assert mark.read_text() == "torn down"  # the race was staged
    assert "heartbeat" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_an_empty_layer_is_written_as_geopandas_writes_it(tmp_path):
    """Empty layers (most QA layers, most quarantines) come from a copy made
    once per layout: the same bytes geopandas writes, and a layout of other
    columns, types or CRS gets its own."""
    import io

    import geopandas as gpd

    from pipeline.io import write_geoparquet

    def empty(columns: dict, crs: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)

    def geopandas_bytes(frame: gpd.GeoDataFrame) -> bytes:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, compression="zstd", write_covering_bbox=False)
        return buffer.getvalue()

    layouts = [empty({"reason": "str", "area_m2": "float64"}, "EPSG:9215"),
               empty({"reason": "str", "area_m2": "int64"}, "EPSG:9215"),
               empty({"reason": "str", "area_m2": "float64"}, "EPSG:4326"),
               empty({"detail": "str"}, "EPSG:9215")]
    for k, frame in enumerate(layouts * 2):  # the second time from the copies
        path = write_geoparquet(tmp_path / f"{k}.parquet", frame)
        assert path.read_bytes() == geopandas_bytes(frame)
        back = gpd.read_parquet(path)
        assert list(back.columns) == list(frame.columns) and back.crs == frame.crs and back.empty
    assert len({(tmp_path / f"{k}.parquet").read_bytes() for k in range(4)}) == 4


def test_columns_of_many_files_read_as_one_frame_as_pandas_would(tmp_path):
    """``read_columns`` reads Arrow tables and makes one frame: the values
    pandas gets reading each file and concatenating, across files whose column
    is empty in one (null type) and text in another, whole numbers in one and
    decimals in another; the text column stays text (pandas' concat made it
    objects when one file's was empty)."""
    from pipeline.io import read_columns

    frames = [pd.DataFrame({"code": [None, None], "area": [1, 2], "kept": [True, False]}),
              pd.DataFrame({"code": ["LUC", None], "area": [2.5, 3.25], "kept": [False, True]}),
              pd.DataFrame({"code": ["ODT"], "area": [7.0], "kept": [True]})]
    paths = []
    for k, frame in enumerate(frames):
        frame.to_parquet(tmp_path / f"{k}.parquet", index=False)
        paths.append(tmp_path / f"{k}.parquet")
    expected = pd.concat([pd.read_parquet(p, columns=["code", "area", "kept"]) for p in paths], ignore_index=True)
    got = read_columns(paths, ["code", "area", "kept"])
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
    assert pd.api.types.is_string_dtype(got["code"]) and got["code"].isna().tolist() == [True, True, False, True, False]
    assert got["area"].dtype == "float64" and got["kept"].dtype == "bool"
    assert read_columns([], ["code"]).columns.tolist() == ["code"]


def test_many_geoparquet_files_read_as_one_frame_as_geopandas_and_pandas_would(tmp_path):
    """``read_geoparquets`` reads the files as one Arrow table and makes one
    GeoDataFrame: the shapes, CRS and values geopandas gives reading each file
    and pandas concatenating them (a column empty in one file stays text);
    files whose types Arrow cannot unite (text in one, decimals in another)
    are read one by one, as before. ``read_attributes`` gives the same frame
    without the shapes."""
    import geopandas as gpd
    import shapely

    from pipeline.io import read_attributes, read_geoparquets, write_geoparquet

    def files(frames: list[dict], stem: str) -> list[Path]:
        return [write_geoparquet(tmp_path / f"{stem}{k}.parquet",
                                 gpd.GeoDataFrame(frame, geometry=[shapely.box(k, 0, k + 1, j + 1)
                                                                   for j in range(len(frame["area"]))],
                                                  crs="EPSG:9215")) for k, frame in enumerate(frames)]

    def as_before(paths: list[Path]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(pd.concat([gpd.read_parquet(p) for p in paths], ignore_index=True))

    united = files([{"flag": [None, None], "area": [1, 2]}, {"flag": ["hở", None], "area": [2.5, 3.25]}], "u")
    apart = files([{"parcels": ["1,2"], "area": [1.0]}, {"parcels": [0.5], "area": [2.0]}], "a")
    for paths in (united, apart):
        got, expected = read_geoparquets(paths), as_before(paths)
        assert got.crs == expected.crs == "EPSG:9215" and list(got.columns) == list(expected.columns)
        assert got.geometry.geom_equals_exact(expected.geometry, 0).all()
        attributes = [c for c in got.columns if c != "geometry"]
        pd.testing.assert_frame_equal(got[attributes].astype(object).where(got[attributes].notna(), None),
                                      expected[attributes].astype(object).where(expected[attributes].notna(), None))
        pd.testing.assert_frame_equal(read_attributes(paths), pd.DataFrame(got[attributes]))
    assert pd.api.types.is_string_dtype(read_geoparquets(united)["flag"])


def test_the_inventory_freezes_the_libraries_a_stage_imported_and_thaws_at_the_end(sample_run, monkeypatch, tmp_path):
    """After a stage that imported modules, the inventory's own process freezes
    what is alive (its collections then skip the libraries); when the run
    ends, what it froze goes back to the collector (the tests, a notebook run on)."""
    import gc
    import types

    from click.testing import CliRunner

    import pipeline.cli
    import pipeline.inventory
    from pipeline.cli import cli

    seen = []

    def importing_stage():
        monkeypatch.setitem(sys.modules, "kiemke_stage_probe", types.ModuleType("kiemke_stage_probe"))

    monkeypatch.setattr(pipeline.inventory, "_stages", lambda *args: [
        ("first", lambda: seen.append(gc.get_freeze_count())), ("importing", importing_stage),
        ("after", lambda: seen.append(gc.get_freeze_count()))])
    monkeypatch.setattr(pipeline.cli, "outputs_summary", lambda *args: "")  # no outputs made by these stages
    config = (sample_run / "inventory.toml").read_text(encoding="utf-8")
    config = config.replace(f'workdir = "{sample_run.as_posix()}"', f'workdir = "{tmp_path.as_posix()}"')
    assert tmp_path.as_posix() in config
    (tmp_path / "inventory.toml").write_text(config, encoding="utf-8")
    gc.unfreeze()
    result = CliRunner().invoke(cli, ["inventory", "--config", str(tmp_path / "inventory.toml")])
    assert result.exit_code == 0, result.output
    assert seen[0] == 0 and seen[1] > 0  # frozen after the stage that imported, not before
    assert gc.get_freeze_count() == 0


def test_the_sample_for_2024_is_written_beside_the_sample_not_where_kiemke_runs(tmp_path, monkeypatch):
    """``kiemke sample --out X/sample`` writes its 2024 sample to X/sample_2024:
    it wrote to data/raw/sample_2024 under whatever folder the command ran
    from, and over the repository's own when run there."""
    import pipeline.cli

    written = []
    frame = pd.DataFrame({"parcels": [3, 4]})
    monkeypatch.setattr(pipeline.cli, "generate_sample", lambda out, seed: written.append(out) or frame)
    monkeypatch.setattr(pipeline.cli, "write_sample_2024", lambda out, units, seed: written.append(out) or frame)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["sample", "--out", str(tmp_path / "elsewhere" / "sample")])
    assert result.exit_code == 0, result.output
    assert written == [tmp_path / "elsewhere" / "sample", tmp_path / "elsewhere" / "sample_2024"]
    assert "2 xã mới, 7 thửa → " in result.output
    written.clear()
    CliRunner().invoke(cli, ["sample", "--out", "a", "--out-2024", "b"])  # as given
    assert written == [Path("a"), Path("b")]


def test_the_version_names_the_build_that_two_kiemke_of_one_number_differ_by(monkeypatch):
    """``kiemke --version`` gives the build besides the number: what an officer
    reports with a problem, and what the kept results are kept for."""
    import pipeline.build

    said = CliRunner().invoke(cli, ["--version"]).output
    assert said == f"kiemke, phiên bản {pipeline.__version__} (bản dựng {pipeline.build.kiemke_build()})\n"
    assert re.fullmatch(r"kiemke, phiên bản [\d.]+ \(bản dựng [\d.]+\+[0-9a-f]{12}\)\n", said)
    monkeypatch.setattr(pipeline.build, "code_digest", lambda: "0" * 40)  # other code, the same number
    assert CliRunner().invoke(cli, ["--version"]).output != said


@pytest.mark.parametrize("communes", [["06253", "06253"], ["06253", "06274"]])
def test_a_new_kiemke_makes_every_output_again_once(tmp_path, monkeypatch, communes):
    """Outputs an older kiemke wrote are not kept after an update although the
    input did not change, even when the update kept the version number: its
    build (version and a digest of its code and tables) is in the ingest
    cache's fingerprint, so every file is read again, and QA, forms and maps
    are made again, once; for a commune's file and for a file of two communes
    (a district's), whose communes are otherwise rewritten only when their rows change."""
    import geopandas as gpd

    import pipeline.build
    from tests.helpers import square

    (tmp_path / "raw").mkdir()
    gpd.GeoDataFrame({"MAXA": communes, "KHLOAIDAT": ["LUC", "ONT"]}, geometry=[square(0), square(100)],
                     crs="EPSG:9215").to_file(tmp_path / "raw/td.shp")
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n', encoding="utf-8")

    def run() -> dict[str, int]:
        result = CliRunner().invoke(cli, ["inventory", "--config", str(config), "--scheduler", "sync"])
        assert result.exit_code == 0, result.output
        return _mtimes(tmp_path / "work")

    first = run()
    assert run() == first
    monkeypatch.setattr(pipeline.build, "code_digest", lambda: "0" * 40)  # other code, the same version
    upgraded = run()
    remade = {name for name in first if upgraded.get(name) != first[name]}
    assert {"reports/qa.md", "reports/forms.md", "reports/maps.md", *(f"qa/{c}/section.json" for c in communes),
            *(f"parcels/{c}.parquet" for c in communes)} <= remade
    assert any(name.startswith("forms/") and name.endswith(".xlsx") for name in remade)
    assert run() == upgraded


def _full_disk_error() -> OSError:
    """The error a write to a full disk raises (Linux's /dev/full is always full)."""
    with pytest.raises(OSError) as caught, open("/dev/full", "wb") as full:
        full.write(b"parcels")
        full.flush()
    return caught.value


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_is_told_as_such_with_what_to_do_not_as_an_internal_error(tmp_path, monkeypatch):
    """A laptop's disk fills up during a run: the officer is told which folder's
    disk is full, what is left on it and to run again, in Vietnamese (exit 1,
    not kiemke's internal error); what was done before stays."""
    import sqlite3

    from pipeline.errors import refused_by_system
    from pipeline.ingest import stage

    database = sqlite3.connect(tmp_path / "x.gpkg")  # a GeoPackage at SQLite's "disk full", for real
    database.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as sqlite_full:
        database.execute("CREATE TABLE t (v)").executemany("INSERT INTO t VALUES (?)", [("x" * 4000,)] * 10)
    database.close()
    assert "no space left on the disk holding" in str(refused_by_system(sqlite_full.value, tmp_path))
    assert "no space left on the disk holding" in str(refused_by_system(_full_disk_error(), tmp_path))
    assert refused_by_system(ValueError("disk"), tmp_path) is None

    raw = tmp_path / "raw"
    raw.mkdir()
    gpd.GeoDataFrame({"MAXA": ["06253"], "KHLOAIDAT": ["LUC"]}, geometry=[square()], crs="EPSG:9215").to_file(
        raw / "td.shp")

    def write_on_a_full_disk(*args):
        raise _full_disk_error()

    monkeypatch.setattr(stage, "write_ingest_reports", write_on_a_full_disk)  # the parcels are written by then
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--workdir", str(work)])
    assert result.exit_code == 1, result.output
    assert f"Ổ đĩa chứa thư mục {work} đã hết chỗ trống (còn " in result.output
    assert "chạy lại: các bước đã xong được giữ nguyên" in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert (work / "parcels" / "06253.parquet").exists()  # what was done stays, for the run after


BAD_COMMUNE = """
import sys
import geopandas as gpd
import shapely

for k, folder in enumerate("abcd"):
    box = shapely.box(0, 0, 50, 50) if folder == "c" else shapely.box(430000, 2410000, 430050, 2410050)
    frame = gpd.GeoDataFrame({"MAXA": [f"0625{k}"], "KHLOAIDAT": ["LUC"]}, geometry=[box], crs="EPSG:9215")
    frame.to_file(f"{sys.argv[1]}/{folder}.shp")
"""


def test_an_input_error_on_a_worker_reaches_the_officer_in_one_paragraph(tmp_path):
    """A file whose coordinates fit nothing fails its task on a worker of the
    local cluster: the console shows kiemke's message naming the file, not
    dask's "Compute Failed" report with the task's traceback before it."""
    raw = tmp_path / "raw"
    raw.mkdir()
    subprocess.run([sys.executable, "-c", BAD_COMMUNE, str(raw)], check=True, cwd=ROOT)
    done = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(raw), "--province", "Lạng Sơn",
                           "--workdir", str(tmp_path / "work"), "--scheduler", "local"],
                          capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "KIEMKE_DEBUG": ""})
    assert done.returncode == 1, done.stderr
    assert "LocalCluster" in done.stderr  # the file was read on a worker
    assert "Lỗi: " in done.stderr and "c.shp: Tọa độ" in done.stderr
    assert "Compute Failed" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_run_warns_before_it_starts_when_its_disk_looks_too_small(tmp_path, monkeypatch):
    """A run writes about ten times its input: with less free space than that
    (less what the work directory holds already), the officer is told before
    the run, in Vietnamese; with enough, nothing is said."""
    import shutil

    from pipeline import io
    from pipeline.messages import officer_message

    inputs = tmp_path / "raw"
    inputs.mkdir()
    (inputs / "td.shp").write_bytes(b"\0" * 2**20)
    work = inputs / "processed"  # the work directory inside the input folder is not input
    work.mkdir()
    (work / "parcels.parquet").write_bytes(b"\0" * 3 * 2**20)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage._replace(free=5 * 2**20))
    short = io.disk_shortfall(work, inputs)
    assert short is not None and "has 5 MB free, and this run may write about 7 MB more" in short
    assert officer_message(short).startswith(f"Ổ đĩa chứa thư mục {work} chỉ còn 5 MB trống; lần chạy này có thể "
                                             "cần ghi thêm khoảng 7 MB. → Giải phóng chỗ trống")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage._replace(free=8 * 2**20))
    assert io.disk_shortfall(work, inputs) is None
    assert io.disk_shortfall(tmp_path / "new" / "work", inputs) == (  # the old one is but files in the input now
        f"the disk holding {tmp_path / 'new' / 'work'} has 8 MB free, and this run may write about 40 MB more "
        "there (10 times its input, less what the work directory holds)")


def test_a_workbook_open_in_excel_is_named_with_what_to_do_not_as_an_internal_error(tmp_path, monkeypatch):
    """On Windows a file open in Excel cannot be replaced: the rename of the
    review workbook written anew fails with "permission denied". The officer
    is told which file and to close it (exit 1); a read-only disk is told so."""
    import errno

    from pipeline.errors import refused_by_system

    raw = tmp_path / "raw"
    raw.mkdir()
    gpd.GeoDataFrame({"MAXA": ["06253"], "KHLOAIDAT": ["LUA"]}, geometry=[square()], crs="EPSG:9215").to_file(
        raw / "td.shp")  # LUA is refined: the parcel is listed in the review workbook
    replace = os.replace

    def locked_by_excel(source, target):
        if str(target).endswith(".xlsx"):
            raise PermissionError(errno.EACCES, "Permission denied", str(source), None, str(target))  # as os.replace
        replace(source, target)

    monkeypatch.setattr(os, "replace", locked_by_excel)
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--workdir", str(work)])
    assert result.exit_code == 1, result.output
    workbook = work / "reports" / "review" / "06253.xlsx"
    assert f"{workbook}: Không mở được tệp này: không có quyền, hoặc tệp đang mở trong chương trình khác. → " \
           "Đóng tệp đó nếu nó đang mở (Excel, QGIS)" in result.output
    assert "internal error" not in result.output
    try:  # a bug in a fallback after a refused hard link (exFAT) is a bug, not a refusal
        try:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(work))
        except OSError:
            raise ValueError("a bug of kiemke's") from None
    except ValueError as bug:
        assert refused_by_system(bug, tmp_path) is None
    read_only = refused_by_system(OSError(errno.EROFS, "Read-only file system", str(work)), tmp_path)
    assert officer_message(str(read_only)).startswith(f"{work}: Không ghi được vào đây vì ổ đĩa chỉ cho đọc. → ")


def _running_in_group(group: int) -> list[int]:
    """The processes of a process group that are still running (not zombies)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            running.append(int(stat.parent.name))
    return running


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_ctrl_c_stops_a_run_on_the_local_cluster_at_once_in_a_word(tmp_path, sample_raw):
    """Ctrl-C reaches every process of the terminal. The workers used to print
    their tracebacks, and the run went on, then waited for them for ever; now
    it stops within seconds, says so in Vietnamese, and leaves no process."""
    work = tmp_path / "work"
    config = sample_config(sample_raw, work)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "kiemke"), "inventory", "--config", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and "LocalCluster" not in log.read_text(encoding="utf-8"):
        time.sleep(0.1)
    time.sleep(1.0)  # the workers at work
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends Ctrl-C: to the whole foreground group
    try:
        assert process.wait(timeout=20) == 130
        deadline = time.time() + 10
        while time.time() < deadline and _running_in_group(process.pid):
            time.sleep(0.1)
        assert not _running_in_group(process.pid)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    said = log.read_text(encoding="utf-8")
    assert "LocalCluster" in said and "Đã dừng (Ctrl-C): các kết quả đã ghi xong được giữ nguyên" in said
    assert "Traceback" not in said and "KeyboardInterrupt" not in said and "resource_tracker" not in said, said


def _die(path: Path) -> None:
    os._exit(1)  # as a worker past its memory budget dies: its nanny ends it


def test_workers_that_die_running_a_task_are_told_as_out_of_memory_with_what_to_do(tmp_path):
    """A big commune on a laptop: each worker that runs its task is killed for
    its memory, and dask gives up with KilledWorker ('internal error' before).
    The officer reads which step on what, the memory each worker had, and to
    run with fewer workers or in one process."""
    import dask

    from pipeline.errors import WorkersDied
    from pipeline.parallel import call, executor

    commune = tmp_path / "06253.parquet"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), executor(None, workers=1) as pmap, \
            pytest.raises(WorkersDied) as died:
        pmap(call, [(_die, commune)])  # alone: a task queued on a dying worker may be named instead
    said = officer_message(str(died.value))
    assert said.startswith(f"Các tiến trình phụ bị dừng 2 lần liền khi chạy _die với {commune}, nhiều khả năng vì "
                           "hết bộ nhớ (mỗi tiến trình có "), said
    assert "→ Chạy lại với ít tiến trình hơn (kiemke inventory --config inventory.toml --workers 1)" in said


def test_the_console_speaks_vietnamese_in_utf8_whatever_the_code_page(tmp_path):
    """Piped or sent to a file on Windows (as `make` runs it), Python writes in
    the code page, which lacks Vietnamese: the officer read "L\\u1ed7i: ... T\\u1ecda
    \\u0111\\u1ed9". The console now writes UTF-8."""
    raw = tmp_path / "raw"
    raw.mkdir()
    subprocess.run([sys.executable, "-c", BAD_COMMUNE, str(raw)], check=True, cwd=ROOT)
    done = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(raw), "--province", "Lạng Sơn",
                           "--workdir", str(tmp_path / "work")], capture_output=True, timeout=180, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "cp1252"})
    assert done.returncode == 1
    said = done.stderr.decode("utf-8")
    assert "Lỗi: " in said and "c.shp: Tọa độ (X 0.000…50.000" in said, said


def test_while_a_cluster_closes_the_loggers_dask_gives_their_own_level_are_quiet_too():
    """dask's logging config sets "tornado.application" to ERROR and
    "distributed.client" to WARNING themselves, so quieting their parents did
    not quiet them: a task's error, then the closing client's "Client is closed"
    traceback (seen on Python 3.13, the machine busy) before the officer's message."""
    import logging

    import distributed  # noqa: F401 (its logging config)

    from pipeline.parallel import _quiet

    with _quiet():
        assert not logging.getLogger("tornado.application").isEnabledFor(logging.ERROR)
        assert not logging.getLogger("distributed.client").isEnabledFor(logging.WARNING)
    assert logging.getLogger("tornado.application").isEnabledFor(logging.ERROR)


def test_statistics_saved_from_excel_are_kept_beside_and_made_again(sample_run, tmp_path, caplog):
    """An officer opens ``stats/areas.csv`` in Excel, "fixes" a figure and
    saves (Excel also drops the communes' leading zeros). Newer than the khoanh,
    it was taken as current and the forms read it: the hand-typed figure
    reached the forms, or the forms stopped as inconsistent. Now it is kept
    beside, made again from the khoanh, and the forms are as before; the
    officer is told. The transitions of the change forms too: they were
    overwritten without a word."""
    import shutil

    from pipeline.aggregate import run_aggregate
    from pipeline.forms import run_forms

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    written, form = work.areas_csv.read_bytes(), work.forms_dir / "xa/06253/Bieu_01_TKDD.csv"
    before = form.read_bytes()
    areas = pd.read_csv(work.areas_csv, encoding="utf-8-sig")  # as Excel reads it: 06253 is 6253
    areas.loc[0, "area_m2"] += 50_000
    areas.to_csv(work.areas_csv, index=False)
    with caplog.at_level("WARNING"):
        run_aggregate(work)
    [aside] = work.stats_dir.glob("areas_ban_sua_*.csv")
    assert pd.read_csv(aside)["commune_code"].iloc[0] == 6253 and work.areas_csv.read_bytes() == written
    assert f"Bảng số liệu đã được sửa (lưu lại từ Excel) sau khi kiemke lập: bản đó được giữ lại thành {aside}" \
        in caplog.text
    run_forms(work)
    assert form.read_bytes() == before
    caplog.clear()
    with caplog.at_level("WARNING"):
        run_aggregate(work)  # nothing changed since: nothing kept, nothing said
    assert list(work.stats_dir.glob("*_ban_sua_*")) == [aside] and caplog.text == ""

    from pipeline.change import run_change

    transitions = work.transitions_csv.read_bytes()
    work.transitions_csv.write_bytes(transitions.replace(b"\n", b"\r\n"))  # saved again by Excel
    with caplog.at_level("WARNING"):
        run_change(work, progress=False)
    [kept] = work.stats_dir.glob("transitions_ban_sua_*.csv")
    assert work.transitions_csv.read_bytes() == transitions and f"giữ lại thành {kept}" in caplog.text


def test_files_whose_writing_was_stopped_are_not_taken_for_hand_edits(tmp_path):
    """kiemke writes a unit's forms again and the run is stopped after the
    first: the next run does not keep it beside as typed into (its bytes are
    kiemke's), while a form typed into since is kept."""
    from pipeline.records import rewriting

    record, first, second = tmp_path / "written.json", tmp_path / "Bieu_01_TKDD.xlsx", tmp_path / "Bieu_02_TKDD.xlsx"
    with rewriting(record, [first, second]) as kept:
        first.write_bytes(b"2019")
        second.write_bytes(b"2019")
    assert kept == []
    with pytest.raises(KeyboardInterrupt), rewriting(record, [first, second]):
        first.write_bytes(b"2019, corrected")
        raise KeyboardInterrupt
    with rewriting(record, [first, second]) as kept:
        first.write_bytes(b"2019, corrected")
        second.write_bytes(b"2019, corrected")
    assert kept == [] and sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name, record.name]
    second.write_bytes(b"2019, corrected; Nguyen Van An")  # typed into
    with rewriting(record, [first, second]) as kept:
        second.write_bytes(b"2019, corrected")
    [(path, aside)] = kept
    assert path == second and aside.read_bytes().endswith(b"Nguyen Van An")


def test_a_project_folder_moved_whole_is_the_same_project(tmp_path, sample_raw):
    """The officer's project folder (inventory.toml, raw data, work folder, as
    the repository lays them out) moved elsewhere (another drive letter, a
    laptop): the run there reads no file again and rewrites nothing but the
    ingest report, which says where the files now are; the parcels name their
    source file under the raw-data folder, wherever that is. The work folder
    copied alone then finds its files where they were."""
    import shutil

    before_move = tmp_path / "o_dia_D" / "KiemKe"
    shutil.copytree(sample_raw, before_move / "data" / "raw" / "sample")
    context = before_move / "pipeline" / "data"
    context.mkdir(parents=True)
    shutil.copy2(REPO / "pipeline" / "data" / "langson_communes_2009.geojson", context)
    shutil.copy2(REPO / "inventory.toml", before_move)
    result = CliRunner().invoke(cli, ["inventory", "--config", str(before_move / "inventory.toml")])
    assert result.exit_code == 0, result.output
    project = shutil.move(before_move, tmp_path / "o_dia_E")
    work = Path(project) / "data" / "processed"
    before = _mtimes(work)
    result = CliRunner().invoke(cli, ["-v", "inventory", "--config", str(Path(project) / "inventory.toml")])
    assert result.exit_code == 0, result.output
    assert "ingest: 5 files (0 read, 5 unchanged, 0 copies not read), 0 communes rewritten" in result.output
    changed = {name for name, time in _mtimes(work).items() if before.get(name) != time}
    assert changed == {"reports/ingest.json", "cache/manifest_base.json"}, sorted(changed)  # where it now is
    assert str(tmp_path / "o_dia_E") in (work / "reports" / "ingest.json").read_text(encoding="utf-8")
    assert gpd.read_parquet(work / "parcels" / "06253.parquet")["source_file"].unique().tolist() == \
        ["van_quan/tt_van_quan/TD_06253.shp"]

    copy = shutil.copytree(work, tmp_path / "ban_sao")  # the work folder alone: its files are where they were
    result = CliRunner().invoke(cli, ["qa", "--workdir", str(copy)])
    assert result.exit_code == 0, result.output
    config = Path(project) / "inventory.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('workdir = "data/processed"',
                                                                 f'workdir = "{copy.as_posix()}"'), encoding="utf-8")
    before = _mtimes(copy)
    result = CliRunner().invoke(cli, ["-v", "inventory", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert _mtimes(copy) == before


@pytest.mark.parametrize("deleted, by", [
    ("forms/xa/06286/Bieu_01_TKDD.xlsx", "forms"), ("forms/tinh/20/Bieu_02_TKDD.csv", "forms"),
    ("reports/qa.html", "qa"), ("reports/qa.json", "qa"), ("rasters/xa_06286.tif", "package"),
    ("styles/thua_dat.qml", "package"), ("reports/raster_areas.csv", "package")])
def test_an_output_deleted_by_hand_is_made_again_by_its_stage(sample_run, tmp_path, deleted, by):
    """As make does: a stage whose outputs are newer than its inputs does
    nothing, unless one of them is gone (an officer deleted a workbook, the
    QA report, a commune's GeoTIFF or style file): the stage makes it again.
    Before, forms, QA and package looked at their report or products only."""
    import shutil

    from pipeline.forms import run_forms
    from pipeline.package import run_package
    from pipeline.qa import run_qa

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: every output is current
    stage = {"forms": lambda: run_forms(work), "qa": lambda: run_qa(work, progress=False),
             "package": lambda: run_package(work, progress=False)}[by]
    before = _mtimes(work.root)
    stage()
    assert _mtimes(work.root) == before  # nothing to do
    (work.root / deleted).unlink()
    stage()
    assert (work.root / deleted).exists()
