"""Benchmark of one model step as the economy grows: where the time goes, per edge and per firm.

Run ``python benchmarks/bench_step.py`` (optionally ``--scales 1 10 100 --steps 24``). For the
baseline experiment with every sector's firm count (the end-demand segments too) multiplied
by each scale, it builds the model (timed apart), runs ``--steps`` steps and prints:

- firms, ledger accounts and supply edges;
- build time (graph, markets, agents) in seconds;
- wall time per step in milliseconds, the process's CPU time per step (steadier than wall
  time on a shared machine), and the part of the wall time spent in the ledger's own methods
  (``transfer``, ``transfer_flows``, ``begin_step``, ``check``, ``sweep_rounding``, timed by
  wrapping them) and in the markets' clearing (``Market.clear``);
- nanoseconds per supply edge and microseconds per firm of one step.

A warm-up run of the shipped baseline first loads the compiled kernels from numba's cache, so
no compilation is timed. Nothing is asserted about time: this script only prints.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

# Run as a script from a checkout: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import marketsim  # noqa: E402
from marketsim.ledger import Ledger  # noqa: E402
from marketsim.markets.market import Market  # noqa: E402
from marketsim.model import SupplyChainModel  # noqa: E402

BASELINE = Path(__file__).resolve().parents[1] / "experiments" / "baseline.toml"
LEDGER_METHODS = ("transfer", "transfer_flows", "begin_step", "check", "sweep_rounding")
HEADER = (
    f"{'scale':>6}{'firms':>9}{'accounts':>9}{'edges':>10}{'build s':>9}{'ms/step':>9}"
    f"{'cpu ms':>8}"
    f"{'ledger ms':>10}{'clear ms':>9}{'ns/edge':>9}{'us/firm':>9}"
)


class Stopwatch:
    """Seconds spent inside wrapped methods (outermost calls only, so nothing counts twice)."""

    def __init__(self):
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, cls: type, name: str) -> None:
        """Replace ``cls.name`` by a version that adds its wall time to ``seconds``."""
        method = getattr(cls, name)

        @functools.wraps(method)
        def timed(*args, **kwargs):
            self._depth += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started

        setattr(cls, name, timed)


LEDGER_TIME = Stopwatch()
CLEAR_TIME = Stopwatch()
for _name in LEDGER_METHODS:
    LEDGER_TIME.wrap(Ledger, _name)
CLEAR_TIME.wrap(Market, "clear")


def scaled_overrides(scale: int, steps: int) -> list[str]:
    """Overrides of the baseline: ``steps`` steps, every sector's ``count`` times ``scale``."""
    config = marketsim.load_experiment(BASELINE).config
    overrides = [f"experiment.steps={steps}"]
    for name, table in config["agents"].items():
        if isinstance(table, dict) and "count" in table:
            overrides.append(f"agents.{name}.count={int(table['count']) * scale}")
    return overrides


def bench_step(scale: int, steps: int) -> dict:
    """Build the baseline with firm counts times ``scale`` and time ``steps`` steps.

    Returns:
        dict with scale, firms, accounts, edges, build_s (s), ms_per_step (wall),
        cpu_ms_per_step (CPU time of this process), ledger_ms and
        clear_ms (ms per step inside the ledger and the markets' clearing), ns_per_edge and
        us_per_firm (of one step).
    """
    experiment = marketsim.load_experiment(BASELINE, scaled_overrides(scale, steps))
    started = time.perf_counter()
    model = SupplyChainModel(experiment, np.random.SeedSequence(0))
    built = time.perf_counter()
    LEDGER_TIME.seconds = CLEAR_TIME.seconds = 0.0
    cpu_started = time.process_time()
    for _ in range(steps):
        model.step()
    per_step = (time.perf_counter() - built) / steps
    cpu_per_step = (time.process_time() - cpu_started) / steps
    edges = sum(market.n_edges for market in model.markets.values())
    return {
        "scale": scale,
        "firms": model.firms.n,
        "accounts": len(model.ledger.account_names),
        "edges": edges,
        "build_s": built - started,
        "ms_per_step": 1e3 * per_step,
        "cpu_ms_per_step": 1e3 * cpu_per_step,
        "ledger_ms": 1e3 * LEDGER_TIME.seconds / steps,
        "clear_ms": 1e3 * CLEAR_TIME.seconds / steps,
        "ns_per_edge": 1e9 * per_step / max(edges, 1),
        "us_per_firm": 1e6 * per_step / max(model.firms.n, 1),
    }


def format_row(row: dict) -> str:
    """One line of the table printed by `main`."""
    return (
        f"{row['scale']:>6}{row['firms']:>9,}{row['accounts']:>9,}{row['edges']:>10,}"
        f"{row['build_s']:>9.2f}{row['ms_per_step']:>9.2f}{row['cpu_ms_per_step']:>8.2f}"
        f"{row['ledger_ms']:>10.2f}"
        f"{row['clear_ms']:>9.2f}{row['ns_per_edge']:>9.0f}{row['us_per_firm']:>9.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the time per step of the baseline at each scale of the firm counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--steps", type=int, default=24, help="steps timed at each scale")
    args = parser.parse_args(argv)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__},"
        f" {platform.machine()}, {sys.platform}"
    )
    marketsim.run(marketsim.load_experiment(BASELINE, ["experiment.steps=2"]))  # warm-up
    print(f"baseline, firm counts x scale: {args.steps} steps timed after the build")
    print(HEADER)
    for scale in args.scales:
        print(format_row(bench_step(scale, args.steps)), flush=True)


if __name__ == "__main__":
    main()
