"""What the change forms are made from: ``stats/transitions.csv`` and, when
given, the latest yearly statistics (``[previous] statistics``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..boundaries import padded_codes
from ..change import comparison_code, comparison_codes
from ..errors import KiemkeError
from ..ingest.values import parse_numbers
from ..io import read_officer_csv
from ..reference import landuse_tree
from ..workdir import RunManifest


@dataclass(frozen=True)
class ChangeInputs:
    """What the change forms are made from."""

    transitions: pd.DataFrame  # commune_code, from_code, to_code, area_m2 (stats/transitions.csv)
    previous_year: int
    year: int
    statistics: pd.DataFrame | None = None  # commune_code, code, area_ha (the latest yearly statistics)
    statistics_year: int | None = None


def read_change_inputs(transitions_csv: Path, manifest: RunManifest) -> ChangeInputs | None:
    """The change forms' inputs of a work directory, or None when no previous
    inventory was compared."""
    previous = manifest.previous
    if previous is None or not Path(transitions_csv).exists():
        return None
    statistics = None
    if previous.statistics:
        path = Path(previous.statistics)
        try:
            statistics = read_officer_csv(path)
        except FileNotFoundError:
            raise KiemkeError(f"{path}: the statistics file named in [previous] statistics does not exist.") from None
        missing = {"commune_code", "code", "area_ha"} - set(statistics.columns)
        if missing:
            raise KiemkeError(f"{path}: columns {sorted(missing)} are missing (needed: commune_code, code, "
                              "area_ha).")
        statistics["commune_code"] = padded_codes(statistics["commune_code"], 5)
        statistics["code"] = statistics["code"].str.strip().str.upper()
        statistics["area_ha"] = _areas(statistics["area_ha"], path)
    return ChangeInputs(
        transitions=pd.read_csv(transitions_csv, dtype={"commune_code": str}),
        previous_year=previous.year, year=manifest.year,
        statistics=statistics, statistics_year=previous.statistics_year)


def _areas(written: pd.Series, path: Path) -> np.ndarray:
    """The statistics' areas as numbers, written any way a spreadsheet writes
    them (123.45, 123,45, 1.234,56); a blank is 0; a word stops the run."""
    areas, _ = parse_numbers(written.str.strip().replace("", "0"))
    wrong = np.flatnonzero(np.isnan(areas))
    if len(wrong):
        rows, values = ", ".join(str(k + 2) for k in wrong[:5]), ", ".join(repr(written.iat[k]) for k in wrong[:5])
        raise KiemkeError(f"{path}: area_ha is not a number on row {rows}: {values}. Write the areas in hectares "
                          "as numbers (123.45 or 123,45).")
    return areas


def statistics_cells(statistics: pd.DataFrame, collapse: frozenset[str], source: str = "statistics") -> pd.Series:
    """(commune, comparison code) → centi-ha, from a statistics table whose
    rows may be leaves, comparison codes or (ignored) their parent groups."""
    tree = landuse_tree()
    comparable = set(comparison_codes(collapse))
    unknown = sorted(set(statistics["code"]) - set(tree.codes))
    if unknown:
        raise KiemkeError(f"{source}: codes {unknown} are not Circular 27/2018 land-use codes. Correct them "
                          "(columns: commune_code, code, area_ha).")
    keep = [c in comparable or any(a in comparable for a in tree.ancestors(c)) for c in statistics["code"]]
    rows = statistics[keep]
    codes = [comparison_code(c, collapse) for c in rows["code"]]
    cells = np.floor(rows["area_ha"].to_numpy(dtype=float) * 100 + 0.5)
    return pd.Series(cells.astype(np.int64)).groupby([rows["commune_code"].to_numpy(), codes]).sum()


def sum_over(cells: pd.DataFrame | pd.Series, communes: tuple[str, ...]):
    """A unit's figures: the sum of its communes' cells."""
    present = [c for c in communes if c in cells.index.get_level_values(0)]
    if not present:
        return None
    return cells.loc[present].groupby(level=1).sum()
