"""Summaries with confidence intervals: per step, per outcome, and paired differences.

Every interval is a two-sided 95% t interval for a mean: ``mean ± t(0.975, n-1) · std/√n``
with the sample standard deviation (``ddof=1``). With fewer than two values the interval
is null; without any value the mean is null too. Results never hold NaN or inf: value
columns use pandas' nullable ``Float64`` dtype, where null (``pd.NA``) means undefined.

Layouts (tidy, one row per statistic's subject):

- `step_summary`: ``group..., step, column, mean, std, n, ci_low, ci_high``
- `outcome_summary`: ``group..., outcome, mean, std, n, ci_low, ci_high``
- `paired_differences`: ``scenario, reference, [point], outcome, mean_difference, ci_low,
  ci_high, n``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from marketsim.analysis.loading import AnalysisError

CONFIDENCE = 0.95
"""Two-sided coverage of every interval."""

STATISTICS = ("mean", "std", "n", "ci_low", "ci_high")


def t_interval(mean: np.ndarray, std: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95% t interval of a mean, NaN where ``n < 2`` or an input is not finite.

    Args:
        mean: sample means (any unit).
        std: sample standard deviations (``ddof=1``, same unit).
        n: sample sizes (count of non-null values).

    Returns:
        ``(low, high)`` arrays in the unit of ``mean``.
    """
    from scipy import stats  # imported here: scipy.stats takes ~0.4 s to import

    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    sizes = np.asarray(n, dtype="int64")
    largest = max(int(sizes.max()) if sizes.size else 0, 1)
    # t(0.975, n-1)/sqrt(n) by sample size, looked up rather than computed per row; NaN
    # below two values, so the interval is NaN there.
    scale = np.full(largest + 1, np.nan)
    counts = np.arange(2, largest + 1)
    scale[2:] = stats.t.ppf(0.5 + CONFIDENCE / 2, counts - 1) / np.sqrt(counts)
    with np.errstate(invalid="ignore", over="ignore"):
        half = scale[sizes] * std
        low = mean - half
        high = mean + half
    undefined = ~(np.isfinite(low) & np.isfinite(high))
    low[undefined] = np.nan
    high[undefined] = np.nan
    return low, high


def nullable_array(values) -> pd.arrays.FloatingArray:
    """``values`` as a nullable ``Float64`` array, NaN and ±inf becoming null."""
    values = np.asarray(values, dtype=float)
    return pd.arrays.FloatingArray(values, ~np.isfinite(values))


def nullable(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Make ``columns`` nullable ``Float64`` with NaN and ±inf turned into null."""
    for column in columns:
        frame[column] = nullable_array(frame[column].to_numpy(dtype=float, na_value=np.nan))
    return frame


def _with_statistics(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``ci_low``/``ci_high`` to a frame with ``mean, std, n`` and make them nullable."""
    low, high = t_interval(frame["mean"], frame["std"], frame["n"])
    frame["ci_low"] = low
    frame["ci_high"] = high
    frame["n"] = frame["n"].astype("int64")
    return nullable(frame, ["mean", "std", "ci_low", "ci_high"])


def step_summary(
    table: pd.DataFrame, group: Sequence[str], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean, standard deviation, count and 95% CI of each column per group and step.

    The spread is across the runs in a group (e.g. the replications of one scenario and
    design point); nulls are left out, so ``n`` counts the runs where the value is defined.

    Args:
        table: a results table with a ``step`` column and the ``group`` columns, e.g. the
            ``chain`` table of a study.
        group: columns to summarise within, e.g. ``["scenario", "point"]`` or
            ``["scenario", "point", "sector"]``; may be empty.
        columns: the value columns; default every numeric column other than ``step``,
            ``replication``, ``point`` and the group columns.

    Returns:
        Tidy frame ``group..., step, column, mean, std, n, ci_low, ci_high``, sorted by
        group and step, then ``column`` in the order of ``columns``; statistics in the
        column's own unit. String group columns and ``column`` are categorical (a summary
        of many design points has tens of millions of rows).
    """
    group = list(group)
    if columns is None:
        skip = {*group, "step", "replication", "point"}
        columns = [c for c in table.select_dtypes(include="number").columns if c not in skip]
    arrays = step_arrays(table, group, list(columns))
    if arrays is None:
        return _empty([*group, "step", "column"], STATISTICS)
    return statistics_frame(arrays)


def step_arrays(
    table: pd.DataFrame, group: list[str], columns: list[str]
) -> dict[str, object] | None:
    """The columns of `step_summary` as arrays (statistics as float with NaN), or None
    when there is nothing to summarise."""
    keys = [*group, "step"]
    if not columns or table.empty:
        return None
    grouped = table.groupby(keys, sort=True, observed=True)[columns]
    mean = grouped.mean()
    std = grouped.std(ddof=1)
    count = grouped.count()
    width = len(columns)
    arrays = _expanded_index(mean.index, width)
    arrays["column"] = pd.Categorical.from_codes(
        np.tile(np.arange(width), len(mean)), categories=columns
    )
    arrays["mean"] = mean.to_numpy(dtype=float, na_value=np.nan).ravel()
    arrays["std"] = std.to_numpy(dtype=float, na_value=np.nan).ravel()
    arrays["n"] = count.to_numpy(dtype="int64").ravel()
    arrays["ci_low"], arrays["ci_high"] = t_interval(arrays["mean"], arrays["std"], arrays["n"])
    return arrays


def statistics_frame(arrays: dict[str, object]) -> pd.DataFrame:
    """A DataFrame of `step_arrays`-like arrays with the statistics made nullable."""
    columns = dict(arrays)
    for name in ("mean", "std", "ci_low", "ci_high"):
        columns[name] = nullable_array(columns[name])
    return pd.DataFrame(columns, copy=False)


def _expanded_index(index: pd.Index, width: int) -> dict[str, object]:
    """The group index as columns, each row repeated ``width`` times (once per column)."""
    if not isinstance(index, pd.MultiIndex):
        index = pd.MultiIndex.from_arrays([index], names=[index.name])
    columns: dict[str, object] = {}
    for level, name in enumerate(index.names):
        values = index.levels[level]
        codes = np.repeat(index.codes[level], width)
        if values.dtype.kind in "biuf":
            columns[name] = values.to_numpy()[codes]
        else:
            columns[name] = pd.Categorical.from_codes(codes, categories=values)
    return columns


def outcome_summary(outcomes: pd.DataFrame, group: Sequence[str]) -> pd.DataFrame:
    """Mean, standard deviation, count and 95% CI of each outcome per group.

    Args:
        outcomes: tidy outcome measures (`marketsim.analysis.outcome_measures`).
        group: columns to summarise within, e.g. ``["scenario"]`` (pooling design points
            and replications) or ``["scenario", "point"]``; may be empty.

    Returns:
        Tidy frame ``group..., outcome, mean, std, n, ci_low, ci_high`` sorted by group and
        outcome; statistics in the outcome's unit; ``n`` counts non-null runs.
    """
    keys = [*group, "outcome"]
    if outcomes.empty:
        return _empty(keys, STATISTICS)
    grouped = outcomes.groupby(keys, sort=True, dropna=False, observed=True)["value"]
    frame = pd.DataFrame(
        {"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()}
    ).reset_index()
    return _with_statistics(frame)


def paired_differences(
    outcomes: pd.DataFrame,
    reference: str,
    pair_on: Sequence[str] = ("point", "replication"),
) -> pd.DataFrame:
    """Differences of every scenario from the reference, paired run by run, with 95% CIs.

    Replication ``r`` of every scenario and design point shares its random numbers, so the
    difference of a pair cancels the noise they share (common random numbers). For each
    scenario other than ``reference`` and each outcome, the pairs are the runs with equal
    ``pair_on`` columns (those present in ``outcomes``); a pair where either side is null
    is dropped and ``n`` counts the pairs left. With fewer than two pairs the CI is null;
    without any, the mean is null too.

    When ``outcomes`` has more than one design point, the result has a ``point`` column
    (nullable integer): one row per point, plus a pooled row with ``point`` null that takes
    every pair over all points (the design-averaged difference; its CI also covers how the
    difference varies across the design). With a single point there is no ``point`` column.

    Args:
        outcomes: tidy outcome measures with a ``scenario`` column.
        reference: the scenario differences are taken against.
        pair_on: the columns that identify a pair.

    Returns:
        ``scenario, reference, [point], outcome, mean_difference, ci_low, ci_high, n``
        (difference = scenario - reference, in the outcome's unit), sorted by scenario,
        point (pooled last) and outcome.

    Raises:
        AnalysisError: ``reference`` is not a scenario of ``outcomes``.
    """
    scenarios = outcomes["scenario"].unique().tolist() if "scenario" in outcomes else []
    if reference not in scenarios:
        raise AnalysisError(
            f"reference: expected one of the scenarios {sorted(map(str, scenarios))}, "
            f"got {reference!r}"
        )
    pairs = [c for c in pair_on if c in outcomes.columns]
    per_point = "point" in pairs and outcomes["point"].nunique() > 1
    base = outcomes.loc[outcomes["scenario"] == reference, [*pairs, "outcome", "value"]]
    others = outcomes.loc[
        outcomes["scenario"] != reference, ["scenario", *pairs, "outcome", "value"]
    ]
    merged = others.merge(base, on=[*pairs, "outcome"], suffixes=("", "_reference"))
    merged["difference"] = merged["value"] - merged["value_reference"]
    groupings = (
        [["scenario", "point", "outcome"], ["scenario", "outcome"]]
        if per_point
        else [["scenario", "outcome"]]
    )
    frames = []
    for keys in groupings:
        grouped = merged.groupby(keys, sort=True, observed=True)["difference"]
        frame = pd.DataFrame(
            {"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()}
        ).reset_index()
        if per_point and "point" not in keys:
            frame["point"] = pd.NA
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = _with_statistics(frame)
    frame["reference"] = reference
    frame = frame.rename(columns={"mean": "mean_difference"})
    columns = ["scenario", "reference", "outcome", "mean_difference", "ci_low", "ci_high", "n"]
    order = ["scenario", "outcome"]
    if per_point:
        frame["point"] = frame["point"].astype("Int64")
        columns.insert(2, "point")
        order = ["scenario", "point", "outcome"]
    frame = frame.sort_values(order, kind="stable", na_position="last", ignore_index=True)
    return frame[columns]


def _empty(keys: Sequence[str], statistics: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({key: pd.Series(dtype=object) for key in keys})
    for statistic in statistics:
        frame[statistic] = pd.Series(dtype="int64" if statistic == "n" else "Float64")
    return frame
