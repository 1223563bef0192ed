"""The bench's own helpers: what they change must be what they say."""

from __future__ import annotations

import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from benchmarks.province import change_one_commune, floor_task, stored_floor_task, stored_sum_task
from tests.helpers import X0, Y0, box, source_frame


def test_changing_one_commune_rewrites_its_linked_files_and_leaves_the_generated_ones(tmp_path):
    """The bench's subsets link the generated province's files: the commune it
    changes gets files of its own, and the generated ones stay as they were."""
    generated, subset = tmp_path / "raw", tmp_path / "raw_2"
    for code in ("06253", "06274"):
        frame = source_frame([{"MAXA": code, "KHLOAIDAT": use, "geometry": box(*xy)} for use, xy in
                              zip(["LUC", "CLN", "ONT"], [(0, 0, 100, 10), (100, 0, 140, 40), (140, 0, 150, 10)],
                                  strict=True)]).drop(columns="source_fid")
        (generated / code).mkdir(parents=True)
        pyogrio.write_dataframe(frame, generated / code / f"TD_{code}.shp", encoding="UTF-8")
        (subset / code).mkdir(parents=True)
        for part in (generated / code).iterdir():
            (subset / code / part.name).symlink_to(part)
    before = {p: p.read_bytes() for p in generated.glob("*/*")}

    assert change_one_commune(subset) == "06274"

    changed = pyogrio.read_dataframe(subset / "06274" / "TD_06274.shp")
    assert list(changed["KHLOAIDAT"]) == ["LUC", "LUC", "ONT"]  # the biggest parcel took another code of the commune
    assert shapely.area(changed.geometry.values).sum() == 100 * 10 + 40 * 40 + 10 * 10
    assert not any(p.is_symlink() for p in (subset / "06274").iterdir())
    assert all((subset / "06253" / p.name).is_symlink() for p in (generated / "06253").iterdir())
    assert {p: p.read_bytes() for p in generated.glob("*/*")} == before


def test_changing_one_commune_of_district_files_changes_the_last_files_parcel(tmp_path):
    """Files of a district each (many communes a file, no commune folders):
    the last file's biggest parcel takes another code, and its commune is
    the one returned."""
    for name, codes in (("huyen_00", ["06253", "06256"]), ("huyen_01", ["06274", "06277"])):
        rows = [{"MAXA": code, "KHLOAIDAT": use, "geometry": box(x, 0, x + width, 10)}
                for code, x0 in zip(codes, (0, 1000), strict=True)
                for use, x, width in (("LUC", x0, 10), ("CLN", x0 + 10, 10 + (code == "06277") * 50))]
        pyogrio.write_dataframe(source_frame(rows).drop(columns="source_fid"), tmp_path / f"{name}.shp",
                                encoding="UTF-8")
    first = (tmp_path / "huyen_00.dbf").read_bytes()

    assert change_one_commune(tmp_path) == "06277"

    changed = pyogrio.read_dataframe(tmp_path / "huyen_01.shp")
    assert list(changed["KHLOAIDAT"]) == ["LUC", "CLN", "LUC", "LUC"]
    assert (tmp_path / "huyen_00.dbf").read_bytes() == first


def test_the_stored_floor_keeps_each_polygons_area_and_validity_and_sums_them_by_code(tmp_path):
    """The stored floor's unit writes what it reads (areas in TM-3, validity)
    and its read-back sums by code what the floor sums in all."""
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    rows = [{"KHLOAIDAT": "LUC", "geometry": box(0, 0, 100, 10)}, {"KHLOAIDAT": "CLN", "geometry": box(0, 20, 40, 60)},
            {"KHLOAIDAT": "LUC", "geometry": box(200, 0, 210, 5)}, {"KHLOAIDAT": "ONT", "geometry": bowtie}]
    path = tmp_path / "TD_06253.shp"
    pyogrio.write_dataframe(source_frame(rows).drop(columns="source_fid"), path, encoding="UTF-8")

    part = stored_floor_task(str(path), str(tmp_path / "part.parquet"))

    stored = pq.read_table(part).to_pandas()
    assert list(stored["valid"]) == [True, True, True, False]
    assert stored["area_m2"].round(6).tolist() == [1000.0, 1600.0, 50.0, 0.0]
    sums = stored_sum_task(part)
    assert {code: round(area, 6) for code, area in sums.items()} == {"LUC": 1050.0, "CLN": 1600.0, "ONT": 0.0}
    assert sum(sums.values()) == pytest.approx(floor_task(str(path)))
