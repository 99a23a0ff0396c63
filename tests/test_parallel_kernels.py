"""The parallel posted-price kernel gives the serial kernel's results bit for bit.

On random markets (empty ones, sellers without capacity, tied prices, subnormal quantities,
logit weights that underflow, repeated edges), for any number of seller groups, and on whole
runs of the baseline with ``[engine] parallel_kernels`` on and off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import example
from hypothesis import given
from hypothesis import strategies as st
from test_kernels import PRICES
from test_kernels import SENSITIVITIES
from test_kernels import csr_market

import marketsim
from marketsim.cli import cli
from marketsim.markets import kernels
from marketsim.markets import kernels_parallel
from marketsim.markets import mechanisms
from marketsim.markets.market import MarketBook

QUANTITIES = st.one_of(
    st.just(0.0),
    st.sampled_from([5e-324, 1e-310, 1.0, 2.0, 5.0]),  # subnormals
    st.floats(min_value=0.0, max_value=1e3),
)


@st.composite
def markets(draw, max_buyers=12, max_sellers=6, max_degree=8):
    """Random posted-price markets, from empty to a dozen buyers with repeated edges."""
    n_sellers = draw(st.integers(0, max_sellers))
    n_buyers = draw(st.integers(0, max_buyers))
    prices = draw(st.lists(PRICES, min_size=n_sellers, max_size=n_sellers))
    capacities = draw(st.lists(QUANTITIES, min_size=n_sellers, max_size=n_sellers))
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


def random_market(n_edges, seed, max_rounds=3):
    """A larger market: lognormal popularity, some buyers without edges, scarce capacity."""
    rng = np.random.default_rng(seed)
    n_buyers, n_sellers = max(1, n_edges // 20), max(2, n_edges // 500)
    edge_buyer = np.sort(rng.integers(0, n_buyers, n_edges))
    indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(edge_buyer, minlength=n_buyers))
    popularity = rng.lognormal(0.0, 1.0, n_sellers)
    edge_seller = rng.choice(n_sellers, n_edges, p=popularity / popularity.sum())
    demand = rng.lognormal(0.0, 1.0, n_buyers)
    capacity = rng.lognormal(0.0, 1.0, n_sellers) * (rng.random(n_sellers) < 0.9)
    capacity *= demand.sum() / capacity.sum()
    price = rng.lognormal(0.0, 0.5, n_sellers)
    return indptr, edge_seller.astype(np.int64), price, capacity, demand, 3.0, max_rounds


def assert_identical(got, want):
    """Every output has the same dtype, shape and bytes (so also the same signed zeros)."""
    assert len(got) == len(want) == 5
    for got_array, want_array in zip(got, want, strict=True):
        assert got_array.dtype == want_array.dtype == np.float64
        assert got_array.shape == want_array.shape
        assert np.array_equal(got_array, want_array)
        assert got_array.tobytes() == want_array.tobytes()


def clear_grouped(market, n_groups):
    """The parallel kernel with ``n_groups`` seller groups."""
    indptr, edge_seller, price = market[:3]
    groups = kernels_parallel.seller_groups(indptr, edge_seller, len(price), n_groups)
    return kernels_parallel.posted_price_clear_grouped(indptr, edge_seller, *groups, *market[2:])


EMPTY_MARKET = csr_market([], [], [], [])
NO_SELLERS = csr_market([], [], [3.0, 0.0], [[], []])
NO_EDGES = csr_market([1.0, 2.0], [5.0, 0.0], [1.0], [[]])
NO_CAPACITY = csr_market([1.0, 2.0], [0.0, 0.0], [1.0, 4.0], [[0, 1], [1]])
UNDERFLOW_MARKET = csr_market(
    [1e-3, 1e6, 1e7, 1e8], [10.0, 10.0, 10.0, 10.0], [4.0, 5.0], [[1, 0, 2], [3, 2, 1]], 50.0
)
TIED_ONE_SELLER = csr_market([2.0], [3.0], [2.0, 2.0, 0.0], [[0, 0], [0], []], 5.0, 4)
SUBNORMAL = csr_market([1.0, 1.0], [5e-324, 1e-310], [5e-324, 5e-324], [[0, 1], [1, 0]], 1.0, 5)


@given(market=markets())
@example(market=EMPTY_MARKET)
@example(market=NO_SELLERS)
@example(market=NO_EDGES)
@example(market=NO_CAPACITY)
@example(market=UNDERFLOW_MARKET)
@example(market=TIED_ONE_SELLER)
@example(market=SUBNORMAL)
def test_parallel_kernel_equals_serial_kernel(market):
    """Edge fills, sales, notional demand, fills and unfilled demand: identical bit for bit."""
    assert_identical(
        kernels_parallel.posted_price_clear_parallel(*market), kernels.posted_price_clear(*market)
    )


@given(market=markets(), n_groups=st.integers(1, 9))
@example(market=UNDERFLOW_MARKET, n_groups=3)
@example(market=EMPTY_MARKET, n_groups=4)
def test_any_number_of_seller_groups_gives_the_same_results(market, n_groups):
    """More groups than sellers, buyers or edges included: the results do not change."""
    assert_identical(clear_grouped(market, n_groups), kernels.posted_price_clear(*market))


@given(market=markets(), n_groups=st.integers(1, 9))
def test_seller_groups_hold_each_edge_once_in_order(market, n_groups):
    """Each group: contiguous sellers, their edges in ascending order with their buyers."""
    indptr, edge_seller, price = market[:3]
    first_seller, entries, edge, seller, buyer = kernels_parallel.seller_groups(
        indptr, edge_seller, len(price), n_groups
    )
    edge_buyer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    assert first_seller[0] == 0 and first_seller[-1] == len(price)
    assert (np.diff(first_seller) >= 0).all()
    held = []
    for g in range(n_groups):
        mine = edge[entries[g, 0] : entries[g, 1]]
        assert (np.diff(mine) > 0).all()
        np.testing.assert_array_equal(seller[entries[g, 0] : entries[g, 1]], edge_seller[mine])
        np.testing.assert_array_equal(buyer[entries[g, 0] : entries[g, 1]], edge_buyer[mine])
        in_group = (edge_seller >= first_seller[g]) & (edge_seller < first_seller[g + 1])
        np.testing.assert_array_equal(mine, np.flatnonzero(in_group))
        held.extend(mine)
    assert sorted(held) == list(range(len(edge_seller)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_rounds", [1, 3, 7])
def test_parallel_kernel_equals_serial_on_larger_markets(seed, max_rounds):
    """20,000 edges over 1,000 buyers and 40 sellers, a tenth of them without capacity."""
    market = random_market(20_000, seed, max_rounds)
    want = kernels.posted_price_clear(*market)
    assert want[1].sum() > 0  # something trades
    assert_identical(kernels_parallel.posted_price_clear_parallel(*market), want)
    assert_identical(clear_grouped(market, 3), want)


def test_whole_run_is_identical_with_parallel_kernels(baseline_path, monkeypatch):
    """The baseline for 12 steps, every posted-price market cleared by the parallel kernel,
    gives the same tables as the serial kernel, to the last bit."""
    parallel_calls = []
    grouped = mechanisms.posted_price_clear_grouped

    def counted(*args):
        parallel_calls.append(len(args[1]))
        return grouped(*args)

    serial = marketsim.run(marketsim.load_experiment(baseline_path, ["experiment.steps=12"]))
    monkeypatch.setattr(mechanisms, "PARALLEL_MIN_EDGES", 0)
    monkeypatch.setattr(mechanisms, "posted_price_clear_grouped", counted)
    parallel = marketsim.run(
        marketsim.load_experiment(
            baseline_path, ["experiment.steps=12", "engine.parallel_kernels=true"]
        )
    )
    assert len(parallel_calls) >= 12 * 3  # posted-price markets cleared in parallel each step
    assert set(parallel.tables) == set(serial.tables)
    for name, frame in serial.tables.items():
        pd.testing.assert_frame_equal(parallel.tables[name], frame, check_exact=True)


def test_parallel_kernels_off_by_default_and_small_markets_stay_serial(baseline_path, monkeypatch):
    """The setting defaults to false; below ``PARALLEL_MIN_EDGES`` the serial kernel clears."""
    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=1"])
    assert experiment.config["engine"] == {"parallel_kernels": False}

    def not_called(*args):
        raise AssertionError("the parallel kernel cleared a small market")

    monkeypatch.setattr(mechanisms, "posted_price_clear_grouped", not_called)
    market = csr_market([1.0, 2.0], [1.0, 10.0], [4.0], [[0, 1]], 50.0, 2)
    book = MarketBook(
        buyer_indptr=market[0],
        edge_seller=market[1],
        edge_open=np.ones(2, dtype=bool),
        seller_price=market[2],
        seller_capacity=market[3],
        buyer_demand=market[4],
        buyer_limit_price=np.full(1, np.inf),
        buyer_forward_demand=np.zeros(1),
    )
    params = {"price_sensitivity": 50.0, "max_rounds": 2, "parallel_kernels": True}
    outcome = mechanisms.clear_posted_price(book, params)
    np.testing.assert_array_equal(outcome.seller_sold, kernels.posted_price_clear(*market)[1])


def test_bad_parallel_kernels_value_is_one_line(short_baseline, tmp_path):
    """A setting that is not a boolean: one line on stderr, exit code 2, nothing written."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["run", str(short_baseline), "--out", str(out), "--set", "engine.parallel_kernels=2"]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.splitlines() == [
        "error: --set: engine.parallel_kernels: expected true or false, got 2"
    ]
    assert not out.exists()
