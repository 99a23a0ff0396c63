"""The model the dashboard steps, and what the page reads from it after each step.

`DashboardModel` is the `SupplyChainModel` of the session's last good experiment
(`marketsim.dashboard.controls.Levers`) with keyword arguments only, so Mesa's SolaraViz can
build it again on Reset (``type(model)(**model_params)``). Replication ``r`` is seeded as
``marketsim run`` seeds its replication ``r`` (the experiment seed's ``r``-th spawned
sequence), so the page shows exactly what a run's results hold for that replication.

`live_tables` gives the recorder's tables so far, shaped like a results directory's (with a
``scenario`` column), for `marketsim.dashboard.charts`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketsim.dashboard.controls import Levers
from marketsim.model import SupplyChainModel


class DashboardModel(SupplyChainModel):
    """The supply chain of the session's last good experiment, built from keywords.

    Args:
        levers: the session's scenario and overrides; the model runs ``levers.experiment``.
        replication: which replication of the experiment to run (its seed as in
            ``marketsim run``).
    """

    def __init__(self, levers: Levers, replication: int = 0):
        experiment = levers.experiment
        replication = int(replication)
        seed = experiment.config["experiment"]["seed"]
        sequence = np.random.SeedSequence(seed).spawn(replication + 1)[replication]
        super().__init__(experiment, sequence, replication)
        levers.applied_sha256 = experiment.sha256
        self.levers = levers
        self.scenario_label = experiment.name
        """The experiment's name (not ``scenario``: Mesa 3.5 reserves that attribute)."""
        self.units = units_of(experiment)
        """Table -> column -> unit of the recorded metrics (as a run's manifest has them)."""
        self.price_units = {
            name: good.price_unit for name, good in experiment.components.goods.items()
        }
        """Good -> unit of its price."""


def units_of(experiment) -> dict[str, dict[str, str]]:
    """Table -> column -> unit of ``experiment``'s metrics (a run manifest's ``units``)."""
    units: dict[str, dict[str, str]] = {}
    for metric in experiment.components.metrics:
        units.setdefault(metric.table, {})[metric.column] = metric.unit
    return units


def live_tables(model: SupplyChainModel) -> dict[str, pd.DataFrame]:
    """The model's recorded ``chain``, ``sectors`` and ``markets`` tables so far, each with
    a ``scenario`` column (the experiment's name) and ``point`` 0."""
    name = model.experiment["experiment"]["name"]
    tables = model.recorder.tables(model.replication)
    return {
        table: tables[table].assign(scenario=name, point=0)
        for table in ("chain", "sectors", "markets")
    }
