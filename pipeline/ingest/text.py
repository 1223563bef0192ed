"""Text of raw files: bytes decoded value by value, TCVN3/VNI/cp1258 words
repaired to Unicode NFC (:mod:`pipeline.vntext`), on distinct values only."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from .. import vntext
from ..io import file_parts
from .read import Source

_CPG_NAMES = {"utf8": "utf-8", "65001": "utf-8", "1258": "cp1258", "cp1258": "cp1258",
              "ansi1258": "cp1258", "windows1258": "cp1258", "1252": "cp1252", "ansi1252": "cp1252"}



#: MapInfo's charset names (a .tab's "!charset" line) that say how Vietnamese text is written;
#: not WindowsLatin1, which tables of TCVN3 text declare as well.
_TAB_CHARSETS = {"windowsvietnamese": "cp1258", "utf8": "utf-8"}


def declared_encoding(source: Source, override: str | None) -> tuple[str | None, str]:
    """The encoding the config, a shapefile's ``.cpg`` or a MapInfo table's
    charset declares, and where from."""
    if override:
        return override, "config"
    if source.gdal_path.lower().endswith(".tab"):
        return _tab_charset(source)
    if not source.gdal_path.lower().endswith(".shp"):
        return None, ""
    text = None
    if source.member:
        with zipfile.ZipFile(source.path) as archive:
            cpg = _cpg_of(source.member, archive.namelist())
            if cpg is not None:
                text = archive.read(cpg).decode("ascii", errors="replace")
    else:
        cpg = _cpg_of(source.path.name, [p.name for p in file_parts(source.path)])
        if cpg is not None:
            text = (source.path.parent / cpg).read_text(encoding="ascii", errors="replace")
    if text is None:
        return None, ""
    text = text.strip()
    return _CPG_NAMES.get(_codec_key(text), text), ".cpg"


def _tab_charset(source: Source) -> tuple[str | None, str]:
    """The codec a MapInfo table's ``!charset`` line names (GDAL knows no
    WindowsVietnamese, and reads its bytes as they are)."""
    if source.member:
        return None, ""
    with open(source.path, encoding="latin-1", errors="replace") as fh:
        head = fh.read(4096)
    found = re.search(r"^\s*!charset\s+(\S+)", head, flags=re.IGNORECASE | re.MULTILINE)
    codec = _TAB_CHARSETS.get(_codec_key(found[1])) if found else None
    return (codec, ".tab") if codec else (None, "")


def _codec_key(name: str) -> str:
    """A codec's name as the tables above hold it: ``UTF-8``, ``utf8`` → ``utf8``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _cpg_of(shp: str, names: list[str]) -> str | None:
    """The ``.cpg`` beside a shapefile among ``names``, whatever the case of its
    ending (``.CPG``, as older Windows tools write it)."""
    wanted = (shp[:-4] + ".cpg").lower()
    return next((name for name in names if name.lower() == wanted), None)


def decode_value(value: str, codec: str | None) -> tuple[str, str]:
    """Bytes seen as Latin-1 → text: the declared codec, else UTF-8, else the
    Latin-1 view (which :func:`vntext.repair_text` then decodes word by word)."""
    if value.isascii():
        return value, "ascii"
    raw = value.encode("latin-1")
    for name in dict.fromkeys(c for c in (codec, "utf-8") if c and c.lower() not in ("tcvn3", "vni")):
        try:
            return raw.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    return value, "8-bit"


_repair = cache(vntext.repair_text)
UTF8_NAMES = ("utf-8", "utf8")
#: The characters XML 1.0 (so XLSX, GeoPackage styles) refuses: C0 controls but tab, line feed, carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class TextRepairs:
    """What :func:`repair_frame_text` did."""

    counts: dict[str, int] = field(default_factory=dict)
    undecoded: set[str] = field(default_factory=set)
    mistyped: set[str] = field(default_factory=set)
    codec_found: str | None = None  # the legacy codec the values told, where nothing declared one

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def map_unique(values: pd.Series | np.ndarray, func: Callable[[object], object],
               missing: object = None) -> np.ndarray:
    """``func`` applied once per distinct value (missing values are ``missing``):
    a province has a few hundred codes and names in a million rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [missing], dtype=object)
    return mapped[codes]  # code −1 (missing) takes the trailing value


def repair_frame_text(frame: pd.DataFrame, *, latin1: bool, codec: str | None) -> tuple[pd.DataFrame, TextRepairs]:
    """Decode and repair every text column and column name, on unique values
    only. Bytes that are not UTF-8 where no codec (or UTF-8) was declared are
    read in the legacy codec their words tell (:func:`vntext.file_codec`), if
    one does, as a declared one would be: the frame is then repaired again."""
    repaired, repairs, eight_bit = _repaired(frame, latin1, codec, None)
    if eight_bit and (codec is None or codec.lower() in UTF8_NAMES):
        found = vntext.file_codec(eight_bit)
        if found is not None:
            repaired, repairs, _ = _repaired(frame, latin1, codec, found)
            repairs.codec_found = found
    return repaired, repairs


def _repaired(frame: pd.DataFrame, latin1: bool, codec: str | None,
              found: str | None) -> tuple[pd.DataFrame, TextRepairs, list[str]]:
    """:func:`repair_frame_text` with the codec the values told (``found``)
    or none yet; and the texts met that were bytes in no declared codec."""
    repairs = TextRepairs()
    lying = codec is not None and codec.lower() in UTF8_NAMES
    prefer = next((name for name in vntext.CODECS if (found or codec or "").lower() == name.lower()), None)
    eight_bit: list[str] = []

    def fix(value: str) -> str:
        text, how = decode_value(value, codec) if latin1 else (value, "unicode")
        if how == "8-bit":
            eight_bit.append(value)
            if lying:
                repairs.add("values not UTF-8 although the .cpg says so")
            if found:  # after UTF-8: a legacy codec reads any bytes
                text, how = decode_value(value, found)
                if how == found:
                    repairs.add(f"values with {found} words converted to Unicode")
        if _CONTROL.search(text):  # a vertical tab from a spreadsheet, a stray byte: no XLSX or XML takes them
            text = _CONTROL.sub(" ", text)
            repairs.add("control characters in values replaced by spaces")
        if text.isascii():
            return text
        result = _repair(text, prefer, how == "8-bit")
        for name in result.codecs:
            repairs.add(f"values with {name} words converted to Unicode")
        repairs.undecoded.update(result.undecoded)
        repairs.mistyped.update(result.mistyped)
        return result.text

    frame = frame.rename(columns={c: fix(c) for c in frame.columns if isinstance(c, str) and c != "geometry"})
    for column in frame.columns:
        values = frame[column]
        if column == "geometry" or not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
            continue
        changed = False

        def fix_if_text(value: object) -> object:
            nonlocal changed
            if not isinstance(value, str):
                return value
            out = fix(value)
            changed |= out != value
            return out

        fixed = map_unique(values, fix_if_text)
        if changed:
            frame[column] = pd.Series(fixed, index=frame.index, dtype=object)
    return frame, repairs, eight_bit
