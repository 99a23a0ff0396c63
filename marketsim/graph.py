"""The supply graph: who may trade with whom, built from ``[graph]`` rules.

Nodes are market participants (firms and end-market segments), named ``"<sector>:<k>"``, with
attributes ``sector``, ``region`` and ``index`` (row within the sector). Edges run seller -> buyer
with attribute ``good``. Members of each sector are placed in regions round-robin. Each buyer of a
good links to ``buyer_degree`` sellers of it (all of them if fewer), drawn without replacement with
weight 1 for a seller in its own region and ``cross_region_weight`` for one elsewhere; a seller that
no buyer chose is then linked to one buyer it may serve, drawn at random, so no firm is left without
customers; a restriction ``{good, from_region, to_region}`` forbids the good from flowing from
sellers in one region to buyers in another (export controls). The graph depends only on the
experiment's seed, so every replication of an experiment trades over the same graph.

`supply_graph_problem` checks the graph after a plugin's ``marketsim_modify_graph`` edited it;
`market_csr` exports one good's edges as CSR arrays over buyers for the kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from marketsim.errors import ExperimentError
from marketsim.schema import Param
from marketsim.schema import TableSchema

GRAPH_TABLE = TableSchema(
    doc="How participants connect: regions, degree, restrictions.",
    params={
        "regions": Param(
            list,
            ["us", "eu", "asia"],
            "regions; members of each sector are placed in them round-robin",
            item_kind=str,
            source="assumption",
        ),
        "buyer_degree": Param(
            int,
            2,
            "sellers each buyer links to, per good it buys (all if fewer)",
            "edges",
            ge=1,
            le=1000,
            source="assumption",
        ),
        "cross_region_weight": Param(
            float,
            0.5,
            "chance of linking to a seller in another region, relative to one "
            "in the buyer's own region",
            "ratio",
            ge=0,
            le=1,
            source="assumption",
        ),
        "restrictions": Param(
            list,
            [],
            "forbidden flows: tables {good, from_region, to_region} (export "
            "controls); sellers in from_region may not sell the good to buyers in to_region",
            item_kind=dict,
        ),
        "seed": Param(
            int,
            -1,
            "seed of the supply graph; -1 uses experiment.seed (studies set it to keep one "
            "graph across replications, or leave it so each replication draws its own)",
            ge=-1,
            le=10**18,
            source="assumption",
        ),
    },
)

GRAPH_SEED_STREAM = 0x6772617068
"""Extra SeedSequence entropy word that keeps the graph's random stream apart."""


def node_name(sector: str, index: int) -> str:
    """The node name of member ``index`` of ``sector``."""
    return f"{sector}:{index}"


def check_restrictions(graph_table: dict[str, Any], goods: Sequence[str], source: str) -> None:
    """Validate ``[graph] restrictions``: known goods and regions, no other keys."""
    regions = graph_table["regions"]
    if not regions:
        raise ExperimentError("must name at least one region", source, "graph.regions")
    if len(set(regions)) != len(regions):
        raise ExperimentError("regions must be distinct", source, "graph.regions")
    allowed = {"good": goods, "from_region": regions, "to_region": regions}
    for i, rule in enumerate(graph_table["restrictions"]):
        key = f"graph.restrictions[{i}]"
        for name in rule:
            if name not in allowed:
                raise ExperimentError(
                    f"unknown key {name!r} (expected good, from_region, to_region)",
                    source,
                    f"{key}.{name}",
                )
        for name, valid in allowed.items():
            if name not in rule:
                raise ExperimentError("missing required key", source, f"{key}.{name}")
            if rule[name] not in valid:
                raise ExperimentError(
                    f"must be one of {', '.join(map(repr, valid))}, got {rule[name]!r}",
                    source,
                    f"{key}.{name}",
                )


def build_supply_graph(
    members: dict[str, int],
    sells: dict[str, str | None],
    buys: dict[str, Sequence[str]],
    graph_table: dict[str, Any],
    seed: int,
) -> nx.DiGraph:
    """Build the supply graph.

    Args:
        members: sector name -> number of members, in model order.
        sells: sector name -> the good it sells (or None).
        buys: sector name -> the goods it buys.
        graph_table: the resolved ``[graph]`` table.
        seed: the experiment's seed.

    Returns:
        The directed supply graph (seller -> buyer edges with attribute ``good``).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, GRAPH_SEED_STREAM]))
    regions = graph_table["regions"]
    graph = nx.DiGraph()
    region_of: dict[str, str] = {}
    for sector, count in members.items():
        for k in range(count):
            name = node_name(sector, k)
            region_of[name] = regions[k % len(regions)]
            graph.add_node(name, firm=name, sector=sector, region=region_of[name], index=k)
    forbidden = {(r["good"], r["from_region"], r["to_region"]) for r in graph_table["restrictions"]}
    for good in dict.fromkeys(g for goods in buys.values() for g in goods):  # ordered
        sellers = [
            node_name(s, k) for s, g in sells.items() if g == good for k in range(members[s])
        ]
        buyers = [
            node_name(b, k) for b, goods in buys.items() if good in goods for k in range(members[b])
        ]
        for buyer in buyers:
            for seller in _choose_sellers(
                buyer, good, sellers, region_of, forbidden, graph_table, rng
            ):
                graph.add_edge(seller, buyer, good=good)
        for seller in sellers:  # no seller is left without a customer it may serve
            if not any(graph.edges[seller, b]["good"] == good for b in graph.successors(seller)):
                allowed = [
                    b for b in buyers if (good, region_of[seller], region_of[b]) not in forbidden
                ]
                if allowed:
                    graph.add_edge(seller, allowed[int(rng.integers(len(allowed)))], good=good)
    return graph


def supply_graph_problem(
    graph: nx.DiGraph,
    participants: dict[str, tuple[str, int]],
    sells: dict[str, str | None],
    buys: dict[str, Sequence[str]],
) -> str | None:
    """The first thing wrong with a supply graph a plugin edited, or None if it is valid.

    A plugin may remove edges and nodes and add edges between the experiment's participants;
    markets are built from what is left. It may not add participants (a node is a firm or
    segment the model creates), change a node's ``sector`` or ``index``, drop its ``sector`` or
    ``region``, or add an edge without a ``good`` that the seller's sector sells and the
    buyer's sector buys.

    Args:
        graph: the edited graph.
        participants: node -> (sector, index) of every node the graph was built with.
        sells: sector -> the good it sells (or None).
        buys: sector -> the goods it buys.

    Returns:
        One line naming the node or edge and what was expected, or None.
    """
    for node, data in graph.nodes.items():
        if node not in participants:
            return (
                f"node {node!r} is not a participant of the experiment (edges may join only "
                "the firms and segments the graph was built with)"
            )
        missing = [name for name in ("sector", "region") if name not in data]
        if missing:
            return f"node {node!r} has no {' or '.join(map(repr, missing))} attribute"
        found = (data["sector"], data.get("index"))
        if found != participants[node]:
            return (
                f"node {node!r}: expected sector {participants[node][0]!r} and index "
                f"{participants[node][1]}, got sector {found[0]!r} and index {found[1]!r}"
            )
    for seller, buyer, data in graph.edges(data=True):
        edge = f"edge {seller!r} -> {buyer!r}"
        if "good" not in data:
            return f"{edge} has no 'good' attribute"
        good = data["good"]
        seller_sector, buyer_sector = participants[seller][0], participants[buyer][0]
        if sells.get(seller_sector) != good:
            sold = sells.get(seller_sector)
            return f"{edge}: sector {seller_sector!r} sells {sold!r}, not {good!r}"
        if good not in buys.get(buyer_sector, ()):
            bought = ", ".join(map(repr, buys.get(buyer_sector, ()))) or "nothing"
            return f"{edge}: sector {buyer_sector!r} buys {bought}, not {good!r}"
    return None


def _choose_sellers(buyer, good, sellers, region_of, forbidden, graph_table, rng) -> list[str]:
    home = region_of[buyer]
    allowed = [s for s in sellers if (good, region_of[s], home) not in forbidden]
    degree = graph_table["buyer_degree"]
    if len(allowed) <= degree:
        return allowed
    weights = np.array(
        [1.0 if region_of[s] == home else graph_table["cross_region_weight"] for s in allowed]
    )
    if weights.sum() == 0:
        weights[:] = 1.0
    available = int(np.count_nonzero(weights))
    picks = rng.choice(
        len(allowed), size=min(degree, available), replace=False, p=weights / weights.sum()
    )
    return [allowed[i] for i in sorted(picks)]


def market_csr(
    graph: nx.DiGraph,
    good: str,
    seller_blocks: Sequence[tuple[str, int, int]],
    buyer_blocks: Sequence[tuple[str, int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """One good's edges as CSR arrays over the market's buyers.

    Args:
        graph: the supply graph.
        good: the good.
        seller_blocks: (sector name, first market index, count) of each selling sector.
        buyer_blocks: the same for buying sectors.

    Returns:
        ``(buyer_indptr, edge_seller)``: edges of buyer ``b`` are
        ``buyer_indptr[b]:buyer_indptr[b + 1]``, sorted by seller.
    """
    seller_start = {name: start for name, start, _ in seller_blocks}
    buyer_start = {name: start for name, start, _ in buyer_blocks}
    n_buyers = sum(count for _, _, count in buyer_blocks)
    pairs = []
    for seller, buyer, data in graph.edges(data=True):
        if data.get("good") != good:
            continue
        s_node, b_node = graph.nodes[seller], graph.nodes[buyer]
        if s_node["sector"] in seller_start and b_node["sector"] in buyer_start:
            pairs.append(
                (
                    buyer_start[b_node["sector"]] + b_node["index"],
                    seller_start[s_node["sector"]] + s_node["index"],
                )
            )
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    counts = np.bincount(edges[:, 0], minlength=n_buyers)
    indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, edges[:, 1].copy()
