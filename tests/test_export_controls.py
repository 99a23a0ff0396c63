"""The shipped export-controls plugin: trade closes at the start step and demand goes unmet."""

from __future__ import annotations

from pathlib import Path

import marketsim

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def accelerators(name: str, *overrides: str):
    """The accelerator market of a 36-step run of a shipped experiment."""
    path = EXPERIMENTS / f"{name}.toml"
    results = marketsim.run(marketsim.load_experiment(path, ["experiment.steps=36", *overrides]))
    markets = results.markets
    return results, markets[markets["market"] == "accelerators"].reset_index(drop=True)


def test_control_closes_edges_from_its_start_step_only():
    """Before month 24 the run equals the baseline; from month 24 edges are closed."""
    _, base = accelerators("baseline")
    controlled_results, controlled = accelerators("export_controls")
    closed = controlled_results.chain["export_controlled_edges"]
    assert (closed.iloc[:24] == 0).all() and (closed.iloc[24:] > 0).all()
    assert base.iloc[:24].equals(controlled.iloc[:24])
    later = slice(24, 36)
    assert controlled["unfilled"].iloc[later].sum() > 2 * base["unfilled"].iloc[later].sum()


def test_control_table_is_validated():
    """An unknown key in the plugin's table is refused with a did-you-mean."""
    try:
        marketsim.load_experiment(
            EXPERIMENTS / "export_controls.toml", ["export_controls.start_stp=3"]
        )
    except marketsim.ExperimentError as error:
        assert "export_controls.start_stp" in error.line()
        assert "did you mean 'start_step'" in error.line()
    else:
        raise AssertionError("the typo was accepted")


def test_a_region_typo_stops_the_run_with_one_line(tmp_path):
    """A region that is not in [graph] regions is reported before the run, naming the key."""
    from click.testing import CliRunner

    from marketsim.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(EXPERIMENTS / "export_controls.toml"),
            "--set",
            'export_controls.to_region="mars"',
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "export_controls.to_region" in lines[0] and "'mars'" in lines[0]
    assert not (tmp_path / "out").exists()
