"""The regime of Circular 08/2024 as data: its code tree, its user/manager
objects, the 2018 → 2024 migration in ingest, and the choice of regime."""

from __future__ import annotations

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from pyproj import CRS

from pipeline.cli import cli
from pipeline.config import Settings, settings_from_dict
from pipeline.errors import ConfigError
from pipeline.forms import compute_forms
from pipeline.ingest import ingest_frame
from pipeline.ingest.core import Rules
from pipeline.package.fields import coded_values
from pipeline.reference import landuse_colors, landuse_tree, migration_table, owner_codes, province
from pipeline.regime import REGIME_2024, active_regime, load_template, use_regime
from pipeline.units import build_units
from tests.helpers import box, source_frame, square

LANG_SON = province("Lạng Sơn")
SETTINGS_2024 = Settings(province=LANG_SON, year=2024, regime=REGIME_2024)


def test_the_2024_tree_rolls_every_finest_code_up_to_the_three_groups():
    tree = landuse_tree(REGIME_2024)
    assert tree.roots() == ["NNP", "PNN", "CSD"]
    assert len(tree.codes) == 67
    finest = [c for c in tree.leaves if c not in tree.of_which]
    assert len(finest) == 53  # Biểu 01/TKKK's finest rows
    for code in tree.leaves:
        assert tree.root(code) in ("NNP", "PNN", "CSD")
    assert tree.of_which == {"RSN"} and tree.is_leaf("RSX") and "RSN" not in tree.children("RSX")
    assert tree.ancestors("RSN") == ["RSX", "LNP", "NNP"]
    assert tree.parent("CHN") == "NNP" and tree.parent("CQP") == "CQA" and tree.parent("SON") == "TVC"
    for gone in ("SXN", "CDG", "BHK", "NHK", "LUN", "RST", "DTS", "DDT", "DSH", "DCK", "SKT", "SKX"):
        assert gone not in tree
    assert tree.table.at["LUC", "form_stt"] == "1.1.1" and tree.table.at["RSN", "form_stt"] == ""


def test_the_2024_objects_are_twelve_users_and_four_managers():
    owners = owner_codes(REGIME_2024)
    assert list(owners.index[owners["role"] == "user"]) == [
        "CNV", "CNN", "TCN", "TSN", "TXH", "TKT", "TKH", "TTG", "CDS", "TNG", "NGV", "TVN"]
    assert list(owners.index[owners["role"] == "manager"]) == ["TCQ", "TSQ", "KTQ", "CDQ"]
    columns = load_template(REGIME_2024).columns("tkkk")
    assert [c.codes[0] for c in columns] == [*owners.index[owners["role"] == "user"],
                                             *owners.index[owners["role"] == "manager"]]


def test_every_2018_code_has_a_migration_row_that_lands_on_a_2024_code():
    tree_2018, tree_2024 = landuse_tree("tt27_2018"), landuse_tree(REGIME_2024)
    table = migration_table("landuse", REGIME_2024)
    assert set(tree_2018.codes) == set(table.index)
    for row in table.itertuples():
        assert row.rule in {"same", "merge", "drop_level", "review", "field_data"}, row
        if row.rule in {"same", "merge", "review"}:
            assert row.code_2024 in tree_2024, row
        if row.rule in {"review", "field_data"} and row.candidates:
            assert all(c.strip() in tree_2024 for c in row.candidates.split(",")), row
        assert row.confidence in {"confirmed", "inferred"} and row.source
    owners_2018, owners_2024 = owner_codes("tt27_2018"), owner_codes(REGIME_2024)
    objects = migration_table("owner", REGIME_2024)
    parcel_codes_2018 = owners_2018.index[owners_2018["role"].isin(["user", "manager", "other-regime"])
                                          & ~owners_2018.index.isin(owners_2024.index)
                                          | owners_2018["role"].isin(["user", "manager"])]
    assert set(parcel_codes_2018) <= set(objects.index)
    assert set(objects["code_2024"]) <= set(owners_2024.index[owners_2024["role"].isin(["user", "manager"])])


def test_every_2024_code_has_a_colour_and_the_new_ones_are_marked_inferred():
    colours = landuse_colors(REGIME_2024)
    assert set(landuse_tree(REGIME_2024).codes) <= set(colours.index)
    for code in ("CNT", "DPC", "DDD", "CGT", "MCS"):
        assert colours.at[code, "confidence"].startswith("inferred")


def test_the_regime_follows_the_year_unless_the_config_names_one():
    base = {"inventory": {"province": "Lạng Sơn"}}
    assert settings_from_dict(base).regime == "tt27_2018"
    assert settings_from_dict({"inventory": {**base["inventory"], "year": 2024}}).regime == REGIME_2024
    named = {"inventory": {**base["inventory"], "year": 2025, "regime": "tt27_2018"}}
    assert settings_from_dict(named).regime == "tt27_2018"
    with pytest.raises(ConfigError, match="tt99"):
        settings_from_dict({"inventory": {**base["inventory"], "regime": "tt99"}})
    assert active_regime() == "tt27_2018"  # nothing leaks out of a config's reading


def _ingest_2024(rows):
    with use_regime(REGIME_2024):
        return ingest_frame(source_frame(rows), source_file="x.geojson", source_crs=CRS.from_epsg(9215),
                            settings=SETTINGS_2024, rules=Rules(commune_code="06253"))


def test_2018_codes_under_the_2024_regime_are_moved_flagged_or_refused():
    codes = [("BHK", "GDC"), ("RST", "TKT"), ("DSH", "UBQ"), ("NKH", "GDC"), ("DCK", "UBQ"), ("LUN", "TKQ"),
             ("CNT", "CNV"), ("DDT+CLN", "GDC")]
    rows = [{"SHTHUA": i + 1, "KHLOAIDAT": code, "DOITUONG": owner, "geometry": square(100 * i)}
            for i, (code, owner) in enumerate(codes)]
    parcels, quarantine, report = _ingest_2024(rows)
    by_no = parcels.set_index("parcel_no")
    assert by_no.at["1", "landuse"] == "HNK" and by_no.at["1", "owner_type"] == "CNV"
    assert by_no.at["2", "landuse"] == "RSX" and by_no.at["3", "landuse"] == "DKV"
    assert by_no.at["3", "owner_type"] == "TCQ"
    assert pd.isna(by_no.at["1", "refined"])  # a move is made, not flagged
    assert by_no.at["4", "landuse"] == "NKH" and "CNT" in by_no.at["4", "refined"]  # kept, flagged for review
    assert by_no.at["6", "landuse"] == "LUK" and by_no.at["6", "owner_type"] == "CDQ"
    assert by_no.at["6", "owner_source"] == "migration" and "KTQ" in by_no.at["6", "owner_rule"]
    with use_regime(REGIME_2024):  # QGIS's value map has it: shown as written, not as "(…)", a value it lacks
        assert coded_values()["owner_rule"][by_no.at["6", "owner_rule"]] == by_no.at["6", "owner_rule"]
    assert by_no.at["7", "landuse"] == "CNT" and by_no.at["8", "landuse"] == "DDD"
    assert list(quarantine["parcel_no"]) == ["5"]  # DCK: no code to give without the field
    assert "DCT" in quarantine["candidates"].iat[0] and "field data" in quarantine["reason"].iat[0]
    assert report.repairs["code BHK of Circular 27/2018 → HNK (Circular 08/2024)"] == 1
    assert report.repairs["object code GDC → CNV of Circular 27/2018"] == 3
    assert active_regime() == "tt27_2018"


def test_a_code_needing_field_data_lands_in_the_review_workbook(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [{"SHTHUA": i + 1, "KHLOAIDAT": code, "DOITUONG": "GDC", "TENCHU": "Hoàng Văn Tâm",
             "geometry": square(100 * i)} for i, code in enumerate(["NKH", "DCK", "LUC"])]
    gpd.GeoDataFrame(source_frame(rows)).to_file(raw / "xa.gpkg")
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\nyear = 2024\ninput = "raw"\nworkdir = "work"\n'
                      '[[sources]]\npath = "*"\ncommune_code = "06253"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "20", "--config", str(config),
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(tmp_path / "work/reports/review/06253.xlsx").worksheets[0]
    header = [c.value for c in sheet[4]]
    rows_by_no = {sheet.cell(r, 3).value: [c.value for c in sheet[r]] for r in range(5, sheet.max_row + 1)}
    assert set(rows_by_no) == {1, 2}  # LUC is a 2024 code: nothing to review
    assert rows_by_no[2][header.index("Tình trạng")] == "Cách ly"
    assert "DCT" in rows_by_no[2][header.index("Mã có thể")]
    assert "NKH → NKH; có thể là NKH, CNT" in rows_by_no[1][header.index("Căn cứ, lý do")]
    manifest = (tmp_path / "work/inventory.json").read_text(encoding="utf-8")
    assert '"regime": "tt08_2024"' in manifest


# ------------------------------------------------------------------ forms (inline figures)

def _areas(rows):
    return pd.DataFrame(rows, columns=["commune_code", "landuse", "owner_type", "area_m2"])


def _units_2025(codes=("90001", "90002")):
    bounds = pd.DataFrame({"commune_code": list(codes), "commune_name": ["Xã A", "Xã B"][: len(codes)],
                           "district_code": "", "district_name": ""})
    return build_units(list(codes), bounds, "Lạng Sơn", "20", ("xa", "tinh"))


AREAS_2024 = [("90001", "RSX", "CNV", 30_000.0), ("90001", "RSN", "CNV", 20_000.0), ("90001", "LUC", "CNV", 5_000.0),
              ("90001", "CNT", "TKT", 4_000.0), ("90001", "DGT", "TCQ", 1_000.0),
              ("90002", "DPC", "TCQ", 2_500.0), ("90002", "ONT", "CNV", 7_500.0)]


def test_biểu_01_tkkk_follows_the_tree_and_rsn_is_not_added_into_rsx():
    template = load_template(REGIME_2024)
    with use_regime(REGIME_2024):
        tables = compute_forms(_areas(AREAS_2024), _units_2025(), template)
    b01 = tables[("01", "xa/90001")]
    tree = landuse_tree(REGIME_2024)
    assert list(b01["code"]) == ["", *tree.codes]  # the total row, then the tree in the circular's order
    rows = b01.set_index("code")
    assert rows.at["RSX", "total"] == 500 and rows.at["RSN", "total"] == 200  # RSX holds its natural part once
    assert rows.at["LNP", "total"] == rows.at["RDD", "total"] + rows.at["RPH", "total"] + rows.at["RSX", "total"]
    assert rows.at["NNP", "total"] == 500 + 50 + 40 and rows["total"].iat[0] == 600
    assert b01["stt"].tolist()[:4] == ["", "I", "1", "1.1"] and rows.at["RSN", "stt"] == ""
    users = [f"c{k}" for k in range(12)]
    assert (rows["users_total"] == rows[users].sum(axis=1)).all()
    assert rows.at["DGT", "managers_total"] == 10 and rows.at["CNT", "c5"] == 40  # TKT is column (11)
    province = tables[("01", "tinh/20")].set_index("code")
    assert province["total"].iat[0] == 600 + 100  # two levels: the province sums its communes
    b03 = tables[("03", "tinh/20")].set_index("code")
    assert list(b03.columns[-3:]) == ["u90001", "u90002", "disputed"]
    assert b03.at["DPC", "u90002"] == 25 and (b03["total"] == province["total"]).all()


def test_biểu_04_tkkk_gives_each_cell_its_share_of_its_column():
    template = load_template(REGIME_2024)
    with use_regime(REGIME_2024):
        tables = compute_forms(_areas(AREAS_2024), _units_2025(), template)
    b04 = tables[("04", "xa/90001")].set_index("code")
    assert b04["a0"].iat[0] == 600 and b04["p0"].iat[0] == 100_00
    assert b04.at["NNP", "p0"] == round(590 / 600 * 10_000)  # 98.33 %
    assert b04.at["CNT", "a6"] == 40 and b04.at["CNT", "p6"] == 100_00  # all of TKT's land is CNT


def test_biểu_02_tkkk_counts_holders_not_hectares():
    from pipeline.aggregate import holder_counts
    from pipeline.forms.counts import counts_table

    parcels = pd.DataFrame({
        "commune_code": "90001", "sheet_no": ["1", "1", "1", "2"], "parcel_no": ["1", "2", "3", "4"],
        "landuse": ["LUC", "LUK", "ONT", "DGT"], "owner_type": ["CNV", "CNV", "CNV", "TCQ"],
        "owner_name": ["Hoàng Văn Tâm", "HOANG VAN TAM", "Nông Thị Yến", None], "uses": None})
    with use_regime(REGIME_2024):
        holders = holder_counts(parcels)
        template = load_template(REGIME_2024)
        codes = [list(c.codes) for c in template.columns("tkkk")]
        table = counts_table(holders, template.form("02"), _units_2025(("90001",))[0], codes, "Tổng").set_index("code")
    assert table.at["LUC", "c0"] == 1 and table.at["LUA", "c0"] == 1  # one person, two rice parcels
    assert table.at["NNP", "c0"] == 1 and table.at["PNN", "c0"] == 1 and table.at["DGT", "c12"] == 1
    assert table["total"].iat[0] == 3  # Tâm, Yến and the managed road: rows do not add up to it, by design


def test_the_forest_status_map_marks_natural_production_forest_rsn_under_the_2024_regime(tmp_path):
    """Under TT 08/2024 RSX is a finest code with one "of which" row, RSN: the
    forest status map marks the natural part of an RSX parcel RSN (split off
    where the parcel straddles), the planted part stays RSX, protection forest
    stays RPH (no sub-codes in the 2024 forms), and Biểu 01's RSN row holds the
    natural area inside RSX's."""
    from dataclasses import replace

    import pyogrio

    from pipeline.aggregate import area_by_code, code_tree_totals
    from pipeline.config import Forest
    from pipeline.ingest.file import ingest_file

    parcels = gpd.GeoDataFrame({"KHLOAIDAT": ["RSX", "RSX", "RPH"], "DOITUONG": ["CNV", "CNV", "TCQ"],
                                "MAXA": "06253"}, geometry=[square(0), square(300), square(600)], crs="EPSG:9215")
    pyogrio.write_dataframe(parcels, tmp_path / "xa.gpkg")
    statuses = gpd.GeoDataFrame({"TRANGTHAI": ["Rừng tự nhiên", "Rừng trồng"]}, crs="EPSG:9215", geometry=[
        box(-50, -50, 60, 150).union(box(550, -50, 750, 150)),  # the west 60 m of parcel 1, and parcel 3
        box(60, -50, 450, 150)])  # the rest of parcel 1, and parcel 2
    pyogrio.write_dataframe(statuses, tmp_path / "rung.gpkg")
    settings = replace(SETTINGS_2024, forest=Forest(path=tmp_path / "rung.gpkg", status_field="TRANGTHAI"))
    with use_regime(REGIME_2024):
        out, quarantine, report = ingest_file(tmp_path / "xa.gpkg", settings)
        assert quarantine.empty and report.repairs["parcels split by the forest status map"] == 1
        first = out[out["source_fid"] == 0].set_index("landuse")
        assert first.loc["RSN", "area_m2"] == pytest.approx(6000) and first.loc["RSX", "area_m2"] == pytest.approx(4000)
        assert first.loc["RSN", "refined"] == "RSX → RSN (theo bản đồ hiện trạng rừng)"
        assert pd.isna(first.loc["RSX", "refined"])  # planted production forest is RSX as read: nothing inferred
        assert list(out.loc[out["source_fid"] == 1, "landuse"]) == ["RSX"]
        assert list(out.loc[out["source_fid"] == 2, "landuse"]) == ["RPH"]
        totals = code_tree_totals(area_by_code(out)).set_index("code")["area_m2"]
    assert totals["RSN"] == pytest.approx(6000) and totals["RSX"] == pytest.approx(20_000)
    assert totals["TONG"] == pytest.approx(30_000)  # the "of which" row counted once
