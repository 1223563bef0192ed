"""Group codes of cadastral maps refined to inventory leaves, visibly.

Cadastral maps (Circular 25/2014) write ``RSX``, ``RPH``, ``RDD`` without the
natural/planted split of Circular 27/2018, and exports carry ``HNK`` and
``LUA`` where the forms need ``BHK``/``NHK`` and ``LUC``/``LUK``/``LUN``. A
group code becomes a leaf by a rule: the built-in defaults
(``reference/refine_defaults.csv``, with their reasons), overridden by the
config's ``[refine] rules`` and by a ``[[sources]] refine``; forest groups take
their sub-codes from the forest status map where one is given (overlay by
area, a parcel split where it straddles two statuses). Every refined parcel
keeps its code as read (``landuse_raw``) and says how (``refined``);
``[refine] strict = true`` quarantines group codes instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .. import crs as vn
from ..config import Forest, Settings, SourceOverride
from ..errors import InputFileError
from ..io import holds_fields
from ..reference import landuse_tree, migrated_code, read_table
from ..regime import active_regime
from ..topology import mean_width, polygonal
from ..vntext import fold, readings
from .codes import Refinements
from .read import Source, discover, read_source
from .text import map_unique
from .values import join_flag

FOREST_MAP_NOTE = "theo bản đồ hiện trạng rừng"
SPLIT_FLAG = "chia theo bản đồ hiện trạng rừng"
DEFAULT_NOTE = "mặc định"  # a group code refined by a rule (not by the forest map)
CORRECTED = "sửa theo cán bộ"  # the land use the officer gave in the review workbook
#: A piece of a parcel smaller than this (m², or than 1 % of the parcel) is not split off,
MIN_PIECE_M2 = 5.0
#: nor one thinner than this on average (2·area/perimeter, m): the forest map's lines are not that exact.
MIN_PIECE_WIDTH_M = 5.0
#: An overlay's fragment smaller than this (m², 1 cm²) is numerical noise, dropped.
NOISE_M2 = 1e-4


@cache
def default_rules() -> dict[str, str]:
    """Group code → leaf, the built-in defaults (``reference/refine_defaults.csv``)."""
    table = read_table("refine_defaults.csv")
    return dict(zip(table["group_code"], table["target_code"], strict=True))


def refinements(settings: Settings, override: SourceOverride) -> Refinements:
    """The rules for one file: the defaults, the config's ``[refine] rules``,
    the file's ``[[sources]] refine``; none in strict mode."""
    if settings.refine.strict:
        return ()
    rules = {**default_rules(), **dict(settings.refine.rules), **dict(override.refine)}
    return tuple(sorted(rules.items()))


def forest_leaves(regime: str | None = None) -> dict[str, dict[str, str]]:
    """The forest groups, and their code for each status of the forest status
    map (``reference/forest_leaves.csv``, in Circular 27/2018's codes), as the
    regime writes it: under TT 08/2024 natural production forest is RSN (the
    "of which" row of RSX), the rest stays RSX, RPH or RDD (its migration table)."""
    return _forest_leaves(regime or active_regime())


@cache
def _forest_leaves(regime: str) -> dict[str, dict[str, str]]:
    table = read_table("forest_leaves.csv")
    out: dict[str, dict[str, str]] = {}
    for group, status, leaf in zip(table["group_code"], table["status"], table["leaf_code"], strict=True):
        out.setdefault(group, {})[status] = migrated_code(leaf, regime=regime)
    return out


def rule_label(raw_group: str, leaf: str, how: str) -> str:
    """``RSX → RST (mặc định)``: what a parcel's ``refined`` column says."""
    return f"{raw_group} → {leaf} ({how})"


# ------------------------------------------------------------------ forest map


def forest_status(values: pd.Series, forest: Forest) -> pd.Series:
    """Each polygon's status (natural / planted / not_forest), or None when its
    value is none of those (values read every way: TCVN3, VNI, cp1258 …)."""
    lookup = {fold(v): status for status in ("natural", "planted", "not_forest") for v in getattr(forest, status)}

    def one(value: object) -> str | None:
        if value is None:
            return None
        return next((lookup[fold(r)] for r in readings(str(value)) if fold(r) in lookup), None)
    return pd.Series(map_unique(values, one), index=values.index, dtype=object)


@dataclass(frozen=True)
class ForestMap:
    """The forest status map's lots in the inventory CRS: each lot's status and
    polygon (prepared), and a tree of them, so that a parcel is overlaid with
    the few lots it meets, not with a province's forest at once."""

    status: np.ndarray
    lots: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame) -> ForestMap:
        """From ``status`` and polygons (a lot a row, or a status a row)."""
        lots = np.asarray(frame.geometry.values, dtype=object)
        shapely.prepare(lots)
        return cls(frame["status"].to_numpy(dtype=object), lots, shapely.STRtree(lots))

    @property
    def empty(self) -> bool:
        return len(self.lots) == 0


@cache
def load_forest_map(forest: Forest, meridian: float) -> ForestMap:
    """The forest status map in the inventory CRS, a lot with a status a row
    (read like any input: text repaired, CRS checked; invalid lots repaired)."""
    frame, info = read_source(_status_layer(forest))  # the status read every way below, not repaired here
    if forest.status_field not in frame.columns:
        raise InputFileError(f"{forest.path}: the forest status map has no field {forest.status_field!r}; fields: "
                             f"{[c for c in frame.columns if c != 'geometry']}. Set status_field under [forest].")
    present = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    declared = CRS.from_user_input(forest.crs) if forest.crs else (
        CRS.from_user_input(present.crs) if present.crs is not None else None)
    geoms = vn.in_province_tm3(np.asarray(present.geometry.values), declared, meridian,
                               given_by_config=bool(forest.crs))
    status = forest_status(present[forest.status_field], forest)
    out = gpd.GeoDataFrame({"status": status.to_numpy()}, geometry=[polygonal(shapely.make_valid(g)) for g in geoms],
                           crs=vn.tm3_crs(meridian))
    return ForestMap.of(out[out["status"].notna() & ~out.geometry.is_empty])


def _status_layer(forest: Forest) -> Source:
    """The forest map's layer that holds the status field (a GeoPackage may hold
    several: the forest lots, the roads, the boundary), else its first."""
    layers = discover([Path(forest.path)])
    holding = [s for s in layers if holds_fields(s.gdal_path, s.layer, [forest.status_field])]
    return (holding or layers)[0]


def _clean(geom) -> shapely.Geometry:
    """The polygons of an overlay result without the parts under ``NOISE_M2``
    (what two renderings of one line leave: no place to draw, nothing to count)."""
    parts = shapely.get_parts(polygonal(geom))
    return shapely.union_all(parts[shapely.area(parts) >= NOISE_M2]) if len(parts) else shapely.Polygon()


def _pieces(geom, forest: ForestMap) -> list[tuple[str | None, object]]:
    """The parts of a parcel in each status (and outside every status: None),
    from the lots it meets; parts below ``MIN_PIECE_M2`` or 1 % of the parcel,
    or thinner than ``MIN_PIECE_WIDTH_M``, join the largest part. A parcel left
    whole keeps its geometry as read (an overlay's would add vertices where the
    map's lines cross the parcel's, and needles where they run along them)."""
    near = forest.tree.query(geom, predicate="intersects")
    whole = near[shapely.covers(forest.lots[near], geom)]
    if len(whole):  # inside one lot (the first of the map where lots overlap): no overlay
        return [(forest.status[whole.min()], geom)]
    area = geom.area
    status = forest.status[near]
    inside = shapely.intersection(geom, forest.lots[near])
    parts = [(s, shapely.union_all(inside[status == s])) for s in sorted(set(status))]
    parts = [(s, _clean(p)) for s, p in parts if not p.is_empty and p.area > NOISE_M2]
    outside = _clean(shapely.difference(geom, shapely.union_all([p for _, p in parts]))) if parts else geom
    if not outside.is_empty and outside.area > 0:
        parts.append((None, outside))
    if not parts:  # no area to place: the parcel goes on as it is
        return [(None, geom)]
    small = [p for p in parts if p[1].area < max(MIN_PIECE_M2, 0.01 * area)
             or mean_width(np.array([p[1]]))[0] < MIN_PIECE_WIDTH_M]
    big = [p for p in parts if p not in small] or [max(parts, key=lambda p: p[1].area)]
    if len(big) == 1:
        return [(big[0][0], geom)]
    largest = max(range(len(big)), key=lambda k: big[k][1].area)
    if small:
        big[largest] = (big[largest][0], shapely.union_all([big[largest][1], *[p for _, p in small]]))
    return big


def refine_by_forest_map(parcels: gpd.GeoDataFrame, forest_map: ForestMap) -> tuple[gpd.GeoDataFrame, int]:
    """Forest-group parcels refined by the forest status map: each takes the
    code of the status under it (:func:`forest_leaves`), split into one parcel
    per status where it straddles; the part under no status keeps its code (the
    default rule's leaf, or the group code where it is a finest code, as RSX
    under TT 08/2024). The officer's corrections are left as they are. Returns
    the parcels (in source order) and how many were split."""
    leaves = forest_leaves()
    raw = parcels["landuse_raw"].fillna("").astype(str).str.strip().str.upper()
    refined = parcels["refined"]
    finest = {group for group in leaves if landuse_tree().is_leaf(group)}  # RSX, RPH, RDD under TT 08/2024
    by_rule_or_as_read = (refined.notna() & refined.ne(CORRECTED)) | (
        refined.isna() & raw.isin(finest) & parcels["landuse"].eq(raw))
    forest = (raw.isin(leaves) & by_rule_or_as_read & parcels["uses"].isna()).to_numpy()
    if not forest.any() or forest_map.empty:
        return parcels, 0
    rows, split = [], 0
    for i in np.flatnonzero(forest):
        row, group = parcels.iloc[i], raw.iat[i]
        pieces = _pieces(row.geometry, forest_map)
        split += len(pieces) > 1
        for status, geom in pieces:
            piece = row.copy()
            piece["geometry"] = geom
            if status is not None and leaves[group][status] != group:
                piece["landuse"] = leaves[group][status]
                piece["refined"] = rule_label(group, piece["landuse"], FOREST_MAP_NOTE)
            elif status is not None:  # the status's code is the group's own (planted RSX under TT 08/2024)
                piece["landuse"], piece["refined"] = group, None
            if len(pieces) > 1:
                piece["flags"] = join_flag(piece["flags"], SPLIT_FLAG)
            rows.append(piece)
    refined = gpd.GeoDataFrame(rows, geometry="geometry", crs=parcels.crs)
    refined["area_m2"] = shapely.area(refined.geometry.values)
    out = pd.concat([parcels[~forest], refined], ignore_index=True)
    order = np.argsort(out["source_fid"].to_numpy(), kind="stable")
    return gpd.GeoDataFrame(out.iloc[order].reset_index(drop=True), geometry="geometry", crs=parcels.crs), split
