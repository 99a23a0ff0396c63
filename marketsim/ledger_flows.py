"""Sparse postings for the ledger (work per posting grows with the accounts it touches), and
the one pass over every balance that the end-of-step check needs.

A step posts a few hundred transfers, most of them touching a handful of accounts out of
possibly a million. Three pieces keep each one proportional to what it touches:

- `sum_by_account`: the accounts of a transfer (each once, in order of first appearance) and
  the sum of the amounts of each, added in posting order from 0.0 — bit for bit what
  ``np.bincount(accounts, weights=amounts)`` gives at those accounts, without a dense array
  of every account;
- `apply_postings`: moves those totals into one asset's balances, the ledger's own copy and
  the turnover, with exactly the arithmetic of a dense update (``(balance - paid) +
  received`` and ``turnover + (paid + received)``) on the accounts touched and nothing else;
- `FlowBook`: the amounts posted this step under each ``[asset, flow, account]``, kept as a
  journal of (accounts, amounts) chunks per (asset, flow) and summed into a row only when
  that row is read. Reading it works like indexing the dense array it stands for;
- `scan_books`: the end-of-step check's work on every ``[asset, account]`` (rounding scale,
  finite balances, balances against the ledger's own copy) in one pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sum_by_account(accounts, amounts, slot):
    """Each account of ``accounts`` once, with the sum of its ``amounts``.

    Args:
        accounts: int64[k], account index of each posting.
        amounts: float64[k], amount of each posting.
        slot: int64[n_accounts], scratch filled with -1; left filled with -1.

    Returns:
        ``(unique, sums, bad)``: ``unique`` int64[m] the accounts in order of first
        appearance; ``sums`` float64[m] the sum of each one's amounts, added in posting
        order starting from 0.0; ``bad`` the position of the first account index outside
        ``[0, n_accounts)``, or -1 (then ``unique`` and ``sums`` are empty).
    """
    n_accounts = slot.shape[0]
    k = accounts.shape[0]
    unique = np.empty(k, dtype=np.int64)
    sums = np.empty(k)
    m = 0
    bad = -1
    for i in range(k):
        account = accounts[i]
        if account < 0 or account >= n_accounts:
            bad = i
            break
        j = slot[account]
        if j < 0:
            j = m
            slot[account] = j
            unique[j] = account
            sums[j] = 0.0
            m += 1
        sums[j] += amounts[i]
    for j in range(m):
        slot[unique[j]] = -1
    if bad >= 0:
        m = 0
    return unique[:m].copy(), sums[:m].copy(), bad


@njit(cache=True)
def apply_postings(balances, booked, turnover, paid_by, payers, paid, payees, received):
    """Apply one transfer's totals paid and received to one asset's rows.

    Every account touched gets ``balance = (balance - paid) + received`` (``paid`` or
    ``received`` 0.0 where it is on one side only) in ``balances`` and ``booked`` alike,
    and ``turnover += paid + received``: the arithmetic of subtracting a dense vector of
    amounts paid and adding one of amounts received, on the touched accounts only.

    Args:
        balances, booked, turnover: float64[n_accounts], the asset's rows (changed in place).
        paid_by: float64[n_accounts], scratch filled with 0.0; left filled with 0.0.
        payers, paid: each paying account once (int64[m]) and its total paid (float64[m]).
        payees, received: each receiving account once and its total received.
    """
    for i in range(payers.shape[0]):
        paid_by[payers[i]] = paid[i]
    for i in range(payees.shape[0]):
        account = payees[i]
        out = paid_by[account]
        into = received[i]
        balances[account] = (balances[account] - out) + into
        booked[account] = (booked[account] - out) + into
        turnover[account] = turnover[account] + (out + into)
        paid_by[account] = np.nan  # done: also a payee
    for i in range(payers.shape[0]):
        account = payers[i]
        out = paid_by[account]
        if out == out:  # not NaN: a payer only
            balances[account] = (balances[account] - out) + 0.0
            booked[account] = (booked[account] - out) + 0.0
            turnover[account] = turnover[account] + (out + 0.0)
        paid_by[account] = 0.0
    for i in range(payees.shape[0]):
        paid_by[payees[i]] = 0.0


OK = 0
"""`post` status: the postings were applied."""
BAD_AMOUNT = 1
"""`post` status: an amount is NaN, infinite or negative; nothing was applied."""
BAD_SOURCE = 2
"""`post` status: a source account index is outside the ledger; nothing was applied."""
BAD_DESTINATION = 3
"""`post` status: a destination account index is outside the ledger; nothing was applied."""


@njit(cache=True)
def post(balances, booked, turnover, asset, paid_by, slot, source, destination, amounts):
    """Check and apply one transfer of one asset: ``amounts[i]`` from ``source[i]`` to
    ``destination[i]``.

    Nothing is changed unless every amount is finite and >= 0 and every account index is
    inside the ledger. Then the totals per account (`sum_by_account`) are applied to the
    asset's rows (`apply_postings`).

    Args:
        balances, booked, turnover: float64[n_assets, n_accounts] (row ``asset`` changed).
        asset: the asset's row.
        paid_by: float64[n_accounts] scratch of 0.0; slot: int64[n_accounts] scratch of -1.
        source, destination: int64[k], accounts; amounts: float64[k], amounts.

    Returns:
        ``(accounts, totals, n_payers, status, where)``: each paying account once, then each
        receiving account once (``accounts[:n_payers]``, ``accounts[n_payers:]``), with its
        total paid or received (two arrays rather than four: fewer to hand back to Python);
        ``status`` `OK` or the first problem found (`BAD_AMOUNT`, `BAD_SOURCE`,
        `BAD_DESTINATION`) at posting ``where`` (then the arrays are empty).
    """
    n_accounts = slot.shape[0]
    for i in range(amounts.shape[0]):
        amount = amounts[i]
        status = OK
        if not (amount >= 0.0 and amount < np.inf):  # NaN fails too
            status = BAD_AMOUNT
        elif source[i] < 0 or source[i] >= n_accounts:
            status = BAD_SOURCE
        elif destination[i] < 0 or destination[i] >= n_accounts:
            status = BAD_DESTINATION
        if status != OK:
            return np.empty(0, dtype=np.int64), np.empty(0), 0, status, i
    payers, paid, _ = sum_by_account(source, amounts, slot)
    payees, received, _ = sum_by_account(destination, amounts, slot)
    apply_postings(
        balances[asset], booked[asset], turnover[asset], paid_by, payers, paid, payees, received
    )
    return np.concatenate((payers, payees)), np.concatenate((paid, received)), len(payers), OK, -1


@njit(cache=True)
def scan_books(balances, booked, opening, turnover, rounding_scale, largest):
    """One pass over ``[asset, account]`` for the end-of-step check.

    ``rounding_scale = min(rounding_scale + (|opening| + turnover), largest)`` in place (NaN
    stays NaN, like ``np.minimum``), each asset's magnitude ``sum(|opening| + turnover)``
    (added in account order: a tolerance scale, within ``n_accounts`` ulps, far closer in
    practice), and whether any balance is not finite or differs from the ledger's own copy
    (the check then finds the first one: the rare path).

    Args:
        balances, booked, opening, turnover: float64[n_assets, n_accounts].
        rounding_scale: float64[n_assets, n_accounts], changed in place.
        largest: the clamp of ``rounding_scale`` (the largest float).

    Returns:
        ``(magnitude, any_not_finite, any_changed)``: magnitude float64[n_assets].
    """
    n_assets, n_accounts = balances.shape
    not_finite = 0
    changed = 0
    magnitude = np.zeros(n_assets)
    for a in range(n_assets):
        total = 0.0
        for i in range(n_accounts):
            size = abs(opening[a, i]) + turnover[a, i]
            total += size
            scale = rounding_scale[a, i] + size
            rounding_scale[a, i] = largest if scale > largest else scale
            b = balances[a, i]
            not_finite |= not (abs(b) <= largest)  # inf and NaN
            changed |= b != booked[a, i]
        magnitude[a] = total
    return magnitude, not_finite != 0, changed != 0


def _is_index(key) -> bool:
    return isinstance(key, (int, np.integer))


class FlowBook:
    """Amounts posted this step under each flow: ``[asset, flow, account]``, kept sparsely.

    Each posting adds one chunk per (asset, flow) to a journal: the accounts it touched
    (each once) and the amount of each. A row ``[asset, flow]`` is summed only when read, by
    adding the chunks in posting order to a row of zeros, so it holds bit for bit what a dense
    accumulator updated by every posting would. A row once read is kept, brought up to date
    on later reads and zeroed where it was posted to at `clear`. Memory grows with the rows
    read, work with the postings: neither with assets x flows x accounts.

    Indexing reads like the dense array: ``book[asset, flow]`` (a row over all accounts),
    ``book[asset, flow, accounts]``, ``book[asset, :, account]``, ``np.asarray(book)``.
    It cannot be written to.

    Args:
        n_assets, n_flows, n_accounts: the shape of the dense array it stands for.
    """

    ndim = 3
    dtype = np.dtype(np.float64)

    def __init__(self, n_assets: int, n_flows: int, n_accounts: int):
        self.shape = (n_assets, n_flows, n_accounts)
        self._chunks: dict[tuple[int, int], list[tuple[int, int]]] = {}
        """(asset, flow) -> the chunks posted under it, as ranges of the journal."""
        self._accounts = np.empty(1024, dtype=np.int64)
        self._amounts = np.empty(1024)
        self._used = 0
        """The journal: ``_accounts[:_used]`` and ``_amounts[:_used]``, every chunk in turn.
        Kept from step to step (grown, never shrunk), so that postings allocate nothing
        that outlives them: memory allocated and freed in a changing pattern slows the
        numpy code around it."""
        self._rows: dict[tuple[int, int], list] = {}
        """(asset, flow) -> [row read before, number of chunks added to it]."""

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n_posted(self) -> int:
        """Number of (account, amount) entries posted since the last `clear`."""
        return self._used

    def add(self, asset: int, flow: int, accounts: np.ndarray, amounts: np.ndarray) -> None:
        """Record that ``accounts`` (each at most once) got ``amounts`` under (asset, flow).

        ``asset`` and ``flow`` are Python or numpy integers (they hash alike).
        """
        start = self._used
        stop = start + len(accounts)
        if stop == start:
            return
        if stop > len(self._accounts):
            capacity = max(stop, 2 * len(self._accounts))
            self._accounts = np.concatenate(
                (self._accounts[:start], np.empty(capacity - start, np.int64))
            )
            self._amounts = np.concatenate((self._amounts[:start], np.empty(capacity - start)))
        self._accounts[start:stop] = accounts
        self._amounts[start:stop] = amounts
        self._used = stop
        self._chunks.setdefault((asset, flow), []).append((start, stop))

    def posted(self):
        """Each (asset, flow) posted to since the last `clear`, with the accounts of each
        chunk (arrays that are only valid until the next posting)."""
        for (asset, flow), chunks in self._chunks.items():
            for start, stop in chunks:
                yield asset, flow, self._accounts[start:stop]

    def clear(self) -> None:
        """Forget every posting (start of a step): work in proportion to what was posted."""
        for key, kept in self._rows.items():
            row, added = kept
            chunks = self._chunks.get(key, [])[:added]
            if sum(stop - start for start, stop in chunks) * 4 >= len(row):
                row[:] = 0.0
            else:
                for start, stop in chunks:
                    row[self._accounts[start:stop]] = 0.0
            kept[1] = 0
        self._chunks = {}
        self._used = 0

    def row(self, asset: int, flow: int) -> np.ndarray:
        """``[asset, flow]`` over all accounts: kept, and changed in place by later reads."""
        key = (int(asset), int(flow))
        kept = self._rows.get(key)
        if kept is None:
            kept = self._rows[key] = [np.zeros(self.shape[2]), 0]
        row, added = kept
        chunks = self._chunks.get(key, ())
        for start, stop in chunks[added:]:
            row[self._accounts[start:stop]] += self._amounts[start:stop]  # accounts once each
        kept[1] = len(chunks)
        return row

    def _read(self, asset, flow, account_key):
        """``[asset, flow, account_key]`` as numpy indexing of the row would give it."""
        key = (int(asset), int(flow))
        if key in self._chunks or key in self._rows:
            return self.row(asset, flow)[account_key]
        if _is_index(account_key):  # nothing posted under it
            range(self.shape[2])[account_key]  # IndexError outside, as numpy would raise
            return np.float64(0.0)
        return np.zeros(self.shape[2])[account_key]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (3 - len(key) + 1)
            key = key[:at] + fill + key[at + 1 :]
        if len(key) > 3:
            raise IndexError(f"too many indices for a flow book: {len(key)} (it has 3)")
        asset_key, flow_key, account_key = key + (slice(None),) * (3 - len(key))
        n_assets, n_flows, n_accounts = self.shape
        if _is_index(asset_key) and _is_index(flow_key):
            asset = range(n_assets)[asset_key]
            flow = range(n_flows)[flow_key]
            return self._read(asset, flow, account_key)
        assets = np.arange(n_assets)[asset_key]
        flows = np.arange(n_flows)[flow_key]
        trailing = np.empty(n_accounts)[account_key].shape
        out = np.empty((np.size(assets), np.size(flows), *trailing))
        for i, asset in enumerate(np.atleast_1d(assets)):
            for j, flow in enumerate(np.atleast_1d(flows)):
                out[i, j] = self._read(asset, flow, account_key)
        if np.ndim(flows) == 0:
            out = out[:, 0]
        if np.ndim(assets) == 0:
            out = out[0]
        return out

    def __array__(self, dtype=None, copy=None):
        dense = self[:, :, :]
        return dense if dtype is None else dense.astype(dtype)
