"""Change since the previous inventory: the overlay, the transition matrix,
Biểu 14/TKĐĐ and the change map, on inline geometries and on the sample."""

from __future__ import annotations

import json
import unicodedata
from functools import partial

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st
from PIL import Image

from pipeline.aggregate import expand_uses
from pipeline.change import (
    GAP,
    OUTSIDE,
    change_commune,
    comparison_code,
    couple,
    raster_pairs,
    share_groups,
    transitions,
    vector_pairs,
)
from pipeline.config import settings_from_dict
from pipeline.errors import ConfigError
from pipeline.reference import landuse_colors
from pipeline.rounding import apportion
from tests import helpers
from tests.helpers import VAN_QUAN

COLLAPSE = frozenset({"LUA", "HNK", "RSX", "RPH", "RDD"})


box = partial(helpers.box, origin=VAN_QUAN)


def layer(rows, **extra):
    geoms = [r[0] for r in rows]
    frame = {"landuse": [r[1] for r in rows], "uses": [r[2] if len(r) > 2 else None for r in rows], **extra}
    return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:9215")


def matrix_of(table: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(f, t): round(a, 6) for f, t, a in table[["from_code", "to_code", "area_m2"]].itertuples(index=False)}


# ------------------------------------------------------------------ codes


@pytest.mark.parametrize("code, expected", [("RST", "RSX"), ("RSN", "RSX"), ("RPT", "RPH"), ("LUC", "LUA"),
                                            ("BHK", "HNK"), ("ONT", "ONT"), ("RSX", "RSX"), ("NTS", "NTS")])
def test_codes_are_compared_at_the_level_of_bieu_14(code, expected):
    assert comparison_code(code, COLLAPSE) == expected


# ---------------------------------------------------------------- overlay


def test_overlay_with_known_answers_and_area_outside_either_layer():
    # 2014: paddy 10 × 10 m on the left, production forest (2014 code RSX) on the right
    previous = layer([(box(0, 0, 10, 10), "LUC"), (box(10, 0, 20, 10), "RSX")])
    # 2019: paddy shrank to 6 m, a house took the rest and the forest; a garden
    # beyond the 2014 map; a 2019 gap (no code) where there was forest
    current = layer([(box(0, 0, 6, 10), "LUC"), (box(6, 0, 18, 10), "ONT"), (box(18, 0, 20, 5), None),
                     (box(18, 5, 22, 10), "CLN")], khoanh_no=[1, 2, 3, 4])
    pieces, table = change_commune(previous, current, COLLAPSE)
    assert matrix_of(table) == {("LUA", "LUA"): 60.0, ("LUA", "ONT"): 40.0, ("RSX", "ONT"): 80.0,
                                ("RSX", "CLN"): 10.0, ("RSX", GAP): 10.0, (OUTSIDE, "CLN"): 10.0}
    rows = table.groupby("from_code")["area_m2"].sum()
    columns = table.groupby("to_code")["area_m2"].sum()
    assert rows["LUA"] == pytest.approx(100) and rows["RSX"] == pytest.approx(100)  # the 2014 areas
    assert columns["ONT"] == pytest.approx(120) and columns["CLN"] == pytest.approx(20)  # the 2019 areas
    changed = pieces[pieces["changed"]]
    assert changed["area_m2"].sum() == pytest.approx(40 + 80 + 10 + 10 + 10)
    assert set(pieces.loc[pieces["from_code"] == OUTSIDE, "to_leaf"]) == {"CLN"}


def test_previous_area_outside_the_current_layer_goes_to_the_outside_column():
    previous = layer([(box(0, 0, 10, 10), "BCS")])
    current = layer([(box(0, 0, 10, 4), "RST")], khoanh_no=[1])
    _, table = change_commune(previous, current, COLLAPSE)
    assert matrix_of(table) == {("BCS", "RSX"): 40.0, ("BCS", OUTSIDE): 60.0}


def test_a_compound_unit_keeps_what_it_can():
    # 2014: one khoanh of houses with gardens, 30 m² ONT + 70 m² CLN
    previous = layer([(box(0, 0, 10, 10), "ONT", json.dumps({"ONT": 30.0, "CLN": 70.0}))])
    # 2019: a house of 40 m² and a parcel of 60 m² with 20 m² ONT, 40 m² CLN
    current = layer([(box(0, 0, 4, 10), "ONT"), (box(4, 0, 10, 10), "ONT", json.dumps({"ONT": 20.0, "CLN": 40.0}))],
                    khoanh_no=[1, 2])
    _, table = change_commune(previous, current, COLLAPSE)
    assert matrix_of(table) == {("ONT", "ONT"): 30.0, ("CLN", "CLN"): 40.0, ("CLN", "ONT"): 30.0}


shares = st.dictionaries(st.sampled_from(["ONT", "CLN", "LUA", "NTS"]), st.floats(0.01, 100), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(had=shares, got=shares)
def test_coupling_keeps_both_margins(had, got):
    scale = sum(had.values()) / sum(got.values())
    got = {k: v * scale for k, v in got.items()}  # equal totals, as one unit's area
    flows = couple(had, got)
    for code, amount in had.items():
        assert sum(v for (f, _), v in flows.items() if f == code) == pytest.approx(amount, rel=1e-9, abs=1e-9)
    for code, amount in got.items():
        assert sum(v for (_, t), v in flows.items() if t == code) == pytest.approx(amount, rel=1e-9, abs=1e-9)
    for (f, t), v in flows.items():  # each use keeps what it can
        if f == t:
            assert v == pytest.approx(min(had[f], got[t]))


def test_raster_cross_tabulation_counts_cells():
    previous = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    current = np.array([box(0, 0, 6, 10), box(6, 0, 20, 10)])
    exact = vector_pairs(previous, current).set_index(["previous", "current"])["area_m2"]
    cells = raster_pairs(previous, current, 0.5).set_index(["previous", "current"])["area_m2"]
    assert cells.to_dict() == pytest.approx(exact.to_dict())  # boundaries on the grid: exact


@settings(max_examples=40, deadline=None)
@given(exact=st.lists(st.floats(0, 1e5), min_size=1, max_size=12), shift=st.integers(-3, 3))
def test_apportion_hits_the_target_and_stays_within_one(exact, shift):
    target = int(np.floor(sum(exact) + 0.5)) + shift
    if target < 0:
        return
    cells = apportion(np.array(exact), target)
    assert cells.sum() == target
    assert (cells >= 0).all()
    # each cell is first rounded (within 0.5); when the rest to move is at most one unit per cell, and no
    # cell is near zero (none may go below it), no cell moves more than one unit: within 1.5 of exact
    moved = target - int(np.floor(np.array(exact) + 0.5).sum())
    if abs(moved) <= len(exact) and min(exact) >= 1:
        assert np.abs(cells - np.array(exact)).max() <= 1.5


def test_grouped_raster_tally_gives_the_same_transitions():
    previous = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10), box(20, 0, 30, 10)])
    current = np.array([box(0, 0, 15, 10), box(15, 0, 22, 10), box(22, 0, 30, 10)])
    before = [{"LUA": 1.0}, {"ONT": 0.3, "CLN": 0.7}, {"LUA": 1.0}]
    after = [{"LUA": 1.0}, {"ONT": 1.0}, {"LUA": 1.0}]
    plain = transitions(raster_pairs(previous, current, 0.5), before, after)
    grouped = raster_pairs(previous, current, 0.5, previous_groups=share_groups(before, compound_apart=True),
                           current_groups=share_groups(after))
    assert set(grouped["previous"]) <= {-1, 0, 1} and set(grouped["current"]) <= {-1, 0, 1}  # stand-ins
    assert matrix_of(transitions(grouped, before, after)) == matrix_of(plain)
    exact = transitions(vector_pairs(previous, current), before, after)
    assert matrix_of(plain) == matrix_of(exact)


def test_apportion_never_goes_below_zero():
    cells = apportion(np.array([1.0, 10.0]), 8)  # three to take away, the first cell can give one
    assert cells.sum() == 8 and (cells >= 0).all() and cells[0] in (0, 1)


def test_transitions_from_raster_pairs_use_the_same_tally():
    pairs = pd.DataFrame({"previous": [0, 0, -1], "current": [0, 1, 1], "area_m2": [4.0, 6.0, 2.0]})
    table = transitions(pairs, [{"LUA": 1.0}], [{"LUA": 1.0}, {"ONT": 1.0}])
    assert matrix_of(table) == {("LUA", "LUA"): 4.0, ("LUA", "ONT"): 6.0, (OUTSIDE, "ONT"): 2.0}


# ------------------------------------------------------------------ config


def test_previous_section_is_validated():
    base = {"inventory": {"province": "Lạng Sơn", "year": 2019}}
    settings = settings_from_dict({**base, "previous": {"path": "a/*.shp", "statistics": "tk.csv"}})
    assert settings.previous.year == 2014 and settings.previous.statistics_year == 2018
    with pytest.raises(ConfigError, match=r"\[previous\]: unknown key"):
        settings_from_dict({**base, "previous": {"path": "a.shp", "yaer": 2014}})
    with pytest.raises(ConfigError, match="must be before"):
        settings_from_dict({**base, "previous": {"path": "a.shp", "year": 2020}})
    with pytest.raises(ConfigError, match="missing key 'path'"):
        settings_from_dict({**base, "previous": {"year": 2014}})


# ------------------------------------------------------------------ sample


@pytest.fixture(scope="module")
def transitions_run(sample_run):
    table = pd.read_csv(sample_run / "stats" / "transitions.csv", dtype={"commune_code": str})
    return sample_run, table


def test_the_change_report_names_the_codes_compared_whole_in_the_circulars_order(transitions_run):
    """reports/change.md lists Biểu 14's undivided codes as the circular does,
    the same in every run (not in a set's order, which changes run to run)."""
    run, _ = transitions_run
    report = (run / "reports" / "change.md").read_text(encoding="utf-8")
    assert "(LUA, HNK, RSX, RPH, RDD không chia mã chi tiết)" in report


def test_the_sample_documented_changes_are_found_with_their_areas(transitions_run, sample_dir):
    _, table = transitions_run
    documented = pd.read_csv(sample_dir / "kiem_ke_2014" / "changes_2014_2019.csv", dtype={"commune_code": str})
    expected = documented.groupby(["commune_code", "from_code", "to_code"])["area_m2"].sum()
    found = table.set_index(["commune_code", "from_code", "to_code"])["area_m2"]
    for key, area in expected.items():
        # 06307 came as WGS 84 GeoJSON: its boundaries sit < 1 mm from the 2014 ones
        assert found[key] == pytest.approx(area, abs=5.0), key
    real = table[(table["from_code"] != table["to_code"]) & (table["area_m2"] > 50)]
    assert set(map(tuple, real[["commune_code", "from_code", "to_code"]].to_numpy())) == set(expected.index)


def test_the_statistics_saved_by_excel_on_a_vietnamese_windows_read_as_the_sample_csv(transitions_run, sample_dir,
                                                                                          tmp_path):
    from dataclasses import replace

    from pipeline.errors import KiemkeError
    from pipeline.forms.change_inputs import read_change_inputs
    from pipeline.workdir import WorkDir

    work, _ = transitions_run
    manifest = WorkDir(work).read_manifest()
    sample = pd.read_csv(sample_dir / "thong_ke_2018.csv", dtype=str, encoding="utf-8-sig")
    # Excel's plain "CSV" there: cp1258, ';' (the list separator), a decimal comma, a column of names
    excel = sample.assign(area_ha=sample["area_ha"].str.replace(".", ","), ten_xa="Xã Hòa Bình")
    saved = tmp_path / "thong_ke_2018.csv"
    saved.write_bytes(unicodedata.normalize("NFD", excel.to_csv(sep=";", index=False)).encode("cp1258"))

    def statistics(path):
        previous = replace(manifest.previous, statistics=path)
        return read_change_inputs(work / "stats" / "transitions.csv", replace(manifest, previous=previous)).statistics

    read = statistics(saved)
    expected = statistics(sample_dir / "thong_ke_2018.csv")
    columns = ["commune_code", "code", "area_ha"]
    pd.testing.assert_frame_equal(read[columns], expected[columns])
    assert read["area_ha"].sum() > 0 and set(read["ten_xa"]) == {"Xã Hòa Bình"}
    saved.write_text("commune_code,code,area_ha\n06253,LUC,khoảng 5\n", encoding="utf-8")
    with pytest.raises(KiemkeError, match=r"area_ha is not a number on row 2: 'khoảng 5'"):
        statistics(saved)  # was read as 0 ha


def test_matrix_rows_sum_to_the_previous_layer_and_columns_to_the_statistics(transitions_run):
    work, table = transitions_run
    areas = pd.read_csv(work / "stats" / "areas.csv", dtype={"commune_code": str})
    current = areas.assign(code=[comparison_code(c, COLLAPSE) for c in areas["landuse"]]) \
        .groupby(["commune_code", "code"])["area_m2"].sum()
    columns = table[~table["to_code"].isin([OUTSIDE, GAP])].groupby(["commune_code", "to_code"])["area_m2"].sum()
    pd.testing.assert_series_equal(columns.sort_index(), current.sort_index(), check_names=False, rtol=1e-9)
    previous = pd.concat([gpd.read_parquet(p) for p in sorted((work / "change" / "previous").glob("0*.parquet"))])
    assert np.allclose(previous["area_m2"], previous.geometry.area)
    long = expand_uses(previous)  # a compound 2014 khoanh counts each use's m²
    long["code"] = [comparison_code(c, COLLAPSE) for c in long["landuse"]]
    rows = table[table["from_code"] != OUTSIDE].groupby(["commune_code", "from_code"])["area_m2"].sum()
    before = long.groupby(["commune_code", "code"])["area_m2"].sum()
    pd.testing.assert_series_equal(rows.sort_index(), before.sort_index(), check_names=False, rtol=1e-9)


def test_previous_layer_was_repaired_like_any_input(transitions_run):
    work, _ = transitions_run
    state = json.loads((work / "change" / "previous" / "read.json").read_text(encoding="utf-8"))
    report = state["files"][0]
    assert "EPSG:3405" in report["crs_chosen"] or "UTM zone 48N" in report["crs_chosen"]
    assert report["repairs"]["values with TCVN3 words converted to Unicode"] > 0
    previous = gpd.read_parquet(work / "change" / "previous" / "06274.parquet")
    assert set(previous["TENXA"]) == {"Xã Hòa Bình"}
    assert {"RSX", "RPH"} <= set(previous["landuse"])  # the 2014 group codes kept
    area_in = sum(f["area_in_m2"] for f in state["files"])
    used = sum(c["area_m2"] for c in state["communes"].values())
    quarantined = sum(f["area_quarantined_m2"] for f in state["files"])
    assert area_in == pytest.approx(used + quarantined, rel=1e-12)


def _cells(path):
    sheet = openpyxl.load_workbook(path).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def _row(rows, code):
    return next(r for r in rows if len(r) > 2 and r[2] == code)


@pytest.mark.parametrize("unit", ["xa/06286", "huyen/184", "tinh/20"])
def test_bieu_14_matches_bieu_01_and_the_matrix(transitions_run, unit):
    work, table = transitions_run
    b14 = _cells(work / "forms" / unit / "Bieu_14_TKDD.xlsx")
    b01 = _cells(work / "forms" / unit / "Bieu_01_TKDD.xlsx")
    matrix = _cells(work / "forms" / unit / "Ma_tran_chu_chuyen.xlsx")
    assert any(r[0] == "BIẾN ĐỘNG DIỆN TÍCH THEO MỤC ĐÍCH SỬ DỤNG ĐẤT" for r in b14)
    numbers = next(r for r in b14 if r[0] == "(1)")
    assert numbers[:9] == ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)=(4)-(5)", "(7)", "(8)=(4)-(7)", "(9)"]
    codes = [r[2] for r in b14 if r[0] and r[0][0].isdigit() and len(r) > 2 and r[2]]
    assert codes[:14] == ["NNP", "SXN", "CHN", "LUA", "HNK", "CLN", "LNP", "RSX", "RPH", "RDD", "NTS", "LMU",
                          "NKH", "PNN"]  # the abbreviated rows of forms.md
    for code in ("NNP", "LUA", "RSX", "RPH", "ONT", "BCS", "PNN"):
        row, total = _row(b14, code), _row(b01, code)[3]
        assert row[3] == pytest.approx(total)
        assert row[5] == pytest.approx(row[3] - row[4])
        assert row[7] == pytest.approx(row[3] - row[6])
        if code not in ("NNP", "PNN"):  # the matrix has the codes, not the groups
            assert _row(matrix, code)[3] == pytest.approx(row[4])  # matrix row total = (5)
    header = next(r for r in matrix if r[0] == "(1)")
    last = next(r for r in matrix if r[1] == "Diện tích năm 2019")
    for k, code in enumerate(matrix[next(i for i, r in enumerate(matrix) if "LUA" in r)][4:-2], start=4):
        if code in {r[2] for r in b14 if len(r) > 2}:
            assert last[k] == pytest.approx(_row(b14, code)[3]), code
    assert header[-1] == f"({len(header)})"
    lua = _row(b14, "LUA")
    if unit != "xa/06253":
        assert lua[5] < 0 and "giảm sang ONT" in lua[8]  # paddy lost to houses


def test_the_khoanh_list_gives_the_previous_code(transitions_run):
    work, _ = transitions_run
    rows = pd.read_csv(work / "forms" / "xa" / "06274" / "Danh_sach_khoanh_dat.csv", dtype=str)
    previous = rows["(4) Mã loại đất kỳ trước"]
    assert previous.notna().mean() > 0.99
    forest = rows[rows["(3) Mã loại đất hiện trạng"].isin(["RST", "RSN"])]
    assert set(forest["(4) Mã loại đất kỳ trước"]) <= {"RSX", "RPH", "BCS"}


def test_change_map_shows_changes_in_the_new_colour_and_the_rest_grey(transitions_run):
    work, _ = transitions_run
    name = "bien_dong_xa_06286"
    meta = json.loads((work / "maps" / f"{name}.json").read_text())
    png = np.asarray(Image.open(work / "maps" / f"{name}.png").convert("RGB"))
    pieces = gpd.read_parquet(work / "change" / "06286.parquet")
    px_per_mm = png.shape[1] / meta["page_mm"][0]
    mm_per_m = 1000 / meta["scale"]
    x0, y0 = meta["extent_m"][:2]
    bx, by = meta["map_box_mm"][:2]

    def colour_at(geom):
        inner = shapely.buffer(geom, -3 / mm_per_m)
        point = shapely.get_coordinates(shapely.point_on_surface(inner))[0]
        px = int((bx + (point[0] - x0) * mm_per_m) * px_per_mm)
        py = int(png.shape[0] - (by + (point[1] - y0) * mm_per_m) * px_per_mm)
        return png[py - 2:py + 3, px - 2:px + 3].reshape(-1, 3)

    def hex_rgb(text):
        return np.array([int(text[i:i + 2], 16) for i in (1, 3, 5)])

    changed = pieces[pieces["changed"] & (pieces["from_code"] == "RPH")].sort_values("area_m2").iloc[-1]
    seen = colour_at(changed.geometry)
    expected = hex_rgb(landuse_colors().at[changed["to_leaf"], "hex"])
    assert (np.abs(seen.astype(int) - expected).max(axis=1) <= 2).mean() > 0.8
    unchanged = pieces[~pieces["changed"]].sort_values("area_m2").iloc[-1]
    seen = colour_at(unchanged.geometry)
    assert (np.abs(seen.astype(int) - hex_rgb("#E6E6E6")).max(axis=1) <= 2).mean() > 0.8
    assert "RPH" in meta["legend_codes"] or changed["to_leaf"] in meta["legend_codes"]


def test_raster_fast_path_is_within_half_a_percent_on_the_sample(transitions_run):
    from pipeline.change import code_shares, current_units, share_groups
    from pipeline.topology import Thresholds

    work, _ = transitions_run
    for code in ("06286", "06307"):
        previous = gpd.read_parquet(work / "change" / "previous" / f"{code}.parquet")
        current = current_units(gpd.read_parquet(work / "parcels" / f"{code}.parquet"),
                                gpd.read_parquet(work / "khoanh" / f"{code}.parquet"), Thresholds())
        before, after = code_shares(previous, COLLAPSE), code_shares(current, COLLAPSE)
        exact = transitions(vector_pairs(previous.geometry.values, current.geometry.values), before, after)
        fast = transitions(raster_pairs(previous.geometry.values, current.geometry.values, 1.0,
                                        previous_groups=share_groups(before, compound_apart=True),
                                        current_groups=share_groups(after)), before, after)
        key = ["from_code", "to_code"]
        both = exact.merge(fast, on=key, how="outer", suffixes=("_exact", "_fast")).fillna(0.0)
        both = both[both["area_m2_exact"] > 1e4]  # every transition of a hectare or more
        error = (both["area_m2_fast"] - both["area_m2_exact"]).abs() / both["area_m2_exact"]
        assert error.max() < 0.005, both.assign(error=error).sort_values("error").tail()


# ------------------------------------------------------------- bad input


def _previous_file(tmp_path, rows, name="ht2014.shp"):
    import pyogrio

    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9215")
    path = tmp_path / name
    pyogrio.write_dataframe(frame, path, encoding="UTF-8")
    return path


def test_previous_layer_quarantine_and_overlaps_are_accounted_for(tmp_path):
    from pipeline.change import read_previous, without_overlaps
    from pipeline.config import Previous
    from pipeline.topology import Thresholds

    path = _previous_file(tmp_path, [
        {"MAXA": "06286", "MALOAIDAT": "LUC", "geometry": box(0, 0, 10, 10)},
        {"MAXA": "06286", "MALOAIDAT": "RSX", "geometry": box(8, 0, 20, 10)},  # 2014 group code; overlaps 20 m²
        {"MAXA": "06286", "MALOAIDAT": "XYZ", "geometry": box(20, 0, 25, 10)},  # not a code
    ])
    settings = settings_from_dict({"inventory": {"province": "Lạng Sơn"}})
    layer, quarantine, reports = read_previous(Previous(path=str(path)), settings, COLLAPSE)
    assert sorted(layer["landuse"]) == ["LUC", "RSX"]
    assert list(quarantine["reason"]) == ["land-use code 'XYZ' is not a Circular 27/2018 code nor a known legacy code"]
    report = reports[0]
    assert report.area_in_m2 == pytest.approx(report.area_out_m2 + report.area_quarantined_m2) == pytest.approx(270)
    resolved, removed = without_overlaps(layer, Thresholds())
    assert removed == pytest.approx(20) and resolved["area_m2"].sum() == pytest.approx(200)


def test_previous_layer_without_commune_codes_is_a_clear_error(tmp_path):
    from pipeline.change import read_previous
    from pipeline.config import Previous
    from pipeline.errors import InputFileError

    path = _previous_file(tmp_path, [{"MALOAIDAT": "LUC", "geometry": box(0, 0, 10, 10)}], "khong_ma_xa.shp")
    settings = settings_from_dict({"inventory": {"province": "Lạng Sơn"}})
    with pytest.raises(InputFileError, match=r"khong_ma_xa\.shp: 1 features .* no commune code .*commune_code"):
        read_previous(Previous(path=str(path)), settings, COLLAPSE)
    with pytest.raises(InputFileError, match="no file matches"):
        read_previous(Previous(path=str(tmp_path / "nowhere" / "*.shp")), settings, COLLAPSE)
    layer, _, _ = read_previous(Previous(path=str(path), commune_code="06286"), settings, COLLAPSE)
    assert set(layer["commune_code"]) == {"06286"}


def test_change_command_without_a_previous_inventory_says_what_to_add(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["change", "--config", str(config)])
    assert result.exit_code == 1 and "[previous]" in result.output and "Traceback" not in result.output
