"""Current land-use maps: true scale, legend, colours, labels, Vietnamese text."""

import io
import json
import warnings
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pandas as pd
import pymupdf
import pytest
import shapely
from PIL import Image

from pipeline.drawing import PT_PER_MM, compound_path, dissolved_outline_path, outline_path
from pipeline.maps.content import _lines_around
from pipeline.maps.generalise import ROUNDS, _shared, generalise, minimum_mapped_m2, simplified
from pipeline.maps.labels import Room, box_polygon, label_coverage, place_labels
from pipeline.maps.layout import (
    ROLL_MM,
    choose_paper,
    format_scale,
    plotter_layout,
    regulation_scale,
    scale_area_ha,
    sheet_layout,
)
from pipeline.maps.linework import boundary_lines
from pipeline.reference import landuse_colors, landuse_tree
from pipeline.report import vn_number
from pipeline.workdir import WorkDir

SHEETS = ["xa_06253", "xa_06274", "xa_06286", "xa_06307", "xa_06319", "huyen_184", "tinh_20"]
CHANGE_SHEETS = [f"bien_dong_{s}" for s in SHEETS]
Image.MAX_IMAGE_PIXELS = None


@pytest.mark.parametrize("level, ha, scale", [
    ("xa", 119.9, 1000), ("xa", 120, 2000), ("xa", 500, 2000), ("xa", 500.01, 5000), ("xa", 3000, 5000),
    ("xa", 3000.01, 10000), ("huyen", 2999, 5000), ("huyen", 3000, 10000), ("huyen", 12000, 10000),
    ("huyen", 12001, 25000), ("tinh", 99_999, 25000), ("tinh", 350_000, 50000), ("tinh", 350_001, 100000),
])
def test_regulation_scale(level, ha, scale):
    assert regulation_scale(level, ha) == scale


def test_one_step_exception_and_paper():
    assert regulation_scale("xa", 2000, step=-1) == 2000 and regulation_scale("xa", 2000, step=1) == 10000
    assert choose_paper(800, 500, 5000)[0] == "A3 khổ ngang"  # 160 × 100 mm of map and a 120 mm panel
    assert choose_paper(300, 1500, 5000)[0] == "A3 khổ dọc"
    assert choose_paper(2500, 2000, 5000)[0] == "A1 khổ ngang"
    assert choose_paper(800, 500, 5000, panel_height=lambda w: 400)[0] == "A2 khổ dọc"  # a long legend
    assert format_scale(25000) == "1:25.000"


def test_the_frame_fills_the_paper_around_the_unit():
    """1 060 × 424 m of unit (padded) is 212 × 85 mm at 1:5.000, on an A3: the
    frame fills the room beside the panel, from the scale bar to the title,
    and shows the land around the unit, which stays in its middle."""
    layout = sheet_layout((0, 0, 1000, 400), 5000)
    assert layout.paper == "A3 khổ ngang"
    assert layout.frame.x + layout.frame.w + 6 == pytest.approx(layout.panel.x)  # the gap before the panel
    assert layout.frame.y + layout.frame.h == pytest.approx(layout.title_box.y)  # the title just above
    assert layout.map_box.w == pytest.approx(274 - 18) and layout.map_box.h == pytest.approx(233 - 18)
    x0, y0, x1, y1 = layout.extent
    assert (x0 + x1) / 2 == pytest.approx(500) and (y0 + y1) / 2 == pytest.approx(200)
    assert (x1 - x0) * 1000 / 5000 == pytest.approx(layout.map_box.w)  # true scale


def test_the_lines_between_the_communes_around_come_from_a_clean_boundary_file_only():
    """A commune sheet draws the lines of the communes around it where the
    boundary file gives them as one clean coverage (each line once: 1 100 m
    here); where its polygons were digitised apart (a neighbour 3 m off, or
    overlapping), none, not two lines a few metres apart."""
    commune, east = shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)
    north = shapely.Polygon([(0, 100), (100, 100), (200, 100), (200, 200), (0, 200)])
    near = gpd.GeoDataFrame({"name": ["Xã Đông", "Xã Bắc"], "code": ["2", "3"]}, geometry=[east, north])
    around = _lines_around(np.array([commune]), near)
    assert len(around) == 2
    assert shapely.length(boundary_lines({"xa": np.r_[[commune], around]})["xa"]) == pytest.approx(1100)
    for moved in (shapely.affinity.translate(east, 3), shapely.affinity.translate(east, -3)):
        apart = near.set_geometry([moved, north])
        assert len(_lines_around(np.array([commune]), apart)) == 0


def test_a_unit_too_big_for_the_roll_takes_the_next_smaller_scale():
    """6 × 5.5 km of commune at 1:5.000 is 1.2 m × 1.1 m of map: more than a
    44-inch roll on its short side, so 1:10.000, and the note says so."""
    layout, note = plotter_layout((0, 0, 6000, 5500), "xa", 2500)
    assert layout.scale == 10000 and min(layout.page_w, layout.page_h) <= ROLL_MM
    assert note.startswith("tỷ lệ 1:10.000 thay cho 1:5.000")
    small, none = plotter_layout((0, 0, 3000, 2000), "xa", 600)
    assert small.scale == 5000 and none == ""


def test_a_unit_inventoried_in_part_takes_the_scale_of_the_area_inside_its_boundary():
    """A commune of 2025 of whose old communes only one was run: 56 ha of
    inventory inside 11 752 ha of boundary. Its sheet draws the whole boundary,
    so the scale follows that area (1:10.000, on the roll at 1:25.000), not
    the 56 ha (1:1.000, a sheet metres long); a unit inventoried whole keeps
    the inventory's figure, and the note tells the officer which."""
    assert scale_area_ha(55.86, 11_752.0) == (11_752.0, "tỷ lệ theo diện tích trong ranh giới đơn vị (11.752,00 ha): "
                                                        "số liệu kiểm kê chỉ phủ 55,86 ha")
    assert scale_area_ha(1259.01, 1259.0) == (1259.01, "") and scale_area_ha(2990.0, 3010.0) == (2990.0, "")
    assert scale_area_ha(120.0, 0.0) == (120.0, "")  # no boundary: the inventory's


def test_the_sample_s_communes_of_2025_are_drawn_at_the_scale_of_their_boundary(sample_run):
    for code in ("90001", "90003"):  # a few ha of the sample inside each
        sheet = json.loads((sample_run / "units_2025" / "maps" / f"xa_{code}.json").read_text(encoding="utf-8"))
        assert sheet["natural_ha"] < 100 and sheet["scale"] in (10_000, 25_000), code
        assert max(sheet["page_mm"]) <= 1500 and min(sheet["page_mm"]) <= ROLL_MM, code
        assert sheet["note"].startswith("tỷ lệ theo diện tích trong ranh giới đơn vị"), code


def test_the_sheets_of_2025_are_checked_by_the_department_of_that_year(sample_run):
    """Since 1 March 2025 a province's land department is the Department of
    Agriculture and Environment: every sheet of the communes of 2025, the
    province's too, names it; the 2019 province sheet keeps its own."""
    def checker(sheet) -> str:
        words = " ".join(s["text"] for s in _spans(pymupdf.open(sheet)[0]))
        return "NÔNG NGHIỆP" if "SỞ NÔNG NGHIỆP" in words else "TÀI NGUYÊN" if "SỞ TÀI NGUYÊN" in words else ""

    sheets = sorted((sample_run / "units_2025" / "maps").glob("*.pdf"))
    assert [s.stem for s in sheets if s.stem.startswith("tinh")] == ["tinh_20"] and len(sheets) > 2
    assert {s.name: checker(s) for s in sheets} == {s.name: "NÔNG NGHIỆP" for s in sheets}
    assert checker(sample_run / "maps" / "tinh_20.pdf") == "TÀI NGUYÊN"


def _page(sheet_run, name):
    return pymupdf.open(sheet_run / "maps" / f"{name}.pdf")[0]


def _spans(page):
    text = page.get_text("dict")
    return [s for b in text["blocks"] for line in b.get("lines", []) for s in line["spans"]]


@pytest.fixture(scope="module")
def sheet_run(sample_run):
    assert all((sample_run / "maps" / f"{s}.{ext}").exists() for s in SHEETS for ext in ("pdf", "png"))
    return sample_run


@pytest.mark.parametrize("name", SHEETS)
def test_pdf_is_at_the_declared_scale(sheet_run, name, sample_dir):
    page = _page(sheet_run, name)
    declared = next(s["text"] for s in _spans(page) if s["text"].startswith("TỶ LỆ 1:"))
    scale = int(declared.removeprefix("TỶ LỆ 1:").replace(".", ""))
    # the map's inner box is the 0.25 mm rectangle; its width on paper vs the ground it shows
    inner = [d for d in page.get_drawings() if d.get("width") and abs(d["width"] - 0.25 * PT_PER_MM) < 1e-3]
    box = max(inner, key=lambda d: d["rect"].width)["rect"]
    width_mm = box.width / PT_PER_MM
    level, code = name.split("_")
    bounds = gpd.read_file(sample_dir / "boundaries/communes_van_quan.geojson").to_crs("EPSG:9215")
    if level == "xa":
        bounds = bounds[bounds["gso_commune_code"] == code]
    x0, _, x1, _ = bounds.total_bounds
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    e0, _, e1, _ = meta["extent_m"]  # the ground the frame shows: the unit, padded by 3 % each side, and around
    assert width_mm * scale / 1000 == pytest.approx(e1 - e0, rel=0.005)
    assert e0 <= x0 - 0.03 * (x1 - x0) + 1 and x1 + 0.03 * (x1 - x0) - 1 <= e1
    assert e1 - e0 <= (x1 - x0) * 1.06 + max(meta["page_mm"]) / 2 * scale / 1000  # no wider than its paper needs
    wanted = regulation_scale(level, meta["natural_ha"])
    assert scale == meta["scale"] and (scale == wanted) == ("thay cho" not in meta["note"])  # a step is always said
    page_w = page.rect.width / PT_PER_MM
    assert page_w >= width_mm + 20


@pytest.mark.parametrize("name", SHEETS)
def test_legend_lists_exactly_the_codes_present(sheet_run, name):
    level, code = name.split("_")
    khoanh = gpd.read_parquet(sheet_run / "khoanh")
    if level == "xa":
        khoanh = khoanh[khoanh["commune_code"] == code]
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    if level != "xa":  # a small-scale sheet shows its khoanh generalised, commune by commune: the legend lists
        drawn = [generalise(mine, meta["scale"]) for _, mine in khoanh.groupby("commune_code")]  # what is drawn
        khoanh = pd.concat([frame for frame, _ in drawn])
        assert sum(merged for _, merged in drawn) == meta["generalised"] > 0 and "gộp vào khoanh kề" in meta["note"]
    else:
        assert meta["generalised"] == 0
    present = set(khoanh["landuse"].dropna())
    tree = landuse_tree()
    texts = {s["text"].strip() for s in _spans(_page(sheet_run, name))}
    names_shown = {c for c in tree.codes if tree.name(c) in texts}
    assert names_shown == present
    assert meta["legend_codes"] == [c for c in tree.codes if c in present]


@pytest.mark.parametrize("name", ["xa_06274", "huyen_184"])
def test_title_grid_crs_note_and_signatures(sheet_run, name):
    texts = [s["text"] for s in _spans(_page(sheet_run, name))]
    assert "BẢN ĐỒ HIỆN TRẠNG SỬ DỤNG ĐẤT NĂM 2019" in texts
    assert any("HUYỆN VĂN QUAN" in t and "TỈNH LẠNG SƠN" in t for t in texts)
    assert "Hệ tọa độ VN-2000, kinh tuyến trục 107°15′, múi chiếu 3°" in texts
    assert "CHÚ DẪN" in texts and "CƠ CẤU SỬ DỤNG ĐẤT (%)" in texts and "ỦY BAN NHÂN DÂN" in texts
    assert any(t.startswith("SƠ ĐỒ VỊ TRÍ") for t in texts)
    assert "ĐƠN VỊ LẬP BẢN ĐỒ" in texts and "PHÒNG TÀI NGUYÊN" in texts  # three signature blocks
    grid = [t for t in texts if t.replace(".", "").replace(",", "").isdigit() and len(t) >= 3]
    assert len(grid) >= 8  # km grid labels on the four sides


@pytest.mark.parametrize("name", ["xa_06286", "xa_06307", "tinh_20"])
def test_colour_inside_the_largest_khoanh_is_the_official_one(sheet_run, name):
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    level, code = name.split("_")
    khoanh = gpd.read_parquet(sheet_run / "khoanh")
    if level == "xa":
        khoanh = khoanh[khoanh["commune_code"] == code]
    big = khoanh.loc[khoanh["area_m2"].idxmax()]
    png = np.asarray(Image.open(sheet_run / "maps" / f"{name}.png").convert("RGB"))
    page_w, page_h = meta["page_mm"]
    px_per_mm = png.shape[1] / page_w
    x0, y0 = meta["extent_m"][:2]
    bx, by = meta["map_box_mm"][:2]
    mm_per_m = 1000 / meta["scale"]
    # points well inside the khoanh (6 mm from its edges); a label or grid cross may cover a few
    inner = shapely.buffer(big.geometry, -6 / mm_per_m)
    samples = shapely.get_coordinates(shapely.points(np.column_stack([
        np.random.default_rng(1).uniform(inner.bounds[0], inner.bounds[2], 400),
        np.random.default_rng(2).uniform(inner.bounds[1], inner.bounds[3], 400)])))
    samples = samples[shapely.contains_xy(inner, samples[:, 0], samples[:, 1])]
    assert len(samples) > 20
    px = ((bx + (samples[:, 0] - x0) * mm_per_m) * px_per_mm).astype(int)
    py = (png.shape[0] - (by + (samples[:, 1] - y0) * mm_per_m) * px_per_mm).astype(int)
    colours = png[py, px]
    expected = np.array([int(landuse_colors().at[big["landuse"], "hex"][i:i + 2], 16) for i in (1, 3, 5)])
    share = (np.abs(colours.astype(int) - expected).max(axis=1) <= 2).mean()
    assert share > 0.9, (big["landuse"], share)


def _boxes(meta) -> list:
    return [box_polygon(x, y, w, h, angle) for _, _, x, y, w, h, angle in meta["label_boxes_mm"]]


@pytest.mark.parametrize("name", SHEETS + CHANGE_SHEETS)
def test_no_text_boxes_overlap_and_all_stay_on_the_map(sheet_run, name):
    """Label and name boxes (exact glyph extents, 1.25 em high, turned along
    roads and rivers) as placed on the page: pairwise apart, inside the map."""
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    boxes = np.array(_boxes(meta), dtype=object)
    assert len(boxes) > (50 if not name.startswith("bien_dong") else 0)
    tree = shapely.STRtree(boxes)
    pairs = tree.query(boxes, predicate="intersects")
    pairs = pairs[:, pairs[0] < pairs[1]]
    overlap = shapely.area(shapely.intersection(boxes[pairs[0]], boxes[pairs[1]]))
    assert not (overlap > 1e-6).any()
    mx, my, mw, mh = meta["map_box_mm"]
    assert shapely.box(mx - 0.01, my - 0.01, mx + mw + 0.01, my + mh + 0.01).contains(shapely.union_all(boxes))


@pytest.mark.parametrize("name", SHEETS + CHANGE_SHEETS)
def test_every_khoanh_of_a_square_centimetre_carries_its_code(sheet_run, name):
    """At least 98 % of the khoanh of ≥ 1 cm² on paper are labelled (inside,
    or beside with a leader line), counted again here from the khoanh."""
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    assert meta["big_khoanh"] == 0 or meta["labelled_big"] / meta["big_khoanh"] >= 0.98
    if name.startswith("xa_"):
        khoanh = gpd.read_parquet(sheet_run / "khoanh" / f"{name.removeprefix('xa_')}.parquet")
        big = (khoanh["landuse"].notna() & (khoanh["area_m2"] * (1000 / meta["scale"]) ** 2 >= 100)).sum()
        assert big == meta["big_khoanh"] > 100


@pytest.mark.parametrize("name", SHEETS + CHANGE_SHEETS)
def test_pages_fit_the_plotter_and_previews_stay_small(sheet_run, name):
    page = _page(sheet_run, name)
    assert min(page.rect.width, page.rect.height) / PT_PER_MM <= ROLL_MM + 0.5
    with Image.open(sheet_run / "maps" / f"{name}.png") as png:
        assert max(png.size) <= 6000 and list(png.size) == json.loads(
            (sheet_run / "maps" / f"{name}.json").read_text())["png_px"]  # the sheet's record says its size
        png.load()  # every chunk's CRC and the deflate stream are checked
        rgb = np.asarray(png.convert("RGB"))
    drawn = (rgb != 255).any(axis=2)
    assert drawn.mean() > 0.1  # the fills are there, not a blank page
    assert not drawn[0].any() and not drawn[-1].any() and drawn.mean() < 0.9  # on white paper: its margins blank


@pytest.mark.parametrize("name", SHEETS + CHANGE_SHEETS)
def test_three_signature_blocks_with_room_to_sign(sheet_run, name):
    """Three blocks side by side with ≥ 25 mm to sign under each, inside the
    panel, below the chart, the legend and the notes."""
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    rooms = [shapely.box(x, y, x + w, y + h) for x, y, w, h in meta["signing_mm"]]
    assert len(rooms) == 3 and all(h >= 25 for *_, h in meta["signing_mm"])
    top = max(r.bounds[3] for r in rooms)
    assert top <= meta["signature_zone_mm"][1] + meta["signature_zone_mm"][3]
    assert meta["notes_mm"][1] >= top and meta["legend_bottom_mm"] > top
    if meta["chart_mm"]:
        assert meta["chart_mm"][1] >= top
    assert not any(a.intersects(b) and a.intersection(b).area > 0 for a in rooms for b in rooms if a is not b)
    x, _, w, _ = meta["signature_zone_mm"]
    date = next(s for s in _spans(_page(sheet_run, name)) if "ngày" in s["text"])
    assert x + 1 <= date["bbox"][0] * 25.4 / 72 and date["bbox"][2] * 25.4 / 72 <= x + w - 1  # clear of the frame


def test_names_of_the_units_and_their_neighbours(sheet_run):
    commune = json.loads((sheet_run / "maps" / "xa_06253.json").read_text())
    neighbours = {text for kind, text, *_ in commune["label_boxes_mm"] if kind == "neighbour"}
    assert len(neighbours) >= 2 and all(n.startswith(("Xã ", "Thị trấn ")) for n in neighbours)
    district = json.loads((sheet_run / "maps" / "huyen_184.json").read_text())
    units = {text for kind, text, *_ in district["label_boxes_mm"] if kind == "unit"}
    assert units == {"THỊ TRẤN VĂN QUAN", "XÃ HÒA BÌNH", "XÃ KHÁNH KHÊ", "XÃ TÂN ĐOÀN", "XÃ YÊN PHÚC"}
    assert any(kind == "neighbour" and text.startswith("Huyện ") for kind, text, *_ in district["label_boxes_mm"])
    texts = {s["text"] for s in _spans(_page(sheet_run, "xa_06253"))}
    assert "SƠ ĐỒ VỊ TRÍ THỊ TRẤN TRONG HUYỆN" in texts  # a thị trấn is not titled "xã"
    assert {"Tri Lễ", "Hòa Bình"} <= texts  # the inset names the district's communes


def test_inset_names_do_not_run_into_one_another_and_the_units_own_comes_first():
    from pipeline.drawing import PT_PER_MM
    from pipeline.maps.labels import LINE_EM, text_width_pt
    from pipeline.maps.panel import inset_names

    # a row of 1 km squares, named with texts wider than a square at 1 mm on the page per 100 m
    squares = [shapely.box(k * 1000, 0, (k + 1) * 1000, 1000) for k in range(6)]
    big = shapely.box(0, 1000, 6000, 3000)
    names = [(f"Xã Tên Rất Dài Số {k}", g) for k, g in enumerate(squares)] + [("Xã Lớn", big)]
    m_per_pt = 100 / PT_PER_MM
    placed = inset_names(names, squares[3], 7.0, m_per_pt)
    texts = [t for t, _, _ in placed]
    assert "Tên Rất Dài Số 3" in texts and "Lớn" in texts  # the unit's own, then the largest
    assert len(texts) < len(names)  # six long names cannot share one row of squares
    boxes = [shapely.box(x - text_width_pt(t, 7.0) * m_per_pt / 2, y - 7.0 * LINE_EM * m_per_pt / 2,
                         x + text_width_pt(t, 7.0) * m_per_pt / 2, y + 7.0 * LINE_EM * m_per_pt / 2)
             for t, x, y in placed]
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert texts == sorted(texts, key=[n.removeprefix("Xã ") for n, _ in names].index)  # drawn in the units' order


def test_roads_and_rivers_are_labelled_along_their_line(sheet_run):
    meta = json.loads((sheet_run / "maps" / "xa_06253.json").read_text())
    along = [(text, angle) for kind, text, *_, angle in meta["label_boxes_mm"] if text in ("DGT", "SON")]
    assert len([t for t, _ in along if t == "SON"]) >= 2  # repeated along the river
    assert any(abs(angle) > 10 for _, angle in along)


def test_decimals_are_written_the_vietnamese_way(sheet_run):
    import re

    for name in ("xa_06253", "bien_dong_xa_06253", "huyen_184"):
        texts = [s["text"].strip() for s in _spans(_page(sheet_run, name))]
        assert any(re.fullmatch(r"\d+,\d", t) for t in texts), name  # chart values
        assert not any(re.fullmatch(r"\d+\.\d{1,2}", t) for t in texts), name  # no English decimals


def test_change_legend_is_at_the_compared_codes_and_drops_tiny_changes(sheet_run):
    from pipeline.change import comparison_codes
    from pipeline.regime import load_template

    compared = set(comparison_codes(load_template().collapse()))
    transitions = pd.read_csv(sheet_run / "stats/transitions.csv", dtype={"commune_code": str})
    for name in CHANGE_SHEETS:
        meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
        codes = [c for c in meta["legend_codes"] if c]
        assert codes and set(codes) <= compared and not {"RSN", "RST"} & set(codes), (name, codes)
    changed = transitions[transitions["from_code"] != transitions["to_code"]]
    tiny = changed.groupby("to_code")["area_m2"].sum()
    meta = json.loads((sheet_run / "maps" / "bien_dong_tinh_20.json").read_text())
    assert not set(tiny[tiny < 50].index) & set(meta["legend_codes"])


def test_point_symbols_for_small_offices_schools_and_health_stations():
    polys = np.array([shapely.box(0, 0, 4, 4), shapely.box(10, 0, 200, 200)])
    from pipeline.maps.labels import place_symbols

    symbols = place_symbols(polys, np.array(["TSC", "TSC"]), {1}, 1.0)
    assert list(symbols["code"]) == ["TSC"] and symbols["x"].iat[0] == pytest.approx(2, abs=0.5)


def test_labels_inside_along_a_road_or_beside_with_a_leader():
    """At 1:1.000: a square gets its code inside; a 2 m road strip its code
    along the road; a 1 cm² khoanh too narrow for its code gets it beside,
    tied by a leader line."""
    polys = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 102, 100), shapely.box(150, 0, 151.2, 90),
                      shapely.box(0, 100, 100, 200)])
    room = Room(cell=30.0, extent=(-50, -50, 250, 250))
    labels = place_labels(polys, np.array(["LUC", "DGT", "ONT", "CLN"]), np.array(["LUC", "DGT", "ONT", "CLN"]),
                          1.0, room)
    kinds = dict(zip(labels["text"], labels["kind"], strict=True))
    assert kinds == {"LUC": "code", "DGT": "code", "ONT": "leader", "CLN": "code"}
    assert abs(labels.loc[labels["text"] == "DGT", "angle"].iat[0]) == pytest.approx(90, abs=1)
    assert label_coverage(polys, labels, 1.0) == (4, 4)
    assert vn_number(99.98) == "99,98"


def _khoanh_of_every_shape(count: int = 120) -> np.ndarray:
    """Squares, turned strips, L-shapes, rings, crescents, slivers (random sizes), 60 m apart."""
    rng = np.random.default_rng(7)
    shapes = []
    for k in range(count):
        x, y = (k % 12) * 60.0, (k // 12) * 60.0
        w, h = rng.uniform(1, 50), rng.uniform(1, 50)
        kind = k % 5
        if kind == 0:
            shape = shapely.box(x, y, x + w, y + h)
        elif kind == 1:  # a strip turned by some angle
            shape = shapely.affinity.rotate(shapely.box(x, y, x + 50, y + rng.uniform(2, 8)), rng.uniform(0, 180))
        elif kind == 2:  # an L
            shape = shapely.box(x, y, x + w, y + 5).union(shapely.box(x, y, x + 5, y + h))
        elif kind == 3:  # a ring
            shape = shapely.box(x, y, x + 50, y + 50).difference(shapely.box(x + 4, y + 4, x + 46, y + 46 - w / 5))
        else:  # a crescent
            shape = shapely.Point(x + 25, y + 25).buffer(24).difference(shapely.Point(x + 32, y + 25).buffer(20))
        shapes.append(shape)
    return np.array(shapes, dtype=object)


def test_anchors_too_close_to_the_outline_are_skipped_without_changing_a_label(monkeypatch):
    """At 1:1.000, khoanh of every shape: skipping an anchor whose distance to
    the outline cannot hold the label places exactly the labels trying it does."""
    import pipeline.maps.labels as labels_module

    geoms = _khoanh_of_every_shape()
    codes = np.array(["LUC", "DGT", "ONT", "CLN", "SON"] * 24)

    def placed():
        return place_labels(geoms, codes, codes, 1.0, Room(cell=30.0, extent=(-100, -100, 900, 700)))

    pruned = placed()
    monkeypatch.setattr(labels_module, "CLEARANCE_SLACK_M", np.inf)  # never skip an anchor
    tried = placed()
    pd.testing.assert_frame_equal(pruned, tried)
    assert (pruned["angle"] != 0).any() and (pruned["kind"] == "code").sum() > 40
    assert len(pruned) < len(geoms)  # some have no room: the skip had something to skip


def test_boxes_worked_out_all_at_once_place_the_labels_worked_out_one_by_one(monkeypatch):
    """The label boxes of all khoanh, worked out at once before placing, give
    exactly the labels of working each out when its khoanh's turn comes:
    on khoanh of every shape, with the room at many widest points already
    taken (by names), so that the placing goes on to the tries after one
    inside, which the bulk leaves to it; and on the same khoanh as roads,
    whose tries follow their line."""
    import pipeline.maps.labels as labels_module

    geoms = _khoanh_of_every_shape()
    codes = np.array(["LUC", "ONT", "CLN", "SKC", "NTS"] * 24)
    names = shapely.maximum_inscribed_circle(geoms[::3], 0.1)

    def placed():
        room = Room(cell=30.0, extent=(-100, -100, 900, 700))
        for line in names:  # a 4 m × 2 m name at the widest point of every third khoanh
            (x, y), _ = shapely.get_coordinates(line)
            room.take(box_polygon(x, y, 4.0, 2.0, 0.0))
        return place_labels(geoms, codes, codes, 1.0, room)

    roads = np.array(["DGT"] * len(geoms))  # every try along the line through the label's middle
    along_roads = lambda: place_labels(geoms, roads, roads, 1.0, Room(cell=30.0, extent=(-100, -100, 900, 700)))  # noqa: E731
    roads_at_once, at_once = along_roads(), placed()
    monkeypatch.setattr(labels_module._Tries, "of", classmethod(lambda cls, *args: None))
    monkeypatch.setattr(labels_module._Tries, "of_lines", classmethod(lambda cls, *args: None))
    one_by_one = placed()
    pd.testing.assert_frame_equal(at_once, one_by_one)
    pd.testing.assert_frame_equal(roads_at_once, along_roads())
    assert (roads_at_once["kind"] == "code").sum() > 10 and (roads_at_once["angle"] != 0).any()
    labelled = at_once[at_once["kind"] == "code"]
    assert (labelled["angle"] != 0).any() and (labelled["size"] < 6).any() and len(labelled) > 40


def test_each_box_worked_out_at_once_is_the_box_of_its_try():
    """Every box, inside-test and direction :class:`_Tries` works out equals
    what :func:`box_polygon`, ``contains`` and :func:`local_angle` give for
    that try's size and anchor."""
    from pipeline.maps.labels import LABEL_SIZES_PT, LINE_EM, _Tries, local_angle, text_width_pt

    geoms = _khoanh_of_every_shape()
    codes = ["LUC", "ONT", "CLN", "SKC", "NTS"] * 24
    m_per_pt = 1.0 / PT_PER_MM
    anchors = np.stack([shapely.get_coordinates(shapely.point_on_surface(geoms)),
                        shapely.get_coordinates(shapely.centroid(geoms))], axis=1)
    every = np.full(len(geoms), np.inf)  # no size or anchor ruled out beforehand
    tries = _Tries.of(geoms, anchors, codes, every, every, np.column_stack([every, every]), m_per_pt)
    turned = 0
    for k, t in zip(*np.nonzero(shapely.is_geometry(tries.level)), strict=True):
        size, (x, y) = LABEL_SIZES_PT[t // 2], anchors[k, t % 2]
        w, h = text_width_pt(codes[k], size) * m_per_pt + 1.5 * m_per_pt, size * LINE_EM * m_per_pt
        assert shapely.equals_exact(tries.level[k, t], box_polygon(x, y, w, h, 0.0), 0)
        assert tries.level_inside[k, t] == shapely.contains(geoms[k], tries.level[k, t])
        if tries.turned[k, t] is not None:
            along = tries.along[k, t]
            assert along == local_angle(geoms[k], x, y, w)
            assert shapely.equals_exact(tries.turned[k, t], box_polygon(x, y, w, h, along), 0)
            assert tries.turned_inside[k, t] == shapely.contains(geoms[k], tries.turned[k, t])
            turned += 1
    assert turned > 20 and tries.level_inside.any() and tries.turned_inside.any()


@pytest.mark.parametrize("bands", [3, 4])
def test_png_preview_decodes_to_the_pixels_drawn(bands):
    from pipeline.maps.render import png_of_rows

    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (37, 53, bands), dtype=np.uint8)
    image[5:20] = 200  # flat colour, as maps have
    rows = np.concatenate([np.zeros((37, 1), dtype=np.uint8), image.reshape(37, -1)], axis=1)  # filter byte 0
    with Image.open(io.BytesIO(png_of_rows(rows, 53, bands, 150))) as png:
        assert png.mode == {3: "RGB", 4: "RGBA"}[bands] and png.size == (53, 37)
        assert np.array_equal(np.asarray(png), image)
        assert png.info["dpi"] == pytest.approx((150, 150), abs=0.05)  # stored per metre


def _preview_sheet(folder, name: str, inches: tuple[float, float], page: str) -> tuple:
    """A page of ``inches`` (its paper ``page``: "none" for none) with a black
    square in the middle, and how :func:`pdf_preview` is asked for it at 50 dpi."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=inches, facecolor=page)
    fig.add_artist(Rectangle((0.4, 0.4), 0.2, 0.2, transform=fig.transFigure, color="black"))
    fig.savefig(folder / name, format="pdf", transparent=page == "none")
    plt.close(fig)
    return folder / name, round(inches[0] * 50), round(inches[1] * 50), 50


def test_a_preview_is_on_white_paper_whatever_sheet_was_previewed_before(tmp_path):
    """A process's previews share their rows from sheet to sheet: a sheet
    previewed after a bigger, red one is the same image as previewed first,
    white where its PDF paints nothing."""
    from pipeline.maps.render import pdf_preview, release_preview_rows

    red, small = _preview_sheet(tmp_path, "red.pdf", (8, 6), "red"), _preview_sheet(tmp_path, "small.pdf", (3, 2),
                                                                                     "none")
    release_preview_rows()
    first = pdf_preview(*small)
    pdf_preview(*red)
    after = pdf_preview(*small)
    assert after == first
    with Image.open(io.BytesIO(after)) as png:
        pixels = np.asarray(png)
    assert pixels.shape == (100, 150, 3)
    assert (pixels[5, 5] == 255).all() and (pixels[50, 75] == 0).all()  # white paper, the black square
    assert release_preview_rows() == 300 * (1 + 3 * 400)  # one buffer kept, the red sheet's: not one a size


def test_the_workers_give_back_their_preview_rows_once_the_sheets_are_drawn(tmp_path):
    """A worker keeps the rows of its last preview for the next sheet; the
    inventory has every process give them back before its package stage."""
    from pipeline.maps.render import pdf_preview, release_preview_rows
    from pipeline.parallel import executor, on_every_process

    sheet = _preview_sheet(tmp_path, "sheet.pdf", (4, 3), "white")
    rows = 150 * (1 + 3 * 200)  # 150 rows of 200 RGB pixels, each after its filter byte
    release_preview_rows()  # what earlier tests left here
    with executor(None, workers=1) as pmap:
        pmap(pdf_preview, [sheet, sheet])  # on the worker: one buffer, used twice, kept
        pdf_preview(*sheet)  # and here
        assert on_every_process(pmap, release_preview_rows) == [rows, rows]
        assert on_every_process(pmap, release_preview_rows) == [0, 0]
    assert on_every_process(lambda func, items, desc="": [], release_preview_rows) == [0]  # no cluster: here only


def test_the_inventorys_sheets_give_back_their_preview_rows_when_done(tmp_path):
    """The maps stage ends by giving back the preview rows (here, where no cluster runs)."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.maps.background import SheetsInBackground
    from pipeline.maps.render import pdf_preview, release_preview_rows
    from pipeline.parallel import executor

    pdf_preview(*_preview_sheet(tmp_path, "sheet.pdf", (4, 3), "white"))
    with executor("sync") as pmap, ThreadPoolExecutor(1) as threads:
        SheetsInBackground(pmap, threads).finish()  # no sheet left to draw
    assert release_preview_rows() == 0


def test_compound_path_keeps_holes(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import PathPatch

    ring = shapely.box(0, 0, 10, 10).difference(shapely.box(4, 4, 6, 6))
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.set_xlim(0, 10), ax.set_ylim(0, 10), ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    ax.add_patch(PathPatch(compound_path(np.array([ring])), facecolor="red", linewidth=0))
    fig.savefig(tmp_path / "h.png")
    plt.close(fig)
    image = np.asarray(Image.open(tmp_path / "h.png").convert("RGB"))
    assert tuple(image[10, 10]) == (255, 0, 0) and tuple(image[50, 50]) == (255, 255, 255)


def test_vietnamese_text_has_every_glyph(sample_run, tmp_path):
    from pipeline.maps import run_maps

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tmp_path / "work"
        import shutil

        shutil.copytree(sample_run, out, ignore=shutil.ignore_patterns("maps", "forms", "qa"))
        run_maps(WorkDir(out), dpi=50, progress=False)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing


def test_small_khoanh_join_the_neighbour_with_the_longest_boundary_on_the_sheet_only():
    """At 1:25.000 (9 mm² on paper = 5 625 m²): a 1 800 m² khoanh joins the big
    one it shares 60 m with (not the one it shares 30 m with), a 200 m² one
    joins its longer neighbour; a road and a school are kept as they are and
    absorb nothing; an isolated khoanh stays; the drawn area is the area."""
    big, field = shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 300)
    small, smaller = shapely.box(1000, 300, 1030, 360), shapely.box(1030, 300, 1050, 310)
    road, school = shapely.box(1050, 300, 2000, 306), shapely.box(1900, 306, 1920, 326)
    lone = shapely.box(5000, 5000, 5010, 5010)
    khoanh = gpd.GeoDataFrame({"landuse": ["RST", "LUC", "ONT", "NTS", "DGT", "DGD", "CLN"]},
                              geometry=[big, field, small, smaller, road, school, lone], crs="EPSG:9215")
    drawn, merged = generalise(khoanh, 25_000)
    assert minimum_mapped_m2(25_000) == 5625 and minimum_mapped_m2(10_000) == 1600
    assert merged == 2 and list(drawn["landuse"]) == ["RST", "LUC", "DGT", "DGD", "CLN"]
    areas = dict(zip(drawn["landuse"], drawn.area.round(6), strict=True))
    assert areas["RST"] == 1_001_800 and areas["LUC"] == 300_200 and areas["DGT"] == road.area
    assert drawn.area.sum() == pytest.approx(khoanh.area.sum())
    assert generalise(khoanh, 1_000)[1] == 0  # at 1:1.000 (16 m²) every khoanh shows


def _merged_round_by_round(geoms: list, kept: list, floor_m2: float) -> list[tuple[int, float]]:
    """The generalisation done the slow way: each round, every small group's
    shared boundaries measured by overlay of the merged shapes; the largest
    of a group (the first on a tie) gives its attributes. Each drawn khoanh
    as (the input khoanh whose attributes it has, its area)."""
    shapes, heirs = list(geoms), list(range(len(geoms)))
    for _ in range(ROUNDS):
        n = len(shapes)
        target = list(range(n))
        for i in range(n):
            if shapes[i].area < floor_m2 and not kept[heirs[i]]:
                shared = [(shapely.length(shapes[i].boundary.intersection(shapes[j].boundary)), -j) for j in range(n)
                          if j != i and not kept[heirs[j]]]
                length, j = max(shared, default=(0, -i))
                target[i] = -j if length > 0 else i
        label = list(range(n))
        for _ in range(n):  # chains and pairs: one label per group
            for i in range(n):
                label[i] = label[target[i]] = min(label[i], label[target[i]])
        if len(set(label)) == n:
            break
        members = {root: [i for i in range(n) if label[i] == root] for root in sorted(set(label))}
        firsts = sorted(max(group, key=lambda i: (shapes[i].area, -i)) for group in members.values())
        shapes = [shapely.union_all([shapes[i] for i in members[label[f]]]) for f in firsts]
        heirs = [heirs[f] for f in firsts]
    return [(h, round(s.area, 6)) for h, s in zip(heirs, shapes, strict=True)]


def test_generalisation_merges_groups_as_if_measured_again_each_round():
    """Small khoanh join over several rounds (a small one into a small one,
    then the pair on): the sheet gives the same khoanh, attributes and areas
    as measuring the merged shapes again each round, on grids of khoanh of
    random sizes with roads that absorb nothing."""
    rng = np.random.default_rng(7)
    for _ in range(6):
        xs, ys = np.r_[0, np.cumsum(rng.integers(2, 40, 9))], np.r_[0, np.cumsum(rng.integers(2, 40, 7))]
        cells = [shapely.box(x0, y0, x1, y1) for x0, x1 in pairwise(xs) for y0, y1 in pairwise(ys)]
        landuse = rng.choice(["LUC", "CLN", "ONT", "DGT"], len(cells), p=[0.4, 0.3, 0.2, 0.1])
        khoanh = gpd.GeoDataFrame({"landuse": landuse}, geometry=cells, crs="EPSG:9215")
        drawn, merged = generalise(khoanh, 5_000)  # 16 mm² = 400 m²
        slow = _merged_round_by_round(cells, [code == "DGT" for code in landuse], minimum_mapped_m2(5_000))
        assert merged == len(cells) - len(slow) > 10
        assert list(drawn["landuse"]) == [landuse[h] for h, _ in slow]
        assert np.allclose(drawn.area, [area for _, area in slow])


def test_lines_between_khoanh_are_simplified_to_the_scale_and_neighbours_keep_one_line():
    """At 1:25.000 (0,1 mm = 2,5 m) a boundary zig-zagging by 0,5 m between
    two khoanh becomes straight, the same line for both (its copy in the west
    khoanh is off by a nanometre: made one first); a 40 m bay stays; the
    commune's outline keeps every vertex and the area does not change."""
    ys = np.arange(0, 1001, 10.0)
    zigzag = np.column_stack([500.0 + np.where(np.arange(len(ys)) % 2, 0.5, 0.0), ys])
    bay = [(460.0, 1000.0), (460.0, 1060.0), (500.0, 1060.0), (500.0, 1100.0)]  # the east's, into the west
    south = [(0.0, 0.0), (100.0, -0.5), (200.0, 0.0), (300.0, -0.5), (400.0, 0.0)]  # the commune's outline
    west = shapely.Polygon([*south, *(zigzag + [1e-9, 0]).tolist(), *bay, (0, 1100)])
    east = shapely.Polygon([(1000, 0), *zigzag.tolist(), *bay, (1000, 1100)])
    geoms = np.array([west, east], dtype=object)
    drawn = simplified(geoms, 25_000)
    assert shapely.coverage_is_valid(drawn) and shapely.is_valid(drawn).all()
    assert shapely.get_num_coordinates(drawn).sum() < 30 < shapely.get_num_coordinates(geoms).sum() / 5
    assert shapely.area(shapely.intersection(*drawn)) < 1e-6  # one line between them, no overlap, no gap:
    assert shapely.area(drawn).sum() == pytest.approx(shapely.area(geoms).sum(), abs=1e-3)
    assert shapely.area(drawn[1]) == pytest.approx(500 * 1100 + 40 * 60, abs=600)  # the bay is still the east's
    assert set(south) <= set(map(tuple, shapely.get_coordinates(drawn[0]).tolist()))
    assert shapely.get_num_coordinates(simplified(geoms, 1_000)).sum() > 200  # at 1:1.000 (0,1 m) it stays
    flat = shapely.Polygon([(0, 0), (10, 0), (20, 0)])  # no area: the clean would give it away
    assert list(simplified(np.array([shapely.Polygon(), None, flat, west], dtype=object), 1_000)[:3]) == [
        shapely.Polygon(), None, flat]


def test_sheets_generalise_commune_by_commune_and_keep_each_until_its_khoanh_change(tmp_path, monkeypatch):
    """A small khoanh whose only neighbour lies in the next commune stays (no
    khoanh joins one across the commune boundary the sheet draws); each
    commune's generalised khoanh are kept, so a sheet redrawn after one
    commune changed generalises that commune only."""
    import os

    import pipeline.maps.kept as kept
    from pipeline.io import write_geoparquet
    from pipeline.maps.kept import generalised

    work = WorkDir(tmp_path)
    west = gpd.GeoDataFrame({"commune_code": ["00001"] * 2, "landuse": ["RST", "LUC"]}, crs="EPSG:9215",
                            geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1010, 1000, 1030, 1060)])
    east = gpd.GeoDataFrame({"commune_code": ["00002"] * 2, "landuse": ["CLN", "NTS"]}, crs="EPSG:9215",
                            geometry=[shapely.box(1030, 0, 2000, 1100), shapely.box(2000, 0, 2020, 20)])
    for frame in (west, east):
        write_geoparquet(work.khoanh(frame["commune_code"].iloc[0]), frame)
    khoanh = pd.concat([west, east], ignore_index=True)
    calls: list[str] = []
    monkeypatch.setattr(kept, "generalise", lambda frame, scale: (calls.append(frame["commune_code"].iloc[0]),
                                                                   generalise(frame, scale))[1])
    codes = ["00001", "00002"]
    drawn = generalised(work, codes, 25_000)
    assert list(drawn["landuse"]) == ["RST", "LUC", "CLN"] and len(khoanh) - len(drawn) == 1  # LUC's only side: CLN
    assert generalise(khoanh, 25_000)[1] == 2  # generalised together, LUC would have joined CLN
    assert drawn.area.sum() == pytest.approx(khoanh.area.sum()) and calls == ["00001", "00002"]
    assert generalised(work, codes, 25_000).equals(drawn) and calls == ["00001", "00002"]  # kept
    later = work.khoanh("00002").stat().st_mtime_ns + 10**9
    os.utime(work.khoanh("00002"), ns=(later, later))  # the east commune's khoanh were made again
    assert generalised(work, codes, 25_000).equals(drawn) and calls == ["00001", "00002", "00002"]

    # what another version of kiemke kept is removed before the sheets are drawn; this version's stays
    old_version = work.generalised_dir.parent / "0.0.1" / "25000"
    old_version.mkdir(parents=True)
    (old_version / "00001.parquet").write_bytes(b"kept by 0.0.1")
    assert kept.forget_other_versions(work) == [old_version.parent]
    assert not old_version.parent.exists() and work.generalised("00001", 25_000).exists()


def test_a_sheets_boundary_lines_are_kept_until_its_boundaries_change(tmp_path, monkeypatch):
    """A district or province sheet's boundary lines are worked out once and
    kept: drawn again with the same boundaries, the same lines are read back;
    when a commune's outline moves, they are worked out again."""
    import pipeline.maps.kept as kept
    from pipeline.maps.linework import boundary_lines

    work = WorkDir(tmp_path)
    communes = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    polygons = {"tinh": np.array([shapely.union_all(communes)]), "xa": communes}
    worked: list[int] = []
    monkeypatch.setattr(kept, "boundary_lines", lambda p: worked.append(len(p["xa"])) or boundary_lines(p))
    first = kept.kept_boundary_lines(work, "tinh_20", polygons)
    again = kept.kept_boundary_lines(work, "tinh_20", polygons)
    assert worked == [2] and list(again) == list(first) == ["tinh", "xa"]
    assert all(shapely.equals_exact(again[level], first[level], 0) for level in first)
    # the shared edge only, short of the province's line by the snap distance at each end
    assert shapely.get_coordinates(first["xa"]).tolist() == [[10, 0.5], [10, 9.5]]
    moved = {"tinh": polygons["tinh"], "xa": np.array([shapely.box(0, 0, 12, 10), shapely.box(12, 0, 20, 10)])}
    assert shapely.get_coordinates(kept.kept_boundary_lines(work, "tinh_20", moved)["xa"]).tolist() == [[12, 0.5],
                                                                                                        [12, 9.5]]
    assert worked == [2, 2]


def test_a_sheets_outline_is_kept_until_its_communes_change(tmp_path, monkeypatch):
    """The union of a district or province sheet's communes is worked out once
    and read back the same while its communes stay; another commune shape,
    another union."""
    import pipeline.maps.kept as kept

    work = WorkDir(tmp_path)
    communes = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    unions: list[int] = []
    union_all = shapely.union_all
    monkeypatch.setattr(kept.shapely, "union_all", lambda g: unions.append(len(g)) or union_all(g))
    first = kept.kept_union(work, "tinh_20", communes)
    again = kept.kept_union(work, "tinh_20", communes)
    assert unions == [2] and shapely.equals_exact(first, again, 0) and again.area == 200
    assert work.linework("tinh_20.outline").exists()
    grown = kept.kept_union(work, "tinh_20", np.array([communes[0], shapely.box(10, 0, 25, 10)]))
    assert unions == [2, 2] and grown.area == 250


def test_sheets_start_in_the_background_on_a_running_cluster_else_wait_for_the_maps_stage(tmp_path, monkeypatch):
    """With a cluster running, each start draws its work directories' sheets on
    a thread at the sheets' lower priority, and finish waits for them; without
    one, nothing is drawn before finish, which draws every work directory in
    one map, the run's first (as the maps stage did)."""
    from concurrent.futures import ThreadPoolExecutor

    import pipeline.maps.background as background

    drawn: list[tuple] = []
    monkeypatch.setattr(background, "run_maps",
                        lambda work, others=(), scheduler=None: drawn.append((work, tuple(others), scheduler)))
    run, units = WorkDir(tmp_path / "run"), WorkDir(tmp_path / "units_2025")

    class Cluster:
        running = True

        def __call__(self, func, items, desc="", priority=0):
            return []

    cluster = Cluster()
    with ThreadPoolExecutor(2) as threads:
        sheets = background.SheetsInBackground(cluster, threads)
        sheets.start([run])
        sheets.start([])
        sheets.start([units])
        sheets.finish()
    assert [(w, o) for w, o, _ in drawn] == [(run, ()), (units, ())]
    assert all(s.func is cluster and s.keywords == {"priority": background.SHEETS_PRIORITY} for *_, s in drawn)

    drawn.clear()
    with ThreadPoolExecutor(2) as threads:
        sheets = background.SheetsInBackground(lambda func, items, desc="": [], threads)  # sync: no cluster
        sheets.start([run])
        sheets.start([units])
        assert drawn == []
        sheets.finish()
    assert [(w, o) for w, o, _ in drawn] == [(run, (units,))]


def _drawn_length(path) -> float:
    steps = np.diff(path.vertices, axis=0)[path.codes[1:] != path.MOVETO]
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def test_a_canvas_in_millimetres_draws_what_an_axes_in_millimetres_drew():
    """The panel, title, scale bar and frame draw in millimetres from their
    box's corner on the figure (no axes: 3-4 ms each): patches, lines,
    collections and text give the same pixels as in an axes over the box,
    clipped to it alike (a frame's stroke half outside, a line running out)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from pipeline.maps.layout import Box
    from pipeline.maps.panel import MmCanvas

    def axes_mm(fig, box):
        ax = fig.add_axes(box.fraction(100, 80))
        ax.set_xlim(0, box.w)
        ax.set_ylim(0, box.h)
        ax.set_axis_off()
        return ax

    def drawn(make) -> np.ndarray:
        fig = Figure(figsize=(100 / 25.4, 80 / 25.4), dpi=100)
        target = make(fig, Box(10, 12, 60, 40))
        target.add_patch(Rectangle((0, 0), 60, 40, fill=False, linewidth=8))
        target.add_patch(Rectangle((5, 5), 10, 6, facecolor="#FFFF64", edgecolor="#000000", hatch="xx"))
        target.plot([5, 70], [5, 30], color="red", linewidth=3)
        target.add_collection(LineCollection([[(0, 20), (60, 20)]], colors="blue", linewidths=2,
                                             linestyles=[(0, (4, 2))]))
        target.text(30, 35, "Chú dẫn", ha="center", va="top", fontsize=9, weight="bold")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()

    mine, theirs = drawn(MmCanvas), drawn(axes_mm)
    assert (mine[..., :3] < 128).any() and np.array_equal(mine, theirs)


def test_an_outline_strokes_every_ring_once_polygons_multipolygons_and_lines():
    """Every ring (exteriors, holes, each part of a multipolygon) is one line
    of the stroked path, in order; an empty polygon draws nothing; lines are
    drawn as they are."""
    holed = shapely.box(0, 0, 10, 10).difference(shapely.box(2, 2, 3, 3))
    multi = shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.box(30, 0, 32, 2)])
    polygons = np.array([holed, multi, shapely.Polygon(), shapely.box(5, 5, 6, 6)])
    path = outline_path(polygons)
    rings = shapely.get_rings(shapely.get_parts(polygons))
    assert (path.codes == path.MOVETO).sum() == len(rings) == 5
    assert np.array_equal(path.vertices, shapely.get_coordinates(rings))
    assert _drawn_length(path) == pytest.approx(40 + 4 + 4 + 8 + 4)
    mixed = outline_path(np.array([shapely.LineString([(0, 0), (3, 4)]), shapely.box(0, 0, 1, 1)]))
    assert (mixed.codes == mixed.MOVETO).sum() == 2 and _drawn_length(mixed) == pytest.approx(5 + 4)


def test_a_small_scale_sheet_draws_no_edge_between_khoanh_of_one_code():
    """Three 100 m squares in a row, the first two RST: the edge between them
    is left out (as if dissolved), the one between RST and LUC is drawn by
    both sides as before; an edge whose vertices the neighbour does not carry
    (a T-junction) stays."""
    row = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(200, 0, 300, 100)])
    assert _drawn_length(dissolved_outline_path(row, np.array(["RST", "RST", "LUC"]))) == pytest.approx(
        800 + 2 * 100)
    assert _drawn_length(dissolved_outline_path(row, np.array(["RST", "LUC", "BHK"]))) == pytest.approx(1200)
    tee = np.array([shapely.box(0, 0, 100, 200), shapely.box(100, 0, 200, 100), shapely.box(100, 100, 200, 200)])
    assert _drawn_length(dissolved_outline_path(tee, np.array(["RST", "RST", "RST"]))) == pytest.approx(
        600 + 400 + 400 - 2 * 100)  # the two squares' shared edge goes; the T-junction edge stays


def _overlay_shared(geoms: np.ndarray, small: np.ndarray, band_m: float = 0.0) -> pd.DataFrame:
    """The boundary length each small polygon shares with each other, by overlay
    of the whole boundaries (within ``band_m`` of the neighbour's, when given)."""
    rows = []
    for a in np.flatnonzero(small):
        for b in range(len(geoms)):
            other = shapely.boundary(geoms[b])
            other = shapely.buffer(other, band_m, cap_style="flat") if band_m else other
            length = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), other))
            if a != b and length > 1e-9:
                rows.append((a, b, length))
    return pd.DataFrame(rows, columns=["a", "b", "shared"])


def test_shared_boundaries_from_matched_edges_equal_the_overlay():
    """The generalisation's shared lengths (edges both khoanh carry, an overlay
    of the stretches that are not) equal the overlay of every pair, on a
    grid of khoanh of several sizes with T-junctions and a hole (the same
    pairs: none missed, none made up)."""
    cells = [shapely.box(x, y, x + 10, y + 10) for x in range(0, 100, 10) for y in range(0, 50, 10)]
    cells += [shapely.box(0, 50, 55, 80), shapely.box(55, 50, 100, 80)]  # T-junctions on the grid's top
    cells[12] = shapely.box(20, 20, 30, 30).difference(shapely.box(23, 23, 27, 27))
    cells.append(shapely.box(23, 23, 27, 27))  # in the hole
    geoms = np.array(cells, dtype=object)
    small = shapely.area(geoms) < 200
    fast = _shared(geoms, small)
    exact = _overlay_shared(geoms, small)
    merged = fast.merge(exact, on=["a", "b"], how="outer", suffixes=("", "_exact")).fillna(0)
    # to the millimetre: the band around a neighbour's stretch runs 1 mm past its corners
    assert len(merged) > 100 and np.allclose(merged["shared"], merged["shared_exact"], atol=5e-3)


def test_shared_boundaries_survive_float_noise_along_a_border():
    """Two communes' khoanh along their common border, each ring with its own
    vertices on it, some a hair (1e-7 m) off the line: no vertex matches, and
    an exact overlay of the two rings finds crossings, not the border. The
    shared lengths are those within a millimetre of the neighbour's ring."""
    west = [shapely.Polygon([(0, y), (10, y), (10 + 1e-7 * (k % 2), y + 3.3), (10, y + 7), (10, y + 10), (0, y + 10)])
            for k, y in enumerate(range(0, 50, 10))]
    east = [shapely.Polygon([(10, y), (20, y), (20, y + 25), (10, y + 25), (10, y + 12.5)]) for y in (0, 25)]
    geoms = np.array(west + east, dtype=object)
    small = np.ones(len(geoms), dtype=bool)
    fast = _shared(geoms, small).set_index(["a", "b"])["shared"]
    truth = _overlay_shared(geoms, small, band_m=0.001).set_index(["a", "b"])["shared"]
    assert fast.index.sort_values().equals(truth.index.sort_values())
    assert np.allclose(fast[truth.index], truth, atol=5e-3)  # the band runs 1 mm past a corner
    assert fast[(0, 5)] == pytest.approx(10.0, abs=5e-3)
    assert fast[(2, 5)] + fast[(2, 6)] == pytest.approx(10.0, abs=5e-3)


def test_sheet_without_boundaries_draws_the_outlines_the_khoanh_stage_wrote(sample_run, monkeypatch):
    """With no commune boundary, a sheet's commune lines are the outlines
    written with the khoanh (equal to the union of each commune's khoanh),
    not a union of the khoanh again on every sheet."""
    import pipeline.maps.content as content_module
    from pipeline.io import read_geoparquet
    from pipeline.maps.content import sheet_content
    from pipeline.maps.stage import commune_outlines
    from pipeline.regime import load_template
    from pipeline.units import Unit

    work = WorkDir(sample_run)
    codes = [p.stem for p in work.khoanh_files()]
    outlines = commune_outlines(work, codes)
    assert sorted(outlines) == sorted(codes)
    khoanh = {code: read_geoparquet(work.khoanh(code)) for code in codes}
    for code in codes:
        union = shapely.union_all(khoanh[code].geometry.values)
        assert shapely.area(shapely.symmetric_difference(outlines[code], union)) < 1e-3 * shapely.area(union)

    def no_union(_):
        raise AssertionError("the khoanh were unioned again")

    monkeypatch.setattr(content_module, "union_coverage", no_union)
    unit = Unit("tinh", "20", "Tỉnh Lạng Sơn", tuple(codes), province_name="Lạng Sơn")
    empty = gpd.GeoDataFrame({"commune_code": [], "commune_name": [], "district_code": [], "district_name": []},
                             geometry=[], crs="EPSG:9215")
    content = sheet_content(unit, pd.concat(khoanh.values(), ignore_index=True), empty, load_template(), year=2019,
                            meridian_dms="107°15'", outlines=outlines)
    drawn = content.boundaries["xa"]
    assert len(drawn) == len(codes) and all(any(shapely.equals(g, o) for g in drawn) for o in outlines.values())


def test_no_sheet_for_the_unknown_district_of_communes_without_boundary(sample_run, tmp_path):
    """A run without commune boundaries puts its communes under the unknown
    district ("không rõ huyện"), for the forms; the maps draw the communes and
    the province, no sheet of that district, and say so in maps.md. The
    commune's sheet names it "Xã <code>", no district in its title line, and
    leaves the district's name in its signature block and its forms'
    reporting line to fill in."""
    import openpyxl

    from pipeline.forms import run_forms
    from pipeline.maps import run_maps
    from tests.helpers import one_commune_without_boundaries

    keep, manifest = one_commune_without_boundaries(sample_run, tmp_path / "work")
    work = WorkDir(tmp_path / "work")
    (work.maps_dir / "huyen_000.pdf").parent.mkdir(parents=True, exist_ok=True)
    (work.maps_dir / "huyen_000.pdf").write_bytes(b"%PDF- an earlier version's sheet")
    rows = run_maps(work, dpi=30, progress=False)
    drawn = sorted(p.name.removeprefix("bien_dong_") for p in work.maps_dir.glob("*.pdf"))  # the change maps too
    assert drawn == sorted(2 * [f"tinh_{manifest['province_code']}.pdf", f"xa_{keep}.pdf"])
    unknown = next(r for r in rows if r["sheet"] == "huyen_000")
    assert unknown["pdf"] == "" and "không rõ thuộc huyện nào" in unknown["note"]
    assert "không vẽ tờ bản đồ cấp huyện" in (work.report("maps.md")).read_text(encoding="utf-8")
    with pymupdf.open(work.maps_dir / f"xa_{keep}.pdf") as pdf:
        assert pdf.metadata["title"].endswith(f"XÃ {keep} - TỈNH LẠNG SƠN")
        words = " ".join(pdf[0].get_text().split())
    assert "KHÔNG RÕ" not in words and "VÀ MÔI TRƯỜNG HUYỆN …………… (Ký tên" in words
    assert f"ỦY BAN NHÂN DÂN XÃ {keep}" in words
    assert "SƠ ĐỒ PHẠM VI XÃ" in words and "TRONG HUYỆN" not in words  # no boundary: the inset is its extent
    run_forms(work)  # the commune's forms leave the district to fill in too
    sheet = openpyxl.load_workbook(work.forms_dir / "xa" / keep / "Bieu_01_TKDD.xlsx").active
    line = next(c.value for row in sheet.iter_rows() for c in row
                if isinstance(c.value, str) and c.value.startswith("Đơn vị báo cáo"))
    assert "Huyện: ……………" in line and "không rõ" not in line


@pytest.mark.parametrize("commune, district_code, district, shown, on_forms", [
    ("Thị trấn Tân Biên", "705", "Huyện Tân Biên", "HUYỆN TÂN BIÊN", "Huyện: Tân Biên"),
    ("Phường Hoàng Văn Thụ", "178", "Thành phố Lạng Sơn", "THÀNH PHỐ LẠNG SƠN", "Huyện: Thành phố Lạng Sơn"),
])
def test_commune_named_in_the_config_gets_its_name_and_district_on_maps_and_forms(
        sample_run, tmp_path, commune, district_code, district, shown, on_forms):
    """A run without commune boundaries whose config names the commune and its
    district (``[[communes]]``): the sheet's title line, its signatures, the
    forms' reporting line and the review workbook's title carry the names, not
    the code and "không rõ huyện", and the district gets its sheet and forms;
    the district sheet names the commune, the province sheet the district. A
    city (Thành phố Lạng Sơn) is named as one, not "Huyện Lạng Sơn"."""
    import openpyxl

    from pipeline.forms import run_forms
    from pipeline.ingest.assemble import commune_title
    from pipeline.maps import run_maps
    from tests.helpers import one_commune_without_boundaries

    keep, manifest = one_commune_without_boundaries(sample_run, tmp_path / "work")
    manifest["communes"] = [{"code": keep, "name": commune, "district_code": district_code, "district": district}]
    work = WorkDir(tmp_path / "work")
    work.manifest.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    assert commune_title(work, keep) == f"{commune} ({keep})"  # the review workbook's title
    run_maps(work, dpi=30, progress=False)
    assert (work.maps_dir / f"huyen_{district_code}.pdf").exists() and not (work.maps_dir / "huyen_000.pdf").exists()
    with pymupdf.open(work.maps_dir / f"xa_{keep}.pdf") as pdf:
        assert pdf.metadata["title"].endswith(f"{commune.upper()} - {shown} - TỈNH LẠNG SƠN")
        words = " ".join(pdf[0].get_text().split())
    assert f"{commune.upper()} - {shown}" in words and f"VÀ MÔI TRƯỜNG {shown}" in words
    with pymupdf.open(work.maps_dir / f"huyen_{district_code}.pdf") as pdf:
        words = " ".join(pdf[0].get_text().split())
    assert f"ỦY BAN NHÂN DÂN {shown}" in words and f"{shown} - TỈNH LẠNG SƠN" in words
    for sheet, name in ((f"huyen_{district_code}", commune.upper()), (f"tinh_{manifest['province_code']}", shown)):
        boxes = json.loads((work.maps_dir / f"{sheet}.json").read_text(encoding="utf-8"))["label_boxes_mm"]
        assert [box[1] for box in boxes if box[0] == "unit"] == [name]  # the commune, the district, in its area
    run_forms(work)
    for level, code in (("xa", keep), ("huyen", district_code)):
        sheet = openpyxl.load_workbook(work.forms_dir / level / code / "Bieu_01_TKDD.xlsx").active
        line = next(c.value for row in sheet.iter_rows() for c in row
                    if isinstance(c.value, str) and c.value.startswith("Đơn vị báo cáo"))
        assert on_forms in line and "không rõ" not in line
        assert level == "huyen" or f"Xã: {commune}" in line


@pytest.mark.parametrize("district, kind, province", [
    ("Huyện Văn Quan", "HUYỆN", "Tỉnh Lạng Sơn"), ("Thành phố Lạng Sơn", "THÀNH PHỐ", "Tỉnh Lạng Sơn"),
    ("Thị xã Sơn Tây", "THỊ XÃ", "Thành phố Hà Nội"), ("Quận Ba Đình", "QUẬN", "Thành phố Hà Nội"),
])
def test_the_inset_places_a_ward_in_its_city_and_a_city_in_its_province(district, kind, province):
    """The location inset of a ward of a city says "… TRONG THÀNH PHỐ" (of a
    commune of a district, "… TRONG HUYỆN"), and the city's own sheet
    "SƠ ĐỒ VỊ TRÍ THÀNH PHỐ TRONG TỈNH" (an urban district of Hà Nội's
    "… QUẬN TRONG THÀNH PHỐ"); its signature block names the city; a commune
    of a province without districts is placed "… TRONG THÀNH PHỐ" of Hà Nội."""
    import dataclasses

    from pipeline.maps.content import sheet_content
    from pipeline.regime import load_template
    from pipeline.units import build_units

    squares = [shapely.box(x, 0, x + 1000, 1000) for x in (0, 1000, 2000)]
    bounds = gpd.GeoDataFrame({"commune_code": ["1", "2", "3"], "commune_name": ["Phường A", "Xã B", "Xã C"],
                               "district_code": ["10", "10", "11"], "district_name": [district, district, "Huyện Y"]},
                              geometry=squares, crs="EPSG:9215")
    khoanh = gpd.GeoDataFrame({"commune_code": ["1"], "landuse": ["ODT"], "khoanh_no": [1], "area_m2": [1e6],
                               "owner_type": ["GDC"], "uses": [None]}, geometry=[squares[0]], crs="EPSG:9215")
    units = {u.key: u for u in build_units(["1", "2", "3"], bounds.drop(columns="geometry"), "X", "20",
                                           province_title=province)}
    ward = sheet_content(units["xa/1"], khoanh, bounds, load_template(), year=2019, meridian_dms="107°15'")
    assert ward.inset_title == f"SƠ ĐỒ VỊ TRÍ PHƯỜNG TRONG {kind}"
    assert ward.unit_line == f"PHƯỜNG A - {district.upper()} - {province.upper()}"
    assert any(f"VÀ MÔI TRƯỜNG\n{district.upper()}\n" in s for s in ward.signatures)
    city = sheet_content(units["huyen/10"], khoanh, bounds, load_template(), year=2019, meridian_dms="107°15'")
    province_kind = province.upper().removesuffix(" LẠNG SƠN").removesuffix(" HÀ NỘI")
    assert city.inset_title == f"SƠ ĐỒ VỊ TRÍ {kind} TRONG {province_kind}"
    assert city.unit_line == f"{district.upper()} - {province.upper()}"
    alone = dataclasses.replace(units["xa/1"], district_name="")  # since 1 July 2025: no district
    assert sheet_content(alone, khoanh, bounds, load_template(), year=2025, meridian_dms="107°15'").inset_title \
        == f"SƠ ĐỒ VỊ TRÍ PHƯỜNG TRONG {province_kind}"


@pytest.mark.parametrize("name, reference_date, title, on_forms", [
    ("Lạng Sơn", "2019-12-31", "TỈNH LẠNG SƠN", "Tỉnh: Lạng Sơn"),
    ("Hà Nội", "2019-12-31", "THÀNH PHỐ HÀ NỘI", "Tỉnh: Thành phố Hà Nội"),
    ("TP. Hồ Chí Minh", "2019-12-31", "THÀNH PHỐ HỒ CHÍ MINH", "Tỉnh: Thành phố Hồ Chí Minh"),
    ("Huế", "2019-12-31", "TỈNH THỪA THIÊN HUẾ", "Tỉnh: Thừa Thiên Huế"),
    ("Huế", "2025-12-31", "THÀNH PHỐ HUẾ", "Tỉnh: Thành phố Huế"),
])
def test_a_centrally_run_citys_sheets_name_it_as_a_city(sample_run, name, reference_date, title, on_forms):
    """A run of a centrally-run city: its communes' and its own sheets say
    "THÀNH PHỐ HÀ NỘI" in the unit line and the signature blocks, not
    "TỈNH HÀ NỘI", its forms "Tỉnh: Thành phố Hà Nội"; Huế as the
    inventory's date names it."""
    import dataclasses
    from datetime import date

    from pipeline.forms.write import reporting_line
    from pipeline.io import read_geoparquet
    from pipeline.maps.content import sheet_content
    from pipeline.reference import province
    from pipeline.regime import load_template
    from pipeline.units import run_units

    work = WorkDir(sample_run)
    manifest = dataclasses.replace(work.read_manifest(), province=province(name),
                                   reference_date=date.fromisoformat(reference_date))
    units = {u.key: u for u in run_units(manifest, ["06253"])}
    khoanh = read_geoparquet(work.khoanh("06253"))
    for key in ("xa/06253", f"tinh/{manifest.province.gso_code}"):
        content = sheet_content(units[key], khoanh, manifest.load_boundaries(), load_template(), year=2019,
                                meridian_dms="107°15'")
        assert content.unit_line.endswith(title) and "TỈNH " not in content.unit_line.replace(title, "")
    assert content.signatures[1:] == [f"SỞ TÀI NGUYÊN\nVÀ MÔI TRƯỜNG\n{title}\n(Ký tên, đóng dấu)",
                                      f"ỦY BAN NHÂN DÂN\n{title}\n(Ký tên, đóng dấu)"]  # the province's sheet
    assert units[f"tinh/{manifest.province.gso_code}"].name.upper() == title  # its forms' unit
    for unit in units.values():
        assert reporting_line(load_template(), unit).endswith(on_forms)


def _hoa_binh(sample_run):
    """The sheet of the sample's commune 06253: its layout and content."""
    from pipeline.io import read_geoparquet
    from pipeline.maps.content import sheet_content
    from pipeline.maps.panel import panel_height
    from pipeline.regime import load_template
    from pipeline.units import Unit

    work = WorkDir(sample_run)
    khoanh = read_geoparquet(work.khoanh("06253"))
    unit = Unit("xa", "06253", "Xã Hòa Bình", ("06253",), province_name="Lạng Sơn")
    content = sheet_content(unit, khoanh, work.read_manifest().load_boundaries(), load_template(), year=2019,
                            meridian_dms="107°15'")
    layout, _ = plotter_layout(tuple(khoanh.total_bounds), "xa", khoanh.area.sum() / 1e4,
                               panel_height=lambda w: panel_height(content, w))
    return layout, content


def test_a_date_line_wider_than_its_block_stays_inside_the_panel(sample_run, tmp_path):
    """The place-and-date line sits over the last signature block; when it is
    wider than the block it moves left, clear of the panel's frame."""
    import dataclasses

    import pipeline.maps.render as render

    layout, content = _hoa_binh(sample_run)
    content = dataclasses.replace(content, date_line="……………………………………, ngày …… tháng …… năm ……")
    render.render_sheet(layout, content, tmp_path / "xa.pdf", None, dpi=30)
    meta = json.loads((tmp_path / "xa.json").read_text())
    x, _, w, _ = meta["signature_zone_mm"]
    date = next(s for s in _spans(pymupdf.open(tmp_path / "xa.pdf")[0]) if "ngày" in s["text"])
    assert date["bbox"][2] * 25.4 / 72 <= x + w - 1 and (date["bbox"][2] - date["bbox"][0]) * 25.4 / 72 > w / 3


def test_a_drawn_sheet_frees_its_figure_at_once(sample_run, tmp_path, monkeypatch):
    """A sheet's figure (its paths, and the renderer its texts keep through
    reference cycles) is freed as soon as the sheet is written, even with the
    collector off: a worker drawing sheet after sheet holds one at a time."""
    import gc
    import weakref

    import pipeline.maps.render as render

    layout, content = _hoa_binh(sample_run)
    figures = []
    monkeypatch.setattr(render.plt, "figure", lambda *a, _make=render.plt.figure, **k: (
        figures.append(weakref.ref(fig := _make(*a, **k))), fig)[1])
    gc.disable()
    try:
        render.render_sheet(layout, content, tmp_path / "xa.pdf", tmp_path / "xa.png", dpi=30)
        assert len(figures) == 1 and figures[0]() is None
    finally:
        gc.enable()


def test_the_units_sheets_are_drawn_in_the_runs_own_map_biggest_first(sample_run, tmp_path):
    """The inventory draws its sheets and its ``[units]``' in one map over the
    workers, the sheets of most communes first whichever directory they are
    in, so that the two province sheets are drawn side by side; the sheets
    still current are not sent (their rows are read here); each directory
    gets its own report, and the rows returned are the run's own sheets."""
    import os
    import shutil
    from pathlib import Path

    from pipeline.maps import run_maps

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: every sheet is current
    units = WorkDir(work.root / "units_2025")
    for folder in (work, units):
        os.utime(folder.report("maps.md"), (0, 0))  # the reports are not: both directories are planned
    stale = [work.maps_dir / "tinh_20.pdf", units.maps_dir / "tinh_20.pdf", work.maps_dir / "xa_06286.pdf"]
    for sheet in stale:
        os.utime(sheet, (0, 0))
    calls: list[list[tuple[str, str, int]]] = []

    def pmap(func, items, desc=""):
        items = list(items)
        calls.append([(Path(item[0]).name, item[1].level, len(item[1].communes)) for item in items])
        return [func(*item) for item in items]

    rows = run_maps(work, others=[units], scheduler=pmap, progress=False)
    assert calls == [[("units_2025", "tinh", 8), ("work", "tinh", 5), ("work", "xa", 1)]]  # biggest first
    assert all(sheet.stat().st_mtime > 0 for sheet in stale)  # drawn again
    assert sorted(row["sheet"] for row in rows) == sorted(p.stem for p in work.maps_dir.glob("*.pdf"))
    for folder in (work, units):
        assert folder.report("maps.md").stat().st_mtime > 0


def test_a_province_sheet_redrawn_reads_the_generalised_khoanh_not_every_khoanhs_shape(sample_run, tmp_path,
                                                                                      monkeypatch):
    """A province sheet draws the generalised khoanh kept for each commune:
    redrawn after one commune changed, it reads the khoanh's attributes, the
    kept communes' generalised shapes and the changed commune's khoanh only,
    and draws the same sheet as from scratch."""
    import os
    import shutil

    import pipeline.maps.kept as kept
    import pipeline.maps.stage as stage
    from pipeline.units import run_units

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: the generalised khoanh are current
    manifest = work.read_manifest()
    sheet = work.maps_dir / f"tinh_{manifest.province.gso_code}.json"
    before = json.loads(sheet.read_text(encoding="utf-8"))
    changed = work.khoanh_files()[0]
    later = max(p.stat().st_mtime for p in work.root.rglob("*")) + 5
    os.utime(changed, (later, later))
    shapes: list[str] = []  # the files whose shapes were read

    def recording(real):
        def read(paths, *args, **kwargs):
            shapes.extend(map(str, [paths] if isinstance(paths, str | os.PathLike) else paths))
            return real(paths, *args, **kwargs)
        return read

    for module, name in ((stage, "read_geoparquets"), (kept, "read_geoparquets"), (kept, "read_geoparquet")):
        monkeypatch.setattr(module, name, recording(getattr(module, name)))
    units = [u for u in run_units(manifest, [p.stem for p in work.khoanh_files()]) if u.level == "tinh"]
    stage.map_sheet_to_files(str(work.root), units[0], manifest.map_scale_step, 30, None, "current")
    read_khoanh = sorted(p for p in shapes if p.startswith(str(work.khoanh_dir)))
    assert read_khoanh == [str(changed)]
    assert sum(p.startswith(str(work.generalised_dir)) for p in shapes) == len(work.khoanh_files()) - 1
    after = json.loads(sheet.read_text(encoding="utf-8"))
    assert {k: after[k] for k in ("khoanh", "generalised", "natural_ha", "scale", "label_boxes_mm")} == \
        {k: before[k] for k in ("khoanh", "generalised", "natural_ha", "scale", "label_boxes_mm")}


def test_a_sheet_deleted_by_hand_is_drawn_again_and_only_it(sample_run, tmp_path):
    """The maps are up to date when their report is newer than the khoanh and
    every sheet's files are there: a PDF the officer deleted comes back on the
    next run, the other sheets are not drawn again."""
    import shutil
    from pathlib import Path

    from pipeline.maps import run_maps

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: every sheet is current
    assert run_maps(work, scheduler="sync", progress=False) == []  # nothing to do
    deleted = work.maps_dir / "xa_06286.pdf"
    deleted.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in work.maps_dir.iterdir() if p != deleted}
    drawn: list[str] = []

    def pmap(func, items, desc=""):
        items = list(items)
        drawn.extend(Path(item[0]).name + "/" + item[1].key for item in items)
        return [func(*item) for item in items]

    rows = run_maps(work, scheduler=pmap, progress=False)
    assert deleted.exists() and drawn == ["work/xa/06286"]
    assert {p.name: p.stat().st_mtime_ns for p in work.maps_dir.iterdir() if p != deleted} == {
        **before, "xa_06286.png": work.maps_dir.joinpath("xa_06286.png").stat().st_mtime_ns,
        "xa_06286.json": work.maps_dir.joinpath("xa_06286.json").stat().st_mtime_ns}
    assert "xa_06286.pdf" in [row["pdf"] for row in rows]


@pytest.mark.parametrize("with_context", [True, False])
def test_inset_of_a_commune_of_no_known_district_shows_the_province(with_context):
    """A commune no boundary places in a district: its inset shows it among
    the province's communes ("… TRONG TỈNH"), not alone under "TRONG HUYỆN";
    with no boundary at all, the inset is only its extent and says so."""
    from pipeline.maps.content import sheet_content
    from pipeline.regime import load_template
    from pipeline.units import UNKNOWN_DISTRICT, Unit

    squares = [shapely.box(x, 0, x + 1000, 1000) for x in (0, 1000, 2000)]
    bounds = gpd.GeoDataFrame({"commune_code": ["1", "2", "3"], "commune_name": ["Xã A", "Xã B", "Xã C"],
                               "district_code": ["10", "10", "11"], "district_name": ["Huyện X", "Huyện X", "Huyện Y"]},
                              geometry=squares, crs="EPSG:9215")
    bounds = bounds if with_context else bounds.iloc[:0]
    mine = shapely.box(0, 1000, 1000, 2000)
    khoanh = gpd.GeoDataFrame({"commune_code": ["9"], "landuse": ["LUC"], "khoanh_no": [1], "area_m2": [1e6],
                               "owner_type": ["GDC"], "uses": [None]},
                              geometry=[mine], crs="EPSG:9215")
    unit = Unit("xa", "9", "Xã 9", ("9",), district_name="(không rõ huyện)", province_name="Lạng Sơn",
                parent_code=UNKNOWN_DISTRICT)
    content = sheet_content(unit, khoanh, bounds, load_template(), year=2019, meridian_dms="107°15'",
                            outlines={"9": mine})
    assert content.inset_title == ("SƠ ĐỒ VỊ TRÍ XÃ TRONG TỈNH" if with_context else "SƠ ĐỒ PHẠM VI XÃ")
    assert len(content.inset_context) == (3 if with_context else 0)
    assert shapely.equals(content.inset_highlight, mine)
    known = Unit("xa", "1", "Xã A", ("1",), district_name="Huyện X", province_name="Lạng Sơn", parent_code="10")
    if with_context:
        content = sheet_content(known, khoanh.assign(commune_code="1"), bounds, load_template(), year=2019,
                                meridian_dms="107°15'")
        assert content.inset_title == "SƠ ĐỒ VỊ TRÍ XÃ TRONG HUYỆN" and len(content.inset_context) == 2


def test_a_sheet_annotated_in_place_is_kept_beside_when_drawn_again(sample_run, tmp_path, caplog):
    """An officer adds a note to a commune's sheet in Acrobat and saves it in
    place; its preview is only touched. The commune's khoanh then come again
    (a correction): the annotated sheet is kept beside under another name,
    kiemke's is drawn in its place, the touched preview is not kept; the
    officer is told. Drawn again with no note added since: nothing more kept."""
    import os
    import shutil
    import time

    from pipeline.maps import run_maps
    from tests.helpers import annotate_pdf, pdf_notes

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    sheet = work.maps_dir / "xa_06253.pdf"
    drawn = sheet.read_bytes()
    annotate_pdf(sheet, "Ủy ban: xem lại khoanh đất rừng phía bắc")
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    os.utime(work.khoanh("06253"), (later, later))
    for path in [*work.maps_dir.iterdir(), sheet.with_suffix(".png")]:
        if not path.name.startswith("xa_06253.") or path.suffix == ".png":  # only the commune's sheet is drawn
            os.utime(path, (later + 5, later + 5))
    with caplog.at_level("WARNING"):
        run_maps(work, progress=False)
    [aside] = work.maps_dir.glob("*_ban_sua_*")
    assert aside.name.startswith("xa_06253_ban_sua_") and aside.suffix == ".pdf"
    assert pdf_notes(aside) == ["Ủy ban: xem lại khoanh đất rừng phía bắc"] and pdf_notes(sheet) == []
    assert sheet.read_bytes() == drawn  # the same khoanh: the same sheet as before the note
    assert f"Tờ bản đồ đã được lưu lại (ghi chú, sửa) sau khi kiemke vẽ: bản đó được giữ lại thành {aside}" \
        in caplog.text
    caplog.clear()
    sheet.with_suffix(".png").unlink()  # drawn again, as a sheet deleted by hand is
    with caplog.at_level("WARNING"):
        run_maps(work, progress=False)
    assert sheet.with_suffix(".png").exists() and list(work.maps_dir.glob("*_ban_sua_*")) == [aside]
    assert caplog.text == ""


def test_a_sheet_whose_drawing_was_stopped_is_not_taken_for_an_annotated_one(sample_run, tmp_path, monkeypatch,
                                                                             caplog):
    """The run is stopped while a sheet is drawn again (at another preview
    resolution): its new PNG is written, its record not yet. The next run
    draws it again without keeping anything beside: the new bytes are
    kiemke's, not an officer's notes."""
    import os
    import shutil
    import time

    from pipeline.maps import render, run_maps

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5
    os.utime(work.khoanh("06253"), (later, later))
    for path in work.maps_dir.iterdir():
        if not path.name.startswith("xa_06253."):  # only the commune's sheet is drawn
            os.utime(path, (later + 5, later + 5))

    def stopped(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "write_json", stopped)
    with pytest.raises(KeyboardInterrupt):
        run_maps(work, dpi=40, progress=False)
    monkeypatch.undo()
    with caplog.at_level("WARNING"):
        run_maps(work, dpi=40, progress=False)
    assert not list(work.maps_dir.glob("*_ban_sua_*")) and caplog.text == ""
    assert set(json.loads((work.maps_dir / "xa_06253.json").read_text(encoding="utf-8"))["written"]) == \
        {"xa_06253.pdf", "xa_06253.png"}
