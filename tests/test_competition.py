"""Margins from market structure and scarcity, and who holds the scarcity rent (issue 8).

Each claim is a paired difference over `economy.REPLICATIONS` replications with common
random numbers whose 95% interval excludes zero. Measures are ten-year totals of the tables'
flows, so a sector's margin and value share weigh each month by its gross profit.
"""

from __future__ import annotations

import tomllib

import numpy as np
from economy import EXPERIMENTS
from economy import assert_lowers
from economy import assert_raises
from economy import market_rows
from economy import sector_rows

_BASELINE_CHIPS = tomllib.loads((EXPERIMENTS / "baseline.toml").read_text("utf-8"))["agents"][
    "chip_vendor"
]
MORE_CHIP_VENDORS = (
    f"agents.chip_vendor.count={2 * _BASELINE_CHIPS['count']}",
    f"agents.chip_vendor.capacity_per_month={_BASELINE_CHIPS['capacity_per_month'] / 2}",
    f"graph.degree_by_good={{accelerators = {2 * _BASELINE_CHIPS['count']}}}",
    "output.firm_level=true",
)
"""Twice the chip vendors with the same total capacity (the leader keeps its capacity share),
every data center linked to every vendor as in the baseline (whose three vendors all reach
every data center). Without the last setting each data center links to three of the six, and
which three (one draw per root seed, shared by the replications) decides the result."""


def gross_profit(results, sectors) -> float:
    """Ten-year gross profit of ``sectors`` (USD)."""
    rows = results.sectors[results.sectors["sector"].isin(sectors)]
    return float((rows["revenue"] - rows["cost_of_goods"]).sum())


def value_share(*sectors: str):
    """Ten-year share of the chain's gross profit kept by ``sectors`` (0..1)."""

    def measure(results) -> float:
        every = results.sectors["sector"].unique()
        total = gross_profit(results, every)
        return gross_profit(results, sectors) / total if total > 0 else 0.0

    return measure


def ten_year_gross_margin(sector: str):
    """Ten-year gross margin of one sector: gross profit / revenue (share)."""

    def measure(results) -> float:
        rows = sector_rows(results, sector)
        revenue = float(rows["revenue"].sum())
        return gross_profit(results, [sector]) / revenue if revenue > 0 else 0.0

    return measure


def smaller_incumbents_margin(results) -> float:
    """Ten-year gross margin of the baseline's incumbents other than the leader
    (``chip_vendor:1`` and ``chip_vendor:2``; share)."""
    firms = results.tables["firms"]
    rows = firms[firms["firm"].isin(["chip_vendor:1", "chip_vendor:2"])]
    revenue = float(rows["revenue"].sum())
    return float((rows["revenue"] - rows["cost_of_goods"]).sum()) / revenue if revenue else 0.0


def accelerator_price(results) -> float:
    """Ten-year volume-weighted accelerator price (USD per accelerator)."""
    rows = market_rows(results, "accelerators")
    return float((rows["price"] * rows["quantity"]).sum() / rows["quantity"].sum())


def test_power_crunch_gives_the_rent_to_the_holders_of_powered_capacity():
    """Power crunch vs baseline: utilities and data centers together keep more of the chain's
    gross profit (the compute price rises to clear the powered fleet; power is priced at
    scarcity), not the inference firms."""
    assert_raises(
        "power_crunch", "baseline", value_share("utility", "datacenter"), "utility + datacenter"
    )


def test_regulated_tariffs_take_the_power_rent_from_utilities():
    """In a power crunch, regulated tariffs (cost of service, load rationed) leave utilities a
    smaller share of the chain's gross profit than market scarcity pricing.

    Where the rent goes instead is not claimed: the data centers' share rises by about 1.5
    points but its interval includes zero at 10 replications (docs/model.md section 1.2)."""
    regulated = ("power_crunch", "agents.utility.tariff_regime=regulated")
    assert_lowers(regulated, "power_crunch", value_share("utility"), "utility share")


def test_chip_crunch_raises_chip_vendors_gross_margin():
    """Slow foundry capacity growth: chip vendors' gross margin rises against baseline."""
    assert_raises(
        "chip_crunch", "baseline", ten_year_gross_margin("chip_vendor"), "chip gross margin"
    )


def test_more_competitors_lower_prices_and_the_smaller_incumbents_margin():
    """Six chip vendors with the baseline's total capacity, every data center reaching every
    vendor: the accelerator price falls and the smaller incumbents' gross margin falls (their
    shares, hence their Lerner markups, are smaller).

    Not claimed: the incumbents' margin taken together. The leader keeps its capacity share,
    so its markup does not fall, and its margin rose by 2-4 points on six root seeds (not
    decomposed); with the two smaller incumbents at half their capacity, the three together
    weigh the leader more, and their combined margin rose (docs/model.md section 1.2). That
    entrants lower the incumbents' margin is tested in tests/test_entry.py."""
    more = ("baseline", *MORE_CHIP_VENDORS)
    base = ("baseline", "output.firm_level=true")
    assert_lowers(more, base, accelerator_price, "accelerator price")
    assert_lowers(more, base, smaller_incumbents_margin, "smaller incumbents' gross margin")


def test_markup_falls_with_share():
    """A vendor's target price is its cost over 1 - share / elasticity: a smaller share, a
    lower price (the channel through which entrants lower incumbents' margins)."""
    from marketsim.markets.kernels import lerner_scarcity_price

    cost = np.full(3, 6_900.0)
    shares = np.array([0.8, 0.4, 0.1])
    slack = np.zeros(3)
    target = lerner_scarcity_price(cost, shares, 1.0, 0.9, cost, slack, np.ones(3), 0.5)
    assert target[0] > target[1] > target[2]
    np.testing.assert_allclose(target, cost / (1.0 - shares))
