"""Bring your own supply graph: ``[graph] file`` read and checked against the experiment.

``file`` names a GraphML file (``.graphml``) or an edge list (``.csv``), relative to the
experiment file that sets it (to the working directory under ``--set``). It replaces the drawn
graph: ``buyer_degree``, ``cross_region_weight`` and ``seed`` are unused, ``regions`` and
``restrictions`` still apply (a restricted edge of the file is dropped, as a drawn graph never
has one). Potential entrants are added to it as to a drawn graph (`SupplyGraph.with_entrants`).

GraphML: one node per member of every sector of the experiment, no more, no fewer:

- ``sector``: a sector of the experiment; each sector has exactly ``count`` nodes;
- ``region``: one of ``[graph] regions``;
- ``index``: the member's row in its sector, 0 to ``count - 1``; optional when the node id
  is ``"<sector>:<index>"`` (as `marketsim graph` writes them). Other attributes are ignored.

Edges run seller -> buyer; ``good`` (optional) must be the good the seller's sector sells, and
the buyer's sector must buy it. Every member of a sector selling a good that someone buys must
have at least one buyer. A graph written by ``marketsim graph`` (no plugin editing it) loads
back and gives identical results.

CSV: a header with ``seller`` and ``buyer`` (and optionally ``good``), one edge per row, firms
named ``"<sector>:<index>"``; members sit in regions round-robin (member ``k`` in
``regions[k mod len(regions)]``), as in a drawn graph. Checked like GraphML edges.

Any problem is one line naming the file, the node or edge, and what was expected
(`ExperimentError`, exit code 2), before anything runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd

from marketsim.config import SET_SOURCE
from marketsim.errors import ExperimentError
from marketsim.graph import SupplyGraph

SUFFIXES = (".graphml", ".csv")
"""File types ``[graph] file`` reads."""


def resolve_graph_file(config: dict[str, Any], origins: dict[str, str], source: str) -> Path | None:
    """The absolute path of ``[graph] file`` (written back into ``config``), or None.

    Relative to the experiment file that set the key, or to the working directory when it
    came from ``--set``.
    """
    value = config["graph"].get("file", "")
    if not value:
        return None
    origin = origins.get("graph.file", source)
    base = Path.cwd() if origin == SET_SOURCE else Path(origin).parent
    path = (base / value).resolve()
    config["graph"]["file"] = str(path)
    return path


def read_graph_file(
    path: Path,
    counts: dict[str, int],
    sells: dict[str, str | None],
    buys: dict[str, list[str]],
    graph_table: dict[str, Any],
    key_source: str,
) -> tuple[SupplyGraph, str]:
    """Read and check a supply graph file against the experiment.

    Args:
        path: the file (absolute).
        counts: sector -> ``count``, for the sectors of the experiment, in model order.
        sells: sector -> the good it sells (or None).
        buys: sector -> the goods it buys.
        graph_table: the resolved ``[graph]`` table.
        key_source: the experiment file that set ``graph.file`` (for a missing file).

    Returns:
        The `SupplyGraph` (restricted edges dropped) and the sha256 of the file's bytes.

    Raises:
        ExperimentError: one line naming the file and the first problem.
    """
    if path.suffix.lower() not in SUFFIXES:
        raise ExperimentError(
            f"expected a .graphml or .csv file, got {path.name!r}", key_source, "graph.file"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExperimentError(f"file not found: {path}", key_source, "graph.file") from None
    except OSError as exc:
        raise ExperimentError(
            f"cannot read {path}: {exc.strerror or exc}", key_source, "graph.file"
        ) from None
    reader = _GraphReader(str(path), counts, sells, buys, graph_table)
    graphml = path.suffix.lower() == ".graphml"
    supply = reader.from_graphml() if graphml else reader.from_csv()
    return supply, hashlib.sha256(data).hexdigest()


def write_edge_list(supply: SupplyGraph, path: str | Path) -> None:
    """Write ``supply``'s edges as the CSV ``[graph] file`` reads (seller, buyer, good),
    in O(nodes + edges) numpy and pandas (no networkx graph)."""
    names = np.array(supply.node_names(), dtype=object)
    goods = np.array(supply.goods, dtype=object)
    frame = pd.DataFrame(
        {
            "seller": names[supply.seller],
            "buyer": names[supply.buyer],
            "good": goods[supply.good] if len(goods) else np.zeros(0, dtype=object),
        }
    )
    frame.to_csv(path, index=False)


GRAPHML_TYPES = {"int": int, "long": int, "float": float, "double": float}
"""GraphML attribute types read as numbers (others stay strings)."""


def read_graphml(name: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str, Any]]]:
    """The nodes (id, attributes) and edges (source, target, ``good`` or None) of a GraphML
    file, streamed (``iterparse``) without building a networkx graph: about 3x faster than
    ``networkx.read_graphml`` on large graphs. Nested graphs and hyperedges are not read.

    Raises:
        ElementTree.ParseError: not well-formed XML.
        ValueError: a number attribute that does not parse.
    """
    keys: dict[str, tuple[str, str]] = {}
    defaults: dict[str, dict[str, Any]] = {"node": {}, "edge": {}}
    nodes: list[tuple[str, dict]] = []
    edges: list[tuple[str, str, Any]] = []

    def attributes(element) -> dict[str, Any]:
        found = {}
        for child in element:
            if child.tag.rpartition("}")[2] == "data" and child.get("key") in keys:
                name, kind = keys[child.get("key")]
                found[name] = GRAPHML_TYPES.get(kind, str)(child.text or "")
        return found

    for _, element in ElementTree.iterparse(name, events=("end",)):
        tag = element.tag.rpartition("}")[2]
        if tag == "key":
            kind = element.get("attr.type", "string")
            keys[element.get("id")] = (element.get("attr.name"), kind)
            for child in element:
                if child.tag.rpartition("}")[2] == "default" and element.get("for") in defaults:
                    value = GRAPHML_TYPES.get(kind, str)(child.text or "")
                    defaults[element.get("for")][element.get("attr.name")] = value
        elif tag == "node":
            nodes.append((element.get("id"), {**defaults["node"], **attributes(element)}))
            element.clear()
        elif tag == "edge":
            data = {**defaults["edge"], **attributes(element)}
            edges.append((element.get("source"), element.get("target"), data.get("good")))
            element.clear()
    return nodes, edges


class _GraphReader:
    """Checks a file's nodes and edges against the experiment, one problem at a time."""

    def __init__(self, name, counts, sells, buys, graph_table):
        self.name = name
        self.counts = {s: int(c) for s, c in counts.items()}
        self.sectors = list(counts)
        self.sells, self.buys = sells, buys
        self.regions = list(graph_table["regions"])
        self.restrictions = graph_table["restrictions"]
        self.first = dict(
            zip(self.sectors, np.cumsum([0, *self.counts.values()]).tolist(), strict=False)
        )
        self.n_nodes = sum(self.counts.values())
        self.goods = list(dict.fromkeys(g for s in self.sectors for g in buys[s]))

    def fail(self, message: str):
        raise ExperimentError(message, self.name)

    def expected_sectors(self) -> str:
        return ", ".join(map(repr, self.sectors))

    def member(self, firm: str, what: str) -> int:
        """The node of a firm named ``"<sector>:<index>"`` (CSV)."""
        sector, _, index = firm.rpartition(":")
        if sector not in self.counts or not index.isdigit():
            expected = f"'<sector>:<index>' with sector one of {self.expected_sectors()}"
            self.fail(f"{what} {firm!r}: unknown firm (expected {expected})")
        k, count = int(index), self.counts[sector]
        if k >= count:
            self.fail(
                f"{what} {firm!r}: unknown firm (sector {sector!r} has members 0 to {count - 1}, "
                f"agents.{sector}.count = {count})"
            )
        return self.first[sector] + k

    def from_graphml(self) -> SupplyGraph:
        try:
            nodes, edges = read_graphml(self.name)
        except (ElementTree.ParseError, ValueError) as exc:
            self.fail(f"expected a GraphML file, got {type(exc).__name__}: {exc}")
        found = dict.fromkeys(self.sectors, 0)
        for node, data in nodes:
            sector = data.get("sector")
            if sector is None:
                self.fail(
                    f"node {node!r}: expected a 'sector' attribute (one of "
                    f"{self.expected_sectors()})"
                )
            if sector not in found:
                self.fail(
                    f"node {node!r}: unknown sector {sector!r} (expected one of "
                    f"{self.expected_sectors()})"
                )
            found[sector] += 1
        for sector, n in found.items():
            if n != self.counts[sector]:
                self.fail(
                    f"sector {sector!r}: expected {self.counts[sector]} nodes "
                    f"(agents.{sector}.count), got {n}"
                )
        region = np.full(self.n_nodes, -1, dtype=np.int64)
        node_of: dict[str, int] = {}
        for node, data in nodes:
            sector = data["sector"]
            index = self.index_of(node, sector, data.get("index"))
            at = self.first[sector] + index
            if region[at] >= 0:
                self.fail(f"node {node!r}: member {index} of sector {sector!r} appears twice")
            if data.get("region") not in self.regions:
                self.fail(
                    f"node {node!r}: expected a 'region' attribute, one of "
                    f"{', '.join(map(repr, self.regions))} ([graph] regions), got "
                    f"{data.get('region')!r}"
                )
            region[at] = self.regions.index(data["region"])
            node_of[node] = at
        for u, v, _ in edges:
            for end in (u, v):
                if end not in node_of:
                    self.fail(f"edge {u!r} -> {v!r}: unknown firm {end!r} (not a node of the file)")
        seller = np.array([node_of[u] for u, _, _ in edges], dtype=np.int64)
        buyer = np.array([node_of[v] for _, v, _ in edges], dtype=np.int64)
        names = [(u, v) for u, v, _ in edges]
        return self.checked(region, seller, buyer, [g for _, _, g in edges], names)

    def index_of(self, node: str, sector: str, index) -> int:
        count = self.counts[sector]
        if index is None:
            prefix, _, digits = str(node).rpartition(":")
            if prefix != sector or not digits.isdigit():
                self.fail(
                    f"node {node!r}: expected an 'index' attribute or an id '{sector}:<index>'"
                )
            index = digits
        try:
            value = int(index)
            whole = float(index) == value
        except (TypeError, ValueError):
            whole = False
        if not whole or not 0 <= value < count:
            self.fail(
                f"node {node!r}: unknown firm: expected an index from 0 to {count - 1} "
                f"(agents.{sector}.count = {count}), got {index!r}"
            )
        return value

    def from_csv(self) -> SupplyGraph:
        try:
            table = pd.read_csv(self.name, dtype=str, keep_default_na=False)
        except Exception as exc:  # malformed CSV of every kind
            self.fail(f"expected a CSV edge list, got {type(exc).__name__}: {exc}")
        missing = [c for c in ("seller", "buyer") if c not in table.columns]
        if missing:
            self.fail(
                f"expected columns seller, buyer (and optionally good), got "
                f"{', '.join(map(str, table.columns)) or 'none'}"
            )
        nodes: dict[str, int] = {}
        for column in ("seller", "buyer"):
            for firm in pd.unique(table[column]):
                if firm not in nodes:
                    nodes[firm] = self.member(firm, column)
        seller = table["seller"].map(nodes).to_numpy(dtype=np.int64)
        buyer = table["buyer"].map(nodes).to_numpy(dtype=np.int64)
        goods = table["good"].tolist() if "good" in table.columns else [None] * len(table)
        region = np.concatenate(
            [np.arange(c) % len(self.regions) for c in self.counts.values()] or [[]]
        ).astype(np.int64)
        names = list(zip(table["seller"], table["buyer"], strict=True))
        return self.checked(region, seller, buyer, goods, names)

    def checked(self, region, seller, buyer, goods, names) -> SupplyGraph:
        """The graph of these edges once every edge and seller passes (restrictions applied)."""
        offsets = np.array([*self.first.values(), self.n_nodes])
        sector_of = np.searchsorted(offsets, np.arange(self.n_nodes), side="right") - 1
        good_code = {g: i for i, g in enumerate(self.goods)}
        sold = [self.sells[s] for s in self.sectors]
        sold_code = np.array([good_code.get(g, -1) for g in sold] or [0], dtype=np.int64)
        buys = np.array(
            [[g in self.buys[s] for g in self.goods] + [False] for s in self.sectors],
            dtype=bool,
        ).reshape(len(self.sectors), len(self.goods) + 1)
        named = pd.Series(goods, dtype=object)
        unnamed = named.isna().to_numpy() | (named == "").to_numpy()
        code = named.map(good_code).fillna(-1).to_numpy(dtype=np.int64)
        code = np.where(unnamed, sold_code[sector_of[seller]], code)
        wrong = (code != sold_code[sector_of[seller]]) | (code < 0)
        wrong |= ~buys[sector_of[buyer], code]  # code -1: the extra False column
        if wrong.any():
            i = int(np.argmax(wrong))
            s, b = sector_of[seller[i]], sector_of[buyer[i]]
            good = sold[s] if unnamed[i] else goods[i]
            edge = f"edge {names[i][0]!r} -> {names[i][1]!r}"
            if good != sold[s]:
                self.fail(f"{edge}: sector {self.sectors[s]!r} sells {sold[s]!r}, not {good!r}")
            bought = ", ".join(map(repr, self.buys[self.sectors[b]])) or "nothing"
            self.fail(f"{edge}: sector {self.sectors[b]!r} buys {bought}, not {good!r}")
        has_buyer = np.zeros(self.n_nodes, dtype=bool)
        has_buyer[seller] = True
        for i, sector in enumerate(self.sectors):
            if sold[i] in good_code:
                lonely = np.flatnonzero(~has_buyer[offsets[i] : offsets[i + 1]])
                if len(lonely):
                    self.fail(
                        f"firm '{sector}:{lonely[0]}' sells {sold[i]!r} but has no buyer "
                        "(expected at least one edge from every seller of a good that is bought)"
                    )
        pairs = np.unique(np.stack([seller, buyer, code], axis=1), axis=0)  # duplicates once
        seller, buyer, code = pairs[:, 0], pairs[:, 1], pairs[:, 2]
        allowed = np.ones((len(self.goods), len(self.regions), len(self.regions)), dtype=bool)
        for rule in self.restrictions:
            if rule["good"] in good_code:
                allowed[
                    good_code[rule["good"]],
                    self.regions.index(rule["from_region"]),
                    self.regions.index(rule["to_region"]),
                ] = False
        kept = allowed[code, region[seller], region[buyer]]
        return SupplyGraph(
            self.sectors,
            np.array(list(self.counts.values()), dtype=np.int64),
            self.regions,
            region,
            self.goods,
            seller[kept],
            buyer[kept],
            code[kept],
        )
