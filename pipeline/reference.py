"""The regulation's tables, shipped as package data (``pipeline/reference/``).

Everything here is read from the CSV files researched in ``shared/reference``;
nothing is retyped as code. Their ``source`` and ``confidence`` columns are
kept, so an ``inferred`` row stays marked wherever it is shown. The code
tables are the active regime's (:mod:`pipeline.regime`): the template names
its files under ``[tables]``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from importlib import resources
from typing import Any

import pandas as pd

from .errors import UnknownProvinceError
from .regime import active_regime, load_template
from .vntext import fold

#: The land-use groups whose sum is a unit's natural area (NNP + PNN + CSD).
NATURAL_AREA_GROUPS = ("NNP", "PNN", "CSD")

_PROVINCE_PREFIXES = ("tinh", "thanhpho", "tp")


def reference_path(name: str):
    """Path (a Traversable) of a reference file shipped with the package."""
    return resources.files("pipeline") / "reference" / name


@cache
def _read_csv(name: str) -> pd.DataFrame:
    """A reference CSV as text. A row with more fields than the header (a comma
    left unquoted inside its ``source``, as in the researched TT 08/2024
    table) has the surplus joined back into ``source``."""
    with reference_path(name).open("r", encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    if "source" in header:
        at, tail = header.index("source"), len(header) - header.index("source") - 1
        rows = [[*r[:at], ",".join(r[at:len(r) - tail]), *r[len(r) - tail:]] if len(r) > len(header) else r
                for r in rows]
    return pd.DataFrame(rows, columns=header, dtype=str)


def regime_table(key: str, regime: str | None = None) -> str:
    """The file name of a regime's table (``landuse_codes`` …), from its template."""
    tables = load_template(regime).tables
    if key not in tables:
        raise KeyError(f"regime {regime or active_regime()!r} names no table {key!r} under [tables]")
    return tables[key]


def read_table(name: str) -> pd.DataFrame:
    """A copy of a reference CSV, all columns as text (empty cells as "")."""
    return _read_csv(name).copy()


# --------------------------------------------------------------------- land use


@dataclass(frozen=True)
class LandUseTree:
    """A regime's land-use code hierarchy, in the circular's order.

    An *of-which* code (TT 08/2024: RSN, "Trong đó: … là rừng tự nhiên") is a
    part of its parent shown as its own row: a khoanh may carry it, and its
    area counts once in its parent's and ancestors' totals, never twice (a
    parent with only of-which codes below it is still a finest code)."""

    table: pd.DataFrame  # indexed by code, sorted by `order`

    @cached_property
    def codes(self) -> list[str]:
        return list(self.table.index)

    @cached_property
    def _parent(self) -> dict[str, str | None]:
        return {c: (p or None) for c, p in zip(self.table.index, self.table["parent_code"], strict=True)}

    @cached_property
    def of_which(self) -> frozenset[str]:
        """The of-which codes (rows "Trong đó: …", not parts of a partition)."""
        return frozenset(self.table.index[self.table["of_which"] == "yes"])

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {c: [] for c in [*self.codes, ""]}
        for code, parent in self._parent.items():
            if code not in self.of_which:
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


_FORM_STT = re.compile(r"STT ([^;]+)")
_OF_WHICH = "Trong đó"


def landuse_tree(regime: str | None = None) -> LandUseTree:
    """The land-use code tree of the active regime (or the one named)."""
    return _landuse_tree(regime or active_regime())


@cache
def _landuse_tree(regime: str) -> LandUseTree:
    table = _read_csv(regime_table("landuse_codes", regime)).copy()
    table["order"] = table["order"].astype(int)
    table["level"] = table["level"].astype(int)
    if "form_stt" not in table:  # TT 08/2024: "Biểu 01/TKKK STT 1.1; …" in the note; no number for "Trong đó"
        stt = table["note"].str.extract(_FORM_STT, expand=False).fillna("")
        table["form_stt"] = stt.where(~stt.str.startswith("("), "")
    if "in_natural_area" not in table:  # no observation rows (MVB) in TT 08/2024
        table["in_natural_area"] = "yes"
    table["of_which"] = table["name_vi"].str.startswith(_OF_WHICH).map({True: "yes", False: "no"})
    return LandUseTree(table.sort_values("order").set_index("code", drop=False))


_OWNER_BLOCK_ROLES = {"NSD": "user", "NQL": "manager"}


def owner_codes(regime: str | None = None) -> pd.DataFrame:
    """The active regime's user/manager object codes, in form order; ``role``
    is ``user`` / ``manager`` for codes a parcel may carry (derived from the
    NSD/NQL blocks where the table has no such column)."""
    table = read_table(regime_table("user_object_codes", regime))
    table["order"] = table["order"].astype(int)
    if "role" not in table:
        parent = dict(zip(table["code"], table["parent_code"], strict=True))
        has_children = set(table["parent_code"])

        def role(code: str) -> str:
            root = code
            while parent.get(root):
                root = parent[root]
            kind = _OWNER_BLOCK_ROLES.get(root, "")
            return f"group-{kind}" if code in has_children else kind

        table["role"] = table["code"].map(role)
    return table.sort_values("order").set_index("code", drop=False)


def landuse_colors(regime: str | None = None) -> pd.DataFrame:
    """Fill colours per land-use code: the regime's colour tables, a later one
    overriding an earlier one (TT 08/2024: the 2018 colours plus its new codes)."""
    frames = [read_table(name) for name in regime_table("landuse_colors", regime)]
    return pd.concat(frames).drop_duplicates("code", keep="last").set_index("code", drop=False)


def migration_table(kind: str = "landuse", regime: str | None = None) -> pd.DataFrame:
    """How the codes of the previous regime become the active one's
    (``landuse`` or ``owner``): code_2018, code_2024, rule (same, merge,
    drop_level, review, field_data), candidates, confidence, source, note.
    Empty for a regime that migrates from none."""
    tables = load_template(regime).tables
    if f"{kind}_migration" not in tables:
        return pd.DataFrame(columns=["code_2018", "code_2024", "rule", "candidates", "confidence", "source", "note"])
    return read_table(tables[f"{kind}_migration"]).set_index("code_2018", drop=False)


def migrated_code(code: str, kind: str = "landuse", regime: str | None = None) -> str:
    """A code of the previous regime as ``regime`` writes it, each member of a
    compound (``ONT+CLN``) apart: its migration row's target (for a code that
    needs field data, the table's default), itself without one."""
    table = migration_table(kind, regime)
    return "+".join(table.at[m, "code_2024"] or m if m in table.index else m for m in code.split("+"))


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

    def title(self, on: date) -> str:
        """The province as a title names it on ``on``: "Tỉnh Lạng Sơn", or a
        centrally-run city's ("Thành phố Hà Nội"; "Thành phố Huế" from 2025,
        "Tỉnh Thừa Thiên Huế" before)."""
        city = _cities().get(self.gso_code)
        if city is not None and (not city.since or on >= date.fromisoformat(city.since)):
            return city.title
        return f"Tỉnh {self.name_vi}"


@cache
def _cities() -> dict[str, Any]:
    """The centrally-run cities (``pipeline/data/centrally_run_cities.csv``), by GSO code."""
    with (resources.files("pipeline") / "data" / "centrally_run_cities.csv").open("r", encoding="utf-8") as fh:
        return {row.gso_code: row for row in pd.read_csv(fh, dtype=str, keep_default_na=False).itertuples()}


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
    for code, city in _cities().items():  # a city's title, as people call it now ("Huế")
        index.setdefault(_province_key(city.title), index[code])
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
