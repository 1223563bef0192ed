"""Current land-use maps: true scale, legend, colours, labels, Vietnamese text."""

import json
import warnings

import geopandas as gpd
import numpy as np
import pymupdf
import pytest
import shapely
from PIL import Image

from pipeline.drawing import PT_PER_MM, compound_path
from pipeline.maps.layout import choose_paper, format_scale, regulation_scale, sheet_layout
from pipeline.maps.render import place_labels
from pipeline.reference import landuse_colors, landuse_tree
from pipeline.workdir import WorkDir

SHEETS = ["xa_06253", "xa_06274", "xa_06286", "xa_06307", "huyen_184", "tinh_20"]
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
    assert choose_paper(800, 500, 5000)[0] == "A4 landscape"
    assert choose_paper(500, 800, 5000)[0] == "A4 portrait"
    assert choose_paper(2500, 2000, 5000)[0] == "A1 landscape"
    assert format_scale(25000) == "1:25.000"


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
    ground_m = (x1 - x0) * 1.06  # the sheet pads the extent by 3 % each side
    assert width_mm * scale / 1000 == pytest.approx(ground_m, rel=0.005)
    assert scale == {"xa": 5000, "huyen": 10000, "tinh": 25000}[level]  # 961–2296 ha, 6583 ha, 6583 ha
    page_w = page.rect.width / PT_PER_MM
    assert page_w >= width_mm + 20


@pytest.mark.parametrize("name", SHEETS)
def test_legend_lists_exactly_the_codes_present(sheet_run, name):
    level, code = name.split("_")
    khoanh = gpd.read_parquet(sheet_run / "khoanh")
    if level == "xa":
        khoanh = khoanh[khoanh["commune_code"] == code]
    present = set(khoanh["landuse"].dropna())
    tree = landuse_tree()
    texts = {s["text"].strip() for s in _spans(_page(sheet_run, name))}
    names_shown = {c for c in tree.codes if tree.name(c) in texts}
    assert names_shown == present
    order = json.loads((sheet_run / "maps" / f"{name}.json").read_text())["legend_codes"]
    assert order == [c for c in tree.codes if c in present]


@pytest.mark.parametrize("name", ["xa_06274", "huyen_184"])
def test_title_grid_crs_note_and_signatures(sheet_run, name):
    texts = [s["text"] for s in _spans(_page(sheet_run, name))]
    assert "BẢN ĐỒ HIỆN TRẠNG SỬ DỤNG ĐẤT NĂM 2019" in texts
    assert any("HUYỆN VĂN QUAN" in t and "TỈNH LẠNG SƠN" in t for t in texts)
    assert "Hệ tọa độ VN-2000, kinh tuyến trục 107°15′, múi chiếu 3°" in texts
    assert "CHÚ DẪN" in texts and "CƠ CẤU SỬ DỤNG ĐẤT (%)" in texts and "ỦY BAN NHÂN DÂN" in texts
    assert any(t.startswith("SƠ ĐỒ VỊ TRÍ") for t in texts)
    grid = [t for t in texts if t.replace(".", "").isdigit() and len(t) >= 3]
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


@pytest.mark.parametrize("name", SHEETS)
def test_no_label_boxes_overlap(sheet_run, name):
    """Label boxes (exact glyph extents, 1.25 em high) as placed on the page: pairwise apart,
    each inside the map frame."""
    meta = json.loads((sheet_run / "maps" / f"{name}.json").read_text())
    boxes = np.array([b[1:] for b in meta["label_boxes_mm"]], dtype=float)
    assert len(boxes) > 50
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    overlap_x = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    overlap_y = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    clash = (overlap_x > 1e-6) & (overlap_y > 1e-6)
    np.fill_diagonal(clash, False)
    assert not clash.any()
    mx, my, mw, mh = meta["map_box_mm"]
    assert (x0 >= mx).all() and (x1 <= mx + mw).all() and (y0 >= my).all() and (y1 <= my + mh).all()


def test_labels_stay_inside_their_khoanh_and_apart():
    polys = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 102, 100), shapely.box(0, 100, 100, 200)])
    layout = sheet_layout((0, 0, 102, 200), 1000)
    labels = place_labels(polys, np.array(["LUC", "DGT", "ONT"]), layout)
    assert list(labels["text"]) == ["LUC", "ONT"]  # the 2 m wide road strip gets no label


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
