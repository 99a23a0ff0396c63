"""Reading and checking a study file: the ``[study]`` table, before any experiment is loaded.

A study file is TOML with one table, ``[study]`` (the keys are documented in
``docs/studies.md``)::

    [study]
    name = "bubble_vs_no_bubble"
    seed = 7
    replications = 20
    reference = "no_bubble"

    [study.scenarios]
    no_bubble = "../experiments/no_bubble.toml"
    bubble = { extends = "../experiments/bubble.toml", set = { "finance.tax_rate" = 0.3 } }

    [study.set]
    "experiment.steps" = 120

    [study.factors]
    "agents.end_demand.elasticity" = [0.6, 1.0, 1.6]

`read_study_file` checks the shape of that table (keys, types, ranges) and returns a
`StudyFile`; every mistake is an `ExperimentError` naming the study file and the key, e.g.
``studies/x.toml: study.sample.method: must be one of 'sobol', 'morris', 'lhs', got 'halton'``.
Checks that need the scenarios' experiments (a factor key that does not exist, a value out of
its parameter's range) are made in `marketsim.study.loading`.

Overrides are kept as ``(dotted key, value, study key)`` triples so an error found later
while validating an experiment can name the study key the value was written under
(`study_error`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import NoReturn

from marketsim.config import SET_SOURCE
from marketsim.config import toml_inline
from marketsim.errors import ExperimentError

SAMPLE_METHODS = ("sobol", "morris", "lhs")
"""Samplers for ``[study.sample] method`` (SALib)."""

MAX_REPLICATIONS = 10_000
"""Largest ``[study] replications`` (the experiment's own bound)."""

RESERVED_KEYS = {
    "experiment.seed": "the study sets it to [study] seed",
    "experiment.replications": "the study sets it to [study] replications",
    "graph.seed": "the study sets it (see [study] graph_per_replication)",
}
"""Experiment keys a study sets itself, which ``set`` and ``factors`` may not change."""

_STUDY_KEYS = (
    "name",
    "seed",
    "replications",
    "reference",
    "graph_per_replication",
    "outcomes",
    "scenarios",
    "set",
    "factors",
    "sample",
)
_SAMPLE_KEYS = ("method", "n", "levels")
_SCENARIO_KEYS = ("extends", "set")
_FACTOR_KEYS = ("range",)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(
    r"(?P<what>.*) \((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Override:
    """One value a study sets in an experiment.

    Attributes:
        key: the experiment's dotted key, e.g. ``agents.end_demand.elasticity``.
        value: the value (TOML types: str, int, float, bool, list).
        study_key: where the study file wrote it, e.g. ``study.set."experiment.steps"``.
    """

    key: str
    value: Any
    study_key: str

    def text(self) -> str:
        """The ``key=value`` override `marketsim.load_experiment` takes."""
        return f"{self.key}={toml_inline(self.value)}"


@dataclass(frozen=True)
class ScenarioEntry:
    """One ``[study.scenarios]`` entry: an experiment file and the values set on it."""

    name: str
    path: str
    """The experiment file, relative to the working directory (joined to the study's folder)."""
    overrides: tuple[Override, ...] = ()
    """The inline table's ``set`` values, in the order written."""


@dataclass(frozen=True)
class FactorEntry:
    """One ``[study.factors]`` entry: a list of values (grid) or a ``range`` (sampled)."""

    key: str
    values: tuple[Any, ...] | None = None
    range: tuple[float, float] | None = None

    @property
    def study_key(self) -> str:
        """Where the study file writes this factor."""
        return join_key("study.factors", self.key)


@dataclass(frozen=True)
class SampleEntry:
    """``[study.sample]``: the sampler, its base sample size and (Morris) its grid levels."""

    method: str
    n: int
    levels: int = 4


@dataclass
class StudyFile:
    """The ``[study]`` table, checked for shape; paths resolved against the study's folder."""

    source: str
    name: str
    seed: int
    replications: int
    reference: str | None
    graph_per_replication: bool
    outcomes: list[str]
    scenarios: list[ScenarioEntry]
    overrides: list[Override] = field(default_factory=list)
    """``[study.set]``, in the order written."""
    factors: list[FactorEntry] = field(default_factory=list)
    sample: SampleEntry | None = None


def read_study_file(path: str | Path) -> StudyFile:
    """Read a study file and check the shape of its ``[study]`` table.

    Args:
        path: the study TOML; named in errors as given.

    Returns:
        The `StudyFile`.

    Raises:
        ExperimentError: the file is missing, not TOML, or a key is unknown, of the wrong
            type or out of range (one line naming the file and the key).
    """
    source = str(path)
    raw = _parse(source)
    check = _Checker(source)
    check.known(raw, ["study"], "", "key")
    if "study" not in raw:
        check.fail("study", "missing required table [study]")
    table = check.table(raw["study"], "study")
    check.known(table, _STUDY_KEYS, "study", "key")
    if "name" not in table:
        check.fail("study.name", "missing required key")
    name = check.kind(table["name"], str, "study.name", "a string")
    if not _NAME.fullmatch(name) or ".." in name:
        check.fail(
            "study.name",
            f"must be letters, digits, '.', '_' or '-' (it names the results directory), "
            f"got {name!r}",
        )
    seed = check.integer(table.get("seed", 0), "study.seed", low=0)
    replications = check.integer(
        table.get("replications", 1), "study.replications", low=1, high=MAX_REPLICATIONS
    )
    graph_per_replication = check.kind(
        table.get("graph_per_replication", True), bool, "study.graph_per_replication", "a boolean"
    )
    outcomes = check.string_list(table.get("outcomes", []), "study.outcomes")
    folder = os.path.dirname(source)
    scenarios = _scenarios(check, table.get("scenarios"), folder)
    reference = table.get("reference")
    if reference is not None:
        reference = check.kind(reference, str, "study.reference", "a string")
        names = [scenario.name for scenario in scenarios]
        if reference not in names:
            check.fail(
                "study.reference",
                f"must name a scenario, got {reference!r}{_suggestion(reference, names, True)}",
            )
    overrides = _overrides(check, table.get("set", {}), "study.set")
    sample = _sample(check, table["sample"]) if "sample" in table else None
    factors = _factors(check, table.get("factors", {}), sample)
    return StudyFile(
        source=source,
        name=name,
        seed=seed,
        replications=replications,
        reference=reference,
        graph_per_replication=graph_per_replication,
        outcomes=outcomes,
        scenarios=scenarios,
        overrides=overrides,
        factors=factors,
        sample=sample,
    )


def _scenarios(check: _Checker, value: Any, folder: str) -> list[ScenarioEntry]:
    """``[study.scenarios]``: name -> file, or name -> {extends = file, set = {...}}."""
    if value is None:
        check.fail("study.scenarios", "missing required table [study.scenarios]")
    value = check.table(value, "study.scenarios")
    if not value:
        check.fail("study.scenarios", "expected at least one scenario (name = experiment file)")
    scenarios = []
    for name, entry in value.items():
        path = join_key("study.scenarios", name)
        if not _NAME.fullmatch(name) or ".." in name:
            check.fail(
                path, f"a scenario name must be letters, digits, '.', '_' or '-', got {name!r}"
            )
        overrides: list[Override] = []
        if isinstance(entry, dict):
            check.known(entry, _SCENARIO_KEYS, path, "key")
            if "extends" not in entry:
                check.fail(f"{path}.extends", "missing required key (the experiment file)")
            file = check.kind(entry["extends"], str, f"{path}.extends", "a string (a file)")
            overrides = _overrides(check, entry.get("set", {}), f"{path}.set")
            where = f"{path}.extends"
        else:
            file = check.kind(entry, str, path, "a string (an experiment file) or a table")
            where = path
        if not file:
            check.fail(where, "expected an experiment file, got ''")
        resolved = os.path.normpath(os.path.join(folder, file))
        if not os.path.isfile(resolved):
            check.fail(where, f"scenario file not found: {resolved}")
        scenarios.append(ScenarioEntry(name, resolved, tuple(overrides)))
    return scenarios


def _overrides(check: _Checker, value: Any, path: str) -> list[Override]:
    """A ``set`` table as overrides: nested tables and quoted dotted keys both work."""
    value = check.table(value, path)
    found: list[Override] = []
    for key, leaf, study_key in _leaves(value, (), path):
        if key in RESERVED_KEYS:
            check.fail(study_key, f"cannot be set here: {RESERVED_KEYS[key]}")
        check.toml_value(leaf, study_key)
        found.append(Override(key, leaf, study_key))
    return found


def _leaves(table: dict, keys: tuple[str, ...], path: str):
    """``(dotted key, value, study key)`` for every non-table value under ``table``."""
    for key, value in table.items():
        study_key = join_key(path, key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*keys, key), study_key)
        else:
            yield ".".join((*keys, key)), value, study_key


def _sample(check: _Checker, value: Any) -> SampleEntry:
    """``[study.sample]``: method (sobol, morris, lhs), n, and Morris ``levels``."""
    value = check.table(value, "study.sample")
    check.known(value, _SAMPLE_KEYS, "study.sample", "key")
    for key in ("method", "n"):
        if key not in value:
            check.fail(f"study.sample.{key}", "missing required key")
    method = check.kind(value["method"], str, "study.sample.method", "a string")
    if method not in SAMPLE_METHODS:
        options = ", ".join(repr(m) for m in SAMPLE_METHODS)
        check.fail("study.sample.method", f"must be one of {options}, got {_show(method)}")
    n = check.integer(value["n"], "study.sample.n", low=1)
    if method == "sobol" and n & (n - 1):
        check.fail(
            "study.sample.n",
            f"must be a power of 2 for sobol (Saltelli's scheme), got {n}",
        )
    levels = 4
    if "levels" in value:
        if method != "morris":
            check.fail("study.sample.levels", f"only applies to method 'morris', not {method!r}")
        levels = check.integer(value["levels"], "study.sample.levels", low=2)
        if levels % 2:
            check.fail("study.sample.levels", f"must be even (Morris grid levels), got {levels}")
    return SampleEntry(method, n, levels)


def _factors(check: _Checker, value: Any, sample: SampleEntry | None) -> list[FactorEntry]:
    """``[study.factors]``: key -> list of values (grid) or key -> {range = [lo, hi]}."""
    value = check.table(value, "study.factors")
    factors = []
    for key, entry, study_key in _factor_leaves(value, (), "study.factors"):
        if key in RESERVED_KEYS or key in ("experiment.name",):
            reason = RESERVED_KEYS.get(key, "it names the experiment")
            check.fail(study_key, f"cannot be a factor: {reason}")
        if isinstance(entry, dict):
            check.known(entry, _FACTOR_KEYS, study_key, "key")
            if "range" not in entry:
                check.fail(f"{study_key}.range", "missing required key ([low, high])")
            bounds = _range(check, entry["range"], f"{study_key}.range")
            if sample is None:
                check.fail(
                    study_key,
                    "a range factor needs [study.sample] (method = 'sobol', 'morris' or 'lhs'); "
                    "for a grid give a list of values",
                )
            factors.append(FactorEntry(key, range=bounds))
        elif isinstance(entry, list):
            if sample is not None:
                check.fail(
                    study_key,
                    "with [study.sample] every factor needs range = [low, high], "
                    f"got a list {_show(entry)}",
                )
            if not entry:
                check.fail(study_key, "expected a non-empty list of values, got []")
            for index, item in enumerate(entry):
                if isinstance(item, dict | list):
                    check.fail(
                        f"{study_key}[{index}]",
                        f"expected a number, string or boolean, got {_show(item)}",
                    )
                check.toml_value(item, f"{study_key}[{index}]")
            if len(set(map(_identity, entry))) != len(entry):
                check.fail(study_key, f"lists a value twice: {_show(entry)}")
            factors.append(FactorEntry(key, values=tuple(entry)))
        else:
            check.fail(
                study_key,
                "expected a list of values (a grid) or {range = [low, high]} with "
                f"[study.sample], got {_show(entry)}",
            )
    if sample is not None and not factors:
        check.fail(
            "study.sample",
            'needs factors with a range: add [study.factors."<key>"] range = [low, high]',
        )
    return factors


def _factor_leaves(table: dict, keys: tuple[str, ...], path: str):
    """Factors as ``(dotted key, entry, study key)``; a table holding ``range`` is an entry."""
    for key, value in table.items():
        study_key = join_key(path, key)
        if isinstance(value, dict) and value and "range" not in value:
            yield from _factor_leaves(value, (*keys, key), study_key)
        else:
            yield ".".join((*keys, key)), value, study_key


def _range(check: _Checker, value: Any, path: str) -> tuple[float, float]:
    """``[low, high]``: two finite numbers with low < high."""
    if not isinstance(value, list) or len(value) != 2 or not all(map(_is_number, value)):
        check.fail(path, f"expected [low, high] (two numbers), got {_show(value)}")
    low, high = value
    for bound in value:
        if not math.isfinite(bound):
            check.fail(path, f"must be finite numbers, got {_show(value)}")
    if not low < high:
        check.fail(path, f"low must be < high, got {_show(value)}")
    return low, high


def _identity(value: Any) -> tuple[str, Any]:
    """A hashable identity for a grid value that tells 1 from 1.0 from true."""
    return type(value).__name__, value


# --- errors from experiments, named by the study key ---------------------------------------


def study_error(
    error: ExperimentError, source: str, overrides: list[Override], fallback: str
) -> ExperimentError:
    """An error about an override, named by the study file and the study key that set it.

    `marketsim.load_experiment` names overridden values ``--set``; this finds the last
    override whose key is, or contains, the key in the error and names the study file and
    its study key instead. Errors from an experiment file are returned unchanged.

    Args:
        error: raised by `marketsim.load_experiment` with ``overrides`` applied in order.
        source: the study file.
        overrides: the overrides, in the order they were applied.
        fallback: the study key to name when no override matches.
    """
    if error.source != SET_SOURCE:
        return error
    key = re.sub(r"\[\d+\]", "", error.key or "")
    for override in reversed(overrides):
        if key == override.key or key.startswith(override.key + "."):
            rest = (error.key or "")[len(override.key) :]
            return ExperimentError(error.message, source, override.study_key + rest)
    return ExperimentError(error.message, source, fallback)


# --- small helpers --------------------------------------------------------------------------


def join_key(prefix: str, key: str) -> str:
    """``prefix.key``, the key quoted TOML-style when it is not a bare key."""
    shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    return f"{prefix}.{shown}" if prefix else shown


def _parse(source: str) -> dict:
    """The study file's TOML, every failure an `ExperimentError` naming the file."""
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise ExperimentError("file not found", source) from None
    except IsADirectoryError:
        raise ExperimentError("is a directory, not a study file", source) from None
    except OSError as error:
        raise ExperimentError(f"cannot read file: {error.strerror or error}", source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ExperimentError(f"not UTF-8 text (bad byte at line {line})", source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(_toml_error_message(str(error)), source) from None


def _toml_error_message(message: str) -> str:
    """``"What (at line L, column C)"`` as ``"invalid TOML at line L, column C: what"``."""
    match = _TOML_POSITION.fullmatch(message)
    if not match:
        return f"invalid TOML: {message}"
    where = f"line {match['line']}, column {match['col']}" if match["line"] else "end of file"
    return f"invalid TOML at {where}: {match['what'][:1].lower()}{match['what'][1:]}"


class _Checker:
    """Type and range checks that fail with one line naming the study file and the key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> NoReturn:
        raise ExperimentError(message, self.source, key)

    def known(self, table: dict, known, prefix: str, what: str) -> None:
        known = list(known)
        for key in table:
            if key not in known:
                hint = _suggestion(key, known, False)
                self.fail(join_key(prefix, key), f"unknown {what} {key!r}{hint}")

    def table(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {_show(value)}")
        return value

    def kind(self, value: Any, kind: type, key: str, name: str) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(key, f"expected {name}, got {_show(value)}")
        return value

    def integer(self, value: Any, key: str, low: int | None = None, high: int | None = None):
        value = self.kind(value, int, key, "an integer")
        if low is not None and value < low:
            self.fail(key, f"must be >= {low}, got {value}")
        if high is not None and value > high:
            self.fail(key, f"must be <= {high}, got {value}")
        return value

    def string_list(self, value: Any, key: str) -> list[str]:
        if not isinstance(value, list):
            self.fail(key, f"expected a list of strings, got {_show(value)}")
        for index, item in enumerate(value):
            self.kind(item, str, f"{key}[{index}]", "a string")
        return list(value)

    def toml_value(self, value: Any, key: str) -> None:
        """Values a study can pass on: no dates, no NaN or infinities."""
        if isinstance(value, dict):
            for name, item in value.items():
                self.toml_value(item, join_key(key, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.toml_value(item, f"{key}[{index}]")
        elif isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {_show(value)}")
        elif not isinstance(value, str | int | float | bool):
            self.fail(key, f"dates and times are not supported, got {_show(value)}")


def _suggestion(name: str, known: list[str], listing: bool) -> str:
    """`` (did you mean 'x'?)`` when a known name is close, else the known names if asked."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known)})" if listing else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A short TOML-like rendering of a value for error messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
