"""Year 1 against the public 2025 figures: the generator, the table in docs/calibration.md,
and the calibration claim itself (marked ``calibration``: it holds once the economy is
recalibrated; ``pytest -m "not calibration"`` leaves it out).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

import marketsim
from marketsim import calibration
from marketsim.calibration import BEGIN
from marketsim.calibration import END
from marketsim.calibration import PUBLIC_FIGURES
from marketsim.calibration import calibration_table
from marketsim.calibration import markdown
from marketsim.calibration import update
from marketsim.calibration import year_one

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.25
"""Year 1 must lie within this relative distance of each public figure."""


@cache
def baseline():
    """The shipped baseline, as the doc's table is generated (10 replications, its seed)."""
    return calibration.run_experiment()


@pytest.fixture(scope="module")
def short_run(baseline_path):
    """Two replications of the baseline's first year."""
    experiment = marketsim.load_experiment(
        baseline_path, ["experiment.steps=14", "experiment.replications=2"]
    )
    return marketsim.run(experiment)


def test_year_one_matches_a_plain_computation(short_run):
    figures = year_one(short_run).set_index("replication")
    for replication in (0, 1):
        markets = short_run.markets[short_run.markets["replication"] == replication]
        sectors = short_run.sectors[short_run.sectors["replication"] == replication]
        chain = short_run.chain[short_run.chain["replication"] == replication]
        value = {"accelerators": 0.0, "compute": 0.0}
        hours, capex, twh = 0.0, 0.0, []
        for row in markets.itertuples():
            if row.step <= 11 and row.market in value:
                value[row.market] += row.price * row.quantity
                hours += row.quantity if row.market == "compute" else 0.0
        for row in sectors.itertuples():
            if row.step <= 11 and row.sector == "datacenter":
                capex += row.capex
        for row in chain.itertuples():
            if row.step <= 11:
                twh.append(row.electricity_twh_per_year)
        got = figures.loc[replication]
        assert got["accelerator_revenue"] == pytest.approx(value["accelerators"] / 1e9, rel=1e-12)
        assert got["datacenter_capex"] == pytest.approx(capex / 1e9, rel=1e-12)
        assert got["compute_price"] == pytest.approx(value["compute"] / hours, rel=1e-12)
        assert got["electricity"] == pytest.approx(sum(twh) / 12, rel=1e-12)


def test_table_has_a_row_per_public_figure_with_an_interval(short_run):
    table = calibration_table(short_run)
    assert table["figure"].tolist() == [f.label for f in PUBLIC_FIGURES]
    assert (table["ci_low"] <= table["model_mean"]).all()
    assert (table["model_mean"] <= table["ci_high"]).all()
    assert np.allclose(table["ratio"], table["model_mean"] / table["public"])
    for figure in PUBLIC_FIGURES:
        assert figure.low <= figure.value <= figure.high
    text = markdown(table, "a test run")
    assert text.count("\n| ") == 1 + len(PUBLIC_FIGURES)


def test_public_electricity_figure_is_the_ai_share_of_the_iea_figure():
    """AI load: ~20% of the IEA's 415 TWh (2024), grown a year at the pace of tripling by 2030."""
    electricity = {f.key: f for f in PUBLIC_FIGURES}["electricity"]
    assert electricity.low == pytest.approx(0.2 * 415, abs=0.5)
    assert electricity.high == pytest.approx(0.2 * 415 * 3 ** (1 / 5), abs=0.5)
    assert electricity.value == pytest.approx((electricity.low + electricity.high) / 2, abs=0.5)


def test_update_replaces_only_the_table():
    text = f"before\n{BEGIN}\nold table\n{END}\nafter\n"
    assert update(text, "| new |\n") == f"before\n{BEGIN}\n\n| new |\n\n{END}\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        update("no markers here", "| new |\n")


def test_command_refuses_a_bad_replication_count(capsys):
    assert calibration.main(["--replications", "one"]) == 2
    assert capsys.readouterr().err == "error: --replications: expected an integer >= 2\n"


def test_calibration_doc_table_is_current():
    """docs/calibration.md holds the generator's table for the shipped baseline."""
    results, described = baseline()
    written = (ROOT / "docs" / "calibration.md").read_text("utf-8")
    table = markdown(calibration_table(results), described)
    assert update(written, table) == written, (
        "run: python -m marketsim.calibration --update docs/calibration.md"
    )


@pytest.mark.calibration
@pytest.mark.parametrize("figure", PUBLIC_FIGURES, ids=lambda f: f.key)
def test_baseline_year_one_is_within_25_percent(figure):
    results, _ = baseline()
    row = calibration_table(results).set_index("figure").loc[figure.label]
    assert abs(row["ratio"] - 1) <= TOLERANCE, (
        f"{figure.label}: model {row['model_mean']:.4g} [{row['ci_low']:.4g},"
        f" {row['ci_high']:.4g}] {figure.unit} vs public {figure.value:g}"
    )


@pytest.mark.calibration
def test_no_sector_loses_money_in_year_one():
    """A consistent start: every revenue-earning sector's year-1 net income is positive.

    Judged on the 95% interval over the baseline's 10 replications (its lower end above 0).
    """
    results, _ = baseline()
    first_year = results.sectors[results.sectors["step"] <= 11]
    earning = first_year.groupby("sector")["revenue"].sum()
    for sector in earning[earning > 0].index:
        rows = first_year[first_year["sector"] == sector]
        income = rows.groupby("replication")["net_income"].sum().to_numpy()
        mean = income.mean()
        half = 2.262 * income.std(ddof=1) / np.sqrt(len(income))  # t(0.975, 9)
        assert mean - half > 0, f"{sector}: year-1 net income {mean:.4g} +/- {half:.4g} USD"
