"""The exact overlay of the khoanh đất on new administrative units: a khoanh
inside one unit goes to it whole; a khoanh across a new boundary is cut; the
slivers where the two boundary surveys disagree go to the unit the khoanh
touches most (a piece outside every unit, or inside two) and are listed. Every
m² of every khoanh lands in exactly one new unit (pure: no I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..topology import meeting_pairs

OUTSIDE, TWICE = "ngoài mọi đơn vị mới", "thuộc hai đơn vị mới"
SLIVER_COLUMNS = ["commune_code", "khoanh_no", "landuse", "kind", "area_m2", "x", "y", "unit_code"]
CLIP_MARGIN_M = 1.0  # the units clipped this far around a khoanh before its overlay
OUTSIDE_CHECK = 1e-9  # a khoanh's share its pieces may leave over before its outside part is cut
MIN_SLIVER_M2 = 1e-4  # below 1 cm² a difference is the arithmetic's, not the surveys' (not listed)


def _pieces_of(geom, candidates: np.ndarray, units: np.ndarray) -> tuple[list[tuple[int, object]], list[tuple]]:
    """A khoanh that meets several units: its piece in each (the unit it
    shares most first, so a doubly claimed strip goes to it), the part outside
    every unit joined to that first unit; and the slivers (kind, geometry, unit).
    The units are first clipped to the khoanh's box widened by a margin: the
    same overlay without the outlines' far vertices (the whole outlines if GEOS
    cannot overlay a clipped one)."""
    x0, y0, x1, y1 = shapely.bounds(geom)
    m = CLIP_MARGIN_M
    try:
        return _cut(geom, candidates, shapely.clip_by_rect(units[candidates], x0 - m, y0 - m, x1 + m, y1 + m))
    except shapely.errors.GEOSException:
        return _cut(geom, candidates, units[candidates])


def _cut(geom, candidates: np.ndarray, local: np.ndarray) -> tuple[list[tuple[int, object]], list[tuple]]:
    """:func:`_pieces_of` with ``local`` the candidate units' outlines (the part
    outside every unit cut only when the pieces leave some of the khoanh over)."""
    inside = shapely.intersection(geom, local)
    shares = shapely.area(inside)
    rank = np.argsort(-shares, kind="stable")
    first_unit = int(candidates[rank[0]])
    pieces = [(first_unit, inside[rank[0]])] if shares[rank[0]] > 0 else []
    slivers, claimed = [], local[rank[0]]
    for k, r in enumerate(rank[1:], start=2):
        if shares[r] == 0:
            continue
        piece = shapely.difference(inside[r], claimed)
        if shares[r] - shapely.area(piece) > MIN_SLIVER_M2:
            slivers.append((TWICE, shapely.intersection(inside[r], claimed), first_unit))
        if shapely.area(piece) > 0:
            pieces.append((int(candidates[r]), piece))
        if k < len(rank):
            claimed = shapely.union(claimed, local[r])
    left = shapely.area(geom) - sum(shapely.area(p) for _, p in pieces)
    remaining = shapely.difference(geom, shapely.union_all(local)) if left > OUTSIDE_CHECK * shapely.area(geom) \
        else None
    if remaining is not None and shapely.area(remaining) > 0:
        if shapely.area(remaining) > MIN_SLIVER_M2:
            slivers.append((OUTSIDE, remaining, first_unit))
        if pieces and pieces[0][0] == first_unit:
            pieces[0] = (first_unit, shapely.union(pieces[0][1], remaining))
        else:
            pieces.insert(0, (first_unit, remaining))
    return pieces, slivers


def _scaled_uses(uses: object, share: float) -> object:
    if not isinstance(uses, str) or not uses:
        return uses
    return json.dumps({code: m2 * share for code, m2 in json.loads(uses).items()})


@dataclass(frozen=True)
class UnitIndex:
    """The new units ready for many overlays: their prepared outlines, a tree of
    them, and a tree of the boxes of their boundary segments (built once)."""

    geoms: np.ndarray
    tree: shapely.STRtree
    segments: shapely.STRtree

    @classmethod
    def of(cls, units: gpd.GeoDataFrame) -> UnitIndex:
        geoms = units.geometry.to_numpy()
        shapely.prepare(geoms)
        rings = shapely.get_parts(shapely.boundary(geoms))
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[:-1] == ring[1:]
        a, b = xy[:-1][same], xy[1:][same]
        boxes = shapely.box(np.minimum(a[:, 0], b[:, 0]), np.minimum(a[:, 1], b[:, 1]),
                            np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1]))
        return cls(geoms, shapely.STRtree(geoms), shapely.STRtree(boxes))


def _inside_units(geoms: np.ndarray, index: UnitIndex) -> np.ndarray:
    """For each khoanh whose bounding box meets no segment of any unit's
    boundary (so it lies wholly inside or outside each unit), the one unit
    holding it; −1 for the others (near a boundary, outside, or in two)."""
    near = np.zeros(len(geoms), dtype=bool)
    near[index.segments.query(geoms)[0]] = True
    clear = np.flatnonzero(~near)
    inside = np.full(len(geoms), -1)
    k, j = meeting_pairs(shapely.point_on_surface(geoms[clear]), index.tree, index.geoms, shapely.contains)
    once = np.bincount(k, minlength=len(clear)) == 1
    inside[clear[k[once[k]]]] = j[once[k]]
    return inside


def regroup(khoanh: gpd.GeoDataFrame, units: gpd.GeoDataFrame, order: tuple[str, ...] = ("khoanh_no",),
            index: UnitIndex | None = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``khoanh`` (or parcels) of any commune as pieces in ``units``
    (``unit_code``, geometry), each piece with the khoanh's attributes, its
    ``commune_code`` replaced by the unit's (the old one kept in
    ``old_commune_code``) and its share of the khoanh's ``area_m2`` and uses,
    sorted by unit, old commune and ``order``; and the slivers (``index``: the
    units' :class:`UnitIndex`, when many overlays share it)."""
    index = index or UnitIndex.of(units)
    geoms, unit_geoms, tree = khoanh.geometry.to_numpy(), index.geoms, index.tree
    inside = _inside_units(geoms, index)
    rows: list[tuple[int, int, object]] = [(int(i), int(inside[i]), geoms[i]) for i in np.flatnonzero(inside >= 0)]
    slivers: list[tuple[int, str, object, int]] = []
    rest = np.flatnonzero(inside < 0)  # near a new boundary: the exact tests
    hit_k, hit_u = meeting_pairs(geoms[rest], index.tree, index.geoms, shapely.intersects)
    hit_k = rest[hit_k]
    count = np.bincount(hit_k, minlength=len(geoms))
    single = np.flatnonzero(count == 1)
    first_hit = np.full(len(geoms), -1)
    first_hit[hit_k[::-1]] = hit_u[::-1]
    for i, covered in zip(single, shapely.covers(unit_geoms[first_hit[single]], geoms[single]), strict=True):
        rows.append((int(i), int(first_hit[i]), geoms[i]))
        if not covered:
            outside = shapely.difference(geoms[i], unit_geoms[first_hit[i]])
            if shapely.area(outside) > MIN_SLIVER_M2:
                slivers.append((int(i), OUTSIDE, outside, int(first_hit[i])))
    by_khoanh = np.argsort(hit_k, kind="stable")
    starts = np.searchsorted(hit_k[by_khoanh], np.arange(len(geoms) + 1))
    for i in np.flatnonzero(count > 1):
        pieces, found = _pieces_of(geoms[i], hit_u[by_khoanh[starts[i]:starts[i + 1]]], unit_geoms)
        rows += [(int(i), j, piece) for j, piece in pieces]
        slivers += [(int(i), kind, geom, int(j)) for kind, geom, j in found]
    lonely = rest[count[rest] == 0]
    if len(lonely):  # outside every unit: the nearest one takes it
        near_k, near_u = tree.query_nearest(geoms[lonely], all_matches=False)
        for i, j in zip(lonely[near_k], near_u, strict=True):
            rows.append((int(i), int(j), geoms[i]))
            slivers.append((int(i), OUTSIDE, geoms[i], int(j)))
    return _pieces_frame(khoanh, units, rows, order), _slivers_frame(khoanh, units, slivers)


def _pieces_frame(khoanh: gpd.GeoDataFrame, units: gpd.GeoDataFrame, rows: list[tuple[int, int, object]],
                  order: tuple[str, ...]) -> gpd.GeoDataFrame:
    index = np.array([r[0] for r in rows], dtype=int)
    pieces = np.array([r[2] for r in rows], dtype=object)
    area = shapely.area(pieces)
    total = pd.Series(area).groupby(index).transform("sum").to_numpy()
    share = np.divide(area, total, out=np.ones_like(area), where=total > 0)
    out = khoanh.iloc[index].reset_index(drop=True)
    out = out.assign(old_commune_code=out["commune_code"],
                     commune_code=units["unit_code"].to_numpy()[[r[1] for r in rows]],
                     area_m2=out["area_m2"].to_numpy() * share,
                     uses=[_scaled_uses(u, s) for u, s in zip(out["uses"], share, strict=True)]
                     if "uses" in out else None)
    out = out.set_geometry(list(pieces), crs=khoanh.crs)
    return out.sort_values(["commune_code", "old_commune_code", *order], kind="stable").reset_index(drop=True)


def _slivers_frame(khoanh: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                   slivers: list[tuple[int, str, object, int]]) -> pd.DataFrame:
    if not slivers:
        return pd.DataFrame(columns=SLIVER_COLUMNS)
    index = [s[0] for s in slivers]
    geoms = np.array([s[2] for s in slivers], dtype=object)
    centre = shapely.point_on_surface(geoms)
    return pd.DataFrame({
        "commune_code": khoanh["commune_code"].to_numpy()[index],
        "khoanh_no": khoanh["khoanh_no"].to_numpy()[index] if "khoanh_no" in khoanh else None,
        "landuse": khoanh["landuse"].to_numpy()[index], "kind": [s[1] for s in slivers],
        "area_m2": shapely.area(geoms), "x": shapely.get_x(centre), "y": shapely.get_y(centre),
        "unit_code": units["unit_code"].to_numpy()[[s[3] for s in slivers]],
    })


def crosswalk(pieces: pd.DataFrame, old_names: dict[str, str], new_names: dict[str, str]) -> pd.DataFrame:
    """Old commune × new unit: the m² of the old in the new and the shares of each."""
    table = (pieces.groupby(["old_commune_code", "commune_code"], as_index=False)["area_m2"].sum()
             .rename(columns={"commune_code": "new_unit_code"}))
    table["share_of_old"] = table["area_m2"] / table.groupby("old_commune_code")["area_m2"].transform("sum")
    table["share_of_new"] = table["area_m2"] / table.groupby("new_unit_code")["area_m2"].transform("sum")
    table.insert(1, "old_commune_name", table["old_commune_code"].map(old_names).fillna(""))
    table.insert(3, "new_unit_name", table["new_unit_code"].map(new_names).fillna(""))
    return table.sort_values(["old_commune_code", "new_unit_code"]).reset_index(drop=True)


def regroup_parcels(parcels: gpd.GeoDataFrame, khoanh: gpd.GeoDataFrame, pieces: gpd.GeoDataFrame,
                    units: gpd.GeoDataFrame, index: UnitIndex | None = None) -> gpd.GeoDataFrame:
    """The parcels as :func:`regroup` would cut them, the fast way: a parcel of a
    khoanh that went whole to one unit (and inside that khoanh's box) goes with
    it untouched; only the parcels of cut khoanh (or of no single khoanh) are
    cut exactly. Same pieces, without the overlay for most parcels."""
    counts = pieces.groupby(["old_commune_code", "khoanh_no"], sort=False)["commune_code"].agg(["size", "first"])
    whole = counts.loc[counts["size"] == 1, "first"].rename("unit").reset_index()
    box = pd.DataFrame(shapely.bounds(khoanh.geometry.to_numpy()), columns=["x0", "y0", "x1", "y1"])
    members = pd.concat([khoanh[["commune_code", "khoanh_no"]].reset_index(drop=True), box], axis=1).assign(
        parcel=khoanh["parcel_ids"].fillna("").str.split(", ").to_numpy()).explode("parcel")
    members = members[members["parcel"] != ""].drop_duplicates(["commune_code", "parcel"], keep=False)
    members = members.merge(whole, left_on=["commune_code", "khoanh_no"], right_on=["old_commune_code", "khoanh_no"])
    numbers = parcels["sheet_no"].astype(str) + "/" + parcels["parcel_no"].astype(str)
    key = pd.DataFrame({"commune_code": parcels["commune_code"].to_numpy(), "parcel": numbers.to_numpy()})
    found = key.merge(members[["commune_code", "parcel", "unit", "x0", "y0", "x1", "y1"]], how="left")
    own = shapely.bounds(parcels.geometry.to_numpy())
    with np.errstate(invalid="ignore"):
        fast = (found["unit"].notna().to_numpy() & (own[:, 0] >= found["x0"].to_numpy())
                & (own[:, 1] >= found["y0"].to_numpy()) & (own[:, 2] <= found["x1"].to_numpy())
                & (own[:, 3] <= found["y1"].to_numpy()))
    moved = parcels[fast].assign(old_commune_code=parcels.loc[fast, "commune_code"],
                                 commune_code=found.loc[fast, "unit"].to_numpy())
    cut, _ = regroup(parcels[~fast].reset_index(drop=True), units, order=("sheet_no", "parcel_no"), index=index)
    out = pd.concat([moved, cut], ignore_index=True)
    return gpd.GeoDataFrame(out.sort_values(["commune_code", "old_commune_code", "sheet_no", "parcel_no"],
                                            kind="stable").reset_index(drop=True), geometry="geometry",
                            crs=parcels.crs)
