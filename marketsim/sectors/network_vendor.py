"""Network vendors: sell network kits (optics and switch ports for one accelerator)."""

from __future__ import annotations

from marketsim.sectors.base import firm_schema
from marketsim.sectors.vendor import EquipmentVendor
from marketsim.sectors.vendor import vendor_params


class NetworkVendor(EquipmentVendor):
    """Optics and switch vendors: one network kit connects one accelerator."""

    name = "network_vendor"
    doc = "Optics/switch vendors: network kits, Lerner markup from share, own lead time."
    sells = "network_kits"
    supplier_account = "suppliers"
    schema = firm_schema(
        doc,
        vendor_params(
            unit="network kits",
            capacity=(250_000.0, "assumption: matches accelerator shipments with 2 vendors"),
            unit_cost=(2_750.0, "assumption: 50% gross margin on the kit price"),
            price=(
                5_500.0,
                "docs/calibration.md: network: interconnect 9-13% of cluster cost "
                "(about 11% of ~$50k per accelerator)",
            ),
            elasticity=(
                1.0,
                "assumption: two equal vendors (Lerner 0.5 / e) keep the assumed 50% gross "
                "margin at a market elasticity of 1",
            ),
            leader_share=(0.0, "assumption: vendors of equal size"),
            lead=(9, "assumption: optics capacity takes about three quarters"),
        ),
    )
