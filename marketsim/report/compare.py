"""The ``marketsim compare`` table: headline outcomes of A and B and their paired difference.

Two run directories are paired replication by replication (common random numbers when
their replication seeds match, as for two scenarios run with the same seed); two scenarios
of one study are paired by design point and replication, pooled over points. Each row shows
the mean over runs of A and of B, the mean paired difference B - A with its 95% t interval,
the number of pairs, and ``*`` when the interval excludes zero.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from marketsim.analysis import AnalysisError
from marketsim.analysis import LoadedResults
from marketsim.analysis import headline_outcomes
from marketsim.analysis import load_results
from marketsim.analysis import outcome_measures
from marketsim.analysis import outcome_summary
from marketsim.analysis import outcome_unit
from marketsim.analysis import paired_differences
from marketsim.analysis.loading import KEYS
from marketsim.report.formatting import format_interval
from marketsim.report.formatting import format_value
from marketsim.report.formatting import significant


def compare_table(a: str | Path, b: str | Path, study: str | Path | None = None) -> str:
    """The comparison table as text (no trailing newline).

    Args:
        a: the reference: a run directory, or with ``study`` a scenario name.
        b: the other run directory or scenario.
        study: a study directory whose scenarios ``a`` and ``b`` are compared.

    Returns:
        Header lines naming A and B and how runs are paired, the table, a footnote.

    Raises:
        AnalysisError: a directory that is not results (or not of the expected kind), or a
            scenario the study does not have.
    """
    if study is None:
        first, second = _run(a), _run(b)
        outcomes = pd.concat([_outcomes(first, "A"), _outcomes(second, "B")], ignore_index=True)
        units = {**second.units, **first.units}
        order = _entities(first)
        same = first.manifest.get("replication_seeds") == second.manifest.get("replication_seeds")
        header = [
            f"A: {a} (run {first.label})",
            f"B: {b} (run {second.label})",
            "pairs: runs of the same replication"
            + (
                " (same replication seeds: common random numbers)"
                if same
                else " (replication seeds differ: no common random numbers)"
            ),
        ]
    else:
        loaded = load_results(study)
        if loaded.kind != "study":
            raise AnalysisError(
                f"{study}: expected a study directory for --study, got a run directory"
            )
        available = sorted(
            loaded.tables["chain" if "chain" in loaded.tables else next(iter(loaded.tables))][
                "scenario"
            ].unique()
        )
        for name in (a, b):
            if name not in available:
                raise AnalysisError(
                    f"{study}: scenario {str(name)!r} not found; the study has "
                    f"{', '.join(map(repr, available))}"
                )
        everything = outcome_measures(loaded.tables, loaded.units, list(KEYS))
        outcomes = everything[everything["scenario"].isin([a, b])].copy()
        outcomes["scenario"] = outcomes["scenario"].map({a: "A", b: "B"}).astype(str)
        units = loaded.units
        order = _entities(loaded)
        header = [
            f"study: {study} ({loaded.label})",
            f"A: scenario {a}",
            f"B: scenario {b}",
            "pairs: runs of the same design point and replication (common random numbers)",
        ]
    return "\n".join([*header, "", *_table(outcomes, units, order)])


def _run(directory: str | Path) -> LoadedResults:
    loaded = load_results(directory)
    if loaded.kind != "run":
        raise AnalysisError(
            f"{directory}: expected a run directory, got a study; compare two of its "
            "scenarios with --study DIR A B"
        )
    return loaded


def _outcomes(loaded: LoadedResults, label: str) -> pd.DataFrame:
    outcomes = outcome_measures(loaded.tables, loaded.units, list(KEYS))
    outcomes["scenario"] = label
    return outcomes


def _entities(loaded: LoadedResults) -> list[str]:
    """Sectors then markets in the order the directory lists them."""
    names: list[str] = []
    for table, column in (("sectors", "sector"), ("markets", "market")):
        if table in loaded.tables:
            names.extend(str(v) for v in pd.unique(loaded.tables[table][column]))
    return names


def _table(outcomes: pd.DataFrame, units: dict, order: list[str]) -> list[str]:
    headline = headline_outcomes(outcomes["outcome"].unique(), order)
    outcomes = outcomes[outcomes["outcome"].isin(headline)]
    summary = outcome_summary(outcomes, ["scenario"]).set_index(["scenario", "outcome"])
    differences = paired_differences(outcomes, "A")
    if "point" in differences.columns:
        differences = differences[differences["point"].isna()]
    differences = differences.set_index("outcome")
    rows = [("outcome", "unit", "A", "B", "B - A", "95% CI", "pairs", "")]
    for outcome in headline:
        unit = outcome_unit(outcome, units)
        means = [
            format_value(summary.at[(s, outcome), "mean"], unit)
            if (s, outcome) in summary.index
            else "-"
            for s in ("A", "B")
        ]
        if outcome in differences.index:
            row = differences.loc[outcome]
            difference = format_value(row["mean_difference"], unit, difference=True)
            interval = format_interval(row["ci_low"], row["ci_high"], unit, difference=True)
            pairs = str(int(row["n"]))
            mark = "*" if significant(row["ci_low"], row["ci_high"]) else ""
        else:
            difference, interval, pairs, mark = "-", "", "0", ""
        rows.append((outcome, unit, *means, difference, interval, pairs, mark))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append("* the 95% CI of the paired difference excludes zero")
    return lines
