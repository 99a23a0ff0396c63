"""The built-in clearing mechanisms: thin wrappers turning a book into kernel calls.

- ``posted_price``: sellers post price and capacity; each buyer splits its demand over its
  connected sellers by a logit on log price; sellers over capacity ration pro rata; unfilled
  demand is re-routed for up to ``max_rounds`` rounds, and what is left is reported. Each
  seller's notional demand (its price signal) is what buyers ask of it in the first round,
  counted as if every connected seller could sell, so a seller with no capacity still sees
  the demand it is missing. That count runs the kernel again (one round) only over the
  buyers whose requests it can change (`notional_requests`).
  The market's edges sorted by seller, which the kernel's later rounds walk
  (`kernels_rounds.seller_slots`), are kept from step to step while the market's edges stay
  the same arrays (`seller_slots_for`).
  With ``[engine] parallel_kernels`` on, a market of at least ``PARALLEL_MIN_EDGES`` open
  edges is cleared by the parallel kernel (`kernels_parallel`), whose results are identical
  bit for bit; its seller groups are kept from step to step while the market's edges stay
  the same arrays (`seller_groups_for`). The notional recount stays serial.
- ``call_auction``: a uniform-price double auction over the whole market (bids: buyers'
  demand at their limit prices; asks: sellers' capacity at their posted prices). The graph
  decides who takes part: a buyer or seller with no open edge does not trade. A bid without
  a limit (``inf``, a market order) is entered at the highest ask in the book.
"""

from __future__ import annotations

import weakref
from typing import Any

import numba
import numpy as np
from numba import njit

from marketsim.markets.edges import buyer_edge_values
from marketsim.markets.kernels import call_auction
from marketsim.markets.kernels import posted_price_clear
from marketsim.markets.kernels import posted_price_clear_indexed
from marketsim.markets.kernels_parallel import posted_price_clear_grouped
from marketsim.markets.kernels_parallel import seller_groups
from marketsim.markets.kernels_rounds import seller_slots
from marketsim.markets.market import ClearingOutcome
from marketsim.markets.market import MarketBook
from marketsim.markets.market import MechanismSpec
from marketsim.schema import Param
from marketsim.schema import TableSchema


def _price_index(value: np.ndarray, quantity: np.ndarray, posted: np.ndarray) -> float:
    """Volume-weighted mean price paid, or the mean posted price when nothing trades."""
    traded = float(quantity.sum())
    if traded > 0:
        return float(value.sum()) / traded
    return float(posted.mean()) if len(posted) else 0.0


PARALLEL_KERNELS = "parallel_kernels"
"""Key of ``params`` that turns the parallel kernel on (``[engine] parallel_kernels``, passed
to every mechanism by the model; absent means off)."""

PARALLEL_MIN_EDGES = 1_000_000
"""Open edges below which the serial kernel clears even with ``parallel_kernels`` on: on 2
cores the parallel kernel paid (1.0-1.5x) from about a million edges, and at 100k edges was
as often slower as faster (benchmarks/README.md)."""

_SELLER_GROUPS: dict[int, tuple] = {}
_SELLER_SLOTS: dict[int, tuple] = {}


def _kept_for(cache: dict, indptr: np.ndarray, edge_seller: np.ndarray, key_extra, make):
    """``make()`` for these edge arrays, kept while the same arrays come back (as
    `MarketBook.open_edges` returns them from step to step) and dropped with them.

    Like ``open_edges``, this treats the edge arrays as never changed in place.
    """
    key = id(edge_seller)
    entry = cache.get(key)
    if entry is not None and entry[0]() is indptr and entry[1] == key_extra:
        return entry[2]
    made = make()
    if entry is None:
        weakref.finalize(edge_seller, cache.pop, key, None)
    cache[key] = (weakref.ref(indptr), key_extra, made)
    return made


def seller_groups_for(indptr: np.ndarray, edge_seller: np.ndarray, n_sellers: int) -> tuple:
    """`kernels_parallel.seller_groups` of a market's edges, one group per numba thread,
    kept from step to step (`_kept_for`)."""
    n_groups = max(1, numba.get_num_threads())
    return _kept_for(
        _SELLER_GROUPS,
        indptr,
        edge_seller,
        (n_sellers, n_groups),
        lambda: seller_groups(indptr, edge_seller, n_sellers, n_groups),
    )


def seller_slots_for(indptr: np.ndarray, edge_seller: np.ndarray, n_sellers: int) -> tuple:
    """`kernels_rounds.seller_slots` of a market's edges (sorted by seller), kept from step
    to step (`_kept_for`)."""
    return _kept_for(
        _SELLER_SLOTS,
        indptr,
        edge_seller,
        n_sellers,
        lambda: seller_slots(indptr, edge_seller, n_sellers),
    )


def clear_posted_price(book: MarketBook, params: dict[str, Any]) -> ClearingOutcome:
    """Clear a book by posted prices with logit buyer choice (see module doc)."""
    indptr, edge_seller = book.open_edges()
    market = (
        book.seller_price,
        book.seller_capacity,
        book.buyer_demand,
        float(params["price_sensitivity"]),
        int(params["max_rounds"]),
    )
    if params.get(PARALLEL_KERNELS, False) and len(edge_seller) >= PARALLEL_MIN_EDGES:
        groups = seller_groups_for(indptr, edge_seller, book.n_sellers)
        cleared = posted_price_clear_grouped(indptr, edge_seller, *groups, *market)
    elif market[-1] > 1:
        slots = seller_slots_for(indptr, edge_seller, book.n_sellers)
        cleared = posted_price_clear_indexed(indptr, edge_seller, *slots, *market)
    else:
        cleared = posted_price_clear(indptr, edge_seller, *market)
    edge_fill, sold, requested, filled, unfilled = cleared
    if (book.seller_capacity <= 0.0).any():
        # notional demand as if every connected seller could sell: a seller that is out of
        # capacity still sees what buyers want from it (its signal to price and invest)
        requested = notional_requests(
            indptr, edge_seller, book, requested, float(params["price_sensitivity"])
        )
    buyer_value = buyer_edge_values(indptr, edge_seller, edge_fill, book.seller_price)
    seller_value = sold * book.seller_price
    return ClearingOutcome(
        seller_sold=sold,
        seller_requested=requested,
        seller_value=seller_value,
        buyer_filled=filled,
        buyer_unfilled=unfilled,
        buyer_value=buyer_value,
        price=_price_index(seller_value, sold, book.seller_price),
    )


def notional_requests(indptr, edge_seller, book, requested, price_sensitivity):
    """Round-1 requests to each seller as if every seller had capacity.

    Equal, bit for bit, to ``posted_price_clear(indptr, edge_seller, price, ones, demand,
    price_sensitivity, 1)[2]``, with the kernel run only where the answer can differ from
    ``requested`` (the clearing's own round-1 requests). When the cheapest seller has
    capacity, the logit weights of sellers with capacity are the same in both counts, so a
    seller's requests differ only if one of its buyers also buys from a sold-out seller.
    Those sellers (``affected``) are recounted over all of their buyers, in the kernel's
    order, with every seller in the book; the others keep ``requested``. When a sold-out
    seller is the cheapest, every weight changes and the whole market is recounted.

    Args:
        indptr, edge_seller: the open edges (CSR over buyers).
        book: the market's book (prices, capacities, demand).
        requested: float64[n_sellers], round-1 requests of the clearing (not changed).
        price_sensitivity: logit coefficient on log price.

    Returns:
        float64[n_sellers], notional demand at each seller (units).
    """
    anyone = np.ones(book.n_sellers)
    price = book.seller_price
    sold_out = ~(book.seller_capacity > 0.0)  # the kernel's test of a seller with capacity
    if sold_out.all() or price[sold_out].min() < price[~sold_out].min():
        return posted_price_clear(
            indptr, edge_seller, price, anyone, book.buyer_demand, price_sensitivity, 1
        )[2]
    affected, buyers, sub_indptr, sub_edge_seller = _affected_market(indptr, edge_seller, sold_out)
    if not len(buyers):
        return requested
    recounted = posted_price_clear(
        sub_indptr, sub_edge_seller, price, anyone, book.buyer_demand[buyers], price_sensitivity, 1
    )[2]
    notional = requested.copy()
    notional[affected] = recounted[affected]
    return notional


@njit(cache=True)
def _affected_market(indptr, edge_seller, sold_out):
    """Sellers whose notional demand can differ from their round-1 requests, and the market
    of every buyer of theirs.

    Args:
        indptr: int64[n_buyers + 1], edge_seller: int64[n_edges], the open edges.
        sold_out: bool[n_sellers], sellers with no capacity.

    Returns:
        ``(affected, buyers, sub_indptr, sub_edge_seller)``: bool[n_sellers] the sellers of
        any buyer that has a sold-out seller; int64 the buyers with an edge to one of them
        (ascending); the CSR of those buyers' edges (each buyer's edges in their order).
    """
    n_buyers = indptr.shape[0] - 1
    affected = np.zeros(sold_out.shape[0], dtype=np.bool_)
    for b in range(n_buyers):
        touches = False
        for e in range(indptr[b], indptr[b + 1]):
            if sold_out[edge_seller[e]]:
                touches = True
                break
        if touches:
            for e in range(indptr[b], indptr[b + 1]):
                affected[edge_seller[e]] = True
    chosen = np.zeros(n_buyers, dtype=np.bool_)
    n_chosen = 0
    n_edges = 0
    for b in range(n_buyers):
        for e in range(indptr[b], indptr[b + 1]):
            if affected[edge_seller[e]]:
                chosen[b] = True
                n_chosen += 1
                n_edges += indptr[b + 1] - indptr[b]
                break
    buyers = np.empty(n_chosen, dtype=np.int64)
    sub_indptr = np.zeros(n_chosen + 1, dtype=np.int64)
    sub_edge_seller = np.empty(n_edges, dtype=np.int64)
    k = 0
    at = 0
    for b in range(n_buyers):
        if chosen[b]:
            buyers[k] = b
            for e in range(indptr[b], indptr[b + 1]):
                sub_edge_seller[at] = edge_seller[e]
                at += 1
            k += 1
            sub_indptr[k] = at
    return affected, buyers, sub_indptr, sub_edge_seller


def clear_call_auction(book: MarketBook, params: dict[str, Any]) -> ClearingOutcome:
    """Clear a book by one uniform-price double auction (see module doc)."""
    indptr, edge_seller = book.open_edges()
    buyer_in = np.diff(indptr) > 0
    seller_in = np.bincount(edge_seller, minlength=book.n_sellers) > 0
    bid_quantity = np.where(buyer_in, book.buyer_demand, 0.0)
    ask_quantity = np.where(seller_in, book.seller_capacity, 0.0)
    highest_ask = float(book.seller_price.max()) if book.n_sellers else 0.0
    limits = np.where(np.isfinite(book.buyer_limit_price), book.buyer_limit_price, highest_ask)
    price, _, bid_fill, ask_fill = call_auction(
        limits, bid_quantity, book.seller_price, ask_quantity
    )
    # notional demand at each seller: demand at its ask price, shared over the supply at or
    # below that price in proportion to capacity (its share is at most one, so a subnormal
    # supply never overflows the quotient)
    bids_at = _cumulative_at(limits, bid_quantity, book.seller_price, "ge")
    asks_at = _cumulative_at(book.seller_price, ask_quantity, book.seller_price, "le")
    share = np.divide(ask_quantity, asks_at, out=np.zeros(book.n_sellers), where=asks_at > 0)
    requested = np.minimum(share, 1.0) * bids_at
    return ClearingOutcome(
        seller_sold=ask_fill,
        seller_requested=requested,
        seller_value=ask_fill * price,
        buyer_filled=bid_fill,
        buyer_unfilled=book.buyer_demand - bid_fill,
        buyer_value=bid_fill * price,
        price=price if bid_fill.sum() > 0 else _price_index(ask_fill, ask_fill, book.seller_price),
    )


def _cumulative_at(prices, quantities, at, side: str) -> np.ndarray:
    """Total quantity with price >= (side 'ge') or <= (side 'le') each value of ``at``."""
    order = np.argsort(prices, kind="stable")
    sorted_prices = prices[order]
    cumulative = np.concatenate(([0.0], np.cumsum(quantities[order])))
    if side == "ge":
        return cumulative[-1] - cumulative[np.searchsorted(sorted_prices, at, side="left")]
    return cumulative[np.searchsorted(sorted_prices, at, side="right")]


POSTED_PRICE = MechanismSpec(
    name="posted_price",
    clear=clear_posted_price,
    doc="Posted prices; logit split of each buyer's demand; pro-rata rationing at capacity.",
    schema=TableSchema(
        doc="Posted-price clearing.",
        params={
            "price_sensitivity": Param(
                float,
                4.0,
                "logit coefficient on log price in buyers' choice of seller "
                "(0 = equal split; large = all to the cheapest)",
                "1 / log USD",
                ge=0,
                le=1000,
                source="assumption",
            ),
            "max_rounds": Param(
                int,
                3,
                "rounds in which rationed buyers re-route demand to sellers with spare capacity",
                "rounds",
                ge=1,
                le=100,
                source="assumption",
            ),
        },
    ),
)

CALL_AUCTION = MechanismSpec(
    name="call_auction",
    clear=clear_call_auction,
    doc="Uniform-price double auction: one clearing price, pro-rata at the margin.",
    schema=TableSchema(doc="Uniform-price call auction (no parameters)."),
)
