"""Records of what the products are made of, where file times alone do not tell.

The stages tell what is current like make does: a product newer than all its
inputs is kept. Two changes leave no newer file behind:

- a commune whose files are gone: a product that lists or sums communes (a
  report, the statistics, a district's or the province's forms, sheets and
  GeoTIFFs) also takes as input a record of which communes it is made of,
  rewritten only when one comes or goes; what the commune left is removed;
- a file the officer gives (the previous inventory, boundaries, new units,
  statistics) replaced by an older copy, as unzipping or restoring a backup
  gives it: a product takes as input a record of those files' parts, sizes and
  times, rewritten only when they change.

And a product an officer or planner changed by hand (a form typed into, a
QGIS project saved) is told from one kiemke wrote by a record of the digests
of what it wrote, and set aside under another name before it is written again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .io import file_stamp, read_json, write_json, write_json_if_changed
from .messages import officer_message
from .units import Unit
from .workdir import RunManifest, WorkDir

log = logging.getLogger(__name__)


def commune_set(work: WorkDir) -> Path:
    """The record of the run's communes (the stems of their files), ``cache/commune_set.json``."""
    return work.cache_dir / "commune_set.json"


def record_communes(work: WorkDir, keys: Iterable[str]) -> list[str]:
    """Record the run's communes (the file is rewritten only when one comes or
    goes) and forget those gone since the last record, or left by an earlier
    version (parcels or khoanh of none of them). Returns those forgotten."""
    keys = sorted(set(keys))
    record = commune_set(work)
    before = read_json(record, [])
    left = {*before, *(path.stem for path in work.parcels_dir.glob("*.parquet")),
            *(path.stem for path in work.khoanh_files())}
    gone = sorted(left - set(keys))
    for key in gone:
        removed = forget_commune(work, key)
        log.info("%s: commune %s is gone (no file gives it any more): %d of its products removed",
                 work.root, key, len(removed))
    write_json_if_changed(record, keys)
    return gone


def given(work: WorkDir, name: str, paths: Iterable[str | Path | None]) -> Path:
    """The record of files the officer gives (``cache/given/<name>.json``: each
    part's name, size and modification time), rewritten only when one of them
    changes, comes or goes: an input that sees a file replaced even by an older
    copy, and an edit of a shapefile's .dbf alone; not when the project folder
    is moved, or the work folder copied (the files by their names)."""
    stamps = [[(Path(name).name, size, time) for name, size, time in file_stamp(path)]
              for path in paths if path is not None]
    return write_json_if_changed(work.cache_dir / "given" / f"{name}.json", stamps)


def given_boundaries(work: WorkDir, manifest: RunManifest) -> Path:
    """The record of the run's boundary files (the communes', and the wider context the sheets name)."""
    spec = manifest.boundaries
    return given(work, "boundaries", spec.files() if spec else [])


def unit_inputs(work: WorkDir, unit: Unit) -> list[Path]:
    """What a unit's forms, sheet and GeoTIFF sum: its communes' khoanh and, for
    a district or the province, the record of which communes they are
    (``cache/members/<level>_<code>.json``, rewritten only when they change)."""
    khoanh = [work.khoanh(code) for code in unit.communes]
    if unit.level == "xa":
        return khoanh
    record = work.cache_dir / "members" / f"{unit.level}_{unit.code}.json"
    return [*khoanh, write_json_if_changed(record, sorted(unit.communes))]


def forget_commune(work: WorkDir, key: str) -> list[Path]:
    """Remove what a commune whose files are gone left in the work directory:
    its parcels, quarantine, QA, khoanh and change pieces, and what the stages
    keep of it under ``cache/``. Returns what was removed. Its forms, sheets
    and GeoTIFF go with the stages that list their units; its review workbook,
    which the officer may have filled in, stays."""
    kept = [
        work.figures_dir.glob(f"*/{key}.parquet.*"),
        work.generalised_dir.glob(f"*/{key}.parquet"),
        work.province_cells_dir.glob(f"*/{key}.npz"),
    ]
    paths = [work.parcels(key), work.quarantine(key), work.qa_dir / key, work.khoanh(key),
             work.commune_outline(key), work.overlap_pairs(key), work.edge_suspects(key),
             work.change(key), work.change(key).with_suffix(".csv"), *(p for found in kept for p in found)]
    return _remove(paths)


def forget_comparison(work: WorkDir) -> list[Path]:
    """Remove what comparing with a previous inventory made (the overlay, the
    transitions, their report), for a run that no longer has one: its forms
    and sheets go with the stages that list them."""
    return _remove([work.change_dir, work.transitions_csv, work.report("change.md")])


def remove_unlisted(found: Iterable[Path], listed: Iterable[Path]) -> list[Path]:
    """Remove the files or folders ``found`` that are not ``listed`` (the
    products of units a run no longer has); returns them."""
    keep = set(listed)
    return _remove(path for path in found if path not in keep)


def _remove(paths: Iterable[Path]) -> list[Path]:
    removed = [path for path in paths if path.exists()]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digests_record(work: WorkDir, folder: Path) -> Path:
    """Where the digests of the files kiemke writes into ``folder`` are kept:
    ``cache/written/<folder under the work directory>.json`` (a folder
    elsewhere: by its name; the work directory itself: ``top.json``)."""
    below = folder.relative_to(work.root) if folder.is_relative_to(work.root) else Path(folder.name)
    return work.cache_dir / "written" / (below.with_suffix(".json") if below.name else "top.json")


def _written(record: Path) -> dict[str, str]:
    """The digests a record holds, by file name (none when there is no record)."""
    return read_json(record, {})


def record_written_files(record: Path, paths: Iterable[Path]) -> None:
    """Record the digests of files kiemke just wrote (``record``: by name, one
    folder's; rewritten only when one changes)."""
    write_json_if_changed(record, _written(record) | {path.name: digest(path) for path in paths})


def keep_hand_edits(record: Path, paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """Set aside those of ``paths`` that are not as kiemke last wrote them (by
    ``record``), before it writes them again: each file and where it is kept."""
    return set_aside_changed(paths, _written(record))


@contextmanager
def recording(record: Path, paths: list[Path]) -> Iterator[None]:
    """Around kiemke writing ``paths`` again (``record``: their digests as it
    last wrote them): their digests are dropped while they are written, so
    that a run stopped halfway leaves none to take its new bytes for a hand
    edit; then the new ones are recorded."""
    written, names = _written(record), {path.name for path in paths}
    if names & written.keys():
        write_json(record, {name: value for name, value in written.items() if name not in names})
    yield
    record_written_files(record, paths)


@contextmanager
def rewriting(record: Path, paths: list[Path]) -> Iterator[list[tuple[Path, Path]]]:
    """:func:`recording`, those of ``paths`` changed by hand since set aside
    first (each file and where it is kept, yielded)."""
    kept = keep_hand_edits(record, paths)
    with recording(record, paths):
        yield kept


def set_aside_changed(paths: Iterable[Path], written: Mapping[str, str]) -> list[tuple[Path, Path]]:
    """Set aside those of ``paths`` whose digest is not the one ``written``
    (by file name) records: each file and where it is kept. A file with no
    recorded digest, or one only copied (same bytes), is not."""
    return [(path, set_aside(path)) for path in paths
            if path.name in written and path.exists() and digest(path) != written[path.name]]


def aside_name(path: Path, folder: Path, tag: str = "") -> Path:
    """A name no file has in ``folder`` for ``path`` as it was saved:
    ``<name><tag>_<its time>.<ext>`` (``_2`` … after the time when taken)."""
    when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d_%H%M%S")
    aside, n = folder / f"{path.stem}{tag}_{when}{path.suffix}", 1
    while aside.exists():
        n += 1
        aside = folder / f"{path.stem}{tag}_{when}_{n}{path.suffix}"
    return aside


def set_aside(path: Path) -> Path:
    """``path`` renamed ``<name>_ban_sua_<its time>.<ext>`` in its folder (a
    GeoPackage's write-ahead log with it), where kiemke neither reads nor removes it."""
    aside = aside_name(path, path.parent, "_ban_sua")
    for extra in ("-wal", "-shm"):
        if (beside := path.with_name(path.name + extra)).exists():
            os.replace(beside, aside.with_name(aside.name + extra))
    os.replace(path, aside)
    return aside


def tell_kept(kept: Iterable[tuple[Path | str, Path | str]], kind: str) -> None:
    """Say on the console (Vietnamese) where each file changed by hand was kept
    (``kind``: "form", "QGIS project", "style file", "map sheet", "statistics table", "boundary file")."""
    for path, aside in kept:
        log.warning(officer_message(f"{path}: the {kind} was changed after kiemke wrote it, so it is kept as {aside}"))
