"""Market kernels: agreement with their plain-Python twins, and economic properties."""

import numpy as np
import pytest
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from marketsim.markets import kernels
from marketsim.markets import reference

RTOL = 1e-9

PRICES = st.one_of(
    st.sampled_from([1e-3, 0.5, 1.0, 2.0, 1e6]),
    st.floats(min_value=1e-3, max_value=1e6),
)
QUANTITIES = st.one_of(
    st.just(0.0),
    st.sampled_from([1.0, 2.0, 5.0]),
    st.floats(min_value=0.0, max_value=1e3),
)
SENSITIVITIES = st.one_of(
    st.sampled_from([0.0, 1.0, 50.0, 1000.0]),
    st.floats(min_value=0.0, max_value=100.0),
)


def csr_market(prices, capacities, demands, edge_lists, sensitivity=2.0, max_rounds=3):
    """Argument tuple for ``posted_price_clear`` from per-buyer lists of seller indices."""
    indptr = np.zeros(len(demands) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(edges) for edges in edge_lists], dtype=np.int64)
    edge_seller = np.array([s for edges in edge_lists for s in edges], dtype=np.int64)
    return (
        indptr,
        edge_seller,
        np.array(prices, dtype=np.float64),
        np.array(capacities, dtype=np.float64),
        np.array(demands, dtype=np.float64),
        float(sensitivity),
        int(max_rounds),
    )


@st.composite
def markets(draw, capacity=QUANTITIES, max_buyers=8, max_sellers=5, max_degree=6):
    """Random posted-price markets, from empty to a few buyers, sellers and edges."""
    n_sellers = draw(st.integers(0, max_sellers))
    n_buyers = draw(st.integers(0, max_buyers))
    prices = draw(st.lists(PRICES, min_size=n_sellers, max_size=n_sellers))
    capacities = draw(st.lists(capacity, min_size=n_sellers, max_size=n_sellers))
    demands = draw(st.lists(QUANTITIES, min_size=n_buyers, max_size=n_buyers))
    seller_index = st.integers(0, max(n_sellers - 1, 0))
    degree = max_degree if n_sellers else 0
    edge_lists = [draw(st.lists(seller_index, max_size=degree)) for _ in range(n_buyers)]
    return csr_market(
        prices,
        capacities,
        demands,
        edge_lists,
        sensitivity=draw(SENSITIVITIES),
        max_rounds=draw(st.integers(1, 6)),
    )


def quantity_scale(market):
    """Absolute tolerance scale: the larger of total demand, total capacity and 1."""
    return max(1.0, float(market[3].sum()), float(market[4].sum()))


EMPTY_MARKET = csr_market([], [], [], [])
NO_SELLERS = csr_market([], [], [3.0, 0.0], [[], []])
UNDERFLOW_MARKET = csr_market(
    [1e-3, 1e6, 1e7, 1e8], [10.0, 10.0, 10.0, 10.0], [4.0, 5.0], [[1, 0, 2], [3, 2, 1]], 50.0
)
TIED_ONE_SELLER = csr_market([2.0], [3.0], [2.0, 2.0, 0.0], [[0, 0], [0], []], 5.0, 4)


@settings(max_examples=300, deadline=None)
@given(market=markets())
@example(market=EMPTY_MARKET)
@example(market=NO_SELLERS)
@example(market=UNDERFLOW_MARKET)
@example(market=TIED_ONE_SELLER)
def test_posted_price_matches_reference(market):
    """The posted-price kernel agrees with its plain-Python twin on every output."""
    fast = kernels.posted_price_clear(*market)
    slow = reference.posted_price_clear(*market)
    scale = quantity_scale(market)
    for got, want in zip(fast, slow, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=200, deadline=None)
@given(market=markets())
@example(market=EMPTY_MARKET)
@example(market=NO_SELLERS)
def test_posted_price_conserves_and_respects_limits(market):
    """Fills are >= 0, add up the same per edge, seller and buyer, and respect capacity/demand."""
    indptr, edge_seller, _, capacity, demand, _, _ = market
    edge_fill, sold, requested, filled, unfilled = kernels.posted_price_clear(*market)
    scale = quantity_scale(market)
    tol = RTOL * scale
    assert edge_fill.shape == edge_seller.shape
    assert sold.shape == capacity.shape == requested.shape
    assert filled.shape == demand.shape == unfilled.shape
    assert (edge_fill >= 0).all() and (sold >= 0).all() and (requested >= 0).all()
    assert abs(edge_fill.sum() - sold.sum()) <= tol
    assert abs(edge_fill.sum() - filled.sum()) <= tol
    np.testing.assert_allclose(sold, np.bincount(edge_seller, edge_fill, len(capacity)), atol=tol)
    buyer_of_edge = np.repeat(np.arange(len(demand)), np.diff(indptr))
    np.testing.assert_allclose(filled, np.bincount(buyer_of_edge, edge_fill, len(demand)), atol=tol)
    assert (sold <= capacity * (1 + RTOL) + tol).all()
    assert (filled <= demand * (1 + RTOL) + tol).all()
    assert (unfilled >= 0).all()
    np.testing.assert_allclose(unfilled, demand - filled, atol=tol)
    assert (sold[capacity == 0] == 0).all()
    assert (filled[np.diff(indptr) == 0] == 0).all()


@settings(max_examples=200, deadline=None)
@given(market=markets())
def test_posted_price_notional_demand_is_all_reachable_demand(market):
    """Round-1 requests add up to the demand of buyers that reach a seller with capacity."""
    indptr, edge_seller, _, capacity, demand, _, _ = market
    _, _, requested, _, _ = kernels.posted_price_clear(*market)
    reaches = [
        (capacity[edge_seller[indptr[b] : indptr[b + 1]]] > 0).any() for b in range(len(demand))
    ]
    reachable_demand = float(demand[np.array(reaches, dtype=bool)].sum())
    assert requested.sum() == pytest.approx(reachable_demand, rel=RTOL, abs=RTOL)
    assert (requested[capacity == 0] == 0).all()


@settings(max_examples=150, deadline=None)
@given(market=markets())
def test_posted_price_more_rounds_never_trade_less(market):
    """An extra round only adds fills: edge fills are monotone in max_rounds."""
    fewer = kernels.posted_price_clear(*market)
    more = kernels.posted_price_clear(*market[:-1], market[-1] + 1)
    assert (more[0] >= fewer[0]).all()
    np.testing.assert_array_equal(more[2], fewer[2])


@settings(max_examples=150, deadline=None)
@given(
    quantities=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8),
    capacity=QUANTITIES,
)
def test_posted_price_rations_one_seller_pro_rata(quantities, capacity):
    """An oversubscribed single seller fills every buyer in proportion to its demand."""
    market = csr_market([1.0], [capacity], quantities, [[0]] * len(quantities), 3.0, 1)
    _, sold, requested, filled, _ = kernels.posted_price_clear(*market)
    demand = np.array(quantities)
    ratio = min(1.0, capacity / demand.sum())
    np.testing.assert_allclose(filled, demand * ratio, rtol=RTOL, atol=RTOL)
    assert sold[0] == pytest.approx(min(capacity, demand.sum()), rel=RTOL)
    notional = demand.sum() if capacity > 0 else 0.0  # a sold-out seller is never asked
    assert requested[0] == pytest.approx(notional, rel=RTOL)


@settings(max_examples=150, deadline=None)
@given(
    cheap=st.floats(min_value=1e-3, max_value=1e5),
    markup=st.floats(min_value=1e-3, max_value=1e3),
    sensitivity=st.floats(min_value=0.1, max_value=100.0),
    demand=st.floats(min_value=1e-3, max_value=1e3),
    cheap_first=st.booleans(),
)
def test_posted_price_cheaper_seller_gets_larger_share(
    cheap, markup, sensitivity, demand, cheap_first
):
    """With slack capacity the cheaper seller sells more, in the logit ratio (p2/p1)^-s."""
    dear = cheap * (1.0 + markup)
    prices = [cheap, dear] if cheap_first else [dear, cheap]
    market = csr_market(prices, [2 * demand, 2 * demand], [demand], [[0, 1]], sensitivity, 1)
    _, sold, _, filled, unfilled = kernels.posted_price_clear(*market)
    cheap_sold, dear_sold = (sold[0], sold[1]) if cheap_first else (sold[1], sold[0])
    assert cheap_sold > dear_sold
    expected_ratio = np.exp(-sensitivity * (np.log(dear) - np.log(cheap)))
    assert dear_sold == pytest.approx(cheap_sold * expected_ratio, rel=1e-9, abs=1e-300)
    assert filled[0] == pytest.approx(demand, rel=RTOL)
    assert unfilled[0] == pytest.approx(0.0, abs=RTOL * demand)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_posted_price_slack_capacity_serves_all_cheapest_most(data):
    """When no seller can bind, every connected buyer is served and cheaper edges get more."""
    market = data.draw(markets(capacity=st.just(0.0)))
    indptr, edge_seller, price, capacity, demand, sensitivity, rounds = market
    capacity = np.full_like(capacity, 1.0 + demand.sum())
    market = (indptr, edge_seller, price, capacity, demand, sensitivity, rounds)
    edge_fill, sold, requested, filled, unfilled = kernels.posted_price_clear(*market)
    tol = RTOL * quantity_scale(market)
    np.testing.assert_allclose(requested, sold, rtol=RTOL, atol=tol)
    connected = np.diff(indptr) > 0
    np.testing.assert_allclose(filled[connected], demand[connected], rtol=RTOL, atol=tol)
    np.testing.assert_allclose(unfilled[connected], 0.0, atol=tol)
    for b in range(len(demand)):
        edges = range(indptr[b], indptr[b + 1])
        for e in edges:
            for f in edges:
                if price[edge_seller[e]] < price[edge_seller[f]]:
                    assert edge_fill[e] >= edge_fill[f]
                if price[edge_seller[e]] == price[edge_seller[f]]:
                    assert edge_fill[e] == edge_fill[f]


def test_posted_price_survives_logit_underflow():
    """Where naive exp(-s * log p) weights all underflow or overflow, the cheapest wins."""
    prices = np.array([1e7, 3e7, 1e8])
    assert (np.exp(-50.0 * np.log(prices)) == 0).all()
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(-1000.0 * np.log(np.array([1e-3, 1e6])))).all()
    market = csr_market(prices, [10.0, 10.0, 10.0], [4.0], [[2, 1, 0]], 50.0, 1)
    edge_fill, sold, _, filled, _ = kernels.posted_price_clear(*market)
    assert np.isfinite(edge_fill).all()
    np.testing.assert_allclose(edge_fill, [0.0, 0.0, 4.0], atol=1e-12)
    market = csr_market([1e-3, 1e6], [10.0, 10.0], [4.0], [[1, 0]], 1000.0, 1)
    edge_fill, sold, _, filled, _ = kernels.posted_price_clear(*market)
    np.testing.assert_array_equal(edge_fill, [0.0, 4.0])
    assert filled[0] == 4.0


def test_posted_price_empty_and_disconnected_markets():
    """No buyers, no sellers or no edges: all outputs have the right shapes and zero trade."""
    edge_fill, sold, requested, filled, unfilled = kernels.posted_price_clear(*EMPTY_MARKET)
    assert [a.shape for a in (edge_fill, sold, requested, filled, unfilled)] == [(0,)] * 5
    edge_fill, sold, requested, filled, unfilled = kernels.posted_price_clear(*NO_SELLERS)
    assert edge_fill.shape == sold.shape == requested.shape == (0,)
    np.testing.assert_array_equal(filled, [0.0, 0.0])
    np.testing.assert_array_equal(unfilled, [3.0, 0.0])
    no_edges = csr_market([1.0, 2.0], [5.0, 0.0], [1.0], [[]])
    edge_fill, sold, requested, filled, unfilled = kernels.posted_price_clear(*no_edges)
    np.testing.assert_array_equal(sold, [0.0, 0.0])
    np.testing.assert_array_equal(requested, [0.0, 0.0])
    np.testing.assert_array_equal(unfilled, [1.0])


def test_posted_price_later_rounds_reroute_to_spare_capacity():
    """Demand rationed at a sold-out cheap seller moves to a dearer one in the next round."""
    market = csr_market([1.0, 2.0], [1.0, 10.0], [4.0], [[0, 1]], 50.0, 2)
    edge_fill, sold, requested, filled, _ = kernels.posted_price_clear(*market)
    assert requested[0] == pytest.approx(4.0, rel=1e-12)
    np.testing.assert_allclose(sold, [1.0, 3.0], rtol=1e-12)
    one_round = kernels.posted_price_clear(*market[:-1], 1)
    assert one_round[3][0] == pytest.approx(1.0, rel=1e-12)


def test_posted_price_treats_rounding_dust_as_sold_out():
    """A seller left with one ulp of capacity is sold out and does not soak up next round."""
    prices, edges = [2.0, 4.0, 1.0], [[0], [2, 0, 1]]  # sellers A, B, C; buyer 1 prefers C
    market = csr_market(prices, [1.0, 100.0, 1.0], [1.0, 10.0], edges, 50.0, 1)
    notional_a = kernels.posted_price_clear(*market)[2][0]
    capacity_a = np.nextafter(notional_a, np.inf)  # round 1 leaves exactly one ulp at A
    market = csr_market(prices, [capacity_a, 100.0, 1.0], [1.0, 10.0], edges, 50.0, 2)
    for clear in (kernels.posted_price_clear, reference.posted_price_clear):
        _, sold, _, filled, unfilled = clear(*market)
        assert sold[1] == pytest.approx(9.0, rel=1e-12)
        assert unfilled[1] == pytest.approx(0.0, abs=1e-9)


# --- price updates -------------------------------------------------------------------------

price_vectors = st.integers(0, 8).flatmap(
    lambda n: st.tuples(
        st.lists(PRICES, min_size=n, max_size=n),
        st.lists(QUANTITIES, min_size=n, max_size=n),
        st.lists(QUANTITIES, min_size=n, max_size=n),
        st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=n, max_size=n),
        st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(
    vectors=price_vectors,
    speed=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=10.0)),
    max_step=st.floats(min_value=0.0, max_value=0.99),
)
def test_tatonnement_matches_reference_and_moves_with_excess_demand(vectors, speed, max_step):
    """Prices match the twin, move in the direction of excess demand, by at most max_step."""
    price, requested, capacity, low, high = (np.array(v, dtype=np.float64) for v in vectors)
    floor = price * low / 2.0
    ceiling = price * (1.0 + high)
    args = (price, requested, capacity, float(speed), float(max_step), floor, ceiling)
    new = kernels.tatonnement_price(*args)
    np.testing.assert_allclose(new, reference.tatonnement_price(*args), rtol=RTOL, atol=0)
    assert ((new >= floor) & (new <= ceiling)).all()
    unbounded = kernels.tatonnement_price(
        price, requested, capacity, float(speed), float(max_step), 0 * price, price * np.inf
    )
    change = unbounded / price - 1.0
    assert (np.abs(change) <= max_step * (1 + RTOL) + 1e-15).all()
    assert (change[requested > capacity] >= 0).all()
    assert (change[requested < capacity] <= 0).all()
    assert (change[requested == capacity] == 0).all()
    if speed == 0:
        np.testing.assert_array_equal(unbounded, price)


def test_tatonnement_zero_capacity_and_ceiling():
    """Zero capacity with demand takes the full step; the ceiling caps and wins over the floor."""
    price = np.array([10.0, 10.0, 10.0, 10.0])
    new = kernels.tatonnement_price(
        price,
        np.array([5.0, 0.0, 30.0, 0.0]),
        np.array([0.0, 0.0, 10.0, 10.0]),
        0.5,
        0.2,
        np.array([0.0, 0.0, 0.0, 12.0]),
        np.array([100.0, 100.0, 11.0, 11.0]),
    )
    np.testing.assert_allclose(new, [12.0, 10.0, 11.0, 11.0])


lerner_vectors = st.integers(0, 8).flatmap(
    lambda n: st.tuples(
        st.lists(st.one_of(st.just(0.0), PRICES), min_size=n, max_size=n),
        st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=n, max_size=n),
        st.lists(PRICES, min_size=n, max_size=n),
        st.lists(QUANTITIES, min_size=n, max_size=n),
        st.lists(QUANTITIES, min_size=n, max_size=n),
    )
)


@settings(max_examples=300, deadline=None)
@given(
    vectors=lerner_vectors,
    elasticity=st.one_of(
        st.sampled_from([0.05, 1.0, 1.2, 100.0]), st.floats(min_value=0.05, max_value=100.0)
    ),
    max_lerner=st.floats(min_value=0.0, max_value=0.99),
    max_scarcity=st.floats(min_value=0.0, max_value=100.0),
)
@example(
    vectors=([6.9e3], [0.8], [2.75e4], [1e3], [5e-324]),
    elasticity=0.05,
    max_lerner=0.99,
    max_scarcity=100.0,
)
def test_lerner_scarcity_matches_reference_and_stays_in_band(
    vectors, elasticity, max_lerner, max_scarcity
):
    """Lerner-and-scarcity prices match the twin, lie between the Lerner price and its cap,
    equal the Lerner price where capacity is slack, and rise with share and with demand."""
    cost, share, price, requested, capacity = (np.array(v, dtype=np.float64) for v in vectors)
    args = (cost, share, elasticity, max_lerner, price, requested, capacity, max_scarcity)
    target = kernels.lerner_scarcity_price(*args)
    np.testing.assert_allclose(target, reference.lerner_scarcity_price(*args), rtol=RTOL, atol=0)
    assert np.isfinite(target).all()
    base = cost / (1.0 - np.minimum(max_lerner, share / elasticity))
    assert (target >= base * (1 - RTOL)).all()
    assert (target <= base * (1.0 + max_scarcity) * (1 + RTOL)).all()
    slack = (requested <= capacity) & (capacity > 0)
    np.testing.assert_allclose(target[slack], base[slack], rtol=RTOL)
    more_demand = kernels.lerner_scarcity_price(
        cost, share, elasticity, max_lerner, price, requested * 2 + 1, capacity, max_scarcity
    )
    assert (more_demand >= target * (1 - RTOL)).all()
    larger = kernels.lerner_scarcity_price(
        cost,
        np.minimum(share * 2, 1.0),
        elasticity,
        max_lerner,
        price,
        requested,
        capacity,
        max_scarcity,
    )
    assert (larger >= target * (1 - RTOL)).all()


def test_lerner_price_is_cournot_markup_and_clearing_price():
    """A monopolist facing elasticity 2 doubles its cost (Lerner 1/2); a firm with a quarter
    of the market at elasticity 1 adds a third; demand at twice capacity raises the price by
    2 ** (1 / elasticity) up to the cap; zero capacity asked for something gets the cap."""
    target = kernels.lerner_scarcity_price(
        np.array([10.0, 10.0, 10.0, 10.0, 10.0]),
        np.array([1.0, 0.25, 0.0, 0.0, 0.0]),
        2.0,
        0.9,
        np.array([20.0, 20.0, 20.0, 20.0, 20.0]),
        np.array([5.0, 5.0, 20.0, 1.0, 0.0]),
        np.array([10.0, 10.0, 10.0, 0.0, 0.0]),
        0.5,
    )
    np.testing.assert_allclose(target, [20.0, 10.0 / (1 - 0.125), 15.0, 15.0, 10.0])
    clearing = kernels.lerner_scarcity_price(
        np.array([10.0]),
        np.array([0.0]),
        2.0,
        0.9,
        np.array([10.0]),
        np.array([11.0]),
        np.array([10.0]),
        1.0,
    )
    np.testing.assert_allclose(clearing, [10.0 * 1.1**0.5])


# --- call auction --------------------------------------------------------------------------

AUCTION_PRICES = st.one_of(st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0]), PRICES)
AUCTION_QUANTITIES = st.one_of(
    st.sampled_from([-1.0, 0.0, 1.0, 2.0, 3.0, 0.1, 0.2, 5e-324, 1e-323]), QUANTITIES
)


@st.composite
def order_books(draw, max_orders=8):
    """Random bid and ask books, possibly empty, with ties and ignored (<= 0) orders."""
    n_bids = draw(st.integers(0, max_orders))
    n_asks = draw(st.integers(0, max_orders))
    return (
        np.array(draw(st.lists(AUCTION_PRICES, min_size=n_bids, max_size=n_bids))),
        np.array(draw(st.lists(AUCTION_QUANTITIES, min_size=n_bids, max_size=n_bids))),
        np.array(draw(st.lists(AUCTION_PRICES, min_size=n_asks, max_size=n_asks))),
        np.array(draw(st.lists(AUCTION_QUANTITIES, min_size=n_asks, max_size=n_asks))),
    )


def as_book(bid_price, bid_quantity, ask_price, ask_quantity):
    """Order book tuple of float64 arrays."""
    return tuple(
        np.array(v, dtype=np.float64) for v in (bid_price, bid_quantity, ask_price, ask_quantity)
    )


def max_tradable_volume(bid_price, bid_quantity, ask_price, ask_quantity):
    """Largest volume any single price can clear: max over p of min(demand(p), supply(p))."""
    bid_q = np.maximum(bid_quantity, 0.0)
    ask_q = np.maximum(ask_quantity, 0.0)
    grid = np.concatenate([bid_price, ask_price])
    if grid.size == 0:
        return 0.0
    demand = (bid_q[None, :] * (bid_price[None, :] >= grid[:, None])).sum(axis=1)
    supply = (ask_q[None, :] * (ask_price[None, :] <= grid[:, None])).sum(axis=1)
    return float(np.minimum(demand, supply).max())


EMPTY_BOOK = as_book([], [], [], [])
ONE_SIDED_BOOK = as_book([5.0, 4.0], [1.0, 2.0], [], [])
TIED_BOOK = as_book([10.0, 10.0, 9.0], [1.0, 3.0, 2.0], [5.0, 5.0], [1.0, 1.0])
DUST_BOOK = as_book([10.0, 9.0], [0.3, 0.2], [1.0, 2.0], [0.1, 0.2])
WORKED_BOOK = as_book([1000.0], [10.0], [80.0, 90.0], [5.0, 10.0])
GAP_BOOK = as_book([10.0, 6.0], [2.0, 1.0], [3.0, 8.0], [2.0, 1.0])
# fl(1000 + 1e-6) - 1000 != 1e-6: the small bid's fill is short by rounding dust only.
CANCELLATION_BOOK = as_book([10.0, 9.0], [1000.0, 1e-6], [5.0], [2000.0])
# 1 + 2e-46 == 1: an ask too small to change Q.
DUST_ORDER_BOOK = as_book([3.0], [2.0], [1.0, 2.0], [1.0, 2.1886745e-46])
# Two bids of 5e-324 share Q = 5e-324: each pro-rata share (2.5e-324) rounds to 0.
SUBNORMAL_BIDS_BOOK = as_book([1.0, 1.0], [5e-324, 5e-324], [1.0], [5e-324])
SUBNORMAL_ASKS_BOOK = as_book([1.0], [5e-324], [1.0, 1.0], [5e-324, 5e-324])


@settings(max_examples=300, deadline=None)
@given(book=order_books())
@example(book=EMPTY_BOOK)
@example(book=ONE_SIDED_BOOK)
@example(book=TIED_BOOK)
@example(book=DUST_BOOK)
@example(book=WORKED_BOOK)
@example(book=GAP_BOOK)
@example(book=CANCELLATION_BOOK)
@example(book=DUST_ORDER_BOOK)
@example(book=SUBNORMAL_BIDS_BOOK)
@example(book=SUBNORMAL_ASKS_BOOK)
def test_call_auction_matches_brute_force_reference(book):
    """The walk-based auction agrees with the brute-force twin on price, volume and fills."""
    price, traded, bid_fill, ask_fill = kernels.call_auction(*book)
    ref_price, ref_traded, ref_bid_fill, ref_ask_fill = reference.call_auction(*book)
    scale = max(1.0, float(np.abs(book[1]).sum()), float(np.abs(book[3]).sum()))
    assert price == pytest.approx(ref_price, rel=RTOL, abs=RTOL)
    assert traded == pytest.approx(ref_traded, rel=RTOL, abs=RTOL * scale)
    np.testing.assert_allclose(bid_fill, ref_bid_fill, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(ask_fill, ref_ask_fill, rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=300, deadline=None)
@given(book=order_books())
@example(book=TIED_BOOK)
@example(book=DUST_BOOK)
@example(book=SUBNORMAL_BIDS_BOOK)
@example(book=SUBNORMAL_ASKS_BOOK)
def test_call_auction_economics(book):
    """Max volume trades at one price inside every filled limit; no crossed orders are left."""
    bid_price, bid_quantity, ask_price, ask_quantity = book
    price, traded, bid_fill, ask_fill = kernels.call_auction(*book)
    scale = max(1.0, float(np.abs(bid_quantity).sum()), float(np.abs(ask_quantity).sum()))
    tol = RTOL * scale
    assert traded == pytest.approx(max_tradable_volume(*book), rel=RTOL, abs=tol)
    assert bid_fill.sum() == pytest.approx(traded, rel=RTOL, abs=tol)
    assert ask_fill.sum() == pytest.approx(traded, rel=RTOL, abs=tol)
    assert ((bid_fill >= 0) & (bid_fill <= np.maximum(bid_quantity, 0.0))).all()
    assert ((ask_fill >= 0) & (ask_fill <= np.maximum(ask_quantity, 0.0))).all()
    assert (bid_price[bid_fill > 0] >= price).all()
    assert (ask_price[ask_fill > 0] <= price).all()
    bid_left = (bid_quantity - bid_fill) > tol
    ask_left = (ask_quantity - ask_fill) > tol
    if bid_left.any() and ask_left.any():
        assert bid_price[bid_left].max() < ask_price[ask_left].min()
    live_bids = bid_quantity > 0
    live_asks = ask_quantity > 0
    if not (live_bids.any() and live_asks.any()):
        assert price == 0.0 and traded == 0.0
    elif traded > 0:
        assert ask_price[live_asks].min() <= price <= bid_price[live_bids].max()
    else:
        best_bid = bid_price[live_bids].max()
        best_ask = ask_price[live_asks].min()
        assert best_bid < best_ask
        assert price == pytest.approx((best_bid + best_ask) / 2, rel=1e-15)


@settings(max_examples=300, deadline=None)
@given(book=order_books())
@example(book=TIED_BOOK)
@example(book=DUST_BOOK)
@example(book=WORKED_BOOK)
@example(book=GAP_BOOK)
@example(book=CANCELLATION_BOOK)
@example(book=DUST_ORDER_BOOK)
@example(book=SUBNORMAL_BIDS_BOOK)
@example(book=SUBNORMAL_ASKS_BOOK)
def test_call_auction_price_clears_the_market(book):
    """The price lies between the marginal levels, and no order left over would trade at it."""
    bid_price, bid_quantity, ask_price, ask_quantity = book
    price, traded, bid_fill, ask_fill = kernels.call_auction(*book)
    assert np.isfinite(price)
    if traded == 0.0:
        return
    tol = RTOL * max(1.0, float(np.abs(bid_quantity).sum()), float(np.abs(ask_quantity).sum()))
    marginal_bid = bid_price[bid_fill > 0].min()  # worst bid level that trades: b_m
    marginal_ask = ask_price[ask_fill > 0].max()  # worst ask level that trades: a_m
    assert marginal_ask <= price <= marginal_bid
    assert not bid_fill[bid_price < price].any()
    assert not ask_fill[ask_price > price].any()
    bid_left = bid_quantity - bid_fill > tol
    ask_left = ask_quantity - ask_fill > tol
    # No order left over would trade at the price, so no profitable trade is left either.
    assert (bid_price[bid_left] <= price).all()
    assert (ask_price[ask_left] >= price).all()
    if (bid_left & (bid_price == marginal_bid)).any():  # excess demand at the margin
        assert price == marginal_bid
    if (ask_left & (ask_price == marginal_ask)).any():  # excess supply at the margin
        assert price == marginal_ask


def test_call_auction_worked_example():
    """Bids 10 @ 1000 against asks 5 @ 80 and 10 @ 90: the unmatched supply at 90 sets 90."""
    for auction in (kernels.call_auction, reference.call_auction):
        price, traded, bid_fill, ask_fill = auction(*WORKED_BOOK)
        assert (price, traded) == (90.0, 10.0)
        np.testing.assert_allclose(bid_fill, [10.0])
        np.testing.assert_allclose(ask_fill, [5.0, 5.0])


def test_call_auction_price_rules():
    """Rationed bids: price b_m; rationed asks: a_m; both exhausted: middle of the gap."""
    cases = [
        (as_book([10.0], [3.0], [4.0], [1.0]), 10.0),  # excess demand
        (as_book([10.0], [1.0], [4.0], [3.0]), 4.0),  # excess supply
        (as_book([10.0], [1.0], [4.0], [1.0]), 7.0),  # both exhausted, nothing left over
        (GAP_BOOK, 7.0),  # both exhausted: middle of [max(3, 6), min(10, 8)]
        (as_book([10.0, 6.0], [2.0, 1.0], [3.0], [2.0]), 8.0),  # [max(3, 6), min(10, inf)]
        (as_book([10.0], [2.0], [3.0, 8.0], [2.0, 1.0]), 5.5),  # [max(3, -inf), min(10, 8)]
    ]
    for book, expected in cases:
        price, traded, _, _ = kernels.call_auction(*book)
        assert traded > 0.0
        assert price == expected


def test_call_auction_ties_share_pro_rata():
    """Equal-priced bids at the marginal level split the rest of Q in proportion to quantity."""
    price, traded, bid_fill, ask_fill = kernels.call_auction(*TIED_BOOK)
    assert traded == 2.0
    assert price == 10.0  # the tied bids are rationed: excess demand, price at b_m
    np.testing.assert_allclose(bid_fill, [0.5, 1.5, 0.0])
    np.testing.assert_allclose(ask_fill, [1.0, 1.0])


def test_call_auction_rounding_dust_does_not_move_the_price():
    """Rounding dust moves neither a marginal level nor the price.

    0.1 + 0.2 of asks matching 0.3 of bids keeps the marginal bid level at 10 (price 9.5,
    between it and the unmatched bid at 9), not 9; a fill short by rounding dust is not
    rationing (price 5, not 7); an order too small to change Q does not bound the price
    (price 3, not 2.5).
    """
    price, traded, bid_fill, ask_fill = kernels.call_auction(*DUST_BOOK)
    assert price == 9.5
    assert traded == pytest.approx(0.3, rel=1e-12)
    np.testing.assert_allclose(bid_fill, [0.3, 0.0], atol=1e-15)
    np.testing.assert_allclose(ask_fill, [0.1, 0.2], atol=1e-15)
    price, traded, bid_fill, _ = kernels.call_auction(*CANCELLATION_BOOK)
    assert price == 5.0
    assert bid_fill[1] != 1e-6  # the rounding dust is there
    price, traded, _, ask_fill = kernels.call_auction(*DUST_ORDER_BOOK)
    assert (price, traded) == (3.0, 1.0)
    assert ask_fill[1] == 0.0


def test_call_auction_subnormal_orders_trade_what_is_matched():
    """Pro-rata shares that underflow still trade Q: the largest tied order takes the rest.

    A subnormal order is a legal input: two bids of 5e-324 at the marginal level sharing
    Q = 5e-324 each have a pro-rata share of 2.5e-324, which rounds to 0; the first of them
    gets the 5e-324, so bought equals sold equals Q (this book once made the property test
    `test_call_auction_price_clears_the_market` fail, and replay from the example database).
    """
    for auction in (kernels.call_auction, reference.call_auction):
        price, traded, bid_fill, ask_fill = auction(*SUBNORMAL_BIDS_BOOK)
        assert (price, traded) == (1.0, 5e-324)
        assert bid_fill.tolist() == [5e-324, 0.0] and ask_fill.tolist() == [5e-324]
        price, traded, bid_fill, ask_fill = auction(*SUBNORMAL_ASKS_BOOK)
        assert (price, traded) == (1.0, 5e-324)
        assert bid_fill.tolist() == [5e-324] and ask_fill.tolist() == [5e-324, 0.0]


def test_call_auction_no_trade_and_one_sided():
    """No crossing: Q = 0 at the best-bid/best-ask midpoint; one empty side: price 0."""
    book = as_book([4.0, 3.0, 5.0], [1.0, 1.0, -2.0], [6.0, 8.0], [1.0, 1.0])
    price, traded, bid_fill, ask_fill = kernels.call_auction(*book)
    assert (price, traded) == (5.0, 0.0)
    assert not bid_fill.any() and not ask_fill.any()
    price, traded, bid_fill, ask_fill = kernels.call_auction(*ONE_SIDED_BOOK)
    assert (price, traded) == (0.0, 0.0)
    assert bid_fill.shape == (2,) and ask_fill.shape == (0,)
    price, traded, bid_fill, ask_fill = kernels.call_auction(*EMPTY_BOOK)
    assert (price, traded, bid_fill.shape, ask_fill.shape) == (0.0, 0.0, (0,), (0,))
