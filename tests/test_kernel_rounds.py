"""The posted-price kernel's rounds: edges sorted by seller, later rounds, kept fills.

`kernels_rounds.seller_slots` against its numpy twin; the kernel given the sorted edges
(`posted_price_clear_indexed`) against the one that sorts them itself, bit for bit; clearings
of many rounds (the kept fills written out every `KEPT_ROUNDS` rounds) against the reference
twin, serial and parallel; and the mechanism keeping the sorted edges and the seller groups
from step to step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from test_kernels import RTOL
from test_kernels import csr_market
from test_kernels import markets
from test_kernels import quantity_scale
from test_parallel_kernels import random_market

from marketsim.markets import kernels
from marketsim.markets import kernels_parallel
from marketsim.markets import mechanisms
from marketsim.markets import reference
from marketsim.markets.kernels_rounds import KEPT_ROUNDS
from marketsim.markets.kernels_rounds import seller_slots
from marketsim.markets.kernels_rounds import seller_slots_reference


@settings(max_examples=200, deadline=None)
@given(market=markets())
def test_seller_slots_match_their_twin(market):
    """Each seller's edges, in ascending order, with their buyers: as a stable argsort."""
    indptr, edge_seller, price = market[:3]
    got = seller_slots(indptr, edge_seller, len(price))
    want = seller_slots_reference(indptr, edge_seller, len(price))
    for got_array, want_array in zip(got, want, strict=True):
        np.testing.assert_array_equal(got_array, want_array)
        assert got_array.dtype == np.int64


@settings(max_examples=200, deadline=None)
@given(market=markets())
def test_indexed_kernel_equals_the_kernel_bit_for_bit(market):
    """Given the edges sorted by seller beforehand, the kernel returns the same floats."""
    indptr, edge_seller, price = market[:3]
    slots = seller_slots(indptr, edge_seller, len(price))
    plain = kernels.posted_price_clear(*market)
    indexed = kernels.posted_price_clear_indexed(indptr, edge_seller, *slots, *market[2:])
    for got, want in zip(indexed, plain, strict=True):
        assert got.tobytes() == want.tobytes()


def _cascading_market(seed: int, max_rounds: int) -> tuple:
    """A market where rationed demand moves on round after round: buyers strongly prefer
    the cheapest seller with capacity, and each seller can serve a small part of the demand,
    so about one seller sells out per round, cheapest first."""
    rng = np.random.default_rng(seed)
    n_buyers, n_sellers = 40, 3 * KEPT_ROUNDS + 4
    demand = rng.lognormal(0.0, 0.5, n_buyers)
    price = 1.1 ** np.arange(n_sellers) * rng.uniform(0.99, 1.01, n_sellers)
    capacity = demand.sum() / (n_sellers + 2) * rng.uniform(0.8, 1.2, n_sellers)
    edge_lists = [
        sorted(rng.choice(n_sellers, rng.integers(n_sellers - 3, n_sellers + 1), replace=False))
        for _ in range(n_buyers)
    ]
    return csr_market(price, capacity, demand, edge_lists, 40.0, max_rounds)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), max_rounds=st.integers(KEPT_ROUNDS + 2, 3 * KEPT_ROUNDS + 3))
def test_many_rounds_match_the_reference_serial_and_parallel(seed, max_rounds):
    """More rounds than are kept before the fills are written: still the reference's
    results, and the parallel kernel's equal to the serial one's bit for bit."""
    market = _cascading_market(seed, max_rounds)
    fast = kernels.posted_price_clear(*market)
    slow = reference.posted_price_clear(*market)
    scale = quantity_scale(market)
    for got, want in zip(fast, slow, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)
    parallel = kernels_parallel.posted_price_clear_parallel(*market)
    for got, want in zip(parallel, fast, strict=True):
        assert got.tobytes() == want.tobytes()


def test_cascading_market_trades_in_later_rounds():
    """The market above does what the test needs: rounds after those kept still trade."""
    for seed in range(5):
        market = _cascading_market(seed, 1)
        kept = kernels.posted_price_clear(*market[:-1], KEPT_ROUNDS + 1)[1].sum()
        more = kernels.posted_price_clear(*market[:-1], 3 * KEPT_ROUNDS)[1].sum()
        assert more > kept * 1.05


@pytest.mark.parametrize(
    ("made_for", "cache"),
    [
        (mechanisms.seller_slots_for, mechanisms._SELLER_SLOTS),
        (mechanisms.seller_groups_for, mechanisms._SELLER_GROUPS),
    ],
    ids=["sorted edges", "seller groups"],
)
def test_what_the_kernels_need_is_kept_while_the_edges_stay_the_same(made_for, cache):
    """The mechanism reuses a market's sorted edges (serial kernel) and seller groups
    (parallel kernel) for the same edge arrays, and drops them with the arrays."""
    indptr, edge_seller, price = random_market(2_000, 5)[:3]
    first = made_for(indptr, edge_seller, len(price))
    assert made_for(indptr, edge_seller, len(price)) is first
    assert made_for(indptr.copy(), edge_seller, len(price)) is not first
    key = id(edge_seller)
    assert key in cache
    del edge_seller
    assert key not in cache
