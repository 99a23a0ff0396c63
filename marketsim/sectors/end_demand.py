"""End demand: customer segments that buy tokens; price-elastic, growing with adoption.

Demand of segment ``k`` at step ``t`` (million tokens per month):
    D_k(t) = base * A(t) / A(0) * (p_k / p_ref) ** (-elasticity) * exp(sigma * z - sigma**2 / 2)
    A(t)   = floor + (1 - floor) / (1 + exp(-speed * (t - midpoint)))
where ``p_k`` is the mean token price posted by the sellers segment ``k`` is connected to,
and ``z`` a standard normal draw from the model's random stream (``sigma`` = demand_noise).
Segments are not firms: they pay from the outside account ``end_customers``. Elasticity
above 1 makes spending rise when prices fall (Jevons).

Adoption stall: from ``adoption_stall_month`` on (``-1``, the default: never) adoption stays at
the level it reached that month, ``A(t) = A(stall)`` for ``t >= stall``: the S-curve stops
climbing (a demand stall; experiments/demand_stall.toml).

Saturation: the price response ``(p_k / p_ref) ** (-elasticity)`` and the adoption growth
``A(t) / A(0)`` are each at most `MAX_RESPONSE` (a million), so demand stays finite at any
valid price, elasticity and S-curve; the logistic's exponent is clipped at 709, where
``exp`` would overflow (adoption is then 1e-308 of its long-run level, i.e. zero).
"""

from __future__ import annotations

import numpy as np

from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient

MAX_LOGISTIC_EXPONENT = 709.0
"""Largest exponent passed to ``exp`` in the adoption S-curve (``exp(710)`` overflows)."""


class EndDemand(Sector):
    """Customer segments buying tokens (see module doc)."""

    name = "end_demand"
    doc = "End customers: adoption S-curve times price^(-elasticity), optional noise."
    buys = ("tokens",)
    purchase_flows = {"tokens": "cost_of_goods"}
    has_accounts = False
    outside_account = "end_customers"
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(
                int,
                3,
                "number of customer segments (regions)",
                "segments",
                ge=0,
                le=10_000_000,
                source="assumption: one segment per region",
            ),
            "base_demand_mtokens_per_month": Param(
                float,
                1.8e9,
                "demand per segment at the reference price at the start",
                "million tokens per month",
                gt=0,
                le=1e15,
                source="assumption: 3 segments ask ~78% of the initial fleet's token capacity "
                "(4M accelerators x 730 h x 0.95 x 2.5M tokens)",
            ),
            "reference_price_usd_per_mtoken": Param(
                float,
                1.5,
                "price at which demand equals base demand",
                "USD per million tokens",
                gt=0,
                le=1e6,
                source="assumption (blended API price 2025)",
            ),
            "elasticity": Param(
                float,
                1.2,
                "price elasticity of token demand (> 1: Jevons)",
                "ratio",
                ge=0,
                le=10,
                source="docs/calibration.md: revenue gap: not published; a parameter to sweep",
            ),
            "adoption_floor": Param(
                float,
                0.15,
                "adoption level the S-curve starts from (long-run level 1)",
                "share",
                ge=0,
                lt=1,
                source="assumption",
            ),
            "adoption_midpoint_month": Param(
                float,
                30.0,
                "month at which adoption is halfway from floor to 1",
                "months",
                ge=-100_000,
                le=100_000,
                source="assumption",
            ),
            "adoption_speed_per_month": Param(
                float,
                0.12,
                "steepness of the adoption S-curve",
                "per month",
                ge=0,
                le=10,
                source="assumption",
            ),
            "adoption_stall_month": Param(
                int,
                -1,
                "month from which adoption stays at the level it reached then (a demand "
                "stall); -1: adoption follows the S-curve for the whole run",
                "months",
                ge=-1,
                le=100_000,
                source="assumption (scenario lever: experiments/demand_stall.toml sets 36)",
            ),
            "demand_noise": Param(
                float,
                0.05,
                "standard deviation of the log demand shock each month",
                "log",
                ge=0,
                le=2,
                source="assumption",
            ),
        },
    )

    def setup(self) -> None:
        self.last_demand = np.zeros(self.count)
        self.last_filled = np.zeros(self.count)
        self.price_faced = np.full(self.count, self.params["reference_price_usd_per_mtoken"])

    def adoption(self, step: int) -> float:
        """Adoption level A(step) on the S-curve (floor .. 1), held from the stall month on."""
        p = self.params
        stall = p["adoption_stall_month"]
        if stall >= 0:
            step = min(step, stall)
        floor = p["adoption_floor"]
        exponent = -p["adoption_speed_per_month"] * (step - p["adoption_midpoint_month"])
        return floor + (1.0 - floor) / (1.0 + np.exp(min(exponent, MAX_LOGISTIC_EXPONENT)))

    def notional_demand(self, price, step: int) -> np.ndarray:
        """Demand of every segment at ``price`` (USD per million tokens), without noise."""
        p = self.params
        growth = min(self.adoption(step) / self.adoption(0), MAX_RESPONSE)
        relative = capped_quotient(price, p["reference_price_usd_per_mtoken"])
        response = bounded_power(relative, -p["elasticity"], MAX_RESPONSE)
        return np.broadcast_to(
            p["base_demand_mtokens_per_month"] * growth * response, (self.count,)
        ).copy()

    def bid(self, market, block) -> None:
        book = market.book
        indptr, edge_seller = book.open_edges()
        counts = np.diff(indptr)[block]
        edge_buyer = np.repeat(np.arange(book.n_buyers), np.diff(indptr))
        price_sum = np.bincount(
            edge_buyer, weights=book.seller_price[edge_seller], minlength=book.n_buyers
        )[block]
        self.price_faced = np.divide(
            price_sum, counts, out=self.price_faced.copy(), where=counts > 0
        )
        sigma = self.params["demand_noise"]
        shock = np.exp(sigma * self.rng.standard_normal(self.count) - 0.5 * sigma**2)
        demand = self.notional_demand(self.price_faced, self.model.step_index) * shock
        self.last_demand = demand
        book.buyer_demand[block] = demand

    def on_bought(self, market, outcome, block) -> None:
        self.last_filled = outcome.buyer_filled[block].copy()

    def capacity(self) -> np.ndarray:
        return np.zeros(self.count)

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "demand_mtokens": self.last_demand,
            "filled_mtokens": self.last_filled,
            "price_faced_usd_per_mtoken": self.price_faced,
        }
