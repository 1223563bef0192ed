"""Writing a computed form as XLSX (the circular's layout, ready to print) and CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from ..io import atomic_path, write_csv
from ..regime import FormSpec, Template
from ..units import Unit
from .base import Sheet

FONT = "Times New Roman"  # has every Vietnamese glyph on office machines; LibreOffice maps it to Liberation Serif
THIN = Side(style="thin")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
NUMBER_FORMAT = "#,##0.00"
SCALE = 100.0  # table values are centi-hectares
HEADER_TOP = 8  # the first header row


@dataclass(frozen=True)
class PrintedForm:
    """One unit's form, ready to write: what it is, its figures and its layout."""

    spec: FormSpec
    template: Template
    unit: Unit
    table: pd.DataFrame
    sheet: Sheet
    date: str  # the reference date, dd/mm/yyyy
    decimals: int = 2

    @property
    def width(self) -> int:
        return len(self.sheet.numbers)


def _font(size: float = 11, bold: bool = False, italic: bool = False, underline: str | None = None) -> Font:
    return Font(name=FONT, size=size, bold=bold, italic=italic, underline=underline)


def reporting_line(template: Template, unit: Unit) -> str:
    dots = "……………"
    return template.regime["reporting_line"].format(
        commune=unit.commune_name or dots, district=unit.district_name or dots, province=unit.province_name or dots)


def _title_block(ws: Worksheet, form: PrintedForm) -> None:
    """Form number, national title and motto, the form's title, date and reporting lines."""
    spec, regime, width = form.spec, form.template.regime, form.width
    last = get_column_letter(width)
    half = max(width // 2, 3)
    ws["A1"] = spec.number
    ws["A1"].font = _font(11, bold=True)
    ws.merge_cells(start_row=1, start_column=half + 1, end_row=1, end_column=width)
    ws.cell(1, half + 1, regime["country"]).font = _font(11, bold=True)
    ws.merge_cells(start_row=2, start_column=half + 1, end_row=2, end_column=width)
    ws.cell(2, half + 1, regime["motto"]).font = _font(11, bold=True, underline="single")
    for r in (1, 2):
        ws.cell(r, half + 1).alignment = Alignment(horizontal="center")
    for r, text, font in ((4, spec.title, _font(14, bold=True)),
                          (5, regime["date_line"].format(date=form.date), _font(11, italic=True))):
        ws.merge_cells(f"A{r}:{last}{r}")
        ws[f"A{r}"] = text
        ws[f"A{r}"].font = font
        ws[f"A{r}"].alignment = Alignment(horizontal="center")
    ws.merge_cells(start_row=6, start_column=1, end_row=6, end_column=half)
    ws["A6"] = reporting_line(form.template, form.unit)
    ws["A6"].font = _font(11)
    if form.sheet.row_form:
        ws.merge_cells(start_row=6, start_column=half + 1, end_row=6, end_column=width)
        ws.cell(6, half + 1, regime["unit_line"]).font = _font(11, italic=True)
        ws.cell(6, half + 1).alignment = Alignment(horizontal="right")


def _header_block(ws: Worksheet, form: PrintedForm) -> int:
    """The merged header cells and the numbered row; returns the numbered row."""
    headers = form.sheet.headers
    header_rows = max(h.row + h.rows for h in headers)
    for h in headers:
        r, c = HEADER_TOP + h.row, 1 + h.col
        if h.rows > 1 or h.cols > 1:
            ws.merge_cells(start_row=r, start_column=c, end_row=r + h.rows - 1, end_column=c + h.cols - 1)
        cell = ws.cell(r, c, h.text)
        cell.font = _font(10, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    number_row = HEADER_TOP + header_rows
    for r in range(HEADER_TOP, number_row + 1):
        for c in range(1, form.width + 1):
            ws.cell(r, c).border = BOX
    for c, text in enumerate(form.sheet.numbers, start=1):
        cell = ws.cell(number_row, c, text)
        cell.font = _font(9, italic=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    return number_row


def _list_row(ws: Worksheet, r: int, form: PrintedForm, data: dict) -> None:
    for c, column in enumerate(form.sheet.value_columns, start=1):
        cell = ws.cell(r, c, data[column])
        cell.font = _font(10)
        cell.border = BOX
    ws.cell(r, 2).number_format = "#,##0.0"


def _tree_row(ws: Worksheet, r: int, form: PrintedForm, data: dict) -> None:
    level = int(data["level"])
    bold = level <= 1
    ws.cell(r, 1, data["stt"]).font = _font(10, bold=bold)
    name = ws.cell(r, 2, data["name"])
    name.font = _font(10, bold=bold, italic=data["kind"] == "observation")
    name.alignment = Alignment(indent=max(level - 1, 0), wrap_text=True)
    ws.cell(r, 3, data["code"]).font = _font(10, bold=bold)
    for c, column in enumerate(form.sheet.value_columns, start=4):
        value = data[column]
        if isinstance(value, str) or value is None or pd.isna(value):  # a note, or no figure
            cell = ws.cell(r, c, value if isinstance(value, str) else None)
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        else:
            cell = ws.cell(r, c, round(int(value) / SCALE, form.decimals))
            cell.number_format = NUMBER_FORMAT
        cell.font = _font(10, bold=bold)
    for c in range(1, form.width + 1):
        ws.cell(r, c).border = BOX


def _footer(ws: Worksheet, form: PrintedForm, r: int) -> None:
    """The notes under the table, the place and date line and the signature blocks."""
    width = form.width
    half = max(width // 2, 3)
    for note in form.sheet.notes:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.cell(r, 1, note).font = _font(9, italic=True)
        ws.cell(r, 1).alignment = Alignment(wrap_text=True)
        ws.row_dimensions[r].height = 15 * (1 + len(note) // 180)
        r += 1
    r += 1
    regime = form.template.regime
    ws.merge_cells(start_row=r, start_column=width - half + 1, end_row=r, end_column=width)
    ws.cell(r, width - half + 1, regime["place_date"]).font = _font(11, italic=True)
    ws.cell(r, width - half + 1).alignment = Alignment(horizontal="center")
    r += 1
    signatures = regime["signatures"]
    for (c0, c1), text in zip(_split(width, len(signatures)), signatures, strict=True):
        ws.merge_cells(start_row=r, start_column=c0, end_row=r + 2, end_column=c1)
        cell = ws.cell(r, c0, text)
        cell.font = _font(11, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="top", wrap_text=True)


def write_xlsx(path: Path, form: PrintedForm) -> Path:
    """One form as an XLSX sheet laid out like the circular, set up to print."""
    wb = Workbook()
    ws = wb.active
    ws.title = form.spec.number.replace("/", "-")[:31]
    _title_block(ws, form)
    number_row = _header_block(ws, form)
    write_row = _tree_row if form.sheet.row_form else _list_row
    for offset, row in enumerate(form.table.itertuples(index=False)):
        write_row(ws, number_row + 1 + offset, form, row._asdict())
    _footer(ws, form, number_row + 1 + len(form.table) + 1)
    _layout(ws, form, number_row)
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return path


def _split(width: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(k * width / parts) for k in range(parts + 1)]
    return [(bounds[k] + 1, max(bounds[k + 1], bounds[k] + 1)) for k in range(parts)]


def _layout(ws: Worksheet, form: PrintedForm, number_row: int) -> None:
    """Column widths and print set-up: landscape, fit to width, header rows repeated."""
    width = form.width
    for c, w in enumerate(form.sheet.widths[:width], start=1):
        ws.column_dimensions[get_column_letter(c)].width = w
    for r in range(HEADER_TOP, number_row):
        ws.row_dimensions[r].height = 48 if r > HEADER_TOP else 30
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A3 if width > 10 else ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{HEADER_TOP}:{number_row}"
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.print_options.horizontalCentered = True
    ws.freeze_panes = ws.cell(number_row + 1, 4)


def write_form_csv(path: Path, table: pd.DataFrame, sheet: Sheet, decimals: int = 2) -> Path:
    """The same numbers as the XLSX, one row per form row, in ha (2 decimals)."""
    if not sheet.row_form:
        out = table[sheet.value_columns].copy()
        out.columns = [f"{n} {label}" for n, label in zip(sheet.numbers, sheet.labels, strict=True)]
        return write_csv(path, out)
    out = pd.DataFrame({
        "(1) Thứ tự": table["stt"], "(2) Loại đất": table["name"].fillna(""), "(3) Mã": table["code"],
    })
    for number, label, column in zip(sheet.numbers[3:], sheet.labels, sheet.value_columns, strict=True):
        values = table[column]
        if values.map(lambda v: isinstance(v, str)).all():
            out[f"{number} {label}"] = values
            continue
        numeric = pd.to_numeric(values, errors="coerce") / SCALE
        out[f"{number} {label}"] = numeric.round(decimals).map(lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}")
    return write_csv(path, out)
