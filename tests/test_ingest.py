import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import CRS

from pipeline.cli import cli
from pipeline.config import Settings
from pipeline.ingest import ingest_frame
from pipeline.ingest.codes import normalise_commune_code, split_compound
from pipeline.ingest.columns import map_columns
from pipeline.ingest.core import Rules
from pipeline.reference import province
from tests.helpers import source_frame, square

LANG_SON = province("Lạng Sơn")


def test_map_columns_finds_famis_and_vilis_names():
    frame = pd.DataFrame(columns=["MaXa", "SHBANDO", "SoThua", "mdsd", "DOITUONG", "Tong_dien_", "X"])
    assert map_columns(frame) == {
        "commune_code": "MaXa", "sheet_no": "SHBANDO", "parcel_no": "SoThua",
        "landuse": "mdsd", "owner_type": "DOITUONG", "area_recorded": "Tong_dien_",
    }
    assert map_columns(frame, {"landuse": ("X",)})["landuse"] == "X"
    land_database = pd.DataFrame(columns=["MaXa", "SoHieuToBanDo", "so_thu_tu_thua", "KyHieuMucDichSuDung",
                                          "MaDoiTuong", "TenChu"])
    assert map_columns(land_database) == {
        "commune_code": "MaXa", "sheet_no": "SoHieuToBanDo", "parcel_no": "so_thu_tu_thua",
        "landuse": "KyHieuMucDichSuDung", "owner_type": "MaDoiTuong", "owner_name": "TenChu",
    }


@pytest.mark.parametrize("typed, code", [
    ("Lúa", "LUA"), ("ĐTL", "DTL"), ("ont + Cln", "ONT+CLN"), ("ONT+Lúa", "ONT+LUA"),
    ("Rừng", "RỪNG"),  # four letters: a word, not a code
])
def test_a_code_typed_with_a_vietnamese_keyboard_on_reads_as_the_code(typed, code):
    from pipeline.ingest.codes import normalise_landuse

    assert normalise_landuse(typed) == (code, False)


def test_owner_codes_typed_by_hand_read_as_the_code_and_blanks_as_blanks():
    from pipeline.ingest.codes import normalise_code

    typed = pd.Series([" gdc. ", "UBQ (UBND xã)", '"TKT"', "N/A", "-", 0, None, "XYZ"])
    assert list(normalise_code(typed)) == ["GDC", "UBQ", "TKT", "", "", "", "", "XYZ"]  # blanks: inferred, not refused


def test_commune_codes_get_their_leading_zero_back():
    codes = normalise_commune_code(pd.Series(["9922", 6253, "06253", None, "abc", 9922.0, 0, "00000", 0.0]))
    assert list(codes) == ["09922", "06253", "06253", "", "", "09922", "", "", ""]  # 0: a numeric field left empty


@pytest.mark.parametrize("codes, area, known, expected", [
    (["ONT", "CLN"], 1500.0, {}, {"ONT": 400.0, "CLN": 1100.0}),
    (["ONT", "CLN"], 300.0, {}, {"ONT": 300.0, "CLN": 0.0}),
    (["ONT", "CLN"], 1500.0, {"ONT": 250.0}, {"ONT": 250.0, "CLN": 1250.0}),
    (["ONT", "CLN"], 1500.0, {"ONT": 9999.0}, {"ONT": 400.0, "CLN": 1100.0}),  # garbage field
    (["ONT", "CLN", "NTS"], 1000.0, {}, {"ONT": 400.0, "CLN": 300.0, "NTS": 300.0}),
])
def test_compound_split_conserves_area(codes, area, known, expected):
    split = split_compound(codes, area, known, first_use_m2=400.0)
    assert split == pytest.approx(expected)
    assert sum(split.values()) == pytest.approx(area, rel=1e-12)


def test_ingest_frame_quarantines_with_reasons_and_loses_nothing():
    bowtie = shapely.Polygon([(450_000, 2_417_000), (450_100, 2_417_100),
                              (450_100, 2_417_000), (450_000, 2_417_100)])
    frame = source_frame([
        {"MAXA": "6253", "KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": square(0, 0)},
        {"MAXA": "6253", "KHLOAIDAT": "ont+cln", "DOITUONG": "GDC", "DT_ONT": 1000.0, "geometry": square(100, 0)},
        {"MAXA": "6253", "KHLOAIDAT": "", "DOITUONG": "GDC", "geometry": square(200, 0)},
        {"MAXA": "6253", "KHLOAIDAT": "XYZ", "DOITUONG": "GDC", "geometry": square(300, 0)},
        {"MAXA": "6253", "KHLOAIDAT": "LUC", "DOITUONG": "ZZZ", "geometry": square(400, 0)},
        {"MAXA": "6253", "KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": shapely.Point(450_000, 2_417_000)},
        {"MAXA": "6253", "KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": None},
        {"MAXA": "6253", "KHLOAIDAT": "RST", "DOITUONG": "UBQ", "geometry": bowtie},
    ])
    parcels, quarantine, report = ingest_frame(
        frame, source_file="t.shp", source_crs=CRS.from_epsg(9215), settings=Settings(province=LANG_SON))

    assert list(parcels["landuse"]) == ["LUC", "ONT", "RST"]
    assert (parcels["commune_code"] == "06253").all()
    assert json.loads(parcels.loc[1, "uses"]) == {"ONT": 1000.0, "CLN": 9000.0}
    assert parcels.loc[1, "landuse_raw"] == "ont+cln"
    assert parcels.loc[2, "area_m2"] == pytest.approx(5000.0)  # bow-tie repaired: two triangles
    reasons = list(quarantine["reason"])
    assert reasons == [
        "blank land-use code",
        "land-use code 'XYZ' is not a Circular 27/2018 code nor a known legacy code",
        "user/manager object code 'ZZZ' is not in the Circular 27/2018 list",
        "not a polygon (Point)",
        "empty geometry",
    ]
    assert list(quarantine["source_fid"]) == [2, 3, 4, 5, 6]
    assert report.features_in == report.features_out + report.features_quarantined == 8
    assert report.area_in_m2 == pytest.approx(report.area_out_m2 + report.area_quarantined_m2, rel=1e-12)
    assert report.area_quarantined_m2 == pytest.approx(30_000.0)


def test_wgs84_input_lands_on_the_control_point():
    lon, lat = 106.7613, 21.8537
    tri = shapely.Polygon([(lon, lat), (lon + 0.001, lat), (lon, lat + 0.001)])
    frame = source_frame([{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": tri}], crs="EPSG:4326")
    parcels, _, _ = ingest_frame(frame, source_file="t.geojson", source_crs=CRS.from_epsg(4326),
                                 settings=Settings(province=LANG_SON), rules=Rules(commune_code="06253"))
    x, y = shapely.get_coordinates(parcels.geometry.values[0])[0]
    assert abs(x - 449_293.705) < 1e-3 and abs(y - 2_417_549.760) < 1e-3
    assert parcels.crs.to_epsg() == 9215


def test_cli_ingest_coordinates_outside_every_zone_is_a_clear_error(tmp_path):
    frame = source_frame([{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": shapely.box(10, 10, 20, 20)}], crs=None)
    path = tmp_path / "thon ban.shp"
    frame.to_file(path)
    result = CliRunner().invoke(cli, ["ingest", str(path), "--province", "lang son",
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code != 0
    assert "thon ban.shp" in result.output and "fit no coordinate system" in result.output
    assert "X 10.000…20.000" in result.output and "crs in a [[sources]] entry" in result.output
    assert "Traceback" not in result.output


def test_cli_ingest_unknown_commune_is_named_after_the_file(tmp_path):
    frame = source_frame([{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": square(0, 0)}])
    frame.to_file(tmp_path / "xa_moi.gpkg")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "xa_moi.gpkg"), "--province", "20",
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/unknown_xa_moi.parquet")
    assert parcels["commune_code"].tolist() == ["file:xa_moi"]
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert "no commune code known" in report["files"][0]["warnings"][0]
    for key in ("features_in", "features_out", "features_quarantined", "area_out_m2", "area_quarantined_m2"):
        assert key in report
    for key in ("path", "driver", "encoding", "crs_declared", "crs_chosen", "crs_reason"):
        assert key in report["files"][0]


def test_cli_ingest_commune_code_option(tmp_path):
    frame = source_frame([{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": square(0, 0)}])
    frame.to_file(tmp_path / "a.gpkg")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path), "--province", "Lạng Sơn",
                                      "--commune-code", "6253", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert gpd.read_parquet(tmp_path / "w/parcels/06253.parquet").area.sum() == pytest.approx(10_000.0)


def test_cli_unknown_province_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path), "--province", "Atlantis"])
    assert result.exit_code == 2 and "--province" in result.output


def test_review_rows_are_read_only_for_a_commune_with_parcels_to_review(tmp_path):
    """A commune with nothing quarantined, inferred or refined is skipped from two
    columns (no review workbook, no rows in the GeoPackage's review layer); a
    flagged parcel or a quarantined one is listed, also when every parcel of
    the commune was quarantined (no parcel file)."""
    from pipeline.ingest.owners import FROM_FILE, FROM_NAME
    from pipeline.ingest.review import QUARANTINED, review_frame, review_inputs
    from pipeline.io import write_geoparquet
    from pipeline.schemas import PARCEL_COLUMNS

    parcels = gpd.GeoDataFrame({c: [None, None] for c in PARCEL_COLUMNS} | {
        "commune_code": ["06319"] * 2, "sheet_no": ["1", "1"], "parcel_no": ["1", "2"], "landuse": ["LUC", "ONT"],
        "owner_type": ["GDC", "GDC"], "owner_source": [FROM_FILE, FROM_FILE], "area_m2": [1e4, 1e4],
        "source_file": ["a.shp"] * 2, "source_fid": [0, 1]}, geometry=[square(0, 0), square(100, 0)], crs=3405)
    quarantine = tmp_path / "q.parquet"
    assert review_inputs(write_geoparquet(tmp_path / "p.parquet", parcels), quarantine) is None
    parcels.loc[1, "owner_source"] = FROM_NAME
    rows = review_frame(*review_inputs(write_geoparquet(tmp_path / "p.parquet", parcels), quarantine))
    assert rows["parcel_no"].tolist() == ["2"]
    write_geoparquet(quarantine, parcels.iloc[:1].assign(reason="no-geometry"))
    rows = review_frame(*review_inputs(tmp_path / "none.parquet", quarantine))
    assert rows["parcel_no"].tolist() == ["1"] and rows["status"].tolist() == [QUARANTINED]


def test_the_review_workbook_wraps_its_reasons_in_rows_that_show_them(tmp_path):
    """A reason longer than its column («Căn cứ, lý do») is wrapped in a row tall
    enough for every line, as are the headers; printed, nothing spills into the
    officer's columns or is cut; pages are numbered. Areas show their thousands,
    sheet and parcel numbers are numbers."""
    import openpyxl

    from pipeline.ingest.corrections import REVIEW_HEADER_ROW
    from pipeline.ingest.owners import FROM_NAME
    from pipeline.ingest.review import COLUMNS, TEXT_PT, review_rows, write_review_workbook
    from pipeline.measure import column_width_pt, lines_needed, row_height_pt
    from pipeline.schemas import PARCEL_COLUMNS

    parcels = gpd.GeoDataFrame({c: [None, None] for c in PARCEL_COLUMNS} | {
        "commune_code": ["06319"] * 2, "sheet_no": ["1", "05"], "parcel_no": ["1", "12"], "landuse": ["LUC", "ONT"],
        "owner_type": ["CDS", "UBQ"], "owner_source": [FROM_NAME, FROM_NAME],
        "owner_rule": ["co_so_ton_giao_cong_dong", None], "area_m2": [1e4, 1e4], "source_file": ["a.shp"] * 2,
        "source_fid": [0, 1]}, geometry=[square(0, 0), square(100, 0)], crs=3405)
    rows = review_rows(parcels, parcels.iloc[:0].assign(reason=""))
    sheet = openpyxl.load_workbook(write_review_workbook(tmp_path / "r.xlsx", rows, "Xã Văn Quan")).active
    why = [h for h, _, _ in COLUMNS].index("Căn cứ, lý do") + 1
    width = column_width_pt(COLUMNS[why - 1][1])
    for r in range(REVIEW_HEADER_ROW + 1, REVIEW_HEADER_ROW + 1 + len(rows)):
        cell = sheet.cell(r, why)
        assert cell.alignment.wrap_text and cell.alignment.vertical == "top"
        assert sheet.row_dimensions[r].height >= row_height_pt(lines_needed(cell.value, TEXT_PT, width), TEXT_PT)
    assert lines_needed(sheet.cell(REVIEW_HEADER_ROW + 1, why).value, TEXT_PT, width) >= 2  # wider than its column
    numbers = [[sheet.cell(r, c).value for c in (2, 3)] for r in (REVIEW_HEADER_ROW + 1, REVIEW_HEADER_ROW + 2)]
    assert numbers == [[1, 1], ["05", 12]]  # numbers Excel sorts as numbers; "05" as the file gave it
    area = [h for h, _, _ in COLUMNS].index("Diện tích (m²)") + 1
    assert sheet.cell(REVIEW_HEADER_ROW + 1, area).number_format == "#,##0.0"  # 10 000,0 in Vietnamese Excel
    tallest = max(lines_needed(h, TEXT_PT, column_width_pt(w), True) for h, w, _ in COLUMNS)
    assert tallest >= 3 and sheet.row_dimensions[REVIEW_HEADER_ROW].height >= row_height_pt(tallest, TEXT_PT)
    assert sheet.oddFooter.center.text == "Trang &P/&N"  # page 2 of 5, a list printed over pages


@pytest.mark.parametrize("layout", ["a district's file", "a file per commune"])
def test_a_file_exported_again_rewrites_only_the_commune_whose_parcels_changed(tmp_path, layout):
    """Two communes, in one file (a district's export) or in a file each, all
    exported again with one parcel of commune 06274 recoded: only 06274's
    parcels are written again; 06253's file and its review workbook keep their
    time (its own file exported again as it was, a new date in its .dbf), so
    the later stages leave it alone."""
    def export(codes: list[str]) -> None:
        rows = [{"MAXA": code, "KHLOAIDAT": use, "DOITUONG": "GDC", "geometry": square(100 * x, 0)}
                for x, (code, use) in enumerate(zip(["06253", "06253", "06274", "06274"], codes, strict=True))]
        rows[1]["DOITUONG"] = None  # its owner inferred: 06253 has a parcel to review
        frame = source_frame(rows).drop(columns="source_fid")
        files = {"huyen_van_quan": frame} if layout == "a district's file" else dict(list(frame.groupby("MAXA")))
        for name, part in files.items():
            part.to_file(tmp_path / "raw" / f"{name}.shp", encoding="UTF-8")

    (tmp_path / "raw").mkdir()
    work = tmp_path / "work"
    ingest = ["-v", "ingest", str(tmp_path / "raw"), "--province", "Lạng Sơn", "--workdir", str(work)]
    export(["LUC", "CLN", "LUC", "CLN"])
    assert CliRunner().invoke(cli, ingest).exit_code == 0
    book = work / "reports/review/06253.xlsx"
    before = {p.name: p.stat().st_mtime_ns for p in [*(work / "parcels").iterdir(), book]}
    export(["LUC", "CLN", "LUC", "ONT"])
    result = CliRunner().invoke(cli, ingest)
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_mtime_ns for p in [*(work / "parcels").iterdir(), book]}
    assert after["06253.parquet"] == before["06253.parquet"] and after["06274.parquet"] != before["06274.parquet"]
    assert after["06253.xlsx"] == before["06253.xlsx"]  # its review workbook too, read by the package stage
    assert gpd.read_parquet(work / "parcels/06274.parquet")["landuse"].tolist() == ["LUC", "ONT"]
    assert "1 communes rewritten" in result.output


def test_a_correction_by_number_reads_again_only_the_files_of_its_commune(tmp_path):
    """A row added to the corrections list for a parcel of 06256 (by commune,
    sheet and parcel number) reads again 06256's file, not 06253's, whose
    parcels keep their time; a row that names no commune reads both again.
    Before, every file was read and every commune redone."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for code, x in (("06253", 0), ("06256", 1000)):
        gpd.GeoDataFrame({"MAXA": [code] * 2, "SHBANDO": [5, 5], "SHTHUA": [12, 13], "KHLOAIDAT": ["LUC", "LUC"]},
                         geometry=[square(x), square(x + 100)], crs="EPSG:9215").to_file(raw / f"TD_{code}.shp")
    fixes = tmp_path / "sua.csv"
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                      '[review]\ncorrections = "sua.csv"\n', encoding="utf-8")

    def ingest(rows: str) -> tuple[str, dict[str, str]]:
        fixes.write_text("ma_xa,to,thua,ma_loai_dat_dung\n" + rows, encoding="utf-8")
        result = CliRunner().invoke(cli, ["-v", "ingest", "--config", str(config)])
        assert result.exit_code == 0, result.output
        landuse = {code: "/".join(gpd.read_parquet(tmp_path / f"work/parcels/{code}.parquet")["landuse"])
                   for code in ("06253", "06256")}
        return result.output, landuse

    ingest("06253,5,12,ONT\n")
    before = (tmp_path / "work/parcels/06253.parquet").stat().st_mtime_ns
    said, landuse = ingest("06253,5,12,ONT\n06256,5,13,CLN\n")
    assert "2 files (1 read, 1 unchanged" in said and landuse == {"06253": "ONT/LUC", "06256": "LUC/CLN"}
    assert (tmp_path / "work/parcels/06253.parquet").stat().st_mtime_ns == before
    said, landuse = ingest("06253,5,12,ONT\n06256,5,13,CLN\n,5,12,BHK\n")  # sheet 5 parcel 12 of every commune
    assert "2 files (2 read, 0 unchanged" in said and landuse == {"06253": "ONT/LUC", "06256": "BHK/CLN"}


def test_a_correction_by_number_reads_again_only_the_files_holding_that_number(tmp_path):
    """A commune in a file per map sheet (as FAMIS exports them) and a row of
    the corrections list for a parcel of sheet 6: only sheet 6's file is read
    again; a row without a commune, only the file that holds its number; a row
    whose number no file holds, none (and it is told, as before)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, code, sheet, x in (("06253_to5", "06253", 5, 0), ("06253_to6", "06253", 6, 300),
                                 ("06256_to5", "06256", 5, 1000)):
        gpd.GeoDataFrame({"MAXA": [code] * 2, "SHBANDO": [sheet] * 2, "SHTHUA": [12, 14 if code == "06256" else 13],
                          "KHLOAIDAT": ["LUC", "LUC"]},
                         geometry=[square(x), square(x + 100)], crs="EPSG:9215").to_file(raw / f"TD_{name}.shp")
    fixes = tmp_path / "sua.csv"
    (tmp_path / "inventory.toml").write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                                             '[review]\ncorrections = "sua.csv"\n', encoding="utf-8")

    def ingest(rows: str) -> tuple[str, str]:
        fixes.write_text("ma_xa,to,thua,ma_loai_dat_dung\n" + rows, encoding="utf-8")
        result = CliRunner().invoke(cli, ["-v", "ingest", "--config", str(tmp_path / "inventory.toml")])
        assert result.exit_code == 0, result.output
        parcels = pd.concat(gpd.read_parquet(f) for f in sorted((tmp_path / "work/parcels").glob("*.parquet")))
        return result.output, " ".join(f"{c}/{s}/{p}:{u}" for c, s, p, u in parcels[
            ["commune_code", "sheet_no", "parcel_no", "landuse"]].astype(str).itertuples(index=False))

    said, _ = ingest("")
    assert "3 files (3 read, 0 unchanged" in said
    said, landuse = ingest("06253,6,12,ONT\n")
    assert "3 files (1 read, 2 unchanged" in said and "06253/6/12:ONT" in landuse and "06253/5/12:LUC" in landuse
    said, landuse = ingest("06253,6,12,ONT\n,5,14,CLN\n")  # only 06256 has a parcel 14 on a sheet 5
    assert "3 files (1 read, 2 unchanged" in said and "06256/5/14:CLN" in landuse, said
    said, _ = ingest("06253,6,12,ONT\n,5,14,CLN\n,7,1,BHK\n")  # no parcel 1 on a sheet 7
    assert "3 files (0 read, 3 unchanged" in said and "row 4 names no parcel read" in said, said
    said, landuse = ingest("06253,6,12,ONT\n,5,14,CLN\n,7,1,BHK\n,5,12,BHK\n")  # sheet 5 parcel 12 of both communes
    assert "3 files (2 read, 1 unchanged" in said and "06253/5/12:BHK" in landuse and "06256/5/12:BHK" in landuse
