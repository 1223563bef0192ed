import unicodedata
from pathlib import Path

import pytest

from pipeline.config import load_settings, settings_from_dict
from pipeline.errors import ConfigError
from pipeline.messages import officer_message

REPO = Path(__file__).resolve().parents[1]


def test_bundled_config_loads():
    settings = load_settings(REPO / "inventory.toml")
    assert settings.province.gso_code == "20"
    assert settings.year == 2019 and settings.reference_date.isoformat() == "2019-12-31"
    override = settings.override_for(REPO / "data/raw/sample/van_quan/khanh_khe/TD_06286.shp")
    assert override.crs == "EPSG:9215" and override.commune_code == "06286"
    assert settings.compound.area_fields["ONT"] == ("DT_ONT", "dienTichDatO")


@pytest.mark.parametrize("data, message", [
    ({}, "missing key 'inventory'"),
    ({"inventory": {"province": "Atlantis"}}, r"\[inventory\] province"),
    ({"inventory": {"province": "Lạng Sơn", "year": "2019"}}, "'year' must be a int"),
    ({"inventory": {"province": "Lạng Sơn", "colour": 1}}, r"unknown key\(s\) \['colour'\]"),
    ({"inventory": {"province": "Lạng Sơn", "reference_date": "31/12/2019"}}, "write it as 2019-12-31"),
    ({"inventory": {"province": "Lạng Sơn"}, "sources": [{"path": "*.shp", "crs": "EPSG:999999"}]},
     r"\[\[sources\]\] #1: crs 'EPSG:999999'"),
    ({"inventory": {"province": "Lạng Sơn"}, "sources": [{"crs": "EPSG:9215"}]}, "missing key 'path'"),
    ({"inventory": {"province": "Lạng Sơn"}, "compound": {"first_use_m2": -1}}, "first_use_m2"),
    ({"inventory": {"province": "Lạng Sơn"}, "communes": [{"code": "25465", "name": "Xã A", "district": "Huyện B"}]},
     r"\[\[communes\]\] #1: give both 'district_code' and 'district'"),
    ({"inventory": {"province": "Lạng Sơn"}, "communes": [{"code": "25465"}]}, r"#1: missing key 'name'"),
    ({"inventory": {"province": "Lạng Sơn"}, "communes": [{"code": "1", "name": "A"}, {"code": "00001", "name": "B"}]},
     "commune code 00001 is given more than once"),
    ({"inventory": {"province": "Lạng Sơn"}, "communes": [{"code": "1", "name": "A", "huyen": "B"}]},
     r"unknown key\(s\) \['huyen'\]"),
])
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_dict(data)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "inventory.toml"
    path.write_text("[inventory\nprovince = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


@pytest.mark.parametrize("folder", [r"D:\KiemKe\du_lieu", r"C:\Users\can_bo\du_lieu"])
def test_a_windows_path_in_double_quotes_gets_told_how_to_write_it(tmp_path, folder):
    path = tmp_path / "inventory.toml"
    path.write_text(f'[inventory]\nprovince = "Lạng Sơn"\ninput = "{folder}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    told = officer_message(str(raised.value))
    assert "dấu \\ của đường dẫn Windows trong ngoặc kép được hiểu là ký tự đặc biệt" in told
    assert """dấu / (input = "D:/KiemKe/du_lieu") hoặc đặt trong dấu nháy đơn (input = 'D:\\KiemKe\\du_lieu')""" in told
    path.write_text(f"[inventory]\nprovince = 'Lạng Sơn'\ninput = '{folder}'\n", encoding="utf-8")
    assert str(load_settings(path).input_root).endswith(folder)  # as told: in single quotes (on Windows, absolute)


def test_paths_and_patterns_typed_in_another_unicode_form_or_case_find_the_files_on_disk(tmp_path):
    # the folders named with Unikey's "Unicode tổ hợp" (NFD) or on Windows; the config typed in NFC, other case
    folder = tmp_path / "raw" / unicodedata.normalize("NFD", "Hòa Bình")
    folder.mkdir(parents=True)
    (folder / unicodedata.normalize("NFD", "Ranh giới.geojson")).write_text("{}", encoding="utf-8")
    (tmp_path / "inventory.toml").write_text(
        '[inventory]\nprovince = "Lạng Sơn"\ninput = "RAW"\n'
        '[forest]\npath = "raw/hòa bình/ranh giới.geojson"\nstatus_field = "TT"\n'
        '[previous]\nyear = 2014\npath = "raw/Hòa Bình/*.shp"\n'
        '[[sources]]\npath = "Hòa Bình/*"\ncommune_code = "06274"\n', encoding="utf-8")

    settings = load_settings(tmp_path / "inventory.toml")

    assert settings.input_root == tmp_path / "raw"
    assert settings.forest.path == folder / unicodedata.normalize("NFD", "Ranh giới.geojson")
    assert settings.previous.path == str(folder / "*.shp")  # the folder as on disk, the pattern as written
    parcels = folder / unicodedata.normalize("NFD", "Thửa đất.shp")
    assert settings.override_for(parcels).commune_code == "06274"
    assert settings.override_for(tmp_path / "raw/Tân Đoàn/Thửa đất.shp").commune_code is None


def test_commune_names_from_the_config_fill_and_override_the_boundary_file(tmp_path):
    """``[[communes]]`` names a commune the boundary file lacks (code padded to
    five digits) and renames one it has, keeping that one's district; the run
    manifest carries the names through its JSON."""
    from pipeline.workdir import RunManifest

    settings = settings_from_dict({
        "inventory": {"province": "Lạng Sơn"},
        "boundaries": {"path": str(REPO / "data/raw/sample/boundaries/communes_van_quan.geojson")},
        "communes": [{"code": "6999", "name": "Xã Mới", "district_code": "185", "district": "Huyện Văn Quan"},
                     {"code": "06286", "name": "Xã Khánh Khê (tên mới)"}],
    })
    assert settings.communes[0].code == "06999"
    manifest = RunManifest.from_json(RunManifest.from_settings(settings).to_json(tmp_path), tmp_path)
    units = manifest.unit_attributes().set_index("commune_code")
    assert units.loc["06999"].tolist() == ["Xã Mới", "185", "Huyện Văn Quan"]
    assert units.loc["06286", "commune_name"] == "Xã Khánh Khê (tên mới)"
    assert units.loc["06286", "district_name"] == units.loc["06253", "district_name"] == "Huyện Văn Quan"
    in_file = manifest.load_boundaries().set_index("commune_code")["commune_name"]
    assert manifest.commune_names()["06253"] == in_file["06253"] == "Thị trấn Văn Quan"
    assert len(units) == len(in_file) + 1 == units.index.nunique()


NOTEPAD_CONFIG = """# Cấu hình kiểm kê — sửa bằng Notepad
[inventory]
province = "Lạng Sơn"
year = 2019
input = "raw"

[[communes]]
code = "06253"
name = "Thị trấn Văn Quan"
district_code = "184"
district = "Huyện Văn Quan"
"""


def _ansi(text: str) -> bytes:
    """``text`` as Notepad's "ANSI" saves it on a Vietnamese Windows (cp1258:
    a vowel's tone is a character of its own)."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = []
    for char in text:
        split = unicodedata.normalize("NFD", char)
        out.append(unicodedata.normalize("NFC", "".join(c for c in split if c not in tones))
                   + "".join(c for c in split if c in tones))
    return "".join(out).encode("cp1258")


@pytest.mark.parametrize("saved_as", ["UTF-8", "UTF-8 with BOM", "Unicode (UTF-16)", "ANSI (cp1258)",
                                      "UTF-8, Windows line ends"])
def test_a_config_saved_by_notepad_in_any_of_its_encodings_reads_the_same(tmp_path, saved_as):
    """Notepad saves "UTF-8" with a byte-order mark (before Windows 10 1903),
    "Unicode" as UTF-16 and "ANSI" as cp1258: each used to stop the run (a TOML
    error at line 1, or an internal error)."""
    encode = {"UTF-8": lambda t: t.encode("utf-8"), "UTF-8 with BOM": lambda t: t.encode("utf-8-sig"),
              "Unicode (UTF-16)": lambda t: t.encode("utf-16"), "ANSI (cp1258)": _ansi,
              "UTF-8, Windows line ends": lambda t: t.replace("\n", "\r\n").encode("utf-8")}[saved_as]
    config = tmp_path / "inventory.toml"
    config.write_bytes(encode(NOTEPAD_CONFIG))
    settings = load_settings(config)
    assert settings.province.gso_code == "20" and settings.input_root == tmp_path / "raw"
    assert [(c.name, c.district) for c in settings.communes] == [("Thị trấn Văn Quan", "Huyện Văn Quan")]


def test_a_corrections_list_saved_as_excels_unicode_text_is_read(tmp_path):
    """Excel's "Unicode Text (*.txt)": UTF-16 with tabs between columns."""
    from pipeline.io import read_officer_csv

    saved = tmp_path / "corrections.csv"
    saved.write_bytes("ma_xa\tto\tthua\tma_loai_dat_dung\tghi_chu\r\n6253\t05\t12\tONT\tđất ở\r\n".encode("utf-16"))
    table = read_officer_csv(saved)
    assert table.to_dict("records") == [{"ma_xa": "6253", "to": "05", "thua": "12", "ma_loai_dat_dung": "ONT",
                                         "ghi_chu": "đất ở"}]
