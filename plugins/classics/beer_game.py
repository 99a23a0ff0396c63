"""The beer game (Sterman 1989) as a marketsim plugin: the bullwhip effect of Chen et al. (2000).

Four stages in a chain, each a sector of one firm: the retailer sells to customers, and
buys from the wholesaler, who buys from the distributor, who buys from the factory, which
brews. Each stage follows an order-up-to policy with a p-period moving-average forecast of
the orders it receives (Chen, Drezner, Ryan and Simchi-Levi 2000):

    y_t = L * mean(d_(t-1), ..., d_(t-p)) + z * sqrt(L) * sd(d_(t-1), ..., d_(t-p))
    q_t = max(0, y_t - position_t)

where ``d`` are the orders it received, ``L`` its lead time, ``z`` its safety factor and the
inventory position is stock on hand + in transit + ordered but not yet filled - backlog
owed downstream. As long as the ``max`` never binds, ``q_t = y_t - y_(t-1) + d_(t-1)`` and
for i.i.d. end demand ``Var(q) / Var(D) >= 1 + 2L/p + 2L^2/p^2`` at the retailer (equality at
z = 0), growing stage by stage.

Returns: Chen et al. let orders be negative (returns to the supplier). Here an order is a
quantity in a market and cannot be negative, so a stage that would return goods orders
nothing and counts the units in ``beer_returns_refused``. The shipped experiment keeps end demand
(uniform on mean +- sqrt(3) sd) narrow enough that no stage ever wants to return anything
(the test checks ``beer_returns_refused`` is 0 at every stage and step), so the linear
order-up-to algebra, and with it the bound, holds exactly.

Timing: markets clear upstream first, so in a step a stage first orders from its supplier
(on the orders it received up to last step) and then ships to its customer. An order is
delivered when its market clears and becomes usable for shipping ``L - 1`` steps later, so
the order placed in a step covers the demand of that step and the next ``L - 1``: exactly the
``L`` periods the order-up-to level is set for. A stage ships what it has on hand; what it
cannot ship is backlogged, and the customer asks for it again next step (the book shows new
orders plus the backlog; the seller counts as new orders what it was asked for beyond its
backlog).

What the plugin registers: the goods ``beer_factory``, ``beer_distributor``,
``beer_wholesaler``, ``beer_retailer`` (cases sold by that stage), the sectors
``beer_factory``, ``beer_distributor``, ``beer_wholesaler``, ``beer_retailer`` and
``beer_customers``, the sectors columns ``beer_orders_placed``, ``beer_orders_received``,
``beer_on_hand``, ``beer_backlog``, ``beer_returns_refused`` and the chain column
``beer_end_demand``.
Use: ``marketsim run experiments/classics/beer_game.toml`` (docs/classics.md).
"""

from __future__ import annotations

import numpy as np

from marketsim.plugin import GoodSpec
from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import Sector
from marketsim.plugin import TableSchema
from marketsim.plugin import firm_schema
from marketsim.plugin import hookimpl

__version__ = "1.0.0"

STAGES = ("beer_retailer", "beer_wholesaler", "beer_distributor", "beer_factory")
"""Downstream first; each stage sells the good named after it."""

GOODS = tuple(
    GoodSpec(stage, "cases", "USD per case", doc=f"cases of beer sold by the {stage[5:]}")
    for stage in reversed(STAGES)
)


def stage_schema(doc: str, unit_price: float) -> TableSchema:
    """Parameters of one stage: its ordering policy, opening state and price."""
    return firm_schema(
        doc,
        {
            "count": Param(
                int, 1, "firms at this stage (the beer game has one)", "firms", choices=(1,)
            ),
            "lead_time": Param(
                int,
                2,
                "L: periods an order covers; it is usable for shipping L - 1 steps after it "
                "is placed",
                "steps",
                ge=1,
                le=52,
                source="assumption (Chen et al. 2000 use L of a few periods)",
            ),
            "forecast_periods": Param(
                int,
                4,
                "p: periods in the moving average of orders received",
                "steps",
                ge=2,
                le=520,
                source="assumption",
            ),
            "safety_factor": Param(
                float,
                2.0,
                "z: safety stock in standard deviations of lead-time demand "
                "(0: the bound is attained)",
                "standard deviations",
                ge=0,
                le=10,
                source="assumption (a service level of about 98%)",
            ),
            "initial_forecast": Param(
                float,
                100.0,
                "orders per step the stage has seen before the run (fills its forecast window "
                "and its pipeline)",
                "cases per step",
                ge=0,
                le=1e12,
                source="assumption (the customers' mean demand)",
            ),
            "initial_stock": Param(
                float,
                10.0,
                "cases on hand at the start",
                "cases",
                ge=0,
                le=1e12,
                source="assumption",
            ),
            "unit_price": Param(
                float,
                unit_price,
                "price the stage charges per case",
                "USD per case",
                gt=0,
                le=1e9,
                source="assumption (each stage adds a margin of 1 USD)",
            ),
            "initial_cash_usd": Param(
                float, 1e6, "cash at the start", "USD", ge=0, le=1e15, source="assumption"
            ),
            "cash_dispersion": Param(float, 0.0, "log spread of starting cash", "log", ge=0, le=3),
            "opex_share_of_revenue": Param(
                float, 0.0, "overheads as a share of revenue", "share", ge=0, lt=1
            ),
        },
    )


class BeerStage(Sector):
    """One stage of the beer game: orders up to a moving-average target, ships from stock.

    State per firm: ``on_hand`` (cases of its input good ready to ship), ``pipeline``
    (cases ordered, usable in k steps), ``backlog`` (cases owed downstream), ``owed``
    (cases ordered upstream and not yet delivered), the window of orders received.
    """

    signed_fields = frozenset()

    def setup(self) -> None:
        p = self.params
        lead = p["lead_time"]
        self.window = np.full((self.count, p["forecast_periods"]), p["initial_forecast"])
        """Orders received in the last p steps (cases per step), newest first."""
        self.pipeline = np.zeros((self.count, lead))
        """``pipeline[:, k]``: cases usable for shipping in k steps (column L - 1 is newest)."""
        self.pipeline[:, : lead - 1] = p["initial_forecast"]  # the steady state's orders
        self.on_hand = np.full(self.count, p["initial_stock"])
        """Cases on hand, ready to ship."""
        self.backlog = np.zeros(self.count)
        """Cases owed to the downstream customer (asked for, not shipped)."""
        self.owed = np.zeros(self.count)
        """Cases ordered from the supplier and not yet delivered."""
        self.orders_placed = np.zeros(self.count)
        """New cases ordered this step (cases per step)."""
        self.orders_received = np.zeros(self.count)
        """New cases ordered by the downstream customer this step (cases per step)."""
        self.returns_refused = np.zeros(self.count)
        """Cases the policy wanted to return this step (a negative order), not ordered."""
        self._stock_goods()

    def _stock_goods(self) -> None:
        """Open the ledger balances of the stock the stage starts with."""
        ledger = self.model.ledger
        ledger.open_balance(
            ledger.asset(self.input_good), self.accounts, self.on_hand + self.pipeline.sum(1)
        )

    @property
    def input_good(self) -> str:
        """The good the stage holds and ships from: its supplier's (the factory: its own)."""
        return self.buys[0] if self.buys else self.sells

    def target(self) -> np.ndarray:
        """Order-up-to level ``L mean + z sqrt(L) sd`` of the orders in the window (cases)."""
        p = self.params
        lead = p["lead_time"]
        spread = self.window.std(axis=1, ddof=1)
        return lead * self.window.mean(axis=1) + p["safety_factor"] * np.sqrt(lead) * spread

    def position(self) -> np.ndarray:
        """Inventory position: on hand + in transit + owed by the supplier - backlog (cases)."""
        return self.on_hand + self.pipeline.sum(axis=1) + self.owed - self.backlog

    def place_order(self) -> np.ndarray:
        """This step's new order ``max(0, y_t - position)``; records what was refused."""
        wanted = np.where(self.alive, self.target() - self.position(), 0.0)
        self.orders_placed = np.maximum(wanted, 0.0)
        self.returns_refused = np.maximum(-wanted, 0.0)
        return self.orders_placed

    def bid(self, market, block) -> None:
        order = self.place_order()
        self.owed = self.owed + order
        market.book.buyer_demand[block] = self.owed  # new order plus what is still owed

    def on_bought(self, market, outcome, block) -> None:
        delivered = outcome.buyer_filled[block]
        self.owed = np.maximum(0.0, self.owed - delivered)
        self.pipeline[:, -1] += delivered

    def offer(self, market, block) -> None:
        self.on_hand = self.on_hand + self.pipeline[:, 0]
        self.pipeline[:, :-1] = self.pipeline[:, 1:].copy()
        self.pipeline[:, -1] = 0.0
        self.offered = np.where(self.alive, self.on_hand, 0.0)
        market.book.seller_price[block] = self.params["unit_price"]
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        new_orders = np.maximum(0.0, self.requested - self.backlog)
        self.orders_received = new_orders
        self.window[:, 1:] = self.window[:, :-1].copy()
        self.window[:, 0] = new_orders
        self.backlog = np.maximum(0.0, self.requested - self.sold)
        self.on_hand = np.maximum(0.0, self.on_hand - self.sold)
        ledger = self.model.ledger
        if self.input_good != self.sells:  # ship: a case of input becomes a case sold
            self.move_goods(
                self.input_good,
                self.accounts,
                ledger.account("consumption"),
                self.sold,
                "consumption",
            )
            self.move_goods(
                self.sells, ledger.account("production"), self.accounts, self.sold, "production"
            )

    def account(self, step: int) -> None:
        self.pay_overheads()

    def physical_stocks(self) -> dict[str, np.ndarray]:
        stock = self.on_hand + self.pipeline.sum(axis=1)
        if self.input_good == self.sells:
            return {self.sells: stock}
        return {self.input_good: stock, self.sells: np.zeros(self.count)}

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "orders_placed_cases": self.orders_placed,
            "on_hand_cases": self.on_hand,
            "backlog_cases": self.backlog,
        }


class BeerRetailer(BeerStage):
    name = "beer_retailer"
    doc = "Beer game retailer: sells to customers, orders from the wholesaler."
    sells = "beer_retailer"
    buys = ("beer_wholesaler",)
    schema = stage_schema(doc, 5.0)


class BeerWholesaler(BeerStage):
    name = "beer_wholesaler"
    doc = "Beer game wholesaler: sells to the retailer, orders from the distributor."
    sells = "beer_wholesaler"
    buys = ("beer_distributor",)
    schema = stage_schema(doc, 4.0)


class BeerDistributor(BeerStage):
    name = "beer_distributor"
    doc = "Beer game distributor: sells to the wholesaler, orders from the factory."
    sells = "beer_distributor"
    buys = ("beer_factory",)
    schema = stage_schema(doc, 3.0)


class BeerFactory(BeerStage):
    """The factory brews: its orders are production starts, paid to ``suppliers``."""

    name = "beer_factory"
    doc = "Beer game factory: sells to the distributor, brews with a lead time."
    sells = "beer_factory"
    buys = ()
    schema = stage_schema(doc, 2.0).merged(
        TableSchema(
            params={
                "brewing_cost": Param(
                    float,
                    1.0,
                    "cost of brewing a case, paid when it is started",
                    "USD per case",
                    ge=0,
                    le=1e9,
                    source="assumption",
                ),
            }
        )
    )

    def observe(self, step: int) -> None:
        started = self.place_order()  # production starts instead of an order upstream
        ledger = self.model.ledger
        self.move_goods(
            self.sells, ledger.account("production"), self.accounts, started, "production"
        )
        self.pay(started * self.params["brewing_cost"], "suppliers", "cost_of_goods")
        self.pipeline[:, -1] += started


class BeerCustomers(Sector):
    """End customers: i.i.d. demand, uniform on ``mean +- sqrt(3) sd``, from the seed.

    Unfilled demand is asked for again the next step (the retailer's backlog).
    """

    name = "beer_customers"
    doc = "Beer game customers: i.i.d. uniform demand, paid from end_customers."
    buys = ("beer_retailer",)
    has_accounts = False
    outside_account = "end_customers"
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(int, 1, "customer segments", "segments", choices=(1,)),
            "mean_demand": Param(
                float,
                100.0,
                "mean cases demanded per step",
                "cases per step",
                ge=0,
                le=1e12,
                source="assumption",
            ),
            "demand_sd": Param(
                float,
                0.4,
                "standard deviation of demand (uniform, so demand stays within mean +- 1.73 sd)",
                "cases per step",
                ge=0,
                le=1e12,
                source="assumption (narrow enough that no stage wants to return goods)",
            ),
        },
    )

    @classmethod
    def check_params(cls, params):
        if params["demand_sd"] * np.sqrt(3.0) > params["mean_demand"]:
            return [
                (
                    "demand_sd",
                    f"must be at most mean_demand / sqrt(3) = "
                    f"{params['mean_demand'] / np.sqrt(3.0):g} (demand cannot be negative), "
                    f"got {params['demand_sd']:g}",
                )
            ]
        return []

    def setup(self) -> None:
        self.demand = np.zeros(self.count)
        """New cases demanded this step."""
        self.unfilled = np.zeros(self.count)
        """Cases demanded and not yet delivered."""

    def bid(self, market, block) -> None:
        p = self.params
        half_width = np.sqrt(3.0) * p["demand_sd"]
        self.demand = p["mean_demand"] + half_width * self.rng.uniform(-1.0, 1.0, self.count)
        self.unfilled = self.unfilled + self.demand
        market.book.buyer_demand[block] = self.unfilled

    def on_bought(self, market, outcome, block) -> None:
        self.unfilled = np.maximum(0.0, self.unfilled - outcome.buyer_filled[block])

    def capacity(self) -> np.ndarray:
        return np.zeros(self.count)


def _per_stage(field: str):
    """A sectors column: each beer stage's ``field``, NaN for other sectors."""

    def compute(model) -> np.ndarray:
        return np.array(
            [
                float(getattr(s, field).sum()) if isinstance(s, BeerStage) else np.nan
                for s in model.firm_sectors
            ]
        )

    return compute


def end_demand(model) -> float:
    """New cases customers demanded this step (NaN without beer customers)."""
    customers = [s for s in model.sectors.values() if isinstance(s, BeerCustomers)]
    return float(sum(c.demand.sum() for c in customers)) if customers else float("nan")


@hookimpl
def marketsim_register_goods(register):
    for good in GOODS:
        register(good)


@hookimpl
def marketsim_register_sectors(register):
    for sector in (BeerFactory, BeerDistributor, BeerWholesaler, BeerRetailer, BeerCustomers):
        register(sector)


@hookimpl
def marketsim_register_metrics(register):
    for column, doc in (
        ("beer_orders_placed", "new cases ordered upstream (the factory: brewing started)"),
        ("beer_orders_received", "new cases ordered by the stage's customer"),
        ("beer_on_hand", "cases on hand after shipping"),
        ("beer_backlog", "cases owed downstream"),
        ("beer_returns_refused", "cases the order-up-to policy wanted to return (not ordered)"),
    ):
        register(MetricSpec("sectors", column, _per_stage(column[5:]), "cases per step", doc))
    register(
        MetricSpec("chain", "beer_end_demand", end_demand, "cases per step", "new customer demand")
    )
