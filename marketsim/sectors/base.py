"""What every sector is: a population of firms whose state lives in numpy arrays.

A `Sector` subclass is one agent type (chip vendors, utilities, ...). The model calls its
methods once per step for all its firms at once; no method is ever called per firm. A
sector names the good it sells and the goods it buys, declares its parameters as a
`TableSchema`, and keeps its state in arrays with one row per firm.

The phases, in the order the model calls them each step:

- ``observe(step)``: read last step's outcomes, move pipelines (deliveries arrive).
- ``offer(market, block)``: post prices and capacity in the market of the good it sells.
- ``bid(market, block)``: write demand (and limit prices) into markets of goods it buys.
- ``on_sold(market, outcome, block)``: produce what was sold (ledger postings).
- ``on_bought(market, outcome, block)``: take delivery of what was bought.
- ``account(step)``: operating costs, depreciation, next step's prices and investments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

import numpy as np

from marketsim.recipes import Recipe
from marketsim.schema import Param
from marketsim.schema import TableSchema

if TYPE_CHECKING:
    from marketsim.markets.market import ClearingOutcome
    from marketsim.markets.market import Market
    from marketsim.model import SupplyChainModel

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8,760 / 12)."""

MAX_RESPONSE = 1e6
"""Largest factor by which a behavioural response scales a quantity.

A response is a power of a ratio: demand ``(price / reference) ** -elasticity``, savers'
inflow and lenders' collateral ``(V/F) ** sensitivity``, data centers' plans ``(V/F) **
valuation_sensitivity`` and ``(price / cost) ** price_response``. With large elasticities
the power overflows (``2.0 ** 1100`` is inf) and inf turns into NaN further on (``inf * 0``).
Capping the factor at a million keeps every quantity finite for any valid elasticity and
changes nothing at ordinary values (the shipped scenarios' results are unchanged bit for
bit): demand at a million times its reference level is saturation, not a price response.
"""

QUOTIENT_CAP = 1e100
"""Largest quantity, price or cost a sector derives by dividing by a coefficient.

Coefficients may be as small as their schema allows (a ``gt=0`` bound admits 5e-324): an
accelerator fleet planned for 5e-324 hours of use a month, or compute bought at 5e-324
million tokens per accelerator-hour, overflows to inf, and inf times a zero share is NaN.
`capped_quotient` stops such quotients at 1e100, beyond any physical economy yet so far
below the float range (1.8e308) that sums over a million firms and 100,000 steps and
products with any valid price stay finite. Ordinary quotients are untouched.
"""

COUNT = Param(
    int,
    1,
    "number of firms (or end-market segments) of this sector",
    "firms",
    ge=0,
    le=1_000_000,
    source="assumption (experiments/baseline.toml says why each count)",
)

FIRM_FINANCE = {
    "initial_cash_usd": Param(
        float, 1e9, "cash each firm holds at the start", "USD", ge=0, le=1e15, source="assumption"
    ),
    "cash_dispersion": Param(
        float,
        0.5,
        "spread of starting cash across firms: each firm's is initial_cash_usd "
        "times a lognormal draw with this log standard deviation (mean 1)",
        "log",
        ge=0,
        le=3,
        source="assumption",
    ),
    "max_debt_to_ebitda": Param(
        float,
        4.0,
        "most a firm of this sector may borrow, in years of its smoothed EBITDA",
        "years",
        ge=0,
        le=100,
        source="assumption (a common leveraged-lending ceiling)",
    ),
    "opex_share_of_revenue": Param(
        float,
        0.1,
        "operating expenses (R&D, sales, admin) as a share of revenue, paid to wages",
        "share",
        ge=0,
        lt=1,
        source="assumption",
    ),
}
"""Parameters every firm sector has: starting cash and overheads."""

ENTRY_AND_EXIT = {
    "potential_entrants": Param(
        int,
        0,
        "extra firm rows that start dormant (no capacity, no cash) and may enter when the "
        "sector's return on invested capital stays above the cost of capital (0: no entry, "
        "the sector keeps its count)",
        "firms",
        ge=0,
        le=100,
        source="assumption (0 keeps experiments without entry unchanged)",
    ),
    "entry_patience_months": Param(
        int,
        6,
        "months the sector's return on invested capital must stay above the investors' "
        "discount rate before the next dormant firm commits to enter",
        "months",
        ge=1,
        le=1200,
        source="assumption",
    ),
    "entry_lead_months": Param(
        int,
        12,
        "months from an entrant's commitment (and equity raise) to its first month of operation",
        "months",
        ge=1,
        le=240,
        source="assumption",
    ),
    "entry_scale": Param(
        float,
        0.5,
        "an entrant's starting capacity as a share of the operating firms' mean capacity; "
        "it raises this share of their mean invested capital plus cash_buffer_months of "
        "their monthly costs as equity",
        "share",
        gt=0,
        le=10,
        source="assumption",
    ),
    "exit_patience_months": Param(
        int,
        0,
        "months a firm's smoothed operating income must stay negative before it winds down "
        "(repays debt, returns its cash to shareholders, scraps its capacity); 0: firms "
        "never exit on losses, only by default",
        "months",
        ge=0,
        le=1200,
        source="assumption (0 keeps experiments without exit unchanged)",
    ),
}
"""Parameters of entry and exit (`marketsim.entry`), every firm sector has them."""


def smoothing_param(default: float, of: str = "demand") -> Param:
    """The weight of the latest month in an exponentially smoothed series."""
    return Param(
        float,
        default,
        f"weight of the latest month in smoothed {of}",
        "share",
        gt=0,
        le=1,
        source="assumption",
    )


def firm_schema(doc: str, params: dict[str, Param]) -> TableSchema:
    """The schema of a firm sector: count, its own parameters, then the finance ones.

    A sector may override a finance parameter (e.g. its own ``max_debt_to_ebitda``) by
    listing it in ``params``.
    """
    return TableSchema(params={"count": COUNT, **FIRM_FINANCE, **ENTRY_AND_EXIT, **params}, doc=doc)


class Sector:
    """Base class of a sector: one agent type, all its firms in arrays.

    Class attributes a subclass sets:
        name: the sector's name (``[agents.<name>]``, the ``sector`` column).
        schema: its parameters.
        sells: the good it sells, or None.
        buys: the goods it buys.
        purchase_flows: for each good bought, the P&L flow its payments are booked under
            (``"cost_of_goods"`` or ``"capex"``).
        has_accounts: True for firms with their own books; False for end-market segments,
            whose cash comes from the outside account ``outside_account``.
        supplies_equity: True for funds (a capital market's own accounts): they hold
            shares rather than sell a good, so finance does not pay their surplus cash out
            as dividends. The capital market itself works through the hooks
            ``marketsim_value_firms``, ``marketsim_buy_new_shares`` and
            ``marketsim_receive_dividends`` (`marketsim.equity`).
        signed_fields: names of the float attributes that may be negative (growth rates,
            earnings). The step guard (`marketsim.guard`) checks every public float
            attribute after each phase: these must be finite, all others are quantities or
            prices and must be finite and >= 0.
        recipe: what a producing sector needs per unit of capacity or output
            (`marketsim.recipes.Recipe`); empty for sectors that produce from nothing.
        input_to: for a sector that sells an input of other sectors, sector name ->
            ``{"per_<base>": amount}``: the input it adds to those sectors' recipes when it
            is present in an experiment (`marketsim.recipes`); empty by default.

    Args:
        model: the model the sector belongs to.
        params: its validated parameters (a dict, units as in the schema).
        rows: the slice of firm rows (global firm indices) it owns, if it has accounts.
        count: number of members.
        region: region index of each member.
    """

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    schema: ClassVar[TableSchema] = TableSchema()
    sells: ClassVar[str | None] = None
    buys: ClassVar[tuple[str, ...]] = ()
    purchase_flows: ClassVar[dict[str, str]] = {}
    has_accounts: ClassVar[bool] = True
    outside_account: ClassVar[str] = ""
    supplies_equity: ClassVar[bool] = False
    signed_fields: ClassVar[frozenset[str]] = frozenset({"growth_smoothed"})
    recipe: ClassVar[Recipe] = Recipe()
    input_to: ClassVar[dict[str, dict[str, float]]] = {}

    def __init__(
        self,
        model: SupplyChainModel,
        params: dict[str, Any],
        rows: slice,
        count: int,
        region: np.ndarray,
    ):
        self.model = model
        self.params = params
        self.rows = rows
        self.count = count
        self.region = region
        self.rng = model.stream(self.name)
        """This sector's own random stream (seeded from the replication's seed and its name)."""
        self.offered = np.zeros(count)
        """Quantity offered for sale this step, in the sold good's unit."""
        self.sold = np.zeros(count)
        """Quantity sold this step, in the sold good's unit."""
        self.requested = np.zeros(count)
        """Notional demand at the posted price this step, in the sold good's unit."""
        self.installed_offered = np.zeros(count)
        """`installed_capacity` when this step's offer was made (stranded assets included)."""

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Checks across parameters the schema cannot express.

        Returns:
            (key, message) for each problem, e.g. ``("max_x", "must be >= min_x, got 1")``.
        """
        return []

    # -- the phases -----------------------------------------------------------------------

    def setup(self) -> None:
        """Set initial state and opening balances (called once, before the first step)."""

    def observe(self, step: int) -> None:
        """Read last step's outcomes and advance pipelines."""

    def offer(self, market: Market, block: slice) -> None:
        """Post price and capacity for the good this sector sells."""

    def bid(self, market: Market, block: slice) -> None:
        """Write demand for a good this sector buys."""

    def on_sold(self, market: Market, outcome: ClearingOutcome, block: slice) -> None:
        """Produce what was sold: record it and post production to the ledger."""
        self.installed_offered = self.installed_capacity()
        self.sold = outcome.seller_sold[block].copy()
        self.requested = outcome.seller_requested[block].copy()

    def on_bought(self, market: Market, outcome: ClearingOutcome, block: slice) -> None:
        """Take delivery of what was bought."""

    def account(self, step: int) -> None:
        """Book operating costs and depreciation; set next step's prices and plans."""

    def on_default(self, defaulted: np.ndarray) -> None:
        """Firms (boolean mask over members) defaulted: shut their capacity.

        Also called when firms exit on losses and, before the first step, for the dormant
        rows of potential entrants (`marketsim.entry`): it must leave them with no capacity.
        """

    def on_entry(self, entering: np.ndarray) -> None:
        """Firms (boolean mask over members) start operating after entering (`marketsim.entry`).

        They hold the equity they raised as cash (USD) and nothing else. A sector sets their
        starting capacity, ``entry_scale`` times the operating firms' mean, paying for it from
        that cash (no more than they hold), and their opening prices and plans. By default
        they start with no capacity and build it by the sector's own investment rule.
        """

    # -- what the model reads ----------------------------------------------------------------

    def capacity(self) -> np.ndarray:
        """Capacity offered this step per member, in the sold good's unit."""
        return self.offered

    def installed_capacity(self) -> np.ndarray:
        """Capacity if every installed asset could run, in the sold good's unit per step.

        Equals `capacity` unless assets can sit idle for want of inputs (stranded).
        """
        return self.capacity()

    def opening_price(self) -> np.ndarray | float | None:
        """Price each member posts in the first month (the sold good's price unit), from its
        parameters, so it can be read before ``setup``; None if not known in advance. The
        market of the good publishes their mean (`marketsim.sectors.market_data`)."""
        return None

    def notional_demand(self, price, step: int) -> np.ndarray | None:
        """Each member's demand for the good it buys at ``price`` in month ``step``, without
        noise (its demand schedule); None for sectors that publish none. Sellers read the
        sum through their market (`marketsim.sectors.market_data.demand_at_price`)."""
        return None

    def physical_stocks(self) -> dict[str, np.ndarray]:
        """Good name -> what each member holds by its own state (checked against the ledger)."""
        return {}

    def firm_state(self) -> dict[str, np.ndarray]:
        """Per-member state columns for ``firms.parquet`` (name -> array, units in name)."""
        return {}

    def book_value(self) -> np.ndarray:
        """Net book value of productive assets per member (USD), for leverage limits."""
        return np.zeros(self.count)

    # -- helpers for subclasses ---------------------------------------------------------------

    @property
    def accounts(self) -> np.ndarray:
        """Ledger account of each member."""
        if self.has_accounts:
            return np.arange(self.rows.start, self.rows.stop, dtype=np.int64)
        return np.full(self.count, self.model.ledger.account(self.outside_account), np.int64)

    @property
    def alive(self) -> np.ndarray:
        """Whether each member is operating (False before it enters and after exit or default)."""
        if self.has_accounts:
            return self.model.firms.alive[self.rows]
        return np.ones(self.count, dtype=bool)

    @property
    def cash(self) -> np.ndarray:
        """Cash of each member (USD): a view of the ledger."""
        return self.model.firms.cash[self.rows]

    @property
    def revenue(self) -> np.ndarray:
        """This step's revenue of each member so far (USD)."""
        ledger = self.model.ledger
        return ledger.flow_total_in(ledger.flows.REVENUE)[self.rows]

    def pay(self, amounts: np.ndarray, to: str, flow: str) -> None:
        """Pay cash from each member to an outside account, booked under ``flow``.

        Args:
            amounts: USD per member (>= 0).
            to: outside account name (``"wages"``, ``"foundry"``, ``"fuel"``, ...).
            flow: flow name (``"opex"``, ``"cost_of_goods"``, ``"capex"``).
        """
        ledger = self.model.ledger
        ledger.transfer(
            ledger.asset("cash"),
            self.accounts,
            ledger.account(to),
            amounts,
            getattr(ledger.flows, flow.upper()),
        )

    def move_goods(self, good: str, source, destination, amounts, flow: str) -> None:
        """Post a movement of ``good`` between accounts (production, consumption, scrap)."""
        ledger = self.model.ledger
        ledger.transfer(
            ledger.asset(good), source, destination, amounts, getattr(ledger.flows, flow.upper())
        )

    def pay_overheads(self) -> None:
        """Pay operating expenses as ``opex_share_of_revenue`` of this step's revenue."""
        self.pay(self.revenue * self.params["opex_share_of_revenue"], "wages", "opex")


def shift_pipeline(pipeline: np.ndarray) -> np.ndarray:
    """Advance a delivery pipeline by one month; return what arrives now.

    ``pipeline[:, k]`` holds what arrives in ``k`` months; column 0 arrives now.
    """
    arriving = pipeline[:, 0].copy()
    pipeline[:, :-1] = pipeline[:, 1:]
    pipeline[:, -1] = 0.0
    return arriving


def bounded_power(base, exponent: float, cap: float = MAX_RESPONSE):
    """``min(base ** exponent, cap)`` for ``base >= 0``, without overflow (see `MAX_RESPONSE`).

    Exact where the power is below ``cap`` (numpy's own power, no detour through logs); an
    overflow to inf and ``0 ** negative`` give ``cap``. A float for a float, an array for an
    array.
    """
    with np.errstate(over="ignore", divide="ignore"):
        value = np.minimum(np.power(np.asarray(base, dtype=float), exponent), cap)
    return float(value) if np.ndim(value) == 0 else value


def capped_quotient(numerator, denominator, cap: float = QUOTIENT_CAP):
    """``min(numerator / denominator, cap)`` for numerator, denominator >= 0; 0 where the
    numerator is 0 (see `QUOTIENT_CAP`).

    Exact where the quotient is below ``cap``; a quotient that overflows, or a positive
    numerator over zero, gives ``cap``. A float for floats, an array for arrays.
    """
    numerator = np.asarray(numerator, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        quotient = np.true_divide(numerator, denominator)
    value = np.where(numerator > 0.0, np.minimum(quotient, cap), 0.0)
    return float(value) if np.ndim(value) == 0 else value


def smooth(previous: np.ndarray, observed: np.ndarray, weight: float) -> np.ndarray:
    """Exponential smoothing: ``weight * observed + (1 - weight) * previous``."""
    return weight * observed + (1.0 - weight) * previous
