"""Source columns by meaning: which column of an export holds the land use,
the owner object, the owner's name, the sheet and parcel numbers, the
recorded area … (``pipeline/data/column_aliases.csv``, extensible under
``[columns]``). Names match whatever their case, diacritics, spaces and
underscores (``Loại Đất`` = ``loai_dat`` = ``LOAIDAT``). When no land-use
column is named, the column whose values are mostly land-use codes or names
is taken, and the report says which and why."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from ..io import LAYER_MARK
from ..vntext import fold, strip_diacritics

#: A column is taken as the land use when at least this share of its filled values are codes or names.
LANDUSE_SHARE = 0.5

#: A file or layer named after its map sheet (as FAMIS keeps a DGN per sheet): To05, to_5, Tờ 5, T05, TBD05, BD5,
#: DC05, thua_dat_to_12, or the number alone, maybe followed by what the file holds of it (To05_ranh,
#: To05_nhan_thua, To05_point); not a commune code (06274) nor a year (2019).
_HOLDS = r"(?:[\s_.-]+(?:ranh|nhan|duong|diem|lines?|points?|texts?|labels?|annotations?)(?:[\s_.-]*thua)?)?"
_SHEET_IN_NAME = re.compile(rf"(?:.*[^a-z])?(?:to|t|tbd|tobando|bd|bddc|dc)[\s_.-]*0*([1-9]\d{{0,2}}){_HOLDS}"
                            rf"|0*([1-9]\d{{0,2}}){_HOLDS}")


@cache
def column_aliases() -> dict[str, tuple[str, ...]]:
    """Contract field → accepted source column names (``data/column_aliases.csv``)."""
    with (resources.files("pipeline") / "data" / "column_aliases.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str)
    return {f: tuple(group["alias"]) for f, group in table.groupby("field", sort=False)}


def map_columns(frame: pd.DataFrame, extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Contract field → the source column that holds it (names compared folded:
    no case, diacritics, spaces or punctuation); the config's names first."""
    by_key: dict[str, str] = {}
    for column in frame.columns:
        if column != "geometry" and isinstance(column, str):
            by_key.setdefault(fold(column), column)
    found: dict[str, str] = {}
    for name, aliases in column_aliases().items():
        for alias in (*(extra or {}).get(name, ()), *aliases):
            if fold(alias) in by_key:
                found[name] = by_key[fold(alias)]
                break
    return found


def sheet_in_name(label: str) -> str | None:
    """The map sheet number a file or a layer is named after (``To05.dgn`` → 5,
    ``xa.gpkg|layername=to_2`` → 2), or None."""
    name = label.split(LAYER_MARK, 1)[1] if LAYER_MARK in label else Path(label.split("!")[-1]).stem
    found = _SHEET_IN_NAME.fullmatch(strip_diacritics(name).lower())
    return next((number for number in found.groups() if number), None) if found else None


def find_column(frame: pd.DataFrame, name: str) -> str | None:
    """The column whose folded name is ``name``'s, if any."""
    return next((c for c in frame.columns if isinstance(c, str) and fold(c) == fold(name)), None)


def detect_landuse_column(frame: pd.DataFrame, taken: set[str],
                          is_landuse: Callable[[object], bool]) -> tuple[str | None, str]:
    """The text column whose filled values are mostly land-use codes or names
    (``is_landuse``), never a numeric one nor one already mapped; and why."""
    best, best_share = None, 0.0
    for column in frame.columns:
        if column in taken or column in ("geometry", "source_fid") or not isinstance(column, str):
            continue
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        filled = values[values.notna() & values.astype(str).str.strip().ne("")]
        if filled.empty or pd.to_numeric(filled, errors="coerce").notna().mean() > 0.5:
            continue
        counts = filled.astype(str).value_counts()
        share = float(sum(n for value, n in counts.items() if is_landuse(value)) / counts.sum())
        if share > best_share:
            best, best_share = column, share
    if best is None or best_share < LANDUSE_SHARE:
        return None, ""
    return best, f"land use taken from column '{best}': {best_share:.0%} of its values are land-use codes or names"
