"""The equity market's data: what the capital market publishes and every sector may read.

The capital market is not a privileged part of the model. Whatever values firms and supplies
equity does it through three documented hooks (`marketsim.hookspecs`), and publishes its
results here, on ``model.equity``, as market data:

- ``marketsim_value_firms(model, step)`` runs at the start of every step, after
  ``marketsim_step_start``: value firms and fill in this step's `EquityMarket` (valuation
  ratio, equity offer, fundamentals, cost of capital). The built-in investor sector
  implements it (`marketsim.sectors.investor`); a plugin may add to or adjust the offer
  (``trylast``), wrap it, or replace the investor altogether (switch it off with
  ``count = 0`` and implement the hooks).
- ``marketsim_buy_new_shares(model, amounts)`` (first result wins): pay firms for new shares
  worth ``amounts`` (USD per firm row); return True when done.
- ``marketsim_receive_dividends(model, amounts)`` (first result wins): collect the
  dividends ``amounts`` (USD per firm row) firms pay; return True when done. Without an
  implementation that returns True, dividends go to the outside account ``savers``.

Without any capital market the ratio is one, nothing is offered and entry has no cost of
capital to beat (``active`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EquityMarket:
    """This step's equity-market data, one value per firm row where an array.

    Attributes:
        offer: new equity the capital market would buy from each firm this step (USD);
            finance draws on it to cover cash shortfalls, entry to fund entrants.
        valuation_ratio: each firm's market valuation / fundamental value (ratio; 1 without
            a capital market). Lenders' collateral and data centers' Tobin's q read it.
        valuation: each firm's market valuation (USD; 0 without a capital market).
        fundamental: each firm's fundamental value (USD; 0 without a capital market).
        cost_of_capital_per_year: the return shareholders require (per year); entrants
            compare sectors' returns on capital with it.
        trend_follower_share: share of investors following trends, whole market (share;
            NaN without a capital market).
        active: whether a capital market published this step's data.
    """

    offer: np.ndarray
    valuation_ratio: np.ndarray
    valuation: np.ndarray
    fundamental: np.ndarray
    cost_of_capital_per_year: float = 0.0
    trend_follower_share: float = np.nan
    active: bool = False

    @classmethod
    def empty(cls, n_firms: int) -> EquityMarket:
        """No capital market: ratio one, nothing offered, nothing valued."""
        return cls(
            offer=np.zeros(n_firms),
            valuation_ratio=np.ones(n_firms),
            valuation=np.zeros(n_firms),
            fundamental=np.zeros(n_firms),
        )

    def check(self, n_firms: int) -> str | None:
        """What is wrong with the published data (a message), or None when it is valid."""
        for name in ("offer", "valuation_ratio", "valuation", "fundamental"):
            values = np.asarray(getattr(self, name))
            if values.shape != (n_firms,):
                return f"field {name!r} has shape {values.shape}, expected ({n_firms},)"
            if not np.isfinite(values).all():
                return f"field {name!r} is not finite (NaN or inf)"
            if (values < 0).any():
                return f"field {name!r} is negative"
        if not (self.valuation_ratio > 0).all():
            return "field 'valuation_ratio' must be > 0"
        if not np.isfinite(self.cost_of_capital_per_year) or self.cost_of_capital_per_year < 0:
            return "field 'cost_of_capital_per_year' must be finite and >= 0"
        return None
