"""Fuzz: random valid experiments, drawn from the registered schemas, run clean.

Strategies are built from the schemas themselves (every `Param`'s kind, bounds and choices),
so the fuzz test follows the schemas as they change. Each example sets several parameters at
once, across sectors, the finance table, the graph and the markets (a market's mechanism too),
with values anywhere in their documented range and often at its edges: the bounds, 0, the
smallest subnormal, the number next to an exclusive bound. The rest comes from the baseline,
cut to a few firms per sector and ``STEPS`` steps.

Each run (`conftest.run_checked`) must complete without any exception (no traceback, no
ledger stop, no step-guard stop, no numpy overflow or invalid-operation warning), with every
sector's state and every market's book and outcome finite after every step, prices,
quantities and capacities never negative, and every number in the results tables finite, or
null only in a column whose value can be undefined (`conftest.NULLABLE`).

Ranges: where a numeric parameter has no upper (lower) bound in its schema, the strategy
stops at ``FLOAT_CAP`` (``-FLOAT_CAP``) for floats and ``INT_CAP`` for integers; counts stop
at ``MAX_COUNT`` so that runs stay short. Everything else is the documented range.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import reject
from hypothesis import settings
from hypothesis import strategies as st

import marketsim
from marketsim.errors import ExperimentError
from marketsim.experiment import collect_components
from marketsim.plugins import plugin_manager
from marketsim.schema import Param

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"

STEPS = 8
"""Steps per fuzz run: a few months of plans, deliveries, pricing and capital flows."""

MAX_COUNT = 3
"""Most firms (segments, funds) per sector in a fuzz run."""

FLOAT_CAP = 1e12
"""Largest magnitude drawn for a float parameter whose schema has no bound on that side."""

INT_CAP = 2**63 - 1
"""Largest integer drawn for an int parameter whose schema has no upper bound (int64)."""

MAX_KEYS = 10
"""Most parameters one example changes from the baseline."""

SMALLEST_SUBNORMAL = 5e-324
SMALLEST_NORMAL = 2.2250738585072014e-308


@cache
def registry():
    """The schemas of the built-in plugin (sectors, tables, mechanisms)."""
    return collect_components(plugin_manager()).registry()


def _float_strategy(param: Param) -> st.SearchStrategy[float]:
    low = param.ge if param.ge is not None else param.gt
    high = param.le if param.le is not None else param.lt
    low = -FLOAT_CAP if low is None else float(low)
    high = FLOAT_CAP if high is None else float(high)
    exclude_low = param.ge is None and param.gt is not None
    exclude_high = param.le is None and param.lt is not None
    edges = [low, high, 0.0, SMALLEST_SUBNORMAL, 1.0]
    if exclude_low:
        edges.append(math.nextafter(low, math.inf))
    if exclude_high:
        edges.append(math.nextafter(high, -math.inf))
    if isinstance(param.default, float | int) and not isinstance(param.default, bool):
        edges.append(float(param.default))

    def valid(value: float) -> bool:
        return (
            (param.ge is None or value >= param.ge)
            and (param.gt is None or value > param.gt)
            and (param.le is None or value <= param.le)
            and (param.lt is None or value < param.lt)
            and -FLOAT_CAP <= value <= FLOAT_CAP
        )

    anywhere = st.floats(
        low,
        high,
        exclude_min=exclude_low,
        exclude_max=exclude_high,
        allow_subnormal=low < SMALLEST_NORMAL,
    )
    return st.one_of(st.sampled_from(sorted({e for e in edges if valid(e)})), anywhere)


def _int_strategy(param: Param, cap: int = INT_CAP) -> st.SearchStrategy[int]:
    low = param.ge if param.ge is not None else param.gt
    high = param.le if param.le is not None else param.lt
    low = 0 if low is None else (math.ceil(low) if param.gt is None else math.floor(low) + 1)
    high = cap if high is None else (math.floor(high) if param.lt is None else math.ceil(high) - 1)
    high = min(high, cap)
    edges = {low, high, min(max(low, 1), high)}
    if isinstance(param.default, int) and low <= param.default <= high:
        edges.add(param.default)
    return st.one_of(st.sampled_from(sorted(edges)), st.integers(low, high))


def value_strategy(param: Param, key: str) -> st.SearchStrategy | None:
    """Valid values of one parameter (None: a kind the fuzz test leaves at its default)."""
    if param.choices is not None:
        return st.sampled_from(param.choices)
    if param.kind is bool:
        return st.booleans()
    if param.kind is float:
        return _float_strategy(param)
    if param.kind is int:
        return _int_strategy(param, MAX_COUNT if key == "count" else INT_CAP)
    return None


def fuzzable_params() -> dict[str, tuple[Param, st.SearchStrategy]]:
    """Dotted key -> (Param, strategy) for every parameter the fuzz test varies."""
    reg = registry()
    tables = {f"agents.{name}": schema for name, schema in reg.sector_tables.items()}
    tables["finance"] = reg.tables["finance"]
    tables["graph"] = reg.tables["graph"]
    found = {}
    for table, schema in tables.items():
        for key, param in schema.params.items():
            if table == "graph" and key == "regions":
                continue  # lists: drawn separately (REGIONS)
            strategy = value_strategy(param, key)
            if strategy is not None:
                found[f"{table}.{key}"] = (param, strategy)
    return found


REGIONS = st.sampled_from([["us"], ["us", "eu"], ["us", "eu", "asia"]])


def toml_value(value) -> str:
    """A Python value written as a TOML value for ``--set``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


@st.composite
def market_overrides(draw) -> list[str]:
    """A mechanism and its parameters for some of the markets."""
    reg = registry()
    overrides = []
    for good in draw(st.lists(st.sampled_from(sorted(reg.market_goods)), unique=True, max_size=2)):
        mechanism = draw(st.sampled_from(sorted(reg.mechanism_tables)))
        overrides.append(f'markets.{good}.mechanism="{mechanism}"')
        for key, param in reg.mechanism_tables[mechanism].params.items():
            strategy = value_strategy(param, key)
            if strategy is not None and draw(st.booleans()):
                overrides.append(f"markets.{good}.{key}={toml_value(draw(strategy))}")
    return overrides


@st.composite
def experiments(draw) -> list[str]:
    """``--set`` overrides of the baseline: a short run, few firms, several random values."""
    params = fuzzable_params()
    overrides = [f"experiment.steps={STEPS}", f"experiment.seed={draw(st.integers(0, 2**32))}"]
    for name, schema in registry().sector_tables.items():
        if "count" in schema.params and name != "investor":
            overrides.append(f"agents.{name}.count={draw(st.integers(1, MAX_COUNT))}")
    if draw(st.booleans()):
        overrides.append(f"graph.regions={toml_value(draw(REGIONS))}")
    keys = draw(
        st.lists(st.sampled_from(sorted(params)), min_size=1, max_size=MAX_KEYS, unique=True)
    )
    for key in keys:
        overrides.append(f"{key}={toml_value(draw(params[key][1]))}")
    overrides += draw(market_overrides())
    return overrides


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=experiments())
def test_random_valid_experiments_run_clean(overrides, checked_run):
    """Any valid experiment runs its steps with finite state and finite (or undefined) results."""
    try:
        marketsim.load_experiment(BASELINE, overrides)
    except ExperimentError:  # a check across parameters that the schema cannot express
        reject()
    checked_run(overrides)


def test_fuzz_strategies_cover_every_schema():
    """Every numeric, boolean and choice parameter of every built-in table is fuzzed."""
    params = fuzzable_params()
    reg = registry()
    for name, schema in reg.sector_tables.items():
        for key, param in schema.params.items():
            if param.kind in (float, int, bool) or param.choices is not None:
                assert f"agents.{name}.{key}" in params
    assert {"finance.collateral_sensitivity", "graph.buyer_degree"} <= set(params)


@pytest.mark.parametrize("key", ["agents.investor.count", "agents.end_demand.count"])
def test_optional_sectors_can_be_switched_off(key, checked_run):
    """No capital market (or no end customers) is a valid chain that runs clean."""
    try:
        marketsim.load_experiment(BASELINE, [f"{key}=0"])
    except ExperimentError:
        pytest.skip(f"{key}=0 is not a valid experiment")
    checked_run([f"{key}=0", f"experiment.steps={STEPS}"])
