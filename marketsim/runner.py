"""Running an experiment: replications with spawned seeds, tables merged in order.

Replication ``r`` draws its random stream from ``SeedSequence(seed).spawn(n)[r]``, so the
same experiment and seed give identical tables whatever else runs, in one process or many;
the supply graph uses its own stream from the seed (see `marketsim.graph`). Replications run
one after another in this process, or over a pool of fresh processes (``workers``), each
loading the experiment file again; tables are merged in replication order.
"""

from __future__ import annotations

import multiprocessing
import platform
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from datetime import datetime
from importlib import metadata

import numpy as np
import pandas as pd

from marketsim.errors import ResultsError
from marketsim.experiment import Experiment
from marketsim.experiment import load_experiment
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
        workers: processes to run replications in. With more than one, each replication
            loads the experiment file again in a fresh process (so its plugins'
            ``marketsim_run_finished`` hooks run there); results are identical to a
            one-process run and merged in replication order.

    Returns:
        The `Results`: tables as DataFrames and the manifest as a dict.

    Raises:
        LedgerError: the books stopped balancing (names step, account and amount).
        PluginError: a plugin raised inside a hook.
    """
    config = experiment.config
    seed = config["experiment"]["seed"]
    replications = config["experiment"]["replications"]
    started = _now()
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
    manifest = _manifest(experiment, seeds, started, _now(), tables)
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


def _run_in_processes(experiment, workers: int, progress) -> list[dict]:
    """Run the replications over a pool of fresh processes; results in replication order."""
    replications = experiment.config["experiment"]["replications"]
    steps = experiment.config["experiment"]["steps"]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(
                _replication_worker,
                experiment.source,
                experiment.overrides,
                experiment.sha256,
                replication,
            )
            for replication in range(replications)
        ]
        results = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(steps)
    return results


def _replication_worker(source: str, overrides: list[str], sha256: str, replication: int):
    """In a worker process: load the experiment again and run one replication."""
    experiment = load_experiment(source, overrides)
    if experiment.sha256 != sha256:
        raise ResultsError(f"{source}: the experiment changed while the run was under way")
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
            **{name: _version(name) for name in VERSIONED},
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


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
