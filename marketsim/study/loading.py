"""From a study file to a validated `Study`: scenarios loaded, factors checked, design drawn.

`load_study` reads the study file (`marketsim.study.schema`), loads every scenario's
experiment with the study's values set on it, checks every factor against every scenario
(the key exists, numeric for a range, each grid value and both range ends valid for the
parameter), draws the design and hashes the whole. Nothing runs and nothing is written
until all of that has passed; every mistake is one `ExperimentError` line naming the study
file (or the experiment file) and the key.

Each scenario's experiment is built from its file plus, in this order (a later value wins):
the scenario's own ``set`` (inline form), ``[study.set]``, ``experiment.seed = [study] seed``
and ``experiment.replications = [study] replications``, ``graph.seed = [study] seed`` when
``graph_per_replication = false``; then each task adds its design point's factor values and,
when ``graph_per_replication = true``, its replication's graph seed (`marketsim.study.tasks`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketsim.config import canonical_json
from marketsim.config import experiment_sha256
from marketsim.errors import ExperimentError
from marketsim.experiment import Experiment
from marketsim.experiment import load_experiment
from marketsim.metrics import TABLES
from marketsim.plugins import plugin_infos
from marketsim.study.design import Design
from marketsim.study.design import Factor
from marketsim.study.design import build_design
from marketsim.study.design import factor_from_entry
from marketsim.study.schema import FactorEntry
from marketsim.study.schema import Override
from marketsim.study.schema import StudyFile
from marketsim.study.schema import join_key
from marketsim.study.schema import read_study_file
from marketsim.study.schema import study_error
from marketsim.study.seeds import graph_seed
from marketsim.study.seeds import replication_seed


@dataclass
class Scenario:
    """One scenario of a study, its experiment resolved with the study's values set.

    Attributes:
        index: position in ``[study.scenarios]`` (names the part files).
        name: the scenario's name (the ``scenario`` column of every table).
        experiment: the experiment, without factor values or per-replication graph seed.
        overrides: the values set on the experiment file, in the order applied.
    """

    index: int
    name: str
    experiment: Experiment
    overrides: tuple[Override, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables each of its runs writes."""
        firm_level = self.experiment.config["output"]["firm_level"]
        return (*TABLES, "firms") if firm_level else TABLES

    def plugin_hashes(self) -> tuple[tuple[str, str], ...]:
        """``(name, sha256)`` of each plugin its experiment loaded."""
        return tuple((info.name, info.sha256) for info in plugin_infos(self.experiment.manager))


@dataclass
class Study:
    """A validated study, ready to run (`marketsim.run_study`).

    Attributes:
        file: the study file's ``[study]`` table as read.
        scenarios: in the order written.
        factors: in the order written, each with its parameter's kind.
        design: the design points.
        sha256: hash of what decides the tables (name, seed, replications, graph option,
            every scenario's experiment and plugin hashes, factors, design points):
            ``--resume`` requires the same hash.
    """

    file: StudyFile
    scenarios: list[Scenario]
    factors: list[Factor]
    design: Design
    sha256: str

    @property
    def name(self) -> str:
        """The study's name (default results directory: ``results/<name>``)."""
        return self.file.name

    @property
    def source(self) -> str:
        """The study file."""
        return self.file.source

    @property
    def seed(self) -> int:
        """The study seed: replication r of every scenario and point uses the same stream."""
        return self.file.seed

    @property
    def replications(self) -> int:
        """Replications per scenario and design point."""
        return self.file.replications

    @property
    def task_count(self) -> int:
        """Scenarios x design points x replications."""
        return len(self.scenarios) * len(self.design.points) * self.replications

    def tasks(self) -> list[tuple[int, int, int]]:
        """Every ``(scenario index, point, replication)``, replication first.

        Replication-major order means an interrupted study holds whole replications of
        every scenario and point first, so its finished tasks pair up.
        """
        return [
            (scenario.index, point, replication)
            for replication in range(self.replications)
            for scenario in self.scenarios
            for point in range(len(self.design.points))
        ]

    def graph_seed(self, replication: int) -> int:
        """The supply graph's seed in replication ``replication`` (same in every scenario)."""
        if not self.file.graph_per_replication:
            return self.seed
        return graph_seed(replication_seed(self.seed, replication))

    def task_config(self, scenario: Scenario, point: int, replication: int) -> dict[str, Any]:
        """The resolved experiment a task runs: the scenario's, with its point and graph seed.

        A new dict; tables on the way to a changed key are copied, the rest is shared with
        the scenario's experiment (do not modify it).
        """
        config = dict(scenario.experiment.config)
        for key, value in self.design.points[point].items():
            set_dotted(config, key, value)
        set_dotted(config, "graph.seed", self.graph_seed(replication))
        return config

    def task_overrides(self, point: int, replication: int) -> list[Override]:
        """The overrides a task adds to its scenario's: factor values, then the graph seed."""
        found = [
            Override(factor.key, self.design.points[point][factor.key], _factor_key(factor))
            for factor in self.factors
        ]
        if self.file.graph_per_replication:
            found.append(
                Override("graph.seed", self.graph_seed(replication), "study.graph_per_replication")
            )
        return found


def load_study(path: str | Path) -> Study:
    """Read and validate a study file, its scenarios' experiments and its factors.

    Args:
        path: the study TOML file.

    Returns:
        The validated `Study`.

    Raises:
        ExperimentError: the study file, a scenario's experiment file or a value the study
            sets is invalid (one line naming the file and the key).
    """
    file = read_study_file(path)
    scenarios = [_load_scenario(file, index, entry) for index, entry in enumerate(file.scenarios)]
    factors = [_check_factor(file, scenarios, entry) for entry in file.factors]
    design = build_design(factors, file.sample, file.seed)
    study = Study(file, scenarios, factors, design, "")
    if len(factors) > 1 and len(scenarios) * len(design.points) <= MAX_CHECKED_POINTS:
        _check_points(study)
    study.sha256 = _study_sha256(study)
    return study


MAX_CHECKED_POINTS = 256
"""Up to this many (scenario, design point) pairs, every combination of factor values is
validated before anything runs (about 10 ms each); beyond it, each factor value is, and a
combination that breaks a check across parameters stops the study when its task loads it."""


def _check_points(study: Study) -> None:
    """Validate every scenario at every design point (checks across parameters)."""
    for scenario in study.scenarios:
        for point in range(len(study.design.points)):
            overrides = [*scenario.overrides, *study.task_overrides(point, 0)[: len(study.factors)]]
            try:
                _load(study.file, scenario.experiment.source, overrides, "study.factors")
            except ExperimentError as error:
                raise ExperimentError(
                    f"{error.message} (at design point {point}, scenario {scenario.name!r})",
                    error.source,
                    error.key,
                ) from None


def _load_scenario(file: StudyFile, index: int, entry) -> Scenario:
    """A scenario's experiment with the scenario's, the study's and the seed values set."""
    study_values = [
        Override("experiment.seed", file.seed, "study.seed"),
        Override("experiment.replications", file.replications, "study.replications"),
    ]
    if not file.graph_per_replication:
        study_values.append(Override("graph.seed", file.seed, "study.seed"))
    overrides = (*entry.overrides, *file.overrides, *study_values)
    experiment = _load(file, entry.path, list(overrides), join_key("study.scenarios", entry.name))
    return Scenario(index, entry.name, experiment, overrides)


def _load(file: StudyFile, path: str, overrides: list[Override], fallback: str) -> Experiment:
    """`load_experiment`, with errors about the study's values named by their study key."""
    try:
        return load_experiment(path, [override.text() for override in overrides])
    except ExperimentError as error:
        raise study_error(error, file.source, overrides, fallback) from None


def _check_factor(file: StudyFile, scenarios: list[Scenario], entry: FactorEntry) -> Factor:
    """The factor's key exists in every scenario, and each value it takes is valid there
    (each grid value, both ends of a range; combinations are `_check_points`'s)."""
    kinds = []
    for scenario in scenarios:
        found, value = get_dotted(scenario.experiment.config, entry.key)
        where = f"scenario {scenario.name!r} ({scenario.experiment.source})"
        if not found:
            raise ExperimentError(f"no such key in {where}", file.source, entry.study_key)
        if isinstance(value, dict | list) or value is None:
            shown = "a table" if isinstance(value, dict) else "a list"
            raise ExperimentError(
                f"must name a single value; it is {shown} in {where}",
                file.source,
                entry.study_key,
            )
        if entry.range is not None and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ExperimentError(
                f"a range factor must be numeric; it is {value!r} in {where}",
                file.source,
                entry.study_key,
            )
        kinds.append(type(value))
    kind = kinds[0]
    if any(other is not kind for other in kinds):
        raise ExperimentError(
            "has different types in different scenarios", file.source, entry.study_key
        )
    whole = entry.range is None or all(float(bound).is_integer() for bound in entry.range)
    if kind is int and not whole:
        raise ExperimentError(
            f"the parameter is an integer: the range needs whole numbers, got {list(entry.range)}",
            file.source,
            f"{entry.study_key}.range",
        )
    factor = factor_from_entry(entry, kind)
    if factor.values is not None:
        trial = [(value, f"{entry.study_key}[{i}]") for i, value in enumerate(factor.values)]
    else:
        low, high = factor.range
        ends = (int(low), int(high)) if kind is int else (float(low), float(high))
        trial = [(end, f"{entry.study_key}.range") for end in ends]
    for scenario in scenarios:
        for value, study_key in trial:
            overrides = [*scenario.overrides, Override(entry.key, value, study_key)]
            _load(file, scenario.experiment.source, overrides, study_key)
    return factor


def _factor_key(factor: Factor) -> str:
    return join_key("study.factors", factor.key)


def get_dotted(config: dict[str, Any], key: str) -> tuple[bool, Any]:
    """``(True, value)`` at the dotted ``key`` of a resolved experiment, else ``(False, None)``."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set the value at an existing dotted ``key``, copying the tables on the way to it."""
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node[part] = dict(node[part])
        node = node[part]
    node[last] = value


def _study_sha256(study: Study) -> str:
    """Hash of everything that decides the study's tables (not ``reference`` or ``outcomes``,
    which only the analysis reads)."""
    file = study.file
    identity = {
        "name": file.name,
        "seed": file.seed,
        "replications": file.replications,
        "graph_per_replication": file.graph_per_replication,
        "scenarios": [
            {
                "name": scenario.name,
                "sha256": scenario.experiment.sha256,
                "plugins": [list(pair) for pair in scenario.plugin_hashes()],
            }
            for scenario in study.scenarios
        ],
        "factors": [factor.manifest() for factor in study.factors],
        "design": study.design.manifest(),
    }
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def task_sha256(study: Study, scenario: Scenario, point: int, replication: int) -> str:
    """The sha256 a task's experiment must have when its worker loads it."""
    return experiment_sha256(study.task_config(scenario, point, replication))
