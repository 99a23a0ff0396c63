"""Financing and failure: interest, tax, funding gaps, defaults. Vectorised over all firms.

At the end of every step each firm pays interest on its debt and repays a slice of the principal,
pays tax on positive pre-tax profit, pays a share of positive net income to its shareholders, uses
cash above a buffer of a few months' costs to repay debt early, and covers any negative cash first
with new equity (if the capital market offers it) and then with debt up to a leverage limit. A firm
still short of cash defaults: it exits, lenders absorb its negative cash and its debt, its equity is
written off, and its capacity is scrapped. Write-offs show in the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import bounded_power

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

EBITDA_SMOOTHING = 0.2
"""Weight of the latest month in the EBITDA lenders look at."""

FINANCE_TABLE = TableSchema(
    doc="Economy-wide terms of finance for every firm.",
    params={
        "interest_rate_per_year": Param(
            float, 0.06, "interest rate on debt", "per year", ge=0, le=1, source="assumption"
        ),
        "max_debt_to_assets": Param(
            float,
            0.6,
            "most a firm may borrow, as a share of its assets: cash plus net PP&E valued at "
            "market (see collateral_sensitivity)",
            "share",
            ge=0,
            le=5,
            source="assumption",
        ),
        "planning_credit_share": Param(
            float,
            0.5,
            "share of unused credit a firm commits to capex plans (the rest is its "
            "liquidity reserve)",
            "share",
            ge=0,
            le=1,
            source="assumption",
        ),
        "collateral_sensitivity": Param(
            float,
            0.5,
            "elasticity of the lending value of net PP&E to the market's "
            "valuation / fundamental value",
            "ratio",
            ge=0,
            le=10,
            source="assumption",
        ),
        "debt_term_months": Param(
            int,
            60,
            "debt is repaid in equal slices over this term",
            "months",
            ge=1,
            le=1200,
            source="assumption",
        ),
        "payout_ratio": Param(
            float,
            0.5,
            "share of positive net income paid to shareholders each month",
            "share",
            ge=0,
            le=1,
            source="assumption",
        ),
        "cash_buffer_months": Param(
            float,
            3.0,
            "months of costs a firm keeps in cash; cash above it repays debt",
            "months",
            ge=0,
            le=120,
            source="assumption",
        ),
        "tax_rate": Param(
            float,
            0.21,
            "tax on positive pre-tax profit",
            "share",
            ge=0,
            lt=1,
            source="assumption (US federal corporate rate)",
        ),
    },
)


def debt_room(model: SupplyChainModel) -> np.ndarray:
    """How much more each firm may borrow (USD).

    Lenders lend up to the lower of two limits: ``max_debt_to_assets`` of cash plus net
    PP&E valued at market (book value times ``(V/F) ** collateral_sensitivity``, so
    collateral swells in a boom and shrinks when valuations fall: the financial accelerator),
    and its sector's ``max_debt_to_ebitda`` years of the firm's smoothed EBITDA (no cash
    flow, no loan). The collateral multiplier is at most
    `marketsim.sectors.base.MAX_RESPONSE`.
    """
    firms = model.firms
    params = model.experiment["finance"]
    collateral = bounded_power(model.valuation_ratio, params["collateral_sensitivity"])
    assets = np.maximum(firms.cash, 0.0) + firms.book_value * collateral
    by_assets = params["max_debt_to_assets"] * assets
    by_earnings = model.max_debt_to_ebitda * 12.0 * np.maximum(firms.ebitda_smoothed, 0.0)
    return np.maximum(0.0, np.minimum(by_assets, by_earnings) - firms.debt)


def funding_headroom(model: SupplyChainModel) -> np.ndarray:
    """What a firm may commit to new capex beyond its cash (USD).

    The capital market's equity offer plus ``planning_credit_share`` of its debt room: the
    rest of the credit line is kept as a liquidity reserve for bad months.
    """
    share = model.experiment["finance"]["planning_credit_share"]
    return np.where(model.firms.alive, share * debt_room(model) + model.equity_offer, 0.0)


def capex_budget(model: SupplyChainModel, rows: slice) -> np.ndarray:
    """What each firm in ``rows`` can commit to capex now (USD).

    Cash plus funding headroom (equity offered and the planned share of the credit line),
    less a buffer of ``cash_buffer_months`` times the cash costs booked so far this month. (At
    the start of a month, when orders are placed, little is booked yet, so the buffer is
    small then: a known simplification. Using last month's costs instead starves data
    centers' buildings in the baseline and strands their accelerators; see docs/model.md.)
    """
    firms = model.firms
    params = model.experiment["finance"]
    reserve = params["cash_buffer_months"] * firms.monthly_costs_so_far()[rows]
    budget = firms.cash[rows] + funding_headroom(model)[rows] - reserve
    return np.where(firms.alive[rows], np.maximum(0.0, budget), 0.0)


def affordable_share(budget: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Share of ``spend`` (USD) that ``budget`` (USD) covers, in [0, 1].

    Divides only where the budget falls short (the quotient is then below one), so a tiny
    spend against a large budget never overflows.
    """
    short = (spend > 0) & (spend > budget)
    share = np.divide(budget, spend, out=np.ones(np.shape(spend)), where=short)
    return np.clip(share, 0.0, 1.0)


def close_books(model: SupplyChainModel) -> None:
    """Interest, repayment, tax, funding of cash gaps and defaults for every firm."""
    firms = model.firms
    ledger = model.ledger
    flows = ledger.flows
    params = model.experiment["finance"]
    cash_asset = ledger.asset("cash")
    accounts = np.arange(firms.n)
    lenders = ledger.account("lenders")
    alive = firms.alive

    interest = np.where(alive, firms.debt * params["interest_rate_per_year"] / 12.0, 0.0)
    ledger.transfer(cash_asset, accounts, lenders, interest, flows.INTEREST)

    due = firms.debt / params["debt_term_months"]
    repaid = np.where(alive, np.clip(np.minimum(due, firms.cash), 0.0, None), 0.0)
    ledger.transfer(cash_asset, accounts, lenders, repaid, flows.DEBT_REPAY)
    firms.debt -= repaid

    pre_tax = firms.operating_income_so_far()
    tax = np.where(alive, params["tax_rate"] * np.maximum(pre_tax, 0.0), 0.0)
    ledger.transfer(cash_asset, accounts, ledger.account("taxes"), tax, flows.TAX)

    net_income = pre_tax - tax
    dividends = np.where(alive, params["payout_ratio"] * np.maximum(net_income, 0.0), 0.0)
    dividends = np.minimum(dividends, np.maximum(firms.cash, 0.0))
    model.pay_dividends(dividends)

    costs = firms.monthly_costs_so_far()
    excess = np.maximum(0.0, firms.cash - params["cash_buffer_months"] * costs)
    prepaid = np.where(alive, np.minimum(excess, firms.debt), 0.0)
    ledger.transfer(cash_asset, accounts, lenders, prepaid, flows.DEBT_REPAY)
    firms.debt -= prepaid

    gap = np.where(alive, np.maximum(0.0, -firms.cash), 0.0)
    equity = np.minimum(gap, model.equity_offer)
    model.issue_equity(equity)
    gap -= equity
    borrowed = np.minimum(gap, debt_room(model))
    ledger.transfer(cash_asset, lenders, accounts, borrowed, flows.DEBT_DRAW)
    firms.debt += borrowed

    scale = 1.0 + ledger.turnover[cash_asset, : firms.n]
    defaulted = alive & (firms.cash < -1e-9 * scale)
    if defaulted.any():
        default(model, defaulted)
    firms.close_income_statement()
    ebitda = firms.revenue - (firms.cost_of_goods - firms.depreciation) - firms.opex
    firms.ebitda_smoothed = np.where(
        firms.alive,
        EBITDA_SMOOTHING * ebitda + (1 - EBITDA_SMOOTHING) * firms.ebitda_smoothed,
        0.0,
    )


def default(model: SupplyChainModel, defaulted: np.ndarray) -> None:
    """Exit the ``defaulted`` firms: lenders absorb their losses, equity is written off."""
    firms = model.firms
    ledger = model.ledger
    shortfall = np.where(defaulted, np.maximum(0.0, -firms.cash), 0.0)
    ledger.transfer(
        ledger.asset("cash"),
        ledger.account("lenders"),
        np.arange(firms.n),
        shortfall,
        ledger.flows.WRITE_OFF,
    )
    firms.written_off += np.where(defaulted, firms.debt + shortfall + firms.equity_raised, 0.0)
    firms.debt[defaulted] = 0.0
    firms.alive[defaulted] = False
    firms.defaulted_step[defaulted] = model.step_index
    for sector in model.firm_sectors:
        mask = defaulted[sector.rows]
        if mask.any():
            sector.on_default(mask)
    firms.book_value[defaulted] = 0.0
