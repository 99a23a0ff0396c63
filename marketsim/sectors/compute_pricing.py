"""The price of compute: how data-center operators price an accelerator-hour.

`compute_price` is the data-center sector's price rule, kept apart from its fleet and
planning (`marketsim.sectors.datacenter`) so the two can change independently; its
parameters are `compute_pricing_params`:

- ``lerner`` (default): the Lerner-and-scarcity rule of `marketsim.sectors.competition`
  on the full cost of an accelerator-hour (`Datacenter.full_cost_per_acc_hour`): a markup
  from the operator's smoothed share of accelerator-hours sold and the elasticity of compute
  demand, raised towards the price that clears the market when notional demand exceeds
  the powered, networked fleet, but not above the buyers' value (the inference firms'
  demand-weighted limit price, `buyers_value`) nor below the full cost, approached by
  partial adjustment. When power is what binds,
  the compute price rises until inference firms' bids (which fall with the compute price)
  fit the powered fleet: the operators holding powered capacity earn the scarcity rent;
- ``tatonnement``: a price moved by excess demand alone (`tatonnement_price`).

Either way the price is never below the power cost of an accelerator-hour nor above
``max_price_usd_per_acc_hour``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.markets.kernels import tatonnement_price
from marketsim.schema import Param
from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.competition import buyers_value
from marketsim.sectors.competition import capped_at_value
from marketsim.sectors.competition import competition_params
from marketsim.sectors.competition import equal_shares
from marketsim.sectors.competition import lerner_scarcity_target
from marketsim.sectors.competition import smoothed_shares

if TYPE_CHECKING:
    from marketsim.sectors.datacenter import Datacenter


def compute_pricing_params() -> dict[str, Param]:
    """The data-center sector's pricing parameters (see module doc)."""
    return {
        "pricing": Param(
            str,
            "lerner",
            "price rule: lerner (full cost over 1 - share / demand_elasticity, raised "
            "towards the clearing price while capacity binds) or tatonnement (price moves "
            "with excess demand, no cost anchor)",
            choices=("lerner", "tatonnement"),
            source="assumption",
        ),
        **competition_params(
            1.2,
            "assumption: compute demand derived from the end market's baseline elasticity "
            "(docs/calibration.md: the revenue gap: elasticity not published)",
            20.0,
            "lerner: ",
            "assumption: high enough that the price clearing a scarce fleet stops at the "
            "buyers' value (their limit prices), not at this cap",
        ),
        "price_adjustment_speed": Param(
            float,
            0.1,
            "tatonnement: price change per unit of excess demand ratio",
            "share",
            ge=0,
            le=100,
            source="assumption",
        ),
        "max_price_step": Param(
            float,
            0.05,
            "tatonnement: largest monthly price change",
            "share",
            ge=0,
            lt=1,
            source="assumption",
        ),
        "max_price_usd_per_acc_hour": Param(
            float,
            20.0,
            "ceiling on the compute price",
            "USD per accelerator-hour",
            gt=0,
            le=1e6,
            source="assumption (2.5x the 2023 peak of about $8/hour)",
        ),
    }


def compute_price(sector: Datacenter) -> np.ndarray:
    """Next month's price of an accelerator-hour for every operator (USD per hour).

    Also updates the operators' smoothed market shares (``sector.market_share``, 0..1).
    """
    p = sector.params
    power_cost = capped_quotient(
        sector.mw_per_accelerator
        * sector.power_price_usd_per_mwh
        * (sector.power_billed_hours / HOURS_PER_MONTH),
        p["availability"],
    )
    floor = np.full(sector.count, power_cost)
    ceiling = np.full(sector.count, max(p["max_price_usd_per_acc_hour"], power_cost))
    previous = getattr(sector, "market_share", None)
    if previous is None:
        previous = equal_shares(sector.count)
    sector.market_share = smoothed_shares(previous, sector.sold, sector.alive, p["share_smoothing"])
    if p["pricing"] == "tatonnement":
        return tatonnement_price(
            sector.price,
            sector.requested,
            sector.offered,
            p["price_adjustment_speed"],
            p["max_price_step"],
            floor,
            ceiling,
        )
    base = np.full(sector.count, sector.full_cost_per_acc_hour())
    target = lerner_scarcity_target(
        p, base, sector.market_share, sector.price, sector.requested, sector.offered
    )
    target = capped_at_value(target, buyers_value(sector.model.markets.get("compute")), base)
    return np.clip(sector.price + p["price_adjustment"] * (target - sector.price), floor, ceiling)
