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


def test_tight_power_raises_the_tariff_above_base():
    """When demand eats the reserve margin, the utility's tariff rises above its base."""
    tight = model_after(
        12,
        "agents.utility.capacity_mw=2000",
        "agents.utility.initial_under_construction_mw=0",
        "agents.utility.queue_weight=0",
    )
    loose = model_after(12, "agents.utility.capacity_mw=20000")
    assert tight.sectors["utility"].tariff.mean() > 1.2 * 80.0
    assert loose.sectors["utility"].tariff.mean() < 1.01 * 80.0


def test_chip_price_is_markup_over_cost_and_rises_with_scarcity():
    """Chip prices sit near cost x (1 + markup) and rise when orders exceed capacity."""
    calm = model_after(24, "agents.chip_vendor.capacity_per_month=1e7")
    vendor = calm.sectors["chip_vendor"]
    assert np.allclose(vendor.price, 6_900 * 4, rtol=0.02)
    scarce = model_after(24, "agents.chip_vendor.capacity_per_month=2000")
    assert scarce.sectors["chip_vendor"].price.mean() > 1.1 * 6_900 * 4


def test_efficiency_gain_arrives_once_at_its_step():
    """The one-off efficiency gain multiplies tokens per accelerator-hour at its step only."""
    overrides = ("agents.inference.efficiency_gain=0.2", "agents.inference.efficiency_gain_step=5")
    before = model_after(5, *overrides).sectors["inference"].efficiency
    after = model_after(6, *overrides).sectors["inference"].efficiency
    plain = model_after(6).sectors["inference"].efficiency
    assert np.allclose(after, plain * 1.2)
    assert np.all(before < after / 1.15)
