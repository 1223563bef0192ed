"""Land two communes both hold: where the coded khoanh of one commune lie on
those of another, that area is in both communes' figures, so the district's
and the province's totals hold it twice. Each commune's QA checks its parcels
against its own boundary only, so two boundaries that overlap each other (as
the sample's do, and Lạng Sơn's 2009 boundaries by 2 346 ha in all) let both
communes pass.

The pairs to look at come from the communes' outlines (``cache/outlines/``,
written with the khoanh); the overlap is measured on the khoanh that carry a
land-use code (gaps are in no figure), khoanh against khoanh (small overlays
only), less the sub-centimetre strips two renderings of one line leave
(:func:`~pipeline.topology.without_thin_parts`). Commune by commune, each
kept until its khoanh or a neighbour's change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..io import read_geoparquets, read_parquet_table, up_to_date, write_geoparquet
from ..report import markdown_table, unit_label, vn_number
from ..topology import Thresholds, without_thin_parts
from ..workdir import WorkDir
from .core import problem_layer

log = logging.getLogger(__name__)

#: The QA layer's title (in the GeoPackage, the QGIS project and the report).
LAYER_TITLE = "Khoanh đất của hai xã chồng lên nhau"
#: How many communes' khoanh the reader keeps (a commune has a handful of neighbours).
KEPT_COMMUNES = 16
#: The QA layer's ``problem``.
PROBLEM = "commune_overlaps"


def candidate_pairs(outlines: gpd.GeoDataFrame, thresholds: Thresholds) -> dict[str, list[tuple[str, object]]]:
    """For each commune, the communes after it (by code) whose outlines overlap
    its own by more than noise, with the area where they do."""
    geoms = outlines.geometry.to_numpy()
    codes = outlines["commune_code"].astype(str).to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    a, b = a[codes[a] < codes[b]], b[codes[a] < codes[b]]
    regions = shapely.intersection(geoms[a], geoms[b])
    pairs: dict[str, list[tuple[str, object]]] = {}
    for k in np.flatnonzero(shapely.area(regions) > thresholds.min_area_m2):
        pairs.setdefault(codes[a[k]], []).append((codes[b[k]], regions[k]))
    return {code: sorted(pairs[code], key=lambda pair: pair[0]) for code in sorted(pairs)}


def overlap(mine: np.ndarray, theirs: np.ndarray, region, thresholds: Thresholds) -> object | None:
    """Where khoanh ``mine`` of one commune lie on khoanh ``theirs`` of
    another within ``region``, as one (multi)polygon; None when only noise."""
    mine = mine[shapely.STRtree(mine).query(region, predicate="intersects")]
    theirs = theirs[shapely.STRtree(theirs).query(region, predicate="intersects")]
    i, j = shapely.STRtree(theirs).query(mine, predicate="intersects")
    pieces = shapely.get_parts(shapely.intersection(mine[i], theirs[j]))
    pieces = pieces[np.isin(shapely.get_type_id(pieces), [3, 6])]
    if shapely.area(pieces).sum() <= thresholds.min_area_m2:
        return None
    parts = without_thin_parts(shapely.union_all(pieces), thresholds)
    return shapely.multipolygons(parts) if len(parts) else None


def commune_overlaps(pairs: list[tuple[str, object]], code: str, coded_khoanh: Callable[[str], np.ndarray],
                     thresholds: Thresholds, crs=None) -> gpd.GeoDataFrame:
    """Commune ``code``'s overlaps with the communes of ``pairs`` (code, region):
    ``commune_code``, ``other_commune`` and the overlap; ``coded_khoanh`` gives
    a commune's khoanh with a land-use code."""
    mine = coded_khoanh(code)
    rows = [(other, shape) for other, region in pairs
            if (shape := overlap(mine, coded_khoanh(other), region, thresholds)) is not None]
    return gpd.GeoDataFrame({"commune_code": pd.Series([code] * len(rows), dtype=object),  # text when none too:
                             "other_commune": pd.Series([o for o, _ in rows], dtype=object)},  # read as one table
                            geometry=[s for _, s in rows], crs=crs)


def coded_khoanh(work: WorkDir) -> Callable[[str], np.ndarray]:
    """A reader of a commune's khoanh that carry a land-use code (geometries
    only); the last communes read are kept, as a commune is met in each of its pairs."""
    @functools.lru_cache(maxsize=KEPT_COMMUNES)
    def read(code: str) -> np.ndarray:
        table = read_parquet_table(work.khoanh(code), ["landuse", "geometry"])
        coded = table.column("landuse").is_valid().to_numpy(zero_copy_only=False)
        return shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))[coded]
    return read


def find_commune_overlaps(work: WorkDir, thresholds: Thresholds, names: dict[str, str]) -> gpd.GeoDataFrame:
    """Every pair of communes of the work folder whose coded khoanh overlap, as
    the QA layer ``qa/commune_overlaps.parquet``; communes whose khoanh and
    neighbours' khoanh are unchanged are not looked at again (their overlaps
    are kept in ``cache/commune_overlaps/``).

    Runs in this process: 0.035 s a commune, while the workers draw the sheets
    in the background; as tasks, they waited for a province sheet to end."""
    codes = [path.stem for path in work.khoanh_files()]
    pairs = candidate_pairs(work.read_outlines(codes), thresholds)
    for kept in work.commune_overlaps_dir.glob("*.parquet"):  # a commune gone, or no longer overlapping
        if kept.stem not in pairs:
            kept.unlink()
    crs = work.read_manifest().crs
    read = coded_khoanh(work)
    for code, neighbours in pairs.items():
        cache, looked_at = work.commune_overlaps_cache(code), [code, *(other for other, _ in neighbours)]
        if not up_to_date([cache], [work.manifest, *(work.khoanh(c) for c in looked_at)]):
            write_geoparquet(cache, commune_overlaps(neighbours, code, read, thresholds, crs))
    found = read_geoparquets([work.commune_overlaps_cache(code) for code in pairs], crs=crs) if pairs else None
    layer = qa_layer(found, names, crs)
    write_geoparquet(work.commune_overlaps, layer)  # with the statistics: as new as they are
    if len(layer):
        log.warning("%d pairs of communes hold the same land, %.4f ha: it is in both communes' figures, so the "
                    "district's and the province's totals are that much too large (see %s)", len(layer),
                    layer["area_m2"].sum() / 1e4, work.report("aggregate.md"))
    return layer


def qa_layer(found: gpd.GeoDataFrame | None, names: dict[str, str], crs) -> gpd.GeoDataFrame:
    """The pairs as a QA layer, its columns those of the other QA layers with
    the pair's communes in place of parcels (the officer's words), largest overlap first."""
    if found is None:
        found = gpd.GeoDataFrame({"commune_code": [], "other_commune": []}, geometry=[], crs=crs)
    first, second = found["commune_code"].astype(str).to_numpy(), found["other_commune"].astype(str).to_numpy()
    shapes = found.geometry.to_numpy()
    area = shapely.area(shapes)
    return problem_layer(
        first, PROBLEM, shapes, area,
        [f"khoanh đất của {unit_label(p, names)} và của {unit_label(q, names)} chồng lên nhau "
         f"{vn_number(m2 / 1e4, 4)} ha: tính ở cả hai xã" for p, q, m2 in zip(first, second, area, strict=True)],
        crs, other_commune=second, communes=[f"{p} & {q}" for p, q in zip(first, second, strict=True)])


def overlaps_section(layer: gpd.GeoDataFrame, names: dict[str, str]) -> list[str]:
    """The aggregate report's lines on land two communes hold (none when there is none)."""
    if not len(layer):
        return []
    table = pd.DataFrame({
        "Xã": [unit_label(c, names) for c in layer["commune_code"]],
        "Xã chồng lên": [unit_label(c, names) for c in layer["other_commune"]],
        "Diện tích chồng (ha)": [vn_number(m2 / 1e4, 4) for m2 in layer["area_m2"]],
        "X (bắc)": [vn_number(x, 0) for x in layer["x_northing"]],
        "Y (đông)": [vn_number(y, 0) for y in layer["y_easting"]],
    })
    return [
        f"## {LAYER_TITLE}",
        "",
        f"{len(layer)} cặp xã có khoanh đất chồng lên nhau, tổng {vn_number(layer['area_m2'].sum() / 1e4, 4)} ha: "
        "phần chồng được tính trong diện tích của cả hai xã, nên tổng của huyện, của tỉnh lớn hơn thực tế bấy nhiêu. "
        "Kiểm tra của từng xã không thấy được lỗi này khi ranh giới của hai xã cũng chồng lên nhau. Cán bộ xác định "
        "phần chồng thuộc xã nào (theo hồ sơ địa giới hành chính), sửa dữ liệu của xã kia rồi chạy lại. Vị trí: lớp "
        f"«QA: {LAYER_TITLE}» trong GeoPackage.",
        "",
        markdown_table(table),
        "",
    ]
