"""The transition matrix of each commune in whole centi-hectares, apportioned
so that every column adds up to the printed Biểu 01 figure of its code
(largest remainders): Biểu 14's column (4) is Biểu 01's, column (5) the
matrix's row totals, and every district or province figure a sum of commune
cells."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..change import GAP, OUTSIDE, comparison_code, comparison_codes
from ..reference import landuse_tree
from ..regime import FormSpec
from ..rounding import apportion
from .base import FormInputs
from .cells import spec_cells
from .change_inputs import ChangeInputs, sum_over

NOT_IN = "NGOAI"  # the matrix's row/column of area outside the other year's statistics



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


def unit_matrices(spec: FormSpec, inputs: FormInputs) -> tuple[list[str], dict[str, pd.DataFrame | None]]:
    """The matrix's codes, and each unit's matrix (the sum of its communes' apportioned cells)."""
    change = inputs.change
    assert change is not None  # the change kinds are computed only with a previous inventory
    collapse = frozenset(spec.collapse)
    cells = spec_cells(inputs.areas, spec, inputs.template.columns(spec.column_set))
    codes = matrix_codes(change.transitions, collapse, spec.row_roots)
    matrices = commune_matrices(change.transitions, current_targets(cells, collapse), codes)
    return codes, {unit.key: sum_over(matrices, unit.communes) for unit in inputs.units_of(spec)}


def overlay_note(change: ChangeInputs) -> str:
    """How the previous year's figures were found (printed under Biểu 14 and the matrix)."""
    return (f"Diện tích năm {change.previous_year} và chu chuyển: chồng xếp chính xác bản đồ kiểm kê năm "
            f"{change.previous_year} với các thửa, khoanh đất năm {change.year}, so sánh theo mã của Biểu 14 "
            "(LUA, HNK, RSX, RPH, RDD không chia mã chi tiết). Ô của ma trận được làm tròn 0,01 ha sao cho "
            "tổng mỗi cột bằng số liệu của Biểu 01.")
