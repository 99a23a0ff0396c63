"""Parallel (``prange``) posted-price kernel, identical bit for bit to the serial one.

`posted_price_clear_grouped` takes the arguments of `marketsim.markets.kernels.
posted_price_clear` plus the market's seller groups (`seller_groups`) and returns the same
floats, bit for bit, on any input. Both kernels run the same passes
(`marketsim.markets.kernels_rounds`): the buyer passes (`buyer_pass`, `write_fills`) are the
same functions, called here on slices of buyers, one per thread; round 1's requests use the
serial kernel's helpers (`_weight_sum`, `_exact_requests`) buyer by buyer; the sums per
seller run over seller groups, one per thread, each group keeping its edges in ascending
order, so each seller adds its requests in the order the serial kernel does (by scattering
in buyer order in round 1, by walking its edges sorted by seller later), and rations them
with the same `ration_seller`. Where the serial kernel decides whether to go on (did any
buyer ask, did any receive), both count buyers, an integer sum in any order.

Threads: numba's default, ``NUMBA_NUM_THREADS`` (the number of cores unless set), or fewer
with ``numba.set_num_threads``; the results do not depend on the number of threads, slices
or groups. The seller groups cost a few passes over the edges; a caller clearing the same
market again keeps them (`marketsim.markets.mechanisms.seller_groups_for`).
"""

import numba
import numpy as np
from numba import njit
from numba import prange

from marketsim.markets.kernels_rounds import KEPT_ROUNDS
from marketsim.markets.kernels_rounds import buyer_pass
from marketsim.markets.kernels_rounds import ration_seller
from marketsim.markets.kernels_rounds import write_fills
from marketsim.markets.kernels_shared import SHARED_WEIGHT_FLOOR
from marketsim.markets.kernels_shared import _exact_requests
from marketsim.markets.kernels_shared import _seller_logit_weights
from marketsim.markets.kernels_shared import _weight_sum

BUYER_SLICES = 64
"""Slices of buyers the buyer passes are split into (threads take them in turn)."""


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
    kept = max(1, min(KEPT_ROUNDS, max_rounds))
    granted_rows = np.zeros((kept, n_sellers))
    scale_rows = np.zeros((kept, n_buyers))
    fill_ratio = np.ones(n_sellers)
    next_weight = np.zeros(n_sellers)
    scale_sum = np.zeros(n_sellers)
    exact_sum = np.zeros(n_sellers)
    seller_requested = np.zeros(n_sellers)
    seller_sold = np.zeros(n_sellers)
    buyer_filled = np.zeros(n_buyers)
    buyer_cut_off = np.zeros(n_buyers, dtype=np.bool_)
    fill_written = np.zeros(n_buyers, dtype=np.bool_)
    edge_request = np.empty(n_edges)
    edge_fill = np.empty(n_edges)
    n_slices = max(1, min(n_buyers, BUYER_SLICES))
    slice_start = _buyer_slices(buyer_indptr, n_slices)

    # Round 1, requests
    n_asking = 0
    for c in prange(n_slices):
        n_asking += _first_requests(
            slice_start[c],
            slice_start[c + 1],
            buyer_indptr,
            edge_seller,
            log_price,
            seller_weight,
            residual_capacity,
            residual_demand,
            price_sensitivity,
            scale_rows[0],
            buyer_cut_off,
            edge_request,
        )
    if n_asking == 0 or max_rounds < 1:
        edge_fill[:] = 0.0
        return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_demand.copy()

    row = 0
    pending = 1
    receiving = False
    for round_index in range(max_rounds):
        # requests summed per seller (group by group, edges ascending) and rationed
        granted = granted_rows[row]
        scale = scale_rows[row]
        first_round = round_index == 0
        for g in prange(n_groups):
            _group_ration(
                g,
                first_round,
                group_sellers,
                group_entries,
                group_edge,
                group_seller,
                group_buyer,
                scale,
                edge_request,
                seller_weight,
                seller_capacity,
                residual_capacity,
                scale_sum,
                exact_sum,
                granted,
                fill_ratio,
                seller_sold,
                seller_requested,
            )
        if round_index + 1 == max_rounds:
            receiving = True
            pending = row + 1
            break
        n_selling = 0
        for s in range(n_sellers):
            next_weight[s] = seller_weight[s] if residual_capacity[s] > 0.0 else 0.0
            n_selling += residual_capacity[s] > 0.0
        if n_selling == 0:
            receiving = True  # nothing left to sell: this round is the last
            pending = row + 1
            break
        next_row = row + 1
        flushed = False
        if next_row == kept:
            for c in prange(n_slices):
                write_fills(
                    slice_start[c],
                    slice_start[c + 1],
                    False,
                    buyer_indptr,
                    edge_seller,
                    granted_rows,
                    scale_rows,
                    kept,
                    fill_ratio,
                    edge_request,
                    buyer_demand,
                    residual_demand,
                    buyer_filled,
                    fill_written,
                    edge_fill,
                )
            next_row = 0
            flushed = True
        n_received = 0
        n_asking = 0
        for c in prange(n_slices):
            got, asked = buyer_pass(
                slice_start[c],
                slice_start[c + 1],
                True,
                buyer_indptr,
                edge_seller,
                log_price,
                price_sensitivity,
                granted_rows[row],
                fill_ratio,
                next_weight,
                residual_capacity,
                buyer_demand,
                residual_demand,
                buyer_filled,
                buyer_cut_off,
                scale_rows[row],
                scale_rows[next_row],
                edge_request,
                fill_written,
                edge_fill,
            )
            n_received += got
            n_asking += asked
        pending = 0 if flushed else row + 1
        if n_received == 0 or n_asking == 0:
            break
        row = next_row
    for c in prange(n_slices):
        write_fills(
            slice_start[c],
            slice_start[c + 1],
            receiving,
            buyer_indptr,
            edge_seller,
            granted_rows,
            scale_rows,
            pending,
            fill_ratio,
            edge_request,
            buyer_demand,
            residual_demand,
            buyer_filled,
            fill_written,
            edge_fill,
        )
    buyer_unfilled = np.zeros(n_buyers)
    for b in prange(n_buyers):
        buyer_unfilled[b] = max(0.0, buyer_demand[b] - buyer_filled[b])
    return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled


@njit(cache=True)
def _buyer_slices(buyer_indptr, n_slices):
    """Buyer ranges with about as many edges each: slice ``c`` is
    ``slice_start[c] <= b < slice_start[c + 1]``."""
    n_buyers = buyer_indptr.shape[0] - 1
    n_edges = buyer_indptr[n_buyers]
    slice_start = np.empty(n_slices + 1, dtype=np.int64)
    for c in range(n_slices + 1):
        slice_start[c] = np.searchsorted(buyer_indptr[:n_buyers], (n_edges * c) // n_slices)
    slice_start[0] = 0
    slice_start[n_slices] = n_buyers
    for c in range(1, n_slices + 1):
        slice_start[c] = max(slice_start[c], slice_start[c - 1])
    return slice_start


@njit(cache=True)
def _first_requests(
    lo,
    hi,
    buyer_indptr,
    edge_seller,
    log_price,
    seller_weight,
    residual_capacity,
    residual_demand,
    price_sensitivity,
    scale,
    buyer_cut_off,
    edge_request,
):
    """Round 1's requests of buyers ``lo <= b < hi``, computed as the serial kernel does
    (less the sums per seller): ``scale[b]`` is ``r_b / W_b``, -1 on the exact path (requests
    in ``edge_request``) or 0. Returns how many of them ask."""
    n_asking = 0
    for b in range(lo, hi):
        demand_left = residual_demand[b]
        if demand_left <= 0.0:
            continue
        first = np.uint64(buyer_indptr[b])
        stop = np.uint64(buyer_indptr[b + 1])
        weight_total = _weight_sum(edge_seller, seller_weight, first, stop)
        if weight_total >= SHARED_WEIGHT_FLOOR:
            scale[b] = demand_left / weight_total
            n_asking += 1
            continue
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
            continue
        scale[b] = -1.0
        n_asking += 1
    return n_asking


@njit(cache=True)
def _group_ration(
    g,
    first_round,
    group_sellers,
    group_entries,
    group_edge,
    group_seller,
    group_buyer,
    scale,
    edge_request,
    seller_weight,
    seller_capacity,
    residual_capacity,
    scale_sum,
    exact_sum,
    granted,
    fill_ratio,
    seller_sold,
    seller_requested,
):
    """Sum and ration the requests to group ``g``'s sellers, as the serial kernel does.

    Each seller's scales and exact requests are added over its edges in ascending order
    (the serial kernel's order); a seller with capacity is rationed by `ration_seller`
    (round 1: every seller, recording its requests); the others keep granted weight 0.
    """
    first = np.uint64(group_entries[g, 0])
    stop = np.uint64(group_entries[g, 1])
    for s in range(group_sellers[g], group_sellers[g + 1]):
        scale_sum[s] = 0.0
        exact_sum[s] = 0.0
    for k in range(first, stop):
        buyer_scale = scale[np.uint64(group_buyer[k])]
        if buyer_scale > 0.0:
            scale_sum[np.uint64(group_seller[k])] += buyer_scale
        elif buyer_scale < 0.0:
            exact_sum[np.uint64(group_seller[k])] += edge_request[np.uint64(group_edge[k])]
    for s in range(group_sellers[g], group_sellers[g + 1]):
        weight = seller_weight[s]
        total_request = exact_sum[s] + weight * scale_sum[s]
        if first_round:
            seller_requested[s] = total_request
        elif not residual_capacity[s] > 0.0:
            granted[s] = 0.0  # sold out: not visited by the serial kernel's seller pass
            continue
        ratio, residual_capacity[s] = ration_seller(
            total_request, residual_capacity[s], seller_capacity[s]
        )
        fill_ratio[s] = ratio
        granted[s] = weight * ratio
        if first_round:
            seller_sold[s] = granted[s] * scale_sum[s] + ratio * exact_sum[s]
        else:
            seller_sold[s] += granted[s] * scale_sum[s] + ratio * exact_sum[s]
