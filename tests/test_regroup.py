"""The 2019 inventory on the communes of 1 July 2025: the exact overlay of
the khoanh on new units, the slivers where two boundary surveys disagree, the
crosswalk, the [units] config, and on the sample the outputs of every new unit."""

import json
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely

from pipeline.config import ConfigError, settings_from_dict
from pipeline.io import read_geoparquets
from pipeline.regroup import crosswalk, regroup
from pipeline.regroup.overlay import OUTSIDE, TWICE
from pipeline.units import build_units
from tests.helpers import square

# New units: A (x < 100), B (x > 100.5: a 0.5 m strip between A and B lies in
# neither), C over the top, overlapping A by a 1 m strip (x 99…100, y > 200).
A, B, C = shapely.box(0, 0, 100, 300), shapely.box(100.5, 0, 300, 200), shapely.box(99, 200, 300, 300)


def _units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"unit_code": ["90001", "90002", "90003"]}, geometry=[A, B, C], crs="EPSG:9215")


def _khoanh() -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({
        "commune_code": ["06253", "06253", "06274", "06274", "06274"], "khoanh_no": [1, 2, 1, 2, 3],
        "landuse": ["LUC", "ONT", "RST", "CLN", "NTS"], "owner_type": "GDC",
        "uses": [None, json.dumps({"ONT": 300.0, "CLN": 3700.0}), None, None, None]},
        geometry=[shapely.box(0, 0, 50, 100),      # inside A
                  shapely.box(60, 0, 140, 50),     # across A | strip | B
                  shapely.box(140, 0, 300, 200),   # inside B
                  shapely.box(50, 200, 300, 300),  # across A and C, over their overlap
                  shapely.box(400, 400, 410, 410)],  # outside every unit
        crs="EPSG:9215")
    return frame.assign(area_m2=frame.area)


def test_every_square_metre_lands_in_exactly_one_new_unit():
    khoanh = _khoanh()
    pieces, slivers = regroup(khoanh, _units())
    # per land-use code, Σ over new units = Σ over old communes
    before, after = khoanh.groupby("landuse")["area_m2"].sum(), pieces.groupby("landuse")["area_m2"].sum()
    assert ((after - before).abs() / before).max() < 1e-9
    assert pieces.area.sum() == pytest.approx(khoanh.area.sum(), rel=1e-12)
    # a khoanh across a new boundary is cut; its compound uses follow the cut
    ont = pieces[pieces["landuse"] == "ONT"].set_index("commune_code")
    assert set(ont.index) == {"90001", "90002"} and ont.at["90002", "area_m2"] == pytest.approx(39.5 * 50)
    uses = {code: json.loads(u) for code, u in ont["uses"].items()}
    assert sum(u["ONT"] for u in uses.values()) == pytest.approx(300) and uses["90002"]["CLN"] == pytest.approx(
        3700 * 1975 / 4000)
    # the strip between A and B goes to A (the ONT khoanh lies more in A): listed as outside
    strip = slivers[(slivers["landuse"] == "ONT")].iloc[0]
    assert strip["kind"] == OUTSIDE and strip["area_m2"] == pytest.approx(25) and strip["unit_code"] == "90001"
    # the strip inside A and C goes to C (the CLN khoanh lies more in C), counted once
    twice = slivers[slivers["kind"] == TWICE].iloc[0]
    assert twice["landuse"] == "CLN" and twice["area_m2"] == pytest.approx(100) and twice["unit_code"] == "90003"
    cln = pieces[pieces["landuse"] == "CLN"].set_index("commune_code")["area_m2"]
    assert cln["90003"] == pytest.approx(201 * 100) and cln["90001"] == pytest.approx(49 * 100)
    # a khoanh outside every unit goes to the nearest whole, and is listed
    nts = pieces[pieces["landuse"] == "NTS"]
    assert list(nts["commune_code"]) == ["90003"] and (slivers["landuse"] == "NTS").sum() == 1
    assert set(pieces["old_commune_code"]) == {"06253", "06274"}


def test_crosswalk_rows_add_up_both_ways():
    khoanh = _khoanh()
    pieces, _ = regroup(khoanh, _units())
    table = crosswalk(pieces, {"06253": "Thị trấn Văn Quan", "06274": "Xã Hòa Bình"},
                      {"90001": "Xã Văn Quan", "90002": "Xã B", "90003": "Xã C"})
    old = table.groupby("old_commune_code")["area_m2"].sum()
    assert old.to_dict() == pytest.approx(khoanh.groupby("commune_code")["area_m2"].sum().to_dict())
    assert table.groupby("new_unit_code")["area_m2"].sum().to_dict() == pytest.approx(
        pieces.groupby("commune_code")["area_m2"].sum().to_dict())
    assert table.groupby("old_commune_code")["share_of_old"].sum().tolist() == pytest.approx([1, 1])
    assert table.groupby("new_unit_code")["share_of_new"].sum().tolist() == pytest.approx([1, 1, 1])
    # the new Văn Quan is made of parts of two old communes
    assert set(table.loc[table["new_unit_code"] == "90001", "old_commune_name"]) == {"Thị trấn Văn Quan",
                                                                                     "Xã Hòa Bình"}


def test_units_config_and_two_level_units():
    settings = settings_from_dict({"inventory": {"province": "20"}, "units": [
        {"path": "xa_2025.geojson", "label": "2025", "name_field": "ten"}]})
    (spec,) = settings.units
    assert spec.label == "2025" and spec.levels == ("xa", "tinh") and spec.name_field == "ten"
    with pytest.raises(ConfigError, match="levels"):
        settings_from_dict({"inventory": {"province": "20"}, "units": {"path": "x", "label": "x", "levels": ["tinh"]}})
    bounds = pd.DataFrame({"commune_code": ["90001", "90002"], "commune_name": ["Xã A", "Xã B"],
                           "district_code": ["000", "000"], "district_name": ["", ""]})
    units = build_units(["90001", "90002"], bounds, "Lạng Sơn", "20", levels=("xa", "tinh"))
    assert [u.level for u in units] == ["xa", "xa", "tinh"]
    assert [c.code for c in units[-1].children] == ["90001", "90002"]


@pytest.fixture(scope="module")
def units_run(sample_run):
    return sample_run / "units_2025"


@pytest.mark.slow
def test_sample_on_the_communes_of_2025(sample_run, units_run):
    crosswalk_table = pd.read_csv(units_run / "stats" / "crosswalk_2025.csv", dtype={"old_commune_code": str,
                                                                                     "new_unit_code": str})
    new_units = sorted(crosswalk_table["new_unit_code"].unique())
    assert len(new_units) == 8 and "Xã Văn Quan" in set(crosswalk_table["new_unit_name"])
    # the province total is unchanged, per code too
    old = pd.read_csv(sample_run / "stats" / "areas.csv", dtype={"commune_code": str})
    new = pd.read_csv(units_run / "stats" / "areas.csv", dtype={"commune_code": str})
    assert set(new["commune_code"]) == set(new_units)
    by_code = new.groupby("landuse")["area_m2"].sum() - old.groupby("landuse")["area_m2"].sum()
    assert by_code.abs().max() < 1e-6
    # the crosswalk adds up to each old commune and to each new unit
    khoanh = read_geoparquets(sorted((sample_run / "khoanh").glob("*.parquet")))
    assert crosswalk_table.groupby("old_commune_code")["area_m2"].sum().to_dict() == pytest.approx(
        khoanh.groupby("commune_code")["area_m2"].sum().to_dict())
    pieces = read_geoparquets(sorted((units_run / "khoanh").glob("*.parquet")))
    assert crosswalk_table.groupby("new_unit_code")["area_m2"].sum().to_dict() == pytest.approx(
        pieces.groupby("commune_code")["area_m2"].sum().to_dict())
    # the map layer of the new units (streamed a unit at a time): every piece with a land use, once
    layer = gpd.read_file(units_run / "khoanh_dat_2025.gpkg")
    coded = pieces[pieces["landuse"].notna()]
    assert len(layer) == len(coded) and layer.crs == pieces.crs
    assert sorted(layer["MAXA"].unique()) == new_units
    assert layer.geometry.area.sum() == pytest.approx(coded.geometry.area.sum())
    # forms for every new commune and the province (two levels: no district), a map each
    assert not (units_run / "forms" / "huyen").exists()
    for code in new_units:
        assert (units_run / "forms" / "xa" / code / "Bieu_01_TKDD.xlsx").exists()
        meta = json.loads((units_run / "maps" / f"xa_{code}.json").read_text())
        assert meta["labelled_big"] == meta["big_khoanh"]
    header = pd.read_csv(units_run / "forms" / "tinh" / "20" / "Bieu_04_TKDD.csv", nrows=0).columns
    assert "(10) Xã Văn Quan" in header and not any("Huyện" in h for h in header)
    book = openpyxl.load_workbook(units_run / "stats" / "crosswalk_2025.xlsx")
    assert book.sheetnames[0] == "Bảng chuyển đổi" and "Xã Văn Quan" in book.sheetnames
    assert "từ Thị trấn Văn Quan" in book["Xã Văn Quan"]["A2"].value
    assert book["Bảng chuyển đổi"].oddFooter.center.text == "Trang &P/&N"  # the table runs over pages
    report = (units_run / "reports" / "regroup.md").read_text(encoding="utf-8")
    assert "mã tạm" in report and "chênh lệch 0,000000 m²" in report  # written the Vietnamese way
    assert "cấp: xã, tỉnh)" in report and "Khoanh đất: 5.482; mảnh sau khi cắt: 5.748." in report


def test_parcels_follow_their_whole_khoanh_and_are_cut_with_the_cut_ones():
    """The fast path (a parcel of an uncut khoanh goes with it) gives the pieces of the exact overlay."""
    from pipeline.regroup.overlay import regroup_parcels

    khoanh = _khoanh()
    halves = []  # each khoanh split into two parcels side by side
    for row in khoanh.itertuples():
        x0, y0, x1, y1 = row.geometry.bounds
        mid = (x0 + x1) / 2
        halves += [(row.commune_code, row.khoanh_no, 1, shapely.box(x0, y0, mid, y1)),
                   (row.commune_code, row.khoanh_no, 2, shapely.box(mid, y0, x1, y1))]
    parcels = gpd.GeoDataFrame({"commune_code": [h[0] for h in halves], "sheet_no": [str(h[1]) for h in halves],
                                "parcel_no": [str(h[2]) for h in halves], "landuse": "LUC", "uses": None},
                               geometry=[h[3] for h in halves], crs="EPSG:9215")
    parcels["area_m2"] = parcels.area
    khoanh["parcel_ids"] = [f"{n}/1, {n}/2" for n in khoanh["khoanh_no"]]
    pieces, _ = regroup(khoanh, _units())
    fast = regroup_parcels(parcels, khoanh, pieces, _units())
    exact, _ = regroup(parcels, _units(), order=("sheet_no", "parcel_no"))
    assert len(fast) == len(exact) > len(parcels)  # some halves are cut by the new boundaries
    assert list(fast["commune_code"]) == list(exact["commune_code"])
    assert shapely.equals(fast.geometry.values, exact.geometry.values).all()
    assert fast["area_m2"].to_numpy() == pytest.approx(exact["area_m2"].to_numpy())


@pytest.mark.slow
def test_one_changed_commune_is_cut_again_and_only_the_units_it_feeds_are_put_together(sample_run, tmp_path):
    """After one old commune's khoanh change, the regroup cuts that commune
    again and rewrites only the new units it feeds; the result equals a
    regroup from scratch."""
    import shutil

    from pipeline.regroup import regroup_all
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "qa", "*.gpkg", "*.tif", "*.qgz"))
    units = work / "units_2025"
    khoanh = gpd.read_parquet(work / "khoanh" / "06253.parquet")
    khoanh.loc[khoanh["area_m2"].idxmax(), "landuse"] = "BHK"
    khoanh.to_parquet(work / "khoanh" / "06253.parquet")
    before = {p.name: p.stat().st_mtime_ns for p in (units / "khoanh").glob("*.parquet")}
    regroup_all(WorkDir(work))
    after = {p.name: p.stat().st_mtime_ns for p in (units / "khoanh").glob("*.parquet")}
    fed = set(pd.read_csv(units / "stats" / "crosswalk_2025.csv", dtype=str)
              .query("old_commune_code == '06253'")["new_unit_code"])
    assert {name for name in after if after[name] != before.get(name)} == {f"{u}.parquet" for u in fed}
    assert fed == {"90006", "90007"}
    fresh = tmp_path / "fresh"
    shutil.copytree(work, fresh, ignore=shutil.ignore_patterns("units_2025"))
    regroup_all(WorkDir(fresh))
    for name in after:
        pd.testing.assert_frame_equal(pd.read_parquet(units / "khoanh" / name),
                                      pd.read_parquet(fresh / "units_2025" / "khoanh" / name))
    assert (units / "stats" / "crosswalk_2025.csv").read_bytes() == \
        (fresh / "units_2025" / "stats" / "crosswalk_2025.csv").read_bytes()
    assert "BHK" in set(pd.read_parquet(units / "khoanh" / "90006.parquet")["landuse"]) | \
        set(pd.read_parquet(units / "khoanh" / "90007.parquet")["landuse"])


def test_a_regroup_from_scratch_leaves_nothing_of_the_cut_before(sample_run, tmp_path):
    """When every old commune changed, the regroup starts afresh: the parts of
    the cut before (set aside and removed while the communes are cut again)
    are gone, none is left in a folder beside, and the result is the same."""
    import shutil

    from pipeline.regroup import regroup_all
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "qa", "*.gpkg", "*.tif", "*.qgz"))
    units = work / "units_2025"
    before = {p.name: pd.read_parquet(p) for p in (units / "khoanh").glob("*.parquet")}
    stray = units / "parts" / "khoanh" / "99999" / "06253.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a part of a unit the last cut made")
    for path in (work / "khoanh").glob("*.parquet"):
        path.touch()
    regroup_all(WorkDir(work))
    assert not stray.exists() and not stray.parent.exists()
    assert [p.name for p in units.iterdir() if p.name.startswith(".")] == []
    assert sorted(p.stem for p in (units / "parts" / "cut").glob("*.json")) == \
        sorted(p.stem for p in (work / "khoanh").glob("*.parquet"))
    assert sorted(before) == sorted(p.name for p in (units / "khoanh").glob("*.parquet"))
    for name, frame in before.items():
        pd.testing.assert_frame_equal(pd.read_parquet(units / "khoanh" / name), frame)


def test_the_units_khoanh_layer_is_replaced_only_once_written_whole(tmp_path, monkeypatch):
    """The khoanh on the new units (``khoanh_dat_2025.gpkg``) is written beside
    and takes its name once whole: a run stopped while writing it (Ctrl+C, power)
    leaves the one before readable, not a broken GeoPackage newer than its inputs."""
    import pyarrow as pa
    import pyogrio
    from pyproj import CRS

    from pipeline.regroup import stage

    def layer(name: str, unit: str, n: int) -> Path:
        table = pa.table({"MAXA": [unit] * n, "SOKHOANH": list(range(1, n + 1)),
                          "geom": shapely.to_wkb(shapely.multipolygons([[square(100 * k)] for k in range(n)]))})
        with pa.ipc.new_file(tmp_path / name, table.schema) as writer:
            writer.write_table(table)
        return tmp_path / name

    path, crs = tmp_path / "units_2025" / "khoanh_dat_2025.gpkg", CRS.from_epsg(9215)
    path.parent.mkdir()
    stage.write_khoanh_layer(path, [layer("a.arrow", "27001", 2), layer("b.arrow", "27004", 3)], crs)
    assert len(pyogrio.read_dataframe(path)) == 5

    def stopped(reader, target, **kwargs):
        Path(target).write_bytes(b"SQLite format 3\0 half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(stage.pyogrio, "write_arrow", stopped)
    with pytest.raises(KeyboardInterrupt):
        stage.write_khoanh_layer(path, [layer("c.arrow", "27001", 4)], crs)
    written = pyogrio.read_dataframe(path)
    assert list(written["MAXA"]) == ["27001"] * 2 + ["27004"] * 3 and written.crs.to_epsg() == 9215
    assert sorted(p.name for p in path.parent.iterdir()) == ["khoanh_dat_2025.gpkg"]


def test_the_units_boundary_file_edited_in_qgis_is_kept_beside_and_made_again(sample_run, tmp_path, caplog):
    """A planner moves a new unit's boundary in kiemke's copy of the units
    (``units_2025/ranh_gioi_xa_2025.geojson``) and saves. The units' sheets
    and natural areas are drawn on that file: it is kept beside and made again
    from the [units] file, as the officer is told; the edit reaches no sheet."""
    import shutil

    import pyogrio

    from pipeline.regroup import regroup_all
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "qa", "*.gpkg", "*.tif", "*.qgz"))
    boundaries = work / "units_2025" / "ranh_gioi_xa_2025.geojson"
    written = boundaries.read_bytes()
    units = pyogrio.read_dataframe(boundaries)
    units.loc[0, "geometry"] = units.geometry[0].buffer(50)  # QGIS: a unit's boundary moved out 50 m
    boundaries.unlink()
    pyogrio.write_dataframe(units, boundaries, driver="GeoJSON")
    with caplog.at_level("WARNING"):
        regroup_all(WorkDir(work))
    [aside] = boundaries.parent.glob("ranh_gioi_xa_2025_ban_sua_*.geojson")
    assert pyogrio.read_dataframe(aside).geometry[0].equals(units.geometry[0])
    assert boundaries.read_bytes() == written
    assert f"Tệp ranh giới đơn vị mới do kiemke lập đã được sửa sau khi kiemke lập: bản đó được giữ lại thành {aside}" \
        in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        regroup_all(WorkDir(work))  # nothing edited since: nothing kept, nothing said
    assert list(boundaries.parent.glob("*_ban_sua_*")) == [aside] and caplog.text == ""


def test_a_new_units_sources_line_has_the_room_its_text_needs(tmp_path):
    """A new unit made of communes with long names: its sources line wraps in a
    row as tall as its lines (the row was sized by the number of sources, one
    line for two, and cut the second line)."""
    from pipeline.measure import column_width_pt, lines_needed, row_height_pt
    from pipeline.regroup.report import SOURCES_WIDTH, crosswalk_workbook, sources_line

    names = ["Thị trấn Nông trường Thống Nhất huyện Yên Định cũ", "Xã Nghĩa Lâm thuộc thị xã Quảng Trị cũ"]
    table = pd.DataFrame({"old_commune_code": ["00001", "00002"], "old_commune_name": names,
                          "new_unit_code": ["90001"] * 2, "new_unit_name": ["Phường Đông Sơn mở rộng"] * 2,
                          "area_m2": [1_234_567_890.0, 987_654_321.0], "share_of_old": [1.0, 1.0],
                          "share_of_new": [0.56, 0.44]})
    sheet = openpyxl.load_workbook(crosswalk_workbook(tmp_path / "c.xlsx", table, "2025"))["Phường Đông Sơn mở rộng"]
    line = sources_line("Phường Đông Sơn mở rộng", table)
    lines = lines_needed(line, 11, column_width_pt(SOURCES_WIDTH))
    assert sheet["A2"].value == line and lines >= 2
    assert sheet.row_dimensions[2].height >= row_height_pt(lines, 11)


def test_a_new_units_file_deleted_by_hand_is_put_together_again_and_only_it(sample_run, tmp_path):
    """The whole parcels folder of the new units, or one unit's khoanh file,
    deleted by hand: the next regroup puts together those units again (as
    they were) and no other, and leaves the units' manifest (whose time dates
    their sheets) as it was; before, it took itself for up to date, and the
    next stages stopped on 'no parcels'."""
    import shutil

    from pipeline.regroup import regroup_all
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "qa", "*.gpkg", "*.tif", "*.qgz"))
    units = work / "units_2025"
    parcels = {p.name: pd.read_parquet(p) for p in (units / "parcels").glob("*.parquet")}
    shutil.rmtree(units / "parcels")
    regroup_all(WorkDir(work))  # (the manifest of a work folder copied alone is written here anew)
    assert sorted(p.name for p in (units / "parcels").glob("*.parquet")) == sorted(parcels) and len(parcels) > 5
    for name, frame in parcels.items():
        pd.testing.assert_frame_equal(pd.read_parquet(units / "parcels" / name), frame)
    khoanh = units / "khoanh" / "90001.parquet"
    was = pd.read_parquet(khoanh)
    before = {p.name: p.stat().st_mtime_ns for p in (units / "khoanh").glob("*.parquet")}
    manifest = (units / "inventory.json").stat().st_mtime_ns
    khoanh.unlink()
    regroup_all(WorkDir(work))
    pd.testing.assert_frame_equal(pd.read_parquet(khoanh), was)
    after = {p.name: p.stat().st_mtime_ns for p in (units / "khoanh").glob("*.parquet")}
    assert {name for name in after if after[name] != before.get(name)} == {"90001.parquet"}
    assert (units / "inventory.json").stat().st_mtime_ns == manifest
    (units / "stats" / "crosswalk_2025.xlsx").unlink()  # the officers' crosswalk workbook, too
    regroup_all(WorkDir(work))
    assert (units / "stats" / "crosswalk_2025.xlsx").exists()
