"""Checks of a cluster given by its address, before its first task: its
workers run this kiemke and see the work directory as this process does."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from .errors import OtherCodeOnWorkers, WorkersSeeOtherFiles
from .io import scratch_beside


def package_digest(root: Path) -> str:
    """A digest of a package folder: every file (the code and the tables it
    ships) by path and content, line ends as LF (a checkout on Windows is the
    same code); compiled files left out."""
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """This kiemke's :func:`package_digest` (12 ms, once a process)."""
    return package_digest(Path(__file__).parent)


def check_workers(client, address: str, shared: Path | None) -> None:
    """A cluster given by its address, before its first task: each worker runs
    this kiemke (:func:`code_digest`) and sees the folder ``shared`` (the work
    directory) as this process does (a file made here is there), else the run
    stops, naming the workers. Workers of another kiemke write other figures
    without a word (a cluster running the kiemke of 60 commits before gave the
    sample other areas for 06319's forest); a worker that reads and writes a
    folder of its own machine by the same name would leave its outputs there,
    or read another run's. A worker that joins the cluster later is not asked."""
    theirs = client.run(code_digest, on_error="return")  # a worker without kiemke: its ImportError
    other = sorted(worker for worker, digest in theirs.items() if digest != code_digest())
    if other:
        raise OtherCodeOnWorkers(
            f"the workers {_listed(other)} of the cluster at {address} run another kiemke than this computer, or "
            f"none ({len(other)} of its {len(theirs)} workers). Install the kiemke of this computer (its files as "
            "they are here) on every machine of the cluster, or run without --scheduler, then run again: the "
            "stages already done are kept")
    if shared is None:
        return
    shared.mkdir(parents=True, exist_ok=True)
    probe = scratch_beside(shared / "cluster-probe")  # removed by the next run if this one is killed
    try:
        seen = client.run(os.path.exists, str(probe), on_error="return")
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(worker for worker, found in seen.items() if found is not True)
    if blind:
        raise WorkersSeeOtherFiles(
            f"the workers {_listed(blind)} of the cluster at {address} do not see the work directory {shared} as "
            f"this computer does ({len(blind)} of its {len(seen)} workers). Put the work directory (and the input "
            "files) on storage every machine of the cluster mounts at the same path (workdir and input under "
            "[inventory]), then run again: the stages already done are kept")


def _listed(workers: list[str], shown: int = 5) -> str:
    """The first workers' addresses (how many there are is said beside)."""
    return ", ".join(workers[:shown]) + (", …" if len(workers) > shown else "")
