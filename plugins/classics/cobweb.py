"""The cobweb model (Ezekiel 1938) as a marketsim plugin: farmers plant on last season's price.

Demand is ``D = a - b p_t`` and supply ``S = c + d p_(t-1)``: farmers decide what to plant
from the price they saw last season (static expectations), the harvest comes in whatever
this season's price turns out to be, and the market clears at the price where consumers
take the whole harvest. Around the equilibrium ``p* = (a - c) / (b + d)`` the deviation
obeys ``p_t - p* = -(d / b) (p_(t-1) - p*)``: successive price changes alternate in sign and
shrink (d < b, stable) or grow (d > b, unstable) by the factor ``d / b``.

What the plugin registers:

- the good ``grain`` (tonnes, USD per tonne);
- the sector ``grain_farmers`` (firms): aggregate supply ``c + d p_(t-1)`` split equally over
  the farmers, each paying the production cost that makes that supply its profit-maximising
  choice at the expected price (marginal cost ``(S - c) / d`` for the sector);
- the sector ``grain_consumers`` (end-market segments paying from ``end_customers``):
  aggregate demand ``a - b p`` split equally over the segments;
- the mechanism ``linear_demand``: one market-clearing price for the whole market, at which
  buyers' linear demand schedules take sellers' (inelastic) harvest;
- the chain metric ``cobweb_equilibrium_price`` (``p*``, to read deviations against).

Why a mechanism clears the market: the price is where everyone's schedules meet, which no
single sector knows; consumers state their schedules in the order book (quantity at price
zero and the choke price where they stop buying), farmers their harvest, and the mechanism
solves the piecewise-linear equation in closed form. Farmers read last season's price from
the market's outcome (public market data), not from the consumers.

Use: ``marketsim run experiments/classics/cobweb_stable.toml`` (d/b = 0.8) or
``cobweb_unstable.toml`` (d/b = 1.2); docs/classics.md gives the measured figures.
"""

from __future__ import annotations

import numpy as np

from marketsim.plugin import ClearingOutcome
from marketsim.plugin import GoodSpec
from marketsim.plugin import MechanismSpec
from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import Sector
from marketsim.plugin import TableSchema
from marketsim.plugin import firm_schema
from marketsim.plugin import hookimpl

__version__ = "1.0.0"

GRAIN = GoodSpec(
    "grain",
    "tonnes",
    "USD per tonne",
    default_mechanism="linear_demand",
    doc="a crop planted a season ahead of its sale (the cobweb model's good)",
)


def clear_linear_demand(book, params) -> ClearingOutcome:
    """Clear a market of linear demand schedules against inelastic supply at one price.

    Buyer ``i`` demands ``a_i max(0, 1 - p / L_i)``: ``a_i`` is ``buyer_demand`` (its demand
    at price zero, in the good's unit) and ``L_i`` is ``buyer_limit_price`` (its choke price,
    > 0). Sellers supply their ``seller_capacity`` whatever the price (a harvest; the posted
    price is not used). The price solves ``sum_i D_i(p) = S``; when supply exceeds demand at
    price zero the price is zero and the surplus is left unsold (pro rata), and when there is
    no supply the price is the highest choke price and nothing trades. Only buyers and
    sellers with an open edge take part (one price for the whole market, as in a call
    auction). Deterministic; every array finite and >= 0.
    """
    indptr, edge_seller = book.open_edges()
    buyer_in = np.diff(indptr) > 0
    seller_in = np.bincount(edge_seller, minlength=book.n_sellers) > 0
    intercept = np.where(buyer_in, book.buyer_demand, 0.0)
    choke = np.where(buyer_in, book.buyer_limit_price, 0.0)
    supply = np.where(seller_in, book.seller_capacity, 0.0)
    total_supply = float(supply.sum())
    price = _clearing_price(intercept, choke, total_supply)
    filled = _demand_at(intercept, choke, price)
    traded = float(filled.sum())
    share = min(1.0, traded / total_supply) if total_supply > 0 else 0.0
    sold = supply * share
    return ClearingOutcome(
        seller_sold=sold,
        seller_requested=sold.copy(),  # at the one clearing price, what buyers take of each
        seller_value=sold * price,
        buyer_filled=filled,
        buyer_unfilled=np.maximum(0.0, _demand_at(intercept, choke, price) - filled),
        buyer_value=filled * price,
        price=float(price),
    )


def _demand_at(intercept: np.ndarray, choke: np.ndarray, price: float) -> np.ndarray:
    """Each buyer's demand ``a_i max(0, 1 - p / L_i)`` at ``price`` (0 where L_i <= 0)."""
    relative = np.divide(price, choke, out=np.ones_like(choke), where=choke > 0)
    return intercept * np.clip(1.0 - relative, 0.0, 1.0)


def _clearing_price(intercept: np.ndarray, choke: np.ndarray, supply: float) -> float:
    """The price at which the linear schedules take ``supply`` (see `clear_linear_demand`).

    Aggregate demand is piecewise linear and falls through the choke prices sorted in
    ascending order; between two of them it is ``A_k - p B_k`` over the buyers still buying,
    so the segment where it crosses ``supply`` gives the price in closed form.
    """
    active = (intercept > 0) & (choke > 0)
    if not active.any():
        return 0.0
    if supply <= 0:
        return float(choke[active].max())
    a, limit = intercept[active], choke[active]
    order = np.argsort(limit, kind="stable")
    a, limit = a[order], limit[order]
    slope = a / limit
    # demand over the buyers with choke above the segment: suffix sums
    a_above = np.cumsum(a[::-1])[::-1]
    slope_above = np.cumsum(slope[::-1])[::-1]
    at_breaks = a_above - limit * slope_above  # demand just below each choke price
    if supply >= a_above[0]:
        return 0.0
    # the first breakpoint where demand has fallen to or below supply ends the segment
    k = int(np.argmax(at_breaks <= supply))
    price = (a_above[k] - supply) / slope_above[k]
    return float(max(0.0, price))


LINEAR_DEMAND = MechanismSpec(
    name="linear_demand",
    clear=clear_linear_demand,
    schema=TableSchema(doc="One market-clearing price for linear demand schedules.", params={}),
    doc="One price where buyers' linear demand schedules take sellers' inelastic supply.",
)


class GrainFarmers(Sector):
    """Farmers who plant on last season's price: supply ``c + d p_(t-1)``, split equally.

    Each farmer's harvest is ``(c + d p_(t-1)) / n`` tonnes. Its production cost is the one
    for which that is the profit-maximising harvest at the expected price: the sector's
    marginal cost is ``max(0, (S - c) / d)`` USD per tonne at sector output ``S``, so a farmer
    pays ``n / (2 d) max(0, q - c / n)^2`` USD for a harvest of ``q`` tonnes.
    """

    name = "grain_farmers"
    doc = "Cobweb farmers: plant c + d x last season's price, sell the harvest at any price."
    sells = "grain"
    schema = firm_schema(
        doc,
        {
            "count": Param(
                int, 1, "number of farmers (they share the supply equally)", "firms", ge=1, le=1000
            ),
            "supply_intercept": Param(
                float,
                20.0,
                "c: aggregate harvest planted when last season's price was zero",
                "tonnes per step",
                ge=0,
                le=1e12,
                source="assumption (textbook example)",
            ),
            "supply_slope": Param(
                float,
                0.8,
                "d: extra tonnes planted per USD of last season's price (aggregate)",
                "tonnes per USD per tonne",
                gt=0,
                le=1e12,
                source="assumption (d/b = 0.8: the stable cobweb)",
            ),
            "initial_price": Param(
                float,
                45.0,
                "the price farmers saw the season before the run (p_(-1))",
                "USD per tonne",
                ge=0,
                le=1e12,
                source="assumption (a perturbation of the equilibrium)",
            ),
            "initial_cash_usd": Param(
                float, 1e4, "cash each farmer holds at the start", "USD", ge=0, le=1e15
            ),
            "cash_dispersion": Param(
                float, 0.0, "log spread of starting cash (0: equal)", "log", ge=0, le=3
            ),
            "opex_share_of_revenue": Param(
                float, 0.0, "overheads as a share of revenue", "share", ge=0, lt=1
            ),
        },
    )

    def setup(self) -> None:
        self.expected_price = np.full(self.count, self.params["initial_price"])
        """The price each farmer plants on: last season's market price (USD per tonne)."""
        self.harvest = np.zeros(self.count)
        """Tonnes harvested this season (offered whatever the price)."""
        self.last_price = self.expected_price.copy()
        """This season's clearing price, read from the market's outcome (USD per tonne)."""

    def offer(self, market, block) -> None:
        p = self.params
        planted = (p["supply_intercept"] + p["supply_slope"] * self.expected_price) / self.count
        self.harvest = np.where(self.alive, planted, 0.0)
        self.offered = self.harvest
        market.book.seller_price[block] = np.maximum(self.expected_price, 1e-9)  # not used
        market.book.seller_capacity[block] = self.harvest

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        self.last_price = np.full(self.count, outcome.price)
        ledger = self.model.ledger
        self.move_goods(
            "grain", ledger.account("production"), self.accounts, self.sold, "production"
        )
        p = self.params
        above = np.maximum(0.0, self.harvest - p["supply_intercept"] / self.count)
        self.pay(self.count / (2.0 * p["supply_slope"]) * above**2, "suppliers", "cost_of_goods")

    def account(self, step: int) -> None:
        self.pay_overheads()
        self.expected_price = self.last_price.copy()  # next season's planting price

    def on_default(self, defaulted) -> None:
        self.harvest[defaulted] = 0.0

    def firm_state(self) -> dict[str, np.ndarray]:
        return {"harvest_tonnes": self.harvest, "expected_price_usd": self.expected_price}


class GrainConsumers(Sector):
    """Consumers with linear demand ``a - b p``, split equally over the segments.

    Each segment states its schedule in the order book: ``a / n`` tonnes at price zero
    (``buyer_demand``) falling to zero at the choke price ``a / b`` (``buyer_limit_price``).
    They pay from the outside account ``end_customers``.
    """

    name = "grain_consumers"
    doc = "Cobweb consumers: linear demand a - b x price, paid from end_customers."
    buys = ("grain",)
    has_accounts = False
    outside_account = "end_customers"
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(int, 1, "number of consumer segments", "segments", ge=1, le=1000),
            "demand_intercept": Param(
                float,
                100.0,
                "a: aggregate tonnes demanded at price zero",
                "tonnes per step",
                gt=0,
                le=1e12,
                source="assumption (textbook example)",
            ),
            "demand_slope": Param(
                float,
                1.0,
                "b: tonnes fewer demanded per USD of price (aggregate)",
                "tonnes per USD per tonne",
                gt=0,
                le=1e12,
                source="assumption",
            ),
        },
    )

    def setup(self) -> None:
        self.bought = np.zeros(self.count)
        """Tonnes bought this season."""

    def bid(self, market, block) -> None:
        p = self.params
        market.book.buyer_demand[block] = p["demand_intercept"] / self.count
        market.book.buyer_limit_price[block] = p["demand_intercept"] / p["demand_slope"]

    def on_bought(self, market, outcome, block) -> None:
        self.bought = outcome.buyer_filled[block].copy()

    def capacity(self) -> np.ndarray:
        return np.zeros(self.count)


def equilibrium_price(model) -> float:
    """``p* = (a - c) / (b + d)`` (USD per tonne): where the cobweb would settle."""
    farmers = model.sectors.get("grain_farmers")
    consumers = model.sectors.get("grain_consumers")
    if farmers is None or consumers is None:
        return float("nan")
    f, c = farmers.params, consumers.params
    gap = c["demand_intercept"] - f["supply_intercept"]
    return max(0.0, gap) / (c["demand_slope"] + f["supply_slope"])


@hookimpl
def marketsim_register_goods(register):
    register(GRAIN)


@hookimpl
def marketsim_register_sectors(register):
    register(GrainFarmers)
    register(GrainConsumers)


@hookimpl
def marketsim_register_mechanisms(register):
    register(LINEAR_DEMAND)


@hookimpl
def marketsim_register_metrics(register):
    register(
        MetricSpec(
            "chain",
            "cobweb_equilibrium_price",
            equilibrium_price,
            "USD per tonne",
            "p* = (a - c) / (b + d), the cobweb's equilibrium price",
        )
    )
