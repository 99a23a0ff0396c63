"""The posted-price clearing written the way a Mesa user would, timed beside the kernel.

Run ``python benchmarks/mesa_idiom.py``. A ``PostedPriceMarket`` (a ``mesa.Model``) holds one
``SellerAgent`` per seller and one ``BuyerAgent`` per buyer (``mesa.Agent`` subclasses). In
each round every buyer's ``step()`` splits its residual demand over its sellers with capacity
left by a logit on log price and posts its requests into a dict on each seller
(``seller.requests[buyer] = units``); then every seller's ``step()`` fills the requests pro
rata when it is asked for more than it has left and credits each buyer; then every buyer's
``settle()`` takes what it received off its residual demand. The rounds, the stopping rules
and the rounding-dust rule (``RESIDUAL_RTOL``) are the kernel's
(`marketsim.markets.kernels.posted_price_clear`), so both give the same result; this is
checked (relative and absolute tolerance 1e-9) before anything is timed.

It is written as a competent Mesa user would write it, not to be slow: sellers keep their log
price, buyers keep their seller list, agents are visited with ``AgentSet.do`` (no shuffle, no
scheduler), and the timing covers the clearing only (resetting the agents' state and the
rounds), not building the agents or reading results back into arrays. The kernel's timing
covers its whole call, allocating its outputs included.

``mesa_vs_kernel(n_edges, max_rounds)`` builds one random market (``random_market`` of
``bench_kernels.py`` with each buyer's duplicate edges dropped: in the model a buyer links a
seller at most once), clears it with the Mesa model, the serial kernel and the parallel
kernel, checks the results agree, and returns the timings and ratios. The parallel kernel is
timed as the model runs them: the serial kernel with the market's edges sorted by seller
made once beforehand (`kernels_rounds.seller_slots`, `posted_price_clear_indexed`), the
parallel one (``[engine] parallel_kernels``) with its seller groups made once beforehand
(`kernels_parallel.seller_groups`); the model keeps both from step to step.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from pathlib import Path

import mesa
import numba
import numpy as np

# Run as a script from a checkout: make the repository root and this folder importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kernels import assert_same_outputs  # noqa: E402
from bench_kernels import best_time  # noqa: E402
from bench_kernels import random_market  # noqa: E402

from marketsim.markets import kernels  # noqa: E402
from marketsim.markets import kernels_parallel  # noqa: E402
from marketsim.markets.kernels import RESIDUAL_RTOL  # noqa: E402
from marketsim.markets.kernels_rounds import seller_slots  # noqa: E402


class SellerAgent(mesa.Agent):
    """A seller with a posted price and a capacity for the step, rationing pro rata.

    Attributes:
        price: posted price per unit (> 0); ``log_price`` its natural log.
        capacity: units it can sell this step; ``capacity_left`` what is left of it.
        requests: buyer -> units that buyer asks of it this round.
        sold: units sold so far this step.
        requested_first_round: units asked of it in the first round (notional demand).
    """

    def __init__(self, model: PostedPriceMarket, price: float, capacity: float):
        super().__init__(model)
        self.price = price
        self.log_price = math.log(price)
        self.capacity = capacity
        self.capacity_left = capacity
        self.requests: dict[BuyerAgent, float] = {}
        self.sold = 0.0
        self.requested_first_round = 0.0

    def reset(self) -> None:
        """Start of the clearing: the whole capacity is for sale, nothing sold yet."""
        self.capacity_left = self.capacity
        self.requests.clear()
        self.sold = 0.0
        self.requested_first_round = 0.0

    def step(self) -> None:
        """Fill this round's requests, pro rata when asked for more than what is left."""
        if not self.requests:
            return
        total = sum(self.requests.values())
        if total > self.capacity_left:
            ratio = self.capacity_left / total
            self.capacity_left = 0.0
        else:
            ratio = 1.0
            left = self.capacity_left - total
            self.capacity_left = 0.0 if left <= RESIDUAL_RTOL * self.capacity else left
        for buyer, units in self.requests.items():
            fill = units * ratio
            buyer.fills[self] += fill
            buyer.received += fill
            self.sold += fill
        self.requests.clear()


class BuyerAgent(mesa.Agent):
    """A buyer splitting its demand over its sellers by a logit on log price.

    Attributes:
        demand: units wanted this step; ``demand_left`` what is still unfilled.
        sellers: the `SellerAgent` s it can buy from (its supply edges, in order).
        fills: seller -> units bought from it so far this step.
        received: units received in the current round.
    """

    def __init__(self, model: PostedPriceMarket, demand: float, sellers: list[SellerAgent]):
        super().__init__(model)
        self.demand = demand
        self.demand_left = demand
        self.sellers = sellers
        self.fills = dict.fromkeys(sellers, 0.0)
        self.received = 0.0
        self.asked = False

    def reset(self) -> None:
        """Start of the clearing: all of the demand is unfilled, nothing bought yet."""
        self.demand_left = self.demand
        for seller in self.fills:
            self.fills[seller] = 0.0

    def step(self) -> None:
        """Ask each seller with capacity left for a logit share of the residual demand."""
        self.received = 0.0
        self.asked = False
        if self.demand_left <= 0.0:
            return
        eligible = [seller for seller in self.sellers if seller.capacity_left > 0.0]
        if not eligible:
            return
        cheapest = min(seller.log_price for seller in eligible)
        sensitivity = self.model.price_sensitivity
        weights = [math.exp(-sensitivity * (seller.log_price - cheapest)) for seller in eligible]
        per_weight = self.demand_left / sum(weights)
        for seller, weight in zip(eligible, weights, strict=True):
            seller.requests[self] = weight * per_weight
        self.asked = True
        self.model.any_request = True

    def settle(self) -> None:
        """Take this round's fills off the residual demand (rounding dust counts as zero)."""
        if not self.asked:
            return
        left = self.demand_left - self.received
        self.demand_left = 0.0 if left <= RESIDUAL_RTOL * self.demand else left
        if self.received > 0.0:
            self.model.any_fill = True


class PostedPriceMarket(mesa.Model):
    """One posted-price market: sellers and buyers as Mesa agents, cleared in rounds.

    Args:
        buyer_indptr, edge_seller, seller_price, seller_capacity, buyer_demand,
        price_sensitivity: the market, as for `kernels.posted_price_clear`.
    """

    def __init__(
        self,
        buyer_indptr,
        edge_seller,
        seller_price,
        seller_capacity,
        buyer_demand,
        price_sensitivity,
    ):
        super().__init__(seed=0)
        self.price_sensitivity = float(price_sensitivity)
        self.seller_list = [
            SellerAgent(self, float(price), float(capacity))
            for price, capacity in zip(seller_price, seller_capacity, strict=True)
        ]
        self.buyer_list = [
            BuyerAgent(
                self,
                float(buyer_demand[b]),
                [self.seller_list[s] for s in edge_seller[buyer_indptr[b] : buyer_indptr[b + 1]]],
            )
            for b in range(len(buyer_demand))
        ]
        self.buyers = self.agents_by_type[BuyerAgent]
        self.sellers = self.agents_by_type[SellerAgent]
        self.any_request = False
        self.any_fill = False

    def clear(self, max_rounds: int) -> None:
        """Clear the market: at most ``max_rounds`` rounds of requests, rationing, fills."""
        self.sellers.do("reset")
        self.buyers.do("reset")
        for round_index in range(max_rounds):
            self.any_request = False
            self.buyers.do("step")
            if not self.any_request:
                break
            if round_index == 0:
                for seller in self.sellers:
                    seller.requested_first_round = sum(seller.requests.values())
            self.sellers.do("step")
            self.any_fill = False
            self.buyers.do("settle")
            if not self.any_fill:
                break

    def results(self) -> tuple:
        """The kernel's five outputs read back from the agents (not part of the timing)."""
        edge_fill = np.array([b.fills[s] for b in self.buyer_list for s in b.sellers])
        sold = np.array([s.sold for s in self.seller_list])
        requested = np.array([s.requested_first_round for s in self.seller_list])
        filled = np.array([sum(b.fills[s] for s in b.sellers) for b in self.buyer_list])
        demand = np.array([b.demand for b in self.buyer_list])
        return edge_fill, sold, requested, filled, np.maximum(0.0, demand - filled)


def unique_edge_market(n_edges: int, seed: int = 0) -> tuple:
    """A ``random_market`` with each buyer's repeated sellers dropped, about ``n_edges`` left.

    ``random_market`` draws sellers with replacement; popular sellers are drawn twice by the
    same buyer (about a fifth of the edges at 100k). It is drawn with more edges so that
    about ``n_edges`` (within a few per cent) remain once repeats are dropped.

    Returns:
        The market as ``posted_price_clear`` arguments without ``max_rounds``.
    """
    drawn = n_edges
    for _ in range(2):  # draw more edges so that about n_edges are left without repeats
        indptr, edge_seller, price, capacity, demand, sensitivity = random_market(drawn, seed)
        n_buyers, n_sellers = len(demand), len(price)
        edge_buyer = np.repeat(np.arange(n_buyers), np.diff(indptr))
        n_unique = len(np.unique(edge_buyer * n_sellers + edge_seller))
        drawn = int(drawn * n_edges / n_unique)
    edge_buyer = np.repeat(np.arange(n_buyers), np.diff(indptr))
    _, first = np.unique(edge_buyer * n_sellers + edge_seller, return_index=True)
    kept = np.sort(first)
    new_indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_buyer[kept], minlength=n_buyers), out=new_indptr[1:])
    return new_indptr, edge_seller[kept].copy(), price, capacity, demand, sensitivity


def mesa_vs_kernel(
    n_edges: int, max_rounds: int = 3, kernel_repeats: int = 7, mesa_repeats: int = 2
) -> dict:
    """Time the Mesa-idiom clearing and the kernels on the same market, in the same run.

    Args:
        n_edges: edges of the random market before dropping repeated ones.
        max_rounds: rounds of request and rationing (the model's default is 3).
        kernel_repeats: calls of each kernel (best is kept), after a warm-up call.
        mesa_repeats: clearings of the Mesa model (best is kept).

    Returns:
        Dict: ``n_edges`` (after dropping repeats), ``n_buyers``, ``n_sellers``,
        ``max_rounds``, ``numba_threads``, seconds and ns per edge of ``mesa``, ``kernel``
        (serial) and ``parallel``, and the ratios ``mesa_over_kernel`` and
        ``mesa_over_parallel``.

    Raises:
        AssertionError: if any result differs from the serial kernel's by more than 1e-9, or
            the parallel kernel's is not identical to the serial kernel's.
    """
    market = unique_edge_market(n_edges)
    edges = len(market[1])
    args = (*market, max_rounds)
    groups = kernels_parallel.seller_groups(
        market[0], market[1], len(market[2]), numba.get_num_threads()
    )
    slots = seller_slots(market[0], market[1], len(market[2]))
    parallel_args = (market[0], market[1], *groups, *args[2:])
    serial_args = (market[0], market[1], *slots, *args[2:])
    kernels.posted_price_clear_indexed(*serial_args)  # warm-up: compile or load from cache
    kernels_parallel.posted_price_clear_grouped(*parallel_args)
    kernel_s, kernel_out = best_time(
        kernels.posted_price_clear_indexed, serial_args, kernel_repeats
    )
    parallel_s, parallel_out = best_time(
        kernels_parallel.posted_price_clear_grouped, parallel_args, kernel_repeats
    )
    for got, want in zip(parallel_out, kernel_out, strict=True):
        assert got.tobytes() == want.tobytes(), "parallel kernel differs from the serial kernel"
    model = PostedPriceMarket(*market)
    mesa_s = float("inf")
    for _ in range(mesa_repeats):
        started = time.perf_counter()
        model.clear(max_rounds)
        mesa_s = min(mesa_s, time.perf_counter() - started)
    assert_same_outputs(model.results(), kernel_out, float(market[4].sum()))
    return {
        "n_edges": edges,
        "n_buyers": len(market[4]),
        "n_sellers": len(market[2]),
        "max_rounds": max_rounds,
        "numba_threads": numba.get_num_threads(),
        "mesa_s": mesa_s,
        "kernel_s": kernel_s,
        "parallel_s": parallel_s,
        "mesa_ns_per_edge": mesa_s / edges * 1e9,
        "kernel_ns_per_edge": kernel_s / edges * 1e9,
        "parallel_ns_per_edge": parallel_s / edges * 1e9,
        "mesa_over_kernel": mesa_s / kernel_s,
        "mesa_over_parallel": mesa_s / parallel_s,
    }


HEADER = (
    f"{'edges':>9} {'buyers':>7} {'sellers':>7} {'rounds':>6} {'mesa':>8} {'kernel':>7}"
    f" {'parallel':>8} {'mesa/kernel':>11} {'mesa/parallel':>13}"
)


def format_row(row: dict) -> str:
    """One table line (ns per edge, then ratios) for a `mesa_vs_kernel` result."""
    return (
        f"{row['n_edges']:>9,d} {row['n_buyers']:>7,d} {row['n_sellers']:>7,d}"
        f" {row['max_rounds']:>6d} {row['mesa_ns_per_edge']:>8.1f}"
        f" {row['kernel_ns_per_edge']:>7.2f} {row['parallel_ns_per_edge']:>8.2f}"
        f" {row['mesa_over_kernel']:>10.0f}x {row['mesa_over_parallel']:>12.0f}x"
    )


def main() -> None:
    """Print the Mesa-idiom clearing against the kernels at 100k and 1M edges, 1 and 3 rounds."""
    print(
        f"python {platform.python_version()}, mesa {mesa.__version__}, numpy {np.__version__},"
        f" numba {numba.__version__} ({numba.get_num_threads()} threads), {platform.machine()}"
    )
    print("posted-price clearing: ns per edge (kernels: best of 7; Mesa model: best of 2)")
    print(HEADER)
    for max_rounds in (1, 3):
        for n_edges in (100_000, 1_000_000):
            print(format_row(mesa_vs_kernel(n_edges, max_rounds)), flush=True)


if __name__ == "__main__":
    main()
