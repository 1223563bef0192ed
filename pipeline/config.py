"""Settings of an inventory run (``inventory.toml``) and the work-directory layout.

One explicit, frozen :class:`Settings` object is passed into each stage; no
module globals. A bad config raises :class:`ConfigError` naming the key and
what is allowed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from .errors import ConfigError, KiemkeError, UnknownProvinceError
from .reference import Province, landuse_tree, owner_codes, province as find_province
from .regime import DEFAULT_TEMPLATE, load_template, regime_for_year, use_regime
from .topology import Thresholds
from .vntext import fold

DEFAULT_WORKDIR = Path("data/processed")


@dataclass(frozen=True)
class SourceOverride:
    """What the config says about raw files matching ``pattern``."""

    pattern: str
    commune_code: str | None = None
    crs: str | None = None
    encoding: str | None = None
    owner_type: str | None = None  # the object of parcels no rule decides (e.g. DGN files)
    refine: tuple[tuple[str, str], ...] = ()  # group code → leaf, for these files only (e.g. HNK → NHK)

    def matches(self, path: Path, input_root: Path | None) -> bool:
        candidates = [path.as_posix(), path.name]
        if input_root is not None:
            with contextlib.suppress(ValueError):  # a path outside the input folder
                candidates.append(path.resolve().relative_to(input_root.resolve()).as_posix())
        return any(fnmatch.fnmatch(c, self.pattern) for c in candidates)


@dataclass(frozen=True)
class CompoundSplit:
    """How a compound code (``ONT+CLN``) is split when no area field says so.

    The first (main) use gets ``min(first_use_m2, parcel area)``, the others
    share the rest equally; the last use takes the remainder so the parts sum
    to the parcel area exactly. ``area_fields`` maps a code to the source
    columns that may hold that use's area (e.g. ``ONT = ["DT_ONT"]``).
    """

    first_use_m2: float = 400.0
    area_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Previous:
    """The previous inventory's current-use layer (2014) and, optionally, the
    latest yearly statistics (2018), for the change stage and Biểu 14/TKĐĐ.

    ``path`` is a file or a glob; ``crs``, ``encoding`` and ``commune_code``
    apply to every file of it, as a ``[[sources]]`` entry would.
    ``statistics`` is a CSV with ``commune_code, code, area_ha``.
    """

    path: str
    year: int = 2014
    crs: str | None = None
    encoding: str | None = None
    commune_code: str | None = None
    statistics: Path | None = None
    statistics_year: int | None = None


@dataclass(frozen=True)
class Refine:
    """How the group codes of cadastral maps (RSX, RPH, RDD, HNK, LUA) become
    inventory leaves: the built-in rules (``reference/refine_defaults.csv``)
    with the config's overrides; ``strict`` quarantines them instead, and
    infers no user/manager object."""

    strict: bool = False
    rules: tuple[tuple[str, str], ...] = ()  # overrides: group code → leaf


#: Values of a forest status field, folded (``fold``), by status.
FOREST_STATUS_VALUES = {
    "natural": ("tunhien", "rungtunhien", "rtn", "tn", "1"),
    "planted": ("trong", "rungtrong", "rt", "2"),
    "not_forest": ("chuacorung", "datchuacorung", "khongcorung", "cr", "dtr", "3"),
}


@dataclass(frozen=True)
class Forest:
    """The forest status map (bản đồ hiện trạng rừng) of the forest protection
    department: polygons with a status field saying natural forest, planted
    forest or not yet forest; it refines RSX/RPH/RDD parcels by area."""

    path: Path
    status_field: str
    natural: tuple[str, ...] = FOREST_STATUS_VALUES["natural"]
    planted: tuple[str, ...] = FOREST_STATUS_VALUES["planted"]
    not_forest: tuple[str, ...] = FOREST_STATUS_VALUES["not_forest"]
    crs: str | None = None


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


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, validated."""

    province: Province
    year: int = 2019
    reference_date: date = date(2019, 12, 31)
    input_root: Path | None = None
    workdir: Path = DEFAULT_WORKDIR
    sources: tuple[SourceOverride, ...] = ()
    boundaries: Boundaries | None = None
    column_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compound: CompoundSplit = CompoundSplit()
    qa: Thresholds = Thresholds()
    natural_area_ha: dict[str, float] = field(default_factory=dict)  # commune code → ha
    scheduler: str | None = None  # Dask scheduler address, "sync", or None for a local cluster
    map_scale_step: int = 0  # −1/+1: one scale step larger/smaller (Art. 18(4) exception)
    map_dpi: int = 150  # PNG preview resolution
    previous: Previous | None = None  # the previous inventory, for the change stage
    refine: Refine = Refine()  # group codes → leaves
    forest: Forest | None = None  # the forest status map
    corrections: Path | None = None  # the officer's corrections.csv (besides the filled review workbooks)
    units: tuple[NewUnits, ...] = ()  # new administrative units to regroup onto
    regime: str = DEFAULT_TEMPLATE  # the circular the inventory follows (pipeline/templates/<regime>.toml)
    levels: tuple[str, ...] = ("xa", "huyen", "tinh")  # the units' levels (("xa", "tinh") with no district)

    def override_for(self, path: Path) -> SourceOverride:
        """The merged overrides of every ``[[sources]]`` entry matching ``path``."""
        merged: dict[str, Any] = {"pattern": path.name}
        for source in self.sources:
            if source.matches(path, self.input_root):
                merged.update({k: v for k, v in asdict(source).items() if v not in (None, ())})
        return SourceOverride(**merged)


def _require(table: dict, key: str, kind: type, where: str, *, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key '{key}' ({kind.__name__} expected).")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where}: key '{key}' must be a {kind.__name__}, got {type(value).__name__} {value!r}."
        )
    return value


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a number > 0, got {value!r}.")
    return float(value)


def _check_crs(text: str, where: str) -> str:
    try:
        CRS.from_user_input(text)
    except ProjCRSError as exc:
        raise ConfigError(
            f"{where}: crs {text!r} is not a CRS PROJ knows ({exc}). "
            "Use an EPSG code such as 'EPSG:9215' (VN-2000 / TM-3 107-15) or a WKT/PROJ string."
        ) from None
    return text


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.")


def _path_of(text: str, base_dir: Path) -> Path:
    path = Path(text)
    return path if path.is_absolute() else base_dir / path


def _reference_date(inv: dict, year: int) -> date:
    ref = inv.get("reference_date", date(year, 12, 31))
    if isinstance(ref, str):
        try:
            ref = date.fromisoformat(ref)
        except ValueError:
            raise ConfigError(
                f"[inventory] reference_date {ref!r} is not a date; write it as 2019-12-31."
            ) from None
    if not isinstance(ref, date):
        raise ConfigError("[inventory] reference_date must be a date such as 2019-12-31.")
    return ref


def _sources(data: dict) -> tuple[SourceOverride, ...]:
    sources = []
    for i, src in enumerate(_require(data, "sources", list, "config", default=[])):
        where = f"[[sources]] #{i + 1}"
        if not isinstance(src, dict):
            raise ConfigError(f"{where} must be a table with 'path' and overrides.")
        _check_keys(src, {"path", "commune_code", "crs", "encoding", "owner_type", "refine"}, where)
        crs = src.get("crs")
        sources.append(SourceOverride(
            pattern=_require(src, "path", str, where),
            commune_code=_require(src, "commune_code", str, where, default=None),
            crs=_check_crs(crs, where) if crs is not None else None,
            encoding=_require(src, "encoding", str, where, default=None),
            owner_type=_owner_code(_require(src, "owner_type", str, where, default=None), where),
            refine=_refinements(_require(src, "refine", dict, where, default={}), f"{where} refine"),
        ))
    return tuple(sources)


def _boundaries(data: dict, base_dir: Path) -> Boundaries | None:
    if "boundaries" not in data:
        return None
    bnd = _require(data, "boundaries", dict, "config")
    fields = {f for f in Boundaries.__dataclass_fields__ if f not in ("path", "context")}
    _check_keys(bnd, fields | {"path", "context"}, "[boundaries]")
    context = _require(bnd, "context", str, "[boundaries]") if "context" in bnd else None
    return Boundaries(
        path=_path_of(_require(bnd, "path", str, "[boundaries]"), base_dir),
        **{k: _require(bnd, k, str, "[boundaries]") for k in fields if k in bnd},
        context=_path_of(context, base_dir) if context else None,
    )


def _owner_code(code: str | None, where: str) -> str | None:
    if code is None:
        return None
    owners = owner_codes()
    allowed = sorted(owners.index[owners["role"].isin(["user", "manager"])])
    if code.strip().upper() not in allowed:
        raise ConfigError(f"{where}: owner_type {code!r} is not a user/manager object code; allowed: {allowed}.")
    return code.strip().upper()


def _refinements(table: dict, where: str) -> tuple[tuple[str, str], ...]:
    """``{RSX = "RSN"}`` checked: a group code of the tree and one of its leaves."""
    tree = landuse_tree()
    out = []
    for group, leaf in table.items():
        leaves = [c for c in tree.leaves if group in tree.ancestors(c)] if group in tree else []
        if not leaves or not isinstance(leaf, str) or leaf.upper() not in leaves:
            raise ConfigError(f"{where}: {group} = {leaf!r} must map a group code of Circular 27/2018 to one of "
                              f"its leaves ({', '.join(leaves) or 'not a group code'}).")
        out.append((group.upper(), leaf.upper()))
    return tuple(out)


def _refine(data: dict) -> Refine:
    table = _require(data, "refine", dict, "config", default={})
    _check_keys(table, {"strict", "rules"}, "[refine]")
    return Refine(strict=_require(table, "strict", bool, "[refine]", default=False),
                  rules=_refinements(_require(table, "rules", dict, "[refine]", default={}), "[refine] rules"))


def _forest(data: dict, base_dir: Path) -> Forest | None:
    if "forest" not in data:
        return None
    table = _require(data, "forest", dict, "config")
    _check_keys(table, {"path", "status_field", "natural", "planted", "not_forest", "crs"}, "[forest]")
    values = {k: tuple(fold(str(v)) for v in _require(table, k, list, "[forest]"))
              for k in ("natural", "planted", "not_forest") if k in table}
    crs = _require(table, "crs", str, "[forest]", default=None)
    return Forest(path=_path_of(_require(table, "path", str, "[forest]"), base_dir),
                  status_field=_require(table, "status_field", str, "[forest]"),
                  crs=_check_crs(crs, "[forest]") if crs else None, **values)


def _corrections(data: dict, base_dir: Path) -> Path | None:
    table = _require(data, "review", dict, "config", default={})
    _check_keys(table, {"corrections"}, "[review]")
    path = _require(table, "corrections", str, "[review]", default=None)
    return _path_of(path, base_dir) if path else None


def _compound(data: dict) -> CompoundSplit:
    comp = _require(data, "compound", dict, "config", default={})
    _check_keys(comp, {"first_use_m2", "area_fields"}, "[compound]")
    return CompoundSplit(
        first_use_m2=_positive(comp.get("first_use_m2", 400.0), "[compound] first_use_m2"),
        area_fields={k: tuple(v) for k, v in comp.get("area_fields", {}).items()},
    )


def _qa(data: dict) -> Thresholds:
    qa_table = _require(data, "qa", dict, "config", default={})
    _check_keys(qa_table, set(Thresholds.__dataclass_fields__), "[qa]")
    return Thresholds(**{k: _positive(qa_table[k], f"[qa] {k}") for k in qa_table})


def _maps(data: dict) -> tuple[int, int]:
    maps = _require(data, "maps", dict, "config", default={})
    _check_keys(maps, {"scale_step", "dpi"}, "[maps]")
    scale_step = _require(maps, "scale_step", int, "[maps]", default=0)
    if scale_step not in (-1, 0, 1):
        raise ConfigError("[maps] scale_step must be -1 (one step larger scale), 0 or 1 (one step smaller).")
    dpi = _require(maps, "dpi", int, "[maps]", default=150)
    if not 50 <= dpi <= 600:
        raise ConfigError(f"[maps] dpi must be between 50 and 600, got {dpi}.")
    return scale_step, dpi


def _previous(data: dict, year: int, base_dir: Path) -> Previous | None:
    if "previous" not in data:
        return None
    prev = _require(data, "previous", dict, "config")
    _check_keys(prev, {"path", "year", "crs", "encoding", "commune_code", "statistics", "statistics_year"},
                "[previous]")
    crs = _require(prev, "crs", str, "[previous]", default=None)
    stats = _require(prev, "statistics", str, "[previous]", default=None)
    previous = Previous(
        path=str(_path_of(_require(prev, "path", str, "[previous]"), base_dir)),
        year=_require(prev, "year", int, "[previous]", default=year - 5),
        crs=_check_crs(crs, "[previous]") if crs else None,
        encoding=_require(prev, "encoding", str, "[previous]", default=None),
        commune_code=_require(prev, "commune_code", str, "[previous]", default=None),
        statistics=_path_of(stats, base_dir) if stats else None,
        statistics_year=_require(prev, "statistics_year", int, "[previous]", default=year - 1 if stats else None),
    )
    if previous.year >= year:
        raise ConfigError(f"[previous] year {previous.year} must be before the inventory year {year}.")
    return previous


def _levels(levels: list, where: str) -> tuple[str, ...]:
    """The levels of the units (``["xa", "tinh"]`` since 1 July 2025), checked."""
    if not isinstance(levels, list) or not set(levels) <= {"xa", "huyen", "tinh"} or "xa" not in levels:
        raise ConfigError(f"{where} levels {levels}: use 'xa', 'huyen', 'tinh' (with 'xa').")
    return tuple(levels)


def _units(data: dict, base_dir: Path) -> tuple[NewUnits, ...]:
    tables = data.get("units", [])
    out = []
    for table in [tables] if isinstance(tables, dict) else tables:
        _check_keys(table, {"path", "label", "name_field", "code_field", "codes", "levels"}, "[units]")
        levels = _levels(_require(table, "levels", list, "[units]", default=["xa", "tinh"]), "[units]")
        codes = _require(table, "codes", str, "[units]", default=None)
        out.append(NewUnits(path=_path_of(_require(table, "path", str, "[units]"), base_dir),
                            label=str(_require(table, "label", str, "[units]")),
                            name_field=_require(table, "name_field", str, "[units]", default="name"),
                            code_field=_require(table, "code_field", str, "[units]", default=None),
                            codes=_path_of(codes, base_dir) if codes else None, levels=levels))
    return tuple(out)


def _regime(inv: dict, year: int) -> str:
    """``[inventory] regime``, checked; by default the year's (≤ 2023 TT 27/2018, ≥ 2024 TT 08/2024)."""
    name = _require(inv, "regime", str, "[inventory]", default=regime_for_year(year))
    try:
        load_template(name)
    except KiemkeError as exc:
        raise ConfigError(f"[inventory] regime: {exc}") from None
    return name


def settings_from_dict(data: dict[str, Any], *, base_dir: Path = Path(".")) -> Settings:
    """Validate a parsed ``inventory.toml``; relative paths are taken from ``base_dir``."""
    _check_keys(data, {"inventory", "sources", "boundaries", "columns", "compound", "qa", "natural_area_ha",
                       "maps", "previous", "refine", "forest", "review", "units"}, "config")
    inv = _require(data, "inventory", dict, "config")
    _check_keys(inv, {"province", "year", "reference_date", "input", "workdir", "scheduler", "regime",
                     "levels"}, "[inventory]")
    try:
        province = find_province(_require(inv, "province", str, "[inventory]"))
    except UnknownProvinceError as exc:
        raise ConfigError(f"[inventory] province: {exc}") from None
    year = _require(inv, "year", int, "[inventory]", default=2019)
    aliases = {name: tuple(_require(data["columns"], name, list, "[columns]")) for name in data.get("columns", {})}
    natural = _require(data, "natural_area_ha", dict, "config", default={})
    scale_step, dpi = _maps(data)
    regime = _regime(inv, year)
    with use_regime(regime):  # codes in [refine] and owner defaults are the regime's
        return Settings(
            province=province,
            year=year,
            reference_date=_reference_date(inv, year),
            input_root=_path_of(inv["input"], base_dir) if "input" in inv else None,
            workdir=_path_of(_require(inv, "workdir", str, "[inventory]", default=str(DEFAULT_WORKDIR)), base_dir),
            sources=_sources(data),
            boundaries=_boundaries(data, base_dir),
            column_aliases=aliases,
            compound=_compound(data),
            qa=_qa(data),
            natural_area_ha={str(k).zfill(5): _positive(v, f"[natural_area_ha] {k}") for k, v in natural.items()},
            scheduler=_require(inv, "scheduler", str, "[inventory]", default=None),
            map_scale_step=scale_step,
            map_dpi=dpi,
            previous=_previous(data, year, base_dir),
            refine=_refine(data),
            forest=_forest(data, base_dir),
            corrections=_corrections(data, base_dir),
            units=_units(data, base_dir),
            regime=regime,
            levels=_levels(inv["levels"], "[inventory]") if "levels" in inv else Settings.levels,
        )


def load_settings(path: Path) -> Settings:
    """Read and validate an ``inventory.toml``."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
    return settings_from_dict(data, base_dir=path.resolve().parent)  # paths hold from any working folder
