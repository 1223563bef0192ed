"""The administrative units of a run in its config: the commune boundary file
(``[boundaries]``), names of communes it lacks (``[[communes]]``) and new
units to regroup onto (``[[units]]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .checks import check_keys, path_of, require


@dataclass(frozen=True)
class Boundaries:
    """An administrative boundary file and the names of its code fields."""

    path: Path
    commune_code_field: str = "gso_commune_code"
    commune_name_field: str = "commune_vn"
    district_code_field: str = "gso_district_code"
    district_name_field: str = "district_vn"
    #: A wider file with the same fields (the whole province): the neighbours named on the maps.
    context: Path | None = None

    def files(self) -> list[Path]:
        """The boundary file and, when given, the wider one."""
        return [path for path in (self.path, self.context) if path is not None]


@dataclass(frozen=True)
class CommuneName:
    """A commune's name (and district) given in the config, for a commune the
    boundary file lacks or a run without one: the forms' headers and the
    maps' titles use it, and its district gets its forms and map sheet."""

    code: str
    name: str
    district_code: str | None = None
    district: str | None = None


@dataclass(frozen=True)
class NewUnits:
    """Administrative units the inventory is regrouped onto ([units]: the
    communes of 1 July 2025, or another reform): a polygon layer, its name
    field, its codes (a field, or a CSV ``name,code``), a label for the
    outputs (``units_<label>/``) and the levels of its forms (no district)."""

    path: Path
    label: str
    name_field: str = "name"
    code_field: str | None = None
    codes: Path | None = None
    levels: tuple[str, ...] = ("xa", "tinh")


def communes_section(data: dict) -> tuple[CommuneName, ...]:
    """``[[communes]]``: code, name and, both or neither, district_code and district."""
    names = []
    for i, entry in enumerate(require(data, "communes", list, "config", default=[])):
        where = f"[[communes]] #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with 'code' and 'name'.")
        check_keys(entry, {"code", "name", "district_code", "district"}, where)
        district_code = require(entry, "district_code", str, where, default=None)
        district = require(entry, "district", str, where, default=None)
        if (district_code is None) != (district is None):
            raise ConfigError(f"{where}: give both 'district_code' and 'district' (the district's code and name), "
                              "or neither.")
        names.append(CommuneName(code=require(entry, "code", str, where).strip().zfill(5),
                                 name=require(entry, "name", str, where).strip(),
                                 district_code=district_code.strip() if district_code else None,
                                 district=district.strip() if district else None))
    codes = [n.code for n in names]
    if len(set(codes)) < len(codes):
        twice = sorted({c for c in codes if codes.count(c) > 1})
        raise ConfigError(f"[[communes]]: commune code {', '.join(twice)} is given more than once.")
    return tuple(names)


def boundaries_section(data: dict, base_dir: Path) -> Boundaries | None:
    if "boundaries" not in data:
        return None
    bnd = require(data, "boundaries", dict, "config")
    fields = {f for f in Boundaries.__dataclass_fields__ if f not in ("path", "context")}
    check_keys(bnd, fields | {"path", "context"}, "[boundaries]")
    context = require(bnd, "context", str, "[boundaries]") if "context" in bnd else None
    return Boundaries(
        path=path_of(require(bnd, "path", str, "[boundaries]"), base_dir),
        **{k: require(bnd, k, str, "[boundaries]") for k in fields if k in bnd},
        context=path_of(context, base_dir) if context else None,
    )


def levels_of(levels: list, where: str) -> tuple[str, ...]:
    """The levels of the units (``["xa", "tinh"]`` since 1 July 2025), checked."""
    if not isinstance(levels, list) or not set(levels) <= {"xa", "huyen", "tinh"} or "xa" not in levels:
        raise ConfigError(f"{where} levels {levels}: use 'xa', 'huyen', 'tinh' (with 'xa').")
    return tuple(levels)


def units_section(data: dict, base_dir: Path) -> tuple[NewUnits, ...]:
    tables = data.get("units", [])
    out = []
    for table in [tables] if isinstance(tables, dict) else tables:
        check_keys(table, {"path", "label", "name_field", "code_field", "codes", "levels"}, "[units]")
        levels = levels_of(require(table, "levels", list, "[units]", default=["xa", "tinh"]), "[units]")
        codes = require(table, "codes", str, "[units]", default=None)
        out.append(NewUnits(path=path_of(require(table, "path", str, "[units]"), base_dir),
                            label=str(require(table, "label", str, "[units]")),
                            name_field=require(table, "name_field", str, "[units]", default="name"),
                            code_field=require(table, "code_field", str, "[units]", default=None),
                            codes=path_of(codes, base_dir) if codes else None, levels=levels))
    return tuple(out)
