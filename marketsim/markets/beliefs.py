"""The capital market's belief dynamics: the Brock–Hommes (1998) heterogeneous-beliefs map.

Prices deviate from fundamentals by ``x`` (market-wide). Fundamentalists, who pay a cost
``C`` per period, expect ``x`` to vanish; trend followers expect ``g * x_{t-1} + b`` (``b``:
their optimism bias, 0 in the classic map). With gross riskless return ``R`` the market
clears at

    R * x_t = n_t * (g * x_{t-1} + b) + shock_t

where the trend followers' share ``n_t`` is a logit on last period's realised profits
(intensity of choice ``beta``):

    U_trend = (x_{t-1} - R x_{t-2}) * (g x_{t-3} + b - R x_{t-2})
    U_fund  = (x_{t-1} - R x_{t-2}) * (0        - R x_{t-2}) - C
    n_t     = 1 / (1 + exp(-beta * (U_trend - U_fund)))

At ``x = 0`` the share is ``1 / (1 + exp(-beta C))``, so the fundamental steady state loses
stability when ``n * g > R``, i.e. at ``beta* = ln(R / (g - R)) / C`` for ``R < g < 2R`` (with
``b = 0``). Above it, with ``b > 0``, the map produces recurring bubbles and crashes.
The reference twin is `marketsim.markets.reference.brock_hommes_step`.

`sector_beliefs_step` is the same map for several markets at once (one per sector, numpy
arrays) that also reads the economy: the realised excess return on which the strategies'
profits are scored is BH's ``x_(t-1) - R x_(t-2) + delta`` with ``delta`` the news about
fundamentals (BH's dividend noise; here measured from firms' books), and trend followers'
bias may differ between the period they are scored on and the coming one. With
``news = 0`` and ``last_bias = bias`` it is `brock_hommes_step` element by element
(tests/test_beliefs.py holds the two to 1e-12).
"""

import math

import numpy as np
from numba import njit


@njit(cache=True)
def brock_hommes_step(x1, x2, x3, gross_return, trend, bias, cost, intensity, shock):
    """One period of the Brock–Hommes map: ``R x_t = n_t (g x_(t-1) + b) + shock``.

    Args:
        x1: x_(t-1), last period's deviation of prices from fundamentals.
        x2: x_(t-2).
        x3: x_(t-3).
        gross_return: R > 1, gross return of the riskless asset per period.
        trend: g >= 0, trend followers' extrapolation coefficient.
        bias: b, trend followers' optimism bias (0 in the classic map).
        cost: C >= 0, fundamentalists' cost per period.
        intensity: beta >= 0, intensity of choice.
        shock: this period's exogenous shock to the deviation.

    Returns:
        Tuple ``(x_t, n_t)``: the new deviation and the trend followers' share.
    """
    excess = x1 - gross_return * x2
    profit_gap = excess * (trend * x3 + bias) + cost
    exponent = -intensity * profit_gap
    # numerically safe logistic: never exp of a large positive number
    if exponent >= 0.0:
        share = math.exp(-exponent) / (1.0 + math.exp(-exponent))
    else:
        share = 1.0 / (1.0 + math.exp(exponent))
    deviation = (share * (trend * x1 + bias) + shock) / gross_return
    return deviation, share


def sector_beliefs_step(
    x1, x2, x3, news, gross_return, trend, bias, last_bias, cost, intensity, shock
):
    """One period of the Brock–Hommes map for each of several markets (numpy arrays).

    Args:
        x1, x2, x3: x_(t-1), x_(t-2), x_(t-3) of each market (share of fundamental value).
        news: delta_(t-1), the fundamental news in the realised excess return of the period
            the strategies are scored on (share of fundamental value); 0 in the classic map.
        gross_return: R > 1.
        trend: g >= 0.
        bias: b_t, trend followers' bias in the forecast made now (share).
        last_bias: the bias in the forecast they are scored on (made two periods ago).
        cost: C, fundamentalists' net cost per period.
        intensity: beta >= 0.
        shock: this period's shock to each market's deviation.

    Returns:
        ``(x_t, n_t)``: arrays of new deviations and trend followers' shares.
    """
    excess = np.asarray(x1) - gross_return * np.asarray(x2) + np.asarray(news)
    profit_gap = excess * (trend * np.asarray(x3) + last_bias) + cost
    exponent = -intensity * profit_gap
    # numerically safe logistic, as in brock_hommes_step: never exp of a large positive number
    small = np.exp(-np.abs(exponent))
    share = np.where(exponent >= 0.0, small / (1.0 + small), 1.0 / (1.0 + small))
    deviation = (share * (trend * np.asarray(x1) + bias) + shock) / gross_return
    return deviation, share
