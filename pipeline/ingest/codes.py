"""Land-use and commune codes as read: normalised (spaces, case, ``+ , ;``
separators, names written instead of codes), legacy codes mapped to the
Circular 27/2018 leaves, group codes refined to a leaf by a rule when allowed
(``RSX`` → ``RST``, see :mod:`.refine`), compound codes (``ONT+CLN``) split
into uses. Under Circular 08/2024 a 2018 code goes through the regime's
migration table: moves are made (BHK → HNK), codes that need field data are
kept with a default and flagged (NKH: or CNT?) or refused with the candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from ..boundaries import padded_code
from ..reference import landuse_tree, migration_table, read_table
from ..regime import active_regime
from ..vntext import strip_diacritics
from .names import codes_of_names
from .text import map_unique

#: A value written as codes: 1–4 letters or digits, joined by + , ; / & or - (no code holds a hyphen).
_CODE_FORM = re.compile(r"^[A-Za-z0-9]{1,4}(\s*[+,;/&-]\s*[A-Za-z0-9]{1,4})*$")
_CODE_SEPARATOR = re.compile(r"\s*[+,;/&-]\s*")
#: Codes typed by hand (2-3 letters each), joined as codes are or by spaces alone ('ONT CLN').
_TYPED_CODE = re.compile(r"^[A-Za-z]{2,3}((\s*[+,;/&-]\s*|\s+)[A-Za-z]{2,3})*$")
_TYPED_SEPARATOR = re.compile(r"\s*[+,;/&-]\s*|\s+")
#: What a code typed by hand may have around it: quotes, brackets, a stray full stop, comma, star or separator.
_AROUND = " \"'“”()[]{}.,;:*+&/-"
#: A gloss in brackets after the code: "ONT (đất ở)".
_GLOSS = re.compile(r"(?<=\S)\s*\([^()]*\)$")
#: Values that mean "nothing written" (compared upper case, without spaces).
BLANK_VALUES = frozenset({"", "NA", "N/A", "NULL", "NONE", "NAN", "-", "--", "?", "0", "KHONG", "KHÔNG"})


def normalise_landuse(value: object) -> tuple[str, bool]:
    """A land-use value as a code string and whether it was written as names:
    ``' odt +cln '`` → ``ODT+CLN``; ``'Đất ở tại đô thị, Đất chuyên trồng lúa
    nước'`` → ``ODT+LUC``; ``'Lúa'`` → ``LUA``; blanks and ``N/A`` → ``''``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", False
    text = str(value).strip()
    if re.sub(r"\s+", "", text.upper()) in BLANK_VALUES:
        return "", False
    code = _unmarked(text)
    if not code:  # punctuation alone: nothing written
        return "", False
    if _CODE_FORM.match(code):
        return _CODE_SEPARATOR.sub("+", code).upper(), False
    named = codes_of_names(text)
    if named:
        return named, True
    bare = strip_diacritics(code)
    if _TYPED_CODE.match(bare):  # a code typed with a Vietnamese keyboard on ('Lúa', 'ĐTL'), or with spaces
        return _TYPED_SEPARATOR.sub("+", bare).upper(), False
    return re.sub(r"\s+", "", text.upper()), False


def _unmarked(text: str) -> str:
    """A code without what a hand typed around it: '"ONT"', 'LUC.', '(CLN)',
    'ONT+' and 'ONT (đất ở)' all give the code."""
    return _GLOSS.sub("", text.strip()).strip(_AROUND)


def normalise_code(values: pd.Series) -> pd.Series:
    """Upper case, no spaces, no stray mark or gloss around: ``' gdc. '`` →
    ``'GDC'``, ``'UBQ (UBND xã)'`` → ``'UBQ'``; blanks, ``N/A`` and a .dbf's 0
    → ``''`` (computed once per distinct value)."""
    def one(value: object) -> str:
        text = re.sub(r"\s+", "", _unmarked(str(value)).upper())
        return "" if text in BLANK_VALUES else text

    return pd.Series(map_unique(values, one), index=values.index, dtype=object).fillna("")


def normalise_commune_code(values: pd.Series) -> pd.Series:
    """5-digit commune codes: ``9922`` or ``'9922'`` → ``'09922'``; others → ``''``
    (``0``, which a .dbf's numeric field holds where nothing was written, too)."""
    def one(value: object) -> str:
        text = padded_code(value, 5) or ""
        return text if re.fullmatch(r"\d{5}", text) and text.strip("0") else ""

    return pd.Series(map_unique(values, one), index=values.index, dtype=object).fillna("").astype("string")


Refinements = tuple[tuple[str, str], ...]  # (group code, the leaf it is refined to), hashable for caching


def resolve_code(code: str, accept: frozenset[str] = frozenset(),
                 refine: Refinements = ()) -> tuple[str | None, str]:
    """A leaf code of the active regime for ``code``, and what was done or why not
    (see :func:`_resolve_code`)."""
    return _resolve_code(code, accept, refine, active_regime())


def coded_under_previous_regime(codes: list[str]) -> str:
    """The codes (joined, at most five) that say a file is written with the
    previous regime's codes (BHK, RST, DSH … under Circular 08/2024), or ``""``."""
    migration = migration_table("landuse")
    tree = landuse_tree()
    older = sorted({m for code in codes for m in code.split("+")
                    if m in migration.index and m not in tree})
    return ", ".join(older[:5])


@cache
def _resolve_code(code: str, accept: frozenset[str], refine: Refinements, regime: str,
                  older: bool = False) -> tuple[str | None, str]:
    """A leaf code of ``regime`` for ``code``, and what was done or why not.

    Leaf codes pass, and so do the group codes in ``accept`` (a previous
    inventory compared at Biểu 14's level keeps RSX, RPH, LUA …); group codes
    with a rule in ``refine`` become its leaf (``RSX`` → ``RST``); legacy and
    variant codes (``LNK``, ``GTO``, ``TSL`` …) are mapped through
    ``reference/legacy_codes.csv`` when it gives one target; codes that need a
    field survey to split (``LUA`` → LUC/LUK/LUN) or have no equivalent are
    refused with the candidates named. Under a regime with a migration table
    (Circular 08/2024), a code of the regime before it is migrated
    (:func:`_migrate`), a legacy code first to its 2018 code; in a file
    written with the older codes (``older``) a code that kept its name but
    not its scope (NKH: or CNT?) is flagged for review too.
    """
    tree = landuse_tree(regime)
    migration = migration_table("landuse", regime)
    if not code:
        return None, "blank land-use code (or an empty part of a compound code)"
    if older and code in migration.index and migration.at[code, "rule"] == "review":
        return _migrate(code, migration.loc[code], accept, refine, regime)
    if code in tree and (tree.is_leaf(code) or code in accept):
        return code, ""
    rule = dict(refine).get(code)
    if rule is not None and rule in tree:
        return rule, f"{REFINED_NOTE} {code} → {rule}"
    if code in migration.index and migration.at[code, "rule"] != "same":
        return _migrate(code, migration.loc[code], accept, refine, regime)
    table = read_table("legacy_codes.csv")
    rows = table[table["legacy_code"] == code]
    single = rows[rows["mapping_kind"].isin(["same", "merge_into"])
                  & rows["target_code_tt27"].isin(landuse_tree("tt27_2018").leaves)]
    if len(single):
        row = single.iloc[0]
        target, note = row["target_code_tt27"], f"legacy code {code} ({row['regime']}) → {row['target_code_tt27']}"
        if target in tree and tree.is_leaf(target):
            return target, note
        migrated, why = _resolve_code(target, accept, refine, regime)
        return migrated, f"{note}; {why}" if migrated else why
    if len(rows) and (rows["mapping_kind"] == "split_needs_field").any():
        targets = rows.loc[rows["mapping_kind"] == "split_needs_field", "target_code_tt27"].iloc[0]
        return None, (f"code '{code}' must be split by a field survey into one of "
                      f"{targets.replace('|', ', ')}; correct the code in the source")
    name = REGIME_NAMES.get(regime, regime)
    if code in tree:
        return None, (f"'{code}' is a group code of {name}; give the detailed code "
                      f"({', '.join(tree.children(code))})")
    return None, f"land-use code '{code}' is not a {name} code nor a known legacy code"


#: How messages name a regime (English: they are logged, and translated for the officer).
REGIME_NAMES = {"tt27_2018": "Circular 27/2018", "tt08_2024": "Circular 08/2024"}


def _migrate(code: str, row: pd.Series, accept: frozenset[str], refine: Refinements,
             regime: str) -> tuple[str | None, str]:
    """A code of the regime before ``regime`` through its migration row: a move
    is made and noted; a code needing field data with a default keeps it,
    flagged for review (a refinement naming the candidates); without a default
    it is refused, naming the candidates."""
    target, candidates = row["code_2024"], row["candidates"]
    if row["rule"] == "merge":
        resolved, why = _resolve_code(target, accept, refine, regime)
        return resolved, f"code {code} of Circular 27/2018 → {target} ({REGIME_NAMES.get(regime, regime)})"
    if row["rule"] == "review" and target:
        return target, f"{REFINED_NOTE} {code} → {target}; có thể là {candidates}"
    if candidates:
        return None, (f"code '{code}' of Circular 27/2018 must be re-coded from field data into one of "
                      f"{candidates}; correct the code in the source")
    return None, f"code '{code}' of Circular 27/2018 has no equivalent under {REGIME_NAMES.get(regime, regime)}"


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


def resolve_compound(raw: str, accept: frozenset[str] = frozenset(), refine: Refinements = (),
                     older: bool = False) -> ResolvedCode:
    """``'ONT+LNK'`` → codes (ONT, CLN) with the note of the LNK mapping; the first
    refusal of any member makes the whole code refused (``older``: see :func:`_resolve_code`)."""
    return _resolve_compound(raw, accept, refine, active_regime(), older)


@cache
def _resolve_compound(raw: str, accept: frozenset[str], refine: Refinements, regime: str,
                      older: bool) -> ResolvedCode:
    members = raw.split("+")
    resolved = [_resolve_code(m, accept, refine, regime, older) for m in members]
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
