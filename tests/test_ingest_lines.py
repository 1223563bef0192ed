"""Parcels drawn as lines, as a sheet converted from MicroStation keeps them:
closed polylines carrying the attributes, or the boundary lines in one file
and a label point per parcel in another; and a DGN of lines and texts."""

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest.linework import label_drawing
from pipeline.ingest.read import UNREADABLE
from pipeline.messages import untranslated, vi
from tests.helpers import X0, Y0, square


def _ingest(raw, work):
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    return result, json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))


def _outline(polygon: shapely.Polygon) -> shapely.LineString:
    return shapely.LineString(polygon.exterior.coords)


def _labels(points: list, numbers: list[int], codes: list[str], sheet: int = 1) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"MAXA": ["06253"] * len(points), "SHBANDO": [sheet] * len(points),
                             "SHTHUA": numbers, "KHLOAIDAT": codes}, geometry=points, crs="EPSG:9215")


def _lines(geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"LEVEL": [10] * len(geoms)}, geometry=geoms, crs="EPSG:9215")


def test_closed_polylines_carrying_attributes_are_read_as_parcels(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    open_line = shapely.LineString([(X0, Y0 + 300), (X0 + 100, Y0 + 300)])
    frame = _labels([_outline(square(0)), _outline(square(100)), open_line], [1, 2, 3], ["LUC", "ONT", "CLN"])
    frame.to_file(raw / "TD_06253.shp")
    _, report = _ingest(raw, tmp_path / "work")
    (file,) = report["files"]
    assert file["repairs"]["closed lines read as the parcels they enclose"] == 2
    assert (file["features_out"], file["area_out_m2"]) == (2, pytest.approx(20_000.0))
    assert file["quarantined_by_reason"] == {"not a polygon": {"features": 1, "area_m2": 0.0}}  # the open line
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(parcels["landuse"]) == ["LUC", "ONT"]


def _sheet_folder(raw, sheet: int, x: float = 0.0) -> None:
    """One sheet as lines and labels: five 100 m cells drawn as each parcel's
    closed outline (every shared edge twice). Cell 4 has no label; cell 3 has
    two, the line between them not drawn; the label of parcel 5 lies outside."""
    cells = [square(x + 100 * (i % 3), 100 * (i // 3)) for i in range(5)]
    _lines([_outline(c) for c in cells]).to_file(raw / f"To{sheet:02d}_ranh.shp")
    points = [c.centroid for c in cells[:4]] + [shapely.Point(X0 + x + 450, Y0 + 150),
                                                shapely.Point(X0 + x + 20, Y0 + 180)]
    _labels(points, [1, 2, 3, 4, 5, 6], ["LUC", "ONT", "CLN", "BHK", "ODT", "NTS"], sheet).to_file(
        raw / f"To{sheet:02d}_nhan.shp")


def test_boundary_lines_and_label_points_in_two_files_make_the_parcels(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sheet_folder(raw, 1)
    result, report = _ingest(raw, tmp_path / "work")
    assert f"ingest: {raw}/To01_nhan.shp là điểm nhãn của các thửa dựng từ đường ranh thửa trong {raw}/To01_ranh.shp" \
        in result.output
    (file,) = report["files"]  # the lines are read with their labels, not as a file of their own
    assert file["path"].endswith("To01_nhan.shp") and not file["skipped"]
    assert file["repairs"] == {"parcels built from the faces of the boundary lines in To01_ranh.shp, "
                               "each with the label point inside it": 4}
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").sort_values("parcel_no")
    assert list(parcels["parcel_no"]) == ["1", "2", "3"] and list(parcels["landuse"]) == ["LUC", "ONT", "CLN"]
    assert parcels["area_m2"].tolist() == pytest.approx([10_000.0] * 3)
    assert set(parcels["sheet_no"]) == {"1"} and set(parcels["source_fid"]) == {0, 1, 2}
    quarantine = gpd.read_parquet(tmp_path / "work/quarantine/06253.parquet")
    by_reason = dict(zip(quarantine["reason"], quarantine["source_fid"], strict=True))
    assert by_reason.pop("blank land-use code") < 0  # the cell without a label: a FID of its own, for the review
    assert set(quarantine["sheet_no"]) == {"1"}  # and the sheet every label of the file gives
    assert by_reason == {
        "2 labels inside one face of the boundary lines (4 BHK, 6 NTS): the line between them is missing": 3,
        "label in no closed face of the boundary lines: they do not close around it": 4,
    }
    # nothing lost: the five cells and the stray label, read = accepted + quarantined
    assert (file["features_in"], file["area_in_m2"]) == (6, pytest.approx(50_000.0))
    assert file["area_in_m2"] == pytest.approx(file["area_out_m2"] + file["area_quarantined_m2"])
    said = {*file["quarantined_by_reason"], *file["repairs"], *file["warnings"]}  # as the report groups them
    assert not untranslated(said), "the report's words the officer would read in English"
    assert file["warnings"] == [
        "1 faces of the boundary lines hold no label point: quarantined without a land-use code",
        "1 faces hold more than one label point and 1 label points lie in no closed face: the boundary lines are "
        "broken there (quarantined)"]


def test_the_review_layer_shows_where_a_stray_label_lies(tmp_path):
    from pipeline.ingest.review import MARKER_M, review_frame, review_inputs

    raw = tmp_path / "raw"
    raw.mkdir()
    _sheet_folder(raw, 1)
    _ingest(raw, tmp_path / "work")
    work = tmp_path / "work"
    rows = review_frame(*review_inputs(work / "parcels/06253.parquet", work / "quarantine/06253.parquet"))
    stray = rows[rows["why"].str.startswith("Nhãn thửa không nằm trong vùng khép kín")]
    assert len(stray) == 1 and stray.geometry.iat[0].contains(shapely.Point(X0 + 450, Y0 + 150))
    assert stray.area.iat[0] == pytest.approx(3.14159 * MARKER_M**2, rel=0.02)  # a marker, not a parcel
    assert set(rows.geom_type) == {"Polygon"} and len(rows) == 6  # all that the workbook lists


def test_a_correction_names_a_face_without_label_by_its_fid_after_other_lines_change(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sheet_folder(raw, 1)
    _ingest(raw, tmp_path / "work")
    quarantine = gpd.read_parquet(tmp_path / "work/quarantine/06253.parquet")
    fid = int(quarantine.loc[quarantine["reason"].eq("blank land-use code"), "source_fid"].iat[0])
    (tmp_path / "sua.csv").write_text(f"tep_nguon,fid,ma_loai_dat_dung\nTo01_nhan.shp,{fid},NTS\n", encoding="utf-8")
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\ninput = "raw"\nworkdir = "work"\n'
                      '[review]\ncorrections = "sua.csv"\n', encoding="utf-8")
    for extra in ([], [shapely.LineString([(X0, Y0 + 50), (X0 + 100, Y0 + 50)])]):  # then a line in another parcel
        if extra:
            lines = gpd.read_file(raw / "To01_ranh.shp")
            pd.concat([lines, _lines(extra)]).to_file(raw / "To01_ranh.shp")
        result = CliRunner().invoke(cli, ["ingest", "--config", str(config)])
        assert result.exit_code == 0, result.output
        parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
        assert parcels.loc[parcels["source_fid"].eq(fid), "landuse"].tolist() == ["NTS"]


def test_each_sheets_lines_go_with_its_labels_and_a_changed_line_file_is_read_again(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sheet_folder(raw, 1)
    _sheet_folder(raw, 2, x=1000)
    _ingest(raw, tmp_path / "work")
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(zip(parcels["sheet_no"], parcels["parcel_no"], strict=True)) == [(s, n) for s in "12" for n in "123"]
    # the officer draws the missing line in sheet 2's lines file: the cache sees it
    lines = gpd.read_file(raw / "To02_ranh.shp")
    missing = shapely.LineString([(X0 + 1000, Y0 + 165), (X0 + 1100, Y0 + 165)])
    pd.concat([lines, _lines([missing])]).to_file(raw / "To02_ranh.shp")
    _ingest(raw, tmp_path / "work")
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet")
    assert sorted(parcels.loc[parcels["sheet_no"].eq("2"), "landuse"]) == ["BHK", "CLN", "LUC", "NTS", "ONT"]


def test_a_dgn_of_lines_and_texts_becomes_labelled_faces():
    cells = [square(0), square(100)]
    frame = gpd.GeoDataFrame({
        "Type": [4, 4, 17, 17, 17, 17, 17],
        "Text": [None, None, "LUC", "125", "ONT", "CLN", "127"],  # the last two: a parcel whose lines are missing
    }, geometry=[_outline(c) for c in cells] + [shapely.Point(X0 + 50, Y0 + 50), shapely.Point(X0 + 40, Y0 + 40),
                                                 shapely.Point(X0 + 150, Y0 + 50), shapely.Point(X0 + 250, Y0 + 50),
                                                 shapely.Point(X0 + 240, Y0 + 40)])
    shapes, used, built, stray = label_drawing(frame)
    assert (used, built, stray) == (3, 2, 1)  # the stray code is said; a stray number alone is not
    shapes = shapes.assign(x=shapes.geometry.centroid.x).sort_values("x")
    assert list(shapes["KHLOAIDAT"]) == ["LUC", "ONT"] and list(shapes["SHTHUA"].fillna("")) == ["125", ""]
    assert shapes.area.tolist() == pytest.approx([10_000.0, 10_000.0])


def _dxf(path, cells: list, texts: list[tuple[float, float, str]]) -> None:
    """An AutoCAD DXF (ENTITIES only, as GDAL reads it): each cell's edges as LINEs, the labels as TEXTs."""
    codes: list[str] = []
    for cell in cells:
        ring = list(cell.exterior.coords)
        for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
            codes += ["0", "LINE", "8", "RANH_THUA", "10", f"{x1}", "20", f"{y1}", "11", f"{x2}", "21", f"{y2}"]
    for x, y, text in texts:
        codes += ["0", "TEXT", "8", "NHAN_THUA", "10", f"{X0 + x}", "20", f"{Y0 + y}", "40", "2.0", "1", text]
    path.write_text("\n".join(["0", "SECTION", "2", "ENTITIES", *codes, "0", "ENDSEC", "0", "EOF", ""]))


def test_an_autocad_dxf_of_lines_and_texts_is_read_as_labelled_parcels(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _dxf(raw / "To07.dxf", [square(0), square(100), square(200)],
         [(50, 50, "LUC"), (40, 40, "125"), (150, 50, "ONT"), (140, 40, "126"), (350, 50, "NTS")])
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--commune-code", "06253",
                                      "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").sort_values("parcel_no")
    assert list(zip(parcels["sheet_no"], parcels["parcel_no"], parcels["landuse"], strict=True)) == [
        ("7", "125", "LUC"), ("7", "126", "ONT")]
    quarantine = gpd.read_parquet(tmp_path / "work/quarantine/06253.parquet")
    assert list(quarantine["reason"]) == ["blank land-use code"]  # the third cell: no text inside
    report = json.loads((tmp_path / "work/reports/ingest.json").read_text(encoding="utf-8"))
    assert report["files"][0]["repairs"]["the DXF has no closed shapes: parcels built from the faces its lines "
                                         "enclose"] == 3
    assert report["area_in_m2"] == pytest.approx(30_000.0)
    assert report["files"][0]["warnings"] == [  # a code beyond the lines: a parcel the drawing does not close
        "1 texts with a land-use code lie in no closed shape: their parcels are missing (the boundary lines do not "
        "close there, or parcels drawn as lines beside closed shapes)"]


def test_files_kiemke_cannot_open_are_named_not_passed_over(tmp_path):
    """A commune sent as a RAR archive or an AutoCAD DWG beside the others'
    shapefiles: said in the report and on the console; alone, they stop the run."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "xa_06256.rar").write_bytes(b"Rar!\x1a\x07\x00")
    (raw / "ban_ve.dwg").write_bytes(b"AC1027")
    only = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--workdir", str(tmp_path / "w")])
    assert only.exit_code == 1 and "ban_ve.dwg: Bản vẽ AutoCAD (DWG), GDAL không đọc được" in only.output
    _dxf(raw / "To07.dxf", [square(0)], [(50, 50, "LUC")])
    _, report = _ingest_with_code(raw, tmp_path / "work")
    left = {f["path"].rsplit("/", 1)[-1]: f["skipped"] for f in report["files"] if f["skipped"]}
    assert left == {"ban_ve.dwg": "an AutoCAD drawing (DWG), which GDAL cannot read: not read",
                    "xa_06256.rar": "a RAR archive, which kiemke cannot open: not read"}
    assert "Tệp nén RAR, kiemke không mở được" in (tmp_path / "work/reports/ingest.md").read_text(encoding="utf-8")
    assert all(vi(why) != why for why in UNREADABLE.values())  # each reason reads in Vietnamese


def _ingest_with_code(raw, work):
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--commune-code", "06253",
                                      "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    assert "Đã đọc 1 tệp" in result.output
    return result, json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))


def test_a_dgn_saved_as_shapefiles_of_lines_and_of_texts_is_read_as_labelled_parcels(tmp_path):
    """QGIS saves a DGN's elements by geometry type: To03_line.shp, To03_point.shp (its texts)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _lines([_outline(square(0)), _outline(square(100))]).to_file(raw / "To03_line.shp")
    gpd.GeoDataFrame({"Type": [17] * 3, "Level": [2] * 3, "Text": ["LUC", "47", "ONT"]},
                     geometry=[shapely.Point(X0 + 50, Y0 + 50), shapely.Point(X0 + 40, Y0 + 40),
                               shapely.Point(X0 + 150, Y0 + 50)], crs="EPSG:9215").to_file(raw / "To03_point.shp")
    _, report = _ingest_with_code(raw, tmp_path / "work")
    (file,) = report["files"]
    assert file["repairs"]["parcels built from the faces of the boundary lines in To03_line.shp, labelled by the "
                           "texts inside them"] == 2
    parcels = gpd.read_parquet(tmp_path / "work/parcels/06253.parquet").sort_values("landuse")
    assert list(zip(parcels["sheet_no"], parcels["parcel_no"].fillna(""), parcels["landuse"], strict=True)) == [
        ("3", "47", "LUC"), ("3", "", "ONT")]


def test_labels_beside_polygon_parcels_are_not_joined_to_a_road_file(tmp_path):
    """A folder of polygon parcels, a road (lines) and label points: the folder's
    only lines and only labels are not paired when it holds polygons."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _labels([square(0), square(100)], [1, 2], ["LUC", "ONT"]).to_file(raw / "thua_dat.shp")
    _lines([shapely.LineString([(X0 - 50, Y0 + 50), (X0 + 250, Y0 + 50)])]).to_file(raw / "giao_thong.shp")
    _labels([square(0).centroid, square(100).centroid], [1, 2], ["LUC", "ONT"]).to_file(raw / "ghi_chu.shp")
    _, report = _ingest(raw, tmp_path / "work")
    files = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert files["giao_thong.shp"]["skipped"] and not any("faces" in r for f in files.values() for r in f["repairs"])
    assert files["thua_dat.shp"]["features_out"] == 2 and files["ghi_chu.shp"]["features_out"] == 0


def test_a_boundary_drawn_twice_with_floating_point_noise_leaves_no_sliver():
    from pipeline.ingest.linework import faces_of

    left = _outline(square(0))
    x, y = X0 + 100, Y0  # the right parcel's copy of the shared edge, a micrometre into the left parcel at one end
    right = shapely.LineString([(x - 1e-6, y), (x + 100, y), (x + 100, y + 100), (x, y + 100), (x - 1e-6, y)])
    for crs in ("EPSG:9215", None):
        faces = faces_of(gpd.GeoSeries([left, right], crs=crs).values, gpd.GeoSeries([left], crs=crs).crs)
        assert sorted(shapely.area(faces).round(3)) == [10_000.0, 10_000.0]
    noisy = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all([left, right]))))
    assert len(noisy) == 3  # without the grid: a sliver between the two drawings


def test_a_file_that_cannot_be_opened_is_left_for_ingest_to_explain(tmp_path):
    """Pairing looks at every file first; one it cannot open (here a folder named
    like a shapefile) is passed on as it is, for the reader's clear message."""
    from pipeline.ingest.linework import pair_lines_with_labels
    from pipeline.ingest.read import Source

    (tmp_path / "hong.shp").mkdir()
    sources = [Source(tmp_path / "hong.shp")]
    assert pair_lines_with_labels(sources, lambda fields: True) == sources
