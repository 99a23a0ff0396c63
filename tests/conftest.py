"""Shared fixtures (the baseline experiment, short experiment files built on it, a run that
checks every number it makes) and the Hypothesis profiles.

Profiles: ``ci`` (loaded when the environment has ``CI=true``) derandomizes every property
test and keeps no example database, so a run depends only on the code: a fresh clone's
``pytest`` passes or fails the same way every time. ``dev`` (the default) explores at
random and remembers failing examples in ``.hypothesis/`` so they replay until fixed.
``HYPOTHESIS_PROFILE=<name>`` (or ``pytest --hypothesis-profile=<name>``) picks one by name.
Tests that set ``max_examples`` themselves keep their own count under either profile.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

import marketsim
from marketsim.model import SupplyChainModel

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"

settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=100)
settings.register_profile("dev", deadline=None, max_examples=100)


def _profile_name() -> str:
    """``HYPOTHESIS_PROFILE`` if set, else ``ci`` when ``CI`` is true, else ``dev``."""
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    return "ci" if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes") else "dev"


settings.load_profile(_profile_name())


@pytest.fixture(scope="session")
def baseline_path() -> Path:
    """Absolute path of experiments/baseline.toml."""
    return BASELINE


@pytest.fixture
def write_experiment(tmp_path) -> Callable[..., Path]:
    """A factory writing an experiment file under ``tmp_path`` and returning its path.

    ``write_experiment(text, name="experiment.toml", base=True, steps=6)`` writes ``text``
    after a header that extends the absolute baseline (``base``) and sets
    ``experiment.steps`` (``steps``; pass None when ``text`` has its own ``[experiment]``).
    """

    def write(
        text: str = "", name: str = "experiment.toml", base: bool = True, steps: int | None = 6
    ) -> Path:
        header = f'extends = "{BASELINE.as_posix()}"\n' if base else ""
        if steps is not None:
            header += f"experiment.steps = {steps}\n"
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{header}\n{text}", encoding="utf-8")
        return path

    return write


@pytest.fixture
def short_baseline(write_experiment) -> Path:
    """An experiment file: the baseline cut to 6 steps."""
    return write_experiment(name="short.toml")


NULLABLE = {
    "sectors": {
        "gross_margin",  # null without revenue
        "operating_margin",  # null without revenue
        "utilization",  # null without capacity
        "value_capture_share",  # null when the chain's gross profit is zero
        "stranded_accelerators",  # only data centers have accelerators
        "valuation",  # null without a capital market
        "fundamental_value",  # null without a capital market
        "return_on_invested_capital",  # null when invested capital <= $1
        "credit_spread",  # null without debt
        "valuation_to_fundamental",  # null for the investor sector, without a capital market
        "trend_follower_share",  # null for the investor sector, without a capital market
    },
    "markets": set(),
    "chain": {
        "valuation",  # null without a capital market
        "fundamental_value",  # null without a capital market
        "capex_to_revenue",  # null without end revenue
        "utilization",  # null without an installed fleet
        "valuation_to_fundamental",  # null without fundamental value or capital market
        "trend_follower_share",  # null without a capital market
        "investor_cash_share",  # null without a capital market
        "stranded_accelerators",  # null without a data-center sector
        "electricity_twh_per_year",  # null without a power market
        "consumer_surplus",  # null without an end_demand sector
        "tokens_per_newest_acc_hour_millions",  # null without live inference firms
        # null before generation g launches or with no live data center
        *(f"rental_usd_per_acc_hour_generation_{g}" for g in range(6)),
    },
}
"""Result columns whose value can be undefined (null); every other number must be finite."""

NON_NEGATIVE = {
    "sectors": {
        "revenue",
        "cost_of_goods",
        "depreciation",
        "opex",
        "interest",
        "capex",
        "equity_issued",
        "debt_drawn",
        "dividends",
        "debt",
        "equity_raised",
        "written_off",
        "defaults",
        "firms_alive",
        "capacity",
        "sold",
        "utilization",
        "stranded_accelerators",
        "valuation",
        "fundamental_value",
    },
    "markets": {"price", "quantity", "demand", "supply", "unfilled"},
    "chain": {"end_revenue", "chain_revenue", "chain_capex", "defaults", "valuation"},
}
"""Result columns that are never negative (amounts paid, quantities, prices, counts)."""


def check_state(model: SupplyChainModel) -> None:
    """Every float in every sector finite; every book and outcome finite and never negative."""
    step = model.step_index
    for sector in model.sectors.values():
        for field, value in vars(sector).items():
            if isinstance(value, np.ndarray | float) and np.asarray(value).dtype.kind == "f":
                assert np.isfinite(value).all(), f"step {step}: {sector.name}.{field} = {value}"
    for name in ("cash", "debt", "ebitda_smoothed", "book_value"):
        value = getattr(model.firms, name)
        assert np.isfinite(value).all(), f"step {step}: firms.{name} = {value}"
    for market in model.markets.values():
        book, outcome = market.book, market.outcome
        arrays = {
            field: getattr(book, field)
            for field in ("seller_price", "seller_capacity", "buyer_demand")
        }
        arrays.update(
            (field, getattr(outcome, field))
            for field in ("seller_sold", "seller_requested", "buyer_filled", "buyer_value")
        )
        for field, value in arrays.items():
            assert np.isfinite(value).all() and (value >= 0).all(), (
                f"step {step}: market {market.name}: {field} = {value}"
            )
        assert np.isfinite(outcome.price) and outcome.price >= 0, (market.name, outcome.price)


def check_tables(tables: dict) -> None:
    """Finite numbers everywhere, null only where undefined, never negative where it can't be;
    text columns (e.g. ``chain.binding_input``) null only where undefined."""
    for name, table in tables.items():
        for column in table.select_dtypes("number").columns:
            values = table[column].to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(values)
            if column not in NULLABLE.get(name, set()):
                assert not missing.any(), (
                    f"{name}.{column} is null in rows {np.flatnonzero(missing)}"
                )
            assert np.isfinite(values[~missing]).all(), f"{name}.{column} is infinite"
            if column in NON_NEGATIVE.get(name, set()):
                assert (values[~missing] >= 0).all(), f"{name}.{column} < 0: {values.min()}"
        for column in table.select_dtypes(exclude=["number", "bool"]).columns:  # text, labels
            missing = table[column].isna().to_numpy()
            if column not in NULLABLE.get(name, set()):
                assert not missing.any(), (
                    f"{name}.{column} is null in rows {np.flatnonzero(missing)}"
                )


def run_checked(
    overrides: list[str],
    steps: int | None = None,
    inject: dict[str, Any] | None = None,
    return_model: bool = False,
):
    """Run the baseline with ``overrides``, checking every number; return the tables.

    ``inject`` sets dotted keys in the validated experiment (bypassing validation) to test
    the arithmetic beyond the schema's range. With ``return_model``, return ``(tables,
    model)``. Numpy's floating-point warnings (an overflow,
    an invalid operation) are errors: a run that makes an inf or a NaN anywhere fails, even
    where a later step would hide it.
    """
    experiment = marketsim.load_experiment(BASELINE, overrides)
    for key, value in (inject or {}).items():
        *path, last = key.split(".")
        table = experiment.config
        for part in path:
            table = table[part]
        table[last] = value
    config = experiment.config["experiment"]
    model = SupplyChainModel(experiment, np.random.SeedSequence(config["seed"]))
    with warnings.catch_warnings(), np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(config["steps"] if steps is None else steps):
            model.step()
            check_state(model)
        tables = model.recorder.tables(0)
    check_tables(tables)
    return (tables, model) if return_model else tables


@pytest.fixture(scope="session")
def checked_run() -> Callable[..., dict]:
    """`run_checked`: run the baseline with overrides, every number checked on the way."""
    return run_checked
