"""Inference-software firms: buy compute, turn it into tokens, sell tokens.

Efficiency ``e`` (million tokens per accelerator-hour) grows with software spending and may
jump once by a configured gain (the "20%" lever):
    e[t+1] = e[t] * (1 + software_productivity * software_spend_share)
    e      = e * (1 + efficiency_gain)     once, at step efficiency_gain_step
Compute bid (a demand curve in the compute price): expected token demand is smoothed
notional token demand grown by its smoothed growth for one month, moved along the token
demand curve to the token price this month's compute price calls for, plus a
``compute_buffer``:
    p_c    = capacity-weighted mean compute price posted by the firm's suppliers this month
    needed = (p_c / e) / (1 - L_i),   L_i = min(max_lerner, s_i / demand_elasticity)
    compute = expected * clip(needed / price, 0.1, 10) ** -demand_elasticity / e * (1 + buffer)
So dearer compute buys less of it: when powered capacity is scarce the compute price rises
until the bids fit it, and the data centers, not the inference firms, earn the rent. The
firm's limit price for compute (``buyer_limit_price``, USD per accelerator-hour) is what an
accelerator-hour is worth to it, ``price * e * (1 - L_i)``: data centers price no higher.
Tokens offered = compute received * e; compute left unused is wasted (still paid for).

Token price rule (`marketsim.sectors.competition`: a Lerner markup from the firm's smoothed
share of tokens sold, raised towards the clearing price when token demand exceeds the
tokens it can serve):
    cost   = compute price paid / e
    target = lerner_scarcity_price(cost, share, demand_elasticity, ...)
    price  = price + price_adjustment * (target - price)

Bounds (none binds in the shipped scenarios): efficiency stops at
``MAX_TOKENS_PER_ACC_HOUR_MILLIONS`` (compounding 2%/month passes float's range after
about 36,000 months), and the compute bid is a `capped_quotient` (at 5e-324 million tokens
per accelerator-hour it would overflow).
"""

from __future__ import annotations

import numpy as np

from marketsim.entry import operating_mean
from marketsim.recipes import Input
from marketsim.recipes import Recipe
from marketsim.schema import Param
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import firm_schema
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param
from marketsim.sectors.competition import competition_params
from marketsim.sectors.competition import equal_shares
from marketsim.sectors.competition import lerner_scarcity_target
from marketsim.sectors.competition import partial_adjustment
from marketsim.sectors.competition import smoothed_shares
from marketsim.sectors.market_data import demand_at_price

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
    recipe = Recipe(
        inputs=(
            Input(
                "compute",
                "unit_output",
                divide_by=("tokens_per_acc_hour_millions",),
                stock=False,
                doc="accelerator-hours per million tokens: 1 / efficiency (efficiency starts at "
                "tokens_per_acc_hour_millions and grows with software work)",
            ),
        )
    )
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
                "price at fixed capability (docs/calibration.md: compute)",
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
            **competition_params(
                1.2,
                "docs/calibration.md: the revenue gap: price elasticity of compute demand "
                "not published; the end market's baseline elasticity",
                1.0,
            ),
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
        self.market_share = equal_shares(n)
        """Smoothed share of the tokens the sector sells (0..1): sets the Lerner markup."""

    def observe(self, step: int) -> None:
        p = self.params
        if step == p["efficiency_gain_step"]:
            self.efficiency = np.minimum(
                self.efficiency * (1.0 + p["efficiency_gain"]), MAX_TOKENS_PER_ACC_HOUR_MILLIONS
            )

    def bid(self, market, block) -> None:
        p = self.params
        expected = self.demand_smoothed * (1.0 + self.growth_smoothed)
        expected = expected * self._demand_response(market.book, block)
        compute = capped_quotient(expected, self.efficiency) * (1.0 + p["compute_buffer"])
        market.book.buyer_demand[block] = np.where(self.alive, compute, 0.0)
        # the most an accelerator-hour is worth to the firm: the tokens it serves at today's
        # price, less the firm's Lerner margin
        market.book.buyer_limit_price[block] = (
            self.price * self.efficiency * (1.0 - self.lerner_index())
        )

    def lerner_index(self) -> np.ndarray:
        """Each firm's Lerner index (P - MC) / P from its share (see module doc), 0..1."""
        p = self.params
        return np.minimum(p["max_lerner"], self.market_share / p["demand_elasticity"])

    def _demand_response(self, book, block) -> np.ndarray:
        """Token demand at the price this month's compute prices call for, relative to
        demand at today's token price (``clip(needed / price, 0.1, 10) ** -elasticity``,
        unit-free: the firm plans at its target price, looking at most 10x either way).

        The compute price a firm expects is the capacity-weighted mean of the prices posted
        by the data centers it can buy from (its open supply edges; their plain mean where
        none has capacity).
        """
        p = self.params
        indptr, edge_seller = book.open_edges()
        n_buyers = book.n_buyers
        edge_buyer = np.repeat(np.arange(n_buyers), np.diff(indptr))
        prices = book.seller_price[edge_seller]
        weights = book.seller_capacity[edge_seller]
        weighted = np.bincount(edge_buyer, weights=prices * weights, minlength=n_buyers)
        capacity = np.bincount(edge_buyer, weights=weights, minlength=n_buyers)
        edges = np.bincount(edge_buyer, minlength=n_buyers)
        plain = np.bincount(edge_buyer, weights=prices, minlength=n_buyers)
        compute_price = np.where(
            capacity > 0,
            capped_quotient(weighted, capacity),
            capped_quotient(plain, np.maximum(edges, 1)),
        )[block]
        cost = capped_quotient(compute_price, self.efficiency)
        needed = capped_quotient(cost, 1.0 - self.lerner_index())
        ratio = np.clip(capped_quotient(needed, self.price), 0.1, 10.0)
        return np.where(compute_price > 0, bounded_power(ratio, -p["demand_elasticity"]), 1.0)

    def _initial_token_demand(self) -> np.ndarray:
        """Token demand at the opening price, shared equally: the first month's plan.

        What the token market's buyers would buy at the firms' mean opening price
        (`marketsim.sectors.market_data.demand_at_price`: their published demand schedules).
        """
        market = self.model.markets.get(self.sells)
        if self.count == 0:
            return np.zeros(0)
        total = demand_at_price(market, float(self.price.mean()), step=0)
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
        self.market_share = smoothed_shares(
            self.market_share, self.sold, self.alive, p["share_smoothing"]
        )
        has_cost = cost_per_mtoken > 0
        unit_cost = np.where(has_cost, cost_per_mtoken, self.price * (1.0 - self.lerner_index()))
        target = lerner_scarcity_target(
            p, unit_cost, self.market_share, self.price, self.requested, self.offered
        )
        self.price = partial_adjustment(self.price, target, p["price_adjustment"])

    def on_default(self, defaulted) -> None:
        self.compute_bought[defaulted] = 0.0
        self.demand_smoothed[defaulted] = 0.0
        self.market_share[defaulted] = 0.0

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {"compute": np.zeros(self.count), "tokens": np.zeros(self.count)}

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd_per_mtoken": self.price,
            "tokens_per_acc_hour_millions": self.efficiency,
            "compute_bought_acc_hours": self.compute_bought,
            "market_share": self.market_share,
        }

    def on_entry(self, entering) -> None:
        """Entrants (mask) license the operating firms' mean software (efficiency), post their
        mean price and plan for ``entry_scale`` x their mean smoothed token demand."""
        p = self.params
        start = p["tokens_per_acc_hour_millions"]
        efficiency = operating_mean(self, entering, self.efficiency, start)
        price = operating_mean(self, entering, self.price, p["initial_price_usd_per_mtoken"])
        demand = p["entry_scale"] * operating_mean(self, entering, self.demand_smoothed, 0.0)
        self.efficiency = np.where(entering, efficiency, self.efficiency)
        self.price = np.where(entering, price, self.price)
        self.demand_smoothed = np.where(entering, demand, self.demand_smoothed)
        self.growth_smoothed = np.where(entering, 0.0, self.growth_smoothed)
