"""Every error kiemke raises for the officer reads in Vietnamese: each message
template in pipeline/ (an f-string or a literal given to one of kiemke's
errors or click's) is rendered with stand-in values and must match a row of
pipeline/data/messages_vi.csv."""

import ast
from pathlib import Path

from pipeline.messages import officer_message, vi

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
PROGRAMMING_ERRORS = {"ValueError", "TypeError", "KeyError", "AssertionError", "NotImplementedError", "RuntimeError"}
#: Raised and caught within kiemke, their reason logged: never an officer's error.
INTERNAL = {"NotPatchable"}


def _rendered(node: ast.expr) -> str | None:
    """The message with each placeholder replaced by a stand-in (quoted where the
    f-string asks for repr)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    return "".join(part.value if isinstance(part, ast.Constant) else
                   ("'1'" if part.conversion == ord("r") else "1") for part in node.values)


def raised_messages() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            message = _rendered(node.exc.args[0])
            if name not in PROGRAMMING_ERRORS | INTERNAL and message:
                found.append((f"{path.relative_to(PIPELINE.parent)}:{node.lineno}", message))
    return found


def test_every_error_for_the_officer_is_translated():
    messages = raised_messages()
    assert len(messages) > 30
    missing = [f"{where}: {message}" for where, message in messages if vi(message) == message]
    assert not missing, "add rows to pipeline/data/messages_vi.csv:\n" + "\n".join(missing)


def test_an_error_reads_in_vietnamese_with_what_to_do_and_the_original():
    text = officer_message("/data/xa.shp: no such file or folder. Check the path given to ingest.")
    assert text.splitlines()[0].startswith("/data/xa.shp: không có tệp hoặc thư mục này. → Kiểm tra đường dẫn")
    assert text.splitlines()[1] == "  (/data/xa.shp: no such file or folder. Check the path given to ingest.)"


def test_an_error_a_stage_names_its_file_in_front_of_reads_in_vietnamese_too():
    # ingest puts the file in front of what its reader said (a CRSError of pipeline.crs)
    said = ("the coordinates (X 5430000.000…5430050.000, Y 2420000.000…2420050.000) fit no coordinate system of "
            "the province (VN-2000 TM-3 107.25°, UTM 48N/49N, degrees, swapped or without false easting, Hanoi-72). "
            "Check that the file belongs to this province, or give its crs in a [[sources]] entry of inventory.toml.")
    text = officer_message(f"/data/Hòa Bình: xã/td.shp: {said}")
    assert text.splitlines()[0].startswith("/data/Hòa Bình: xã/td.shp: Tọa độ (X 5430000.000…5430050.000, Y "
                                           "2420000.000…2420050.000) không khớp hệ tọa độ nào dùng ở tỉnh. → Kiểm tra")
    assert vi(f"td.shp: {said}").startswith("td.shp: Tọa độ (X")


def test_what_to_do_names_the_messages_own_figures():
    text = officer_message("code 'RST' of Circular 27/2018 has no equivalent under Circular 08/2024")
    assert "→ Ghi mã loại đất theo Thông tư 08/2024 vào sổ rà soát" in text and "\\2" not in text


MISTYPED = [["inventory", "--bogus"], ["invetory"], ["inventory", "--sheduler", "local"], ["ingest"],
            ["inventory"], ["inventory", "--config"], ["inventory", "--config", "x.toml", "extra"],
            ["maps", "--dpi", "abc"], ["maps", "--dpi", "5000"], ["ingest", "x", "--province", "zzz"],
            ["--version=1"]]


def test_every_mistyped_command_reads_in_vietnamese():
    """click's own usage errors (of the installed click) all have a row, and
    the console entry point prints them in Vietnamese with the command's usage."""
    import subprocess
    import sys

    import click

    from pipeline.cli import cli
    from pipeline.messages import untranslated

    said = []
    for args in MISTYPED:
        try:
            cli(args, standalone_mode=False)
        except click.UsageError as exc:
            said.append(exc.format_message())
    assert len(said) == len(MISTYPED) and not untranslated(said), untranslated(said)
    assert "«abc» không phải là số nguyên" in vi(said[7]) and "tỉnh năm 2019" in vi(said[9])
    done = subprocess.run([sys.executable, "-m", "pipeline", "inventory", "--bogus"], capture_output=True,
                          text=True, cwd=PIPELINE.parent)
    assert done.returncode == 2 and "Error" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Cách dùng:") and lines[1].endswith("inventory --help")
    assert lines[2].startswith("Lỗi: Lệnh không có tùy chọn «--bogus». → Kiểm tra chính tả")


def test_a_code_read_from_a_field_variant_says_so_in_vietnamese():
    """legacy_codes.csv's "field-variant" rows (codes in no list, read by assumption) are named
    as such for the officer, who is asked to check them; a listed legacy code keeps its circular."""
    assert vi("legacy code GTO (field-variant) → DGT") == "Mã GTO (mã tự đặt ngoài mọi danh mục) → DGT"
    assert "Kiểm tra lại" in officer_message("legacy code GTO (field-variant) → DGT")
    assert vi("legacy code LNK (TT08/2007) → CLN") == "Mã cũ LNK (TT08/2007) → CLN"


def test_a_markdown_report_leaves_a_missing_figure_empty():
    """A commune without a known natural area shows an empty cell in qa.md (as in qa.html), never "nan"."""
    import pandas as pd

    from pipeline.report import markdown_table

    frame = pd.DataFrame({"Xã": ["Xã 25465"], "Diện tích (ha)": [744.25], "Chênh lệch (ha)": [float("nan")]})
    table = markdown_table(frame)
    assert table.splitlines()[-1] == "| Xã 25465 | 744,25 |  |"
