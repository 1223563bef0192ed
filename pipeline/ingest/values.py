"""Numbers and numbers-as-text as exports hold them: ``1783.5``, ``"1.783,5"``,
``"1 783,5"``, and recorded areas a spreadsheet turned into dates
(``01/05/1783`` for 1 783.5 m²: the integer part became the year, the
decimal the month). Words in a number column are not numbers (NaN)."""

from __future__ import annotations

import re
from datetime import date, datetime

import numpy as np
import pandas as pd

from .text import map_unique

_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{3,4})$|^(\d{3,4})-(\d{1,2})-(\d{1,2})$")


def parse_number(value: object) -> tuple[float, bool]:
    """A number written any way, and whether it was read from a spreadsheet date."""
    if value is None:
        return np.nan, False
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value), False
    if isinstance(value, datetime | date):
        return float(f"{value.year}.{value.month}"), True
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    match = _DATE.match(text)
    if match:
        day, month, year = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
            match.group(6), match.group(5), match.group(4))
        if int(day) == 1 and 1 <= int(month) <= 12:
            return float(f"{int(year)}.{int(month)}"), True
        return np.nan, False
    if re.fullmatch(r"-?\d{1,3}(\.\d{3})+,\d+|-?\d{1,3}(\.\d{3}){2,}", text):  # 1.783,5: Vietnamese style
        text = text.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"-?\d+,\d+", text):  # 1783,5
        text = text.replace(",", ".")
    try:
        return float(text), False
    except ValueError:
        return np.nan, False


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_number` over a column, once per distinct value: the numbers
    and which of them were spreadsheet dates."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float), np.zeros(len(values), dtype=bool)
    parsed = map_unique(values, parse_number)
    numbers = np.array([p[0] if p is not None else np.nan for p in parsed], dtype=float)
    dates = np.array([bool(p[1]) if p is not None else False for p in parsed], dtype=bool)
    return numbers, dates


def text_values(values: pd.Series, *, strip: bool = True) -> np.ndarray:
    """A column as text: whole numbers without ``.0`` (``7.0`` → ``7``), missing
    as None; ``strip`` trims spaces (and a blank becomes None)."""
    def one(value: object) -> object:
        if isinstance(value, float | np.floating):
            return str(int(value)) if float(value).is_integer() else repr(float(value))
        text = str(value)
        if not strip:
            return text
        return text.strip() or None

    return map_unique(values, one)


def join_flag(flags: object, note: str) -> str:
    """Append a note to a parcel's ``flags`` text."""
    return f"{flags}; {note}" if isinstance(flags, str) and flags else note
