"""The supply graph on the page: firms coloured by sector, shaped by region, edges by flow.

Markets record quantities per buyer and per seller, not per edge. An edge's flow this step
is its buyer's filled quantity (``ClearingOutcome.buyer_filled``) spread evenly over the
buyer's open edges in that market (`edge_flows`): what a buyer received, split between the
suppliers it could buy from. Edge widths are scaled within each good (a megawatt and an
accelerator are not comparable): the largest flow of a good this step is drawn thickest.

Layout: columns by depth in the chain (sellers of inputs left, end demand right), members of
a sector stacked; computed once per model. Graphs above `MAX_DRAWN_NODES` are not drawn
(`marketsim graph FILE --out edges.csv` writes any size).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from marketsim.graph import node_name  # noqa: E402
from marketsim.model import SupplyChainModel  # noqa: E402
from marketsim.report.charts import literal  # noqa: E402
from marketsim.report.charts import to_data_uri  # noqa: E402

MAX_DRAWN_NODES = 2_000
"""Larger supply graphs are described, not drawn (drawing would take seconds per step)."""
REGION_MARKERS = "osD^vP*Xph"
WIDEST_EDGE = 4.0
"""Width (points) of the largest flow of a good this step; an open edge without flow: 0.3."""


def edge_flows(model: SupplyChainModel) -> dict[tuple[str, str], float]:
    """Quantity over each supply edge this step, in its good's unit (see module doc).

    Returns:
        (seller node, buyer node) -> quantity; edges of markets not yet cleared are absent.
    """
    flows: dict[tuple[str, str], float] = {}
    for market in model.markets.values():
        outcome = getattr(market, "outcome", None)
        if outcome is None:
            continue
        book = market.book
        edge_buyer = book.edge_buyer
        open_edges = book.edge_open
        degree = np.bincount(edge_buyer[open_edges], minlength=book.n_buyers)
        filled = np.asarray(outcome.buyer_filled, dtype=float)
        share = np.divide(filled, degree, out=np.zeros(book.n_buyers), where=degree > 0)
        per_edge = np.where(open_edges, share[edge_buyer], 0.0)
        buyers = _member_names(market.buyers.sectors)
        sellers = _member_names(market.sellers.sectors)
        for seller, buyer, flow in zip(
            book.edge_seller.tolist(), edge_buyer.tolist(), per_edge.tolist(), strict=True
        ):
            key = (sellers[seller], buyers[buyer])
            flows[key] = flows.get(key, 0.0) + flow
    return flows


def _member_names(blocks) -> list[str]:
    return [node_name(sector.name, k) for sector, _, count in blocks for k in range(count)]


def chain_layout(graph: nx.DiGraph, sectors: list[str]) -> dict[str, np.ndarray]:
    """Node positions: one column per depth in the chain (longest path of sector edges from
    a sector that buys from no one), sectors without edges in a last column."""
    sector_graph = nx.DiGraph()
    sector_graph.add_nodes_from(sectors)
    sector_of = nx.get_node_attributes(graph, "sector")
    for seller, buyer in graph.edges():
        if sector_of[seller] != sector_of[buyer]:
            sector_graph.add_edge(sector_of[seller], sector_of[buyer])
    depth: dict[str, int] = {}
    if nx.is_directed_acyclic_graph(sector_graph):
        for sector in nx.topological_sort(sector_graph):
            parents = list(sector_graph.predecessors(sector))
            depth[sector] = 1 + max(depth[p] for p in parents) if parents else 0
    else:
        depth = {sector: index for index, sector in enumerate(sectors)}
    last = max(depth.values(), default=0) + 1
    for sector in sectors:
        if sector_graph.degree(sector) == 0:
            depth[sector] = last
    columns = nx.Graph()  # a copy: the model's graph keeps its attributes as they are
    columns.add_nodes_from(
        (node, {"column": depth.get(sector, last)}) for node, sector in sector_of.items()
    )
    return nx.multipartite_layout(columns, subset_key="column", align="vertical")


def draw_supply_graph(
    model: SupplyChainModel, positions: dict[str, np.ndarray] | None = None
) -> tuple[str | None, dict[str, np.ndarray] | None]:
    """The supply graph with this step's flows as a PNG data URI.

    Args:
        model: the model (its graph and markets' last outcomes).
        positions: a layout from an earlier call (computed when None).

    Returns:
        ``(uri, positions)``; ``(None, None)`` when the graph has more than
        `MAX_DRAWN_NODES` nodes.
    """
    supply = model.supply
    if int(supply.counts.sum()) > MAX_DRAWN_NODES:
        return None, None
    graph = model.graph
    sectors = list(model.sectors)
    if positions is None:
        positions = chain_layout(graph, sectors)
    regions = list(model.experiment["graph"]["regions"])
    colours = plt.get_cmap("tab10")
    flows = edge_flows(model)
    goods = nx.get_edge_attributes(graph, "good")
    largest: dict[str, float] = {}
    for edge, flow in flows.items():
        good = goods.get(edge, "")
        largest[good] = max(largest.get(good, 0.0), flow)
    edges = list(graph.edges())
    widths = []
    for edge in edges:
        top = largest.get(goods.get(edge, ""), 0.0)
        flow = flows.get(edge, 0.0)
        widths.append(0.3 + (WIDEST_EDGE - 0.3) * flow / top if top > 0 else 0.3)
    figure, axes = plt.subplots(figsize=(7.6, 4.8))
    nx.draw_networkx_edges(
        graph,
        positions,
        edgelist=edges,
        width=widths,
        edge_color="#607080",
        alpha=0.55,
        arrows=False,
        ax=axes,
    )
    sector_of = nx.get_node_attributes(graph, "sector")
    region_of = nx.get_node_attributes(graph, "region")
    for s, sector in enumerate(sectors):
        for r, region in enumerate(regions):
            nodes = [n for n in graph if sector_of[n] == sector and region_of[n] == region]
            if nodes:
                nx.draw_networkx_nodes(
                    graph,
                    positions,
                    nodelist=nodes,
                    node_color=[colours(s % 10)],
                    node_shape=REGION_MARKERS[r % len(REGION_MARKERS)],
                    node_size=70,
                    edgecolors="black",
                    linewidths=0.4,
                    ax=axes,
                )
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colours(s % 10), label=literal(sector))
        for s, sector in enumerate(sectors)
    ] + [
        Line2D(
            [],
            [],
            marker=REGION_MARKERS[r % len(REGION_MARKERS)],
            linestyle="",
            color="grey",
            label=literal(region),
        )
        for r, region in enumerate(regions)
    ]
    axes.legend(handles=handles, fontsize="x-small", loc="center left", bbox_to_anchor=(1, 0.5))
    axes.set_title(
        f"Supply graph at step {model.step_index}: colour = sector, shape = region, "
        "width = this step's flow",
        fontsize="small",
    )
    axes.set_axis_off()
    return to_data_uri(figure), positions
