"""The numbers of the forms: each commune's cells apportioned once
(:mod:`pipeline.rounding`: they add up to its natural area rounded), every
other figure a sum, so a printed parent always equals the sum of its printed
children and a district the sum of its communes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KiemkeError
from ..reference import landuse_tree
from ..regime import FormSpec, OwnerColumn, active_regime
from ..rounding import commune_cells
from ..units import Unit

ROW_META = ("stt", "name", "code", "level", "kind")  # a form table's descriptive columns


class FormConsistencyError(KiemkeError):
    """A consistency check of the forms failed (a bug or a broken input table)."""


def value_columns(table: pd.DataFrame) -> list[str]:
    """The numeric columns of a form table, in print order."""
    return [c for c in table.columns if c not in ROW_META]


def owner_columns(table: pd.DataFrame) -> list[str]:
    """The user/manager columns (``c0``, ``c1`` …) of a by-owner table."""
    return [c for c in table.columns if c[:1] == "c" and c[1:].isdigit()]


def leaves_under(roots: tuple[str, ...]) -> set[str]:
    """The leaf codes of the tree under ``roots``."""
    tree = landuse_tree()
    return {c for c in tree.leaves if tree.root(c) in roots}


def leaf_cells(areas: pd.DataFrame, columns: list[OwnerColumn], *, form: str = "") -> pd.DataFrame:
    """Per commune × leaf code, the cell of each owner column (centi-ha): the sum
    of its commune cells (``areas["cells"]``, apportioned when absent).

    Rows: MultiIndex (commune_code, landuse); columns: the owner columns in order.
    An owner code that no column takes is an error (it would be lost).
    """
    column_of = {code: i for i, col in enumerate(columns) for code in col.codes}
    unknown = sorted(set(areas["owner_type"]) - set(column_of))
    if unknown:
        raise FormConsistencyError(
            f"{form}: user/manager codes {unknown} have no column in this form; their area would be lost. "
            "Correct the codes in the source, or add them to a column of the template."
        )
    frame = (areas if "cells" in areas else commune_cells(areas)).assign(column=areas["owner_type"].map(column_of))
    summed = frame.groupby(["commune_code", "landuse", "column"])["cells"].sum()
    wide = summed.unstack("column", fill_value=0)
    return wide.reindex(columns=range(len(columns)), fill_value=0)


def spec_cells(areas: pd.DataFrame, spec: FormSpec, columns: list[OwnerColumn]) -> pd.DataFrame:
    """The leaf cells of the codes a form shows (its rows and observation rows)."""
    scope = areas[areas["landuse"].isin(leaves_under(spec.row_roots + spec.observation_roots))]
    return leaf_cells(scope, columns, form=spec.number)


def form_rows(spec: FormSpec, total_label: str = "") -> list[dict[str, Any]]:
    """The rows of a form in the circular's order: total row, then the code tree
    (hierarchical numbers 1, 1.1, 1.1.1 … from ``landuse_codes.csv``); the
    same for every unit, so worked out once per regime (read them, do not change them)."""
    return list(_form_rows(active_regime(), spec, total_label))


@lru_cache(maxsize=256)
def _form_rows(regime: str, spec: FormSpec, total_label: str) -> tuple[dict[str, Any], ...]:
    tree = landuse_tree(regime)
    rows: list[dict[str, Any]] = []
    if spec.total_row:
        # numbered I when the observation rows follow as II (Biểu 01, 04)
        rows.append({"stt": "I" if spec.observation_roots else "", "name": total_label, "code": "", "level": 0,
                     "kind": "total"})
    for roots, kind in ((spec.row_roots, "row"), (spec.observation_roots, "observation")):
        for code in tree.codes:
            if tree.root(code) in roots and not set(tree.ancestors(code)) & set(spec.collapse):
                stt = tree.table.at[code, "form_stt"].split(" (")[0]
                rows.append({"stt": stt, "name": tree.name(code), "code": code,
                             "level": int(tree.table.at[code, "level"]), "kind": kind})
    return tuple(rows)


def table_of(rows: list[dict[str, Any]], values: dict[str, Any]) -> pd.DataFrame:
    """A form table: the rows' descriptive columns, then ``values`` (columns of
    figures, in order), made in one go (not a column at a time)."""
    return pd.concat([pd.DataFrame(rows), pd.DataFrame(values, index=range(len(rows)))], axis=1)


def subtree_sums(cells: pd.DataFrame, rows: list[dict[str, Any]], roots: tuple[str, ...]) -> np.ndarray:
    """Row values (rows × columns): each row the sum of the cells of its code and
    the codes below it (the total row: of everything under ``roots``)."""
    tree = landuse_tree()
    known = np.array([c in tree for c in cells.index], dtype=bool)
    codes = tuple(c for c, k in zip(cells.index, known, strict=True) if k)
    members = _membership(active_regime(), tuple((row["kind"], row["code"]) for row in rows), roots, codes)
    return members @ cells.to_numpy(dtype=np.int64)[known]


@lru_cache(maxsize=256)
def _membership(regime: str, rows: tuple[tuple[str, str], ...], roots: tuple[str, ...],
                codes: tuple[str, ...]) -> np.ndarray:
    """Which codes each row sums (rows × codes, 0/1) in the regime's code tree:
    a row's code and the codes below it; the total row, every code under ``roots``."""
    tree = landuse_tree(regime)
    lineage = [{code, *tree.ancestors(code)} for code in codes]
    return np.array([[tree.root(c) in roots for c in codes] if kind == "total" else
                     [code in line for line in lineage] for kind, code in rows], dtype=np.int64).reshape(len(rows),
                                                                                                     len(codes))


def unit_leaf_cells(cells: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """A unit's leaf cells: the sum of its communes' rounded cells."""
    present = cells.index.get_level_values(0).isin(unit.communes)
    if not present.any():
        return pd.DataFrame(0, index=pd.Index([], name="landuse"), columns=cells.columns)
    if len(unit.communes) == 1:  # a commune: its cells are one row per code already
        return cells[present].droplevel("commune_code")
    return cells[present].groupby(level="landuse").sum()
