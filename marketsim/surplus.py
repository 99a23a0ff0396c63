"""End customers' surplus: the ``consumer_surplus`` column of ``chain``.

Each end segment's demand curve, as rationed (scaled by filled / demanded), is integrated
from the token price it faced up to a choke price of `CHOKE_PRICE_MULTIPLE` x its reference
price; a curve capped at ``MAX_RESPONSE`` x base demand at low prices is integrated as capped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.end_demand import EndDemand

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel


def _ratio(numerator, denominator) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


CHOKE_PRICE_MULTIPLE = 100.0
"""Consumer surplus stops at this multiple of the reference token price (the choke price)."""


def area_under_capped_power(lower, upper: float, elasticity: float, cap: float) -> np.ndarray:
    """Integral of ``min(x ** -elasticity, cap)`` over ``x`` from ``lower`` to ``upper``.

    ``lower`` is an array of relative prices (> 0); the result is 0 where ``lower >= upper``.
    """
    lower = np.minimum(np.asarray(lower, dtype=float), upper)
    if elasticity == 0:
        return min(1.0, cap) * (upper - lower)
    flat_end = cap ** (-1.0 / elasticity)  # below this relative price demand is capped
    flat = cap * np.maximum(0.0, np.minimum(flat_end, upper) - lower)
    start = np.maximum(lower, flat_end)
    exponent = 1.0 - elasticity
    log_span = np.log(upper / start)
    if exponent == 0:
        curve = log_span
    else:
        curve = start**exponent * np.expm1(exponent * log_span) / exponent
    return flat + np.where(start < upper, curve, 0.0)


def consumer_surplus(model: SupplyChainModel) -> float:
    """End customers' surplus over the token price they face (USD per step); NaN without them."""
    total = np.nan
    for sector in model.sectors.values():
        if not isinstance(sector, EndDemand):
            continue
        p = sector.params
        reference = p["reference_price_usd_per_mtoken"]
        elasticity = float(p["elasticity"])
        relative = np.maximum(capped_quotient(sector.price_faced, reference), np.finfo(float).tiny)
        response = bounded_power(relative, -elasticity, MAX_RESPONSE)
        area = area_under_capped_power(relative, CHOKE_PRICE_MULTIPLE, elasticity, MAX_RESPONSE)
        # filled / response = base demand x adoption x noise x fill share: the curve's scale
        scale = _ratio(sector.last_filled, response)
        surplus = np.where(sector.last_filled > 0, scale * reference * area, 0.0)
        total = float(np.nansum(surplus)) + (0.0 if np.isnan(total) else total)
    return total
