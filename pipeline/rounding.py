"""The hectares every output prints, and how they are rounded.

Areas are summed in m²; a unit's figures are printed in whole centi-hectares
(0.01 ha). Each commune's natural area (NNP + PNN + CSD) is rounded once,
half up, and its finest cells — land-use leaf × user/manager object — are
whole centi-hectares apportioned by largest remainders so that they add up to
it exactly; every other figure (parent codes, totals, districts, the
province) is a sum of those cells. So one natural area appears in every
form, map, report and table, and a printed parent always equals the sum of
its printed children.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .reference import NATURAL_AREA_GROUPS, landuse_tree

CENTI_HA_M2 = 100.0  # one printed unit, 0.01 ha, in m²


def round_half_up(values: np.ndarray) -> np.ndarray:
    """m² → whole centi-hectares (0.01 ha), rounding halves up (as by hand)."""
    return np.floor(np.asarray(values, dtype=float) / CENTI_HA_M2 + 0.5).astype(np.int64)


def apportion(exact: np.ndarray, target: int) -> np.ndarray:
    """Whole numbers close to ``exact`` (each within 1) that add up to ``target``:
    round half up, then move the difference to the cells with the largest
    (or smallest) remainders."""
    exact = np.asarray(exact, dtype=float)
    cells = np.floor(exact + 0.5).astype(np.int64)
    diff = int(target - cells.sum())
    if diff == 0 or not len(cells):
        return cells
    remainder = exact - cells  # what each cell still lacks (+) or has too much (−)
    for _ in range(abs(diff)):
        if diff > 0:
            i = int(np.argmax(remainder))
            cells[i] += 1
            remainder[i] -= 1
        else:
            candidates = np.flatnonzero(cells > 0)  # never below zero
            i = int(candidates[np.argmin(remainder[candidates])])
            cells[i] -= 1
            remainder[i] += 1
    return cells



def commune_cells(areas: pd.DataFrame) -> pd.DataFrame:
    """``areas`` (commune_code, landuse, owner_type, area_m2) with ``cells``:
    whole centi-hectares per row that add up, in each commune, to its natural
    area rounded half up (and, apart, to its coastal-water observation area)."""
    tree = landuse_tree()
    natural = areas["landuse"].map(lambda c: tree.root(c) in NATURAL_AREA_GROUPS if c in tree else True)
    cells = np.zeros(len(areas), dtype=np.int64)
    exact = areas["area_m2"].to_numpy(dtype=float) / CENTI_HA_M2
    block = areas["commune_code"].astype(str) + np.where(natural, "", "/MVB")
    for _, index in pd.Series(range(len(areas))).groupby(block.to_numpy()).groups.items():
        rows = np.asarray(index)
        target = int(round_half_up(np.array([areas["area_m2"].to_numpy(dtype=float)[rows].sum()]))[0])
        cells[rows] = apportion(exact[rows], target)
    return areas.assign(cells=cells)


def natural_area_cells(khoanh: pd.DataFrame) -> int:
    """The natural area of the communes of a khoanh layer in centi-hectares, as
    the forms print it: each commune's coded khoanh (NNP + PNN + CSD) rounded
    once, half up, then summed."""
    tree = landuse_tree()
    coded = khoanh[khoanh["landuse"].notna()]
    natural = coded["landuse"].map({c: c in tree and tree.root(c) in NATURAL_AREA_GROUPS  # per code, not per row
                                    for c in coded["landuse"].unique()})
    by_commune = coded[natural.astype(bool)].groupby("commune_code")["area_m2"].sum()
    return int(round_half_up(by_commune.to_numpy()).sum())
