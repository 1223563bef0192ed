"""Vietnamese text: repair of legacy encodings, and folding for name matching.

Cadastral attributes come in Unicode, TCVN3 (ABC), VNI-Windows or cp1258,
often mixed inside one value ("Thôn Yªn Thái"). No library decodes TCVN3 or
VNI, so this is a small table-driven codec (tables in ``pipeline/data/``):
each word is kept when it already is a Vietnamese syllable, otherwise decoded
with the codec that turns it into one; what cannot be decoded is kept as read
and flagged. In raw bytes (a value in one encoding) a word that reads as a
syllable either way is read as the codec that reads most of the value reads
it, and a file's codec is the one its telling words agree on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from itertools import pairwise

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"[^\s,;:/()\[\]\-–.\"']+")
TONE_MARKS = {"\u0300": "2", "\u0301": "1", "\u0309": "3", "\u0303": "4", "\u0323": "5"}
ONSETS = ("", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng",
          "ngh", "nh", "p", "ph", "qu", "r", "s", "t", "th", "tr", "v", "x")


def name_key(text: str) -> str:
    """A file or folder name as any keyboard and system spells it: in NFC (Unikey's
    "Unicode tổ hợp" types NFD, as macOS writes names) and without case (Windows)."""
    return unicodedata.normalize("NFC", text).casefold()


def strip_diacritics(text: str) -> str:
    """``"Lạng Sơn"`` → ``"Lang Son"`` (đ/Đ become d/D)."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def fold(text: str) -> str:
    """A key for matching names typed in any way: no diacritics, case, spaces
    or punctuation (``"TP. Hồ Chí Minh"`` → ``"tphochiminh"``)."""
    return _NON_ALNUM.sub("", strip_diacritics(text).lower())


# ------------------------------------------------------------------ tables


def _data_lines(name: str) -> list[str]:
    with (resources.files("pipeline") / "data" / name).open(encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip() and not line.startswith("#")]


@cache
def tcvn3_table() -> dict[str, str]:
    """TCVN3 (ABC) byte, seen as its Latin-1 character → Unicode."""
    rows = [line.split(",") for line in _data_lines("tcvn3.csv")[1:]]
    return {chr(int(b, 16)): u for b, u, *_ in rows}


@cache
def vni_table() -> dict[str, str]:
    """VNI-Windows byte, seen as its Latin-1 character → Unicode (combining)."""
    rows = [line.split(",") for line in _data_lines("vni.csv")[1:]]
    return {chr(int(b, 16)): "".join(chr(int(h[2:], 16)) for h in u.split()) for b, u, *_ in rows}


@cache
def _rimes() -> frozenset[str]:
    return frozenset(word for line in _data_lines("vn_rimes.txt") for word in line.split())


# ------------------------------------------------------------- syllables


def _untoned(word: str) -> tuple[str, int]:
    """Lower-case NFC syllable without its tone mark, and how many tone marks it had."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = sum(ch in TONE_MARKS for ch in decomposed)
    base = "".join(ch for ch in decomposed if ch not in TONE_MARKS)
    return unicodedata.normalize("NFC", base), tones


def is_syllable(word: str) -> bool:
    """True when ``word`` is a well-formed Vietnamese syllable (any case, NFC or NFD)."""
    base, tones = _untoned(word)
    if tones > 1 or not base:
        return False
    for onset in sorted(ONSETS, key=len, reverse=True):
        if base.startswith(onset):
            rime = base[len(onset):]
            if rime in _rimes() or (onset in ("gi", "qu") and (rime == "" or rime in _rimes())):
                return True
            if onset == "gi" and "i" + rime in _rimes():  # gì, gìn: the i is shared
                return True
            if onset == "qu" and "u" + rime in _rimes():  # quỳnh, quýt: the u is shared (uynh, uyt)
                return True
    return False


def _plain_word(word: str) -> bool:
    return all(ord(ch) < 128 for ch in word)


# ----------------------------------------------------------------- codecs


def _decode_tcvn3(word: str) -> str | None:
    table = tcvn3_table()
    if not any(ch in table for ch in word):
        return None
    out = unicodedata.normalize("NFC", "".join(table.get(ch, ch) for ch in word))
    letters = [ch for ch in word if ch.isascii() and ch.isalpha()]
    if len(letters) > 1 and all(ch.isupper() for ch in letters):  # TCVN3 capital fonts (.VnTimeH)
        out = out.upper()
    if not is_syllable(out):
        # the TCVN3 'ư' is byte 0xAD, a soft hyphen, which many tools drop
        repaired = re.sub("([ơƠ]|[ờớởỡợ]|[ỜỚỞỠỢ])", lambda m: ("Ư" if m.group(1).isupper() else "ư") + m.group(1),
                          out, count=1)
        if is_syllable(repaired):
            return repaired
    return out


def encode_tcvn3(text: str) -> str:
    """Unicode → TCVN3 (ABC) bytes, shown as their Latin-1 characters (what a
    .dbf written by a TCVN3 machine holds). Capitals with a tone mark have no
    TCVN3 byte (those fonts drew capitals from the lower-case bytes) and stay
    as they are."""
    table = {u: b for b, u in tcvn3_table().items()}
    return "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFC", text))


def _decode_vni(word: str) -> str | None:
    table = vni_table()
    if not any(ch in table for ch in word):
        return None
    return unicodedata.normalize("NFC", "".join(table.get(ch, ch) for ch in word))


def _decode_cp1258(word: str) -> str | None:
    try:
        raw = word.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return unicodedata.normalize("NFC", raw.decode("cp1258", errors="replace"))


CODECS = {"TCVN3": _decode_tcvn3, "VNI": _decode_vni, "cp1258": _decode_cp1258}


@dataclass(frozen=True)
class Repair:
    """The result of repairing one value."""

    text: str
    codecs: tuple[str, ...] = ()  # legacy encodings found in it
    undecoded: tuple[str, ...] = ()  # words kept as read that no codec reads (in legacy bytes?)
    mistyped: tuple[str, ...] = ()  # words kept as read, in Unicode Vietnamese letters but no syllable (typos)

    @property
    def changed(self) -> bool:
        return bool(self.codecs)


def _written_case(word: str) -> bool:
    """lower, Title or UPPER: how a word typed in Unicode looks (``trÊn`` is
    not: it is the TCVN3 bytes of ``trấn`` read as Latin-1)."""
    return word.islower() or word.isupper() or (word[:1].isupper() and (len(word) == 1 or word[1:].islower()))


AS_READ = ""  # a word kept as it reads (a Vietnamese syllable already)


def _as_written(word: str) -> bool:
    """A Vietnamese syllable as typed in Unicode (a reading of its own)."""
    return is_syllable(word) and _written_case(word)


def _typed_parts(word: str) -> list[str]:
    """A word's runs of digits and of letters, the letters cut where a capital
    follows a small letter (``NguyễnThị`` → ``Nguyễn``, ``Thị``; ``50mét`` → ``50``, ``mét``; signs dropped)."""
    parts = []
    for run in re.findall(r"\d+|[^\W\d_]+", word):
        cuts = [0, *(k for k in range(1, len(run)) if run[k].isupper() and run[k - 1].islower()), len(run)]
        parts += [run[a:b] for a, b in pairwise(cuts)]
    return parts


def _typed_in_unicode(word: str) -> bool:
    """A word no codec reads that is Vietnamese typed in Unicode all the same,
    only not as one syllable: syllables without a space between them or beside
    digits or a sign (``NguyễnThị``, ``50mét``, ``Đăng+``), or a syllable typed
    with Caps Lock on midway (``NGộ``: a letter no legacy byte reads as)."""
    parts = _typed_parts(word)
    if parts == [word]:
        return is_syllable(word) and in_unicode_letters(word)
    return bool(parts) and all(part.isdigit() or _as_written(part) for part in parts)


#: The marks of Vietnamese letters besides the tones: breve (ă), circumflex (â ê ô), horn (ơ ư).
_LETTER_MARKS = {"\u0306", "\u0302", "\u031b"}


def in_unicode_letters(word: str) -> bool:
    """Whether ``word`` holds a Vietnamese letter no legacy byte is read as
    (outside Latin-1: ă, đ, ơ, ư, ộ …): it was typed in Unicode."""
    return any(ord(ch) > 0xFF and _vietnamese_letter(ch) for ch in word)


def _vietnamese_letter(ch: str) -> bool:
    marks = unicodedata.normalize("NFD", ch)
    return ch in "đĐ" or (marks[:1].isascii() and marks[:1].isalpha()
                          and all(m in TONE_MARKS or m in _LETTER_MARKS for m in marks[1:]))


def _syllable(decode: Callable[[str], str | None], word: str) -> str | None:
    """``word`` decoded, when that makes it a Vietnamese syllable."""
    out = decode(word)
    return out if out is not None and is_syllable(out) else None


def repair_text(value: str, prefer: str | None = None, one_codec: bool = False) -> Repair:
    """Repair one attribute value word by word.

    A word that already is Vietnamese (or plain ASCII) stays; otherwise the
    codec that makes it a Vietnamese syllable is used — the one that decodes
    most words of the value wins a tie, unless ``prefer`` (``"TCVN3"``,
    ``"VNI"``, ``"cp1258"``, e.g. forced in the config) names the file's
    encoding. Undecodable words stay as read, and are told: ``undecoded``
    (perhaps legacy bytes) or ``mistyped`` (in Unicode Vietnamese letters, no
    syllable: a typo); not Unicode Vietnamese typed in a way no single
    syllable is (:func:`_typed_in_unicode`): nothing is wrong with them.

    ``one_codec``: the value is raw bytes (seen as Latin-1), written in one
    encoding, so a word that reads as Vietnamese as it is may still be that
    encoding's: TCVN3 writes ``Phú`` as the bytes of ``Phó`` and ``Hộ`` as
    those of ``Hé``. Each word is then read as the codec that reads most words
    of the value reads it (``prefer``'s first, then as it is on a tie).
    """
    text = unicodedata.normalize("NFC", value)
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    suspects = [(s, e, w) for s, e, w in words
                if not _plain_word(w) and (one_codec or not _as_written(w))]
    if not suspects:
        return Repair(text)
    candidates: dict[tuple[int, int], dict[str, str]] = {}
    votes: dict[str, int] = dict.fromkeys([AS_READ, *CODECS], 0)
    for s, e, w in suspects:
        read = {AS_READ: w} if _as_written(w) else {}
        read |= {name: out for name, decode in CODECS.items() if (out := _syllable(decode, w)) is not None}
        candidates[(s, e)] = read
        for name in read:
            votes[name] += 1
    ranking = sorted(votes, key=lambda n: (not prefer or n.lower() != prefer.lower(), -votes[n], n != AS_READ))
    pieces, last, used = [], 0, []
    undecoded: list[str] = []
    mistyped: list[str] = []
    for s, e, w in suspects:
        choice = next((n for n in ranking if n in candidates[(s, e)]), None)
        pieces.append(text[last:s])
        if choice is None:
            pieces.append(w)
            if not _typed_in_unicode(w):
                (mistyped if in_unicode_letters(w) else undecoded).append(w)
        else:
            pieces.append(candidates[(s, e)][choice])
            used += [choice] if choice != AS_READ else []
        last = e
    pieces.append(text[last:])
    return Repair("".join(pieces), tuple(sorted(set(used))), tuple(undecoded), tuple(mistyped))


#: The share of the telling words a codec must read for a whole file to be taken as in it.
FILE_CODEC_SHARE = 0.9


def file_codec(values: Iterable[str]) -> str | None:
    """The legacy codec a file's text is in, told by the words only one codec
    turns into a syllable (``Ðç`` only cp1258 reads, as ``Đỗ``): the codec that
    reads FILE_CODEC_SHARE of them, else None (no word tells, or codecs mix).
    Each distinct word counts once."""
    words = {w for value in values for w in _WORD.findall(unicodedata.normalize("NFC", value))
             if not _plain_word(w) and not _as_written(w)}
    told = dict.fromkeys(CODECS, 0)
    for word in words:
        readers = [name for name, decode in CODECS.items() if _syllable(decode, word) is not None]
        if len(readers) == 1:
            told[readers[0]] += 1
    best = max(told, key=lambda name: told[name])
    return best if told[best] and told[best] >= FILE_CODEC_SHARE * sum(told.values()) else None


def repair_names(values: Iterable[str]) -> list[str]:
    """Names as GDAL read them (a legacy encoding's bytes shown as Latin-1
    where no .cpg said otherwise) in Unicode: each value read wholly in the
    codec the names' telling words agree on (:func:`file_codec`), else word by
    word. For layers read outside ingest: the administrative boundaries."""
    values = list(values)
    codec = file_codec(v for v in values if isinstance(v, str))
    return [repair_text(v, codec, codec is not None).text if isinstance(v, str) else v for v in values]


def readings(value: str) -> list[str]:
    """Every way to read a value: as repaired, then wholly in each legacy codec
    (each word decoded where that codec makes a syllable of it). For matching a
    short value against a list (a status, a code name) when a word of it is
    ambiguous: ``Rõng tù nhiªn`` is TCVN3 for ``Rừng tự nhiên``, though ``Rõng``
    alone reads as a syllable."""
    text = unicodedata.normalize("NFC", value)
    out = [repair_text(text).text]
    for decode in CODECS.values():
        out.append(_WORD.sub(partial(_read_word, decode=decode), text))
    return list(dict.fromkeys(out))


def _read_word(match: re.Match, decode: Callable[[str], str | None]) -> str:
    word = match.group()
    decoded = _syllable(decode, word) if not _plain_word(word) else None
    return decoded if decoded is not None else word


# ------------------------------------------------------------- matching


def match_key(text: str) -> str:
    """A key for matching names whatever the tone placement: ``Hoà`` and ``Hòa``,
    ``Thuỷ`` and ``Thủy`` give the same key; ``Hòa`` and ``Hóa`` do not."""
    keys = []
    for word in re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()):
        decomposed = unicodedata.normalize("NFD", word)
        tone = next((TONE_MARKS[ch] for ch in decomposed if ch in TONE_MARKS), "")
        keys.append(_untoned(word)[0] + tone)
    return " ".join(keys)
