"""Files an officer's folder holds twice: ``TD_06274 - Copy.shp`` beside
``TD_06274.shp``, ``sao_luu/TD_06274.shp`` under the commune's folder, the
``TD_06274.zip`` it was mailed in beside what was unzipped from it. A copy with
the same bytes is read once, from the file of the shortest name, and said; read
twice, its parcels would be counted twice in the commune's parcels and listed
as duplicates of themselves in QA."""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from collections import defaultdict
from pathlib import PurePosixPath

from ..io import file_stamp
from .read import VECTOR_SUFFIXES, Source

#: What the report says of a copy not read (``vi`` renders it for the officer).
COPY_NOTE = "a copy of {kept}: the same bytes, read once (from that file)"


def identical_copies(files: list[Source]) -> dict[str, str]:
    """The label of each copy → the label of the file read in its place: the
    same layer of files (or zip members) whose parts hold the same bytes. Only
    files whose parts have the same sizes are read through, so a folder without
    copies costs a listing."""
    by_size: dict[tuple, list[Source]] = defaultdict(list)
    for source in files:
        by_size[(_suffix(source.member or str(source.path)), source.layer, tuple(_sizes(source)))].append(source)
    copies: dict[str, str] = {}
    for alike in (group for group in by_size.values() if len(group) > 1):
        by_content: dict[bytes, list[Source]] = defaultdict(list)
        for source in alike:
            by_content[_content(source)].append(source)
        for same in by_content.values():
            kept = min(same, key=lambda s: (len(s.label), s.label))
            copies |= {s.label: kept.label for s in same if s.label != kept.label}
    return copies


def _sizes(source: Source) -> list[tuple[str, int]]:
    return [(_suffix(name), size) for name, size in _parts(source)]


def _content(source: Source) -> bytes:
    digest = hashlib.blake2b()
    with zipfile.ZipFile(source.path) if source.member else contextlib.nullcontext() as archive:
        for name, _ in _parts(source):
            with archive.open(name) if archive is not None else open(name, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):  # noqa: B023 (read before the next file)
                    digest.update(chunk)
    return digest.digest()


def _parts(source: Source) -> list[tuple[str, int]]:
    """Name and size of each part of a file (a zip member's as unzipped,
    sorted alike), not the other input files of its name beside it
    (``TD.zip`` beside ``TD.shp``)."""
    if source.member:
        with zipfile.ZipFile(source.path) as archive:
            parts = [(info.filename, info.file_size) for info in _member_parts(archive, PurePosixPath(source.member))]
        own = _suffix(source.member)
    else:
        parts = [(name, size) for name, size, _ in file_stamp(source.path)]
        own = _suffix(str(source.path))
    return [(name, size) for name, size in parts if _suffix(name) == own or _suffix(name) not in VECTOR_SUFFIXES]


def _member_parts(archive: zipfile.ZipFile, member: PurePosixPath) -> list[zipfile.ZipInfo]:
    """A zip member's parts, sorted by name as :func:`file_stamp` sorts a
    file's: those sharing its name (a shapefile's), or those under it (a
    geodatabase's)."""
    def part(name: PurePosixPath) -> bool:
        return name.parent == member.parent and name.name.startswith(f"{member.stem}.") or member in name.parents

    return sorted((info for info in archive.infolist() if not info.is_dir() and part(PurePosixPath(info.filename))),
                  key=lambda info: info.filename)


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()
