"""The researcher-facing result columns: free cash flow, its running total, return on invested
capital (``sectors``), electricity drawn and consumer surplus (``chain``), each checked against
an independent computation from the other columns, the power market or the model's arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marketsim
from marketsim.analysis.outcomes import outcome_measures
from marketsim.metrics import CHOKE_PRICE_MULTIPLE
from marketsim.metrics import _area_under_capped_power
from marketsim.model import SupplyChainModel
from marketsim.sectors.end_demand import EndDemand

SECTOR_COLUMNS = ("free_cash_flow", "cumulative_free_cash_flow", "return_on_invested_capital")
CHAIN_COLUMNS = ("electricity_twh_per_year", "consumer_surplus")


@pytest.fixture(scope="module")
def results(baseline_path):
    """A 12-step baseline run with two replications."""
    experiment = marketsim.load_experiment(
        baseline_path, ["experiment.steps=12", "experiment.replications=2"]
    )
    return experiment, marketsim.run(experiment)


@pytest.fixture(scope="module")
def stepped(baseline_path):
    """The baseline economy built directly, with the model's arrays read after every step."""
    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=8"])
    model = SupplyChainModel(experiment, np.random.SeedSequence(5))
    snapshots = []
    for _ in range(8):
        model.step()
        firms = model.firms
        end = [s for s in model.sectors.values() if isinstance(s, EndDemand)]
        snapshots.append(
            {
                "operating_income": firms.revenue - firms.cost_of_goods - firms.opex,
                "book_value": firms.book_value.copy(),
                "sector_code": firms.sector_code.copy(),
                "price_faced": np.concatenate([s.price_faced for s in end]),
                "filled": np.concatenate([s.last_filled for s in end]),
            }
        )
    return model, snapshots


def test_new_columns_are_present_with_units(results):
    _, run = results
    units = run.manifest["units"]
    for column in SECTOR_COLUMNS:
        assert column in run.sectors.columns
        assert units["sectors"][column]
    for column in CHAIN_COLUMNS:
        assert column in run.chain.columns
        assert units["chain"][column]
    assert units["sectors"]["free_cash_flow"] == "USD per step"
    assert units["sectors"]["return_on_invested_capital"] == "per year"
    assert units["chain"]["electricity_twh_per_year"] == "TWh per year"


def test_columns_are_finite_where_not_documented_as_null(results):
    _, run = results
    for column in ("free_cash_flow", "cumulative_free_cash_flow"):
        assert np.isfinite(run.sectors[column].to_numpy(dtype=float)).all()
    for column in CHAIN_COLUMNS:
        values = run.chain[column].to_numpy(dtype=float)
        assert np.isfinite(values).all()
        assert (values > 0).all()
    roic = run.sectors["return_on_invested_capital"].to_numpy(dtype=float)
    assert not np.isinf(roic).any()


def test_free_cash_flow_is_cash_operating_flow_less_capex(results):
    _, run = results
    s = run.sectors
    expected = (
        s["revenue"]
        - (s["cost_of_goods"] - s["depreciation"])
        - s["opex"]
        - s["interest"]
        - s["tax"]
        - s["capex"]
    )
    scale = 1.0 + s[["revenue", "capex", "cost_of_goods"]].abs().max(axis=1)
    assert (np.abs(s["free_cash_flow"] - expected) <= 1e-9 * scale).all()


def test_cumulative_free_cash_flow_is_the_running_sum_within_each_replication(results):
    _, run = results
    s = run.sectors.sort_values(["replication", "sector", "step"])
    running = s.groupby(["replication", "sector"])["free_cash_flow"].cumsum()
    scale = 1.0 + s.groupby(["replication", "sector"])["free_cash_flow"].transform(
        lambda v: v.abs().cumsum()
    )
    assert (np.abs(s["cumulative_free_cash_flow"] - running) <= 1e-9 * scale).all()
    first = s[s["step"] == 0]
    assert np.allclose(first["cumulative_free_cash_flow"], first["free_cash_flow"], rtol=0)


def test_return_on_invested_capital_matches_book_value(stepped):
    model, snapshots = stepped
    tax_rate = model.experiment["finance"]["tax_rate"]
    recorded = model.recorder.rows["sectors"]["return_on_invested_capital"]
    n_sectors = len(model.firm_sectors)
    for snapshot, values in zip(snapshots, recorded, strict=True):
        income = snapshot["operating_income"]
        nopat = np.where(income > 0, income * (1 - tax_rate), income)
        code = snapshot["sector_code"]
        nopat_by = np.bincount(code, weights=nopat, minlength=n_sectors)
        capital_by = np.bincount(code, weights=snapshot["book_value"], minlength=n_sectors)
        defined = capital_by > 1.0
        assert np.isnan(values[~defined]).all()
        assert np.allclose(values[defined], 12 * nopat_by[defined] / capital_by[defined])
    assert any(np.isfinite(values).any() for values in recorded)


def test_electricity_is_the_power_billed_annualised(results):
    experiment, run = results
    load_factor = experiment.config["agents"]["utility"]["load_factor"]
    power = run.markets[run.markets["market"] == "power"].set_index(["replication", "step"])
    chain = run.chain.set_index(["replication", "step"])
    expected = power["quantity"] * load_factor * 730 * 12 / 1e6
    assert np.allclose(chain["electricity_twh_per_year"], expected.loc[chain.index], rtol=1e-12)


def test_consumer_surplus_matches_the_closed_form(stepped):
    model, snapshots = stepped
    p = model.experiment["agents"]["end_demand"]
    reference, elasticity = p["reference_price_usd_per_mtoken"], p["elasticity"]
    recorded = model.recorder.rows["chain"]["consumer_surplus"]
    for snapshot, values in zip(snapshots, recorded, strict=True):
        price = snapshot["price_faced"]
        choke = CHOKE_PRICE_MULTIPLE * reference
        assert (price < choke).all() and (price > reference * 1e-3).all()  # cap does not bind
        # D(q) = D(p) (q / p) ** -e, integrated from p to the choke price, per segment
        area = price * ((choke / price) ** (1 - elasticity) - 1) / (1 - elasticity)
        expected = float((snapshot["filled"] * area).sum())
        assert values[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("elasticity", [0.0, 0.5, 1.0, 1.2, 3.0])
@pytest.mark.parametrize("lower", [1e-9, 1e-4, 0.3, 1.0, 50.0, 100.0, 200.0])
def test_area_under_the_capped_demand_curve(elasticity, lower):
    cap, upper = 1e3, 100.0
    grid = np.geomspace(max(min(lower, upper), 1e-12), upper, 400_001)
    curve = np.minimum(grid ** (-elasticity), cap)
    numeric = np.trapezoid(curve, grid) + (grid[0] - min(lower, upper)) * min(
        lower ** (-elasticity) if lower > 0 else cap, cap
    )
    area = float(_area_under_capped_power(np.array([lower]), upper, elasticity, cap)[0])
    assert area >= 0
    assert area == pytest.approx(max(numeric, 0.0), rel=1e-6, abs=1e-9)


def test_outcome_measures_include_the_new_columns(results):
    _, run = results
    measures = outcome_measures(
        {"sectors": run.sectors, "chain": run.chain, "markets": run.markets},
        run.manifest["units"],
        ["replication"],
    )
    names = set(measures["outcome"])
    assert any("electricity_twh_per_year" in name for name in names)
    assert any("consumer_surplus" in name for name in names)
    assert any("cumulative_free_cash_flow" in name for name in names)
    assert isinstance(measures, pd.DataFrame)
