"""Plain-Python reference twins of the kernels in ``marketsim.markets.kernels``.

Each function has the same signature and outputs as its kernel and is written the simplest
obvious way, with loops over Python floats and lists (numpy only to allocate the outputs), so
that a kernel agreeing with its twin means something. ``call_auction`` deliberately uses a
different algorithm from its kernel: brute force over candidate prices instead of a walk.
These are for tests and benchmarks only; they are orders of magnitude slower.
"""

from __future__ import annotations

import math

import numpy as np

from marketsim.markets.kernels import RESIDUAL_RTOL


def posted_price_clear(
    buyer_indptr,
    edge_seller,
    seller_price,
    seller_capacity,
    buyer_demand,
    price_sensitivity,
    max_rounds,
):
    """Reference twin of ``kernels.posted_price_clear``: logit on log price, pro-rata rationing.

    Args:
        buyer_indptr: int[n_buyers + 1], CSR offsets of each buyer's edges.
        edge_seller: int[n_edges], seller of each edge.
        seller_price: float[n_sellers], posted prices (> 0).
        seller_capacity: float[n_sellers], units each seller can sell (>= 0).
        buyer_demand: float[n_buyers], units each buyer wants (>= 0).
        price_sensitivity: logit coefficient on log price (>= 0).
        max_rounds: number of rounds at most (>= 1).

    Returns:
        ``(edge_fill, seller_sold, seller_requested, buyer_filled, buyer_unfilled)`` as float64
        arrays, with the kernel's meanings.
    """
    indptr = [int(x) for x in buyer_indptr]
    seller_of = [int(x) for x in edge_seller]
    price = [float(x) for x in seller_price]
    capacity = [float(x) for x in seller_capacity]
    demand = [float(x) for x in buyer_demand]
    sensitivity = float(price_sensitivity)
    n_buyers = len(demand)
    n_sellers = len(price)
    n_edges = len(seller_of)

    capacity_left = list(capacity)
    demand_left = list(demand)
    fills = [0.0] * n_edges
    requested_in_first_round = [0.0] * n_sellers

    for round_number in range(1, int(max_rounds) + 1):
        requests = {}  # edge -> units requested this round, grouped by buyer in edge order
        requested_from = [0.0] * n_sellers
        for b in range(n_buyers):
            if demand_left[b] <= 0.0:
                continue
            edges = range(indptr[b], indptr[b + 1])
            eligible = [e for e in edges if capacity_left[seller_of[e]] > 0.0]
            if not eligible:
                continue
            lowest_log_price = min(math.log(price[seller_of[e]]) for e in eligible)
            weights = []
            for e in eligible:
                log_price = math.log(price[seller_of[e]])
                weights.append(math.exp(-sensitivity * (log_price - lowest_log_price)))
            weight_total = 0.0
            for w in weights:
                weight_total += w
            for e, w in zip(eligible, weights, strict=True):
                request = demand_left[b] * w / weight_total
                requests[e] = request
                requested_from[seller_of[e]] += request
        if not requests:
            break
        if round_number == 1:
            requested_in_first_round = list(requested_from)

        ratio = [1.0] * n_sellers
        for s in range(n_sellers):
            if requested_from[s] > 0.0:
                ratio[s] = min(1.0, capacity_left[s] / requested_from[s])
                capacity_left[s] = max(0.0, capacity_left[s] - requested_from[s] * ratio[s])
                if ratio[s] < 1.0 or capacity_left[s] <= RESIDUAL_RTOL * capacity[s]:
                    capacity_left[s] = 0.0

        filled_this_round = 0.0
        for b in range(n_buyers):
            received = 0.0
            got_any_request = False
            for e in range(indptr[b], indptr[b + 1]):
                if e in requests:
                    got_any_request = True
                    fill = requests[e] * ratio[seller_of[e]]
                    fills[e] += fill
                    received += fill
            if not got_any_request:
                continue
            demand_left[b] = max(0.0, demand_left[b] - received)
            if demand_left[b] <= RESIDUAL_RTOL * demand[b]:
                demand_left[b] = 0.0
            filled_this_round += received
        if filled_this_round <= 0.0:
            break

    sold = [0.0] * n_sellers
    for e in range(n_edges):
        sold[seller_of[e]] += fills[e]
    filled = []
    for b in range(n_buyers):
        total = 0.0
        for e in range(indptr[b], indptr[b + 1]):
            total += fills[e]
        filled.append(total)
    unfilled = [max(0.0, demand[b] - filled[b]) for b in range(n_buyers)]
    return (
        np.array(fills, dtype=np.float64),
        np.array(sold, dtype=np.float64),
        np.array(requested_in_first_round, dtype=np.float64),
        np.array(filled, dtype=np.float64),
        np.array(unfilled, dtype=np.float64),
    )


def tatonnement_price(
    price,
    requested,
    capacity,
    adjustment_speed,
    max_step,
    price_floor,
    price_ceiling,
):
    """Reference twin of ``kernels.tatonnement_price``: clipped step on relative excess demand.

    Args:
        price: float[n], current prices.
        requested: float[n], notional demand.
        capacity: float[n], supply capacity (>= 0).
        adjustment_speed: relative price change per unit of relative excess demand (>= 0).
        max_step: largest relative change per call, in [0, 1).
        price_floor: float[n], lowest allowed price.
        price_ceiling: float[n], highest allowed price (wins over the floor).

    Returns:
        float64[n], the new prices.
    """
    speed = float(adjustment_speed)
    largest = float(max_step)
    result = []
    for p, want, cap, low, high in zip(
        price, requested, capacity, price_floor, price_ceiling, strict=True
    ):
        p, want, cap, low, high = float(p), float(want), float(cap), float(low), float(high)
        if cap > 0.0:
            excess = (want - cap) / cap
        elif want > 0.0:
            excess = math.inf
        else:
            excess = 0.0
        step = 0.0 if speed == 0.0 else speed * excess
        step = min(largest, max(-largest, step))
        result.append(min(high, max(low, p * (1.0 + step))))
    return np.array(result, dtype=np.float64)


def lerner_scarcity_price(
    unit_cost, share, elasticity, max_lerner, price, requested, capacity, max_scarcity
):
    """Reference twin of ``kernels.lerner_scarcity_price``, the clearing price in logs.

    Args:
        unit_cost: float[n], marginal cost per unit.
        share: float[n], quantity share of each seller, 0..1.
        elasticity: price elasticity of market demand (> 0).
        max_lerner: largest Lerner index, in [0, 1).
        price: float[n], current prices (> 0).
        requested: float[n], notional demand.
        capacity: float[n], supply capacity (>= 0).
        max_scarcity: cap on the premium over the structure price (>= 0).

    Returns:
        float64[n], the target prices.
    """
    eps, top, cap_premium = float(elasticity), float(max_lerner), float(max_scarcity)
    result = []
    rows = zip(unit_cost, share, price, requested, capacity, strict=True)
    for cost, own_share, now, want, cap in rows:
        cost, own_share, now, want, cap = (float(v) for v in (cost, own_share, now, want, cap))
        structure = cost / (1.0 - min(top, own_share / eps))
        highest = structure * (1.0 + cap_premium)
        if cap == 0.0:
            result.append(highest if want > 0.0 else structure)
            continue
        if want <= cap:
            result.append(structure)
            continue
        ratio = want / cap
        if math.isinf(ratio) or highest == 0.0:
            result.append(highest)
            continue
        log_clearing = math.log(now) + math.log(ratio) / eps
        if highest > 0.0 and log_clearing >= math.log(highest):
            result.append(highest)
        else:
            result.append(min(highest, max(structure, math.exp(log_clearing))))
    return np.array(result, dtype=np.float64)


def call_auction(bid_price, bid_quantity, ask_price, ask_quantity):
    """Reference twin of ``kernels.call_auction``, by brute force over candidate prices.

    Traded quantity ``Q = max over candidate prices p of min(D(p), S(p))``, with ``D(p)`` the
    bid quantity at prices >= p and ``S(p)`` the ask quantity at prices <= p. The marginal bid
    level is the highest bid price L with ``D(L) >= Q`` (less a relative ``RESIDUAL_RTOL``),
    the marginal ask level the lowest ask price L with ``S(L) >= Q`` (same allowance). Better
    levels fill in full, the marginal level pro rata, its largest order (lowest index among
    equals) taking instead what the others leave, when that is more. The clearing price is
    the middle of the prices that every filled order accepts and at which no order left over
    still wants to trade:
    ``[max(a_m, highest bid left), min(b_m, lowest ask left)]``, where an order is left over if
    more than ``RESIDUAL_RTOL * max(q, Q)`` of it is unfilled. If Q = 0 it is the midpoint of
    the best bid and best ask.

    Args:
        bid_price: float[n_bids], limit prices of bids.
        bid_quantity: float[n_bids], bid quantities (<= 0: no order).
        ask_price: float[n_asks], limit prices of asks.
        ask_quantity: float[n_asks], ask quantities (<= 0: no order).

    Returns:
        ``(clearing_price, traded_quantity, bid_fill, ask_fill)``.
    """
    bids = [(float(p), float(q)) for p, q in zip(bid_price, bid_quantity, strict=True)]
    asks = [(float(p), float(q)) for p, q in zip(ask_price, ask_quantity, strict=True)]
    live_bids = [(p, q) for p, q in bids if q > 0.0]
    live_asks = [(p, q) for p, q in asks if q > 0.0]
    bid_fill = np.zeros(len(bids))
    ask_fill = np.zeros(len(asks))
    if not live_bids or not live_asks:
        return 0.0, 0.0, bid_fill, ask_fill

    def demand_at(level):
        return sum(q for p, q in live_bids if p >= level)

    def supply_at(level):
        return sum(q for p, q in live_asks if p <= level)

    candidates = {p for p, _ in live_bids} | {p for p, _ in live_asks}
    traded = max(min(demand_at(p), supply_at(p)) for p in candidates)
    reach = traded - RESIDUAL_RTOL * traded

    bid_levels = sorted({p for p, _ in live_bids}, reverse=True)
    marginal_bid = next((lv for lv in bid_levels if demand_at(lv) >= reach), bid_levels[-1])
    ask_levels = sorted({p for p, _ in live_asks})
    marginal_ask = next((lv for lv in ask_levels if supply_at(lv) >= reach), ask_levels[-1])

    def fill_side(orders, fill, is_better, marginal):
        better = sum(q for p, q in orders if q > 0.0 and is_better(p, marginal))
        level = [i for i, (p, q) in enumerate(orders) if q > 0.0 and p == marginal]
        rest = max(0.0, traded - better)
        share = min(1.0, rest / sum(orders[i][1] for i in level))
        largest = max(level, key=lambda i: (orders[i][1], -i))  # lowest index among equals
        left_for_largest = rest
        for i, (p, q) in enumerate(orders):
            if q > 0.0 and is_better(p, marginal):
                fill[i] = q
            elif i in level and i != largest:
                fill[i] = q * share
                left_for_largest -= fill[i]
        q = orders[largest][1]
        fill[largest] = min(q, max(q * share, left_for_largest))

    fill_side(bids, bid_fill, lambda p, m: p > m, marginal_bid)
    fill_side(asks, ask_fill, lambda p, m: p < m, marginal_ask)

    if traded == 0.0:
        return (marginal_bid + marginal_ask) / 2.0, traded, bid_fill, ask_fill

    def left_over(quantity, fill):
        return quantity > 0.0 and quantity - fill > RESIDUAL_RTOL * max(quantity, traded)

    bids_left = [p for (p, q), f in zip(bids, bid_fill, strict=True) if left_over(q, f)]
    asks_left = [p for (p, q), f in zip(asks, ask_fill, strict=True) if left_over(q, f)]
    low = max([marginal_ask] + bids_left)
    high = min([marginal_bid] + asks_left)
    return (low + high) / 2.0, traded, bid_fill, ask_fill


def brock_hommes_step(x1, x2, x3, gross_return, trend, bias, cost, intensity, shock):
    """Reference twin of `marketsim.markets.beliefs.brock_hommes_step`, written from BH (1998).

    Profits of each strategy are computed separately, as in the paper, and the shares by a
    softmax over both; the kernel uses the equivalent one-line logistic of the difference.
    """
    excess_return = x1 - gross_return * x2
    forecast_trend = trend * x3 + bias
    forecast_fundamental = 0.0
    profit_trend = excess_return * (forecast_trend - gross_return * x2)
    profit_fundamental = excess_return * (forecast_fundamental - gross_return * x2) - cost
    top = max(intensity * profit_trend, intensity * profit_fundamental)
    weight_trend = math.exp(intensity * profit_trend - top)
    weight_fundamental = math.exp(intensity * profit_fundamental - top)
    share = weight_trend / (weight_trend + weight_fundamental)
    deviation = share * (trend * x1 + bias) + (1.0 - share) * forecast_fundamental + shock
    return deviation / gross_return, share
