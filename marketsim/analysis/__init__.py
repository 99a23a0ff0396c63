"""Analysis of runs and studies: outcome measures, summaries with 95% CIs, paired
differences under common random numbers, and global sensitivity (Sobol, Morris).

Everything here is a pure function of DataFrames except `load_results`,
`analyse_study_dir` and `run_summary` given a directory. Outputs never hold NaN or inf:
undefined values are null (nullable ``Float64``).
"""

from marketsim.analysis.loading import AnalysisError
from marketsim.analysis.loading import LoadedResults
from marketsim.analysis.loading import load_results
from marketsim.analysis.outcomes import default_sensitivity_outcomes
from marketsim.analysis.outcomes import headline_outcomes
from marketsim.analysis.outcomes import matching_outcomes
from marketsim.analysis.outcomes import outcome_measures
from marketsim.analysis.outcomes import outcome_unit
from marketsim.analysis.sensitivity import sensitivity
from marketsim.analysis.stats import outcome_summary
from marketsim.analysis.stats import paired_differences
from marketsim.analysis.stats import step_summary
from marketsim.analysis.stats import t_interval
from marketsim.analysis.study import StudyAnalysis
from marketsim.analysis.study import analyse_study_dir
from marketsim.analysis.study import series_summary
from marketsim.analysis.text import run_summary

__all__ = [
    "AnalysisError",
    "LoadedResults",
    "StudyAnalysis",
    "analyse_study_dir",
    "default_sensitivity_outcomes",
    "headline_outcomes",
    "load_results",
    "matching_outcomes",
    "outcome_measures",
    "outcome_summary",
    "outcome_unit",
    "paired_differences",
    "run_summary",
    "sensitivity",
    "series_summary",
    "step_summary",
    "t_interval",
]
