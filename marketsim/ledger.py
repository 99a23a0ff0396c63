"""The double-entry ledger: every movement of cash and goods is a posting between accounts.

Accounts are the firms (one each), the markets (clearing houses, back at zero after every
step) and the outside world (end customers, foundries, fuel suppliers, wages, lenders,
savers, taxes, scrap). Assets are cash (USD) and every good (in its unit). A posting moves
an amount of one asset from one account to another, tagged with a flow (revenue, capex, ...)
so the income statement of every firm is read off the ledger rather than kept beside it.

At the end of each step `Ledger.check` verifies that every account's balance equals its
opening balance plus what was posted to it (nothing changed a balance behind the ledger's
back), that the total of each asset over all accounts is unchanged (so cash of firms plus
outside is constant and goods produced = goods delivered + inventory change), that market
accounts are back at zero, and that every balance is finite. A violation raises
`LedgerError` naming the step, the account and the amount.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from marketsim.errors import LedgerError

EQUITY_MARKET = "market:equity"
"""Clearing account of the capital market: new shares and dividends pass through it."""

OUTSIDE_ACCOUNTS = (
    "end_customers",
    "foundry",
    "fuel",
    "wages",
    "suppliers",
    "lenders",
    "savers",
    "taxes",
    "production",
    "consumption",
    "scrap",
    "rounding",
)
"""The outside world: sources and sinks of cash and goods that are not simulated firms."""


class Flows:
    """Codes of the flows a posting can carry (rows of the flow accumulators)."""

    NAMES = (
        "revenue",  # cash in from sales
        "cost_of_goods",  # cash out for inputs and production cost
        "capex",  # cash out for capacity and equipment
        "opex",  # cash out for operating expenses (wages, software work, SG&A)
        "interest",  # cash out to lenders
        "tax",  # cash out to the state
        "equity",  # cash in from investors (new shares)
        "dividend",  # cash out to shareholders
        "debt_draw",  # cash in borrowed
        "debt_repay",  # cash out repaying principal
        "write_off",  # losses absorbed by lenders or investors at default
        "investment",  # investors' cash into savers/funds and out to firms
        "production",  # goods created (from the outside world)
        "sale",  # goods out to a market
        "buy",  # goods in from a market
        "consumption",  # goods used up (energy, compute, tokens)
        "retirement",  # goods scrapped at end of life or at default
        "rounding",  # floating-point dust swept out of clearing accounts
    )

    def __init__(self):
        for code, name in enumerate(self.NAMES):
            setattr(self, name.upper(), code)

    def __len__(self) -> int:
        return len(self.NAMES)


class Ledger:
    """Balances of every asset in every account, changed only by postings.

    Args:
        account_names: one name per account (firms first, then markets, then outside).
        asset_names: ``"cash"`` first, then one per good.
        market_accounts: indices of the market (clearing-house) accounts.
    """

    def __init__(
        self,
        account_names: Sequence[str],
        asset_names: Sequence[str],
        market_accounts: Sequence[int],
    ):
        self.account_names = list(account_names)
        self._account_index = {name: i for i, name in enumerate(self.account_names)}
        self.asset_names = list(asset_names)
        self._asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.market_accounts = np.asarray(market_accounts, dtype=np.int64)
        self.flows = Flows()
        n_assets, n_accounts = len(self.asset_names), len(self.account_names)
        self.balances = np.zeros((n_assets, n_accounts))
        self.opening = np.zeros_like(self.balances)
        self.posted_net = np.zeros_like(self.balances)
        self.turnover = np.zeros_like(self.balances)
        self.flow_in = np.zeros((n_assets, len(self.flows), n_accounts))
        self.flow_out = np.zeros_like(self.flow_in)
        self.step = 0

    def account(self, name: str) -> int:
        """Index of the account called ``name``."""
        return self._account_index[name]

    def asset(self, name: str) -> int:
        """Index of the asset called ``name``."""
        return self._asset_index[name]

    def open_balance(self, asset: int, accounts, amounts) -> None:
        """Set initial balances before the first step (the economy's starting stocks)."""
        self.balances[asset, accounts] += amounts
        self.opening[:] = self.balances

    def begin_step(self, step: int) -> None:
        """Snapshot opening balances and clear this step's flow accumulators."""
        self.step = step
        self.opening[:] = self.balances
        self.posted_net[:] = 0.0
        self.turnover[:] = 0.0
        self.flow_in[:] = 0.0
        self.flow_out[:] = 0.0

    def transfer(self, asset: int, source, destination, amounts, flow: int) -> None:
        """Post ``amounts`` of ``asset`` from ``source`` to ``destination`` accounts.

        Args:
            asset: asset index (see `asset`).
            source: an account index or an array of them.
            destination: an account index or an array of them.
            amounts: amount per posting (>= 0, finite), in the asset's unit.
            flow: flow code (see `Flows`) recorded on both sides.
        """
        source, destination, amounts = self._validated(asset, source, destination, amounts)
        self._post(asset, source, destination, amounts, flow, flow)

    def transfer_flows(self, asset: int, source, destination, amounts, flows) -> None:
        """Like `transfer`, with the payer's flow code given per posting.

        The payer books each posting under its own flow (cost of goods, capex, ...), the
        receiver under ``buy`` for goods or ``revenue``-neutral ``investment`` for cash
        received by a clearing house.
        """
        source, destination, amounts = self._validated(asset, source, destination, amounts)
        flows = np.broadcast_to(np.asarray(flows, dtype=np.int64), amounts.shape)
        n_accounts = len(self.account_names)
        by_flow = np.bincount(
            flows * n_accounts + source, weights=amounts, minlength=len(self.flows) * n_accounts
        )
        self.flow_out[asset] += by_flow.reshape(len(self.flows), n_accounts)
        receiver_flow = self.flows.BUY if asset else self.flows.INVESTMENT
        self.flow_in[asset, receiver_flow] += self._per_account(destination, amounts)
        self._move(asset, source, destination, amounts)

    def _validated(self, asset, source, destination, amounts):
        amounts = np.atleast_1d(np.asarray(amounts, dtype=np.float64))
        source = np.broadcast_to(np.asarray(source, dtype=np.int64), amounts.shape)
        destination = np.broadcast_to(np.asarray(destination, dtype=np.int64), amounts.shape)
        bad = ~np.isfinite(amounts) | (amounts < 0.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LedgerError(
                f"step {self.step}: posting of {self.asset_names[asset]} from "
                f"{self.account_names[source[i]]} to {self.account_names[destination[i]]}: "
                f"amount must be finite and >= 0, got {amounts[i]!r}"
            )
        return source, destination, amounts

    def _post(self, asset, source, destination, amounts, flow_out, flow_in) -> None:
        self.flow_out[asset, flow_out] += self._per_account(source, amounts)
        self.flow_in[asset, flow_in] += self._per_account(destination, amounts)
        self._move(asset, source, destination, amounts)

    def _move(self, asset, source, destination, amounts) -> None:
        paid = self._per_account(source, amounts)
        received = self._per_account(destination, amounts)
        for row in (self.balances[asset], self.posted_net[asset]):
            row -= paid
            row += received
        self.turnover[asset] += paid + received

    def _per_account(self, accounts: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        """Sum of ``amounts`` by account (length: number of accounts)."""
        return np.bincount(accounts, weights=amounts, minlength=len(self.account_names))

    def sweep_rounding(self, account: int, volume: float) -> None:
        """Move floating-point dust left in a clearing account to the ``rounding`` account.

        Only a residual within ``1e-9 * volume`` (the step's flow through the account) is
        swept; anything larger stays for `check` to report.
        """
        rounding = self.account("rounding")
        for asset in range(len(self.asset_names)):
            residual = self.balances[asset, account]
            if residual != 0.0 and abs(residual) <= 1e-9 * max(volume, 1.0):
                source, destination = (account, rounding) if residual > 0 else (rounding, account)
                self._post(
                    asset,
                    np.array([source]),
                    np.array([destination]),
                    np.array([abs(residual)]),
                    self.flows.ROUNDING,
                    self.flows.ROUNDING,
                )

    def flow_total_in(self, flow: int, asset: int = 0) -> np.ndarray:
        """This step's amount received under ``flow`` per account (cash by default)."""
        return self.flow_in[asset, flow]

    def check(self, physical_stocks: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Verify the books at the end of a step; raise `LedgerError` if they do not balance.

        Args:
            physical_stocks: asset index -> (accounts, stock): what the sectors' own state
                says each account holds of that good (fleet, pipeline, inventory). The
                ledger balance must equal it.

        Raises:
            LedgerError: naming the step, the account, the asset and the amount.
        """
        # rounding allowance: relative to the account's own activity and, for accounts that
        # were idle this step, to the asset's activity in the whole economy
        scale = self.turnover + np.abs(self.opening)
        tolerance = 1e-9 * (1.0 + scale) + 1e-12 * self.turnover.sum(axis=1, keepdims=True)
        if not np.isfinite(self.balances).all():
            asset, account = np.argwhere(~np.isfinite(self.balances))[0]
            self._fail(asset, account, self.balances[asset, account], "balance is not finite")
        drift = self.balances - self.opening - self.posted_net
        self._fail_where(drift, tolerance, "balance changed outside the ledger by")
        totals_moved = self.posted_net.sum(axis=1)
        for asset in np.flatnonzero(np.abs(totals_moved) > 1e-9 * (1.0 + self.turnover.sum(1))):
            account = int(np.argmax(np.abs(self.posted_net[asset])))
            self._fail(asset, account, totals_moved[asset], "postings do not sum to zero by")
        market = self.balances[:, self.market_accounts]
        self._fail_where(
            market,
            tolerance[:, self.market_accounts],
            "market account not cleared, holds",
            columns=self.market_accounts,
        )
        for asset, (accounts, stock) in physical_stocks.items():
            gap = self.balances[asset, accounts] - stock
            self._fail_where(
                gap[None, :],
                tolerance[asset, accounts][None, :],
                "ledger balance differs from the firm's own stock by",
                columns=accounts,
                asset_rows=np.array([asset]),
            )

    def _fail_where(self, values, tolerance, what, columns=None, asset_rows=None):
        bad = np.abs(values) > tolerance
        if bad.any():
            row, col = np.argwhere(bad)[0]
            asset = int(asset_rows[row]) if asset_rows is not None else int(row)
            account = int(columns[col]) if columns is not None else int(col)
            self._fail(asset, account, values[row, col], what)

    def _fail(self, asset, account, amount, what):
        raise LedgerError(
            f"ledger does not balance at step {self.step}: account "
            f"{self.account_names[int(account)]}, {self.asset_names[int(asset)]}: "
            f"{what} {float(amount):.6g}"
        )
