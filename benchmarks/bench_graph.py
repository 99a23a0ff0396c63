"""Benchmark of building the supply graph and the markets' CSR arrays, 1k to 100k+ firms.

Run ``python benchmarks/bench_graph.py [scale ...]``. The baseline experiment, with every
sector's firm count multiplied by each scale (default 50, 100, 1000, 4545, 10000: about 1.1k,
2.2k, 22k, 100k and 220k firms), is built once per scale and the script prints, per scale:
firms, supply-graph edges, the seconds spent in the model's build to sample the graph
(``graph s``), to export every market's CSR arrays (``csr s``), to build the whole model
(``build s``: graph, CSR, sectors, ledger, Mesa agents) and to build the networkx graph
users see (``networkx s``: what ``model.graph`` or ``marketsim graph`` costs when asked; no
step needs it).

The script runs against whatever ``marketsim`` is importable first, so the same script times
an older checkout (``PYTHONPATH=/path/to/old python benchmarks/bench_graph.py``); with the old
code the graph *was* the networkx graph, so ``networkx s`` is blank and ``graph s`` includes it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# Run as a script from a checkout: make the repository root importable (after PYTHONPATH).
sys.path.append(str(Path(__file__).resolve().parents[1]))

import marketsim  # noqa: E402
import marketsim.model  # noqa: E402

BASELINE = Path(__file__).resolve().parents[1] / "experiments" / "baseline.toml"
SECTOR_COUNTS = {
    "chip_vendor": 3,
    "network_vendor": 2,
    "utility": 3,
    "datacenter": 8,
    "inference": 4,
    "end_demand": 3,
    "investor": 2,
}
DEFAULT_SCALES = (50, 100, 1000, 4545, 10000)


def bench_graph_build(scale: int) -> dict:
    """Seconds to sample the graph, export CSR, build the model and build the networkx graph.

    Args:
        scale: every sector's firm count is multiplied by it.

    Returns:
        ``{"scale", "firms", "edges", "graph_s", "csr_s", "build_s", "networkx_s"}``
        (``networkx_s`` is None with a checkout that always built the networkx graph).
    """
    overrides = ["experiment.steps=1"]
    overrides += [f"agents.{name}.count={count * scale}" for name, count in SECTOR_COUNTS.items()]
    experiment = marketsim.load_experiment(BASELINE, overrides)
    arrays = hasattr(experiment, "supply_edges")
    seconds: dict[str, list[float]] = {"graph": [], "csr": []}

    def timed(target, attribute: str, key: str) -> None:
        original = getattr(target, attribute)

        def wrapper(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[key].append(time.perf_counter() - begun)

        setattr(target, attribute, wrapper)

    graph_method = "supply_edges" if arrays else "supply_graph"
    timed(experiment, graph_method, "graph")  # the instance's, so the class is untouched
    original_csr = marketsim.model.market_csr
    timed(marketsim.model, "market_csr", "csr")
    try:
        started = time.perf_counter()
        model = marketsim.model.SupplyChainModel(experiment, np.random.SeedSequence(0))
        build_s = time.perf_counter() - started
    finally:
        marketsim.model.market_csr = original_csr
    graph_s = sum(seconds["graph"])
    networkx_s = None
    if arrays:
        started = time.perf_counter()
        model.graph  # noqa: B018 - built when asked
        networkx_s = time.perf_counter() - started
    return {
        "scale": scale,
        "firms": model.firms.n,
        "edges": sum(market.n_edges for market in model.markets.values()),
        "graph_s": graph_s,
        "csr_s": sum(seconds["csr"]),
        "build_s": build_s,
        "networkx_s": networkx_s,
    }


def main(scales) -> None:
    """Print one row per scale."""
    print(
        f"{'scale':>6}{'firms':>9}{'edges':>10}{'graph s':>9}{'csr s':>8}{'build s':>9}"
        f"{'networkx s':>11}"
    )
    for scale in scales:
        row = bench_graph_build(scale)
        networkx = "" if row["networkx_s"] is None else f"{row['networkx_s']:.2f}"
        print(
            f"{row['scale']:>6}{row['firms']:>9,}{row['edges']:>10,}{row['graph_s']:>9.2f}"
            f"{row['csr_s']:>8.2f}{row['build_s']:>9.2f}{networkx:>11}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or DEFAULT_SCALES)
