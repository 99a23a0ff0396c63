"""The double-entry ledger: every movement of cash and goods is a posting between accounts.

Accounts are the firms (one each), the markets (clearing houses, back at zero after every
step) and the outside world (end customers, foundries, fuel suppliers, wages, lenders,
savers, taxes, scrap). Assets are cash (USD) and every good (in its unit). A posting moves
an amount of one asset from one account to another, tagged with a flow (revenue, capex, ...)
so the income statement of every firm is read off the ledger rather than kept beside it.

Outside accounts are sources and sinks of flows, not stocks: at the start of every step
`Ledger.begin_step` closes each of them into ``outside_world`` with a ``closing`` posting, so
an outside account holds one step's flows and ``outside_world`` minus what the firms and
markets hold. No balance grows with the number of steps (tokens consumed in a month do not
pile up for ever).

Postings are sparse: a transfer reads and writes only the accounts it touches (totals per
account summed in posting order, `marketsim.ledger_flows`), flows are kept as a journal per
(asset, flow) and summed into a row only when read (`FlowBook`), and `Ledger.begin_step`
clears what was posted, so a step's ledger work grows with its postings, not with
accounts x flows. The balances are exactly those of the dense arithmetic (every posting's
total subtracted from and added to whole rows), bit for bit.

At the end of each step `Ledger.check` verifies (one pass over every balance), and raises
`LedgerError` naming the step, the account and the amount otherwise:

- every balance is finite;
- every balance is exactly what the postings made it (the ledger keeps its own copy,
  updated by the same arithmetic, so any change behind its back is seen to the last bit);
- each asset's total over all accounts is unchanged (conservation), within rounding of
  ``CONSERVATION_ULPS`` ulps of the magnitudes summed;
- market accounts are back at zero (within the sweep threshold of `sweep_rounding`);
- each firm's own stock of a good (its fleet, pipeline, inventory) equals its ledger
  balance. The two are computed by different arithmetic (a sum over vintages against a
  sequence of postings), so they may differ by rounding that accumulates over the run: the
  tolerance is ``STOCK_ROUNDING_ULPS`` ulps of the magnitudes involved (balance, turnover,
  stock) summed over the steps so far (`Ledger.rounding_scale`). A NaN fails every check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from marketsim.errors import LedgerError
from marketsim.ledger_flows import BAD_AMOUNT
from marketsim.ledger_flows import BAD_SOURCE
from marketsim.ledger_flows import OK
from marketsim.ledger_flows import FlowBook
from marketsim.ledger_flows import post
from marketsim.ledger_flows import scan_books
from marketsim.ledger_flows import sum_by_account

EQUITY_MARKET = "market:equity"
"""Clearing account of the capital market: new shares and dividends pass through it."""

OUTSIDE_ACCOUNT_DOCS = {
    "end_customers": "end users of tokens: pay for what they buy (segments of end demand)",
    "foundry": "chip vendors' outside suppliers (foundries, memory): paid per unit sold",
    "fuel": "utilities' fuel and purchased power: paid per MWh",
    "wages": "employees and overheads: sectors' operating expenses",
    "suppliers": "other outside suppliers (the rest of a server, construction)",
    "lenders": "banks and bond holders: lend, receive interest and repayments, absorb losses",
    "savers": "households: pay into and are paid out of the funds; dividends without funds",
    "taxes": "the government: receives corporate tax",
    "production": "source of goods produced (a vendor's output enters the economy here)",
    "consumption": "sink of goods used up (power consumed, tokens delivered)",
    "scrap": "buyer of retired and defaulted equipment",
    "rounding": "absorbs rounding dust of multi-leg postings",
    "outside_world": "the outside world's net position: every other outside account is "
    "closed into it at the start of each step",
}
"""The built-in outside accounts and what each stands for (`marketsim.builtin` registers
them through ``marketsim_register_outside_accounts``; plugins may register more)."""

OUTSIDE_ACCOUNTS = tuple(OUTSIDE_ACCOUNT_DOCS)
"""The built-in outside accounts: sources and sinks of cash and goods that are not firms.

The last, ``outside_world``, holds the outside world's net position: every other outside
account is closed into it at the start of each step (see `Ledger.begin_step`).
"""

OUTSIDE_WORLD = OUTSIDE_ACCOUNTS[-1]
"""The account every other outside account is closed into at the start of each step."""

STOCK_ROUNDING_ULPS = 64.0
"""Rounding allowed between a firm's own stock and its ledger balance, in ulps per step.

Each step a posting rounds a balance by at most half an ulp of the magnitudes it touches and
a sector's own arithmetic (a sum over vintages, a pipeline shift) a few ulps more; the
difference between the two accumulates over the run. 64 ulps of (|opening| + turnover +
|stock|) per step bounds it with a wide margin and still catches a change of one unit in a
fleet of a million after 100,000 steps.
"""

CONSERVATION_ULPS = 1024.0
"""Rounding allowed in an asset's total over all accounts, in ulps of the magnitudes summed.

Postings conserve every asset by construction (each amount leaves one account and enters
another); the two sums over all accounts and the rounding of each posting (half an ulp of
the balance it touches, a few dozen postings per account and step) stay far inside this.
"""

EPSILON = float(np.finfo(np.float64).eps)
"""One ulp of 1.0 (2.2e-16): the relative rounding of one floating-point operation."""

LARGEST = float(np.finfo(np.float64).max)
"""The largest float: `Ledger.rounding_scale` is clamped to it rather than overflowing."""


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
        "closing",  # an outside account closed into outside_world at the start of a step
    )

    def __init__(self):
        for code, name in enumerate(self.NAMES):
            setattr(self, name.upper(), code)

    def __len__(self) -> int:
        return len(self.NAMES)


def _indices(accounts, shape: tuple[int, ...]) -> np.ndarray:
    """Account indices as a contiguous int64 array of ``shape`` (one account is repeated)."""
    if type(accounts) is not np.ndarray or accounts.dtype != np.int64:
        accounts = np.asarray(accounts, dtype=np.int64)
    if accounts.shape == shape:
        return _contiguous(accounts)
    if accounts.ndim == 0:
        return np.full(shape, accounts, dtype=np.int64)
    return np.broadcast_to(accounts, shape).copy()


def _contiguous(values: np.ndarray) -> np.ndarray:
    """``values`` as a C-contiguous, writeable array (a copy only when it is not one)."""
    if values.flags.c_contiguous and values.flags.writeable:
        return values
    return np.array(values, order="C")


class Ledger:
    """Balances of every asset in every account, changed only by postings.

    Args:
        account_names: one name per account (firms first, then markets, then outside).
            Accounts named in ``outside_accounts`` are closed into `OUTSIDE_WORLD` at the
            start of every step when the ledger has such an account.
        asset_names: ``"cash"`` first, then one per good.
        market_accounts: indices of the market (clearing-house) accounts.
        outside_accounts: names of the outside accounts (default `OUTSIDE_ACCOUNTS`, the
            built-in ones; the model passes every registered one,
            ``marketsim_register_outside_accounts``).

    Attributes:
        balances: ``[asset, account]`` balance in the asset's unit.
        booked: ``[asset, account]`` the balances as the postings left them (the ledger's
            own copy; `check` compares it with ``balances`` exactly).
        opening: ``[asset, account]`` balances at the start of the step.
        turnover: ``[asset, account]`` gross amount posted in and out this step.
        flow_in, flow_out: ``[asset, flow, account]`` amounts received and paid this step,
            as `FlowBook` s: kept sparsely (per posting, the accounts it touched), summed
            when read, indexed like the dense arrays (``flow_in[asset, flow]`` is a row
            over all accounts).
        rounding_scale: ``[asset, account]`` sum over the steps so far of |opening| +
            turnover + |own stock|: the magnitudes whose rounding may separate a firm's
            own stock from its ledger balance (see `STOCK_ROUNDING_ULPS`).
    """

    def __init__(
        self,
        account_names: Sequence[str],
        asset_names: Sequence[str],
        market_accounts: Sequence[int],
        outside_accounts: Sequence[str] = OUTSIDE_ACCOUNTS,
    ):
        self.account_names = list(account_names)
        self._account_index = {name: i for i, name in enumerate(self.account_names)}
        self.outside_accounts = tuple(n for n in outside_accounts if n in self._account_index)
        """Names of the ledger's outside accounts (sources and sinks that are not firms)."""
        self.asset_names = list(asset_names)
        self._asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.market_accounts = np.asarray(market_accounts, dtype=np.int64)
        self.flows = Flows()
        n_assets, n_accounts = len(self.asset_names), len(self.account_names)
        self.balances = np.zeros((n_assets, n_accounts))
        self.booked = np.zeros_like(self.balances)
        self.opening = np.zeros_like(self.balances)
        self.turnover = np.zeros_like(self.balances)
        self.rounding_scale = np.zeros_like(self.balances)
        self.flow_in = FlowBook(n_assets, len(self.flows), n_accounts)
        self.flow_out = FlowBook(n_assets, len(self.flows), n_accounts)
        self.step = 0
        self._slot = np.full(n_accounts, -1, dtype=np.int64)  # scratch of sum_by_account
        self._paid_by = np.zeros(n_accounts)  # scratch of apply_postings
        world = self._account_index.get(OUTSIDE_WORLD)
        self._world = world
        self._closed_accounts = np.array(
            [
                i
                for i, name in enumerate(self.account_names)
                if world is not None and name in self.outside_accounts and i != world
            ],
            dtype=np.int64,
        )
        """Outside accounts closed into ``outside_world`` at the start of every step."""

    def account(self, name: str) -> int:
        """Index of the account called ``name``."""
        return self._account_index[name]

    def asset(self, name: str) -> int:
        """Index of the asset called ``name``."""
        return self._asset_index[name]

    @property
    def posted_net(self) -> np.ndarray:
        """Net amount posted to each account this step (``booked - opening``)."""
        return self.booked - self.opening

    def open_balance(self, asset: int, accounts, amounts) -> None:
        """Set initial balances before the first step (the economy's starting stocks)."""
        self.balances[asset, accounts] += amounts
        self.booked[asset, accounts] += amounts
        self.opening[:] = self.balances

    def begin_step(self, step: int) -> None:
        """Start step ``step``: clear the flow accumulators, close the outside accounts.

        Every outside account but ``outside_world`` is closed into ``outside_world`` by a
        posting under the ``closing`` flow (a positive balance is paid to it, a negative one
        received from it), so sources and sinks hold one step's flows. The opening balances
        are snapshot after the closing.
        """
        self.step = step
        self._clear_turnover()
        self.flow_in.clear()
        self.flow_out.clear()
        if len(self._closed_accounts):
            self._close_outside_accounts()
        self.opening[:] = self.balances

    def _clear_turnover(self) -> None:
        """Zero the turnover entries posted to last step (all of them if that is cheaper).

        Every posting is in the flow books (payers in ``flow_out``, payees in ``flow_in``,
        closings included), so they name every entry turned over.
        """
        if (self.flow_in.n_posted + self.flow_out.n_posted) * 4 >= self.turnover.size:
            self.turnover[:] = 0.0
            return
        for book in (self.flow_in, self.flow_out):
            for asset, _, accounts in book.posted():
                self.turnover[asset, accounts] = 0.0

    def _close_outside_accounts(self) -> None:
        closed, world = self._closed_accounts, self._world
        held = self.booked[:, closed]
        paid = np.maximum(held, 0.0)
        received = np.maximum(-held, 0.0)
        closing = self.flows.CLOSING
        paid_total, received_total = paid.sum(axis=1), received.sum(axis=1)
        worlds = np.array([world], dtype=np.int64)
        for asset in range(len(self.asset_names)):
            self.flow_out.add(asset, closing, closed, paid[asset])
            self.flow_in.add(asset, closing, closed, received[asset])
            self.flow_in.add(asset, closing, worlds, paid_total[asset : asset + 1])
            self.flow_out.add(asset, closing, worlds, received_total[asset : asset + 1])
        for row in (self.balances, self.booked):
            row[:, closed] -= held
            row[:, world] += held.sum(axis=1)
        self.turnover[:, closed] += paid + received
        self.turnover[:, world] += (paid + received).sum(axis=1)

    def transfer(self, asset: int, source, destination, amounts, flow: int) -> None:
        """Post ``amounts`` of ``asset`` from ``source`` to ``destination`` accounts.

        Args:
            asset: asset index (see `asset`).
            source: an account index or an array of them.
            destination: an account index or an array of them.
            amounts: amount per posting (>= 0, finite), in the asset's unit.
            flow: flow code (see `Flows`) recorded on both sides.

        Raises:
            LedgerError: an amount is NaN, infinite or negative (nothing is posted).
            IndexError: an account index outside the ledger (a bug in the caller).
        """
        self._post(asset, *self._arrays(source, destination, amounts), flow, flow)

    def transfer_flows(self, asset: int, source, destination, amounts, flows) -> None:
        """Like `transfer`, with the payer's flow code given per posting.

        The payer books each posting under its own flow (cost of goods, capex, ...), the
        receiver under ``buy`` for goods or ``revenue``-neutral ``investment`` for cash
        received by a clearing house.
        """
        source, destination, amounts = self._arrays(source, destination, amounts)
        flows = np.broadcast_to(np.asarray(flows, dtype=np.int64), amounts.shape)
        used = np.flatnonzero(np.bincount(flows, minlength=len(self.flows)))  # codes >= 0
        if len(used) and used[-1] >= len(self.flows):
            raise IndexError(f"step {self.step}: flow code {used[-1]} is not one of `Flows`")
        payers, paid, payees, received = self._apply(asset, source, destination, amounts)
        for flow in used:
            chosen = flows == flow
            flow_payers, flow_paid, _ = sum_by_account(source[chosen], amounts[chosen], self._slot)
            self.flow_out.add(asset, flow, flow_payers, flow_paid)
        receiver_flow = self.flows.BUY if asset else self.flows.INVESTMENT
        self.flow_in.add(asset, receiver_flow, payees, received)

    @staticmethod
    def _arrays(source, destination, amounts):
        """The postings as contiguous arrays of one shape (accounts int64, amounts float64)."""
        amounts = np.asarray(amounts, dtype=np.float64)
        if amounts.ndim != 1:
            amounts = np.atleast_1d(amounts)
        amounts = _contiguous(amounts)
        return _indices(source, amounts.shape), _indices(destination, amounts.shape), amounts

    def _post(self, asset, source, destination, amounts, flow_out, flow_in) -> None:
        payers, paid, payees, received = self._apply(asset, source, destination, amounts)
        self.flow_out.add(asset, flow_out, payers, paid)
        self.flow_in.add(asset, flow_in, payees, received)

    def _apply(self, asset: int, source, destination, amounts):
        """Check the postings and move them into the balances, ledger copy and turnover.

        Only the accounts touched are read or written; balances and the ledger's own copy
        get the same arithmetic.

        Returns:
            ``(payers, paid, payees, received)``: each account once with its total.

        Raises:
            LedgerError: an amount is NaN, infinite or negative (nothing is changed).
            IndexError: an account index outside the ledger (nothing is changed).
        """
        accounts, totals, n_payers, status, i = post(
            self.balances,
            self.booked,
            self.turnover,
            asset,
            self._paid_by,
            self._slot,
            source,
            destination,
            amounts,
        )
        if status == BAD_AMOUNT:
            raise LedgerError(
                f"step {self.step}: posting of {self.asset_names[asset]} from "
                f"{self._name(source[i])} to {self._name(destination[i])}: "
                f"amount must be finite and >= 0, got {amounts[i]!r}"
            )
        if status != OK:
            account = source[i] if status == BAD_SOURCE else destination[i]
            raise IndexError(
                f"step {self.step}: posting of {self.asset_names[asset]}: account index "
                f"{int(account)} outside the ledger's {len(self.account_names)} accounts"
            )
        return accounts[:n_payers], totals[:n_payers], accounts[n_payers:], totals[n_payers:]

    def _name(self, account) -> str:
        account = int(account)
        if 0 <= account < len(self.account_names):
            return self.account_names[account]
        return f"account {account} (no such account)"

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
        return self.flow_in.row(asset, flow)

    def flow_total_out(self, flow: int, asset: int = 0) -> np.ndarray:
        """This step's amount paid under ``flow`` per account (cash by default)."""
        return self.flow_out.row(asset, flow)

    def check(self, physical_stocks: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Verify the books at the end of a step; raise `LedgerError` if they do not balance.

        Every comparison is written so that NaN fails it (``~(|x| <= tol)``).

        Args:
            physical_stocks: asset index -> (accounts, stock): what the sectors' own state
                says each account holds of that good (fleet, pipeline, inventory). The
                ledger balance must equal it, up to accumulated rounding.

        Raises:
            LedgerError: naming the step, the account, the asset and the amount.
        """
        with np.errstate(over="ignore"):  # magnitudes near the float limit: clamped below
            self._check(physical_stocks)

    def _check(self, physical_stocks) -> None:
        balances = self.balances
        magnitude, any_not_finite, any_changed = scan_books(
            balances, self.booked, self.opening, self.turnover, self.rounding_scale, LARGEST
        )
        if any_not_finite:
            asset, account = np.argwhere(~np.isfinite(balances))[0]
            self._fail(asset, account, balances[asset, account], "balance is not finite")
        if any_changed:
            asset, account = np.argwhere(balances != self.booked)[0]
            drift = balances[asset, account] - self.booked[asset, account]
            self._fail(asset, account, drift, "balance changed outside the ledger by")
        moved = balances.sum(axis=1) - self.opening.sum(axis=1)  # pairwise: accurate
        not_conserved = ~(np.abs(moved) <= CONSERVATION_ULPS * EPSILON * magnitude)
        not_conserved &= np.isfinite(magnitude)  # sums past the float limit say nothing
        for asset in np.flatnonzero(not_conserved):
            account = int(np.argmax(np.abs(balances[asset] - self.opening[asset])))
            self._fail(asset, account, moved[asset], "postings do not sum to zero by")
        market_tolerance = 1e-9 * (1.0 + self.turnover[:, self.market_accounts])
        self._fail_where(
            balances[:, self.market_accounts],
            market_tolerance,
            "market account not cleared, holds",
            columns=self.market_accounts,
        )
        for asset, (accounts, stock) in physical_stocks.items():
            stock = np.asarray(stock, dtype=float)
            scale = np.minimum(self.rounding_scale[asset, accounts] + np.abs(stock), LARGEST)
            self.rounding_scale[asset, accounts] = scale
            tolerance = STOCK_ROUNDING_ULPS * EPSILON * self.rounding_scale[asset, accounts]
            gap = balances[asset, accounts] - stock
            self._fail_where(
                gap[None, :],
                tolerance[None, :],
                "ledger balance differs from the firm's own stock by",
                columns=accounts,
                asset_rows=np.array([asset]),
            )

    def _fail_where(self, values, tolerance, what, columns=None, asset_rows=None):
        bad = ~(np.abs(values) <= tolerance)  # NaN is bad
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
