"""Outcome measures: one number per run for every column over the horizon.

For each run (one group of the key columns) and every column of the ``chain`` table, and
of the ``sectors`` and ``markets`` tables per sector or market, the measures are

- ``cumulative``: the sum over steps, only for flows (unit containing ``"per step"``);
  its unit is the flow's without ``"per step"`` (USD per step -> USD);
- ``peak``: the largest value over steps;
- ``mean``: the mean over steps (``mean_<first>_<last>`` over a window of steps, inclusive);
- ``final``: the value at the run's last step.

Which columns exist comes from the manifest's units (plugins add columns), never a fixed
list; a column without a unit is not measured. Nulls are undefined values: they are left
out of sums, means and peaks, and a measure with no defined value is null.

A text column (not numeric, e.g. ``chain.binding_input``) has none of these; instead, for
each of its categories (a categorical column's categories, else the values occurring in any
run of the table), ``months_<category>`` counts the steps of the run holding that value
(unit ``months``; 0 when it never does), e.g. ``chain.binding_input.months_power``.

Payback: ``sectors.<sector>.cumulative_free_cash_flow.payback_month`` is the first step
(month, counted from 0) from which the sector's cumulative free cash flow is >= 0 at every
step through the run's last: 0 when it is never negative; null when it is negative at the
last step (not paid back within the horizon, or a null there). A sector that pays back and
later falls below zero again pays back only from its last return to >= 0.

Horizon ratios are the ratios a mean of monthly ratios gets wrong (a month of tiny revenue
weighs as much as a month of huge revenue); they divide horizon sums, over the steps where
both sides are defined, and are null when the denominator is at most one dollar:

- ``sectors.<sector>.gross_margin.horizon`` = Σ gross_profit / Σ revenue (share);
- ``sectors.<sector>.value_capture_share.horizon`` = Σ gross_profit of the sector /
  Σ gross_profit of all sectors (share; the shares of a run sum to one);
- ``chain.capex_to_revenue.horizon`` = Σ chain_capex / Σ end_revenue (ratio).

Outcome names are ``chain.<column>.<measure>`` and ``<table>.<entity>.<column>.<measure>``,
e.g. ``chain.chain_capex.cumulative``, ``sectors.chip_vendor.gross_margin.mean``,
``markets.compute.price.mean``.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd

from marketsim.analysis.loading import ENTITY
from marketsim.analysis.loading import TABLES
from marketsim.analysis.stats import nullable

FLOW_MARK = "per step"
"""A unit containing this is a flow: it has a ``cumulative`` measure."""
MEASURES = ("cumulative", "peak", "mean", "final")
COUNT_PREFIX = "months_"
"""``<column>.months_<category>``: steps of a run in which a text column held that category."""
PAYBACK_COLUMN = "cumulative_free_cash_flow"
PAYBACK_MEASURE = "payback_month"
"""``sectors.<sector>.cumulative_free_cash_flow.payback_month`` (see the module docstring)."""
SMALLEST_DENOMINATOR_USD = 1.0
"""A horizon ratio with a denominator of at most one dollar is undefined (null)."""
HORIZON_UNITS = {
    "sectors.gross_margin": "share",
    "sectors.value_capture_share": "share",
    "chain.capex_to_revenue": "ratio",
}

HEADLINE = (
    "chain.end_revenue.cumulative",
    "chain.chain_gross_profit.cumulative",
    "chain.chain_capex.cumulative",
    "chain.capex_to_revenue.horizon",
    "chain.valuation_to_fundamental.mean",
    "chain.valuation_to_fundamental.peak",
    "chain.utilization.mean",
    "chain.stranded_accelerators.peak",
    "chain.defaults.final",
    "sectors.*.gross_margin.horizon",
    "sectors.*.value_capture_share.horizon",
    "markets.*.price.mean",
)
"""Patterns of the outcomes a report or ``marketsim compare`` shows first."""

SENSITIVITY_DEFAULTS = (
    "chain.chain_capex.cumulative",
    "chain.valuation_to_fundamental.mean",
    "sectors.*.value_capture_share.horizon",
    "markets.compute.price.mean",
)
"""Patterns of the outcomes analysed for sensitivity when a study names none."""


def outcome_measures(
    tables: Mapping[str, pd.DataFrame],
    units: Mapping[str, Mapping[str, str]],
    keys: Sequence[str],
    window: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Horizon measures and horizon ratios of every run (see the module docstring).

    Args:
        tables: ``chain``, ``sectors``, ``markets`` (any present; others are ignored), each
            with the ``keys`` columns and ``step``.
        units: table -> column -> unit (the manifest's ``units``).
        keys: the columns identifying a run, e.g. ``["scenario", "point", "replication"]``
            or ``["replication"]``.
        window: ``(first_step, last_step)``, inclusive: adds ``mean_<first>_<last>``, the
            mean over those steps (null for a run without them).

    Returns:
        Tidy frame ``keys..., outcome, value`` sorted by keys and outcome; ``value`` is
        nullable ``Float64`` in the outcome's unit (`outcome_unit`).

    Raises:
        ValueError: ``keys`` is empty (a bug: a run needs a key, even a constant one).
    """
    keys = list(keys)
    if not keys:
        raise ValueError("outcome_measures needs at least one key column")
    pieces = []
    for name in TABLES:
        frame = tables.get(name)
        columns = [c for c in units.get(name, {}) if frame is not None and c in frame.columns]
        if frame is None or not columns:
            continue
        text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
        columns = [c for c in columns if c not in text]
        flows = [c for c in columns if FLOW_MARK in str(units[name][c])]
        if columns:
            pieces.extend(_table_measures(name, frame, columns, flows, keys, window))
        pieces.extend(_category_counts(name, frame, column, keys) for column in text)
    pieces.extend(_horizon_ratios(tables, keys))
    pieces.extend(_payback_months(tables.get("sectors"), keys))
    if not pieces:
        frame = pd.DataFrame({**{k: [] for k in keys}, "outcome": [], "value": []})
        return nullable(frame, ["value"])
    result = pd.concat(pieces, ignore_index=True)
    result = result.sort_values([*keys, "outcome"], kind="stable", ignore_index=True)
    return nullable(result, ["value"])


def _table_measures(
    name: str,
    frame: pd.DataFrame,
    columns: list[str],
    flows: list[str],
    keys: list[str],
    window: tuple[int, int] | None,
) -> list[pd.DataFrame]:
    entity = ENTITY[name]
    group = [*keys, entity] if entity else keys
    frame = frame[[*group, "step", *columns]].sort_values([*group, "step"], kind="stable")
    grouped = frame.groupby(group, sort=True, dropna=False, observed=True)[columns]
    wide = {
        "peak": grouped.max(),
        "mean": grouped.mean(),
        "final": frame.drop_duplicates(group, keep="last").set_index(group)[columns],
    }
    if flows:
        wide["cumulative"] = frame.groupby(group, sort=True, observed=True)[flows].sum(min_count=1)
    if window is not None:
        first, last = window
        inside = frame[frame["step"].between(first, last)]
        windowed = inside.groupby(group, sort=True, observed=True)[columns].mean()
        wide[f"mean_{first}_{last}"] = windowed.reindex(wide["mean"].index)
    pieces = []
    for measure, values in wide.items():
        long = values.melt(ignore_index=False, var_name="column", value_name="value")
        long = long.reset_index()
        prefix = f"{name}." + (long[entity].astype(str) + "." if entity else "")
        long["outcome"] = prefix + long["column"] + f".{measure}"
        pieces.append(long[[*keys, "outcome", "value"]])
    return pieces


def _category_counts(name: str, frame: pd.DataFrame, column: str, keys: list[str]) -> pd.DataFrame:
    """``months_<category>`` of one text column: steps per run holding each category."""
    entity = ENTITY[name]
    group = [*keys, entity] if entity else keys
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = [str(c) for c in values.cat.categories]
    else:
        categories = sorted({str(v) for v in values.dropna()})
    text = values.astype(object).where(values.notna(), None)
    counted = pd.DataFrame({**{k: frame[k] for k in group}, "category": text.to_numpy()})
    runs = frame[group].drop_duplicates().set_index(group).index
    table = counted.groupby([*group, "category"], sort=True, dropna=True, observed=True).size()
    wide = table.unstack("category").reindex(index=runs, columns=categories).fillna(0.0)
    wide.columns = [f"{COUNT_PREFIX}{c}" for c in categories]
    long = wide.astype(float).melt(ignore_index=False, var_name="measure", value_name="value")
    long = long.reset_index()
    prefix = f"{name}." + (long[entity].astype(str) + "." if entity else "")
    long["outcome"] = prefix + f"{column}." + long["measure"]
    return long[[*keys, "outcome", "value"]]


def _payback_months(sectors: pd.DataFrame | None, keys: list[str]) -> list[pd.DataFrame]:
    """``payback_month`` per run and sector (see the module docstring)."""
    if sectors is None or PAYBACK_COLUMN not in sectors.columns:
        return []
    group = [*keys, "sector"]
    frame = sectors[[*group, "step", PAYBACK_COLUMN]].sort_values([*group, "step"], kind="stable")
    cumulative = frame[PAYBACK_COLUMN].to_numpy(dtype=float, na_value=np.nan)
    unpaid = pd.Series(~(cumulative >= 0.0), index=frame.index)  # null counts as unpaid
    # whether the running total is negative at this step or at any later one of the run
    reversed_rows = frame.index[::-1]
    later = (
        unpaid.loc[reversed_rows]
        .groupby([frame.loc[reversed_rows, k] for k in group], sort=False, observed=True)
        .cummax()
    )
    paid_from_here = ~later.reindex(frame.index).to_numpy(dtype=bool)
    steps = frame["step"].where(paid_from_here)
    first = steps.groupby([frame[k] for k in group], sort=True, observed=True).min()
    result = first.reset_index()
    result["outcome"] = (
        "sectors." + result["sector"].astype(str) + f".{PAYBACK_COLUMN}.{PAYBACK_MEASURE}"
    )
    result["value"] = result["step"].to_numpy(dtype=float, na_value=np.nan)
    return [result[[*keys, "outcome", "value"]]]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> np.ndarray:
    top = numerator.to_numpy(dtype=float, na_value=np.nan)
    bottom = denominator.to_numpy(dtype=float, na_value=np.nan)
    out = np.full(top.shape, np.nan)
    defined = np.abs(bottom) > SMALLEST_DENOMINATOR_USD
    return np.divide(top, bottom, out=out, where=defined)


def _paired_sums(frame: pd.DataFrame, group: list[str], top: str, bottom: str) -> pd.DataFrame:
    """Sums of ``top`` and ``bottom`` per group over the rows where both are defined."""
    both = frame[top].notna() & frame[bottom].notna()
    masked = pd.DataFrame(
        {
            **{k: frame[k] for k in group},
            "top": frame[top].where(both),
            "bottom": frame[bottom].where(both),
        }
    )
    return masked.groupby(group, sort=True, observed=True)[["top", "bottom"]].sum(min_count=1)


def _horizon_ratios(tables: Mapping[str, pd.DataFrame], keys: list[str]) -> list[pd.DataFrame]:
    pieces = []
    sectors = tables.get("sectors")
    if sectors is not None and {"gross_profit", "revenue"} <= set(sectors.columns):
        sums = _paired_sums(sectors, [*keys, "sector"], "gross_profit", "revenue")
        pieces.append(_named(sums, _ratio(sums["top"], sums["bottom"]), "gross_margin", keys))
    if sectors is not None and "gross_profit" in sectors.columns:
        own = sectors.groupby([*keys, "sector"], sort=True, observed=True)["gross_profit"]
        own = own.sum(min_count=1).to_frame("top")
        chain = sectors.groupby(keys, sort=True, observed=True)["gross_profit"].sum(min_count=1)
        own["bottom"] = chain.reindex(own.index.droplevel("sector")).to_numpy()
        share = _ratio(own["top"], own["bottom"])
        pieces.append(_named(own, share, "value_capture_share", keys))
    chain_table = tables.get("chain")
    if chain_table is not None and {"chain_capex", "end_revenue"} <= set(chain_table.columns):
        sums = _paired_sums(chain_table, keys, "chain_capex", "end_revenue")
        frame = sums.reset_index()[keys]
        frame["outcome"] = "chain.capex_to_revenue.horizon"
        frame["value"] = _ratio(sums["top"], sums["bottom"])
        pieces.append(frame)
    return pieces


def _named(sums: pd.DataFrame, values: np.ndarray, column: str, keys: list[str]) -> pd.DataFrame:
    frame = sums.reset_index()[[*keys, "sector"]]
    frame["outcome"] = "sectors." + frame["sector"].astype(str) + f".{column}.horizon"
    frame["value"] = values
    return frame[[*keys, "outcome", "value"]]


def outcome_unit(outcome: str, units: Mapping[str, Mapping[str, str]]) -> str:
    """The unit of an outcome, e.g. ``"USD"`` for ``chain.chain_capex.cumulative``.

    Args:
        outcome: an outcome name (`outcome_measures`).
        units: table -> column -> unit (the manifest's ``units``).

    Returns:
        The unit, or ``""`` when unknown.
    """
    parts = outcome.split(".")
    if len(parts) < 3:
        return ""
    table, column, measure = parts[0], parts[-2], parts[-1]
    if measure == "horizon":
        return HORIZON_UNITS.get(f"{table}.{column}", "")
    if measure.startswith(COUNT_PREFIX):
        return "months"
    if measure == PAYBACK_MEASURE:
        return "month"
    unit = str(units.get(table, {}).get(column, ""))
    if measure == "cumulative":
        unit = unit.replace(FLOW_MARK, "").strip()
    return unit


def matching_outcomes(
    patterns: Iterable[str], names: Iterable[str], entity_order: Sequence[str] = ()
) -> list[str]:
    """The names matching each pattern (``*`` matches one entity), in pattern order.

    Args:
        patterns: outcome names or patterns such as ``sectors.*.gross_margin.horizon``.
        names: the outcome names available.
        entity_order: sectors and markets in the order to list them (others follow sorted).

    Returns:
        Matching names without repeats; within a pattern, in ``entity_order``.
    """
    available = sorted(set(names))
    rank = {entity: index for index, entity in enumerate(entity_order)}
    chosen: list[str] = []
    for pattern in patterns:
        found = [n for n in available if fnmatchcase(n, pattern) and n not in chosen]
        found.sort(key=lambda n: (rank.get(n.split(".")[1], len(rank)), n))
        chosen.extend(found)
    return chosen


def headline_outcomes(names: Iterable[str], entity_order: Sequence[str] = ()) -> list[str]:
    """The headline outcomes among ``names`` (`HEADLINE`), in reading order."""
    return matching_outcomes(HEADLINE, names, entity_order)


def default_sensitivity_outcomes(names: Iterable[str]) -> list[str]:
    """Cumulative chain capex, mean valuation/fundamental, each sector's horizon value-capture
    share and the mean compute price, as far as ``names`` has them."""
    return matching_outcomes(SENSITIVITY_DEFAULTS, names)
