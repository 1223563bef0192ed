"""QA of one commune's parcels (pure): invalid geometries (repaired at ingest,
flagged there), overlaps, duplicated geometries, gaps inside the coverage and
against the commune boundary, slivers, parcels crossing the boundary, and the
reconciliation of Σ parcel area with the natural area. Every problem carries
its sheet/parcel numbers and VN-2000 X (northing) / Y (easting), sorted by size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..ingest import INVALID_FLAG
from ..messages import vi
from ..report import signed, vn_number
from ..topology import (
    Thresholds,
    crossings,
    edge_suspects,
    gaps,
    mean_width,
    overlapping_pairs,
    parcel_priority,
    representative_xy,
    resolve_overlaps,
    slivers,
)

LAYERS = ("invalid", "overlaps", "duplicates", "gaps", "slivers", "crossings")

LAYER_TITLES = {
    "invalid": "Hình học lỗi đã sửa",
    "overlaps": "Chồng đè giữa các thửa",
    "duplicates": "Thửa trùng hình",
    "gaps": "Hở giữa các thửa, hở với ranh giới xã",
    "slivers": "Thửa mảnh, hẹp",
    "crossings": "Thửa vượt ranh giới xã",
}

#: Two files of a commune whose parcels lie on each other over at least this share of the smaller
#: file's area are two exports of the same data (an older one kept beside the newer), not neighbours.
SAME_DATA_SHARE = 0.2

PROBLEM_COLUMNS = ["commune_code", "problem", "parcels", "x_northing", "y_easting", "area_m2", "detail", "geometry"]


@dataclass
class CommuneQA:
    """The QA of one commune: a layer per problem type and the reconciliation."""

    commune_code: str
    layers: dict[str, gpd.GeoDataFrame]
    parcel_count: int
    parcel_area_m2: float
    natural_area_m2: float | None = None
    natural_area_source: str = ""
    warnings: list[str] = field(default_factory=list)
    #: the overlapping parcels as row numbers (``i``, ``j``): what the khoanh stage resolves
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"i": [], "j": []}, dtype=int))
    #: the parcels GEOS's coverage check flags (topology.edge_suspects): what the khoanh stage's unions overlay
    suspected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def counts(self) -> dict[str, int]:
        return {name: len(layer) for name, layer in self.layers.items()}

    def reconciliation(self) -> dict[str, Any]:
        """Σ parcels − natural area, and what explains it."""
        overlap = float(self.layers["overlaps"]["area_m2"].sum() + self.layers["duplicates"]["area_m2"].sum())
        gap = float(self.layers["gaps"]["area_m2"].sum())
        outside = float(self.layers["crossings"]["area_m2"].sum())
        out: dict[str, Any] = {
            "parcel_area_m2": self.parcel_area_m2, "overlap_m2": overlap, "gap_m2": gap, "outside_m2": outside,
            "natural_area_m2": self.natural_area_m2, "difference_m2": None, "difference_pct": None,
            "unexplained_m2": None,
        }
        if self.natural_area_m2:
            diff = self.parcel_area_m2 - self.natural_area_m2
            out["difference_m2"] = diff
            out["difference_pct"] = 100 * diff / self.natural_area_m2
            out["unexplained_m2"] = diff - (overlap + outside - gap)
        return out


def _labels(parcels: pd.DataFrame) -> np.ndarray:
    """Every parcel's "sheet/parcel" number ("?" where one is missing)."""
    sheet = parcels["sheet_no"].astype("string").fillna("?").to_numpy().astype(str)
    number = parcels["parcel_no"].astype("string").fillna("?").to_numpy().astype(str)
    return np.char.add(np.char.add(sheet, "/"), number)


def problem_layer(code, problem: str, geometry, area, detail, crs, **columns) -> gpd.GeoDataFrame:
    """A problem layer, largest first (ties in the given order): ``code`` the
    commune's (or each row's), ``columns`` more values a row (``parcels``: its
    sheet/parcel numbers), after ``problem``; X north / Y east of a point inside."""
    geometry = np.asarray(geometry, dtype=object)
    area = np.asarray(area, dtype=float)
    order = np.argsort(-area, kind="stable")
    geometry = geometry[order]
    xy = representative_xy(geometry) if len(geometry) else np.empty((0, 2))
    rows = {name: list(np.asarray(values, dtype=object)[order]) for name, values in columns.items()}
    return gpd.GeoDataFrame({
        "commune_code": np.broadcast_to(np.asarray(code, dtype=object), area.shape)[order], "problem": problem,
        **rows, "x_northing": np.round(xy[:, 1], 2), "y_easting": np.round(xy[:, 0], 2), "area_m2": area[order],
        "detail": list(np.asarray(detail, dtype=object)[order]),
    }, geometry=gpd.array.from_shapely(geometry, crs=crs))


def qa_commune(parcels: gpd.GeoDataFrame, *, boundary=None, natural_area_m2: float | None = None,
               thresholds: Thresholds = Thresholds(), commune_code: str = "",
               shown: Callable[[str], str] = str) -> CommuneQA:
    """Find every topology problem of one commune's parcels (pure: no I/O;
    ``shown`` a source file's name as the officer reads it)."""
    code = commune_code or str(parcels["commune_code"].iloc[0])
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    crs = parcels.crs
    layers: dict[str, gpd.GeoDataFrame] = {}
    labels = _labels(parcels)

    flags = parcels["flags"].astype("string").fillna("") if "flags" in parcels else pd.Series([""] * len(parcels))
    bad = np.flatnonzero(flags.str.contains(INVALID_FLAG, regex=False).to_numpy())
    layers["invalid"] = problem_layer(code, "invalid", geoms[bad], shapely.area(geoms[bad]),
                                      [vi(f) for f in flags.to_numpy()[bad]], crs, parcels=labels[bad])

    suspected = edge_suspects(geoms)  # for the overlaps and for the union the gaps are found in
    pairs = overlapping_pairs(geoms, thresholds, suspected)
    for name, rows in (("overlaps", pairs[~pairs["duplicate"].astype(bool)]),
                       ("duplicates", pairs[pairs["duplicate"].astype(bool)])):
        i, j = rows["i"].to_numpy(int), rows["j"].to_numpy(int)
        both = np.char.add(np.char.add(labels[i], " & "), labels[j])
        detail = [f"thửa {a} và {b} chồng đè nhau" if name == "overlaps" else f"thửa {a} và {b} trùng hình"
                  for a, b in zip(labels[i], labels[j], strict=True)]
        layers[name] = problem_layer(code, name, rows["geometry"].to_numpy(), rows["area_m2"], detail, crs,
                                     parcels=both)

    # gaps are the same with overlaps resolved; resolving changes only suspected parcels (an overlap's two)
    holes = gaps(resolve_overlaps(geoms, pairs, parcel_priority(parcels)), boundary, thresholds,
                 suspected=suspected)
    where = ["khoảng hở giữa các thửa" if kind == "inside" else "phần diện tích xã không có thửa nào"
             for kind in holes["kind"]]
    layers["gaps"] = problem_layer(code, "gaps", holes["geometry"].to_numpy(), holes["area_m2"], where, crs,
                                   parcels=[""] * len(holes))

    thin = slivers(geoms, thresholds)
    width = mean_width(geoms[thin])
    layers["slivers"] = problem_layer(code, "slivers", geoms[thin], shapely.area(geoms[thin]),
                                      [f"bề rộng trung bình {vn_number(w)} m" for w in width], crs,
                                      parcels=labels[thin])

    if boundary is not None:
        cross = crossings(geoms, boundary, thresholds)
        i = cross["i"].to_numpy(int)
        layers["crossings"] = problem_layer(code, "crossings", cross["geometry"].to_numpy(), cross["area_m2"],
                                            ["phần thửa nằm ngoài ranh giới xã"] * len(i), crs, parcels=labels[i])
    else:
        layers["crossings"] = problem_layer(code, "crossings", [], [], [], crs, parcels=[])

    result = CommuneQA(code, layers, len(parcels), float(shapely.area(geoms).sum()), natural_area_m2,
                       pairs=pairs[["i", "j"]].astype(int), suspected=suspected)
    rec = result.reconciliation()
    if rec["difference_pct"] is not None and abs(rec["difference_pct"]) > thresholds.reconcile_tolerance_pct:
        result.warnings.append(
            f"Tổng diện tích các thửa chênh với diện tích tự nhiên {signed(rec['difference_m2'] / 1e4, 4)} ha "
            f"({signed(rec['difference_pct'])} %, ngưỡng cho phép {vn_number(thresholds.reconcile_tolerance_pct)} %)")
    result.warnings += overlapping_files(parcels, pairs, shown)
    return result


def overlapping_files(parcels: gpd.GeoDataFrame, pairs: pd.DataFrame, shown: Callable[[str], str] = str) -> list[str]:
    """A warning for each two files of the commune whose parcels lie on each
    other over at least SAME_DATA_SHARE of the smaller file's area."""
    if "source_file" not in parcels or not len(pairs):
        return []
    files = parcels["source_file"].astype(str).to_numpy()
    first, second = files[pairs["i"].to_numpy(int)], files[pairs["j"].to_numpy(int)]
    across = first != second
    area = pd.Series(shapely.area(parcels.geometry.values)).groupby(files).sum()
    shared = pd.Series(pairs["area_m2"].to_numpy(float)[across]).groupby(
        [np.where(first < second, first, second)[across], np.where(first < second, second, first)[across]]).sum()
    out = []
    for (a, b), m2 in shared.items():
        smaller = a if area[a] <= area[b] else b
        if m2 >= SAME_DATA_SHARE * area[smaller]:
            out.append(f"Tệp «{shown(a)}» và tệp «{shown(b)}» chồng lên nhau {vn_number(m2 / 1e4, 4)} ha "
                       f"({vn_number(100 * m2 / area[smaller], 0)} % diện tích tệp «{shown(smaller)}»): có thể là "
                       "hai bản xuất của cùng một dữ liệu. Phần chồng chỉ được tính một lần, theo thửa có số tờ, số "
                       "thửa nhỏ hơn, dù thửa đó ở bản cũ; chỉ để lại một tệp trong thư mục dữ liệu rồi chạy lại.")
    return out
