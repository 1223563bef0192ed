"""How QGIS shows the GeoPackage's fields: each by its Vietnamese name, a
number with the decimals the reports print (``data/field_aliases.csv``), and
a coded field's values by what they say (a QGIS value map: the attribute
table and the identify results read «Chồng đè giữa các thửa», the file keeps
``overlaps``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from xml.sax.saxutils import quoteattr

import pandas as pd

from ..ingest.owners import SOURCE_VI, rule_texts
from ..qa import LAYER_TITLES
from ..qa.between_communes import LAYER_TITLE as OVERLAPS_TITLE, PROBLEM as OVERLAPS_PROBLEM


@cache
def _field_table() -> tuple[tuple[re.Pattern[str], str, int | None], ...]:
    with (resources.files("pipeline") / "data" / "field_aliases.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    return tuple((re.compile(p), a, int(d) if d else None)
                 for p, a, d in zip(table["pattern"], table["alias_vi"], table["decimals"], strict=True))


def _field_row(field: str) -> tuple[re.Pattern[str], str, int | None] | None:
    """The first row of ``field_aliases.csv`` whose pattern is the whole field name (None: no row)."""
    return next((row for row in _field_table() if row[0].fullmatch(field)), None)


def field_alias(field: str) -> str:
    """The Vietnamese name QGIS shows for a field (the field's own name when none)."""
    row = _field_row(field)
    return row[0].sub(row[1], field) if row else field


def field_decimals(field: str) -> int | None:
    """The decimals QGIS shows a number field with (None: as stored)."""
    row = _field_row(field)
    return row[2] if row else None


def coded_values() -> dict[str, dict[str, str]]:
    """The coded fields kiemke writes: each value and what it says in Vietnamese
    (a QA layer's problem: the layer's title; how a parcel's object was found and by which rule)."""
    return {"problem": {**LAYER_TITLES, OVERLAPS_PROBLEM: OVERLAPS_TITLE}, "owner_source": dict(SOURCE_VI),
            "owner_rule": rule_texts()}


def _value_map(values: dict[str, str]) -> str:
    entries = "".join(f'<Option type="Map"><Option type="QString" value={quoteattr(value)} name={quoteattr(text)}/>'
                      '</Option>' for value, text in values.items())
    return ('<editWidget type="ValueMap"><config><Option type="Map">'
            f'<Option type="List" name="map">{entries}</Option></Option></config></editWidget>')


def _decimals(places: int) -> str:
    """A number shown with ``places`` decimals (QGIS's range widget: its precision is what the table shows)."""
    options = {"AllowNull": ("bool", "true"), "Max": ("double", "1e+300"), "Min": ("double", "-1e+300"),
               "Precision": ("int", str(places)), "Step": ("int", "1"), "Style": ("QString", "SpinBox")}
    items = "".join(f'<Option type="{kind}" name="{name}" value="{value}"/>' for name, (kind, value) in options.items())
    return f'<editWidget type="Range"><config><Option type="Map">{items}</Option></config></editWidget>'


def fields_xml(fields: Iterable) -> str:
    """QGIS's <aliases> and <fieldConfiguration> of a layer's ``fields``
    (geometry left out): every field by its Vietnamese name, the coded ones by
    a value map, the numbers with their decimals."""
    names = [str(f) for f in fields if str(f) not in ("geometry", "geom")]
    aliases = "".join(f'<alias field={quoteattr(f)} index="{k}" name={quoteattr(field_alias(f))}/>'
                      for k, f in enumerate(names))
    coded = coded_values()
    widgets = {}
    for f in names:
        if f in coded:
            widgets[f] = _value_map(coded[f])
        elif (places := field_decimals(f)) is not None:
            widgets[f] = _decimals(places)
    configured = "".join(f'<field name={quoteattr(f)} configurationFlags="None">{widget}</field>'
                         for f, widget in widgets.items())
    return f"<aliases>{aliases}</aliases>" + (f"<fieldConfiguration>{configured}</fieldConfiguration>"
                                              if configured else "")
