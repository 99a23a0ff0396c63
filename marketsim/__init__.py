"""marketsim: agent-based market simulation of the AI supply chain.

Public API::

    experiment = marketsim.load_experiment("experiments/baseline.toml", overrides=[...])
    results = marketsim.run(experiment)
    results.sectors  # pandas DataFrame, one row per (replication, step, sector)
"""

from marketsim.errors import ExperimentError
from marketsim.errors import LedgerError
from marketsim.errors import MarketsimError
from marketsim.errors import PluginError
from marketsim.errors import ResultsError
from marketsim.experiment import Experiment
from marketsim.experiment import load_experiment
from marketsim.markets.market import ClearingOutcome
from marketsim.markets.market import GoodSpec
from marketsim.markets.market import MarketBook
from marketsim.markets.market import MechanismSpec
from marketsim.metrics import MetricSpec
from marketsim.model import SupplyChainModel
from marketsim.plugins import hookimpl
from marketsim.results import Results
from marketsim.runner import run
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import Sector

__all__ = [
    "ClearingOutcome",
    "Experiment",
    "ExperimentError",
    "GoodSpec",
    "LedgerError",
    "MarketBook",
    "MarketsimError",
    "MechanismSpec",
    "MetricSpec",
    "Param",
    "PluginError",
    "Results",
    "ResultsError",
    "Sector",
    "SupplyChainModel",
    "TableSchema",
    "hookimpl",
    "load_experiment",
    "run",
]
