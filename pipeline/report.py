"""Small helpers for the readable (Markdown) reports."""

from __future__ import annotations

import math

import pandas as pd

from .units import nameless_commune


def vn_number(value: float, decimals: int = 2) -> str:
    """A number written the Vietnamese way: 1.234,56 (dot for thousands, comma for decimals)."""
    text = f"{(0.0 if round(value, decimals) == 0 else value):,.{decimals}f}"  # no "-0,00"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def signed(value: float, decimals: int = 2) -> str:
    """``vn_number`` with its sign: +1.234,56 or −0,10."""
    text = vn_number(abs(value), decimals)
    return ("-" if value < 0 and text.strip("0,.") else "+") + text


def unit_label(code: str, names: dict[str, str]) -> str:
    """"Xã Hòa Bình (06274)", or "Xã 06274" when the boundary file has no name
    (:func:`~pipeline.units.nameless_commune`)."""
    name = names.get(code, "")
    return f"{name} ({code})" if name else nameless_commune(code)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else vn_number(value)  # no figure: an empty cell, as in the HTML tables
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; floats with 2 decimals, written the Vietnamese way."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                          for c in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
