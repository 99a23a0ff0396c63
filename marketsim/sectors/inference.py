"""Inference-software firms: buy compute, turn it into tokens, sell tokens.

Efficiency ``e`` (million tokens per accelerator-hour) grows with software spending and may
jump once by a configured gain (the "20%" lever):
    e[t+1] = e[t] * (1 + software_productivity * software_spend_share)
    e      = e * (1 + efficiency_gain)     once, at step efficiency_gain_step
Compute bought = expected token demand / e, where expected demand is smoothed notional
token demand grown by its smoothed growth for one month, plus a ``compute_buffer``.
Tokens offered = compute received * e; compute left unused is wasted (still paid for).

Token price rule (markup over the compute cost of a token, raised by scarcity):
    cost   = compute price paid / e
    target = cost * (1 + markup) * (1 + min(max_scarcity, scarcity_slope * max(0, D/K - 1)))
    price  = price + price_adjustment * (target - price)

Bounds (none binds in the shipped scenarios): efficiency stops at
``MAX_TOKENS_PER_ACC_HOUR_MILLIONS`` (compounding 2%/month passes float's range after
about 36,000 months), and the compute bid is a `capped_quotient` (at 5e-324 million tokens
per accelerator-hour it would overflow).
"""

from __future__ import annotations

import numpy as np

from marketsim.markets.kernels import markup_price
from marketsim.schema import Param
from marketsim.sectors.base import Sector
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import firm_schema
from marketsim.sectors.base import scarcity_pricing_params
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param

MAX_TOKENS_PER_ACC_HOUR_MILLIONS = 1e21
"""Physical ceiling on efficiency: about the Landauer limit of a 1 kW accelerator-hour.

An accelerator-hour at 1 kW is 3.6e6 J; erasing one bit at 300 K costs at least
``k T ln 2`` = 2.9e-21 J, so no accelerator-hour serves more than ~1.2e27 tokens (1.2e21
million). Software work compounds efficiency without end; it stops here.
"""


class Inference(Sector):
    """Inference-software firms (see module doc)."""

    name = "inference"
    doc = "Inference firms: buy compute, sell tokens; efficiency grows with software work."
    sells = "tokens"
    buys = ("compute",)
    purchase_flows = {"compute": "cost_of_goods"}
    schema = firm_schema(
        doc,
        {
            "tokens_per_acc_hour_millions": Param(
                float,
                2.5,
                "initial efficiency: tokens served per accelerator-hour",
                "million tokens per accelerator-hour",
                gt=0,
                le=1e6,
                source="assumption (~700 tokens/s per accelerator averaged over models)",
            ),
            "software_spend_share": Param(
                float,
                0.1,
                "share of revenue spent on software work (paid as wages)",
                "share",
                ge=0,
                lt=1,
                source="assumption",
            ),
            "software_productivity": Param(
                float,
                0.2,
                "monthly efficiency growth per unit of software spend share",
                "per month",
                ge=0,
                le=1,
                source="assumption: 2%/month (27%/year), a slice of the ~10x/year fall in "
                "price at fixed capability (CALIBRATION.md compute)",
            ),
            "efficiency_gain": Param(
                float,
                0.0,
                "one-off efficiency gain (0.2 = tokens per accelerator-hour +20%)",
                "share",
                ge=0,
                le=10,
                source="scenario lever",
            ),
            "efficiency_gain_step": Param(
                int,
                24,
                "step at which the one-off efficiency gain arrives",
                "step",
                ge=0,
                le=100_000,
                source="scenario lever",
            ),
            "initial_price_usd_per_mtoken": Param(
                float,
                1.5,
                "token price in the first month",
                "USD per million tokens",
                gt=0,
                le=1e6,
                source="assumption (blended API price 2025)",
            ),
            "markup": Param(
                float,
                0.6,
                "target markup over the compute cost of a token",
                "share",
                ge=0,
                le=100,
                source="assumption",
            ),
            **scarcity_pricing_params(0.5, 1.0),
            "demand_smoothing": smoothing_param(0.5),
            "compute_buffer": Param(
                float,
                0.05,
                "compute bought beyond expected need",
                "share",
                ge=0,
                le=10,
                source="assumption",
            ),
        },
    )

    def setup(self) -> None:
        p = self.params
        n = self.count
        self.efficiency = np.full(n, p["tokens_per_acc_hour_millions"])
        self.price = np.full(n, p["initial_price_usd_per_mtoken"])
        self.demand_smoothed = self._initial_token_demand()
        self.growth_smoothed = np.zeros(n)
        self.compute_bought = np.zeros(n)
        self.compute_price = np.zeros(n)

    def observe(self, step: int) -> None:
        p = self.params
        if step == p["efficiency_gain_step"]:
            self.efficiency = np.minimum(
                self.efficiency * (1.0 + p["efficiency_gain"]), MAX_TOKENS_PER_ACC_HOUR_MILLIONS
            )

    def bid(self, market, block) -> None:
        p = self.params
        expected = self.demand_smoothed * (1.0 + self.growth_smoothed)
        compute = capped_quotient(expected, self.efficiency) * (1.0 + p["compute_buffer"])
        market.book.buyer_demand[block] = np.where(self.alive, compute, 0.0)

    def _initial_token_demand(self) -> np.ndarray:
        """Token demand at the opening price, shared equally: the first month's plan."""
        end = self.model.sectors.get("end_demand")
        if end is None:
            return np.zeros(self.count)
        total = end.notional_demand(self.price.mean(), step=0).sum()
        return np.full(self.count, total / self.count)

    def on_bought(self, market, outcome, block) -> None:
        self.compute_bought = outcome.buyer_filled[block].copy()
        value = outcome.buyer_value[block]
        self.compute_price = np.divide(
            value, self.compute_bought, out=self.compute_price.copy(), where=self.compute_bought > 0
        )
        self.move_goods(
            "compute",
            self.accounts,
            self.model.ledger.account("consumption"),
            self.compute_bought,
            "consumption",
        )

    def offer(self, market, block) -> None:
        self.offered = np.where(self.alive, self.compute_bought * self.efficiency, 0.0)
        market.book.seller_price[block] = self.price
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        production = self.model.ledger.account("production")
        self.move_goods("tokens", production, self.accounts, self.sold, "production")

    def account(self, step: int) -> None:
        p = self.params
        revenue = self.revenue
        self.pay(revenue * p["software_spend_share"], "wages", "opex")
        self.pay_overheads()
        # at this month's efficiency, before software work raises it
        cost_per_mtoken = capped_quotient(self.compute_price, self.efficiency)
        self.efficiency = np.minimum(
            self.efficiency * (1.0 + p["software_productivity"] * p["software_spend_share"]),
            MAX_TOKENS_PER_ACC_HOUR_MILLIONS,
        )
        previous = self.demand_smoothed
        self.demand_smoothed = smooth(previous, self.requested, p["demand_smoothing"])
        growth = np.where(previous > 0, capped_quotient(self.demand_smoothed, previous), 1.0) - 1.0
        self.growth_smoothed = np.clip(smooth(self.growth_smoothed, growth, 0.2), -0.5, 0.5)
        has_cost = cost_per_mtoken > 0
        target = markup_price(
            np.where(has_cost, cost_per_mtoken, self.price / (1.0 + p["markup"])),
            np.full(self.count, p["markup"]),
            self.requested,
            self.offered,
            p["scarcity_slope"],
            p["max_scarcity"],
        )
        self.price = self.price + p["price_adjustment"] * (target - self.price)

    def on_default(self, defaulted) -> None:
        self.compute_bought[defaulted] = 0.0
        self.demand_smoothed[defaulted] = 0.0

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {"compute": np.zeros(self.count), "tokens": np.zeros(self.count)}

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd_per_mtoken": self.price,
            "tokens_per_acc_hour_millions": self.efficiency,
            "compute_bought_acc_hours": self.compute_bought,
        }
