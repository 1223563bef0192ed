"""Khoanh đất: contiguous areas of one land-use code and one user/manager object.

Per commune: overlaps are resolved first (the parcel with the earlier
sheet/parcel number keeps the shared area, a duplicate keeps nothing), the
parcels of each (landuse, owner_type) are merged with a coverage union and
split into connected parts, and the parts are numbered from the north-west
to the south-east: by 500 m bands from the north, west to east within a band
(by a point inside each khoanh). Gaps become khoanh with no code, flagged for
the officer. Output: ``khoanh/<commune>.parquet``, and the commune's outline
(the union of its khoanh and gaps) in ``cache/outlines/<commune>.parquet`` for
the map sheets of a run without commune boundaries.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .io import read_geoparquet, up_to_date, write_geoparquet
from .parallel import executor
from .topology import (
    Thresholds,
    closed_outline,
    edge_suspects,
    gaps,
    overlapping_pairs,
    parcel_priority,
    representative_xy,
    resolve_overlaps,
    union_coverage,
)
from .workdir import WorkDir, in_run_regime

log = logging.getLogger(__name__)

KHOANH_COLUMNS = ["commune_code", "khoanh_no", "landuse", "owner_type", "area_m2", "parcel_count",
                  "parcel_ids", "uses", "flag", "geometry"]
BAND_M = 500.0
GAP_FLAG = "khoảng hở: không có thửa, cán bộ xác định loại đất"
#: Without a commune boundary, the outline closes the gaps narrower than this
#: between parcels (roads, canals no parcel covers): the commune line of a map
#: and the extent of the QGIS atlas run round the commune, not along each street.
OUTLINE_GAP_M = 40.0


def _scaled_uses(uses: object, factor: float) -> dict[str, float]:
    if not isinstance(uses, str):
        return {}
    return {code: area * factor for code, area in json.loads(uses).items()}


def resolved_parcels(parcels: gpd.GeoDataFrame, thresholds: Thresholds = Thresholds(),
                     pairs: pd.DataFrame | None = None) -> np.ndarray:
    """The parcels with every overlap counted once (the same resolution as QA's;
    see topology.resolve_overlaps for the rule): what the khoanh are made of.
    ``pairs``: the overlapping pairs QA found (``i``, ``j``), else found here."""
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    if pairs is None:
        pairs = overlapping_pairs(geoms, thresholds)
    return resolve_overlaps(geoms, pairs, parcel_priority(parcels))


def build_khoanh(parcels: gpd.GeoDataFrame, *, boundary=None, commune_code: str = "",
                 thresholds: Thresholds = Thresholds()) -> gpd.GeoDataFrame:
    """Khoanh đất of one commune (pure: no I/O)."""
    return khoanh_and_outline(parcels, boundary=boundary, commune_code=commune_code, thresholds=thresholds)[0]


def khoanh_and_outline(parcels: gpd.GeoDataFrame, *, boundary=None, commune_code: str = "",
                       thresholds: Thresholds = Thresholds(), pairs: pd.DataFrame | None = None,
                       suspected: np.ndarray | None = None) -> tuple[gpd.GeoDataFrame, object]:
    """Khoanh đất of one commune and the commune's outline: the union of its
    khoanh and gaps, from the union the gaps are found in; without a
    ``boundary``, with the gaps narrower than OUTLINE_GAP_M closed and every
    hole filled (pure: no I/O).
    ``pairs``, ``suspected``: the overlapping parcels and the parcels whose
    edges GEOS's coverage check flags, as QA found them, if known."""
    code = commune_code or str(parcels["commune_code"].iloc[0])
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    suspected = edge_suspects(geoms) if suspected is None else suspected
    if pairs is None:
        pairs = overlapping_pairs(geoms, thresholds, suspected)
    # resolving changes only suspected parcels (an overlap's two): the others stay a clean coverage
    resolved = resolved_parcels(parcels, thresholds, pairs)
    area = shapely.area(resolved)
    factor = np.divide(area, shapely.area(geoms), out=np.zeros(len(geoms)), where=shapely.area(geoms) > 0)
    alive = area > 0

    pieces, keys = [], []
    frame = pd.DataFrame({"landuse": parcels["landuse"].to_numpy(), "owner_type": parcels["owner_type"].to_numpy()})
    for (landuse, owner), idx in frame[alive].groupby(["landuse", "owner_type"], sort=True).groups.items():
        parts = shapely.get_parts(union_coverage(resolved[np.asarray(idx)], suspected[np.asarray(idx)]))
        parts = parts[shapely.area(parts) > 0]
        pieces.append(parts)
        keys += [(landuse, owner)] * len(parts)
    khoanh = np.concatenate(pieces) if pieces else np.array([], dtype=object)

    # which khoanh each parcel went into: each connected part of a parcel lies in
    # exactly one khoanh (a multipart parcel may feed two; its area and uses are
    # shared by the parts' areas)
    parts, owner_of = shapely.get_parts(resolved[alive], return_index=True)
    owner_of = np.flatnonzero(alive)[owner_of]
    # the tree holds the points, so GEOS prepares each khoanh polygon once
    k_idx, hit = shapely.STRtree(shapely.point_on_surface(parts)).query(khoanh, predicate="contains") \
        if len(parts) and len(khoanh) else (np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    p_idx = owner_of[hit]
    share = shapely.area(parts[hit]) / area[p_idx]

    labels = (parcels["sheet_no"].astype("string").fillna("?") + "/"
              + parcels["parcel_no"].astype("string").fillna("?")).to_numpy()
    parcel_uses = parcels["uses"].to_numpy(dtype=object)
    is_compound = np.array([isinstance(u, str) for u in parcel_uses], dtype=bool)
    order = np.argsort(k_idx, kind="stable")
    bounds = np.searchsorted(k_idx[order], np.arange(len(keys) + 1))
    # each khoanh's parcels, each once and in row order, at once (not one np.unique per khoanh)
    fed = np.unique(np.column_stack([k_idx, p_idx]), axis=0) if len(k_idx) else np.zeros((0, 2), dtype=np.int64)
    fed_bounds = np.searchsorted(fed[:, 0], np.arange(len(keys) + 1))
    rows = []
    for k, (landuse, owner) in enumerate(keys):
        members = order[bounds[k]:bounds[k + 1]]
        uses: dict[str, float] = {landuse: 0.0}
        compound = bool(is_compound[p_idx[members]].any())
        if compound:
            for m in members:
                i = p_idx[m]
                for use, value in (_scaled_uses(parcel_uses[i], factor[i]) or {landuse: area[i]}).items():
                    uses[use] = uses.get(use, 0.0) + value * share[m]
        ids = labels[fed[fed_bounds[k]:fed_bounds[k + 1], 1]]
        rows.append({
            "landuse": landuse, "owner_type": owner, "area_m2": float(khoanh[k].area),
            "parcel_count": len(ids), "parcel_ids": ", ".join(ids),
            "uses": json.dumps(uses) if compound else None, "flag": None,
        })
    # the khoanh's union is their parcels' (from the clean coverage and the few suspected parcels)
    union = union_coverage(resolved[alive], suspected[alive]) if len(khoanh) else shapely.Polygon()
    holes = gaps(khoanh, boundary, thresholds, union=union)
    outline = union_coverage(np.r_[[union], holes["geometry"].to_numpy()]) if len(holes) else union
    if boundary is None:
        outline = closed_outline(outline, OUTLINE_GAP_M)
    for a in holes["area_m2"]:
        rows.append({"landuse": None, "owner_type": None, "area_m2": float(a), "parcel_count": 0,
                     "parcel_ids": "", "uses": None, "flag": GAP_FLAG})
    geometry = np.concatenate([khoanh, holes["geometry"].to_numpy()]) if len(holes) else khoanh
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=[c for c in KHOANH_COLUMNS[2:-1]]), geometry=list(geometry),
                           crs=parcels.crs)
    out.insert(0, "commune_code", code)
    return number_khoanh(out)[KHOANH_COLUMNS], outline


def number_khoanh(khoanh: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``khoanh_no`` 1…n from the north-west: 500 m bands from the north, then west to east."""
    if khoanh.empty:
        return khoanh.assign(khoanh_no=pd.Series(dtype=int))
    xy = representative_xy(khoanh.geometry.values)
    band = np.floor((xy[:, 1].max() - xy[:, 1]) / BAND_M)
    order = np.lexsort((xy[:, 1] * -1, xy[:, 0], band))
    out = khoanh.iloc[order].reset_index(drop=True)
    out["khoanh_no"] = np.arange(1, len(out) + 1)
    return out


#: What :func:`khoanh_and_outline` reads of a commune's parcels (not the owner names and source columns).
PARCEL_COLUMNS_READ = ["commune_code", "sheet_no", "parcel_no", "landuse", "owner_type", "uses", "geometry"]


def khoanh_to_file(workdir: str, code: str, boundary_wkb: bytes | None, thresholds: Thresholds) -> None:
    """Task: build one commune's khoanh (one found not current by the stage). Runs on a worker."""
    work = WorkDir(Path(workdir))
    boundary = shapely.from_wkb(boundary_wkb) if boundary_wkb is not None else None
    parcels = read_geoparquet(work.parcels(code), columns=PARCEL_COLUMNS_READ)
    found = [work.overlap_pairs(code), work.edge_suspects(code)]  # by this run's QA, of these parcels
    pairs, suspected = None, None
    if up_to_date(found, [work.parcels(code), work.manifest]):
        pairs = pd.read_parquet(found[0])
        suspected = np.zeros(len(parcels), dtype=bool)
        suspected[pd.read_parquet(found[1])["i"].to_numpy(dtype=np.int64)] = True
    khoanh, outline = khoanh_and_outline(parcels, boundary=boundary, commune_code=code, thresholds=thresholds,
                                         pairs=pairs, suspected=suspected)
    write_geoparquet(work.khoanh(code), khoanh)
    write_geoparquet(work.commune_outline(code), gpd.GeoDataFrame({"commune_code": [code]}, geometry=[outline],
                                                                   crs=parcels.crs))


def khoanh_is_current(work: WorkDir, code: str) -> bool:
    """Whether a commune's khoanh are newer than its parcels and the run manifest."""
    return up_to_date([work.khoanh(code), work.commune_outline(code)], [work.parcels(code), work.manifest])


@in_run_regime
def run_khoanh(work: WorkDir, *, progress: bool = True, scheduler: str | None = "sync") -> dict[str, Path]:
    """Build khoanh đất for every commune of the work directory (in parallel)."""
    manifest = work.read_manifest()
    bounds = manifest.load_boundaries().set_index("commune_code")
    thresholds = manifest.qa
    codes = [path.stem for path in work.parcel_files()]
    tasks = [(str(work.root), code, shapely.to_wkb(bounds.geometry[code]) if code in bounds.index else None,
              thresholds) for code in codes if not khoanh_is_current(work, code)]  # current: no task
    with executor(scheduler, shared=work.root) as pmap:
        pmap(khoanh_to_file, tasks, "khoanh" if progress else "")
    log.info("khoanh: %d communes (%d built again) → %s", len(codes), len(tasks), work.khoanh_dir)
    return {code: work.khoanh(code) for code in codes}
