"""The summary ``marketsim run`` prints: each sector over the whole horizon.

Per sector: the horizon revenue (sum over steps, in billions of USD), the horizon gross
margin (Σ gross profit / Σ revenue) and the horizon value-capture share (Σ gross profit of
the sector / Σ gross profit of the chain), each the mean over replications with its 95% t
interval when there are at least two replications.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from marketsim.analysis.loading import AnalysisError
from marketsim.analysis.loading import load_results
from marketsim.analysis.outcomes import outcome_measures
from marketsim.analysis.stats import outcome_summary

COLUMNS = (
    ("revenue.cumulative", "revenue $B", lambda v: f"{v / 1e9:,.1f}"),
    ("gross_margin.horizon", "gross margin", lambda v: f"{v:.1%}"),
    ("value_capture_share.horizon", "value share", lambda v: f"{v:.1%}"),
)


def run_summary(results_or_dir: Any) -> str:
    """The end-of-run summary text (see the module docstring), without a trailing newline.

    Args:
        results_or_dir: a `marketsim.results.Results` or a run directory.

    Returns:
        A header line and one line per sector, in the order of the sectors table; one
        line saying so when the experiment has no firm sectors.

    Raises:
        AnalysisError: the directory is not a run directory, or has no sectors table.
    """
    if isinstance(results_or_dir, str | Path):
        loaded = load_results(results_or_dir)
        if loaded.kind != "run":
            raise AnalysisError(f"{results_or_dir}: expected a run directory, got a study")
        sectors = loaded.tables.get("sectors")
    else:
        sectors = results_or_dir.tables.get("sectors")
    if sectors is None:
        raise AnalysisError(f"{results_or_dir}: no sectors table to summarise")
    if sectors.empty:  # an economy without firms (e.g. plugins/classics/brock_hommes.py)
        return "no firm sectors to summarise (see chain.parquet and markets.parquet)"
    columns = [c for c in ("revenue", "gross_profit") if c in sectors.columns]
    units = {"sectors": {"revenue": "USD per step"}}
    outcomes = outcome_measures(
        {"sectors": sectors[["replication", "step", "sector", *columns]]}, units, ["replication"]
    )
    summary = outcome_summary(outcomes, []).set_index("outcome")
    replications = sectors["replication"].nunique()
    steps = sectors["step"].nunique()
    with_ci = replications >= 2
    if with_ci:
        header = f"horizon of {steps} steps, mean of {replications} replications [95% CI]"
    else:
        header = f"horizon of {steps} steps (replication {int(sectors['replication'].iloc[0])})"
    order = pd.unique(sectors["sector"].astype(str))
    cells = [
        [_cell(summary, f"sectors.{s}.{name}", fmt, with_ci) for name, _, fmt in COLUMNS]
        for s in order
    ]
    name_width = max(16, *(len(s) + 2 for s in order))
    widths = [
        max(len(title), *(len(row[i]) for row in cells)) + 2
        for i, (_, title, _) in enumerate(COLUMNS)
    ]
    lines = [
        f"{header}, by sector:",
        "  "
        + f"{'sector':<{name_width}}"
        + "".join(f"{title:>{w}}" for (_, title, _), w in zip(COLUMNS, widths, strict=True)),
    ]
    for sector, row in zip(order, cells, strict=True):
        lines.append(
            "  "
            + f"{sector:<{name_width}}"
            + "".join(f"{cell:>{w}}" for cell, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def _cell(summary: pd.DataFrame, outcome: str, fmt, with_ci: bool) -> str:
    if outcome not in summary.index or pd.isna(summary.at[outcome, "mean"]):
        return "-"
    row = summary.loc[outcome]
    text = fmt(float(row["mean"]))
    if with_ci and not pd.isna(row["ci_low"]):
        text += f" [{fmt(float(row['ci_low']))}, {fmt(float(row['ci_high']))}]"
    return text
