"""The researcher-facing result columns: free cash flow, its running total, return on invested
capital (``sectors``), electricity drawn, consumer surplus and the binding input (``chain``),
each checked against an independent computation from the other columns, the power market or
the model's arrays; the text column's path through Parquet and analysis; payback months.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import marketsim
from marketsim.analysis.outcomes import outcome_measures
from marketsim.analysis.outcomes import outcome_unit
from marketsim.analysis.study import series_summary
from marketsim.bottleneck import BINDING_INPUTS
from marketsim.bottleneck import binding_input_of_operators
from marketsim.cli import cli
from marketsim.model import SupplyChainModel
from marketsim.sectors.end_demand import EndDemand
from marketsim.surplus import CHOKE_PRICE_MULTIPLE
from marketsim.surplus import area_under_capped_power

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
    area = float(area_under_capped_power(np.array([lower]), upper, elasticity, cap)[0])
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


# -- binding_input --------------------------------------------------------------------------

PHYSICAL = ("accelerators", "buildings", "network", "power")
"""The physical inputs in the order that breaks ties (docs/model.md 7.14)."""


def reference_binding_input(model) -> str:
    """The binding-input rule written out plainly, firm by firm, from the model's arrays."""
    market = model.markets["compute"]
    offered = sum(float(v) for v in market.book.seller_capacity)
    sold = sum(float(v) for v in market.outcome.seller_sold)
    if offered > 0 and sold < (1 - 1e-9) * offered:
        return "demand"
    weights = dict.fromkeys(PHYSICAL, 0.0)
    for sector in model.sectors.values():
        if not hasattr(sector, "input_limits"):
            continue
        limits = sector.input_limits()
        for firm in range(sector.count):
            values = {name: float(limits[name][firm]) for name in PHYSICAL}
            low = min(values.values())
            chosen = next(name for name in PHYSICAL if values[name] <= low + 1e-9 * abs(low))
            weights[chosen] += values["accelerators"]
    if sum(weights.values()) <= 0:
        return "accelerators"
    return max(PHYSICAL, key=lambda name: (weights[name], -PHYSICAL.index(name)))


@pytest.fixture(scope="module")
def crunch_steps():
    """power_crunch stepped by hand: (recorded binding_input, reference) per step."""
    path = Path(__file__).resolve().parent.parent / "experiments" / "power_crunch.toml"
    experiment = marketsim.load_experiment(path, ["experiment.steps=60"])
    model = SupplyChainModel(experiment, np.random.SeedSequence(11))
    recorded, expected, usable = [], [], []
    for _ in range(60):
        model.step()
        recorded.append(model.recorder.rows["chain"]["binding_input"][-1][0])
        expected.append(reference_binding_input(model))
        for sector in model.sectors.values():
            if hasattr(sector, "input_limits"):
                limits = sector.input_limits()
                usable.append((np.min(np.stack(list(limits.values())), axis=0), sector.usable))
    return recorded, expected, usable


def test_binding_input_matches_the_rule_written_out(crunch_steps):
    recorded, expected, _ = crunch_steps
    assert recorded == expected
    assert set(recorded) <= set(BINDING_INPUTS)


def test_input_limits_are_the_recipe_the_fleet_runs_on(crunch_steps):
    """The usable fleet is the smallest input limit: what makes the rule name a real limit."""
    _, _, usable = crunch_steps
    for smallest, fleet in usable:
        assert np.allclose(smallest, fleet, rtol=1e-9, atol=1e-9)


LIMIT_VALUES = st.one_of(
    st.sampled_from([0.0, 5e-324, 1.0, 1.0 + 1e-12, 1e300]),
    st.floats(0.0, 1e12, allow_subnormal=True),
)


@given(st.lists(st.tuples(LIMIT_VALUES, LIMIT_VALUES, LIMIT_VALUES, LIMIT_VALUES), max_size=6))
def test_operators_binding_input_is_the_smallest_limit_first_in_tie_order(rows):
    limits = {
        name: np.array([row[k] for row in rows], dtype=float) for k, name in enumerate(PHYSICAL)
    }
    chosen = binding_input_of_operators(limits)
    assert chosen.shape == (len(rows),)
    for row, index in zip(rows, chosen, strict=True):
        low = min(row)
        first = next(k for k, value in enumerate(row) if value <= low + 1e-9 * abs(low))
        assert index == first


def test_binding_input_is_a_text_column_that_round_trips(results, tmp_path):
    _, run = results
    column = run.chain["binding_input"]
    assert pd.api.types.is_string_dtype(column.dtype)
    assert column.notna().all() and set(column) <= set(BINDING_INPUTS)
    assert run.manifest["units"]["chain"]["binding_input"] == "category"
    run.write(tmp_path / "out")
    again = pd.read_parquet(tmp_path / "out" / "chain.parquet")["binding_input"]
    assert again.astype(str).tolist() == column.tolist()
    first = (tmp_path / "out" / "chain.parquet").read_bytes()
    run.write(tmp_path / "again")
    assert (tmp_path / "again" / "chain.parquet").read_bytes() == first


def test_binding_input_months_are_counted_per_run(results):
    _, run = results
    measures = outcome_measures(run.tables, run.manifest["units"], ["replication"])
    counts = measures[measures["outcome"].str.startswith("chain.binding_input.")]
    seen = set(run.chain["binding_input"])
    assert set(counts["outcome"]) == {f"chain.binding_input.months_{name}" for name in seen}
    for replication, rows in counts.groupby("replication"):
        chain = run.chain[run.chain["replication"] == replication]
        for name in seen:
            value = rows.loc[rows["outcome"] == f"chain.binding_input.months_{name}", "value"]
            assert float(value.iloc[0]) == float((chain["binding_input"] == name).sum())
        assert float(rows["value"].sum()) == len(chain)
    assert outcome_unit("chain.binding_input.months_power", run.manifest["units"]) == "months"
    summary = series_summary(run.tables, run.manifest["units"], [])
    assert "chain.binding_input" not in set(summary["series"].astype(str))
    assert "chain.utilization" in set(summary["series"].astype(str))


TEXT_PLUGIN = """\
import marketsim
from marketsim import MetricSpec


@marketsim.hookimpl
def marketsim_register_metrics(register):
    register(MetricSpec("chain", "mood", lambda model: {value}, "category", "",
                        categories=("calm", "tense")))
"""


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("'giddy'", "returned 'giddy', expected one of calm, tense or None at step 0"),
        ("3.0", "returned 3.0, expected one of calm, tense or None at step 0"),
        ("['calm', 'calm']", "returned 2 values, expected 1 (one value per step) at step 0"),
    ],
)
def test_bad_text_metric_stops_the_run_on_one_line(write_experiment, tmp_path, value, says):
    (tmp_path / "bad.py").write_text(TEXT_PLUGIN.format(value=value))
    path = write_experiment('plugins = ["bad.py"]\n', steps=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines() == [f"error: plugin 'bad.py' metric chain.mood: {says}"]
    assert not out.exists()


def test_text_metric_null_is_written_as_null(write_experiment, tmp_path):
    (tmp_path / "bad.py").write_text(TEXT_PLUGIN.format(value="None"))
    path = write_experiment('plugins = ["bad.py"]\n', steps=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out / "chain.parquet")["mood"].isna().all()


# -- payback month ------------------------------------------------------------------------


def _payback(cumulative: list[float]) -> float:
    """Payback month by its definition, month by month."""
    for month in range(len(cumulative)):
        if all(value >= 0 for value in cumulative[month:]):
            return float(month)
    return float("nan")


@pytest.mark.parametrize(
    ("cumulative", "expected"),
    [
        ([-5.0, -1.0, 0.0, 3.0], 2.0),  # reaching zero counts as paid back
        ([1.0, 2.0, 3.0], 0.0),  # never negative
        ([-1.0, 2.0, -0.5, 1.0], 3.0),  # paid back, fell back, paid back again
        ([-1.0, 2.0, -0.5], None),  # negative at the last month
        ([-1.0, float("nan"), 1.0], 2.0),  # a null month is not paid back
        ([1.0, float("nan")], None),
    ],
)
def test_payback_month_by_definition(cumulative, expected):
    steps = len(cumulative)
    sectors = pd.DataFrame(
        {
            "replication": np.zeros(2 * steps, dtype=np.int64),
            "step": np.tile(np.arange(steps), 2),
            "sector": ["a"] * steps + ["b"] * steps,
            "cumulative_free_cash_flow": cumulative + [1.0] * steps,
        }
    )
    units = {"sectors": {"cumulative_free_cash_flow": "USD"}}
    measures = outcome_measures({"sectors": sectors}, units, ["replication"]).set_index("outcome")
    value = measures.loc["sectors.a.cumulative_free_cash_flow.payback_month", "value"]
    if expected is None:
        assert pd.isna(value)
    else:
        assert float(value) == expected
    assert float(measures.loc["sectors.b.cumulative_free_cash_flow.payback_month", "value"]) == 0
    assert outcome_unit("sectors.a.cumulative_free_cash_flow.payback_month", units) == "month"


def test_payback_month_of_a_run_matches_the_definition(results):
    _, run = results
    measures = outcome_measures(run.tables, run.manifest["units"], ["replication"])
    found = measures[measures["outcome"].str.endswith(".payback_month")]
    assert len(found) == run.sectors.groupby(["replication", "sector"]).ngroups
    for (replication, name), rows in run.sectors.groupby(["replication", "sector"]):
        rows = rows.sort_values("step")
        expected = _payback(rows["cumulative_free_cash_flow"].tolist())
        outcome = f"sectors.{name}.cumulative_free_cash_flow.payback_month"
        value = found[(found["replication"] == replication) & (found["outcome"] == outcome)]
        got = value["value"].iloc[0]
        assert (pd.isna(got) and np.isnan(expected)) or float(got) == expected
