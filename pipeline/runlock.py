"""One run at a time in a work directory: a second `kiemke inventory` (or a
stage command, `kiemke maps` …) on the same folder stops at once and says which
run holds it, instead of removing the temporary files the first is writing and
racing it for the same outputs.

The lock is the operating system's (``filelock``: ``flock`` on Linux and macOS,
``msvcrt`` on Windows), so a run that is killed or loses its power holds it no
more; a folder whose file system cannot lock (some network shares) runs unlocked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import KiemkeError
from .io import write_json
from .workdir import WorkDir

log = logging.getLogger(__name__)


class WorkDirBusy(KiemkeError):
    """Another run is using the work directory."""


@contextmanager
def one_run_at_a_time(work: WorkDir, *, create: bool = True) -> Iterator[None]:
    """Hold ``cache/run.lock`` of ``work`` while the block runs, with who holds
    it in ``cache/running.json``; :class:`WorkDirBusy` when another process does.
    Unless ``create``, a work directory that is not there is not made (nor
    locked): the stage that needs it says it is missing."""
    if not create and not work.root.is_dir():
        yield
        return
    work.cache_dir.mkdir(parents=True, exist_ok=True)
    lock, holder = FileLock(work.cache_dir / "run.lock"), work.cache_dir / "running.json"
    if not _acquired(lock, work, holder):  # a file system without locks: the run goes on, as before
        yield
        return
    try:
        write_json(holder, {"pid": os.getpid(), "host": socket.gethostname(),
                            "started": time.strftime("%H:%M %d/%m/%Y")})
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _acquired(lock: FileLock, work: WorkDir, holder: Path) -> bool:
    """Whether ``lock`` was taken (not where the file system cannot lock);
    :class:`WorkDirBusy` when another process holds it."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise WorkDirBusy(f"{work.root}: another kiemke run is using this work folder ({_held_by(holder)}).") from None
    except (OSError, NotImplementedError) as exc:
        log.debug("%s: runs not locked (%s)", work.root, exc)
        return False
    return True


def _held_by(holder_path: Path) -> str:
    """``process 1234 on may-1, started 08:15 04/12/2026``, from what the holder wrote."""
    try:
        holder = json.loads(holder_path.read_text(encoding="utf-8"))
        return f"process {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said which yet"
