from datetime import date

import pandas as pd
import pytest

from pipeline.aggregate import TOTAL_CODE, code_tree_totals
from pipeline.errors import UnknownProvinceError
from pipeline.reference import (
    NATURAL_AREA_GROUPS,
    central_meridian,
    landuse_colors,
    landuse_tree,
    owner_codes,
    province,
    provinces,
    read_table,
)


def test_hierarchy_is_a_tree():
    tree = landuse_tree()
    codes = set(tree.codes)
    assert len(codes) == len(tree.codes) == 79
    for code in tree.codes:
        parent = tree.parent(code)
        assert parent is None or parent in codes, code
        chain = tree.ancestors(code)
        assert len(chain) == len(set(chain)), f"cycle above {code}"
        assert tree.table.at[code, "level"] == len(chain) + 1
    assert tree.roots() == ["NNP", "PNN", "CSD", "MVB"]


def test_every_natural_area_leaf_rolls_up_to_nnp_pnn_or_csd():
    tree = landuse_tree()
    for leaf in tree.leaves:
        if tree.in_natural_area(leaf):
            assert tree.root(leaf) in NATURAL_AREA_GROUPS, leaf
        else:
            assert tree.root(leaf) == "MVB", leaf
    assert {"LUC", "ONT", "RSX"} - set(tree.leaves) == {"RSX"}  # RSX is a parent of RSN/RST/RSM


def test_mvb_block_stays_outside_the_natural_area_total():
    areas = pd.DataFrame({
        "commune_code": ["06253"] * 4,
        "landuse": ["LUC", "ONT", "NCS", "MVT"],
        "owner_type": ["GDC", "GDC", "UBQ", "UBQ"],
        "area_m2": [100.0, 20.0, 5.0, 1000.0],
    })
    totals = code_tree_totals(areas).set_index("code")["area_m2"]
    assert totals[TOTAL_CODE] == 125.0
    assert totals["NNP"] == 100.0 and totals["PNN"] == 20.0 and totals["CSD"] == 5.0
    assert totals["MVB"] == 1000.0
    assert totals["LUA"] == totals["CHN"] == totals["SXN"] == 100.0


def test_inferred_marks_are_kept():
    table = read_table("landuse_codes.csv").set_index("code")
    assert table.at["RPT", "confidence"] == "inferred"
    assert table.at["LUC", "confidence"] == "confirmed"
    assert "source" in table.columns
    assert (owner_codes().loc["TKT", "confidence"]) == "inferred"
    assert landuse_colors().loc["LUC", "hex"] == "#FFFC8C"


@pytest.mark.parametrize("text", ["Lạng Sơn", "lang son", "LANG SON", "Tỉnh Lạng Sơn", "20", 20, "Lang Son"])
def test_lang_son_is_107_15(text):
    assert central_meridian(text) == 107.25
    assert province(text).central_meridian_dms == "107°15'"


@pytest.mark.parametrize("text, code", [
    ("TP. Hồ Chí Minh", "79"), ("Hồ Chí Minh", "79"), ("thanh pho ho chi minh", "79"),
    ("Thừa Thiên Huế", "46"), ("Bà Rịa - Vũng Tàu", "77"), ("ba ria vung tau", "77"),
    ("Hà Nội", "01"), ("1", "01"), ("Đắk Lắk", "66"), ("dak lak", "66"),
])
def test_province_names_as_people_type_them(text, code):
    assert province(text).gso_code == code


@pytest.mark.parametrize("text, on, title", [
    ("Lạng Sơn", date(2019, 12, 31), "Tỉnh Lạng Sơn"), ("Hà Nội", date(2019, 12, 31), "Thành phố Hà Nội"),
    ("TP. Hồ Chí Minh", date(2024, 12, 31), "Thành phố Hồ Chí Minh"),
    ("Cần Thơ", date(2019, 12, 31), "Thành phố Cần Thơ"),
    ("Thừa Thiên Huế", date(2019, 12, 31), "Tỉnh Thừa Thiên Huế"), ("Huế", date(2024, 12, 31), "Tỉnh Thừa Thiên Huế"),
    ("Huế", date(2025, 12, 31), "Thành phố Huế"), ("Thành phố Huế", date(2025, 12, 31), "Thành phố Huế"),
])
def test_a_centrally_run_city_is_titled_as_one_and_known_by_its_name_of_today(text, on, title):
    """Titles say "Thành phố Hà Nội", not "Tỉnh Hà Nội"; Huế, a city since
    1/1/2025, is found by that name and titled by the inventory's date."""
    assert province(text).title(on) == title


def test_all_63_provinces_have_a_meridian():
    assert len(provinces()) == 63
    assert all(102 <= p.central_meridian_deg <= 109 for p in provinces())


def test_unknown_province_says_what_is_accepted():
    with pytest.raises(UnknownProvinceError, match="GSO code"):
        province("Atlantis")
