"""The dashboard without a browser: levers from the schema, bad input as the command line
reports it, the model SolaraViz steps, edge flows, and the results view of run and study
directories (the page itself in Chromium: test_dashboard_browser.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis import write_run_dir
from test_analysis import write_study_dir

from marketsim.analysis import AnalysisError
from marketsim.cli import main
from marketsim.dashboard.controls import CONTROL_KEYS
from marketsim.dashboard.controls import Levers
from marketsim.dashboard.controls import controls_for
from marketsim.dashboard.controls import scenario_files
from marketsim.experiment import load_experiment

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "experiments" / "baseline.toml"
BAD_ELASTICITY = "agents.end_demand.elasticity=20"


def _cli_error(args: list[str], capsys) -> str:
    """The stderr line of ``marketsim ARGS``, which must exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_levers_come_from_the_schema_with_units_and_ranges():
    experiment = load_experiment(BASELINE)
    controls = {control.key: control for control in controls_for(experiment)}
    assert list(controls) == list(CONTROL_KEYS)
    registry = experiment.components.registry().sector_tables
    for key, control in controls.items():
        _, sector, name = key.split(".")
        param = registry[sector].params[name]
        assert (control.unit, control.range_text, control.doc) == (
            param.unit,
            param.range_text(),
            param.doc,
        )
        assert control.value == experiment.config["agents"][sector][name]
        assert control.range_text in control.hint and control.unit in control.hint
    elasticity = controls["agents.end_demand.elasticity"]
    assert (elasticity.low, elasticity.high, elasticity.text) == (0, 10, "1.2")
    life = controls["agents.datacenter.useful_life_months"]
    assert life.hint == "months; valid: >= 2 and <= 240"
    assert life.kind is int and life.text == "60"


def test_scenarios_are_the_files_beside_the_experiment_not_the_classics():
    names = [path.name for path in scenario_files(BASELINE)]
    assert "baseline.toml" in names and "bubble.toml" in names
    assert not any("classics" in str(path) for path in scenario_files(BASELINE))
    assert names == sorted(names)


def test_out_of_range_value_gives_the_cli_line_and_keeps_the_last_good_state(capsys):
    from marketsim.dashboard.session import DashboardModel

    expected = _cli_error(["validate", str(BASELINE), "--set", BAD_ELASTICITY], capsys)
    levers = Levers(BASELINE)
    assert levers.set_value("agents.end_demand.elasticity", "1.5") is None
    good = levers.experiment
    model = DashboardModel(levers=levers)
    for _ in range(3):
        model.step()
    assert levers.set_value("agents.end_demand.elasticity", "20") == expected
    assert levers.set_value("agents.datacenter.useful_life_months", "2.5").startswith(
        "error: --set: agents.datacenter.useful_life_months: expected an integer"
    )
    assert levers.experiment is good and levers.overrides == {"agents.end_demand.elasticity": "1.5"}
    assert model.step_index == 3  # the running model is untouched
    again = DashboardModel(levers=levers)  # what Reset builds: the last good experiment
    assert again.experiment["agents"]["end_demand"]["elasticity"] == 1.5
    assert not levers.pending


def test_a_bad_value_typed_on_the_page_shows_the_cli_line_next_to_its_field(capsys):
    solara = pytest.importorskip("solara")
    import ipyvuetify as v

    from marketsim.dashboard.app import LeversPanel

    expected = _cli_error(["validate", str(BASELINE), "--set", BAD_ELASTICITY], capsys)
    levers = Levers(BASELINE)
    before = levers.experiment
    _, rendered = solara.render(LeversPanel(levers), handle_error=False)
    fields = rendered.find(v.TextField, label="end_demand.elasticity (ratio)")
    fields.assert_single()
    fields.widget.fire_event("change", "20")
    shown = rendered.find(v.Html, class_="marketsim-error")
    shown.assert_single()
    assert shown.widget.children == [expected]
    assert levers.experiment is before
    fields = rendered.find(v.TextField, label="end_demand.elasticity (ratio)")
    fields.widget.fire_event("change", "0.8")  # a good value clears the error
    assert not rendered.find(v.Html, class_="marketsim-error").widgets
    assert levers.experiment.config["agents"]["end_demand"]["elasticity"] == 0.8


def test_dashboard_replication_is_marketsim_runs_replication():
    import marketsim
    from marketsim.dashboard.session import DashboardModel
    from marketsim.dashboard.session import live_tables

    levers = Levers(BASELINE)
    assert levers.set_value("experiment.steps", "4") is None
    model = DashboardModel(levers=levers, replication=1)
    for _ in range(4):
        model.step()
    run = marketsim.run(levers.experiment.with_overrides({"experiment.replications": 2}))
    expected = run.chain[run.chain["replication"] == 1].reset_index(drop=True)
    shown = live_tables(model)["chain"][expected.columns]
    pd.testing.assert_frame_equal(shown, expected)
    assert not model.running


def test_edge_flows_spread_each_buyers_fill_over_its_open_edges():
    from marketsim.dashboard.graph_view import draw_supply_graph
    from marketsim.dashboard.graph_view import edge_flows
    from marketsim.dashboard.session import DashboardModel

    model = DashboardModel(levers=Levers(BASELINE))
    assert edge_flows(model) == {}
    model.step()
    flows = edge_flows(model)
    assert set(flows) <= set(model.graph.edges())
    for market in model.markets.values():
        received: dict[str, float] = {}
        for (seller, buyer), flow in flows.items():
            if model.graph.edges[seller, buyer]["good"] == market.name:
                received[buyer] = received.get(buyer, 0.0) + flow
        names = [f"{s.name}:{k}" for s, _, count in market.buyers.sectors for k in range(count)]
        np.testing.assert_allclose(
            [received.get(name, 0.0) for name in names], market.outcome.buyer_filled, rtol=1e-12
        )
    uri, positions = draw_supply_graph(model)
    assert uri.startswith("data:image/png;base64,") and set(positions) == set(model.graph)


def test_results_view_draws_a_run_and_a_study_with_bands(tmp_path):
    from marketsim.dashboard.results_view import results_figures

    run = results_figures(write_run_dir(tmp_path / "run", name="calm", replications=3))
    assert (run.kind, run.scenarios, run.runs) == ("run", ["calm"], 3)
    titles = [figure.title for figure in run.figures]
    assert titles[:2] == ["Price: accelerators", "Price: compute"]
    assert "Chain capex and end revenue" in titles and "Value capture by sector" in titles
    assert all(figure.uri.startswith("data:image/png;base64,") for figure in run.figures)

    study = results_figures(
        write_study_dir(tmp_path / "study", {"calm": 0.0, "boom": 0.5}, reference="calm")
    )
    assert (study.kind, study.scenarios, study.runs) == ("study", ["calm", "boom"], 6)
    titles = [figure.title for figure in study.figures]
    assert "Value capture by sector: boom" in titles and "Gross margin by sector: calm" in titles

    with pytest.raises(AnalysisError):
        results_figures(tmp_path / "missing")


def test_bands_are_the_t_interval_across_replications(tmp_path):
    from marketsim.analysis import load_results
    from marketsim.analysis import t_interval
    from marketsim.dashboard import charts

    loaded = load_results(write_run_dir(tmp_path / "run", replications=4))
    summary = charts.summarise(loaded.tables, loaded.units)
    rows = summary[summary["series"] == "chain.chain_capex"].sort_values("step")
    values = loaded.tables["chain"].groupby("step")["chain_capex"]
    low, high = t_interval(values.mean(), values.std(ddof=1), values.count())
    np.testing.assert_allclose(rows["ci_low"].to_numpy(dtype=float), low)
    np.testing.assert_allclose(rows["ci_high"].to_numpy(dtype=float), high)


def test_dashboard_command_refuses_a_bad_experiment_like_run(tmp_path, capsys):
    missing = str(tmp_path / "nope.toml")
    assert _cli_error(["dashboard", missing], capsys) == _cli_error(["validate", missing], capsys)
    bad = ["dashboard", str(BASELINE), "--port", "70000"]
    assert _cli_error(bad, capsys).startswith("error: marketsim dashboard: Invalid value")


def test_the_other_commands_never_import_solara():
    code = "import sys, marketsim.cli; print('solara' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert completed.stdout.strip() == "False"
