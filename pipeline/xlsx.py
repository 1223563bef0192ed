"""Workbooks officers print: Times New Roman as the default font (Excel's
column widths are counted in the default font's digits, so a sheet prints the
same in Excel and in LibreOffice, which lacks Excel's Calibri and maps Times
New Roman to its metric twin Liberation Serif), and a landscape page setup."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.worksheet.worksheet import Worksheet

FONT = "Times New Roman"


def serif_workbook() -> Workbook:
    """A new workbook whose default ("Normal") font is Times New Roman 11."""
    book = Workbook()
    serif = Font(name=FONT, sz=11, family=1)
    book._fonts = IndexedList([serif])  # the "Normal" style's font, index 0
    book._named_styles["Normal"].font = serif
    return book


def streamed_workbook(path: Path) -> xlsxwriter.Workbook:
    """A new XlsxWriter workbook at ``path`` whose default font is Times New Roman 11,
    put together in memory (no temporary file per sheet part: a tenth faster a form)."""
    return xlsxwriter.Workbook(str(path), {"default_format_properties": {"font_name": FONT, "font_size": 11},
                                           "in_memory": True})


def landscape(sheet: Worksheet, *, a3: bool, title_rows: str | None = None, numbered: bool = False) -> None:
    """Print ``sheet`` landscape on A3 or A4, one page wide, ``title_rows`` ("4:4") on every page,
    ``numbered`` "Trang 2/5" at the foot of each page (a list that runs over pages)."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A3 if a3 else sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True
    if title_rows:
        sheet.print_title_rows = title_rows
    if numbered:
        sheet.oddFooter.center.text = "Trang &P/&N"
        sheet.oddFooter.center.font = f"{FONT},Regular"
        sheet.oddFooter.center.size = 10
