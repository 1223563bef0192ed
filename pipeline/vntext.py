"""Vietnamese text helpers: folding for name matching."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def strip_diacritics(text: str) -> str:
    """``"Lạng Sơn"`` → ``"Lang Son"`` (đ/Đ become d/D)."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def fold(text: str) -> str:
    """A key for matching names typed in any way: no diacritics, case, spaces
    or punctuation (``"TP. Hồ Chí Minh"`` → ``"tphochiminh"``)."""
    return _NON_ALNUM.sub("", strip_diacritics(text).lower())
