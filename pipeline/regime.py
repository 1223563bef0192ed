"""A regime's code tables, forms and map texts as data:
``pipeline/templates/<name>.toml`` (Circular 27/2018 for the 2019 inventory,
Circular 08/2024 since 1 August 2024; another regime is another file).

A run has one regime, recorded in its manifest. It is *active* while a stage
runs (:func:`use_regime`, a context variable carried to the workers by
:mod:`pipeline.parallel`), so the code tables (:mod:`pipeline.reference`) are
the run's without every function taking them as an argument.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import KiemkeError

DEFAULT_TEMPLATE = "tt27_2018"
#: The regime of inventories from 2024 on (Circular 08/2024, in force 1/8/2024).
REGIME_2024 = "tt08_2024"
FIRST_YEAR_2024 = 2024

_ACTIVE: ContextVar[str] = ContextVar("kiemke_regime", default=DEFAULT_TEMPLATE)


def regime_for_year(year: int) -> str:
    """The regime an inventory or statistics year falls under by default:
    ≤ 2023 Circular 27/2018, ≥ 2024 Circular 08/2024."""
    return REGIME_2024 if year >= FIRST_YEAR_2024 else DEFAULT_TEMPLATE


def active_regime() -> str:
    """The name of the regime of the run in progress."""
    return _ACTIVE.get()


@contextmanager
def use_regime(name: str) -> Iterator[None]:
    """Make ``name`` the active regime for the duration of the block."""
    load_template(name)  # fails early, naming the regimes there are
    token = _ACTIVE.set(name)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def call_in_regime(name: str, func: Callable, *args):
    """``func(*args)`` with ``name`` active: how a worker runs a task of the run."""
    with use_regime(name):
        return func(*args)


@dataclass(frozen=True)
class OwnerColumn:
    """A user/manager column of a by-owner form and the object codes it sums."""

    header: str
    codes: tuple[str, ...]
    block: str  # "users" | "managers"
    group: str
    confidence: str
    source: str


@dataclass(frozen=True)
class FormSpec:
    """One form of a regime: its number, title, kind, columns and rows."""

    id: str
    number: str
    file: str
    title: str
    title_confidence: str
    kind: str  # a key of pipeline.forms.registry.KINDS
    levels: tuple[str, ...]
    column_set: str = ""
    total_header: str = ""
    units_header: str = ""
    disputed_header: str = ""  # Biểu 03/TKKK's last column: areas of undetermined boundary lines
    row_roots: tuple[str, ...] = ()
    observation_roots: tuple[str, ...] = ()
    total_row: bool = False
    collapse: tuple[str, ...] = ()  # codes shown without their sub-codes (Biểu 14)


@dataclass(frozen=True)
class Template:
    """A regime's forms: texts, column sets and forms, from a TOML file."""

    name: str
    regime: dict[str, Any]
    column_sets: dict[str, dict[str, Any]]
    forms: tuple[FormSpec, ...]
    maps: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # the regime's reference tables (pipeline/reference/)

    def columns(self, name: str) -> list[OwnerColumn]:
        return [OwnerColumn(**{**c, "codes": tuple(c["codes"])}) for c in self.column_sets[name]["columns"]]

    def form(self, form_id: str) -> FormSpec:
        for spec in self.forms:
            if spec.id == form_id:
                return spec
        raise KeyError(f"form {form_id!r} not in template {self.name}; forms: {[f.id for f in self.forms]}")

    def collapse(self) -> frozenset[str]:
        """The codes the change forms compare at without their sub-codes (Biểu 14's level)."""
        return frozenset(code for spec in self.forms for code in spec.collapse)


def _tuples(table: dict[str, Any]) -> dict[str, Any]:
    """A TOML table with its lists as tuples (the specs are frozen)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def load_template(name: str | None = None) -> Template:
    """The active regime's template, or the one named (``pipeline/templates/<name>.toml``, or a path)."""
    return _load_template(name or active_regime())


def form_file_names(template: Template) -> frozenset[str]:
    """The file names (without suffix) of the forms of ``template`` and of
    every template kiemke ships: the workbooks and CSVs kiemke writes, and no
    file an officer keeps beside them."""
    folder = resources.files("pipeline") / "templates"
    shipped = [_load_template(p.name.removesuffix(".toml")) for p in folder.iterdir() if p.name.endswith(".toml")]
    return frozenset(spec.file for each in [*shipped, template] for spec in each.forms)


@cache
def _load_template(name: str) -> Template:
    folder = resources.files("pipeline") / "templates"
    path = Path(name) if name.endswith(".toml") else folder / f"{name}.toml"
    if not path.is_file():
        available = sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
        raise KiemkeError(f"form template {name!r} does not exist; available: {available}.")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    forms = tuple(FormSpec(**_tuples(form)) for form in data["forms"])
    return Template(Path(name).stem, data["regime"], data["column_sets"], forms, data.get("maps", {}),
                    data.get("tables", {}))
