"""Chip vendors: sell accelerators made at a foundry, priced by markup over unit cost."""

from __future__ import annotations

from marketsim.sectors.base import firm_schema
from marketsim.sectors.vendor import EquipmentVendor
from marketsim.sectors.vendor import vendor_params


class ChipVendor(EquipmentVendor):
    """Accelerator vendors (GPU/ASIC designers): make to order at a foundry."""

    name = "chip_vendor"
    doc = "Accelerator vendors: capacity at a foundry, markup pricing, scarcity premium."
    sells = "accelerators"
    supplier_account = "foundry"
    schema = firm_schema(
        doc,
        vendor_params(
            unit="accelerators",
            capacity=(
                100_000.0,
                "assumption: ~3.6M accelerators a year from 3 vendors (CALIBRATION.md chips: "
                "data center revenue $115.2B/yr incl. systems and networking, at ~$27.5k)",
            ),
            unit_cost=(
                6_900.0,
                "CALIBRATION.md chips: vendor gross margin about 75% x "
                "H100-class list price $25k-30k",
            ),
            price=(27_500.0, "CALIBRATION.md chips: H100-class list price $25k-30k (middle)"),
            markup=(3.0, "CALIBRATION.md chips: vendor gross margin about 75% (price = 4 x cost)"),
            lead=(12, "assumption: foundry and packaging capacity takes about a year"),
        ),
    )
