"""The step guard: no NaN, inf or negative quantity or price gets past the phase that wrote it.

The model calls these checks inside every step (`marketsim.model.SupplyChainModel.step`):

- after each phase of a sector (``observe``, ``offer``, ``bid``, ``on_sold``, ``on_bought``,
  ``account``, ...): every public float attribute of the sector (its state arrays and
  scalars), its block of the market book when it offered or bid, and the depreciation it
  charged. Fields named in the sector's ``signed_fields`` (growth rates, earnings) must be
  finite; every other float field is a quantity or a price and must be finite and >= 0;
- after each phase of a *plugin's* sector, also what it could have written outside its own
  state: every market's whole book and the firm table. A plugin sector that writes a
  buyer's demand (its own or another's) after bidding, or into another market, is named
  then, not the sector that reads the value next;
- after the mechanism, and after a plugin's ``marketsim_after_clear``: the
  `ClearingOutcome` (a `ClearingOutcome`, arrays of one value per seller or buyer, finite
  and >= 0, price finite and >= 0) and the market's book;
- after each plugin's implementation of a phase hook (``marketsim_step_start``,
  ``marketsim_before_clear``, ``marketsim_after_clear``, ``marketsim_step_end``; each half
  of a wrapper): everything a hook can reach, that is every market's whole book (prices,
  capacities, demands finite and >= 0; a buyer's limit price >= 0, ``inf`` meaning a market
  order), every sector and the firm table (`check_model`);
- after the books are closed: the firm table (debt, book values, income statements);
- metric values are checked when recorded (`marketsim.metrics.Recorder`): NaN means
  undefined and is written as null; inf, None, strings or a wrong shape are errors. A text
  metric (a `MetricSpec` with ``categories``, e.g. ``chain.binding_input``) must return one
  of its categories, or None for null, per row.

A violation raises `StepGuardError` with one line naming who wrote the value (a plugin by
name, or ``built-in``), the phase, the field, the step and the firm, e.g.
``plugin 'cooling.py' sector 'cooling' (account): field 'price' is NaN at step 7 (firm
cooling:3)``; the command line prints it and exits with code 2.

Public float attributes are checked; names starting with ``_`` are private to the sector
and are not. -0.0 is a zero and passes.

Cost: each check gathers the arrays it looks at into one buffer and takes one maximum over
its bits (`FINITE_NON_NEGATIVE_BITS`); only when that shows a bad value is the field
located. Which attributes to gather is cached per sector. No Python runs per firm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from marketsim.errors import MarketsimError
from marketsim.markets.market import ClearingOutcome
from marketsim.plugins import BUILTIN_NAME
from marketsim.sectors.base import Sector

if TYPE_CHECKING:
    from marketsim.markets.market import Market
    from marketsim.model import SupplyChainModel

INF = math.inf

QUANTITY = "quantity"
"""A quantity or price: finite and >= 0."""
SIGNED = "signed"
"""A value that may be negative (a growth rate, earnings): finite."""
LIMIT = "limit"
"""A buyer's limit price: >= 0, ``inf`` allowed (a market order), never NaN."""

BOOK_FIELDS = {
    "seller_price": QUANTITY,
    "seller_capacity": QUANTITY,
    "buyer_demand": QUANTITY,
    "buyer_limit_price": LIMIT,
    "buyer_forward_demand": QUANTITY,
}
"""The order-book arrays and the rule each obeys."""

OFFER_FIELDS = ("seller_price", "seller_capacity")
BID_FIELDS = ("buyer_demand", "buyer_limit_price", "buyer_forward_demand")
OUTCOME_FIELDS = (
    ("seller_sold", "seller"),
    ("seller_requested", "seller"),
    ("seller_value", "seller"),
    ("buyer_filled", "buyer"),
    ("buyer_unfilled", "buyer"),
    ("buyer_value", "buyer"),
)
"""The `ClearingOutcome` arrays and whose they are (one value per seller or buyer)."""

FIRM_FIELDS = {
    "debt": QUANTITY,
    "equity_raised": QUANTITY,
    "book_value": QUANTITY,
    "written_off": QUANTITY,
    "depreciation_pending": QUANTITY,
    "last_monthly_costs": QUANTITY,
    "ebitda_smoothed": SIGNED,
    "revenue": QUANTITY,
    "cost_of_goods": QUANTITY,
    "depreciation": QUANTITY,
    "opex": QUANTITY,
    "interest": QUANTITY,
    "tax": QUANTITY,
    "net_income": SIGNED,
    "capex": QUANTITY,
    "equity_issued": QUANTITY,
    "debt_drawn": QUANTITY,
    "dividends": QUANTITY,
}
"""The firm table's float arrays (`marketsim.firms.FirmTable`) and the rule each obeys."""


class StepGuardError(MarketsimError):
    """A sector, mechanism, hook or metric wrote a NaN, inf or negative value.

    The message is one line: who wrote it (``plugin '<name>'`` or ``built-in``), the phase,
    the field, the step and, for arrays, the firm (or seller, buyer).
    """


def writer(origin: str) -> str:
    """``built-in`` for marketsim's own code, else ``plugin '<name>'``."""
    return "built-in" if origin == BUILTIN_NAME else f"plugin {origin!r}"


FINITE_NON_NEGATIVE_BITS = np.uint64(0x7FF0000000000000)
"""The bits of +inf: read as unsigned integers, exactly the finite floats >= +0.0 lie below.

A set sign bit (negative numbers, -inf, -0.0) reads as 2**63 or more, +inf as this value and
every NaN as more (or as a negative), so one maximum over the bits checks a whole buffer
for NaN, inf and negatives at once. -0.0 fails it too; the slow path, which compares the
floats themselves, lets it through.
"""


CONCATENATE_BELOW = 1 << 16
"""Up to this many values in all, a sector's arrays are checked as one concatenated buffer
(one reduction; cheapest for small economies); above it, array by array, so a million-member
sector costs no copy of its state at each check."""


def _finite_non_negative(values: np.ndarray) -> bool:
    """Whether every value is finite and >= 0 (one reduction; -0.0 may say False)."""
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    return values.size == 0 or bool(values.view(np.uint64).max() < FINITE_NON_NEGATIVE_BITS)


def all_obey(arrays: list[np.ndarray], rule: str) -> bool:
    """Whether every value of ``arrays`` obeys ``rule`` (one reduction over one buffer).

    May say False for a -0.0 that obeys the rule: callers then locate the bad value with
    `violations`, which finds none, and let it pass.
    """
    if not arrays:
        return True
    if rule == SIGNED:
        arrays = [np.abs(values) for values in arrays]
    elif rule == LIMIT:
        arrays = [np.minimum(values, 1.0) for values in arrays]  # inf (a market order) is 1
    values = arrays[0].ravel() if len(arrays) == 1 else np.concatenate(arrays, axis=None)
    return _finite_non_negative(values)


def _value_obeys(value: float, rule: str) -> bool:
    """Whether one number obeys ``rule`` (False for NaN)."""
    if rule == SIGNED:
        return -INF < value < INF
    if rule == LIMIT:
        return value >= 0.0
    return 0.0 <= value < INF


def violations(values: np.ndarray, rule: str) -> np.ndarray:
    """Boolean mask of the values that break ``rule`` (comparisons of the floats: exact)."""
    if rule == SIGNED:
        return ~np.isfinite(values)
    if rule == LIMIT:
        return ~(values >= 0.0)
    return ~((values >= 0.0) & (values < INF))


def describe(value: float) -> str:
    """What is wrong with a value: ``is NaN``, ``is inf``, ``is negative (-5)``."""
    value = float(value)
    if math.isnan(value):
        return "is NaN"
    if math.isinf(value):
        return "is inf" if value > 0 else "is -inf"
    return f"is negative ({value:.6g})"


# -- sectors ----------------------------------------------------------------------------------


class _Layout:
    """Which public attributes of a sector are float arrays and floats, by rule.

    Taken once per sector and again whenever its number of attributes changes or an
    attribute changes type or rank, so a check does not look at every attribute each time.
    """

    __slots__ = ("size", "flat", "shaped", "signed", "scalars")

    def __init__(self, sector):
        state = vars(sector)
        signed_names = getattr(sector, "signed_fields", ())
        self.size = len(state)
        self.flat: list[str] = []
        """Quantity arrays of rank 1 (concatenated as they are)."""
        self.shaped: list[str] = []
        """Quantity arrays of other ranks (raveled first)."""
        self.signed: list[str] = []
        self.scalars: list[tuple[str, str]] = []
        for name, value in state.items():
            if name[0] == "_":
                continue
            rule = SIGNED if name in signed_names else QUANTITY
            if type(value) is np.ndarray:
                if value.dtype.kind != "f":
                    continue
                if rule == SIGNED:
                    self.signed.append(name)
                else:
                    (self.flat if value.ndim == 1 else self.shaped).append(name)
            elif isinstance(value, float):
                self.scalars.append((name, rule))


def _layout(model, sector) -> _Layout:
    layouts = model.guard_layouts
    layout = layouts.get(id(sector))
    if layout is None or layout.size != len(vars(sector)):
        layout = layouts[id(sector)] = _Layout(sector)
    return layout


def _sector_ok(model, sector, book_fields) -> bool:
    """Whether the sector's state and its book fields obey their rules (the fast path).

    Signed arrays enter as their absolute values and limit prices as ``min(limit, 1)``, so
    one buffer, its minimum and its maximum decide every rule at once: NaN, inf and
    negative values all show there.
    """
    state = vars(sector)
    layout = _layout(model, sector)
    for name, rule in layout.scalars:
        if not _value_obeys(state[name], rule):
            return False
    arrays = [state[name] for name in layout.flat]
    arrays += [state[name].ravel() for name in layout.shaped]
    arrays += [np.abs(state[name]).ravel() for name in layout.signed]
    for name, values in book_fields:
        arrays.append(np.minimum(values, 1.0) if BOOK_FIELDS[name] == LIMIT else values)
    if sector.has_accounts:
        arrays.append(model.firms.depreciation_pending[sector.rows])
    if not arrays:
        return True
    if sum(values.size for values in arrays) <= CONCATENATE_BELOW:
        return _finite_non_negative(np.concatenate(arrays))  # rank 1 (else raises)
    return all(_finite_non_negative(values) for values in arrays)  # no big temporary


def _book_fields_of(phase, market, block) -> list[tuple[str, np.ndarray]]:
    if market is None or block is None:
        return []
    names = OFFER_FIELDS if phase == "offer" else BID_FIELDS if phase == "bid" else ()
    return [(name, getattr(market.book, name)[block]) for name in names]


_NO_OPS = {
    phase: getattr(Sector, phase)
    for phase in ("setup", "observe", "offer", "bid", "on_bought", "account", "on_default")
}
"""The base class's phases that write nothing (a sector that keeps them needs no check)."""


def check_sector(
    model: SupplyChainModel,
    sector,
    phase: str,
    market: Market | None = None,
    block: slice | None = None,
    who: str | None = None,
) -> None:
    """Check a sector's state after ``phase`` (and its block of ``market``'s book).

    Args:
        model: the model.
        sector: the sector that just acted.
        phase: the phase it ran (``observe``, ``offer``, ...).
        market, block: for ``offer`` and ``bid``, the market and the sector's block of it.
        who: the writer, if not the sector's own plugin (a hook).

    Raises:
        StepGuardError: a field is NaN, inf, or negative without being a signed field.
    """
    if phase in _NO_OPS and getattr(type(sector), phase, None) is _NO_OPS[phase]:
        return  # the base class's phase does nothing
    book_fields = _book_fields_of(phase, market, block)
    try:
        if _sector_ok(model, sector, book_fields):
            return
    except (TypeError, ValueError, KeyError):  # an attribute changed type: look again
        model.guard_layouts.pop(id(sector), None)
        if _sector_ok(model, sector, book_fields):
            return
    if who is None:
        who = _sector_writer(model, sector, phase, market)
    _locate_sector_problem(model, sector, who, book_fields)


def _sector_writer(model, sector, phase: str, market) -> str:
    """``<plugin 'x' | built-in> sector 'name' (<phase>[ in market 'good'])``."""
    origin = model.components.origin("sector", sector.name)
    where = phase if market is None else f"{phase} in market {market.name!r}"
    return f"{writer(origin)} sector {sector.name!r} ({where})"


def check_sector_writes(model: SupplyChainModel, sector, phase: str, *args) -> None:
    """After a plugin sector's phase: every market book and the firm table (its own state aside).

    A plugin's sector can reach beyond its own arrays (``model.markets``, ``model.firms``);
    what it wrote there is checked before anyone reads it, so the plugin is named rather than
    the built-in sector that would read the value next. Built-in sectors write only their
    own state and their own block of the book, which `check_sector` checks.
    """
    if model.components.origin("sector", sector.name) == BUILTIN_NAME:
        return
    market = args[0] if args and hasattr(args[0], "book") else None
    for other in model.markets.values():
        if not _book_ok(other.book):
            who = _sector_writer(model, sector, phase, market)
            check_book(model, other, who if other is market else f"{who}: market {other.name!r}")
    if not _firms_ok(model.firms):
        check_firms(model, _sector_writer(model, sector, phase, market))


def _locate_sector_problem(model, sector, who: str, book_fields) -> None:
    """Raise `StepGuardError` for the first bad field of ``sector`` (``who`` wrote it)."""
    step = model.step_index
    signed_names = getattr(sector, "signed_fields", ())
    hint = f"; a field that may be negative belongs in {type(sector).__name__}.signed_fields"
    fields = []
    for name, value in vars(sector).items():
        if name[0] == "_":
            continue
        rule = SIGNED if name in signed_names else QUANTITY
        if isinstance(value, float):
            if not _value_obeys(value, rule):
                extra = hint if value < 0 and rule == QUANTITY else ""
                raise StepGuardError(
                    f"{who}: field {name!r} {describe(value)} at step {step}{extra}"
                )
        elif type(value) is np.ndarray and value.dtype.kind == "f":
            fields.append((name, value, rule, hint))
    for name, values in book_fields:
        fields.append((f"book.{name}", values, BOOK_FIELDS[name], ""))
    if sector.has_accounts:
        depreciation = model.firms.depreciation_pending[sector.rows]
        fields.append(("depreciation charged", depreciation, QUANTITY, ""))
    for name, values, rule, hint in fields:
        bad = violations(values, rule)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            value = values[index]
            extra = hint if value < 0 and rule == QUANTITY else ""
            raise StepGuardError(
                f"{who}: field {name!r} {describe(value)} at step {step}"
                f"{_member(model, sector, values, index)}{extra}"
            )


def _member(model, sector, values: np.ndarray, index: tuple[int, ...]) -> str:
    """`` (firm <sector>:<k>)`` for the first index of a per-member or per-firm array."""
    if not index:
        return ""
    first, rest = index[0], index[1:]
    column = f", column {rest[0] if len(rest) == 1 else rest}" if rest else ""
    if values.shape[0] == sector.count:
        member = "firm" if sector.has_accounts else "segment"
        return f" ({member} {sector.name}:{first}{column})"
    if values.shape[0] == model.firms.n:
        return f" (firm {model.ledger.account_names[first]}{column})"
    return f" (index {index if rest else first})"


def check_sectors(model: SupplyChainModel, who: str) -> None:
    """Check every market's book, every sector's state and the firm table (after a hook).

    Args:
        model: the model.
        who: the writer and phase for the message, e.g. ``plugin 'x' hook
            marketsim_step_end``.
    """
    for market in model.markets.values():
        check_book(model, market, f"{who} (market {market.name!r})")
    check_firms(model, who)
    for sector in model.sectors.values():
        check_sector(model, sector, "state", who=f"{who}: sector {sector.name!r}")


check_model = check_sectors
"""Everything a hook can write: every book, every sector's state, the firm table."""


def check_after_clear(model: SupplyChainModel, market: Market, outcome, who: str) -> None:
    """After a plugin's ``marketsim_after_clear``: the outcome, then everything else."""
    checked_outcome(model, market, outcome, f"{who} (market {market.name!r})")
    check_sectors(model, who)


# -- the firm table -----------------------------------------------------------------------------


def _firms_ok(firms) -> bool:
    quantities = [getattr(firms, n) for n, rule in FIRM_FIELDS.items() if rule == QUANTITY]
    signed = [getattr(firms, n) for n, rule in FIRM_FIELDS.items() if rule == SIGNED]
    return all_obey(quantities, QUANTITY) and all_obey(signed, SIGNED)


def check_firms(model: SupplyChainModel, who: str) -> None:
    """Check the firm table (`marketsim.firms.FirmTable`): debt, book values, statements."""
    firms = model.firms
    if _firms_ok(firms):
        return
    for name, rule in FIRM_FIELDS.items():
        values = np.asarray(getattr(firms, name), dtype=float)
        bad = violations(values, rule)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise StepGuardError(
                f"{who}: firm table field {name!r} {describe(values[first])} at step "
                f"{model.step_index} (firm {model.ledger.account_names[first]})"
            )


# -- markets ----------------------------------------------------------------------------------


def _participant(market: Market, side: str, index: int) -> str:
    participants = market.sellers if side == "seller" else market.buyers
    for sector, start, count in participants.sectors:
        if start <= index < start + count:
            return f" ({side} {sector.name}:{index - start})"
    return f" ({side} {index})"


def _book_ok(book) -> bool:
    quantities = [getattr(book, n) for n, rule in BOOK_FIELDS.items() if rule == QUANTITY]
    return all_obey(quantities, QUANTITY) and all_obey([book.buyer_limit_price], LIMIT)


def check_book(model: SupplyChainModel, market: Market, who: str) -> None:
    """Check a market's whole book (after a ``marketsim_before_clear`` hook).

    Raises:
        StepGuardError: a price, capacity or demand is NaN, inf or negative, or a limit
            price is NaN or negative.
    """
    book = market.book
    if _book_ok(book):
        return
    for name, rule in BOOK_FIELDS.items():
        values = getattr(book, name)
        bad = violations(values, rule)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            side = "seller" if name.startswith("seller") else "buyer"
            raise StepGuardError(
                f"{who}: field {f'book.{name}'!r} {describe(values[first])} at step "
                f"{model.step_index}{_participant(market, side, first)}"
            )


def checked_outcome(
    model: SupplyChainModel, market: Market, outcome: Any, who: str
) -> ClearingOutcome:
    """Check what a mechanism (or an ``after_clear`` hook) left as the market's outcome.

    Arrays given as lists or integers are turned into float arrays in place.

    Returns:
        The outcome, its arrays float64 numpy arrays of the right lengths.

    Raises:
        StepGuardError: not a `ClearingOutcome`, an array of the wrong length or not
            numeric, a value NaN, inf or negative, or a price NaN, inf or negative; or a
            bad value in the market's book (the mechanism or hook wrote it there).
    """
    step = model.step_index
    if not isinstance(outcome, ClearingOutcome):
        raise StepGuardError(
            f"{who}: returned {type(outcome).__name__}, expected a ClearingOutcome at step {step}"
        )
    sizes = {"seller": market.book.n_sellers, "buyer": market.book.n_buyers}
    arrays = []
    for name, side in OUTCOME_FIELDS:
        values = getattr(outcome, name)
        if type(values) is not np.ndarray or values.dtype != np.float64:
            values = _numeric(values, who, name, step)
            setattr(outcome, name, values)
        if values.shape != (sizes[side],):
            raise StepGuardError(
                f"{who}: field {name!r} has shape {values.shape}, expected "
                f"({sizes[side]},) (one value per {side}) at step {step}"
            )
        arrays.append(values)
    price = outcome.price
    if type(price) is not float:
        kind = np.asarray(price).dtype.kind if price is not None else "O"
        if kind not in "iuf" or np.ndim(price) != 0:
            raise StepGuardError(
                f"{who}: field 'price' is {type(price).__name__}, expected a number at step {step}"
            )
        price = outcome.price = float(price)
    if not _value_obeys(price, QUANTITY):
        raise StepGuardError(f"{who}: field 'price' {describe(price)} at step {step}")
    if not _book_ok(market.book):  # a mechanism may not spoil the book it cleared
        check_book(model, market, who)
    if _finite_non_negative(np.concatenate(arrays)):
        return outcome
    for (name, side), values in zip(OUTCOME_FIELDS, arrays, strict=True):
        bad = violations(values, QUANTITY)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise StepGuardError(
                f"{who}: field {name!r} {describe(values[first])} at step {step}"
                f"{_participant(market, side, first)}"
            )
    return outcome  # only -0.0 made all_obey say no


def _numeric(values: Any, who: str, name: str, step: int) -> np.ndarray:
    """``values`` as a float64 array, or `StepGuardError` if they are not numbers."""
    array = np.asarray(values) if values is not None else np.asarray(None, dtype=object)
    if array.dtype.kind not in "biuf":
        raise StepGuardError(
            f"{who}: field {name!r} is {type(values).__name__} of {array.dtype}, expected "
            f"numbers at step {step}"
        )
    return array.astype(np.float64)


def checked_member_values(model: SupplyChainModel, sector, phase: str, values: Any) -> np.ndarray:
    """Check what a sector's query phase (``book_value``) returned: one value >= 0 per member.

    Returns:
        The values as a float64 array.
    """
    origin = model.components.origin("sector", sector.name)
    who = f"{writer(origin)} sector {sector.name!r} ({phase})"
    step = model.step_index
    values = _numeric(values, who, "returned", step)
    if values.shape != (sector.count,):
        raise StepGuardError(
            f"{who}: returned shape {values.shape}, expected ({sector.count},) (one value "
            f"per member) at step {step}"
        )
    bad = () if all_obey([values], QUANTITY) else np.flatnonzero(violations(values, QUANTITY))
    if len(bad):
        first = int(bad[0])
        raise StepGuardError(
            f"{who}: returned value {describe(values[first])} at step {step}"
            f"{_member(model, sector, values, (first,))}"
        )
    return values
