"""A tariff between regions: buyers in one region pay an ad-valorem duty on a good from another.

From ``start_step`` on, every unit of ``good`` (accelerators by default) that a buyer in
``to_region`` buys from a seller in ``from_region`` costs it the seller's price times
``1 + rate``. The seller receives its posted price; the buyer pays the duty, ``rate x price x
quantity``, to the outside account ``taxes`` right after the market clears, booked under the
same flow as the purchase itself (capex for data centers' accelerators), so it is part of
what the chips cost them.

Buyers choose sellers on the price they pay, duty included. The built-in ``posted_price``
mechanism cannot see that: it reads one price per seller (``book.seller_price``), shared by
every buyer, while a tariff makes the price depend on the edge (a US chip costs an Asian buyer
more than a European one). Raising the seller's posted price would tax its untaxed buyers
too. So the plugin registers a mechanism, ``tariff_posted_price``: the built-in rule (logit
choice on log price, pro-rata rationing, ``max_rounds`` rounds of re-routing; the same
``price_sensitivity`` and ``max_rounds`` keys), with each edge's price being the seller's
posted price times ``1 + `` the edge's duty rate. With no duty it clears like
``posted_price`` (to rounding). The good's market must use it::

    plugins = ["../plugins/accelerator_tariff.py"]

    [markets.accelerators]
    mechanism = "tariff_posted_price"

    [accelerator_tariff]
    rate = 0.25
    from_region = "us"
    to_region = "asia"
    start_step = 24

The duty rate of every edge is set afresh each month in ``marketsim_before_clear`` and read
by the mechanism (closed edges stay closed: it clears over the open ones only). The market's
price index (``markets.price``) is the volume-weighted price sellers receive, before duty.
Chain columns: ``tariff_revenue_usd`` (the duty ``taxes`` received this month, read off the
ledger), ``tariff_lane_value_usd`` and ``tariff_lane_units`` (trade from sellers in
``from_region`` to buyers in ``to_region``, before duty, measured before the start too) and
``tariff_importer_units`` (everything the buyers in ``to_region`` bought).
"""

from __future__ import annotations

import weakref

import numpy as np

from marketsim.plugin import FLOWS
from marketsim.plugin import POSTED_PRICE
from marketsim.plugin import ClearingOutcome
from marketsim.plugin import MechanismSpec
from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import TableSchema
from marketsim.plugin import hookimpl
from marketsim.plugin import outside_account_index
from marketsim.plugin import transfer

__version__ = "1.0.0"

MECHANISM = "tariff_posted_price"
"""Name of the clearing mechanism that routes demand by duty-inclusive prices."""

RESIDUAL_RTOL = 1e-12
"""A residual capacity or demand below this share of its starting value is rounding dust
(as in the built-in posted-price kernel)."""

TABLE = TableSchema(
    doc="An ad-valorem tariff on one good from sellers in one region to buyers in another.",
    params={
        "rate": Param(
            float,
            0.0,
            "duty as a share of the seller's price",
            "share",
            ge=0,
            le=10,
            source="scenario lever (0: no tariff)",
        ),
        "good": Param(
            str,
            "accelerators",
            "the good taxed (a market of the experiment)",
            source="scenario lever",
        ),
        "from_region": Param(
            str, "us", "region of the taxed sellers ([graph] regions)", source="scenario lever"
        ),
        "to_region": Param(
            str,
            "asia",
            "region of the buyers who pay the duty ([graph] regions)",
            source="scenario lever",
        ),
        "start_step": Param(
            int, 0, "first month of the tariff", "step", ge=0, source="scenario lever"
        ),
    },
)


@hookimpl
def marketsim_register_config_tables(register):
    register("accelerator_tariff", TABLE)


@hookimpl
def marketsim_validate_config(experiment):
    """Known good and regions, two different regions, and the good cleared by our mechanism."""
    rule = experiment["accelerator_tariff"]
    regions = experiment["graph"]["regions"]
    markets = experiment["markets"]
    for key in ("from_region", "to_region"):
        if rule[key] not in regions:
            return [
                (
                    f"accelerator_tariff.{key}",
                    f"must be one of {_listed(regions)}, got {rule[key]!r}",
                )
            ]
    if rule["from_region"] == rule["to_region"]:
        return [
            (
                "accelerator_tariff.to_region",
                f"must differ from accelerator_tariff.from_region ({rule['from_region']!r}): "
                "a tariff is levied between two regions",
            )
        ]
    if rule["good"] not in markets:
        return [
            ("accelerator_tariff.good", f"must be one of {_listed(markets)}, got {rule['good']!r}")
        ]
    mechanism = markets[rule["good"]]["mechanism"]
    if mechanism != MECHANISM:
        return [
            (
                f"markets.{rule['good']}.mechanism",
                f"must be {MECHANISM!r} so that buyers choose sellers on duty-inclusive "
                f"prices (accelerator_tariff taxes this market), got {mechanism!r}",
            )
        ]
    return []


def _listed(names) -> str:
    return ", ".join(map(repr, names))


class _Trade:
    """This month's duty rate and fill of every edge of one market's book."""

    def __init__(self, lane: np.ndarray, rate: np.ndarray):
        self.lane = lane
        """Edges from a seller in from_region to a buyer in to_region (taxed or not yet)."""
        self.rate = rate
        """Duty per edge this month, share of the seller's price (0 off the lane, and on it
        before the start)."""
        self.fill = np.zeros_like(rate)
        """Units traded over each edge (all edges; 0 where closed)."""


_TRADE: dict[int, tuple[weakref.ref, _Trade]] = {}
"""id(book) -> (the book, its trade this month); an entry goes when its book is freed."""

_STATS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Model -> its latest month's trade on the lane (units, value) and the importers' units."""


def _trade_of(book) -> _Trade | None:
    entry = _TRADE.get(id(book))
    if entry is None or entry[0]() is not book:
        return None
    return entry[1]


def _regions(participants, count: int) -> np.ndarray:
    """Region index of every participant of one side of a market."""
    region = np.zeros(count, dtype=np.int64)
    for sector, start, size in participants.sectors:
        region[start : start + size] = sector.region
    return region


def _edge_buyer(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


@hookimpl
def marketsim_before_clear(model, market):
    """Set this month's duty rate on every edge of the taxed good's book."""
    rule = model.experiment["accelerator_tariff"]
    if market.name != rule["good"]:
        return
    book = market.book
    regions = model.experiment["graph"]["regions"]
    seller_region = _regions(market.sellers, book.n_sellers)[book.edge_seller]
    buyer_region = _regions(market.buyers, book.n_buyers)[_edge_buyer(book.buyer_indptr)]
    lane = (seller_region == regions.index(rule["from_region"])) & (
        buyer_region == regions.index(rule["to_region"])
    )
    active = model.step_index >= rule["start_step"]
    rate = np.where(lane, rule["rate"] if active else 0.0, 0.0)
    key = id(book)
    trade = _Trade(lane, rate)
    _TRADE[key] = (weakref.ref(book, lambda _, key=key: _TRADE.pop(key, None)), trade)


def clear_tariff_posted_price(book, params) -> ClearingOutcome:
    """Clear by posted prices with logit choice on each edge's duty-inclusive price.

    Per round, over the open edges whose seller has capacity left and whose buyer has demand
    left: ``q_e = r_b * w_e / sum_b w``, ``w_e = exp(-k * (log(p_s(e) * (1 + t_e)) - min_b))``
    (``min_b``: the buyer's cheapest such edge, duty included), then every request to seller
    ``s`` is filled in proportion ``min(1, c_s / R_s)``; for ``max_rounds`` rounds or until a
    round fills nothing. Round-1 requests are the sellers' notional demand (counted as if every
    seller could sell when one has no capacity). Values are at the sellers' prices, before
    duty; the duty is posted after clearing. Without a duty rate for the book (``t = 0``) this
    is the built-in ``posted_price`` rule.
    """
    trade = _trade_of(book)
    open_edge = book.edge_open
    indptr, edge_seller = book.open_edges()
    rate = trade.rate[open_edge] if trade is not None else np.zeros(len(edge_seller))
    edge_buyer = _edge_buyer(indptr)
    log_price = np.log(book.seller_price)[edge_seller] + np.log1p(rate)
    sensitivity = float(params["price_sensitivity"])
    edge_fill, requested = _rounds(
        book, edge_buyer, edge_seller, log_price, sensitivity, int(params["max_rounds"])
    )
    if (book.seller_capacity <= 0.0).any():
        anyone = np.ones(book.n_sellers)
        requested = _rounds(book, edge_buyer, edge_seller, log_price, sensitivity, 1, anyone)[1]
    if trade is not None:
        trade.fill[:] = 0.0
        trade.fill[open_edge] = edge_fill
    n_buyers, n_sellers = book.n_buyers, book.n_sellers
    sold = np.bincount(edge_seller, weights=edge_fill, minlength=n_sellers)
    filled = np.bincount(edge_buyer, weights=edge_fill, minlength=n_buyers)
    value = edge_fill * book.seller_price[edge_seller]
    seller_value = sold * book.seller_price
    traded = float(sold.sum())
    price = float(seller_value.sum()) / traded if traded > 0 else float(book.seller_price.mean())
    return ClearingOutcome(
        seller_sold=sold,
        seller_requested=requested,
        seller_value=seller_value,
        buyer_filled=filled,
        buyer_unfilled=np.maximum(0.0, book.buyer_demand - filled),
        buyer_value=np.bincount(edge_buyer, weights=value, minlength=n_buyers),
        price=price if n_sellers else 0.0,
    )


def _rounds(book, edge_buyer, edge_seller, log_price, sensitivity, max_rounds, capacity=None):
    """Request-and-ration rounds over the open edges: (fill per edge, round-1 requests)."""
    capacity = book.seller_capacity if capacity is None else capacity
    n_buyers, n_sellers = book.n_buyers, book.n_sellers
    capacity_left = capacity.copy()
    demand_left = book.buyer_demand.copy()
    edge_fill = np.zeros(len(edge_seller))
    requested = np.zeros(n_sellers)
    for round_index in range(max_rounds):
        eligible = (capacity_left[edge_seller] > 0.0) & (demand_left[edge_buyer] > 0.0)
        if not eligible.any():
            break
        cheapest = np.full(n_buyers, np.inf)
        np.minimum.at(cheapest, edge_buyer[eligible], log_price[eligible])
        shift = np.where(eligible, log_price - cheapest[edge_buyer], 0.0)
        weight = np.where(eligible, np.exp(-sensitivity * shift), 0.0)
        total = np.bincount(edge_buyer, weights=weight, minlength=n_buyers)
        share = np.divide(weight, total[edge_buyer], out=np.zeros_like(weight), where=eligible)
        request = demand_left[edge_buyer] * share
        seller_request = np.bincount(edge_seller, weights=request, minlength=n_sellers)
        if round_index == 0:
            requested = seller_request
        over = seller_request > capacity_left
        fill_ratio = np.divide(capacity_left, seller_request, out=np.ones(n_sellers), where=over)
        fill = request * fill_ratio[edge_seller]
        edge_fill += fill
        left = np.where(over, 0.0, capacity_left - seller_request)
        capacity_left = np.where(left <= RESIDUAL_RTOL * capacity, 0.0, left)
        received = np.bincount(edge_buyer, weights=fill, minlength=n_buyers)
        left = demand_left - received
        demand_left = np.where(left <= RESIDUAL_RTOL * book.buyer_demand, 0.0, left)
        if received.sum() <= 0.0:
            break
    return edge_fill, requested


@hookimpl
def marketsim_register_mechanisms(register):
    register(
        MechanismSpec(
            name=MECHANISM,
            clear=clear_tariff_posted_price,
            schema=POSTED_PRICE.schema,
            doc="Posted prices; logit split on duty-inclusive edge prices; pro-rata rationing.",
        )
    )


@hookimpl
def marketsim_after_clear(model, market, outcome):
    """The buyers pay the duty on what they bought over taxed edges, to ``taxes``."""
    rule = model.experiment["accelerator_tariff"]
    if market.name != rule["good"]:
        return
    book = market.book
    trade = _trade_of(book)
    if trade is None:  # another mechanism cleared the market (ruled out by the config check)
        return
    edge_buyer = _edge_buyer(book.buyer_indptr)
    value = trade.fill * book.seller_price[book.edge_seller]  # before duty, price units
    lane = trade.lane
    regions = model.experiment["graph"]["regions"]
    importer = _regions(market.buyers, book.n_buyers) == regions.index(rule["to_region"])
    _STATS[model] = (
        float(trade.fill[lane].sum()),
        float(value[lane].sum()) * market.billed_units_per_unit,
        float(outcome.buyer_filled[importer].sum()),
    )
    duty = np.bincount(edge_buyer, weights=trade.rate * value, minlength=book.n_buyers)
    duty *= market.billed_units_per_unit
    if not duty.any():
        return
    for code in np.unique(market.buyer_flows):  # one posting per purchase flow, not per firm
        payers = (market.buyer_flows == code) & (duty > 0.0)
        accounts = market.buyers.accounts[payers]
        transfer(model, "cash", accounts, "taxes", duty[payers], FLOWS[int(code)])


def _stat(index: int):
    """Metric reading one of this month's trade statistics (0 before the market first clears)."""

    def compute(model) -> float:
        return _STATS.get(model, (0.0, 0.0, 0.0))[index]

    return compute


def _duty_received(model) -> float:
    """Duty ``taxes`` received this month, USD: its receipts under every flow but ``tax``
    (the firms' income tax), read off the ledger."""
    ledger = model.ledger
    taxes = outside_account_index(model, "taxes")
    received = ledger.flow_in[ledger.asset("cash"), :, taxes]
    return float(received.sum() - received[ledger.flows.TAX])


@hookimpl
def marketsim_register_metrics(register):
    register(
        MetricSpec(
            "chain",
            "tariff_revenue_usd",
            _duty_received,
            "USD",
            "tariff duty the outside account taxes received this month (read off the ledger)",
        )
    )
    register(
        MetricSpec(
            "chain",
            "tariff_lane_value_usd",
            _stat(1),
            "USD",
            "value of the trade from sellers in from_region to buyers in to_region this month "
            "(taxed from start_step on), at the sellers' prices, before duty",
        )
    )
    register(
        MetricSpec(
            "chain",
            "tariff_lane_units",
            _stat(0),
            "units of the taxed good",
            "units traded from sellers in from_region to buyers in to_region this month "
            "(taxed from start_step on)",
        )
    )
    register(
        MetricSpec(
            "chain",
            "tariff_importer_units",
            _stat(2),
            "units of the taxed good",
            "units the buyers in to_region bought this month, from any seller",
        )
    )
