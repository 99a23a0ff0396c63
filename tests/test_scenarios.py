"""The shipped scenarios' claims, each a paired difference over 10 replications.

Every directional claim compares two scenarios run with common random numbers
(`tests.economy`: replication ``r`` of both gets the same spawned seed) and holds when the
95% t interval of the mean paired difference excludes zero on the claimed side. A claim
about one scenario (the bullwhip) is a one-sample interval over its replications. No
constant was tuned to these tests: they run the experiment files as shipped, with only the
seed, the replication count and (for Jevons) the elasticity the question is about set.
"""

from __future__ import annotations

import numpy as np
import pytest
from economy import REPLICATIONS
from economy import assert_lowers
from economy import assert_raises
from economy import market_rows
from economy import per_replication
from economy import replications
from economy import sector_rows

from marketsim.analysis.stats import t_interval

SCENARIOS = (
    "baseline",
    "bubble",
    "no_bubble",
    "power_crunch",
    "efficiency_gain",
    "chip_crunch",
    "demand_stall",
)
AFTER_EFFICIENCY_GAIN = 24
"""The month efficiency_gain's software gain arrives (experiments/efficiency_gain.toml)."""
BULLWHIP_RATIO = 10.0
"""Accelerator orders' relative variance is claimed to exceed this multiple of token demand's."""
PRICE_CEILINGS = {
    "accelerators": 2e5,
    "network_kits": 5e4,
    "power": 5e3,
    "compute": 50,
    "tokens": 20,
}
"""Prices no shipped scenario should reach (USD per unit of each good): a sanity bound."""


def relative_variance(series: np.ndarray, window: int = 13) -> float:
    """Variance around a centred moving average, over the trend's mean square (unit-free)."""
    trend = np.convolve(series, np.ones(window) / window, mode="valid")
    core = series[window // 2 : len(series) - window // 2]
    return float(np.mean((core - trend) ** 2) / np.mean(trend**2))


# -- measures of one replication --------------------------------------------------------


def peak_valuation_ratio(results) -> float:
    return float(results.chain["valuation_to_fundamental"].max())


def peak_chain_capex(results) -> float:
    """Peak of the chain's capex over any 12 consecutive months (USD per year).

    A year rather than a month: single months swing with lumpy orders in both scenarios.
    """
    return float(results.chain["chain_capex"].rolling(12).sum().max())


def defaults_by_month_71(results) -> float:
    """Firms defaulted in the first six years (the boom and its bust)."""
    chain = results.chain
    return float(chain[chain["step"] == 71]["defaults"].iloc[0])


def mean_power_price(results) -> float:
    return float(market_rows(results, "power")["price"].mean())


def utility_gross_margin(results) -> float:
    return float(sector_rows(results, "utility")["gross_margin"].mean())


def mean_stranded_share(results) -> float:
    """Mean share of the installed accelerators (all generations) that sit stranded."""
    chain = results.chain
    fleet = chain[[c for c in chain.columns if c.startswith("accelerators_generation_")]].sum(
        axis=1
    )
    return float((chain["stranded_accelerators"] / fleet.clip(lower=1.0)).mean())


def token_price_after_gain(results) -> float:
    tokens = market_rows(results, "tokens")
    return float(tokens.query(f"step >= {AFTER_EFFICIENCY_GAIN}")["price"].mean())


def log_bullwhip_excess(results) -> float:
    """log(relative variance of accelerator orders / that of token demand / BULLWHIP_RATIO)."""
    orders = market_rows(results, "accelerators")["demand"].to_numpy()
    tokens = market_rows(results, "tokens")["demand"].to_numpy()
    return float(np.log(relative_variance(orders) / relative_variance(tokens) / BULLWHIP_RATIO))


# -- the claims -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_runs_120_steps_clean(scenario):
    """Every shipped scenario, every replication: 120 steps, finite numbers, prices bounded."""
    results = replications(scenario)
    steps = results.chain.groupby("replication")["step"].apply(list)
    assert len(steps) == REPLICATIONS
    assert all(s == list(range(120)) for s in steps)
    for name, table in results.tables.items():
        numbers = table.select_dtypes("number")
        assert np.isfinite(numbers.to_numpy(dtype=float)[~numbers.isna().to_numpy()]).all(), name
    assert (results.markets["price"] > 0).all()
    for good, ceiling in PRICE_CEILINGS.items():
        assert market_rows(results, good)["price"].max() < ceiling, good
    # the ledger is checked inside every step; a run that finishes balanced every step
    assert results.manifest["steps"] == 120


def test_bubble_inflates_valuations_more_than_no_bubble():
    assert_raises("bubble", "no_bubble", peak_valuation_ratio, "peak valuation/fundamental")


def test_no_bubble_stays_near_fundamentals():
    """no_bubble: valuation/fundamental within 25% of 1 in every month of every replication."""
    ratio = replications("no_bubble").chain["valuation_to_fundamental"]
    assert ratio.between(0.75, 1.25).all(), (ratio.min(), ratio.max())


def test_bubble_builds_more_at_its_peak():
    assert_raises("bubble", "no_bubble", peak_chain_capex, "peak 12-month chain capex")


def test_bubble_defaults_more():
    """The bubble brings defaults forward: more by month 71, over replications that each draw
    their own supply graph (a count of a few firms: `economy.GRAPH_REPLICATIONS`). By month
    119 no_bubble's own shake-out narrows the gap (docs/model.md 1.2)."""
    assert_raises(
        "bubble", "no_bubble", defaults_by_month_71, "defaults by month 71", over_graphs=True
    )


def test_power_crunch_raises_power_prices():
    assert_raises("power_crunch", "baseline", mean_power_price, "mean power price")


def test_power_crunch_raises_the_utility_margin():
    assert_raises("power_crunch", "baseline", utility_gross_margin, "utility gross margin")


def test_power_crunch_strands_a_larger_share_of_the_fleet():
    """A larger share, not a larger number: the baseline's fleet grows faster (cheaper power)."""
    assert_raises("power_crunch", "baseline", mean_stranded_share, "stranded share of the fleet")


def test_efficiency_gain_lowers_token_prices():
    assert_lowers(
        "efficiency_gain", "baseline", token_price_after_gain, "token price from month 24"
    )


def test_bullwhip_orders_swing_more_than_end_demand():
    """Baseline: accelerator orders' relative variance is over 10x end token demand's."""
    excess = per_replication(replications("baseline"), log_bullwhip_excess)
    low, high = t_interval(
        np.array([excess.mean()]), np.array([excess.std(ddof=1)]), np.array([len(excess)])
    )
    assert low[0] > 0, f"log excess over {BULLWHIP_RATIO}x: {excess.mean():.4g} [{low[0]:.4g}]"
