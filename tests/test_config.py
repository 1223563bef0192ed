from pathlib import Path

import pytest

from pipeline.config import load_settings, settings_from_dict
from pipeline.errors import ConfigError

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
])
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_dict(data)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "inventory.toml"
    path.write_text("[inventory\nprovince = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)
