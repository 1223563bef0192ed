"""Exceptions and warnings of kiemke.

The core raises these; the CLI turns them into a one-paragraph message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

from .io import free_bytes


class KiemkeError(Exception):
    """Base class of every error kiemke reports to an officer."""


class ConfigError(KiemkeError, ValueError):
    """The inventory configuration is wrong: names the key and what is allowed."""


class UnknownProvinceError(KiemkeError, ValueError):
    """A province name or GSO code that is not in the 63-province table."""


class CRSError(KiemkeError, ValueError):
    """A file's coordinates fit no coordinate reference system we can use."""


class InputFileError(KiemkeError):
    """A raw input file cannot be read at all (corrupt, empty, wrong format)."""


class SchemaError(KiemkeError, ValueError):
    """A stage's output breaks its data contract."""


class StageInputMissing(KiemkeError, FileNotFoundError):
    """A stage was run before the stage whose outputs it reads."""


class InventoryWarning(UserWarning):
    """Something an officer should look at; the run goes on."""


class WorkersDied(KiemkeError, MemoryError):
    """The workers of a cluster died, one after the other, running one task:
    most often each ran out of the memory it was given."""


class ClusterUnreachable(KiemkeError, ConnectionError):
    """No Dask scheduler answers at the address given (``--scheduler``)."""


class OtherCodeOnWorkers(KiemkeError):
    """Workers of a cluster given by its address run another kiemke than this
    process (or none): they would write other figures without a word."""


class WorkersSeeOtherFiles(KiemkeError):
    """Workers of a cluster given by its address do not see the work directory
    or the inputs as this process does: they would read and write other
    folders by their names."""


class RefusedBySystem(KiemkeError, OSError):
    """The system would not let kiemke write: a full disk, a file open in
    another program (Windows locks it), no permission, a read-only disk."""


#: How SQLite (a GeoPackage) and GDAL say that the disk is full, besides ENOSPC.
_DISK_FULL_WORDS = ("No space left on device", "database or disk is full")

#: Why the system would not let a file be opened, by errno.
_REFUSED = {errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "a read-only disk"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the errors it was raised from (``raise … from``; not those
    it was raised while handling: a fallback's own error is not its cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__


def refused_by_system(exc: BaseException, folder: Path) -> RefusedBySystem | None:
    """The officer's error when ``exc`` (or an error it was raised from) is the
    system refusing to write in ``folder``, the work directory: a full disk or
    a file it may not open; None for any other error."""
    for seen in _chain(exc):
        if isinstance(seen, OSError) and seen.errno in _REFUSED:
            return _refused(seen, _REFUSED[seen.errno])
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or any(
                words in str(seen) for words in _DISK_FULL_WORDS):
            return _disk_full(seen, folder)
    return None


def _disk_full(exc: BaseException, folder: Path) -> RefusedBySystem:
    """A full disk: the folder being written (the file's, when the error names
    one), what is left on its disk and what to do."""
    filename = getattr(exc, "filename", None)
    folder = Path(filename).parent if isinstance(filename, str) else Path(folder)
    free_mb = free_bytes(folder) / 2**20
    return RefusedBySystem(f"no space left on the disk holding {folder} ({free_mb:.0f} MB free). Free space on "
                           "that disk, or set the work directory to a folder on another disk, then run again: "
                           "the stages already done are kept")


def _refused(exc: OSError, why: str) -> RefusedBySystem:
    """A file the system will not let kiemke open: the file a rename was to
    replace (a workbook open in Excel), else the one named."""
    path = exc.filename2 or exc.filename
    return RefusedBySystem(f"{path}: the system refused to open it ({why}). Close it where another "
                           "program (Excel, QGIS) has it open, or set the work directory to a folder that may be "
                           "written, then run again: the stages already done are kept")
