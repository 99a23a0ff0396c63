"""The results view: a run or study directory drawn with 95% confidence bands, no rerun.

`results_figures` reads a directory with `marketsim.analysis.load_results` (a run is one
scenario, its replications give the bands; a study gives one band per scenario, pooling its
design points) and draws `marketsim.dashboard.charts.figures` of it. A directory that is not
results gives the line ``marketsim report`` prints for it. `ResultsView` is its Solara panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import solara

from marketsim.analysis import AnalysisError
from marketsim.analysis import load_results
from marketsim.dashboard import charts
from marketsim.dashboard.controls import error_line
from marketsim.dashboard.images import Figures
from marketsim.errors import MarketsimError


@dataclass(frozen=True)
class ResultsFigures:
    """What the results view shows for one directory.

    Attributes:
        label: the experiment's or study's name.
        kind: ``run`` or ``study``.
        scenarios: scenarios drawn, in manifest order.
        runs: number of runs (scenario, design point, replication) read.
        figures: the charts (`charts.figures`), bands across replications.
        binding: months each input binds, mean over a scenario's runs (`charts.binding_months`).
    """

    label: str
    kind: str
    scenarios: list[str]
    runs: int
    figures: list[charts.Figure]
    binding: pd.DataFrame


def _order(frame: pd.DataFrame | None, column: str) -> list[str]:
    return [] if frame is None else [str(v) for v in pd.unique(frame[column])]


def _price_units() -> dict[str, str]:
    """The built-in goods' price units (a results directory records only "good's price
    unit")."""
    from marketsim.experiment import collect_components
    from marketsim.plugins import plugin_manager

    goods = collect_components(plugin_manager()).goods
    return {name: good.price_unit for name, good in goods.items()}


def results_figures(directory: str | Path) -> ResultsFigures:
    """Load ``directory`` and draw its charts with 95% bands across replications.

    Raises:
        AnalysisError: not a results directory (or unreadable), as for ``marketsim report``.
    """
    loaded = load_results(Path(directory).expanduser())
    tables = {name: frame for name, frame in loaded.tables.items() if name in charts.TABLES}
    chain = tables.get("chain")
    if chain is None or chain.empty:
        raise AnalysisError(f"{directory}: no chain table to draw")
    present = set()
    for frame in tables.values():
        present.update(frame["scenario"].astype(str).unique().tolist())
    scenarios = [s for s in loaded.scenarios if s in present]
    scenarios += sorted(present - set(scenarios))
    tables = {
        name: frame.assign(scenario=frame["scenario"].astype(str)) for name, frame in tables.items()
    }
    summary = charts.summarise(tables, loaded.units)
    drawn = charts.figures(
        summary,
        scenarios,
        _order(tables.get("sectors"), "sector"),
        _order(tables.get("markets"), "market"),
        loaded.units,
        _price_units(),
    )
    runs = len(chain[["scenario", "point", "replication"]].drop_duplicates())
    return ResultsFigures(
        loaded.label, loaded.kind, scenarios, runs, drawn, charts.binding_months(tables["chain"])
    )


@solara.component
def ResultsView():
    """A directory field, an Open button, and the directory's charts or its error line."""
    directory, set_directory = solara.use_state("")
    shown, set_shown = solara.use_state(None)
    error, set_error = solara.use_state(None)

    def open_directory() -> None:
        if not directory.strip():
            set_error("error: expected a run or study directory, got an empty field")
            return
        try:
            result = results_figures(directory.strip())
        except MarketsimError as problem:
            set_error(error_line(problem))
            return
        set_error(None)
        set_shown(result)

    with solara.Row():
        solara.InputText(
            "run or study directory (written by marketsim run or marketsim study)",
            value=directory,
            on_value=set_directory,
            continuous_update=True,
            error=error or False,
            classes=["marketsim-results-path"],
        )
        solara.Button("Open", on_click=open_directory, classes=["marketsim-results-open"])
    if error:
        solara.Text(error, classes=["marketsim-error"], style={"color": "#b00020"})
    if shown is None:
        return
    solara.Text(
        f"{shown.kind} {shown.label}: {len(shown.scenarios)} scenario(s), {shown.runs} runs; "
        "bands are 95% confidence intervals across replications",
        classes=["marketsim-results-title"],
    )
    if not shown.binding.empty:
        lines = [
            f"{row.scenario}: {row.input} {row.months:.1f}"
            for row in shown.binding.itertuples(index=False)
        ]
        solara.Text("Months each input binds (mean over runs): " + "; ".join(lines))
    Figures(shown.figures)
