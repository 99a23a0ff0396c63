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

RESIDUAL_RTOL = 1e-12
"""Relative size below which a leftover quantity is rounding dust and counts as zero."""

SHARED_WEIGHT_FLOOR = 1e-100
"""Smallest total of shared logit weights a buyer may use; below it, its own are computed."""


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

    Implementation: the logit weights are scale-free, so each seller's weight is computed once
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
    n_buyers = buyer_demand.shape[0]
    n_sellers = seller_price.shape[0]
    n_edges = edge_seller.shape[0]

    log_price, seller_weight = _seller_logit_weights(
        seller_price, seller_capacity, price_sensitivity
    )

    residual_capacity = seller_capacity.copy()
    residual_demand = buyer_demand.copy()
    round_weight = np.empty(n_sellers)  # seller_weight, 0 where sold out this round
    granted_weight = np.empty(n_sellers)  # round_weight times the seller's fill ratio
    fill_ratio = np.empty(n_sellers)
    seller_request = np.empty(n_sellers)
    seller_scale_sum = np.empty(n_sellers)  # sum of r_b / sum(w) over fast-path edges to s
    seller_requested = np.zeros(n_sellers)
    seller_sold = np.zeros(n_sellers)
    buyer_filled = np.zeros(n_buyers)
    buyer_scale = np.zeros(n_buyers)  # r_b / sum of weights: request = weight * scale
    buyer_exact = np.zeros(n_buyers, dtype=np.bool_)  # requests stored in edge_request
    buyer_cut_off = np.zeros(n_buyers, dtype=np.bool_)  # all its sellers sold out, for good
    edge_request = np.empty(n_edges)  # only for buyers with buyer_exact set
    edge_fill = np.empty(n_edges)  # written in full in round 1
    rounds_filled = 0
    # Edge and seller indices in the hot loops are unsigned: numba then skips its
    # negative-index wraparound check, which costs about a third of their time.
    one = np.uint64(1)
    two = np.uint64(2)

    for round_index in range(max_rounds):
        # Requests: each buyer spreads its residual demand over sellers with capacity left.
        for s in range(n_sellers):
            round_weight[s] = seller_weight[s] if residual_capacity[s] > 0.0 else 0.0
            seller_request[s] = 0.0
            seller_scale_sum[s] = 0.0
        any_request = False
        for b in range(n_buyers):
            buyer_scale[b] = 0.0
            buyer_exact[b] = False
            demand_left = residual_demand[b]
            if demand_left <= 0.0 or buyer_cut_off[b]:
                continue
            first = np.uint64(buyer_indptr[b])
            stop = np.uint64(buyer_indptr[b + 1])
            weight_total = _weight_sum(edge_seller, round_weight, first, stop)
            if weight_total >= SHARED_WEIGHT_FLOOR:
                scale = demand_left / weight_total
                for e in range(first, stop):
                    seller_scale_sum[np.uint64(edge_seller[e])] += scale
                buyer_scale[b] = scale
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
                seller_request[edge_seller[e]] += edge_request[e]
            buyer_exact[b] = True
            any_request = True
        if not any_request:
            break
        for s in range(n_sellers):
            seller_request[s] += round_weight[s] * seller_scale_sum[s]
        if round_index == 0:
            seller_requested[:] = seller_request

        # Rationing: an oversubscribed seller fills every request in the same proportion.
        for s in range(n_sellers):
            total_request = seller_request[s]
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

        # Fills: buyers take what their sellers granted.
        round_total = 0.0
        for b in range(n_buyers):
            first = np.uint64(buyer_indptr[b])
            stop = np.uint64(buyer_indptr[b + 1])
            scale = buyer_scale[b]
            received = 0.0
            if scale > 0.0 and rounds_filled == 0:
                # First round: write (not add) the fills; two partial sums of what the buyer
                # receives, in a fixed order, so the adds do not wait on each other.
                received_even = 0.0
                received_odd = 0.0
                e = first
                while e + two <= stop:
                    s = np.uint64(edge_seller[e])
                    fill = granted_weight[s] * scale
                    edge_fill[e] = fill
                    seller_sold[s] += fill
                    received_even += fill
                    s = np.uint64(edge_seller[e + one])
                    fill = granted_weight[s] * scale
                    edge_fill[e + one] = fill
                    seller_sold[s] += fill
                    received_odd += fill
                    e += two
                if e < stop:
                    s = np.uint64(edge_seller[e])
                    fill = granted_weight[s] * scale
                    edge_fill[e] = fill
                    seller_sold[s] += fill
                    received_even += fill
                received = received_even + received_odd
            elif scale > 0.0:
                for e in range(first, stop):
                    s = np.uint64(edge_seller[e])
                    fill = granted_weight[s] * scale
                    edge_fill[e] += fill
                    seller_sold[s] += fill
                    received += fill
            elif buyer_exact[b]:
                for e in range(first, stop):
                    s = edge_seller[e]
                    fill = edge_request[e] * fill_ratio[s]
                    edge_fill[e] = fill if rounds_filled == 0 else edge_fill[e] + fill
                    seller_sold[s] += fill
                    received += fill
            else:
                if rounds_filled == 0:
                    edge_fill[first:stop] = 0.0
                continue
            buyer_filled[b] += received
            left = residual_demand[b] - received
            if left <= RESIDUAL_RTOL * buyer_demand[b]:
                left = 0.0
            residual_demand[b] = left
            round_total += received
        rounds_filled += 1
        if round_total <= 0.0:
            break

    if rounds_filled == 0:
        edge_fill[:] = 0.0
    buyer_unfilled = np.zeros(n_buyers)
    for b in range(n_buyers):
        buyer_unfilled[b] = max(0.0, buyer_demand[b] - buyer_filled[b])
    return edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled


@njit(cache=True)
def _seller_logit_weights(seller_price, seller_capacity, price_sensitivity):
    """Log prices and logit weights of sellers, relative to the cheapest seller with capacity.

    ``w_s = exp(-price_sensitivity * (log p_s - min_{c_s > 0} log p))`` for sellers with
    capacity ``c_s > 0``, else 0. Shared by the serial and parallel posted-price kernels, so
    that both compute every weight with the same instructions.

    Args:
        seller_price: float64[n_sellers], posted prices (> 0).
        seller_capacity: float64[n_sellers], units each seller can sell (>= 0).
        price_sensitivity: float >= 0, logit coefficient on log price.

    Returns:
        ``(log_price, seller_weight)``, float64[n_sellers] each.
    """
    n_sellers = seller_price.shape[0]
    log_price = np.empty(n_sellers)
    cheapest_log_price = np.inf
    for s in range(n_sellers):
        log_price[s] = np.log(seller_price[s])
        if seller_capacity[s] > 0.0 and log_price[s] < cheapest_log_price:
            cheapest_log_price = log_price[s]
    seller_weight = np.zeros(n_sellers)
    for s in range(n_sellers):
        if seller_capacity[s] > 0.0:
            shift = log_price[s] - cheapest_log_price
            seller_weight[s] = np.exp(-price_sensitivity * shift)
    return log_price, seller_weight


@njit(cache=True)
def _exact_requests(
    edge_seller,
    log_price,
    residual_capacity,
    price_sensitivity,
    demand_left,
    first,
    stop,
    edge_request,
):
    """One buyer's requests with logit weights shifted by its own cheapest eligible seller.

    The exact path of `posted_price_clear`, for a buyer whose shared weights sum below
    ``SHARED_WEIGHT_FLOOR``: ``q_e = r_b * w_e / sum w`` with ``w_e = exp(-price_sensitivity *
    (log p_s(e) - min_{eligible} log p))`` on edges to sellers with residual capacity, 0 on
    the others. Shared by the serial and parallel kernels.

    Args:
        edge_seller: int64[n_edges], seller of each edge.
        log_price: float64[n_sellers], log posted prices.
        residual_capacity: float64[n_sellers], capacity left (units).
        price_sensitivity: float >= 0, logit coefficient on log price.
        demand_left: float > 0, the buyer's residual demand (units).
        first: uint64, first edge of the buyer; stop: uint64, one past its last.
        edge_request: float64[n_edges], written on the buyer's edges: units requested.

    Returns:
        bool, False if none of the buyer's sellers has capacity left (nothing written).
    """
    has_eligible = False
    own_cheapest = 0.0
    for e in range(first, stop):
        s = edge_seller[e]
        if residual_capacity[s] > 0.0 and (not has_eligible or log_price[s] < own_cheapest):
            own_cheapest = log_price[s]
            has_eligible = True
    if not has_eligible:
        return False
    weight_total = 0.0
    for e in range(first, stop):
        s = edge_seller[e]
        weight = 0.0
        if residual_capacity[s] > 0.0:
            weight = np.exp(-price_sensitivity * (log_price[s] - own_cheapest))
        edge_request[e] = weight
        weight_total += weight
    for e in range(first, stop):
        edge_request[e] = demand_left * edge_request[e] / weight_total
    return True


@njit(cache=True)
def _weight_sum(edge_seller, seller_weight, first, stop):
    """Sum of the weights of the sellers on a buyer's edges: ``sum_e seller_weight[s(e)]``.

    Four partial sums in a fixed order, so that the adds do not wait on each other, and
    unsigned indices, so that numba skips its negative-index wraparound check.

    Args:
        edge_seller: int64[n_edges], seller of each edge.
        seller_weight: float64[n_sellers], weight of each seller.
        first: uint64, first edge of the buyer.
        stop: uint64, one past its last edge.

    Returns:
        float, the sum over edges ``first <= e < stop``.
    """
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    four = np.uint64(4)
    part0 = 0.0
    part1 = 0.0
    part2 = 0.0
    part3 = 0.0
    e = first
    while e + four <= stop:
        part0 += seller_weight[np.uint64(edge_seller[e])]
        part1 += seller_weight[np.uint64(edge_seller[e + one])]
        part2 += seller_weight[np.uint64(edge_seller[e + two])]
        part3 += seller_weight[np.uint64(edge_seller[e + three])]
        e += four
    while e < stop:
        part0 += seller_weight[np.uint64(edge_seller[e])]
        e += one
    return (part0 + part1) + (part2 + part3)


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
