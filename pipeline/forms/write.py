"""Writing a computed form as XLSX (the circular's layout, ready to print) and CSV.

The printed sheet holds only what an official form holds: number, national
title and motto, title, reporting lines, the table, the notes a district
office must know of the figures, place and date, signature blocks with room
to sign. Row heights fit the wrapped text (measured with the font's own
metrics, :mod:`.measure`). The provenance of the layout goes to a second
sheet, "Nguồn mẫu biểu", which is not printed.
"""

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
from ..xlsx import serif_workbook
from .base import Sheet
from .measure import column_width_pt, lines_needed, row_height_pt, text_width_pt

FONT = "Times New Roman"  # has every Vietnamese glyph on office machines; LibreOffice maps it to Liberation Serif
THIN = Side(style="thin")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
NUMBER_FORMAT = "#,##0.00"
SCALE = 100.0  # table values are centi-hectares
HEADER_TOP = 8  # the first header row
BODY_PT, HEADER_PT, NOTE_PT, TITLE_PT = 10.0, 10.0, 9.0, 14.0
INDENT_PT = 9.0  # one level of a cell's indent
SIGNING_ROWS = 5  # blank rows under each signature block: room to sign and stamp (≥ 25 mm)
WIDE_SCALE = 72  # % a form too wide for one page prints at: 10 pt text stays ≥ 7 pt
PROVENANCE = "Nguồn mẫu biểu"


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

    def span_pt(self, first: int, last: int) -> float:
        """The printed width of columns ``first``…``last`` (1-based) in points."""
        return sum(column_width_pt(w) for w in self.sheet.widths[first - 1:last])


def _font(size: float = 11, bold: bool = False, italic: bool = False, underline: str | None = None) -> Font:
    return Font(name=FONT, size=size, bold=bold, italic=italic, underline=underline)


def reporting_line(template: Template, unit: Unit) -> str:
    dots = "……………"
    return template.regime["reporting_line"].format(
        commune=unit.commune_name or dots, district=unit.district_name or dots, province=unit.province_name or dots)


def _merged_text(ws: Worksheet, form: PrintedForm, row: int, first: int, last: int, text: str, font: Font,
                 horizontal: str = "center") -> None:
    """Text over merged columns of one row, wrapped, the row as tall as it needs."""
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    cell = ws.cell(row, first, text)
    cell.font = font
    cell.alignment = Alignment(horizontal=horizontal, vertical="center", wrap_text=True)
    lines = lines_needed(text, font.sz, form.span_pt(first, last), bool(font.b))
    height = row_height_pt(lines, font.sz)
    ws.row_dimensions[row].height = max(ws.row_dimensions[row].height or 0, height)


def _right_half(form: PrintedForm, text: str, size: float, bold: bool) -> int:
    """The first column of the right-hand block that holds ``text`` on one line
    (the national title and motto, the unit line): half the width, or wider."""
    first = max(form.width // 2, 3) + 1
    while first > 2 and form.span_pt(first, form.width) < text_width_pt(text, size, bold) + 8:
        first -= 1
    return first


def _title_block(ws: Worksheet, form: PrintedForm) -> None:
    """Form number, national title and motto, the form's title, date and reporting lines."""
    spec, regime, width = form.spec, form.template.regime, form.width
    number_end = 1  # the form number's columns: as many as it needs
    while number_end < width - 1 and form.span_pt(1, number_end) < text_width_pt(spec.number, 11, True) + 8:
        number_end += 1
    right = min(_right_half(form, regime["country"], 11, True), _right_half(form, regime["motto"], 11, True))
    right = max(right, number_end + 1)
    _merged_text(ws, form, 1, 1, right - 1, spec.number, _font(11, bold=True), "left")
    _merged_text(ws, form, 1, right, width, regime["country"], _font(11, bold=True))
    _merged_text(ws, form, 2, right, width, regime["motto"], _font(11, bold=True, underline="single"))
    _merged_text(ws, form, 4, 1, width, spec.title, _font(TITLE_PT, bold=True))
    _merged_text(ws, form, 5, 1, width, regime["date_line"].format(date=form.date), _font(11, italic=True))
    report = reporting_line(form.template, form.unit)
    if not form.sheet.row_form:  # the khoanh list has no unit line: the reporting line takes the row
        _merged_text(ws, form, 6, 1, width, report, _font(11), "left")
        return
    unit_line = regime["unit_line"]
    right = _right_half(form, unit_line, 11, False)
    if form.span_pt(1, right - 1) < text_width_pt(report, 11) + 8:  # both do not fit one row
        _merged_text(ws, form, 6, 1, width, report, _font(11), "left")
        _merged_text(ws, form, 7, 1, width, unit_line, _font(11, italic=True), "right")
        return
    _merged_text(ws, form, 6, 1, right - 1, report, _font(11), "left")
    _merged_text(ws, form, 6, right, width, unit_line, _font(11, italic=True), "right")


def _header_block(ws: Worksheet, form: PrintedForm) -> int:
    """The merged header cells and the numbered row; returns the numbered row."""
    headers = form.sheet.headers
    header_rows = max(h.row + h.rows for h in headers)
    needed = [row_height_pt(1, HEADER_PT)] * header_rows
    for h in headers:
        r, c = HEADER_TOP + h.row, 1 + h.col
        if h.rows > 1 or h.cols > 1:
            ws.merge_cells(start_row=r, start_column=c, end_row=r + h.rows - 1, end_column=c + h.cols - 1)
        cell = ws.cell(r, c, h.text)
        cell.font = _font(HEADER_PT, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        height = row_height_pt(lines_needed(h.text, HEADER_PT, form.span_pt(c, c + h.cols - 1), True), HEADER_PT)
        for k in range(h.row, h.row + h.rows):  # a tall header shares its height with the rows it spans
            needed[k] = max(needed[k], height / h.rows)
    for k, height in enumerate(needed):
        ws.row_dimensions[HEADER_TOP + k].height = height
    number_row = HEADER_TOP + header_rows
    for r in range(HEADER_TOP, number_row + 1):
        for c in range(1, form.width + 1):
            ws.cell(r, c).border = BOX
    for c, text in enumerate(form.sheet.numbers, start=1):  # "(15)=(16)+…+(18)": one line, shrunk to fit
        cell = ws.cell(number_row, c, text)
        cell.font = _font(9, italic=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", shrink_to_fit=True)
    ws.row_dimensions[number_row].height = row_height_pt(1, 9)
    return number_row


def _list_row(ws: Worksheet, r: int, form: PrintedForm, data: dict) -> None:
    for c, column in enumerate(form.sheet.value_columns, start=1):
        cell = ws.cell(r, c, data[column])
        cell.font = _font(BODY_PT)
        cell.border = BOX
    note = str(data.get("note") or "")
    if note:
        at = form.sheet.value_columns.index("note") + 1
        ws.cell(r, at).alignment = Alignment(wrap_text=True, vertical="center")
        ws.row_dimensions[r].height = row_height_pt(lines_needed(note, BODY_PT, form.span_pt(at, at)), BODY_PT)
    ws.cell(r, 2).number_format = "#,##0.0"


def _tree_row(ws: Worksheet, r: int, form: PrintedForm, data: dict) -> None:
    level = int(data["level"])
    bold = level <= 1
    for c, text in ((1, data["stt"]), (3, data["code"])):
        ws.cell(r, c, text).font = _font(BODY_PT, bold=bold)
        ws.cell(r, c).alignment = Alignment(vertical="center")
    name = ws.cell(r, 2, data["name"])
    name.font = _font(BODY_PT, bold=bold, italic=data["kind"] == "observation")
    indent = max(level - 1, 0)
    name.alignment = Alignment(horizontal="left", indent=indent, wrap_text=True, vertical="center")
    lines = lines_needed(str(data["name"]), BODY_PT, form.span_pt(2, 2) - INDENT_PT * indent, bold)
    for c, column in enumerate(form.sheet.value_columns, start=4):
        value = data[column]
        if isinstance(value, str) or value is None or pd.isna(value):  # a note, or no figure
            cell = ws.cell(r, c, value if isinstance(value, str) else None)
            cell.alignment = Alignment(horizontal="left", indent=1, wrap_text=True, vertical="center")
            if isinstance(value, str) and value:
                lines = max(lines, lines_needed(value, BODY_PT, form.span_pt(c, c) - INDENT_PT, bold))
        else:
            cell = ws.cell(r, c, round(int(value) / SCALE, form.decimals))
            cell.number_format = NUMBER_FORMAT
            cell.alignment = Alignment(vertical="center")
        cell.font = _font(BODY_PT, bold=bold)
    for c in range(1, form.width + 1):
        ws.cell(r, c).border = BOX
    ws.row_dimensions[r].height = row_height_pt(lines, BODY_PT)


def _footer(ws: Worksheet, form: PrintedForm, r: int) -> int:
    """The printed notes under the table, the place and date line and the
    signature blocks with room to sign; returns the last row."""
    width = form.width
    for note in form.sheet.notes:
        _merged_text(ws, form, r, 1, width, note, _font(NOTE_PT, italic=True), "left")
        r += 1
    r += 1
    regime = form.template.regime
    right = _right_half(form, regime["place_date"], 11, False)
    _merged_text(ws, form, r, right, width, regime["place_date"], _font(11, italic=True))
    r += 1
    signatures = regime["signatures"]
    tallest = 1
    for (c0, c1), text in zip(_split(width, len(signatures)), signatures, strict=True):
        ws.merge_cells(start_row=r, start_column=c0, end_row=r, end_column=c1)
        cell = ws.cell(r, c0, text)
        cell.font = _font(11, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="top", wrap_text=True)
        tallest = max(tallest, lines_needed(text, 11, form.span_pt(c0, c1), True))
    ws.row_dimensions[r].height = row_height_pt(tallest, 11)
    for k in range(1, SIGNING_ROWS + 1):
        ws.row_dimensions[r + k].height = 16
    return r + SIGNING_ROWS


def _provenance(book: Workbook, form: PrintedForm) -> None:
    """The "Nguồn mẫu biểu" sheet: what the circular confirms and what is
    reconstructed, and how the figures were made (not printed)."""
    sheet = book.create_sheet(PROVENANCE)
    sheet["A1"] = f"Nguồn mẫu biểu — {form.spec.number} (mẫu theo {form.template.regime['name']})"
    sheet["A1"].font = _font(12, bold=True)
    lines = [*form.sheet.provenance, f"Khối chữ ký: {form.template.regime.get('signatures_confidence', '')}"]
    for r, text in enumerate(lines, start=3):
        sheet.cell(r, 1, text).alignment = Alignment(wrap_text=True, vertical="top")
        sheet.cell(r, 1).font = _font(10)
    sheet.column_dimensions["A"].width = 140
    sheet.print_area = "Z1000"  # an empty cell: the sheet is not printed


def write_xlsx(path: Path, form: PrintedForm) -> Path:
    """One form as an XLSX sheet laid out like the circular, set up to print."""
    book = serif_workbook()
    ws = book.active
    ws.title = form.spec.number.replace("/", "-")[:31]
    for c, w in enumerate(form.sheet.widths[:form.width], start=1):
        ws.column_dimensions[get_column_letter(c)].width = w
    _title_block(ws, form)
    number_row = _header_block(ws, form)
    write_row = _tree_row if form.sheet.row_form else _list_row
    for offset, row in enumerate(form.table.itertuples(index=False)):
        write_row(ws, number_row + 1 + offset, form, row._asdict())
    last = _footer(ws, form, number_row + 1 + len(form.table) + 1)
    _page_setup(ws, form, number_row, last)
    _provenance(book, form)
    with atomic_path(path) as tmp:
        book.save(tmp)
    return path


def _split(width: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(k * width / parts) for k in range(parts + 1)]
    return [(bounds[k] + 1, max(bounds[k + 1], bounds[k] + 1)) for k in range(parts)]


def _page_setup(ws: Worksheet, form: PrintedForm, number_row: int, last: int) -> None:
    """Landscape, A4 or A3, header rows repeated on every page; a form too wide
    for one page at a readable size (the transition matrix) prints over
    several pages at ``WIDE_SCALE`` % with its first columns repeated too."""
    ws.page_setup.orientation = "landscape"
    ws.print_options.horizontalCentered = True
    ws.page_setup.paperSize = ws.PAPERSIZE_A3 if form.width > 10 or form.sheet.wide else ws.PAPERSIZE_A4
    if form.sheet.wide:
        ws.sheet_properties.pageSetUpPr.fitToPage = False
        ws.page_setup.scale = WIDE_SCALE
        ws.print_title_cols = "A:D"
    else:
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{HEADER_TOP}:{number_row}"
    ws.print_area = f"A1:{get_column_letter(form.width)}{last}"
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
