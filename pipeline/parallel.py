"""Running per-file and per-commune work in parallel with dask.distributed.

One code path for a laptop and a cluster: ``scheduler=None`` starts an
in-process LocalCluster (one single-threaded worker process per core, memory
bounded per worker); an address (``tcp://host:8786``) uses an existing
cluster; ``"sync"`` runs in this process, one item after the other. Tasks get
and return paths and small records (never pickled GeoDataFrames): workers read
and write GeoParquet in the work directory, which a cluster must share.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .build import code_digest
from .cluster_checks import WorkerFit, check_workers, refuse_unfit_worker
from .errors import ClusterUnreachable, WorkersDied
from .io import scratch_beside
from .regime import active_regime, call_in_regime

log = logging.getLogger(__name__)

SYNC = "sync"


def _memory_per_worker(workers: int) -> str:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "auto"
    return f"{int(total * 0.8 / workers / 2**20)}MiB"


#: The inventory's local cluster starts at the first map of at least this many
#: tasks; smaller maps before it run in this process. Two workers cost ~3 s to
#: start (and ~2 CPU-seconds each to import their libraries), more than a
#: commune's tasks: a one-commune export's inventory took 10.9-11.0 s with them, 6.5-6.8 without.
LOCAL_CLUSTER_FROM = 4


@contextmanager
def executor(scheduler: str | None = None, workers: int | None = None, local_from: int = 1,
             start_early: Callable[[], bool] | None = None, shared: Path | None = None,
             inputs: Sequence[Path] = ()):
    """Yield a ``map(func, items, desc)`` that runs on the chosen scheduler
    (or ``scheduler`` itself when it already is such a map). A cluster is
    started (or joined) at the first map with work to do: a run that finds
    everything up to date starts none; a local one (``scheduler`` None) only
    at the first map of at least ``local_from`` tasks, the maps before it run
    in this process, unless ``start_early`` says yes at one of them: then the
    cluster starts in the background while they run, for the larger maps to
    come (a province with one commune changed). A cluster given by its
    address must run this kiemke and see ``shared`` (the work directory)
    and the ``inputs`` its tasks read as this process does (:func:`check_workers`)."""
    if callable(scheduler):  # a map already started (the inventory's cluster, shared by the stages)
        yield scheduler
        return
    if scheduler == SYNC:
        yield _map_sync
        return
    cluster = _Cluster(scheduler, workers, local_from, start_early, shared, inputs)
    try:
        yield cluster
    finally:
        cluster.close()


class _Cluster:
    """A dask client (and the local cluster it drives), made when first needed."""

    def __init__(self, address: str | None, workers: int | None, local_from: int = 1,
                 start_early: Callable[[], bool] | None = None, shared: Path | None = None,
                 inputs: Sequence[Path] = ()):
        self.address, self.workers, self.local_from = address, workers, local_from
        self.start_early, self.shared, self.inputs = start_early, shared, tuple(inputs)
        self.checked: set[str] = set()  # the workers of a cluster given by its address found fit
        self.fit: WorkerFit | None = None  # what each of its tasks asks of its worker first
        self.client: Any = None  # distributed.Client, imported only when a cluster is used
        self.local: Any = None  # the LocalCluster it drives (none for an address)
        self.starting: Future | None = None  # the local cluster starting in the background
        self.behind = 0  # maps of a lower priority running (on other threads)
        self._lock, self._connecting = threading.Lock(), threading.Lock()

    def map(self, func: Callable, items: Iterable, desc: str = "", priority: int = 0) -> list[Any]:
        """``func(*item)`` of each item, in order; a task of a higher
        ``priority`` goes first to a worker that frees up. While maps of a
        lower priority run (sheets drawn in the background, on another
        thread) on every worker, a small map runs here: its few tasks would
        wait for a worker busy with a province sheet for seconds."""
        items = list(items)
        if not items:
            return []
        if priority < 0:
            return self._map_behind(func, items, desc, priority)
        if self.address is None and not self._ready() and len(items) < self.local_from:  # not worth it (yet)
            self._start_in_background()
            return _map_sync(func, items, desc)
        if self.behind and len(items) < 2 * self.local_from and _all_busy_behind(self._client()):
            return _map_sync(func, items, desc)
        return _map_dask(self._client(), func, items, desc, priority, fit=self.fit)

    def _map_behind(self, func: Callable, items: list, desc: str, priority: int) -> list[Any]:
        """A map of a lower priority (from another thread): on the cluster
        only, never in this process, counted while it runs."""
        with self._lock:
            self.behind += 1
        try:
            return _map_dask(self._client(), func, items, desc, priority, key=BEHIND, fit=self.fit)
        finally:
            with self._lock:
                self.behind -= 1

    __call__ = map  # the cluster is the map the stages are given

    @property
    def running(self) -> bool:
        """Whether a cluster is up or starting (the maps after this one run on it)."""
        return self.client is not None or self.starting is not None

    def _ready(self) -> bool:
        return self.client is not None or (self.starting is not None and self.starting.done())

    def _start_in_background(self) -> None:
        """Start the local cluster on a thread when ``start_early`` says so:
        its workers spawn and import kiemke (as this process's ``__main__``)
        on the core this process leaves idle."""
        if self.starting is None and self.start_early is not None and self.start_early():
            starter = ThreadPoolExecutor(1, thread_name_prefix="kiemke-cluster")
            self.starting = starter.submit(self._connect)
            starter.shutdown(wait=False)  # its thread ends once the cluster is up

    def _client(self):
        with self._connecting:  # one cluster, whichever thread asks first
            if self.client is None:
                if self.starting is not None:
                    self.starting.result()  # waits for the background start; its error, if any, is raised here
                else:
                    self._connect()
            if self.fit is not None:
                self._check_joined(self.fit)
        return self.client

    def _check_joined(self, fit: WorkerFit) -> None:
        """A cluster given by its address, at each map: its workers not yet
        checked (all at the first, those that joined since at the others: an
        adaptive cluster grows) run this kiemke and see its folders
        (:func:`check_workers`)."""
        joined = sorted(set(self.client.nthreads()) - self.checked)
        if joined:
            check_workers(self.client, fit, self.inputs, joined)
            self.checked.update(joined)

    def _marker(self) -> str | None:
        """A file kept in the work directory while kiemke is connected to a
        cluster given by its address, for each task to find on its worker (a
        killed run's is removed by the next)."""
        if self.shared is None:
            return None
        self.shared.mkdir(parents=True, exist_ok=True)
        return str(scratch_beside(self.shared / "cluster-run"))

    def _connect(self) -> None:
        import dask  # as distributed: only when a cluster is used
        from distributed import Client, LocalCluster  # heavy (tornado, the scheduler): only when a cluster is used

        if not log.isEnabledFor(logging.DEBUG):  # importing distributed resets its loggers to INFO
            for name in ("distributed", "tornado"):
                logging.getLogger(name).setLevel(logging.WARNING)
        # the tasks' own records (a unit's figures for its forms: ~0.3 MB) add up to a "large graph" for dask,
        # whose warning would reach the officer's console: they are sent once either way. Set for the
        # process (maps run on two threads at once: a ``with`` of one would end the other's)
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"})
        if self.address:
            try:
                self.client = Client(self.address)
            except (OSError, ValueError) as exc:  # a refused or timed-out connection; an address that is none
                raise _unreachable(self.address, exc) from None
            self.fit = WorkerFit(self.address, code_digest(), self._marker())
        else:
            workers = self.workers or os.cpu_count() or 1
            # glibc's own malloc thresholds on the workers, not dask's 64 KiB trim threshold: set, it fixes
            # glibc's mmap threshold at 128 KiB, so that every array above it (a GeoTIFF band counted a million
            # cells at a time, a window burnt) is mapped, faulted in page by page and unmapped again: 2.3 M page
            # faults in the 1 M province's package stage, 0.35 M without; 17.7 s against 19.1-19.8
            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
            # nor dask's profiler, which samples each task's stack every 10 ms for a dashboard the run does
            # not serve: 16 sheets of the 1 M province's communes of 2025 on one worker, 22.95 and 21.74
            # CPU-s without it, 23.89 and 22.56 with it (runs alternated: 4 % of every task)
            dask.config.set({"distributed.worker.profile.enabled": False})
            self.local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      memory_limit=_memory_per_worker(workers), scheduler_kwargs={"dashboard": False},
                                      silence_logs=logging.ERROR)
            self.client = Client(self.local)
            self.client.register_plugin(_local_worker_plugin())
        log.info("dask: %s (%d workers)", self.address or "LocalCluster", len(self.client.scheduler_info()["workers"]))

    def close(self) -> None:
        """Close the client, then the local cluster, without a word: every
        result is in by now, and a worker's heartbeat that races the closing
        scheduler logs an error with a traceback (dask/distributed#7105) that an
        officer would read as a failed run. A remote cluster's logs are its own.
        A cluster started early and never used is closed too; had it failed to
        start, nothing needed it."""
        if self.starting is not None:
            with suppress(Exception):  # its error matters only to a map that needed it (raised there)
                self.starting.result()
        if self.local is not None and self.client is not None:
            with suppress(Exception):  # a worker already gone has nothing left to say
                self.client.run(_quiet_logs)
        if self.fit is not None and self.fit.marker is not None:
            Path(self.fit.marker).unlink(missing_ok=True)
        with _quiet() if self.local is not None else nullcontext():
            if self.client is not None:
                self.client.close()
            if self.local is not None:
                self.local.close()


#: How much less CPU a local worker claims than this process (Unix nice).
WORKER_NICENESS = 10


def _yield_to_this_process() -> None:
    """On a local worker: a lower CPU priority than the process that drives
    it, whose own work (a stage's figures) is what the run waits for while
    the workers draw sheets in the background; the officer's desktop stays
    responsive too. Where the system has no niceness (Windows), nothing."""
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)


class _TaskFailureFilter(logging.Filter):
    """Drops a worker's "Compute Failed" record (the task, its arguments and
    a traceback): the task's error is raised in this process, where the
    officer reads it in one paragraph, in Vietnamese (KIEMKE_DEBUG keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


def _hide_failed_tasks() -> None:
    if not os.environ.get("KIEMKE_DEBUG"):
        logging.getLogger("distributed.worker").addFilter(_TaskFailureFilter())


def _local_worker_plugin():
    """A worker plugin that sets up each local worker as it starts, also one
    its nanny starts again (after a memory kill: a new process, at this
    process's priority), which ``client.run`` would miss: it yields the CPU
    (:func:`_yield_to_this_process`), keeps failed tasks off the console and
    freezes what every task leaves alive (:func:`_freeze_after_every_task`)."""
    from distributed import WorkerPlugin  # heavy: only when a cluster is used

    class LocalWorkerSetup(WorkerPlugin):
        name = "kiemke-local-worker"

        def setup(self, worker) -> None:
            _yield_to_this_process()
            _hide_failed_tasks()
            _freeze_after_every_task()

    return LocalWorkerSetup()


#: Loggers quiet while a cluster closes: dask's logging config gives the two children their own levels.
_SHUTDOWN_LOGGERS = ("distributed", "distributed.client", "tornado", "tornado.application")


def _quiet_logs() -> None:
    """On a worker about to be closed: only critical messages from here on."""
    for name in _SHUTDOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _quiet():
    """This process's dask loggers (the nannies of a local cluster live here)
    at critical while the cluster closes, then as they were."""
    loggers = [logging.getLogger(name) for name in _SHUTDOWN_LOGGERS]
    levels = [logger.level for logger in loggers]
    _quiet_logs()
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _map_sync(func: Callable, items: Iterable, desc: str = "") -> list[Any]:
    items = list(items)
    return [func(*item) for item in tqdm(items, desc=desc, unit="việc", disable=not desc)]


def on_every_process(pmap: Callable, func: Callable[[], Any]) -> list[Any]:
    """``func()`` in this process and, when ``pmap`` is a cluster that runs,
    on each of its workers: to give back what their tasks of a stage kept
    for the next. What it returned, here first (a worker gone by then has
    nothing to give back, nor any result)."""
    here = func()
    if not isinstance(pmap, _Cluster) or pmap.client is None:
        return [here]
    return [here, *pmap.client.run(func, on_error="ignore").values()]


def call(func: Callable, *args) -> Any:
    """Task: ``func(*args)``; one map over tasks of different functions."""
    return func(*args)


#: Set on a worker of the local cluster, which ends with the run: what is alive
#: after each of its tasks is frozen (:func:`freeze_heap`), not only after a
#: task that imported modules. What the tasks leave (caches, dask's own
#: records) otherwise piles up where every full collection scans it: ~190 000
#: objects a worker by the package stage of the 1 M province, whose tasks spent
#: 18 % of their time in the collector (7.8 CPU-s); 5.8 % of the maps stage's.
#: Cycles among frozen objects that die later stay until the worker ends; a
#: remote cluster's workers, which outlive a run, freeze only after imports.
ON_A_LOCAL_WORKER = threading.Event()


def _freeze_after_every_task() -> None:
    ON_A_LOCAL_WORKER.set()


def _worker_task(regime: str, func: Callable, *args) -> Any:
    """How a worker runs a task: ``func(*args)`` in the run's regime; when the
    task imported modules, or on a local worker, what is alive afterwards is
    frozen (see freeze_heap)."""
    if ON_A_LOCAL_WORKER.is_set():
        result = call_in_regime(regime, func, *args)
        freeze_heap()
        return result
    with frozen_after_imports():
        return call_in_regime(regime, func, *args)


def _worker_item(regime: str, fit: WorkerFit | None, func: Callable, item: tuple) -> Any:
    """A task of a map: ``func(*item)`` on a worker (items of any length),
    unless the worker is not ``fit`` (a cluster given by its address)."""
    if fit is not None:
        refuse_unfit_worker(fit)
    return _worker_task(regime, func, *item)


def freeze_heap() -> None:
    """Collect, then move every surviving object (modules, caches, the worker's
    own state) out of the collector's reach: its full collections, which the
    objects a task makes set off, then scan what tasks made since, not the
    ~180 000 objects of the libraries (a map sheet's: 0.03 s instead of 0.14 s)."""
    gc.collect()
    gc.freeze()


@contextmanager
def frozen_after_imports() -> Iterator[None]:
    """Run the block; when it imported modules (a worker's first task of a
    kind, a stage of the inventory), :func:`freeze_heap` afterwards: the
    inventory's own process spends ~0.8 s less in the collector after one
    commune of a 1 M-parcel province changed, ~2.8 s less on the sample with ``--scheduler sync``."""
    modules = len(sys.modules)
    yield
    if len(sys.modules) != modules:
        freeze_heap()


@contextmanager
def thawed_after() -> Iterator[None]:
    """Run the block; then give what it froze (:func:`frozen_after_imports`)
    back to the collector, for a process that runs on (a notebook, the tests)."""
    try:
        yield
    finally:
        gc.unfreeze()


#: The name of the tasks of a map behind the others (of a lower priority).
BEHIND = "kiemke-behind"


def _all_busy_behind(client) -> bool:
    """Whether every worker is running a task of a map behind the others."""
    running = client.processing().values()
    return bool(running) and all(any(str(key).startswith(BEHIND) for key in keys) for keys in running)


def _map_dask(client, func: Callable, items: Iterable, desc: str = "", priority: int = 0,
              key: str | None = None, fit: WorkerFit | None = None) -> list[Any]:
    """``func(*item)`` of each item on the cluster, in order, each task first
    asking its worker to be ``fit`` (a cluster given by its address)."""
    from distributed import KilledWorker, as_completed  # see executor: distributed is imported only for a cluster

    items = list(items)
    regime = active_regime()  # the run's regime, active on the worker too
    # one map, and results fetched as they come (a sync round trip per future cost ~0.7 ms a task)
    futures = client.map(_worker_item, [regime] * len(items), [fit] * len(items), [func] * len(items), items,
                         pure=False, priority=priority, **({"key": key} if key else {}))
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    with tqdm(total=len(futures), desc=desc, unit="việc", disable=not desc) as bar:
        try:
            for future, result in as_completed(futures, with_results=True, loop=client.loop):  # raises a task's error
                results[index[future.key]] = result
                bar.update()
        except KilledWorker as exc:
            raise _out_of_memory(client, exc, func, items[index[exc.task]] if exc.task in index else ()) from None
    return results


def _unreachable(address: str, exc: Exception) -> ClusterUnreachable:
    """The officer's error when no scheduler answers at ``address`` (a wrong
    address, a scheduler not running or out of reach): not an internal error."""
    return ClusterUnreachable(
        f"no Dask scheduler answered at {address}. Check the address (tcp://HOST:8786), that the scheduler runs "
        "there and that this computer may reach its port, or run without --scheduler, then run again: the "
        f"stages already done are kept ({exc})")


def _out_of_memory(client, killed, func: Callable, item: tuple) -> WorkersDied:
    """The officer's error for a task that each worker running it died of
    (their nanny restarts a worker past its memory budget): which step, on what,
    the memory each worker had, and what to do."""
    if func is call:  # a map of different functions: the function is the item's first
        func, item = item[0], item[1:]
    about = ", ".join(str(arg) for arg in item if isinstance(arg, str | os.PathLike))[:300]
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    each = f"{max(limits, default=0) / 2**20:.0f} MB"
    return WorkersDied(f"the workers died {killed.allowed_failures + 1} times in turn running "
                       f"{getattr(func, '__name__', func)} on {about or 'its data'}, most likely out of memory "
                       f"({each} each). Run again with fewer workers (--workers 1), or in one process "
                       '(scheduler = "sync" under [inventory]), or with other programs closed: the stages already '
                       "done are kept")
