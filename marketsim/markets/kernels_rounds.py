"""Passes of the posted-price clearing, shared by the serial and the parallel kernel.

`marketsim.markets.kernels.posted_price_clear` and
`marketsim.markets.kernels_parallel.posted_price_clear_grouped` clear a market in rounds. After
round 1's requests (each kernel has its own pass for them, with the same arithmetic), every
round is the same three steps, written once here as functions over a range of buyers or
sellers, so that the serial kernel calls them on the whole range and the parallel kernel on
slices, one per thread, with identical results:

1. `seller_pass` (rounds 2, 3, ...): each seller still selling sums the requests made to it,
   walking its own edges through the market's edges sorted by seller (`seller_slots`), and
   rations them pro rata (`ration_seller`). Sellers that sold out are not visited: in the
   model's token market 77-97 % of the sellers sell out in round 1, and a later round then
   costs in proportion to the trade still possible, as it does for buyer agents that ask
   only the sellers with capacity left.
2. `buyer_pass`: each buyer that asked takes what its sellers granted
   (``scale * sum of their granted weights`` on the shared-weight path) off its residual
   demand and, if another round follows, makes its next requests: the sum ``W_b`` of the
   logit weights of its sellers still selling and its scale ``r_b / W_b``, or, where
   ``W_b`` is below ``SHARED_WEIGHT_FLOOR``, exact requests from its own cheapest seller.
3. `write_fills`: the fills of each edge, ``granted weight of the seller * scale of the
   buyer`` summed over the rounds, written buyer by buyer once at the end (or every
   `KEPT_ROUNDS` rounds), so that the edges are written once rather than once a round.

Exact-path buyers (rare: their sellers all cost far more than the cheapest seller) write
their fills into ``edge_fill`` as they receive them. A buyer's request scale is kept in
``scale_rows[round, b]``: positive on the shared path, -1 on the exact path (its requests are
in ``edge_request``), 0 if it did not ask. Every sum runs in a fixed order (a buyer's edges
ascending, a seller's edges by buyer), so results depend on the inputs alone.

Every function is a pure ``@njit(cache=True)`` function; `seller_slots` has a plain-numpy
twin, `seller_slots_reference`; the passes are tested through the kernels, against
``marketsim.markets.reference.posted_price_clear``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from marketsim.markets.kernels_shared import RESIDUAL_RTOL
from marketsim.markets.kernels_shared import SHARED_WEIGHT_FLOOR
from marketsim.markets.kernels_shared import _exact_requests
from marketsim.markets.kernels_shared import _weight_sum

KEPT_ROUNDS = 4
"""Rounds whose shared-path fills are kept (as granted weights and scales) before they are
written into the edges."""


@njit(cache=True)
def seller_slots(buyer_indptr, edge_seller, n_sellers):
    """A market's edges sorted by seller: for each seller, its edges in ascending order.

    A counting sort, O(edges + sellers). Seller ``s`` owns the slots
    ``seller_indptr[s] <= k < seller_indptr[s + 1]``; slot ``k`` is edge ``slot_edge[k]`` (an
    index into ``edge_seller``) from buyer ``slot_buyer[k]``. Within a seller the edges keep
    their order, which is the buyers' order.

    Args:
        buyer_indptr: int64[n_buyers + 1], CSR offsets of each buyer's edges.
        edge_seller: int64[n_edges], seller index in ``[0, n_sellers)`` of each edge.
        n_sellers: int, number of sellers.

    Returns:
        ``(seller_indptr, slot_buyer, slot_edge)``: int64[n_sellers + 1], int64[n_edges],
        int64[n_edges].
    """
    n_buyers = buyer_indptr.shape[0] - 1
    n_edges = edge_seller.shape[0]
    seller_indptr = np.zeros(n_sellers + 1, dtype=np.int64)
    for e in range(n_edges):
        seller_indptr[edge_seller[e] + 1] += 1
    for s in range(n_sellers):
        seller_indptr[s + 1] += seller_indptr[s]
    next_slot = seller_indptr[:-1].copy()
    slot_buyer = np.empty(n_edges, dtype=np.int64)
    slot_edge = np.empty(n_edges, dtype=np.int64)
    for b in range(n_buyers):
        for e in range(buyer_indptr[b], buyer_indptr[b + 1]):
            s = edge_seller[e]
            k = next_slot[s]
            slot_buyer[k] = b
            slot_edge[k] = e
            next_slot[s] = k + 1
    return seller_indptr, slot_buyer, slot_edge


def seller_slots_reference(buyer_indptr, edge_seller, n_sellers: int) -> tuple:
    """Plain-numpy twin of `seller_slots`: a stable argsort of the edges by seller."""
    n_buyers = len(buyer_indptr) - 1
    edge_buyer = np.repeat(np.arange(n_buyers, dtype=np.int64), np.diff(buyer_indptr))
    edge_seller = np.asarray(edge_seller, dtype=np.int64)
    order = np.argsort(edge_seller, kind="stable")
    seller_indptr = np.zeros(n_sellers + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_seller, minlength=n_sellers), out=seller_indptr[1:])
    return seller_indptr, edge_buyer[order], order.astype(np.int64)


@njit(cache=True)
def residual_after(before, taken, starting):
    """What is left of ``before`` once ``taken`` is gone; rounding dust (at most
    ``RESIDUAL_RTOL`` of the ``starting`` quantity) counts as none. Scalars only, so the call
    costs nothing once compiled into the caller's loop."""
    left = before - taken
    if left <= RESIDUAL_RTOL * starting:
        return 0.0
    return left


@njit(cache=True)
def ration_seller(total_request, capacity_left, starting_capacity):
    """Ration a seller's requests: ``(fill ratio, capacity left after)``.

    Asked for more than it has, it fills every request in the same proportion and is sold
    out; otherwise it fills them all and keeps the rest (`residual_after`, so rounding dust
    counts as none). Scalars only, so the call costs nothing once compiled into the caller's
    loop.
    """
    if total_request > capacity_left:
        return capacity_left / total_request, 0.0
    return 1.0, residual_after(capacity_left, total_request, starting_capacity)


@njit(cache=True)
def seller_pass(
    lo,
    hi,
    selling,
    seller_indptr,
    slot_buyer,
    slot_edge,
    scale,
    edge_request,
    seller_weight,
    seller_capacity,
    residual_capacity,
    granted,
    fill_ratio,
    seller_sold,
):
    """Step 1 of a later round for the sellers ``selling[lo:hi]``: sum requests and ration.

    Each seller walks its edges (buyer order), adding the scales of shared-path buyers and
    the exact requests of exact-path ones (``scale < 0``); its request is
    ``exact + weight * sum of scales``. It is rationed (`ration_seller`); its granted
    weight is ``weight * ratio`` and its sales grow by ``granted * sum of scales + ratio *
    exact``.

    Args:
        lo, hi: range of positions in ``selling``.
        selling: int64[n], sellers with capacity left at the start of the round.
        seller_indptr, slot_buyer, slot_edge: the edges sorted by seller (`seller_slots`).
        scale: float64[n_buyers], the round's request scales (-1: exact path).
        edge_request: float64[n_edges], exact-path requests.
        seller_weight: float64[n_sellers], logit weights.
        seller_capacity: float64[n_sellers], capacity at the start of the clearing.
        residual_capacity: float64[n_sellers], capacity left (updated).
        granted: float64[n_sellers], the round's granted weights (written for these sellers).
        fill_ratio: float64[n_sellers], the round's fill ratios (written for these sellers).
        seller_sold: float64[n_sellers], units sold (updated).
    """
    for i in range(lo, hi):
        s = selling[i]
        scale_total = 0.0
        exact_total = 0.0
        for k in range(np.uint64(seller_indptr[s]), np.uint64(seller_indptr[s + 1])):
            buyer_scale = scale[np.uint64(slot_buyer[k])]
            if buyer_scale > 0.0:
                scale_total += buyer_scale
            elif buyer_scale < 0.0:
                exact_total += edge_request[np.uint64(slot_edge[k])]
        weight = seller_weight[s]
        ratio, residual_capacity[s] = ration_seller(
            exact_total + weight * scale_total, residual_capacity[s], seller_capacity[s]
        )
        fill_ratio[s] = ratio
        granted[s] = weight * ratio
        seller_sold[s] += granted[s] * scale_total + ratio * exact_total


@njit(cache=True)
def buyer_pass(
    lo,
    hi,
    asking,
    buyer_indptr,
    edge_seller,
    log_price,
    price_sensitivity,
    granted,
    fill_ratio,
    next_weight,
    residual_capacity,
    buyer_demand,
    residual_demand,
    buyer_filled,
    buyer_cut_off,
    scale,
    next_scale,
    edge_request,
    fill_written,
    edge_fill,
):
    """Step 2 of a round for buyers ``lo <= b < hi``: receive, then ask for the next round.

    A buyer that asked on the shared path receives ``scale * sum of its sellers' granted
    weights``; one on the exact path receives its requests times its sellers' fill ratios,
    written into its edges of ``edge_fill`` at once. With ``asking``, a buyer with residual
    demand then asks for the next round: ``next_scale = r_b / W_b``, ``W_b`` the sum of
    ``next_weight`` over its edges (the weights of sellers with capacity left, 0 for the
    others), or, below ``SHARED_WEIGHT_FLOOR``, exact requests (``next_scale = -1``), or,
    if none of its sellers has capacity left, it is cut off (``next_scale = 0``).

    Args:
        lo, hi: range of buyers.
        asking: bool, whether another round follows.
        buyer_indptr, edge_seller: the edges, CSR over buyers.
        log_price: float64[n_sellers], log posted prices (for the exact path).
        price_sensitivity: float >= 0, logit coefficient on log price.
        granted: float64[n_sellers], the round's granted weights (0 for sellers not selling).
        fill_ratio: float64[n_sellers], the round's fill ratios.
        next_weight: float64[n_sellers], logit weights of sellers with capacity left, else 0.
        residual_capacity: float64[n_sellers], capacity left (read).
        buyer_demand: float64[n_buyers], demand at the start (for the dust rule).
        residual_demand, buyer_filled: float64[n_buyers], updated.
        buyer_cut_off: bool[n_buyers], updated.
        scale: float64[n_buyers], the round's request scales (read).
        next_scale: float64[n_buyers], the next round's (written for these buyers).
        edge_request: float64[n_edges], exact-path requests (read, then rewritten).
        fill_written: bool[n_buyers], the buyer's edges of edge_fill hold fills (updated).
        edge_fill: float64[n_edges], exact-path fills written here.

    Returns:
        ``(n_received, n_asking)``: buyers that received something, buyers that ask next.
    """
    n_received = 0
    n_asking = 0
    one = np.uint64(1)
    two = np.uint64(2)
    for b in range(lo, hi):
        buyer_scale = scale[b]
        if asking:
            next_scale[b] = 0.0
        if buyer_scale == 0.0:
            continue  # it did not ask this round, so it never will again
        first = np.uint64(buyer_indptr[b])
        stop = np.uint64(buyer_indptr[b + 1])
        granted_even = 0.0
        granted_odd = 0.0
        weight_even = 0.0
        weight_odd = 0.0
        if buyer_scale > 0.0:
            e = first
            while e + two <= stop:
                s = np.uint64(edge_seller[e])
                granted_even += granted[s]
                weight_even += next_weight[s]
                s = np.uint64(edge_seller[e + one])
                granted_odd += granted[s]
                weight_odd += next_weight[s]
                e += two
            if e < stop:
                s = np.uint64(edge_seller[e])
                granted_even += granted[s]
                weight_even += next_weight[s]
            received = buyer_scale * (granted_even + granted_odd)
        else:
            received = 0.0
            written = fill_written[b]
            for e in range(first, stop):
                s = np.uint64(edge_seller[e])
                fill = edge_request[e] * fill_ratio[s]
                edge_fill[e] = edge_fill[e] + fill if written else fill
                received += fill
                weight_even += next_weight[s]
            fill_written[b] = True
        buyer_filled[b] += received
        left = residual_after(residual_demand[b], received, buyer_demand[b])
        residual_demand[b] = left
        if received > 0.0:
            n_received += 1
        if not asking or left <= 0.0:
            continue
        weight_total = weight_even + weight_odd
        if weight_total >= SHARED_WEIGHT_FLOOR:
            next_scale[b] = left / weight_total
            n_asking += 1
            continue
        selling = 0  # its sellers with capacity left (a weight can underflow to 0)
        for e in range(first, stop):
            selling += residual_capacity[np.uint64(edge_seller[e])] > 0.0
        if selling > 0 and _exact_requests(
            edge_seller,
            log_price,
            residual_capacity,
            price_sensitivity,
            left,
            first,
            stop,
            edge_request,
        ):
            next_scale[b] = -1.0
            n_asking += 1
        else:
            buyer_cut_off[b] = True  # residual capacity never comes back within a call
    return n_received, n_asking


@njit(cache=True)
def write_fills(
    lo,
    hi,
    receiving,
    buyer_indptr,
    edge_seller,
    granted_rows,
    scale_rows,
    rows,
    fill_ratio,
    edge_request,
    buyer_demand,
    residual_demand,
    buyer_filled,
    fill_written,
    edge_fill,
):
    """Step 3 for buyers ``lo <= b < hi``: write the kept rounds' fills (and receive the last).

    ``edge_fill[e] = sum_j granted_rows[j, s(e)] * max(scale_rows[j, b], 0)`` over kept rows
    ``j < rows``, in row order, added to what the edge holds where ``fill_written[b]``
    (exact-path fills, or rows written before), written otherwise; ``fill_written`` is then
    set, so every edge of these buyers has been written. With ``receiving``, the round in
    row ``rows - 1`` has not been received yet: each buyer first takes it, as `buyer_pass`
    does (its sellers' granted weights summed as `_weight_sum` adds, or, with one or three
    kept rows and nothing written yet, in two partial sums in the loop that writes), without
    asking again.
    """
    last = max(rows - 1, 0)
    # the rows as 1-d views, made once (a view made per buyer costs as much as its edges)
    top = granted_rows.shape[0] - 1
    granted_last = granted_rows[min(last, top)]
    scale_last = scale_rows[min(last, top)]
    granted0 = granted_rows[0]
    granted1 = granted_rows[min(1, top)]
    granted2 = granted_rows[min(2, top)]
    scales0 = scale_rows[0]
    scales1 = scale_rows[min(1, top)]
    scales2 = scale_rows[min(2, top)]
    buyer_scales = np.empty(max(rows, 1))  # a buyer's scales, for four rows or more
    one = np.uint64(1)
    two = np.uint64(2)
    for b in range(lo, hi):
        first = np.uint64(buyer_indptr[b])
        stop = np.uint64(buyer_indptr[b + 1])
        buyer_scale = scale_last[b] if receiving else 0.0
        if buyer_scale < 0.0:
            # exact path: its fills go to its edges first
            received = 0.0
            written = fill_written[b]
            for e in range(first, stop):
                fill = edge_request[e] * fill_ratio[np.uint64(edge_seller[e])]
                edge_fill[e] = edge_fill[e] + fill if written else fill
                received += fill
            fill_written[b] = True
            buyer_filled[b] += received
            residual_demand[b] = residual_after(residual_demand[b], received, buyer_demand[b])
        elif buyer_scale > 0.0 and rows == 1 and not fill_written[b]:
            # one round (the common case): write the fills and sum what the buyer gets in
            # one pass, two partial sums in a fixed order
            fill_written[b] = True
            granted_even = 0.0
            granted_odd = 0.0
            e = first
            while e + two <= stop:
                g = granted0[np.uint64(edge_seller[e])]
                edge_fill[e] = g * buyer_scale
                granted_even += g
                g = granted0[np.uint64(edge_seller[e + one])]
                edge_fill[e + one] = g * buyer_scale
                granted_odd += g
                e += two
            if e < stop:
                g = granted0[np.uint64(edge_seller[e])]
                edge_fill[e] = g * buyer_scale
                granted_even += g
            received = buyer_scale * (granted_even + granted_odd)
            buyer_filled[b] += received
            residual_demand[b] = residual_after(residual_demand[b], received, buyer_demand[b])
            continue
        elif buyer_scale > 0.0 and rows == 3 and not fill_written[b]:
            # three rounds (the model's default): the same, round 3's receipt summed with
            # the writes
            fill_written[b] = True
            scale0 = max(scales0[b], 0.0)
            scale1 = max(scales1[b], 0.0)
            granted_even = 0.0
            granted_odd = 0.0
            e = first
            while e + two <= stop:
                s = np.uint64(edge_seller[e])
                g = granted2[s]
                edge_fill[e] = granted0[s] * scale0 + granted1[s] * scale1 + g * buyer_scale
                granted_even += g
                s = np.uint64(edge_seller[e + one])
                g = granted2[s]
                edge_fill[e + one] = granted0[s] * scale0 + granted1[s] * scale1 + g * buyer_scale
                granted_odd += g
                e += two
            if e < stop:
                s = np.uint64(edge_seller[e])
                g = granted2[s]
                edge_fill[e] = granted0[s] * scale0 + granted1[s] * scale1 + g * buyer_scale
                granted_even += g
            received = buyer_scale * (granted_even + granted_odd)
            buyer_filled[b] += received
            residual_demand[b] = residual_after(residual_demand[b], received, buyer_demand[b])
            continue
        elif buyer_scale > 0.0:
            granted_sum = _weight_sum(edge_seller, granted_last, first, stop)
            received = buyer_scale * granted_sum
            buyer_filled[b] += received
            residual_demand[b] = residual_after(residual_demand[b], received, buyer_demand[b])
        written = fill_written[b]
        fill_written[b] = True
        if rows == 1:
            scale0 = max(scales0[b], 0.0)
            if not written:
                for e in range(first, stop):
                    edge_fill[e] = granted0[np.uint64(edge_seller[e])] * scale0
            elif scale0 > 0.0:
                for e in range(first, stop):
                    edge_fill[e] += granted0[np.uint64(edge_seller[e])] * scale0
        elif rows == 2:
            scale0 = max(scales0[b], 0.0)
            scale1 = max(scales1[b], 0.0)
            if not written:
                for e in range(first, stop):
                    s = np.uint64(edge_seller[e])
                    edge_fill[e] = granted0[s] * scale0 + granted1[s] * scale1
            elif scale0 > 0.0 or scale1 > 0.0:
                for e in range(first, stop):
                    s = np.uint64(edge_seller[e])
                    edge_fill[e] += granted0[s] * scale0 + granted1[s] * scale1
        elif rows == 3:
            scale0 = max(scales0[b], 0.0)
            scale1 = max(scales1[b], 0.0)
            scale2 = max(scales2[b], 0.0)
            if not written:
                for e in range(first, stop):
                    s = np.uint64(edge_seller[e])
                    edge_fill[e] = (
                        granted0[s] * scale0 + granted1[s] * scale1 + granted2[s] * scale2
                    )
            elif scale0 > 0.0 or scale1 > 0.0 or scale2 > 0.0:
                for e in range(first, stop):
                    s = np.uint64(edge_seller[e])
                    edge_fill[e] += (
                        granted0[s] * scale0 + granted1[s] * scale1 + granted2[s] * scale2
                    )
        else:
            for j in range(rows):
                buyer_scales[j] = max(scale_rows[j, b], 0.0)
            for e in range(first, stop):
                s = np.uint64(edge_seller[e])
                fill = 0.0
                for j in range(rows):
                    fill += granted_rows[j, s] * buyer_scales[j]
                edge_fill[e] = edge_fill[e] + fill if written else fill


@njit(cache=True)
def next_round_sellers(seller_weight, residual_capacity, selling, n_selling, next_weight):
    """The sellers still selling after a round: compacts ``selling`` in place (ascending).

    Sets ``next_weight[s]`` to the seller's logit weight if it has capacity left, else 0
    (for every seller in ``selling[:n_selling]``; sellers not in it already have 0).

    Returns:
        int, how many sellers still sell (the first entries of ``selling``).
    """
    kept = 0
    for i in range(n_selling):
        s = selling[i]
        if residual_capacity[s] > 0.0:
            next_weight[s] = seller_weight[s]
            selling[kept] = s
            kept += 1
        else:
            next_weight[s] = 0.0
    return kept
