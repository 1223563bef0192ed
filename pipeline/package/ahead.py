"""The GeoPackage written before, copied beside it ahead of the package
stage, in a thread, while the stages before it compute: the package stage of a
re-run with one commune changed then patches that copy at once. (Copying the
1 M-parcel province's 870 MB at the package stage took 0.4–5.9 s, by how busy
the disk was with the run's other outputs.)

The copy is taken only if the file has not changed since it began (size and
modification time of the file and of its write-ahead log); else the package stage copies the file as it is
then. A copy no stage takes is stopped and removed at the end of the run; one
a killed run left is named as its scratch files are (``.<name>.<random>.gpkg``)
and removed by the next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..io import file_stamp, scratch_beside

log = logging.getLogger(__name__)

#: Bytes copied between two looks at whether the copy is still wanted.
CHUNK = 64 << 20


@dataclass
class _Copy:
    """One copy made ahead: of ``source`` as it was (``stamp``) to ``target``."""

    source: Path
    target: Path
    stamp: list[tuple[str, int, int]]
    stop: threading.Event = field(default_factory=threading.Event)
    whole: bool = False

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="kiemke-gpkg-copy", daemon=True)

    def _run(self) -> None:
        try:
            self.whole = copy_until(self.source, self.target, self.stop)
        except OSError as error:  # a full disk, the file removed: the package stage copies it itself
            log.info("package: the GeoPackage could not be copied ahead (%s)", error)

    def wait(self) -> None:
        self.thread.join()


_COPIES: dict[Path, _Copy] = {}
_LOCK = threading.Lock()


def copy_ahead(path: Path) -> None:
    """Start copying ``path`` beside it, in a thread (once for a file)."""
    key = path.resolve()
    with _LOCK:
        if key in _COPIES:
            return
        copy = _COPIES[key] = _Copy(path, scratch_beside(path, ".gpkg"), file_stamp(path))
    copy.thread.start()
    log.info("package: copying %s ahead of the package stage", path)


def take_copy(previous: Path, target: Path) -> bool:
    """``previous`` copied to ``target``: the copy made ahead when ``previous``
    has not changed since it began (True), else a copy made now (False)."""
    with _LOCK:
        copy = _COPIES.pop(previous.resolve(), None)
    if copy is not None:
        copy.wait()
        if copy.whole and file_stamp(previous) == copy.stamp:
            os.replace(copy.target, target)
            return True
        copy.target.unlink(missing_ok=True)
    shutil.copyfile(previous, target)
    return False


def discard_copies() -> None:
    """Stop and remove the copies made ahead that no stage took (a run that
    stopped early, or found nothing to patch)."""
    with _LOCK:
        copies = list(_COPIES.values())
        _COPIES.clear()
    for copy in copies:
        copy.stop.set()
        copy.wait()
        copy.target.unlink(missing_ok=True)


def copy_until(source: Path, target: Path, stop: threading.Event) -> bool:
    """Copy ``source`` to ``target`` chunk by chunk (in the kernel on Linux, as
    :func:`shutil.copyfile` does) until done (True) or ``stop`` is set (False)."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        size, offset = os.fstat(src.fileno()).st_size, 0
        kernel = sys.platform.startswith("linux") and hasattr(os, "sendfile")
        while offset < size and not stop.is_set():
            if kernel:
                sent = os.sendfile(dst.fileno(), src.fileno(), offset, min(CHUNK, size - offset))
            else:
                sent = dst.write(src.read(CHUNK))
            if not sent:
                break
            offset += sent
    return offset == size and not stop.is_set()
