"""Parallel (``prange``) posted-price kernel, identical bit for bit to the serial one.

`posted_price_clear_parallel` takes the arguments of `marketsim.markets.kernels.
posted_price_clear` and returns the same floats, bit for bit, on any input: every float sum
runs in the serial kernel's order. The sellers are split into contiguous groups, one per
thread (`seller_groups`), each group keeping its edges in ascending order. After round 1's
requests (a pass over buyers) and their rationing (a pass over groups), each round is two
passes, each split over numba's threads:

1. over buyers: this round's fill of each edge and what the buyer received, then the
   buyer's requests for the next round (the sum of its sellers' logit weights and its scale
   ``r_b / sum w``, or on the exact path its requests per edge);
2. over seller groups: this round's sales of each seller, then the next round's requests
   to it (summed over its edges in ascending order, the order in which the serial kernel
   adds them) and its rationing.

Two rounds' requests are kept at once (the round being filled, the next one). Where the
serial kernel adds up over all buyers to decide whether to go on (did any buyer ask, did any
receive), the parallel one counts buyers, an integer sum in any order; a sum of non-negative
floats is positive exactly when one of its terms is. The per-buyer and per-seller work calls
the serial kernel's own helpers (`_seller_logit_weights`, `_weight_sum`, `_exact_requests`)
or copies of its loops, so each number is made by the same operations.

Threads: numba's default, ``NUMBA_NUM_THREADS`` (the number of cores unless set), or fewer
with ``numba.set_num_threads``; the results do not depend on the number of threads or groups.
The seller groups cost a few passes over the edges; a caller clearing the same market again
keeps them (`marketsim.markets.mechanisms.seller_groups_for`) and calls
`posted_price_clear_grouped`.
"""

import numba
import numpy as np
from numba import njit
from numba import prange

from marketsim.markets.kernels import RESIDUAL_RTOL
from marketsim.markets.kernels import SHARED_WEIGHT_FLOOR
from marketsim.markets.kernels import _exact_requests
from marketsim.markets.kernels import _seller_logit_weights
from marketsim.markets.kernels import _weight_sum


@njit(parallel=True, cache=True)
def seller_groups(buyer_indptr, edge_seller, n_sellers, n_groups):
    """Split a market's edges by groups of sellers, each group's edges in ascending order.

    Sellers ``0..n_sellers-1`` are cut into ``n_groups`` contiguous ranges with about as many
    edges each. Group ``g`` keeps the edges to its sellers in their order (ascending, so
    buyer by buyer), so a thread walking group ``g`` meets each of its sellers' edges in the
    order the serial kernel does, and no other thread touches those sellers.

    Args:
        buyer_indptr: int64[n_buyers + 1], CSR offsets of each buyer's edges.
        edge_seller: int64[n_edges], seller index in ``[0, n_sellers)`` of each edge.
        n_sellers: int, number of sellers.
        n_groups: int >= 1, number of seller groups (one per thread pays best).

    Returns:
        ``(group_sellers, group_entries, group_edge, group_seller, group_buyer)``:
        int64[n_groups + 1] the first seller of each group (the last entry is
        ``n_sellers``); int64[n_groups, 2] the first and one past the last entry of each
        group in the arrays below; int64[n_edges + n_groups] the edge, the seller and the
        buyer of each entry (one unused slot after each group).
    """
    n_buyers = buyer_indptr.shape[0] - 1
    n_edges = edge_seller.shape[0]
    # seller degrees, counted in blocks of buyers
    n_blocks = n_groups
    block_start = np.empty(n_blocks + 1, dtype=np.int64)
    for k in range(n_blocks + 1):
        block_start[k] = np.searchsorted(buyer_indptr[:n_buyers], (n_edges * k) // n_blocks)
    block_start[0] = 0
    block_start[n_blocks] = n_buyers
    block_degree = np.zeros((n_blocks, n_sellers), dtype=np.int64)
    for k in prange(n_blocks):
        first = np.uint64(buyer_indptr[block_start[k]])
        stop = np.uint64(buyer_indptr[block_start[k + 1]])
        for e in range(first, stop):
            block_degree[k, np.uint64(edge_seller[e])] += 1
    # contiguous seller ranges; a group starts once the edges before it reach its share
    group_sellers = np.empty(n_groups + 1, dtype=np.int64)
    group_sellers[0] = 0
    seller_group = np.empty(n_sellers, dtype=np.int64)
    group_entries = np.zeros((n_groups, 2), dtype=np.int64)
    seen = 0
    group = 0
    for s in range(n_sellers):
        while group + 1 < n_groups and seen >= (n_edges * (group + 1)) // n_groups:
            group_entries[group + 1, 0] = seen + group + 1  # after the spare slots
            group += 1
            group_sellers[group] = s
        seller_group[s] = group
        for k in range(n_blocks):
            seen += block_degree[k, s]
    for g in range(group + 1, n_groups):
        group_sellers[g] = n_sellers
        group_entries[g, 0] = seen + g
    group_sellers[n_groups] = n_sellers
    for g in range(n_groups - 1):
        group_entries[g, 1] = group_entries[g + 1, 0] - 1
    group_entries[n_groups - 1, 1] = n_edges + n_groups - 1
    # each group's entries in edge order, written without a branch (whether an edge is the
    # group's is a coin toss the CPU cannot predict), so the slot after a group is scratch
    group_edge = np.empty(n_edges + n_groups, dtype=np.int64)
    group_seller = np.empty(n_edges + n_groups, dtype=np.int64)
    group_buyer = np.empty(n_edges + n_groups, dtype=np.int64)
    # (unsigned indices: numba then skips its negative-index wraparound check)
    for g in prange(n_groups):
        slot = np.uint64(group_entries[g, 0])
        for b in range(n_buyers):
            for e in range(np.uint64(buyer_indptr[b]), np.uint64(buyer_indptr[b + 1])):
                s = np.uint64(edge_seller[e])
                group_edge[slot] = e
                group_seller[slot] = s
                group_buyer[slot] = b
                slot += np.uint64(seller_group[s] == g)
    return group_sellers, group_entries, group_edge, group_seller, group_buyer


def posted_price_clear_parallel(
    buyer_indptr,
    edge_seller,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """`kernels.posted_price_clear` on numba's threads: same arguments, same results.

    Splits the sellers into one group per thread (`seller_groups`) and clears with
    `posted_price_clear_grouped`. A Python function (numba's thread count is read here); see
    the serial kernel for the mechanism, the arguments and the outputs.
    """
    groups = seller_groups(
        buyer_indptr, edge_seller, seller_price.shape[0], max(1, numba.get_num_threads())
    )
    return posted_price_clear_grouped(
        buyer_indptr,
        edge_seller,
        *groups,
        seller_price,
        seller_capacity,
        buyer_demand,
        price_sensitivity,
        max_rounds,
    )


@njit(parallel=True, cache=True)
def posted_price_clear_grouped(
    buyer_indptr,
    edge_seller,
    group_sellers,
    group_entries,
    group_edge,
    group_seller,
    group_buyer,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """`kernels.posted_price_clear` on numba's threads, given the market's seller groups.

    Args:
        buyer_indptr, edge_seller: the market's edges, CSR over buyers (as for the serial
            kernel).
        group_sellers, group_entries, group_edge, group_seller, group_buyer:
            `seller_groups` of those edges (any number of groups gives the same results).
        seller_price, seller_capacity, buyer_demand, price_sensitivity, max_rounds: as for
            the serial kernel.

    Returns:
        ``(edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled)``, equal
        bit for bit to the serial kernel's.
    """
    n_buyers = buyer_demand.shape[0]
    n_sellers = seller_price.shape[0]
    n_edges = edge_seller.shape[0]
    n_groups = group_sellers.shape[0] - 1
    log_price, seller_weight = _seller_logit_weights(
        seller_price, seller_capacity, price_sensitivity
    )
    residual_capacity = seller_capacity.copy()
    residual_demand = buyer_demand.copy()
    round_weight = np.empty(n_sellers)  # seller_weight, 0 where sold out, for the requests
    granted_weight = np.empty(n_sellers)  # round weight times the fill ratio, for the fills
    fill_ratio = np.empty(n_sellers)
    exact_sum = np.empty(n_sellers)  # exact-path requests to each seller
    scale_sum = np.empty(n_sellers)  # sum of r_b / sum(w) over shared-weight edges to s
    seller_requested = np.zeros(n_sellers)
    seller_sold = np.zeros(n_sellers)
    buyer_filled = np.zeros(n_buyers)
    buyer_cut_off = np.zeros(n_buyers, dtype=np.bool_)  # all its sellers sold out, for good
    # Requests of two rounds at once (the round being filled and the next): by buyer, the
    # scale r_b / sum of weights (request = weight * scale), whether its requests are exact,
    # and the exact requests by edge (pages touched only where a buyer takes that path).
    buyer_scale = np.zeros((2, n_buyers))
    buyer_exact = np.zeros((2, n_buyers), dtype=np.bool_)
    edge_request = np.empty((2, n_edges))
    edge_fill = np.empty(n_edges)  # written in full in the first round that fills
    rounds_filled = 0

    # Round 1's requests and rationing; then, per round, one pass over buyers (this round's
    # fills, the next round's requests) and one over seller groups (this round's sales, the
    # next round's requests summed and rationed).
    now = 0
    ask_scale = buyer_scale[now]
    ask_exact = buyer_exact[now]
    ask_request = edge_request[now]
    _round_weights(seller_weight, residual_capacity, round_weight)
    n_asking = 0
    for b in prange(n_buyers):
        n_asking += _buyer_request(
            b,
            buyer_indptr,
            edge_seller,
            log_price,
            round_weight,
            residual_capacity,
            residual_demand,
            price_sensitivity,
            ask_scale,
            ask_exact,
            buyer_cut_off,
            ask_request,
        )
    if n_asking > 0:
        for g in prange(n_groups):
            _group_pass(
                g,
                False,
                True,
                True,
                group_sellers,
                group_entries,
                group_edge,
                group_seller,
                group_buyer,
                ask_scale,
                ask_exact,
                ask_request,
                granted_weight,
                fill_ratio,
                seller_sold,
                ask_scale,
                ask_exact,
                ask_request,
                round_weight,
                seller_capacity,
                residual_capacity,
                exact_sum,
                scale_sum,
                seller_requested,
            )
    for round_index in range(max_rounds):
        if n_asking == 0:
            break
        ahead = 1 - now
        asking = round_index + 1 < max_rounds
        if asking:
            _round_weights(seller_weight, residual_capacity, round_weight)
        fill_scale = buyer_scale[now]
        fill_exact = buyer_exact[now]
        fill_request = edge_request[now]
        ask_scale = buyer_scale[ahead]
        ask_exact = buyer_exact[ahead]
        ask_request = edge_request[ahead]
        n_receiving = 0
        n_asking = 0
        for b in prange(n_buyers):
            n_receiving += _buyer_fill(
                b,
                rounds_filled,
                buyer_indptr,
                edge_seller,
                granted_weight,
                fill_ratio,
                fill_scale,
                fill_exact,
                fill_request,
                buyer_demand,
                residual_demand,
                buyer_filled,
                edge_fill,
            )
            if asking:
                n_asking += _buyer_request(
                    b,
                    buyer_indptr,
                    edge_seller,
                    log_price,
                    round_weight,
                    residual_capacity,
                    residual_demand,
                    price_sensitivity,
                    ask_scale,
                    ask_exact,
                    buyer_cut_off,
                    ask_request,
                )
        rounds_filled += 1
        if n_receiving == 0:
            n_asking = 0  # the serial kernel stops after a round that fills nothing
        for g in prange(n_groups):
            _group_pass(
                g,
                True,
                n_asking > 0,
                False,
                group_sellers,
                group_entries,
                group_edge,
                group_seller,
                group_buyer,
                fill_scale,
                fill_exact,
                fill_request,
                granted_weight,
                fill_ratio,
                seller_sold,
                ask_scale,
                ask_exact,
                ask_request,
                round_weight,
                seller_capacity,
                residual_capacity,
                exact_sum,
                scale_sum,
                seller_requested,
            )
        now = ahead

    if rounds_filled == 0:
        edge_fill[:] = 0.0
    buyer_unfilled = np.zeros(n_buyers)
    for b in prange(n_buyers):
        buyer_unfilled[b] = max(0.0, buyer_demand[b] - buyer_filled[b])
    return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled


@njit(cache=True)
def _round_weights(seller_weight, residual_capacity, round_weight):
    """Logit weights for a round's requests: ``seller_weight``, 0 where sold out."""
    for s in range(seller_weight.shape[0]):
        round_weight[s] = seller_weight[s] if residual_capacity[s] > 0.0 else 0.0


@njit(cache=True, inline="always")
def _buyer_request(
    b,
    buyer_indptr,
    edge_seller,
    log_price,
    round_weight,
    residual_capacity,
    residual_demand,
    price_sensitivity,
    buyer_scale,
    buyer_exact,
    buyer_cut_off,
    edge_request,
):
    """Pass 1 for buyer ``b``: its request scale, or its exact requests; 1 if it asks, else 0.

    Writes ``buyer_scale[b]`` (0 unless on the shared-weight path), ``buyer_exact[b]``, and
    on the exact path ``edge_request`` over its edges; sets ``buyer_cut_off[b]`` when none of
    its sellers has capacity left. The serial kernel's request loop, less the sums per seller.
    """
    buyer_scale[b] = 0.0
    buyer_exact[b] = False
    demand_left = residual_demand[b]
    if demand_left <= 0.0 or buyer_cut_off[b]:
        return 0
    first = np.uint64(buyer_indptr[b])
    stop = np.uint64(buyer_indptr[b + 1])
    weight_total = _weight_sum(edge_seller, round_weight, first, stop)
    if weight_total >= SHARED_WEIGHT_FLOOR:
        buyer_scale[b] = demand_left / weight_total
        return 1
    if not _exact_requests(
        edge_seller,
        log_price,
        residual_capacity,
        price_sensitivity,
        demand_left,
        first,
        stop,
        edge_request,
    ):
        buyer_cut_off[b] = True
        return 0
    buyer_exact[b] = True
    return 1


@njit(cache=True, inline="always")
def _group_pass(
    g,
    selling,
    asking,
    first_round,
    group_sellers,
    group_entries,
    group_edge,
    group_seller,
    group_buyer,
    fill_scale,
    fill_exact,
    fill_request,
    granted_weight,
    fill_ratio,
    seller_sold,
    ask_scale,
    ask_exact,
    ask_request,
    round_weight,
    seller_capacity,
    residual_capacity,
    exact_sum,
    scale_sum,
    seller_requested,
):
    """The seller pass for group ``g``: a round's sales, then the next round's rationing.

    With ``selling``, the fills of the round just filled (``fill_*``, ``granted_weight``,
    ``fill_ratio``) are added to its sellers' ``seller_sold``, each computed as the serial
    kernel computes it. With ``asking``, the requests of the next round (``ask_*``) are
    summed per seller, exact requests and shared-weight scales apart, and combined as the
    serial kernel does (``exact + weight * sum of scales``; buyers that did not ask have a
    scale of 0 and add nothing, ``x + 0.0 == x`` for ``x >= +0``); then each seller's fill
    ratio, capacity left and granted weight are set (``seller_requested`` too in the
    ``first_round``). Every sum runs over the group's edges in ascending order: the serial
    kernel's order.
    """
    first = np.uint64(group_entries[g, 0])
    stop = np.uint64(group_entries[g, 1])
    if asking:
        for s in range(group_sellers[g], group_sellers[g + 1]):
            exact_sum[s] = 0.0
            scale_sum[s] = 0.0
    if selling and asking:
        for k in range(first, stop):
            b = np.uint64(group_buyer[k])
            s = np.uint64(group_seller[k])
            scale = fill_scale[b]
            if scale > 0.0:
                seller_sold[s] += granted_weight[s] * scale
            elif fill_exact[b]:
                seller_sold[s] += fill_request[np.uint64(group_edge[k])] * fill_ratio[s]
            if ask_exact[b]:
                exact_sum[s] += ask_request[np.uint64(group_edge[k])]
            else:
                scale_sum[s] += ask_scale[b]
    elif selling:
        for k in range(first, stop):
            b = np.uint64(group_buyer[k])
            scale = fill_scale[b]
            if scale > 0.0:
                s = np.uint64(group_seller[k])
                seller_sold[s] += granted_weight[s] * scale
            elif fill_exact[b]:
                s = np.uint64(group_seller[k])
                seller_sold[s] += fill_request[np.uint64(group_edge[k])] * fill_ratio[s]
    elif asking:
        for k in range(first, stop):
            b = np.uint64(group_buyer[k])
            if ask_exact[b]:
                exact_sum[np.uint64(group_seller[k])] += ask_request[np.uint64(group_edge[k])]
            else:
                scale_sum[np.uint64(group_seller[k])] += ask_scale[b]
    if not asking:
        return
    for s in range(group_sellers[g], group_sellers[g + 1]):
        total_request = exact_sum[s] + round_weight[s] * scale_sum[s]
        if first_round:
            seller_requested[s] = total_request
        if total_request > residual_capacity[s]:
            fill_ratio[s] = residual_capacity[s] / total_request
            residual_capacity[s] = 0.0
        else:
            fill_ratio[s] = 1.0
            left = residual_capacity[s] - total_request
            if left <= RESIDUAL_RTOL * seller_capacity[s]:
                left = 0.0
            residual_capacity[s] = left
        granted_weight[s] = round_weight[s] * fill_ratio[s]


@njit(cache=True, inline="always")
def _buyer_fill(
    b,
    rounds_filled,
    buyer_indptr,
    edge_seller,
    granted_weight,
    fill_ratio,
    buyer_scale,
    buyer_exact,
    edge_request,
    buyer_demand,
    residual_demand,
    buyer_filled,
    edge_fill,
):
    """Pass 3 for buyer ``b``: its edges' fills and its residual demand; 1 if it received
    anything, else 0. The serial kernel's fill loop (the same partial sums), less the sales
    per seller."""
    first = np.uint64(buyer_indptr[b])
    stop = np.uint64(buyer_indptr[b + 1])
    one = np.uint64(1)
    two = np.uint64(2)
    scale = buyer_scale[b]
    received = 0.0
    if scale > 0.0 and rounds_filled == 0:
        received_even = 0.0
        received_odd = 0.0
        e = first
        while e + two <= stop:
            fill = granted_weight[np.uint64(edge_seller[e])] * scale
            edge_fill[e] = fill
            received_even += fill
            fill = granted_weight[np.uint64(edge_seller[e + one])] * scale
            edge_fill[e + one] = fill
            received_odd += fill
            e += two
        if e < stop:
            fill = granted_weight[np.uint64(edge_seller[e])] * scale
            edge_fill[e] = fill
            received_even += fill
        received = received_even + received_odd
    elif scale > 0.0:
        for e in range(first, stop):
            fill = granted_weight[np.uint64(edge_seller[e])] * scale
            edge_fill[e] += fill
            received += fill
    elif buyer_exact[b]:
        for e in range(first, stop):
            fill = edge_request[e] * fill_ratio[edge_seller[e]]
            edge_fill[e] = fill if rounds_filled == 0 else edge_fill[e] + fill
            received += fill
    else:
        if rounds_filled == 0:
            for e in range(first, stop):
                edge_fill[e] = 0.0
        return 0
    buyer_filled[b] += received
    left = residual_demand[b] - received
    if left <= RESIDUAL_RTOL * buyer_demand[b]:
        left = 0.0
    residual_demand[b] = left
    return 1 if received > 0.0 else 0
