"""Real cadastral exports in: columns by meaning, names and cadastral codes,
objects inferred, group codes refined, the officer's corrections — each rule
on tiny inline frames (issue 14)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from pyproj import CRS

from pipeline.cli import cli
from pipeline.config import Forest, Refine, Settings, SourceOverride, settings_from_dict
from pipeline.errors import ConfigError
from pipeline.ingest import ingest_frame
from pipeline.ingest.codes import normalise_landuse
from pipeline.ingest.columns import map_columns
from pipeline.ingest.core import Rules
from pipeline.ingest.corrections import CorrectionError
from pipeline.ingest.names import codes_of_names
from pipeline.ingest.owners import infer_one, rule_text
from pipeline.ingest.refine import ForestMap, refine_by_forest_map
from pipeline.ingest.values import parse_number
from pipeline.reference import province
from tests.helpers import X0, Y0, source_frame, square

LANG_SON = province("Lạng Sơn")
SETTINGS = Settings(province=LANG_SON)


def _ingest(rows, settings=SETTINGS, **rules):
    return ingest_frame(source_frame(rows), source_file="x.geojson", source_crs=CRS.from_epsg(9215),
                        settings=settings, rules=Rules(commune_code="06253", **rules))


# ------------------------------------------------------------------ columns


@pytest.mark.parametrize("names, field", [
    (["Loại Đất", "loai_dat", "LOAIDAT", "mucDichSuDung", "Loaidat"], "landuse"),
    (["Số thửa", "soThua", "So_thua", "SHTHUA", "sothua"], "parcel_no"),
    (["Diện tích", "Dientich", "DIENTICH", "dienTich"], "area_recorded"),
    (["TENCHU", "Chu_SD", "CSD", "Tên Chủ", "tenChu"], "owner_name"),
], ids=["landuse", "parcel", "area", "owner name"])
def test_columns_match_whatever_their_case_diacritics_and_underscores(names, field):
    for name in names:
        assert map_columns(pd.DataFrame({name: ["x"], "other": ["y"]})).get(field) == name, name


def test_look_alikes_are_not_the_land_use():
    """A map-type column (loai_BD) and price columns named after codes are left alone;
    the column holding codes is found by its values and the report says so."""
    parcels, _, report = _ingest([
        {"loai_BD": "Đất lâm nghiệp", "ODT": "960000", "CLN": "100000", "xyz": "ONT", "geometry": square(0)},
        {"loai_BD": "Đất lâm nghiệp", "ODT": "960000", "CLN": "100000", "xyz": "CLN", "geometry": square(100)},
    ])
    assert list(parcels["landuse"]) == ["ONT", "CLN"]
    assert any("column 'xyz'" in r and "100%" in r for r in report.repairs)
    assert {"ODT", "CLN", "loai_BD"} <= set(parcels.columns)  # kept as the source's other attributes


# ----------------------------------------------------------- land-use values


@pytest.mark.parametrize("value, code", [
    ("ODT +CLN", "ODT+CLN"), (" ont;cln;nts ", "ONT+CLN+NTS"), ("odt, cln", "ODT+CLN"), ("        GT", "GT"),
    ("Đất ở tại đô thị", "ODT"), ("ĐẤT TRỒNG CÂY LÂU NĂM", "CLN"), ("Đất nuôi trồng thuỷ sản", "NTS"),
    ("Đất nuôi trồng thủy sản", "NTS"), ("Đất ở tại đô thị, Đất chuyên trồng lúa nước", "ODT+LUC"),
    ("Đất làm nghĩa trang, nghĩa địa, nhà tang lễ, nhà hỏa táng", "NTD"), ("N/A", ""), ("", ""),
    # typed by hand: a stray full stop, comma or star, quotes, brackets, a gloss, a hyphen between two codes
    ("LUC.", "LUC"), ("ONT,", "ONT"), ("CLN*", "CLN"), ('"ONT"', "ONT"), ("(CLN)", "CLN"), ("ONT+", "ONT"),
    ("ONT (đất ở)", "ONT"), ("ONT-CLN", "ONT+CLN"), ("Lúa.", "LUA"), ("( )", ""), ("LUC1", "LUC1"),
    ("ONT CLN", "ONT+CLN"), ("odt  cln nts", "ODT+CLN+NTS"),  # two codes a space apart
])
def test_codes_and_names_are_read_as_codes(value, code):
    assert normalise_landuse(value)[0] == code


def test_a_personal_name_is_not_a_land_use():
    assert codes_of_names("Nguyễn Văn An") is None


def test_spreadsheet_dates_and_vietnamese_decimals_in_the_recorded_area():
    assert parse_number("01/05/1783") == (1783.5, True)
    assert parse_number("1.783,5") == (1783.5, False) and parse_number("1783,5") == (1783.5, False)
    assert parse_number("abc")[0] != parse_number("abc")[0]  # NaN: words are not numbers
    parcels, _, report = _ingest([{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "DIENTICH": "01/05/1783",
                                   "geometry": square(0, 0, 42.23)}])
    assert parcels["area_recorded"].iat[0] == 1783.5 and not isinstance(parcels["flags"].iat[0], str)
    assert any("spreadsheet dates" in r for r in report.repairs)


# ------------------------------------------------------------------ objects


@pytest.mark.parametrize("name, landuse, owner, source", [
    ("Nguyễn Văn An", "ONT", "GDC", "name"), ("L", "ODT", "GDC", "name"),
    ("UBND thị trấn", "CLN", "UBQ", "name"), ("Đất UBND xã quản lý", "BHK", "UBQ", "name"),
    ("UBND xã Yên Phúc", "TSC", "TCN", "name"), ("UBND huyện Văn Quan", "TSC", "TCN", "name"),
    ("Công ty CP Lâm nghiệp Lạng Sơn", "RST", "TKT", "name"), ("HTX Nông nghiệp Hòa Bình", "LUC", "TKT", "name"),
    ("Trường Tiểu học Hòa Bình", "DGD", "TSN", "name"), ("Trạm y tế xã", "DYT", "TSN", "name"),
    ("Trường Thị Được", "CLN", "GDC", "name"), ("Công an huyện", "CAN", "TCN", "name"),
    ("Chùa Tân Đoàn", "TON", "CDS", "name"), ("Nhà văn hóa thôn Nà Pàn", "DSH", "CDS", "name"),
    ("Đình Nà Pàn", "TIN", "CDS", "name"), ("Đinh Văn Hùng", "LUC", "GDC", "name"),
    ("N/A", "DGT", "UBQ", "landuse"), ("", "SON", "UBQ", "landuse"), ("(Đang cập nhật)", "NTD", "UBQ", "landuse"),
    ("Lương Văn Tâm", "DGT", "UBQ", "landuse"),  # a road is never a household's
    ("", "DGD", "TSN", "landuse"), ("", "LUC", "GDC", "default"),
])
def test_owner_rules(name, landuse, owner, source):
    from pipeline.ingest.owners import clean_owner_name

    found, how, _ = infer_one(clean_owner_name(name), landuse, None)
    assert (found, how) == (owner, source)


def test_objects_inferred_in_a_file_without_an_object_column():
    parcels, _, report = _ingest([
        {"KHLOAIDAT": "ONT", "TENCHU": "Hoàng Văn Tâm", "geometry": square(0)},
        {"KHLOAIDAT": "DGT", "TENCHU": "N/A", "geometry": square(100)},
        {"KHLOAIDAT": "LUC", "TENCHU": "", "geometry": square(200)},
    ], settings=Settings(province=LANG_SON), owner_default="TKT")
    assert list(parcels["owner_type"]) == ["GDC", "UBQ", "TKT"]
    assert list(parcels["owner_source"]) == ["name", "landuse", "config"]
    assert parcels["owner_name"].iat[0] == "Hoàng Văn Tâm"
    label = "Đối tượng UBQ (suy từ loại đất: " + rule_text("dat_cong_ubnd_quan_ly") + ")"
    assert report.inferred[label]["features"] == 1


def test_strict_keeps_blank_objects_in_quarantine():
    parcels, quarantine, _ = _ingest([{"KHLOAIDAT": "ONT", "TENCHU": "Hoàng Văn Tâm", "geometry": square(0)}],
                                     infer_owner=False)
    assert parcels.empty and quarantine["reason"].iat[0].startswith("blank user/manager object code")


# ---------------------------------------------------------------- refinement


def test_group_codes_refined_by_the_default_rules_and_the_config():
    rows = [{"KHLOAIDAT": code, "DOITUONG": "GDC", "geometry": square(100 * i)}
            for i, code in enumerate(["RSX", "RPH", "RDD", "HNK", "LUA", "ONT+HNK"])]
    parcels, _, _ = _ingest(rows, refine=(("HNK", "BHK"), ("LUA", "LUC"), ("RDD", "RDN"), ("RPH", "RPN"),
                                          ("RSX", "RST")))
    assert list(parcels["landuse"]) == ["RST", "RPN", "RDN", "BHK", "LUC", "ONT"]
    assert parcels["refined"].iat[0] == "RSX → RST (mặc định)"
    assert json.loads(parcels["uses"].iat[5]).keys() == {"ONT", "BHK"}
    config = settings_from_dict({"inventory": {"province": "20"}, "refine": {"rules": {"HNK": "NHK"}},
                                 "sources": [{"path": "*.shp", "refine": {"LUA": "LUK"}}]})
    from pipeline.ingest.refine import refinements

    rules = dict(refinements(config, config.override_for(__import__("pathlib").Path("a.shp"))))
    assert rules["HNK"] == "NHK" and rules["LUA"] == "LUK" and rules["RSX"] == "RST"
    with pytest.raises(ConfigError, match="RSX = 'LUC' must map a group code"):
        settings_from_dict({"inventory": {"province": "20"}, "refine": {"rules": {"RSX": "LUC"}}})


def test_the_forest_status_map_refines_and_splits():
    """A parcel straddling natural and planted forest is split; a parcel outside
    the map keeps the default; a sliver of another status is not split off."""
    parcels, _, _ = _ingest([{"KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": square(0)},
                             {"KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": square(300)},
                             {"KHLOAIDAT": "RPH", "DOITUONG": "GDC", "geometry": square(600)}],
                            refine=(("RPH", "RPN"), ("RSX", "RST")))
    statuses = gpd.GeoDataFrame({"status": ["natural", "planted"]}, crs="EPSG:9215", geometry=[
        shapely.box(X0 - 50, Y0 - 50, X0 + 60, Y0 + 150),  # the west 60 m of parcel 1
        shapely.box(X0 + 60, Y0 - 50, X0 + 200, Y0 + 150).union(shapely.box(X0 + 600, Y0, X0 + 600.5, Y0 + 100))])
    refined, split = refine_by_forest_map(parcels, ForestMap.of(statuses))
    assert split == 1 and len(refined) == 4
    first = refined[refined["source_fid"] == 0].set_index("landuse")
    assert first.loc["RSN", "area_m2"] == pytest.approx(6000) and first.loc["RST", "area_m2"] == pytest.approx(4000)
    assert first.loc["RSN", "refined"] == "RSX → RSN (theo bản đồ hiện trạng rừng)"
    assert refined.loc[refined["source_fid"] == 1, "refined"].iat[0] == "RSX → RST (mặc định)"
    third = refined[refined["source_fid"] == 2]
    # a 0.5 % sliver of another status is not split off
    assert list(third["landuse"]) == ["RPN"] and third["area_m2"].iat[0] == pytest.approx(10_000)
    assert refined["area_m2"].sum() == pytest.approx(30_000)


def test_the_forest_status_map_leaves_the_officers_correction_alone():
    """A forest parcel the officer coded in the review workbook keeps that code
    over the forest status map; its neighbour, coded by the default rule, is refined."""
    parcels, _, _ = _ingest([{"SHBANDO": 1, "SHTHUA": 1, "KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": square(0)},
                             {"SHBANDO": 1, "SHTHUA": 2, "KHLOAIDAT": "RSX", "DOITUONG": "GDC",
                              "geometry": square(100)}],
                            refine=(("RSX", "RST"),),
                            corrections=pd.DataFrame({"source_fid": [""], "sheet_no": ["1"], "parcel_no": ["1"],
                                                      "landuse": ["RSN"], "owner_type": [""]}))
    assert list(parcels["refined"]) == ["sửa theo cán bộ", "RSX → RST (mặc định)"]
    statuses = gpd.GeoDataFrame({"status": ["planted"]}, crs="EPSG:9215", geometry=[square(-50, -50, 300)])
    refined, split = refine_by_forest_map(parcels, ForestMap.of(statuses))
    assert split == 0 and list(refined["landuse"]) == ["RSN", "RST"]
    assert list(refined["refined"]) == ["sửa theo cán bộ", "RSX → RST (theo bản đồ hiện trạng rừng)"]


def test_a_forest_parcel_the_map_does_not_split_keeps_its_geometry_as_read():
    """A parcel inside one status whose line the forest map traced along the
    parcel's by another hand (a few micrometres off), and one with a sliver of
    another status joined back, are not split: each keeps its own vertices and
    area, not an overlay's (new vertices where the lines cross, needles)."""
    inside = shapely.Polygon([(X0, Y0), (X0 + 83.17, Y0 + 11.3), (X0 + 97.4, Y0 + 71.9), (X0 + 12.6, Y0 + 88.05)])
    straddling = shapely.affinity.translate(inside, 300)
    parcels, _, _ = _ingest([{"KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": inside},
                             {"KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": straddling}],
                            refine=(("RSX", "RST"),))
    traced = shapely.Polygon([(x + 3e-6 * (-1) ** k, y - 2e-6 * (-1) ** k)
                              for k, (x, y) in enumerate(inside.exterior.coords[:-1])])
    corner = shapely.box(X0 + 295, Y0 - 5, X0 + 305, Y0 + 5)  # 0.2 % of the second parcel
    statuses = gpd.GeoDataFrame({"status": ["natural", "planted"]}, crs="EPSG:9215", geometry=[
        shapely.union(traced, straddling.buffer(1).difference(corner)), corner])
    refined, split = refine_by_forest_map(parcels, ForestMap.of(statuses))
    assert split == 0 and list(refined["landuse"]) == ["RSN", "RSN"]
    for k, (out, read) in enumerate(zip(refined.geometry, [inside, straddling], strict=True)):
        assert shapely.equals_exact(out, read, tolerance=0), k
    assert list(refined["area_m2"]) == [inside.area, straddling.area]
    # a parcel of no area (its own checks quarantine it elsewhere) is not lost here
    flat = parcels.iloc[:1].set_geometry([shapely.Polygon([(X0, Y0), (X0 + 50, Y0), (X0 + 100, Y0)])])
    assert len(refine_by_forest_map(flat, ForestMap.of(statuses))[0]) == 1


def test_the_forest_status_map_is_overlaid_lot_by_lot():
    """The map's lots are not merged by status first (a province's forest would
    be overlaid with every parcel): a parcel across two lots of one status
    stays whole, as read; one across lots of two statuses splits exactly as
    with the lots merged by status."""
    across_one = shapely.box(X0 + 50, Y0 + 10, X0 + 150, Y0 + 90)
    across_two = shapely.box(X0 + 150, Y0 + 110, X0 + 250, Y0 + 190)
    parcels, _, _ = _ingest([{"KHLOAIDAT": "RSX", "DOITUONG": "GDC", "geometry": g} for g in (across_one, across_two)],
                            refine=(("RSX", "RST"),))
    lots = gpd.GeoDataFrame({"status": ["natural", "natural", "natural", "planted"]}, crs="EPSG:9215", geometry=[
        shapely.box(X0 + x, Y0 + y, X0 + x + 100, Y0 + y + 100) for x, y in [(0, 0), (100, 0), (100, 100), (200, 100)]])
    refined, split = refine_by_forest_map(parcels, ForestMap.of(lots))
    assert split == 1 and list(refined["landuse"]) == ["RSN", "RSN", "RST"]
    assert shapely.equals_exact(refined.geometry.iat[0], across_one, tolerance=0)
    assert list(refined["area_m2"]) == pytest.approx([8000, 4000, 4000])
    merged, _ = refine_by_forest_map(parcels, ForestMap.of(lots.dissolve("status").reset_index()))
    assert list(merged["landuse"]) == list(refined["landuse"])
    assert shapely.equals(merged.geometry.values, refined.geometry.values).all()


# --------------------------------------------------------------- corrections


def _export(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9215")
    pyogrio.write_dataframe(frame, folder / "xa.gpkg", layer="thua")
    return folder / "xa.gpkg"


def _config(tmp_path, extra=""):
    path = tmp_path / "inventory.toml"
    path.write_text(f'[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                    f'[[sources]]\npath = "*"\ncommune_code = "06253"\n{extra}', encoding="utf-8")
    return path


ROWS = [{"soTo": 1, "soThua": i + 1, "mucDichSuDung": code, "tenChu": name, "geometry": square(100 * i)}
        for i, (code, name) in enumerate([("LUA", "Hoàng Văn Tâm"), ("", "Nông Thị Yến"), ("DGT", "")])]


def _ingest_args(tmp_path) -> list[str]:
    return ["ingest", str(tmp_path / "raw"), "--province", "20", "--config", str(_config(tmp_path)),
            "--workdir", str(tmp_path / "work")]


def _first_review(tmp_path, args: list[str]):
    """ROWS exported and run once with ``args``: the commune's review workbook (path, book, first sheet, header)."""
    _export(tmp_path / "raw", ROWS)
    assert CliRunner().invoke(cli, args).exit_code == 0
    book_path = tmp_path / "work/reports/review/06253.xlsx"
    book = openpyxl.load_workbook(book_path)
    sheet = book.worksheets[0]
    return book_path, book, sheet, [c.value for c in sheet[4]]


def test_corrections_round_trip(tmp_path):
    """The review workbook lists the quarantined and inferred parcels; the
    officer fills it in; the next run applies it and keeps showing it, with
    the officer's notes on their rows (they were lost when the commune's
    workbook was written again)."""
    runner = CliRunner()
    args = _ingest_args(tmp_path)
    book_path, book, sheet, header = _first_review(tmp_path, args)
    rows = {sheet.cell(r, 3).value: r for r in range(5, sheet.max_row + 1)}
    assert set(rows) == {1, 2, 3}  # every quarantined and inferred parcel, numbered as numbers (Excel sorts them)
    assert sheet.cell(rows[2], header.index("Tình trạng") + 1).value == "Cách ly"
    sheet.cell(rows[2], header.index("Mã loại đất đúng") + 1, "CLN")
    sheet.cell(rows[1], header.index("Đối tượng đúng") + 1, "TKT")
    note = header.index("Ghi chú của cán bộ") + 1
    sheet.cell(rows[2], note, "Đã kiểm tra thực địa: trồng điều")
    sheet.cell(rows[3], note, "Đường giao thông, giữ nguyên")  # a note only: nothing to correct
    book.save(book_path)
    raw_before = (tmp_path / "raw/xa.gpkg").read_bytes()
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").set_index("parcel_no")
    assert parcels.at["2", "landuse"] == "CLN" and parcels.at["2", "refined"] == "sửa theo cán bộ"
    assert parcels.at["1", "owner_type"] == "TKT" and parcels.at["1", "owner_source"] == "correction"
    assert (tmp_path / "raw/xa.gpkg").read_bytes() == raw_before  # the source is never touched
    again = openpyxl.load_workbook(book_path).worksheets[0]
    fixed = {again.cell(r, 3).value: again.cell(r, header.index("Mã loại đất đúng") + 1).value
             for r in range(5, again.max_row + 1)}
    assert fixed[2] == "CLN"  # the correction stays visible and editable
    notes = {again.cell(r, 3).value: again.cell(r, note).value for r in range(5, again.max_row + 1)}
    assert notes == {1: None, 2: "Đã kiểm tra thực địa: trồng điều", 3: "Đường giao thông, giữ nguyên"}
    assert "06253.xlsx" in (tmp_path / "work/reports/review/corrections.csv").read_text(encoding="utf-8-sig")


def test_a_review_workbook_with_notes_and_nothing_left_to_review_is_kept_aside(tmp_path):
    """The officer writes a note in the review workbook; the commune's file is
    then exported again with every issue fixed (detailed codes, the objects
    given). Nothing is left to review: the workbook was removed with its notes;
    now it is kept under ``da_ra_soat/``, where it is not read as corrections."""
    from pipeline.ingest.corrections import officer_notes

    args = _ingest_args(tmp_path)
    book_path, book, sheet, header = _first_review(tmp_path, args)
    sheet.cell(5, header.index("Ghi chú của cán bộ") + 1, "Đã đối chiếu hồ sơ địa chính")
    book.save(book_path)
    fixed = [{**row, "mucDichSuDung": code, "MADT": owner}
             for row, code, owner in zip(ROWS, ["LUC", "CLN", "DGT"], ["GDC", "GDC", "UBQ"], strict=True)]
    (tmp_path / "raw/xa.gpkg").unlink()
    _export(tmp_path / "raw", fixed)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    [kept] = (tmp_path / "work/reports/review/da_ra_soat").glob("06253_*.xlsx")
    assert not book_path.exists() and list(officer_notes(kept).values()) == ["Đã đối chiếu hồ sơ địa chính"]
    assert f"sổ rà soát có ghi chú của cán bộ nên được giữ lại thành {kept}" in result.output


def test_notes_on_parcels_that_leave_the_review_workbook_are_kept_with_the_workbook_as_it_was(tmp_path):
    """The officer writes notes on parcels 1 and 2; the commune's file is then
    exported again with parcel 1 fixed. The workbook written again lists
    parcels 2 and 3 only: parcel 1's note went with its row; now the workbook
    as it was is kept under ``da_ra_soat/`` first, and the console says so."""
    from pipeline.ingest.corrections import officer_notes

    args = _ingest_args(tmp_path)
    book_path, book, sheet, header = _first_review(tmp_path, args)
    parcel, note = header.index("Thửa") + 1, header.index("Ghi chú của cán bộ") + 1
    written = {"1": "Đã đối chiếu hồ sơ địa chính", "2": "Chờ đo đạc lại"}
    for r in range(5, sheet.max_row + 1):
        sheet.cell(r, note, written.get(str(sheet.cell(r, parcel).value)))
    book.save(book_path)
    (tmp_path / "raw/xa.gpkg").unlink()
    _export(tmp_path / "raw", [{**ROWS[0], "mucDichSuDung": "LUC", "MADT": "GDC"}, *ROWS[1:]])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    [kept] = (tmp_path / "work/reports/review/da_ra_soat").glob("06253_*.xlsx")
    assert sorted(officer_notes(kept).values()) == sorted(written.values())
    again = openpyxl.load_workbook(book_path).worksheets[0]
    notes = {str(again.cell(r, parcel).value): again.cell(r, note).value for r in range(5, again.max_row + 1)}
    assert notes == {"2": "Chờ đo đạc lại", "3": None}
    assert f"1 ghi chú của cán bộ thuộc các thửa không còn cần rà soát (tệp của xã đã được xuất lại): sổ rà soát " \
           f"như trước khi lập lại được giữ lại thành {kept}" in result.output
    assert "ghi chú" not in CliRunner().invoke(cli, args).output  # said once: the new workbook keeps no such note


def test_the_officers_notes_reach_the_review_layer_of_the_geopackage(tmp_path):
    """A note written in the review workbook and saved, nothing else changed:
    the next run writes it on its parcel in the GeoPackage's ``review`` layer,
    where the planner sees it in QGIS (the layer's column was always empty)."""
    args = ["inventory", "--config", str(_config(tmp_path)), "--scheduler", "sync"]
    book_path, book, sheet, header = _first_review(tmp_path, args)
    work = tmp_path / "work"
    parcel, note = header.index("Thửa") + 1, header.index("Ghi chú của cán bộ") + 1
    [row] = [r for r in range(5, sheet.max_row + 1) if str(sheet.cell(r, parcel).value) == "2"]
    sheet.cell(row, note, "Đất trống, chờ xác minh mục đích")
    book.save(book_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    review = pyogrio.read_dataframe(next(work.glob("*.gpkg")), layer="review", read_geometry=False)
    assert review.set_index("parcel_no")["note"].to_dict() == {"1": "", "2": "Đất trống, chờ xác minh mục đích",
                                                               "3": ""}


def test_a_workbook_open_in_excel_leaves_its_owner_file_which_is_not_read_and_a_broken_one_is_named(tmp_path):
    _export(tmp_path / "raw", ROWS)
    args = _ingest_args(tmp_path)
    assert CliRunner().invoke(cli, args).exit_code == 0
    review = tmp_path / "work/reports/review"
    (review / "~$06253.xlsx").write_bytes(b"\x0bcan bo dia chinh" + b" " * 100)  # Excel's, while 06253.xlsx is open

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output  # was an internal error (BadZipFile)

    (review / "ghi_chu.xlsx").write_text("not a workbook", encoding="utf-8")
    broken = CliRunner().invoke(cli, args)
    assert broken.exit_code == 1 and "ghi_chu.xlsx: không phải sổ Excel lưu dạng .xlsx" in broken.output


def test_a_correction_with_an_unknown_code_names_the_row(tmp_path):
    _export(tmp_path / "raw", ROWS)
    (tmp_path / "corrections.csv").write_text("to,thua,ma_loai_dat_dung\n1,2,XYZ\n", encoding="utf-8")
    config = _config(tmp_path, '[review]\ncorrections = "corrections.csv"\n')
    result = CliRunner().invoke(cli, ["inventory", "--config", str(config), "--scheduler", "sync"])
    assert result.exit_code == 1 and "corrections.csv row 2" in result.output and "'XYZ'" in result.output


def test_corrections_by_sheet_and_parcel_from_a_csv(tmp_path):
    _export(tmp_path / "raw", ROWS)
    (tmp_path / "corrections.csv").write_text("to,thua,ma_loai_dat_dung,doi_tuong_dung\n1,2,BHK,GDC\n",
                                              encoding="utf-8")
    config = _config(tmp_path, '[review]\ncorrections = "corrections.csv"\n')
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "raw"), "--province", "20", "--config", str(config),
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").set_index("parcel_no")
    assert parcels.at["2", "landuse"] == "BHK" and parcels.at["2", "owner_source"] == "correction"


def test_a_correction_names_its_commune_sheet_and_parcel_as_typed_and_one_naming_none_is_said(tmp_path):
    """Sheet '05' is sheet 5 and commune 6253 is 06253 (Excel drops the zeros);
    a correction of commune 06256's parcel 5/12 leaves 06253's 5/12 alone; a
    correction that names no parcel read is said, with its row."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for code, x in (("06253", 0), ("06256", 1000)):
        gpd.GeoDataFrame({"MAXA": [code] * 2, "SHBANDO": ["05", "05"], "SHTHUA": ["012", "013"],
                          "KHLOAIDAT": ["LUC", "LUC"]}, geometry=[square(x), square(x + 100)],
                         crs="EPSG:9215").to_file(raw / f"TD_{code}.shp")
    (tmp_path / "sua.csv").write_text("ma_xa;to;thua;ma_loai_dat_dung\n6253;5;12;ONT\n06256;05;13;CLN\n"
                                      "06253;7;1;BHK\n", encoding="cp1258")
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                      '[review]\ncorrections = "sua.csv"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Đã đọc 2 tệp" in result.output  # the corrections file's report is not a file read
    landuse = {code: gpd.read_parquet(tmp_path / f"work/parcels/{code}.parquet").set_index("parcel_no")["landuse"]
               for code in ("06253", "06256")}
    assert landuse["06253"].to_dict() == {"012": "ONT", "013": "LUC"}
    assert landuse["06256"].to_dict() == {"012": "LUC", "013": "CLN"}
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    said = {f["path"].rsplit("/", 1)[-1]: f["warnings"] for f in report["files"]}
    assert said["sua.csv"] == ["row 4 names no parcel read (commune/sheet/parcel 06253/7/1): check its numbers"]
    assert "Dòng 4 không ứng với thửa nào đã đọc (xã/tờ/thửa 06253/7/1)" in \
        (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    # the same again from the cache: still said, nothing more
    again = CliRunner().invoke(cli, ["ingest", "--config", str(config)])
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert again.exit_code == 0 and [f["warnings"] for f in report["files"] if f["path"].endswith("sua.csv")] == [
        said["sua.csv"]]


def test_a_correction_by_fid_follows_its_parcel_into_a_file_exported_again(tmp_path):
    """The review workbook's row gives the FID and the parcel's sheet and number;
    the commune's file is exported again and its FIDs move: the correction goes
    to parcel 1/1, not to whatever FID 0 now holds."""
    raw = tmp_path / "raw"
    raw.mkdir()

    def export(numbers: list[int]) -> None:
        gpd.GeoDataFrame({"MAXA": ["06253"] * 2, "SHBANDO": [1, 1], "SHTHUA": numbers, "KHLOAIDAT": ["LUC", "LUC"]},
                         geometry=[square(100 * (n - 1)) for n in numbers], crs="EPSG:9215").to_file(raw / "td.shp")

    (tmp_path / "sua.csv").write_text("tep_nguon,fid,to,thua,ma_loai_dat_dung\ntd.shp,0,1,1,ONT\n", encoding="utf-8")
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                      '[review]\ncorrections = "sua.csv"\n', encoding="utf-8")
    for numbers in ([1, 2], [2, 1]):  # then exported again, parcel 1 last
        export(numbers)
        result = CliRunner().invoke(cli, ["ingest", "--config", str(config)])
        assert result.exit_code == 0, result.output
        parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").set_index("parcel_no")
        assert parcels["landuse"].to_dict() == {"1": "ONT", "2": "LUC"}
        report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
        assert not any(f["path"].endswith("sua.csv") for f in report["files"])  # applied: nothing to say


# ------------------------------------------------------------ odd files read


def test_a_geojson_in_cp1258_bytes_a_field_listed_twice_and_mixed_types(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    ring = [[106.7613, 21.8537], [106.7623, 21.8537], [106.7623, 21.8547], [106.7613, 21.8547], [106.7613, 21.8537]]

    def feature(props, dx):
        return {"type": "Feature", "properties": props, "geometry": {
            "type": "Polygon", "coordinates": [[[x + dx, y] for x, y in ring]]}}
    text = json.dumps({"type": "FeatureCollection", "features": [
        feature({"KHLOAIDAT": "ONT", "TENCHU": "Lương Văn Tâm", "DIENTICH": 120.5, "SHTHUA": "12"}, 0),
        feature({"KHLOAIDAT": "LUC", "TENCHU": "Lương Văn Tâm", "DIENTICH": "01/05/1783", "SHTHUA": 13}, 0.002),
    ]}, ensure_ascii=False)
    (raw / "cp1258.geojson").write_bytes(text.encode("cp1258"))
    esri = {"geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 4326},
            "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID"},
                       {"name": "KHLOAIDAT", "type": "esriFieldTypeString"},
                       {"name": "KHLOAIDAT", "type": "esriFieldTypeString"}],
            "features": [{"attributes": {"OBJECTID": 1, "KHLOAIDAT": "CLN"},
                          "geometry": {"rings": [[[x + 0.004, y] for x, y in ring]]}}]}
    (raw / "esri.json").write_text(json.dumps(esri), encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "20", "--config", str(_config(tmp_path)),
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(parcels["landuse"]) == ["CLN", "LUC", "ONT"]
    assert set(parcels["owner_name"].dropna()) == {"Lương Văn Tâm"}
    assert set(parcels["parcel_no"].dropna()) == {"12", "13"}


# ------------------------------------------------- every stage, every commune


@pytest.mark.slow
def test_an_empty_commune_and_a_one_parcel_commune_go_through_every_stage(tmp_path):
    raw = tmp_path / "raw"
    _export(raw / "a", [{"KHLOAIDAT": "", "geometry": square(0)}, {"KHLOAIDAT": "XYZ", "geometry": square(100)}])
    _export(raw / "b", [{"KHLOAIDAT": "LUC", "TENCHU": "Hoàng Văn Tâm", "geometry": square(1000)}])
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                      '[[sources]]\npath = "a/*"\ncommune_code = "06253"\n'
                      '[[sources]]\npath = "b/*"\ncommune_code = "06286"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["inventory", "--config", str(config), "--scheduler", "sync"])
    assert result.exit_code == 0, result.output
    work = tmp_path / "work"
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["area_in_m2"] == pytest.approx(report["area_out_m2"] + report["area_quarantined_m2"])
    assert (work / "forms/xa/06253/Bieu_01_TKDD.xlsx").exists() and (work / "forms/xa/06286/Bieu_01_TKDD.xlsx").exists()
    assert (work / "maps/xa_06286.pdf").exists()  # no khoanh and no boundary for 06253: no sheet, said so
    sheets = (work / "reports/maps.md").read_text(encoding="utf-8")
    assert "| xa_06253 | Xã 06253 | 06253 | 0,00 |" in sheets and "không có tờ bản đồ" in sheets
    assert (work / "reports/review/06253.xlsx").exists()
    areas = pd.read_csv(work / "stats/areas.csv", dtype={"commune_code": str})
    assert areas.groupby("commune_code")["area_m2"].sum().to_dict() == pytest.approx({"06286": 10_000.0})
    layers = pyogrio.list_layers(next(work.glob("*.gpkg")))[:, 0]
    assert "review" in layers


def test_config_checks_the_new_sections():
    with pytest.raises(ConfigError, match=r"\[forest\]: missing key 'status_field'"):
        settings_from_dict({"inventory": {"province": "20"}, "forest": {"path": "rung.shp"}})
    with pytest.raises(ConfigError, match="owner_type 'XYZ' is not a user/manager object code"):
        settings_from_dict({"inventory": {"province": "20"}, "sources": [{"path": "*", "owner_type": "XYZ"}]})
    forest = settings_from_dict({"inventory": {"province": "20"},
                                 "forest": {"path": "rung.shp", "status_field": "TT", "natural": ["Tự nhiên"]}}).forest
    assert isinstance(forest, Forest) and forest.natural == ("tunhien",)
    assert settings_from_dict({"inventory": {"province": "20"}, "refine": {"strict": True}}).refine == Refine(True)
    assert SourceOverride("*", refine=(("HNK", "NHK"),)).refine == (("HNK", "NHK"),)
    assert CorrectionError.__mro__[1].__name__ == "KiemkeError"


# ------------------------------------------------- the sample's web export


def test_the_sample_web_export_is_inferred_and_refined_as_its_truth(sample_run):
    """Xã Yên Phúc comes as a web export (no object column, RSX/RPH/HNK, names):
    the inferred objects are the generator's true ones, the forest map gives
    the true forest sub-codes for ≥ 95 % of the forest, every inference is in
    the review workbook."""
    from pipeline.sample import SAMPLE_COMMUNES, commune_boundaries, generate_commune

    commune = next(c for c in SAMPLE_COMMUNES if c.form == "web_export")
    truth = generate_commune(commune, commune_boundaries()).set_index(["SHBANDO", "SHTHUA"])
    parcels = gpd.read_parquet(sample_run / "parcels" / f"{commune.code}.parquet")
    key = pd.MultiIndex.from_arrays([parcels["sheet_no"].astype(int), parcels["parcel_no"].astype(int)])
    true_owner = truth["DOITUONG"].reindex(key).to_numpy()
    true_code = truth["KHLOAIDAT"].reindex(key).str.split("+").str[0].to_numpy()
    area = parcels["area_m2"].to_numpy()
    assert set(parcels["owner_source"]) <= {"name", "landuse"}
    assert area[parcels["owner_type"].to_numpy() == true_owner].sum() == pytest.approx(area.sum())
    forest = np.isin(true_code, ["RSN", "RST", "RPN", "RPT"])
    agree = area[forest & (parcels["landuse"].to_numpy() == true_code)].sum() / area[forest].sum()
    assert agree >= 0.95, agree
    assert parcels["refined"].str.contains("bản đồ hiện trạng rừng", na=False).sum() > 2000
    assert parcels["flags"].str.contains("chia theo bản đồ hiện trạng rừng", na=False).sum() >= 2 * 20
    sheet = openpyxl.load_workbook(sample_run / "reports/review" / f"{commune.code}.xlsx",
                                   read_only=True).worksheets[0]
    assert "Yên Phúc" in str(sheet["A1"].value)
    assert sum(1 for _ in sheet.iter_rows(min_row=5)) == len(parcels)  # every parcel has an inferred object
    assert not (sample_run / "reports/review/06253.xlsx").exists()  # a FAMIS file with objects: nothing to review
