"""The bundled sample, end to end: `kiemke inventory` on the committed files."""

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from pipeline.messages import untranslated
from pipeline.report import vn_number
from pipeline.sample import SAMPLE_COMMUNES, commune_boundaries, generate_commune
from tests.helpers import ingest_messages

COMMUNES = sorted(c.code for c in SAMPLE_COMMUNES)


def test_sample_shape(sample_dir):
    assert len(SAMPLE_COMMUNES) >= 4
    forms = {c.form for c in SAMPLE_COMMUNES}
    assert forms == {"shp_prj", "shp_noprj", "shp_utm48", "geojson_wgs84", "web_export"}
    total = sum(pyogrio.read_info(p)["features"] for p in (sample_dir / "van_quan").rglob("*.*")
                if p.suffix in (".shp", ".geojson"))
    assert total >= 20_000
    size = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert size <= 15 * 2**20
    assert "MIT" in (sample_dir / "README.md").read_text(encoding="utf-8")
    assert not (sample_dir / "van_quan/khanh_khe/TD_06286.prj").exists()


def test_sample_is_deterministic_and_tiles_its_commune():
    boundaries = commune_boundaries()
    commune = next(c for c in SAMPLE_COMMUNES if c.code == "06286")
    first = generate_commune(commune, boundaries)
    second = generate_commune(commune, boundaries)
    assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))
    assert shapely.equals_exact(first.geometry.values, second.geometry.values, tolerance=0).all()
    area = first.geometry.area
    union = shapely.union_all(first.geometry.values)
    assert area.sum() == pytest.approx(union.area, rel=1e-6)  # no overlaps
    assert shapely.get_num_interior_rings(shapely.get_parts(union)).sum() == 0  # no holes
    assert {"LUC", "RST", "ONT", "ONT+CLN", "DGT", "SON", "NTD", "DGD"} <= set(first["KHLOAIDAT"])
    assert {"GDC", "UBQ"} <= set(first["DOITUONG"])


def test_inventory_writes_parcels_in_lang_son_crs(sample_run):
    files = sorted((sample_run / "parcels").glob("*.parquet"))
    assert [f.stem for f in files] == COMMUNES
    for f in files:
        parcels = gpd.read_parquet(f)
        assert parcels.crs.to_epsg() == 9215
        split = parcels["flags"].fillna("").str.contains("chia theo bản đồ hiện trạng rừng")
        assert parcels["source_file"].nunique() == 1 and parcels.loc[~split, "source_fid"].is_unique
    assert not any((sample_run / "quarantine").glob("*.parquet"))  # planted problems are QA's, not ingest's
    messages = ingest_messages(sample_run)
    assert messages and not untranslated(messages)  # every message reaches the officer in Vietnamese
    assert "Báo cáo đọc dữ liệu thửa đất" in (sample_run / "reports/ingest.md").read_text(encoding="utf-8")


def test_the_closing_message_says_in_vietnamese_where_every_output_is(sample_run):
    lines = (sample_run / "console.txt").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "Kiểm kê Lạng Sơn xong trong " in line)  # after the progress bars
    assert lines[at].endswith(" giây. Kết quả:")
    said = {line[2:15].strip(): line[16:] for line in lines[at + 1:] if line.startswith("  ")}
    outputs = {name: text.split(" → ")[-1].split(" (")[0] for name, text in said.items()}
    assert list(outputs) == ["Thửa đất", "Thửa cách ly", "Sổ rà soát", "Kiểm tra QA", "Khoanh đất", "Diện tích",
                             "Biến động", "Biểu", "Bản đồ", "GeoPackage", "Báo cáo", "Đơn vị 2025"], outputs
    assert outputs["Thửa cách ly"] == "không có"  # the sample's planted problems are QA's, not ingest's
    assert outputs["Sổ rà soát"].endswith("review") and outputs["GeoPackage"].endswith(".gpkg")
    assert all(Path(where).exists() for name, where in outputs.items() if name != "Thửa cách ly"), outputs
    # what is left to look at, counted: the parcels read, the communes to review (Yên Phúc's web export), QA's
    # problems, and the area in the statistics (overlaps counted once)
    read = json.loads((sample_run / "reports/ingest.json").read_text(encoding="utf-8"))
    assert read["features_out"] > 1000  # written with the thousands' dot
    assert said["Thửa đất"].startswith(f"{vn_number(read['features_out'], 0)} thửa, "
                                       f"{vn_number(read['area_out_m2'] / 1e4)} ha → "), said["Thửa đất"]
    assert said["Sổ rà soát"].startswith("1 xã có thửa cần rà soát → ")
    problems = sum(sum(c["counts"].values()) for c in json.loads((sample_run / "reports/qa.json").read_text()))
    assert problems > 0 and said["Kiểm tra QA"].startswith(f"{problems} vấn đề → ")
    statistics = pd.read_csv(sample_run / "stats/areas.csv")["area_m2"].sum() / 1e4
    assert said["Diện tích"].startswith(f"{vn_number(statistics)} ha trong thống kê → ")
    # and the stages' own lines before it are Vietnamese too, none written into a progress bar
    assert "Bước package xong trong " in "\n".join(lines) and not [line for line in lines if "INFO" in line]


def test_areas_equal_geometry_and_independent_reprojection(sample_run, sample_dir):
    """Σ areas.csv = Σ raw parcels reprojected independently − what the QA found
    counted twice (overlaps, duplicates) − nothing else (gaps are not parcels)."""
    areas = pd.read_csv(sample_run / "stats/areas.csv", dtype={"commune_code": str})
    assert list(areas.columns) == ["commune_code", "landuse", "owner_type", "area_m2"]
    by_commune = areas.groupby("commune_code")["area_m2"].sum()
    for code in COMMUNES:
        parcels = gpd.read_parquet(sample_run / "parcels" / f"{code}.parquet")
        twice = sum(gpd.read_parquet(sample_run / "qa" / code / f"{layer}.parquet")["area_m2"].sum()
                    for layer in ("overlaps", "duplicates"))
        assert by_commune[code] == pytest.approx(parcels.area.sum() - twice, rel=1e-6)
        # the raw file reprojected independently, with PROJ's own choice
        # (for Lạng Sơn it picks EPSG:6960 too) through geopandas
        commune = next(c for c in SAMPLE_COMMUNES if c.code == code)
        raw_path = next(p for p in (sample_dir / "van_quan" / commune.folder).iterdir()
                        if p.suffix in (".shp", ".geojson"))
        raw = gpd.read_file(raw_path)
        if raw.crs is None:
            raw = raw.set_crs("EPSG:9215")
        independent = shapely.area(shapely.make_valid(raw.to_crs("EPSG:9215").geometry.values)).sum()
        assert by_commune[code] == pytest.approx(independent - twice, rel=1e-6)


def test_summary_parents_sum_children(sample_run):
    summary = pd.read_csv(sample_run / "stats/summary.csv", dtype={"commune_code": str})
    for _, group in summary.groupby("commune_code"):
        s = group.set_index("code")["area_m2"]
        assert s["TONG"] == pytest.approx(s["NNP"] + s["PNN"] + s["CSD"])
        assert s["LUA"] == pytest.approx(s["LUC"] + s["LUK"] + s["LUN"])
        assert s["OTC"] == pytest.approx(s["ONT"] + s["ODT"])
        assert s["CLN"] > 0 and s["ONT"] + s["ODT"] > 0
