"""Chip vendors: sell accelerators made at a foundry, priced from market share and scarcity."""

from __future__ import annotations

from marketsim.sectors.base import firm_schema
from marketsim.sectors.vendor import EquipmentVendor
from marketsim.sectors.vendor import vendor_params
from marketsim.technology import GenerationSchedule


class ChipVendor(EquipmentVendor):
    """Accelerator vendors (GPU/ASIC designers): make to order at a foundry."""

    name = "chip_vendor"
    doc = "Accelerator vendors: capacity at a foundry, Lerner markup from share, scarcity."
    sells = "accelerators"
    supplier_account = "foundry"
    schema = firm_schema(
        doc,
        vendor_params(
            unit="accelerators",
            capacity=(
                100_000.0,
                "assumption: ~3.6M accelerators a year from 3 vendors (docs/calibration.md: chips: "
                "data center revenue $115.2B/yr incl. systems and networking, at ~$27.5k)",
            ),
            unit_cost=(
                6_900.0,
                "docs/calibration.md: chips: vendor gross margin about 75% x "
                "H100-class list price $25k-30k",
            ),
            price=(27_500.0, "docs/calibration.md: chips: H100-class list price $25k-30k (middle)"),
            elasticity=(
                1.0,
                "docs/calibration.md: chips: vendor gross margin about 75%: with the "
                "leader's 80% share (Lerner 0.8 / e) and challengers selling out, a market "
                "elasticity of about 1 gives it",
            ),
            leader_share=(
                0.8,
                "assumption: one dominant accelerator vendor (the leader's $115.2B of "
                "data-center revenue in docs/calibration.md: chips) with two challengers",
            ),
            lead=(12, "assumption: foundry and packaging capacity takes about a year"),
        ),
    )

    def observe(self, step: int) -> None:
        """Sell the newest accelerator generation: at each launch (`marketsim.technology`)
        the unit cost and the posted price step up by the generation's price ratio."""
        super().observe(step)
        schedule = GenerationSchedule.of(self.model)
        previous = getattr(self, "generation", 0)
        self.generation = schedule.generation_at(step)
        """Accelerator generation this vendor sells this month (0 = the installed base's)."""
        if self.generation != previous:
            step_up = schedule.price_of(self.generation) / schedule.price_of(previous)
            self.unit_cost = self.unit_cost * step_up
            self.price = self.price * step_up
