"""Paired comparisons of shipped scenarios, as the economy's claims are tested.

A claim that scenario A raises (or lowers) a measure against scenario B is tested on
``REPLICATIONS`` replications run with common random numbers: replication ``r`` of both
scenarios gets the same spawned seed, so their difference cancels the noise they share. The
claim holds when the 95% t interval of the mean paired difference excludes zero on the
claimed side (`paired_difference`). Runs are cached for the test session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import marketsim
from marketsim.analysis.stats import t_interval

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
REPLICATIONS = 10
"""Replications per scenario in a paired claim (the standard asks for at least 10)."""
SEED = int(os.environ.get("MARKETSIM_CLAIM_SEED", "20261129"))
"""Root seed of the paired runs (any seed: the claims must hold on seeds not seen). Set
``MARKETSIM_CLAIM_SEED`` to test the economy's claims on another root seed."""


@cache
def replications(scenario: str, *overrides: str, seed: int = SEED) -> marketsim.Results:
    """A shipped scenario run ``REPLICATIONS`` times from ``seed`` (cached)."""
    path = EXPERIMENTS / f"{scenario}.toml"
    settings = [f"experiment.seed={seed}", f"experiment.replications={REPLICATIONS}"]
    return marketsim.run(marketsim.load_experiment(path, [*settings, *overrides]))


GRAPH_REPLICATIONS = 30
"""Replications of a claim on counts of a few firms (defaults): each draws its own supply
graph, so the claim is about the model rather than one graph, and 30 of them because a
difference of one to three firms needs them (docs/model.md section 9)."""


@cache
def replications_over_graphs(
    scenario: str, *overrides: str, seed: int = SEED
) -> tuple[marketsim.Results, ...]:
    """``GRAPH_REPLICATIONS`` runs of one replication each, run ``k`` from its own seed, used
    for its supply graph too (``graph.seed``). The seeds depend on ``seed`` and ``k`` only,
    so run ``k`` of two scenarios shares its random numbers and its graph (cached)."""
    path = EXPERIMENTS / f"{scenario}.toml"
    runs = []
    for run_seed in np.random.SeedSequence(seed).generate_state(GRAPH_REPLICATIONS):
        settings = [
            f"experiment.seed={int(run_seed)}",
            "experiment.replications=1",
            f"graph.seed={int(run_seed)}",
        ]
        runs.append(marketsim.run(marketsim.load_experiment(path, [*settings, *overrides])))
    return tuple(runs)


def per_replication(
    results: marketsim.Results, measure: Callable[[marketsim.Results], float]
) -> np.ndarray:
    """``measure`` applied to each replication's tables alone (one value per replication)."""
    values = []
    for replication in range(REPLICATIONS):
        tables = {
            name: table[table["replication"] == replication].reset_index(drop=True)
            for name, table in results.tables.items()
        }
        values.append(float(measure(marketsim.Results(tables, results.manifest))))
    return np.asarray(values)


def paired_difference(
    scenario: tuple[str, ...] | str,
    reference: tuple[str, ...] | str,
    measure: Callable[[marketsim.Results], float],
    over_graphs: bool = False,
) -> tuple[float, float, float]:
    """Mean of ``measure(scenario) - measure(reference)`` over paired replications, with CI.

    Args:
        scenario, reference: a shipped scenario's name, or a tuple of its name followed by
            ``--set`` overrides (``("baseline", "agents.end_demand.elasticity=1.6")``).
        measure: results of one replication -> a number.
        over_graphs: pair `replications_over_graphs` (a supply graph per replication)
            instead of `replications` (one graph for all).

    Returns:
        ``(mean, ci_low, ci_high)`` of the paired difference (95% t interval).
    """
    a = scenario if isinstance(scenario, tuple) else (scenario,)
    b = reference if isinstance(reference, tuple) else (reference,)
    differences = _values(a, measure, over_graphs) - _values(b, measure, over_graphs)
    mean = differences.mean()
    low, high = t_interval(
        np.array([mean]), np.array([differences.std(ddof=1)]), np.array([len(differences)])
    )
    return float(mean), float(low[0]), float(high[0])


def _values(spec: tuple[str, ...], measure, over_graphs: bool) -> np.ndarray:
    if over_graphs:
        return np.array([float(measure(run)) for run in replications_over_graphs(*spec)])
    return per_replication(replications(*spec), measure)


def assert_raises(scenario, reference, measure, what: str = "", over_graphs=False) -> None:
    """Assert ``measure`` is higher in ``scenario``: the paired CI lies above zero."""
    mean, low, high = paired_difference(scenario, reference, measure, over_graphs)
    assert low > 0, f"{what}: paired difference {mean:.4g} [{low:.4g}, {high:.4g}] not > 0"


def assert_lowers(scenario, reference, measure, what: str = "", over_graphs=False) -> None:
    """Assert ``measure`` is lower in ``scenario``: the paired CI lies below zero."""
    mean, low, high = paired_difference(scenario, reference, measure, over_graphs)
    assert high < 0, f"{what}: paired difference {mean:.4g} [{low:.4g}, {high:.4g}] not < 0"


def sector_rows(results: marketsim.Results, name: str) -> pd.DataFrame:
    """The ``sectors`` rows of one sector."""
    return results.sectors[results.sectors["sector"] == name]


def market_rows(results: marketsim.Results, name: str) -> pd.DataFrame:
    """The ``markets`` rows of one market."""
    return results.markets[results.markets["market"] == name]
