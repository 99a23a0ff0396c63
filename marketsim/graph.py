"""The supply graph: who may trade with whom, built from ``[graph]`` rules or read from a file.

Nodes are market participants (firms and end-market segments), named ``"<sector>:<k>"``, with
attributes ``sector``, ``region`` and ``index`` (row within the sector). Edges run seller -> buyer
with attribute ``good``. Members of each sector are placed in regions round-robin. Each buyer of a
good links to ``buyer_degree`` sellers of it (``degree_by_good`` sets it per good; all of them if
fewer), drawn without replacement with weight 1 for a seller in its own region and
``cross_region_weight`` for one elsewhere; a seller that
no buyer chose is then linked to one buyer it may serve, drawn at random, so no firm is left without
customers; a restriction ``{good, from_region, to_region}`` forbids the good from flowing from
sellers in one region to buyers in another (export controls). The graph depends only on the
graph's seed (``[graph] seed``, by default the experiment's), so every replication of an
experiment trades over the same graph. ``[graph] file`` reads the graph instead
(`marketsim.graph_io`).

The graph is sampled straight into arrays (`SupplyGraph`, `sample_supply_graph`) in O(edges)
vectorised numpy: the draws of each buyer are successive weighted sampling without replacement
done for all buyers of a region at once, the same distribution as one
``Generator.choice(replace=False, p=...)`` per buyer (the scheme before these arrays, whose
random stream they do not reproduce: the same seed gives another, equally likely, graph).
`market_csr` exports one good's edges as CSR arrays over buyers for the kernels. The networkx
graph users see (``model.graph``, ``marketsim graph``, ``marketsim_modify_graph``) is built
from the arrays only when asked (`SupplyGraph.to_networkx`); when a plugin edits it, the
markets' edges are read back from the edited graph in O(edges) Python
(`SupplyGraph.with_edges_from`). `supply_graph_problem` checks a plugin's edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import networkx as nx
import numpy as np

from marketsim.errors import ExperimentError
from marketsim.markets.edges import csr_by_buyer
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
        "degree_by_good": Param(
            dict,
            {},
            "buyer_degree for particular goods: a table good -> sellers each buyer of that "
            "good links to (e.g. {tokens = 10}); goods not named use buyer_degree",
            "edges",
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
        "file": Param(
            str,
            "",
            "read the supply graph from this GraphML (.graphml) or edge-list (.csv) file, "
            "relative to the experiment file that sets it, instead of drawing it "
            "(docs/model.md, section 7.13; buyer_degree, cross_region_weight and seed are "
            "then unused; restrictions remove the file's forbidden edges)",
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

MAX_DEGREE = 1000
"""Most sellers a buyer links to per good (``buyer_degree`` and ``degree_by_good``)."""

GRAPH_SEED_STREAM = 0x6772617068
"""Extra SeedSequence entropy word that keeps the graph's random stream apart."""


def node_name(sector: str, index: int) -> str:
    """The node name of member ``index`` of ``sector``."""
    return f"{sector}:{index}"


def check_graph_table(graph_table: dict[str, Any], goods: Sequence[str], source: str) -> None:
    """Validate ``[graph] restrictions`` (known goods and regions, no other keys) and
    ``[graph] degree_by_good`` (known goods, whole numbers 1..`MAX_DEGREE`)."""
    for name, degree in graph_table["degree_by_good"].items():
        key = f"graph.degree_by_good.{name}"
        if name not in goods:
            expected = ", ".join(map(repr, goods)) or "no goods are traded"
            raise ExperimentError(
                f"unknown good {name!r} (expected one of {expected})", source, key
            )
        if isinstance(degree, bool) or not isinstance(degree, int):
            raise ExperimentError(
                f"expected a whole number of sellers, got {degree!r}", source, key
            )
        if not 1 <= degree <= MAX_DEGREE:
            raise ExperimentError(f"must be >= 1 and <= {MAX_DEGREE}, got {degree}", source, key)
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


@dataclass
class SupplyGraph:
    """The supply graph as arrays: nodes sector by sector, edges as (seller, buyer, good).

    Node ``offsets[i] + k`` is member ``k`` of ``sectors[i]`` (named ``"<sector>:<k>"``).
    This is what markets read (`market_csr`); the networkx graph users see is built from it
    when asked (`to_networkx`), in O(nodes + edges) Python.

    Attributes:
        sectors: sector names, in the order their nodes are numbered.
        counts: members of each sector.
        regions: the ``[graph] regions`` labels.
        region: region code (index into ``regions``) of every node.
        goods: the goods edges carry.
        seller: node of each edge's seller.
        buyer: node of each edge's buyer.
        good: good code (index into ``goods``) of each edge.
        networkx: the networkx graph the edges were read from, when a plugin edited it
            (``marketsim_modify_graph``); None when the arrays are the whole truth.
    """

    sectors: list[str]
    counts: np.ndarray
    regions: list[str]
    region: np.ndarray
    goods: list[str]
    seller: np.ndarray
    buyer: np.ndarray
    good: np.ndarray
    networkx: nx.DiGraph | None = None

    @property
    def offsets(self) -> np.ndarray:
        """First node of each sector, and the number of nodes last."""
        offsets = np.zeros(len(self.sectors) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        return offsets

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.seller)

    def member_regions(self, sector: str) -> np.ndarray:
        """Region code of each member of ``sector`` (an int64 array)."""
        i = self.sectors.index(sector)
        offsets = self.offsets
        return self.region[offsets[i] : offsets[i + 1]].astype(np.int64)

    def node_names(self) -> list[str]:
        """Names of all nodes, in node order."""
        return [
            node_name(sector, k)
            for sector, count in zip(self.sectors, self.counts, strict=True)
            for k in range(int(count))
        ]

    def edges_by_good(self) -> dict[str, int]:
        """Number of edges of each good."""
        counts = np.bincount(self.good, minlength=len(self.goods))
        return {good: int(n) for good, n in zip(self.goods, counts, strict=True) if n}

    def to_networkx(self) -> nx.DiGraph:
        """The networkx graph: nodes with ``firm``, ``sector``, ``region``, ``index``; edges
        seller -> buyer with ``good``. The edited graph itself if a plugin edited it."""
        if self.networkx is not None:
            return self.networkx
        names = self.node_names()
        graph = nx.DiGraph()
        node = 0
        for sector, count in zip(self.sectors, self.counts, strict=True):
            graph.add_nodes_from(
                (
                    names[node + k],
                    {
                        "firm": names[node + k],
                        "sector": sector,
                        "region": self.regions[self.region[node + k]],
                        "index": k,
                    },
                )
                for k in range(int(count))
            )
            node += int(count)
        attributes = [{"good": good} for good in self.goods]
        graph.add_edges_from(
            (names[s], names[b], attributes[g])
            for s, b, g in zip(
                self.seller.tolist(), self.buyer.tolist(), self.good.tolist(), strict=True
            )
        )
        return graph

    def with_edges_from(self, graph: nx.DiGraph) -> SupplyGraph:
        """The same nodes with the edges of ``graph`` (a plugin's edit; O(edges) Python).

        ``graph``'s nodes carry ``sector`` and ``index`` (checked by `supply_graph_problem`);
        the nodes' regions stay as built (a plugin edits who trades, not where firms are).
        """
        first = dict(zip(self.sectors, self.offsets.tolist(), strict=False))
        node_of = {
            name: first[data["sector"]] + data["index"]
            for name, data in graph.nodes(data=True)
            if data.get("sector") in first
        }
        goods = list(self.goods)
        code = {good: i for i, good in enumerate(goods)}
        seller, buyer, good = [], [], []
        for u, v, g in graph.edges(data="good"):
            if u in node_of and v in node_of:
                if g not in code:
                    code[g] = len(goods)
                    goods.append(g)
                seller.append(node_of[u])
                buyer.append(node_of[v])
                good.append(code[g])
        return replace(
            self,
            goods=goods,
            seller=np.array(seller, dtype=np.int64),
            buyer=np.array(buyer, dtype=np.int64),
            good=np.array(good, dtype=np.int64),
            networkx=graph,
        )

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph) -> SupplyGraph:
        """Arrays of a networkx supply graph (nodes with ``sector``, ``index``, ``region``)."""
        counts: dict[str, int] = {}
        regions: dict[str, int] = {}
        for _, data in graph.nodes(data=True):
            counts[data["sector"]] = max(counts.get(data["sector"], 0), data["index"] + 1)
            regions.setdefault(data.get("region"), len(regions))
        sectors = list(counts)
        empty = cls(
            sectors,
            np.array([counts[s] for s in sectors], dtype=np.int64),
            [str(r) for r in regions],
            np.zeros(sum(counts.values()), dtype=np.int64),
            [],
            *(np.zeros(0, dtype=np.int64) for _ in range(3)),
        )
        first = dict(zip(sectors, empty.offsets.tolist(), strict=False))
        for _, data in graph.nodes(data=True):
            empty.region[first[data["sector"]] + data["index"]] = regions[data.get("region")]
        return empty.with_edges_from(graph)

    def with_entrants(self, entrants: dict[str, int]) -> SupplyGraph:
        """The graph with each sector's potential entrants added after its members.

        Entrant ``j`` of a sector with ``count`` incumbents is member ``count + j``; it takes
        the region and copies the links (as seller and as buyer, same goods) of its template,
        incumbent ``(count + j) mod count`` (`marketsim.entry.entrant_templates`), or gets
        region ``(count + j) mod len(regions)`` and no links when there is no incumbent.
        Sectors are taken in order, so an entrant buying from another sector's entrant is
        linked to it when their templates are.
        """
        if not any(entrants.values()):
            return self
        old_offsets = self.offsets
        counts = self.counts + np.array([entrants.get(s, 0) for s in self.sectors], np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        shift = np.repeat(offsets[:-1] - old_offsets[:-1], self.counts)
        region = np.zeros(int(offsets[-1]), dtype=self.region.dtype)
        incumbent_nodes = np.arange(int(old_offsets[-1])) + shift
        region[incumbent_nodes] = self.region
        seller = self.seller + shift[self.seller]
        buyer = self.buyer + shift[self.buyer]
        good = self.good
        for i, sector in enumerate(self.sectors):
            n_new, count = entrants.get(sector, 0), int(self.counts[i])
            if not n_new:
                continue
            new_nodes = offsets[i] + count + np.arange(n_new)
            if count == 0:
                region[new_nodes] = (count + np.arange(n_new)) % len(self.regions)
                continue
            templates = offsets[i] + (count + np.arange(n_new)) % count
            region[new_nodes] = region[templates]
            copies = []
            for side in (buyer, seller):
                edges, entrant = _edges_at_templates(side, templates, new_nodes)
                copies.append((edges, entrant))
            (in_edges, in_entrant), (out_edges, out_entrant) = copies
            seller = np.concatenate([seller, seller[in_edges], out_entrant])
            buyer = np.concatenate([buyer, in_entrant, buyer[out_edges]])
            good = np.concatenate([good, good[in_edges], good[out_edges]])
        return replace(self, counts=counts, region=region, seller=seller, buyer=buyer, good=good)


def _edges_at_templates(
    endpoint: np.ndarray, templates: np.ndarray, entrants: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (edge, entrant) pair where the edge's ``endpoint`` is the entrant's template.

    Returns the edge index of each pair and the entrant's node, edges in order, entrants of
    one template in order.
    """
    if not len(templates):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=entrants.dtype)
    is_template = np.zeros(int(max(templates.max(), endpoint.max(initial=0))) + 1, dtype=bool)
    is_template[templates] = True
    hit = np.flatnonzero(is_template[endpoint])  # the few edges at a template, in order
    at = endpoint[hit]
    order = np.argsort(templates, kind="stable")
    sorted_templates = templates[order]
    first = np.searchsorted(sorted_templates, at, side="left")
    last = np.searchsorted(sorted_templates, at, side="right")
    per_edge = last - first
    edges = np.repeat(np.arange(len(at)), per_edge)
    starts = np.repeat(first - np.cumsum(per_edge) + per_edge, per_edge)
    return hit[edges], entrants[order[starts + np.arange(len(edges))]]


def sample_supply_graph(
    members: dict[str, int],
    sells: dict[str, str | None],
    buys: dict[str, Sequence[str]],
    graph_table: dict[str, Any],
    seed: int,
) -> SupplyGraph:
    """Sample the supply graph from ``[graph]`` rules, in O(edges) vectorised numpy.

    Args:
        members: sector name -> number of members, in model order.
        sells: sector name -> the good it sells (or None).
        buys: sector name -> the goods it buys.
        graph_table: the resolved ``[graph]`` table.
        seed: the graph's seed.

    Returns:
        The `SupplyGraph` (members in regions round-robin).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, GRAPH_SEED_STREAM]))
    regions = graph_table["regions"]
    code = {region: i for i, region in enumerate(regions)}
    sectors = list(members)
    counts = np.array([members[s] for s in sectors], dtype=np.int64)
    offsets = np.zeros(len(sectors) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    region = np.concatenate(
        [np.arange(int(c)) % len(regions) for c in counts] or [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    forbidden = {
        (r["good"], code[r["from_region"]], code[r["to_region"]])
        for r in graph_table["restrictions"]
    }

    def nodes_of(names) -> np.ndarray:
        first = dict(zip(sectors, offsets.tolist(), strict=False))
        parts = [np.arange(first[n], first[n] + members[n]) for n in names]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    goods = list(dict.fromkeys(g for bought in buys.values() for g in bought))  # ordered
    seller, buyer, good = [], [], []
    for g, name in enumerate(goods):
        sellers = nodes_of([s for s, sold in sells.items() if sold == name])
        buyers = nodes_of([b for b, bought in buys.items() if name in bought])
        allowed = np.array(
            [
                [(name, f, t) not in forbidden for t in range(len(regions))]
                for f in range(len(regions))
            ]
        )
        degree = graph_table.get("degree_by_good", {}).get(name, graph_table["buyer_degree"])
        s, b = _sample_good(sellers, buyers, region, allowed, degree, graph_table, rng)
        seller.append(s)
        buyer.append(b)
        good.append(np.full(len(s), g, dtype=np.int64))
    empty = [np.zeros(0, dtype=np.int64)]
    return SupplyGraph(
        sectors,
        counts,
        list(regions),
        region,
        goods,
        np.concatenate(seller or empty),
        np.concatenate(buyer or empty),
        np.concatenate(good or empty),
    )


def _sample_good(sellers, buyers, region, allowed, degree, graph_table, rng):
    """One good's edges: each buyer draws its sellers, then every seller left without a
    buyer is linked to one it may serve (``allowed[seller region, buyer region]``)."""
    n_regions = len(allowed)
    groups = [sellers[region[sellers] == r] for r in range(n_regions)]
    seller_parts, buyer_parts = [], []
    for home in range(n_regions):
        members = buyers[region[buyers] == home]
        usable = [r for r in range(n_regions) if allowed[r, home] and len(groups[r])]
        if not len(members) or not usable:
            continue
        pool = np.concatenate([groups[r] for r in usable])
        if len(pool) <= degree:  # all of them
            seller_parts.append(np.tile(np.sort(pool), len(members)))
            buyer_parts.append(np.repeat(members, len(pool)))
            continue
        size = np.array([len(groups[r]) for r in usable], dtype=np.int64)
        weight = np.array(
            [1.0 if r == home else graph_table["cross_region_weight"] for r in usable]
        )
        if not (weight * size).sum():
            weight[:] = 1.0
        picks = min(degree, int(size[weight > 0].sum()))
        group, position = _successive_sample(size, weight, len(members), picks, rng)
        first = np.concatenate([[0], np.cumsum(size)[:-1]])
        chosen = pool[first[group] + position]
        chosen.sort(axis=1)
        seller_parts.append(chosen.ravel())
        buyer_parts.append(np.repeat(members, picks))
    empty = [np.zeros(0, dtype=np.int64)]
    seller, buyer = np.concatenate(seller_parts or empty), np.concatenate(buyer_parts or empty)
    served = np.zeros(len(region), dtype=bool)
    served[seller] = True
    waiting = sellers[~served[sellers]]  # no seller is left without a customer it may serve
    for home in range(n_regions):
        lonely = waiting[region[waiting] == home]
        customers = buyers[allowed[home, region[buyers]]]
        if len(lonely) and len(customers):
            seller = np.concatenate([seller, lonely])
            buyer = np.concatenate(
                [buyer, customers[rng.integers(len(customers), size=len(lonely))]]
            )
    return seller, buyer


def _successive_sample(size, weight, n, picks, rng) -> tuple[np.ndarray, np.ndarray]:
    """``picks`` members drawn without replacement by each of ``n`` buyers, one at a time,
    each with probability proportional to its weight among those left (successive
    sampling, as ``Generator.choice(replace=False, p=...)``), where group ``i`` holds
    ``size[i]`` members of weight ``weight[i]``.

    Each draw picks a group with probability proportional to members left x weight, then a
    member left in it uniformly: its position among the members not yet drawn, shifted past
    those drawn before (O(picks^2) per buyer, no per-member arrays).

    Returns:
        ``(group, position)``, each ``(n, picks)``: group and position within it of each pick.
    """
    rows = np.arange(n)
    left = np.tile(size, (n, 1))
    group = np.zeros((n, picks), dtype=np.int64)
    position = np.zeros((n, picks), dtype=np.int64)
    last_group = len(size) - 1
    for j in range(picks):
        mass = left * weight
        cumulative = np.cumsum(mass, axis=1)
        target = rng.random(n) * cumulative[:, -1]
        g = np.minimum((cumulative <= target[:, None]).sum(axis=1), last_group)
        stuck = mass[rows, g] <= 0  # rounding at the top end: the last group with mass
        if stuck.any():
            g[stuck] = last_group - np.argmax(mass[stuck][:, ::-1] > 0, axis=1)
        p = rng.integers(left[rows, g])
        if j:
            taken = np.where(group[:, :j] == g[:, None], position[:, :j], np.iinfo(np.int64).max)
            taken.sort(axis=1)
            for t in range(j):
                p += taken[:, t] <= p
        group[:, j] = g
        position[:, j] = p
        left[rows, g] -= 1
    return group, position


def build_supply_graph(
    members: dict[str, int],
    sells: dict[str, str | None],
    buys: dict[str, Sequence[str]],
    graph_table: dict[str, Any],
    seed: int,
) -> nx.DiGraph:
    """The sampled supply graph as networkx (`sample_supply_graph`, then `to_networkx`)."""
    return sample_supply_graph(members, sells, buys, graph_table, seed).to_networkx()


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


def market_csr(
    graph: SupplyGraph | nx.DiGraph,
    good: str,
    seller_blocks: Sequence[tuple[str, int, int]],
    buyer_blocks: Sequence[tuple[str, int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """One good's edges as CSR arrays over the market's buyers, in O(edges) numpy.

    Args:
        graph: the supply graph (arrays, or a networkx graph, read in Python).
        good: the good.
        seller_blocks: (sector name, first market index, count) of each selling sector.
        buyer_blocks: the same for buying sectors.

    Returns:
        ``(buyer_indptr, edge_seller)``: edges of buyer ``b`` are
        ``buyer_indptr[b]:buyer_indptr[b + 1]``, sorted by seller.
    """
    supply = graph if isinstance(graph, SupplyGraph) else SupplyGraph.from_networkx(graph)
    n_buyers = sum(count for _, _, count in buyer_blocks)
    offsets = supply.offsets

    def market_index(blocks) -> np.ndarray:
        index = np.full(int(offsets[-1]), -1, dtype=np.int64)
        for name, start, count in blocks:
            if name in supply.sectors:
                i = supply.sectors.index(name)
                n = min(count, int(supply.counts[i]))
                index[offsets[i] : offsets[i] + n] = start + np.arange(n)
        return index

    code = supply.goods.index(good) if good in supply.goods else -1
    mine = supply.good == code
    seller = market_index(seller_blocks)[supply.seller[mine]]
    buyer = market_index(buyer_blocks)[supply.buyer[mine]]
    kept = (seller >= 0) & (buyer >= 0)
    return csr_by_buyer(buyer[kept], seller[kept], n_buyers)
