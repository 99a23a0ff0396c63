"""Benchmark of the posted-price clearing kernel against numpy and plain Python.

Run ``python benchmarks/bench_kernels.py``. For random bipartite markets of 100k and 1M edges
it prints nanoseconds per edge for the numba kernel (after a warm-up call, best of several
repeats), a numpy-vectorised single round written here, and the plain-Python reference, plus
the ratios reference/kernel and numpy/kernel. The main comparison is one round
(``max_rounds=1``), the only round the numpy version does; a second set of rows runs five
rounds (kernel and reference only). Outputs are checked to agree before any time is printed.
Then the serial kernel against the parallel one (`marketsim.markets.kernels_parallel`) at
100k, 1M and 10M edges, 1 and 3 rounds (``bench_parallel``; results checked identical bit for
bit first). Last, it prints the wall time per step of the baseline experiment, and of the
baseline with every sector's firm count multiplied by 10 and 100.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

# Run as a script from a checkout: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketsim.markets import kernels  # noqa: E402
from marketsim.markets import kernels_parallel  # noqa: E402
from marketsim.markets import reference  # noqa: E402
from marketsim.markets.kernels_rounds import seller_slots  # noqa: E402

EDGES_PER_BUYER = 20
EDGES_PER_SELLER = 500
PRICE_SENSITIVITY = 3.0


def random_market(n_edges: int, seed: int = 0) -> tuple:
    """A random posted-price market with ``n_edges`` edges, as ``posted_price_clear`` args.

    Buyers and sellers get lognormal popularity, so degrees vary (many buyers with a few
    edges, some with many; some buyers with none). Capacity is about as large as demand in
    total, so some sellers are oversubscribed and ration.

    Args:
        n_edges: number of buyer-seller edges.
        seed: seed of the random generator.

    Returns:
        ``(buyer_indptr, edge_seller, seller_price, seller_capacity, buyer_demand,
        price_sensitivity)``; append ``max_rounds`` to call the kernel.
    """
    rng = np.random.default_rng(seed)
    n_buyers = max(1, n_edges // EDGES_PER_BUYER)
    n_sellers = max(2, n_edges // EDGES_PER_SELLER)
    buyer_popularity = rng.lognormal(0.0, 1.0, n_buyers)
    edge_buyer = np.sort(rng.choice(n_buyers, n_edges, p=buyer_popularity / buyer_popularity.sum()))
    buyer_indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    buyer_indptr[1:] = np.cumsum(np.bincount(edge_buyer, minlength=n_buyers))
    seller_popularity = rng.lognormal(0.0, 1.0, n_sellers)
    edge_seller = rng.choice(n_sellers, n_edges, p=seller_popularity / seller_popularity.sum())
    seller_price = rng.lognormal(0.0, 0.5, n_sellers)
    buyer_demand = rng.lognormal(0.0, 1.0, n_buyers)
    seller_capacity = rng.lognormal(0.0, 1.0, n_sellers)
    seller_capacity *= buyer_demand.sum() / seller_capacity.sum()
    return (
        buyer_indptr,
        edge_seller.astype(np.int64),
        seller_price,
        seller_capacity,
        buyer_demand,
        PRICE_SENSITIVITY,
    )


def numpy_posted_price_one_round(
    buyer_indptr, edge_seller, seller_price, seller_capacity, buyer_demand, price_sensitivity
):
    """One round of posted-price clearing, vectorised with numpy (same outputs as the kernel).

    Logit weights on log price shifted by each buyer's cheapest eligible seller
    (``np.minimum.reduceat``), requests ``demand * w / sum(w)`` (``np.bincount``), pro-rata
    rationing ``min(1, capacity / requested)`` per seller.

    Returns:
        ``(edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled)``.
    """
    n_buyers = buyer_demand.shape[0]
    n_sellers = seller_price.shape[0]
    degree = np.diff(buyer_indptr)
    edge_buyer = np.repeat(np.arange(n_buyers), degree)
    eligible = seller_capacity[edge_seller] > 0.0
    log_price = np.log(seller_price)[edge_seller]
    cheapest = np.zeros(n_buyers)
    has_edges = degree > 0
    if edge_seller.shape[0] > 0:
        masked = np.where(eligible, log_price, np.inf)
        cheapest[has_edges] = np.minimum.reduceat(masked, buyer_indptr[:-1][has_edges])
    cheapest[~np.isfinite(cheapest)] = 0.0
    cheapest_on_edge = cheapest[edge_buyer]
    shifted = np.where(eligible, log_price, cheapest_on_edge) - cheapest_on_edge
    weight = np.exp(-price_sensitivity * shifted) * eligible
    weight_total = np.bincount(edge_buyer, weight, minlength=n_buyers)[edge_buyer]
    request = np.zeros_like(weight)
    np.divide(buyer_demand[edge_buyer] * weight, weight_total, out=request, where=weight_total > 0)
    seller_requested = np.bincount(edge_seller, request, minlength=n_sellers)
    ratio = np.ones(n_sellers)
    over = seller_requested > seller_capacity
    ratio[over] = seller_capacity[over] / seller_requested[over]
    edge_fill = request * ratio[edge_seller]
    seller_sold = np.bincount(edge_seller, edge_fill, minlength=n_sellers)
    buyer_filled = np.bincount(edge_buyer, edge_fill, minlength=n_buyers)
    buyer_unfilled = np.maximum(0.0, buyer_demand - buyer_filled)
    return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled


def indexed_kernel_args(market: tuple, max_rounds: int) -> tuple:
    """``posted_price_clear_indexed`` arguments: the market with its edges sorted by seller
    (`seller_slots`, made here, as the mechanism makes them once per supply graph)."""
    indptr, edge_seller, price = market[:3]
    slots = seller_slots(indptr, edge_seller, len(price))
    return (indptr, edge_seller, *slots, *market[2:], max_rounds)


def best_time(function, args: tuple, repeats: int) -> tuple[float, object]:
    """Best wall time in seconds of ``function(*args)`` over ``repeats`` calls, and its result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def assert_same_outputs(got: tuple, want: tuple, scale: float) -> None:
    """Raise if two posted-price results differ beyond 1e-9 (relative and times ``scale``)."""
    for got_array, want_array in zip(got, want, strict=True):
        np.testing.assert_allclose(got_array, want_array, rtol=1e-9, atol=1e-9 * scale)


def bench_posted_price(
    n_edges: int, max_rounds: int = 1, kernel_repeats: int = 7, reference_repeats: int = 1
) -> dict:
    """Time the posted-price kernel, its numpy version and its reference on one market.

    The kernel is timed as the model calls it: given the market's edges sorted by seller,
    made beforehand (`posted_price_clear_indexed`; the mechanism keeps them from step to
    step); making them is timed apart (``slots_s``, once per supply graph in a run). The
    numpy version does one round only, so it is timed only when ``max_rounds == 1``.
    Outputs are checked to agree (1e-9) before the timings are returned.

    Args:
        n_edges: number of edges of the random market.
        max_rounds: rounds of request and rationing for the kernel and the reference.
        kernel_repeats: calls of the kernel and of the numpy version (best is kept).
        reference_repeats: calls of the plain-Python reference (best is kept).

    Returns:
        Dict with the market size, seconds and nanoseconds per edge of each version (numpy:
        NaN when ``max_rounds > 1``), and the ratios ``reference_over_kernel`` and
        ``numpy_over_kernel``.
    """
    market = random_market(n_edges)
    kernel_args = (*market, max_rounds)
    indexed_args = indexed_kernel_args(market, max_rounds)
    kernels.posted_price_clear_indexed(*indexed_args)  # warm-up: compile or load from cache
    kernel_s, kernel_out = best_time(
        kernels.posted_price_clear_indexed, indexed_args, kernel_repeats
    )
    slots_s, _ = best_time(seller_slots, (*market[:2], len(market[2])), kernel_repeats)
    scale = float(market[4].sum())
    numpy_s = float("nan")
    if max_rounds == 1:
        numpy_s, numpy_out = best_time(numpy_posted_price_one_round, market, kernel_repeats)
        assert_same_outputs(numpy_out, kernel_out, scale)
    reference_s, reference_out = best_time(
        reference.posted_price_clear, kernel_args, reference_repeats
    )
    assert_same_outputs(reference_out, kernel_out, scale)
    return {
        "n_edges": n_edges,
        "n_buyers": len(market[4]),
        "n_sellers": len(market[2]),
        "max_rounds": max_rounds,
        "kernel_s": kernel_s,
        "slots_s": slots_s,
        "numpy_s": numpy_s,
        "reference_s": reference_s,
        "kernel_ns_per_edge": kernel_s / n_edges * 1e9,
        "slots_ns_per_edge": slots_s / n_edges * 1e9,
        "numpy_ns_per_edge": numpy_s / n_edges * 1e9,
        "reference_ns_per_edge": reference_s / n_edges * 1e9,
        "reference_over_kernel": reference_s / kernel_s,
        "numpy_over_kernel": numpy_s / kernel_s,
    }


POSTED_PRICE_HEADER = (
    f"{'edges':>9} {'buyers':>7} {'sellers':>7} {'rounds':>6} {'kernel':>7} {'slots':>6}"
    f" {'numpy':>7}"
    f" {'reference':>9} {'ref/kernel':>10} {'numpy/kernel':>12}"
)


def format_posted_price(row: dict) -> str:
    """One table line (ns per edge, then ratios) for a ``bench_posted_price`` result."""
    timed_numpy = not np.isnan(row["numpy_s"])
    numpy_ns = f"{row['numpy_ns_per_edge']:>7.2f}" if timed_numpy else f"{'-':>7}"
    numpy_ratio = f"{row['numpy_over_kernel']:>11.1f}x" if timed_numpy else f"{'-':>12}"
    return (
        f"{row['n_edges']:>9,d} {row['n_buyers']:>7,d} {row['n_sellers']:>7,d}"
        f" {row['max_rounds']:>6d} {row['kernel_ns_per_edge']:>7.2f}"
        f" {row['slots_ns_per_edge']:>6.2f} {numpy_ns}"
        f" {row['reference_ns_per_edge']:>9.1f} {row['reference_over_kernel']:>9.0f}x"
        f" {numpy_ratio}"
    )


def bench_parallel(n_edges: int, max_rounds: int = 1, repeats: int = 7) -> dict:
    """Time the serial and the parallel posted-price kernels on one random market.

    Both are timed as the model calls them: the serial kernel with the market's edges sorted
    by seller made beforehand, the parallel kernel with its seller groups made beforehand and
    kept (``posted_price_clear_grouped``); making the groups is timed apart
    (``groups_s``, paid once per supply graph in a run). Wall times, best of ``repeats``
    calls after a warm-up call; the results are checked identical bit for bit first.

    Returns:
        Dict with the market size, ``max_rounds``, numba's thread count, seconds and ns per
        edge of ``serial``, ``parallel`` and ``groups``, and ``serial_over_parallel``.
    """
    market = random_market(n_edges)
    args = (*market, max_rounds)
    indptr, edge_seller, price = market[:3]
    threads = numba.get_num_threads()
    groups = kernels_parallel.seller_groups(indptr, edge_seller, len(price), threads)
    serial_out = kernels.posted_price_clear(*args)
    parallel_out = kernels_parallel.posted_price_clear_grouped(
        indptr, edge_seller, *groups, *args[2:]
    )
    for got, want in zip(parallel_out, serial_out, strict=True):
        assert got.tobytes() == want.tobytes(), "parallel kernel differs from the serial one"
    serial_s, _ = best_time(
        kernels.posted_price_clear_indexed, indexed_kernel_args(market, max_rounds), repeats
    )
    parallel_s, _ = best_time(
        kernels_parallel.posted_price_clear_grouped,
        (indptr, edge_seller, *groups, *args[2:]),
        repeats,
    )
    groups_s, _ = best_time(
        kernels_parallel.seller_groups, (indptr, edge_seller, len(price), threads), repeats
    )
    return {
        "n_edges": n_edges,
        "max_rounds": max_rounds,
        "threads": threads,
        "serial_s": serial_s,
        "parallel_s": parallel_s,
        "groups_s": groups_s,
        "serial_ns_per_edge": serial_s / n_edges * 1e9,
        "parallel_ns_per_edge": parallel_s / n_edges * 1e9,
        "groups_ns_per_edge": groups_s / n_edges * 1e9,
        "serial_over_parallel": serial_s / parallel_s,
    }


PARALLEL_HEADER = (
    f"{'edges':>10} {'rounds':>6} {'threads':>7} {'serial':>7} {'parallel':>8} {'groups':>7}"
    f" {'serial/parallel':>15}"
)


def format_parallel(row: dict) -> str:
    """One table line (ns per edge, then the speed-up) for a ``bench_parallel`` result."""
    return (
        f"{row['n_edges']:>10,d} {row['max_rounds']:>6d} {row['threads']:>7d}"
        f" {row['serial_ns_per_edge']:>7.2f} {row['parallel_ns_per_edge']:>8.2f}"
        f" {row['groups_ns_per_edge']:>7.2f} {row['serial_over_parallel']:>14.2f}x"
    )


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


def bench_baseline_step(scale: int = 1, steps: int = 120) -> dict:
    """Wall time per step of the baseline, with every sector's firm count times ``scale``.

    Model construction (graph, agents) is timed apart from the steps; a warm-up run first
    loads the compiled kernels from numba's cache.
    """
    import marketsim

    overrides = [f"experiment.steps={steps}"]
    overrides += [f"agents.{name}.count={count * scale}" for name, count in SECTOR_COUNTS.items()]
    experiment = marketsim.load_experiment(BASELINE, overrides)
    marketsim.run(marketsim.load_experiment(BASELINE, ["experiment.steps=2"]))
    from marketsim.model import SupplyChainModel

    started = time.perf_counter()
    model = SupplyChainModel(experiment, np.random.SeedSequence(0))
    built = time.perf_counter()
    for _ in range(steps):
        model.step()
    finished = time.perf_counter()
    return {
        "scale": scale,
        "firms": model.firms.n,
        "edges": sum(market.n_edges for market in model.markets.values()),
        "build_s": built - started,
        "ms_per_step": 1e3 * (finished - built) / steps,
    }


def main() -> None:
    """Print the posted-price timings for markets of 100k and 1M edges, then the model's."""
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__},"
        f" {platform.machine()}, {sys.platform}"
    )
    print("posted_price_clear: ns per edge (kernel, numpy: best of 7; reference: best of 2)")
    print(POSTED_PRICE_HEADER)
    for max_rounds in (1, 5):
        for n_edges in (100_000, 1_000_000):
            row = bench_posted_price(n_edges, max_rounds=max_rounds, reference_repeats=2)
            print(format_posted_price(row), flush=True)
    print()
    print(
        "posted_price_clear serial vs parallel: ns per edge, best of 7 wall times"
        " (parallel: seller groups made beforehand; groups: making them)"
    )
    print(PARALLEL_HEADER)
    for n_edges in (100_000, 1_000_000, 10_000_000):
        for max_rounds in (1, 3):
            print(format_parallel(bench_parallel(n_edges, max_rounds)), flush=True)
    print()
    print("baseline model: wall time per step (120 steps; firm counts x scale)")
    print(f"{'scale':>6}{'firms':>8}{'edges':>9}{'build s':>9}{'ms/step':>9}")
    for scale in (1, 10, 100):
        row = bench_baseline_step(scale)
        print(
            f"{row['scale']:>6}{row['firms']:>8}{row['edges']:>9}{row['build_s']:>9.2f}"
            f"{row['ms_per_step']:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
