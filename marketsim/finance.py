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

from marketsim.credit import CREDIT_PARAMS
from marketsim.credit import credit_limit
from marketsim.credit import credit_spread
from marketsim.credit import lenders_of
from marketsim.credit import market_multiple
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import capped_quotient

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

EBITDA_SMOOTHING = 0.2
"""Weight of the latest month in the EBITDA lenders look at."""

FINANCE_TABLE = TableSchema(
    doc="Economy-wide terms of finance for every firm.",
    params={
        "interest_rate_per_year": Param(
            float,
            0.06,
            "risk-free interest rate: each firm pays it plus its credit spread",
            "per year",
            ge=0,
            le=1,
            source="assumption",
        ),
        "max_debt_to_assets": Param(
            float,
            0.6,
            "leverage at which, in calm times and with ample interest cover, lenders stop "
            "lending: debt as a share of cash plus net PP&E as lenders appraise it (see "
            "collateral_sensitivity, appraisal_months)",
            "share",
            ge=0,
            le=5,
            source="assumption",
        ),
        "planning_credit_share": Param(
            float,
            0.75,
            "share of its borrowing limit a firm lets its debt reach to fund capex plans (the "
            "rest of the limit is its reserve for bad months)",
            "share",
            ge=0,
            le=1,
            source="assumption (a covenant headroom of about 25-35% at origination is common in "
            "leveraged loans)",
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
            "debt matures in equal slices over this term; lenders roll a slice over when the "
            "firm is within its credit limit, else it is repaid from cash",
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
            "months of cash costs and capex a firm keeps in cash; cash above it repays debt, "
            "then goes to shareholders",
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
        **CREDIT_PARAMS,
    },
)


def collateral_value(model: SupplyChainModel) -> np.ndarray:
    """What lenders lend against (USD): cash plus net PP&E as they appraise it.

    Book value times the lenders' appraisal multiple (`marketsim.credit.Lenders`): the
    market's ``(V/F) ** collateral_sensitivity`` smoothed over ``appraisal_months``, so
    collateral swells in a boom and shrinks when valuations fall (the financial
    accelerator), with the lag of lenders' appraisals.
    """
    firms = model.firms
    multiple = lenders_of(model).collateral_multiple
    return np.maximum(firms.cash, 0.0) + firms.book_value * multiple


def interest_rate(model: SupplyChainModel) -> np.ndarray:
    """Each firm's interest rate (per year): risk-free plus its credit spread."""
    return model.experiment["finance"]["interest_rate_per_year"] + model.firms.credit_spread


def borrowing_limit(model: SupplyChainModel) -> np.ndarray:
    """The most lenders let each firm owe now (USD; `marketsim.credit.credit_limit`)."""
    firms = model.firms
    return np.where(
        firms.alive,
        credit_limit(
            collateral_value(model),
            firms.ebitda_smoothed,
            interest_rate(model),
            lenders_of(model).caution,
            model.max_debt_to_ebitda,
            model.experiment["finance"],
        ),
        0.0,
    )


def debt_room(model: SupplyChainModel) -> np.ndarray:
    """How much more each firm may borrow (USD): its borrowing limit less its debt.

    The limit is the debt lenders would price at their ceiling spread
    (`marketsim.credit.credit_limit`): it shrinks with thin collateral, thin interest cover
    and lenders' caution.
    """
    return np.maximum(0.0, borrowing_limit(model) - model.firms.debt)


def funding_headroom(model: SupplyChainModel) -> np.ndarray:
    """What a firm may commit to new capex beyond its cash (USD).

    The capital market's equity offer plus the credit it may draw while its debt stays
    within ``planning_credit_share`` of its borrowing limit: the rest of the limit is kept as
    a reserve for bad months, when lenders' terms tighten or cash runs short.
    """
    firms = model.firms
    share = model.experiment["finance"]["planning_credit_share"]
    credit = np.maximum(0.0, share * borrowing_limit(model) - firms.debt)
    return np.where(firms.alive, credit + model.equity.offer, 0.0)


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
    """Interest, refinancing, tax, payouts, funding of cash gaps and defaults for every firm."""
    firms = model.firms
    ledger = model.ledger
    flows = ledger.flows
    params = model.experiment["finance"]
    cash_asset = ledger.asset("cash")
    accounts = np.arange(firms.n)
    lenders = ledger.account("lenders")
    book = lenders_of(model)
    book.begin_step()
    alive = firms.alive

    interest = np.where(alive, firms.debt * interest_rate(model) / 12.0, 0.0)
    ledger.transfer(cash_asset, accounts, lenders, interest, flows.INTEREST)

    maturing = np.where(alive, firms.debt / params["debt_term_months"], 0.0)
    rolled = np.clip(borrowing_limit(model) - (firms.debt - maturing), 0.0, maturing)
    repaid = maturing - rolled  # lenders will not roll it: due in cash, short or not
    ledger.transfer(cash_asset, accounts, lenders, repaid, flows.DEBT_REPAY)
    firms.debt -= repaid

    pre_tax = firms.operating_income_so_far()
    tax = np.where(alive, params["tax_rate"] * np.maximum(pre_tax, 0.0), 0.0)
    ledger.transfer(cash_asset, accounts, ledger.account("taxes"), tax, flows.TAX)

    net_income = pre_tax - tax
    dividends = np.where(alive, params["payout_ratio"] * np.maximum(net_income, 0.0), 0.0)
    dividends = np.minimum(dividends, np.maximum(firms.cash, 0.0))
    model.pay_dividends(dividends)

    excess = np.where(alive & _sellers(model), surplus_cash(model), 0.0)
    prepaid = np.minimum(excess, firms.debt)
    ledger.transfer(cash_asset, accounts, lenders, prepaid, flows.DEBT_REPAY)
    firms.debt -= prepaid
    model.pay_dividends(excess - prepaid)

    gap = np.where(alive, np.maximum(0.0, -firms.cash), 0.0)
    equity = np.minimum(gap, model.equity.offer)
    model.issue_equity(equity)
    gap -= equity
    borrowed = np.minimum(gap, debt_room(model))
    ledger.transfer(cash_asset, lenders, accounts, borrowed, flows.DEBT_DRAW)
    firms.debt += borrowed

    exposure = float(firms.debt[alive].sum() + np.maximum(-firms.cash[alive], 0.0).sum())
    scale = 1.0 + ledger.turnover[cash_asset, : firms.n]
    defaulted = alive & (firms.cash < -1e-9 * scale)
    if defaulted.any():
        default(model, defaulted)
    book.remember(exposure, params)
    firms.close_income_statement()
    ebitda = firms.revenue - (firms.cost_of_goods - firms.depreciation) - firms.opex
    firms.ebitda_smoothed = np.where(
        firms.alive,
        EBITDA_SMOOTHING * ebitda + (1 - EBITDA_SMOOTHING) * firms.ebitda_smoothed,
        0.0,
    )
    book.appraise(market_multiple(model), params)
    reprice(model, rolled + borrowed)


def _sellers(model: SupplyChainModel) -> np.ndarray:
    """Firm rows that pay out surplus cash: those of sectors that sell a good.

    Funds (the equity supplier) do not pay themselves out, and a sector that sells nothing
    (a passive plugin sector holding cash) keeps what it was given.
    """
    rows = np.zeros(model.firms.n, dtype=bool)
    for sector in model.firm_sectors:
        rows[sector.rows] = bool(sector.sells) and not sector.supplies_equity
    return rows


def surplus_cash(model: SupplyChainModel) -> np.ndarray:
    """Cash above each firm's buffer (USD): what it does not need.

    The buffer is ``cash_buffer_months`` of this month's cash costs (cost of goods, opex,
    interest) plus its capex this month (its planned spending rate).
    """
    firms = model.firms
    ledger = model.ledger
    capex = ledger.flow_out[0, ledger.flows.CAPEX, : firms.n]
    needs = firms.monthly_costs_so_far() + capex
    buffer = model.experiment["finance"]["cash_buffer_months"] * needs
    return np.maximum(0.0, firms.cash - buffer)


def reprice(model: SupplyChainModel, new_lending: np.ndarray) -> None:
    """Reprice each firm's debt: the part lent this month at lenders' current terms.

    Lenders price a firm from its leverage (debt over collateral value) and its cover (12 x
    smoothed EBITDA over a year's interest at its current rate). Only debt lent this month
    (``new_lending``: rolled over or newly drawn, USD) takes the new spread; the rest keeps
    its terms until it matures, so the spread a firm pays is the debt-weighted mix. A firm
    without debt carries the spread it would be offered (0 once defaulted).
    """
    firms = model.firms
    params = model.experiment["finance"]
    leverage = capped_quotient(firms.debt, collateral_value(model))
    cover = capped_quotient(
        12.0 * np.maximum(firms.ebitda_smoothed, 0.0), firms.debt * interest_rate(model)
    )
    priced = credit_spread(
        leverage, cover, lenders_of(model).caution, model.max_debt_to_ebitda, params
    )
    repriced = np.where(firms.debt > 0, np.minimum(capped_quotient(new_lending, firms.debt), 1), 1)
    firms.credit_spread = np.where(
        firms.alive, repriced * priced + (1.0 - repriced) * firms.credit_spread, 0.0
    )


def default(model: SupplyChainModel, defaulted: np.ndarray) -> None:
    """Exit the ``defaulted`` firms: lenders recover part of the assets, equity is written off.

    Lenders cover the firm's negative cash (flow ``write_off``) and sell its assets to an
    outside buyer (``scrap``) for ``recovery_rate`` of net book value, at most their exposure
    (debt plus the cash covered); the rest of the exposure is a credit loss.
    """
    firms = model.firms
    ledger = model.ledger
    book = lenders_of(model)
    cash_asset = ledger.asset("cash")
    lenders = ledger.account("lenders")
    shortfall = np.where(defaulted, np.maximum(0.0, -firms.cash), 0.0)
    ledger.transfer(cash_asset, lenders, np.arange(firms.n), shortfall, ledger.flows.WRITE_OFF)
    exposure = np.where(defaulted, firms.debt + shortfall, 0.0)
    rate = model.experiment["finance"]["recovery_rate"]
    recovered = np.where(defaulted, np.minimum(rate * firms.book_value, exposure), 0.0)
    ledger.transfer(
        cash_asset, ledger.account("scrap"), lenders, recovered, ledger.flows.DEBT_REPAY
    )
    losses = exposure - recovered
    firms.credit_losses += losses
    book.losses += float(losses.sum())
    book.recovered += float(recovered.sum())
    firms.written_off += np.where(defaulted, firms.debt + shortfall + firms.equity_raised, 0.0)
    firms.debt[defaulted] = 0.0
    firms.alive[defaulted] = False
    firms.defaulted_step[defaulted] = model.step_index
    firms.credit_spread[defaulted] = 0.0
    for sector in model.firm_sectors:
        mask = defaulted[sector.rows]
        if mask.any():
            sector.on_default(mask)
    firms.book_value[defaulted] = 0.0
