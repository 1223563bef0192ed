"""The change forms: Biểu 14/TKĐĐ (change by purpose against the previous
inventory and the latest statistics) and the transition matrix (chu chuyển).

The matrix cells of each commune are whole centi-hectares apportioned so that
every column adds up to the printed Biểu 01 figure of its code (largest
remainders), so Biểu 14's column (4) is Biểu 01's, column (5) is the matrix's
row totals, and every district or province figure is a sum of commune cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .change import GAP, OUTSIDE, comparison_code, comparison_codes
from .errors import KiemkeError
from .reference import landuse_tree

NOT_IN = "NGOAI"  # the matrix's row/column of area outside the other year's statistics


@dataclass(frozen=True)
class ChangeInputs:
    """What the change forms are made from."""

    transitions: pd.DataFrame  # commune_code, from_code, to_code, area_m2 (stats/transitions.csv)
    previous_year: int
    year: int
    statistics: pd.DataFrame | None = None  # commune_code, code, area_ha (the latest yearly statistics)
    statistics_year: int | None = None


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


def matrix_codes(transitions: pd.DataFrame, collapse: frozenset[str], roots: tuple[str, ...]) -> list[str]:
    """The matrix's codes: every comparison code under ``roots`` in the
    circular's order, then any other code present."""
    tree = landuse_tree()
    codes = [c for c in comparison_codes(collapse) if tree.root(c) in roots]
    present = set(transitions["from_code"]) | set(transitions["to_code"])
    extra = [c for c in comparison_codes(collapse) if c in present and c not in codes]
    return codes + extra


def commune_matrices(transitions: pd.DataFrame, targets: pd.Series, codes: list[str]) -> pd.DataFrame:
    """Per commune, the matrix in centi-ha: rows (commune, from code or NOT_IN),
    columns the codes then NOT_IN. ``targets`` (commune, code) → the printed
    current area each column must add up to."""
    frame = transitions.assign(
        from_code=transitions["from_code"].replace({OUTSIDE: NOT_IN}),
        to_code=transitions["to_code"].replace({OUTSIDE: NOT_IN, GAP: NOT_IN}))
    exact = frame.groupby(["commune_code", "from_code", "to_code"])["area_m2"].sum() / 100.0
    rows, columns = [*codes, NOT_IN], [*codes, NOT_IN]
    blocks = []
    for commune, part in exact.groupby(level="commune_code"):
        wide = part.droplevel("commune_code").unstack("to_code", fill_value=0.0)
        wide = wide.reindex(index=rows, columns=columns, fill_value=0.0)
        cells = np.zeros(wide.shape, dtype=np.int64)
        for k, code in enumerate(columns):
            column = wide[code].to_numpy()
            target = int(targets.get((commune, code), np.floor(column.sum() + 0.5))) if code != NOT_IN \
                else int(np.floor(column.sum() + 0.5))
            cells[:, k] = apportion(column, target)
        blocks.append(pd.DataFrame(cells, index=pd.MultiIndex.from_product([[commune], rows],
                                                                            names=["commune_code", "from_code"]),
                                   columns=columns))
    if not blocks:
        return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=["commune_code", "from_code"]))
    return pd.concat(blocks)


def current_targets(owner_cells: pd.DataFrame, collapse: frozenset[str]) -> pd.Series:
    """(commune, comparison code) → printed current area (centi-ha): the sum of
    Biểu 01's rounded cells of the code's leaves."""
    totals = owner_cells.sum(axis=1)
    codes = [comparison_code(c, collapse) for c in totals.index.get_level_values("landuse")]
    return totals.groupby([totals.index.get_level_values("commune_code"), codes]).sum()


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
    cells = np.floor(pd.to_numeric(rows["area_ha"], errors="coerce").fillna(0).to_numpy() * 100 + 0.5)
    return pd.Series(cells.astype(np.int64)).groupby([rows["commune_code"].to_numpy(), codes]).sum()


def sum_over(cells: pd.DataFrame | pd.Series, communes: tuple[str, ...]):
    """A unit's figures: the sum of its communes' cells."""
    present = [c for c in communes if c in cells.index.get_level_values(0)]
    if not present:
        return None
    return cells.loc[present].groupby(level=1).sum()


def read_change_inputs(transitions_csv, manifest: dict[str, Any]) -> ChangeInputs | None:
    """The change forms' inputs of a work directory, or None when no previous
    inventory was compared."""
    previous = manifest.get("previous")
    if not previous or not Path(transitions_csv).exists():
        return None
    statistics = None
    if previous.get("statistics"):
        path = Path(previous["statistics"])
        try:
            statistics = pd.read_csv(path, dtype={"commune_code": str, "code": str})
        except FileNotFoundError:
            raise KiemkeError(f"{path}: the statistics file named in [previous] statistics does not exist.") from None
        missing = {"commune_code", "code", "area_ha"} - set(statistics.columns)
        if missing:
            raise KiemkeError(f"{path}: columns {sorted(missing)} are missing (needed: commune_code, code, "
                              "area_ha).")
        statistics["commune_code"] = statistics["commune_code"].str.strip().str.zfill(5)
        statistics["code"] = statistics["code"].str.strip().str.upper()
    return ChangeInputs(
        transitions=pd.read_csv(transitions_csv, dtype={"commune_code": str}),
        previous_year=int(previous["year"]), year=int(str(manifest["reference_date"])[:4]),
        statistics=statistics, statistics_year=previous.get("statistics_year"))


def change_table(spec, total_label: str, matrix: pd.DataFrame | None, statistics: pd.Series | None,
                 previous_year: int, year: int) -> pd.DataFrame:
    """Biểu 14 of one unit: (4) current, (5) previous, (6) = (4) − (5),
    (7) statistics, (8) = (4) − (7), (9) the main moves, from the unit's matrix."""
    from .forms import form_rows, subtree_sums

    rows = form_rows(spec, total_label)  # the code tree without the sub-codes of spec.collapse
    out = pd.DataFrame(rows)
    if matrix is None:
        matrix = pd.DataFrame()
    codes = [c for c in matrix.columns if c != NOT_IN]
    current = matrix[codes].sum(axis=0) if len(matrix) else pd.Series(dtype=np.int64)
    previous = matrix.drop(index=NOT_IN, errors="ignore").sum(axis=1) if len(matrix) else pd.Series(dtype=np.int64)
    out["current"] = subtree_sums(current.to_frame("v"), rows, spec.row_roots)[:, 0]
    out["previous"] = subtree_sums(previous.to_frame("v"), rows, spec.row_roots)[:, 0]
    out["change_previous"] = out["current"] - out["previous"]
    if statistics is not None:
        out["statistics"] = subtree_sums(statistics.to_frame("v"), rows, spec.row_roots)[:, 0]
        out["change_statistics"] = out["current"] - out["statistics"]
    else:
        out["statistics"] = None
        out["change_statistics"] = None
    out["note"] = [moves_note(matrix, row["code"], previous_year, year) if row["code"] in codes else ""
                   for row in rows]
    return out


def moves_note(matrix: pd.DataFrame, code: str, previous_year: int, year: int, top: int = 3) -> str:
    """"tăng từ LUA 2,51; giảm sang CLN 0,40" — where a code's change came from."""
    if not len(matrix) or code not in matrix.columns:
        return ""
    gained = matrix[code].drop(index=code, errors="ignore")
    lost = matrix.loc[code].drop(labels=code, errors="ignore") if code in matrix.index else pd.Series(dtype=int)
    parts = []
    for word, series in (("tăng từ", gained), ("giảm sang", lost)):
        series = series[series > 0].sort_values(ascending=False).head(top)
        if len(series):
            label = {NOT_IN: f"ngoài bản đồ năm {previous_year}" if word == "tăng từ"
                     else f"ngoài diện tích năm {year}"}
            parts.append(f"{word} " + ", ".join(f"{label.get(k, k)} {v / 100:,.2f}".replace(".", ",")
                                                for k, v in series.items()))
    return "; ".join(parts)


def matrix_table(matrix: pd.DataFrame | None, codes: list[str], previous_year: int, year: int) -> pd.DataFrame:
    """The transition-matrix sheet of one unit: a row per previous code (with
    its previous area and its total decrease), the area not in the previous
    statistics, the total increase and the current area per column."""
    tree = landuse_tree()
    columns = [*codes, NOT_IN]
    m = (matrix if matrix is not None else pd.DataFrame(0, index=columns, columns=columns)).reindex(
        index=columns, columns=columns, fill_value=0)
    body = m.loc[codes]
    diagonal = pd.Series(np.diag(m.loc[codes, codes].to_numpy()), index=codes)
    rows = [{"stt": str(k + 1), "name": tree.name(c), "code": c, "level": 3, "kind": "row"}
            for k, c in enumerate(codes)]
    out = pd.DataFrame(rows)
    out["previous"] = body.sum(axis=1).to_numpy()
    for c in columns:
        out[f"to_{c}"] = body[c].to_numpy()
    out["decrease"] = (body.sum(axis=1) - diagonal).to_numpy()
    column_totals = m.sum(axis=0)
    extra = [
        ({"stt": "", "name": f"Không thuộc diện tích năm {previous_year}", "code": "", "level": 2, "kind": "row"},
         m.loc[NOT_IN]),
        ({"stt": "", "name": "Cộng tăng", "code": "", "level": 1, "kind": "total"},
         column_totals - pd.Series(np.r_[diagonal.to_numpy(), m.at[NOT_IN, NOT_IN]], index=columns)),
        ({"stt": "", "name": f"Diện tích năm {year}", "code": "", "level": 1, "kind": "total"}, column_totals),
    ]
    tail = [{**meta, "previous": None, **{f"to_{c}": int(values[c]) for c in columns}, "decrease": None}
            for meta, values in extra]
    return pd.concat([out, pd.DataFrame(tail)], ignore_index=True)
