"""Invariants, for any input hypothesis makes up: nothing is lost from stage to stage."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings, strategies as st
from pyproj import CRS

from pipeline.aggregate import area_by_code, code_tree_totals
from pipeline.config import Settings
from pipeline.forms import compute_forms
from pipeline.ingest import ingest_frame
from pipeline.ingest.corrections import number_key, number_keys
from pipeline.khoanh import build_khoanh
from pipeline.reference import landuse_tree, province
from pipeline.regime import load_template
from pipeline.topology import overlapping_pairs, parcel_priority, resolve_overlaps
from pipeline.units import build_units

X0, Y0 = 450_000.0, 2_417_000.0
CODES = ["LUC", "LUK", "ONT", "CLN", "RST", "BCS", "ONT+CLN", "", "XYZ", "LNK"]
OWNERS = ["GDC", "UBQ", "TKT", "CDS", "", "ZZZ"]
SETTINGS = Settings(province=province("Lạng Sơn"))


@st.composite
def communes(draw):
    """A few communes of grid parcels with random codes, owners, holes and overlaps."""
    rows = []
    for c, code in enumerate(draw(st.lists(st.sampled_from(["00001", "00002", "00003"]), min_size=1, max_size=3,
                                           unique=True))):
        n = draw(st.integers(1, 5))
        m = draw(st.integers(1, 5))
        size = draw(st.floats(5, 200))
        for i in range(n):
            for j in range(m):
                if draw(st.booleans()) and draw(st.booleans()):  # a gap: no parcel
                    continue
                grow = draw(st.sampled_from([0.0, 0.0, 0.0, size * 0.2]))  # sometimes overlap the neighbour
                x, y = X0 + c * 10_000 + i * size, Y0 + j * size
                rows.append({"MAXA": code, "SHBANDO": i + 1, "SHTHUA": j + 1,
                             "KHLOAIDAT": draw(st.sampled_from(CODES)), "DOITUONG": draw(st.sampled_from(OWNERS)),
                             "geometry": shapely.box(x, y, x + size + grow, y + size)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9215") if rows else None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communes())
def test_area_is_conserved_through_every_stage(raw):
    if raw is None:
        return
    frame = raw.reset_index(drop=True).assign(source_fid=range(len(raw)))
    parcels, quarantine, report = ingest_frame(frame, source_file="h.shp", source_crs=CRS.from_epsg(9215),
                                               settings=SETTINGS)
    # ingest: input = output + quarantine
    assert report.features_in == len(raw) == len(parcels) + len(quarantine)
    assert shapely.area(raw.geometry.values).sum() == pytest.approx(
        parcels["area_m2"].sum() + quarantine["area_m2"].sum(), rel=1e-9)
    if parcels.empty:
        return
    areas_from_khoanh = []
    for code, group in parcels.groupby("commune_code"):
        group = group.reset_index(drop=True)
        khoanh = build_khoanh(group, commune_code=code)
        geoms = group.geometry.values
        resolved = resolve_overlaps(geoms, overlapping_pairs(geoms), parcel_priority(group))
        coded = khoanh[khoanh["landuse"].notna()]
        # parcels (overlaps counted once) = khoanh
        assert coded["area_m2"].sum() == pytest.approx(shapely.area(resolved).sum(), rel=1e-9)
        # compound uses carried: Σ uses = khoanh area
        uses = coded["uses"].map(lambda u: sum(json.loads(u).values()) if isinstance(u, str) else np.nan)
        assert np.allclose(uses.dropna(), coded.loc[uses.notna(), "area_m2"], rtol=1e-9)
        areas_from_khoanh.append(coded)
    khoanh_all = pd.concat(areas_from_khoanh, ignore_index=True)
    areas = area_by_code(khoanh_all)
    # khoanh = areas.csv
    assert areas["area_m2"].sum() == pytest.approx(khoanh_all["area_m2"].sum(), rel=1e-9)
    # code-tree sums: every parent = Σ its children; total = NNP + PNN + CSD
    tree = landuse_tree()
    totals = code_tree_totals(areas)
    for _, group in totals.groupby("commune_code"):
        s = group.set_index("code")["area_m2"]
        for code in tree.codes:
            children = tree.children(code)
            if children:
                assert s[code] == pytest.approx(sum(s[c] for c in children), rel=1e-9, abs=1e-9)
        assert s["TONG"] == pytest.approx(s["NNP"] + s["PNN"] + s["CSD"], rel=1e-9, abs=1e-9)
    # roll-up: the forms' own checks pass, and the province = Σ communes (printed numbers)
    bounds = pd.DataFrame({"commune_code": ["00001", "00002", "00003"], "commune_name": ["A", "B", "C"],
                           "district_code": ["001", "001", "002"], "district_name": ["H1", "H1", "H2"]})
    units = build_units(sorted(areas["commune_code"].unique()), bounds, "Lạng Sơn", "20")
    tables = compute_forms(areas, units, load_template())
    communes_total = sum(tables[("01", u.key)]["total"].to_numpy() for u in units if u.level == "xa")
    assert (tables[("01", "tinh/20")]["total"].to_numpy() == communes_total).all()



def numbers(size: int) -> st.SearchStrategy:
    """A column of ``size`` sheet or parcel numbers as files and spreadsheets give them."""
    def column(values: st.SearchStrategy) -> st.SearchStrategy:
        return st.lists(values, min_size=size, max_size=size)
    return st.one_of(
        column(st.one_of(st.none(), st.text("0123456789 aB-/", max_size=5))).map(
            lambda values: pd.Series(values, dtype="string[pyarrow]")),  # a file's text column, blanks as NA
        column(st.one_of(st.none(), st.text("0123456789 aB", max_size=4))).map(
            lambda values: np.array(values, dtype=object)),
        column(st.one_of(st.just(np.nan), st.floats(0, 500).map(round))).map(
            lambda values: np.array(values, dtype=float)),  # numbers read from a spreadsheet
    )


@pytest.mark.parametrize("value, key", [("05", "5"), (" 12a ", "12A"), ("3²", "3²"), ("²", "²"), (None, ""),
                                        ("٣", "3")])
def test_a_number_key(value, key):
    assert number_key(value) == key


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30).flatmap(lambda size: st.tuples(numbers(size), numbers(size))))
def test_a_files_sheet_and_parcel_numbers_are_keyed_as_each_one_alone(columns):
    """The keys a file's numbers are stored under (computed once per distinct
    value) are each row's own :func:`number_key`: ``05`` is ``5``, a blank ``""``."""
    sheets, parcels = columns
    one_by_one = [f"{number_key(s)}/{number_key(p)}" for s, p in zip(sheets, parcels, strict=True)]
    assert number_keys(sheets, parcels) == one_by_one
