"""Files an officer's folder holds twice: ``TD_06274 - Copy.shp`` beside
``TD_06274.shp``, ``sao_luu/TD_06274.shp`` under the commune's folder. A copy
with the same bytes is read once, from the file of the shortest name, and said;
read twice, its parcels would be 'duplicates' of themselves in QA."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from .read import Source, file_stamp

#: What the report says of a copy not read (``vi`` renders it for the officer).
COPY_NOTE = "a copy of {kept}: the same bytes, read once (from that file)"


def identical_copies(files: list[Source]) -> dict[str, str]:
    """The label of each copy → the label of the file read in its place: the
    same layer of files whose parts hold the same bytes. Only files whose
    parts have the same sizes are read through, so a folder without copies
    costs a listing."""
    by_size: dict[tuple, list[Source]] = defaultdict(list)
    for source in files:
        by_size[_sizes(source)].append(source)
    copies: dict[str, str] = {}
    for alike in (group for group in by_size.values() if len(group) > 1):
        by_content: dict[bytes, list[Source]] = defaultdict(list)
        for source in alike:
            by_content[_content(source)].append(source)
        for same in by_content.values():
            kept = min(same, key=lambda s: (len(s.label), s.label))
            copies |= {s.label: kept.label for s in same if s.label != kept.label}
    return copies


def _sizes(source: Source) -> tuple:
    parts = tuple((Path(name).suffix.lower(), size) for name, size, _ in file_stamp(source.path))
    return source.path.suffix.lower(), source.member, source.layer, parts


def _content(source: Source) -> bytes:
    digest = hashlib.blake2b()
    for name, _, _ in file_stamp(source.path):
        with open(name, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "blake2b").digest())
    return digest.digest()
