"""The supply graph: degree, regions, restrictions, coverage, determinism, plugin edits."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import marketsim
from marketsim.cli import cli
from marketsim.errors import PluginError
from marketsim.graph import build_supply_graph
from marketsim.graph import market_csr
from marketsim.graph import supply_graph_problem

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


# -- a plugin's edits are checked -------------------------------------------------------------

BAD_EDITS = {
    "edge to an unknown node": (
        "graph.add_edge('chip_vendor:0', 'ghost:0', good='accelerators')",
        "node 'ghost:0' is not a participant of the experiment",
    ),
    "node without sector": (
        "del graph.nodes['datacenter:0']['sector']",
        "node 'datacenter:0' has no 'sector' attribute",
    ),
    "node without region": (
        "del graph.nodes['datacenter:0']['region']",
        "node 'datacenter:0' has no 'region' attribute",
    ),
    "edge without good": (
        "del graph.edges[next(iter(graph.in_edges('inference:0')))]['good']",
        "-> 'inference:0' has no 'good' attribute",
    ),
    "good the buyer does not buy": (
        "graph.add_edge('chip_vendor:0', 'utility:0', good='accelerators')",
        "edge 'chip_vendor:0' -> 'utility:0': sector 'utility' buys nothing, not 'accelerators'",
    ),
    "good the seller does not sell": (
        "graph.add_edge('utility:0', 'inference:0', good='compute')",
        "edge 'utility:0' -> 'inference:0': sector 'utility' sells 'power', not 'compute'",
    ),
}


@pytest.mark.parametrize("edit", BAD_EDITS.values(), ids=BAD_EDITS.keys())
def test_invalid_graph_edit_names_the_plugin_and_the_problem(edit, write_experiment, tmp_path):
    """A graph edit that breaks the graph is one line naming the plugin, hook and problem."""
    code, problem = edit
    (tmp_path / "bad_graph.py").write_text(
        "import marketsim\n\n\n@marketsim.hookimpl\n"
        f"def marketsim_modify_graph(graph, experiment):\n    {code}\n"
    )
    experiment = marketsim.load_experiment(write_experiment('plugins = ["bad_graph.py"]\n'))
    with pytest.raises(PluginError) as raised:
        experiment.supply_graph()
    message = str(raised.value)
    assert message.startswith(
        "plugin 'bad_graph.py' left an invalid supply graph in hook marketsim_modify_graph: "
    )
    assert problem in message and "\n" not in message


def test_invalid_graph_edit_is_a_user_error_on_the_command_line(write_experiment, tmp_path):
    """marketsim graph and run show the broken edit as one line, exit 2, nothing written."""
    code, problem = BAD_EDITS["edge to an unknown node"]
    (tmp_path / "bad_graph.py").write_text(
        "import marketsim\n\n\n@marketsim.hookimpl\n"
        f"def marketsim_modify_graph(graph, experiment):\n    {code}\n"
    )
    path = write_experiment('plugins = ["bad_graph.py"]\n')
    for args in (
        ["graph", path, "--out", tmp_path / "g.graphml"],
        ["run", path, "--out", tmp_path / "out"],
    ):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        assert len(result.stderr.splitlines()) == 1
        assert problem in result.stderr
    assert not (tmp_path / "g.graphml").exists() and not (tmp_path / "out").exists()


def test_a_valid_graph_has_no_problem():
    """The graph as built passes the check a plugin's edits must pass."""
    graph = build_supply_graph(MEMBERS, SELLS, BUYS, table(), seed=3)
    participants = {node: (data["sector"], data["index"]) for node, data in graph.nodes.items()}
    assert supply_graph_problem(graph, participants, SELLS, BUYS) is None
    graph.remove_node("chip_vendor:0")  # removing participants or edges is allowed
    assert supply_graph_problem(graph, participants, SELLS, BUYS) is None


# -- sampling in arrays ------------------------------------------------------------------------


def test_successive_sampling_has_the_inclusion_chances_of_weighted_choice():
    """Each buyer's draw is successive weighted sampling without replacement: the chance each
    seller is among the picks matches the exact one (Generator.choice(replace=False, p))."""
    from itertools import permutations

    from marketsim.graph import _successive_sample

    size, weight, picks = np.array([2, 3]), np.array([1.0, 0.25]), 2
    members = np.repeat(weight, size)
    exact = np.zeros(len(members))
    for order in permutations(range(len(members)), picks):
        chance, left = 1.0, members.sum()
        for i in order:
            chance *= members[i] / left
            left -= members[i]
        exact[list(order)] += chance
    group, position = _successive_sample(size, weight, 40_000, picks, np.random.default_rng(7))
    first = np.array([0, 2])
    drawn = first[group] + position
    assert np.all(drawn[:, 0] != drawn[:, 1])  # without replacement
    share = np.bincount(drawn.ravel(), minlength=len(members)) / 40_000
    np.testing.assert_allclose(share, exact, atol=0.02)


def test_model_graph_is_built_when_asked_and_holds_the_markets_edges(baseline_path):
    """model.graph (entrants included) has exactly the edges the markets clear over."""
    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=1"])
    model = marketsim.SupplyChainModel(experiment, 0)
    assert model._graph is None
    graph = model.graph
    edges = set()
    for market in model.markets.values():
        names = {}
        for side in (market.sellers, market.buyers):
            names[id(side)] = [
                f"{sector.name}:{k}" for sector, _, count in side.sectors for k in range(count)
            ]
        sellers, buyers = names[id(market.sellers)], names[id(market.buyers)]
        indptr, edge_seller = market.book.buyer_indptr, market.book.edge_seller
        for b in range(len(indptr) - 1):
            for s in edge_seller[indptr[b] : indptr[b + 1]]:
                edges.add((sellers[s], buyers[b], market.name))
    assert edges == {(u, v, g) for u, v, g in graph.edges(data="good")}
    assert any(
        data["index"] >= 3 for _, data in graph.nodes(data=True) if data["sector"] == "chip_vendor"
    )


# -- bring your own supply graph ------------------------------------------------------------------


def write_graph(tmp_path, source, name="g.graphml"):
    """Write the supply graph of ``source`` with ``marketsim graph``; return its networkx."""
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["graph", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    import networkx as nx

    return nx.read_graphml(out)


@pytest.mark.parametrize("kind", ["graphml", "csv"])
def test_a_written_graph_loads_back_and_gives_identical_results(kind, write_experiment, tmp_path):
    """marketsim graph, then [graph] file = that graph (GraphML or edge list): same tables."""
    import pandas as pd

    source = write_experiment("", name="drawn.toml", steps=3)
    result = CliRunner().invoke(cli, ["graph", str(source), "--out", str(tmp_path / f"g.{kind}")])
    assert result.exit_code == 0, result.output
    if kind == "csv":  # the edge list written from the arrays has the GraphML's edges
        graph = write_graph(tmp_path, source)
        listed = pd.read_csv(tmp_path / "g.csv")
        assert set(zip(listed.seller, listed.buyer, listed.good, strict=True)) == set(
            graph.edges(data="good")
        )
    mine = write_experiment(f'[graph]\nfile = "g.{kind}"\n', name="mine.toml", steps=3)
    for path, out in ((source, "one"), (mine, "two")):
        result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    for table in ("markets", "sectors", "chain"):
        one = pd.read_parquet(tmp_path / "one" / f"{table}.parquet")
        two = pd.read_parquet(tmp_path / "two" / f"{table}.parquet")
        pd.testing.assert_frame_equal(one, two)


BAD_FILES = {
    "unknown firm": ("csv", "datacenter:99", "'datacenter:99': unknown firm"),
    "unknown sector": (
        "graphml",
        "graph.nodes['utility:0']['sector'] = 'fusion'",
        "node 'utility:0': unknown sector 'fusion'",
    ),
    "node count": (
        "graphml",
        "graph.remove_node('datacenter:7')",
        "sector 'datacenter': expected 8 nodes (agents.datacenter.count), got 7",
    ),
    "seller without buyer": (
        "graphml",
        "graph.remove_edges_from(list(graph.out_edges('chip_vendor:1')))",
        "firm 'chip_vendor:1' sells 'accelerators' but has no buyer",
    ),
    "good the seller does not sell": (
        "graphml",
        "graph.add_edge('chip_vendor:0', 'inference:0', good='compute')",
        "edge 'chip_vendor:0' -> 'inference:0': sector 'chip_vendor' sells 'accelerators', "
        "not 'compute'",
    ),
    "unknown region": (
        "graphml",
        "graph.nodes['utility:0']['region'] = 'mars'",
        "node 'utility:0': expected a 'region' attribute, one of 'us', 'eu', 'asia'",
    ),
}


@pytest.mark.parametrize("bad", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_graph_file_is_one_line_naming_the_file(bad, write_experiment, tmp_path):
    """A graph file that disagrees with the experiment: exit 2, one line, nothing written."""
    import networkx as nx

    kind, edit, problem = bad
    graph = write_graph(tmp_path, write_experiment("", name="drawn.toml"))
    if kind == "csv":
        rows = [f"{u},{v}" for u, v in graph.edges()] + [f"chip_vendor:0,{edit}"]
        (tmp_path / "g.csv").write_text("seller,buyer\n" + "\n".join(rows) + "\n")
    else:
        exec(edit, {"graph": graph})
        nx.write_graphml(graph, tmp_path / "g.graphml")
    path = write_experiment(f'[graph]\nfile = "g.{kind}"\n', name="mine.toml")
    for args in (["validate", path], ["run", path, "--out", tmp_path / "out"]):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        assert len(result.stderr.splitlines()) == 1
        assert str(tmp_path / f"g.{kind}") in result.stderr
        assert problem in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_entrants_in_arrays_copy_their_templates_links_as_in_networkx(baseline_path):
    """SupplyGraph.with_entrants gives the graph add_entrants_to_graph gives, regions too."""
    from marketsim.entry import add_entrants_to_graph

    experiment = marketsim.load_experiment(
        baseline_path, ["agents.datacenter.potential_entrants=5", "agents.inference.count=2"]
    )
    supply = experiment.supply_edges()
    entrants = {
        name: experiment.config["agents"][name].get("potential_entrants", 0)
        for name in supply.sectors
    }
    assert sum(entrants.values()) >= 7
    expected = supply.to_networkx()
    for name, count in entrants.items():
        if count:
            incumbents = experiment.config["agents"][name]["count"]
            add_entrants_to_graph(
                expected, name, incumbents, count, experiment.config["graph"]["regions"]
            )
    got = supply.with_entrants(entrants).to_networkx()
    assert dict(got.nodes(data=True)) == dict(expected.nodes(data=True))
    assert set(got.edges(data="good")) == set(expected.edges(data="good"))
    assert got.number_of_edges() == supply.with_entrants(entrants).n_edges  # no duplicates


def test_restrictions_drop_a_graph_files_forbidden_edges(write_experiment, tmp_path):
    """A restriction applies to a graph read from a file: its forbidden edges are dropped."""
    graph = write_graph(tmp_path, write_experiment("", name="drawn.toml"))
    rule = {"good": "accelerators", "from_region": "us", "to_region": "eu"}
    forbidden = [
        (u, v)
        for u, v, good in graph.edges(data="good")
        if good == "accelerators"
        and (graph.nodes[u]["region"], graph.nodes[v]["region"]) == ("us", "eu")
    ]
    assert forbidden
    path = write_experiment(
        '[graph]\nfile = "g.graphml"\nrestrictions = [{good = "accelerators", '
        'from_region = "us", to_region = "eu"}]\n',
        name="mine.toml",
    )
    supply = marketsim.load_experiment(path).supply_graph()
    assert set(supply.edges()) == set(graph.edges()) - set(forbidden)
    assert rule["good"] in {good for _, _, good in supply.edges(data="good")}
