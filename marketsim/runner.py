"""Running an experiment: replications with spawned seeds, tables merged in order.

Replication ``r`` draws its random stream from ``SeedSequence(seed).spawn(n)[r]``, so the
same experiment and seed give identical tables whatever else runs; the supply graph uses
its own stream from the seed (see `marketsim.graph`). Replications run one after another
in this process.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
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
) -> Results:
    """Run every replication of ``experiment`` and return its tables and manifest.

    Args:
        experiment: a validated experiment (`marketsim.load_experiment`).
        progress: called with the number of steps just completed (for progress bars).

    Returns:
        The `Results`: tables as DataFrames and the manifest as a dict.

    Raises:
        LedgerError: the books stopped balancing (names step, account and amount).
        PluginError: a plugin raised inside a hook.
    """
    config = experiment.config
    seed = config["experiment"]["seed"]
    steps = config["experiment"]["steps"]
    replications = config["experiment"]["replications"]
    started = _now()
    seeds = np.random.SeedSequence(seed).spawn(replications)
    parts: dict[str, list[pd.DataFrame]] = {}
    for replication, seed_sequence in enumerate(seeds):
        model = SupplyChainModel(experiment, seed_sequence, replication)
        for _ in range(steps):
            model.step()
            if progress is not None:
                progress(1)
        tables = model.recorder.tables(replication)
        call_hook(
            experiment.manager, "marketsim_run_finished", model=model, results=Results(tables, {})
        )
        for name, frame in tables.items():
            parts.setdefault(name, []).append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    manifest = _manifest(experiment, seeds, started, _now(), tables)
    return Results(tables, manifest)


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
