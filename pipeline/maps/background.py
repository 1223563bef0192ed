"""The inventory's map sheets drawn while its later stages run.

A work directory's sheets need its khoanh (and change pieces) only: they can
be drawn from then on, on the cluster's workers, while this process computes
the statistics and forms. Their tasks go at a lower priority than the
stages' own, so a sheet takes a worker that a stage leaves idle and a stage's
tasks never wait behind a queue of sheets."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ..parallel import on_every_process
from ..workdir import WorkDir
from .render import release_preview_rows
from .stage import run_maps

log = logging.getLogger(__name__)

#: The priority of the sheets' tasks drawn in the background (the stages' own: 0).
SHEETS_PRIORITY = -1


class SheetsInBackground:
    """Draws work directories' sheets in the background once their khoanh are
    made (:meth:`start`); :meth:`finish` waits for them. Where no cluster runs
    (``--scheduler sync``, an export of fewer communes than the cluster is
    started for) nothing is drawn before :meth:`finish`, which then draws every
    sheet in one map, the biggest first, as :func:`run_maps` does."""

    def __init__(self, cluster: Callable, threads: ThreadPoolExecutor):
        self.cluster, self.threads = cluster, threads
        self.waiting: list[WorkDir] = []
        self.drawing: list[Future] = []

    def start(self, works: Sequence[WorkDir]) -> None:
        """Draw the sheets of ``works``: now, in the background, when a cluster runs."""
        if not works:
            return
        if not getattr(self.cluster, "running", False):
            self.waiting.extend(works)
            return
        log.info("maps: drawing the sheets of %s in the background", ", ".join(str(w.root) for w in works))
        draw = functools.partial(run_maps, works[0], others=works[1:],
                                 scheduler=functools.partial(self.cluster, priority=SHEETS_PRIORITY))
        self.drawing.append(self.threads.submit(contextvars.copy_context().run, draw))

    def finish(self) -> None:
        """Draw the sheets still waiting, then wait for those drawn in the
        background (a task's error is raised here)."""
        if self.waiting:
            run_maps(self.waiting[0], others=self.waiting[1:], scheduler=self.cluster)
        for drawing in self.drawing:
            drawing.result()
        on_every_process(self.cluster, release_preview_rows)  # the package stage's memory, not the sheets'
