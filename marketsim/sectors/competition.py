"""Margins from market structure and scarcity: the price rule every selling sector shares.

A firm's target price is its marginal cost raised by a Lerner markup from its market share
and the elasticity of the demand it faces, and raised further towards the market-clearing
price when its capacity binds (`marketsim.markets.kernels.lerner_scarcity_price`):

    L_i    = min(max_lerner, s_i / e)                      (Cournot: (P - MC) / P = s / e)
    base_i = MC_i / (1 - L_i)
    clear_i = P_i * (D_i / K_i) ** (1 / e)                 only when D_i > K_i
    target_i = min(max(base_i, clear_i), base_i * (1 + max_scarcity))
    P_i   <- P_i + price_adjustment * (target_i - P_i)

with ``s_i`` the firm's smoothed share of the units its sector sold (`smoothed_shares`),
``D_i`` its notional demand and ``K_i`` its capacity. Margins therefore follow market
structure (fewer, larger sellers keep more: the markup falls when shares fall, which is
how entrants lower incumbents' margins) and scarcity (the holder of a binding capacity
earns the rent); no parameter states a margin. Used by chip and network vendors
(`marketsim.sectors.vendor`), data centers (`marketsim.sectors.compute_pricing`), inference
firms and, under market pricing, utilities (with no firm-level markup, see
`marketsim.sectors.utility`).
"""

from __future__ import annotations

import numpy as np

from marketsim.markets.kernels import lerner_scarcity_price
from marketsim.schema import Param
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param


def competition_params(
    elasticity: float,
    elasticity_source: str,
    max_scarcity: float,
    prefix: str = "",
    scarcity_source: str = "assumption",
) -> dict[str, Param]:
    """Parameters of the Lerner-and-scarcity price rule (see module doc)."""
    return {
        "demand_elasticity": Param(
            float,
            elasticity,
            f"{prefix}price elasticity of the market demand the sector's firms face; a "
            "firm's Lerner index (P - MC) / P is its market share over it",
            "ratio",
            ge=0.05,
            le=10,
            source=elasticity_source,
        ),
        "max_lerner": Param(
            float,
            0.9,
            f"{prefix}largest Lerner index (P - MC) / P a firm sets from its share",
            "share",
            ge=0,
            le=0.99,
            source="assumption: keeps a monopolist's price finite (at most 10 x cost)",
        ),
        "max_scarcity": Param(
            float,
            max_scarcity,
            f"{prefix}largest scarcity premium over the Lerner price while capacity binds",
            "share",
            ge=0,
            le=100,
            source=scarcity_source,
        ),
        "share_smoothing": smoothing_param(0.2, "market share"),
        "price_adjustment": Param(
            float,
            0.2,
            f"{prefix}share of the gap to the target price closed each month",
            "share",
            gt=0,
            le=1,
            source="assumption",
        ),
    }


def equal_shares(count: int) -> np.ndarray:
    """Every firm with the same market share (``1 / count``), an empty array for none."""
    return np.full(count, 1.0 / count) if count > 0 else np.zeros(0)


def smoothed_shares(
    previous: np.ndarray, sold: np.ndarray, alive: np.ndarray, weight: float
) -> np.ndarray:
    """Each firm's market share smoothed over months (share of units, 0..1).

    This month's share is a firm's units sold over its sector's; a month in which the sector
    sold nothing leaves the shares as they were. Firms that have left the market count as
    selling nothing.
    """
    sold = np.where(alive, sold, 0.0)
    total = float(sold.sum())
    if total <= 0.0 or not np.isfinite(total):
        current = np.where(alive, previous, 0.0)
    else:
        current = np.minimum(sold / total, 1.0)
    return np.clip(smooth(previous, current, weight), 0.0, 1.0)


def lerner_scarcity_target(
    params: dict,
    unit_cost: np.ndarray,
    share: np.ndarray,
    price: np.ndarray,
    requested: np.ndarray,
    capacity: np.ndarray,
) -> np.ndarray:
    """Target prices of a sector's firms under its `competition_params` (see module doc)."""
    n = len(price)
    return lerner_scarcity_price(
        np.broadcast_to(np.asarray(unit_cost, dtype=float), (n,)).copy(),
        np.asarray(share, dtype=float),
        float(params["demand_elasticity"]),
        float(params["max_lerner"]),
        np.asarray(price, dtype=float),
        np.asarray(requested, dtype=float),
        np.asarray(capacity, dtype=float),
        float(params["max_scarcity"]),
    )


def partial_adjustment(price: np.ndarray, target: np.ndarray, speed: float) -> np.ndarray:
    """Move prices ``speed`` of the way to their targets (USD per unit, as given)."""
    return price + speed * (target - price)


def buyers_value(market) -> float:
    """The most buyers would pay per unit: their demand-weighted mean limit price.

    Read from the market's book (``buyer_limit_price``, in the market's price unit); ``inf``
    when no buyer with demand states a finite limit, or there is no market.
    """
    if market is None:
        return np.inf
    book = market.book
    stated = np.isfinite(book.buyer_limit_price) & (book.buyer_demand > 0)
    demand = float(book.buyer_demand[stated].sum())
    if demand <= 0.0 or not np.isfinite(demand):
        return np.inf
    weighted = float((book.buyer_limit_price[stated] * book.buyer_demand[stated]).sum())
    return weighted / demand if np.isfinite(weighted) else np.inf


def capped_at_value(target: np.ndarray, value: float, floor: np.ndarray) -> np.ndarray:
    """Target prices no higher than the buyers' value, and never below ``floor``."""
    return np.maximum(np.minimum(target, value), floor)
