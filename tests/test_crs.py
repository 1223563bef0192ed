import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer

from pipeline import crs as vn

LANG_SON = 107.25
# Computed control point (vn2000_crs.md §2): WGS84 21.8537 N, 106.7613 E.
LON, LAT = 106.7613, 21.8537
X_NORTHING, Y_EASTING = 2_417_549.760, 449_293.705
# Decision 05/2007 parameters as published (coordinate-frame signs), written
# naively as PROJ TOWGS84 (position vector): the classic 0.5–0.8 m mistake.
UNFLIPPED = "-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,0.252906278"


def test_lang_son_target_crs_is_epsg_9215():
    crs = vn.province_crs("Lạng Sơn")
    assert crs.to_epsg() == 9215
    params = crs.to_dict()
    assert params["lon_0"] == 107.25 and params["k"] == 0.9999 and params["x_0"] == 500000


@pytest.mark.parametrize("name, epsg", [("Hà Nội", 5897), ("TP. Hồ Chí Minh", 9210),
                                        ("Quảng Ninh", 5899), ("Điện Biên", 9205)])
def test_epsg_code_where_one_exists(name, epsg):
    assert vn.province_crs(name).to_epsg() == epsg


def test_meridian_without_epsg_code_carries_the_6960_shift():
    crs = vn.tm3_crs(104.123)
    assert crs.to_epsg() is None
    assert "+towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372" in crs.to_proj4()


def test_control_point_within_1_mm():
    easting, northing = vn.wgs84_to_tm3(LON, LAT, LANG_SON)
    assert abs(northing - X_NORTHING) < 1e-3
    assert abs(easting - Y_EASTING) < 1e-3


def test_not_the_unflipped_sign_path():
    naive = CRS.from_proj4(f"+proj=longlat +ellps=WGS84 +towgs84={UNFLIPPED} +no_defs")
    to_naive = Transformer.from_crs("EPSG:4326", naive, always_xy=True)
    lon_n, lat_n = to_naive.transform(LON, LAT)
    # the same projection as ours, but fed the naive VN-2000 lon/lat
    e_naive, n_naive = Transformer.from_pipeline(
        "+proj=tmerc +lat_0=0 +lon_0=107.25 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84"
    ).transform(lon_n, lat_n)
    e_ours, n_ours = vn.wgs84_to_tm3(LON, LAT, LANG_SON)
    offset = np.hypot(e_naive - e_ours, n_naive - n_ours)
    assert 0.70 < offset < 0.85, offset
    assert np.hypot(e_naive - Y_EASTING, n_naive - X_NORTHING) > 0.7


def test_pipeline_pins_6960_and_never_5194():
    text = vn.pipeline_to_tm3(CRS.from_epsg(4326), 105.75)  # HCMC, where PROJ would pick 5194
    assert "+x=-191.90441429" in text and "+convention=coordinate_frame" in text
    assert "-192.873" not in text


def test_hanoi72_goes_through_1544():
    text = vn.pipeline_to_tm3(CRS.from_epsg(2044), LANG_SON)
    assert "+x=-17.51 +y=-108.32 +z=-62.39" in text
    assert "+inv +proj=helmert +x=-191.90441429" in text


def test_utm48_round_trip_and_agrees_with_proj():
    tm3 = np.array([[449_293.705, 2_417_549.760], [460_000.0, 2_400_000.0]])
    utm_crs = CRS.from_epsg(3405)
    points = shapely.points(tm3)
    utm = vn.reproject(points, utm_crs, LANG_SON, inverse=True)
    back = shapely.get_coordinates(vn.reproject(utm, utm_crs, LANG_SON))
    np.testing.assert_allclose(back, tm3, atol=1e-3)
    # same datum: a pure conversion, so PROJ's own answer must agree
    proj_e, proj_n = Transformer.from_crs(utm_crs, "EPSG:9215", always_xy=True).transform(
        *shapely.get_coordinates(utm).T)
    np.testing.assert_allclose(np.column_stack([proj_e, proj_n]), tm3, atol=1e-3)
    # and UTM coordinates are really different numbers (232 km away in easting)
    assert abs(shapely.get_coordinates(utm)[0, 0] - tm3[0, 0]) > 100_000


@pytest.mark.parametrize("definition, datum", [
    ("EPSG:4326", vn.Datum.WGS84), ("EPSG:32648", vn.Datum.WGS84),
    ("EPSG:3405", vn.Datum.VN2000), ("EPSG:9215", vn.Datum.VN2000), ("EPSG:4756", vn.Datum.VN2000),
    ("EPSG:4147", vn.Datum.HANOI72), ("EPSG:2044", vn.Datum.HANOI72),
    # an ESRI-style .prj that labels a TM-3 grid as WGS 84 ("VN-2000 nội bộ")
    ("+proj=tmerc +lon_0=107.25 +k=0.9999 +x_0=500000 +datum=WGS84", vn.Datum.VN2000),
    (f"+proj=longlat +ellps=WGS84 +towgs84={UNFLIPPED}", vn.Datum.VN2000),
])
def test_datum_of(definition, datum):
    assert vn.datum_of(CRS.from_user_input(definition)) is datum


@pytest.mark.parametrize("definition, label", [
    ("EPSG:9215", "EPSG:9215"), ("+proj=utm +zone=48 +datum=WGS84", "EPSG:32648"),
    (f"+proj=tmerc +lon_0=105 +k=0.9999 +x_0=500000 +ellps=WGS84 +towgs84={UNFLIPPED}",
     "+proj=tmerc +lon_0=105 +lat_0=0 +k=0.9999 +x_0=500000 +y_0=0 (VN-2000, TOWGS84)"),
])
def test_a_crs_is_named_by_its_code_or_its_parameters_never_by_its_wkt(definition, label):
    crs = CRS.from_user_input(definition)
    assert vn.crs_label(crs) == label
    assert vn.SourceCRS(crs, "declared").describe() == (f"{crs.name} ({label})" if crs.name != "unknown" else label)
