"""QA and khoanh đất: inline geometries with known answers, then the sample."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st

from pipeline.ingest import INVALID_FLAG
from pipeline.khoanh import GAP_FLAG, build_khoanh, khoanh_and_outline
from pipeline.qa import qa_commune
from tests.helpers import X0, Y0, cell, grid, parcels


def test_clean_grid_has_no_problem():
    result = qa_commune(parcels(grid()), boundary=shapely.box(X0, Y0, X0 + 300, Y0 + 300),
                        natural_area_m2=90_000.0)
    assert sum(result.counts().values()) == 0
    assert result.reconciliation()["difference_m2"] == pytest.approx(0.0)


def test_overlap_located_with_its_area():
    geoms = grid()
    geoms[4] = shapely.box(X0 + 100, Y0 + 100, X0 + 210, Y0 + 200)  # 10 m into the eastern neighbour
    layer = qa_commune(parcels(geoms)).layers["overlaps"]
    assert len(layer) == 1 and layer["area_m2"].iat[0] == pytest.approx(1000.0)
    assert layer["parcels"].iat[0] == "1/5 & 1/6"
    assert X0 + 200 < layer["y_easting"].iat[0] < X0 + 210 and Y0 + 100 < layer["x_northing"].iat[0] < Y0 + 200


def test_two_exports_of_the_same_parcels_in_one_commune_are_told_apart_from_neighbouring_sheets():
    # an older export kept beside the newer (one parcel redrawn), and a neighbouring sheet 2 m into the grid
    newer, older = grid(), grid()
    older[4] = shapely.box(X0 + 100, Y0 + 100, X0 + 195, Y0 + 200)
    sheet_2 = [shapely.box(X0 + 298, Y0 + y, X0 + 400, Y0 + y + 100) for y in (0, 100, 200)]
    frame = parcels(newer + older + sheet_2).assign(
        source_file=["raw/hb/ThuaDat_2019.shp"] * 9 + ["raw/hb/ThuaDat_2018.shp"] * 9 + ["raw/hb/To_2.shp"] * 3)

    result = qa_commune(frame, shown=lambda f: f.removeprefix("raw/"))

    (warning,) = [w for w in result.warnings if "chồng lên nhau" in w]
    assert warning.startswith("Tệp «hb/ThuaDat_2018.shp» và tệp «hb/ThuaDat_2019.shp» chồng lên nhau 8,9500 ha "
                              "(100 % diện tích tệp «hb/ThuaDat_2018.shp»): có thể là hai bản xuất của cùng một "
                              "dữ liệu")
    assert result.counts()["duplicates"] == 8  # what QA lists parcel by parcel, as before


def test_duplicate_is_not_an_overlap():
    geoms = grid() + [cell(1, 1)]
    result = qa_commune(parcels(geoms))
    assert result.counts()["duplicates"] == 1 and result.counts()["overlaps"] == 0
    assert result.layers["duplicates"]["parcels"].iat[0] == "1/5 & 1/10"


def test_gap_inside_and_against_the_boundary():
    geoms = grid()
    del geoms[4]  # the middle parcel is missing
    boundary = shapely.box(X0, Y0, X0 + 300, Y0 + 310)  # the commune reaches 10 m further north
    layer = qa_commune(parcels(geoms), boundary=boundary).layers["gaps"]
    assert sorted(layer["area_m2"]) == pytest.approx([3000.0, 10_000.0])
    inside = layer[layer["detail"] == "khoảng hở giữa các thửa"]
    assert inside["y_easting"].iat[0] == pytest.approx(X0 + 150, abs=50)
    assert inside["x_northing"].iat[0] == pytest.approx(Y0 + 150, abs=50)


def test_a_commune_around_a_town_has_no_gap_where_the_town_is():
    """A commune whose boundary has a hole (a town inside it, another
    commune's land): its parcels leave that hole, which is no gap between
    them; a hole of theirs reaching 10 m past the town's edge is a gap there
    only, and the areas reconcile with nothing unexplained."""
    geoms = grid()
    del geoms[4]  # the middle cell is the town's
    town = cell(1, 1)
    boundary = shapely.box(X0, Y0, X0 + 300, Y0 + 300).difference(town)
    result = qa_commune(parcels(geoms), boundary=boundary, natural_area_m2=boundary.area)
    assert result.counts()["gaps"] == 0
    assert result.reconciliation()["unexplained_m2"] == pytest.approx(0.0)

    geoms[3] = shapely.box(X0, Y0 + 100, X0 + 90, Y0 + 200)  # the western neighbour stops 10 m short of the town
    result = qa_commune(parcels(geoms), boundary=boundary, natural_area_m2=boundary.area)
    layer = result.layers["gaps"]
    assert list(layer["detail"]) == ["khoảng hở giữa các thửa"] and layer["area_m2"].iat[0] == pytest.approx(1000.0)
    assert result.reconciliation()["unexplained_m2"] == pytest.approx(0.0)


def test_sub_centimetre_boundary_noise_is_not_a_problem():
    boundary = shapely.box(X0 - 0.0008, Y0, X0 + 300.0008, Y0 + 300.0008)  # 0.8 mm datum round trip
    result = qa_commune(parcels(grid()), boundary=boundary)
    assert result.counts()["gaps"] == 0 and result.counts()["crossings"] == 0


def test_sliver_and_crossing():
    geoms = grid()
    geoms[8] = shapely.box(X0 + 200, Y0 + 200, X0 + 305, Y0 + 300)  # 5 m beyond the eastern boundary
    strip = shapely.box(X0 + 300.0, Y0, X0 + 300.2, Y0 + 100)  # 20 cm strip, outside too
    result = qa_commune(parcels(geoms + [strip]), boundary=shapely.box(X0, Y0, X0 + 300, Y0 + 300))
    slivers = result.layers["slivers"]
    assert list(slivers["parcels"]) == ["1/10"] and slivers["detail"].iat[0] == "bề rộng trung bình 0,20 m"
    crossings = result.layers["crossings"].sort_values("area_m2")
    assert list(crossings["area_m2"]) == pytest.approx([20.0, 500.0])


def test_invalid_comes_from_the_ingest_flag():
    flags = [None] * 9
    flags[2] = f"{INVALID_FLAG} (Self-intersection[450250 2417000])"
    layer = qa_commune(parcels(grid(), flags=flags)).layers["invalid"]
    assert list(layer["parcels"]) == ["1/3"] and layer["detail"].iat[0] == "Hình học lỗi đã sửa (điểm tự cắt)"


def test_reconciliation_explains_the_difference():
    geoms = grid()
    geoms[4] = shapely.box(X0 + 100, Y0 + 100, X0 + 210, Y0 + 200)  # +1000 m² overlap
    del geoms[0]  # −10 000 m² gap on the boundary
    result = qa_commune(parcels(geoms), boundary=shapely.box(X0, Y0, X0 + 300, Y0 + 300),
                        natural_area_m2=90_000.0)
    rec = result.reconciliation()
    assert rec["difference_m2"] == pytest.approx(1000.0 - 10_000.0)
    assert rec["unexplained_m2"] == pytest.approx(0.0, abs=1e-6)
    assert result.warnings and "−" not in result.warnings[0]


# ----------------------------------------------------------------- khoanh


def test_khoanh_merges_same_code_and_owner_only():
    geoms = [cell(0, 0), cell(1, 0), cell(2, 0), cell(0, 1), cell(1, 1), cell(2, 1)]
    khoanh = build_khoanh(parcels(
        geoms, landuse=["LUC", "LUC", "LUC", "ONT", "ONT", "LUC"],
        owner=["GDC", "GDC", "UBQ", "GDC", "GDC", "GDC"],
        uses=[None, None, None, json.dumps({"ONT": 400.0, "CLN": 9600.0}), None, None]))
    assert len(khoanh) == 4
    assert khoanh["area_m2"].sum() == pytest.approx(60_000.0)
    luc = khoanh[(khoanh["landuse"] == "LUC") & (khoanh["owner_type"] == "GDC")].sort_values("area_m2")
    assert list(luc["area_m2"]) == [10_000.0, 20_000.0]  # the LUC/GDC at (2,1) does not touch (0,0)-(1,0)
    ont = khoanh[khoanh["landuse"] == "ONT"].iloc[0]
    assert ont["parcel_count"] == 2 and ont["parcel_ids"] == "1/4, 1/5"
    assert json.loads(ont["uses"]) == pytest.approx({"ONT": 10_400.0, "CLN": 9_600.0})
    # numbered from the north-west: the northern row first, west to east
    assert list(khoanh.sort_values("khoanh_no")["landuse"]) == ["ONT", "LUC", "LUC", "LUC"]


def test_khoanh_counts_an_overlap_once_and_flags_gaps():
    geoms = grid()
    geoms[4] = shapely.box(X0 + 100, Y0 + 100, X0 + 210, Y0 + 200)  # parcel 5 overlaps parcel 6
    del geoms[0]
    landuse = ["LUC"] * 7 + ["ONT"]
    khoanh = build_khoanh(parcels(geoms, landuse=landuse), boundary=shapely.box(X0, Y0, X0 + 300, Y0 + 300))
    coded = khoanh[khoanh["landuse"].notna()]
    assert coded["area_m2"].sum() == pytest.approx(80_000.0)  # 8 parcels, the overlap once
    gap = khoanh[khoanh["flag"] == GAP_FLAG]
    assert len(gap) == 1 and gap["area_m2"].iat[0] == pytest.approx(10_000.0) and gap["landuse"].isna().all()


def test_outline_is_the_union_of_the_khoanh_and_their_gaps():
    """The commune's outline written with its khoanh (for sheets without a
    boundary) covers every khoanh and the gap khoanh, and no more."""
    geoms = grid()
    del geoms[4]  # a hole in the middle: a gap khoanh
    del geoms[0]  # a corner bitten off: outside the outline
    khoanh, outline = khoanh_and_outline(parcels(geoms, landuse=["LUC"] * 4 + ["ONT"] * 3))
    assert (khoanh["flag"] == GAP_FLAG).sum() == 1
    union = shapely.union_all(khoanh.geometry.values)
    assert shapely.area(shapely.symmetric_difference(outline, union)) < 1e-6
    assert shapely.area(outline) == pytest.approx(80_000.0) and shapely.get_num_interior_rings(outline) == 0


def test_outline_without_a_boundary_closes_the_roads_no_parcel_covers():
    """Without a commune boundary, the outline runs round the commune: a
    12 m road no parcel covers, right across it, and a 20 m canal into it are
    closed, a pond inside it filled; a 100 m bay stays, its corners square.
    With a boundary, the gaps against it are gap khoanh, as before."""
    def block(x0, y0, x1, y1):
        return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)
    south, north = block(0, 0, 300, 144), block(0, 156, 300, 300)  # the road: y 144-156
    north = north.difference(block(200, 250, 220, 300)).difference(block(0, 200, 100, 300))  # canal; bay
    south = south.difference(block(100, 40, 160, 100))  # a pond of 3 600 m²: a gap khoanh
    khoanh, outline = khoanh_and_outline(parcels([south, north], landuse=["LUC", "ONT"]))
    assert shapely.get_num_geometries(outline) == 1 and shapely.get_num_interior_rings(outline) == 0
    closed = block(0, 0, 300, 300).difference(block(0, 200, 100, 300))
    assert shapely.area(shapely.symmetric_difference(outline, closed)) < 1e-6
    union = shapely.union_all(khoanh.geometry.values)  # the parcels and the pond's gap khoanh: no more
    assert shapely.area(union) == pytest.approx(300 * 300 - 300 * 12 - 20 * 50 - 100 * 100)
    bounded, outline = khoanh_and_outline(parcels([south, north], landuse=["LUC", "ONT"]),
                                          boundary=block(0, 0, 300, 300))
    assert shapely.area(shapely.symmetric_difference(outline, shapely.union_all(bounded.geometry.values))) < 1e-6
    assert (bounded["flag"] == GAP_FLAG).sum() == 4  # the road, the canal, the bay, the pond


def test_a_union_overlays_only_the_parcels_whose_edges_do_not_match(monkeypatch):
    """A 6 × 6 grid (two blocks apart) where one cell's edge does not meet its
    neighbour's vertex for vertex (a T-junction) and another overlaps its
    neighbour: GEOS's coverage union cannot merge them, so the union is the
    coverage union of the clean cells with the few suspected ones overlaid, and
    only the parts near those: the same polygons as the full overlay union."""
    from pipeline import topology

    geoms = [cell(c, r) for r in range(6) for c in range(6) if c != 3]  # two blocks, a street between
    split = shapely.Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 50), (X0 + 100, Y0 + 100),
                             (X0, Y0 + 100)])  # cell (0, 0) with a vertex its neighbour (1, 0) lacks
    geoms[0] = split
    geoms[1] = shapely.box(X0 + 99.5, Y0, X0 + 200, Y0 + 100)  # cell (1, 0) overlapping (0, 0) by 0.5 m
    geoms = np.array(geoms, dtype=object)
    suspected = topology.edge_suspects(geoms)
    # the two, and cell (1, 1) above them, whose bottom edge the overlap's top edge does not match
    assert topology._coverage_union(geoms) is None and set(np.flatnonzero(suspected)) == {0, 1, 6}
    overlaid = []
    real = shapely.union_all
    monkeypatch.setattr(topology.shapely, "union_all", lambda g, *a, **k: overlaid.append(len(g)) or real(g, *a, **k))
    union = topology.union_coverage(geoms, suspected)
    monkeypatch.undo()
    assert overlaid == [4]  # the three suspects and the west block's clean part, not the east block
    assert shapely.is_valid(union) and shapely.get_num_geometries(union) == 2
    assert shapely.area(shapely.symmetric_difference(union, shapely.union_all(geoms))) < 1e-9
    assert topology.union_coverage(geoms).equals(union)  # suspects found by the union itself when not given


def test_a_union_of_a_few_polygons_that_do_not_match_is_their_overlay(monkeypatch):
    """A few polygons (a small-scale sheet's merged khoanh) that GEOS's coverage
    union cannot merge: overlaid all at once, without looking for the suspects
    (which costs more than the overlay); many are still looked at."""
    from pipeline import topology

    split = shapely.Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 50), (X0 + 100, Y0 + 100), (X0, Y0 + 100)])
    few = np.array([split, shapely.box(X0 + 99.5, Y0, X0 + 200, Y0 + 100), cell(0, 1)], dtype=object)
    looked = []
    real = topology.edge_suspects
    monkeypatch.setattr(topology, "edge_suspects", lambda g: looked.append(len(g)) or real(g))
    union = topology.union_coverage(few)
    assert looked == [] and union.equals(shapely.union_all(few)) and shapely.is_valid(union)
    many = np.r_[few, [cell(c, r) for r in range(2, 14) for c in range(12)]]
    assert len(many) > topology.FEW_TO_OVERLAY
    assert shapely.area(shapely.symmetric_difference(topology.union_coverage(many), shapely.union_all(many))) < 1e-9
    assert looked == [len(many)]


def _geos_suspects(geoms) -> np.ndarray:
    """GEOS's coverage check of every polygon, all at once (a missing one: False)."""
    geoms = np.asarray(geoms, dtype=object)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    edges = shapely.coverage_invalid_edges(geoms[present])
    suspects = np.zeros(len(geoms), dtype=bool)
    suspects[present] = ~(shapely.is_missing(edges) | shapely.is_empty(edges))
    return suspects


def test_edge_suspects_of_polygons_after_a_missing_one_are_their_own():
    """shapely returns the coverage check's results moved up past a missing
    geometry: the overlapping pair after it must still be the pair flagged."""
    from pipeline import topology

    geoms = np.array([cell(5, 5), None, cell(0, 0), cell(0, 0, w=150)], dtype=object)
    assert list(topology.edge_suspects(geoms)) == [False, False, True, True]


def test_edge_suspects_are_geos_answer_with_geos_looking_only_where_an_edge_is_not_shared(monkeypatch):
    """A 10 × 10 grid where a cell turns clockwise, one has a vertex its
    neighbour lacks, one is copied, one holds a hole another fills, two are one
    multipolygon, with a missing and an empty geometry: the suspects are
    GEOS's, and GEOS sees only the cells with an edge no other cell shares
    once from its other side, and what they touch."""
    from pipeline import topology

    geoms: list = [cell(c, r) for r in range(10) for c in range(10)]
    geoms[44] = shapely.Polygon(geoms[44].exterior.coords[::-1])  # clockwise: still clean
    x, y = X0 + 600, Y0 + 600
    geoms[66] = shapely.Polygon([(x, y), (x + 100, y), (x + 100, y + 50), (x + 100, y + 100), (x, y + 100)])
    geoms.append(geoms[22])  # a copy: every edge shared, once from the same side
    geoms[33] = shapely.Polygon(geoms[33].exterior.coords, [cell(3, 3, 50, 50).buffer(-20, join_style="mitre")
                                                            .exterior.coords[::-1]])
    geoms.append(cell(3, 3, 50, 50).buffer(-20, join_style="mitre"))  # fills the hole
    geoms[55] = shapely.MultiPolygon([geoms[55], geoms[57]])
    geoms[57] = shapely.Polygon()  # its cell is now the multipolygon's second part
    geoms.append(None)
    geoms = np.array(geoms, dtype=object)
    checked: list[int] = []
    real = topology.shapely.coverage_invalid_edges
    monkeypatch.setattr(topology.shapely, "coverage_invalid_edges",
                        lambda g, *a, **k: checked.append(len(g)) or real(g, *a, **k))
    suspects = topology.edge_suspects(geoms)
    monkeypatch.undo()
    assert np.array_equal(suspects, _geos_suspects(geoms))
    # the copy and its cell; the cell with a vertex its east neighbour lacks, and that neighbour
    assert set(np.flatnonzero(suspects)) == {22, 66, 67, 100}
    # GEOS saw 81 of the 103: the 36 border cells (edges no neighbour shares), the copy, the cells whose edges
    # the copy shares a third time, the T-junction's two, and every cell one of those touches
    assert checked == [81]


@st.composite
def _damaged_grids(draw):
    """A grid of cells, some moved a little, split, turned, copied or merged."""
    n = draw(st.integers(3, 7))
    geoms: list = [cell(c, r) for r in range(n) for c in range(n)]
    for _ in range(draw(st.integers(0, 6))):
        k = draw(st.integers(0, len(geoms) - 1))
        what = draw(st.sampled_from(["move", "split", "turn", "copy", "merge", "drop"]))
        if geoms[k] is None or shapely.get_type_id(geoms[k]) != 3:
            continue
        coords = np.asarray(geoms[k].exterior.coords)
        if what == "move":
            coords[[0, -1] if draw(st.booleans()) else [1]] += draw(st.sampled_from([0.5, -0.5, 1e-9]))
            geoms[k] = shapely.Polygon(coords)
        elif what == "split":
            geoms[k] = shapely.Polygon(np.insert(coords, 1, (coords[0] + coords[1]) / 2, axis=0))
        elif what == "turn":
            geoms[k] = shapely.Polygon(coords[::-1])
        elif what == "copy":
            geoms.append(geoms[k])
        elif what == "merge" and k + 1 < len(geoms) and geoms[k + 1] is not None:
            geoms[k] = shapely.union_all([geoms[k], geoms[k + 1]])
            geoms[k + 1] = None
        elif what == "drop":
            geoms[k] = None
    return np.array(geoms, dtype=object)


@settings(max_examples=60, deadline=None)
@given(_damaged_grids())
def test_edge_suspects_are_geos_coverage_check_for_any_damaged_grid(geoms):
    from pipeline import topology

    assert np.array_equal(topology.edge_suspects(geoms), _geos_suspects(geoms))


# ----------------------------------------------------------------- sample


def test_sample_qa_finds_exactly_the_planted_problems(sample_run, sample_dir):
    planted = pd.read_csv(sample_dir / "planted_problems.csv", dtype={"commune_code": str}, encoding="utf-8-sig")
    found = pd.concat([gpd.read_parquet(p) for p in sorted((sample_run / "qa").glob("*/*.parquet"))],
                      ignore_index=True)
    assert found.groupby(["commune_code", "problem"]).size().to_dict() == \
        planted.groupby(["commune_code", "problem"]).size().to_dict()
    for row in planted.itertuples():
        same = found[(found["commune_code"] == row.commune_code) & (found["problem"] == row.problem)]
        distance = np.hypot(same["x_northing"] - row.x_northing, same["y_easting"] - row.y_easting)
        match = same[distance < 1.0]
        assert len(match) == 1, row
        assert match["area_m2"].iat[0] == pytest.approx(row.area_m2, rel=0.01), row


def test_sample_khoanh_conserve_area_and_are_maximal(sample_run):
    from pipeline.topology import overlapping_pairs, parcel_priority, resolve_overlaps

    for path in sorted((sample_run / "khoanh").glob("*.parquet")):
        khoanh = gpd.read_parquet(path)
        parcels = gpd.read_parquet(sample_run / "parcels" / path.name)
        geoms = parcels.geometry.values
        resolved = resolve_overlaps(geoms, overlapping_pairs(geoms), parcel_priority(parcels))
        coded = khoanh[khoanh["landuse"].notna()]
        assert coded["area_m2"].sum() == pytest.approx(shapely.area(resolved).sum(), rel=1e-6)
        listed = set(", ".join(coded["parcel_ids"]).split(", "))
        alive = parcels[shapely.area(resolved) > 0]
        assert listed == set(alive["sheet_no"].astype(str) + "/" + alive["parcel_no"].astype(str))
        uses = coded["uses"].map(lambda u: sum(json.loads(u).values()) if isinstance(u, str) else np.nan)
        assert np.allclose(uses.dropna(), coded.loc[uses.notna(), "area_m2"], rtol=1e-9)
        assert sorted(khoanh["khoanh_no"]) == list(range(1, len(khoanh) + 1))
        # no two adjacent khoanh share both code and owner type
        g = coded.geometry.values
        i, j = shapely.STRtree(g).query(g, predicate="intersects")
        pairs = (i < j)
        shared = shapely.length(shapely.intersection(g[i[pairs]], g[j[pairs]]))
        same = (coded["landuse"].to_numpy()[i[pairs]] == coded["landuse"].to_numpy()[j[pairs]]) & \
               (coded["owner_type"].to_numpy()[i[pairs]] == coded["owner_type"].to_numpy()[j[pairs]])
        assert not (same & (shared > 1e-6)).any(), path.name


@pytest.mark.slow
def test_each_commune_overview_is_drawn_with_its_qa_and_shown_in_the_report(sample_run):
    """The QA task draws its commune's overview map (qa/<code>/overview.png, on
    the worker, kept with the layers); qa.html shows each one, in commune order."""
    import base64

    html = (sample_run / "reports" / "qa.html").read_text(encoding="utf-8")
    codes = sorted(p.stem for p in (sample_run / "parcels").glob("*.parquet"))
    shown = [html.index(base64.b64encode((sample_run / "qa" / code / "overview.png").read_bytes()).decode())
             for code in codes]
    assert len(codes) == 5 and shown == sorted(shown)
    assert all((sample_run / "qa" / code / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for code in codes)


@pytest.mark.slow
def test_qa_again_after_one_commune_changed_reads_that_commune_only(sample_run, tmp_path, monkeypatch):
    """Each QA task writes its commune's part of the reports (qa/<code>/section.json):
    when one commune's parcels change, QA reads that commune's parcels and no
    other commune's layers, and the reports come out as from scratch."""
    import os
    import shutil

    import pipeline.qa.stage as qa_stage
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "units_*", "*.gpkg", "*.tif"))
    reports = {name: (work / "reports" / name).read_bytes() for name in ("qa.md", "qa.html", "qa.json")}
    changed = sorted((work / "parcels").glob("*.parquet"))[2]
    later = changed.stat().st_mtime + 60
    os.utime(changed, (later, later))
    read = []
    monkeypatch.setattr(qa_stage, "read_geoparquet", lambda path, *a, **k: read.append(path) or
                        gpd.read_parquet(path, *a, **k))
    sections = qa_stage.run_qa(WorkDir(work), progress=False)
    assert read == [changed]
    assert [s.commune_code for s in sections] == sorted(p.stem for p in (work / "parcels").glob("*.parquet"))
    assert {name: (work / "reports" / name).read_bytes() for name in reports} == reports


def test_khoanh_resolve_the_overlaps_qa_found_unless_the_parcels_changed_since(sample_run, tmp_path, monkeypatch):
    """QA keeps each commune's overlapping pairs (cache/overlaps/<code>.parquet)
    and the parcels its coverage check flags (<code>.suspects.parquet); the
    khoanh task resolves and merges with those instead of running GEOS's
    coverage check again, with the same khoanh, and checks again when the
    parcels are newer."""
    import os
    import shutil

    import pipeline.khoanh as khoanh_module
    from pipeline.io import read_geoparquet
    from pipeline.topology import Thresholds
    from pipeline.workdir import WorkDir

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root, ignore=shutil.ignore_patterns("maps", "forms", "units_*", "*.gpkg", "*.tif"))
    found = {p.stem: pd.read_parquet(p) for p in (work.root / "cache" / "overlaps").glob("*.parquet")
             if not p.name.endswith(".suspects.parquet")}
    assert sorted(found) == sorted(p.stem for p in work.parcel_files())
    assert all(work.edge_suspects(c).exists() for c in found)
    code = next(c for c, pairs in found.items() if len(pairs))  # the sample plants overlaps
    parcels = read_geoparquet(work.parcels(code))
    expected, _ = khoanh_and_outline(parcels, commune_code=code)  # the pairs found here

    checked = []
    real = khoanh_module.overlapping_pairs
    monkeypatch.setattr(khoanh_module, "overlapping_pairs", lambda *a, **k: checked.append(1) or real(*a, **k))
    suspects = khoanh_module.edge_suspects
    monkeypatch.setattr(khoanh_module, "edge_suspects", lambda *a, **k: checked.append(2) or suspects(*a, **k))
    khoanh_module.khoanh_to_file(str(work.root), code, None, Thresholds())
    assert checked == []
    pd.testing.assert_frame_equal(read_geoparquet(work.khoanh(code)), expected)

    later = work.parcels(code).stat().st_mtime + 60
    os.utime(work.parcels(code), (later, later))
    khoanh_module.khoanh_to_file(str(work.root), code, None, Thresholds())
    assert checked == [2, 1]


def test_two_exports_of_one_commune_are_said_on_the_console_once(tmp_path):
    """QA's warnings (two files of a commune lying on each other, the parcels'
    area far from the natural area) were in qa.md alone: the officer running
    `kiemke inventory` saw nothing of them. They are said on the console when
    the commune is checked, not again while it is unchanged."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    raw = tmp_path / "raw"
    raw.mkdir()
    older = grid()
    older[4] = shapely.box(X0 + 100, Y0 + 100, X0 + 195, Y0 + 200)  # one parcel redrawn since
    for year, geoms in ((2018, older), (2019, grid())):
        gpd.GeoDataFrame({"KHLOAIDAT": ["LUC"] * 9}, geometry=geoms, crs="EPSG:9215").to_file(
            raw / f"ThuaDat_{year}.shp")
    work = str(tmp_path / "work")
    ingest = ["ingest", str(raw), "--province", "Lạng Sơn", "--commune-code", "06253", "--workdir", work]
    assert CliRunner().invoke(cli, ingest).exit_code == 0
    first, again = (CliRunner().invoke(cli, ["qa", "--workdir", work]) for _ in range(2))
    said = [line for line in first.output.splitlines() if line.startswith("Cảnh báo: ")]
    assert len(said) == 1 and said[0].startswith(f"Cảnh báo: Xã 06253: Tệp «{raw}/ThuaDat_2018.shp» và tệp "
                                                 f"«{raw}/ThuaDat_2019.shp» chồng lên nhau 8,9500 ha"), first.output
    assert again.exit_code == 0 and "Cảnh báo" not in again.output
