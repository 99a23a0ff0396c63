"""Credit that can say no (marketsim.credit, marketsim.finance): pricing, limits, the Minsky
channel, refinancing, recovery at default, and firms paying out cash they do not need.

The pricing rule is tested as a function (Hypothesis: monotone in leverage, cover and
caution; the limit is the debt priced at the ceiling; finite for every input). The claims
about the economy are paired differences over 10 common-random-number replications
(`tests.economy`) of the shipped scenarios as shipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from economy import REPLICATIONS
from economy import assert_raises
from economy import per_replication
from economy import replications
from economy import sector_rows
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import marketsim
from marketsim.credit import MAX_CAUTION
from marketsim.credit import MAX_CREDIT_USE
from marketsim.credit import Lenders
from marketsim.credit import credit_limit
from marketsim.credit import credit_spread
from marketsim.finance import FINANCE_TABLE
from marketsim.finance import borrowing_limit
from marketsim.model import SupplyChainModel

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SHIPPED = sorted(path.stem for path in EXPERIMENTS.glob("*.toml"))
PARAMS = {key: param.default for key, param in FINANCE_TABLE.params.items()}
CASH_MONTHS_OF_REVENUE = 12.0
"""Most cash a revenue-earning sector may end with, in months of its last year's revenue."""

ratios = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)
any_float = st.floats(0.0, 1e300, allow_nan=False, allow_infinity=False)
cautions = st.floats(1.0 / MAX_CAUTION, MAX_CAUTION)
years = st.floats(0.0, 100.0)


def spread(leverage, cover, caution=1.0, years_of_ebitda=4.0, **overrides):
    return float(credit_spread(leverage, cover, caution, years_of_ebitda, PARAMS | overrides))


# -- the pricing rule --------------------------------------------------------------------------


def test_spread_rises_with_leverage_and_falls_with_cover():
    assert spread(0.1, 10.0) < spread(0.3, 10.0) < spread(0.5, 10.0)
    assert spread(0.2, 1.5) > spread(0.2, 3.0) > spread(0.2, 8.0)
    assert spread(0.0, 1e100) == pytest.approx(PARAMS["base_spread_per_year"])


def test_spread_without_ebitda_is_the_distressed_cap():
    base, ceiling = PARAMS["base_spread_per_year"], PARAMS["max_spread_per_year"]
    assert spread(0.1, 0.0) == pytest.approx(base + MAX_CREDIT_USE * (ceiling - base))


@settings(max_examples=300, deadline=None)
@given(ratios, ratios, ratios, cautions, years)
def test_spread_is_monotone_in_leverage(low, high, cover, caution, years_of_ebitda):
    low, high = min(low, high), max(low, high)
    assert spread(low, cover, caution, years_of_ebitda) <= spread(
        high, cover, caution, years_of_ebitda
    )


@settings(max_examples=300, deadline=None)
@given(ratios, ratios, ratios, cautions, years)
def test_spread_is_monotone_in_cover(leverage, low, high, caution, years_of_ebitda):
    low, high = min(low, high), max(low, high)
    assert spread(leverage, low, caution, years_of_ebitda) >= spread(
        leverage, high, caution, years_of_ebitda
    )


@settings(max_examples=300, deadline=None)
@given(ratios, ratios, cautions, cautions)
def test_spread_rises_with_caution(leverage, cover, first, second):
    calm, wary = min(first, second), max(first, second)
    assert spread(leverage, cover, calm) <= spread(leverage, cover, wary)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(1e3, 1e13),
    st.floats(1e3, 1e11),
    st.floats(0.01, 0.5),
    cautions,
    st.floats(0.5, 20.0),
)
def test_the_limit_is_the_debt_priced_at_the_ceiling(
    collateral, ebitda, rate, caution, years_of_ebitda
):
    """Underwriting follows the pricing rule: at the limit, the spread is max_spread."""
    limit = float(credit_limit(collateral, ebitda, rate, caution, years_of_ebitda, PARAMS))
    assert limit > 0
    cover = 12 * ebitda / (limit * rate)
    priced = spread(limit / collateral, cover, caution, years_of_ebitda)
    assert priced == pytest.approx(PARAMS["max_spread_per_year"], rel=1e-9)


def test_the_limit_shrinks_with_caution_collateral_and_cover():
    def limit(collateral=100.0, ebitda=2.0, caution=1.0):
        return float(credit_limit(collateral, ebitda, 0.08, caution, 4.0, PARAMS))

    assert limit(caution=2.0) == pytest.approx(limit() / 2)
    assert limit(collateral=50.0) < limit()
    assert limit(ebitda=1.0) < limit()
    assert limit(ebitda=0.0) == 0.0
    assert limit(ebitda=-5.0) == 0.0
    assert float(credit_limit(100.0, 2.0, 0.08, 1.0, 4.0, PARAMS | {"max_debt_to_assets": 0})) == 0


@settings(max_examples=300, deadline=None)
@given(any_float, any_float, any_float, st.floats(0.0, 1.0), cautions, years)
def test_pricing_and_limits_are_finite_for_any_input(
    collateral, ebitda, debt, rate, caution, years_of_ebitda
):
    limit = credit_limit(collateral, ebitda, rate, caution, years_of_ebitda, PARAMS)
    assert np.isfinite(limit) and limit >= 0
    priced = spread(debt, ebitda, caution, years_of_ebitda)
    assert np.isfinite(priced) and priced >= PARAMS["base_spread_per_year"]


def test_lenders_grow_cautious_after_losses_and_relax_in_calm_times():
    lenders = Lenders(PARAMS, np.ones(1))
    assert lenders.caution == 1.0
    lenders.losses = 0.05e12  # a month losing 5% of a $1T book
    lenders.remember(1e12, PARAMS)
    assert lenders.caution > 1.5
    wary = lenders.caution
    for _ in range(60):
        lenders.begin_step()
        lenders.remember(1e12, PARAMS)
    assert lenders.caution < 1.0 < wary
    lenders.losses = 1e300
    lenders.remember(0.0, PARAMS)
    assert lenders.caution == pytest.approx(MAX_CAUTION)


# -- refinancing --------------------------------------------------------------------------------


def test_lenders_refuse_to_roll_over_debt_above_the_limit():
    """After a credit crunch, firms over their limit repay maturing debt and draw nothing."""
    experiment = marketsim.load_experiment(EXPERIMENTS / "baseline.toml", [])
    model = SupplyChainModel(experiment, 7)
    for _ in range(36):
        model.step()
    firms = model.firms
    model.lenders.caution = MAX_CAUTION
    model.lenders.loss_rate = 1.0  # a remembered crisis: caution stays up this step
    over = firms.alive & (firms.debt > borrowing_limit(model)) & (firms.debt > 0)
    assert over.any()
    before = firms.debt.copy()
    model.step()
    still = over & firms.alive
    assert (firms.debt_drawn[still] == 0).all()
    assert (firms.debt[still] < before[still]).all()


# -- the economy -------------------------------------------------------------------------------


def peak_caution(results: marketsim.Results) -> float:
    return float(results.chain["lender_caution"].max())


def total_credit_losses(results: marketsim.Results) -> float:
    return float(results.chain["credit_losses"].sum())


def test_bubble_takes_more_credit_losses_and_lenders_tighten():
    """The bubble's default wave costs lenders more, and their caution rises with it."""
    assert_raises("bubble", "no_bubble", total_credit_losses, "credit losses")
    assert_raises("bubble", "no_bubble", peak_caution, "peak lender caution")


def test_caution_rises_in_the_month_of_the_largest_loss_rate():
    """Minsky: in every bubble replication with losses, lenders' caution rises in the month
    their remembered loss rate jumps most (unless it was already at its cap).

    The month is chosen by the rise of the loss *rate* (losses over the loan book), not of
    dollar losses: a large loss on a larger book can lower the rate lenders remember.
    """
    results = replications("bubble")
    checked = 0
    for _, chain in results.chain.groupby("replication"):
        chain = chain.sort_values("step").reset_index(drop=True)
        jump = chain["lender_loss_rate"].diff()
        worst = int(jump.idxmax()) if jump.notna().any() else 0
        if worst == 0 or jump.iloc[worst] <= 0:
            continue
        checked += 1
        after, before = chain["lender_caution"].iloc[[worst, worst - 1]]
        assert after > before or after == pytest.approx(MAX_CAUTION)  # or already at its cap
    assert checked >= REPLICATIONS // 2


def test_losses_and_recovery_add_up():
    """The chain's credit losses per step sum to the sectors' cumulative credit losses, and
    lenders recover something from defaulted firms' assets."""
    results = replications("bubble")
    last = results.sectors[results.sectors["step"] == results.sectors["step"].max()]
    by_replication = last.groupby("replication")["credit_losses"].sum()
    chain = results.chain.groupby("replication")[["credit_losses", "credit_recovery"]].sum()
    np.testing.assert_allclose(by_replication, chain["credit_losses"], rtol=1e-9)
    assert (chain["credit_recovery"] > 0).sum() >= REPLICATIONS // 2


def peak_datacenter_debt_to_ebitda(results: marketsim.Results) -> float:
    """Peak over the run of data centers' debt / their EBITDA over the last 12 months (years)."""
    rows = sector_rows(results, "datacenter").sort_values("step")
    ebitda = rows["revenue"] - rows["cost_of_goods"] + rows["depreciation"] - rows["opex"]
    trailing = ebitda.rolling(12).sum().to_numpy()
    debt = rows["debt"].to_numpy()
    positive = trailing > 0
    if (debt[~positive & np.isfinite(trailing)] > 0).any():
        return np.inf  # debt with no trailing EBITDA: unbounded
    return float(np.max(debt[positive] / trailing[positive], initial=0.0))


def test_bubble_datacenter_debt_is_bounded_by_lenders():
    """In bubble, data centers' debt stays within what the pricing rule lends: at most
    max_debt_to_ebitda (6) years of EBITDA at the ceiling rate, i.e. 6 x (rate at the ceiling
    / lowest rate) = 10 years. Measured (seed 20261129, 29 Nov 2026 tree): 4.7-5.3 years at
    the peak and $0-0.6T of debt at month 119, against 5.1-5.9 years and $0.9-2.0T with the
    former fixed-rate lending."""
    peaks = per_replication(replications("bubble"), peak_datacenter_debt_to_ebitda)
    ceiling = PARAMS["interest_rate_per_year"] + PARAMS["max_spread_per_year"]
    lowest = PARAMS["interest_rate_per_year"] + PARAMS["base_spread_per_year"]
    bound = 6.0 * ceiling / lowest
    assert (peaks < bound).all(), f"peak debt / EBITDA (years) by replication: {peaks}"


@pytest.mark.parametrize("scenario", SHIPPED)
def test_firms_pay_out_cash_they_do_not_need(scenario):
    """Over every shipped scenario, each revenue-earning sector ends with at most about a
    year of revenue in cash (measured: at most 2.6 months)."""
    results = replications(scenario)
    sectors = results.sectors
    end = sectors["step"].max()
    last_year = sectors[sectors["step"] > end - 12]
    revenue = last_year.groupby(["replication", "sector"])["revenue"].mean()
    cash = sectors[sectors["step"] == end].set_index(["replication", "sector"])["cash"]
    earning = revenue[revenue > 0].index
    months = cash[earning] / revenue[earning]
    assert (months <= CASH_MONTHS_OF_REVENUE).all(), months[months > CASH_MONTHS_OF_REVENUE]
