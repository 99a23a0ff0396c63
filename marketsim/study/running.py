"""Running a study: plan the tasks, write the manifest, execute, analyse; and reading it back.

`run_study` is the whole of ``marketsim study``::

    study = marketsim.load_study("studies/bubble_vs_no_bubble.toml")
    results = marketsim.run_study(study, executor="local", workers=2, out="results/bubble")
    results.runs("chain")        # every run's chain table, with scenario, point, replication
    results.differences          # paired differences against the reference (or None)

The manifest is written first (status ``running``) and again at the end (``complete``); each
task writes its own part files as it finishes. An interrupted study keeps every finished task,
and ``resume=True`` runs only the missing ones: the tables are then byte-identical to an
uninterrupted run's. At the end `marketsim.analysis.analyse_study_dir` (when installed)
writes ``outcomes.parquet``, ``summary.parquet``, ``differences.parquet`` and
``sensitivity.parquet``.
"""

from __future__ import annotations

import importlib.util
import pickle
import platform
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from marketsim.plugins import plugin_infos
from marketsim.runner import VERSIONED
from marketsim.runner import library_version
from marketsim.runner import utc_now
from marketsim.study.executors import EXECUTORS
from marketsim.study.executors import execute
from marketsim.study.loading import Study
from marketsim.study.loading import load_study
from marketsim.study.loading import task_sha256
from marketsim.study.seeds import seeds_manifest
from marketsim.study.tasks import ScenarioPlan
from marketsim.study.tasks import TaskSpec
from marketsim.study.writing import ANALYSIS_FILES
from marketsim.study.writing import MANIFEST
from marketsim.study.writing import TABLE_DIRS
from marketsim.study.writing import check_output
from marketsim.study.writing import clear_output
from marketsim.study.writing import finished_tasks
from marketsim.study.writing import read_manifest
from marketsim.study.writing import remove_temporary_parts
from marketsim.study.writing import write_manifest

STUDY_VERSIONED = (*VERSIONED, "SALib", "scipy", "dask", "distributed")


@dataclass
class StudyRun:
    """A study about to run in a directory: what is finished and what is left.

    Made by `plan_study` (which only checks); `execute_study` writes and runs.
    """

    study: Study
    directory: Path
    mode: str
    """``"new"``, ``"resume"`` or ``"overwrite"``."""
    done: int = 0
    """Tasks finished, before this run and during it."""
    remaining: list[TaskSpec] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Every task of the study."""
        return self.study.task_count


def plan_study(
    study: Study | str | Path,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> StudyRun:
    """Check that ``study`` may run in ``out`` and list the tasks to run; write nothing.

    Args:
        study: a `Study` or a study file.
        out: the study directory (default ``results/<name>``).
        resume: run only the tasks missing from the same study in ``out``.
        overwrite: replace a study (only a study's own files) in ``out``.

    Raises:
        ExperimentError: the study is invalid.
        ResultsError: ``out`` cannot be used (a foreign file, another study, a study
            already there without ``resume`` or ``overwrite``).
    """
    if not isinstance(study, Study):
        study = load_study(study)
    directory = Path(out if out is not None else Path("results") / study.name).absolute()
    mode = check_output(directory, study.name, study.sha256, resume, overwrite)
    finished = set()
    if mode == "resume":
        tables_of = {scenario.index: scenario.tables for scenario in study.scenarios}
        finished = finished_tasks(directory, tables_of)
    plans = _scenario_plans(study)
    remaining = [
        _task_spec(study, plans[s], s, p, r, directory)
        for s, p, r in study.tasks()
        if (s, p, r) not in finished
    ]
    return StudyRun(study, directory, mode, study.task_count - len(remaining), remaining)


def execute_study(
    plan: StudyRun,
    executor: str = "local",
    workers: int | None = None,
    scheduler: Any = None,
    progress: Callable[[int], None] | None = None,
    analyse: bool = True,
) -> StudyResults:
    """Write the manifest, run the remaining tasks, mark the study complete, analyse it.

    Args:
        plan: from `plan_study`.
        executor: ``"local"`` (process pool) or ``"dask"``.
        workers: worker processes (default: every core).
        scheduler: Dask scheduler address or client (default: start a LocalCluster).
        progress: called with 1 as each task finishes.
        analyse: run `marketsim.analysis.analyse_study_dir` at the end (when installed).

    Returns:
        The `StudyResults`, with ``timings`` of the tasks run now.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    study, directory = plan.study, plan.directory
    if plan.mode == "overwrite":
        clear_output(directory)
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(directory) if plan.mode == "resume" else None
    started = previous.get("started") if previous else utc_now()
    remove_temporary_parts(directory)
    for table in sorted({t for scenario in study.scenarios for t in scenario.tables}):
        (directory / table).mkdir(exist_ok=True)
    write_manifest(directory, study_manifest(study, "running", started, None))

    def finished(spec: TaskSpec, timings: dict[str, Any]) -> None:
        plan.done += 1
        plan.timings.append(
            {
                "scenario": spec.scenario.name,
                "point": spec.point,
                "replication": spec.replication,
                **timings,
            }
        )
        if progress is not None:
            progress(1)

    execute(plan.remaining, finished, executor, workers, scheduler)
    manifest = study_manifest(study, "complete", started, utc_now())
    write_manifest(directory, manifest)
    if analyse and importlib.util.find_spec("marketsim.analysis") is not None:
        from marketsim.analysis import analyse_study_dir

        analyse_study_dir(directory)
    return StudyResults(directory, manifest, pd.DataFrame(plan.timings))


def run_study(
    study: Study | str | Path,
    executor: str = "local",
    workers: int | None = None,
    out: str | Path | None = None,
    scheduler: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    analyse: bool = True,
) -> StudyResults:
    """Run every task of a study (or, with ``resume``, the missing ones) and write its tables.

    Args:
        study: a `Study` (`load_study`) or a study file.
        executor: ``"local"`` (a process pool on this machine) or ``"dask"``.
        workers: worker processes (default: every core; one runs in this process).
        out: the study directory (default ``results/<name>``).
        scheduler: Dask only: a scheduler address (``"tcp://host:8786"``) or a
            ``distributed.Client``; None starts a LocalCluster of ``workers`` processes.
        resume: run only the tasks missing from the same study in ``out``.
        overwrite: replace a study already in ``out`` (only a study's own files).
        progress: called with 1 as each task finishes.
        analyse: run `marketsim.analysis.analyse_study_dir` at the end (when installed).

    Returns:
        `StudyResults` for the study directory.

    Raises:
        ExperimentError: the study, a scenario or a design point is invalid.
        ResultsError: ``out`` cannot be used.
        StudyError: a worker died or the Dask scheduler cannot be reached (the finished
            tasks are kept; ``resume=True`` runs the rest).
    """
    plan = plan_study(study, out, resume, overwrite)
    return execute_study(plan, executor, workers, scheduler, progress, analyse)


class StudyResults:
    """A study directory, read lazily: the runs' tables and the analysis files.

    Attributes:
        directory: the study directory.
        manifest: the study manifest (`docs/studies.md`).
        timings: per task run by the call that made this object, seconds spent loading,
            building, stepping and writing (None when read from disk).
    """

    def __init__(self, directory: str | Path, manifest: dict | None = None, timings=None) -> None:
        self.directory = Path(directory)
        self.manifest = manifest if manifest is not None else _manifest_of(self.directory)
        self.timings = timings

    @classmethod
    def read(cls, directory: str | Path) -> StudyResults:
        """The study written in ``directory``."""
        return cls(directory)

    @property
    def name(self) -> str:
        """The study's name."""
        return self.manifest["study"]["name"]

    def runs(self, table: str = "chain") -> pd.DataFrame:
        """Every finished run's rows of ``table`` (``sectors``, ``markets``, ``chain``,
        ``firms``), in scenario, point, replication order.

        Columns: ``scenario, point, replication``, one per factor, then the table's own.
        """
        if table not in TABLE_DIRS:
            raise ValueError(f"table must be one of {', '.join(TABLE_DIRS)}, got {table!r}")
        folder = self.directory / table
        if not folder.is_dir():
            raise ValueError(f"{folder}: this study has no {table!r} table")
        dataset = ds.dataset(folder, format="parquet")
        fragments = sorted(dataset.get_fragments(), key=lambda fragment: fragment.path)
        if not fragments:
            return pd.DataFrame()
        schema = pa.unify_schemas([fragment.physical_schema for fragment in fragments])
        dataset = ds.dataset([f.path for f in fragments], schema=schema, format="parquet")
        return dataset.to_table().to_pandas()

    def _analysis(self, name: str) -> pd.DataFrame | None:
        path = self.directory / name
        return pd.read_parquet(path) if path.exists() else None

    @property
    def outcomes(self) -> pd.DataFrame | None:
        """Outcome measures per run (``outcomes.parquet``), or None before the analysis."""
        return self._analysis(ANALYSIS_FILES[0])

    @property
    def summary(self) -> pd.DataFrame | None:
        """Mean and 95% CI per scenario, point and step (``summary.parquet``), or None."""
        return self._analysis(ANALYSIS_FILES[1])

    @property
    def differences(self) -> pd.DataFrame | None:
        """Paired differences against the reference (``differences.parquet``), or None."""
        return self._analysis(ANALYSIS_FILES[2])

    @property
    def sensitivity(self) -> pd.DataFrame | None:
        """Sobol or Morris indices (``sensitivity.parquet``), or None."""
        return self._analysis(ANALYSIS_FILES[3])

    def __repr__(self) -> str:
        status = self.manifest["study"].get("status")
        return f"StudyResults({str(self.directory)!r}, name={self.name!r}, status={status!r})"


def read_study(directory: str | Path) -> StudyResults:
    """The study written in ``directory`` (`StudyResults`)."""
    return StudyResults.read(directory)


def _manifest_of(directory: Path) -> dict:
    manifest = read_manifest(directory)
    if manifest is None:
        from marketsim.errors import ResultsError

        raise ResultsError(f"{directory}: holds no study ({MANIFEST} missing or not a study's)")
    return manifest


# --- the manifest and the tasks -------------------------------------------------------------


def study_manifest(study: Study, status: str, started: str, finished: str | None) -> dict:
    """The study manifest (layout in ``docs/studies.md``)."""
    file = study.file
    units: dict[str, dict[str, str]] = {}
    plugins: dict[tuple[str, str], dict[str, str]] = {}
    for scenario in study.scenarios:
        for metric in scenario.experiment.components.metrics:
            units.setdefault(metric.table, {}).setdefault(metric.column, metric.unit)
        for info in plugin_infos(scenario.experiment.manager):
            plugins.setdefault(
                (info.name, info.sha256),
                {
                    "name": info.name,
                    "source": info.source,
                    "version": info.version,
                    "sha256": info.sha256,
                },
            )
    return {
        "kind": "study",
        "study": {
            "name": file.name,
            "seed": file.seed,
            "replications": file.replications,
            "reference": file.reference,
            "graph_per_replication": file.graph_per_replication,
            "outcomes": list(file.outcomes),
            "sha256": study.sha256,
            "status": status,
            "source": file.source,
            "set": {override.key: override.value for override in file.overrides},
        },
        "scenarios": {
            scenario.name: {
                "source": scenario.experiment.source,
                "sha256": scenario.experiment.sha256,
                "experiment": scenario.experiment.config,
            }
            for scenario in study.scenarios
        },
        "factors": [factor.manifest() for factor in study.factors],
        "design": study.design.manifest(),
        "units": units,
        "versions": {
            "python": platform.python_version(),
            **{name: library_version(name) for name in STUDY_VERSIONED},
        },
        "plugins": list(plugins.values()),
        "seeds": seeds_manifest(file.seed, file.replications, file.graph_per_replication),
        "tasks": study.task_count,
        "tables": sorted(
            {t for scenario in study.scenarios for t in scenario.tables}, key=TABLE_DIRS.index
        ),
        "started": started,
        "finished": finished,
    }


def _scenario_plans(study: Study) -> dict[int, ScenarioPlan]:
    """What every task of each scenario needs, with the study's metric columns per table."""
    columns: dict[str, list[str]] = {}
    for scenario in study.scenarios:
        for metric in scenario.experiment.components.metrics:
            listed = columns.setdefault(metric.table, [])
            if metric.column not in listed:
                listed.append(metric.column)
    metric_columns = tuple((table, tuple(names)) for table, names in columns.items())
    return {
        scenario.index: ScenarioPlan(
            index=scenario.index,
            name=scenario.name,
            source=scenario.experiment.source,
            experiment=pickle.dumps(scenario.experiment, protocol=pickle.HIGHEST_PROTOCOL),
            tables=scenario.tables,
            metric_columns=metric_columns,
        )
        for scenario in study.scenarios
    }


def _task_spec(
    study: Study, plan: ScenarioPlan, scenario: int, point: int, replication: int, out: Path
) -> TaskSpec:
    overrides = study.task_overrides(point, replication)
    factors = tuple(overrides[: len(study.factors)])
    return TaskSpec(
        study_source=study.source,
        out=str(out),
        scenario=plan,
        point=point,
        factors=factors,
        extra=tuple(overrides[len(study.factors) :]),
        replication=replication,
        seed=study.seed,
        sha256=task_sha256(study, study.scenarios[scenario], point, replication),
    )
