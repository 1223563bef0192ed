"""The regulation's tables, shipped as package data (``pipeline/reference/``).

Everything here is read from the CSV files researched in ``shared/reference``;
nothing is retyped as code. Their ``source`` and ``confidence`` columns are
kept, so an ``inferred`` row stays marked wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

import pandas as pd

from .errors import UnknownProvinceError
from .vntext import fold

#: The land-use groups whose sum is a unit's natural area (NNP + PNN + CSD).
NATURAL_AREA_GROUPS = ("NNP", "PNN", "CSD")

_PROVINCE_PREFIXES = ("tinh", "thanhpho", "tp")


def reference_path(name: str):
    """Path (a Traversable) of a reference file shipped with the package."""
    return resources.files("pipeline") / "reference" / name


@cache
def _read_csv(name: str) -> pd.DataFrame:
    with reference_path(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def read_table(name: str) -> pd.DataFrame:
    """A copy of a reference CSV, all columns as text (empty cells as "")."""
    return _read_csv(name).copy()


# --------------------------------------------------------------------- land use


@dataclass(frozen=True)
class LandUseTree:
    """The Circular 27/2018 land-use code hierarchy, in the circular's order."""

    table: pd.DataFrame  # indexed by code, sorted by `order`

    @cached_property
    def codes(self) -> list[str]:
        return list(self.table.index)

    @cached_property
    def _parent(self) -> dict[str, str | None]:
        return {c: (p or None) for c, p in zip(self.table.index, self.table["parent_code"], strict=True)}

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {c: [] for c in [*self.codes, ""]}
        for code, parent in self._parent.items():
            children[parent or ""].append(code)
        return children

    @cached_property
    def _ancestors(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for code in self.codes:
            chain, parent = [], self._parent[code]
            while parent:
                chain.append(parent)
                parent = self._parent[parent]
            out[code] = tuple(chain)
        return out

    def parent(self, code: str) -> str | None:
        return self._parent[code]

    def children(self, code: str) -> list[str]:
        return list(self._children.get(code, []))

    def roots(self) -> list[str]:
        return self.children("")

    def is_leaf(self, code: str) -> bool:
        return not self._children.get(code)

    @cached_property
    def leaves(self) -> list[str]:
        return [c for c in self.codes if not self._children[c]]

    def ancestors(self, code: str) -> list[str]:
        """Parents of ``code`` from the nearest up to its root group."""
        return list(self._ancestors[code])

    def root(self, code: str) -> str:
        chain = self._ancestors[code]
        return chain[-1] if chain else code

    def name(self, code: str) -> str:
        return self.table.at[code, "name_vi"]

    def in_natural_area(self, code: str) -> bool:
        return self.table.at[code, "in_natural_area"] == "yes"

    def __contains__(self, code: object) -> bool:
        return code in self._parent


@cache
def landuse_tree() -> LandUseTree:
    """The land-use code tree of Circular 27/2018 (``landuse_codes.csv``)."""
    table = _read_csv("landuse_codes.csv").copy()
    table["order"] = table["order"].astype(int)
    table["level"] = table["level"].astype(int)
    return LandUseTree(table.sort_values("order").set_index("code", drop=False))


def owner_codes() -> pd.DataFrame:
    """User/manager object codes (``user_object_codes.csv``), in form order."""
    table = read_table("user_object_codes.csv")
    table["order"] = table["order"].astype(int)
    return table.sort_values("order").set_index("code", drop=False)


def landuse_colors() -> pd.DataFrame:
    """Official fill colours per land-use code (``landuse_colors.csv``)."""
    return read_table("landuse_colors.csv").set_index("code", drop=False)


# --------------------------------------------------------------------- provinces


@dataclass(frozen=True)
class Province:
    """A province of 2019 with its VN-2000 TM-3 central meridian."""

    name_vi: str
    gso_code: str
    name_en: str
    central_meridian_deg: float
    central_meridian_dms: str
    source: str
    confidence: str


@cache
def provinces() -> tuple[Province, ...]:
    """The 63 provinces of 2019 (``vn2000_meridians.csv``)."""
    return tuple(
        Province(
            name_vi=row.province_vi,
            gso_code=row.gso_code,
            name_en=row.province_en,
            central_meridian_deg=float(row.central_meridian_deg),
            central_meridian_dms=row.central_meridian_dms,
            source=row.source,
            confidence=row.confidence,
        )
        for row in _read_csv("vn2000_meridians.csv").itertuples()
    )


def _province_key(text: str) -> str:
    key = fold(text)
    for prefix in _PROVINCE_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix) + 2:
            return key[len(prefix):]
    return key


@cache
def _province_index() -> dict[str, Province]:
    index: dict[str, Province] = {}
    for province in provinces():
        index[province.gso_code] = province
        index[str(int(province.gso_code))] = province
        for name in (province.name_vi, province.name_en):
            index[_province_key(name)] = province
    return index


def province(name_or_code: str | int) -> Province:
    """Find a province by name as people type it, or by its GSO code.

    ``"Lạng Sơn"``, ``"lang son"``, ``"Tỉnh Lạng Sơn"``, ``"TP. Hồ Chí Minh"``,
    ``"Hồ Chí Minh"``, ``"20"`` and ``20`` all work.
    """
    text = str(name_or_code).strip()
    key = text if text.isdigit() else _province_key(text)
    found = _province_index().get(key) or _province_index().get(key.removesuffix("city"))
    if found is None:
        raise UnknownProvinceError(
            f"Province {text!r} is not one of Vietnam's 63 provinces of 2019. "
            "Give its name (with or without diacritics, e.g. 'Lạng Sơn' or 'lang son') "
            "or its GSO code (e.g. '20')."
        )
    return found


def central_meridian(name_or_code: str | int) -> float:
    """The province's VN-2000 TM-3 central meridian in degrees (Lạng Sơn: 107.25)."""
    return province(name_or_code).central_meridian_deg
