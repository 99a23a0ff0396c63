"""Building blocks shared by the posted-price kernels (serial, later rounds, parallel).

Constants of the rounding-dust rule and of the shared-weight path, the sellers' logit weights,
one buyer's exact-path requests, and the sum of seller weights over a buyer's edges. Every
function is a pure ``@njit(cache=True)`` function; they are tested through the kernels that
use them (``marketsim.markets.kernels``, ``kernels_rounds``, ``kernels_parallel``).
"""

import numpy as np
from numba import njit

RESIDUAL_RTOL = 1e-12
"""Relative size below which a leftover quantity is rounding dust and counts as zero."""

SHARED_WEIGHT_FLOOR = 1e-100
"""Smallest total of shared logit weights a buyer may use; below it, its own are computed."""


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
