"""Running an experiment: replications with spawned seeds, tables merged in order.

Replication ``r`` draws its random stream from ``SeedSequence(seed).spawn(n)[r]``, so the
same experiment and seed give identical tables whatever else runs, in one process or many;
the supply graph uses its own stream from the seed (see `marketsim.graph`). Replications run
one after another in this process, or over a pool of fresh processes (``workers``) that
receive the pickled `Experiment`: its resolved config and the plugin code this process loaded
(file plugins as the very bytes that were hashed), so no worker reads the experiment file or
a plugin file again and the tables are identical for any number of workers. Tables are merged
in replication order.

Workers never outlive the run: each one dies with the process that started it (Linux
``PR_SET_PDEATHSIG``, plus a watchdog thread polling the parent's pid on every POSIX system),
ignores Ctrl-C (the parent handles it), and is stopped as soon as a replication fails or the
run is interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import pickle
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from datetime import datetime
from importlib import metadata

import numpy as np
import pandas as pd

from marketsim.experiment import Experiment
from marketsim.model import SupplyChainModel
from marketsim.plugins import call_hook
from marketsim.plugins import plugin_infos
from marketsim.results import Results

VERSIONED = (
    "marketsim",
    "numpy",
    "numba",
    "mesa",
    "networkx",
    "pandas",
    "pyarrow",
    "pluggy",
    "click",
)


def run(
    experiment: Experiment,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Results:
    """Run every replication of ``experiment`` and return its tables and manifest.

    Args:
        experiment: a validated experiment (`marketsim.load_experiment`).
        progress: called with the number of steps just completed (for progress bars).
        workers: processes to run replications in. With more than one, replications run in
            fresh processes that receive the pickled experiment (so its plugins'
            ``marketsim_run_finished`` hooks run there); results are identical to a
            one-process run and merged in replication order.

    Returns:
        The `Results`: tables as DataFrames and the manifest as a dict.

    Raises:
        LedgerError: the books stopped balancing (names step, account and amount).
        PluginError: a plugin raised inside a hook, or (with workers) a module-name or
            entry-point plugin's file changed on disk since the experiment was loaded.
    """
    config = experiment.config
    seed = config["experiment"]["seed"]
    replications = config["experiment"]["replications"]
    started = utc_now()
    seeds = np.random.SeedSequence(seed).spawn(replications)
    if workers > 1 and replications > 1:
        per_replication = _run_in_processes(experiment, min(workers, replications), progress)
    else:
        per_replication = [
            _run_replication(experiment, replication, seeds[replication], progress)
            for replication in range(replications)
        ]
    parts: dict[str, list[pd.DataFrame]] = {}
    for tables in per_replication:
        for name, frame in tables.items():
            parts.setdefault(name, []).append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    manifest = _manifest(experiment, seeds, started, utc_now(), tables)
    return Results(tables, manifest)


def _run_replication(experiment, replication, seed_sequence, progress=None) -> dict:
    """Run one replication in this process; return its tables."""
    model = SupplyChainModel(experiment, seed_sequence, replication)
    for _ in range(experiment.config["experiment"]["steps"]):
        model.step()
        if progress is not None:
            progress(1)
    tables = model.recorder.tables(replication)
    call_hook(
        experiment.manager, "marketsim_run_finished", model=model, results=Results(tables, {})
    )
    return tables


def _run_in_processes(experiment: Experiment, workers: int, progress) -> list[dict]:
    """Run the replications over a pool of fresh processes; results in replication order.

    On any error or interrupt the pending replications are cancelled and the workers
    stopped before the exception propagates.
    """
    replications = experiment.config["experiment"]["replications"]
    steps = experiment.config["experiment"]["steps"]
    payload = pickle.dumps(experiment, protocol=pickle.HIGHEST_PROTOCOL)
    pool = None
    try:
        with _workers_ignore_ctrl_c():  # the parent alone handles Ctrl-C
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            futures = [
                pool.submit(_replication_worker, payload, replication)
                for replication in range(replications)
            ]
        results = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(steps)
    except BaseException:
        if pool is not None:
            _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return results


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start processes meanwhile with Ctrl-C ignored; a Ctrl-C meanwhile arrives afterwards.

    An ignored SIGINT stays ignored across exec (Python then installs no KeyboardInterrupt
    handler), so a Ctrl-C sent to the whole process group reaches only the parent, which
    stops the workers (`_stop_pool`). SIGINT is also blocked meanwhile (POSIX), so one sent in
    these few milliseconds stays pending and is delivered when the handler is back. Only the
    main thread may change signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocking = hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocking else None
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if handler is None else handler)
        if blocking:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers (they hold no resources)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


WATCHDOG_SECONDS = 0.25
"""How often a worker checks that the process that started it is still alive (s)."""

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process receives when its parent dies."""


def _start_worker(parent_pid: int) -> None:
    """Pool initializer: tie this worker's life to ``parent_pid``'s; leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), name="marketsim-watchdog", daemon=True
    ).start()


def _die_with_parent() -> None:
    """On Linux, have the kernel send SIGKILL to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # without prctl, the watchdog remains
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _exit_when_orphaned(parent_pid: int) -> None:
    """Watchdog thread: end the process at once when it is re-parented (its parent died)."""
    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


_WORKER_EXPERIMENT: tuple[str, Experiment] | None = None
"""In a worker: the last experiment unpickled, with the hash of its pickle."""


def _replication_worker(payload: bytes, replication: int) -> dict:
    """In a worker process: run one replication of the pickled experiment."""
    global _WORKER_EXPERIMENT
    digest = hashlib.sha256(payload).hexdigest()
    if _WORKER_EXPERIMENT is None or _WORKER_EXPERIMENT[0] != digest:
        _WORKER_EXPERIMENT = (digest, pickle.loads(payload))
    experiment = _WORKER_EXPERIMENT[1]
    config = experiment.config["experiment"]
    seeds = np.random.SeedSequence(config["seed"]).spawn(config["replications"])
    return _run_replication(experiment, replication, seeds[replication])


def _manifest(experiment, seeds, started, finished, tables) -> dict:
    units = {}
    for metric in experiment.components.metrics:
        units.setdefault(metric.table, {})[metric.column] = metric.unit
    return {
        "experiment": experiment.config,
        "experiment_sha256": experiment.sha256,
        "source": experiment.source,
        "seed": experiment.config["experiment"]["seed"],
        "steps": experiment.config["experiment"]["steps"],
        "replications": len(seeds),
        "replication_seeds": [
            {"entropy": str(s.entropy), "spawn_key": list(s.spawn_key)} for s in seeds
        ],
        "started": started,
        "finished": finished,
        "versions": {
            "python": platform.python_version(),
            **{name: library_version(name) for name in VERSIONED},
        },
        "plugins": [
            {
                "name": info.name,
                "source": info.source,
                "version": info.version,
                "sha256": info.sha256,
            }
            for info in plugin_infos(experiment.manager)
        ],
        "tables": {
            name: {"rows": len(frame), "columns": list(frame.columns)}
            for name, frame in tables.items()
        },
        "units": units,
    }


def library_version(name: str) -> str:
    """The installed version of the distribution ``name``, or ``"unknown"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (manifests record start and finish)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
