"""The sample's outputs equal the accepted golden snapshot (tests/golden.py)."""

from __future__ import annotations

import shapely

from tests.golden import differences, gpkg_tables, table_differences


def test_sample_outputs_equal_the_golden_snapshot(sample_run):
    problems = differences(sample_run)
    assert not problems, ("outputs differ from tests/golden/sample.json (refresh it with "
                          "'python -m tests.golden <workdir>' only when the change is meant): " + "; ".join(problems))


def _parcels_gpkg(path, geoms, owners=("An", "Bình", "Chi"), areas=None):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"owner_name": list(owners), "area_m2": areas or [g.area for g in geoms]},
                             geometry=list(geoms), crs="EPSG:9210")
    frame.to_file(path, layer="thua_dat", driver="GPKG")
    return gpkg_tables(path)["thua_dat"]


def test_the_snapshot_of_a_table_bears_last_bits_and_needles_but_not_a_millimetre(tmp_path):
    """Coordinates a few nanometres off, a needle of no width along a side, a
    vertex on a side: what another PROJ or GEOS gives, no difference; a
    vertex moved 1 mm, an owner renamed, 1 m² of one parcel's area put in another's
    (their total kept): each a difference."""
    from shapely.geometry import Polygon, box

    origin = (420_000.0, 2_410_000.0)
    squares = [box(origin[0] + 20 * k, origin[1], origin[0] + 20 * k + 20, origin[1] + 30) for k in range(3)]
    accepted = _parcels_gpkg(tmp_path / "a.gpkg", squares)
    x0, y0, x1, y1 = squares[1].bounds
    needle = Polygon([(x0, y0), (x1, y0), (x1, y1), (x1 - 7.0, y1), (x1 - 7.0 + 5.0, y1 + 2e-7), (x1 - 7.0, y1),
                      (x0, y1)])  # out and back along the top side, a fraction of a micrometre wide
    noisy = [shapely.transform(squares[0], lambda xy: xy + 3e-9), needle,
             Polygon([squares[2].exterior.coords[0], (x1 + 20, y0 + 10), *squares[2].exterior.coords[1:]])]
    assert table_differences(accepted, _parcels_gpkg(tmp_path / "b.gpkg", noisy)) == []

    moved = Polygon([(x0, y0), (x1 + 0.001, y0), (x1, y1), (x0, y1)])
    assert table_differences(accepted, _parcels_gpkg(tmp_path / "c.gpkg", [squares[0], moved, squares[2]])) == [
        "area_m2 differs", "geom.area differs", "geom.x differs", "geom.y differs"]
    assert "digest" in table_differences(accepted, _parcels_gpkg(tmp_path / "d.gpkg", squares, ("An", "Bình", "Chí")))
    transferred = [squares[0].area, squares[1].area + 1.0, squares[2].area - 1.0]
    assert table_differences(accepted, _parcels_gpkg(tmp_path / "e.gpkg", squares, areas=transferred)) == [
        "area_m2 differs"]
