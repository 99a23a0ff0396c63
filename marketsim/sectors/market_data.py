"""What a sector may learn about other sectors: only through the markets it trades in.

A sector never looks another sector up by name (tests/test_no_back_doors.py). What it needs
to know about its suppliers and customers it reads from the market of the good:

- `opening_reference_price`: the mean price the good's sellers post in the first month,
  from each seller's `Sector.opening_price` (their parameters; usable in ``setup``, before
  any seller has posted). Data centers value their installed accelerators and kits with it.
- `demand_at_price`: what the good's buyers would buy at a price, from each buyer's
  `Sector.notional_demand` (its demand schedule without noise). Inference firms plan their
  first month with it.

Both sum or average over the market's participant blocks (a handful of sectors), never
over firms in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from marketsim.markets.market import Market


def opening_reference_price(market: Market | None) -> float:
    """Mean first-month price over the sellers of ``market`` that publish one (price unit of
    the good); 0.0 without a market or when no seller publishes an opening price."""
    if market is None:
        return 0.0
    prices = []
    for sector, _start, count in market.sellers.sectors:
        opening = sector.opening_price()
        if opening is not None and count:
            prices.append(np.broadcast_to(np.asarray(opening, dtype=float), (count,)))
    if not prices:
        return 0.0
    return float(np.concatenate(prices).mean())


def demand_at_price(market: Market | None, price: float, step: int) -> float:
    """Total notional demand of the buyers of ``market`` at ``price`` in month ``step`` (the
    good's unit), summed over the buyers that publish a demand schedule; 0.0 without any."""
    if market is None:
        return 0.0
    total = 0.0
    for sector, _start, _count in market.buyers.sectors:
        demand = sector.notional_demand(price, step)
        if demand is not None:
            total += float(np.sum(demand))
    return total
