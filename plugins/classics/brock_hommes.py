"""Brock and Hommes (1998) heterogeneous beliefs as a marketsim plugin.

An asset market with a riskless rate ``r = R - 1`` and two belief types: fundamentalists,
who pay a cost ``C`` per period and expect the price to return to its fundamental value, and
trend followers, who expect ``g x_(t-1) + b``. With ``x`` the price's deviation from the
fundamental price, the market clears at

    R x_t = n_t (g x_(t-1) + b) + shock_t,   n_t = 1 / (1 + exp(-beta (U_trend - U_fund)))

with the types' shares a logit on last period's realised profits (intensity of choice
``beta``). At the fundamental steady state ``x* = 0`` the trend followers' share is
``1 / (1 + exp(-beta C))``, so with ``b = 0`` the steady state is stable while
``n g < R`` and loses stability at ``beta* = ln(R / (g - R)) / C`` (2.40 for R = 1.1,
g = 1.2, C = 1): below it a small deviation dies out, above it the price settles away from
its fundamental value (a pitchfork: two non-fundamental steady states).

What the plugin registers: the sector ``bh_traders`` (one member per independent asset
market, end investors without firm accounts: the asset is in zero net supply, so clearing
moves no quantity between simulated sectors and the market-clearing price is the closed form
above, computed by the project's numba kernel `marketsim.markets.beliefs.brock_hommes_step`
run over every market in a numba loop), and the chain columns ``bh_deviation``, ``bh_price``,
``bh_trend_share`` and ``bh_beta_star``.

Use: ``marketsim run experiments/classics/brock_hommes.toml`` (beta = 2.2, below beta*) or
``brock_hommes_unstable.toml`` (beta = 2.6); docs/classics.md gives the measured figures.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import Sector
from marketsim.plugin import TableSchema
from marketsim.plugin import brock_hommes_step
from marketsim.plugin import hookimpl

__version__ = "1.0.0"


class BrockHommesTraders(Sector):
    """The traders of ``count`` independent Brock-Hommes asset markets (one per member).

    State per market: the price deviation ``x`` of the last three periods (in the price's
    unit, USD per share) and the trend followers' share. Each step applies the map once to
    every market at once.
    """

    name = "bh_traders"
    doc = "Brock-Hommes asset market: fundamentalists and trend followers, logit switching."
    has_accounts = False
    outside_account = "savers"
    signed_fields = frozenset({"deviation", "deviation_1", "deviation_2"})
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(int, 1, "independent asset markets", "markets", ge=1, le=1_000_000),
            "gross_return": Param(
                float,
                1.1,
                "R: gross return of the riskless asset per period",
                "ratio",
                gt=1,
                le=10,
                source="Brock and Hommes (1998), example R = 1.1",
            ),
            "trend": Param(
                float,
                1.2,
                "g: trend followers' extrapolation coefficient",
                "ratio",
                ge=0,
                le=10,
                source="Brock and Hommes (1998), example g = 1.2",
            ),
            "bias": Param(
                float,
                0.0,
                "b: trend followers' optimism bias (0 in the classic map)",
                "USD per share",
                ge=-10,
                le=10,
                source="Brock and Hommes (1998)",
            ),
            "cost": Param(
                float,
                1.0,
                "C: fundamentalists' cost of information per period",
                "USD per period",
                ge=0,
                le=100,
                source="Brock and Hommes (1998), example C = 1",
            ),
            "intensity_of_choice": Param(
                float,
                2.2,
                "beta: how strongly traders switch to the strategy that earned more",
                "1 / USD",
                ge=0,
                le=1000,
                source="assumption: below beta* = 2.40 (stable)",
            ),
            "initial_deviation": Param(
                float,
                0.1,
                "x at the start (the three periods before the run)",
                "USD per share",
                ge=-10,
                le=10,
                source="assumption: a small perturbation of the fundamental steady state",
            ),
            "fundamental_price": Param(
                float,
                10.0,
                "the fundamental price (mean dividend / r); the price is this plus x",
                "USD per share",
                ge=0,
                le=1e12,
                source="assumption (only shifts the price level)",
            ),
            "noise": Param(
                float,
                0.0,
                "standard deviation of the normal shock to R x_t each period (0: deterministic)",
                "USD per share",
                ge=0,
                le=10,
                source="assumption",
            ),
        },
    )

    def setup(self) -> None:
        x0 = self.params["initial_deviation"]
        self.deviation = np.full(self.count, x0)
        """x_t: price minus fundamental price this period (USD per share)."""
        self.deviation_1 = np.full(self.count, x0)
        """x_(t-1)."""
        self.deviation_2 = np.full(self.count, x0)
        """x_(t-2)."""
        self.trend_share = np.zeros(self.count)
        """n_t: share of trend followers this period."""

    def observe(self, step: int) -> None:
        p = self.params
        shock = p["noise"] * self.rng.standard_normal(self.count)
        new, share = np.empty(self.count), np.empty(self.count)
        step_markets(
            self.deviation,
            self.deviation_1,
            self.deviation_2,
            p["gross_return"],
            p["trend"],
            p["bias"],
            p["cost"],
            p["intensity_of_choice"],
            shock,
            new,
            share,
        )
        self.deviation_2 = self.deviation_1
        self.deviation_1 = self.deviation
        self.deviation = new
        self.trend_share = share

    def capacity(self) -> np.ndarray:
        return np.zeros(self.count)


@njit(cache=False)  # a plugin file is executed from its bytes: nowhere to cache to
def step_markets(x1, x2, x3, gross_return, trend, bias, cost, intensity, shock, out_x, out_n):
    """One period of the Brock-Hommes map in every market: the project's numba kernel
    `brock_hommes_step` over arrays (x_(t-1), x_(t-2), x_(t-3), shock), written to
    ``out_x`` (x_t) and ``out_n`` (trend followers' share)."""
    for i in range(x1.shape[0]):
        out_x[i], out_n[i] = brock_hommes_step(
            x1[i], x2[i], x3[i], gross_return, trend, bias, cost, intensity, shock[i]
        )


def critical_intensity(gross_return: float, trend: float, cost: float) -> float:
    """``beta* = ln(R / (g - R)) / C``; NaN where it does not exist (g <= R, g >= 2R, C = 0)."""
    if not (gross_return < trend < 2.0 * gross_return) or cost <= 0:
        return float("nan")
    return math.log(gross_return / (trend - gross_return)) / cost


def _traders(model):
    return model.sectors.get(BrockHommesTraders.name)


def _mean(field: str):
    def compute(model) -> float:
        traders = _traders(model)
        return float(getattr(traders, field).mean()) if traders is not None else float("nan")

    return compute


def _price(model) -> float:
    traders = _traders(model)
    if traders is None:
        return float("nan")
    return float(traders.params["fundamental_price"] + traders.deviation.mean())


def _beta_star(model) -> float:
    traders = _traders(model)
    if traders is None:
        return float("nan")
    p = traders.params
    return critical_intensity(p["gross_return"], p["trend"], p["cost"])


@hookimpl
def marketsim_register_sectors(register):
    register(BrockHommesTraders)


@hookimpl
def marketsim_register_metrics(register):
    for column, compute, unit, doc in (
        ("bh_deviation", _mean("deviation"), "USD per share", "x_t, mean over markets"),
        ("bh_price", _price, "USD per share", "fundamental price + x_t, mean over markets"),
        ("bh_trend_share", _mean("trend_share"), "share", "trend followers' share n_t"),
        ("bh_beta_star", _beta_star, "1 / USD", "beta* = ln(R / (g - R)) / C"),
    ):
        register(MetricSpec("chain", column, compute, unit, doc))
