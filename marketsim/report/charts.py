"""The report's charts, drawn with matplotlib (Agg) and returned as PNG data URIs.

Every chart is self-contained in the HTML (``data:image/png;base64,...``). Text that comes
from users (scenario, sector and market names) is drawn literally: ``$`` is escaped so that
matplotlib does not read it as mathematics.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 96
WIDE = (7.6, 3.4)


def literal(text: object) -> str:
    """``text`` as matplotlib shows it literally (no mathtext)."""
    return str(text).replace("$", r"\$")


def to_data_uri(figure) -> str:
    """Render ``figure`` to a PNG data URI and close it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={})
    finally:
        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _scaled(unit: str, largest: float) -> tuple[float, str]:
    """Divisor and axis label: values of a billion or more in billions, of a million or
    more in millions, others as they are."""
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if largest >= size:
            return size, f"{word} {unit}" if unit.startswith("USD") else f"{unit} ({word}s)"
    return 1.0, unit


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float, na_value=np.nan)


def fan_chart(summary: pd.DataFrame, series: str, title: str, unit: str) -> str:
    """Mean and 95% band over steps, one line per scenario.

    Args:
        summary: pooled step summary (``scenario, step, series, mean, ci_low, ci_high``).
        series: the series to draw, e.g. ``chain.chain_capex``.
        title: the chart's title.
        unit: the series' unit (money is drawn in billions).

    Returns:
        A PNG data URI.
    """
    rows = summary[summary["series"] == series]
    means = np.abs(_floats(rows["mean"]))
    largest = float(np.nanmax(means)) if np.isfinite(means).any() else 0.0
    divisor, label = _scaled(unit, largest)
    figure, axes = plt.subplots(figsize=WIDE)
    for scenario, frame in rows.groupby("scenario", sort=False, observed=True):
        steps = frame["step"].to_numpy()
        (line,) = axes.plot(steps, _floats(frame["mean"]) / divisor, label=literal(scenario))
        axes.fill_between(
            steps,
            _floats(frame["ci_low"]) / divisor,
            _floats(frame["ci_high"]) / divisor,
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    axes.set_title(literal(title))
    axes.set_xlabel("step")
    axes.set_ylabel(literal(label))
    axes.ticklabel_format(axis="y", useOffset=False)
    axes.grid(alpha=0.3)
    if rows["scenario"].nunique() > 0:
        axes.legend(fontsize="small", loc="best")
    return to_data_uri(figure)


def stacked_shares(shares: pd.DataFrame, title: str) -> str:
    """Stacked areas of each sector's mean share over steps (one scenario).

    Args:
        shares: steps as index, sectors as columns, shares (0-1) as values; nulls drawn as 0.
        title: the chart's title.

    Returns:
        A PNG data URI.
    """
    figure, axes = plt.subplots(figsize=WIDE)
    values = shares.to_numpy(dtype=float, na_value=np.nan).T
    values = np.where(np.isfinite(values), values, 0.0)
    axes.stackplot(
        shares.index.to_numpy(),
        values * 100,
        labels=[literal(c) for c in shares.columns],
        alpha=0.85,
    )
    axes.set_title(literal(title))
    axes.set_xlabel("step")
    axes.set_ylabel("share of chain gross profit, %")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return to_data_uri(figure)


def sensitivity_bars(indices: pd.DataFrame, title: str, factors: Sequence[str]) -> str:
    """Horizontal bars of each index per factor, with the CI as error bars.

    Args:
        indices: rows of one scenario and outcome (``factor, index, value, ci_low,
            ci_high``).
        title: the chart's title.
        factors: factors in design order (drawn top to bottom).

    Returns:
        A PNG data URI.
    """
    names = list(indices["index"].unique())
    height = 0.8 / max(len(names), 1)
    figure, axes = plt.subplots(figsize=(7.6, 0.5 + 0.45 * max(len(factors), 1)))
    positions = np.arange(len(factors))[::-1]
    for offset, name in enumerate(names):
        rows = indices[indices["index"] == name].set_index("factor").reindex(list(factors))
        value = _floats(rows["value"])
        low = _floats(rows["ci_low"])
        high = _floats(rows["ci_high"])
        error = np.vstack([value - low, high - value])
        error = np.where(np.isfinite(error), np.maximum(error, 0.0), 0.0)
        axes.barh(
            positions + (len(names) - 1 - 2 * offset) * height / 2,
            np.where(np.isfinite(value), value, 0.0),
            height=height,
            xerr=error,
            label=literal(name),
            capsize=2,
        )
    axes.set_yticks(positions, [literal(f) for f in factors], fontsize="small")
    axes.set_title(literal(title), fontsize="medium")
    axes.axvline(0, color="black", linewidth=0.6)
    axes.grid(alpha=0.3, axis="x")
    axes.legend(fontsize="small", loc="best")
    return to_data_uri(figure)
