"""Administrative units a form or a map sheet is made for: communes, their
districts and the province, from the boundary attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .workdir import RunManifest

#: The district of the communes the boundary file does not know: their areas
#: still reach the province's forms, but it is no unit to draw a map of.
UNKNOWN_DISTRICT = "000"
#: How the code of a commune named after its file starts (nothing said its commune code).
UNNAMED_PREFIX = "unknown_"
#: A unit's level as the reports say it ("cấp xã").
LEVEL_VI = {"xa": "xã", "huyen": "huyện", "tinh": "tỉnh"}


@dataclass(frozen=True)
class Unit:
    """An administrative unit a form is made for."""

    level: str  # "xa" | "huyen" | "tinh"
    code: str
    name: str
    communes: tuple[str, ...]
    commune_name: str = ""  # without "Xã " ("Văn An"; a ward or town keeps its kind: "Thị trấn Văn Quan")
    district_name: str = ""  # without "Huyện " ("Văn Quan"; a city or town keeps its kind: "Thành phố Lạng Sơn")
    province_name: str = ""
    children: tuple[Unit, ...] = field(default=(), compare=False)
    parent_code: str = ""
    province_title: str = ""  # "Tỉnh Lạng Sơn", "Thành phố Hà Nội"; empty: "Tỉnh " + province_name

    @property
    def province_heading(self) -> str:
        """The province as the unit's sheet names it ("Tỉnh Lạng Sơn", "Thành phố Hà Nội")."""
        return self.province_title or f"Tỉnh {self.province_name}"

    @property
    def key(self) -> str:
        return f"{self.level}/{self.code}"

    @property
    def unknown_district(self) -> bool:
        """The district of the communes without boundary: forms, but no map sheet or GeoTIFF."""
        return self.level == "huyen" and self.code == UNKNOWN_DISTRICT

    @property
    def without_districts(self) -> bool:
        """A unit of a two-level administration (since 1 July 2025): a commune
        with no district, a province whose sub-units are its communes."""
        if self.level == "xa":
            return not self.district_name
        return self.level == "tinh" and bool(self.children) and self.children[0].level == "xa"

    def variant(self, table: Mapping[str, Any], key: str) -> Any:
        """``table[key]``, or ``table["<key>_without_districts"]`` for a unit
        without districts when the table has it (a template's texts since 1 July 2025)."""
        return table.get(f"{key}_without_districts", table[key]) if self.without_districts else table[key]

    @property
    def in_unknown_district(self) -> bool:
        """A commune of that district: its sheet and forms leave the district's name to fill in."""
        return self.level == "xa" and self.parent_code == UNKNOWN_DISTRICT


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):].strip()
    return name


def nameless_commune(code: str) -> str:
    """The name of a commune no boundary or config names: "Xã 06274", or for one
    named after its file, that it has no code yet and which file it is."""
    return f"Xã chưa rõ mã (tệp {code.removeprefix(UNNAMED_PREFIX)})" if code.startswith(UNNAMED_PREFIX) \
        else f"Xã {code}"


def build_units(commune_codes: list[str], attributes: pd.DataFrame, province_name: str,
                province_code: str, levels: tuple[str, ...] = ("xa", "huyen", "tinh"),
                province_title: str = "") -> list[Unit]:
    """Communes, their districts and the province, from the communes' codes,
    names, district codes and district names (``RunManifest.unit_attributes``;
    ``levels`` without "huyen": the province's sub-units are its communes, as
    since 1 July 2025; ``province_title``: the province as titles name it,
    :meth:`~pipeline.reference.Province.title`, by default "Tỉnh " + its name).

    A commune whose district is not known (missing from the boundary file and
    ``[[communes]]``) goes under district UNKNOWN_DISTRICT ("không rõ huyện")
    so that its area still reaches the province.
    """
    province_title = province_title or f"Tỉnh {province_name}"
    info = attributes.set_index("commune_code") if len(attributes) else pd.DataFrame()
    district_names: dict[str, str] = {}
    communes = []
    for code in sorted(commune_codes):
        known = code in info.index
        name = str(info.at[code, "commune_name"]) if known and pd.notna(info.at[code, "commune_name"]) else \
            nameless_commune(code)
        placed = known and pd.notna(info.at[code, "district_code"])
        district = str(info.at[code, "district_code"]) if placed else UNKNOWN_DISTRICT
        district_names.setdefault(district, str(info.at[code, "district_name"]) if placed else "(không rõ huyện)")
        communes.append(Unit("xa", code, name, (code,), commune_name=_strip(name, ("Xã ",)),
                             district_name=_strip(district_names[district], ("Huyện ",)),
                             province_name=province_name, parent_code=district, province_title=province_title))
    districts = []
    for district, name in sorted(district_names.items()):
        members = tuple(c for c in communes if c.parent_code == district)
        districts.append(Unit("huyen", district, name, tuple(c.code for c in members),
                              district_name=members[0].district_name, province_name=province_name,
                              children=members, parent_code=province_code, province_title=province_title))
    if "huyen" not in levels:
        communes = [replace(c, district_name="", parent_code=province_code) for c in communes]
        districts = []
    province = Unit("tinh", province_code, province_title, tuple(c.code for c in communes),
                    province_name=province_name, children=tuple(districts or communes), province_title=province_title)
    return [*communes, *districts, province]


def run_units(manifest: RunManifest, commune_codes: list[str]) -> list[Unit]:
    """The units a run's forms and sheets are made for: its communes, their
    districts (when it has them) and its province, titled as at its reference date."""
    return build_units(commune_codes, manifest.unit_attributes(), manifest.province.name_vi,
                       manifest.province.gso_code, manifest.levels, manifest.province.title(manifest.reference_date))
