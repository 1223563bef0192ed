"""Exceptions and warnings of kiemke.

The core raises these; the CLI turns them into a one-paragraph message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path


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


class DiskFullError(KiemkeError, OSError):
    """The disk an output was being written to has no space left."""


#: How SQLite (a GeoPackage) and GDAL say that the disk is full, besides ENOSPC.
_DISK_FULL_WORDS = ("No space left on device", "database or disk is full")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is a full disk."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if any(words in str(seen) for words in _DISK_FULL_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full(exc: BaseException, folder: Path) -> DiskFullError:
    """The officer's error for a full disk: the folder being written (the file's,
    when the error names one), what is left on its disk and what to do."""
    filename = getattr(exc, "filename", None)
    folder = Path(filename).parent if isinstance(filename, str) else Path(folder)
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), Path.cwd())
    free_mb = shutil.disk_usage(existing).free / 2**20
    return DiskFullError(f"no space left on the disk holding {folder} ({free_mb:.0f} MB free). Free space on "
                         "that disk, or set the work directory to a folder on another disk, then run again: "
                         "the stages already done are kept")
