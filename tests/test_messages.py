"""Every error kiemke raises for the officer reads in Vietnamese: each message
template in pipeline/ (an f-string or a literal given to one of kiemke's
errors or click's) is rendered with stand-in values and must match a row of
pipeline/data/messages_vi.csv."""

import ast
import re
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


def _nodes():
    """(where, node) of every node of the package's modules."""
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            yield f"{path.relative_to(PIPELINE.parent)}:{getattr(node, 'lineno', 0)}", node


def raised_messages(errors: set[str] | None = None) -> list[tuple[str, str]]:
    """(where, message) of the errors raised for the officer (or of ``errors`` alone)."""
    found = []
    for where, node in _nodes():
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
            continue
        name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
        message = _rendered(node.exc.args[0])
        wanted = name in errors if errors is not None else name not in PROGRAMMING_ERRORS | INTERNAL
        if wanted and message:
            found.append((where, message))
    return found


def logged_messages() -> list[tuple[str, str]]:
    """(where, message) of each line kiemke logs from a %-template, its
    placeholders replaced by stand-ins (``%.2f``: 1.00); not those that only
    join what is said elsewhere (``"%s: %s"``)."""
    found = []
    for where, node in _nodes():
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and getattr(node.func.value, "id", "") == "log" and node.func.attr in ("info", "warning", "error")
                and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        template = node.args[0].value
        if not re.fullmatch(r"[%s: ]*", template):
            found.append((where, re.sub(r"%(?:\.(\d))?[sdf]", lambda m: "1" + ("." + "0" * int(m[1]) if m[1] else ""),
                                        template)))
    return found


def test_every_error_for_the_officer_is_translated():
    messages = raised_messages()
    assert len(messages) > 30
    missing = [f"{where}: {message}" for where, message in messages if vi(message) == message]
    assert not missing, "add rows to pipeline/data/messages_vi.csv:\n" + "\n".join(missing)


def test_every_line_kiemke_logs_reads_in_vietnamese_on_the_officers_console():
    """What each stage says it did (INFO) and its warnings reach the officer's
    console in Vietnamese (pipeline.console), the GeoPackage's reasons to be
    written whole too."""
    messages = logged_messages() + raised_messages({"NotPatchable"})
    assert len(messages) > 25
    missing = [f"{where}: {message}" for where, message in messages if vi(message) == message]
    assert not missing, "add rows to pipeline/data/messages_vi.csv:\n" + "\n".join(missing)
    assert vi("stage ingest done in 7.0 s") == "Bước ingest xong trong 7,0 giây"
    assert vi("aggregate: 200 communes (200 summed again), 787295.29 ha from khoanh → w/stats/areas.csv") == \
        "aggregate: 200 xã (tính lại 200 xã), 787.295,29 ha từ thư mục khoanh → w/stats/areas.csv"  # thousands' dot
    assert vi("package: GeoPackage written whole (thua_dat: new columns ['ghi_chu'])") == \
        "package: ghi lại toàn bộ GeoPackage (lớp thua_dat có thêm cột ['ghi_chu'])"


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


CONFLICTING_COMMUNES = """
import sys
import geopandas as gpd
import shapely

for k, name in enumerate("abcd"):
    box = shapely.box(430000 + 100 * k, 2410000, 430050 + 100 * k, 2410050)
    frame = gpd.GeoDataFrame({"MAXA": [f"0625{k}"], "KHLOAIDAT": ["LUC"]}, geometry=[box], crs="EPSG:9215")
    frame.to_file(f"{sys.argv[1]}/{name}.shp")
"""


def test_the_officers_console_says_a_workers_warnings_in_vietnamese_between_the_progress_bars(tmp_path):
    """Files read on the workers of the local cluster, each saying a commune
    other than the one given: a worker printed its warning in English, written
    into the progress bar ("ingest: 25%|██▌ | 1/4 [...]/raw/a.shp: 1 features say
    commune ..."), and the stages' lines were English ("INFO pipeline.ingest.stage:
    ingest: 4 files ..."). Now the stage says each warning in Vietnamese, with
    what to do and the original, on its own lines; ``-v`` gives the developers' log."""
    import os
    import subprocess
    import sys

    raw = tmp_path / "raw"
    raw.mkdir()
    subprocess.run([sys.executable, "-c", CONFLICTING_COMMUNES, str(raw)], check=True, cwd=PIPELINE.parent)
    ingest = [sys.executable, "-m", "pipeline", "ingest", str(raw), "--province", "Lạng Sơn", "--commune-code", "06255"]
    env = {**os.environ, "PYTHONPATH": str(PIPELINE.parent)}
    done = subprocess.run([*ingest, "--workdir", str(tmp_path / "work"), "--scheduler", "local"], capture_output=True,
                          text=True, timeout=180, cwd=PIPELINE.parent, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.replace("\r", "\n").splitlines()
    assert "dask: LocalCluster (2 tiến trình phụ)" in lines or "dask: LocalCluster (1 tiến trình phụ)" in lines
    for k, name in enumerate("abcd"):
        said = lines.index(f"Cảnh báo: {raw / name}.shp: 1 thửa ghi mã xã '0625{k}' ở cột 'MAXA'; cấu hình ghi "
                           "06255 cho tệp này, dùng mã 06255 → Kiểm tra mã xã trong [[sources]] của inventory.toml.")
        assert lines[said + 1] == f"  ({raw / name}.shp: 1 features say commune ['0625{k}'] in column 'MAXA'; " \
                                  "the config gives 06255 for this file, which is used)"
    assert "ingest: 4 tệp (đọc 4, không đổi 0, 0 bản sao không đọc), ghi lại 1 xã" in lines
    assert done.stderr.count("features say commune") == 4  # the originals in brackets, no worker's own line
    assert "WARNING" not in done.stderr and "INFO" not in done.stderr
    developers = subprocess.run([sys.executable, "-m", "pipeline", "-v", *ingest[3:], "--workdir",
                                 str(tmp_path / "again")], capture_output=True, text=True, timeout=180,
                                cwd=PIPELINE.parent, env=env)
    assert f"WARNING pipeline.ingest.stage: {raw / 'a'}.shp: 1 features say commune ['06250']" in developers.stderr
    assert "INFO pipeline.ingest.stage: ingest: 4 files (4 read" in developers.stderr
    assert "Cảnh báo" not in developers.stderr


def test_the_help_pages_where_a_mistyped_command_sends_the_officer_read_in_vietnamese():
    """«Xem hướng dẫn: kiemke inventory --help» led to an English page ("Usage:",
    "Options:", "Show this message and exit.", "[required]", FILE). Every
    command's page and every option now read in Vietnamese (pipeline/data/cli_help_vi.toml)."""
    import click
    from click.testing import CliRunner

    from pipeline.cli import cli
    from pipeline.console import help_texts

    table = help_texts()
    assert set(table) - {"options"} == {"kiemke", *cli.commands}
    vietnamese = {*table["options"].values(), *(text for entry in table.values() if "help" in entry
                                                for text in entry.get("options", {}).values())}
    for name, command in [("kiemke", cli), *cli.commands.items()]:
        untold = [p.name for p in command.params if isinstance(p, click.Option) and p.help not in vietnamese]
        assert not untold, f"{name}: options without Vietnamese help: {untold}"
        page = CliRunner().invoke(cli, [*([name] if command is not cli else []), "--help"], prog_name="kiemke").output
        assert page.startswith(f"Cách dùng: kiemke{'' if command is cli else ' ' + name} [TÙY CHỌN]"), page
        assert "\nTùy chọn:\n" in page and "Xem hướng dẫn này rồi thoát." in page
        english = [w for w in ("Usage", "Options", "Commands", "Show this", "required", "default:", "FILE", "TEXT",
                               "INTEGER", "Example", "Output") if w in page]
        assert not english, f"{name}: {english}\n{page}"
    overview = CliRunner().invoke(cli, ["--help"], prog_name="kiemke").output
    assert "\nLệnh:\n" in overview and "  inventory  Chạy mọi bước kiểm kê theo inventory.toml.\n" in overview
    inventory = CliRunner().invoke(cli, ["inventory", "--help"]).output
    assert "--config TỆP" in inventory and "[bắt buộc]" in inventory and "--workers SỐ" in inventory
