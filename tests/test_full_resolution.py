"""Full resolution: per-good degrees, a population of enterprise buyers, lazy Mesa agents,
edge kernels held to their twins, and the shipped full_resolution experiment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from marketsim.cli import cli
from marketsim.experiment import load_experiment
from marketsim.graph import sample_supply_graph
from marketsim.limits import MEMORY_BUDGET_BYTES
from marketsim.limits import estimate_size
from marketsim.markets.edges import buyer_edge_sums
from marketsim.markets.edges import buyer_edge_sums_reference
from marketsim.markets.edges import buyer_edge_values
from marketsim.markets.edges import buyer_edge_values_reference
from marketsim.markets.edges import close_edges_of
from marketsim.markets.edges import close_edges_of_reference
from marketsim.markets.edges import csr_by_buyer
from marketsim.markets.edges import csr_by_buyer_reference
from marketsim.markets.edges import same_mask
from marketsim.markets.market import MarketBook
from marketsim.model import SupplyChainModel

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "experiments" / "full_resolution.toml"
BASELINE = ROOT / "experiments" / "baseline.toml"
POPULATION = [
    "agents.end_demand.count=2000",
    "agents.end_demand.size_dispersion=2.5",
    "agents.end_demand.elasticity_dispersion=0.3",
    "agents.end_demand.adoption_midpoint_spread_months=12",
    "agents.end_demand.budget_to_reference_spend=1.5",
    "experiment.steps=6",
]

values = st.floats(min_value=0.0, max_value=1e12, allow_subnormal=True)


@st.composite
def csr_markets(draw):
    n_buyers = draw(st.integers(0, 12))
    n_sellers = draw(st.integers(1, 30))
    degrees = draw(st.lists(st.integers(0, 40), min_size=n_buyers, max_size=n_buyers))
    n_edges = sum(degrees)
    edge_seller = np.array(
        draw(st.lists(st.integers(0, n_sellers - 1), min_size=n_edges, max_size=n_edges)),
        dtype=np.int64,
    )
    indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    np.cumsum(degrees, out=indptr[1:])
    price = np.array(draw(st.lists(values, min_size=n_sellers, max_size=n_sellers)))
    return indptr, edge_seller, price


@given(csr_markets())
def test_buyer_edge_sums_equal_their_twin_bit_for_bit(market):
    """The kernel adds each buyer's sellers' values in edge order, as the twin does."""
    indptr, edge_seller, price = market
    assert np.array_equal(
        buyer_edge_sums(indptr, edge_seller, price),
        buyer_edge_sums_reference(indptr, edge_seller, price),
    )


@given(csr_markets(), st.data())
def test_buyer_edge_values_equal_their_twin_and_the_bincount(market, data):
    """Purchases' values sum in edge order: the twin and the bincount give the same bits."""
    indptr, edge_seller, price = market
    n_edges = len(edge_seller)
    fill = np.array(data.draw(st.lists(values, min_size=n_edges, max_size=n_edges)))
    got = buyer_edge_values(indptr, edge_seller, fill, price)
    assert np.array_equal(got, buyer_edge_values_reference(indptr, edge_seller, fill, price))
    edge_buyer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    weights = fill * price[edge_seller]
    assert np.array_equal(got, np.bincount(edge_buyer, weights, minlength=len(indptr) - 1))


@given(csr_markets())
def test_csr_by_buyer_equals_the_lexsort_it_replaces(market):
    """Counting sort + per-buyer sort (insertion sort, or np.sort beyond 16 sellers, which
    the draws reach) gives the lexsort's CSR, for edges in any order."""
    indptr, edge_seller, _ = market
    buyer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    shuffled = np.random.default_rng(len(buyer)).permutation(len(buyer))
    got = csr_by_buyer(buyer[shuffled], edge_seller[shuffled], len(indptr) - 1)
    want = csr_by_buyer_reference(buyer[shuffled], edge_seller[shuffled], len(indptr) - 1)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@given(st.data())
def test_close_edges_of_and_same_mask_equal_their_twins(data):
    """Edges of closed buyers or sellers close (as the numpy twin closes them); same_mask is
    np.array_equal on boolean arrays."""
    n_buyers, n_sellers = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    n_edges = data.draw(st.integers(0, 60))
    ints = st.lists(st.integers(0, 10**6), min_size=n_edges, max_size=n_edges)
    edge_buyer = np.array(data.draw(ints), dtype=np.int64) % n_buyers
    edge_seller = np.array(data.draw(ints), dtype=np.int64) % n_sellers
    bools = st.lists(st.booleans(), min_size=n_edges, max_size=n_edges)
    start = np.array(data.draw(bools), dtype=bool)
    buyer_closed = np.array(
        data.draw(st.lists(st.booleans(), min_size=n_buyers, max_size=n_buyers))
    )
    seller_closed = np.array(
        data.draw(st.lists(st.booleans(), min_size=n_sellers, max_size=n_sellers))
    )
    got, want = start.copy(), start.copy()
    close_edges_of(got, edge_buyer, edge_seller, buyer_closed, seller_closed)
    close_edges_of_reference(want, edge_buyer, edge_seller, buyer_closed, seller_closed)
    assert np.array_equal(got, want)
    assert same_mask(got, want) and same_mask(start, start)
    assert same_mask(start, got) == np.array_equal(start, got)
    assert not same_mask(start, np.ones(n_edges + 1, dtype=bool))


def test_open_edges_follow_every_change_of_the_mask():
    """The cached open-edge CSR is made again whenever edge_open changes in place."""
    indptr = np.array([0, 2, 3, 6], dtype=np.int64)
    edge_seller = np.array([0, 1, 1, 0, 1, 2], dtype=np.int64)
    book = MarketBook(indptr, edge_seller, np.ones(6, bool), *(np.ones(3) for _ in range(5)))
    assert book.open_edges()[0] is indptr
    for closed in ([1], [1, 4], [0, 5], [1]):
        book.edge_open[:] = True
        book.edge_open[closed] = False
        got_indptr, got_seller = book.open_edges()
        kept = np.repeat(np.arange(3), np.diff(indptr))[book.edge_open]
        assert np.array_equal(got_seller, edge_seller[book.edge_open])
        assert np.array_equal(np.diff(got_indptr), np.bincount(kept, minlength=3))


def test_degree_by_good_sets_one_goods_degree():
    """Buyers of tokens link to degree_by_good[tokens] sellers; other goods keep buyer_degree."""
    members = {"chip_vendor": 6, "inference": 20, "end_demand": 30}
    sells = {"chip_vendor": "accelerators", "inference": "tokens", "end_demand": None}
    buys = {"chip_vendor": (), "inference": ("accelerators",), "end_demand": ("tokens",)}
    table = {
        "regions": ["us", "eu"],
        "buyer_degree": 2,
        "degree_by_good": {"tokens": 7},
        "cross_region_weight": 0.5,
        "restrictions": [],
    }
    graph = sample_supply_graph(members, sells, buys, table, seed=4)
    tokens = graph.goods.index("tokens")
    first_segment = 26  # 6 vendors + 20 inference firms
    for good, buyers, degree in ((tokens, range(first_segment, 56), 7), (0, range(6, 26), 2)):
        mine = graph.good == good
        drawn = np.bincount(graph.buyer[mine], minlength=56)[list(buyers)]
        assert drawn.min() >= degree  # plus at most the lonely sellers' one extra link
        assert np.median(drawn) == degree


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("graph.degree_by_good={tokenz=3}", "graph.degree_by_good.tokenz: unknown good 'tokenz'"),
        ("graph.degree_by_good={tokens=0}", "graph.degree_by_good.tokens: must be >= 1"),
        ("graph.degree_by_good={tokens=1001}", "graph.degree_by_good.tokens: must be >= 1"),
        ("graph.degree_by_good={tokens=2.5}", "graph.degree_by_good.tokens: expected a whole"),
        ("agents.end_demand.size_dispersion=-1", "agents.end_demand.size_dispersion"),
    ],
)
def test_bad_population_and_degree_settings_get_one_line(setting, message, tmp_path):
    result = CliRunner().invoke(
        cli, ["run", str(BASELINE), "--set", setting, "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def _model(overrides, seed=11):
    return SupplyChainModel(load_experiment(BASELINE, overrides=overrides), seed)


def test_population_draws_follow_their_distributions():
    """Sizes are mean-one lognormal, elasticities centred on the parameter, midpoints
    spread with the asked standard deviation, budgets proportional to size."""
    model = _model([*POPULATION, "agents.end_demand.count=200000"])
    buyers = model.sectors["end_demand"]
    assert abs(buyers.size.mean() - 1.0) < 0.05
    assert abs(np.log(buyers.size).std() - 2.5) < 0.01
    assert abs(buyers.elasticity.mean() - 1.2) < 0.01
    assert abs(buyers.midpoint.std() - 12.0) < 0.1
    start_spend = 1.5 * 3.6e9 * 1.5 * buyers.size
    assert np.allclose(buyers.budget_usd, start_spend, rtol=1e-12)


def test_budgets_bind_and_cap_spending():
    """No buyer's notional spending exceeds its budget, and at a high price budgets bind."""
    model = _model(POPULATION)
    buyers = model.sectors["end_demand"]
    for price in (0.2, 1.5, 3.0):
        demand = buyers.notional_demand(price, step=5)
        assert (demand * price <= buyers.budget_usd * (1 + 1e-12)).all()
    cheap = buyers.notional_demand(0.5, 5) * 0.5
    assert (cheap >= buyers.budget_usd * (1 - 1e-12)).sum() > 0  # some budgets bind


def test_without_dispersion_every_member_follows_the_common_formula():
    """The default population reproduces the one-S-curve formula exactly."""
    buyers = _model(["agents.end_demand.count=5"]).sectors["end_demand"]
    p = buyers.params
    for step, price in ((0, 1.5), (7, 0.9), (40, 2.2)):
        growth = buyers.adoption(step) / buyers.adoption(0)
        expected = (
            p["base_demand_mtokens_per_month"]
            * growth
            * (price / p["reference_price_usd_per_mtoken"]) ** (-p["elasticity"])
        )
        assert np.array_equal(buyers.notional_demand(price, step), np.full(5, expected))


def test_population_draws_leave_the_monthly_noise_stream_alone():
    """Drawing sizes etc. from a stream of their own keeps the demand noise the same draw:
    with sizes only (no price or adoption change), demand / size is the homogeneous demand."""
    plain = _model(["agents.end_demand.count=50", "experiment.steps=2"])
    sized = _model(
        ["agents.end_demand.count=50", "experiment.steps=2", "agents.end_demand.size_dispersion=1"]
    )
    plain.step()
    sized.step()
    a, b = plain.sectors["end_demand"], sized.sectors["end_demand"]
    shock_a = a.last_demand / a.notional_demand(a.price_faced, 0)
    shock_b = b.last_demand / b.notional_demand(b.price_faced, 0)
    assert np.allclose(shock_a, shock_b, rtol=1e-12)


def test_mesa_agents_are_made_on_first_use_and_state_is_computed_once(monkeypatch):
    """Building makes no Mesa agent; the first `model.agents` makes one per member; reading
    every agent's state computes each sector's state once per step."""
    model = _model(["agents.end_demand.count=40"])
    assert model._agents_due
    assert len(model._all_agents) == 0
    model.step()
    counts = {name: sector.count for name, sector in model.sectors.items()}
    assert len(model.agents) == sum(counts.values())
    assert dict(model.agents.groupby("sector").count()) == counts
    calls = []
    for sector in model.sectors.values():
        original = sector.firm_state
        monkeypatch.setattr(
            sector, "firm_state", lambda f=original, n=sector.name: calls.append(n) or f()
        )
    states = [agent.state for agent in model.agents]
    assert len(states) == sum(counts.values())
    assert sorted(calls) == sorted(counts)  # once per sector
    model.step()
    segment = next(iter(model.agents.select(lambda a: a.sector == "end_demand")))
    assert segment.state["demand_mtokens"] == model.sectors["end_demand"].last_demand[segment.index]


def test_full_resolution_has_the_baselines_totals_and_fits_the_memory_budget():
    """Every per-firm quantity is the baseline's total over the new count (to 0.1%), the
    counts are the issue's, and the size estimate is under the memory budget."""
    full = load_experiment(FULL)
    base = load_experiment(BASELINE)
    agents, base_agents = full.config["agents"], base.config["agents"]
    assert agents["datacenter"]["count"] == 11_000
    assert agents["utility"]["count"] == 3_000
    assert agents["inference"]["count"] == 50_000
    assert agents["end_demand"]["count"] == 1_000_000
    totals = {
        "chip_vendor": ["capacity_per_month", "initial_cash_usd"],
        "network_vendor": ["capacity_per_month", "initial_cash_usd"],
        "utility": ["capacity_mw", "initial_under_construction_mw", "initial_cash_usd"],
        "datacenter": [
            "initial_accelerators",
            "initial_shell_mw",
            "initial_under_construction_mw",
            "initial_cash_usd",
        ],
        "inference": ["initial_cash_usd"],
        "end_demand": ["base_demand_mtokens_per_month"],
    }
    for sector, keys in totals.items():
        for key in keys:
            mine = agents[sector][key] * agents[sector]["count"]
            theirs = base_agents[sector][key] * base_agents[sector]["count"]
            assert mine == pytest.approx(theirs, rel=1e-3), (sector, key)
    size = estimate_size(full.config, full.components.sectors)
    assert size.edges > 10_000_000
    assert size.bytes < MEMORY_BUDGET_BYTES


def test_full_resolution_runs_a_step(tmp_path):
    """The shipped experiment builds about ten million edges and runs (one step, checked by
    the ledger and the step guard as every run is)."""
    result = CliRunner().invoke(
        cli, ["run", str(FULL), "--steps", "1", "--out", str(tmp_path / "full")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "full" / "chain.parquet").exists()
