"""Accelerator generations: the schedule, the fleet by generation, obsolescence and retirement.

Mechanism tests check the rules on constructed states; economic claims are paired differences
over common-random-number replications (`tests/economy.py`) on short baseline runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from economy import assert_lowers
from economy import assert_raises
from economy import market_rows
from economy import sector_rows
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import marketsim
from marketsim.model import SupplyChainModel
from marketsim.sectors.fleet import remaining_book_share
from marketsim.sectors.fleet import run_newest_first
from marketsim.sectors.fleet import uneconomic
from marketsim.technology import MAX_FACTOR
from marketsim.technology import TECHNOLOGY_TABLE
from marketsim.technology import GenerationSchedule

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"
LAUNCH = TECHNOLOGY_TABLE.params["first_launch_month"].default
SHORT = "experiment.steps=36"
NO_PROGRESS = (
    "technology.performance_per_generation=1",
    "technology.power_per_generation=1",
    "technology.price_per_generation=1",
)
FAST_PROGRESS = (
    "technology.generation_months=6",
    "technology.first_launch_month=3",
    "technology.performance_per_generation=10",
    "technology.power_per_generation=1",
    "technology.price_per_generation=1",
)

finite = st.floats(0.0, 1e12, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-300, 1e6, allow_nan=False, allow_infinity=False)


def model_after(steps: int, *overrides: str) -> SupplyChainModel:
    """A baseline model (with overrides) after ``steps`` steps."""
    built = SupplyChainModel(
        marketsim.load_experiment(BASELINE, list(overrides)), np.random.SeedSequence(3)
    )
    for _ in range(steps):
        built.step()
    return built


# -- the schedule -------------------------------------------------------------------------


def test_newer_generations_hold_more_performance_per_dollar_and_per_watt():
    """Defaults (public specs): each generation beats the last per dollar and per watt."""
    schedule = GenerationSchedule()
    generations = np.arange(8)
    per_dollar = schedule.performance_of(generations) / schedule.price_of(generations)
    per_watt = schedule.performance_of(generations) / schedule.power_of(generations)
    assert np.all(np.diff(per_dollar) > 0)
    assert np.all(np.diff(per_watt) > 0)
    assert schedule.generation_at(LAUNCH - 1) == 0
    assert schedule.generation_at(LAUNCH) == 1
    assert schedule.generation_at(LAUNCH + schedule.generation_months) == 2


@settings(max_examples=200, deadline=None)
@given(
    months=st.integers(1, 1200),
    first=st.integers(0, 100_000),
    ratio=st.floats(0.01, 100),
    step=st.integers(0, 10**6),
)
def test_schedule_factors_stay_finite_and_generations_only_advance(months, first, ratio, step):
    """Any valid schedule: factors in [1/MAX_FACTOR, MAX_FACTOR]; generations never go back."""
    schedule = GenerationSchedule(months, first, ratio, ratio, ratio)
    generation = schedule.generation_at(step)
    assert generation <= schedule.generation_at(step + 1)
    factor = schedule.performance_of(generation)
    assert 1.0 / MAX_FACTOR <= factor <= MAX_FACTOR


# -- which accelerators run, which retire --------------------------------------------------


def test_power_runs_the_newest_generation_first():
    """Half the power an old + new fleet needs runs the new accelerators, not the old."""
    units = np.array([[100.0, 100.0]])  # slot 0 old, slot 1 new
    mw = np.array([1.0, 2.0])
    order = np.array([1, 0])
    running = run_newest_first(units, mw, order, np.array([1e9]), np.array([200.0]))
    assert np.allclose(running, [[0.0, 100.0]])
    running = run_newest_first(units, mw, order, np.array([150.0]), np.array([1e9]))
    assert np.allclose(running, [[50.0, 100.0]])


@settings(max_examples=200, deadline=None)
@given(
    units=st.lists(finite, min_size=1, max_size=6),
    mw=st.lists(positive, min_size=6, max_size=6),
    kits=finite,
    power=finite,
)
def test_running_accelerators_respect_every_input(units, mw, kits, power):
    """Running units: within each vintage, within the kits, within the power."""
    units = np.array([units])
    mw = np.array(mw[: units.shape[1]])
    order = np.arange(units.shape[1])[::-1]
    running = run_newest_first(units, mw, order, np.array([kits]), np.array([power]))
    assert np.all(np.isfinite(running))
    assert np.all((running >= 0) & (running <= units))
    assert running.sum() <= kits * (1 + 1e-9) + 1e-9
    assert (running * mw).sum() <= power * (1 + 1e-9) + 1e-300


@settings(max_examples=200, deadline=None)
@given(price=finite, performance=positive, mw=positive, power=finite, site=finite)
def test_a_vintage_is_uneconomic_exactly_when_its_rental_value_is_below_its_running_cost(
    price, performance, mw, power, site
):
    """Retire iff price x performance x availability < mw x (power + site) / 730."""
    value = price * performance * 0.95
    cost = mw * (power + site) / 730.0
    retire = uneconomic(
        np.array([[1.0]]),
        np.array([price]),
        np.array([performance]),
        np.array([mw]),
        0.95,
        power,
        site,
    )
    assert bool(retire[0, 0]) == (value < cost)
    empty = uneconomic(
        np.array([[0.0]]),
        np.array([price]),
        np.array([performance]),
        np.array([mw]),
        0.95,
        power,
        site,
    )
    assert not empty.any()


def test_remaining_book_share_counts_down_to_retirement():
    """Slot s at month t has ((s - t) mod T) / T of its cost left; the retiring slot none."""
    share = remaining_book_share(5, 7)
    assert np.allclose(share, [3 / 5, 4 / 5, 0.0, 1 / 5, 2 / 5])


def test_operators_retire_early_what_no_longer_pays_its_running_cost_and_nothing_else():
    """A price below generation 0's running cost retires (and writes down) generation 0 only."""
    model = model_after(LAUNCH + 6)
    datacenter = model.sectors["datacenter"]
    assert datacenter.fleet_by_generation(1).sum() > 0
    mw = datacenter.vintage_mw
    running_cost = (
        mw
        * (
            datacenter.power_price_usd_per_mwh * datacenter.power_billed_hours
            + datacenter.params["site_opex_usd_per_mw_month"]
        )
        / 730.0
    )
    old = datacenter.vintage_generation == 0
    # operator 0: a price at which generation 0 loses money per hour and generation 1 does not
    breakeven_old = running_cost[old].max() / datacenter.params["availability"]
    datacenter.price[:] = 1e3
    datacenter.price[0] = 0.99 * breakeven_old
    old_units = datacenter.vintage_units[:, old].sum(axis=1)
    new_units = datacenter.vintage_units[:, ~old].sum(axis=1)
    book = datacenter.it_book.copy()
    step = LAUNCH + 6
    share = remaining_book_share(datacenter.life, step)
    expected_writedown = (datacenter.vintage_cost[0] * share)[old].sum()
    datacenter._retire_uneconomic(step)
    assert np.isclose(datacenter.retired_early[0], old_units[0])
    assert np.all(datacenter.retired_early[1:] == 0)
    assert np.allclose(datacenter.vintage_units[:, ~old].sum(axis=1), new_units)
    assert np.isclose(datacenter.writedown[0], min(expected_writedown, book[0]))
    assert np.isclose(datacenter.it_book[0], book[0] - datacenter.writedown[0])
    model.ledger.check(model._physical_stocks())


# -- economic claims (paired, 10 replications) ---------------------------------------------


def _price_jump_at_launch(results) -> float:
    price = market_rows(results, "accelerators").set_index("step")["price"]
    return price[LAUNCH] - price[LAUNCH - 1]


def test_a_generation_launch_steps_up_the_accelerator_price():
    """The month a generation launches the accelerator price jumps (paired vs no price step)."""
    assert_raises(
        ("baseline", SHORT),
        ("baseline", SHORT, "technology.price_per_generation=1"),
        _price_jump_at_launch,
        "accelerator price step at launch",
    )


def _generation0_rental(results) -> float:
    chain = results.chain.set_index("step")
    return chain.loc[LAUNCH + 6 : LAUNCH + 18, "rental_usd_per_acc_hour_generation_0"].mean()


def test_an_old_generations_rental_value_falls_when_a_better_one_arrives():
    """Generation 0's rental value per hour, a year after launch, is below a world without
    progress (the compute price follows the newest generation's full cost)."""
    assert_lowers(
        ("baseline", SHORT),
        ("baseline", SHORT, *NO_PROGRESS),
        _generation0_rental,
        "generation-0 rental value",
    )


def _retired_early(results) -> float:
    return results.chain["accelerators_retired_early"].sum()


def test_fast_progress_retires_accelerators_before_their_accounting_life():
    """Tenfold generations every six months make old accelerators uneconomic: they retire
    early (every step of these runs passed the ledger and step-guard checks)."""
    assert_raises(
        ("baseline", SHORT, *FAST_PROGRESS),
        ("baseline", SHORT, *NO_PROGRESS),
        _retired_early,
        "accelerators retired early",
    )


def _datacenter_first_half_year_net_income(results) -> float:
    rows = sector_rows(results, "datacenter")
    return rows[rows["step"] < 6]["net_income"].sum()


def test_a_longer_accounting_life_raises_reported_earnings_early():
    """The depreciation debate: 72 rather than 60 months of useful life lowers depreciation
    and so raises data centers' reported net income in the first half year."""
    assert_raises(
        ("baseline", SHORT, "agents.datacenter.useful_life_months=72"),
        ("baseline", SHORT),
        _datacenter_first_half_year_net_income,
        "data-center net income, months 0-5",
    )
