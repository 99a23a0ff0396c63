"""Benchmark of the economy from a thousand to a million members: build, step, memory, ns/edge.

Run ``python benchmarks/bench_scale.py`` (options: ``--members 1000 10000 100000 1000000``,
``--steps 6``, ``--parallel`` to use the prange kernels, ``--no-mesa`` to skip the Mesa-idiom
comparison). For each size it builds ``experiments/full_resolution.toml`` scaled so the
economy has about that many members (firms and enterprise buyers; the vendors stay at 24
and 12, the other sectors' counts scale together and every per-firm quantity is divided
accordingly, so totals stay the baseline's), in a fresh process, and prints:

- members, supply edges;
- build time (graph, markets, sectors, ledger) in seconds;
- wall time per step in milliseconds (mean over the steps after the first, which loads
  the kernels from numba's cache) and CPU time per step;
- the process's peak resident memory (MB);
- nanoseconds per supply edge of one step;
- what Mesa agents cost when first asked for (``len(model.agents)`` after the run): seconds
  and the growth of peak memory (MB). A run never makes them.

Then it clears one posted-price market of 100k and one of 1M edges three ways in the same
process (`mesa_idiom.mesa_vs_kernel`): written the Mesa way (buyer and seller agents, dicts
of requests), with the serial kernel and with the parallel kernel, and prints the ratios.
Nothing is asserted about time: this script only prints.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FULL = ROOT / "experiments" / "full_resolution.toml"
SCALED_SECTORS = ("utility", "datacenter", "inference", "end_demand")
PER_FIRM_KEYS = {
    "utility": ("capacity_mw", "initial_under_construction_mw", "initial_cash_usd"),
    "datacenter": (
        "initial_accelerators",
        "initial_shell_mw",
        "initial_under_construction_mw",
        "initial_cash_usd",
    ),
    "inference": ("initial_cash_usd",),
    "end_demand": ("base_demand_mtokens_per_month",),
}
"""Quantities of one firm that are a share of a sector total (divided as counts grow)."""


def scaled_overrides(members: int) -> list[str]:
    """``--set`` overrides that scale full_resolution.toml to about ``members`` members."""
    from marketsim.experiment import load_experiment

    agents = load_experiment(FULL).config["agents"]
    fixed = sum(t["count"] for n, t in agents.items() if n not in SCALED_SECTORS)
    full_scaled = sum(agents[n]["count"] for n in SCALED_SECTORS)
    factor = max(members - fixed, 4) / full_scaled
    overrides = []
    for name in SCALED_SECTORS:
        count = max(1, round(agents[name]["count"] * factor))
        ratio = agents[name]["count"] / count
        overrides.append(f"agents.{name}.count={count}")
        for key in PER_FIRM_KEYS[name]:
            overrides.append(f"agents.{name}.{key}={agents[name][key] * ratio!r}")
    return overrides


def measure(members: int, steps: int, parallel: bool) -> dict:
    """Build and step the scaled economy in this process; times and peak memory."""
    from marketsim.experiment import load_experiment
    from marketsim.model import SupplyChainModel

    overrides = [*scaled_overrides(members), f"experiment.steps={steps}"]
    if parallel:
        overrides.append("engine.parallel_kernels=true")
    experiment = load_experiment(FULL, overrides=overrides)
    started = time.perf_counter()
    model = SupplyChainModel(experiment, 2025)
    build = time.perf_counter() - started
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        model.step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    later = walls[1:] or walls
    later_cpu = cpus[1:] or cpus
    count = sum(sector.count for sector in model.sectors.values())
    edges = sum(market.n_edges for market in model.markets.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    agents = len(model.agents)  # Mesa agents are made on first use
    agents_s = time.perf_counter() - started
    assert agents == count
    return {
        "members": count,
        "edges": edges,
        "build_s": build,
        "step_ms": 1e3 * sum(later) / len(later),
        "step_cpu_ms": 1e3 * sum(later_cpu) / len(later_cpu),
        "first_step_ms": 1e3 * walls[0],
        "peak_mb": peak_mb,
        "ns_per_edge": 1e9 * sum(later) / len(later) / max(edges, 1),
        "agents_s": agents_s,
        "agents_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_mb,
    }


def run_child(members: int, steps: int, parallel: bool) -> dict:
    """`measure` in a fresh process, so each size's peak memory is its own."""
    command = [sys.executable, __file__, "--child", str(members), "--steps", str(steps)]
    if parallel:
        command.append("--parallel")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


HEADER = (
    f"{'members':>10}{'edges':>12}{'build s':>9}{'1st ms':>9}{'ms/step':>9}{'cpu ms':>9}"
    f"{'peak MB':>9}{'ns/edge':>9}{'agents s':>10}{'+MB':>7}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--parallel", action="store_true", help="use the prange kernels")
    parser.add_argument("--no-mesa", action="store_true", help="skip the Mesa-idiom clearing")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps, args.parallel)))
        return
    import numba
    import numpy

    print(
        f"Python {platform.python_version()}, numpy {numpy.__version__}, numba "
        f"{numba.__version__}, {numba.config.NUMBA_NUM_THREADS} numba threads, "
        f"{'parallel' if args.parallel else 'serial'} kernels, {args.steps} steps"
    )
    print(HEADER)
    for members in args.members:
        row = run_child(members, args.steps, args.parallel)
        print(
            f"{row['members']:>10,d}{row['edges']:>12,d}{row['build_s']:>9.2f}"
            f"{row['first_step_ms']:>9.0f}{row['step_ms']:>9.1f}{row['step_cpu_ms']:>9.1f}"
            f"{row['peak_mb']:>9.0f}{row['ns_per_edge']:>9.1f}{row['agents_s']:>10.2f}"
            f"{row['agents_mb']:>7.0f}",
            flush=True,
        )
    if args.no_mesa:
        return
    from mesa_idiom import HEADER as MESA_HEADER
    from mesa_idiom import format_row
    from mesa_idiom import mesa_vs_kernel

    print("\nOne posted-price market, three rounds, cleared three ways (ns per edge):")
    print(MESA_HEADER)
    for n_edges in (100_000, 1_000_000):
        print(format_row(mesa_vs_kernel(n_edges)), flush=True)


if __name__ == "__main__":
    main()
