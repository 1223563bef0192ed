"""A regime's forms and map texts as data: ``pipeline/templates/<name>.toml``
(Circular 27/2018 today; another regime is another file).

Shared by the stages that make forms, compare inventories and draw maps, so
it lives below all of them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import KiemkeError

DEFAULT_TEMPLATE = "tt27_2018"


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


@cache
def load_template(name: str = DEFAULT_TEMPLATE) -> Template:
    """Read ``pipeline/templates/<name>.toml``, or a template file given by path."""
    folder = resources.files("pipeline") / "templates"
    path = Path(name) if name.endswith(".toml") else folder / f"{name}.toml"
    if not path.is_file():
        available = sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
        raise KiemkeError(f"form template {name!r} does not exist; available: {available}.")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    forms = tuple(FormSpec(**_tuples(form)) for form in data["forms"])
    return Template(Path(name).stem, data["regime"], data["column_sets"], forms, data.get("maps", {}))
