"""Ingest of field data as it really is: encodings, lying CRSs, legacy codes, formats."""

import json
import unicodedata

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import CRS

from pipeline import crs as vn
from pipeline.config import Refine, Settings
from pipeline.errors import InputFileError
from pipeline.ingest import ingest_file
from pipeline.ingest.codes import resolve_code
from pipeline.ingest.read import Source, read_source
from pipeline.messages import vi
from pipeline.reference import province
from pipeline.vntext import file_codec, is_syllable, match_key, repair_text
from pipeline.workdir import WorkDir
from tests.helpers import square

LANG_SON = province("Lạng Sơn")
SETTINGS = Settings(province=LANG_SON)


def _ingest(source, settings):
    """ingest_file, asserting for every fixture that nothing is lost."""
    parcels, quarantine, report = ingest_file(source, settings)
    assert report.features_in == report.features_out + report.features_quarantined
    assert report.features_out == len(parcels) and report.features_quarantined == len(quarantine)
    assert report.area_in_m2 == pytest.approx(report.area_out_m2 + report.area_quarantined_m2, rel=1e-9, abs=1e-9)
    assert parcels["area_m2"].sum() == pytest.approx(report.area_out_m2, rel=1e-9, abs=1e-9)
    return parcels, quarantine, report


@pytest.mark.parametrize("raw, fixed", [
    ("Thôn Yªn Thái", "Thôn Yên Thái"),        # Unicode words stay (Thôn must not become Thốn)
    ("Hoµng T©m", "Hoàng Tâm"),
    ("L¹ng S¬n", "Lạng Sơn"),
    ("B¶o Th¾ng", "Bảo Thắng"),
    ("Mêng Kh¬ng", "Mường Khương"),              # TCVN3 'ư' (0xAD) lost on the way
    ("KIM S¥N", "KIM SƠN"),                      # TCVN3 capitals font
    ("Hoaøng Taâm", "Hoàng Tâm"),                # VNI-Windows
    ("Baûo Thaéng", "Bảo Thắng"),
    ("Ho\u0300a Bi\u0300nh", "Hòa Bình"),         # decomposed (cp1258-style) → NFC
    ("UBND xã Khánh Khê", "UBND xã Khánh Khê"),
])
def test_text_repair(raw, fixed):
    assert repair_text(raw).text == fixed


def test_undecodable_words_are_kept_and_flagged():
    result = repair_text("Thôn Æ¿Ø")
    assert result.text == "Thôn Æ¿Ø" and result.undecoded == ("Æ¿Ø",)


def test_words_typed_in_unicode_are_not_taken_for_legacy_bytes():
    """From the Tây Ninh export's owner names: syllables typed without a space
    (or beside digits, a sign) and a syllable half in capitals are Vietnamese
    as they are: not told. A typo in Vietnamese letters no legacy byte is read
    as (ễ, ư, ớ) is told as a typo, not as an encoding to declare; a word in
    Latin-1 letters no codec reads stays undecoded. TCVN3 read as Latin-1 still
    decodes, whatever its capitals look like (``nguyÔn`` is not ``nguy`` + ``Ôn``)."""
    result = repair_text("Nguyễn ThịThu, NgọcThủy 50mét NGộ Đăng+ Nguyễnn Qưới cafê")
    assert result.text == "Nguyễn ThịThu, NgọcThủy 50mét NGộ Đăng+ Nguyễnn Qưới cafê"
    assert result.mistyped == ("Nguyễnn", "Qưới") and result.undecoded == ("cafê",)
    assert repair_text("nguyÔn").text == "nguyễn" and repair_text("trÊn").text == "trấn"


def test_tone_placement_for_matching_only():
    assert match_key("Hoà Bình") == match_key("Hòa Bình")
    assert match_key("Thuỷ") == match_key("Thủy")
    assert match_key("Hòa") != match_key("Hóa")
    assert all(is_syllable(w) for w in ["nghiêng", "quốc", "gìn", "khuya", "giữa", "thuở"])


def _write_shp(path, rows, crs="EPSG:9215", cpg="UTF-8", encoding="latin1"):
    geoms = [r.pop("geometry") for r in rows]
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=crs)
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    else:
        cpg_path.write_text(cpg)
    return path


@pytest.mark.parametrize("cpg", ["UTF-8", None])
def test_tcvn3_bytes_in_a_dbf_with_a_lying_or_missing_cpg(tmp_path, cpg):
    # 'Hoµng T©m' as Latin-1 characters = the TCVN3 bytes of 'Hoàng Tâm'; TCVN3
    # writes 'Phú', 'Hộ' and 'Lộc' as the bytes of 'Phó', 'Hé' and 'Léc', which
    # read as Vietnamese too: the value's other words say which they are
    names = {"Hoµng T©m": "Hoàng Tâm", "Th«n Yªn Th¸i": "Thôn Yên Thái", "NguyÔn V¨n Phó": "Nguyễn Văn Phú",
             "Hé «ng §Æng V¨n Léc": "Hộ ông Đặng Văn Lộc"}
    path = _write_shp(tmp_path / "tcvn3.shp", [
        {"KHLOAIDAT": "ONT", "DOITUONG": "GDC", "TENCHU": raw, "MAXA": "6253", "geometry": square(100 * i)}
        for i, raw in enumerate(names)], cpg=cpg)
    parcels, quarantine, report = _ingest(path, SETTINGS)
    assert list(parcels["owner_name"]) == list(names.values())
    assert report.repairs["values with TCVN3 words converted to Unicode"] == 4
    assert quarantine.empty


def _cp1258(text: str) -> str:
    """``text`` as the bytes Windows' Vietnamese code page writes (tone marks
    apart, after their letter), shown as their Latin-1 characters."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = []
    for ch in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", ch)
        out.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
                   + "".join(c for c in parts if c in tones))
    return "".join(out).encode("cp1258").decode("latin-1")


@pytest.mark.parametrize("cpg", [None, "UTF-8"])
def test_cp1258_bytes_without_a_true_cpg_are_read_in_the_codec_their_words_tell(tmp_path, cpg):
    # 'Văn' is 'Vãn' (a syllable too) read as Latin-1 and 'Lò' reads as VNI 'Loè':
    # only 'Đỗ' and 'Ơn' tell the codec, and the whole file is then read in it
    names = ["Đỗ Văn Ơn", "Lò Văn Tâm", "Hoàng Văn Ân", "Văn", "Nguyễn Thị Hà"]
    rows = [{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "TENCHU": _cp1258(name), "geometry": square(100 * i)}
            for i, name in enumerate(names)]
    rows[-1]["TENCHU"] = names[-1].encode("utf-8").decode("latin-1")  # one value in UTF-8 stays UTF-8
    parcels, _, report = _ingest(_write_shp(tmp_path / "c.shp", rows, cpg=cpg), SETTINGS)
    assert list(parcels["owner_name"]) == names
    assert report.encoding == "cp1258 (found in the values)"
    assert vi(report.encoding) == "cp1258 (nhận ra từ các giá trị)"
    assert report.repairs["values with cp1258 words converted to Unicode"] == 4
    assert report.repairs.get("values not UTF-8 although the .cpg says so", 0) == (4 if cpg else 0)


def test_a_mapinfo_table_declared_windows_vietnamese_is_read_in_cp1258_without_gdals_warning(tmp_path, recwarn):
    # no word here tells cp1258 from Latin-1 ('Vãn') or VNI ('Loè'): the table's charset does
    names = ["Lò Văn Tâm", "Văn Tâm"]
    frame = gpd.GeoDataFrame({"KHLOAIDAT": ["LUC", "ONT"], "DOITUONG": "GDC", "TENCHU": [_cp1258(n) for n in names]},
                             geometry=[square(), square(100)], crs="EPSG:9215")
    path = tmp_path / "thua.tab"
    pyogrio.write_dataframe(frame, path, driver="MapInfo File", encoding="latin1")
    path.write_bytes(path.read_bytes().replace(b"Neutral", b"WindowsVietnamese"))  # as MapInfo writes it

    parcels, _, report = _ingest(path, SETTINGS)

    assert list(parcels["owner_name"]) == names
    assert report.encoding == "cp1258 (.tab)" and vi(report.encoding) == "cp1258 (theo khai báo bảng mã của tệp .tab)"
    assert not [w for w in recwarn if "iconv" in str(w.message)]  # GDAL's, which the officer would see


@pytest.mark.parametrize("values, codec", [
    (["Hoµng T©m", "Thôn Yªn Thái"], "TCVN3"), (["Hoaøng Taâm"], "VNI"), ([_cp1258("Đỗ Văn")], "cp1258"),
    (["Thôn Yên Thái", "Vãn"], None),  # no word that only one codec reads
    (["Hoµng T©m", "Hoaøng Taâm"], None),  # codecs mixed half and half
])
def test_a_files_codec_is_the_one_its_telling_words_agree_on(values, codec):
    assert file_codec(values) == codec


@pytest.mark.parametrize("owner_field", ["TENCHU", "TÊNCHU"])
@pytest.mark.parametrize("cpg", [None, "UTF-8", "1258"])
def test_a_shapefiles_bytes_are_read_as_gdals_latin1_read_gives_them(tmp_path, owner_field, cpg):
    # every byte of the DBF one Latin-1 character, whatever the .cpg says: read
    # raw and decoded per distinct value where the field names are ASCII
    rows = [{"KHLOAIDAT": "LUC", owner_field: name, "GHICHU": note, "geometry": square(100 * i)}
            for i, (name, note) in enumerate([(_cp1258("Đỗ Văn Ơn"), "a"), ("Hoµng T©m", None),
                                               (None, "b"), ("Nông Thị Yến".encode().decode("latin-1"), "a"),
                                               ("Hoµng T©m", "c")])]
    path = _write_shp(tmp_path / "t.shp", rows, cpg=cpg)
    _, gdal_latin1 = pyogrio.read_arrow(str(path), encoding="latin1")
    frame, info = read_source(Source(path))
    assert info["latin1"]
    expected = gdal_latin1.drop_columns(["wkb_geometry"]).to_pandas()
    pd.testing.assert_frame_equal(frame.drop(columns=["source_fid", "geometry"]), expected)
    assert frame[expected.columns[1]].iat[0] == _cp1258("Đỗ Văn Ơn")


def test_utf8_shapefile_is_read_as_utf8(tmp_path):
    path = _write_shp(tmp_path / "u.shp", [
        {"KHLOAIDAT": "ONT", "DOITUONG": "GDC", "TENCHU": "Nông Thị Yến", "geometry": square()}],
        encoding="UTF-8")
    parcels, _, _ = _ingest(path, SETTINGS)
    assert parcels["owner_name"].iat[0] == "Nông Thị Yến"


def test_geojson_declaring_tm3_zone_482_with_degree_coordinates(tmp_path):
    lon, lat = 106.7613, 21.8537
    feature = {"type": "Feature", "properties": {"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "MAXA": "06253"},
               "geometry": shapely.geometry.mapping(shapely.box(lon, lat, lon + 0.001, lat + 0.001))}
    doc = {"type": "FeatureCollection", "features": [feature],
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::5897"}}}
    path = tmp_path / "lying.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    parcels, _, report = _ingest(path, SETTINGS)
    assert report.crs_declared == "EPSG:5897"
    assert "EPSG:4326" in report.crs_chosen and "do not fit" in report.crs_reason
    vertices = shapely.get_coordinates(parcels.geometry.values[0])
    assert np.hypot(vertices[:, 0] - 449_293.705, vertices[:, 1] - 2_417_549.760).min() < 1e-3


@pytest.mark.parametrize("swap, offset, text", [
    (True, 0.0, "swapped"), (False, -500_000.0, "false easting"), (True, -500_000.0, "swapped"),
])
def test_swapped_and_no_false_easting_are_repaired(tmp_path, swap, offset, text):
    box = square()
    coords = lambda c: (c[:, ::-1] if swap else c) + ([0, offset] if swap else [offset, 0])  # noqa: E731
    broken = shapely.transform(box, coords)
    path = _write_shp(tmp_path / "b.shp", [{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": broken}], crs=None)
    parcels, _, report = _ingest(path, SETTINGS)
    assert text in report.crs_reason
    assert shapely.equals_exact(parcels.geometry.values[0].normalize(), box.normalize(), tolerance=1e-6)


def test_utm48_without_prj_is_detected(tmp_path):
    box = square()
    utm = vn.reproject(np.array([box]), CRS.from_epsg(3405), 107.25, inverse=True)[0]
    path = _write_shp(tmp_path / "utm.shp", [{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": utm}], crs=None)
    parcels, _, report = _ingest(path, SETTINGS)
    assert "UTM zone 48N" in report.crs_reason
    assert parcels.geometry.values[0].area == pytest.approx(10_000.0, rel=1e-9)


def test_hanoi72_warns_about_its_accuracy(tmp_path):
    box = square()
    hn72 = vn.reproject(np.array([box]), CRS.from_epsg(2044), 107.25, inverse=True)[0]
    path = _write_shp(tmp_path / "hn.shp", [{"KHLOAIDAT": "LUC", "DOITUONG": "GDC", "geometry": hn72}],
                      crs="EPSG:2044")
    parcels, _, report = _ingest(path, SETTINGS)
    assert any("EPSG:1544" in w for w in report.warnings)
    assert parcels.geometry.values[0].area == pytest.approx(10_000.0, rel=1e-6)


@pytest.mark.parametrize("code, leaf, note", [
    ("LUC", "LUC", ""),
    ("LNK", "CLN", "legacy code LNK"),
    ("GTO", "DGT", "legacy code GTO"),
    ("TSL", "NTS", "legacy code TSL"),
    ("LUA", None, "one of LUC, LUK, LUN"),
    ("RSX", None, "group code"),
    ("KCN", None, ""),
    ("ABC", None, "not a Circular 27/2018 code"),
])
def test_legacy_codes(code, leaf, note):
    got, why = resolve_code(code)
    assert got == leaf and note in why


def test_compound_with_legacy_member_and_nothing_lost(tmp_path):
    path = _write_shp(tmp_path / "c.shp", [
        {"KHLOAIDAT": "ONT+LNK", "DOITUONG": "GDC", "DT_ONT": 2500.0, "geometry": square()},
        {"KHLOAIDAT": "LUA", "DOITUONG": "GDC", "DT_ONT": 0.0, "geometry": square(100)},
        {"KHLOAIDAT": " lnk ", "DOITUONG": "GDC", "DT_ONT": 0.0, "geometry": square(200)},
    ])
    parcels, quarantine, report = _ingest(path, SETTINGS)
    assert json.loads(parcels["uses"].iat[0]) == {"ONT": 2500.0, "CLN": 7500.0}
    assert list(parcels["landuse"]) == ["ONT", "LUC", "CLN"]  # LUA refined by the default rule, visibly
    assert [r.strip() for r in parcels["landuse_raw"]] == ["ONT+LNK", "LUA", "lnk"]
    assert list(parcels["refined"].fillna("")) == ["", "LUA → LUC (mặc định)", ""]
    assert report.inferred["Mã loại đất: LUA → LUC (mặc định)"] == {"features": 1, "area_m2": pytest.approx(1e4)}
    strict = Settings(province=LANG_SON, refine=Refine(strict=True))
    parcels, quarantine, report = _ingest(path, strict)  # [refine] strict: quarantined as before
    assert list(parcels["landuse"]) == ["ONT", "CLN"]
    assert "must be split by a field survey" in quarantine["reason"].iat[0]
    assert quarantine["candidates"].iat[0] == "LUC, LUK, LUN"
    assert report.area_in_m2 == pytest.approx(report.area_out_m2 + report.area_quarantined_m2, rel=1e-9)
    assert report.features_in == report.features_out + report.features_quarantined == 3


def test_esri_json_named_geojson(tmp_path):
    esri = {
        "geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 9215},
        "fields": [{"name": "KHLOAIDAT", "type": "esriFieldTypeString"},
                   {"name": "DOITUONG", "type": "esriFieldTypeString"}],
        "features": [{"attributes": {"KHLOAIDAT": "LUC", "DOITUONG": "GDC"},
                      "geometry": {"rings": [[[450000, 2417000], [450000, 2417100], [450100, 2417100],
                                              [450100, 2417000], [450000, 2417000]]]}}],
    }
    path = tmp_path / "esri.geojson"
    path.write_text(json.dumps(esri), encoding="utf-8")
    parcels, _, report = _ingest(path, SETTINGS)
    assert report.driver == "ESRIJSON"
    assert parcels.geometry.values[0].area == pytest.approx(10_000.0)


def test_mapinfo_tab(tmp_path):
    frame = gpd.GeoDataFrame({"KHLOAIDAT": ["RST"], "DOITUONG": ["UBQ"]}, geometry=[square()], crs="EPSG:9215")
    # MapInfo stores integers over the layer bounds: give tight bounds as officers' files have
    pyogrio.write_dataframe(frame, tmp_path / "td.tab", driver="MapInfo File",
                            layer_options={"BOUNDS": "400000,2400000,500000,2500000"})
    parcels, _, report = _ingest(tmp_path / "td.tab", SETTINGS)
    assert report.driver == "MapInfo File"
    # MapInfo's CoordSys has no EPSG code: named by its parameters, not by a page of WKT
    assert report.crs_declared == "+proj=tmerc +lon_0=107.25 +lat_0=0 +k=0.9999 +x_0=500000 +y_0=0 " \
                                  "(World Geodetic System 1984)"
    assert report.crs_chosen == report.crs_declared
    assert parcels.geometry.values[0].area == pytest.approx(10_000.0, rel=1e-6)


def test_zipped_shapefile(tmp_path):
    import zipfile

    _write_shp(tmp_path / "td.shp", [{"KHLOAIDAT": "LUK", "DOITUONG": "GDC", "TENCHU": "L¹ng S¬n",
                                             "geometry": square()}])
    with zipfile.ZipFile(tmp_path / "xa.zip", "w") as archive:
        for part in tmp_path.glob("td.*"):
            archive.write(part, f"giao/{part.name}")
    from pipeline.ingest.read import discover

    (source,) = discover([tmp_path / "xa.zip"])
    parcels, _, report = _ingest(source, SETTINGS)
    assert report.path.endswith("xa.zip!giao/td.shp")
    assert parcels["owner_name"].iat[0] == "Lạng Sơn" and parcels["landuse"].iat[0] == "LUK"


def test_dgn_v7_shapes_are_read_and_unlabelled_ones_quarantined(tmp_path):
    frame = gpd.GeoDataFrame(geometry=[square(), square(100)], crs=None)
    pyogrio.write_dataframe(frame, tmp_path / "to12.dgn", driver="DGN", layer="elements")
    parcels, quarantine, report = _ingest(tmp_path / "to12.dgn", SETTINGS)
    assert report.driver == "DGN" and "VN-2000 TM-3" in report.crs_reason
    assert parcels.empty and list(quarantine["reason"]) == ["blank land-use code"] * 2
    assert report.area_quarantined_m2 == pytest.approx(20_000.0)
    # a DGN per map sheet, as FAMIS keeps them: its elements carry no sheet number, its name does
    assert list(quarantine["sheet_no"]) == ["12", "12"]
    assert report.repairs["sheet number taken from the file name: 12"] == 2


def test_dgn_text_labels_give_codes_to_the_shapes_around_them():
    from pipeline.ingest.linework import label_drawing

    frame = gpd.GeoDataFrame({
        "Type": [6, 6, 17, 17, 17],
        "Text": [None, None, "LUC", "125", "ONT+CLN"],
    }, geometry=[square(), square(100), shapely.Point(450_050, 2_417_050),
                 shapely.Point(450_040, 2_417_040), shapely.Point(450_150, 2_417_050)])
    shapes, used, built, stray = label_drawing(frame)
    assert list(shapes["KHLOAIDAT"]) == ["LUC", "ONT+CLN"]
    assert shapes["SHTHUA"].iat[0] == "125" and pd.isna(shapes["SHTHUA"].iat[1])
    assert used == 3 and len(shapes) == 2 and built == 0


def test_dgn_v8_gets_a_clear_message(tmp_path):
    path = tmp_path / "v8.dgn"
    path.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(508))
    with pytest.raises(InputFileError, match="DGN v8.*save it as DGN v7"):
        _ingest(path, SETTINGS)


def test_owner_type_from_config_fills_blanks(tmp_path):
    from pipeline.config import SourceOverride

    path = _write_shp(tmp_path / "o.shp", [{"KHLOAIDAT": "LUC", "DOITUONG": "", "geometry": square()},
                                           {"KHLOAIDAT": "LUC", "DOITUONG": "TKT", "geometry": square(100)}])
    settings = Settings(province=LANG_SON, sources=(SourceOverride("o.shp", owner_type="TKT"),))
    parcels, _, report = _ingest(path, settings)
    assert list(parcels["owner_type"]) == ["TKT", "TKT"]  # no name, no land-use rule for LUC: the config decides
    assert list(parcels["owner_source"]) == ["config", "file"]
    assert report.inferred["Đối tượng TKT (theo cấu hình)"]["features"] == 1


def test_duplicates_and_garbage_areas_are_flagged_not_dropped(tmp_path):
    from pipeline.ingest import run_ingest

    (tmp_path / "raw").mkdir()
    path = _write_shp(tmp_path / "raw" / "d.shp", [
        {"MAXA": "9922", "SHBANDO": 3, "SHTHUA": 7, "DIENTICH": 10_000.0, "KHLOAIDAT": "LUC", "DOITUONG": "GDC",
         "geometry": square()},
        {"MAXA": "9922", "SHBANDO": 3, "SHTHUA": 7, "DIENTICH": -1.0, "KHLOAIDAT": "LUC", "DOITUONG": "GDC",
         "geometry": square(100)},
        {"MAXA": "9922", "SHBANDO": 3, "SHTHUA": 8, "DIENTICH": 99_999.0, "KHLOAIDAT": "LUC", "DOITUONG": "GDC",
         "geometry": square(200)},
    ])
    settings = Settings(province=LANG_SON, workdir=tmp_path / "work")
    result = run_ingest(WorkDir(settings.workdir), [path], settings, progress=False)
    parcels = gpd.read_parquet(result.parcels["09922"])
    assert len(parcels) == 3
    assert parcels["flags"].tolist() == [
        "duplicate sheet/parcel number in the commune",
        "recorded area -1 m² ≠ computed 10000.0 m²; duplicate sheet/parcel number in the commune",
        "recorded area 99999 m² ≠ computed 10000.0 m²",
    ]
    report = result.files[0]
    assert report.flagged == {"recorded area missing or more than 10 % off": 2,
                              "duplicate sheet/parcel number in the commune": 2}


@pytest.mark.parametrize("name, lon, lat, epsg", [
    ("Hà Nội", 105.85, 21.03, 5897), ("TP. Hồ Chí Minh", 106.70, 10.78, 9210), ("Điện Biên", 103.02, 21.38, 9205),
])
def test_cli_ingest_any_province(tmp_path, name, lon, lat, epsg):
    from click.testing import CliRunner

    from pipeline.cli import cli

    frame = gpd.GeoDataFrame({"KHLOAIDAT": ["ODT"], "DOITUONG": ["GDC"], "MAXA": ["00001"]},
                             geometry=[shapely.box(lon, lat, lon + 0.001, lat + 0.001)], crs="EPSG:4326")
    frame.to_file(tmp_path / "p.geojson")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "p.geojson"), "--province", name,
                                      "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    parcels = gpd.read_parquet(tmp_path / "w/parcels/00001.parquet")
    assert parcels.crs.to_epsg() == epsg
    easting = shapely.get_coordinates(parcels.geometry.values[0])[:, 0].mean()
    assert 300_000 < easting < 700_000


def test_config_encoding_override_cp1258(tmp_path):
    from pipeline.config import SourceOverride

    path = _write_shp(tmp_path / "c.shp", [{"KHLOAIDAT": "LUC", "DOITUONG": "GDC",
                                            "TENCHU": "Lương Văn Tâm".encode("cp1258").decode("latin-1"),
                                            "geometry": square()}], cpg=None)
    settings = Settings(province=LANG_SON, sources=(SourceOverride("c.shp", encoding="cp1258"),))
    parcels, _, report = _ingest(path, settings)
    assert parcels["owner_name"].iat[0] == "Lương Văn Tâm" and report.encoding == "cp1258 (config)"


def test_forced_codec_wins_an_ambiguous_word():
    # 'Hoµng' only decodes as TCVN3; 'Ho\xe0ng' (à) is Unicode already; with a
    # forced codec the ranking starts with it
    assert repair_text("Hoµng", prefer="TCVN3").text == "Hoàng"
    assert repair_text("Hoaøng", prefer="VNI").codecs == ("VNI",)


@pytest.mark.parametrize("word", ["Quỳnh", "quýt", "Quyết", "Huỳnh", "quỷ"])
def test_qu_syllables_are_vietnamese(word):
    from pipeline.vntext import is_syllable, repair_text

    assert is_syllable(word)
    assert repair_text(f"Thôn {word} Sơn").text == f"Thôn {word} Sơn"


def test_boundary_codes_read_as_floats_or_left_blank_keep_their_digits(tmp_path):
    from pipeline.boundaries import load_boundaries
    from pipeline.config import Boundaries, NewUnits
    from pipeline.regroup.stage import load_new_units

    # a numeric field with a blank (a lake, a river) reads as floats: 6286.0, not 6286
    frame = gpd.GeoDataFrame({"MAXA": [6286.0, 6253.0, None], "TENXA": ["Xã Khánh Khê", "Xã Yên Phúc", "Hồ"],
                              "MAHUYEN": [180.0, 180.0, None], "TENHUYEN": "Huyện Văn Quan"},
                             geometry=[square(), square(100), square(200)], crs="EPSG:9215")
    path = tmp_path / "ranh_gioi.geojson"
    frame.to_file(path)

    bounds = load_boundaries(Boundaries(path, "MAXA", "TENXA", "MAHUYEN", "TENHUYEN"), LANG_SON.central_meridian_deg)
    units = load_new_units(NewUnits(path, "2025", name_field="TENXA", code_field="MAXA"), LANG_SON.central_meridian_deg)

    assert list(bounds["commune_code"]) == ["06286", "06253"] and set(bounds["district_code"]) == {"180"}
    assert list(units["unit_code"].dropna()) == ["06253", "06286"]


@pytest.mark.parametrize("epsg", [9215, 3405])
def test_a_boundary_file_and_new_units_without_prj_are_read_in_the_crs_their_coordinates_fit(tmp_path, epsg):
    from pipeline.boundaries import load_boundaries
    from pipeline.config import Boundaries, NewUnits
    from pipeline.regroup.stage import load_new_units

    # the commune boundaries as the cadastral office keeps them: VN-2000 TM-3 (or UTM) metres, no .prj
    frame = gpd.GeoDataFrame({"MAXA": ["06286", "06253"], "TENXA": ["Xã Khánh Khê", "Thị trấn Văn Quan"],
                              "MAHUYEN": "180", "TENHUYEN": "Huyện Văn Quan"},
                             geometry=[square(size=1000), square(1000, size=1000)], crs="EPSG:9215").to_crs(epsg=epsg)
    path = tmp_path / "ranh_gioi.shp"
    frame.to_file(path)
    path.with_suffix(".prj").unlink()
    nowhere = tmp_path / "ngoai_tinh.shp"
    frame.set_geometry(frame.translate(5_000_000)).to_file(nowhere)  # a typing error: fits nothing of Lạng Sơn
    nowhere.with_suffix(".prj").unlink()
    meridian = LANG_SON.central_meridian_deg

    bounds = load_boundaries(Boundaries(path, "MAXA", "TENXA", "MAHUYEN", "TENHUYEN"), meridian)
    units = load_new_units(NewUnits(path, "2025", name_field="TENXA", code_field="MAXA"), meridian)

    assert bounds.area.to_numpy() == pytest.approx([1e6, 1e6], rel=1e-3)  # was read as degrees: inf
    assert shapely.hausdorff_distance(bounds.geometry.iloc[0], square(size=1000)) < 0.5  # in place, to the dm
    assert units.area.to_numpy() == pytest.approx([1e6, 1e6], rel=1e-3)
    with pytest.raises(InputFileError, match="ngoai_tinh.shp: the file declares no coordinate system"):
        load_boundaries(Boundaries(nowhere, "MAXA", "TENXA", "MAHUYEN", "TENHUYEN"), meridian)


def test_a_boundary_file_and_new_units_in_tcvn3_without_cpg_give_unicode_names(tmp_path):
    from pipeline.boundaries import load_boundaries
    from pipeline.config import Boundaries, NewUnits
    from pipeline.regroup.stage import load_new_units
    from pipeline.vntext import encode_tcvn3

    frame = gpd.GeoDataFrame({"MAXA": ["06253"], "TENXA": [encode_tcvn3("Xã Hoàng Văn Thụ")], "MAHUYEN": ["180"],
                              "TENHUYEN": [encode_tcvn3("Huyện Văn Quan")]}, geometry=[square()], crs="EPSG:9215")
    path = _write_shp(tmp_path / "ranh_gioi.shp", frame.to_dict("records"), cpg=None)
    assert frame["TENXA"].iat[0] == "X· Hoµng V¨n Thô"  # the bytes an old TCVN3 machine wrote

    bounds = load_boundaries(Boundaries(path, "MAXA", "TENXA", "MAHUYEN", "TENHUYEN"), LANG_SON.central_meridian_deg)
    units = load_new_units(NewUnits(path, "2025", name_field="TENXA", code_field="MAXA"), LANG_SON.central_meridian_deg)

    assert (bounds["commune_name"].iat[0], bounds["district_name"].iat[0]) == ("Xã Hoàng Văn Thụ", "Huyện Văn Quan")
    assert units["unit_name"].iat[0] == "Xã Hoàng Văn Thụ"
