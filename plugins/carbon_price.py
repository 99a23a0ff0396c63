"""A carbon price on power: utilities pay USD per tonne of CO2 their generation emits.

The levy per MWh is ``price_usd_per_tonne x emission_intensity_t_per_mwh``. The sellers of
power it covers (``sellers``, the utilities by default) pay it on every MWh they sell, to the
outside account ``carbon_fund``, booked as cost of goods (it lowers their gross margin like
fuel does). A share ``pass_through`` of the levy is added to the tariffs they post, so data
centers pay it in the power price and choose between sellers on the levied price.

Why a surcharge on the posted tariff and not a higher cost inside the utilities' own price
rule: the utilities' target tariff is their cost of service, read from their own parameters
(``energy_cost_usd_per_mwh``), and no hook or market datum lets a plugin add to it without
editing core files. What a plugin may change is the order book (``marketsim_before_clear``)
and the ledger (``marketsim_after_clear``). With ``pass_through = 1`` the result is what a
competitive generator pricing at marginal cost would do: the price rises by the levy. The
utilities' scarcity premium is still computed on their tariff before the levy.

The levy can start part-way through a run (``start_step``) and rise linearly to the full
price over ``ramp_months``. The chain column ``carbon_levy_usd`` is what the carbon fund
received in the month, read off the ledger.

Use it from an experiment file (path relative to that file), as
experiments/carbon_price.toml does::

    plugins = ["../plugins/carbon_price.py"]

    [carbon_price]
    price_usd_per_tonne = 80.0
    emission_intensity_t_per_mwh = 0.37
"""

from __future__ import annotations

import numpy as np

from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import TableSchema
from marketsim.plugin import hookimpl
from marketsim.plugin import outside_account_index

__version__ = "1.0.0"

CARBON_FUND = "carbon_fund"
"""Outside account the levy is paid to."""

CARBON_FUND_DOC = "the state's carbon fund: receives carbon levies on power sold"

TABLE = TableSchema(
    doc="A carbon price on the power sold by utilities (USD per tonne CO2 x t CO2 per MWh).",
    params={
        "price_usd_per_tonne": Param(
            float,
            0.0,
            "carbon price at full strength",
            "USD per tonne CO2",
            ge=0,
            le=10_000,
            source="scenario lever (0: no carbon price)",
        ),
        "emission_intensity_t_per_mwh": Param(
            float,
            0.37,
            "CO2 emitted per MWh the covered sellers generate",
            "tonnes CO2 per MWh",
            ge=0,
            le=2,
            source="EIA, 'How much carbon dioxide is produced per kilowatthour of U.S. "
            "electricity generation?': 0.81 lb/kWh in 2023, about 0.37 t/MWh",
        ),
        "pass_through": Param(
            float,
            1.0,
            "share of the levy added to the covered sellers' posted tariffs",
            "share",
            ge=0,
            le=1,
            source="assumption: competitive generation prices at marginal cost, so a "
            "per-MWh cost is passed on in full",
        ),
        "sellers": Param(
            list,
            ["utility"],
            "sectors selling power whose generation the price covers",
            item_kind=str,
            source="assumption: the grid's generators",
        ),
        "start_step": Param(
            int, 0, "first month of the levy", "step", ge=0, source="scenario lever"
        ),
        "ramp_months": Param(
            int,
            0,
            "months over which the levy rises linearly to the full price (0: full at once)",
            "months",
            ge=0,
            source="scenario lever",
        ),
    },
)


@hookimpl
def marketsim_register_config_tables(register):
    register("carbon_price", TABLE)


@hookimpl
def marketsim_register_outside_accounts(register):
    register(CARBON_FUND, CARBON_FUND_DOC)


@hookimpl
def marketsim_validate_config(experiment):
    """The covered sellers must be sectors of the experiment (a typo must not tax nobody)."""
    sectors = list(experiment["agents"])
    return [
        (
            "carbon_price.sellers",
            f"must name sectors of the experiment ({', '.join(map(repr, sectors))}), got {name!r}",
        )
        for name in experiment["carbon_price"]["sellers"]
        if name not in sectors
    ][:1]


def levy_usd_per_mwh(rule: dict, step: int) -> float:
    """The levy in month ``step``, USD per MWh: price x intensity x the ramp's share."""
    full = rule["price_usd_per_tonne"] * rule["emission_intensity_t_per_mwh"]
    months_in = step - rule["start_step"] + 1
    if months_in <= 0:
        return 0.0
    if rule["ramp_months"] == 0:
        return full
    return full * min(1.0, months_in / rule["ramp_months"])


def _covered_blocks(model, market):
    """(sector, first index, count) of the covered sellers in the power market."""
    covered = model.experiment["carbon_price"]["sellers"]
    return [block for block in market.sellers.sectors if block[0].name in covered]


@hookimpl
def marketsim_before_clear(model, market):
    """Add the passed-through levy to the covered sellers' posted tariffs (USD per MWh)."""
    if market.name != "power":
        return
    rule = model.experiment["carbon_price"]
    surcharge = rule["pass_through"] * levy_usd_per_mwh(rule, model.step_index)
    if surcharge == 0.0:
        return
    for _, start, count in _covered_blocks(model, market):
        market.book.seller_price[start : start + count] += surcharge


@hookimpl
def marketsim_after_clear(model, market, outcome):
    """Each covered seller pays the levy on the energy it sold to the carbon fund."""
    if market.name != "power":
        return
    levy = levy_usd_per_mwh(model.experiment["carbon_price"], model.step_index)
    if levy == 0.0:
        return
    mwh = outcome.seller_sold * market.billed_units_per_unit  # MW x MWh billed per MW
    for sector, start, count in _covered_blocks(model, market):  # per sector, not per firm
        sector.pay(mwh[start : start + count] * levy, CARBON_FUND, "cost_of_goods")


def _levy_received(model) -> float:
    """Cash the carbon fund received this month, USD (from the ledger's flows)."""
    ledger = model.ledger
    fund = outside_account_index(model, CARBON_FUND)
    cash = ledger.asset("cash")
    return float(np.sum(ledger.flow_in[cash, :, fund]))


@hookimpl
def marketsim_register_metrics(register):
    register(
        MetricSpec(
            "chain",
            "carbon_levy_usd",
            _levy_received,
            "USD",
            "carbon levy the carbon fund received this month (read off the ledger)",
        )
    )
