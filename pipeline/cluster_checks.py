"""Checks of a cluster given by its address, before each map (its workers)
and before each task (its worker): they run this kiemke and see the work
directory and the inputs as this process does."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .build import code_digest
from .errors import OtherCodeOnWorkers, WorkersSeeOtherFiles


@dataclass(frozen=True)
class WorkerFit:
    """What a worker of a cluster given by its address must be: asked by
    :func:`check_workers` before each map, by :func:`refuse_unfit_worker` before each task."""

    address: str  # the cluster's
    digest: str  # this kiemke's code_digest()
    marker: str | None  # a file kept in the work directory while kiemke is connected


#: What the officer does about a worker of another kiemke, or one that sees other folders.
_INSTALL_SAME = ("Install the kiemke of this computer (its files as they are here) on every machine of the cluster, "
                 "or run without --scheduler, then run again: the stages already done are kept")
_SHARE_FOLDERS = ("Put the work directory and the input files on storage every machine of the cluster mounts at "
                  "the same path (workdir and input under [inventory]), then run again: the stages already done "
                  "are kept")


def check_workers(client, fit: WorkerFit, inputs: Sequence[Path] = (), workers: Sequence[str] | None = None) -> None:
    """A cluster given by its address, before its workers' tasks: each runs
    this kiemke (:func:`code_digest`), sees the file ``fit.marker`` (so the
    work directory as this process does) and the ``inputs`` (files and
    folders its tasks read) as they are here, else the run stops, naming the
    workers. Workers of another kiemke write other figures without a word (a
    cluster running the kiemke of 60 commits before gave the sample other
    areas for 06319's forest); a worker that reads and writes a folder of its
    own machine by the work directory's name would leave its outputs there, or
    read another run's; one that does not see the inputs says a shapefile's
    .dbf is missing. ``workers``: those to check (all when None)."""
    theirs = client.run(code_digest, workers=workers, on_error="return")  # one without kiemke: its ImportError
    other = sorted(worker for worker, digest in theirs.items() if digest != fit.digest)
    if other:
        raise OtherCodeOnWorkers(
            f"the workers {_listed(other)} of the cluster at {fit.address} run another kiemke than this computer, "
            f"or none ({len(other)} of the {len(theirs)} workers checked). {_INSTALL_SAME}")
    if fit.marker is not None:
        _all_see(client, workers, fit.address, Path(fit.marker).parent, os.path.exists, fit.marker, True)
    for path in inputs:
        _all_see(client, workers, fit.address, path, seen_as, str(path), seen_as(str(path)))


def refuse_unfit_worker(fit: WorkerFit) -> None:
    """On a worker, before each task: it runs this kiemke and sees the file
    ``marker`` (so the work directory as this process does), else the task
    stops before it reads or writes anything. A worker that joins while a
    map's tasks are out (an adaptive cluster grows) is asked by its first
    task; :func:`check_workers` asks those already there before each map."""
    if code_digest() != fit.digest:
        raise OtherCodeOnWorkers(
            f"the worker {_this_worker()} that joined the cluster at {fit.address} during a step runs another "
            f"kiemke than this computer: none of its tasks ran. {_INSTALL_SAME}")
    if fit.marker is not None and not os.path.exists(fit.marker):
        raise WorkersSeeOtherFiles(
            f"the worker {_this_worker()} that joined the cluster at {fit.address} during a step does not see "
            f"{Path(fit.marker).parent} as this computer does: none of its tasks ran. {_SHARE_FOLDERS}")


def _this_worker() -> str:
    from distributed import get_worker  # only ever called in a task on a worker: imported there already

    return get_worker().address


def seen_as(path: str) -> tuple[str, object] | None:
    """A file (its size) or folder (its entries' names and sizes, -1 for a
    folder) as this machine sees it; None when it sees nothing there."""
    if os.path.isfile(path):
        return "file", os.path.getsize(path)
    if os.path.isdir(path):
        with os.scandir(path) as entries:
            return "folder", sorted((e.name, e.stat().st_size if e.is_file() else -1) for e in entries)
    return None


def _all_see(client, workers: Sequence[str] | None, address: str, path: Path, look: Callable[[str], object],
             what: str, expected: object) -> None:
    """Each worker's ``look(what)`` is ``expected``, else the run stops naming the workers that see otherwise."""
    seen = client.run(look, what, workers=workers, on_error="return")
    blind = sorted(worker for worker, found in seen.items() if found != expected)
    if blind:
        raise WorkersSeeOtherFiles(
            f"the workers {_listed(blind)} of the cluster at {address} do not see {path} as this computer does "
            f"({len(blind)} of the {len(seen)} workers checked). {_SHARE_FOLDERS}")


def _listed(workers: list[str], shown: int = 5) -> str:
    """The first workers' addresses (how many there are is said beside)."""
    return ", ".join(workers[:shown]) + (", …" if len(workers) > shown else "")
