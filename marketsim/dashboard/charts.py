"""The dashboard's charts: one set of figures for the live model and for saved results.

Both views summarise tables shaped like the results files (``chain``, ``sectors``,
``markets``, a ``scenario`` column added) with `marketsim.analysis.series_summary`, grouped
by scenario, and draw them with the report's chart functions (`marketsim.report.charts`):
a live model is one run, so its lines have no band; a run directory's replications, or each
scenario of a study, give 95% confidence bands across replications.

Figures, in order: each market's price; gross margin by sector; value-capture share by
sector (stacked); valuation / fundamental value; trend-follower share; chain capex against
end revenue; utilization; stranded accelerators. Which input binds (``chain.binding_input``,
a text column) is counted in months per scenario by `binding_months`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from marketsim.analysis import series_summary
from marketsim.report import charts as report_charts

TABLES = ("chain", "sectors", "markets")
"""The results tables the charts read."""
CHAIN_COLUMNS = (
    "valuation_to_fundamental",
    "trend_follower_share",
    "chain_capex",
    "end_revenue",
    "utilization",
    "stranded_accelerators",
)
SECTOR_COLUMNS = ("gross_margin", "value_capture_share")
MARKET_COLUMNS = ("price",)
BINDING_COLUMN = "binding_input"
PARTS = ("prices", "sectors", "chain")
"""The groups of charts `figures` draws, in order."""


@dataclass(frozen=True)
class Figure:
    """One drawn chart.

    Attributes:
        title: the chart's title.
        uri: the PNG as a ``data:image/png;base64,...`` URI.
    """

    title: str
    uri: str


def charted_units(units: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The units of the columns the dashboard draws (only those present in ``units``)."""
    wanted = {"chain": CHAIN_COLUMNS, "sectors": SECTOR_COLUMNS, "markets": MARKET_COLUMNS}
    return {
        table: {c: units[table][c] for c in columns if c in units.get(table, {})}
        for table, columns in wanted.items()
    }


def summarise(tables: dict[str, pd.DataFrame], units: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Mean and 95% CI per scenario, step and charted series (`series_summary`).

    Args:
        tables: ``chain``, ``sectors``, ``markets`` with ``scenario`` and ``step`` columns.
        units: table -> column -> unit (the manifest's, or the experiment's metrics').
    """
    summary = series_summary(tables, charted_units(units), ["scenario"])
    summary["scenario"] = summary["scenario"].astype(str)
    summary["series"] = summary["series"].astype(str)
    return summary


def _lines(
    summary: pd.DataFrame, lines: Sequence[tuple[str, str]], scenarios: Sequence[str]
) -> pd.DataFrame:
    """Rows of several series as one series ``lines``, one line per (scenario, label):
    named by label for one scenario, by scenario for one series, else ``scenario: label``."""
    several = len(scenarios) > 1
    frames = []
    for scenario in scenarios:
        for label, series in lines:
            rows = summary[(summary["scenario"] == scenario) & (summary["series"] == series)]
            if rows.empty:
                continue
            name = label
            if several:
                name = scenario if len(lines) == 1 else f"{scenario}: {label}"
            frames.append(rows.assign(scenario=name, series="lines"))
    return pd.concat(frames, ignore_index=True) if frames else summary.iloc[0:0]


def figures(
    summary: pd.DataFrame,
    scenarios: Sequence[str],
    sectors: Sequence[str],
    markets: Sequence[str],
    units: dict[str, dict[str, str]],
    price_units: dict[str, str] | None = None,
    parts: Sequence[str] = PARTS,
) -> list[Figure]:
    """Every chart of the dashboard, from a `summarise` frame.

    Args:
        summary: `summarise` of the tables.
        scenarios: scenarios in the order drawn (one line, or band, each).
        sectors: firm sectors in the order drawn.
        markets: markets (goods) in the order drawn.
        units: table -> column -> unit.
        price_units: good -> its price unit (e.g. ``USD per MWh``), where known.
        parts: which charts: ``prices`` (one per market), ``sectors`` (margins and value
            capture), ``chain`` (capital, capex, utilization); default all.

    Returns:
        The figures in the module docstring's order; a chart without data is left out.
    """
    price_units = price_units or {}
    present = set(summary["series"].unique())
    drawn: list[Figure] = []

    def fan(title: str, lines: Sequence[tuple[str, str]], unit: str) -> None:
        if not any(series in present for _, series in lines):
            return
        frame = _lines(summary, lines, scenarios)
        drawn.append(Figure(title, report_charts.fan_chart(frame, "lines", title, unit)))

    chain_units = units.get("chain", {})
    for market in markets if "prices" in parts else ():
        unit = price_units.get(market) or units.get("markets", {}).get("price", "")
        fan(f"Price: {market}", [(market, f"markets.{market}.price")], unit)
    for scenario in scenarios if "sectors" in parts else ():
        title = "Gross margin by sector" + (f": {scenario}" if len(scenarios) > 1 else "")
        lines = [(s, f"sectors.{s}.gross_margin") for s in sectors]
        frame = _lines(summary[summary["scenario"] == scenario], lines, [scenario])
        if not frame.empty:
            unit = units.get("sectors", {}).get("gross_margin", "")
            drawn.append(Figure(title, report_charts.fan_chart(frame, "lines", title, unit)))
    for scenario in scenarios if "sectors" in parts else ():
        shares = value_capture_shares(summary, scenario, sectors)
        if not shares.empty:
            title = "Value capture by sector" + (f": {scenario}" if len(scenarios) > 1 else "")
            drawn.append(Figure(title, report_charts.stacked_shares(shares, title)))
    if "chain" not in parts:
        return drawn
    for column, title in (
        ("valuation_to_fundamental", "Valuation / fundamental value"),
        ("trend_follower_share", "Trend-follower share of investors"),
    ):
        fan(title, [(column.replace("_", " "), f"chain.{column}")], chain_units.get(column, ""))
    fan(
        "Chain capex and end revenue",
        [("chain capex", "chain.chain_capex"), ("end revenue", "chain.end_revenue")],
        chain_units.get("chain_capex", ""),
    )
    fan("Utilization of the compute fleet", [("utilization", "chain.utilization")], "share")
    fan(
        "Stranded accelerators",
        [("stranded", "chain.stranded_accelerators")],
        chain_units.get("stranded_accelerators", ""),
    )
    return drawn


def value_capture_shares(
    summary: pd.DataFrame, scenario: str, sectors: Sequence[str]
) -> pd.DataFrame:
    """Steps x sectors of mean value-capture share for ``scenario`` (empty if none)."""
    names = {f"sectors.{s}.value_capture_share": s for s in sectors}
    rows = summary[(summary["scenario"] == scenario) & summary["series"].isin(names)]
    if rows.empty:
        return pd.DataFrame()
    shares = rows.pivot_table(index="step", columns="series", values="mean", aggfunc="first")
    shares = shares.reindex(columns=[n for n in names if n in shares.columns])
    shares.columns = [names[c] for c in shares.columns]
    return shares


def binding_months(chain: pd.DataFrame) -> pd.DataFrame:
    """Months each input binds, per scenario: the mean over runs of the steps it binds.

    Args:
        chain: the ``chain`` table with ``scenario``, ``replication`` (and ``point``)
            columns and ``binding_input``.

    Returns:
        ``scenario, input, months`` (empty without a ``binding_input`` column).
    """
    if BINDING_COLUMN not in chain.columns or chain.empty:
        return pd.DataFrame({"scenario": [], "input": [], "months": []})
    runs = [c for c in ("scenario", "point", "replication") if c in chain.columns]
    frame = chain[[*runs, BINDING_COLUMN]].dropna(subset=[BINDING_COLUMN])
    counts = frame.groupby([*runs, BINDING_COLUMN], observed=True).size()
    counts = counts.unstack(BINDING_COLUMN, fill_value=0)
    means = counts.groupby(level="scenario", sort=False).mean()
    long = means.stack().rename("months").reset_index()
    long.columns = ["scenario", "input", "months"]
    return long[long["months"] > 0].reset_index(drop=True)
