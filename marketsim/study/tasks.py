"""One task of a study: one replication of one scenario at one design point, run and written.

A `TaskSpec` is a small picklable description (the scenario's pickled experiment, the values
to set, the seeds, the hash the resolved experiment must have, where to write), so the same
`run_task` runs in this process, in a local worker process or on a Dask worker on another
machine. The worker unpickles the scenario's experiment (its resolved config and the very
plugin code the study loaded and hashed, see `marketsim.Experiment`; no experiment or plugin
file is read again, so editing one during a study changes nothing), applies the design
point's values and the replication's graph seed with `Experiment.with_overrides` (validated
again), checks the sha256, runs the replication with the study's seeds and writes each
table's part file atomically. Nothing is returned but timings, so the caller's memory does
not grow with the number of runs. Firm-level rows (``firms``) are streamed during the run
into the part's hidden temporary file, a row group per step (`marketsim.firm_output`), and
renamed into place with the other parts; memory does not grow with steps x firms either.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketsim.errors import ExperimentError
from marketsim.errors import MarketsimError
from marketsim.experiment import Experiment
from marketsim.runner import _run_replication
from marketsim.study.schema import Override
from marketsim.study.schema import study_error
from marketsim.study.seeds import replication_seed
from marketsim.study.writing import firm_constants
from marketsim.study.writing import part_name
from marketsim.study.writing import task_table
from marketsim.study.writing import temporary_part
from marketsim.study.writing import write_part

_FIRST_TASK_IN_PROCESS = True
_EXPERIMENTS: dict[str, Experiment] = {}
"""In a worker: the scenarios' experiments unpickled so far, by the sha256 of their pickle."""
_EXPERIMENTS_KEPT = 8
_EXPERIMENTS_LOCK = threading.Lock()


class StudyError(MarketsimError):
    """A study cannot go on: a worker died, or the Dask scheduler cannot be reached."""


@dataclass(frozen=True)
class ScenarioPlan:
    """What every task of a scenario needs to build its experiment and write its tables."""

    index: int
    name: str
    source: str
    """The scenario's experiment file (for messages; never read by a worker)."""
    experiment: bytes
    """The scenario's `Experiment`, pickled: resolved config and plugin code."""
    tables: tuple[str, ...]
    """The tables each task writes."""
    metric_columns: tuple[tuple[str, tuple[str, ...]], ...]
    """Per table, the study's metric columns in order (every part has the same columns)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: everything a worker needs, and nothing it must look up elsewhere."""

    study_source: str
    out: str
    """The study directory, absolute."""
    scenario: ScenarioPlan
    point: int
    factors: tuple[Override, ...]
    """The design point's factor values, in the order written."""
    extra: tuple[Override, ...]
    """Further values the task sets (its replication's graph seed)."""
    replication: int
    seed: int
    sha256: str
    """The sha256 the task's resolved experiment must have."""

    @property
    def key(self) -> tuple[int, int, int]:
        """``(scenario index, point, replication)``."""
        return self.scenario.index, self.point, self.replication

    def describe(self) -> str:
        """``scenario 'x', point p, replication r`` for messages."""
        return (
            f"scenario {self.scenario.name!r}, point {self.point}, replication {self.replication}"
        )


def run_task(spec: TaskSpec) -> dict[str, Any]:
    """Load, check, run and write one task; return its timings.

    Returns:
        ``{"pid", "startup_s", "load_s", "build_s", "steps_s", "write_s", "total_s",
        "cpu_s"}``: seconds spent starting this worker process before its first task (None
        after the first), loading and checking the experiment, building the model, stepping
        it, collecting and writing its tables, in all (wall clock), and the CPU time the
        task used (the same on a busy machine).

    Raises:
        ExperimentError: a value the study sets is invalid at this design point (named by
            its study key).
        PluginError: a module-name plugin's file changed since the study loaded it.
    """
    global _FIRST_TASK_IN_PROCESS
    started = time.perf_counter()
    cpu_started = time.process_time()
    startup = _process_age_s() if _FIRST_TASK_IN_PROCESS else None
    _FIRST_TASK_IN_PROCESS = False
    scenario = spec.scenario
    overrides = [*spec.factors, *spec.extra]
    experiment = _scenario_experiment(scenario.experiment)
    try:
        if overrides:
            experiment = experiment.with_overrides([o.text() for o in overrides])
    except ExperimentError as error:
        error = study_error(error, spec.study_source, overrides, "study.factors")
        raise ExperimentError(
            f"{error.message} (at {spec.describe()})", error.source, error.key
        ) from None
    if experiment.sha256 != spec.sha256:
        raise RuntimeError(
            f"{spec.describe()}: the worker's experiment has sha256 {experiment.sha256}, the "
            f"study expected {spec.sha256} (a bug: Study.task_config and with_overrides differ)"
        )
    loaded = time.perf_counter()
    stepped: list[float] = []
    factor_values = [(o.key, o.value) for o in spec.factors]
    directory = Path(spec.out)
    name = part_name(*spec.key)
    firms_to = None
    if "firms" in scenario.tables:
        firms_to = temporary_part(directory / "firms", name)
    try:
        tables = _run_replication(
            experiment,
            spec.replication,
            replication_seed(spec.seed, spec.replication),
            progress=lambda _: stepped.append(time.perf_counter()),
            firms_to=firms_to,
            leading=firm_constants(scenario.name, spec.point, spec.replication, factor_values),
        )
        ran = time.perf_counter()
        missing = [table for table in scenario.tables if table not in tables]
        if missing:
            raise RuntimeError(f"{spec.describe()}: the run produced no {missing[0]!r} table")
        columns = dict(scenario.metric_columns)
        for table in scenario.tables:
            if table == "firms":
                os.replace(firms_to, directory / table / name)
                continue
            arrow = task_table(
                tables[table], scenario.name, spec.point, factor_values, columns.get(table)
            )
            write_part(arrow, directory / table, name)
    finally:
        if firms_to is not None:
            firms_to.unlink(missing_ok=True)
    written = time.perf_counter()
    build, steps = _split_build_and_steps(loaded, stepped, ran)
    return {
        "pid": os.getpid(),
        "startup_s": startup,
        "load_s": loaded - started,
        "build_s": build,
        "steps_s": steps,
        "write_s": written - loaded - build - steps,
        "total_s": written - started,
        "cpu_s": time.process_time() - cpu_started,
    }


def _scenario_experiment(payload: bytes) -> Experiment:
    """The pickled experiment, unpickled once per worker (its plugins run from their bytes)."""
    digest = hashlib.sha256(payload).hexdigest()
    with _EXPERIMENTS_LOCK:
        experiment = _EXPERIMENTS.get(digest)
        if experiment is None:
            experiment = pickle.loads(payload)
            while len(_EXPERIMENTS) >= _EXPERIMENTS_KEPT:
                del _EXPERIMENTS[next(iter(_EXPERIMENTS))]
            _EXPERIMENTS[digest] = experiment
    return experiment


def _split_build_and_steps(start: float, stepped: list[float], end: float) -> tuple[float, float]:
    """Model build time and stepping time from the times each step finished.

    The first step's end includes the build; the build is that minus one mean step.
    """
    if not stepped:
        return end - start, 0.0
    mean_step = (stepped[-1] - stepped[0]) / (len(stepped) - 1) if len(stepped) > 1 else 0.0
    build = max(stepped[0] - start - mean_step, 0.0)
    return build, stepped[-1] - start - build


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as stream:
            uptime = float(stream.read().split()[0])
        return max(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None
