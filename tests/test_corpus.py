"""A corpus of broken inputs, as officers receive them. Each ends either in a
clear message (the file named, non-zero exit, no traceback) or in parcels plus
quarantine with reasons — and then nothing is lost: features in = out +
quarantined, area in = out + quarantined."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.messages import untranslated
from tests.helpers import X0, Y0, square


def frame(geoms, **columns) -> gpd.GeoDataFrame:
    n = len(geoms)
    data = {"MAXA": ["06253"] * n, "SHBANDO": list(range(1, n + 1)), "SHTHUA": [1] * n,
            "KHLOAIDAT": ["LUC"] * n, "DOITUONG": ["GDC"] * n}
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs="EPSG:9215")


def shp(folder: Path, gdf: gpd.GeoDataFrame, name: str = "td.shp", **kwargs) -> Path:
    path = folder / name
    pyogrio.write_dataframe(gdf, path, **kwargs)
    return path


def geojson(folder: Path, features: list, name: str = "td.geojson", crs: str | None = None) -> Path:
    doc = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path = folder / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def feature(coords, geom_type="Polygon", **props):
    props = {"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "MAXA": "06253", **props}
    return {"type": "Feature", "properties": props, "geometry": {"type": geom_type, "coordinates": coords}}


def ring(x=X0, y=Y0, s=50.0):
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]


# ---------------------------------------------------------------- the corpus
# builder(folder) -> path to ingest;  expected: "error" (clear message) or "ingest"
# (exit 0, conservation holds); for "ingest" an optional check on (report, parcels, quarantine)


def truncated_shp(d):
    p = shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)]))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def missing_part(suffix):
    def build(d):
        p = shp(d, frame([square(0 * 50, 0, 50)]))
        p.with_suffix(suffix).unlink()
        return p
    return build


def zero_byte(name):
    def build(d):
        (d / name).write_bytes(b"")
        return d / name
    return build


def empty_gpkg(d):
    path = d / "empty.gpkg"
    pyogrio.write_dataframe(frame([square(0 * 50, 0, 50)]).iloc[:0], path, layer="thua")
    return path


def missing_shx_and_corrupt_prj(d):
    p = missing_part(".shx")(d)
    p.with_suffix(".prj").write_text("PROJCS[this is not WKT at all", encoding="ascii")
    return p


def corrupt_prj(d):
    p = shp(d, frame([square(0 * 50, 0, 50)]))
    p.with_suffix(".prj").write_text("PROJCS[this is not WKT at all", encoding="ascii")
    return p


def unknown_epsg(d):
    return geojson(d, [feature([ring()])], crs="urn:ogc:def:crs:EPSG::999999")


def outside_vietnam(d):
    return shp(d, frame([shapely.box(5_000_000, 9_000_000, 5_000_050, 9_000_050)]).set_crs(None, allow_override=True))


def nan_coords(d):
    return _write_nan(d, float("nan"))


def inf_coords(d):
    return _write_nan(d, float("inf"))


def _write_nan(d, value):
    good = square(0 * 50, 0, 50)
    bad = shapely.from_wkt(f"POLYGON (({X0 + 100} {Y0}, {value} {Y0}, {X0 + 100} {Y0 + 10}, {X0 + 100} {Y0}))"
                           .replace("inf", "Infinity"))
    path = d / "nan.gpkg"
    pyogrio.write_dataframe(frame([good, bad]), path)
    return path


def z_geometries(d):
    return shp(d, frame([shapely.force_3d(square(0 * 50, 0, 50), 12.5), shapely.force_3d(square(1 * 50, 0, 50), 13.0)]))


def m_geometries(d):
    pyogrio.write_dataframe(frame([square(0 * 50, 0, 50)]), d / "m.shp", layer_options={"SHPT": "POLYGONM"})
    return d / "m.shp"


def control_characters(d):
    """Values pasted from a spreadsheet (a vertical tab for a line break) or with stray bytes."""
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50), square(2 * 50, 0, 50)],
                        KHLOAIDAT=["LUC", "", "ONT\x07"], TENCHU=["Nguyễn\x0bVăn A", "Lê\x01Thị\x1fB", "Hà Văn C"]))


def curved_gpkg(d):
    """A GeoPackage as ArcGIS or QGIS writes arcs: a disc (CurvePolygon of one
    closed CircularString, r = 50 m), a MultiSurface of a plain square, a plain square."""
    x, y, r = X0 + 50, Y0 + 50, 50.0
    circle = struct.pack("<BII", 1, 8, 3) + struct.pack("<6d", x - r, y, x + r, y, x - r, y)
    disc = struct.pack("<BII", 1, 10, 1) + circle
    multisurface = struct.pack("<BII", 1, 12, 1) + shapely.to_wkb(square(2 * 50, 0, 50))
    geoms = np.array([disc, multisurface, shapely.to_wkb(square(3 * 50, 0, 50))], dtype=object)
    path = d / "cong.gpkg"
    pyogrio.raw.write(path, geometry=geoms, field_data=[np.array(["06253"] * 3, dtype=object),
                                                         np.array(["1", "2", "3"], dtype=object),
                                                         np.array(["LUC"] * 3, dtype=object)],
                      fields=["MAXA", "SHTHUA", "KHLOAIDAT"], geometry_type="Unknown", crs="EPSG:9215",
                      driver="GPKG", layer="thua")
    return path


def geometry_collection(d):
    coll = {"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [ring()]}, {"type": "LineString", "coordinates": [[X0, Y0], [X0 + 9, Y0]]}]}
    f = {"type": "Feature", "properties": {"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "MAXA": "06253"}, "geometry": coll}
    return geojson(d, [f, feature([ring(X0 + 100)])], crs="urn:ogc:def:crs:EPSG::9215")


def points(d):
    return geojson(d, [feature([X0, Y0], "Point"), feature([ring()])], crs="urn:ogc:def:crs:EPSG::9215")


def lines(d):
    return geojson(d, [feature([[X0, Y0], [X0 + 50, Y0]], "LineString"), feature([ring()])],
                   crs="urn:ogc:def:crs:EPSG::9215")


def self_intersection(d):
    return shp(d, frame([shapely.Polygon([(X0, Y0), (X0 + 50, Y0 + 50), (X0 + 50, Y0), (X0, Y0 + 50)])]))


def bow_tie_with_neighbours(d):
    tie = shapely.Polygon([(X0, Y0), (X0 + 40, Y0 + 40), (X0 + 40, Y0), (X0, Y0 + 40)])
    return shp(d, frame([tie, square(2 * 50, 0, 50), square(3 * 50, 0, 50)]))


def unclosed_ring(d):
    return geojson(d, [feature([ring()[:-1]]), feature([ring(X0 + 100)])], crs="urn:ogc:def:crs:EPSG::9215")


def repeated_vertices(d):
    coords = [(X0, Y0), (X0, Y0), (X0 + 50, Y0), (X0 + 50, Y0), (X0 + 50, Y0 + 50), (X0, Y0 + 50), (X0, Y0)]
    return shp(d, frame([shapely.Polygon(coords)]))


def zero_area(d):
    return shp(d, frame([shapely.Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 20, Y0)]), square(3 * 50, 0, 50)]))


def huge_polygon(d):
    return shp(d, frame([shapely.box(X0 - 60_000, Y0 - 60_000, X0 + 60_000, Y0 + 60_000), square(0 * 50, 0, 50)]))


def bad_bytes(d):
    gdf = frame([square(0 * 50, 0, 50)], TENCHU=["placeholder"])
    p = shp(d, gdf, encoding="latin1")
    raw = p.with_suffix(".dbf").read_bytes().replace(b"placeholder", b"\xff\xfe\x81\x8d\x9d\xff\xfe\x81\x8d\x9d\xff")
    p.with_suffix(".dbf").write_bytes(raw)
    p.with_suffix(".cpg").write_text("UTF-8")
    return p


def null_code(d):
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)], KHLOAIDAT=[None, "LUC"]))


def blank_code(d):
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)], KHLOAIDAT=["  ", "LUC"]))


def duplicated_columns(d):
    f = feature([ring()])
    text = json.dumps({"type": "FeatureCollection", "features": [f]})
    text = text.replace('"KHLOAIDAT": "LUC"', '"KHLOAIDAT": "LUC", "KHLOAIDAT": "ONT"')
    (d / "dup.geojson").write_text(text, encoding="utf-8")
    return d / "dup.geojson"


def dbf_255_columns(d):
    extra = {f"C{i:03d}": [i] for i in range(250)}
    return shp(d, frame([square(0 * 50, 0, 50)], **extra))


def not_vector(suffix):
    def build(d):
        path = d / f"anh{suffix}"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        return path
    return build


def vietnamese_path(d):
    folder = d / "Huyện Văn Quan" / "Xã Khánh Khê 2019"
    folder.mkdir(parents=True)
    return shp(folder, frame([square(0 * 50, 0, 50)]), name="thửa đất.shp")


def malformed_json(d):
    (d / "hong.geojson").write_text('{"type": "FeatureCollection", "features": [ {"type": ', encoding="utf-8")
    return d / "hong.geojson"


def bad_esri_json(d):
    (d / "esri.json").write_text('{"geometryType": "esriGeometryPolygon", "features": [{"geometry": {"rings": 5}}]}',
                                 encoding="utf-8")
    return d / "esri.json"


def fake_zip(d):
    (d / "xa.zip").write_bytes(b"not a zip at all")
    return d / "xa.zip"


def zip_without_shapefile(d):
    with zipfile.ZipFile(d / "xa.zip", "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    return d / "xa.zip"


def dgn_v8(d):
    (d / "ban_do.dgn").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    return d / "ban_do.dgn"


def mixed_types(d):
    return geojson(d, [feature([ring()]), feature([X0, Y0], "Point"), feature([[ring(X0 + 100)]], "MultiPolygon")],
                   crs="urn:ogc:def:crs:EPSG::9215")


def null_geometry(d):
    f = feature([ring()])
    f["geometry"] = None
    return geojson(d, [f, feature([ring(X0 + 100)])], crs="urn:ogc:def:crs:EPSG::9215")


def other_province(d):  # VN-2000 TM-3 coordinates of Cà Mau (104°30′) given as Lạng Sơn's
    return shp(d, frame([shapely.box(520_000, 1_000_000, 520_050, 1_000_050)]).set_crs(None, allow_override=True))


def tab_missing_dat(d):
    pyogrio.write_dataframe(frame([square(0 * 50, 0, 50)]), d / "td.tab", driver="MapInfo File",
                            layer_options={"BOUNDS": "400000,2400000,500000,2500000"})
    (d / "td.dat").unlink()
    return d / "td.tab"


def corrupt_gpkg(d):
    (d / "xa.gpkg").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    return d / "xa.gpkg"


def unknown_owner(d):
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)], DOITUONG=["XYZ", "GDC"]))


def latlon_swapped(d):
    lon, lat = 106.7613, 21.8537
    return geojson(d, [feature([[[lat, lon], [lat + 0.0005, lon], [lat + 0.0005, lon + 0.0005], [lat, lon]]])])


def compound_unknown_member(d):
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)], KHLOAIDAT=["ONT+XYZ", "ONT+CLN"]))


def numeric_commune_code(d):
    return shp(d, frame([square(0 * 50, 0, 50)], MAXA=[6253]))


def lying_cpg(d):
    gdf = frame([square(0 * 50, 0, 50)], TENCHU=["Hoµng T©m"])
    p = shp(d, gdf, encoding="latin1")
    p.with_suffix(".cpg").write_text("UTF-8")
    return p


def hole_touching_shell(d):
    shell = [(X0, Y0), (X0 + 50, Y0), (X0 + 50, Y0 + 50), (X0, Y0 + 50), (X0, Y0)]
    hole = [(X0, Y0 + 25), (X0 + 20, Y0 + 15), (X0 + 20, Y0 + 35), (X0, Y0 + 25)]
    return shp(d, frame([shapely.Polygon(shell, [hole])]))


def multipolygon_with_empty_part(d):
    return geojson(d, [feature([[ring()], []], "MultiPolygon")], crs="urn:ogc:def:crs:EPSG::9215")


def garbage_area(d):
    return shp(d, frame([square(0 * 50, 0, 50), square(1 * 50, 0, 50)], DIENTICH=[-5.0, 1e12]))


def lines_with_a_gap(d):
    """Boundary lines and label points in two files; the second parcel's outline lacks its last edge."""
    outlines = [list(square(x).exterior.coords) for x in (0, 100)]
    lines = gpd.GeoDataFrame({"LEVEL": [1, 1]}, geometry=[shapely.LineString(outlines[0]),
                                                        shapely.LineString(outlines[1][:-1])], crs="EPSG:9215")
    shp(d, lines, "ranh_thua.shp")
    shp(d, frame([square(x).centroid for x in (0, 100)]), "nhan_thua.shp")
    return d


def open_polylines(d):
    """Parcels as lines carrying their attributes: one closed, one not."""
    ring = list(square(0).exterior.coords)
    return shp(d, frame([shapely.LineString(ring), shapely.LineString(ring[:-1])]))


def deleted_record(d):
    """A .dbf record marked deleted ('*') in the editing software, the file not packed."""
    path = shp(d, frame([square(i * 50, 0, 50) for i in range(3)]))
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    header, record = struct.unpack("<HH", dbf[8:12])
    dbf[header + record] = ord("*")
    path.with_suffix(".dbf").write_bytes(bytes(dbf))
    return path


CORPUS = {
    "truncated .shp": (truncated_shp, "any"),
    "missing .shx": (missing_part(".shx"), "ingest"),
    "missing .dbf": (missing_part(".dbf"), "error"),
    "missing .prj": (missing_part(".prj"), "ingest"),
    "zero-byte .shp": (zero_byte("td.shp"), "error"),
    "zero-byte .geojson": (zero_byte("td.geojson"), "error"),
    "empty GeoPackage layer": (empty_gpkg, "error"),
    "corrupt .prj": (corrupt_prj, "ingest"),
    "missing .shx and corrupt .prj": (missing_shx_and_corrupt_prj, "ingest"),
    "unknown EPSG code": (unknown_epsg, "ingest"),
    "coordinates outside Vietnam": (outside_vietnam, "error"),
    "NaN coordinates": (nan_coords, "ingest"),
    "infinite coordinates": (inf_coords, "ingest"),
    "Z geometries": (z_geometries, "ingest"),
    "M geometries": (m_geometries, "ingest"),
    "GeometryCollection": (geometry_collection, "ingest"),
    "curved geometries (arcs) in a GeoPackage": (curved_gpkg, "ingest"),
    "control characters in values": (control_characters, "ingest"),
    "points": (points, "ingest"),
    "lines": (lines, "ingest"),
    "self-intersection": (self_intersection, "ingest"),
    "bow-tie among neighbours": (bow_tie_with_neighbours, "ingest"),
    "unclosed ring": (unclosed_ring, "any"),
    "repeated vertices": (repeated_vertices, "ingest"),
    "zero-area polygon": (zero_area, "ingest"),
    "huge polygon": (huge_polygon, "ingest"),
    "bytes invalid in every encoding": (bad_bytes, "ingest"),
    "NULL land-use code": (null_code, "ingest"),
    "blank land-use code": (blank_code, "ingest"),
    "duplicated column names": (duplicated_columns, "any"),
    "DBF with 255 columns": (dbf_255_columns, "ingest"),
    "PNG named .shp": (not_vector(".shp"), "error"),
    "PNG named .geojson": (not_vector(".geojson"), "error"),
    "PNG named .gpkg": (not_vector(".gpkg"), "error"),
    "Vietnamese path with spaces": (vietnamese_path, "ingest"),
    "malformed GeoJSON": (malformed_json, "error"),
    "broken Esri JSON": (bad_esri_json, "any"),
    "not a zip": (fake_zip, "error"),
    "zip without a shapefile": (zip_without_shapefile, "error"),
    "DGN v8": (dgn_v8, "error"),
    "mixed geometry types": (mixed_types, "ingest"),
    "null geometry": (null_geometry, "ingest"),
    "another province's TM-3": (other_province, "error"),
    "TAB without .dat": (tab_missing_dat, "error"),
    "corrupt GeoPackage": (corrupt_gpkg, "error"),
    "unknown owner code": (unknown_owner, "ingest"),
    "lat/lon swapped": (latlon_swapped, "ingest"),
    "compound code with unknown member": (compound_unknown_member, "ingest"),
    "commune code lost its zero": (numeric_commune_code, "ingest"),
    "lying .cpg with TCVN3": (lying_cpg, "ingest"),
    "hole touching its shell": (hole_touching_shell, "ingest"),
    "MultiPolygon with an empty part": (multipolygon_with_empty_part, "ingest"),
    "garbage recorded areas": (garbage_area, "ingest"),
    "boundary lines with a gap, label points": (lines_with_a_gap, "ingest"),
    "parcels as closed and open polylines": (open_polylines, "ingest"),
    "a .dbf record marked deleted": (deleted_record, "ingest"),
}


def run_case(tmp_path: Path, build) -> tuple[object, Path, Path]:
    raw = tmp_path / "raw"
    raw.mkdir()
    path = build(raw)
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["ingest", str(path), "--province", "Lạng Sơn", "--workdir", str(work)])
    return result, path, work


@pytest.mark.parametrize("name", list(CORPUS))
def test_broken_input(tmp_path, name):
    build, expected = CORPUS[name]
    result, path, work = run_case(tmp_path, build)
    # never a traceback: either a clean exit or click's one-paragraph message
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if expected == "any":
        expected = "error" if result.exit_code else "ingest"
    if expected == "error":
        assert result.exit_code != 0, result.output
        assert path.name in result.output or str(path.parent) in result.output, result.output
        assert result.output.strip().startswith("Error:") or "Error" in result.output
        return
    assert result.exit_code == 0, result.output
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["features_in"] == report["features_out"] + report["features_quarantined"] > 0
    assert report["area_in_m2"] == pytest.approx(report["area_out_m2"] + report["area_quarantined_m2"],
                                                 rel=1e-9, abs=1e-9)
    parcels = pd.concat([gpd.read_parquet(p) for p in (work / "parcels").glob("*.parquet")] or [pd.DataFrame()])
    quarantine = pd.concat([gpd.read_parquet(p) for p in (work / "quarantine").glob("*.parquet")]
                           or [pd.DataFrame({"reason": []})])
    assert len(parcels) == report["features_out"] and len(quarantine) == report["features_quarantined"]
    assert quarantine["reason"].astype(str).str.len().gt(0).all()  # every quarantined row says why
    said = {text for f in report["files"] for part in ("quarantined_by_reason", "flagged", "repairs", "warnings")
            for text in f[part]} | {f[key] for f in report["files"] for key in ("crs_reason", "encoding")}
    assert not untranslated(said - {"UTF-8", ""}), "the report's words the officer would read in English"
    if len(parcels):
        assert np.isfinite(shapely.get_coordinates(parcels.geometry.values)).all()
        assert shapely.is_valid(parcels.geometry.values).all()


def test_corpus_size():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("name, reason", [
    ("NaN coordinates", "coordinates are NaN or infinite"), ("points", "not a polygon (Point)"),
    ("zero-area polygon", "geometry has no area"), ("huge polygon", "implausibly large for a parcel"),
    ("unknown owner code", "user/manager object code 'XYZ'"), ("null geometry", "empty geometry"),
    ("compound code with unknown member", "'XYZ' is not a Circular 27/2018 code"),
    ("boundary lines with a gap, label points", "label in no closed face of the boundary lines"),
    ("parcels as closed and open polylines", "not a polygon (LineString)"),
])
def test_quarantine_reasons(tmp_path, name, reason):
    result, _, work = run_case(tmp_path, CORPUS[name][0])
    assert result.exit_code == 0
    quarantine = pd.concat([gpd.read_parquet(p) for p in (work / "quarantine").glob("*.parquet")])
    assert quarantine["reason"].str.contains(reason, regex=False).any(), list(quarantine["reason"])


def test_records_marked_deleted_in_the_dbf_are_not_read_and_said(tmp_path):
    result, _, work = run_case(tmp_path, deleted_record)
    assert result.exit_code == 0, result.output
    (file,) = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))["files"]
    assert file["features_out"] == 2 and file["warnings"] == [
        "1 records marked deleted in the .dbf are not read (deleted in the editing software, the file not packed)"]


def test_a_missing_shx_is_rebuilt_from_the_shp_in_a_copy_and_the_input_left_as_it_is(tmp_path):
    result, path, work = run_case(tmp_path, missing_part(".shx"))
    assert result.exit_code == 0, result.output
    assert sorted(p.suffix for p in path.parent.iterdir()) == [".cpg", ".dbf", ".prj", ".shp"]  # no .shx written
    parcels = gpd.read_parquet(next((work / "parcels").glob("*.parquet")))
    assert len(parcels) == 1 and parcels["area_m2"].iloc[0] == pytest.approx(2500.0, rel=1e-3)
    assert "Thiếu tệp .shx (chỉ mục hình): đã dựng lại từ tệp .shp trên bản sao, tệp gốc giữ nguyên: 1" in \
        (work / "reports/ingest.md").read_text(encoding="utf-8")


def test_arcs_are_read_as_short_straight_segments_and_reported(tmp_path):
    result, _, work = run_case(tmp_path, curved_gpkg)
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(next((work / "parcels").glob("*.parquet"))).sort_values("parcel_no")
    assert list(parcels["parcel_no"]) == ["1", "2", "3"]
    disc = parcels["area_m2"].iloc[0]  # 360 chords lose 0.005 % of a disc (GDAL's default 90 chords: 0.08 %)
    assert np.pi * 50.0**2 * (1 - 1e-4) < disc < np.pi * 50.0**2
    assert parcels["area_m2"].iloc[1:].to_list() == pytest.approx([2500.0, 2500.0], rel=1e-3)  # TM-3 scale
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["files"][0]["repairs"]["curved geometries (arcs) drawn as straight segments of 1°"] == 2
    assert "Hình có cạnh cong (cung tròn), đã thay bằng các đoạn thẳng, mỗi đoạn 1°: 2" in \
        (work / "reports/ingest.md").read_text(encoding="utf-8")


def test_control_characters_become_spaces_and_the_review_workbook_is_written(tmp_path):
    result, _, work = run_case(tmp_path, control_characters)
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(work / "parcels/06253.parquet")
    assert sorted(parcels["owner_name"]) == ["Hà Văn C", "Nguyễn Văn A"]
    assert sorted(parcels["landuse"]) == ["LUC", "ONT"]
    assert (work / "reports/review/06253.xlsx").exists()  # the quarantined 'Lê Thị B' is listed there
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["files"][0]["repairs"]["control characters in values replaced by spaces"] == 3


def test_repairs_are_reported(tmp_path):
    result, _, work = run_case(tmp_path, CORPUS["lat/lon swapped"][0])
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert "latitude first" in report["files"][0]["crs_reason"]
    (tmp_path / "b").mkdir()
    result, _, work = run_case(tmp_path / "b", CORPUS["lying .cpg with TCVN3"][0])
    parcels = gpd.read_parquet(next((work / "parcels").glob("*.parquet")))
    assert parcels["owner_name"].iat[0] == "Hoàng Tâm"
