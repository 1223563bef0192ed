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
