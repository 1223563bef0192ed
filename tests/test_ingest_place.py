"""A parcel file that names no commune (no MAXA column, no [[sources]] code):
the run's commune boundaries say where its parcels lie. One commune's export
goes to that commune whole; a district's export is shared out parcel by
parcel; every parcel so placed is flagged and counted in the report. Without
boundaries each file is a commune of its own, named after it, even where each
commune's folder holds a file of the same name."""

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from click.testing import CliRunner

import pipeline
from pipeline.boundaries import load_boundaries
from pipeline.cli import cli
from pipeline.config import Boundaries

BOUNDARIES = Path(pipeline.__file__).parent / "data/langson_communes_2009.geojson"
HOANG_VAN_THU, TAM_THANH = "05971", "05974"  # two neighbouring wards of Lạng Sơn city


def _communes() -> gpd.GeoDataFrame:
    return load_boundaries(Boundaries(BOUNDARIES), 107.25).set_index("commune_code")


def _squares_in(code: str, count: int, size: float = 20.0) -> list[shapely.Polygon]:
    """``count`` squares in a row from a point inside the commune, all inside it."""
    commune = _communes().geometry[code]
    x, y = shapely.get_coordinates(commune.point_on_surface())[0]
    squares = [shapely.box(x + i * size, y, x + (i + 1) * size, y + size) for i in range(count)]
    inside = [s for s in squares if commune.contains(s)]
    assert len(inside) == count, "the fixture's squares should lie inside the commune"
    return squares


def _file(path: Path, geoms: list) -> Path:
    """Parcels without any commune column, in the province's TM-3."""
    gpd.GeoDataFrame({"SHBANDO": [1] * len(geoms), "SHTHUA": range(1, len(geoms) + 1), "KHLOAIDAT": "ODT",
                      "DOITUONG": "GDC"}, geometry=geoms, crs="EPSG:9215").to_file(path)
    return path


def _ingest(tmp_path: Path, raw: Path, boundaries: bool = True):
    config = tmp_path / "inventory.toml"
    config.write_text('[inventory]\nprovince = "Lạng Sơn"\n'
                      + (f'[boundaries]\npath = "{BOUNDARIES.as_posix()}"\n' if boundaries else ""), encoding="utf-8")
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--config", str(config),
                                      "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    return work


def _communes_written(work: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: gpd.read_parquet(p) for p in sorted((work / "parcels").glob("*.parquet"))}


def test_one_communes_file_goes_to_that_commune_whole_and_says_so(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    # 19 parcels in Hoàng Văn Thụ and one (5 % of the area) across the line in Tam Thanh: one commune's export
    _file(raw / "thua.shp", _squares_in(HOANG_VAN_THU, 19) + _squares_in(TAM_THANH, 1))

    work = _ingest(tmp_path, raw)

    written = _communes_written(work)
    assert list(written) == [HOANG_VAN_THU]
    parcels = written[HOANG_VAN_THU]
    assert len(parcels) == 20 and parcels["flags"].str.contains("commune found from the boundary file").all()
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["files"][0]["communes"] == [HOANG_VAN_THU]
    assert report["files"][0]["inferred"]["Mã xã 05971 (theo vị trí thửa trên tệp ranh giới xã)"]["features"] == 20
    assert not report["files"][0]["warnings"]  # nothing named after the file
    text = (work / "reports/ingest.md").read_text(encoding="utf-8")
    assert "| Mã xã 05971 (theo vị trí thửa trên tệp ranh giới xã) | 20 |" in text
    assert "Các thửa có mã xã do kiemke suy ra mang ghi chú cách suy" in text


def test_a_file_across_communes_is_shared_out_parcel_by_parcel(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    x0, y0, _, y1 = _communes().total_bounds
    outside = shapely.box(x0 - 520, (y0 + y1) / 2, x0 - 500, (y0 + y1) / 2 + 20)  # beyond the province's west edge
    _file(raw / "huyen.shp", _squares_in(HOANG_VAN_THU, 6) + _squares_in(TAM_THANH, 4) + [outside])

    work = _ingest(tmp_path, raw)

    written = _communes_written(work)
    assert {code: len(frame) for code, frame in written.items()} == {HOANG_VAN_THU: 6, TAM_THANH: 4,
                                                                     "unknown_huyen": 1}
    assert written["unknown_huyen"]["flags"].isna().all()  # not placed: named after the file, as before
    warnings = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))["files"][0]["warnings"]
    assert any("lie in 2 communes of the boundary file" in w for w in warnings), warnings
    assert any("no commune code known for 1 features" in w for w in warnings), warnings


def test_without_boundaries_the_file_names_its_commune_as_before(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _file(raw / "thua.shp", _squares_in(HOANG_VAN_THU, 3))

    work = _ingest(tmp_path, raw, boundaries=False)

    assert list(_communes_written(work)) == ["unknown_thua"]


def test_the_commune_in_the_file_wins_over_where_it_lies(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    frame = gpd.read_file(_file(raw / "thua.shp", _squares_in(HOANG_VAN_THU, 3))).assign(MAXA="5974")
    frame.to_file(raw / "thua.shp")

    work = _ingest(tmp_path, raw)

    parcels = _communes_written(work)[TAM_THANH]
    assert len(parcels) == 3 and parcels["flags"].isna().all()


def test_a_previous_map_without_commune_codes_is_placed_too(tmp_path):
    from pipeline.change import read_previous
    from pipeline.config import Previous, settings_from_dict

    path = _file(tmp_path / "hien_trang_2014.shp", _squares_in(TAM_THANH, 2))
    settings = settings_from_dict({"inventory": {"province": "Lạng Sơn"},
                                   "boundaries": {"path": str(BOUNDARIES)}})
    layer, _, _ = read_previous(Previous(path=str(path)), settings, frozenset())
    assert list(layer["commune_code"]) == [TAM_THANH, TAM_THANH]


def test_files_of_one_name_in_each_communes_folder_stay_apart(tmp_path):
    from pipeline.units import build_units

    raw = tmp_path / "raw"
    for folder, code in (("hoang_van_thu", HOANG_VAN_THU), ("tam_thanh", TAM_THANH)):
        (raw / folder).mkdir(parents=True)
        _file(raw / folder / "ThuaDat.shp", _squares_in(code, 3))
    _file(raw / "le.shp", _squares_in(TAM_THANH, 2))

    work = _ingest(tmp_path, raw, boundaries=False)

    written = _communes_written(work)
    assert {code: len(frame) for code, frame in written.items()} == {
        "unknown_hoang_van_thu_ThuaDat": 3, "unknown_tam_thanh_ThuaDat": 3, "unknown_le": 2}
    assert set(written["unknown_le"]["commune_code"]) == {"file:le"}
    assert set(written["unknown_tam_thanh_ThuaDat"]["commune_code"]) == {"file:tam_thanh/ThuaDat"}
    units = build_units(sorted(written), pd.DataFrame(), "Lạng Sơn", "20")
    assert [u.name for u in units if u.level == "xa"] == [
        "Xã chưa rõ mã (tệp hoang_van_thu_ThuaDat)", "Xã chưa rõ mã (tệp le)", "Xã chưa rõ mã (tệp tam_thanh_ThuaDat)"]


def test_a_blank_commune_code_takes_its_nearest_parcels_and_makes_no_commune_of_its_own(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    hoang, tam = _squares_in(HOANG_VAN_THU, 4), _squares_in(TAM_THANH, 3)
    # a district's export: two communes' codes, a blank beside each, a 0 (a numeric field left empty), no shape
    gpd.GeoDataFrame({"MAXA": ["5971", "5971", "5971", "", "06274", "06274", "0", None],
                      "SHBANDO": 1, "SHTHUA": range(1, 9), "KHLOAIDAT": "ODT", "DOITUONG": "GDC"},
                     geometry=[*hoang, *tam, None], crs="EPSG:9215").to_file(raw / "huyen.shp")
    (raw / "huyen.cpg").write_text("UTF-8")

    work = _ingest(tmp_path, raw, boundaries=False)

    written = _communes_written(work)
    assert {code: sorted(frame["parcel_no"].astype(int)) for code, frame in written.items()} == {
        HOANG_VAN_THU: [1, 2, 3, 4], "06274": [5, 6, 7]}
    flagged = pd.concat(written.values()).set_index("parcel_no")["flags"].dropna()
    assert dict(flagged) == dict.fromkeys(["4", "7"], "blank commune code: the nearest parcel's")
    quarantine = gpd.read_parquet(next((work / "quarantine").glob("*.parquet")))
    assert list(quarantine["commune_code"]) == [HOANG_VAN_THU]  # no shape: the file's commonest code
    inferred = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))["files"][0]["inferred"]
    assert {k: v["features"] for k, v in inferred.items()} == {
        "Mã xã 05971 (mã xã để trống, lấy theo thửa gần nhất có mã của tệp)": 1,
        "Mã xã 06274 (mã xã để trống, lấy theo thửa gần nhất có mã của tệp)": 1}


def test_a_boundary_geopackage_of_several_layers_gives_its_commune_layer(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _file(raw / "thua.shp", _squares_in(TAM_THANH, 2))
    communes = gpd.read_file(BOUNDARIES)
    gpkg = tmp_path / "ranh_gioi.gpkg"  # the districts first, as a cadastral office keeps them
    communes.dissolve("gso_district_code", as_index=False)[["gso_district_code", "district_vn", "geometry"]].to_file(
        gpkg, layer="ranh_gioi_huyen")
    communes.to_file(gpkg, layer="ranh_gioi_xa")
    for path in (gpkg, f"{gpkg}|layername=ranh_gioi_xa"):
        config = tmp_path / "inventory.toml"
        config.write_text(f'[inventory]\nprovince = "Lạng Sơn"\n[boundaries]\npath = "{Path(path).as_posix()}"\n',
                          encoding="utf-8")
        work = tmp_path / f"work{len(str(path))}"
        result = CliRunner().invoke(cli, ["ingest", str(raw), "--province", "Lạng Sơn", "--config", str(config),
                                          "--workdir", str(work)])
        assert result.exit_code == 0, result.output
        assert list(_communes_written(work)) == [TAM_THANH]
    assert len(load_boundaries(Boundaries(gpkg), 107.25)) == len(_communes()) == 182


def test_a_commune_code_the_boundary_file_lacks_is_said_with_where_its_parcels_lie(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    # a road layer whose XAID is a ward of another province (as the Phước Trung export's)
    gpd.read_file(_file(raw / "duong.shp", _squares_in(TAM_THANH, 2))).assign(XAID="27427").to_file(raw / "duong.shp")

    work = _ingest(tmp_path, raw)

    assert list(_communes_written(work)) == ["27427"]  # the file's code stands: the officer decides
    (warning,) = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))["files"][0]["warnings"]
    assert warning.startswith("2 features say commune 27427, which the boundary file does not hold; they lie in "
                              "commune 05974.")
    assert ("2 thửa ghi mã xã 27427, mã không có trong tệp ranh giới xã; các thửa nằm trên xã 05974"
            in (work / "reports/ingest.md").read_text(encoding="utf-8"))


def test_each_point_goes_to_the_commune_holding_it_and_one_on_a_shared_line_to_the_first():
    """Points placed by the communes' prepared outlines: inside, on the line two
    communes share (the first in the boundary file's order), outside all, missing."""
    import numpy as np

    from pipeline.ingest.place import communes_holding

    west, east = shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)
    communes = gpd.GeoDataFrame({"commune_code": ["00002", "00001"]}, geometry=[east, west])
    points = np.array([shapely.Point(5, 5), shapely.Point(15, 5), shapely.Point(10, 5), shapely.Point(30, 5), None])
    assert communes_holding(points, communes).tolist() == ["00001", "00002", "00002", "", ""]
