"""Executors: where a study's tasks run.

- ``local`` (the default): a pool of worker processes on this machine, one per core unless
  told otherwise (``workers``). Each worker is started once (``spawn``) and runs many tasks,
  so the cost of importing marketsim and loading the compiled kernels is paid once per
  worker. With one worker the tasks run in this process.
- ``dask``: Dask distributed. Without a scheduler address a `LocalCluster` of ``workers``
  single-threaded worker processes is started here and closed at the end; with one
  (``tcp://host:8786``) the tasks go to that cluster, whose workers must see the study
  directory and the experiment files at the same paths (a shared file system). Tasks are
  submitted with ``pure=False`` and carry their seeds, so Dask never merges or caches them.

Every task writes its own part files, whatever the executor, so the tables are
byte-identical across executors and worker counts. ``on_done(spec, timings)`` is called in
this process as each task finishes. The first failing task stops the study: tasks not yet
started are cancelled, finished ones stay on disk.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from marketsim.runner import _start_worker
from marketsim.runner import _stop_pool
from marketsim.runner import _workers_ignore_ctrl_c
from marketsim.study.tasks import StudyError
from marketsim.study.tasks import TaskSpec
from marketsim.study.tasks import run_task

EXECUTORS = ("local", "dask")

CONNECT_TIMEOUT_S = 20
"""How long to try to reach a Dask scheduler before giving up (s)."""

OnDone = Callable[[TaskSpec, dict[str, Any]], None]


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def execute(
    specs: Sequence[TaskSpec],
    on_done: OnDone,
    executor: str = "local",
    workers: int | None = None,
    scheduler: Any = None,
) -> None:
    """Run every task in ``specs`` and call ``on_done`` as each one finishes.

    Args:
        specs: the tasks, in the order to start them.
        on_done: called in this process with each finished task and its timings.
        executor: ``"local"`` or ``"dask"``.
        workers: worker processes (default: every core). With Dask and a scheduler, the
            cluster's own workers are used and this is ignored.
        scheduler: Dask only: a scheduler address, a ``distributed.Client``, or None to
            start a `LocalCluster`.

    Raises:
        StudyError: a worker died, or the scheduler cannot be reached.
        ExperimentError: a task's experiment is invalid at its design point.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    workers = max(1, workers or default_workers())
    if not specs:
        return
    if executor == "dask":
        _run_dask(specs, on_done, workers, scheduler)
    elif workers == 1 or len(specs) == 1:
        for spec in specs:
            on_done(spec, run_task(spec))
    else:
        _run_pool(specs, on_done, min(workers, len(specs)))


def _run_pool(specs: Sequence[TaskSpec], on_done: OnDone, workers: int) -> None:
    """A spawn-context process pool, at most two queued tasks per worker at a time.

    Workers are started as `marketsim.run` starts its own: they ignore Ctrl-C (this process
    handles it), die with this process, and are stopped at once on an error or interrupt.
    """
    pending: dict = {}
    queue = iter(specs)
    pool = None
    try:
        with _workers_ignore_ctrl_c():
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            for spec in itertools.islice(queue, 2 * workers):
                pending[pool.submit(run_task, spec)] = spec
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                spec = pending.pop(future)
                try:
                    timings = future.result()
                except BrokenProcessPool:
                    raise _worker_died(spec) from None
                on_done(spec, timings)
                following = next(queue, None)
                if following is not None:
                    pending[pool.submit(run_task, following)] = following
    except BaseException:
        if pool is not None:
            _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _run_dask(specs: Sequence[TaskSpec], on_done: OnDone, workers: int, scheduler: Any) -> None:
    """Submit every task to a Dask cluster (started here when no scheduler is given)."""
    try:
        from distributed import Client
        from distributed import LocalCluster
        from distributed import as_completed
    except ImportError:
        raise StudyError(
            "--executor dask needs Dask distributed: pip install -e '.[dask]'"
        ) from None
    cluster = None
    client = scheduler if isinstance(scheduler, Client) else None
    own_client = client is None
    try:
        if client is None and scheduler is None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
        elif client is None:
            client = _connect(Client, str(scheduler))
        futures = {client.submit(run_task, spec, pure=False): spec for spec in specs}
        try:
            for future in as_completed(futures):
                spec = futures.pop(future)
                try:
                    timings = future.result()
                except Exception as error:
                    if type(error).__name__ == "KilledWorker":
                        raise _worker_died(spec) from None
                    raise
                on_done(spec, timings)
                future.release()
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _connect(client_class, address: str):
    """A client of the scheduler at ``address``, or a one-line error."""
    try:
        return client_class(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as error:
        raise StudyError(f"cannot reach the Dask scheduler at {address}: {error}") from None


def _worker_died(spec: TaskSpec) -> StudyError:
    return StudyError(
        f"a worker process died (killed, or out of memory) while running {spec.describe()}; "
        "the finished tasks are kept: run again with --resume"
    )
