"""Numba kernels that clear the simulation's markets and update its prices.

Every kernel is a pure ``@njit(cache=True)`` function of numpy arrays and scalars: no Python
objects, no hidden state, no random numbers. Float arrays are float64, index arrays int64, and
prices are > 0 (callers guarantee it). ``marketsim.markets.reference`` holds a plain-Python twin
of each kernel, written independently, that the tests hold the kernels to.

Kernels:
    posted_price_clear: buyers spread their demand over posted-price sellers by a logit on log
        price; oversubscribed sellers ration pro rata; repeated for a few rounds.
    tatonnement_price: each seller moves its price by a clipped step proportional to excess
        demand over its capacity.
    lerner_scarcity_price: a Lerner markup from market share and demand elasticity, raised
        towards the market-clearing price when demand exceeds capacity, capped.
    call_auction: uniform-price double auction at one market-clearing price, e.g. for spot power.

Rounding dust: a residual below ``RESIDUAL_RTOL`` times its starting value (a seller's leftover
capacity, a buyer's leftover demand) is treated as exhausted, and in the call auction a
cumulative quantity within ``RESIDUAL_RTOL`` (relative) of the traded quantity counts as
reaching it. Without this, a leftover of 1e-17 units left by rounding could absorb a buyer's
whole request in the next round, or move the auction's clearing price to a worse price level.
"""

import numpy as np
from numba import njit

from marketsim.markets.kernels_rounds import KEPT_ROUNDS
from marketsim.markets.kernels_rounds import buyer_pass
from marketsim.markets.kernels_rounds import next_round_sellers
from marketsim.markets.kernels_rounds import ration_seller
from marketsim.markets.kernels_rounds import seller_pass
from marketsim.markets.kernels_rounds import seller_slots
from marketsim.markets.kernels_rounds import write_fills
from marketsim.markets.kernels_shared import RESIDUAL_RTOL  # noqa: F401
from marketsim.markets.kernels_shared import SHARED_WEIGHT_FLOOR
from marketsim.markets.kernels_shared import _exact_requests
from marketsim.markets.kernels_shared import _seller_logit_weights
from marketsim.markets.kernels_shared import _weight_sum


@njit(cache=True)
def posted_price_clear(
    buyer_indptr,
    edge_seller,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """Clear a posted-price market: logit choice on log price, pro-rata rationing, in rounds.

    Mechanism, per round: ``q_e = r_b * w_e / sum_{eligible e' of b} w_e'`` with
    ``w_e = exp(-price_sensitivity * (log p_s(e) - min_{eligible e' of b} log p_s(e')))``, then
    ``fill_e = q_e * min(1, c_s / R_s)`` where ``R_s = sum_{e -> s} q_e``.

    The market is a bipartite graph stored as CSR over buyers: buyer ``b`` owns edges
    ``buyer_indptr[b] <= e < buyer_indptr[b + 1]`` and edge ``e`` leads to seller
    ``edge_seller[e]``. In each round, every buyer with residual demand ``r_b > 0`` spreads it
    over its eligible edges (those whose seller has residual capacity ``c_s > 0``); the
    cheapest eligible seller has weight 1, so the weights never all underflow. A seller asked
    for more than it has fills every request in the same proportion and is then sold out
    (``c_s = 0``); otherwise ``c_s -= R_s``. Buyers' residual demand falls by what they got.
    Round-1 requests ``R_s`` are reported as notional demand. The loop stops after
    ``max_rounds`` rounds, or earlier once no buyer with residual demand has an eligible edge
    or a round fills nothing. Buyers are visited in ascending order, edges in ascending order
    within a buyer. A residual at or below ``RESIDUAL_RTOL`` times its starting value
    (capacity or demand) is rounding dust and set to 0.

    Implementation: round 1 walks every buyer's edges; the later rounds
    (`marketsim.markets.kernels_rounds.later_rounds`) walk only the edges of the sellers
    still selling, through the edges sorted by seller (`seller_slots`, made here when a
    second round is needed; `posted_price_clear_indexed` takes them made beforehand). The
    logit weights are scale-free, so each seller's weight is computed once
    per call relative to the cheapest seller with capacity, ``w_s = exp(-price_sensitivity *
    (log p_s - min log p))``, and shared by all buyers: ``q_e = w_s * r_b / sum w`` and
    ``R_s = w_s * sum_{e -> s} r_b / sum w``. Where a buyer's sum of shared weights is below
    ``SHARED_WEIGHT_FLOOR`` (its eligible sellers all cost far more than the cheapest one), its
    weights are computed from its own cheapest eligible seller exactly as in the formula above.
    Both agree to a few units in the last place. Demand must stay below 1e200 units.

    Args:
        buyer_indptr: int64[n_buyers + 1], CSR offsets of each buyer's edges (non-decreasing,
            ``buyer_indptr[0] == 0``, ``buyer_indptr[-1] == n_edges``).
        edge_seller: int64[n_edges], seller index in ``[0, n_sellers)`` of each edge.
        seller_price: float64[n_sellers], posted price per unit (> 0).
        seller_capacity: float64[n_sellers], units each seller can sell this step (>= 0).
        buyer_demand: float64[n_buyers], units each buyer wants this step (>= 0).
        price_sensitivity: float >= 0, logit coefficient on log price (0: equal split;
            large: all to the cheapest eligible seller).
        max_rounds: int >= 1, number of request-and-ration rounds at most.

    Returns:
        Tuple ``(edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled)``:
        edge_fill: float64[n_edges], units traded along each edge, summed over rounds.
        seller_sold: float64[n_sellers], units each seller sold (sum of its edge fills).
        seller_requested: float64[n_sellers], units requested from each seller in round 1:
            notional demand at the posted prices, the signal for price updates.
        buyer_filled: float64[n_buyers], units each buyer got (sum of its edge fills).
        buyer_unfilled: float64[n_buyers], ``max(0, demand - filled)``.
    """
    no_slots = np.empty(0, dtype=np.int64)
    return _posted_price_clear(
        buyer_indptr,
        edge_seller,
        no_slots,
        no_slots,
        no_slots,
        seller_price,
        seller_capacity,
        buyer_demand,
        price_sensitivity,
        max_rounds,
    )


@njit(cache=True)
def posted_price_clear_indexed(
    buyer_indptr,
    edge_seller,
    seller_indptr,
    slot_buyer,
    slot_edge,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """`posted_price_clear` given the market's edges sorted by seller, made beforehand.

    The same results, bit for bit. A caller clearing the same edges again keeps
    ``seller_slots(buyer_indptr, edge_seller, n_sellers)`` (as
    `marketsim.markets.mechanisms.seller_slots_for` does from step to step) instead of
    having every call with more than one round sort the edges again.

    Args:
        buyer_indptr, edge_seller: the market's edges, CSR over buyers.
        seller_indptr, slot_buyer, slot_edge: `kernels_rounds.seller_slots` of those edges.
        seller_price, seller_capacity, buyer_demand, price_sensitivity, max_rounds: as for
            `posted_price_clear`.

    Returns:
        As `posted_price_clear`.
    """
    return _posted_price_clear(
        buyer_indptr,
        edge_seller,
        seller_indptr,
        slot_buyer,
        slot_edge,
        seller_price,
        seller_capacity,
        buyer_demand,
        price_sensitivity,
        max_rounds,
    )


@njit(cache=True)
def _posted_price_clear(
    buyer_indptr,
    edge_seller,
    seller_indptr,
    slot_buyer,
    slot_edge,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """`posted_price_clear`: round 1 here, the later rounds in `later_rounds`.

    ``seller_indptr`` of length 0 means the sorted edges were not given: they are made if a
    later round is needed.
    """
    n_buyers = buyer_demand.shape[0]
    n_sellers = seller_price.shape[0]
    n_edges = edge_seller.shape[0]

    log_price, seller_weight = _seller_logit_weights(
        seller_price, seller_capacity, price_sensitivity
    )
    residual_capacity = seller_capacity.copy()
    residual_demand = buyer_demand.copy()
    kept = max(1, min(KEPT_ROUNDS, max_rounds))
    granted_rows = np.zeros((kept, n_sellers))  # per round: seller weight * fill ratio
    scale_rows = np.zeros((kept, n_buyers))  # per round: r_b / sum w (-1: exact path)
    fill_ratio = np.empty(n_sellers)
    next_weight = np.zeros(n_sellers)  # weights of sellers with capacity left, else 0
    exact_request = np.zeros(n_sellers)  # round 1's exact-path requests to each seller
    seller_scale_sum = np.zeros(n_sellers)  # round 1's sum of r_b / sum(w) over edges to s
    seller_requested = np.zeros(n_sellers)
    seller_sold = np.zeros(n_sellers)
    buyer_filled = np.zeros(n_buyers)
    buyer_cut_off = np.zeros(n_buyers, dtype=np.bool_)  # all its sellers sold out, for good
    fill_written = np.zeros(n_buyers, dtype=np.bool_)  # its edges of edge_fill hold fills
    edge_request = np.empty(n_edges)  # exact-path requests (scale -1)
    edge_fill = np.empty(n_edges)  # written in full by write_fills

    # Round 1, requests: each buyer spreads its demand over its sellers with capacity
    # (seller_weight is 0 for a seller without capacity). Edge and seller indices in this
    # hot loop are unsigned: numba then skips its negative-index wraparound check.
    scale = scale_rows[0]
    any_request = False
    for b in range(n_buyers):
        demand_left = residual_demand[b]
        if demand_left <= 0.0:
            continue
        first = np.uint64(buyer_indptr[b])
        stop = np.uint64(buyer_indptr[b + 1])
        weight_total = _weight_sum(edge_seller, seller_weight, first, stop)
        if weight_total >= SHARED_WEIGHT_FLOOR:
            buyer_scale = demand_left / weight_total
            for e in range(first, stop):
                seller_scale_sum[np.uint64(edge_seller[e])] += buyer_scale
            scale[b] = buyer_scale
            any_request = True
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
            buyer_cut_off[b] = True  # residual capacity never comes back within a call
            continue
        for e in range(first, stop):
            exact_request[edge_seller[e]] += edge_request[e]
        scale[b] = -1.0
        any_request = True
    if not any_request or max_rounds < 1:
        edge_fill[:] = 0.0
        return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_demand.copy()

    # Round 1, rationing (every seller: sold-out ones have weight 0 and no exact requests).
    selling = np.empty(n_sellers, dtype=np.int64)  # sellers with capacity, ascending
    n_selling = 0
    granted = granted_rows[0]
    for s in range(n_sellers):
        total_request = exact_request[s] + seller_weight[s] * seller_scale_sum[s]
        seller_requested[s] = total_request
        if residual_capacity[s] > 0.0:
            selling[n_selling] = s
            n_selling += 1
        ratio, residual_capacity[s] = ration_seller(
            total_request, residual_capacity[s], seller_capacity[s]
        )
        fill_ratio[s] = ratio
        granted[s] = seller_weight[s] * ratio
        seller_sold[s] = granted[s] * seller_scale_sum[s] + ratio * exact_request[s]

    # Round after round: receive and ask (buyers), then sum and ration (sellers still
    # selling, through the edges sorted by seller, made here if not given).
    row = 0  # the row of granted_rows / scale_rows holding this round
    pending = 1  # rows whose fills are not yet in edge_fill
    receiving = False  # whether the round in row pending - 1 is still to be received
    for round_index in range(max_rounds):
        if round_index > 0:
            granted = granted_rows[row]
            granted[:] = 0.0
            seller_pass(
                0,
                n_selling,
                selling,
                seller_indptr,
                slot_buyer,
                slot_edge,
                scale_rows[row],
                edge_request,
                seller_weight,
                seller_capacity,
                residual_capacity,
                granted,
                fill_ratio,
                seller_sold,
            )
        if round_index + 1 == max_rounds:
            receiving = True  # the last round is received as the fills are written
            pending = row + 1
            break
        n_selling = next_round_sellers(
            seller_weight, residual_capacity, selling, n_selling, next_weight
        )
        if n_selling == 0:
            receiving = True  # nothing left to sell: this round is the last
            pending = row + 1
            break
        next_row = row + 1
        flushed = False
        if next_row == kept:
            write_fills(
                0,
                n_buyers,
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
        n_received, n_asking = buyer_pass(
            0,
            n_buyers,
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
        pending = 0 if flushed else row + 1
        if n_received == 0 or n_asking == 0:
            break  # the requests just made are dropped
        row = next_row
        if seller_indptr.shape[0] == 0:
            seller_indptr, slot_buyer, slot_edge = seller_slots(
                buyer_indptr, edge_seller, n_sellers
            )
    write_fills(
        0,
        n_buyers,
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
    for b in range(n_buyers):
        buyer_unfilled[b] = max(0.0, buyer_demand[b] - buyer_filled[b])
    return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled


@njit(cache=True)
def tatonnement_price(
    price,
    requested,
    capacity,
    adjustment_speed,
    max_step,
    price_floor,
    price_ceiling,
):
    """Move each price toward clearing by a clipped step proportional to excess demand.

    Mechanism: ``new = clip(p * (1 + clip(speed * (requested - capacity) / capacity,
    -max_step, max_step)), floor, ceiling)``.

    A seller with zero capacity that is asked for anything has infinite excess demand and
    takes the full step ``+max_step`` (no step when ``adjustment_speed == 0``); one asked for
    nothing keeps its price. The floor is applied first and then the ceiling, so the ceiling
    wins if a floor lies above its ceiling.

    Args:
        price: float64[n], current prices (> 0).
        requested: float64[n], notional demand at the current prices, units.
        capacity: float64[n], units each seller can supply (>= 0).
        adjustment_speed: float >= 0, relative price change per unit of relative excess demand.
        max_step: float in [0, 1), largest relative change per call, up or down.
        price_floor: float64[n], lowest allowed new price.
        price_ceiling: float64[n], highest allowed new price.

    Returns:
        float64[n], the new prices.
    """
    n = price.shape[0]
    new_price = np.empty(n)
    for i in range(n):
        if adjustment_speed == 0.0:
            step = 0.0  # also where excess demand is infinite: no adjustment at speed 0
        elif capacity[i] > 0.0:
            excess = (requested[i] - capacity[i]) / capacity[i]
            step = adjustment_speed * excess
        elif requested[i] > 0.0:
            step = max_step
        else:
            step = 0.0
        step = min(max(step, -max_step), max_step)
        updated = price[i] * (1.0 + step)
        updated = max(updated, price_floor[i])
        updated = min(updated, price_ceiling[i])
        new_price[i] = updated
    return new_price


@njit(cache=True)
def lerner_scarcity_price(
    unit_cost, share, elasticity, max_lerner, price, requested, capacity, max_scarcity
):
    """Target price from market structure (a Lerner markup) and scarcity (a clearing price).

    Mechanism, per seller ``i``:
    ``L_i = min(max_lerner, share_i / elasticity)`` (Cournot: a firm with quantity share
    ``s`` facing market demand of elasticity ``e`` sets ``(P - MC) / P = s / e``), the
    structure price ``base_i = unit_cost_i / (1 - L_i)``; when notional demand exceeds
    capacity, the price that would clear it on a demand curve of the same elasticity,
    ``clear_i = price_i * (requested_i / capacity_i) ** (1 / elasticity)``; the target is
    ``min(max(base_i, clear_i), base_i * (1 + max_scarcity))``.

    So a seller with spare capacity prices at its Lerner price; one whose capacity binds
    raises its price towards the level at which demand falls to capacity (no further once
    it does: ``clear_i`` equals ``price_i`` at ``requested_i == capacity_i``), never above the
    cap. A seller with zero capacity that is asked for anything gets the cap; one asked for
    nothing its Lerner price. An overflowing ratio or power gives the cap.

    Args:
        unit_cost: float64[n], marginal cost per unit (>= 0).
        share: float64[n], each seller's (smoothed) quantity share of its market, 0..1.
        elasticity: float > 0, price elasticity of the market demand the sellers face.
        max_lerner: float in [0, 1), the largest Lerner index a seller sets.
        price: float64[n], current prices (> 0).
        requested: float64[n], notional demand at the current prices, units (>= 0).
        capacity: float64[n], units each seller can supply (>= 0).
        max_scarcity: float >= 0, largest relative premium over the structure price.

    Returns:
        float64[n], the target prices.
    """
    n = unit_cost.shape[0]
    target = np.empty(n)
    exponent = 1.0 / elasticity
    for i in range(n):
        lerner = min(max_lerner, share[i] / elasticity)
        base = unit_cost[i] / (1.0 - lerner)
        ceiling = base * (1.0 + max_scarcity)
        clearing = 0.0
        if capacity[i] > 0.0:
            if requested[i] > capacity[i]:
                clearing = price[i] * (requested[i] / capacity[i]) ** exponent
        elif requested[i] > 0.0:
            clearing = ceiling
        target[i] = min(max(base, clearing), ceiling)
    return target


@njit(cache=True)
def call_auction(bid_price, bid_quantity, ask_price, ask_quantity):
    """Uniform-price double auction: match the most volume, one market-clearing price for all.

    Mechanism: ``Q = max_p min(sum_{bid >= p} q, sum_{ask <= p} q)`` found by walking bids
    (price descending) against asks (price ascending) while bid >= ask; clearing price
    ``(lo + hi) / 2`` with ``lo = max(a_m, b_out)`` and ``hi = min(b_m, a_out)``, the middle of
    the range of market-clearing prices (defined below).

    Orders with quantity <= 0 are ignored and get 0. Sorts are stable (ties keep index
    order). The walk runs on cumulative quantities: at each step the matched volume is
    ``min(cum_bid[i], cum_ask[j])`` and the side with the smaller cumulative quantity advances
    (both when equal); it stops when the current bid price is below the current ask price.
    The marginal bid level ``b_m`` is the highest bid price level whose cumulative bid
    quantity (all bids at that price or higher) reaches Q; the marginal ask level ``a_m`` is
    the lowest ask price level whose cumulative ask quantity reaches Q. In exact arithmetic
    these are the prices of the last matched bid and ask. "Reaches" allows a shortfall of
    ``RESIDUAL_RTOL * Q``, so that rounding dust matched at a worse price level (e.g. when two
    cumulative quantities are equal up to rounding) does not move the price.
    Fills: orders strictly better than the marginal level (bids above ``b_m``, asks below
    ``a_m``) are filled in full; orders at the marginal level share the rest of Q pro rata to
    their quantity (capped at their quantity), except the largest of them (the first in book
    order among equals), which takes what the others leave of the rest if that is more than
    its pro-rata share (capped at its quantity); worse orders get 0. The exception changes
    ordinary fills by rounding only, but keeps Q traded when pro-rata shares underflow: two
    bids of 5e-324 sharing Q = 5e-324 get 0 and 5e-324, not 0 and 0.
    Price: ``b_out`` is the highest price of a bid not completely filled (-inf if none) and
    ``a_out`` the lowest price of an ask not completely filled (+inf if none). An order counts
    as completely filled when its unfilled remainder is at most ``RESIDUAL_RTOL * max(q, Q)``,
    so neither rounding dust in a marginal fill nor an order too small to change Q moves the
    price. Rationed bids at the margin (excess demand) give ``b_out = b_m`` and the price
    ``b_m``; rationed asks (excess supply) give ``a_m``; with both margins exhausted the price
    is the middle of the gap ``[max(a_m, best unmatched bid), min(b_m, best unmatched ask)]``.
    Proof of ``a_m <= price <= b_m`` when Q > 0: the walk pairs only bid >= ask, so
    ``a_m <= b_m``, and orders better than the margin fill in full, so ``b_out <= b_m`` and
    ``a_out >= a_m``; hence ``lo`` and ``hi`` both lie in ``[a_m, b_m]``, and so does their mean.
    If nothing can trade, Q = 0 and the price is the midpoint of the best bid and best ask,
    or 0.0 if a side has no orders.

    Args:
        bid_price: float64[n_bids], buyers' limit prices (highest they pay), finite; a
            market order must be entered at a finite price (e.g. the highest ask).
        bid_quantity: float64[n_bids], units each buyer wants; <= 0 means no order.
        ask_price: float64[n_asks], sellers' limit prices (lowest they accept), finite.
        ask_quantity: float64[n_asks], units each seller offers; <= 0 means no order.

    Returns:
        Tuple ``(clearing_price, traded_quantity, bid_fill, ask_fill)``:
        clearing_price: float, the single price of every trade.
        traded_quantity: float, Q, units traded.
        bid_fill: float64[n_bids], units bought per bid (sum equals Q).
        ask_fill: float64[n_asks], units sold per ask (sum equals Q).
    """
    bid_fill = np.zeros(bid_price.shape[0])
    ask_fill = np.zeros(ask_price.shape[0])
    bids = np.flatnonzero(bid_quantity > 0.0)
    asks = np.flatnonzero(ask_quantity > 0.0)
    n_bids = bids.shape[0]
    n_asks = asks.shape[0]
    if n_bids == 0 or n_asks == 0:
        return 0.0, 0.0, bid_fill, ask_fill

    bids = bids[np.argsort(-bid_price[bids], kind="mergesort")]
    asks = asks[np.argsort(ask_price[asks], kind="mergesort")]
    cum_bid = np.cumsum(bid_quantity[bids])
    cum_ask = np.cumsum(ask_quantity[asks])

    # Walk: match volume while the current bid is willing to pay the current ask.
    traded = 0.0
    i = 0
    j = 0
    while i < n_bids and j < n_asks and bid_price[bids[i]] >= ask_price[asks[j]]:
        if cum_bid[i] < cum_ask[j]:
            traded = cum_bid[i]
            i += 1
        elif cum_ask[j] < cum_bid[i]:
            traded = cum_ask[j]
            j += 1
        else:
            traded = cum_bid[i]
            i += 1
            j += 1

    # Marginal levels: where the cumulative quantity first reaches the traded quantity.
    reach = traded - RESIDUAL_RTOL * traded
    k = 0
    while k < n_bids - 1 and cum_bid[k] < reach:
        k += 1
    marginal_bid = bid_price[bids[k]]
    k = 0
    while k < n_asks - 1 and cum_ask[k] < reach:
        k += 1
    marginal_ask = ask_price[asks[k]]

    # Fills: better levels in full, the marginal level pro rata, worse levels nothing.
    _fill_levels(bids, bid_price, bid_quantity, marginal_bid, traded, 1.0, bid_fill)
    _fill_levels(asks, ask_price, ask_quantity, marginal_ask, traded, -1.0, ask_fill)

    # Price: the middle of [max(a_m, b_out), min(b_m, a_out)]; the first order in book order
    # that is not completely filled is the best one left.
    if traded <= 0.0:
        return 0.5 * (marginal_bid + marginal_ask), traded, bid_fill, ask_fill
    bid_out = -np.inf
    for k in range(n_bids):
        idx = bids[k]
        q = bid_quantity[idx]
        if q - bid_fill[idx] > RESIDUAL_RTOL * max(q, traded):
            bid_out = bid_price[idx]
            break
    ask_out = np.inf
    for k in range(n_asks):
        idx = asks[k]
        q = ask_quantity[idx]
        if q - ask_fill[idx] > RESIDUAL_RTOL * max(q, traded):
            ask_out = ask_price[idx]
            break
    low = max(marginal_ask, bid_out)
    high = min(marginal_bid, ask_out)
    return 0.5 * (low + high), traded, bid_fill, ask_fill


@njit(cache=True)
def _fill_levels(orders, price, quantity, marginal, traded, better_sign, fill):
    """Fill one side of an auction in place: price levels better than ``marginal`` in full,
    the marginal level pro rata to what is left of ``traded``, worse levels not at all.

    ``better_sign`` is +1 for bids (a higher price is better) and -1 for asks (lower). The
    largest order at the marginal level takes what the others leave of the rest of
    ``traded``, if that exceeds its pro-rata share (see `call_auction`).
    """
    better = 0.0
    at_level = 0.0
    largest = -1
    for k in range(orders.shape[0]):
        idx = orders[k]
        p = price[idx]
        if better_sign * p > better_sign * marginal:
            better += quantity[idx]
        elif p == marginal:
            at_level += quantity[idx]
            if largest < 0 or quantity[idx] > quantity[largest]:
                largest = idx
    rest = max(0.0, traded - better)
    share = min(1.0, rest / at_level)
    given = 0.0
    for k in range(orders.shape[0]):
        idx = orders[k]
        p = price[idx]
        if better_sign * p > better_sign * marginal:
            fill[idx] = quantity[idx]
        elif p == marginal and idx != largest:
            fill[idx] = quantity[idx] * share
            given += fill[idx]
    if largest >= 0:
        fill[largest] = min(quantity[largest], max(quantity[largest] * share, rest - given))
