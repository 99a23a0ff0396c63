"""Sector behaviour a researcher relies on, checked on short runs of the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import marketsim
from marketsim.model import SupplyChainModel

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"


def model_after(steps: int, *overrides: str) -> SupplyChainModel:
    """A baseline model (with overrides) after ``steps`` steps."""
    built = SupplyChainModel(
        marketsim.load_experiment(BASELINE, list(overrides)), np.random.SeedSequence(2)
    )
    for _ in range(steps):
        built.step()
    return built


def test_unpowered_accelerators_are_stranded_not_sold():
    """With a third of the power, usable fleet <= power / (kW x PUE) and the rest is stranded."""
    model = model_after(
        3,
        "agents.utility.capacity_mw=700",
        "agents.utility.initial_under_construction_mw=0",
        "agents.utility.queue_weight=0",
    )
    datacenter = model.sectors["datacenter"]
    powered = datacenter.power_mw / datacenter.mw_per_accelerator
    assert np.all(datacenter.usable <= powered + 1e-6)
    assert np.allclose(datacenter.stranded, datacenter.fleet - datacenter.usable)
    assert datacenter.stranded.sum() > 0.5 * datacenter.fleet.sum()


def test_tight_power_raises_market_tariffs_above_cost_of_service_not_regulated_ones():
    """When demand eats the reserve margin, market tariffs rise well above the cost of
    service; regulated tariffs stay near it, as do market tariffs with ample capacity."""
    tight = (
        "agents.utility.capacity_mw=2000",
        "agents.utility.initial_under_construction_mw=0",
        "agents.utility.queue_weight=0",
    )
    market = model_after(12, *tight).sectors["utility"]
    assert (market.tariff > 1.2 * market.cost_of_service()).all()
    regulated = model_after(12, *tight, "agents.utility.tariff_regime=regulated")
    utility = regulated.sectors["utility"]
    assert np.allclose(utility.tariff, utility.cost_of_service(), rtol=0.1)
    loose = model_after(12, "agents.utility.capacity_mw=20000").sectors["utility"]
    alive = loose.alive  # an overbuilt utility may default: its plant is not used and useful
    assert alive.any()
    assert np.allclose(loose.tariff[alive], loose.cost_of_service()[alive], rtol=0.1)


def test_chip_price_is_lerner_markup_over_cost_and_rises_with_scarcity():
    """Chip prices sit near cost / (1 - share / elasticity), fall with a more elastic demand,
    and rise above it when orders exceed capacity."""
    equal = (
        "agents.chip_vendor.leader_capacity_share=0",
        "agents.chip_vendor.potential_entrants=0",
    )
    calm = model_after(24, "agents.chip_vendor.capacity_per_month=1e7", *equal)
    vendor = calm.sectors["chip_vendor"]
    lerner = np.minimum(vendor.params["max_lerner"], vendor.market_share)
    assert np.allclose(vendor.price, vendor.unit_cost / (1.0 - lerner), rtol=0.15)
    elastic = model_after(
        24,
        "agents.chip_vendor.capacity_per_month=1e7",
        "agents.chip_vendor.demand_elasticity=3",
        *equal,
    )
    assert elastic.sectors["chip_vendor"].price.mean() < 0.8 * vendor.price.mean()
    scarce = model_after(24, "agents.chip_vendor.capacity_per_month=2000", *equal)
    vendor = scarce.sectors["chip_vendor"]
    lerner = np.minimum(vendor.params["max_lerner"], vendor.market_share)
    assert (vendor.price > 1.1 * vendor.unit_cost / (1.0 - lerner)).all()


def test_efficiency_gain_arrives_once_at_its_step():
    """The one-off efficiency gain multiplies tokens per accelerator-hour at its step only."""
    overrides = ("agents.inference.efficiency_gain=0.2", "agents.inference.efficiency_gain_step=5")
    before = model_after(5, *overrides).sectors["inference"].efficiency
    after = model_after(6, *overrides).sectors["inference"].efficiency
    plain = model_after(6).sectors["inference"].efficiency
    assert np.allclose(after, plain * 1.2)
    assert np.all(before < after / 1.15)
