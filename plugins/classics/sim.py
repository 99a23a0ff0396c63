"""Godley and Lavoie's model SIM (Monetary Economics, 2007, ch. 3) as a marketsim plugin.

Three sectors: households sell labour and buy consumption goods, firms sell output and hire
labour (producing to order, paying all they earn as wages), and the government buys
output and taxes wages. Money is the only asset: cash in the ledger, which the government
issues by spending more than it taxes. Each period

    Y = C + G,   W N = Y,   T = theta W N,   YD = W N - T,
    C = alpha1 YD + alpha2 H_(t-1),   Delta H = YD - C = G - T,

so output converges to the stationary state ``Y* = G / theta`` (100 for G = 20,
theta = 0.2), where the government's budget balances.

How the framework runs it: the goods market clears before the labour market (goods are
registered so; `tests/test_classics.py` checks the order). The government posts its
spending ``G`` in the goods market; once every buyer has posted (`marketsim_before_clear`),
households post the consumption that is consistent with the income it will generate:
knowing their propensities, their tax rate, their money ``H_(t-1)`` and the other spending
posted in the market, they solve ``C = alpha1 (1 - theta)(C + G) + alpha2 H_(t-1)`` (SIM's
within-period multiplier, which the model solves simultaneously).
Firms sell ``Y = C + G`` at a price of one wage per unit of output, then hire
``N = Y / W`` in the labour market, and households pay ``theta W N`` of their wages to the
treasury (the outside account ``taxes``, from which the government also spends: the
government is the segment that pays from it).

The transaction-flow matrix (G&L table 3.1) is recorded each step as chain columns
``sim_tfm_<row>_<column>`` computed from the ledger postings: each sector's cash paid and
received under the flow its payments are booked under (households' consumption as cost of
goods, the government's spending as opex, wages as firms' cost of goods and households'
revenue, taxes as tax) and the change in its money; firms' sales are split between
households and government by what each paid in the goods market. Every row and column sums
to zero when the ledger balances and SIM's accounting holds.

Use: ``marketsim run experiments/classics/sim.toml``; docs/classics.md gives the figures.
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

# registered labour first: the market order puts goods (output) before labour in this cycle
GOODS = (
    GoodSpec("labour", "hours", "USD per hour", doc="SIM's labour, sold by households"),
    GoodSpec(
        "output", "units", "USD per unit", doc="SIM's output, consumed or bought by the state"
    ),
)

BIG_CAPACITY = 1e15
"""Capacity posted by sectors that supply whatever is asked (units per step)."""

_NO_FINANCE = {
    "initial_cash_usd": Param(
        float,
        0.0,
        "money held at the start",
        "USD",
        ge=0,
        le=1e15,
        source="Godley and Lavoie (2007): SIM starts with no money",
    ),
    "cash_dispersion": Param(
        float, 0.0, "log spread of starting money (0: equal)", "log", ge=0, le=3
    ),
    "opex_share_of_revenue": Param(
        float, 0.0, "overheads as a share of revenue (0 in SIM)", "share", ge=0, lt=1
    ),
}


class SimHouseholds(Sector):
    """The representative household: sells labour, consumes, holds money, pays tax."""

    name = "sim_households"
    doc = "SIM households: C = alpha1 YD + alpha2 H(-1), taxed theta on wages."
    sells = "labour"
    buys = ("output",)
    schema = firm_schema(
        doc,
        {
            "count": Param(
                int,
                1,
                "households (SIM has one representative household)",
                "households",
                choices=(1,),
            ),
            "propensity_income": Param(
                float,
                0.6,
                "alpha1: propensity to consume out of disposable income",
                "share",
                gt=0,
                lt=1,
                source="Godley and Lavoie (2007), SIM: alpha1 = 0.6",
            ),
            "propensity_wealth": Param(
                float,
                0.4,
                "alpha2: propensity to consume out of money held",
                "share",
                gt=0,
                le=1,
                source="Godley and Lavoie (2007), SIM: alpha2 = 0.4",
            ),
            "tax_rate": Param(
                float,
                0.2,
                "theta: tax on wages, paid to the treasury",
                "share",
                gt=0,
                lt=1,
                source="Godley and Lavoie (2007), SIM: theta = 0.2",
            ),
            "wage": Param(
                float,
                1.0,
                "W: wage per hour",
                "USD per hour",
                gt=0,
                le=1e9,
                source="Godley and Lavoie (2007), SIM: W = 1",
            ),
            **_NO_FINANCE,
        },
    )

    def setup(self) -> None:
        self.consumption = np.zeros(self.count)
        """C: consumption bought this step (units)."""
        self.disposable_income = np.zeros(self.count)
        """YD: wages less tax this step (USD)."""

    def bid(self, market, block) -> None:
        self.plan_consumption(market, block)

    def plan_consumption(self, market, block) -> None:
        """Post ``C = (alpha1 (1 - theta) G + alpha2 H(-1)) / (1 - alpha1 (1 - theta))``.

        ``G`` is the other buyers' spending posted in the goods market. Called when
        households bid and again once every buyer has posted (`marketsim_before_clear`):
        the government, a sector without firm accounts, bids after them.
        """
        p = self.params
        others = float(market.book.buyer_demand.sum() - market.book.buyer_demand[block].sum())
        induced = p["propensity_income"] * (1.0 - p["tax_rate"])
        money = np.maximum(self.cash, 0.0)  # H(-1): nothing has been paid yet this step
        self.consumption = (induced * others / self.count + p["propensity_wealth"] * money) / (
            1.0 - induced
        )
        market.book.buyer_demand[block] = np.where(self.alive, self.consumption, 0.0)

    def on_bought(self, market, outcome, block) -> None:
        ledger = self.model.ledger
        self.consumption = outcome.buyer_filled[block].copy()
        self.move_goods(
            "output", self.accounts, ledger.account("consumption"), self.consumption, "consumption"
        )

    def offer(self, market, block) -> None:
        self.offered = np.where(self.alive, BIG_CAPACITY, 0.0)
        market.book.seller_price[block] = self.params["wage"]
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        ledger = self.model.ledger
        self.move_goods(
            "labour", ledger.account("production"), self.accounts, self.sold, "production"
        )
        wages = outcome.seller_value[block]
        tax = self.params["tax_rate"] * wages
        self.pay(tax, "taxes", "tax")  # withheld from this step's wages
        self.disposable_income = wages - tax

    def capacity(self) -> np.ndarray:
        return self.offered

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {"labour": np.zeros(self.count), "output": np.zeros(self.count)}


class SimFirms(Sector):
    """Firms: sell what is demanded at one wage per unit, hire the labour to make it."""

    name = "sim_firms"
    doc = "SIM firms: produce to order, Y = C + G, pay all of it as wages (N = Y / W)."
    sells = "output"
    buys = ("labour",)
    schema = firm_schema(
        doc,
        {
            "count": Param(int, 1, "firms (they share sales equally)", "firms", ge=1, le=1000),
            "price": Param(
                float,
                1.0,
                "price of output (a wage per unit: zero profit)",
                "USD per unit",
                gt=0,
                le=1e9,
                source="Godley and Lavoie (2007), SIM: p = W / productivity = 1",
            ),
            "labour_per_unit": Param(
                float,
                1.0,
                "hours of labour per unit of output",
                "hours",
                gt=0,
                le=1e9,
                source="Godley and Lavoie (2007): 1",
            ),
            **_NO_FINANCE,
        },
    )

    def setup(self) -> None:
        self.hired = np.zeros(self.count)
        """N: hours hired this step."""

    def offer(self, market, block) -> None:
        self.offered = np.where(self.alive, BIG_CAPACITY, 0.0)
        market.book.seller_price[block] = self.params["price"]
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        ledger = self.model.ledger
        self.move_goods(
            "output", ledger.account("production"), self.accounts, self.sold, "production"
        )

    def bid(self, market, block) -> None:
        self.hired = self.sold * self.params["labour_per_unit"]
        market.book.buyer_demand[block] = np.where(self.alive, self.hired, 0.0)

    def on_bought(self, market, outcome, block) -> None:
        ledger = self.model.ledger
        used = outcome.buyer_filled[block]
        self.move_goods("labour", self.accounts, ledger.account("consumption"), used, "consumption")

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {"labour": np.zeros(self.count), "output": np.zeros(self.count)}


class SimGovernment(Sector):
    """The government: buys G of output each step from the treasury (outside account
    ``taxes``), into which households pay their taxes; spending above taxes is new money."""

    name = "sim_government"
    doc = "SIM government: spends G from the treasury, where taxes are paid."
    buys = ("output",)
    purchase_flows = {"output": "opex"}
    has_accounts = False
    outside_account = "taxes"
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(int, 1, "governments", "governments", choices=(1,)),
            "spending": Param(
                float,
                20.0,
                "G: government purchases of output per step",
                "USD per step",
                ge=0,
                le=1e12,
                source="Godley and Lavoie (2007), SIM: G = 20",
            ),
        },
    )

    def setup(self) -> None:
        self.purchases = np.zeros(self.count)
        """G bought this step (units)."""

    def bid(self, market, block) -> None:
        market.book.buyer_demand[block] = self.params["spending"] / self.count

    def on_bought(self, market, outcome, block) -> None:
        self.purchases = outcome.buyer_filled[block].copy()

    def capacity(self) -> np.ndarray:
        return np.zeros(self.count)


# --- the transaction-flow matrix -------------------------------------------------------------

ROWS = ("consumption", "government", "wages", "taxes", "money")
COLUMNS = ("households", "firms", "government")
CELLS = (
    ("consumption", "households"),
    ("consumption", "firms"),
    ("government", "firms"),
    ("government", "government"),
    ("wages", "households"),
    ("wages", "firms"),
    ("taxes", "households"),
    ("taxes", "government"),
    ("money", "households"),
    ("money", "firms"),
    ("money", "government"),
)
"""The non-empty cells of SIM's transaction-flow matrix (G&L table 3.1), row then column."""


def _find(model, cls):
    return next((s for s in model.sectors.values() if isinstance(s, cls)), None)


def transaction_flow_matrix(model) -> dict[tuple[str, str], float] | None:
    """This step's transaction-flow matrix of SIM (USD), from the ledger's postings.

    Sources of funds are positive and uses negative; the money row is minus each sector's
    change in cash (an increase in money held is a use of funds). None without SIM's
    three sectors.
    """
    households = _find(model, SimHouseholds)
    firms = _find(model, SimFirms)
    government = _find(model, SimGovernment)
    market = model.markets.get("output")
    if households is None or firms is None or government is None or market is None:
        return None
    ledger = model.ledger
    cash = ledger.asset("cash")
    flows = ledger.flows

    def paid(accounts, flow) -> float:
        return float(ledger.flow_out[cash, flow, accounts].sum())

    def received(accounts, flow) -> float:
        return float(ledger.flow_in[cash, flow, accounts].sum())

    def change(accounts) -> float:
        return float((ledger.balances[cash, accounts] - ledger.opening[cash, accounts]).sum())

    h, f, g = households.accounts, firms.accounts, np.unique(government.accounts)
    sales = received(f, flows.REVENUE)
    spent = market.outcome.buyer_value * market.billed_units_per_unit
    by_households = sum(
        float(spent[start : start + count].sum())
        for sector, start, count in market.buyers.sectors
        if sector is households
    )
    households_share = by_households / float(spent.sum()) if spent.sum() > 0 else 0.0
    return {
        ("consumption", "households"): -paid(h, flows.COST_OF_GOODS),
        ("consumption", "firms"): sales * households_share,
        ("government", "firms"): sales * (1.0 - households_share),
        ("government", "government"): -paid(g, flows.OPEX),
        ("wages", "households"): received(h, flows.REVENUE),
        ("wages", "firms"): -paid(f, flows.COST_OF_GOODS),
        ("taxes", "households"): -paid(h, flows.TAX),
        ("taxes", "government"): received(g, flows.TAX),
        ("money", "households"): -change(h),
        ("money", "firms"): -change(f),
        ("money", "government"): -change(g),
    }


def _cell(row: str, column: str):
    def compute(model) -> float:
        matrix = transaction_flow_matrix(model)
        return float("nan") if matrix is None else matrix[(row, column)]

    return compute


def _output(model) -> float:
    firms = _find(model, SimFirms)
    return float(firms.sold.sum()) if firms is not None else float("nan")


def _money(model) -> float:
    households = _find(model, SimHouseholds)
    return float(households.cash.sum()) if households is not None else float("nan")


@hookimpl
def marketsim_before_clear(model, market):
    """Households settle their consumption once every buyer of output has posted."""
    if market.name != "output":
        return
    for sector, start, count in market.buyers.sectors:
        if isinstance(sector, SimHouseholds):
            sector.plan_consumption(market, slice(start, start + count))


@hookimpl
def marketsim_register_goods(register):
    for good in GOODS:
        register(good)


@hookimpl
def marketsim_register_sectors(register):
    for sector in (SimHouseholds, SimFirms, SimGovernment):
        register(sector)


@hookimpl
def marketsim_register_metrics(register):
    register(MetricSpec("chain", "sim_output", _output, "units per step", "Y = C + G"))
    register(MetricSpec("chain", "sim_money", _money, "USD", "H: money held by households"))
    for row, column in CELLS:
        register(
            MetricSpec(
                "chain",
                f"sim_tfm_{row}_{column}",
                _cell(row, column),
                "USD per step",
                f"transaction-flow matrix, row {row}, column {column} (+ source, - use)",
            )
        )
