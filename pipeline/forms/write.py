"""Writing a computed form as XLSX (the circular's layout, ready to print) and CSV.

The printed sheet holds only what an official form holds: number, national
title and motto, title, reporting lines, the table, the notes a district
office must know of the figures, place and date, signature blocks with room
to sign. Row heights fit the wrapped text (measured with the font's own
metrics, :mod:`pipeline.measure`). The provenance of the layout goes to a second
sheet, "Nguồn mẫu biểu", which is not printed.

Workbooks are streamed with XlsxWriter, each distinct cell format made once
per workbook (:class:`_Sheet`): a form costs a few hundredths of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from ..io import atomic_path, write_csv
from ..measure import column_width_pt, lines_needed, row_height_pt, text_width_pt
from ..regime import FormSpec, Template
from ..units import Unit
from ..xlsx import FONT, streamed_workbook
from .base import Sheet

NUMBER_FORMAT = "#,##0.00"
HEADER_TOP = 8  # the first header row
BODY_PT, HEADER_PT, NOTE_PT, TITLE_PT = 10.0, 10.0, 9.0, 14.0
INDENT_PT = 9.0  # one level of a cell's indent
SIGNING_ROWS = 5  # blank rows under each signature block: room to sign and stamp (≥ 25 mm)
WIDE_SCALE = 72  # % a form too wide for one page prints at: 10 pt text stays ≥ 7 pt
PAGE_PT_A3 = (420 - 2 * 10.16) / 25.4 * 72  # the printable width of an A3 landscape page, pt
PROVENANCE = "Nguồn mẫu biểu"
PAPER_A3, PAPER_A4 = 8, 9  # Excel's paper size codes


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
    def figure_decimals(self) -> int:
        return self.decimals if self.sheet.decimals is None else self.sheet.decimals

    @property
    def width(self) -> int:
        return len(self.sheet.numbers)

    @property
    def page_width(self) -> int:
        """The columns the title and signature blocks span: all of them, or for a
        form printed over several pages those of its first page (no title cut by a page break)."""
        if not self.sheet.wide:
            return self.width
        room = 0.9 * PAGE_PT_A3 * 100 / WIDE_SCALE  # a margin: LibreOffice and Excel do not measure alike
        last = next((n - 1 for n in range(1, self.width + 1) if self.span_pt(1, n) > room), self.width)
        return max(last, 4)

    def span_pt(self, first: int, last: int) -> float:
        """The printed width of columns ``first``…``last`` (1-based) in points."""
        return sum(column_width_pt(w) for w in self.sheet.widths[first - 1:last])


@dataclass
class _Sheet:
    """A worksheet addressed 1-based like the form's layout; one format per
    distinct style, and each row as tall as its tallest text."""

    book: Any
    ws: Worksheet
    heights: dict[int, float] = field(default_factory=dict)
    _formats: dict[tuple, Format] = field(default_factory=dict)

    def fmt(self, size: float = 11, bold: bool = False, italic: bool = False, underline: bool = False,
            align: str | None = None, valign: str = "vcenter", wrap: bool = False, indent: int = 0,
            box: bool = False, number: str | None = None, shrink: bool = False) -> Format:
        key = (size, bold, italic, underline, align, valign, wrap, indent, box, number, shrink)
        if key not in self._formats:
            props: dict[str, Any] = {"font_name": FONT, "font_size": size, "bold": bold, "italic": italic,
                                     "underline": 1 if underline else 0, "valign": valign, "text_wrap": wrap,
                                     "indent": indent, "border": 1 if box else 0, "shrink": shrink}
            if align:
                props["align"] = align
            if number:
                props["num_format"] = number
            self._formats[key] = self.book.add_format(props)
        return self._formats[key]

    def write(self, row: int, col: int, value: Any, fmt: Format) -> None:
        if value is None or value == "" or (not isinstance(value, str) and pd.isna(value)):
            self.ws.write_blank(row - 1, col - 1, None, fmt)
        else:
            self.ws.write(row - 1, col - 1, value, fmt)

    def merge(self, row: int, first: int, last: int, value: Any, fmt: Format, last_row: int | None = None) -> None:
        if last > first or (last_row or row) > row:
            self.ws.merge_range(row - 1, first - 1, (last_row or row) - 1, last - 1, value, fmt)
        else:
            self.write(row, first, value, fmt)

    def tall(self, row: int, height: float) -> None:
        self.heights[row] = max(self.heights.get(row, 0.0), height)

    def apply_heights(self) -> None:
        for row, height in self.heights.items():
            self.ws.set_row(row - 1, height)


def reporting_line(template: Template, unit: Unit) -> str:
    """"Đơn vị báo cáo: …", without the district where the units have none
    (since 1 July 2025); a commune no boundary places in a district leaves
    the district's name to fill in, as its map sheet does. A unit keeps its
    kind unless the label says it ("Xã: Thị trấn Văn Quan", "Tỉnh: Thành phố Hà Nội")."""
    dots = "……………"
    line = unit.variant(template.regime, "reporting_line")
    district = dots if unit.in_unknown_district else unit.district_name
    return line.format(
        commune=unit.commune_name or dots, district=district or dots,
        province=unit.province_heading.removeprefix("Tỉnh ") if unit.province_name else dots)


def _merged_text(sheet: _Sheet, form: PrintedForm, row: int, first: int, last: int, text: str, size: float,
                 align: str = "center", bold: bool = False, italic: bool = False, underline: bool = False) -> None:
    """Text over merged columns of one row, wrapped, the row as tall as it needs."""
    fmt = sheet.fmt(size, bold, italic, underline, align=align, wrap=True)
    sheet.merge(row, first, last, text, fmt)
    sheet.tall(row, row_height_pt(lines_needed(text, size, form.span_pt(first, last), bold), size))


def _right_half(form: PrintedForm, text: str, size: float, bold: bool) -> int:
    """The first column of the right-hand block that holds ``text`` on one line
    (the national title and motto, the unit line): half the width, or wider."""
    first = max(form.page_width // 2, 3) + 1
    while first > 2 and form.span_pt(first, form.page_width) < text_width_pt(text, size, bold) + 8:
        first -= 1
    return first


def _title_block(sheet: _Sheet, form: PrintedForm) -> None:
    """Form number, national title and motto, the form's title, date and reporting lines."""
    spec, regime, width = form.spec, form.template.regime, form.page_width
    number_end = 1  # the form number's columns: as many as it needs
    while number_end < width - 1 and form.span_pt(1, number_end) < text_width_pt(spec.number, 11, True) + 8:
        number_end += 1
    right = min(_right_half(form, regime["country"], 11, True), _right_half(form, regime["motto"], 11, True))
    right = max(right, number_end + 1)
    _merged_text(sheet, form, 1, 1, right - 1, spec.number, 11, "left", bold=True)
    _merged_text(sheet, form, 1, right, width, regime["country"], 11, bold=True)
    _merged_text(sheet, form, 2, right, width, regime["motto"], 11, bold=True, underline=True)
    _merged_text(sheet, form, 4, 1, width, spec.title, TITLE_PT, bold=True)
    _merged_text(sheet, form, 5, 1, width, regime["date_line"].format(date=form.date), 11, italic=True)
    report = reporting_line(form.template, form.unit)
    if not form.sheet.row_form:  # the khoanh list has no unit line: the reporting line takes the row
        _merged_text(sheet, form, 6, 1, width, report, 11, "left")
        return
    unit_line = form.sheet.unit_line or regime["unit_line"]
    right = _right_half(form, unit_line, 11, False)
    if form.span_pt(1, right - 1) < text_width_pt(report, 11) + 8:  # both do not fit one row
        _merged_text(sheet, form, 6, 1, width, report, 11, "left")
        _merged_text(sheet, form, 7, 1, width, unit_line, 11, "right", italic=True)
        return
    _merged_text(sheet, form, 6, 1, right - 1, report, 11, "left")
    _merged_text(sheet, form, 6, right, width, unit_line, 11, "right", italic=True)


def _header_block(sheet: _Sheet, form: PrintedForm) -> int:
    """The merged header cells (boxed) and the numbered row; returns the numbered row."""
    headers = form.sheet.headers
    header_rows = max(h.row + h.rows for h in headers)
    needed = [row_height_pt(1, HEADER_PT)] * header_rows
    header = sheet.fmt(HEADER_PT, bold=True, align="center", wrap=True, box=True)
    covered: set[tuple[int, int]] = set()
    for h in headers:
        r, c = HEADER_TOP + h.row, 1 + h.col
        sheet.merge(r, c, c + h.cols - 1, h.text, header, last_row=r + h.rows - 1)
        covered |= {(r + i, c + j) for i in range(h.rows) for j in range(h.cols)}
        height = row_height_pt(lines_needed(h.text, HEADER_PT, form.span_pt(c, c + h.cols - 1), True), HEADER_PT)
        for k in range(h.row, h.row + h.rows):  # a tall header shares its height with the rows it spans
            needed[k] = max(needed[k], height / h.rows)
    for k, height in enumerate(needed):
        sheet.tall(HEADER_TOP + k, height)
    number_row = HEADER_TOP + header_rows
    blank = sheet.fmt(HEADER_PT, box=True)
    for r in range(HEADER_TOP, number_row):
        for c in range(1, form.width + 1):
            if (r, c) not in covered:
                sheet.write(r, c, None, blank)
    number = sheet.fmt(9, italic=True, align="center", shrink=True, box=True)
    for c, text in enumerate(form.sheet.numbers, start=1):  # "(15)=(16)+…+(18)": one line, shrunk to fit
        sheet.write(number_row, c, text, number)
    sheet.tall(number_row, row_height_pt(1, 9))
    return number_row


def _list_rows(sheet: _Sheet, form: PrintedForm, first: int) -> None:
    """The rows of a list (the khoanh list, the list of changes) from row
    ``first``: text wrapped, each row as tall as its text. A list has a row
    per khoanh, so its formats and widths are looked up once, and each value
    written by its type (text as text, never as a formula or a link)."""
    columns = form.sheet.value_columns
    text = sheet.fmt(BODY_PT, wrap=True, box=True)
    figures = [sheet.fmt(BODY_PT, box=True, number="#,##0.0" if column == "area_m2" else None) for column in columns]
    widths = [form.span_pt(c, c) for c in range(1, len(columns) + 1)]
    ws = sheet.ws
    for r, row in enumerate(zip(*(form.table[column].tolist() for column in columns), strict=True), start=first - 1):
        for c, value in enumerate(row):
            if isinstance(value, str):
                if value:
                    ws.write_string(r, c, value, text)
                    sheet.tall(r + 1, _wrapped_height(value, widths[c]))
                else:
                    ws.write_blank(r, c, None, text)
            elif value is None or pd.isna(value):
                ws.write_blank(r, c, None, figures[c])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                ws.write_number(r, c, value, figures[c])
            else:
                ws.write(r, c, value, figures[c])


@lru_cache(maxsize=4096)
def _wrapped_height(text: str, width_pt: float) -> float:
    """The height of a list row holding ``text`` in a column ``width_pt`` wide
    (the same codes and notes recur down a list)."""
    return row_height_pt(lines_needed(text, BODY_PT, width_pt), BODY_PT)


def _tree_row(sheet: _Sheet, r: int, form: PrintedForm, data: dict) -> None:
    """A row of a form laid out as the circular's tree of land-use codes."""
    level = int(data["level"])
    bold = level <= 1
    plain = sheet.fmt(BODY_PT, bold=bold, box=True)
    for c, text in ((1, data["stt"]), (3, data["code"])):
        sheet.write(r, c, text, plain)
    indent = max(level - 1, 0)
    sheet.write(r, 2, data["name"], sheet.fmt(BODY_PT, bold=bold, italic=data["kind"] == "observation",
                                              align="left", indent=indent, wrap=True, box=True))
    lines = lines_needed(str(data["name"]), BODY_PT, form.span_pt(2, 2) - INDENT_PT * indent, bold)
    note = sheet.fmt(BODY_PT, bold=bold, align="left", indent=1, wrap=True, box=True)
    figure = sheet.fmt(BODY_PT, bold=bold, box=True,
                       number=NUMBER_FORMAT if form.figure_decimals else "#,##0")
    written = 3
    for c, column in enumerate(form.sheet.value_columns, start=4):
        value = data[column]
        written = c
        if isinstance(value, str) or value is None or pd.isna(value):  # a note, or no figure
            sheet.write(r, c, value if isinstance(value, str) else None, note)
            if isinstance(value, str) and value:
                lines = max(lines, lines_needed(value, BODY_PT, form.span_pt(c, c) - INDENT_PT, bold))
        else:
            sheet.write(r, c, round(int(value) / form.sheet.scale, form.figure_decimals), figure)
    for c in range(written + 1, form.width + 1):
        sheet.write(r, c, None, plain)
    sheet.tall(r, row_height_pt(lines, BODY_PT))


def _footer(sheet: _Sheet, form: PrintedForm, r: int) -> int:
    """The printed notes under the table, the place and date line and the
    signature blocks with room to sign; returns the last row."""
    width = form.page_width
    for text in form.sheet.notes:
        _merged_text(sheet, form, r, 1, width, text, NOTE_PT, "left", italic=True)
        r += 1
    r += 1
    regime = form.template.regime
    right = _right_half(form, regime["place_date"], 11, False)
    _merged_text(sheet, form, r, right, width, regime["place_date"], 11, italic=True)
    r += 1
    signatures = form.unit.variant(regime, "signatures")
    block = sheet.fmt(11, bold=True, align="center", valign="top", wrap=True)
    tallest = 1
    for (c0, c1), text in zip(_split(width, len(signatures)), signatures, strict=True):
        sheet.merge(r, c0, c1, text, block)
        tallest = max(tallest, lines_needed(text, 11, form.span_pt(c0, c1), True))
    sheet.tall(r, row_height_pt(tallest, 11))
    for k in range(1, SIGNING_ROWS + 1):
        sheet.tall(r + k, 16)
    return r + SIGNING_ROWS


def _provenance(book: Any, form: PrintedForm) -> None:
    """The "Nguồn mẫu biểu" sheet: what the circular confirms and what is
    reconstructed, and how the figures were made (not printed)."""
    ws = book.add_worksheet(PROVENANCE)
    sheet = _Sheet(book, ws)
    sheet.write(1, 1, f"Nguồn mẫu biểu — {form.spec.number} (mẫu theo {form.template.regime['name']})",
                sheet.fmt(12, bold=True, valign="bottom"))
    lines = [*form.sheet.provenance, f"Khối chữ ký: {form.template.regime.get('signatures_confidence', '')}"]
    text = sheet.fmt(10, valign="top", wrap=True)
    for r, line in enumerate(lines, start=3):
        sheet.write(r, 1, line, text)
    ws.set_column(0, 0, 140)
    ws.print_area(999, 25, 999, 25)  # an empty cell: the sheet is not printed


def write_xlsx(path: Path, form: PrintedForm) -> Path:
    """One form as an XLSX sheet laid out like the circular, set up to print."""
    with atomic_path(path) as tmp:
        book = streamed_workbook(tmp)
        # the reference date as the creation date: the same figures give the same bytes
        book.set_properties({"created": datetime.strptime(form.date, "%d/%m/%Y")})
        ws = book.add_worksheet(form.spec.number.replace("/", "-")[:31])
        sheet = _Sheet(book, ws)
        for c, w in enumerate(form.sheet.widths[:form.width]):
            ws.set_column(c, c, w)
        _title_block(sheet, form)
        number_row = _header_block(sheet, form)
        if form.sheet.row_form:
            for offset, row in enumerate(form.table.itertuples(index=False)):
                _tree_row(sheet, number_row + 1 + offset, form, row._asdict())
        else:
            _list_rows(sheet, form, number_row + 1)
        last = _footer(sheet, form, number_row + 1 + len(form.table) + 1)
        sheet.apply_heights()
        _page_setup(ws, form, number_row, last)
        _provenance(book, form)
        book.close()
    return path


def _split(width: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(k * width / parts) for k in range(parts + 1)]
    return [(bounds[k] + 1, max(bounds[k + 1], bounds[k] + 1)) for k in range(parts)]


def _page_setup(ws: Worksheet, form: PrintedForm, number_row: int, last: int) -> None:
    """Landscape, A4 or A3, header rows repeated on every page; a form too wide
    for one page at a readable size (the transition matrix) prints over
    several pages at ``WIDE_SCALE`` % with its first columns repeated too."""
    ws.set_landscape()
    ws.center_horizontally()
    ws.set_paper(PAPER_A3 if form.width > 10 or form.sheet.wide else PAPER_A4)
    if form.sheet.wide:
        ws.set_print_scale(WIDE_SCALE)
        ws.repeat_columns(0, 3)
    else:
        ws.fit_to_pages(1, 0)
    ws.repeat_rows(HEADER_TOP - 1, number_row - 1)
    ws.print_area(0, 0, last - 1, form.width - 1)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.freeze_panes(number_row, 3)


def write_form_csv(path: Path, table: pd.DataFrame, sheet: Sheet, decimals: int = 2) -> Path:
    """The same numbers as the XLSX, one row per form row (``decimals``: :attr:`PrintedForm.figure_decimals`)."""
    if not sheet.row_form:
        out = table[sheet.value_columns].copy()
        out.columns = [f"{n} {label}" for n, label in zip(sheet.numbers, sheet.labels, strict=True)]
        return write_csv(path, out)
    columns = {"(1) Thứ tự": table["stt"].to_numpy(), "(2) Loại đất": table["name"].fillna("").to_numpy(),
               "(3) Mã": table["code"].to_numpy()}
    for number, label, column in zip(sheet.numbers[3:], sheet.labels, sheet.value_columns, strict=True):
        values = table[column].to_numpy(dtype=object)
        if all(isinstance(v, str) for v in values):
            columns[f"{number} {label}"] = values
            continue
        columns[f"{number} {label}"] = _figures(values, sheet.scale, decimals)
    return write_csv(path, pd.DataFrame(columns, index=table.index))


def _figures(values: np.ndarray, scale: float, decimals: int) -> np.ndarray:
    """A column's figures as the CSV writes them: in the form's unit, ``decimals``
    places, empty where there is none (formatted all at once: a form has ~30 columns)."""
    numeric = np.round(pd.to_numeric(values, errors="coerce").astype(float) / scale, decimals)
    missing = np.isnan(numeric)
    return np.where(missing, "", np.char.mod(f"%.{decimals}f", np.where(missing, 0.0, numeric))).astype(object)
