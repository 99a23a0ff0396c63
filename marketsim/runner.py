"""Running an experiment: replications with spawned seeds, tables merged in order.

Replication ``r`` draws its random stream from ``SeedSequence(seed).spawn(n)[r]``, so the
same experiment and seed give identical tables whatever else runs, in one process or many;
the supply graph uses its own stream from the seed (see `marketsim.graph`). Replications run
one after another in this process, or over a pool of fresh processes (``workers``) that
receive the pickled `Experiment`: its resolved config and the plugin code this process loaded
(file plugins as the very bytes that were hashed), so no worker reads the experiment file or
a plugin file again and the tables are identical for any number of workers. Tables are merged
in replication order.

Firm-level output (``[output] firm_level = true``) is never gathered in memory: each
replication streams its rows to a Parquet file, a row group per step (`marketsim.firm_output`).
One replication streams straight to ``firms.parquet``; several stream to parts of their own
(``firms.parts/replication-RRRRRR.parquet``) that are then joined into ``firms.parquet`` row
group by row group in replication order, however many processes ran them, so the same seed
gives the same bytes on any worker count. The file goes into the results target's staging
directory when `run` is given a target (``marketsim run``), else into a temporary directory
that lives as long as the returned `Results` (``results.tables["firms"]`` reads it lazily).

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
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from marketsim.errors import ResultsError
from marketsim.experiment import Experiment
from marketsim.firm_output import FirmWriteError
from marketsim.firm_output import merge_parts
from marketsim.model import SupplyChainModel
from marketsim.plugins import call_hook
from marketsim.plugins import plugin_infos
from marketsim.results import FIRM_PARTS
from marketsim.results import Results
from marketsim.results import ResultsTarget
from marketsim.results import Tables

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
    target: ResultsTarget | None = None,
) -> Results:
    """Run every replication of ``experiment`` and return its tables and manifest.

    Args:
        experiment: a validated experiment (`marketsim.load_experiment`).
        progress: called with the number of steps just completed (for progress bars).
        workers: processes to run replications in. With more than one, replications run in
            fresh processes that receive the pickled experiment (so its plugins'
            ``marketsim_run_finished`` hooks run there); results are identical to a
            one-process run and merged in replication order.
        target: the open results target the results are for (`results_target`): firm-level
            rows are streamed into its staging directory, and ``target.write`` puts them in
            place. Without one they go to a temporary directory (see the module docstring).

    Returns:
        The `Results`: tables as DataFrames and the manifest as a dict.

    Raises:
        LedgerError: the books stopped balancing (names step, account and amount).
        PluginError: a plugin raised inside a hook, or (with workers) a module-name or
            entry-point plugin's file changed on disk since the experiment was loaded.
        ResultsError: the file system refused firm-level rows (full disk, ...).
    """
    config = experiment.config
    seed = config["experiment"]["seed"]
    replications = config["experiment"]["replications"]
    started = utc_now()
    seeds = np.random.SeedSequence(seed).spawn(replications)
    firms = _FirmFiles(experiment, target)
    try:
        if workers > 1 and replications > 1:
            per_replication = _run_in_processes(
                experiment, min(workers, replications), progress, firms.parts
            )
        else:
            per_replication = [
                _run_replication(
                    experiment, replication, seeds[replication], progress, firms.parts[replication]
                )
                for replication in range(replications)
            ]
        files = firms.join()
    except BaseException as error:
        firms.remove()
        if isinstance(error, FirmWriteError):
            raise _firm_write_error(error, target) from None
        raise
    parts: dict[str, list[pd.DataFrame]] = {}
    for tables in per_replication:
        for name in tables:
            if tables.file(name) is None:
                parts.setdefault(name, []).append(tables[name])
    frames = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    tables = Tables(frames, files, keep=firms.scratch)
    manifest = _manifest(experiment, seeds, started, utc_now(), tables)
    return Results(tables, manifest)


def _firm_write_error(error: FirmWriteError, target: ResultsTarget | None) -> ResultsError:
    """The one-line error of firm-level rows the file system refused."""
    if target is not None:
        return ResultsError(f"{target.path}: cannot write results: {error.strerror}")
    return ResultsError(f"{error.filename}: cannot write firm-level rows: {error.strerror}")


class _FirmFiles:
    """Where a run's firm-level rows go: per replication, then ``firms.parquet``."""

    def __init__(self, experiment: Experiment, target: ResultsTarget | None):
        config = experiment.config
        replications = config["experiment"]["replications"]
        self.scratch: tempfile.TemporaryDirectory | None = None
        self.final: Path | None = None
        self.parts: list[Path | None] = [None] * replications
        if not config["output"]["firm_level"]:
            return
        if target is not None:
            self.final = target.stream_path("firms.parquet")
            self.folder = target.stream_path(FIRM_PARTS)
        else:
            self.scratch = tempfile.TemporaryDirectory(prefix="marketsim-firms-")
            self.final = Path(self.scratch.name) / "firms.parquet"
            self.folder = Path(self.scratch.name) / FIRM_PARTS.rstrip("/")
        if replications == 1:
            self.parts = [self.final]
        else:
            self.folder.mkdir()
            self.parts = [self.folder / f"replication-{r:06d}.parquet" for r in range(replications)]

    def join(self) -> dict[str, Path]:
        """Join the replications' parts into ``firms.parquet`` (in replication order)."""
        if self.final is None:
            return {}
        if self.parts != [self.final]:
            merge_parts(self.parts, self.final)
            shutil.rmtree(self.folder)
        return {"firms": self.final}

    def remove(self) -> None:
        """Delete what was written (a failed run leaves no firm-level file)."""
        if self.final is None:
            return
        if self.scratch is not None:
            self.scratch.cleanup()
            return
        self.final.unlink(missing_ok=True)
        if self.parts != [self.final]:
            shutil.rmtree(self.folder, ignore_errors=True)


def _run_replication(
    experiment, replication, seed_sequence, progress=None, firms_to=None, leading=None
) -> Tables:
    """Run one replication in this process; return its tables.

    Args:
        firms_to: the Parquet file its firm-level rows stream to (firm-level output only;
            the returned tables then hold ``firms`` as that file).
        leading: the constant leading columns of its firm rows (default ``replication``).
    """
    model = SupplyChainModel(experiment, seed_sequence, replication)
    recorder = model.recorder
    if firms_to is not None:
        recorder.stream_firms_to(firms_to, leading)
    try:
        for _ in range(experiment.config["experiment"]["steps"]):
            model.step()
            if progress is not None:
                progress(1)
        frames = recorder.tables(replication)
        recorder.finish_firms()
    except BaseException:
        if firms_to is not None:
            recorder.abort_firms()
        raise
    tables = Tables(frames, {"firms": firms_to} if firms_to is not None else None)
    call_hook(
        experiment.manager, "marketsim_run_finished", model=model, results=Results(tables, {})
    )
    return tables


def _run_in_processes(experiment: Experiment, workers: int, progress, firms_to) -> list[Tables]:
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
                pool.submit(_replication_worker, payload, replication, firms_to[replication])
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


def _replication_worker(payload: bytes, replication: int, firms_to: Path | None) -> Tables:
    """In a worker process: run one replication of the pickled experiment."""
    global _WORKER_EXPERIMENT
    digest = hashlib.sha256(payload).hexdigest()
    if _WORKER_EXPERIMENT is None or _WORKER_EXPERIMENT[0] != digest:
        _WORKER_EXPERIMENT = (digest, pickle.loads(payload))
    experiment = _WORKER_EXPERIMENT[1]
    config = experiment.config["experiment"]
    seeds = np.random.SeedSequence(config["seed"]).spawn(config["replications"])
    return _run_replication(experiment, replication, seeds[replication], firms_to=firms_to)


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
            name: {"rows": tables.rows(name), "columns": tables.columns(name)} for name in tables
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
