"""One task of a study: one replication of one scenario at one design point, run and written.

A `TaskSpec` is a small picklable description (the experiment file, the values to set, the
seeds, the hash the resolved experiment must have, where to write), so the same `run_task`
runs in this process, in a local worker process or on a Dask worker. The worker loads the
experiment itself, checks its sha256 and its plugins' hashes against the ones the study
recorded (a file edited during the study stops it with one line), runs the replication with
the study's seeds and writes each table's part file atomically. Nothing is returned but
timings, so the caller's memory does not grow with the number of runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketsim.errors import ExperimentError
from marketsim.errors import MarketsimError
from marketsim.experiment import load_experiment
from marketsim.plugins import plugin_infos
from marketsim.runner import _run_replication
from marketsim.study.schema import Override
from marketsim.study.schema import study_error
from marketsim.study.seeds import replication_seed
from marketsim.study.writing import part_name
from marketsim.study.writing import task_table
from marketsim.study.writing import write_part

_FIRST_TASK_IN_PROCESS = True


class StudyError(MarketsimError):
    """A study cannot go on: a worker died, or an experiment changed while it ran."""


@dataclass(frozen=True)
class ScenarioPlan:
    """What every task of a scenario needs to load its experiment and write its tables."""

    index: int
    name: str
    source: str
    """The experiment file, absolute."""
    overrides: tuple[Override, ...]
    plugins: tuple[tuple[str, str], ...]
    """``(name, sha256)`` of every plugin the study loaded for this scenario."""
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
        StudyError: the experiment or a plugin changed since the study was loaded.
    """
    global _FIRST_TASK_IN_PROCESS
    started = time.perf_counter()
    cpu_started = time.process_time()
    startup = _process_age_s() if _FIRST_TASK_IN_PROCESS else None
    _FIRST_TASK_IN_PROCESS = False
    scenario = spec.scenario
    overrides = [*scenario.overrides, *spec.factors, *spec.extra]
    try:
        experiment = load_experiment(scenario.source, [o.text() for o in overrides])
    except ExperimentError as error:
        error = study_error(error, spec.study_source, overrides, "study.factors")
        raise ExperimentError(
            f"{error.message} (at {spec.describe()})", error.source, error.key
        ) from None
    if experiment.sha256 != spec.sha256:
        raise StudyError(
            f"{scenario.source}: {spec.describe()}: the experiment changed while the study "
            "was under way (its sha256 differs from the study's); run the study again"
        )
    plugins = tuple((info.name, info.sha256) for info in plugin_infos(experiment.manager))
    if plugins != scenario.plugins:
        changed = sorted(set(plugins) ^ set(scenario.plugins))[0][0]
        raise StudyError(f"plugin {changed} changed on disk during the study")
    loaded = time.perf_counter()
    stepped: list[float] = []
    tables = _run_replication(
        experiment,
        spec.replication,
        replication_seed(spec.seed, spec.replication),
        progress=lambda _: stepped.append(time.perf_counter()),
    )
    ran = time.perf_counter()
    missing = [name for name in scenario.tables if name not in tables]
    if missing:
        raise RuntimeError(f"{spec.describe()}: the run produced no {missing[0]!r} table")
    factor_values = [(o.key, o.value) for o in spec.factors]
    columns = dict(scenario.metric_columns)
    directory = Path(spec.out)
    name = part_name(*spec.key)
    for table in scenario.tables:
        arrow = task_table(
            tables[table], scenario.name, spec.point, factor_values, columns.get(table)
        )
        write_part(arrow, directory / table, name)
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
