"""What the regroup stage tells the officer, in Vietnamese: ``reports/regroup.md``
(the slivers where the two boundary surveys disagree, the checks) and the
crosswalk workbook (one sheet for the table, one per new unit saying where its
land comes from)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..config import NewUnits
from ..io import atomic_path
from ..measure import column_width_pt, lines_needed, row_height_pt
from ..report import markdown_table, vn_number
from ..units import LEVEL_VI
from ..xlsx import FONT, streamed_workbook

SHOWN_SLIVERS = 40
SOURCES_WIDTH = 110  # characters: the column of a new unit's sources line
HEADERS = ["Mã xã cũ", "Tên xã cũ", "Mã đơn vị mới", "Tên đơn vị mới", "Diện tích (ha)", "Tỷ lệ của xã cũ (%)",
           "Tỷ lệ của đơn vị mới (%)"]


def sources_line(unit_name: str, rows: pd.DataFrame) -> str:
    """"Xã Văn Quan: 1.259,01 ha từ Thị trấn Văn Quan, 30,00 ha từ Xã Tân Đoàn"."""
    parts = [f"{vn_number(r.area_m2 / 1e4)} ha từ {r.old_commune_name or r.old_commune_code}"
             for r in rows.sort_values("area_m2", ascending=False).itertuples()]
    return f"{unit_name}: " + ", ".join(parts)


def _sheet_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "", name)[:28] or "Don vi"
    out, k = base, 2
    while out.lower() in taken:
        out, k = f"{base[:26]} {k}", k + 1
    taken.add(out.lower())
    return out


def crosswalk_workbook(path: Path, table: pd.DataFrame, label: str) -> Path:
    """``crosswalk_<label>.xlsx``: the table, then a sheet per new unit."""
    with atomic_path(path) as tmp:
        book = streamed_workbook(tmp)
        head = book.add_format({"bold": True, "text_wrap": True, "valign": "vcenter", "align": "center", "border": 1})
        cell, number = book.add_format({"border": 1}), book.add_format({"border": 1, "num_format": "#,##0.00"})
        sheet = book.add_worksheet("Bảng chuyển đổi")
        sheet.write(0, 0, f"Bảng chuyển đổi diện tích từ xã cũ sang đơn vị hành chính {label}", book.add_format(
            {"bold": True, "font_size": 13}))
        sheet.write_row(2, 0, HEADERS, head)
        sheet.set_row(2, 30)  # the headers wrap on two lines
        for r, row in enumerate(table.itertuples(), start=3):
            sheet.write_row(r, 0, [row.old_commune_code, row.old_commune_name, row.new_unit_code, row.new_unit_name],
                            cell)
            sheet.write_row(r, 4, [round(row.area_m2 / 1e4, 2), round(100 * row.share_of_old, 2),
                                   round(100 * row.share_of_new, 2)], number)
        sheet.set_column(0, 0, 10)
        sheet.set_column(1, 1, 26)
        sheet.set_column(2, 2, 12)
        sheet.set_column(3, 3, 26)
        sheet.set_column(4, 6, 14)
        sheet.repeat_rows(2)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)
        sheet.set_footer(f'&C&"{FONT},Regular"&10Trang &P/&N')  # a table of a province's units runs over pages
        taken = {"bảng chuyển đổi"}
        for code, rows in table.groupby("new_unit_code", sort=True):
            name = rows["new_unit_name"].iat[0] or str(code)
            unit = book.add_worksheet(_sheet_name(name, taken))
            unit.write(0, 0, f"{name} ({code}): nguồn diện tích", book.add_format({"bold": True, "font_size": 13}))
            line = sources_line(name, rows)
            unit.write(1, 0, line, book.add_format({"text_wrap": True, "valign": "top"}))
            unit.set_row(1, row_height_pt(lines_needed(line, 11, column_width_pt(SOURCES_WIDTH)), 11))
            unit.set_column(0, 0, SOURCES_WIDTH)
        book.close()
    return path


def regroup_report(khoanh: pd.DataFrame, pieces: pd.DataFrame, slivers: pd.DataFrame,
                   table: pd.DataFrame, spec: NewUnits, provisional: bool, unit_m2: dict[str, float],
                   held_twice: pd.DataFrame | None = None) -> str:
    """``reports/regroup.md`` (``unit_m2``: each new unit's area by its boundary;
    ``held_twice``: the pairs of old communes whose khoanh overlap, by ``area_m2``)."""
    before, after = khoanh["area_m2"].sum(), pieces["area_m2"].sum()
    by_code = (pieces.groupby("landuse")["area_m2"].sum() - khoanh.groupby("landuse")["area_m2"].sum()).abs()
    lines = [
        f"# Chuyển kết quả kiểm kê sang đơn vị hành chính {spec.label}", "",
        f"Ranh giới đơn vị mới: `{spec.path.name}` ({pieces['commune_code'].nunique()} đơn vị có đất của kỳ kiểm kê; "
        f"cấp: {', '.join(LEVEL_VI[level] for level in spec.levels)}). Mỗi khoanh đất nằm trong một đơn vị mới được "
        "giữ nguyên; khoanh nằm trên ranh giới mới được cắt theo ranh giới; mỗi m² thuộc đúng một đơn vị mới.", "",
        f"- Tổng diện tích trước: {vn_number(before / 1e4)} ha; sau: {vn_number(after / 1e4)} ha "
        f"(chênh lệch {vn_number(abs(after - before), 6)} m²; theo từng mã loại đất chênh lệch lớn nhất "
        f"{vn_number(by_code.max(), 6)} m²).",
        f"- Khoanh đất: {vn_number(len(khoanh), 0)}; mảnh sau khi cắt: {vn_number(len(pieces), 0)}.",
    ]
    if held_twice is not None and len(held_twice):
        lines.append(f"- {len(held_twice)} cặp xã cũ có khoanh đất chồng lên nhau, tổng "
                     f"{vn_number(held_twice['area_m2'].sum() / 1e4, 4)} ha: phần chồng được chuyển sang đơn vị mới "
                     "hai lần, như trong số liệu của xã cũ (xem `reports/aggregate.md`); sửa ở dữ liệu xã cũ rồi "
                     "chạy lại.")
    if provisional:
        lines.append("- Tệp đơn vị mới không có mã: kiemke đánh **mã tạm** 9xxxx theo thứ tự tên; khai báo "
                     "`code_field` hoặc tệp `codes` trong mục [units] để dùng mã chính thức.")
    lines += ["", "## Các mảnh do hai bộ ranh giới không khớp", ""]
    if slivers.empty:
        lines.append("Không có: ranh giới xã cũ và đơn vị mới khớp nhau.")
    else:
        lines.append(f"{len(slivers)} mảnh, tổng {vn_number(slivers['area_m2'].sum() / 1e4, 4)} ha, được giao cho "
                     "đơn vị mới mà khoanh đất đó nằm trong nhiều nhất (không mất, không tính hai lần).")
        shown = slivers.sort_values("area_m2", ascending=False).head(SHOWN_SLIVERS)
        lines += ["", markdown_table(pd.DataFrame({
            "Xã cũ": shown["commune_code"], "Khoanh số": shown["khoanh_no"], "Mã đất": shown["landuse"],
            "Loại": shown["kind"], "Diện tích (m²)": [vn_number(v) for v in shown["area_m2"]],
            "Vị trí X, Y (m)": [f"{x:.0f}, {y:.0f}" for x, y in zip(shown["x"], shown["y"], strict=True)],
            "Giao cho": shown["unit_code"]}))]
        if len(slivers) > SHOWN_SLIVERS:
            lines.append(f"\n… và {len(slivers) - SHOWN_SLIVERS} mảnh nhỏ hơn.")
    lines += ["", "## Nguồn diện tích của từng đơn vị mới", ""]
    lines += [f"- {sources_line(rows['new_unit_name'].iat[0] or str(code), rows)} (số liệu kiểm kê phủ "
              f"{vn_number(100 * rows['area_m2'].sum() / unit_m2[code], 1)} % diện tích đơn vị theo ranh giới)"
              for code, rows in table.groupby("new_unit_code", sort=True)]
    return "\n".join(lines) + "\n"
