"""The books of all firms: one row per firm, one numpy array per field.

Every firm of every sector has a row here (sectors own contiguous blocks of rows); its cash
is a view of the ledger, and its income statement for the step is read off the ledger's
flows by `FirmTable.close_income_statement`.
"""

from __future__ import annotations

import numpy as np

from marketsim.ledger import Ledger

INCOME_FIELDS = (
    "revenue",
    "cost_of_goods",
    "depreciation",
    "opex",
    "interest",
    "tax",
    "net_income",
    "capex",
    "equity_issued",
    "debt_drawn",
    "dividends",
)
"""Per-step flows of each firm (USD per step)."""


class FirmTable:
    """State and per-step income statement of every firm.

    Args:
        n_firms: number of firm rows.
        sector_code: index of each firm's sector (into the model's firm sectors).
        region_code: index of each firm's region.
        ledger: the ledger; firm ``i`` is ledger account ``i``.

    Attributes:
        alive: False once the firm has defaulted and exited.
        debt: outstanding debt (USD).
        equity_raised: cumulative new equity raised (USD).
        book_value: net book value of productive assets (USD), set by the sectors.
        defaulted_step: step at which the firm defaulted, -1 if it has not.
        written_off: debt and equity written off at default (USD, cumulative).
        ebitda_smoothed: smoothed monthly EBITDA (USD): revenue - cash cost of goods - opex.
        credit_spread: spread over the risk-free rate the firm pays on its debt (per year).
        credit_losses: lenders' losses on the firm at its default (USD, cumulative).
    """

    def __init__(self, n_firms: int, sector_code, region_code, ledger: Ledger):
        self.n = n_firms
        self.sector_code = np.asarray(sector_code, dtype=np.int64)
        self.region_code = np.asarray(region_code, dtype=np.int64)
        self.ledger = ledger
        self.alive = np.ones(n_firms, dtype=bool)
        self.debt = np.zeros(n_firms)
        self.equity_raised = np.zeros(n_firms)
        self.book_value = np.zeros(n_firms)
        self.defaulted_step = np.full(n_firms, -1, dtype=np.int64)
        self.written_off = np.zeros(n_firms)
        self.depreciation_pending = np.zeros(n_firms)
        self.last_monthly_costs = np.zeros(n_firms)
        """Last closed month's cash costs: cost of goods, opex, interest (USD)."""
        self.ebitda_smoothed = np.zeros(n_firms)
        """Smoothed monthly EBITDA (USD), what lenders look at."""
        self.credit_spread = np.zeros(n_firms)
        """Spread over the risk-free rate on the firm's debt (per year; `marketsim.credit`)."""
        self.credit_losses = np.zeros(n_firms)
        """Lenders' losses on the firm at its default: exposure - recovery (USD, cumulative)."""
        for name in INCOME_FIELDS:
            setattr(self, name, np.zeros(n_firms))

    @property
    def cash(self) -> np.ndarray:
        """Cash of each firm (USD): a view of the ledger's cash row."""
        return self.ledger.balances[0, : self.n]

    def begin_step(self) -> None:
        """Forget last step's non-cash charges."""
        self.depreciation_pending[:] = 0.0

    def charge_depreciation(self, rows: slice, amounts: np.ndarray) -> None:
        """Book this step's depreciation of ``rows`` (USD; a cost of goods, not cash)."""
        self.depreciation_pending[rows] += amounts

    def operating_income_so_far(self) -> np.ndarray:
        """Revenue minus cost of goods, depreciation and opex booked so far this step (USD)."""
        flows = self.ledger.flows
        out = self._paid
        revenue = self.ledger.flow_total_in(flows.REVENUE)[: self.n]
        return (
            revenue
            - out(flows.COST_OF_GOODS)
            - out(flows.OPEX)
            - out(flows.INTEREST)
            - self.depreciation_pending
        )

    def monthly_costs_so_far(self) -> np.ndarray:
        """Cash costs booked so far this step: cost of goods, opex, interest (USD)."""
        flows = self.ledger.flows
        out = self._paid
        return out(flows.COST_OF_GOODS) + out(flows.OPEX) + out(flows.INTEREST)

    def _paid(self, flow: int) -> np.ndarray:
        """Cash each firm paid under ``flow`` so far this step (USD; a view of the ledger)."""
        return self.ledger.flow_total_out(flow)[: self.n]

    def _received(self, flow: int) -> np.ndarray:
        """Cash each firm received under ``flow`` so far this step (USD; a view)."""
        return self.ledger.flow_total_in(flow)[: self.n]

    def close_income_statement(self) -> None:
        """Read this step's income statement of every firm off the ledger's flows."""
        flows = self.ledger.flows
        out, into = self._paid, self._received
        self.revenue = into(flows.REVENUE).copy()
        self.depreciation = self.depreciation_pending.copy()
        self.cost_of_goods = out(flows.COST_OF_GOODS) + self.depreciation
        self.opex = out(flows.OPEX).copy()
        self.interest = out(flows.INTEREST).copy()
        self.tax = out(flows.TAX).copy()
        self.capex = out(flows.CAPEX).copy()
        self.equity_issued = into(flows.EQUITY).copy()
        self.debt_drawn = into(flows.DEBT_DRAW).copy()
        self.dividends = out(flows.DIVIDEND).copy()
        self.net_income = self.revenue - self.cost_of_goods - self.opex - self.interest - self.tax
        self.last_monthly_costs = self.monthly_costs_so_far().copy()
