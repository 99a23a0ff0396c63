"""Cooling vendors: a new input data centers must buy per MW (a research plugin).

AI racks need liquid cooling (coolant distribution units, cold plates, heat rejection) sized
to the facility load. This plugin adds a good, ``cooling_units`` (one unit cools one MW of
facility power), and a sector that makes them to order, ``cooling_vendor``, built on the
equipment-vendor base class (capacity, lead times, Lerner-and-scarcity prices). It declares
the input it supplies (``input_to``): in an experiment where cooling vendors are present, data
centers need ``per_mw`` units per MW their accelerators draw, unless the experiment's own
``[agents.datacenter.inputs.cooling_units]`` table says otherwise. Nothing in the core is
changed: the market, the purchases (capex, held as a stock), the usable-fleet cap (Leontief),
the ledger postings and the metrics (``chain.binding_input`` can be ``cooling_units``;
``chain.stranded_by_cooling_units``) follow from the recipe (docs/plugins.md section 8.7).

Use it from an experiment file (path relative to that file), as experiments/cooling.toml
does::

    plugins = ["../plugins/cooling_vendor.py"]

    [agents.cooling_vendor]
    count = 2

    [agents.datacenter.inputs.cooling_units]
    per_mw = 1.0
"""

from __future__ import annotations

from marketsim.plugin import EquipmentVendor
from marketsim.plugin import GoodSpec
from marketsim.plugin import firm_schema
from marketsim.plugin import hookimpl
from marketsim.plugin import vendor_params

__version__ = "1.0.0"

COOLING_UNITS = GoodSpec(
    "cooling_units",
    "cooling units (cooling for 1 MW of facility power)",
    "USD per unit",
    doc="liquid-cooling plant for one MW of facility load, sold by cooling vendors",
)


class CoolingVendor(EquipmentVendor):
    """Makers of liquid-cooling plant: make to order from monthly capacity."""

    name = "cooling_vendor"
    doc = "Cooling vendors: cooling units (one per MW of facility load), Lerner markup, lead time."
    sells = "cooling_units"
    supplier_account = "suppliers"
    input_to = {"datacenter": {"per_mw": 1.0}}
    schema = firm_schema(
        doc,
        vendor_params(
            unit="cooling units",
            capacity=(
                800.0,
                "assumption: two vendors deliver about 1.6 GW of cooling a month, above the "
                "~1 GW a month the baseline fleet grows by",
            ),
            unit_cost=(1.4e6, "assumption: 30% gross margin on the price"),
            price=(
                2.0e6,
                "docs/calibration.md: data centers: build cost about $11.7M per MW, power and "
                "cooling about 53% of it; assumption: cooling about a third of that",
            ),
            elasticity=(1.5, "assumption: two equal vendors (Lerner 0.5 / 1.5: a 33% margin)"),
            leader_share=(0.0, "assumption: vendors of equal size"),
            lead=(9, "assumption: cooling plant capacity takes about three quarters"),
        ),
    )


@hookimpl
def marketsim_register_goods(register):
    register(COOLING_UNITS)


@hookimpl
def marketsim_register_sectors(register):
    register(CoolingVendor)
