"""Investors: the capital market that values firms and supplies equity (the bubble engine).

**Fundamentalists** value each firm from its observed cash flows and their growth:
    F_i = max(0, cash_i - debt_i + 12 * E_i * M(g_i))
with E_i the firm's smoothed monthly operating income (revenue - cost of goods, which
includes depreciation, - opex), g_i the observed growth of its smoothed *revenue* over the
last twelve months (bounded to [-50%, max_growth_per_year]) and M the two-stage multiple:
g_i for ``growth_horizon_years``, then ``long_run_growth_per_year`` forever, discounted at
``discount_rate_per_year`` (losses are not extrapolated: M at long-run growth). Growth is
read from sales, as in a discounted-cash-flow model (sales growth times a margin), not from
earnings: a margin that widens while sales stand still (a firm whose input got cheaper) is a
one-off gain in E_i, not growth to extrapolate for years. Operating income is after
depreciation and F nets debt, so a build-out that does not pay back lowers F twice: the
capex leaves cash (or adds debt) at once, and the new capacity's depreciation eats the
earnings it was to add.

**Prices per sector** follow the Brock–Hommes (1998) heterogeneous-beliefs map
(`sector_beliefs_step`), one market per firm sector s, ``x_s`` = its valuation /
fundamental - 1:
    R * x_s,t = n_s,t * (g * x_s,t-1 + b_s,t) + shock_s,t
Fundamentalists (net cost ``C``) expect x to return to 0; trend followers extrapolate x and
the sector's *realised* excess return on fundamental equity: ``b_s,t = trend_bias + h * m_s``
with ``m_s`` the smoothed fundamental news below and ``h = return_extrapolation_months``
(the price change relative to fundamentals enters through ``g * x`` itself). Strategy
fitness is BH's realised profit, scored on the realised excess return
``x_s,t-1 - R x_s,t-2 + delta_s,t-1`` where ``delta`` (BH's dividend noise) is the sector's
fundamental news: the change in its firms' fundamental values ``F_i`` plus dividends less
new equity and the required return, per dollar of fundamental value (at least
``NEWS_BASE_SHARE`` of gross fundamental capital). ``F_i`` is floored at zero per firm
(limited liability): while a firm's debt exceeds its cash plus enterprise value, gains go
to its creditors and are no news to its shareholders.
Shares follow a logit with intensity of choice beta, so at ``delta = 0`` and ``h = 0``
this is the classic map and ``beta* = ln(R / (g - R)) / C`` still separates stable
fundamentals from bubbles. Each firm is valued at ``V_i = F_i * ratio_s`` with
``ratio_s = max(valuation_floor, 1 + x_s)`` (`ratio`, one value per firm row: collateral
and Tobin's q read it).

**Money.** Savers pay ``inflow_usd_per_month * (1 + inflow_sensitivity * e)`` into the
funds each month, ``e`` the funds' smoothed annualised excess return (performance chasing;
a negative amount is a redemption, at most the funds' cash). Funds' assets are their cash
plus the market value of the equity they hold (all firms' V). Cash above
``cash_target_share`` of assets is paid out to savers (at the start of the month and again
when dividends arrive). Each month the funds offer
``deploy_share * cash * min(1, (V/F) ** equity_valuation_sensitivity)`` (V/F of the whole
market) as new equity: the fundamentalists' share split over firms by valuation, the trend
followers' share by valuation times the sector's positive momentum. A firm draws on its
offer only to cover a cash shortfall; without an offer it must borrow or default.

Bounds that keep every value finite over the whole valid range (none binds in the shipped
scenarios):
- ``x`` stays within ``[-1, MAX_VALUATION_RATIO - 1]``; the bias within ``[-1, 1]``.
- The news and every realised return are clipped to ``[-1, MAX_MONTHLY_RETURN]``.
- The earnings multiple is at most ``MAX_EARNINGS_MONTHS`` (a thousand years of earnings).
- A sector's news and the funds' return are measured only from a base of at least
  ``MIN_VALUATION_USD``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from marketsim.ledger import EQUITY_MARKET
from marketsim.markets.beliefs import sector_beliefs_step
from marketsim.metrics import MetricSpec
from marketsim.metrics import by_sector
from marketsim.plugins import hookimpl
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient

MAX_VALUATION_RATIO = 100.0
"""Highest valuation / fundamental value the deviation ``x`` may reach (see module doc)."""

MAX_EARNINGS_MONTHS = 12_000.0
"""Most months of smoothed earnings a fundamental value counts (see module doc)."""

MIN_VALUATION_USD = 1.0
"""Smallest base (USD) a return is measured from; smaller ones count as no return."""

MIN_GROWTH_PER_YEAR = -0.5
"""Lowest observed revenue growth fundamentalists extrapolate (per year)."""

MAX_MONTHLY_RETURN = 10.0
"""Highest realised monthly return (or news) the investors count (a 1,000% month)."""

NEWS_BASE_SHARE = 0.1
"""A sector's news is measured per dollar of fundamental equity, but never per less than this
share of its gross fundamental capital (enterprise value + debt + cash)."""

GROWTH_WINDOW_MONTHS = 12
"""Revenue growth is observed over this many months."""


class Investor(Sector):
    """Investment funds: valuations, strategy shares and the supply of equity."""

    name = "investor"
    doc = (
        "Capital market: fundamentalists vs trend followers (Brock-Hommes) per sector, "
        "equity supply, savers' flows."
    )
    supplies_equity: ClassVar[bool] = True
    signed_fields = Sector.signed_fields | {
        "earnings",
        "sales",
        "sales_history",
        "sales_growth",
        "deviation_history",
        "trend_bias_now",
        "trend_bias_last",
        "news",
        "momentum",
        "equity_value",
        "fund_momentum",
    }
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
                "savers' monthly inflow into the funds when the funds earn their required "
                "return (discount_rate_per_year)",
                "USD per month",
                ge=0,
                le=1e14,
                source="assumption",
            ),
            "inflow_sensitivity": Param(
                float,
                1.0,
                "performance chasing: the inflow changes by this many times the funds' "
                "smoothed annualised excess return (below -1 / sensitivity savers redeem)",
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
                source="docs/calibration.md: classic results: Brock-Hommes example R = 1.1",
            ),
            "trend_coefficient": Param(
                float,
                1.2,
                "g: trend followers expect x_t = g * x_(t-1)",
                "ratio",
                ge=0,
                le=4,
                source="docs/calibration.md: classic results: Brock-Hommes example g = 1.2",
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
                source="docs/calibration.md: classic results: Brock-Hommes example C = 1",
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
                "x_0: every sector's valuation / fundamental - 1 at the start",
                "share",
                ge=-0.9,
                le=10,
                source="assumption",
            ),
            "deviation_noise": Param(
                float,
                0.01,
                "standard deviation of the monthly shock to each sector's x",
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
            "growth_horizon_years": Param(
                float,
                5.0,
                "years over which fundamentalists extrapolate a firm's observed revenue "
                "growth before it fades to long_run_growth_per_year",
                "years",
                ge=0,
                le=50,
                source="assumption",
            ),
            "max_growth_per_year": Param(
                float,
                0.5,
                "highest observed revenue growth fundamentalists extrapolate (decline is "
                "bounded at -50% a year)",
                "per year",
                ge=0,
                le=2,
                source="assumption",
            ),
            "return_extrapolation_months": Param(
                float,
                0.5,
                "months of their sector's smoothed fundamental news (realised excess return "
                "on fundamental equity: change in fundamental value plus dividends) trend "
                "followers add to their forecast of x",
                "months",
                ge=0,
                le=120,
                source="assumption",
            ),
            "equity_valuation_sensitivity": Param(
                float,
                1.0,
                "elasticity of the funds' equity offer to the market's valuation / "
                "fundamental value (funds deploy more cash when shares are dear)",
                "ratio",
                ge=0,
                le=10,
                source="assumption",
            ),
            "cash_target_share": Param(
                float,
                0.05,
                "share of their assets (cash plus the market value of the equity they hold) "
                "funds keep in cash; cash above it is paid out to savers each month",
                "share",
                ge=0,
                le=1,
                source="assumption",
            ),
            "earnings_smoothing": Param(
                float,
                0.1,
                "weight of the latest month in smoothed operating income and in smoothed "
                "realised returns",
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
        model = self.model
        firms = model.firms
        n_sectors = len(model.firm_sectors)
        self.operating_sectors = np.array([not isinstance(s, Investor) for s in model.firm_sectors])
        """True for firm sectors whose firms issue shares (every sector that is not a fund)."""
        self.is_operating = self.operating_sectors[firms.sector_code]
        """True for firm rows that issue shares (every firm that is not a fund)."""
        self.earnings = np.zeros(firms.n)
        """Smoothed monthly operating income of each firm (USD per month)."""
        self.sales = np.zeros(firms.n)
        """Smoothed monthly revenue of each firm (USD per month)."""
        self.sales_history = np.zeros((GROWTH_WINDOW_MONTHS, firms.n))
        """Smoothed revenue of the last twelve months, oldest first (USD per month)."""
        self.months_observed = 0
        self.sales_growth = np.zeros(firms.n)
        """Observed growth of smoothed revenue over twelve months, bounded (per year)."""
        self.fundamental = np.zeros(firms.n)
        self.valuation = np.zeros(firms.n)
        self.deviation_history = np.full((3, n_sectors), p["initial_deviation"])
        """x_(t-1), x_(t-2), x_(t-3) of every sector (rows), latest first (share of F)."""
        self.trend_bias_now = np.full(n_sectors, p["trend_bias"])
        self.trend_bias_last = np.full((2, n_sectors), p["trend_bias"])
        """Trend followers' bias in the forecasts made one and two months ago (share)."""
        self.sector_trend_share = np.full(n_sectors, 0.5)
        """Trend followers' share of each sector's market."""
        self.trend_share = 0.5
        """Trend followers' share of the whole market (weighted by fundamental value)."""
        self.news = np.zeros(n_sectors)
        """Each sector's fundamental news last month (share of its gross capital)."""
        self.momentum = np.zeros(n_sectors)
        """Each sector's smoothed realised monthly excess return (what trend followers chase)."""
        self.equity_value = np.zeros(n_sectors)
        """Each sector's fundamental value last month (sum of its firms' F_i, USD)."""
        self.valued_before = False
        self.gross_capital = np.zeros(n_sectors)
        self.fund_momentum = 0.0
        """Funds' smoothed realised monthly excess return on the equity they hold."""
        self.last_market_value = 0.0
        self.sector_ratio = np.full(
            n_sectors, max(p["valuation_floor"], 1 + p["initial_deviation"])
        )
        """Each sector's valuation / fundamental value (the ratio its firms are valued at)."""
        self.ratio = self.sector_ratio[firms.sector_code]
        """Each firm's valuation / fundamental value (its sector's ratio)."""
        self.equity_held = 0.0
        """Market value of the equity the funds hold: every firm's valuation (USD)."""

    def allocate(self, step: int) -> None:
        """Update fundamentals, beliefs and valuations from last step's books; offer equity."""
        p = self.params
        model = self.model
        firms = model.firms
        weight = p["earnings_smoothing"]

        self._update_earnings()
        equity_value, gross_capital = self._fundamentals()
        dividends = by_sector(model, firms.dividends)
        new_equity = by_sector(model, firms.equity_issued)
        required = p["discount_rate_per_year"] / 12.0
        if self.valued_before:
            gain = equity_value - self.equity_value + dividends - new_equity
            gain -= required * np.maximum(self.equity_value, 0.0)
            # per dollar of fundamental equity (at least NEWS_BASE_SHARE of gross capital, so
            # equity near zero does not magnify it), earned on the 1 + x the holders paid
            base = np.maximum(
                np.maximum(self.equity_value, 0.0), NEWS_BASE_SHARE * self.gross_capital
            )
            news = np.divide(gain, base, out=np.zeros_like(gain), where=base >= MIN_VALUATION_USD)
            self.news = np.clip(news, -1.0, MAX_MONTHLY_RETURN)
        self.equity_value, self.gross_capital = equity_value, gross_capital
        self.valued_before = True

        x1, x2, x3 = self.deviation_history
        deviation, self.sector_trend_share = sector_beliefs_step(
            x1,
            x2,
            x3,
            self.news,
            p["gross_return"],
            p["trend_coefficient"],
            self.trend_bias_now,
            self.trend_bias_last[1],
            p["fundamentalist_cost"],
            p["intensity_of_choice"],
            p["deviation_noise"] * self.rng.standard_normal(len(x1)),
        )
        deviation = np.clip(deviation, -1.0, MAX_VALUATION_RATIO - 1.0)
        self.momentum = weight * self.news + (1.0 - weight) * self.momentum
        self.deviation_history = np.stack([deviation, x1, x2])
        self.trend_bias_last = np.stack([self.trend_bias_now, self.trend_bias_last[0]])
        self.trend_bias_now = np.clip(
            p["trend_bias"] + p["return_extrapolation_months"] * self.momentum, -1.0, 1.0
        )
        self.sector_ratio = np.maximum(p["valuation_floor"], 1.0 + deviation)
        self.ratio = self.sector_ratio[firms.sector_code]
        self.valuation = self.fundamental * self.ratio
        fundamental_by_sector = by_sector(model, self.fundamental)
        weights = np.where(self.operating_sectors, fundamental_by_sector, 0.0)
        if weights.sum() <= 0:
            weights = self.operating_sectors.astype(float)
        self.trend_share = float(np.average(self.sector_trend_share, weights=weights))

        self._savers_flows(dividends.sum(), new_equity.sum())
        self._publish()
        self._offer_equity()

    def _publish(self) -> None:
        """Publish valuations as the equity market's data (``model.equity``)."""
        equity = self.model.equity
        equity.valuation_ratio = self.ratio.copy()
        equity.valuation = self.valuation.copy()
        equity.fundamental = self.fundamental.copy()
        equity.cost_of_capital_per_year = float(self.params["discount_rate_per_year"])
        equity.trend_follower_share = float(self.trend_share)
        equity.active = True

    def _update_earnings(self) -> None:
        """Smoothed operating income and revenue, and revenue's observed twelve-month growth,
        per firm."""
        p = self.params
        firms = self.model.firms
        income = firms.revenue - firms.cost_of_goods - firms.opex
        if self.model.step_index == 0:
            return  # no books yet
        weight = p["earnings_smoothing"]
        first = self.months_observed == 0
        self.earnings = income if first else weight * income + (1.0 - weight) * self.earnings
        self.earnings = np.where(firms.alive, self.earnings, 0.0)
        sales = firms.revenue if first else weight * firms.revenue + (1.0 - weight) * self.sales
        self.sales = np.where(firms.alive, sales, 0.0)
        self.months_observed += 1
        base = self.sales_history[0]
        if self.months_observed > GROWTH_WINDOW_MONTHS:
            change = self.sales - base
            scale = np.abs(base)
            growth = np.divide(
                change, scale, out=np.sign(change) * 1.0, where=scale >= MIN_VALUATION_USD
            )
            self.sales_growth = np.clip(growth, MIN_GROWTH_PER_YEAR, p["max_growth_per_year"])
        self.sales_history = np.vstack([self.sales_history[1:], self.sales[None, :]])
        if first:
            self.sales_history[:] = self.sales

    def _fundamentals(self) -> tuple[np.ndarray, np.ndarray]:
        """Set each firm's fundamental value; return each sector's fundamental value (sum of
        F_i: shareholders' claims, floored at zero per firm) and gross fundamental capital
        (USD)."""
        p = self.params
        model = self.model
        firms = model.firms
        growth = np.where(self.earnings > 0.0, self.sales_growth, 0.0)
        multiple = 12.0 * earnings_multiple_years(
            growth,
            p["discount_rate_per_year"],
            p["long_run_growth_per_year"],
            p["growth_horizon_years"],
        )
        enterprise = np.minimum(multiple, MAX_EARNINGS_MONTHS) * self.earnings
        alive = firms.alive & self.is_operating
        equity = np.where(alive, firms.cash - firms.debt + enterprise, 0.0)
        self.fundamental = np.maximum(equity, 0.0)
        capital = np.abs(enterprise) + firms.debt + np.maximum(firms.cash, 0.0)
        return by_sector(model, self.fundamental), by_sector(model, np.where(alive, capital, 0.0))

    def _savers_flows(self, dividends: float, new_equity: float) -> None:
        """Performance-chasing savers' flows, and payout of cash above the target share."""
        p = self.params
        market_value = float(self.valuation.sum())
        if self.last_market_value >= MIN_VALUATION_USD:
            fund_return = (market_value + dividends - new_equity) / self.last_market_value - 1.0
            excess = min(max(fund_return - p["discount_rate_per_year"] / 12.0, -1.0), 10.0)
            weight = p["earnings_smoothing"]
            self.fund_momentum = weight * excess + (1.0 - weight) * self.fund_momentum
        self.last_market_value = market_value
        self.equity_held = market_value
        flow = p["inflow_usd_per_month"] * (
            1.0 + p["inflow_sensitivity"] * 12.0 * self.fund_momentum
        )
        cash = np.maximum(self.cash, 0.0)
        if flow >= 0:
            self._move(np.full(self.count, flow / self.count), "savers", to_funds=True)
        else:
            self._move(np.minimum(cash, -flow / self.count), "savers", to_funds=False)
        self._pay_out_excess_cash()

    def _pay_out_excess_cash(self) -> None:
        """Pay savers the funds' cash above ``cash_target_share`` of their assets."""
        target_share = self.params["cash_target_share"]
        if target_share >= 1.0:
            return  # funds may hold all their assets in cash
        cash = np.maximum(self.cash, 0.0)
        # the cash c that is target_share of (c + market value) once the rest is paid out
        target_cash = target_share * self.equity_held / (1.0 - target_share)
        excess_cash = float(cash.sum()) - target_cash
        if excess_cash > 0:
            self._move(excess_cash * cash / cash.sum(), "savers", to_funds=False)

    def _offer_equity(self) -> None:
        """This step's equity offer per firm (``model.equity.offer``, USD)."""
        p = self.params
        model = self.model
        total_fundamental = self.fundamental.sum()
        market_ratio = self.valuation.sum() / total_fundamental if total_fundamental > 0 else 1.0
        appetite = min(1.0, bounded_power(market_ratio, p["equity_valuation_sensitivity"]))
        budget = max(0.0, float(self.cash.sum())) * p["deploy_share"] * appetite
        chasing = self.valuation * np.maximum(self.momentum, 0.0)[model.firms.sector_code]
        model.equity.offer = budget * (
            (1.0 - self.trend_share) * _shares(self.valuation) + self.trend_share * _shares(chasing)
        )

    def _move(self, amounts: np.ndarray, source: str, to_funds: bool) -> None:
        """Move ``amounts`` (USD per fund) between the outside account ``source`` and the funds."""
        ledger = self.model.ledger
        outside = ledger.account(source)
        payer, payee = (outside, self.accounts) if to_funds else (self.accounts, outside)
        ledger.transfer(ledger.asset("cash"), payer, payee, amounts, ledger.flows.INVESTMENT)

    def buy_shares(self, amounts: np.ndarray) -> None:
        """Pay ``amounts`` (USD per firm) for new shares, equally from every fund."""
        self._through_exchange(amounts, to_firms=True, flow=self.model.ledger.flows.EQUITY)
        self.model.firms.equity_raised += amounts

    def receive_dividends(self, amounts: np.ndarray) -> None:
        """Collect ``amounts`` (USD per firm) of dividends, shared equally by the funds, and
        pass what takes their cash above ``cash_target_share`` of their assets to savers."""
        self._through_exchange(amounts, to_firms=False, flow=self.model.ledger.flows.DIVIDEND)
        self._pay_out_excess_cash()  # dividends above the cash target go on to savers

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
            "valuation_to_fundamental": np.full(self.count, self._market_ratio()),
        }

    def _market_ratio(self) -> float:
        """Valuation / fundamental value of the whole market (1 when nothing has value)."""
        total = self.fundamental.sum()
        return float(self.valuation.sum() / total) if total > 0 else 1.0

    def cash_share(self) -> float:
        """Funds' cash / (cash + market value of the equity they hold); 0 with no assets."""
        cash = max(0.0, float(self.cash.sum()))
        assets = cash + float(self.valuation.sum())
        return cash / assets if assets > 0 else 0.0


def earnings_multiple_years(growth, discount: float, long_run: float, horizon: float):
    """Value of one year of earnings growing at ``growth`` for ``horizon`` years, then at
    ``long_run`` forever, discounted at ``discount`` (all per year; years of earnings).

    ``sum_(k=1..H) q**k + q**H * (1 + long_run) / (discount - long_run)`` with
    ``q = (1 + growth) / (1 + discount)``; at ``q = 1`` the first sum is ``H``. At most
    ``MAX_EARNINGS_MONTHS / 12`` years.
    """
    q = (1.0 + np.asarray(growth, dtype=float)) / (1.0 + discount)
    grown = q**horizon
    gap = 1.0 - q
    near_one = np.abs(gap) < 1e-9
    stage = np.where(
        near_one, horizon, np.divide(q * (1.0 - grown), gap, out=np.zeros_like(q), where=~near_one)
    )
    most = MAX_EARNINGS_MONTHS / 12.0  # as long_run nears discount the perpetuity diverges
    terminal = capped_quotient(1.0 + long_run, discount - long_run, most)
    return np.minimum(stage + grown * terminal, most)


def _shares(weights: np.ndarray) -> np.ndarray:
    """``weights`` normalised to sum to one (zeros if they sum to zero)."""
    total = weights.sum()
    return weights / total if total > 0 else np.zeros_like(weights)


def _capital_market(model) -> Investor | None:
    """The model's funds: its investor sector (found by type, so a plugin's subclass counts),
    None when it has none or it has no funds."""
    return next((s for s in model.firm_sectors if isinstance(s, Investor) and s.count > 0), None)


@hookimpl
def marketsim_value_firms(model, step):
    """The built-in capital market: the investor sector values firms and offers equity."""
    funds = _capital_market(model)
    if funds is not None:
        funds.allocate(step)


@hookimpl
def marketsim_buy_new_shares(model, amounts):
    """The funds pay for new shares (equally from every fund)."""
    funds = _capital_market(model)
    if funds is None:
        return None
    funds.buy_shares(amounts)
    return True


@hookimpl
def marketsim_receive_dividends(model, amounts):
    """The funds collect dividends and pass cash above their target on to savers."""
    funds = _capital_market(model)
    if funds is None:
        return None
    funds.receive_dividends(amounts)
    return True


def _per_operating_sector(attribute: str):
    """A sectors-table metric: the capital market's per-sector ``attribute``, null for the
    funds' own sector and without a capital market."""

    def compute(model) -> np.ndarray:
        market = _capital_market(model)
        if market is None:
            return np.full(len(model.firm_sectors), np.nan)
        operating = np.array([not isinstance(s, Investor) for s in model.firm_sectors])
        return np.where(operating, getattr(market, attribute), np.nan)

    return compute


def _investor_cash_share(model) -> float:
    market = _capital_market(model)
    return market.cash_share() if market is not None else np.nan


CAPITAL_MARKET_METRICS = [
    MetricSpec(
        "sectors",
        "valuation_to_fundamental",
        _per_operating_sector("sector_ratio"),
        "ratio",
        "valuation / fundamental value at which the capital market prices the sector's "
        "firms (1 + x_s; Tobin's q for data-center plans); null for the investor sector and "
        "without a capital market",
    ),
    MetricSpec(
        "sectors",
        "trend_follower_share",
        _per_operating_sector("sector_trend_share"),
        "share",
        "share of the sector's investors following trends (Brock-Hommes logit); null for "
        "the investor sector and without a capital market",
    ),
    MetricSpec(
        "chain",
        "investor_cash_share",
        _investor_cash_share,
        "share",
        "funds' cash / (cash + market value of the equity they hold); null without a "
        "capital market",
    ),
]
"""Result columns of the capital market (registered in `marketsim.builtin`)."""
