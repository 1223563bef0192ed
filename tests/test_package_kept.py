"""What a planner makes in the GeoPackage and the QGIS project is not lost when a later run writes them again."""

import json
import os
import shutil
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from pyproj import CRS
from rasterio.transform import from_origin
from shapely.geometry import MultiPolygon, box

from pipeline.io import write_geoparquet
from pipeline.package.geopackage import write_geopackage
from pipeline.package.gpkg import GpkgLayer, per_file, whole
from pipeline.package.styles import LayerStyle
from pipeline.records import keep_hand_edits, record_written_files

CRS_VN = CRS.from_epsg(9215)


class Run:
    """kiemke's package stage in small: parcels of one file, a table, a style; the GeoPackage, ledger and record."""

    def __init__(self, root: Path):
        self.root = root
        self.gpkg, self.ledger, self.record = root / "out" / "kk.gpkg", root / "ledger.json", root / "kk.written.json"
        for code in ("002", "003", "001"):  # three communes: one changed is patched
            self.parcels(["LUC", "ONT", "CLN"], code)

    def parcels(self, codes: list[str], commune: str = "001") -> None:
        """The commune's parcels written (again)."""
        x0 = 10 * int(commune)
        shapes = [box(x0 + i, 0, x0 + i + 1, 1) for i in range(len(codes))]
        frame = gpd.GeoDataFrame({"landuse": codes}, geometry=shapes, crs=CRS_VN)
        path = write_geoparquet(self.root / "parcels" / f"{commune}.parquet", frame)
        later = time.time() + 10 * len(list(self.root.rglob("*")))  # newer than the ledger saw it
        os.utime(path, (later, later))

    def write(self, extra: tuple[str, ...] = ()) -> None:
        layers = [GpkgLayer("thua_dat", "Thửa đất", "", per_file(sorted((self.root / "parcels").glob("*.parquet"))),
                            True, style=LayerStyle("thua_dat", "<renderer-v2 type='singleSymbol'/>")),
                  GpkgLayer("bang", "Bảng", "", whole(pd.DataFrame({"n": [1, 2]})), False),
                  *(GpkgLayer(name, name, "", whole(pd.DataFrame({"n": [3]})), False) for name in extra)]
        write_geopackage(self.gpkg, layers, CRS_VN, ledger=self.ledger, context="x", record=self.record)

    def sql(self, query: str, *args):
        with sqlite3.connect(self.gpkg) as db:
            return db.execute(query, args).fetchall()

    def aside(self) -> list[str]:
        return sorted(p.name for p in self.gpkg.parent.iterdir() if "_ban_sua_" in p.name)


def _as_qgis_saves_a_style(run: Run, table: str, name: str) -> None:
    """A style saved from QGIS as the layer's default: the others of the layer stop being its default."""
    run.sql("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", table)
    run.sql("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
            "styleQML, styleSLD, useAsDefault, description, owner, ui) VALUES ('', '', ?, 'geom', ?, '<qgis/>', '', "
            "1, 'của tôi', '', NULL)", table, name)


def _as_qgis_adds_a_parcel(run: Run) -> None:
    """A feature added to a layer kiemke wrote, through GDAL as QGIS does (GDAL stamps the layer's time of change)."""
    time.sleep(0.01)  # GDAL's stamp is in milliseconds
    parcel = gpd.GeoDataFrame({"landuse": ["ONT"]}, geometry=[MultiPolygon([box(5, 5, 6, 6)])], crs=CRS_VN)
    pyogrio.write_dataframe(parcel, run.gpkg, layer="thua_dat", driver="GPKG", append=True)


def test_the_planners_layers_styles_and_stored_projects_go_into_the_new_geopackage(tmp_path, caplog):
    run = Run(tmp_path)
    run.write()
    own = gpd.GeoDataFrame({"fid": [7, 9], "ten": ["Khu công nghiệp dự kiến", "Khu dân cư"]},
                           geometry=[box(0, 0, 2, 1), box(2, 0, 3, 1)], crs=CRS_VN)  # fids 7, 9: kept
    pyogrio.write_dataframe(own, run.gpkg, layer="vung_quy_hoach", driver="GPKG", append=True)
    pyogrio.write_dataframe(pd.DataFrame({"ghi_chu": ["họp ngày 5/12"]}), run.gpkg, layer="ghi_chu", driver="GPKG",
                            append=True)
    _as_qgis_saves_a_style(run, "thua_dat", "phuong_an")
    _as_qgis_saves_a_style(run, "vung_quy_hoach", "vung")
    run.sql("CREATE TABLE qgis_projects(name TEXT PRIMARY KEY, metadata BLOB, content BLOB)")
    run.sql("INSERT INTO qgis_projects VALUES ('du_an_cua_toi', x'00', x'0102')")

    run.parcels(["LUC", "ONT", "CLN", "BHK"])  # a correction: the parcels are written again
    with caplog.at_level("WARNING"):
        run.write()
    assert pyogrio.read_info(run.gpkg, layer="thua_dat")["features"] == 10
    kept = pyogrio.read_dataframe(run.gpkg, layer="vung_quy_hoach", fid_as_index=True)
    assert list(kept.index) == [7, 9] and list(kept["ten"]) == list(own["ten"])
    assert kept.geometry.area.sum() == pytest.approx(3.0) and kept.crs.equals(CRS_VN)
    assert list(pyogrio.read_dataframe(run.gpkg, layer="ghi_chu")["ghi_chu"]) == ["họp ngày 5/12"]
    styles = run.sql("SELECT f_table_name, styleName, useAsDefault, owner FROM layer_styles ORDER BY 1, 2")
    assert styles == [("thua_dat", "phuong_an", 1, ""), ("thua_dat", "thua_dat", 0, "kiemke"),
                      ("vung_quy_hoach", "vung", 1, "")]
    assert run.sql("SELECT name, content FROM qgis_projects") == [("du_an_cua_toi", b"\x01\x02")]
    assert run.aside() == []  # nothing of the old file is lost: it is not kept beside
    assert "Lớp thêm vào GeoPackage trong QGIS sau lần chạy trước được chép sang tệp mới: vung_quy_hoach, " \
           "ghi_chu" in caplog.text
    assert "2 kiểu hiển thị lưu từ QGIS" in caplog.text and "Các dự án QGIS lưu trong GeoPackage" in caplog.text

    caplog.clear()
    run.parcels(["LUC", "ONT", "CLN", "BHK", "NTS"])  # again, the GeoPackage untouched since: patched
    with caplog.at_level("INFO"):
        run.write()
    assert "patched" in caplog.text and "kiểu hiển thị" not in caplog.text  # carried before: not told again
    assert pyogrio.read_info(run.gpkg, layer="thua_dat")["features"] == 11
    assert pyogrio.read_info(run.gpkg, layer="vung_quy_hoach")["features"] == 2  # once, not twice
    assert run.sql("SELECT f_table_name, styleName, useAsDefault FROM layer_styles ORDER BY 1, 2") == \
        [(t, n, d) for t, n, d, _ in styles]
    assert run.sql("SELECT count(*) FROM qgis_projects") == [(1,)]


def test_a_geopackage_whose_kiemke_layers_were_edited_is_kept_beside(tmp_path, caplog):
    run = Run(tmp_path)
    run.write()
    _as_qgis_adds_a_parcel(run)
    run.parcels(["LUC", "BHK", "CLN"])
    with caplog.at_level("WARNING"):
        run.write()
    [aside] = run.aside()
    assert aside.startswith("kk_ban_sua_") and aside.endswith(".gpkg")
    assert list(pyogrio.read_dataframe(run.gpkg.parent / aside, layer="thua_dat")["landuse"]) == \
        ["LUC", "ONT", "CLN"] * 3 + ["ONT"]
    assert list(pyogrio.read_dataframe(run.gpkg, layer="thua_dat")["landuse"]) == \
        ["LUC", "BHK", "CLN"] + ["LUC", "ONT", "CLN"] * 2
    assert f"Các lớp do kiemke ghi đã bị sửa sau lần chạy trước (thua_dat): tệp GeoPackage đó được giữ lại " \
           f"thành {run.gpkg.parent / aside}" in caplog.text

    caplog.clear()  # a layer of the planner's own named as one kiemke comes to write
    pyogrio.write_dataframe(pd.DataFrame({"n": [42]}), run.gpkg, layer="bien_dong", driver="GPKG", append=True)
    with caplog.at_level("WARNING"):
        run.write(extra=("bien_dong",))
    assert len(run.aside()) == 2 and "trùng tên với lớp do kiemke ghi (bien_dong)" in caplog.text
    assert list(pyogrio.read_dataframe(run.gpkg, layer="bien_dong")["n"]) == [3]

    caplog.clear()  # a raster put into the GeoPackage (GDAL keeps it as tiles): not copied, so the file is kept
    with rasterio.open(run.gpkg, "w", driver="GPKG", width=4, height=4, count=1, dtype="uint8", crs="EPSG:9215",
                       transform=from_origin(0, 4, 1, 1), RASTER_TABLE="anh_ve_tinh", APPEND_SUBDATASET="YES") as tif:
        tif.write(np.ones((1, 4, 4), dtype="uint8"))
    with caplog.at_level("WARNING"):
        run.write(extra=("bien_dong",))
    assert "không chép sang tệp mới được, như ảnh raster (anh_ve_tinh)" in caplog.text and len(run.aside()) == 3
    assert [name for name in run.aside() if sqlite3.connect(run.gpkg.parent / name).execute(
        "SELECT 1 FROM gpkg_contents WHERE table_name = 'anh_ve_tinh'").fetchone()]

    caplog.clear()  # written again, nothing changed by anyone: nothing said, nothing kept beside
    run.parcels(["LUC"])
    with caplog.at_level("WARNING"):
        run.write(extra=("bien_dong",))
    assert caplog.text == "" and len(run.aside()) == 3


def _project(path: Path, xml: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.with_suffix(".qgs").name, xml)
    return path


def test_a_project_saved_in_qgis_is_kept_beside_and_one_only_copied_is_not(tmp_path):
    qgz, record = _project(tmp_path / "kk.qgz", "<qgis version='3.22'/>"), tmp_path / "written.json"
    record_written_files(record, [qgz])
    assert keep_hand_edits(record, [qgz]) == []
    later = time.time() + 60
    os.utime(qgz, (later, later))  # copied without its times: the same project
    assert keep_hand_edits(record, [qgz]) == [] and qgz.exists()
    _project(qgz, "<qgis version='3.22'><layer name='vung_quy_hoach'/></qgis>")  # saved in QGIS
    [(saved, aside)] = keep_hand_edits(record, [qgz])
    assert saved == qgz and aside.parent == qgz.parent and not qgz.exists()
    assert aside.name.startswith("kk_ban_sua_") and "vung_quy_hoach" in zipfile.ZipFile(aside).read("kk.qgs").decode()
    _project(qgz, "<qgis version='3.22'/>")  # kiemke's new one, and a second set aside on the same second
    record_written_files(record, [qgz])
    _project(qgz, "<qgis/>")
    os.utime(qgz, (aside.stat().st_mtime, aside.stat().st_mtime))
    [(_, second)] = keep_hand_edits(record, [qgz])
    assert second.name == aside.stem + "_2.qgz" and aside.exists()


def _planner(qgis_python: str, *args: Path | str) -> dict:
    """tests/clients/qgis_planner.py run with QGIS's own python."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(Path(args[1]).parent)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([qgis_python, str(Path(__file__).parent / "clients" / "qgis_planner.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_what_a_planner_saved_in_qgis_is_there_after_the_next_run(sample_run, qgis_python, tmp_path, caplog):
    """A planner saves a style and a layer of their own into the sample's
    GeoPackage and saves the project, in QGIS; an officer's correction then
    makes the package again. The GeoPackage has the new khoanh, the planner's
    layer and default style; the planner's project, kept beside, opens on it
    with every layer; the project under kiemke's name is kiemke's new one."""
    from pipeline.package import run_package
    from pipeline.workdir import WorkDir

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    gpkg, qgz = next(work.root.glob("*.gpkg")), next(work.root.glob("*.qgz"))
    done = _planner(qgis_python, "work", qgz, gpkg)
    assert done["style_error"] == "" and done["layer_written"] and done["project_saved"]
    qml, sld = work.styles_dir / "khoanh_dat.qml", work.styles_dir / "khoanh_dat.sld"
    qml.write_text("<qgis><!-- kiểu của tổ quy hoạch --></qgis>", encoding="utf-8")  # "Save style as QML" over it
    changed = work.khoanh_files()[1]
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    for path in (changed, sld):  # the SLD only touched
        os.utime(path, (later, later))
    with caplog.at_level("WARNING"):
        run_package(work, progress=False)
    [kept_style] = work.styles_dir.glob("*_ban_sua_*")
    assert kept_style.name.startswith("khoanh_dat_ban_sua_")
    assert "tổ quy hoạch" in kept_style.read_text(encoding="utf-8")
    assert "renderer-v2" in qml.read_text(encoding="utf-8")  # kiemke's again
    assert f"Tệp kiểu hiển thị đã được sửa sau lần chạy trước: bản đó được giữ lại thành {kept_style}" in caplog.text

    assert pyogrio.read_info(gpkg, layer="vung_quy_hoach")["features"] == 1
    with sqlite3.connect(gpkg) as db:
        defaults = db.execute("SELECT styleName FROM layer_styles WHERE f_table_name = 'khoanh_dat' AND useAsDefault")
        assert defaults.fetchall() == [("phuong_an_quy_hoach",)]
    [aside] = [p for p in work.root.glob("*_ban_sua_*") if p.suffix == ".qgz"]
    opened = _planner(qgis_python, "open", aside)
    assert opened["read"] and all(layer["valid"] for layer in opened["layers"].values())
    assert opened["layers"]["Vùng quy hoạch"]["source"].startswith(str(gpkg))  # the GeoPackage just written
    assert "Vùng quy hoạch" not in _planner(qgis_python, "open", qgz)["layers"]
    assert "Lớp thêm vào GeoPackage trong QGIS sau lần chạy trước được chép sang tệp mới: vung_quy_hoach" \
        in caplog.text and f"dự án đó được giữ lại thành {aside}" in caplog.text
    assert not list(work.root.glob("*_ban_sua_*.gpkg"))  # the planner's work all carried: no copy kept
