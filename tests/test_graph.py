"""The supply graph: degree, regions, restrictions, coverage and determinism."""

from __future__ import annotations

import numpy as np

from marketsim.graph import build_supply_graph
from marketsim.graph import market_csr

MEMBERS = {"chip_vendor": 4, "datacenter": 9}
SELLS = {"chip_vendor": "accelerators", "datacenter": "compute"}
BUYS = {"chip_vendor": (), "datacenter": ("accelerators",)}


def table(**changes):
    """A [graph] table with defaults, changed as asked."""
    graph = {
        "regions": ["us", "eu", "asia"],
        "buyer_degree": 2,
        "cross_region_weight": 0.5,
        "restrictions": [],
    }
    graph.update(changes)
    return graph


def test_buyers_get_their_degree_and_every_seller_a_customer():
    """Each buyer links to buyer_degree sellers; no seller is left without a buyer."""
    graph = build_supply_graph(MEMBERS, SELLS, BUYS, table(), seed=3)
    for k in range(9):
        assert graph.in_degree(f"datacenter:{k}") == 2
    for k in range(4):
        assert graph.out_degree(f"chip_vendor:{k}") >= 1
    assert {d["good"] for _, _, d in graph.edges(data=True)} == {"accelerators"}


def test_restrictions_forbid_a_flow_between_regions():
    """No accelerator edge runs from a 'us' seller to an 'asia' buyer under a restriction."""
    rule = {"good": "accelerators", "from_region": "us", "to_region": "asia"}
    graph = build_supply_graph(MEMBERS, SELLS, BUYS, table(restrictions=[rule]), seed=3)
    for seller, buyer in graph.edges():
        regions = (graph.nodes[seller]["region"], graph.nodes[buyer]["region"])
        assert regions != ("us", "asia")


def test_home_bias_zero_keeps_trade_at_home_when_possible():
    """With cross_region_weight 0 every buyer sources only in its own region."""
    members = {"chip_vendor": 6, "datacenter": 6}
    graph = build_supply_graph(members, SELLS, BUYS, table(cross_region_weight=0.0), seed=1)
    for seller, buyer in graph.edges():
        assert graph.nodes[seller]["region"] == graph.nodes[buyer]["region"]


def test_same_seed_same_graph_and_csr_matches_edges():
    """The graph depends only on the seed; the CSR export holds exactly its edges."""
    one = build_supply_graph(MEMBERS, SELLS, BUYS, table(), seed=11)
    two = build_supply_graph(MEMBERS, SELLS, BUYS, table(), seed=11)
    assert sorted(one.edges()) == sorted(two.edges())
    indptr, sellers = market_csr(
        one, "accelerators", [("chip_vendor", 0, 4)], [("datacenter", 0, 9)]
    )
    pairs = {
        (f"chip_vendor:{s}", f"datacenter:{b}")
        for b in range(9)
        for s in sellers[indptr[b] : indptr[b + 1]]
    }
    assert pairs == set(one.edges())
    assert np.all(np.diff(indptr) >= 0) and indptr[-1] == len(sellers)
