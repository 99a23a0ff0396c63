"""Investors: the capital market that values firms and supplies equity (the bubble engine).

Fundamentalists value each firm from its expected cash flows:
    F_i = max(0, cash_i - debt_i + 12 * E_i / (discount_rate - long_run_growth))
with E_i the firm's smoothed monthly operating income (revenue - cost of goods - opex, as
of the last closed month). The market's valuation of every AI firm
is ``V_i = F_i * max(floor, 1 + x_t)``, where ``x_t`` is the market-wide deviation of prices
from fundamentals, driven by the Brock–Hommes (1998) heterogeneous-beliefs map
(`brock_hommes_step` kernel): fundamentalists (who pay a cost ``C`` for their analysis)
expect ``x`` to return to 0, trend followers expect ``g * x_{t-1} + b``; with gross return
``R``
    R * x_t = n_trend_t * (g * x_{t-1} + b) + shock_t
and the strategy shares follow a logit on realised profits with intensity of choice ``beta``.
The fundamental steady state loses stability at ``beta* = ln(R / (g - R)) / C``
(``R < g < 2R``): above it, optimism feeds on itself.

Money: savers pay ``inflow_usd_per_month * (V/F) ** inflow_sensitivity`` into the funds
each month (capital floods in when valuations run high and dries up when they fall);
firms pay dividends to the funds. Each month the funds offer ``deploy_share`` of their cash
as new equity: the fundamentalists' share of it split over firms by valuation (a firm with
no fundamental value gets none of it), the trend followers' share by momentum (market value
times its smoothed monthly return: they buy what has been rising). A firm draws on its offer only to
cover a cash shortfall; without an offer it must borrow or default.

Bounds that keep every value finite over the whole valid range (none binds in the shipped
scenarios):
- ``x`` stays within ``[-1, MAX_VALUATION_RATIO - 1]``. With ``g * n > R`` for good (e.g.
  ``g > 2R``) the map grows geometrically, to inf in a few hundred months and to NaN
  after; a market valued at more than a hundred times its fundamentals is beyond any
  recorded bubble, and below ``x = -1`` prices would be negative.
- The inflow multiplier ``(V/F) ** inflow_sensitivity`` is at most `MAX_RESPONSE`.
- The Gordon multiple ``12 / (discount_rate - long_run_growth)`` is at most
  ``MAX_EARNINGS_MONTHS`` (a thousand years of earnings: a spread of 0.1%/year): as growth
  approaches the discount rate the formula diverges.
- A firm's return (what trend followers chase) is measured only from a valuation of at
  least ``MIN_VALUATION_USD``: from a valuation of 1e-300 dollars any rise is infinite.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from marketsim.ledger import EQUITY_MARKET
from marketsim.markets.beliefs import brock_hommes_step
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power

MAX_VALUATION_RATIO = 100.0
"""Highest valuation / fundamental value the deviation ``x`` may reach (see module doc)."""

MAX_EARNINGS_MONTHS = 12_000.0
"""Most months of smoothed earnings a fundamental value counts (see module doc)."""

MIN_VALUATION_USD = 1.0
"""Smallest valuation (USD) a return is measured from; smaller ones count as no return."""


class Investor(Sector):
    """Investment funds: valuations, strategy shares and the supply of equity."""

    name = "investor"
    doc = "Capital market: fundamentalists vs trend followers (Brock-Hommes), equity supply."
    supplies_equity: ClassVar[bool] = True
    signed_fields = Sector.signed_fields | {"earnings", "deviation_history", "momentum"}
    schema = TableSchema(
        doc=doc,
        params={
            "count": Param(
                int,
                1,
                "number of funds (they share the capital equally); 0 "
                "switches the capital market off",
                "funds",
                ge=0,
                le=1_000_000,
                source="assumption",
            ),
            "initial_cash_usd": Param(
                float,
                100e9,
                "cash of each fund at the start",
                "USD",
                ge=0,
                le=1e15,
                source="assumption",
            ),
            "inflow_usd_per_month": Param(
                float,
                5e9,
                "savers' monthly inflow into the funds when valuations equal fundamentals",
                "USD per month",
                ge=0,
                le=1e14,
                source="assumption",
            ),
            "inflow_sensitivity": Param(
                float,
                1.0,
                "elasticity of the inflow to valuation / fundamental value",
                "ratio",
                ge=0,
                le=10,
                source="assumption",
            ),
            "deploy_share": Param(
                float,
                0.1,
                "share of the funds' cash offered as new equity each month",
                "share per month",
                ge=0,
                le=1,
                source="assumption",
            ),
            "gross_return": Param(
                float,
                1.1,
                "R: gross return of the riskless asset per period of the belief dynamics",
                "ratio",
                gt=1,
                le=2,
                source="CALIBRATION.md classic results: Brock-Hommes example R = 1.1",
            ),
            "trend_coefficient": Param(
                float,
                1.2,
                "g: trend followers expect x_t = g * x_(t-1)",
                "ratio",
                ge=0,
                le=4,
                source="CALIBRATION.md classic results: Brock-Hommes example g = 1.2",
            ),
            "trend_bias": Param(
                float,
                0.0,
                "b: trend followers' optimism, added to their forecast of x",
                "share",
                ge=-1,
                le=1,
                source="assumption (0: the classic map)",
            ),
            "fundamentalist_cost": Param(
                float,
                1.0,
                "C: net per-period cost of fundamental analysis; negative when "
                "the analysis pays for itself, so fundamentalists are the majority at x = 0",
                "profit units",
                ge=-10,
                le=10,
                source="CALIBRATION.md classic results: Brock-Hommes example C = 1",
            ),
            "intensity_of_choice": Param(
                float,
                1.5,
                "beta: how strongly investors switch to the strategy that "
                "earned more (beta* = ln(R/(g-R))/C = 2.40 with the defaults)",
                "1 / profit",
                ge=0,
                le=1000,
                source="assumption: below beta* (stable fundamentals)",
            ),
            "initial_deviation": Param(
                float,
                0.1,
                "x_0: market-wide valuation / fundamental - 1 at the start",
                "share",
                ge=-0.9,
                le=10,
                source="assumption",
            ),
            "deviation_noise": Param(
                float,
                0.01,
                "standard deviation of the monthly shock to x",
                "share",
                ge=0,
                le=1,
                source="assumption",
            ),
            "discount_rate_per_year": Param(
                float,
                0.10,
                "fundamentalists' discount rate",
                "per year",
                gt=0,
                le=1,
                source="assumption",
            ),
            "long_run_growth_per_year": Param(
                float,
                0.03,
                "growth of cash flows fundamentalists assume forever",
                "per year",
                ge=0,
                lt=1,
                source="assumption",
            ),
            "earnings_smoothing": Param(
                float,
                0.1,
                "weight of the latest month in smoothed operating income and momentum",
                "share",
                gt=0,
                le=1,
                source="assumption",
            ),
            "valuation_floor": Param(
                float,
                0.5,
                "lowest valuation / fundamental value (value buyers step in)",
                "ratio",
                gt=0,
                le=1,
                source="assumption",
            ),
        },
    )

    @classmethod
    def check_params(cls, params) -> list[tuple[str, str]]:
        if params["long_run_growth_per_year"] >= params["discount_rate_per_year"]:
            return [
                (
                    "long_run_growth_per_year",
                    f"must be < discount_rate_per_year ({params['discount_rate_per_year']}), "
                    f"got {params['long_run_growth_per_year']}",
                )
            ]
        return []

    def setup(self) -> None:
        p = self.params
        firms = self.model.firms
        self.is_operating = np.array(
            [not isinstance(s, Investor) for s in self.model.firm_sectors]
        )[firms.sector_code]
        """True for firm rows that issue shares (every firm that is not a fund)."""
        self.earnings = np.zeros(firms.n)
        self.fundamental = np.zeros(firms.n)
        self.valuation = np.zeros(firms.n)
        self.deviation_history = np.full(3, p["initial_deviation"])
        """x_(t-1), x_(t-2), x_(t-3): the market-wide deviation, latest first."""
        self.trend_share = 0.5
        self.last_valuation = np.zeros(firms.n)
        self.momentum = np.zeros(firms.n)
        """Smoothed monthly return of each firm's market value, what trend followers chase."""
        self.ratio = 1.0 + p["initial_deviation"]

    def allocate(self, step: int) -> None:
        """Update beliefs and valuations from last step's books; offer equity for this step."""
        p = self.params
        model = self.model
        firms = model.firms
        deviation, self.trend_share = brock_hommes_step(
            self.deviation_history[0],
            self.deviation_history[1],
            self.deviation_history[2],
            p["gross_return"],
            p["trend_coefficient"],
            p["trend_bias"],
            p["fundamentalist_cost"],
            p["intensity_of_choice"],
            p["deviation_noise"] * self.rng.standard_normal(),
        )
        deviation = min(max(deviation, -1.0), MAX_VALUATION_RATIO - 1.0)
        self.deviation_history = np.array([deviation, *self.deviation_history[:2]])
        self.ratio = max(p["valuation_floor"], 1.0 + deviation)

        weight = p["earnings_smoothing"]
        self.earnings = weight * self._net_income_now() + (1.0 - weight) * self.earnings
        spread = p["discount_rate_per_year"] - p["long_run_growth_per_year"]
        multiple = min(12.0 / spread, MAX_EARNINGS_MONTHS)  # spread > 0: check_params
        value = firms.cash - firms.debt + multiple * self.earnings
        alive = firms.alive & self.is_operating
        self.fundamental = np.where(alive, np.maximum(value, 0.0), 0.0)
        self.valuation = self.fundamental * self.ratio

        inflow = p["inflow_usd_per_month"] * bounded_power(
            self.ratio, p["inflow_sensitivity"], MAX_RESPONSE
        )
        self._receive(np.full(self.count, inflow / self.count), "savers")
        budget = max(0.0, float(self.cash.sum())) * p["deploy_share"]
        # fundamentalists fund firms in proportion to their value; trend followers chase
        # momentum: market value times its smoothed monthly return
        returns = (
            np.divide(
                self.valuation,
                self.last_valuation,
                out=np.ones(firms.n),
                where=self.last_valuation >= MIN_VALUATION_USD,
            )
            - 1.0
        )
        self.momentum = weight * returns + (1.0 - weight) * self.momentum
        self.last_valuation = self.valuation
        momentum = self.valuation * np.maximum(self.momentum, 0.0)
        model.equity_offer = budget * (
            (1.0 - self.trend_share) * _shares(self.valuation)
            + self.trend_share * _shares(momentum)
        )

    def _net_income_now(self) -> np.ndarray:
        """Last step's operating income per firm (USD): revenue - cost of goods - opex."""
        firms = self.model.firms
        return firms.revenue - firms.cost_of_goods - firms.opex

    def _receive(self, amounts: np.ndarray, source: str) -> None:
        ledger = self.model.ledger
        ledger.transfer(
            ledger.asset("cash"),
            ledger.account(source),
            self.accounts,
            amounts,
            ledger.flows.INVESTMENT,
        )

    def buy_shares(self, amounts: np.ndarray) -> None:
        """Pay ``amounts`` (USD per firm) for new shares, equally from every fund."""
        self._through_exchange(amounts, to_firms=True, flow=self.model.ledger.flows.EQUITY)
        self.model.firms.equity_raised += amounts

    def receive_dividends(self, amounts: np.ndarray) -> None:
        """Collect ``amounts`` (USD per firm) of dividends, shared equally by the funds."""
        self._through_exchange(amounts, to_firms=False, flow=self.model.ledger.flows.DIVIDEND)

    def _through_exchange(self, amounts: np.ndarray, to_firms: bool, flow: int) -> None:
        """Move cash between the funds (equal parts) and the firms via the equity market."""
        ledger = self.model.ledger
        exchange = ledger.account(EQUITY_MARKET)
        cash = ledger.asset("cash")
        total = float(amounts.sum())
        funds_leg = (self.accounts, np.full(self.count, total / self.count))
        firms_leg = (np.arange(len(amounts)), amounts)
        first, second = (funds_leg, firms_leg) if to_firms else (firms_leg, funds_leg)
        ledger.transfer(cash, first[0], exchange, first[1], flow)
        ledger.transfer(cash, exchange, second[0], second[1], flow)
        ledger.sweep_rounding(exchange, total)

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "trend_follower_share": np.full(self.count, self.trend_share),
            "valuation_to_fundamental": np.full(self.count, self.ratio),
        }


def _shares(weights: np.ndarray) -> np.ndarray:
    """``weights`` normalised to sum to one (zeros if they sum to zero)."""
    total = weights.sum()
    return weights / total if total > 0 else np.zeros_like(weights)
