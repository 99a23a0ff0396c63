"""Hyperscaler custom accelerators: an in-house ASIC entrant in the accelerator market.

Hyperscalers design their own accelerators (TPU-, Trainium-, MTIA-class ASICs) with a custom
chip partner and buy them at cost from a foundry, rather than paying the merchant leader's
markup. This plugin adds a seller of the existing good ``accelerators``, the sector
``custom_accelerator``, built on the equipment-vendor base class the built-in chip vendors
use (make to order from a monthly foundry allocation, unit cost paid to ``foundry``,
Lerner-and-scarcity price rule, capacity added after a lead time when demand runs above it,
default handling). What it adds to that base:

- **dated entry**: no capacity before ``entry_month``; from then the foundry allocation
  (``capacity_per_month`` per firm) ramps up linearly over ``ramp_months``. A start month
  beyond the run means the firm never ships (the counterfactual of the same supply graph
  without entry). This is a planned, dated entry, unlike the framework's endogenous entry
  (``potential_entrants``, marketsim/entry.py), which commits a firm only when the sector's
  own returns beat the cost of capital, and which a one-firm in-house programme would never
  meet before shipping;
- **priced below the merchant leader per unit of performance**: a unit is one accelerator of
  the month's newest generation in performance (H100-equivalents scaled as the built-in
  vendors' units are), and the posted price is capped at ``(1 - discount_to_leader)`` times
  the price of last month's largest other seller of accelerators (read from the market's
  last clearing: ``seller_value / seller_sold`` of the seller that sold the most), never
  below what covers its unit cost and overheads (``unit cost / (1 - opex_share_of_revenue)``);
- **generations**: the unit cost and the price step up by ``[technology]
  price_per_generation`` at each launch, as the built-in vendors' do (the schedule is read
  from the experiment);
- **not in the market before it ships**: a firm with no capacity has its edges closed that
  month (``marketsim_before_clear``), so buyers' notional demand is not counted against chips
  that do not exist, and posts the leader's last price (data centers budget their orders at
  the mean posted price);
- **selling to every data center**: the graph builder draws ``[graph] buyer_degree`` sellers
  per buyer over all sellers of a good, so adding entrants could cut a data center's link to
  an incumbent. The plugin's ``marketsim_modify_graph`` links each entrant to every buyer of
  accelerators (``serve_every_buyer``) and every buyer to every seller of them
  (``relink_incumbents``), ``[graph] restrictions`` respected.

Use it from an experiment file (path relative to that file), as
experiments/custom_accelerators.toml does::

    plugins = ["../plugins/custom_accelerators.py"]

    [agents.custom_accelerator]
    count = 1
    entry_month = 12
"""

from __future__ import annotations

import numpy as np

from marketsim.plugin import EquipmentVendor
from marketsim.plugin import Param
from marketsim.plugin import firm_schema
from marketsim.plugin import hookimpl
from marketsim.plugin import vendor_params

__version__ = "1.0.0"

GOOD = "accelerators"
MAX_GENERATIONS = 64
"""Generations after which the cost step-ups stop (as marketsim's generation schedule)."""


def generation_cost_factor(technology: dict, step: int) -> float:
    """Unit cost of the generation on sale in month ``step`` relative to generation 0 (ratio).

    Args:
        technology: the experiment's resolved ``[technology]`` table.
        step: month (0-based).
    """
    if step < technology["first_launch_month"]:
        return 1.0
    generation = 1 + (step - technology["first_launch_month"]) // technology["generation_months"]
    generation = min(generation, MAX_GENERATIONS)
    return float(np.clip(technology["price_per_generation"] ** generation, 1e-6, 1e6))


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


class CustomAccelerator(EquipmentVendor):
    """Hyperscalers' in-house accelerators: dated entry, foundry ramp, priced under the leader."""

    name = "custom_accelerator"
    doc = (
        "Hyperscaler custom accelerators (in-house ASICs): enter at a month, ramp a foundry "
        "allocation, price below the merchant leader per unit of performance."
    )
    sells = GOOD
    supplier_account = "foundry"
    schema = firm_schema(
        doc,
        {
            **vendor_params(
                unit="accelerators",
                capacity=(
                    80_000.0,
                    "assumption: TechInsights (May 2024) estimated about 2M Google TPUs "
                    "shipped in 2023, ~170k a month for the largest in-house programme; "
                    "about half that in H100-equivalents",
                ),
                unit_cost=(
                    7_000.0,
                    "assumption: about the merchant vendors' own unit cost ($6.9k, "
                    "docs/calibration.md: chips: vendor gross margin about 75%): the same "
                    "foundry, the design partner's margin in place of the merchant's",
                ),
                price=(
                    16_500.0,
                    "assumption: 40% under the $27.5k H100-class price of docs/calibration.md: "
                    "chips (AWS: Trainium2 instances 30-40% better price performance than "
                    "GPU instances, re:Invent 2024)",
                ),
                elasticity=(
                    2.5,
                    "assumption: a challenger facing the merchant leader's close substitute "
                    "(Lerner 0.4 at a 100% share of its own sector)",
                ),
                leader_share=(0.0, "assumption: entrants of equal size"),
                lead=(
                    12,
                    "assumption: foundry and advanced-packaging capacity takes about a year, "
                    "as for the built-in chip vendors",
                ),
            ),
            "entry_month": Param(
                int,
                12,
                "month the first custom accelerators ship; no capacity before (a month beyond "
                "the run: never)",
                "months",
                ge=0,
                le=100_000,
                source="assumption: a programme shipping in volume a year into the run",
            ),
            "ramp_months": Param(
                int,
                12,
                "months over which the foundry allocation ramps linearly to capacity_per_month",
                "months",
                ge=1,
                le=240,
                source="assumption: about a year from first silicon to volume",
            ),
            "discount_to_leader": Param(
                float,
                0.3,
                "price cut per unit of performance against the merchant leader: the price is at "
                "most (1 - discount) x the largest other seller's last price",
                "share",
                ge=0,
                lt=1,
                source="assumption: AWS says Trainium2 (Trn2) instances give 30-40% better price "
                "performance than GPU-based P5e/P5en instances (re:Invent, December 2024): "
                "the lower end",
            ),
            "serve_every_buyer": Param(
                bool,
                True,
                "link each entrant to every buyer of accelerators in the supply graph (false: "
                "only the links the graph builder draws)",
                source="assumption: in-house chips reach every operator through the "
                "hyperscalers' clouds",
            ),
            "relink_incumbents": Param(
                bool,
                True,
                "link every buyer of accelerators to every seller of it ([graph] restrictions "
                "respected), so that adding these firms to the draw of [graph] buyer_degree "
                "sellers does not cut a buyer's links to the incumbents (false: the drawn links)",
                source="assumption: buyers keep the suppliers they had",
            ),
        },
    )

    def setup(self) -> None:
        """Start with no capacity; remember the full allocation the ramp reaches."""
        super().setup()
        self.full_capacity = self.capacity_units.copy()
        """Foundry allocation each firm ramps to (accelerators per month)."""
        self.capacity_units = np.zeros(self.count)
        self.demand_smoothed = np.zeros(self.count)
        self.base_unit_cost = self.unit_cost.copy()
        self.cost_factor = 1.0
        """Unit cost of the generation on sale relative to generation 0 (ratio)."""
        self.leader_price = np.full(self.count, self.params["initial_price_usd"])
        """Last month's price of the largest other seller of accelerators (USD per unit)."""

    def observe(self, step: int) -> None:
        """Advance the capacity pipeline, ramp the allocation after entry, follow generations."""
        super().observe(step)
        p = self.params
        months_in = step - p["entry_month"]
        if 0 <= months_in < p["ramp_months"]:
            self.capacity_units += np.where(self.alive, self.full_capacity / p["ramp_months"], 0)
        factor = generation_cost_factor(self.model.experiment["technology"], step)
        self.price = self.price * factor / self.cost_factor  # a launch steps the price up too
        self.cost_factor = factor
        self.unit_cost = self.base_unit_cost * factor

    def offer(self, market, block) -> None:
        """Offer the foundry allocation; a firm with none posts the leader's last price (its
        edges are closed, and buyers reading the mean posted price are not misled)."""
        super().offer(market, block)
        market.book.seller_price[block] = np.where(self.offered > 0, self.price, self.leader_price)

    def on_sold(self, market, outcome, block) -> None:
        """Record sales and pay the foundry; read the merchant leader's price from the market."""
        super().on_sold(market, outcome, block)
        sold = np.asarray(outcome.seller_sold, dtype=float).copy()
        sold[block] = 0.0  # the leader is another firm
        if sold.size and sold.max() > 0:
            leader = int(np.argmax(sold))
            self.leader_price = np.full(
                self.count, float(outcome.seller_value[leader]) / float(sold[leader])
            )

    def account(self, step: int) -> None:
        """The base vendor's books and price rule, then the cap under the leader's price, no
        lower than what covers the unit cost and the overheads (``opex_share_of_revenue``)."""
        super().account(step)
        p = self.params
        cap = (1.0 - p["discount_to_leader"]) * self.leader_price
        floor = self.unit_cost / max(1.0 - p["opex_share_of_revenue"], 0.01)
        self.price = np.maximum(floor, np.minimum(self.price, cap))

    def firm_state(self) -> dict[str, np.ndarray]:
        return {**super().firm_state(), "leader_price_usd": self.leader_price}


@hookimpl
def marketsim_register_sectors(register):
    register(CustomAccelerator)


@hookimpl
def marketsim_modify_graph(graph, experiment):
    """Links to every buyer of accelerators (``serve_every_buyer``), and every buyer's links to
    every seller of them (``relink_incumbents``)."""
    table = experiment.get("agents", {}).get(CustomAccelerator.name)
    if table and table["count"] > 0 and (table["serve_every_buyer"] or table["relink_incumbents"]):
        link_buyers(graph, experiment, CustomAccelerator.name, GOOD, table["relink_incumbents"])


@hookimpl
def marketsim_before_clear(model, market):
    """Firms with no capacity this month take no part in the accelerator market."""
    if market.name == GOOD:
        close_idle_edges(market, CustomAccelerator)
