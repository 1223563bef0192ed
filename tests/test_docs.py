"""The officers' guide: linked from the top of the README, its table of
messages the current one, every picture it shows present and small."""

import re
from pathlib import Path

from PIL import Image

from pipeline.messages import officer_table

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "huong-dan-su-dung.md"


def test_readme_opens_with_the_two_commands_and_the_guide():
    head = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:12])
    assert "make inventory" in head and "make test" in head and "docs/huong-dan-su-dung.md" in head


def test_the_guide_lists_every_message_with_what_to_do():
    text = GUIDE.read_text(encoding="utf-8")
    table = text.split("<!-- thong-bao:bat-dau -->\n", 1)[1].split("\n<!-- thong-bao:ket-thuc -->", 1)[0]
    assert table == officer_table(), "run: python scripts/guide_pictures.py"
    assert table.count("\n") > 40


def test_every_picture_of_the_guide_is_there_and_small():
    pictures = re.findall(r"!\[[^\]]+\]\((img/[^)]+)\)", GUIDE.read_text(encoding="utf-8"))
    assert len(pictures) >= 7
    for picture in pictures:
        with Image.open(GUIDE.parent / picture) as image:
            assert image.width <= 1100, picture



def _python(path: Path, version: str) -> Path:
    """A stand-in for a Python of ``version``: what the script asks of one
    (``--version``, the version check, ``-m venv DIR``, which it marks)."""
    too_old = int(tuple(int(part) for part in version.split(".")[:2]) < (3, 11))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ncase \"$1\" in --version) echo 'Python {version}';; -c) exit {too_old};;\n"
                    "-m) mkdir -p \"$3/bin\"; echo made > \"$3/made\";; esac\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_make_sets_up_only_with_python_311_or_newer_and_says_so_in_vietnamese(tmp_path):
    """Ubuntu 22.04's python3 is 3.10: `make inventory` stopped on pip's "requires
    a different Python", and kept the .venv made with it, so installing 3.11
    later did not help. Now it stops first, saying what to install; a .venv of
    an older Python is made again; a good one is kept as it is."""
    import subprocess

    script, venv = REPO / "scripts" / "make-venv.sh", tmp_path / ".venv"
    _python(venv / "bin" / "python", "3.10.12")  # left by an earlier try
    refused = subprocess.run([script, venv, _python(tmp_path / "old" / "python3", "3.10.12")],
                             capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Lỗi: kiemke cần Python 3.11 trở lên, mà ")
    assert "là Python 3.10.12.\n  → Cài Python 3.11 (Ubuntu 22.04: sudo apt install python3.11" in refused.stderr

    good = _python(tmp_path / "new" / "python3", "3.11.4")
    assert subprocess.run([script, venv, good]).returncode == 0
    assert (venv / "made").exists() and not (venv / "bin" / "python").exists()  # the 3.10 one is gone
    _python(venv / "bin" / "python", "3.11.4")
    (venv / "made").unlink()
    assert subprocess.run([script, venv, good]).returncode == 0 and not (venv / "made").exists()  # kept
