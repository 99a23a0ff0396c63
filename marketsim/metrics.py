"""Metrics: the columns of the results tables, computed from arrays at the end of each step.

A `MetricSpec` names a table (``sectors``: one row per step and firm sector; ``markets``:
one row per step and market; ``chain``: one row per step), a column, a unit and a function
of the model returning the column's values for this step (an array over sectors or markets,
or a float for the chain). NaN means undefined (a margin with zero revenue) and is written
as null. The built-in columns are registered through the same hook as a plugin's.

What a metric returns is checked when it is recorded: numbers only (not None, not strings),
one per row of its table, never inf. A violation stops the run with one line naming the
metric and who registered it (`marketsim.guard.StepGuardError`); so do non-numeric or inf
columns of a sector's ``firm_state`` (NaN there is written as null too).

A text metric (a `MetricSpec` with ``categories``, unit `TEXT_UNIT`) returns one of its
categories (a string) per row, or None for null; anything else stops the run the same way.
Its column holds plain strings (object dtype; a Parquet ``string`` column, like the
sector and market names and like a study's tables), e.g. ``chain.binding_input``. Outcome
measures count the steps in each category (`marketsim.analysis.outcomes`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd

from marketsim.firm_output import Constant
from marketsim.firm_output import FirmOutput
from marketsim.firms import INCOME_FIELDS
from marketsim.guard import StepGuardError
from marketsim.guard import writer
from marketsim.plugins import guarded
from marketsim.surplus import CHOKE_PRICE_MULTIPLE
from marketsim.surplus import consumer_surplus

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

TABLES = ("sectors", "markets", "chain")
ROW_OF = {"sectors": "sector", "markets": "market", "chain": "step"}
"""What one value of a metric stands for, by table."""


@dataclass(frozen=True)
class MetricSpec:
    """One column of a results table.

    Args:
        table: ``"sectors"``, ``"markets"`` or ``"chain"``.
        column: the column's name.
        compute: model -> values this step (array over firm sectors or markets, or float).
        unit: the column's unit (`TEXT_UNIT` for a text column).
        doc: what the column means.
        categories: a text column's possible values, in order (empty: a numeric column);
            ``compute`` then returns one of them (or None, null) per row.
    """

    table: str
    column: str
    compute: Callable[[SupplyChainModel], np.ndarray | float | str | None]
    unit: str = ""
    doc: str = ""
    categories: tuple[str, ...] = ()

    @property
    def is_text(self) -> bool:
        """Whether the column holds text (one of ``categories``) rather than numbers."""
        return bool(self.categories)


TEXT_UNIT = "category"
"""The unit of a text column: its value names a category, it measures nothing."""


def by_sector(model: SupplyChainModel, values: np.ndarray) -> np.ndarray:
    """Sum a per-firm array over each firm sector."""
    return np.bincount(
        model.firms.sector_code, weights=values, minlength=len(model.firm_sectors)
    ).astype(float)


def ratio(numerator, denominator, smallest: float = 0.0) -> np.ndarray:
    """``numerator / denominator``, NaN where ``|denominator| <= smallest`` (e.g. $1 of revenue)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=np.abs(denominator) > smallest)


MIN_REVENUE_USD = 1.0
"""Revenue below one dollar makes a margin undefined (null), not a huge ratio of dust."""


def _sector_sum(field: str) -> Callable:
    return lambda model: by_sector(model, getattr(model.firms, field))


def _per_sector(function: Callable) -> Callable:
    return lambda model: np.array([function(s) for s in model.firm_sectors], dtype=float)


def _gross_profit(model):
    return by_sector(model, model.firms.revenue - model.firms.cost_of_goods)


def _operating_income(model):
    firms = model.firms
    return by_sector(model, firms.revenue - firms.cost_of_goods - firms.opex)


def _capacity(sector) -> float:
    return float(sector.capacity().sum())


def _stranded(sector) -> float:
    return float(sector.stranded.sum()) if hasattr(sector, "stranded") else np.nan


def _market_sum(attribute: str) -> Callable:
    return lambda model: np.array(
        [float(getattr(m.outcome, attribute).sum()) for m in model.markets.values()]
    )


def _chain_total(model, field: str) -> float:
    return float(getattr(model.firms, field).sum())


def _end_revenue(model) -> float:
    ledger = model.ledger
    end = ledger.account("end_customers")
    paid = ledger.flow_out[0, :, end]
    return float(paid.sum() - paid[ledger.flows.CLOSING])  # closing is not spending


def _compute_utilization(model) -> float:
    market = model.markets.get("compute")
    if market is None:
        return np.nan
    installed = sum(
        float(sector.installed_offered.sum()) for sector, _, _ in market.sellers.sectors
    )
    return float(ratio(market.outcome.seller_sold.sum(), installed))


def _stranded_total(model) -> float:
    values = [s.stranded.sum() for s in model.firm_sectors if hasattr(s, "stranded")]
    return float(np.sum(values)) if values else np.nan


def _capital(model, attribute: str) -> np.ndarray:
    """Per sector: the sum of the equity market's per-firm ``attribute`` (``model.equity``);
    null without a capital market."""
    if not model.equity.active:
        return np.full(len(model.firm_sectors), np.nan)
    return by_sector(model, getattr(model.equity, attribute))


def _capital_scalar(model, attribute: str) -> float:
    """The equity market's ``attribute`` (``model.equity``); null without a capital market."""
    return float(getattr(model.equity, attribute)) if model.equity.active else np.nan


def _free_cash_flow(model) -> np.ndarray:
    """Per sector: revenue - cash cost of goods - opex - interest - tax - capex (USD)."""
    firms = model.firms
    cash_cost_of_goods = firms.cost_of_goods - firms.depreciation
    return by_sector(
        model,
        firms.revenue - cash_cost_of_goods - firms.opex - firms.interest - firms.tax - firms.capex,
    )


_RUNNING_FREE_CASH_FLOW: WeakKeyDictionary = WeakKeyDictionary()
"""model -> (last step added, running free cash flow per sector in USD)."""


def _cumulative_free_cash_flow(model) -> np.ndarray:
    """Free cash flow summed from step 0 up to this step, per sector (USD)."""
    step = model.step_index
    last_step, total = _RUNNING_FREE_CASH_FLOW.get(model, (-1, None))
    if last_step != step:  # computed once per step, however often it is read
        this_step = _free_cash_flow(model)
        total = this_step if total is None else total + this_step
        _RUNNING_FREE_CASH_FLOW[model] = (step, total)
    return total.copy()


def _return_on_invested_capital(model) -> np.ndarray:
    """12 x NOPAT / book value per sector (per year); NaN where book value <= $1."""
    firms = model.firms
    operating_income = firms.revenue - firms.cost_of_goods - firms.opex
    tax_rate = model.experiment["finance"]["tax_rate"]
    nopat = operating_income - tax_rate * np.maximum(operating_income, 0.0)
    return ratio(12.0 * by_sector(model, nopat), by_sector(model, firms.book_value), 1.0)


MWH_PER_TWH = 1e6


def _electricity_twh_per_year(model) -> float:
    """Energy billed in the power market this step x 12 (TWh per year); NaN without one."""
    market = model.markets.get("power")
    if market is None:
        return np.nan
    contracted_mw = float(market.outcome.seller_sold.sum())
    return contracted_mw * market.billed_units_per_unit * 12.0 / MWH_PER_TWH


def _valuation_to_fundamental(model) -> float:
    equity = model.equity
    if not equity.active:
        return np.nan
    return float(ratio(equity.valuation.sum(), equity.fundamental.sum()))


BUILTIN_METRICS = [
    *(
        MetricSpec("sectors", name, _sector_sum(name), "USD per step", f"sum of firms' {name}")
        for name in INCOME_FIELDS
    ),
    MetricSpec(
        "sectors",
        "gross_profit",
        _gross_profit,
        "USD per step",
        "revenue - cost of goods (incl. depreciation)",
    ),
    MetricSpec(
        "sectors",
        "gross_margin",
        lambda m: ratio(_gross_profit(m), by_sector(m, m.firms.revenue), MIN_REVENUE_USD),
        "share",
        "gross profit / revenue; null without revenue",
    ),
    MetricSpec(
        "sectors",
        "operating_margin",
        lambda m: ratio(_operating_income(m), by_sector(m, m.firms.revenue), MIN_REVENUE_USD),
        "share",
        "(gross profit - opex) / revenue; null without revenue",
    ),
    MetricSpec(
        "sectors",
        "value_capture_share",
        lambda m: ratio(_gross_profit(m), _gross_profit(m).sum()),
        "share",
        "sector gross profit / chain gross profit",
    ),
    MetricSpec("sectors", "cash", lambda m: by_sector(m, m.firms.cash), "USD", "cash held"),
    MetricSpec("sectors", "debt", _sector_sum("debt"), "USD", "debt outstanding"),
    MetricSpec(
        "sectors",
        "equity_raised",
        _sector_sum("equity_raised"),
        "USD",
        "cumulative new equity raised",
    ),
    MetricSpec(
        "sectors",
        "written_off",
        _sector_sum("written_off"),
        "USD",
        "cumulative debt and equity written off at defaults",
    ),
    MetricSpec(
        "sectors",
        "defaults",
        lambda m: by_sector(m, (m.firms.defaulted_step >= 0).astype(float)),
        "firms",
        "firms that have defaulted so far",
    ),
    MetricSpec(
        "sectors",
        "firms_alive",
        lambda m: by_sector(m, m.firms.alive.astype(float)),
        "firms",
        "firms still operating",
    ),
    MetricSpec(
        "sectors",
        "capacity",
        _per_sector(_capacity),
        "sold good's unit per step",
        "capacity offered",
    ),
    MetricSpec(
        "sectors",
        "sold",
        _per_sector(lambda s: float(s.sold.sum())),
        "sold good's unit per step",
        "quantity sold",
    ),
    MetricSpec(
        "sectors",
        "utilization",
        lambda m: ratio(_per_sector(lambda s: float(s.sold.sum()))(m), _per_sector(_capacity)(m)),
        "share",
        "sold / capacity; null without capacity",
    ),
    MetricSpec(
        "sectors",
        "stranded_accelerators",
        _per_sector(_stranded),
        "accelerators",
        "installed accelerators without power or network (data centers only)",
    ),
    MetricSpec(
        "sectors",
        "free_cash_flow",
        _free_cash_flow,
        "USD per step",
        "revenue - cash cost of goods (cost of goods less depreciation) - opex - interest"
        " - tax - capex, summed over the sector's firms (defaulted firms add 0)",
    ),
    MetricSpec(
        "sectors",
        "cumulative_free_cash_flow",
        _cumulative_free_cash_flow,
        "USD",
        "free_cash_flow summed from step 0 through this step within the replication",
    ),
    MetricSpec(
        "sectors",
        "return_on_invested_capital",
        _return_on_invested_capital,
        "per year",
        "12 x NOPAT / invested capital: NOPAT = sum over firms of operating income"
        " (revenue - cost of goods incl. depreciation - opex) less finance.tax_rate x its"
        " positive part; invested capital = the firms' book value of productive assets"
        " (end of step, before defaults); null when invested capital <= $1",
    ),
    MetricSpec(
        "markets",
        "price",
        lambda m: np.array([mk.outcome.price for mk in m.markets.values()]),
        "good's price unit",
        "volume-weighted mean price paid",
    ),
    MetricSpec(
        "markets", "quantity", _market_sum("seller_sold"), "good's unit per step", "quantity traded"
    ),
    MetricSpec(
        "markets",
        "demand",
        lambda m: np.array([float(mk.book.buyer_demand.sum()) for mk in m.markets.values()]),
        "good's unit per step",
        "quantity buyers asked for",
    ),
    MetricSpec(
        "markets",
        "supply",
        lambda m: np.array([float(mk.book.seller_capacity.sum()) for mk in m.markets.values()]),
        "good's unit per step",
        "capacity sellers offered",
    ),
    MetricSpec(
        "markets",
        "unfilled",
        _market_sum("buyer_unfilled"),
        "good's unit per step",
        "demand that could not be met",
    ),
    MetricSpec(
        "sectors",
        "valuation",
        lambda m: _capital(m, "valuation"),
        "USD",
        "market value of the sector's firms (null without a capital market)",
    ),
    MetricSpec(
        "sectors",
        "fundamental_value",
        lambda m: _capital(m, "fundamental"),
        "USD",
        "fundamentalists' value of the sector's firms from expected cash flows",
    ),
    MetricSpec(
        "chain",
        "valuation",
        lambda m: float(np.sum(_capital(m, "valuation"))),
        "USD",
        "market value of all firms",
    ),
    MetricSpec(
        "chain",
        "fundamental_value",
        lambda m: float(np.sum(_capital(m, "fundamental"))),
        "USD",
        "fundamental value of all firms",
    ),
    MetricSpec(
        "chain",
        "valuation_to_fundamental",
        _valuation_to_fundamental,
        "ratio",
        "valuation / fundamental value (bubble indicator)",
    ),
    MetricSpec(
        "chain",
        "trend_follower_share",
        lambda m: _capital_scalar(m, "trend_follower_share"),
        "share",
        "share of investors following trends (Brock-Hommes)",
    ),
    MetricSpec(
        "chain", "end_revenue", _end_revenue, "USD per step", "what end customers spend on tokens"
    ),
    MetricSpec(
        "chain",
        "chain_revenue",
        lambda m: _chain_total(m, "revenue"),
        "USD per step",
        "revenue of all firms",
    ),
    MetricSpec(
        "chain",
        "chain_gross_profit",
        lambda m: float((m.firms.revenue - m.firms.cost_of_goods).sum()),
        "USD per step",
        "gross profit of all firms",
    ),
    MetricSpec(
        "chain",
        "chain_capex",
        lambda m: _chain_total(m, "capex"),
        "USD per step",
        "capex of all firms",
    ),
    MetricSpec(
        "chain",
        "capex_to_revenue",
        lambda m: float(ratio(_chain_total(m, "capex"), _end_revenue(m), MIN_REVENUE_USD)),
        "ratio",
        "chain capex / end revenue",
    ),
    MetricSpec(
        "chain",
        "utilization",
        _compute_utilization,
        "share",
        "compute sold / what the installed fleet could sell (stranded included)",
    ),
    MetricSpec(
        "chain",
        "stranded_accelerators",
        _stranded_total,
        "accelerators",
        "installed accelerators without power or network",
    ),
    MetricSpec(
        "chain",
        "electricity_twh_per_year",
        _electricity_twh_per_year,
        "TWh per year",
        "energy billed in the power market this step, annualised: MW contracted x"
        " load_factor x 730 h x 12 / 1e6; covers the facility load (accelerator kW x PUE) of"
        " the modelled AI fleet only, not other data-center load; null without a power market",
    ),
    MetricSpec(
        "chain",
        "consumer_surplus",
        consumer_surplus,
        "USD per step",
        "end customers' surplus: integral of each segment's demand curve (as rationed:"
        " times filled / demanded) from the price it faced up to a choke price of"
        f" {CHOKE_PRICE_MULTIPLE:g} x reference_price_usd_per_mtoken (0 above it);"
        " null without an end_demand sector",
    ),
    MetricSpec(
        "chain",
        "defaults",
        lambda m: float((m.firms.defaulted_step >= 0).sum()),
        "firms",
        "firms defaulted so far",
    ),
]


def checked_values(raw, who: str, size: int, row_of: str, step: int) -> np.ndarray:
    """What a metric (or a ``firm_state`` column) returned, as a new float64 array.

    Args:
        raw: the returned value: a number or an array of numbers (NaN = undefined).
        who: the writer and the metric, for the message.
        size: how many values are expected.
        row_of: what one value stands for (``sector``, ``market``, ``firm``, ...).
        step: the step, for the message.

    Raises:
        StepGuardError: None, strings or other non-numbers, the wrong number of values, or
            an infinite value.
    """
    array = np.asarray(raw) if raw is not None else np.asarray(None, dtype=object)
    if array.dtype.kind not in "biuf":
        kind = type(raw).__name__
        if raw is not None and array.dtype.kind == "O":
            kind += " of objects"
        raise StepGuardError(
            f"{who}: returned {kind}, expected numbers (NaN where undefined) at step {step}"
        )
    array = np.atleast_1d(array).astype(np.float64)  # a copy: metrics may return views
    if array.shape != (size,):
        raise StepGuardError(
            f"{who}: returned shape {array.shape}, expected ({size},) (one value per "
            f"{row_of}) at step {step}"
        )
    return array


def checked_text_values(
    raw, who: str, size: int, row_of: str, step: int, categories: tuple[str, ...]
) -> np.ndarray:
    """What a text metric returned, as a new object array of its categories (None: null).

    Args:
        raw: one string (or None), or a sequence of them, one per row.
        who, size, row_of, step: as for `checked_values`.
        categories: the values allowed.

    Raises:
        StepGuardError: a value that is not one of ``categories`` or None, or the wrong
            number of values.
    """
    values = [raw] if raw is None or isinstance(raw, str) else list(np.asarray(raw, object).ravel())
    if len(values) != size:
        raise StepGuardError(
            f"{who}: returned {len(values)} values, expected {size} (one value per {row_of}) "
            f"at step {step}"
        )
    allowed = set(categories)
    for value in values:
        if value is not None and not (isinstance(value, str) and value in allowed):
            raise StepGuardError(
                f"{who}: returned {value!r}, expected one of {', '.join(categories)} or None "
                f"at step {step}"
            )
    return np.array(values, dtype=object)


def _first_infinite(values: np.ndarray) -> int | None:
    infinite = np.isinf(values)
    return int(np.flatnonzero(infinite)[0]) if infinite.any() else None


class Recorder:
    """Collects metric values each step and turns them into tidy DataFrames.

    Args:
        model: the model to record.
        metrics: the registered metric specs.
    """

    def __init__(self, model: SupplyChainModel, metrics: list[MetricSpec]):
        self.model = model
        self.metrics = {table: [m for m in metrics if m.table == table] for table in TABLES}
        self.rows: dict[str, dict[str, list]] = {
            table: {m.column: [] for m in specs} for table, specs in self.metrics.items()
        }
        self.steps: list[int] = []
        self.firm_level = bool(model.experiment["output"]["firm_level"])
        self.firm_output = FirmOutput(model) if self.firm_level else None
        """Firm-level rows, streamed to Parquet a step at a time (none kept here)."""

    def record(self, step: int) -> None:
        """Append this step's values of every metric (checked, see the module doc)."""
        self.steps.append(step)
        model = self.model
        sizes = {"sectors": len(model.firm_sectors), "markets": len(model.markets), "chain": 1}
        for table, specs in self.metrics.items():
            recorded = []
            for spec in specs:
                origin = model.components.origin("metric", f"{table}.{spec.column}")
                what = f"metric {table}.{spec.column}"
                raw = guarded(origin, what, spec.compute, model)
                who = f"{writer(origin)} {what}"
                if spec.is_text:
                    values = checked_text_values(
                        raw, who, sizes[table], ROW_OF[table], step, spec.categories
                    )
                    self.rows[table][spec.column].append(values)
                    continue
                values = checked_values(raw, who, sizes[table], ROW_OF[table], step)
                self.rows[table][spec.column].append(values)
                recorded.append(values)
            numeric = [spec for spec in specs if not spec.is_text]
            if recorded and _first_infinite(np.concatenate(recorded)) is not None:
                self._fail_infinite(table, numeric, recorded, step)
        if self.firm_output is not None:
            states = [self._firm_state(sector, step) for sector in model.sectors.values()]
            self.firm_output.write(step, states)

    def _fail_infinite(self, table: str, specs, recorded, step: int) -> None:
        model = self.model
        labels = {
            "sectors": [s.name for s in model.firm_sectors],
            "markets": list(model.markets),
        }
        for spec, values in zip(specs, recorded, strict=True):
            first = _first_infinite(values)
            if first is not None:
                origin = model.components.origin("metric", f"{table}.{spec.column}")
                row = f" ({ROW_OF[table]} {labels[table][first]!r})" if table in labels else ""
                raise StepGuardError(
                    f"{writer(origin)} metric {table}.{spec.column}: value is "
                    f"{'inf' if values[first] > 0 else '-inf'} at step {step}{row}"
                )

    def _firm_state(self, sector, step: int) -> tuple[str, dict[str, np.ndarray]]:
        """Who wrote a sector's ``firm_state`` and its columns, checked: numbers, one per
        member, never inf."""
        origin = self.model.components.origin("sector", sector.name)
        who = f"{writer(origin)} sector {sector.name!r} (firm_state)"
        state = guarded(origin, f"sector {sector.name!r} (firm_state)", sector.firm_state)
        columns = {}
        for name, raw in state.items():
            values = checked_values(raw, f"{who} column {name!r}", sector.count, "member", step)
            first = _first_infinite(values)
            if first is not None:
                raise StepGuardError(
                    f"{who}: column {name!r} is {'inf' if values[first] > 0 else '-inf'} at "
                    f"step {step} (member {sector.name}:{first})"
                )
            columns[name] = values
        return who, columns

    def stream_firms_to(self, path: str | Path, leading: Sequence[Constant] | None = None) -> None:
        """Stream firm-level rows to the Parquet file ``path`` (`FirmOutput.stream_to`);
        `tables` then leaves ``firms`` out."""
        if self.firm_output is None:
            raise ValueError("stream_firms_to: this experiment has no firm-level output")
        self.firm_output.stream_to(path, leading)

    def finish_firms(self) -> None:
        """Complete the firm-level file (`FirmOutput.finish`)."""
        if self.firm_output is not None:
            self.firm_output.finish()

    def abort_firms(self) -> None:
        """Close and delete the firm-level file (`FirmOutput.abort`)."""
        if self.firm_output is not None:
            self.firm_output.abort()

    def tables(self, replication: int) -> dict[str, pd.DataFrame]:
        """The recorded tables as DataFrames (``sectors``, ``markets``, ``chain``, ``firms``).

        ``firms`` (firm-level output) is left out when its rows are streamed to a caller's
        file (`stream_firms_to`); otherwise the spool's segments are read back here.
        """
        model = self.model
        labels = {
            "sectors": [s.name for s in model.firm_sectors],
            "markets": list(model.markets),
            "chain": None,
        }
        frames = {}
        steps = np.asarray(self.steps, dtype=np.int64)
        for table, columns in self.rows.items():
            names = labels[table]
            width = len(names) if names is not None else 1
            frame = {
                "replication": np.full(len(steps) * width, replication, dtype=np.int64),
                "step": np.repeat(steps, width),
            }
            if names is not None:
                frame[table[:-1] if table != "sectors" else "sector"] = np.tile(
                    np.array(names, dtype=object), len(steps)
                )
            text = {m.column for m in self.metrics[table] if m.is_text}
            for column, values in columns.items():
                empty = np.zeros(0, dtype=object if column in text else float)
                frame[column] = np.concatenate(values) if values else empty
            frames[table] = pd.DataFrame(frame)
        if self.firm_output is not None and not self.firm_output.streamed:
            frames["firms"] = self.firm_output.frame(replication)
        return frames
