"""On-site generation / PPA developers: power sold to data centers beside the utilities.

Where the grid cannot connect a large load for years, data centers buy power from developers
who build generation on or next to the site (gas turbines and engines behind the meter, or
solar plus storage under a power purchase agreement) in far less time than a grid
interconnection takes. This plugin adds a second kind of seller of the existing good
``power``, the sector ``onsite_power``:

- **capacity in MW built with its own lead time**: each month a developer orders the MW its
  smoothed demand runs above its capacity plus projects under construction (its demand: what
  data centers asked of it at its tariff plus an equal share of the power they asked for and
  got from no one, the market's unfilled demand), at most ``max_build_mw_per_month`` and no
  more than it can fund (`capex_budget`); the MW arrive after ``build_lead_months`` and are paid
  when ordered at ``build_cost_usd_per_mw`` (capex, depreciated over ``asset_life_months``);
- **a levelised-cost tariff**: it posts ``levelised_cost_usd_per_mwh x (1 + markup)`` (a PPA
  price), not a scarcity price, and pays ``energy_cost_usd_per_mwh`` to the outside account
  ``fuel`` for every MWh it delivers (cost of goods) plus ``fixed_om_usd_per_mw_month`` on
  its capacity;
- **not in the market without plant**: a developer with no MW in service has its edges
  closed that month (``marketsim_before_clear``), so buyers' notional demand is not counted
  against plant that does not exist;
- **billing**: power is traded in MW for the month and billed per MWh at the market's
  ``billed_units_per_unit`` (730 h x the utilities' load factor), which the utilities set;
  the developer's costs use the same number.

The supply graph is drawn over all sellers of a good, so adding developers changes which
sellers each data center links to (``[graph] buyer_degree``). The plugin's
``marketsim_modify_graph`` links each developer to every buyer of power
(``serve_every_buyer``: on-site plant is built at the buyer's site) and every buyer of power
to every seller of it (``relink_incumbents``: a data center keeps its utilities).

What it shows about the host model: a utility sets its scarcity tariff and its builds from
the notional demand at its own posted price, the demand buyers address to it first. Power
that buyers ask first of a cheaper developer, beyond what the developer can deliver, comes
back to the utilities only as filled orders, not as demand they see; so a small, cheap
developer holds the utilities' tariff near their cost and slows their building
(docs/plugins.md section 8.10 has the measured figures).

Use it from an experiment file (path relative to that file), as experiments/onsite_power.toml
does::

    plugins = ["../plugins/onsite_power.py"]

    [agents.onsite_power]
    count = 3
"""

from __future__ import annotations

import numpy as np

from marketsim.plugin import HOURS_PER_MONTH
from marketsim.plugin import Param
from marketsim.plugin import Sector
from marketsim.plugin import affordable_share
from marketsim.plugin import capex_budget
from marketsim.plugin import firm_schema
from marketsim.plugin import hookimpl
from marketsim.plugin import outside_account_index
from marketsim.plugin import shift_pipeline
from marketsim.plugin import smooth
from marketsim.plugin import smoothing_param

__version__ = "1.0.0"

GOOD = "power"


def _mw_param(default: float, doc: str, source: str) -> Param:
    return Param(float, default, doc, "MW", ge=0, le=1e7, source=source)


def link_buyers(graph, experiment, sector: str, good: str, every_seller: bool) -> None:
    """Link each firm of ``sector`` to every buyer of ``good``; with ``every_seller``, link
    every buyer of ``good`` to every seller of it. ``[graph] restrictions`` are respected."""
    forbidden = {
        (r["good"], r["from_region"], r["to_region"]) for r in experiment["graph"]["restrictions"]
    }
    nodes = graph.nodes
    buyers = sorted({b for _, b, d in graph.edges(data=True) if d["good"] == good})
    sellers = sorted({s for s, _, d in graph.edges(data=True) if d["good"] == good})
    sellers += sorted(n for n, d in nodes(data=True) if d["sector"] == sector and n not in sellers)
    linked = sellers if every_seller else [s for s in sellers if nodes[s]["sector"] == sector]
    for seller in linked:
        for buyer in buyers:
            if (good, nodes[seller]["region"], nodes[buyer]["region"]) not in forbidden:
                graph.add_edge(seller, buyer, good=good)


def close_idle_edges(market, sector_class) -> None:
    """Close this month's edges of the ``sector_class`` firms that offer no capacity.

    A firm with nothing to sell (not yet in service, or defaulted) is not in the market: the
    posted-price mechanism would otherwise count buyers' notional demand at its price (as if
    it could sell) and take that demand out of what the other sellers see.
    """
    book = market.book
    idle = np.zeros(book.n_sellers, dtype=bool)
    for sector, first, count in market.sellers.sectors:
        if isinstance(sector, sector_class):
            idle[first : first + count] = book.seller_capacity[first : first + count] <= 0.0
    if idle.any():
        book.edge_open &= ~idle[book.edge_seller]


class OnsitePower(Sector):
    """On-site generation / PPA developers: build MW in months, sell at a levelised-cost tariff."""

    name = "onsite_power"
    doc = (
        "On-site generation / PPA developers: MW built after a short lead time, "
        "levelised-cost tariff, sold to data centers beside the utilities."
    )
    sells = GOOD
    schema = firm_schema(
        doc,
        {
            "initial_capacity_mw": _mw_param(
                200.0,
                "generation in service per developer at the start (0: the developer is out of "
                "the market until it builds, and a firm with nothing to spend on pays out its "
                "cash at the first close of the books, so it never builds)",
                "assumption: each developer has a first on-site plant in service",
            ),
            "max_build_mw_per_month": _mw_param(
                100.0,
                "most MW a developer orders in a month",
                "assumption: a few turbine or engine packages (or a solar-plus-storage block) "
                "a month per developer",
            ),
            "build_lead_months": Param(
                int,
                18,
                "months from ordering generation to delivering power with it",
                "months",
                ge=1,
                le=240,
                source="assumption: docs/calibration.md: data centers: generators 30 weeks or "
                "more, construction 18-24 months; well under the grid's 4-7 year connection "
                "(docs/calibration.md: power: large-load connection)",
            ),
            "build_cost_usd_per_mw": Param(
                float,
                2.0e6,
                "capex per MW of generation, paid when ordered",
                "USD per MW",
                ge=0,
                le=1e9,
                source="assumption: aeroderivative turbines and engines about $1.5-2.5M per MW "
                "installed",
            ),
            "asset_life_months": Param(
                int,
                240,
                "depreciation life of generation",
                "months",
                ge=1,
                le=1200,
                source="assumption: 20-year PPA and plant life",
            ),
            "levelised_cost_usd_per_mwh": Param(
                float,
                75.0,
                "levelised cost of energy: fuel, O&M and capital recovery per MWh",
                "USD per MWh",
                gt=0,
                le=1e6,
                source="assumption: within Lazard LCOE+ (June 2024) unsubsidised gas combined "
                "cycle $45-108/MWh; near the PPA prices of docs/calibration.md: power: PPA "
                "prices 2024-2025 ($57-75/MWh)",
            ),
            "energy_cost_usd_per_mwh": Param(
                float,
                40.0,
                "variable cost per MWh delivered (fuel and variable O&M), paid to 'fuel'",
                "USD per MWh",
                ge=0,
                le=1e6,
                source="assumption: gas at about $3.5/MMBtu x 9 MMBtu/MWh plus about $8 of "
                "variable O&M",
            ),
            "fixed_om_usd_per_mw_month": Param(
                float,
                1_500.0,
                "fixed operation and maintenance per MW in service",
                "USD per MW per month",
                ge=0,
                le=1e9,
                source="assumption: about $18/kW-year",
            ),
            "markup": Param(
                float,
                0.1,
                "tariff = levelised cost x (1 + markup)",
                "share",
                ge=0,
                le=10,
                source="assumption: a developer's margin over cost in a PPA",
            ),
            "tariff_rule": Param(
                str,
                "levelised",
                "levelised: post levelised_cost x (1 + markup) (a PPA price); merchant: post the "
                "higher of that and (1 + premium_over_grid) x last month's power price index",
                choices=("levelised", "merchant"),
                source="assumption: PPAs are priced at cost plus a margin",
            ),
            "premium_over_grid": Param(
                float,
                1.0,
                "merchant rule: the developer's price over last month's power price index",
                "share",
                ge=0,
                le=100,
                source="assumption: priced well above the grid, so buyers ask the utilities "
                "first (logit choice, price_sensitivity 4: a seller at twice the price draws "
                "about 1/16 of the weight) and come to the developer for what they cannot get",
            ),
            "demand_smoothing": smoothing_param(0.3),
            "serve_every_buyer": Param(
                bool,
                True,
                "link each developer to every buyer of power in the supply graph (false: only "
                "the links the graph builder draws)",
                source="assumption: on-site plant is built at the buyer's site",
            ),
            "relink_incumbents": Param(
                bool,
                True,
                "link every buyer of power to every seller of it ([graph] restrictions "
                "respected), so that adding these firms to the draw of [graph] buyer_degree "
                "sellers does not cut a buyer's links to the incumbents (false: the drawn links)",
                source="assumption: buyers keep the suppliers they had",
            ),
        },
    )

    @classmethod
    def check_params(cls, params):
        """The tariff must cover the cost of each MWh delivered."""
        if params["levelised_cost_usd_per_mwh"] < params["energy_cost_usd_per_mwh"]:
            return [
                (
                    "levelised_cost_usd_per_mwh",
                    f"must be >= energy_cost_usd_per_mwh ({params['energy_cost_usd_per_mwh']:g}), "
                    f"got {params['levelised_cost_usd_per_mwh']:g}",
                )
            ]
        return []

    @property
    def tariff_usd_per_mwh(self) -> float:
        """The developer's posted tariff (USD per MWh): levelised cost plus markup."""
        p = self.params
        return p["levelised_cost_usd_per_mwh"] * (1.0 + p["markup"])

    def setup(self) -> None:
        p = self.params
        n = self.count
        self.capacity_mw = np.full(n, p["initial_capacity_mw"])
        """Generation in service (MW)."""
        self.capacity_pipeline = np.zeros((n, p["build_lead_months"]))
        """MW under construction; column k arrives in k months."""
        self.tariff = np.full(n, self.tariff_usd_per_mwh)
        """Posted tariff (USD per MWh)."""
        self.demand_smoothed = self.capacity_mw.copy()
        """Smoothed notional demand at the developer's tariff (MW)."""
        self.asset_book = self.capacity_mw * p["build_cost_usd_per_mw"]
        self.asset_depreciation = self.asset_book / p["asset_life_months"]
        self.grid_price = self.tariff_usd_per_mwh
        """Last month's power price index (USD per MWh), read from the market's clearing."""
        self.unserved_share = np.zeros(n)
        """Power buyers asked for and got from no one last month, over the operating
        developers (MW each)."""
        self.mwh_per_mw = HOURS_PER_MONTH
        """MWh billed per MW sold, read from the market each month (utilities set it)."""

    def opening_price(self) -> np.ndarray:
        """First-month tariffs (USD per MWh)."""
        return np.full(self.count, self.tariff_usd_per_mwh)

    def observe(self, step: int) -> None:
        self.capacity_mw += shift_pipeline(self.capacity_pipeline)

    def offer(self, market, block) -> None:
        self.offered = np.where(self.alive, self.capacity_mw, 0.0)
        market.book.seller_price[block] = self.tariff
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        self.mwh_per_mw = market.billed_units_per_unit
        self.grid_price = float(outcome.price)
        operating = max(int(np.count_nonzero(self.alive)), 1)
        self.unserved_share = np.where(
            self.alive, float(np.sum(outcome.buyer_unfilled)) / operating, 0.0
        )
        fuel = outside_account_index(self.model, "fuel")
        self.move_goods(GOOD, fuel, self.accounts, self.sold, "production")
        energy = self.sold * self.mwh_per_mw * self.params["energy_cost_usd_per_mwh"]
        self.pay(energy, "fuel", "cost_of_goods")

    def account(self, step: int) -> None:
        p = self.params
        alive = self.alive
        self.pay(
            np.where(alive, self.capacity_mw * p["fixed_om_usd_per_mw_month"], 0.0),
            "wages",
            "cost_of_goods",
        )
        self.pay_overheads()
        depreciation = np.minimum(self.asset_depreciation, self.asset_book)
        self.asset_book -= depreciation
        self.model.firms.charge_depreciation(self.rows, depreciation)

        if p["tariff_rule"] == "merchant":
            merchant = (1.0 + p["premium_over_grid"]) * self.grid_price
            self.tariff = np.full(self.count, max(self.tariff_usd_per_mwh, merchant))
        faced = self.requested + self.unserved_share
        self.demand_smoothed = smooth(self.demand_smoothed, faced, p["demand_smoothing"])
        planned = self.capacity_mw + self.capacity_pipeline.sum(axis=1)
        build = np.clip(self.demand_smoothed - planned, 0.0, p["max_build_mw_per_month"])
        build = np.where(alive, build, 0.0)
        build *= affordable_share(
            capex_budget(self.model, self.rows), build * p["build_cost_usd_per_mw"]
        )
        self.capacity_pipeline[:, -1] += build
        capex = build * p["build_cost_usd_per_mw"]
        self.pay(capex, "suppliers", "capex")
        self.asset_book += capex
        self.asset_depreciation += capex / p["asset_life_months"]

    def on_default(self, defaulted) -> None:
        self.capacity_mw[defaulted] = 0.0
        self.capacity_pipeline[defaulted] = 0.0
        self.asset_book[defaulted] = 0.0
        self.asset_depreciation[defaulted] = 0.0
        self.demand_smoothed[defaulted] = 0.0

    def book_value(self) -> np.ndarray:
        return self.asset_book

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {GOOD: np.zeros(self.count)}  # power is not stored

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd_per_mwh": self.tariff,
            "capacity_mw": self.capacity_mw,
            "capacity_on_order_mw": self.capacity_pipeline.sum(axis=1),
        }


@hookimpl
def marketsim_register_sectors(register):
    register(OnsitePower)


@hookimpl
def marketsim_modify_graph(graph, experiment):
    """Links to every buyer of power (``serve_every_buyer``), and every buyer's links to
    every seller of it (``relink_incumbents``)."""
    table = experiment.get("agents", {}).get(OnsitePower.name)
    if table and table["count"] > 0 and (table["serve_every_buyer"] or table["relink_incumbents"]):
        link_buyers(graph, experiment, OnsitePower.name, GOOD, table["relink_incumbents"])


@hookimpl
def marketsim_before_clear(model, market):
    """Firms with no capacity this month take no part in the power market."""
    if market.name == GOOD:
        close_idle_edges(market, OnsitePower)
