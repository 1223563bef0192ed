"""The Circular 27/2018 forms: read back, checked against independent sums, printed."""

import json
import os
import re
import subprocess
import time
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.forms import FormConsistencyError, check_forms, compute_forms, leaf_cells
from pipeline.reference import landuse_tree
from pipeline.regime import load_template
from pipeline.units import build_units

TEMPLATE = load_template()
TREE = landuse_tree()
COMMUNES = ["06253", "06274", "06286", "06307", "06319"]


def _ha(m2: float) -> Decimal:
    return (Decimal(repr(m2)) / Decimal(10_000)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _dec(value) -> Decimal:
    return Decimal(str(float(value))).quantize(Decimal("0.01"))


def _independent_cells(parcels: pd.DataFrame, column_set: str) -> dict[tuple[str, int], Decimal]:
    """Leaf code × owner column → ha, straight from the parcels (uses expanded), exact."""
    columns = TEMPLATE.columns(column_set)
    column_of = {code: i for i, c in enumerate(columns) for code in c.codes}
    rows = []
    for landuse, owner, area, uses in zip(parcels["landuse"], parcels["owner_type"], parcels.geometry.area,
                                         parcels["uses"], strict=True):
        split = json.loads(uses) if isinstance(uses, str) else {landuse: area}
        rows += [(code, column_of.get(owner, -1), a) for code, a in split.items()]
    sums = pd.DataFrame(rows, columns=["code", "col", "m2"]).groupby(["code", "col"])["m2"].sum()
    return {key: Decimal(repr(v)) / Decimal(10_000) for key, v in sums.items()}


def _sheet(path: Path):
    return openpyxl.load_workbook(path).active


def _find(ws, text: str) -> tuple[int, int]:
    for row in ws.iter_rows():
        for cell in row:
            if cell.value == text:
                return cell.row, cell.column
    raise AssertionError(f"{text!r} not in {ws.title}")


def _body(ws) -> pd.DataFrame:
    """The numbered rows of a form (below the '(1)' row), as a frame of cell values."""
    start, _ = _find(ws, "(1)")
    rows = []
    for row in ws.iter_rows(min_row=start + 1, values_only=True):
        if row[2] is None and row[0] is None and not isinstance(row[1], str):
            break
        if isinstance(row[1], str) and (row[1].startswith("Ghi chú") or row[1].startswith("Số liệu")):
            break
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("code", ["06274", "06286", "06307"])
def test_commune_biểu_01_read_back_equals_an_independent_groupby(sample_run, code):
    ws = _sheet(sample_run / "forms/xa" / code / "Bieu_01_TKDD.xlsx")
    assert ws["A1"].value == "Biểu 01/TKĐĐ"
    _find(ws, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    _find(ws, "Độc lập - Tự do - Hạnh phúc")
    _find(ws, "THỐNG KÊ, KIỂM KÊ ĐỊNH KỲ DIỆN TÍCH ĐẤT ĐAI")
    _find(ws, "(Đến ngày 31/12/2019)")
    _find(ws, "Đơn vị tính diện tích: ha")
    _find(ws, "(4)=(5)+(15)")
    _find(ws, "Hộ gia đình, cá nhân trong nước (GDC)")
    assert any(isinstance(c.value, str) and c.value.startswith("Đơn vị báo cáo: Xã:") and "Huyện: Văn Quan" in c.value
               and "Tỉnh: Lạng Sơn" in c.value for row in ws.iter_rows() for c in row)

    body = _body(ws)
    assert body.iloc[0, 1] == "Tổng diện tích đất của đơn vị hành chính (1+2+3)"
    codes = [c for c in body.iloc[1:, 2]]
    assert codes == [c for c in TREE.codes if TREE.root(c) in ("NNP", "PNN", "CSD", "MVB")]
    assert list(body.iloc[1:6, 0]) == ["1", "1.1", "1.1.1", "1.1.1.1", "1.1.1.1.1"]

    parcels = gpd.read_parquet(sample_run / "parcels" / f"{code}.parquet")
    cells = _independent_cells(parcels, "layout_a")
    n_users = sum(c.block == "users" for c in TEMPLATE.columns("layout_a"))
    sheet_columns = [5 + k for k in range(n_users)] + [5 + n_users + 1 + k for k in range(3)]  # 0-based
    printed = {}
    for r, code_ in enumerate(body.iloc[1:, 2], start=1):
        printed[code_] = [_dec(body.iat[r, c]) for c in sheet_columns]
        assert _dec(body.iat[r, 3]) == sum(printed[code_])
    for leaf in TREE.leaves:  # each printed leaf cell is within 0.01 ha of its exact area
        for col in range(len(sheet_columns)):
            exact = cells.get((leaf, col), Decimal(0))
            assert abs(printed[leaf][col] - exact) < Decimal("0.01"), (leaf, col, printed[leaf][col], exact)
    for code_ in printed:  # and every parent is the sum of its printed leaves
        leaves = [c for c in TREE.leaves if code_ in TREE.ancestors(c)]
        if leaves:
            assert printed[code_] == [sum((printed[leaf][k] for leaf in leaves), Decimal(0))
                                      for k in range(len(sheet_columns))], code_
    total = _dec(body.iat[0, 3])
    assert total == sum(_dec(body.iat[r, 3]) for r in range(1, len(body)) if body.iat[r, 2] in
                        ("NNP", "PNN", "CSD"))
    assert total == _ha(sum(float(v) for v in cells.values()) * 1e4)  # the natural area, rounded once


def test_biểu_02_03_match_biểu_01_and_rollups_sum(sample_run):
    def totals(level, code, form):
        frame = pd.read_csv(sample_run / "forms" / level / code / f"{form}.csv", dtype=str, encoding="utf-8-sig")
        return frame.set_index("(3) Mã")[frame.columns[3]].astype(float)

    for level, code in [("xa", c) for c in COMMUNES] + [("huyen", "184"), ("tinh", "20")]:
        b01 = totals(level, code, "Bieu_01_TKDD")
        for form in ("Bieu_02_TKDD", "Bieu_03_TKDD"):
            sub = totals(level, code, form)
            assert (sub == b01.loc[sub.index]).all(), (level, code, form)
    district = totals("huyen", "184", "Bieu_01_TKDD")
    communes = sum(totals("xa", c, "Bieu_01_TKDD") for c in COMMUNES)
    assert np.allclose(district, communes, atol=1e-9)
    assert np.allclose(totals("tinh", "20", "Bieu_01_TKDD"), district, atol=1e-9)
    b04 = pd.read_csv(sample_run / "forms/huyen/184/Bieu_04_TKDD.csv", dtype=str, encoding="utf-8-sig")
    units = b04.columns[4:]
    assert len(units) == 5 and all(any(name in u for u in units) for name in ("Văn Quan", "Khánh Khê", "Yên Phúc"))
    values = b04[b04.columns[3:]].astype(float)
    assert np.allclose(values.iloc[:, 0], values.iloc[:, 1:].sum(axis=1))
    assert np.allclose(b04.set_index("(3) Mã")[b04.columns[3]].astype(float), district.loc[b04["(3) Mã"]].values)


def test_khoanh_list(sample_run):
    ws = _sheet(sample_run / "forms/xa/06253/Danh_sach_khoanh_dat.xlsx")
    _find(ws, "DANH SÁCH CÁC KHOANH ĐẤT THỐNG KÊ, KIỂM KÊ ĐẤT ĐAI")
    khoanh = gpd.read_parquet(sample_run / "khoanh/06253.parquet")
    body = _body(ws)
    assert list(body.iloc[:, 0]) == list(range(1, len(khoanh) + 1))
    assert sum(body.iloc[:, 1]) == pytest.approx(khoanh["area_m2"].round(1).sum())
    assert (body.iloc[:, 4].fillna("").str.contains("CLN")).any()  # ODT+CLN combined use
    assert (body.iloc[:, 8].fillna("").str.startswith("khoảng hở")).sum() == 3  # the planted gaps
    # (4) and (7): the previous inventory's code and object, where the 2014 map covers the khoanh
    assert body.iloc[:, 3].notna().mean() > 0.95 and body.iloc[:, 6].notna().mean() > 0.95
    assert set(body.iloc[:, 6].dropna()) <= set(body.iloc[:, 5].dropna())  # objects the sample knows


def test_total_row_is_numbered_i_when_the_observation_rows_are_ii(sample_run):
    ws = _sheet(sample_run / "forms/xa/06253/Bieu_01_TKDD.xlsx")
    body = _body(ws)
    assert body.iloc[0, 0] == "I" and "Tổng diện tích" in body.iloc[0, 1]
    assert list(body.loc[body.iloc[:, 2] == "MVB", 0]) == ["II"]


def test_print_setup(sample_run):
    ws = _sheet(sample_run / "forms/tinh/20/Bieu_01_TKDD.xlsx")
    assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0  # one page wide (1: the default)
    assert ws.print_title_rows is not None and ws["B12"].font.name == "Times New Roman"
    notes = [c.value for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and "không có trong dữ liệu gốc" in c.value]
    assert len(notes) == 1, "a form with inferred user/manager objects must say how much"
    parcels = pd.concat([gpd.read_parquet(p) for p in sorted((sample_run / "parcels").glob("*.parquet"))])
    inferred = parcels[~parcels["owner_source"].isin(["file", "correction"])]
    printed = float(re.search(r"\(([\d.,]+) ha\)", notes[0])[1].replace(".", "").replace(",", "."))
    assert printed == pytest.approx(inferred.geometry.area.sum() / 1e4, abs=0.02)
    book = openpyxl.load_workbook(sample_run / "forms/tinh/20/Bieu_01_TKDD.xlsx")
    provenance = book["Nguồn mẫu biểu"]
    assert "Thông tư 27/2018/TT-BTNMT" in " ".join(str(c.value) for row in provenance.iter_rows() for c in row)
    assert provenance.print_area == "'Nguồn mẫu biểu'!$Z$1000"  # kept with the form, not printed


def _printed_words(ws) -> Counter:
    """Every word of every text cell of the printed sheet."""
    return Counter(w for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str) for w in v.split())


def _overlapping_words(page) -> list[tuple[str, str]]:
    """Pairs of words printed over each other (text spilling out of its cell)."""
    words = page.get_text("words")
    if not words:
        return []
    box = np.array([w[:4] for w in words])
    x0, y0, x1, y1 = (box[:, i] for i in range(4))
    wide = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    tall = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    a, b = np.nonzero(np.triu((wide > 0.5) & (tall > 2.0), k=1))
    return [(words[i][4], words[j][4]) for i, j in zip(a, b, strict=True)]


def test_every_xlsx_prints_whole_with_libreoffice(sample_run, soffice, tmp_path):
    """Each form printed by LibreOffice: landscape A3 or A4 pages, the table's
    header on every page, every word of every text cell on paper (a row too
    low or a column too narrow clips it), no text spilling over its
    neighbour, no '###' for a number too wide for its column."""
    files = sorted((sample_run / "forms").rglob("*.xlsx"))
    assert len(files) == 42  # 01–03 × 7 units, 04 × 2, khoanh list × 5, 14 and the matrix × 7
    for f, pdf in printed_forms(files, soffice, tmp_path):
        pages = len(pdf)
        if f.stem in ("Bieu_01_TKDD", "Bieu_03_TKDD") and f.parent.parent.name == "xa":
            assert pages <= 2, (f, pages)
        if f.stem == "Bieu_02_TKDD":
            assert pages == 1, (f, pages)


def printed_forms(files: list[Path], soffice: str, tmp_path: Path):
    """Print ``files`` with LibreOffice and check every page (see the test above);
    yields each file with its open PDF."""
    fitz = pytest.importorskip("fitz")
    by_name: dict[str, list[Path]] = {}
    for f in files:  # one soffice call per output name (names repeat across units)
        by_name.setdefault(f"{f.parent.parent.name}_{f.parent.name}", []).append(f)
    for unit, group in by_name.items():
        out = tmp_path / unit
        result = subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                                 "--convert-to", "pdf", "--outdir", str(out), *map(str, group)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        for f in group:
            with fitz.open(out / f"{f.stem}.pdf") as pdf:
                sizes = {(round(p.rect.width), round(p.rect.height)) for p in pdf}
                assert sizes <= {(1191, 842), (842, 595)} and len(sizes) == 1, (f, sizes)
                pages = [p.get_text("words") for p in pdf]
                assert all(any(w[4] == "(1)" for w in words) for words in pages), f"{f}: a page without the header"
                printed = Counter(w[4] for words in pages for w in words)
                missing = _printed_words(_sheet(f)) - printed
                assert not missing, f"{f}: not on paper: {sorted(missing)[:10]}"
                assert not any("###" in w for w in printed), f"{f}: a number too wide for its column"
                spilled = [pair for page in pdf for pair in _overlapping_words(page)]
                assert not spilled, f"{f}: text over text: {spilled[:5]}"
                sizes = Counter()
                for page in pdf:
                    for block in page.get_text("dict")["blocks"]:
                        for line in block.get("lines", []):
                            for span in line["spans"]:
                                sizes[round(span["size"], 1)] += len(span["text"].strip())
                body_size = sizes.most_common(1)[0][0]
                assert body_size >= 7 and min(s for s, n in sizes.items() if n) >= 6, (f, sorted(sizes))
                yield f, pdf


def test_every_2024_form_prints_whole_with_libreoffice(run_2024, soffice, tmp_path):
    """The Circular 08/2024 forms pass the same print checks (Biểu 04/TKKK and 05/TKKK span pages)."""
    files = sorted((run_2024 / "forms").rglob("*.xlsx"))
    assert len(files) == 5 * 9 - 8 + 2 * 8  # 01, 02, 04, 05 × 9 units, 03 × 1, Phụ lục III and IV × 8
    for f, pdf in printed_forms(files, soffice, tmp_path):
        if f.stem in ("Bieu_01_TKKK", "Bieu_02_TKKK") and f.parent.parent.name == "xa":
            assert len(pdf) <= 3, (f, len(pdf))


# ------------------------------------------------------------ inline checks


def _areas(rows):
    return pd.DataFrame(rows, columns=["commune_code", "landuse", "owner_type", "area_m2"])


def _units(codes=("00001", "00002")):
    bounds = pd.DataFrame({"commune_code": list(codes), "commune_name": ["Xã A", "Xã B"][: len(codes)],
                           "district_code": "001", "district_name": "Huyện H"})
    return build_units(list(codes), bounds, "Lạng Sơn", "20")


def test_rounding_gives_one_natural_area_and_parents_that_add_up():
    # 3 × 0.004 ha: the natural area 0.012 ha prints 0.01; the cells are apportioned to it (the largest
    # remainder, the first on a tie, gets the 0.01) and every parent is the sum of its printed children
    areas = _areas([("00001", "LUC", "GDC", 40.0), ("00001", "LUK", "GDC", 40.0), ("00001", "BHK", "GDC", 40.0),
                    ("00002", "LUC", "GDC", 50.0)])
    tables = compute_forms(areas, _units(), TEMPLATE)
    b01 = tables[("01", "xa/00001")].set_index("code")
    assert b01["total"].iat[0] == 1 and b01.at["NNP", "total"] == 1
    assert (b01.at["LUC", "total"], b01.at["LUK", "total"], b01.at["BHK", "total"]) == (1, 0, 0)
    assert b01.at["LUA", "total"] == b01.at["LUC", "total"] + b01.at["LUK", "total"] + b01.at["LUN", "total"]
    assert tables[("01", "xa/00002")].set_index("code").at["LUC", "total"] == 1  # 0.005 ha rounds half up
    assert tables[("01", "huyen/001")].set_index("code").at["NNP", "total"] == 2  # Σ of its communes' figures


def test_an_owner_code_without_a_column_is_refused():
    with pytest.raises(FormConsistencyError, match=r"\['XYZ'\] have no column"):
        leaf_cells(_areas([("00001", "LUC", "XYZ", 10.0)]), TEMPLATE.columns("layout_a"), form="Biểu 01/TKĐĐ")


def test_tng_on_agricultural_land_cannot_hide_in_biểu_02():
    with pytest.raises(FormConsistencyError, match="Biểu 02/TKĐĐ"):
        compute_forms(_areas([("00001", "LUC", "TNG", 10_000.0)]), _units(("00001",)), TEMPLATE)


def test_broken_tables_fail_the_checks():
    units = _units()
    tables = compute_forms(_areas([("00001", "LUC", "GDC", 10_000.0), ("00002", "ONT", "UBQ", 20_000.0)]),
                           units, TEMPLATE)
    tables[("01", "xa/00002")].loc[5, "total"] += 1
    with pytest.raises(FormConsistencyError, match="Σ of its 2 sub-units|users \\+ managers"):
        check_forms(tables, units, TEMPLATE)


def _users_of(table, form_id: str) -> list[str]:
    columns = TEMPLATE.columns(TEMPLATE.form(form_id).column_set)
    return [c for c in table.columns if c[:1] == "c" and c[1:].isdigit() and columns[int(c[1:])].block == "users"]


@pytest.mark.parametrize(("form_id", "row", "columns", "problem"), [
    ("01", 5, ["c{user}"], "users total ≠ Σ user columns"),
    ("01", 0, ["total", "users_total", "c{user}"], "total row ≠ rows 1 \\+ 2 \\+ 3"),
    ("02", 5, ["total", "users_total", "c{user}"], "02/TKĐĐ xa/00001: totals differ from Biểu 01 rows"),
])
def test_each_check_names_what_broke(form_id, row, columns, problem):
    """One figure changed so that one check alone breaks (its form's other sums still hold)."""
    units = _units()
    tables = compute_forms(_areas([("00001", "LUC", "GDC", 10_000.0), ("00002", "ONT", "UBQ", 20_000.0)]),
                           units, TEMPLATE)
    table = tables[(form_id, "xa/00001")]
    user = _users_of(table, form_id)[0]
    for column in columns:
        table.loc[row, user if column == "c{user}" else column] += 1
    with pytest.raises(FormConsistencyError, match=problem):
        check_forms(tables, units, TEMPLATE)


def test_another_regime_is_data_only(tmp_path):
    text = (Path(__file__).parents[1] / "pipeline/templates/tt27_2018.toml").read_text(encoding="utf-8")
    text = text.replace('{ header = "Hộ gia đình, cá nhân trong nước (GDC)", codes = ["GDC"]',
                        '{ header = "Cá nhân trong nước (CNV)", codes = ["GDC", "CNV"]')
    text = text.replace("Biểu 01/TKĐĐ", "Biểu 01/TKKK")
    path = tmp_path / "tt08_2024_test.toml"
    path.write_text(text, encoding="utf-8")
    template = load_template(str(path))
    tables = compute_forms(_areas([("00001", "LUC", "CNV", 10_000.0)]), _units(("00001",)), template)
    assert template.form("01").number == "Biểu 01/TKKK"
    assert tables[("01", "xa/00001")].set_index("code").at["LUC", "c0"] == 100


def test_text_is_measured_with_the_printing_fonts_metrics():
    from pipeline.measure import lines_needed, text_width_pt
    if not Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf").exists():
        pytest.skip("Liberation Serif 2 (fonts-liberation2) not installed")
    assert text_width_pt("M", 10) == pytest.approx(8.89, abs=0.01)  # Times' M is 0.889 em, unhinted
    assert text_width_pt("Đất", 10) == pytest.approx(14.44, abs=0.05)  # Đ 0.722 + ấ 0.444 + t 0.278 em
    name = "Đất đang sử dụng để bảo vệ, phát triển rừng sản xuất"
    assert lines_needed(name, 10, text_width_pt(name, 10) + 5) == 1
    assert lines_needed(name, 10, text_width_pt(name, 10) - 5) == 2
    assert lines_needed("(15)=(16)+…+(18)", 9, 40) == 2  # one word wider than the column still needs room


def test_a_form_typed_into_is_kept_beside_when_kiemke_writes_it_again(sample_run, tmp_path, caplog):
    """An officer types the preparer's name into a commune's Biểu 01 and saves
    it in place; another form of the commune is only touched. The commune's
    figures then come again (a correction): Biểu 01 as typed into is kept
    beside under another name, kiemke's is written in its place, the touched
    one is not kept; the officer is told."""
    import shutil

    from pipeline.forms import run_forms
    from pipeline.workdir import WorkDir

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    folder = work.forms_dir / "xa" / "06253"
    typed, touched = folder / "Bieu_01_TKDD.xlsx", folder / "Bieu_02_TKDD.xlsx"
    written = typed.read_bytes()
    book = openpyxl.load_workbook(typed)
    book.active["B40"] = "Nguyễn Văn An"
    book.save(typed)
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    for path in (touched, work.khoanh("06253")):
        os.utime(path, (later, later))
    with caplog.at_level("WARNING"):
        run_forms(work)
    [aside] = folder.glob("*_ban_sua_*")
    assert aside.name.startswith("Bieu_01_TKDD_ban_sua_") and aside.suffix == ".xlsx"
    assert openpyxl.load_workbook(aside).active["B40"].value == "Nguyễn Văn An"
    assert typed.read_bytes() == written  # the same figures: the same workbook as before
    assert f"Biểu đã được sửa sau lần chạy trước: bản đó được giữ lại thành {aside}" in caplog.text
    caplog.clear()
    os.utime(work.khoanh("06253"), (later + 5, later + 5))
    with caplog.at_level("WARNING"):
        run_forms(work)  # nothing typed since: nothing more kept, nothing said
    assert list(folder.glob("*_ban_sua_*")) == [aside] and caplog.text == ""

    from pipeline.forms.stage import remove_unlisted_forms
    from pipeline.regime import form_file_names, load_template

    book = openpyxl.load_workbook(typed)
    book.active["B40"] = "Trần Thị Bình"
    book.save(typed)
    others = [path for path in work.forms_dir.glob("*/*/*.xlsx") if path.parent != folder]
    remove_unlisted_forms(work, others, form_file_names(load_template()))  # the commune leaves the run
    assert not (folder / "Bieu_02_TKDD.xlsx").exists() and not typed.exists()
    [second] = set(folder.glob("*_ban_sua_*")) - {aside}  # typed into: kept, not removed
    assert openpyxl.load_workbook(second).active["B40"].value == "Trần Thị Bình"


def test_a_changed_commune_computes_the_forms_of_its_own_units_only(sample_run, tmp_path, monkeypatch):
    """One commune's khoanh come again: the figures of that commune, its
    district and the province are computed, no other unit's (their forms are
    current); the listing and report are those of a whole run, and the
    commune's forms read as before (the same figures)."""
    import shutil

    from pipeline.forms import stage
    from pipeline.workdir import WorkDir

    work = WorkDir(tmp_path / "work")
    shutil.copytree(sample_run, work.root)  # with their times: what the sample run left is current
    before = {name: work.report(name).read_text(encoding="utf-8").replace(str(sample_run), str(work.root))
              for name in ("forms.md", "forms.csv")}  # in this copy: its own paths
    commune = work.forms_dir / "xa" / "06253"
    figures = {path.name: path.read_bytes() for path in commune.glob("*.csv")}
    written = {path.name: path.stat().st_mtime_ns for path in commune.glob("*.csv")}
    other = work.forms_dir / "xa" / "06274" / "Bieu_01_TKDD.xlsx"
    other_time = other.stat().st_mtime_ns
    later = max(time.time(), *(p.stat().st_mtime for p in work.root.rglob("*"))) + 5  # newer than all
    os.utime(work.khoanh("06253"), (later, later))
    computed, checked = [], []
    real_compute, real_check = stage.compute_tables, stage.check_forms
    monkeypatch.setattr(stage, "compute_tables", lambda inputs: computed.append(inputs.units) or real_compute(inputs))
    monkeypatch.setattr(stage, "check_forms", lambda tables, *a: checked.append(set(tables)) or real_check(tables, *a))
    stage.run_forms(work)
    [units] = computed
    district = next(u for u in units if u.level == "huyen")
    assert sorted(u.key for u in units) == sorted(["xa/06253", district.key, "tinh/20"])
    assert {("01", c.key) for c in district.children} <= checked[0]  # the district's sum is checked
    assert {name: work.report(name).read_text(encoding="utf-8") for name in before} == before
    assert {path.name: path.read_bytes() for path in commune.glob("*.csv")} == figures
    assert all(path.stat().st_mtime_ns > written[path.name] for path in commune.glob("*.csv"))  # written again
    assert other.stat().st_mtime_ns == other_time


def test_units_without_districts_are_reported_without_them(sample_run):
    """The report of the 2025 units, which have no district, says the province
    is the sum of its communes (it said "0 huyện" and "tỉnh = tổng các
    huyện"); levels are said in Vietnamese. Their forms' "Đơn vị báo cáo" has
    no "Huyện: ……" (the 2019 template had no line without districts); the
    2019 province's, whose units have districts, keeps it (it had lost it).
    Their land department signs as the 2024 forms name it (since 1 March 2025
    no longer "tài nguyên và môi trường")."""
    main = (sample_run / "reports/forms.md").read_text(encoding="utf-8")
    assert "42 biểu cho 5 xã, 1 huyện và tỉnh." in main and "tỉnh = tổng các huyện." in main
    units = (sample_run / "units_2025/reports/forms.md").read_text(encoding="utf-8")
    assert "biểu cho 8 xã và tỉnh." in units and "tỉnh = tổng các xã." in units and "huyện =" not in units
    assert "| Biểu 01/TKĐĐ | tỉnh | 20 | Tỉnh Lạng Sơn |" in main and "| xã | 06253 |" in main
    for folder, line in (("forms/xa/06253", "Xã: Thị trấn Văn Quan   Huyện: Văn Quan   Tỉnh: Lạng Sơn"),
                         ("units_2025/forms/xa/90006", "Xã: Văn Quan   Tỉnh: Lạng Sơn"),  # no district since 2025
                         ("units_2025/forms/tinh/20", "Xã: ……………   Tỉnh: Lạng Sơn"),
                         ("forms/huyen/184", "Xã: ……………   Huyện: Văn Quan   Tỉnh: Lạng Sơn"),
                         ("forms/tinh/20", "Xã: ……………   Huyện: ……………   Tỉnh: Lạng Sơn")):
        texts = [c for row in openpyxl.load_workbook(sample_run / folder / "Bieu_01_TKDD.xlsx").active.iter_rows(
            values_only=True) for c in row if isinstance(c, str)]
        assert [c for c in texts if c.startswith("Đơn vị báo cáo")] == [f"Đơn vị báo cáo: {line}"], folder
        department = "Cơ quan có chức năng quản lý đất đai" if "units_2025" in folder else \
            "Cơ quan tài nguyên và môi trường"
        signing = [c.split("\n")[0] for c in texts if c.startswith("Cơ quan") and "đóng dấu" in c]
        assert signing == [department], folder
