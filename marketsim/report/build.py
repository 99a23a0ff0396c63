"""Building the HTML report of one or more run or study directories.

A study is shown scenario by scenario; a run is one scenario (its replications give the
bands); several directories are compared side by side, their scenarios labelled
``<name>`` (runs) or ``<name>/<scenario>`` (studies). Differences are paired against the
study's reference scenario, or, comparing directories, against the first directory's
reference (or first) scenario, pairing runs by design point and replication.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import DictLoader
from jinja2 import Environment
from jinja2 import StrictUndefined

from marketsim.analysis import AnalysisError
from marketsim.analysis import LoadedResults
from marketsim.analysis import headline_outcomes
from marketsim.analysis import load_results
from marketsim.analysis import outcome_measures
from marketsim.analysis import outcome_summary
from marketsim.analysis import outcome_unit
from marketsim.analysis import paired_differences
from marketsim.analysis import sensitivity
from marketsim.analysis import series_summary
from marketsim.analysis.loading import KEYS
from marketsim.analysis.study import write_atomically
from marketsim.report import charts
from marketsim.report.formatting import format_interval
from marketsim.report.formatting import format_value
from marketsim.report.formatting import significant
from marketsim.report.provenance import provenance
from marketsim.report.template import REPORT_TEMPLATE

FAN_SERIES = (
    ("chain.valuation_to_fundamental", "Valuation / fundamental value"),
    ("chain.chain_capex", "Chain capex"),
    ("chain.capex_to_revenue", "Chain capex / end revenue"),
    ("chain.utilization", "Utilization of the installed compute fleet"),
    ("chain.stranded_accelerators", "Stranded accelerators"),
)


class Combined:
    """Several loaded directories as one set of scenarios.

    Attributes:
        loaded: the directories, in the order given.
        labels: per directory, original scenario -> label in the report.
        tables: table -> DataFrame of every directory, scenarios relabelled.
        outcomes: outcome measures of every run, scenarios relabelled.
        units: table -> column -> unit (the first directory's units win).
        scenarios: labels in report order.
        reference: the scenario differences are taken against, or None.
        sectors, markets: names in the order of the first table that has them.
    """

    def __init__(self, loaded: Sequence[LoadedResults]):
        self.loaded = list(loaded)
        names = _unique([item.label for item in self.loaded])
        several = len(self.loaded) > 1
        self.labels = []
        for name, item in zip(names, self.loaded, strict=True):
            if not several:
                self.labels.append({s: s for s in _scenarios(item)})
            elif item.kind == "study":
                self.labels.append({s: f"{name}/{s}" for s in _scenarios(item)})
            else:
                self.labels.append({s: name for s in _scenarios(item)})
        self.units = {}
        for item in self.loaded:
            for table, columns in item.units.items():
                self.units.setdefault(table, {})
                for column, unit in columns.items():
                    self.units[table].setdefault(column, unit)
        self.tables = {}
        for table in ("chain", "sectors", "markets"):
            frames = [
                _relabel(item.tables[table], labels)
                for item, labels in zip(self.loaded, self.labels, strict=True)
                if table in item.tables
            ]
            if frames:
                self.tables[table] = pd.concat(frames, ignore_index=True)
        self.per_directory_outcomes = [
            outcome_measures(item.tables, item.units, list(KEYS)) for item in self.loaded
        ]
        self.outcomes = pd.concat(
            [
                _relabel(frame, labels)
                for frame, labels in zip(self.per_directory_outcomes, self.labels, strict=True)
            ],
            ignore_index=True,
        )
        self.scenarios = [
            label for labels in self.labels for label in dict.fromkeys(labels.values())
        ]
        first = self.loaded[0]
        if several:
            reference = first.reference or _scenarios(first)[0]
            self.reference = self.labels[0][reference]
        else:
            self.reference = first.reference if len(self.scenarios) > 1 else None
        self.sectors = _order(self.tables.get("sectors"), "sector")
        self.markets = _order(self.tables.get("markets"), "market")


def _scenarios(item: LoadedResults) -> list[str]:
    """Scenarios with results, in manifest order (then any others, sorted)."""
    present = set()
    for frame in item.tables.values():
        present.update(frame["scenario"].unique().tolist())
    listed = [s for s in item.scenarios if s in present]
    return listed + sorted(present - set(listed))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return result


def _relabel(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    frame = frame.copy()
    frame["scenario"] = frame["scenario"].map(labels).astype(str)
    return frame


def _order(frame: pd.DataFrame | None, column: str) -> list[str]:
    return [] if frame is None else [str(v) for v in pd.unique(frame[column])]


def report_context(combined: Combined) -> dict[str, Any]:
    """Everything the template shows, as plain strings, numbers and data URIs."""
    units = combined.units
    pooled = series_summary(combined.tables, units, ["scenario"])
    pooled["scenario"] = pooled["scenario"].astype(str)
    pooled["series"] = pooled["series"].astype(str)
    order = {s: i for i, s in enumerate(combined.scenarios)}
    pooled = pooled.sort_values(
        ["scenario", "series", "step"], key=lambda c: c.map(order) if c.name == "scenario" else c
    )
    names = combined.outcomes["outcome"].unique()
    headline = headline_outcomes(names, [*combined.sectors, *combined.markets])
    summary = outcome_summary(combined.outcomes, ["scenario"]).set_index(["scenario", "outcome"])
    return {
        "title": _title(combined),
        "subtitle": "Written by marketsim report; every number comes from the directories "
        "listed below.",
        "overview": _overview(combined),
        "notes": _notes(combined),
        "headline": _headline(combined, summary, headline),
        "fans": _fans(combined, pooled),
        "shares": _shares(combined, pooled),
        "horizon": _horizon(combined, summary),
        "differences": _differences(combined, headline),
        "sensitivity": _sensitivity(combined),
        "provenance": [provenance(item) for item in combined.loaded],
    }


def _title(combined: Combined) -> str:
    labels = [item.label for item in combined.loaded]
    return "marketsim report: " + (" vs ".join(labels) if len(labels) > 1 else labels[0])


def _overview(combined: Combined) -> list[dict[str, Any]]:
    rows = []
    for item, labels in zip(combined.loaded, combined.labels, strict=True):
        chain = next(iter(item.tables.values()))
        runs = len(chain[list(KEYS)].drop_duplicates())
        rows.append(
            {
                "label": item.label,
                "kind": item.kind,
                "directory": str(item.directory),
                "scenarios": list(dict.fromkeys(labels.values())),
                "runs": runs,
            }
        )
    return rows


def _notes(combined: Combined) -> list[str]:
    notes = []
    for item in combined.loaded:
        design = item.design or {}
        if design.get("method") not in (None, "none") and len(design.get("points") or []) > 1:
            notes.append(
                f"{item.label}: a {design['method']} design of {len(design['points'])} points; "
                "charts, tables and differences pool the points of each scenario."
            )
    if len(combined.loaded) > 1:
        seeds = [_seeds(item) for item in combined.loaded]
        same = all(s == seeds[0] for s in seeds)
        notes.append(
            "Directories are paired by design point and replication"
            + (
                ": their replication seeds match (common random numbers)."
                if same
                else "; their replication seeds differ, so pairs share no random numbers."
            )
        )
    return notes


def _seeds(item: LoadedResults) -> list[Any]:
    return item.manifest.get("seeds") or item.manifest.get("replication_seeds") or []


def _cell(summary: pd.DataFrame, scenario: str, outcome: str, unit: str) -> dict[str, str]:
    if (scenario, outcome) not in summary.index:
        return {"mean": "-", "ci": ""}
    row = summary.loc[(scenario, outcome)]
    return {
        "mean": format_value(row["mean"], unit),
        "ci": format_interval(row["ci_low"], row["ci_high"], unit),
    }


def _headline(combined: Combined, summary: pd.DataFrame, headline: list[str]) -> dict[str, Any]:
    rows = []
    for outcome in headline:
        unit = outcome_unit(outcome, combined.units)
        cells = [_cell(summary, s, outcome, unit) for s in combined.scenarios]
        rows.append({"outcome": outcome, "unit": unit, "cells": cells})
    return {"scenarios": combined.scenarios, "rows": rows}


def _fans(combined: Combined, pooled: pd.DataFrame) -> list[dict[str, str]]:
    wanted = list(FAN_SERIES) + [
        (f"markets.{market}.price", f"Price: {market}") for market in combined.markets
    ]
    present = set(pooled["series"].unique())
    figures = []
    for series, title in wanted:
        if series not in present:
            continue
        table, column = series.split(".")[0], series.split(".")[-1]
        unit = str(combined.units.get(table, {}).get(column, ""))
        figures.append({"title": title, "uri": charts.fan_chart(pooled, series, title, unit)})
    return figures


def _shares(combined: Combined, pooled: pd.DataFrame) -> list[dict[str, str]]:
    names = {f"sectors.{s}.value_capture_share": s for s in combined.sectors}
    rows = pooled[pooled["series"].isin(names)]
    figures = []
    for scenario in combined.scenarios:
        frame = rows[rows["scenario"] == scenario]
        if frame.empty:
            continue
        shares = frame.pivot_table(index="step", columns="series", values="mean", aggfunc="first")
        shares = shares.reindex(columns=[n for n in names if n in shares.columns])
        shares.columns = [names[c] for c in shares.columns]
        title = f"Value capture by sector: {scenario}"
        figures.append({"title": title, "uri": charts.stacked_shares(shares, title)})
    return figures


def _horizon(combined: Combined, summary: pd.DataFrame) -> dict[str, Any]:
    rows = []
    for sector in combined.sectors:
        cells = []
        for scenario in combined.scenarios:
            margin = _cell(summary, scenario, f"sectors.{sector}.gross_margin.horizon", "share")
            share = _cell(
                summary, scenario, f"sectors.{sector}.value_capture_share.horizon", "share"
            )
            cells.append(
                {
                    "margin": margin["mean"],
                    "margin_ci": margin["ci"],
                    "share": share["mean"],
                    "share_ci": share["ci"],
                }
            )
        rows.append({"sector": sector, "cells": cells})
    return {"scenarios": combined.scenarios, "rows": rows}


def _differences(combined: Combined, headline: list[str]) -> dict[str, Any] | None:
    if combined.reference is None:
        return None
    outcomes = combined.outcomes[combined.outcomes["outcome"].isin(headline)]
    differences = paired_differences(outcomes, combined.reference)
    if "point" in differences.columns:
        differences = differences[differences["point"].isna()]
    rank = {o: i for i, o in enumerate(headline)}
    order = {s: i for i, s in enumerate(combined.scenarios)}
    differences = differences.assign(
        _scenario=differences["scenario"].map(order), _outcome=differences["outcome"].map(rank)
    ).sort_values(["_scenario", "_outcome"], kind="stable")
    rows = []
    for row in differences.itertuples(index=False):
        unit = outcome_unit(row.outcome, combined.units)
        rows.append(
            {
                "scenario": row.scenario,
                "outcome": row.outcome,
                "unit": unit,
                "mean": format_value(row.mean_difference, unit, difference=True),
                "ci": format_interval(row.ci_low, row.ci_high, unit, difference=True),
                "n": int(row.n),
                "significant": significant(row.ci_low, row.ci_high),
            }
        )
    note = (
        "Difference = scenario - reference, paired run by run (same design point and "
        "replication), pooled over design points."
    )
    return {"reference": combined.reference, "note": note, "rows": rows}


def _sensitivity(combined: Combined) -> list[dict[str, str]]:
    figures = []
    for item, labels, outcomes in zip(
        combined.loaded, combined.labels, combined.per_directory_outcomes, strict=True
    ):
        design = item.design or {}
        if design.get("method") not in ("sobol", "morris"):
            continue
        study = item.manifest.get("study") or {}
        indices = sensitivity(
            outcomes, design, study.get("outcomes") or (), seed=int(study.get("seed") or 0)
        )
        factors = list((design.get("salib_problem") or {}).get("names") or [])
        order = {scenario: rank for rank, scenario in enumerate(labels)}
        indices = indices.assign(_rank=indices["scenario"].map(order)).sort_values(
            ["_rank", "outcome"], kind="stable"
        )
        for (scenario, outcome), rows in indices.groupby(["scenario", "outcome"], sort=False):
            if rows["value"].isna().all():
                continue  # undefined everywhere (e.g. an outcome no factor moves)
            title = f"{labels.get(scenario, scenario)}: {outcome} ({design['method']})"
            figures.append({"title": title, "uri": charts.sensitivity_bars(rows, title, factors)})
    return figures


def render(context: dict[str, Any]) -> str:
    """The HTML page of a report context (every string escaped)."""
    environment = Environment(
        loader=DictLoader({"report.html": REPORT_TEMPLATE}),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html").render(**context)


def build_report(
    directories: Sequence[str | Path], out_path: str | Path, overwrite: bool = False
) -> Path:
    """Write one self-contained HTML report of run and study directories.

    Args:
        directories: one or more directories written by ``marketsim run`` or
            ``marketsim study``; several are compared side by side.
        out_path: the HTML file to write (atomically).
        overwrite: replace ``out_path`` if it exists.

    Returns:
        The path written.

    Raises:
        AnalysisError: no directories, a directory that is not results, an existing
            ``out_path`` without ``overwrite``, or a file that cannot be written.
    """
    out_path = Path(out_path)
    if not directories:
        raise AnalysisError("report: expected at least one results directory, got none")
    if out_path.is_dir():
        raise AnalysisError(f"{out_path}: expected a file to write, got a directory")
    if out_path.exists() and not overwrite:
        raise AnalysisError(f"{out_path}: exists; pass --overwrite to replace it")
    combined = Combined([load_results(directory) for directory in directories])
    html = render(report_context(combined))
    _write_text(out_path, html)
    return out_path


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
