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

from ..errors import ConfigError, KiemkeError, UnknownProvinceError
from ..io import officer_text
from ..reference import Province, landuse_tree, owner_codes, province as find_province
from ..regime import DEFAULT_TEMPLATE, load_template, regime_for_year, use_regime
from ..topology import Thresholds
from ..vntext import fold, name_key
from .admin import Boundaries, CommuneName, NewUnits, boundaries_section, communes_section, levels_of, units_section
from .checks import check_crs, check_keys, path_of, positive, require

__all__ = ["DEFAULT_WORKDIR", "Boundaries", "CommuneName", "CompoundSplit", "ConfigError", "Forest", "NewUnits",
           "Previous", "Refine", "Settings", "SourceOverride", "load_settings", "settings_from_dict"]

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
        """Whether the file (its path, its name, or its path under the input
        folder) matches the pattern, in any Unicode form and case."""
        candidates = [path.as_posix(), path.name]
        if input_root is not None:
            with contextlib.suppress(ValueError):  # a path outside the input folder
                candidates.append(path.resolve().relative_to(input_root.resolve()).as_posix())
        return any(fnmatch.fnmatchcase(name_key(c), name_key(self.pattern)) for c in candidates)


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
    communes: tuple[CommuneName, ...] = ()  # commune names (and districts) given here, over the boundary file's
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
    for i, src in enumerate(require(data, "sources", list, "config", default=[])):
        where = f"[[sources]] #{i + 1}"
        if not isinstance(src, dict):
            raise ConfigError(f"{where} must be a table with 'path' and overrides.")
        check_keys(src, {"path", "commune_code", "crs", "encoding", "owner_type", "refine"}, where)
        crs = src.get("crs")
        sources.append(SourceOverride(
            pattern=require(src, "path", str, where),
            commune_code=require(src, "commune_code", str, where, default=None),
            crs=check_crs(crs, where) if crs is not None else None,
            encoding=require(src, "encoding", str, where, default=None),
            owner_type=_owner_code(require(src, "owner_type", str, where, default=None), where),
            refine=_refinements(require(src, "refine", dict, where, default={}), f"{where} refine"),
        ))
    return tuple(sources)


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
    table = require(data, "refine", dict, "config", default={})
    check_keys(table, {"strict", "rules"}, "[refine]")
    return Refine(strict=require(table, "strict", bool, "[refine]", default=False),
                  rules=_refinements(require(table, "rules", dict, "[refine]", default={}), "[refine] rules"))


def _forest(data: dict, base_dir: Path) -> Forest | None:
    if "forest" not in data:
        return None
    table = require(data, "forest", dict, "config")
    check_keys(table, {"path", "status_field", "natural", "planted", "not_forest", "crs"}, "[forest]")
    values = {k: tuple(fold(str(v)) for v in require(table, k, list, "[forest]"))
              for k in ("natural", "planted", "not_forest") if k in table}
    crs = require(table, "crs", str, "[forest]", default=None)
    return Forest(path=path_of(require(table, "path", str, "[forest]"), base_dir),
                  status_field=require(table, "status_field", str, "[forest]"),
                  crs=check_crs(crs, "[forest]") if crs else None, **values)


def _corrections(data: dict, base_dir: Path) -> Path | None:
    table = require(data, "review", dict, "config", default={})
    check_keys(table, {"corrections"}, "[review]")
    path = require(table, "corrections", str, "[review]", default=None)
    return path_of(path, base_dir) if path else None


def _compound(data: dict) -> CompoundSplit:
    comp = require(data, "compound", dict, "config", default={})
    check_keys(comp, {"first_use_m2", "area_fields"}, "[compound]")
    return CompoundSplit(
        first_use_m2=positive(comp.get("first_use_m2", 400.0), "[compound] first_use_m2"),
        area_fields={k: tuple(v) for k, v in comp.get("area_fields", {}).items()},
    )


def _qa(data: dict) -> Thresholds:
    qa_table = require(data, "qa", dict, "config", default={})
    check_keys(qa_table, set(Thresholds.__dataclass_fields__), "[qa]")
    return Thresholds(**{k: positive(qa_table[k], f"[qa] {k}") for k in qa_table})


def _maps(data: dict) -> tuple[int, int]:
    maps = require(data, "maps", dict, "config", default={})
    check_keys(maps, {"scale_step", "dpi"}, "[maps]")
    scale_step = require(maps, "scale_step", int, "[maps]", default=0)
    if scale_step not in (-1, 0, 1):
        raise ConfigError("[maps] scale_step must be -1 (one step larger scale), 0 or 1 (one step smaller).")
    dpi = require(maps, "dpi", int, "[maps]", default=150)
    if not 50 <= dpi <= 600:
        raise ConfigError(f"[maps] dpi must be between 50 and 600, got {dpi}.")
    return scale_step, dpi


def _previous(data: dict, year: int, base_dir: Path) -> Previous | None:
    if "previous" not in data:
        return None
    prev = require(data, "previous", dict, "config")
    check_keys(prev, {"path", "year", "crs", "encoding", "commune_code", "statistics", "statistics_year"},
                "[previous]")
    crs = require(prev, "crs", str, "[previous]", default=None)
    stats = require(prev, "statistics", str, "[previous]", default=None)
    previous = Previous(
        path=str(path_of(require(prev, "path", str, "[previous]"), base_dir)),
        year=require(prev, "year", int, "[previous]", default=year - 5),
        crs=check_crs(crs, "[previous]") if crs else None,
        encoding=require(prev, "encoding", str, "[previous]", default=None),
        commune_code=require(prev, "commune_code", str, "[previous]", default=None),
        statistics=path_of(stats, base_dir) if stats else None,
        statistics_year=require(prev, "statistics_year", int, "[previous]", default=year - 1 if stats else None),
    )
    if previous.year >= year:
        raise ConfigError(f"[previous] year {previous.year} must be before the inventory year {year}.")
    return previous


def _regime(inv: dict, year: int) -> str:
    """``[inventory] regime``, checked; by default the year's (≤ 2023 TT 27/2018, ≥ 2024 TT 08/2024)."""
    name = require(inv, "regime", str, "[inventory]", default=regime_for_year(year))
    try:
        load_template(name)
    except KiemkeError as exc:
        raise ConfigError(f"[inventory] regime: {exc}") from None
    return name


def settings_from_dict(data: dict[str, Any], *, base_dir: Path = Path(".")) -> Settings:
    """Validate a parsed ``inventory.toml``; relative paths are taken from ``base_dir``."""
    check_keys(data, {"inventory", "sources", "boundaries", "columns", "compound", "qa", "natural_area_ha",
                       "maps", "previous", "refine", "forest", "review", "units", "communes"}, "config")
    inv = require(data, "inventory", dict, "config")
    check_keys(inv, {"province", "year", "reference_date", "input", "workdir", "scheduler", "regime",
                     "levels"}, "[inventory]")
    try:
        province = find_province(require(inv, "province", str, "[inventory]"))
    except UnknownProvinceError as exc:
        raise ConfigError(f"[inventory] province: {exc}") from None
    year = require(inv, "year", int, "[inventory]", default=2019)
    aliases = {name: tuple(require(data["columns"], name, list, "[columns]")) for name in data.get("columns", {})}
    natural = require(data, "natural_area_ha", dict, "config", default={})
    scale_step, dpi = _maps(data)
    regime = _regime(inv, year)
    with use_regime(regime):  # codes in [refine] and owner defaults are the regime's
        return Settings(
            province=province,
            year=year,
            reference_date=_reference_date(inv, year),
            input_root=path_of(inv["input"], base_dir) if "input" in inv else None,
            workdir=path_of(require(inv, "workdir", str, "[inventory]", default=str(DEFAULT_WORKDIR)), base_dir),
            sources=_sources(data),
            boundaries=boundaries_section(data, base_dir),
            column_aliases=aliases,
            compound=_compound(data),
            qa=_qa(data),
            natural_area_ha={str(k).zfill(5): positive(v, f"[natural_area_ha] {k}") for k, v in natural.items()},
            communes=communes_section(data),
            scheduler=require(inv, "scheduler", str, "[inventory]", default=None),
            map_scale_step=scale_step,
            map_dpi=dpi,
            previous=_previous(data, year, base_dir),
            refine=_refine(data),
            forest=_forest(data, base_dir),
            corrections=_corrections(data, base_dir),
            units=units_section(data, base_dir),
            regime=regime,
            levels=levels_of(inv["levels"], "[inventory]") if "levels" in inv else Settings.levels,
        )


def load_settings(path: Path) -> Settings:
    """Read and validate an ``inventory.toml``."""
    try:
        data = tomllib.loads(officer_text(Path(path).read_bytes()))
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
    return settings_from_dict(data, base_dir=path.resolve().parent)  # paths hold from any working folder
