"""Land-use and commune codes as read: normalised (spaces, case, ``+ , ;``
separators, names written instead of codes), legacy codes mapped to the
Circular 27/2018 leaves, group codes refined to a leaf by a rule when allowed
(``RSX`` → ``RST``, see :mod:`.refine`), compound codes (``ONT+CLN``) split
into uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from ..reference import landuse_tree, read_table
from .names import codes_of_names
from .text import map_unique

#: A value written as codes: 1–4 letters or digits, joined by + , ; / or &.
_CODE_FORM = re.compile(r"^[A-Za-z0-9]{1,4}(\s*[+,;/&]\s*[A-Za-z0-9]{1,4})*$")
_CODE_SEPARATOR = re.compile(r"\s*[+,;/&]\s*")
#: Values that mean "nothing written" (compared upper case, without spaces).
BLANK_VALUES = frozenset({"", "NA", "N/A", "NULL", "NONE", "NAN", "-", "--", "?", "0", "KHONG", "KHÔNG"})


def normalise_landuse(value: object) -> tuple[str, bool]:
    """A land-use value as a code string and whether it was written as names:
    ``' odt +cln '`` → ``ODT+CLN``; ``'Đất ở tại đô thị, Đất chuyên trồng lúa
    nước'`` → ``ODT+LUC``; blanks and ``N/A`` → ``''``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", False
    text = str(value).strip()
    if re.sub(r"\s+", "", text.upper()) in BLANK_VALUES:
        return "", False
    if _CODE_FORM.match(text):
        return _CODE_SEPARATOR.sub("+", text).upper(), False
    named = codes_of_names(text)
    if named:
        return named, True
    return re.sub(r"\s+", "", text.upper()), False


def normalise_code(values: pd.Series) -> pd.Series:
    """Upper case, no spaces: ``' ont + cln '`` → ``'ONT+CLN'``; blanks → ``''``
    (computed once per distinct value)."""
    clean = map_unique(values, lambda u: re.sub(r"\s+", "", str(u).upper()))
    return pd.Series(clean, index=values.index, dtype=object).fillna("")


def normalise_commune_code(values: pd.Series) -> pd.Series:
    """5-digit commune codes: ``9922`` or ``'9922'`` → ``'09922'``; others → ``''``."""
    def one(value: object) -> str:
        text = re.sub(r"\.0+$", "", str(value).strip())
        return text.zfill(5) if re.fullmatch(r"\d{1,5}", text) else ""

    return pd.Series(map_unique(values, one), index=values.index, dtype=object).fillna("").astype("string")


Refinements = tuple[tuple[str, str], ...]  # (group code, the leaf it is refined to), hashable for caching


@cache
def resolve_code(code: str, accept: frozenset[str] = frozenset(),
                 refine: Refinements = ()) -> tuple[str | None, str]:
    """A Circular 27/2018 leaf code for ``code``, and what was done or why not.

    Leaf codes pass, and so do the group codes in ``accept`` (a previous
    inventory compared at Biểu 14's level keeps RSX, RPH, LUA …); group codes
    with a rule in ``refine`` become its leaf (``RSX`` → ``RST``); legacy and
    variant codes (``LNK``, ``GTO``, ``TSL`` …) are mapped through
    ``reference/legacy_codes.csv`` when it gives one target; codes that need a
    field survey to split (``LUA`` → LUC/LUK/LUN) or have no equivalent are
    refused with the candidates named.
    """
    tree = landuse_tree()
    if not code:
        return None, "blank land-use code (or an empty part of a compound code)"
    if code in tree and (tree.is_leaf(code) or code in accept):
        return code, ""
    rule = dict(refine).get(code)
    if rule is not None:
        return rule, f"{REFINED_NOTE} {code} → {rule}"
    table = read_table("legacy_codes.csv")
    rows = table[table["legacy_code"] == code]
    single = rows[rows["mapping_kind"].isin(["same", "merge_into"])
                  & rows["target_code_tt27"].isin(tree.leaves)]
    if len(single):
        row = single.iloc[0]
        return row["target_code_tt27"], f"legacy code {code} ({row['regime']}) → {row['target_code_tt27']}"
    if len(rows) and (rows["mapping_kind"] == "split_needs_field").any():
        targets = rows.loc[rows["mapping_kind"] == "split_needs_field", "target_code_tt27"].iloc[0]
        return None, (f"code '{code}' must be split by a field survey into one of "
                      f"{targets.replace('|', ', ')}; correct the code in the source")
    if code in tree:
        return None, (f"'{code}' is a group code of Circular 27/2018; give the detailed code "
                      f"({', '.join(tree.children(code))})")
    return None, f"land-use code '{code}' is not a Circular 27/2018 code nor a known legacy code"


#: Start of the note of a group code refined to a leaf by a rule.
REFINED_NOTE = "group code refined:"


@dataclass(frozen=True)
class ResolvedCode:
    """A raw (possibly compound) code after legacy mapping and refinement: its
    leaf codes, or why not; the notes of what was mapped and what was refined."""

    codes: tuple[str, ...]
    refusal: str = ""
    notes: tuple[str, ...] = ()

    @property
    def refined(self) -> str:
        """The refinements made (``RSX → RST``), joined, or ``""``."""
        return "; ".join(n.removeprefix(REFINED_NOTE).strip() for n in self.notes if n.startswith(REFINED_NOTE))

    @property
    def candidates(self) -> str:
        """The codes the refusal names as candidates, if any (``LUC, LUK, LUN``)."""
        found = re.search(r"one of ([A-Z0-9, |]+)|\(([A-Z, ]+)\)", self.refusal)
        return (found.group(1) or found.group(2)).strip(" ,") if found else ""


@cache
def resolve_compound(raw: str, accept: frozenset[str] = frozenset(), refine: Refinements = ()) -> ResolvedCode:
    """``'ONT+LNK'`` → codes (ONT, CLN) with the note of the LNK mapping; the first
    refusal of any member makes the whole code refused."""
    members = raw.split("+")
    resolved = [resolve_code(m, accept, refine) for m in members]
    refusal = next((why for leaf, why in resolved if leaf is None), "")
    codes = tuple(leaf or m for (leaf, _), m in zip(resolved, members, strict=True))
    return ResolvedCode(codes, refusal, tuple(why for leaf, why in resolved if leaf and why))


def split_compound(codes: list[str], area: float, known: dict[str, float], first_use_m2: float) -> dict[str, float]:
    """Split a compound parcel's area among its uses, conserving the area exactly.

    Areas found in the source (``known``) are used as given while they fit;
    otherwise the first use gets ``min(first_use_m2, area)`` and the others share
    the rest equally. The last use takes the remainder.
    """
    parts: dict[str, float] = {}
    remaining = area
    for i, code in enumerate(codes):
        left = len(codes) - i - 1
        if left == 0:
            parts[code] = remaining
            break
        value = known.get(code)
        if value is None or not np.isfinite(value) or not 0 < value < remaining:
            value = min(first_use_m2, remaining) if i == 0 else remaining / (left + 1)
        parts[code] = float(value)
        remaining -= value
    return parts
