"""Source columns by meaning: which column of an export holds the land use,
the owner object, the sheet and parcel numbers, the recorded area …
(``pipeline/data/column_aliases.csv``, extensible under ``[columns]``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd


@cache
def column_aliases() -> dict[str, tuple[str, ...]]:
    """Contract field → accepted source column names (``data/column_aliases.csv``)."""
    with (resources.files("pipeline") / "data" / "column_aliases.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str)
    return {f: tuple(group["alias"]) for f, group in table.groupby("field", sort=False)}


def map_columns(frame: pd.DataFrame, extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Contract field → the source column that holds it (case-insensitive)."""
    by_lower = {str(c).lower(): c for c in frame.columns if c != "geometry"}
    found: dict[str, str] = {}
    for name, aliases in column_aliases().items():
        for alias in (*(extra or {}).get(name, ()), *aliases):
            if alias.lower() in by_lower:
                found[name] = by_lower[alias.lower()]
                break
    return found


def find_column(frame: pd.DataFrame, name: str) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    return lowered.get(name.lower())
