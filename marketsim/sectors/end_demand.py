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

Heterogeneous buyers (a population of enterprises rather than a few regional segments; the
defaults, all 0, give identical segments and the formula above exactly). Each member ``k``
draws once, at build, from a stream of its own (``end_demand.population``, so the monthly
noise is the same draw with or without them):

- its size ``s_k``, a mean-one lognormal with log-sd ``size_dispersion``:
  ``base_k = base * s_k`` (firm sizes are heavy-tailed; docs/calibration.md: enterprise buyers);
- its elasticity, a mean-preserving lognormal with log-sd ``elasticity_dispersion`` around
  ``elasticity``, capped at 10 (the parameter's bound);
- its adoption midpoint ``m_k ~ Normal(midpoint, adoption_midpoint_spread_months)``: each
  buyer has its own S-curve ``A_k(t)`` and grows by ``A_k(t) / A_k(0)``; the market's
  adoption is the spread-out sum of these (diffusion through a population of adopters);
- its budget: with ``budget_to_reference_spend`` = b > 0, it spends at most
  ``b * base_k * reference_price`` a month (``s_k`` sets both), so its demand is
  ``min(D_k, budget_k / p_k)``: above the price where the budget binds, demand is unit-elastic.

Saturation: the price response ``(p_k / p_ref) ** (-elasticity)`` and the adoption growth
``A(t) / A(0)`` are each at most `MAX_RESPONSE` (a million), so demand stays finite at any
valid price, elasticity and S-curve; the logistic's exponent is clipped at 709, where
``exp`` would overflow (adoption is then 1e-308 of its long-run level, i.e. zero).
"""

from __future__ import annotations

import numpy as np

from marketsim.markets.edges import buyer_edge_sums
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient

MAX_LOGISTIC_EXPONENT = 709.0
"""Largest exponent passed to ``exp`` in the adoption S-curve (``exp(710)`` overflows)."""


def _mean_one_lognormal(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """``n`` draws of a lognormal with mean one and log-sd ``sigma`` (ones when 0)."""
    if sigma <= 0:
        return np.ones(n)
    return np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma**2)


class EndDemand(Sector):
    """Customer segments buying tokens (see module doc)."""

    name = "end_demand"
    doc = "End customers: adoption S-curve times price^(-elasticity), optional noise."
    buys = ("tokens",)
    purchase_flows = {"tokens": "cost_of_goods"}
    has_accounts = False
    outside_account = "end_customers"
    signed_fields = Sector.signed_fields | {"midpoint"}
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
            "size_dispersion": Param(
                float,
                0.0,
                "log-sd of the mean-one lognormal size of each member (0: equal sizes)",
                "log",
                ge=0,
                le=5,
                source="assumption (docs/calibration.md: enterprise buyers: firm sizes are "
                "heavy-tailed)",
            ),
            "elasticity_dispersion": Param(
                float,
                0.0,
                "log-sd of each member's elasticity around `elasticity` (mean-preserving "
                "lognormal, capped at 10; 0: all share it)",
                "log",
                ge=0,
                le=3,
                source="assumption",
            ),
            "adoption_midpoint_spread_months": Param(
                float,
                0.0,
                "standard deviation of each member's own adoption midpoint around "
                "`adoption_midpoint_month` (0: one S-curve for all)",
                "months",
                ge=0,
                le=10_000,
                source="assumption (docs/calibration.md: enterprise buyers: adoption)",
            ),
            "budget_to_reference_spend": Param(
                float,
                0.0,
                "each member's monthly budget as a multiple of its spending at the start "
                "(base demand x reference price); demand above budget / price is cut "
                "(0: no budget limit)",
                "ratio",
                ge=0,
                le=1e6,
                source="assumption",
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

    def __init__(self, model, params, rows, count, region):
        super().__init__(model, params, rows, count, region)
        self._draw_population()  # before any sector's setup may read notional_demand

    def setup(self) -> None:
        self.last_demand = np.zeros(self.count)
        self.last_filled = np.zeros(self.count)
        self.price_faced = np.full(self.count, self.params["reference_price_usd_per_mtoken"])

    def _draw_population(self) -> None:
        """Draw each member's size, elasticity, adoption midpoint and budget (module doc)."""
        p = self.params
        rng = self.model.stream(f"{self.name}.population")
        n = self.count
        self.size = _mean_one_lognormal(rng, p["size_dispersion"], n)
        """Each member's size relative to the mean (mean-one lognormal)."""
        self.elasticity = np.minimum(
            p["elasticity"] * _mean_one_lognormal(rng, p["elasticity_dispersion"], n), 10.0
        )
        """Each member's price elasticity of demand (ratio)."""
        spread = p["adoption_midpoint_spread_months"]
        self.midpoint = p["adoption_midpoint_month"] + (
            spread * rng.standard_normal(n) if spread > 0 else np.zeros(n)
        )
        """Each member's adoption midpoint (months)."""
        budget = p["budget_to_reference_spend"]
        self.budget_usd = (
            budget
            * p["base_demand_mtokens_per_month"]
            * p["reference_price_usd_per_mtoken"]
            * self.size
            if budget > 0
            else None
        )
        """Each member's monthly budget (USD per month); None without budgets."""
        self._adoption_at_start = self.member_adoption(0)
        self._heterogeneous = bool(
            p["size_dispersion"] or p["elasticity_dispersion"] or spread or budget
        )

    def adoption(self, step: int) -> float:
        """Adoption level A(step) on the common S-curve (floor .. 1), held from the stall
        month on (the members' own S-curves: `member_adoption`)."""
        return float(self._adoption(step, self.params["adoption_midpoint_month"]))

    def member_adoption(self, step: int) -> np.ndarray:
        """Each member's adoption level A_k(step) on its own S-curve (floor .. 1)."""
        return np.asarray(self._adoption(step, self.midpoint), dtype=float)

    def _adoption(self, step: int, midpoint):
        p = self.params
        stall = p["adoption_stall_month"]
        if stall >= 0:
            step = min(step, stall)
        floor = p["adoption_floor"]
        exponent = -p["adoption_speed_per_month"] * (step - midpoint)
        return floor + (1.0 - floor) / (1.0 + np.exp(np.minimum(exponent, MAX_LOGISTIC_EXPONENT)))

    def notional_demand(self, price, step: int) -> np.ndarray:
        """Demand of every member at ``price`` (USD per million tokens), without noise
        (million tokens per month)."""
        p = self.params
        relative = capped_quotient(price, p["reference_price_usd_per_mtoken"])
        if not self._heterogeneous:
            growth = min(self.adoption(step) / self.adoption(0), MAX_RESPONSE)
            response = bounded_power(relative, -p["elasticity"], MAX_RESPONSE)
            return np.broadcast_to(
                p["base_demand_mtokens_per_month"] * growth * response, (self.count,)
            ).copy()
        growth = capped_quotient(self.member_adoption(step), self._adoption_at_start, MAX_RESPONSE)
        response = bounded_power(relative, -self.elasticity, MAX_RESPONSE)
        demand = p["base_demand_mtokens_per_month"] * self.size * growth * response
        if self.budget_usd is not None:
            affordable = capped_quotient(self.budget_usd, price)
            demand = np.minimum(demand, affordable)
        return demand

    def bid(self, market, block) -> None:
        book = market.book
        indptr, edge_seller = book.open_edges()
        counts = np.diff(indptr)[block]
        price_sum = buyer_edge_sums(indptr, edge_seller, book.seller_price)[block]
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
