"""marketsim: agent-based market simulation of the AI supply chain.

Public API::

    experiment = marketsim.load_experiment("experiments/baseline.toml", overrides=[...])
    results = marketsim.run(experiment)
    results.sectors  # pandas DataFrame, one row per (replication, step, sector)

    study = marketsim.load_study("studies/bubble_vs_no_bubble.toml")
    study_results = marketsim.run_study(study, workers=2, out="results/bubble_study")
    study_results.differences  # paired differences against the reference, with 95% CIs
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
from marketsim.study import Study
from marketsim.study import StudyError
from marketsim.study import StudyResults
from marketsim.study import load_study
from marketsim.study import read_study
from marketsim.study import run_study

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
    "Study",
    "StudyError",
    "StudyResults",
    "SupplyChainModel",
    "TableSchema",
    "hookimpl",
    "load_experiment",
    "load_study",
    "read_study",
    "run",
    "run_study",
]
