"""Extreme but valid values: the issue's reproducers and each risky parameter at its bounds.

Every run goes through `conftest.run_checked`: no exception, no numpy overflow or invalid
operation, every state, book and result finite (null only where undefined). Values are read
from the schemas, so the tests follow the documented range as it changes: a reproducer whose
value now lies outside it runs at the nearest valid value, and again with the original value
written into the validated experiment (the arithmetic must hold beyond the range too).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from marketsim.experiment import collect_components
from marketsim.plugins import plugin_manager
from marketsim.schema import Param
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import QUOTIENT_CAP
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.inference import MAX_TOKENS_PER_ACC_HOUR_MILLIONS
from marketsim.sectors.investor import MAX_VALUATION_RATIO

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"

SMALL = [
    f"agents.{name}.count=1"
    for name in ("chip_vendor", "network_vendor", "utility", "datacenter", "inference")
] + ["agents.end_demand.count=2", "agents.investor.count=1"]
"""A small chain: one firm per sector (two customer segments), for quick long runs."""


@cache
def param(key: str) -> Param:
    """The `Param` of a dotted key such as ``agents.investor.inflow_sensitivity``."""
    registry = collect_components(plugin_manager()).registry()
    *table, name = key.split(".")
    if table[0] == "agents":
        return registry.sector_tables[table[1]].params[name]
    return registry.tables[table[0]].params[name]


def edge(key: str, side: str):
    """The smallest (``side="low"``) or largest valid value of a parameter.

    An exclusive bound gives the float next to it (5e-324 for ``> 0``); an int's exclusive
    bound the next int.
    """
    p = param(key)
    inclusive, exclusive = (p.ge, p.gt) if side == "low" else (p.le, p.lt)
    toward = math.inf if side == "low" else -math.inf
    if inclusive is not None:
        return p.kind(inclusive)
    assert exclusive is not None, f"{key} has no {side} bound"
    if p.kind is int:
        return int(exclusive) + (1 if side == "low" else -1)
    return math.nextafter(float(exclusive), toward)


def nearest_valid(key: str, value):
    """``value`` moved into the parameter's documented range."""
    low, high = edge(key, "low"), edge(key, "high")
    return min(max(value, low), high)


def overrides_for(values: dict) -> list[str]:
    return [f"{key}={value!r}" for key, value in values.items()]


# -- the reproducers ------------------------------------------------------------------

REPRODUCERS = {
    "valuation_feedback_overflow": {  # exp/power overflow in the capital market
        "agents.investor.inflow_sensitivity": 30.01,
        "agents.investor.trend_coefficient": 4.39,
        "agents.investor.fundamentalist_cost": 4.30,
    },
    "collateral_overflow": {"finance.collateral_sensitivity": 1e100},
    "software_productivity_nan": {"agents.inference.software_productivity": 1e50},
    "huge_asset_life": {"agents.utility.asset_life_months": 2**63 - 1},
}


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducer_runs_clean_at_the_nearest_valid_value(name, checked_run):
    """The issue's failing values, moved into the documented range, run 120 steps clean."""
    values = {key: nearest_valid(key, value) for key, value in REPRODUCERS[name].items()}
    checked_run(overrides_for(values))


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducer_arithmetic_holds_beyond_the_range(name, checked_run):
    """The original values, written past validation, still give finite runs (small chain)."""
    checked_run(SMALL, inject=REPRODUCERS[name])


def test_runaway_beliefs_stop_at_the_valuation_ceiling(checked_run):
    """Trend followers who always win (g n > R) drive x to a bound, not to inf or NaN."""
    values = {
        "agents.investor.trend_coefficient": edge("agents.investor.trend_coefficient", "high"),
        "agents.investor.fundamentalist_cost": edge("agents.investor.fundamentalist_cost", "high"),
        "agents.investor.trend_bias": edge("agents.investor.trend_bias", "high"),
        "agents.investor.inflow_sensitivity": edge("agents.investor.inflow_sensitivity", "high"),
    }
    chain = checked_run([*SMALL, *overrides_for(values)])["chain"]
    assert chain["valuation_to_fundamental"].max() == pytest.approx(MAX_VALUATION_RATIO)


def test_software_productivity_stops_at_the_physical_ceiling(checked_run):
    """Compounding efficiency stops at the Landauer-scale ceiling instead of overflowing.

    With efficiency up 1e49-fold a month, compute demand all but vanishes (1e-12
    accelerator-hours serve the whole market) and data centers may fail: economics, not
    arithmetic; every number stays finite.
    """
    _, model = checked_run(
        [*SMALL, "experiment.steps=12", "agents.inference.software_spend_share=0.9"],
        inject={"agents.inference.software_productivity": 1e50},
        return_model=True,
    )
    assert (model.sectors["inference"].efficiency == MAX_TOKENS_PER_ACC_HOUR_MILLIONS).all()


# -- each risky parameter at its bounds ---------------------------------------------------------

EDGES = [
    ("agents.investor.inflow_sensitivity", "high"),
    ("agents.investor.trend_coefficient", "high"),
    ("agents.investor.intensity_of_choice", "high"),
    ("agents.investor.gross_return", "low"),
    ("agents.investor.valuation_floor", "low"),
    ("agents.investor.discount_rate_per_year", "low", "agents.investor.long_run_growth_per_year=0"),
    ("agents.investor.initial_deviation", "high"),
    ("finance.collateral_sensitivity", "high"),
    ("finance.max_debt_to_assets", "high"),
    ("finance.interest_rate_per_year", "high"),
    ("finance.debt_term_months", "low"),
    ("agents.datacenter.valuation_sensitivity", "high"),
    ("agents.datacenter.price_response", "high"),
    ("agents.datacenter.kw_per_accelerator", "low"),
    ("agents.datacenter.kw_per_accelerator", "high"),
    ("agents.datacenter.availability", "low"),
    ("agents.datacenter.target_utilization", "low"),
    ("agents.datacenter.kits_per_accelerator", "low"),
    ("agents.datacenter.demand_optimism", "high"),
    ("agents.datacenter.max_growth_per_month", "high"),
    ("agents.datacenter.useful_life_months", "low"),
    ("agents.inference.software_productivity", "high"),
    ("agents.inference.tokens_per_acc_hour_millions", "low"),
    ("agents.inference.tokens_per_acc_hour_millions", "high"),
    ("agents.inference.initial_price_usd_per_mtoken", "low"),
    ("agents.end_demand.elasticity", "high"),
    ("agents.end_demand.reference_price_usd_per_mtoken", "low"),
    ("agents.end_demand.adoption_speed_per_month", "high"),
    ("agents.end_demand.adoption_midpoint_month", "low"),
    ("agents.end_demand.adoption_midpoint_month", "high"),
    ("agents.end_demand.base_demand_mtokens_per_month", "high"),
    ("agents.utility.capacity_mw", "low"),
    ("agents.utility.load_factor", "low"),
    ("agents.utility.max_growth_per_month", "high"),
    ("agents.utility.planning_growth_weight", "high"),
    ("agents.utility.asset_life_months", "high"),
    ("agents.chip_vendor.capacity_per_month", "high"),
    ("agents.chip_vendor.unit_cost_usd", "low"),
    ("agents.chip_vendor.demand_elasticity", "low"),
]


@pytest.mark.parametrize("case", EDGES, ids=[f"{case[0]}-{case[1]}" for case in EDGES])
def test_parameter_at_its_bound_runs_clean(case, checked_run):
    """One parameter at its lower or upper documented bound (with any setting it needs to
    be valid): 24 clean steps of a small chain."""
    key, side, *needs = case
    checked_run([*SMALL, "experiment.steps=24", *needs, f"{key}={edge(key, side)!r}"])


def test_zero_adoption_floor_with_a_far_midpoint(checked_run):
    """Adoption that starts at zero (floor 0, midpoint far ahead) grows demand finitely."""
    values = {
        "agents.end_demand.adoption_floor": 0.0,
        "agents.end_demand.adoption_midpoint_month": 12.0,
        "agents.end_demand.adoption_speed_per_month": edge(
            "agents.end_demand.adoption_speed_per_month", "high"
        ),
    }
    checked_run([*SMALL, "experiment.steps=24", *overrides_for(values)])
    values["agents.end_demand.adoption_midpoint_month"] = edge(
        "agents.end_demand.adoption_midpoint_month", "high"
    )
    checked_run([*SMALL, "experiment.steps=24", *overrides_for(values)])


def test_tiny_reserve_target_on_a_tiny_grid(checked_run):
    """A reserve target of 5e-324 on 5e-324 MW of capacity (found by the fuzz test, seed 303)."""
    checked_run(
        [
            *SMALL,
            "agents.chip_vendor.capacity_cost_usd_per_unit_month=0.0",
            "agents.utility.capacity_mw=5e-324",
            "agents.chip_vendor.capacity_decay_per_month=0.0",
            "agents.utility.target_reserve_margin=5e-324",
        ]
    )


# -- the helpers that keep the arithmetic finite --------------------------------------------


def test_bounded_power_is_exact_below_the_cap_and_never_overflows():
    """``min(base ** e, cap)``: numpy's power where it fits, the cap where it overflows."""
    assert bounded_power(1.3, 2.0) == 1.3**2.0
    np.testing.assert_array_equal(bounded_power(np.array([0.5, 2.0]), 1.5), [0.5**1.5, 2.0**1.5])
    assert bounded_power(2.0, 1e100) == MAX_RESPONSE
    assert bounded_power(0.5, 1e100) == 0.0
    assert bounded_power(0.0, -1.2) == MAX_RESPONSE
    assert bounded_power(0.0, 0.0) == 1.0
    assert bounded_power(5e-324, -10.0) == MAX_RESPONSE


def test_capped_quotient_is_exact_below_the_cap_and_zero_over_zero_is_zero():
    """``min(a / b, cap)``: exact where it fits, the cap for overflow or a / 0, 0 for 0 / b."""
    assert capped_quotient(3.0, 7.0) == 3.0 / 7.0
    assert capped_quotient(1.0, 5e-324) == QUOTIENT_CAP
    assert capped_quotient(1.0, 0.0) == QUOTIENT_CAP
    assert capped_quotient(0.0, 0.0) == 0.0
    np.testing.assert_array_equal(
        capped_quotient(np.array([0.0, 2.0, 1e300]), np.array([0.0, 4.0, 1e-300])),
        [0.0, 0.5, QUOTIENT_CAP],
    )
