"""Land use written as Vietnamese names instead of codes ("Đất ở tại đô thị",
"Đất trồng cây lâu năm", "Đất ở tại đô thị, Đất chuyên trồng lúa nước"):
matched to codes through the code table's names, whatever the case and the
tone placement (``thủy`` = ``thuỷ``), also without "Đất" and without a
parenthesis; compounds written as names become ``ODT+LUC``."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pandas as pd

from ..reference import landuse_tree, read_table
from ..regime import DEFAULT_TEMPLATE, active_regime
from ..vntext import match_key

_PARENTHESIS = re.compile(r"\s*\(.*?\)\s*")
_SEPARATORS = re.compile(r"\s*[,;+]\s*")


def _keys(name: str) -> list[str]:
    """The keys a name is found under: as written, without a parenthesis, without 'đất'."""
    plain = _PARENTHESIS.sub(" ", name).strip()
    keys = [match_key(name), match_key(plain)]
    keys += [k.removeprefix("đât1 ").removeprefix("đât5 ") for k in list(keys)]
    return [k for k in dict.fromkeys(keys) if k]


def name_index() -> dict[str, str]:
    """Name key → land-use code: the code table of the active regime (and of
    Circular 27/2018, whose codes it migrates), the legacy codes that have one
    target, and the variants of ``data/landuse_name_variants.csv``."""
    return _name_index(active_regime())


@cache
def _name_index(regime: str) -> dict[str, str]:
    index: dict[str, str] = {}
    tree = landuse_tree(DEFAULT_TEMPLATE)
    with (resources.files("pipeline") / "data" / "landuse_name_variants.csv").open(encoding="utf-8") as fh:
        variants = pd.read_csv(fh, dtype=str)
    legacy = read_table("legacy_codes.csv")
    legacy = legacy[legacy["mapping_kind"].isin(["same", "merge_into"]) & legacy["target_code_tt27"].isin(tree.codes)]
    names = [*zip(legacy["legacy_name_vi"], legacy["target_code_tt27"], strict=True),
             *zip(variants["name_vi"], variants["code"], strict=True),
             *((tree.name(c), c) for c in tree.codes),
             *((landuse_tree(regime).name(c), c) for c in landuse_tree(regime).codes)]  # the tables last: they win
    for name, code in names:
        if "[" in name or "(non-standard)" in name:
            continue
        for key in _keys(name):
            index[key] = code
    return index


def code_of_name(text: str) -> str | None:
    """The code of one land-use name, or None."""
    index = name_index()
    return next((index[k] for k in _keys(text) if k in index), None)


def codes_of_names(text: str) -> str | None:
    """A name, or names joined by commas, semicolons or '+', as a (compound)
    code: the longest run of segments that is a name wins (a name may itself
    hold commas, "Đất làm nghĩa trang, nghĩa địa, …"); None unless every part
    is a name."""
    whole = code_of_name(text)
    if whole:
        return whole
    parts = [p for p in _SEPARATORS.split(text.strip()) if p]
    codes, i = [], 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            code = code_of_name(", ".join(parts[i:j]))
            if code:
                codes.append(code)
                i = j
                break
        else:
            return None
    return "+".join(codes) if codes else None
