"""Generalising khoanh for a small-scale sheet (district, province): a khoanh
smaller than the minimum mapped size joins the neighbour it shares the longest
boundary with, on the sheet only (the forms keep every m²). Roads, canals and
rivers (drawn along their line) and the khoanh that carry a point symbol
(UBND, schools, health stations …) are kept as they are, and absorb nothing.

The minimum mapped size is the rule of practice repeated in Circular 08/2024
Art. 18: 16 mm² on paper at 1:1 000–1:10 000, 9 mm² at 1:25 000–1:100 000.
No library does this merge (GRASS ``v.clean rmarea`` is the closest, outside
Python), so it is written here on shapely's STRtree.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .labels import linear_codes, point_codes

ROUNDS = 4  # a khoanh merged into a small neighbour may still be small: merge again


def minimum_mapped_m2(scale: int) -> float:
    """The smallest khoanh a sheet at 1:``scale`` shows, in m² on the ground."""
    mm2 = 16.0 if scale <= 10_000 else 9.0
    return mm2 * (scale / 1000.0) ** 2


def _targets(geoms: np.ndarray, small: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """For each khoanh, the index it joins: itself, or for a small one the
    neighbour (not ``kept``) sharing the longest boundary (itself when it has none)."""
    target = np.arange(len(geoms))
    idx = np.flatnonzero(small)
    if not len(idx):
        return target
    tree = shapely.STRtree(geoms)
    pairs = tree.query(geoms[idx], predicate="intersects")
    a, b = idx[pairs[0]], pairs[1]
    keep = (a != b) & ~kept[b]
    a, b = a[keep], b[keep]
    boundaries = shapely.boundary(geoms)
    shared = shapely.length(shapely.intersection(boundaries[a], boundaries[b]))
    found = pd.DataFrame({"a": a, "b": b, "shared": shared})
    found = found[found["shared"] > 0].sort_values(["a", "shared", "b"], ascending=[True, False, True])
    best = found.drop_duplicates("a")
    target[best["a"].to_numpy()] = best["b"].to_numpy()
    return target


def _groups(target: np.ndarray) -> np.ndarray:
    """The khoanh joined together (by the chains and pairs of ``target``): one label per group."""
    label = np.arange(len(target))
    a = np.flatnonzero(target != label)
    b = target[a]
    while True:
        low = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]
        if np.array_equal(label, before):
            return label


def generalise(khoanh: gpd.GeoDataFrame, scale: int) -> tuple[gpd.GeoDataFrame, int]:
    """``khoanh`` as a sheet at 1:``scale`` draws them, and how many were merged
    away. The merged khoanh keeps the attributes of the one it joined."""
    floor_m2 = minimum_mapped_m2(scale)
    frame = khoanh.reset_index(drop=True)
    merged = 0
    for _ in range(ROUNDS):
        geoms = frame.geometry.to_numpy()
        area = shapely.area(geoms)
        kept = frame["landuse"].isin(linear_codes() | point_codes()).to_numpy()
        label = _groups(_targets(geoms, (area < floor_m2) & ~kept, kept))
        members = pd.DataFrame({"label": label, "area": area}).sort_values("area", ascending=False, kind="stable")
        heir = members.groupby("label", sort=False).head(1)  # the largest of each group keeps its attributes
        if len(heir) == len(frame):
            break
        merged += len(frame) - len(heir)
        parts = members.groupby("label").groups
        keep = np.sort(heir.index.to_numpy())
        out = frame.iloc[keep].copy()
        out.geometry.values[:] = [shapely.union_all(geoms[np.asarray(parts[label[i]])]) if len(parts[label[i]]) > 1
                                  else geoms[i] for i in keep]
        frame = out.reset_index(drop=True)
    return frame, merged


def generalised_note(merged: int, scale: int) -> str:
    """What the sheet's generalisation did, in the officer's words (empty when nothing)."""
    if not merged:
        return ""
    mm2 = 16 if scale <= 10_000 else 9
    return f"{merged} khoanh nhỏ hơn {mm2} mm² trên giấy được gộp vào khoanh kề (chỉ trên bản đồ)"
