"""Studies: scenarios x design points x replications, run as independent tasks.

Public API::

    study = marketsim.load_study("studies/bubble_vs_no_bubble.toml")
    results = marketsim.run_study(study, executor="local", workers=2, out="results/bubble")
    results.runs("chain")  # scenario, point, replication, factors..., step, ...
    results.differences    # paired differences against the reference scenario

See ``docs/studies.md`` for the study file, common random numbers, executors, resume and the
output layout.
"""

from marketsim.study.loading import Study
from marketsim.study.loading import load_study
from marketsim.study.running import StudyResults
from marketsim.study.running import read_study
from marketsim.study.running import run_study
from marketsim.study.tasks import StudyError

__all__ = [
    "Study",
    "StudyError",
    "StudyResults",
    "load_study",
    "read_study",
    "run_study",
]
