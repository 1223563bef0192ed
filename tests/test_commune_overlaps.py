"""Land two communes both hold (pipeline.qa.between_communes): counted in both
communes' figures, so in a district's and the province's totals twice."""

from __future__ import annotations

import os
import shutil

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from pipeline.qa.between_communes import candidate_pairs, commune_overlaps, qa_layer
from pipeline.topology import Thresholds


def _box_array(*boxes: tuple[float, float, float, float]) -> np.ndarray:
    return np.array([shapely.box(*b) for b in boxes], dtype=object)


def test_land_two_communes_hold_is_measured_on_their_coded_khoanh_not_their_outlines():
    """00001 and 00002 both hold a 20 × 100 m strip (2 000 m²); 00002's outline
    reaches 30 m further over 00001, where it has only a gap (no coded khoanh):
    not counted. 00003 lies on 00001 by 5 mm along their line (0.5 m²,
    two renderings of one boundary): noise, not reported."""
    khoanh = {
        "00001": _box_array((0, 0, 100, 100), (100, 0, 200, 100)),
        "00002": _box_array((180, 0, 300, 100)),
        "00003": _box_array((0, 99.995, 100, 200)),
    }
    outlines = gpd.GeoDataFrame({"commune_code": ["00001", "00002", "00003"]},
                                geometry=[shapely.box(0, 0, 200, 100), shapely.box(150, 0, 300, 100),
                                          shapely.box(0, 99.995, 100, 200)])
    pairs = candidate_pairs(outlines, Thresholds())
    assert {code: [other for other, _ in found] for code, found in pairs.items()} == {"00001": ["00002", "00003"]}
    assert shapely.area(pairs["00001"][0][1]) == pytest.approx(5000)  # the outlines' overlap: gap included

    found = commune_overlaps(pairs["00001"], "00001", khoanh.__getitem__, Thresholds())
    assert found["other_commune"].tolist() == ["00002"]
    assert shapely.area(found.geometry.values[0]) == pytest.approx(2000, abs=1e-6)

    layer = qa_layer(found, {"00001": "Xã Một", "00002": "Xã Hai"}, None)
    assert list(layer.columns) == ["commune_code", "problem", "other_commune", "communes", "x_northing", "y_easting",
                                   "area_m2", "detail", "geometry"]  # as the other QA layers, communes for parcels
    row = layer.iloc[0]
    assert (row["commune_code"], row["problem"], row["other_commune"], row["communes"]) == (
        "00001", "commune_overlaps", "00002", "00001 & 00002")
    assert row["x_northing"] == round(row["x_northing"], 2)  # to the centimetre, as the other QA layers
    assert 180 < row["y_easting"] < 200 and 0 < row["x_northing"] < 100  # a point inside the strip, X north
    assert row["detail"] == ("khoanh đất của Xã Một (00001) và của Xã Hai (00002) chồng lên nhau 0,2000 ha: "
                             "tính ở cả hai xã")


def test_communes_that_only_share_their_line_hold_nothing_twice():
    khoanh = {"00001": _box_array((0, 0, 100, 100)), "00002": _box_array((100, 0, 200, 100), (0, 100, 200, 150))}
    outlines = gpd.GeoDataFrame({"commune_code": list(khoanh)},
                                geometry=[shapely.union_all(k) for k in khoanh.values()])
    pairs = candidate_pairs(outlines, Thresholds())
    assert pairs == {}
    none = qa_layer(None, {}, None)
    assert none.empty and "problem" in none.columns and none["area_m2"].dtype == float


def _boundary_overlaps(sample_dir) -> dict[tuple[str, str], float]:
    """The sample's commune boundaries' overlaps, in m² of VN-2000 TM-3 107°15'
    (EPSG:9215), worked out here from the boundary file alone."""
    bounds = gpd.read_file(sample_dir / "boundaries" / "communes_van_quan.geojson").to_crs("EPSG:9215")
    codes, geoms = bounds["gso_commune_code"].astype(str).to_numpy(), bounds.geometry.values
    out = {}
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            area = shapely.area(shapely.intersection(geoms[i], geoms[j]))
            if area > 1:
                out[tuple(sorted((codes[i], codes[j])))] = area
    return out


def test_sample_land_two_communes_hold_is_reported_and_in_the_geopackage(sample_run, sample_dir):
    """The sample's boundaries overlap (as Lạng Sơn's 2009 ones do), and its
    parcels fill each commune's boundary: both communes of each pair count the
    overlap. The aggregate report says so with the areas the boundaries give,
    and the GeoPackage draws them in the QA group."""
    expected = _boundary_overlaps(sample_dir)
    assert len(expected) == 2  # Thị trấn Văn Quan & Hòa Bình, Tân Đoàn & Yên Phúc
    layer = gpd.read_parquet(sample_run / "qa" / "commune_overlaps.parquet")
    found = dict(zip(zip(layer["commune_code"], layer["other_commune"], strict=True), layer["area_m2"], strict=True))
    assert found.keys() == expected.keys()
    for pair, m2 in expected.items():
        assert found[pair] == pytest.approx(m2, abs=1.0)

    report = (sample_run / "reports" / "aggregate.md").read_text(encoding="utf-8")
    section = report.split("## Khoanh đất của hai xã chồng lên nhau", 1)[1]
    total = sum(expected.values()) / 1e4
    assert f"2 cặp xã có khoanh đất chồng lên nhau, tổng {total:.4f}".replace(".", ",") in section
    assert "| Xã Tân Đoàn (06307) | Xã Yên Phúc (06319) | 3,1563 |" in section
    assert "| Thị trấn Văn Quan (06253) | Xã Hòa Bình (06274) | 2,7435 |" in section
    assert "Khoanh đất của 2 cặp xã chồng lên nhau" in (sample_run / "console.txt").read_text(encoding="utf-8")
    regroup = (sample_run / "units_2025" / "reports" / "regroup.md").read_text(encoding="utf-8")
    assert f"2 cặp xã cũ có khoanh đất chồng lên nhau, tổng {total:.4f}".replace(".", ",") + " ha" in regroup

    gpkg = next(sample_run.glob("*.gpkg"))
    assert "qa_commune_overlaps" in pyogrio.list_layers(gpkg)[:, 0]
    drawn = gpd.read_file(gpkg, layer="qa_commune_overlaps")
    assert drawn["area_m2"].sum() == pytest.approx(sum(expected.values()), abs=2.0)
    assert drawn.geometry.area.sum() == pytest.approx(sum(expected.values()), abs=2.0)


def test_commune_overlaps_are_looked_at_again_only_where_khoanh_changed(sample_run, tmp_path):
    """Each commune's overlaps are kept (cache/commune_overlaps/<code>.parquet):
    a commune's khoanh changed → the pairs it is in are measured again, no
    other; the QA layer deleted by hand is written again, as it was."""
    from pipeline.aggregate import run_aggregate
    from pipeline.workdir import WorkDir

    work = tmp_path / "work"
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("maps", "forms", "units_*", "*.gpkg", "*.tif"))
    kept = {p.stem: p.stat().st_mtime_ns for p in (work / "cache" / "commune_overlaps").glob("*.parquet")}
    assert sorted(kept) == ["06253", "06307"]  # each pair kept by its first commune
    layer = (work / "qa" / "commune_overlaps.parquet").read_bytes()

    (work / "qa" / "commune_overlaps.parquet").unlink()
    run_aggregate(WorkDir(work))
    assert (work / "qa" / "commune_overlaps.parquet").read_bytes() == layer
    assert {p.stem: p.stat().st_mtime_ns for p in (work / "cache" / "commune_overlaps").glob("*.parquet")} == kept

    changed = work / "khoanh" / "06319.parquet"  # Yên Phúc: the second commune of 06307's pair
    later = changed.stat().st_mtime + 60
    os.utime(changed, (later, later))
    run_aggregate(WorkDir(work))
    now = {p.stem: p.stat().st_mtime_ns for p in (work / "cache" / "commune_overlaps").glob("*.parquet")}
    assert now["06253"] == kept["06253"] and now["06307"] > kept["06307"]
    assert gpd.read_parquet(work / "qa" / "commune_overlaps.parquet")["area_m2"].tolist() == pytest.approx(
        gpd.read_parquet(sample_run / "qa" / "commune_overlaps.parquet")["area_m2"].tolist())
