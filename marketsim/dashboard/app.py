"""The Solara app: Mesa's SolaraViz around the supply chain, with levers, charts and results.

Served by ``marketsim dashboard`` (`marketsim.dashboard.server`), which names the experiment
in the environment variable `EXPERIMENT_VARIABLE`. SolaraViz gives the step, play/pause and
reset buttons, the play and render intervals and the replication slider (its model
parameters); Reset builds `DashboardModel` again from the session's last good levers.

The page, beside SolaraViz's sidebar:

- Levers (sidebar): the scenario file to start from and the parameters of
  `marketsim.dashboard.controls.CONTROL_KEYS`, each labelled with its unit and valid range.
  A value is checked when it is entered (Enter or leaving the field) exactly as ``--set``
  checks it; a rejected value shows the command line's message under its field and changes
  nothing. Accepted changes apply at Reset, as SolaraViz's own parameters do.
- Live tabs: the step counter and which input binds, then the charts of
  `marketsim.dashboard.charts` and the supply graph (`marketsim.dashboard.graph_view`) for
  the model so far; only the open tab is drawn.
- Results tab: a run or study directory typed in a field, drawn with 95% bands
  (`marketsim.dashboard.results_view`).
"""

from __future__ import annotations

import os
from pathlib import Path

import solara
from mesa.visualization import Slider
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from marketsim.dashboard import charts
from marketsim.dashboard.controls import DEFAULT_EXPERIMENT
from marketsim.dashboard.controls import EXPERIMENT_VARIABLE
from marketsim.dashboard.controls import Control
from marketsim.dashboard.controls import Levers
from marketsim.dashboard.graph_view import MAX_DRAWN_NODES
from marketsim.dashboard.graph_view import draw_supply_graph
from marketsim.dashboard.images import Figures
from marketsim.dashboard.results_view import ResultsView
from marketsim.dashboard.session import DashboardModel
from marketsim.dashboard.session import live_tables

VIEWS = ("Markets and supply graph", "Margins and capital", "Results")
"""The page's views; only the chosen one is drawn."""
REPLICATIONS_SHOWN = 20
"""The replication slider runs from 0 to this minus one."""


def experiment_path() -> Path:
    """The experiment the page starts from: `EXPERIMENT_VARIABLE`, else the baseline."""
    return Path(os.environ.get(EXPERIMENT_VARIABLE) or DEFAULT_EXPERIMENT)


def _live_figures(model: DashboardModel, parts: tuple[str, ...]) -> list[charts.Figure]:
    tables = live_tables(model)
    if tables["chain"].empty:
        return []
    summary = charts.summarise(tables, model.units)
    return charts.figures(
        summary,
        [model.scenario_label],
        [sector.name for sector in model.firm_sectors],
        list(model.markets),
        model.units,
        model.price_units,
        parts,
    )


@solara.component
def LiveCharts(model: DashboardModel, step: int, parts: tuple[str, ...]):
    """The live charts of ``parts`` (`charts.figures`) for the model at ``step``."""
    drawn = solara.use_memo(lambda: _live_figures(model, parts), [model, step, parts])
    if not drawn:
        solara.Text("Press Step or play: the charts start after the first step.")
        return
    Figures(drawn)


@solara.component
def SupplyGraph(model: DashboardModel, step: int):
    """The supply graph with this step's flows (described instead above the size limit)."""
    positions = solara.use_memo(lambda: {}, [model])
    uri, layout = solara.use_memo(
        lambda: draw_supply_graph(model, positions.get("layout")), [model, step]
    )
    if uri is None:
        nodes = int(model.supply.counts.sum())
        solara.Text(
            f"The supply graph has {nodes:,} firms and segments, more than the "
            f"{MAX_DRAWN_NODES:,} drawn here; write it with marketsim graph FILE --out edges.csv."
        )
        return
    positions["layout"] = layout
    Figures([charts.Figure("Supply graph", uri)])


@solara.component
def LeverField(control: Control, levers: Levers, on_accepted):
    """One lever: a text field with unit and range under it, and the error for a bad value.

    Checked on Vuetify's ``change`` (Enter, or leaving a changed field), with the value the
    event carries (the field's synced value may lag behind a fast Enter).
    """
    text, set_text = solara.use_state(control.text, key=f"{control.key}:{control.text}")
    error, set_error = solara.use_state(None, key=f"{control.key}:error:{control.text}")

    def enter(widget, event, value) -> None:
        value = str(value if value is not None else widget.v_model or "").strip()
        set_text(value)
        problem = levers.set_value(control.key, value)
        set_error(problem)
        if problem is None:
            on_accepted()

    with solara.Column(gap="0px"):  # the same tree with or without an error: the field
        field = solara.v.TextField(  # widget, and its change handler, stay
            label=f"{control.label} ({control.unit})" if control.unit else control.label,
            v_model=text,
            on_v_model=set_text,
            hint=control.hint,
            persistent_hint=True,
            error=bool(error),
            class_="marketsim-lever",
        )
        solara.v.use_event(field, "change", enter)
        solara.Text(
            error or "",
            classes=["marketsim-error"] if error else [],
            style={"color": "#b00020"},
        )


@solara.component
def LeversPanel(levers: Levers):
    """Scenario choice and levers, checked as the command line checks ``--set``."""
    version, set_version = solara.use_state(0)
    scenario_error, set_scenario_error = solara.use_state(None)
    names = {path.name: path for path in levers.scenarios}

    def choose(name: str) -> None:
        problem = levers.choose_scenario(names[name])
        set_scenario_error(problem)
        set_version(version + 1)

    with solara.Card("Levers"):
        solara.Select(
            "scenario to start from", values=list(names), value=levers.path.name, on_value=choose
        )
        if scenario_error:
            solara.Text(scenario_error, classes=["marketsim-error"], style={"color": "#b00020"})
        for control in levers.controls():
            LeverField(control, levers, lambda: set_version(version + 1))
        if levers.pending:
            solara.Info("Accepted changes apply at Reset.", dense=True)


@solara.component
def Status(model: DashboardModel, step: int):
    """Step counter, scenario, replication, and which input binds at ``step``."""
    steps = step
    chain = model.recorder.rows["chain"].get(charts.BINDING_COLUMN)
    binding = chain[-1][0] if chain else None
    solara.Text(
        f"Step {steps} of {model.steps_to_run}",
        classes=["marketsim-step"],
        style={"font-size": "1.3em", "font-weight": "bold"},
    )
    solara.Text(f"{model.scenario_label}, replication {model.replication}")
    if steps:
        solara.Text(f"Binding input this step: {binding or 'none'}", classes=["marketsim-binding"])
        rows = model.recorder.rows["chain"].get(charts.BINDING_COLUMN) or []
        counts: dict[str, int] = {}
        for values in rows:
            counts[str(values[0])] = counts.get(str(values[0]), 0) + 1
        summary = ", ".join(f"{name} {months}" for name, months in counts.items())
        solara.Text(f"Months each input has bound so far: {summary}")


@solara.component
def Dashboard(model: DashboardModel, levers: Levers):
    """Everything beside SolaraViz's own controls; redrawn when the model steps."""
    update_counter.get()  # SolaraViz bumps it after each step
    step = model.step_index
    with solara.Sidebar():
        LeversPanel(levers)
    Status(model, step)
    view, set_view = solara.use_state(VIEWS[0])
    solara.ToggleButtonsSingle(value=view, values=list(VIEWS), on_value=set_view)
    if view == VIEWS[0]:
        LiveCharts(model, step, ("prices",))
        SupplyGraph(model, step)
    elif view == VIEWS[1]:
        LiveCharts(model, step, ("sectors", "chain"))
    else:
        ResultsView()


@solara.component
def Page():
    """The dashboard page (`solara run marketsim.dashboard.app`)."""
    levers = solara.use_memo(lambda: Levers(experiment_path()), [])
    first = solara.use_memo(lambda: DashboardModel(levers=levers), [])
    model = solara.use_reactive(first)
    SolaraViz(
        model,
        components=[],
        model_params={
            "levers": levers,
            "replication": Slider(
                "replication (seeded as in marketsim run)", 0, 0, REPLICATIONS_SHOWN - 1, 1
            ),
        },
        name="marketsim dashboard",
    )
    Dashboard(model.value, levers)
