"""How much room text takes in a printed workbook (the forms, the review and
crosswalk workbooks): widths from the font's own metrics (Times New Roman,
or its metric twin Liberation Serif that LibreOffice prints with; DejaVu
Serif, a little wider, where neither is installed), Excel's column widths in
points, the lines a wrapped text needs and the row height that holds them."""

from __future__ import annotations

import math
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

import matplotlib.font_manager as fm
from matplotlib.ft2font import FT2Font, LoadFlags

#: Where the serif fonts a form prints with are found, regular and bold.
_SERIF = {
    False: ("/usr/share/fonts/truetype/msttcorefonts/Times_New_Roman.ttf",
            "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"),
    True: ("/usr/share/fonts/truetype/msttcorefonts/Times_New_Roman_Bold.ttf",
           "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf",
           "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf"),
}
LINE_HEIGHT = 1.22  # a line of text, in em (LibreOffice's line height for Liberation Serif ≈ 1.15 em)
CELL_PADDING_PT = 4.0  # a cell's inner margins, left + right


@cache
def _font(bold: bool) -> FT2Font:
    path = next((p for p in _SERIF[bold] if Path(p).exists()), None)
    if path is None:
        path = fm.findfont(fm.FontProperties(family="DejaVu Serif", weight="bold" if bold else "normal"))
    return FT2Font(path)


@cache
def _advance_em(char: str, bold: bool) -> float:
    """The advance width of one character, in em: of its own glyph, or, for a
    Vietnamese letter the font lacks precomposed, of its base letter (its
    marks take no room); a character the font lacks as its "missing" glyph."""
    font = _font(bold)
    index = font.get_char_index(ord(char))
    parts = unicodedata.normalize("NFD", char)
    if index == 0 and len(parts) > 1:
        return sum(_advance_em(part, bold) for part in parts)
    font.set_size(1000, 72)  # 1 000 pixels an em
    return font.load_glyph(index, flags=LoadFlags.NO_HINTING).linearHoriAdvance / 65536 / 1000


def text_width_pt(text: str, size_pt: float, bold: bool = False) -> float:
    """The width of one line of ``text`` in points: its characters' advances
    (unhinted; unkerned: Times' kerning mostly narrows a line, so a text
    measured to fit does), each character measured once."""
    return size_pt * sum(_advance_em(char, bold) for char in unicodedata.normalize("NFC", text))


def column_width_pt(width_chars: float) -> float:
    """An Excel column width (characters of the default font) in points."""
    return 0.75 * (7.0 * width_chars + 5.0)


@lru_cache(maxsize=1 << 16)  # texts repeat (a form's row names); owner names are each their own
def lines_needed(text: str, size_pt: float, width_pt: float, bold: bool = False) -> int:
    """How many lines ``text`` takes when wrapped at word boundaries in
    ``width_pt`` (a word longer than a line broken across lines)."""
    room = max(width_pt - CELL_PADDING_PT, 1.0)
    lines = 0
    for paragraph in str(text).split("\n"):
        line, count = "", 1
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and text_width_pt(candidate, size_pt, bold) > room:
                count, line = count + 1, word
            else:
                line = candidate
            overflow = int(text_width_pt(line, size_pt, bold) // room)
            if overflow:
                count, line = count + overflow, ""
        lines += count
    return max(lines, 1)


def row_height_pt(lines: int, size_pt: float) -> float:
    """The row height that shows ``lines`` lines of ``size_pt`` text."""
    return math.ceil(lines * size_pt * LINE_HEIGHT + 3.0)
