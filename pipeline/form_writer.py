"""Writing a computed form as XLSX (the circular's layout, ready to print) and CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins

from .forms import FormSpec, OwnerColumn, Template, Unit
from .io import atomic_path, write_csv

FONT = "Times New Roman"  # has every Vietnamese glyph on office machines; LibreOffice maps it to Liberation Serif
THIN = Side(style="thin")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
NUMBER_FORMAT = "#,##0.00"


@dataclass
class Header:
    """One header cell: text, its first row/column (0-based in the header), span."""

    text: str
    row: int
    col: int
    rows: int = 1
    cols: int = 1


def _font(size: float = 11, bold: bool = False, italic: bool = False, underline: str | None = None) -> Font:
    return Font(name=FONT, size=size, bold=bold, italic=italic, underline=underline)


def owner_headers(spec: FormSpec, columns: list[OwnerColumn], template: Template) -> tuple[list[Header], list[str]]:
    """Header cells of a by-owner form (3 header rows) and the numbered row."""
    sets = template.column_sets[spec.column_set]
    users = [c for c in columns if c.block == "users"]
    managers = [c for c in columns if c.block == "managers"]
    cells = [Header("Thứ tự", 0, 0, 3), Header("Loại đất", 0, 1, 3), Header("Mã", 0, 2, 3),
             Header(spec.total_header, 0, 3, 3)]
    col = 4
    for block, members, title in (("users", users, sets["users_header"]), ("managers", managers, sets["managers_header"])):
        cells.append(Header(title, 0, col, 1, len(members) + 1))
        cells.append(Header("Tổng số", 1, col, 2))
        col += 1
        i = 0
        while i < len(members):
            group = members[i].group
            if group:
                span = [m for m in members[i:] if m.group == group]
                span = span[: next((k for k, m in enumerate(span) if m.group != group), len(span))]
                cells.append(Header(group, 1, col, 1, len(span)))
                for k, member in enumerate(span):
                    cells.append(Header(member.header, 2, col + k))
                col += len(span)
                i += len(span)
            else:
                cells.append(Header(members[i].header, 1, col, 2))
                col += 1
                i += 1
    n_users, n_managers = len(users), len(managers)
    user_total, manager_total = 5, 5 + n_users + 1
    numbers = ["(1)", "(2)", "(3)", f"({4})=({user_total})+({manager_total})",
               f"({user_total})=({user_total + 1})+…+({user_total + n_users})"]
    numbers += [f"({user_total + 1 + k})" for k in range(n_users)]
    numbers.append(f"({manager_total})=({manager_total + 1})+…+({manager_total + n_managers})")
    numbers += [f"({manager_total + 1 + k})" for k in range(n_managers)]
    return cells, numbers


def unit_headers(spec: FormSpec, unit: Unit) -> tuple[list[Header], list[str]]:
    n = len(unit.children)
    cells = [Header("Thứ tự", 0, 0, 3), Header("Loại đất", 0, 1, 3), Header("Mã", 0, 2, 3),
             Header(spec.total_header, 0, 3, 3), Header(spec.units_header, 0, 4, 1, max(n, 1))]
    cells += [Header(child.name, 1, 4 + k, 2) for k, child in enumerate(unit.children)]
    numbers = ["(1)", "(2)", "(3)", f"(4)=(5)+…+({4 + n})" if n > 1 else "(4)"]
    numbers += [f"({5 + k})" for k in range(n)]
    return cells, numbers


def change_headers(spec: FormSpec, change) -> tuple[list[Header], list[str], list[str]]:
    """Biểu 14/TKĐĐ: (4) this year, against the previous inventory (5)(6) and the
    latest statistics (7)(8), (9) note."""
    stats_year = change.statistics_year or "…"
    cells = [Header("Thứ tự", 0, 0, 2), Header("Mục đích sử dụng", 0, 1, 2), Header("Mã", 0, 2, 2),
             Header(spec.total_header, 0, 3, 2),
             Header(f"So với năm {change.previous_year}", 0, 4, 1, 2), Header("Diện tích năm "
                                                                              f"{change.previous_year}", 1, 4),
             Header("Tăng (+), giảm (-)", 1, 5),
             Header(f"So với năm {stats_year}", 0, 6, 1, 2), Header(f"Diện tích năm {stats_year}", 1, 6),
             Header("Tăng (+), giảm (-)", 1, 7), Header("Ghi chú", 0, 8, 2)]
    numbers = ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)=(4)-(5)", "(7)", "(8)=(4)-(7)", "(9)"]
    labels = [spec.total_header, f"Diện tích năm {change.previous_year}", "Tăng (+), giảm (-)",
              f"Diện tích năm {stats_year}", "Tăng (+), giảm (-)", "Ghi chú"]
    return cells, numbers, labels


def matrix_headers(codes: list[str], change) -> tuple[list[Header], list[str], list[str]]:
    """The transition matrix: previous area, one column per current code, the
    area leaving the current statistics, and the total decrease."""
    n = len(codes)
    cells = [Header("Thứ tự", 0, 0, 2), Header(f"Loại đất năm {change.previous_year}", 0, 1, 2),
             Header("Mã", 0, 2, 2), Header(f"Diện tích năm {change.previous_year}", 0, 3, 2),
             Header(f"Chu chuyển sang loại đất năm {change.year}", 0, 4, 1, n)]
    cells += [Header(code, 1, 4 + k) for k, code in enumerate(codes[:-1])]
    cells += [Header(f"Không thuộc diện tích năm {change.year}", 1, 4 + n - 1),
              Header("Cộng giảm", 0, 4 + n, 2)]
    numbers = [f"({k})" for k in range(1, n + 6)]
    labels = [f"Diện tích năm {change.previous_year}", *codes[:-1], f"Không thuộc diện tích năm {change.year}",
              "Cộng giảm"]
    return cells, numbers, labels


KHOANH_HEADERS = [
    Header("Thứ tự khoanh đất", 0, 0, 2), Header("Diện tích (m²)", 0, 1, 2),
    Header("Mã loại đất", 0, 2, 1, 2), Header("Hiện trạng", 1, 2), Header("Kỳ trước", 1, 3),
    Header("Mã loại đất sử dụng kết hợp", 0, 4, 2),
    Header("Mã đối tượng", 0, 5, 1, 2), Header("Hiện trạng", 1, 5), Header("Kỳ trước", 1, 6),
    Header("Mã khu vực tổng hợp", 0, 7, 2), Header("Ghi chú", 0, 8, 2),
]


def reporting_line(template: Template, unit: Unit) -> str:
    dots = "……………"
    return template.regime["reporting_line"].format(
        commune=unit.commune_name or dots, district=unit.district_name or dots, province=unit.province_name or dots)


def write_xlsx(path: Path, *, spec: FormSpec, template: Template, unit: Unit, table: pd.DataFrame,
               headers: list[Header], numbers: list[str], value_columns: list[str], notes: list[str],
               date: str, decimals: int = 2, scale: float = 100.0) -> Path:
    """One form as an XLSX sheet laid out like the circular, set up to print."""
    wb = Workbook()
    ws = wb.active
    ws.title = spec.number.replace("/", "-")[:31]
    width = len(numbers)
    last = get_column_letter(width)
    half = max(width // 2, 3)

    ws["A1"] = spec.number
    ws["A1"].font = _font(11, bold=True)
    ws.merge_cells(start_row=1, start_column=half + 1, end_row=1, end_column=width)
    ws.cell(1, half + 1, template.regime["country"]).font = _font(11, bold=True)
    ws.merge_cells(start_row=2, start_column=half + 1, end_row=2, end_column=width)
    ws.cell(2, half + 1, template.regime["motto"]).font = _font(11, bold=True, underline="single")
    for r in (1, 2):
        ws.cell(r, half + 1).alignment = Alignment(horizontal="center")
    for r, text, font in ((4, spec.title, _font(14, bold=True)),
                          (5, template.regime["date_line"].format(date=date), _font(11, italic=True))):
        ws.merge_cells(f"A{r}:{last}{r}")
        ws[f"A{r}"] = text
        ws[f"A{r}"].font = font
        ws[f"A{r}"].alignment = Alignment(horizontal="center")
    ws.merge_cells(start_row=6, start_column=1, end_row=6, end_column=half)
    ws["A6"] = reporting_line(template, unit)
    ws["A6"].font = _font(11)
    if spec.kind != "khoanh_list":
        ws.merge_cells(start_row=6, start_column=half + 1, end_row=6, end_column=width)
        ws.cell(6, half + 1, template.regime["unit_line"]).font = _font(11, italic=True)
        ws.cell(6, half + 1).alignment = Alignment(horizontal="right")

    top = 8
    header_rows = max(h.row + h.rows for h in headers)
    for h in headers:
        r, c = top + h.row, 1 + h.col
        if h.rows > 1 or h.cols > 1:
            ws.merge_cells(start_row=r, start_column=c, end_row=r + h.rows - 1, end_column=c + h.cols - 1)
        cell = ws.cell(r, c, h.text)
        cell.font = _font(10, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    number_row = top + header_rows
    for r in range(top, number_row + 1):
        for c in range(1, width + 1):
            ws.cell(r, c).border = BOX
    for c, text in enumerate(numbers, start=1):
        cell = ws.cell(number_row, c, text)
        cell.font = _font(9, italic=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)

    first = number_row + 1
    for offset, row in enumerate(table.itertuples(index=False)):
        r = first + offset
        data = row._asdict()
        if spec.kind == "khoanh_list":
            values = [data[c] for c in value_columns]
            for c, value in enumerate(values, start=1):
                cell = ws.cell(r, c, value)
                cell.font = _font(10)
                cell.border = BOX
            ws.cell(r, 2).number_format = "#,##0.0"
            continue
        level = int(data["level"])
        bold = level <= 1
        ws.cell(r, 1, data["stt"]).font = _font(10, bold=bold)
        name = ws.cell(r, 2, data["name"])
        name.font = _font(10, bold=bold, italic=data["kind"] == "observation")
        name.alignment = Alignment(indent=max(level - 1, 0), wrap_text=True)
        ws.cell(r, 3, data["code"]).font = _font(10, bold=bold)
        for c, column in enumerate(value_columns, start=4):
            value = data[column]
            if isinstance(value, str) or value is None or pd.isna(value):  # a note, or no figure
                cell = ws.cell(r, c, value if isinstance(value, str) else None)
                cell.alignment = Alignment(wrap_text=True, vertical="center")
            else:
                cell = ws.cell(r, c, round(int(value) / scale, decimals))
                cell.number_format = NUMBER_FORMAT
            cell.font = _font(10, bold=bold)
        for c in range(1, width + 1):
            ws.cell(r, c).border = BOX
    end = first + len(table)

    r = end + 1
    for note in notes:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.cell(r, 1, note).font = _font(9, italic=True)
        ws.cell(r, 1).alignment = Alignment(wrap_text=True)
        ws.row_dimensions[r].height = 15 * (1 + len(note) // 180)
        r += 1
    r += 1
    signatures = template.regime["signatures"]
    ws.merge_cells(start_row=r, start_column=width - half + 1, end_row=r, end_column=width)
    ws.cell(r, width - half + 1, template.regime["place_date"]).font = _font(11, italic=True)
    ws.cell(r, width - half + 1).alignment = Alignment(horizontal="center")
    r += 1
    spans = _split(width, len(signatures))
    for (c0, c1), text in zip(spans, signatures):
        ws.merge_cells(start_row=r, start_column=c0, end_row=r + 2, end_column=c1)
        cell = ws.cell(r, c0, text)
        cell.font = _font(11, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="top", wrap_text=True)

    _layout(ws, spec, width, top, number_row)
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return path


def _split(width: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(k * width / parts) for k in range(parts + 1)]
    return [(bounds[k] + 1, max(bounds[k + 1], bounds[k] + 1)) for k in range(parts)]


def _layout(ws, spec: FormSpec, width: int, top: int, number_row: int) -> None:
    """Column widths and print set-up: landscape, fit to width, header rows repeated."""
    if spec.kind == "khoanh_list":
        widths = [10, 14, 10, 10, 16, 10, 10, 14, 40]
    elif spec.kind == "change":
        widths = [9, 42, 7, 12, 12, 12, 12, 12, 36]
    elif spec.kind == "transition":
        widths = [5, 30, 6, 10] + [7.5] * (width - 4)
    else:
        widths = [9, 42, 7] + [12] * (width - 3)
    for c, w in enumerate(widths[:width], start=1):
        ws.column_dimensions[get_column_letter(c)].width = w
    for r in range(top, number_row):
        ws.row_dimensions[r].height = 48 if r > top else 30
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A3 if width > 10 else ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{top}:{number_row}"
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.print_options.horizontalCentered = True
    ws.freeze_panes = ws.cell(number_row + 1, 4)


def write_form_csv(path: Path, table: pd.DataFrame, spec: FormSpec, numbers: list[str],
                   value_columns: list[str], labels: list[str], scale: float = 100.0, decimals: int = 2) -> Path:
    """The same numbers as the XLSX, one row per form row, in ha (2 decimals)."""
    if spec.kind == "khoanh_list":
        out = table[value_columns].copy()
        out.columns = [f"{n} {label}" for n, label in zip(numbers, labels)]
        return write_csv(path, out)
    out = pd.DataFrame({
        "(1) Thứ tự": table["stt"], "(2) Loại đất": table["name"].fillna(""), "(3) Mã": table["code"],
    })
    for number, label, column in zip(numbers[3:], labels, value_columns):
        values = table[column]
        if values.map(lambda v: isinstance(v, str)).all():
            out[f"{number} {label}"] = values
            continue
        numeric = pd.to_numeric(values, errors="coerce") / scale
        out[f"{number} {label}"] = numeric.round(decimals).map(lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}")
    return write_csv(path, out)

