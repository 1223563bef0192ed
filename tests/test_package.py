"""The GeoPackage, its styles, the QGIS project and the GeoTIFF — checked with real clients."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pymupdf
import pyogrio
import pytest
import rasterio

from pipeline.drawing import PT_PER_MM
from pipeline.ingest.owners import SOURCE_VI
from pipeline.qa import LAYER_TITLES
from pipeline.reference import landuse_colors
from pipeline.schemas import PARCEL_COLUMNS
from tests.conftest import REPO

STEM = "LangSon_2019_HTSDD"
SPATIAL = {"thua_dat", "khoanh_dat", "ranh_gioi_xa", "ranh_gioi_huyen", "ranh_gioi_tinh", "qa_overlaps",
           "qa_duplicates", "qa_gaps", "qa_slivers", "qa_crossings", "qa_invalid",
           "qa_commune_overlaps",  # land two communes hold (the sample's boundaries overlap)
           "bien_dong",  # the change since 2014 (the sample's config has a [previous] inventory)
           "review",  # the parcels to review (Yên Phúc's inferred objects and refined codes)
           "ranh_gioi_xa_2025", "khoanh_dat_2025"}  # the communes of 1 July 2025 ([units])
TABLES = {"dien_tich_theo_doi_tuong", "dien_tich_theo_loai_dat", "chu_chuyen"}
CLIENTS = Path(__file__).parent / "clients"


@pytest.fixture(scope="module")
def gpkg(sample_run) -> Path:
    path = sample_run / f"{STEM}.gpkg"
    assert path.exists()
    return path


def test_every_layer_is_listed_in_the_province_crs(gpkg):
    layers = dict(pyogrio.list_layers(gpkg))
    assert set(layers) >= SPATIAL | TABLES
    for name in SPATIAL:
        info = pyogrio.read_info(gpkg, layer=name)
        assert info["crs"] == "EPSG:9215", name
        assert info["features"] > 0, name
    if shutil.which("ogrinfo"):
        listing = subprocess.run(["ogrinfo", "-ro", "-q", str(gpkg)], capture_output=True, text=True).stdout
        assert all(name in listing for name in SPATIAL | TABLES)


def test_geopackage_1_2_with_vietnamese_contents_and_indexes(gpkg):
    with sqlite3.connect(gpkg) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2
        contents = dict(db.execute("SELECT table_name, identifier FROM gpkg_contents").fetchall())
        assert contents["khoanh_dat"] == "Khoanh đất hiện trạng năm 2019"
        assert contents["ranh_gioi_xa"] == "Ranh giới xã"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {f"rtree_{name}_geom" for name in SPATIAL} <= tables
        styles = db.execute("SELECT f_table_name, useAsDefault, styleQML, styleSLD FROM layer_styles").fetchall()
    assert {s[0] for s in styles} == SPATIAL and all(s[1] == 1 for s in styles)
    khoanh_qml = next(s[2] for s in styles if s[0] == "khoanh_dat")
    assert 'type="categorizedSymbol" attr="landuse"' in khoanh_qml
    assert 'value="LUC"' in khoanh_qml and "255,252,140,255" in khoanh_qml  # LUC #FFFC8C
    assert all("<StyledLayerDescriptor" in s[3] for s in styles)
    assert contents["bien_dong"] == "Biến động sử dụng đất 2014 - 2019"
    change_qml = next(s[2] for s in styles if s[0] == "bien_dong")
    assert 'attr="landuse"' in change_qml and 'value="ONT"' in change_qml  # coloured by the new use


def test_the_parcels_flags_read_in_vietnamese_in_the_geopackage(gpkg, sample_run):
    flags = pyogrio.read_dataframe(gpkg, layer="thua_dat", columns=["flags"], read_geometry=False)["flags"].dropna()
    kept = pd.concat([pd.read_parquet(p, columns=["flags"]) for p in (sample_run / "parcels").glob("*.parquet")])
    assert len(flags) == kept["flags"].notna().sum() > 0
    assert flags.str.startswith("Hình học lỗi đã sửa (").any()  # the parcel contract's "invalid geometry repaired (…)"
    assert not flags.str.contains("repaired|recorded area|commune found", regex=True).any(), flags.unique()[:5]


@pytest.mark.parametrize("layer, folder", [("khoanh_dat", "khoanh"), ("thua_dat", "parcels")])
def test_a_compound_codes_area_of_each_purpose_reads_to_a_tenth_of_a_square_metre(gpkg, sample_run, layer, folder):
    """ODT+CLN: the m² of each purpose, JSON (QGIS: map_get(from_json("uses"), 'ODT')), to 0.1 m² as
    the cadastre records an area, not to the 13 digits of a float; the work folder keeps them whole."""
    keys = ["commune_code", "khoanh_no"] if layer == "khoanh_dat" else ["source_file", "source_fid"]
    shown = pyogrio.read_dataframe(gpkg, layer=layer, columns=[*keys, "uses"], read_geometry=False).dropna()
    kept = pd.concat([pd.read_parquet(p, columns=[*keys, "uses"]) for p in (sample_run / folder).glob("*.parquet")])
    both = shown.merge(kept.dropna(), on=keys, suffixes=("", "_kept"), validate="1:1")
    assert len(both) == len(shown) == kept["uses"].notna().sum() > 10
    for uses, whole in zip(both["uses"], both["uses_kept"], strict=True):
        assert json.loads(uses) == {code: round(m2, 1) for code, m2 in json.loads(whole).items()}
    assert both["uses"].str.fullmatch(r'\{"[A-Z]{3}": \d+\.\d(, "[A-Z]{3}": \d+\.\d)*\}').all()


def test_change_layer_holds_the_documented_changes(gpkg, sample_dir):
    changed = pyogrio.read_dataframe(gpkg, layer="bien_dong")
    documented = pd.read_csv(sample_dir / "kiem_ke_2014" / "changes_2014_2019.csv")
    assert changed["area_m2"].sum() == pytest.approx(documented["area_m2"].sum(), rel=1e-3)
    found = set(zip(changed["ma_2014"], changed["ma_2019"], strict=True))
    assert found >= set(zip(documented["from_code"], documented["to_code"], strict=True))


def test_style_files_match_the_embedded_styles(gpkg, sample_run):
    with sqlite3.connect(gpkg) as db:
        embedded = dict(db.execute("SELECT f_table_name, styleQML FROM layer_styles").fetchall())
    for name, qml in embedded.items():
        assert (sample_run / "styles" / f"{name}.qml").read_text(encoding="utf-8") == qml
        assert (sample_run / "styles" / f"{name}.sld").exists()


def test_the_repository_styles_are_those_of_the_sample(sample_run):
    """styles/ holds the sample's QML and SLD as kiemke writes them today (its
    README says so): a QGIS user loading one gets the GeoPackage's own style."""
    written = {p.name: p.read_bytes() for p in (sample_run / "styles").iterdir()}
    kept = {p.name: p.read_bytes() for p in (REPO / "styles").iterdir() if p.suffix in (".qml", ".sld")}
    assert sorted(kept) == sorted(written)
    stale = [name for name in written if kept[name] != written[name]]
    assert stale == []  # to refresh: make inventory; cp data/processed/styles/* styles/


def test_cog_with_palette_names_and_overviews(sample_run):
    path = sample_run / f"{STEM}.tif"
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.crs.to_epsg() == 9215 and src.res == (10.0, 10.0)
        assert src.overviews(1)
        codes = src.tags()["landuse_codes"].split(",")
        luc = codes.index("LUC") + 1
        assert src.colormap(1)[luc] == (255, 252, 140, 255)
        assert src.tags(1)[f"CODE_{luc}"].startswith("LUC - Đất chuyên trồng lúa nước")
    assert "<Category>LUC - Đất chuyên trồng lúa nước</Category>" in Path(str(path) + ".aux.xml").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("code", ["06253", "06274", "06286", "06307"])
def test_raster_areas_within_half_a_percent(sample_run, code):
    khoanh = gpd.read_parquet(sample_run / "khoanh" / f"{code}.parquet")
    vector = khoanh.groupby("landuse")["area_m2"].sum()
    with rasterio.open(sample_run / "rasters" / f"xa_{code}.tif") as src:
        band = src.read(1)
        codes = src.tags()["landuse_codes"].split(",")
        cell = src.res[0] * src.res[1]
    counts = np.bincount(band.ravel(), minlength=len(codes) + 1)
    raster = pd.Series({c: counts[i + 1] * cell for i, c in enumerate(codes) if counts[i + 1]})
    assert raster.sum() == pytest.approx(vector.sum(), rel=0.005)
    big = vector[vector > 0.01 * vector.sum()].index
    assert ((raster[big] - vector[big]).abs() / vector[big]).max() < 0.005


def qgis_report(qgis_python: str, project: Path, gpkg: Path, png: Path) -> dict:
    """What QGIS sees of a package (tests/clients/qgis_check.py, run with QGIS's own python)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(png.parent)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([qgis_python, str(CLIENTS / "qgis_check.py"), str(project), str(gpkg), str(png)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


def test_qgis_opens_the_geopackage_and_the_project_styled(sample_run, qgis_python, tmp_path):
    png = tmp_path / "qgis.png"
    report = qgis_report(qgis_python, sample_run / f"{STEM}.qgz", sample_run / f"{STEM}.gpkg", png)
    colours = landuse_colors()["hex"]
    for name, info in report["gpkg_layers"].items():
        assert info["valid"], name
        if name in SPATIAL:
            assert info["crs"] == "EPSG:9215", name
    for name in ("khoanh_dat", "thua_dat"):
        renderer = report["gpkg_layers"][name]["renderer"]
        assert renderer["type"] == "categorizedSymbol" and renderer["attribute"] == "landuse"
        # LUC, ONT and the production-forest colour (RSX, shared by RST/RSN) are the official ones
        assert renderer["colours"]["LUC"] == colours["LUC"]
        assert renderer["colours"]["ONT"] == colours["ONT"]
        assert renderer["colours"]["RST"] == colours["RSX"]
    for name in ("overlaps", "gaps", "invalid"):  # coded values read as their meaning, the file keeps the code
        assert report["gpkg_layers"][f"qa_{name}"]["shown"] == {"problem": {name: LAYER_TITLES[name]}}, name
    overlap = report["gpkg_layers"]["qa_overlaps"]["numbers"]  # stored: 24.971561217841074 m², X 2420324.7
    assert re.fullmatch(r"24[.,]97", overlap["area_m2"])
    assert re.fullmatch(r"2[.,]420[.,]324[.,]70", overlap["x_northing"])
    assert re.fullmatch(r"[\d.,]+[.,]\d\d", report["gpkg_layers"]["thua_dat"]["numbers"]["area_m2"])
    parcels = report["gpkg_layers"]["thua_dat"]["shown"]
    assert parcels["owner_source"] == {value: SOURCE_VI[value] for value in ("file", "name", "landuse")}
    rules = pd.read_csv(REPO / "pipeline/reference/owner_rules.csv").set_index("rule")["name_vi"]
    assert parcels["owner_rule"]["co_so_ton_giao_cong_dong"] == rules["co_so_ton_giao_cong_dong"]
    assert parcels["owner_rule"][""] == "" and all(  # every rule the sample uses: in words, not "(its key)"
        shown == rules[value] for value, shown in parcels["owner_rule"].items() if value)
    assert report["project_read"] and report["project_crs"] == "EPSG:9215"
    assert "QFont" not in report["stderr"], report["stderr"]  # every font of the project is described
    assert len(report["project_layers"]) == len(SPATIAL) + len(TABLES)
    assert all(v["valid"] and v["source"].endswith(tuple(SPATIAL | TABLES)) for v in report["project_layers"].values())
    assert all(v["crs"] == "EPSG:9215" for v in report["project_layers"].values() if v["renderer"] is not None)
    _project_is_ready_to_work_in(report)
    assert report["render_saved"]
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    for code in ("LUC", "ONT", "RST"):
        rgb = [int(colours[code][i:i + 2], 16) for i in (1, 3, 5)]
        share = (np.abs(pixels.astype(int) - rgb).max(axis=1) <= 3).mean()
        assert share > 0.0005, (code, share)  # ONT strips are thin at this zoom: ≥ 2 160 pixels


def _project_is_ready_to_work_in(report: dict) -> None:
    """Groups in order with the QA switched off, the change drawn above the
    khoanh, Vietnamese field names, the area tables loaded, and a print layout
    per level that QGIS exports to an A0 PDF (the atlases: one page per unit)."""
    groups = report["groups"]
    assert list(groups) == ["Kiểm tra QA", "Ranh giới", "Biến động", "Hiện trạng", "Đơn vị hành chính 2025",
                            "Bảng diện tích"]
    regrouped = groups["Đơn vị hành chính 2025"]  # the communes of 1 July 2025: present, switched off
    assert not regrouped["visible"] and set(regrouped["layers"]) == {"Ranh giới xã (2025)",
                                                                     "Khoanh đất năm 2019 theo đơn vị 2025"}
    assert not groups["Kiểm tra QA"]["visible"] and not any(groups["Kiểm tra QA"]["layers"].values())
    assert len(groups["Kiểm tra QA"]["layers"]) == 8 and all(groups["Ranh giới"]["layers"].values())
    assert "QA: Khoanh đất của hai xã chồng lên nhau" in groups["Kiểm tra QA"]["layers"]  # the sample's boundaries
    order = report["order"]
    assert order.index("Biến động sử dụng đất 2014 - 2019") < order.index("Khoanh đất hiện trạng năm 2019")
    khoanh = report["aliases"]["Khoanh đất hiện trạng năm 2019"]
    assert khoanh["landuse"] == "Mã loại đất" and khoanh["owner_type"] == "Mã đối tượng sử dụng, quản lý"
    assert report["aliases"]["Biến động sử dụng đất 2014 - 2019"]["ma_2014"] == "Mã loại đất năm 2014"
    untranslated = {name: [f for f, alias in fields.items() if alias in ("", f) and f != "fid"
                           and (name != "Thửa đất" or f in PARCEL_COLUMNS)]  # the source's own columns: as found
                    for name, fields in report["aliases"].items()}
    assert not any(untranslated.values()), untranslated  # every field kiemke writes: a Vietnamese name
    assert report["shown"]["QA: Khoanh đất của hai xã chồng lên nhau"] == {
        "problem": {"commune_overlaps": "Khoanh đất của hai xã chồng lên nhau"}}
    assert {t["name"] for t in report["tables"]} == {
        "Chu chuyển đất đai 2014 - 2019 (m²)", "Diện tích theo mã loại đất và đối tượng (m²)",
        "Diện tích theo mã loại đất (cả mã cấp trên)"} and all(t["features"] > 100 for t in report["tables"])
    layouts = report["layouts"]
    assert [name.rsplit(" ", 1)[-1] for name in layouts] == ["xã", "huyện", "tỉnh"]
    assert [v.get("atlas_count") for v in layouts.values()] == [5, 1, None]
    for info in layouts.values():
        assert {"QgsLayoutItemMap", "QgsLayoutItemLegend", "QgsLayoutItemScaleBar", "QgsLayoutItemLabel"} \
            <= set(info["items"])
        assert info["export"] == 0  # QgsLayoutExporter.Success
        assert info["scale_bar_font"] == ["DejaVu Sans", 12]  # the scale bar's numbers: the CRS note's size
        # space above each legend title and between a swatch and its label, as QGIS's own legends
        assert info["legend_margins"] == {"group": [3, 0], "subgroup": [3, 0], "label": [2, 2]}
        with pymupdf.open(info["pdf"]) as pdf:
            page = pdf[0]
            assert (round(page.rect.width / PT_PER_MM), round(page.rect.height / PT_PER_MM)) == (1189, 841)
            text = page.get_text()
            assert "BẢN ĐỒ HIỆN TRẠNG SỬ DỤNG ĐẤT NĂM 2019" in text
            assert re.search(r"TỶ LỆ 1:\d{1,3}(\.\d{3})+\b", text), text  # 1:6.380, not 1:6,380


def test_layers_stream_a_file_at_a_time_with_every_files_columns(tmp_path):
    """Parcel files keep their source's extra columns: the streamed layer has
    them all, typed as in the files (REAL stays REAL, INTEGER stays INTEGER),
    empty where a file lacks them; an optional layer without rows is left out;
    the extent is the files' together."""
    from pyproj import CRS
    from shapely.geometry import box

    from pipeline.io import write_geoparquet
    from pipeline.package.geopackage import write_geopackage
    from pipeline.package.gpkg import GpkgLayer, per_file, whole
    from pipeline.package.gpkg_write import write_layers

    crs = CRS.from_epsg(3405)
    first = gpd.GeoDataFrame({"landuse": ["LUC", "ONT"], "DT_ONT": [120.5, None]},
                             geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=crs)
    second = gpd.GeoDataFrame({"landuse": ["CLN"], "objectId": [7]}, geometry=[box(5, 5, 6, 8)], crs=crs)
    files = [write_geoparquet(tmp_path / "a.parquet", first), write_geoparquet(tmp_path / "b.parquet", second)]
    empty = gpd.GeoDataFrame({"problem": []}, geometry=[], crs=crs)
    written = write_geopackage(tmp_path / "t.gpkg", [
        GpkgLayer("qa_none", "QA", "", whole(empty), True, optional=True),
        GpkgLayer("thua_dat", "Thửa đất", "", per_file(files), True),
    ], crs)
    assert [layer.name for layer in written] == ["thua_dat"]
    assert written[0].columns == ("landuse", "DT_ONT", "geometry", "objectId")
    done = write_layers(tmp_path / "again.gpkg", [GpkgLayer("thua_dat", "Thửa đất", "", per_file(files), True)], crs)
    kept = [(chunk.part.key, chunk.rows, chunk.table) for chunk in done[0].chunks]  # counted, not held
    assert kept == [(f"{tmp_path.name}/a.parquet", 2, None), (f"{tmp_path.name}/b.parquet", 1, None)]  # folder/name
    assert written[0].bounds == (0.0, 0.0, 6.0, 8.0)
    assert [name for name, _ in pyogrio.list_layers(tmp_path / "t.gpkg")] == ["thua_dat", "layer_styles"]
    info = pyogrio.read_info(tmp_path / "t.gpkg", layer="thua_dat")
    assert dict(zip(info["fields"], info["dtypes"], strict=True)) == {"landuse": "object", "DT_ONT": "float64",
                                                                       "objectId": "int64"}
    back = pyogrio.read_dataframe(tmp_path / "t.gpkg", layer="thua_dat")
    assert back["landuse"].tolist() == ["LUC", "ONT", "CLN"]
    assert back["DT_ONT"].isna().tolist() == [False, True, True]
    assert back["objectId"].isna().tolist() == [True, True, False]
    assert set(back.geom_type) == {"MultiPolygon"}


def test_stored_wkb_becomes_the_multipolygons_shapely_would_write():
    """Layers read as Arrow keep their WKB: a Polygon gets a MultiPolygon header,
    byte for byte what shapely writes for it; a column holding anything else
    (a 3D, an empty, a missing or a big-endian shape) goes through shapely whole."""
    import pyarrow as pa
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, box

    from pipeline.package.gpkg_write import multipolygon_wkb, to_multipolygon

    holed = Polygon([(0, 0), (9, 0), (9, 9), (0, 9)], [[(2, 2), (3, 2), (3, 3)]])
    plain = np.array([box(0, 0, 1, 1), holed, MultiPolygon([box(5, 5, 6, 6), box(7, 7, 8, 8)])], dtype=object)

    def expected(geoms):
        return shapely.to_wkb(to_multipolygon(geoms)).tolist()

    assert multipolygon_wkb(pa.array(shapely.to_wkb(plain))).to_pylist() == expected(plain)
    for odd in (shapely.force_3d(box(0, 0, 1, 1)), Polygon(), None):
        geoms = np.array([*plain, odd], dtype=object)
        assert multipolygon_wkb(pa.array(shapely.to_wkb(geoms))).to_pylist() == expected(geoms)
    big_endian = pa.array(shapely.to_wkb(plain, byte_order=0))
    assert multipolygon_wkb(big_endian).to_pylist() == expected(plain)
    assert set(shapely.get_type_id(shapely.from_wkb(expected(plain)))) == {6}


def test_a_band_staged_in_memory_or_on_disk_gives_the_same_geotiff(tmp_path, monkeypatch):
    """A commune's band is staged in memory, a province's (larger) on disk:
    either way the same Cloud-Optimized GeoTIFF (cells, palette, category
    tags, description, overviews) and the same areas."""
    from pyproj import CRS
    from rasterio.transform import from_origin

    from pipeline.package import raster

    band = np.zeros((700, 900), dtype="uint8")
    band[100:400, 200:800], band[500:, :300] = 3, 7
    transform, crs = from_origin(400_000, 2_400_000, 5.0, 5.0), CRS.from_epsg(3405)
    in_memory = raster.write_band(tmp_path / "memory.tif", band, transform, 5.0, crs)
    monkeypatch.setattr(raster, "IN_MEMORY_CELLS", 0)
    on_disk = raster.write_band(tmp_path / "disk.tif", band, transform, 5.0, crs)
    codes = raster.raster_codes()
    assert in_memory == on_disk == {codes[2]: 300 * 600 * 25.0, codes[6]: 200 * 300 * 25.0}
    files = []
    for name in ("memory", "disk"):
        with rasterio.open(tmp_path / f"{name}.tif") as src:
            assert (src.read(1) == band).all()
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and len(src.overviews(1)) == 4
            files.append((src.colormap(1), src.tags(), src.tags(1), src.descriptions, src.crs, src.transform))
    assert files[0] == files[1] and files[0][2]["CODE_3"].startswith(codes[2])
    assert raster.raster_area_by_code(tmp_path / "memory.tif") == in_memory  # as its tag records them
    monkeypatch.setattr(raster, "AREAS_TAG", "no such tag")  # a GeoTIFF of an earlier version: counted
    assert raster.raster_area_by_code(tmp_path / "memory.tif") == in_memory


def test_cells_counted_in_pairs_are_counted_one_by_one():
    """The cells counted two at a time (one 16-bit value a pair) give what a
    count of each cell gives: every value 0…255, a band of an odd number of
    cells (the last one alone), a window of a larger band."""
    from pipeline.package.raster import cell_counts

    band = np.random.default_rng(7).integers(0, 256, size=(301, 457), dtype=np.uint8)
    band[:50] = 0
    for cells in (band, band[:, :-1], band[1:300:2, 3:400], band[:1, :1]):
        assert (cell_counts(cells) == np.bincount(cells.ravel(), minlength=256)).all()


def test_burning_commune_by_commune_gives_the_cells_of_one_rasterize():
    """A unit's GeoTIFF is burnt a commune at a time, each within its own cells:
    neighbours' cells are kept, and every cell is the one a single rasterize gives."""
    from rasterio.features import rasterize
    from shapely.geometry import box

    from pipeline.package.raster import Coded, empty_band, landuse_values

    left = gpd.GeoDataFrame({"landuse": ["LUC", "ONT"]}, geometry=[box(3, 3, 52, 40), box(52, 3, 101, 40)])
    right = gpd.GeoDataFrame({"landuse": ["CLN", None]}, geometry=[box(101, 3, 148.5, 61), box(0, 40, 101, 61)])
    band, transform = empty_band((0, 0, 150, 64), 5.0)
    for commune in (left, right):
        Coded.of(commune).burn(band, transform)
    both = pd.concat([left, right])
    coded = both[both["landuse"].notna()]
    once = rasterize(zip(coded.geometry, coded["landuse"].map(landuse_values()), strict=True),
                     out_shape=band.shape, transform=transform, fill=0, dtype="uint8")
    assert (band == once).all() and set(np.unique(band)) == {0, *(landuse_values()[c] for c in ("LUC", "ONT", "CLN"))}


def test_district_and_province_rasters_hold_the_cells_burning_their_khoanh_gives(tmp_path):
    """A district's GeoTIFF is laid from its communes' and the province's from
    windows the commune tasks burnt: the cells are those of burning every
    khoanh into the unit's own grid, the later commune's where two overlap."""
    import rasterio
    from shapely.geometry import box

    from pipeline.io import files_bounds
    from pipeline.package.raster import (
        Coded,
        commune_rasters,
        empty_band,
        grid,
        laid_to_file,
        landuse_values,
        mosaic_to_file,
        read_geoparquet,
    )

    x, y = 431_203.3, 2_412_007.7
    communes = [gpd.GeoDataFrame({"landuse": ["LUC", "ONT", None]},
                                 geometry=[box(x, y, x + 61.2, y + 40.4), box(x + 61.2, y, x + 130.9, y + 40.4),
                                           box(x, y + 40.4, x + 130.9, y + 77.1)], crs=9215),
                gpd.GeoDataFrame({"landuse": ["CLN", "NTS"]},  # overlaps the first by a strip 12.3 m wide
                                 geometry=[box(x + 118.6, y - 23.2, x + 197.4, y + 33.3),
                                           box(x + 118.6, y + 33.3, x + 197.4, y + 91.8)], crs=9215)]
    files = []
    for i, commune in enumerate(communes):
        files.append(str(tmp_path / f"{i}.parquet"))
        commune.to_parquet(files[-1])
    shape, province_transform = grid(files_bounds(files), 10.0)
    cells = [str(tmp_path / f"cells_{i}.npz") for i in range(len(files))]
    for i, name in enumerate(files):
        commune_rasters(name, str(tmp_path / f"xa_{i}.tif"), 5.0, "EPSG:9215", province_transform, shape, cells[i])
    laid_to_file(cells, shape, province_transform, str(tmp_path / "tinh.tif"), 10.0, "EPSG:9215")
    areas = mosaic_to_file([str(tmp_path / f"xa_{i}.tif") for i in range(2)], str(tmp_path / "huyen.tif"), 5.0,
                           "EPSG:9215")
    for resolution, name in ((10.0, "tinh"), (5.0, "huyen")):
        expected, transform = empty_band(files_bounds(files), resolution)
        for commune in files:
            Coded.of(read_geoparquet(Path(commune), columns=["landuse", "geometry"])).burn(expected, transform)
        with rasterio.open(tmp_path / f"{name}.tif") as src:
            laid = src.read(1), src.transform
        assert laid[1] == transform and np.array_equal(laid[0], expected)
        assert len(np.unique(expected)) == 5  # no data and the four codes
    assert areas["CLN"] == (expected == landuse_values()["CLN"]).sum() * 25


def test_the_package_run_again_burns_only_the_changed_commune_and_lays_the_same_province(sample_run, tmp_path,
                                                                                        monkeypatch):
    """The province's GeoTIFF is laid from every commune's cells of its grid,
    kept from the run before: after one commune's khoanh change, only that
    commune is read and burnt again, and the province's cells and areas are
    those of the run that burnt them all."""
    from pipeline.package import run_package, stage
    from pipeline.workdir import WorkDir

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    province_tif = next(work.root.glob("*.tif"))
    with rasterio.open(province_tif) as src:
        before = src.read(1)
    areas_before = work.report("raster_areas.csv").read_text(encoding="utf-8")
    burnt: list[str] = []
    burn = stage.commune_rasters
    monkeypatch.setattr(stage, "commune_rasters", lambda khoanh, *rest: burnt.append(khoanh) or burn(khoanh, *rest))
    changed = work.khoanh_files()[1]
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    os.utime(changed, (later, later))
    run_package(work, progress=False)
    assert burnt == [str(changed)]
    with rasterio.open(province_tif) as src:
        assert np.array_equal(src.read(1), before)
    assert work.report("raster_areas.csv").read_text(encoding="utf-8") == areas_before
    assert len(list(work.province_cells_dir.glob("*/*.npz"))) == len(work.khoanh_files())


def test_no_geotiff_for_the_unknown_district_of_communes_without_boundary(sample_run, tmp_path):
    """The communes no boundary places in a district get their own GeoTIFFs and
    are in the province's; the unknown district ("không rõ huyện") gets none."""
    from pipeline.package import run_package
    from pipeline.workdir import WorkDir
    from tests.helpers import one_commune_without_boundaries

    keep, _ = one_commune_without_boundaries(sample_run, tmp_path / "work")
    work = WorkDir(tmp_path / "work")
    products = run_package(work, progress=False)
    assert sorted(p.name for p in work.rasters_dir.glob("*.tif")) == [f"xa_{keep}.tif"]
    assert products["tif"].exists() and products["gpkg"].exists()


def test_without_boundaries_the_communes_atlas_runs_over_their_extents(sample_run, qgis_python, tmp_path):
    """An export without a boundary file (every real one): the GeoPackage has
    each commune's extent (its khoanh and gaps) as ``pham_vi_xa``, the commune
    layout's atlas has one page per commune (not one per khoanh), framing the
    whole commune, and there is no district layout."""
    from pipeline.package import run_package
    from pipeline.workdir import WorkDir
    from tests.helpers import one_commune_without_boundaries

    keep, _ = one_commune_without_boundaries(sample_run, tmp_path / "work")
    work = WorkDir(tmp_path / "work")
    products = run_package(work, progress=False)
    extents = gpd.read_file(products["gpkg"], layer="pham_vi_xa")
    khoanh = gpd.read_parquet(work.khoanh(keep))
    assert list(extents["commune_code"]) == [keep] and list(extents["commune_name"]) == [f"Xã {keep}"]
    assert extents.area.sum() == pytest.approx(khoanh.area.sum(), rel=1e-9)
    report = qgis_report(qgis_python, products["project"], products["gpkg"], tmp_path / "qgis.png")
    assert "Phạm vi xã (theo khoanh đất)" in report["groups"]["Ranh giới"]["layers"]
    layouts = report["layouts"]
    assert [name.rsplit(" ", 1)[-1] for name in layouts] == ["xã", "tỉnh"]
    assert [v.get("atlas_count") for v in layouts.values()] == [1, None]
    with pymupdf.open(layouts["Bản đồ hiện trạng sử dụng đất cấp xã"]["pdf"]) as pdf:
        assert f"XÃ {keep}" in pdf[0].get_text()


def test_a_chunk_extent_is_its_recorded_bbox_else_its_shapes(tmp_path):
    """A GeoParquet chunk's extent comes from the bbox its metadata records;
    a table without GeoParquet metadata, or without a bbox, gives its shapes' extent."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    from pipeline.io import write_geoparquet
    from pipeline.package.gpkg_write import chunk_bounds

    frame = gpd.GeoDataFrame({"n": [1, 2]}, geometry=[shapely.box(1, 2, 3, 4), shapely.box(5, 6, 7, 9)],
                             crs="EPSG:9215")
    write_geoparquet(tmp_path / "a.parquet", frame)
    recorded = pq.read_table(tmp_path / "a.parquet")
    bare = pa.table({"geometry": shapely.to_wkb(frame.geometry.values)})
    assert chunk_bounds(recorded).tolist() == chunk_bounds(bare).tolist() == [1.0, 2.0, 7.0, 9.0]
    assert chunk_bounds(recorded.replace_schema_metadata({b"geo": b'{"primary_column": "geometry", "columns": '
                                                                  b'{"geometry": {"bbox": [0, 0, 10, 10]}}}'})
                        ).tolist() == [0.0, 0.0, 10.0, 10.0]


def _gpkg_state(path: Path) -> dict:
    """What a reader sees of a GeoPackage: every table's rows (as the golden
    digest), each layer's extent and feature count, each spatial index's entries."""
    from tests.golden import gpkg_tables

    with sqlite3.connect(path) as db:
        contents = db.execute("SELECT table_name, identifier, description, min_x, min_y, max_x, max_y "
                              "FROM gpkg_contents ORDER BY table_name").fetchall()
        counts = db.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents ORDER BY table_name").fetchall()
        indexed = {table: db.execute(f'SELECT count(*) FROM "rtree_{table}_geom"').fetchone()[0]
                   for (table,) in db.execute("SELECT table_name FROM gpkg_extensions "
                                              "WHERE extension_name = 'gpkg_rtree_index'")}
    return {"tables": gpkg_tables(path), "contents": contents, "counts": counts, "indexed": indexed}


def test_a_geopackage_written_before_is_patched_where_its_files_changed(tmp_path, caplog):
    """With a ledger, the GeoPackage written before is patched: a changed
    file's rows replaced, a removed file's deleted, a new file's added, rows
    made in memory written anew; the result reads as the GeoPackage written
    whole (rows, extents, counts, spatial indexes). Whatever the ledger cannot
    vouch for is written whole: the file changed since, a new column, an
    optional layer that gets rows, a damaged ledger."""
    from pyproj import CRS
    from shapely.geometry import box

    from pipeline.io import write_geoparquet
    from pipeline.package.geopackage import write_geopackage
    from pipeline.package.gpkg import GpkgLayer, per_file, whole

    crs = CRS.from_epsg(3405)

    def commune(code: str, n: int, x0: float, **extra) -> Path:
        frame = gpd.GeoDataFrame({"commune_code": code, "landuse": ["LUC", "ONT", "CLN"] * (n // 3) + ["BHK"] * (n % 3),
                                  **extra}, geometry=[box(x0 + i, 0, x0 + i + 1, 1) for i in range(n)], crs=crs)
        return write_geoparquet(tmp_path / "parcels" / f"{code}.parquet", frame)

    files = [commune("001", 4, 0), commune("002", 5, 10), commune("003", 3, 20)]
    empty = write_geoparquet(tmp_path / "qa" / "001.parquet",
                             gpd.GeoDataFrame({"problem": pd.Series([], dtype=str)}, geometry=[], crs=crs))

    def layers(table: pd.DataFrame) -> list[GpkgLayer]:
        parcels = sorted((tmp_path / "parcels").glob("*.parquet"))
        return [GpkgLayer("qa_gaps", "QA", "", per_file([empty]), True, optional=True),
                GpkgLayer("thua_dat", "Thửa đất", "", per_file(parcels), True),
                GpkgLayer("bang", "Bảng", "", whole(table), False)]

    ledger = tmp_path / "ledger.json"
    patched, whole_file = tmp_path / "patched.gpkg", tmp_path / "whole.gpkg"
    write_geopackage(patched, layers(pd.DataFrame({"n": [1, 2]})), crs, ledger=ledger, context="x")
    later = time.time() + 10
    commune("002", 2, 30)  # fewer rows, further east
    os.utime(files[1], (later, later))
    files[2].unlink()
    commune("004", 6, -8)
    table = pd.DataFrame({"n": [3]})
    caplog.clear()
    with caplog.at_level("INFO", logger="pipeline.package.geopackage"):
        written = write_geopackage(patched, layers(table), crs, ledger=ledger, context="x")
    assert "patched" in caplog.text and "written whole" not in caplog.text
    assert [(layer.name, layer.bounds) for layer in written] == [("thua_dat", (-8.0, 0.0, 32.0, 1.0)),
                                                                  ("bang", None)]
    write_geopackage(whole_file, layers(table), crs)
    assert _gpkg_state(patched) == _gpkg_state(whole_file)
    assert _gpkg_state(patched)["counts"] == [("bang", 1), ("thua_dat", 12)]

    caplog.clear()
    with sqlite3.connect(patched) as db:  # an officer saved a style of their own from QGIS
        db.execute("INSERT INTO layer_styles (f_table_name, styleName) VALUES ('thua_dat', 'của tôi')")
    with caplog.at_level("INFO", logger="pipeline.package.geopackage"):
        write_geopackage(patched, layers(table), crs, ledger=ledger, context="x")
    assert "written whole (the GeoPackage was changed since)" in caplog.text
    assert _gpkg_state(patched) == _gpkg_state(whole_file)

    gap = gpd.GeoDataFrame({"problem": ["hở"]}, geometry=[box(0, 0, 1, 1)], crs=crs)
    for change, reason in ((lambda: commune("001", 4, 0, so_to=["1", "2", "3", "4"]), "thua_dat: other columns"),
                           (lambda: write_geoparquet(empty, gap), "qa_gaps has rows now")):
        caplog.clear()
        change()
        os.utime(tmp_path / "parcels" / "001.parquet", (later + 10, later + 10))
        with caplog.at_level("INFO", logger="pipeline.package.geopackage"):
            write_geopackage(patched, layers(table), crs, ledger=ledger, context="x")
        assert f"written whole ({reason})" in caplog.text
        write_geopackage(whole_file, layers(table), crs)
        assert _gpkg_state(patched) == _gpkg_state(whole_file)

    caplog.clear()
    ledger.write_text("{", encoding="utf-8")  # a ledger cut short
    with caplog.at_level("INFO", logger="pipeline.package.geopackage"):
        write_geopackage(patched, layers(table), crs, ledger=ledger, context="x")
    assert "could not be patched" in caplog.text and json.loads(ledger.read_text(encoding="utf-8"))["layers"]
    assert _gpkg_state(patched) == _gpkg_state(whole_file)


def test_a_geopackage_copied_ahead_is_taken_unless_it_changed_since(tmp_path, monkeypatch):
    """The GeoPackage copied in the background while the stages before the
    package compute is what the package stage patches, unless the file changed
    since the copy began; a copy no stage took is removed; none is left."""
    from pipeline.package import ahead

    monkeypatch.setattr(ahead, "CHUNK", 1000)  # several chunks
    source, target = tmp_path / "a.gpkg", tmp_path / "patched.gpkg"
    source.write_bytes(os.urandom(5 * 1000 + 7))
    ahead.copy_ahead(source)
    assert ahead.take_copy(source, target) and target.read_bytes() == source.read_bytes()

    ahead.copy_ahead(source)
    ahead._COPIES[source.resolve()].wait()
    source.write_bytes(os.urandom(2 * 1000))  # a planner saved it meanwhile
    assert not ahead.take_copy(source, target) and target.read_bytes() == source.read_bytes()

    ahead.copy_ahead(source)
    ahead.discard_copies()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg", "patched.gpkg"]

    stop = ahead.threading.Event()
    stop.set()
    assert not ahead.copy_until(source, tmp_path / "stopped.gpkg", stop)
