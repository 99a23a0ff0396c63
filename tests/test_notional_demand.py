"""Notional demand of posted-price markets: the kernel re-runs only where it can change.

When a seller has no capacity, `clear_posted_price` reports each seller's round-1 requests
as if every seller could sell. It used to re-run the kernel over the whole market for that;
it now re-runs it over the buyers of the sellers whose count can change. The results must
be the same bit for bit as the whole-market re-run, and agree with the plain-Python twin.
"""

import numpy as np
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from marketsim.markets import reference
from marketsim.markets.kernels import posted_price_clear
from marketsim.markets.market import MarketBook
from marketsim.markets.mechanisms import _affected_market
from marketsim.markets.mechanisms import clear_posted_price

RTOL = 1e-9
TINY = 5e-324  # the smallest subnormal

PRICES = st.one_of(
    st.sampled_from([1e-3, 0.5, 1.0, 1.0, 2.0, 1e6]),  # ties are likely
    st.floats(min_value=1e-3, max_value=1e6),
)
CAPACITIES = st.one_of(
    st.sampled_from([0.0, 0.0, TINY, 1.0, 5.0]),  # sold out is likely
    st.floats(min_value=0.0, max_value=1e3),
)
DEMANDS = st.one_of(
    st.sampled_from([0.0, TINY, 1.0, 3.0]),
    st.floats(min_value=0.0, max_value=1e3),
)
SENSITIVITIES = st.one_of(
    st.sampled_from([0.0, 1.0, 4.0, 1000.0]),
    st.floats(min_value=0.0, max_value=100.0),
)


def book_of(prices, capacities, demands, edge_lists) -> MarketBook:
    """A book with every edge open, from per-buyer lists of seller indices."""
    indptr = np.zeros(len(demands) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(edges) for edges in edge_lists], dtype=np.int64)
    edge_seller = np.array([s for edges in edge_lists for s in edges], dtype=np.int64)
    n_buyers = len(demands)
    return MarketBook(
        buyer_indptr=indptr,
        edge_seller=edge_seller,
        edge_open=np.ones(len(edge_seller), dtype=bool),
        seller_price=np.array(prices, dtype=np.float64),
        seller_capacity=np.array(capacities, dtype=np.float64),
        buyer_demand=np.array(demands, dtype=np.float64),
        buyer_limit_price=np.full(n_buyers, np.inf),
        buyer_forward_demand=np.zeros(n_buyers),
    )


@st.composite
def books(draw, max_buyers=10, max_sellers=6, max_degree=4):
    """Random books, empty to a few buyers and sellers, often with sellers sold out."""
    n_sellers = draw(st.integers(0, max_sellers))
    n_buyers = draw(st.integers(0, max_buyers))
    prices = draw(st.lists(PRICES, min_size=n_sellers, max_size=n_sellers))
    capacities = draw(st.lists(CAPACITIES, min_size=n_sellers, max_size=n_sellers))
    demands = draw(st.lists(DEMANDS, min_size=n_buyers, max_size=n_buyers))
    seller = st.integers(0, max(n_sellers - 1, 0))
    degree = max_degree if n_sellers else 0
    edge_lists = [draw(st.lists(seller, max_size=degree)) for _ in range(n_buyers)]
    return book_of(prices, capacities, demands, edge_lists)


def whole_market_requests(book: MarketBook, sensitivity: float) -> np.ndarray:
    """Notional demand as it was computed before: the kernel re-run over the whole market."""
    return posted_price_clear(
        book.buyer_indptr,
        book.edge_seller,
        book.seller_price,
        np.ones(book.n_sellers),
        book.buyer_demand,
        sensitivity,
        1,
    )[2]


# sellers 0 and 3 sold out and dearer than the cheapest with capacity: a partial recount
PARTIAL = book_of(
    [2.0, 1.0, 1.5, 3.0, 1.0],
    [0.0, 5.0, 5.0, 0.0, 2.0],
    [3.0, 1.0, 2.0, 4.0, 0.0, 1.0],
    [[0, 1], [1, 2], [2], [3, 4], [0], [4]],
)
CHEAPEST_SOLD_OUT = book_of([0.5, 1.0, 2.0], [0.0, 1.0, 1.0], [2.0, 1.0], [[0, 1], [2]])
ALL_SOLD_OUT = book_of([1.0, 2.0], [0.0, 0.0], [2.0, TINY], [[0, 1], [1]])
SOLD_OUT_WITHOUT_BUYERS = book_of([1.0, 2.0, 3.0], [2.0, 0.0, 1.0], [1.0, 1.0], [[0], [2]])
TIED_PRICES = book_of([1.0, 1.0, 1.0], [0.0, TINY, 1.0], [1.0, 2.0, 0.0], [[0, 1], [1, 2], [2]])
EMPTY = book_of([], [], [], [])


@settings(max_examples=300, deadline=None)
@given(book=books(), sensitivity=SENSITIVITIES, max_rounds=st.integers(1, 4))
@example(book=PARTIAL, sensitivity=4.0, max_rounds=3)
@example(book=CHEAPEST_SOLD_OUT, sensitivity=4.0, max_rounds=3)
@example(book=ALL_SOLD_OUT, sensitivity=1.0, max_rounds=1)
@example(book=SOLD_OUT_WITHOUT_BUYERS, sensitivity=4.0, max_rounds=2)
@example(book=TIED_PRICES, sensitivity=1000.0, max_rounds=3)
@example(book=EMPTY, sensitivity=4.0, max_rounds=3)
def test_notional_demand_is_the_whole_market_recount_bit_for_bit(book, sensitivity, max_rounds):
    """Requests reported equal the whole-market re-run exactly, and the twin's closely."""
    params = {"price_sensitivity": sensitivity, "max_rounds": max_rounds}
    outcome = clear_posted_price(book, params)
    if (book.seller_capacity <= 0.0).any():
        want = whole_market_requests(book, sensitivity)
    else:
        want = posted_price_clear(
            book.buyer_indptr,
            book.edge_seller,
            book.seller_price,
            book.seller_capacity,
            book.buyer_demand,
            sensitivity,
            max_rounds,
        )[2]
    np.testing.assert_array_equal(outcome.seller_requested.view(np.int64), want.view(np.int64))
    sold_out = (book.seller_capacity <= 0.0).any()
    capacity = np.ones(book.n_sellers) if sold_out else book.seller_capacity
    twin = reference.posted_price_clear(
        book.buyer_indptr,
        book.edge_seller,
        book.seller_price,
        capacity,
        book.buyer_demand,
        sensitivity,
        1,
    )[2]
    scale = max(1.0, float(book.buyer_demand.sum()))
    np.testing.assert_allclose(outcome.seller_requested, twin, rtol=RTOL, atol=RTOL * scale)


def test_only_the_buyers_of_affected_sellers_are_recounted():
    """A sold-out seller's buyers' sellers are recounted over all their buyers; no one else."""
    affected, buyers, indptr, edge_seller = _affected_market(
        PARTIAL.buyer_indptr, PARTIAL.edge_seller, PARTIAL.seller_capacity <= 0.0
    )
    # buyer 0 (sellers 0, 1), buyer 3 (3, 4) and buyer 4 (0) touch a sold-out seller
    assert affected.tolist() == [True, True, False, True, True]
    assert buyers.tolist() == [0, 1, 3, 4, 5]  # every buyer of sellers 0, 1, 3, 4
    assert indptr.tolist() == [0, 2, 4, 6, 7, 8]
    assert edge_seller.tolist() == [0, 1, 1, 2, 3, 4, 0, 4]


def test_sold_out_seller_without_buyers_needs_no_recount():
    """A sold-out seller nobody buys from changes no one's count: nothing is re-run."""
    book = SOLD_OUT_WITHOUT_BUYERS
    affected, buyers, _, _ = _affected_market(
        book.buyer_indptr, book.edge_seller, book.seller_capacity <= 0.0
    )
    assert not affected.any() and len(buyers) == 0
    outcome = clear_posted_price(book, {"price_sensitivity": 4.0, "max_rounds": 2})
    np.testing.assert_array_equal(outcome.seller_requested, [1.0, 0.0, 1.0])
