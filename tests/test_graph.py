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
