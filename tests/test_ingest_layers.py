"""What ingest reads from an input folder as officers keep it: a GeoPackage of
several layers (parcels beside roads, labels, the commune boundary, or one
layer per sheet): every layer of parcels, the others left and said so; not the
reference layers the config names, nor the work directory inside it."""

import json
import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest.corrections import for_source
from pipeline.ingest.read import discover
from tests.helpers import X0, Y0, square


def _parcels(sheet: int, count: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"MAXA": ["06253"] * count, "SHBANDO": [sheet] * count, "SHTHUA": list(range(1, count + 1)),
                             "KHLOAIDAT": ["LUC"] * count},
                            geometry=[square(i * 50, sheet * 50, 50) for i in range(count)], crs="EPSG:9215")


def _road_and_boundary() -> dict[str, gpd.GeoDataFrame]:
    """What a cadastral export keeps beside its parcels: a road (lines), the commune boundary."""
    road = gpd.GeoDataFrame({"TEN": ["QL1A"]}, geometry=[shapely.LineString([(X0, Y0), (X0 + 500, Y0)])],
                            crs="EPSG:9215")
    boundary = gpd.GeoDataFrame({"TEN": ["Xã Thí Điểm"], "MAXA": ["06253"]},
                                geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 500, Y0 + 500)], crs="EPSG:9215")
    return {"giao_thong": road, "ranh_gioi_xa": boundary}


def _other_layers(path, driver: str = "GPKG") -> None:
    """A road (first) and the commune boundary as layers of ``path``, as a cadastral GeoPackage keeps them."""
    for layer, frame in _road_and_boundary().items():
        frame.to_file(path, layer=layer, driver=driver)


def _ingest(raw, work, *more):
    return CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--workdir", str(work), *more])


def _two_sheets(tmp_path):
    """An input folder with a GeoPackage of two sheets' parcels (3 and 2) beside a road and the boundary."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _other_layers(raw / "xa.gpkg")
    _parcels(1, 3).to_file(raw / "xa.gpkg", layer="to_1")
    _parcels(2, 2).to_file(raw / "xa.gpkg", layer="to_2")
    return raw


def test_each_layer_of_parcels_is_read_and_the_others_are_left_and_reported(tmp_path):
    raw = _two_sheets(tmp_path)
    _parcels(3, 4).to_file(raw / "mot_lop.gpkg", layer="thua")  # one layer: the file, as before

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    files = {f["path"].split("raw/")[-1]: f for f in report["files"]}
    assert sorted(files) == ["mot_lop.gpkg", "xa.gpkg|layername=giao_thong", "xa.gpkg|layername=ranh_gioi_xa",
                             "xa.gpkg|layername=to_1", "xa.gpkg|layername=to_2"]
    assert [files[f"xa.gpkg|layername={n}"]["features_out"] for n in ("to_1", "to_2")] == [3, 2]
    assert files["mot_lop.gpkg"]["features_out"] == 4
    for name, count in (("giao_thong", 1), ("ranh_gioi_xa", 1)):
        left = files[f"xa.gpkg|layername={name}"]
        assert left["skipped"] == f"layer '{name}' has no land-use column: not parcels, not read ({count} features)"
        assert left["features_in"] == 0 and left["warnings"] == []
    assert report["features_in"] == report["features_out"] == 9 and report["features_quarantined"] == 0
    parcels = pd.concat(gpd.read_parquet(p) for p in (tmp_path / "work/parcels").glob("*.parquet"))
    assert sorted(parcels["sheet_no"].astype(int)) == [1, 1, 1, 2, 2, 3, 3, 3, 3]
    text = (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert ("**Không đọc** — Lớp «ranh_gioi_xa» không có cột loại đất nên không được coi là lớp thửa, "
            "không đọc (1 đối tượng)") in text


def test_an_esri_file_geodatabase_is_read_layer_by_layer_and_seen_to_change(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    gdb = raw / "HoangVanThu.gdb"  # a folder of .gdbtable files, as ArcGIS writes it
    _other_layers(gdb, driver="OpenFileGDB")
    _parcels(1, 3).assign(TENCHU="Nguyễn Văn Đỗ").to_file(gdb, layer="ThuaDat", driver="OpenFileGDB")

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    files = {f["path"].split("raw/")[-1]: f for f in report["files"]}
    assert sorted(files) == [f"HoangVanThu.gdb|layername={n}" for n in ("ThuaDat", "giao_thong", "ranh_gioi_xa")]
    assert files["HoangVanThu.gdb|layername=ThuaDat"]["features_out"] == 3
    assert files["HoangVanThu.gdb|layername=giao_thong"]["skipped"]
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert set(parcels["owner_name"]) == {"Nguyễn Văn Đỗ"}
    # a layer named as QGIS names it; a layer edited in ArcGIS is read again
    assert _ingest(f"{gdb}|layername=ThuaDat", tmp_path / "one").exit_code == 0
    _parcels(1, 4).to_file(gdb, layer="ThuaDat", driver="OpenFileGDB")
    assert "Đã đọc 3 tệp: 4 thửa" in _ingest(raw, tmp_path / "work").output
    # zipped, as it is sent by mail
    shutil.make_archive(str(tmp_path / "mail/HoangVanThu.gdb"), "zip", raw, gdb.name)
    assert "Đã đọc 3 tệp: 4 thửa" in _ingest(tmp_path / "mail", tmp_path / "zipped").output


def test_a_geopackage_whose_layers_have_no_land_use_column_gets_a_clear_message(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _other_layers(raw / "xa.gpkg")

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code != 0
    assert "không tệp, lớp nào có cột loại đất nên không tệp, lớp nào được đọc là thửa đất" in result.output
    assert "xa.gpkg|layername=giao_thong" in result.output and "[columns] landuse" in result.output


def test_files_without_a_land_use_column_beside_the_parcels_are_left_and_said_as_a_geopackages_layers_are(tmp_path):
    # a cadastral export as a set of shapefiles: the parcels, the commune boundary, the roads
    raw = tmp_path / "raw"
    raw.mkdir()
    _parcels(1, 2).to_file(raw / "ThuaDat.shp")
    for name, frame in _road_and_boundary().items():
        frame.to_file(raw / f"{name}.shp")

    result = _ingest(raw, tmp_path / "work")
    alone = _ingest(raw / "ranh_gioi_xa.shp", tmp_path / "alone")

    assert result.exit_code == 0, result.output
    assert "Đã đọc 3 tệp: 2 thửa ở 1 xã, 0 thửa cách ly" in result.output  # no commune 'giao_thong'
    assert "giao_thong.shp: the file has no land-use column: not parcels, not read (1 features)" in result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert files["ranh_gioi_xa.shp"]["skipped"] == "the file has no land-use column: not parcels, not read (1 features)"
    assert files["giao_thong.shp"]["skipped"] and files["ThuaDat.shp"]["features_out"] == 2
    assert report["area_in_m2"] == pytest.approx(2 * 2500) == report["area_out_m2"]  # the boundary's area is not in
    text = (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert "**Không đọc** — Tệp không có cột loại đất nên không được coi là tệp thửa, không đọc (1 đối tượng)" in text
    assert alone.exit_code != 0 and "không tệp, lớp nào có cột loại đất" in alone.output


def test_a_layer_whose_land_use_column_has_an_unknown_name_is_read_from_its_values(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _other_layers(raw / "xa.gpkg")
    _parcels(1, 2).rename(columns={"KHLOAIDAT": "MA_HT"}).to_file(raw / "xa.gpkg", layer="thua")

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert report["features_out"] == 2
    (parcels,) = [f for f in report["files"] if f["path"].endswith("layername=thua")]
    assert "land use taken from column 'MA_HT': 100% of its values are land-use codes or names" in parcels["repairs"]


def test_the_officers_corrections_of_a_file_reach_each_of_its_layers():
    corrections = pd.DataFrame({"source_file": ["xa.gpkg", "khac.gpkg", "", "/d/xa.gpkg|layername=to_1"],
                                "origin": ["a", "b", "c", "d"]})
    picked = for_source(corrections, "/d/xa.gpkg|layername=to_1")
    assert list(picked["origin"]) == ["a", "c", "d"]
    assert list(for_source(corrections, "/d/xa.gpkg|layername=to_2")["origin"]) == ["a", "c"]


@pytest.mark.parametrize("layers", [1, 2])
def test_kiemkes_own_outputs_under_the_input_folder_are_not_read_again(tmp_path, layers):
    raw = tmp_path / "KiemKe"
    raw.mkdir()
    _parcels(1, 3).to_file(raw / "xa.gpkg", layer="thua")
    work = raw / "ketqua"
    assert _ingest(raw, work).exit_code == 0
    shutil.copy(raw / "xa.gpkg", work / "LangSon_2019_HTSDD.gpkg")  # as if the package stage had written it
    if layers == 2:
        _parcels(2, 3).to_file(work / "LangSon_2019_HTSDD.gpkg", layer="thua_dat")  # with khoanh_dat: kiemke's own
        _parcels(2, 3).to_file(work / "LangSon_2019_HTSDD.gpkg", layer="khoanh_dat")

    result = _ingest(raw, work)

    assert result.exit_code == 0, result.output
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in report["files"]] == [str(raw / "xa.gpkg")] and report["features_out"] == 3
    assert "ingest.json" in {s.path.name for s in discover([work / "reports"])}  # what would have been read


def _boundary_config(tmp_path, raw, *, workdir="work"):
    """A config naming the commune boundary kept in the input folder beside the parcels."""
    boundary = gpd.GeoDataFrame({"ma_xa": ["06253"], "ten_xa": ["Xã Thí Điểm"], "ma_huyen": ["180"],
                                 "ten_huyen": ["Huyện Văn Quan"]},
                                geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 500, Y0 + 500)], crs="EPSG:9215")
    boundary.to_file(raw / "ranh_gioi_xa.shp")
    config = tmp_path / "inventory.toml"
    config.write_text(f'[inventory]\nprovince = "Lạng Sơn"\ninput = "{raw.as_posix()}"\nworkdir = "{workdir}"\n'
                      f'[boundaries]\npath = "{(raw / "ranh_gioi_xa.shp").as_posix()}"\ncommune_code_field = "ma_xa"\n'
                      'commune_name_field = "ten_xa"\ndistrict_code_field = "ma_huyen"\n'
                      'district_name_field = "ten_huyen"\n', encoding="utf-8")
    return config


def test_the_boundary_file_the_config_names_is_not_read_as_parcels(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _parcels(1, 2).to_file(raw / "thua.shp")
    config = _boundary_config(tmp_path, raw)

    result = _ingest(raw, tmp_path / "work", "--config", str(config))

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert [Path(f["path"]).name for f in report["files"]] == ["thua.shp"]
    assert report["features_in"] == report["features_out"] == 2


@pytest.mark.parametrize("given", [False, True])
def test_ingest_with_a_config_writes_to_its_work_directory_unless_one_is_given(tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    _parcels(1, 2).to_file(raw / "thua.shp")
    config = _boundary_config(tmp_path, raw, workdir="ket_qua")
    args = ["ingest", str(raw), "--province", "Lạng Sơn", "--config", str(config)]

    result = CliRunner().invoke(cli, args + (["--workdir", "khac"] if given else []))

    assert result.exit_code == 0, result.output
    written = tmp_path / ("khac" if given else "ket_qua") / "parcels/06253.parquet"
    assert written.exists() and not (tmp_path / ("ket_qua" if given else "khac")).exists()
    assert not (tmp_path / "data/processed").exists()  # the default, when no config says otherwise


def test_ingest_with_a_config_alone_takes_its_province_and_input_folder_and_without_either_says_what_is_missing(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    _parcels(1, 2).to_file(raw / "thua.shp")
    config = _boundary_config(tmp_path, raw, workdir="ket_qua")

    result = CliRunner().invoke(cli, ["ingest", "--config", str(config)])
    no_province = CliRunner().invoke(cli, ["ingest", str(raw)])
    no_input = CliRunner().invoke(cli, ["ingest", "--province", "Lạng Sơn"])

    assert result.exit_code == 0, result.output
    assert len(gpd.read_parquet(tmp_path / "ket_qua/parcels/06253.parquet")) == 2
    assert no_province.exit_code == no_input.exit_code == 2
    assert "Missing option '--province'" in no_province.output and "Missing argument 'PATHS...'" in no_input.output


def test_a_shapefile_named_with_brackets_and_an_upper_case_cpg_is_read_by_its_cpg_and_its_changes_seen(tmp_path):
    from pipeline.config import Settings
    from pipeline.ingest.cache import IngestCache
    from pipeline.reference import province

    raw = tmp_path / "raw"
    raw.mkdir()
    shp = raw / "Thua [2019].shp"
    parcels = _parcels(1, 1).assign(TENCHU=["Nguyễn Văn Ơn"])
    parcels.to_file(shp, encoding="cp1258")
    shp.with_suffix(".cpg").rename(raw / "Thua [2019].CPG")
    (raw / "Thua [2019].CPG").write_text("1258", encoding="ascii")
    (source,) = discover([raw])
    settings = Settings(province=province("Lạng Sơn"))
    before = IngestCache(tmp_path / "cache", source, settings).fingerprint

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    (read,) = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))["files"]
    assert read["encoding"] == "cp1258 (.cpg)"
    assert gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")["owner_name"].tolist() == ["Nguyễn Văn Ơn"]
    parcels.assign(TENCHU=["Nguyễn Văn Ơn Hai"]).to_file(shp, encoding="cp1258")  # the .dbf grows
    shp.with_suffix(".cpg").unlink()  # (written again in lower case)
    assert IngestCache(tmp_path / "cache", source, settings).fingerprint != before


def test_files_of_one_sheet_each_without_a_sheet_column_take_the_sheet_their_name_gives(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for sheet, name in ((1, "To_01.shp"), (2, "Tờ 2.shp"), (3, "ThuaDat.shp")):
        _parcels(sheet, 3).drop(columns="SHBANDO").to_file(raw / name)  # parcels 1-3 on each sheet
    _parcels(4, 2).assign(SHBANDO=0).to_file(raw / "to_5.shp")  # a .dbf's 0s: no sheet written
    _parcels(6, 2).to_file(raw / "to_7.shp")  # a sheet column wins over the name

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    sheets = parcels["sheet_no"].fillna("").groupby(parcels["source_file"].map(lambda f: Path(f).name)).unique()
    assert {name: list(values) for name, values in sheets.items()} == {
        "To_01.shp": ["1"], "Tờ 2.shp": ["2"], "ThuaDat.shp": [""], "to_5.shp": ["5"], "to_7.shp": ["6"]}
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert not any("duplicate" in key for f in report["files"] for key in f["flagged"])  # 1/1 ≠ 2/1
    text = (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert "- Đã sửa — Tệp không ghi số tờ bản đồ: số tờ 2 lấy theo tên tệp (hoặc tên lớp): 3" in text


def _copy_shapefile(shp: Path, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    for part in shp.parent.glob(shp.stem + ".*"):
        shutil.copy2(part, to.with_suffix(part.suffix))


def test_a_copy_of_a_file_in_the_folder_is_read_once_and_said_and_a_file_of_the_same_size_is_read(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    original = raw / "TD_06253.shp"
    _parcels(1, 3).to_file(original)
    assert _ingest(raw, tmp_path / "work").exit_code == 0
    # a Windows copy beside it, a backup under the commune's folder and the zip it came in, added after a first run
    _copy_shapefile(original, raw / "TD_06253 - Copy.shp")
    _copy_shapefile(original, raw / "sao_luu/TD_06253.shp")
    with zipfile.ZipFile(raw / "TD_06253.zip", "w") as mailed:
        for part in raw.glob("TD_06253.*"):
            if part.suffix != ".zip":
                mailed.write(part, f"du_lieu/{part.name}")
    _parcels(1, 3).assign(KHLOAIDAT=["ONT"] * 3).to_file(raw / "TD_06253_sua.shp")  # same sizes, other bytes

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    files = {f["path"].split("raw/")[-1]: f for f in report["files"]}
    for copy in ("TD_06253 - Copy.shp", "sao_luu/TD_06253.shp", "TD_06253.zip!du_lieu/TD_06253.shp"):
        assert files[copy]["skipped"] == f"a copy of {original}: the same bytes, read once (from that file)"
        assert files[copy]["features_in"] == 0
    assert [files[name]["features_out"] for name in ("TD_06253.shp", "TD_06253_sua.shp")] == [3, 3]
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(parcels["landuse"]) == ["LUC"] * 3 + ["ONT"] * 3
    assert report["area_in_m2"] == pytest.approx(6 * 2500) == report["area_out_m2"]
    text = (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert (f"## {raw}/sao_luu/TD_06253.shp\n\n- **Không đọc** — Bản sao của tệp «{original}» (giống hệt từng "
            "byte): không đọc, để các thửa không bị tính hai lần") in text


def test_a_mapinfo_table_edited_in_its_dat_and_map_alone_is_read_again(tmp_path):
    # MapInfo saves a table's edits to its .dat, .map and .id; the .tab (its header) is left as it was
    def table(folder: Path, code: str) -> Path:
        folder.mkdir()
        path = folder / "td.tab"
        _parcels(1, 1).assign(KHLOAIDAT=[code]).to_file(path, driver="MapInfo File",
                                                         BOUNDS="400000,2400000,500000,2500000")
        return path

    table(tmp_path / "raw", "LUC")
    assert _ingest(tmp_path / "raw", tmp_path / "work").exit_code == 0
    edited = table(tmp_path / "edited", "ONT")
    for part in edited.parent.iterdir():
        if part.suffix != ".tab":
            shutil.copy2(part, tmp_path / "raw" / part.name)

    result = _ingest(tmp_path / "raw", tmp_path / "work")

    assert result.exit_code == 0, result.output
    assert gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")["landuse"].tolist() == ["ONT"]


def test_one_layer_named_as_qgis_names_it_is_the_only_one_read(tmp_path):
    raw = _two_sheets(tmp_path)

    result = _ingest(f"{raw / 'xa.gpkg'}|layername=to_2", tmp_path / "work")
    wrong = _ingest(f"{raw / 'xa.gpkg'}|layername=to_3", tmp_path / "work2")

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in report["files"]] == [f"{raw / 'xa.gpkg'}|layername=to_2"] and report["features_out"] == 2
    assert wrong.exit_code != 0
    assert "không có lớp «to_3»; các lớp của tệp: giao_thong, ranh_gioi_xa, to_1, to_2" in wrong.output


def test_the_forest_status_map_is_read_from_its_layer_that_holds_the_status_field(tmp_path):
    from pipeline.config import Forest
    from pipeline.ingest.refine import load_forest_map

    path = tmp_path / "rung.gpkg"
    _other_layers(path)  # a road first, then a boundary: neither has the status field
    gpd.GeoDataFrame({"TRANGTHAI": ["Rừng tự nhiên", "Rừng trồng"]}, crs="EPSG:9215",
                     geometry=[square(0, 0, 100), square(100, 0, 100)]).to_file(path, layer="lo_rung")

    forest_map = load_forest_map(Forest(path=path, status_field="TRANGTHAI"), 107.25)

    assert sorted(forest_map.status) == ["natural", "planted"]
    assert shapely.area(forest_map.lots).sum() == pytest.approx(20_000, rel=1e-3)


def test_kiemkes_own_geopackage_asks_which_of_its_layers_to_read(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    package = raw / "LangSon_2019_HTSDD.gpkg"  # its khoanh and parcels hold the same land twice
    _parcels(1, 2).to_file(package, layer="khoanh_dat")
    _parcels(1, 2).to_file(package, layer="thua_dat")

    whole = _ingest(raw, tmp_path / "work")
    named = _ingest(f"{package}|layername=khoanh_dat", tmp_path / "work2")

    assert whole.exit_code != 0
    assert "tệp GeoPackage do kiemke ghi, các lớp của nó chứa cùng một vùng đất nhiều lần" in whole.output
    assert f"{package}|layername=khoanh_dat (khoanh đất của kỳ đó)" in whole.output
    assert named.exit_code == 0, named.output
    assert json.loads((tmp_path / "work2/reports/ingest.json").read_text(encoding="utf-8"))["features_out"] == 2


def test_google_earth_files_kml_and_kmz_are_read_as_parcels(tmp_path):
    """Parcels exported from QGIS as KML (its attributes kept), and polygons
    drawn in Google Earth and mailed as KMZ (the land use as each one's name):
    both are read, in WGS 84, into the province's VN-2000 with their areas.
    They were neither read nor named before."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _parcels(1, 3).assign(TENCHU="Nguyễn Văn Ơn").to_crs(4326).to_file(raw / "thua_dat.kml", driver="KML")
    drawn = gpd.GeoDataFrame({"Name": ["CLN", "NTS"], "MAXA": ["06253"] * 2},
                             geometry=[square(0, 200, 50), square(50, 200, 50)], crs="EPSG:9215")
    drawn.to_crs(4326).to_file(raw / "ve_tay.kmz", driver="LIBKML")

    result = _ingest(raw, tmp_path / "work")

    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(parcels["landuse"]) == ["CLN", "LUC", "LUC", "LUC", "NTS"]
    assert parcels["area_m2"].to_numpy() == pytest.approx([2500.0] * 5, abs=1e-3)
    assert set(parcels.loc[parcels["landuse"] == "LUC", "owner_name"]) == {"Nguyễn Văn Ơn"}
    report = (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert "raw/thua_dat.kml" in report and "Loại đất lấy từ cột 'Name'" in report


def _khoanh_map_2014() -> gpd.GeoDataFrame:
    """The khoanh map of the 2014 inventory as its software exports it: khoanh numbers, no sheet or parcel."""
    return gpd.GeoDataFrame({"MAXA": ["06253", "06274"], "SOKHOANH": [1, 2], "MALOAIDAT": ["LUC", "RSX"]},
                            geometry=[square(0, 0, 50), square(500, 0, 50)], crs="EPSG:9215")


def test_an_earlier_inventorys_khoanh_map_in_the_input_folder_is_not_read_as_this_years_parcels(tmp_path):
    """The 2014 khoanh map kept in the input folder with no [previous] naming
    it was read as 2019's parcels: it overlapped them, and gave a commune with
    no 2019 file forms of its 2014 land. It is left, said why; an export with
    its year in its name is read."""
    from pipeline.config import Settings
    from pipeline.ingest import run_ingest
    from pipeline.messages import vi
    from pipeline.reference import province
    from pipeline.workdir import WorkDir

    raw = tmp_path / "raw"
    (raw / "KiemKe2014").mkdir(parents=True)
    _parcels(1, 2).to_file(raw / "ThuaDat_2018.shp")  # the cadastral export of 2018, for the inventory of 2019
    _khoanh_map_2014().to_file(raw / "KiemKe2014" / "HTSD_VanQuan.shp")
    settings = Settings(province=province("20"), year=2019, input_root=raw, workdir=tmp_path / "work")
    result = run_ingest(WorkDir(settings.workdir), [raw], settings, progress=False)
    reports = {Path(r.path).name: r for r in result.files}
    assert reports["ThuaDat_2018.shp"].features_out == 2 and sorted(result.parcels) == ["06253"]
    skipped = vi(reports["HTSD_VanQuan.shp"].skipped)
    assert skipped.startswith("Bản đồ khoanh đất của kỳ kiểm kê năm 2014") and "không đọc (2 khoanh)" in skipped


def test_a_khoanh_map_a_sources_entry_names_or_of_the_inventorys_own_year_is_read(tmp_path):
    """A commune with no cadastral map is inventoried from its earlier khoanh
    map: named in a [[sources]] entry, or of this year, it is read."""
    from pipeline.config import Settings, SourceOverride
    from pipeline.ingest.file import earlier_inventory_year
    from pipeline.ingest.read import Source
    from pipeline.reference import province

    raw = tmp_path / "raw"
    frame = _khoanh_map_2014().drop(columns="geometry")
    settings = Settings(province=province("20"), year=2019, input_root=raw)
    assert earlier_inventory_year(frame, Source(raw / "KiemKe2014" / "HTSD.shp"), settings) == 2014
    assert earlier_inventory_year(frame, Source(raw / "KiemKe2019" / "HTSD.shp"), settings) is None
    assert earlier_inventory_year(frame.rename(columns={"SOKHOANH": "SHTHUA"}),
                                  Source(raw / "KiemKe2014" / "HTSD.shp"), settings) is None  # parcels
    no_root = Settings(province=province("20"), year=2019)  # `kiemke ingest <paths>`: the folder and name count
    assert earlier_inventory_year(frame, Source(tmp_path / "2016" / "xa" / "HTSD.shp"), no_root) is None
    assert earlier_inventory_year(frame, Source(tmp_path / "2016" / "KK2014" / "HTSD.shp"), no_root) == 2014
    named = Settings(province=province("20"), year=2019, input_root=raw,
                     sources=(SourceOverride(pattern="KiemKe2014/*.shp", commune_code="06253"),))
    assert earlier_inventory_year(frame, Source(raw / "KiemKe2014" / "HTSD.shp"), named) is None
