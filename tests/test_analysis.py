"""Analysis: outcome measures, summaries, paired differences, sensitivity, study files.

Numbers are checked against hand computations on small synthetic tables (t quantiles from
a printed table: t(0.975, 1) = 12.7062047362, t(0.975, 2) = 4.30265272991,
t(0.975, 3) = 3.18244630528). The helpers at the top also write synthetic run and study
directories for tests/test_report.py and tests/test_report_browser.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketsim.analysis import AnalysisError
from marketsim.analysis import analyse_study_dir
from marketsim.analysis import default_sensitivity_outcomes
from marketsim.analysis import headline_outcomes
from marketsim.analysis import outcome_measures
from marketsim.analysis import outcome_summary
from marketsim.analysis import outcome_unit
from marketsim.analysis import paired_differences
from marketsim.analysis import run_summary
from marketsim.analysis import sensitivity
from marketsim.analysis import step_summary

T1, T2, T3 = 12.7062047362, 4.30265272991, 3.18244630528

UNITS = {
    "sectors": {
        "revenue": "USD per step",
        "cost_of_goods": "USD per step",
        "gross_profit": "USD per step",
        "gross_margin": "share",
        "value_capture_share": "share",
        "capex": "USD per step",
        "cash": "USD",
    },
    "markets": {"price": "good's price unit", "quantity": "good's unit per step"},
    "chain": {
        "valuation_to_fundamental": "ratio",
        "end_revenue": "USD per step",
        "chain_revenue": "USD per step",
        "chain_gross_profit": "USD per step",
        "chain_capex": "USD per step",
        "capex_to_revenue": "ratio",
        "utilization": "share",
        "stranded_accelerators": "accelerators",
        "defaults": "firms",
    },
}
SECTORS = ("chip_vendor", "datacenter", "inference")
MARKETS = ("accelerators", "compute")


# --- synthetic results directories (shared with the report tests) -------------------------


def synthetic_run(
    scenario: str, point: int, replication: int, steps: int, effect: float = 0.0, x=()
) -> dict[str, pd.DataFrame]:
    """Tables of one synthetic run; replication r draws the same noise in every scenario and
    point (common random numbers); ``effect`` scales capex and the datacenter's revenue;
    design values ``x`` move chain capex (4 x0 + x1^2, x2 inert)."""
    rng = np.random.default_rng(1000 + replication)
    step = np.arange(steps)
    noise = rng.normal(size=(len(SECTORS) + 2, steps))
    revenue = np.array(
        [
            (100 + 10 * i + 5 * step + 8 * noise[i]) * (1 + effect * (name == "datacenter"))
            for i, name in enumerate(SECTORS)
        ]
    )
    margin = np.array([0.7, 0.2, 0.45])[:, None]
    gross_profit = revenue * margin
    chain_gross_profit = gross_profit.sum(axis=0)
    sectors = pd.DataFrame(
        {
            "replication": np.repeat(replication, steps * len(SECTORS)),
            "step": np.tile(step, len(SECTORS)),
            "sector": np.repeat(SECTORS, steps),
            "revenue": revenue.ravel(),
            "cost_of_goods": (revenue - gross_profit).ravel(),
            "gross_profit": gross_profit.ravel(),
            "gross_margin": (gross_profit / revenue).ravel(),
            "value_capture_share": (gross_profit / chain_gross_profit).ravel(),
            "capex": np.tile(20 + step, len(SECTORS)) * (1 + effect),
            "cash": 1e9 + revenue.ravel(),
        }
    )
    sectors = sectors.sort_values(["step"], kind="stable", ignore_index=True)
    design = 4 * x[0] + x[1] ** 2 if len(x) else 0.0
    capex = (50 + 2 * step + 5 * noise[-1]) * (1 + effect) + design
    end_revenue = revenue[-1]
    chain = pd.DataFrame(
        {
            "replication": replication,
            "step": step,
            "valuation_to_fundamental": 1 + 0.1 * np.abs(noise[-2]) + effect,
            "end_revenue": end_revenue,
            "chain_revenue": revenue.sum(axis=0),
            "chain_gross_profit": chain_gross_profit,
            "chain_capex": capex,
            "capex_to_revenue": capex / end_revenue,
            "utilization": np.clip(0.8 + 0.05 * noise[-2], 0, 1),
            "stranded_accelerators": np.where(step > 2, 1000.0 * (1 + effect), 0.0),
            "defaults": 0.0,
        }
    )
    markets = pd.DataFrame(
        {
            "replication": replication,
            "step": np.repeat(step, len(MARKETS)),
            "market": np.tile(MARKETS, steps),
            "price": np.tile([27500.0, 2.0], steps) * (1 + 0.01 * np.repeat(noise[0], 2)),
            "quantity": 1000.0,
        }
    )
    tables = {"sectors": sectors, "markets": markets, "chain": chain}
    for frame in tables.values():
        frame.insert(0, "point", point)
        frame.insert(0, "scenario", scenario)
    return tables


def write_run_dir(
    directory: Path, name: str = "synthetic", replications: int = 3, steps: int = 6, effect=0.0
) -> Path:
    """A run directory like ``marketsim run`` writes, from `synthetic_run`."""
    directory.mkdir(parents=True)
    runs = [synthetic_run(name, 0, r, steps, effect) for r in range(replications)]
    for table in ("sectors", "markets", "chain"):
        frame = pd.concat([run[table] for run in runs], ignore_index=True)
        frame.drop(columns=["scenario", "point"]).to_parquet(directory / f"{table}.parquet")
    manifest = {
        "experiment": {"experiment": {"name": name, "seed": 7, "steps": steps}},
        "experiment_sha256": "0" * 64,
        "source": f"{name}.toml",
        "seed": 7,
        "steps": steps,
        "replications": replications,
        "replication_seeds": [{"entropy": "7", "spawn_key": [r]} for r in range(replications)],
        "versions": {"marketsim": "test"},
        "plugins": [{"name": "marketsim.builtin", "source": "built-in", "version": "0"}],
        "units": UNITS,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def write_study_dir(
    directory: Path,
    scenarios: dict[str, float],
    replications: int = 3,
    steps: int = 6,
    reference: str | None = None,
    design: dict | None = None,
) -> Path:
    """A study directory like ``marketsim study`` writes: one part file per task and table.

    Args:
        scenarios: name -> effect (see `synthetic_run`).
        design: the manifest's design; default a single point without factors.
    """
    directory.mkdir(parents=True)
    design = design or {"method": "none", "n": 1, "points": [{"point": 0, "values": {}}]}
    names = list((design.get("salib_problem") or {}).get("names") or [])
    for index, (scenario, effect) in enumerate(scenarios.items()):
        for entry in design["points"]:
            values = [entry["values"][key] for key in names]
            for replication in range(replications):
                run = synthetic_run(scenario, entry["point"], replication, steps, effect, values)
                for table, frame in run.items():
                    for key, value in entry["values"].items():
                        frame.insert(3, key, value)
                    folder = directory / table
                    folder.mkdir(exist_ok=True)
                    part = f"part-{index:04d}-{entry['point']:06d}-{replication:06d}.parquet"
                    frame.to_parquet(folder / part, index=False)
    manifest = {
        "kind": "study",
        "study": {
            "name": "synthetic_study",
            "seed": 7,
            "replications": replications,
            "reference": reference,
            "outcomes": [],
            "sha256": "1" * 64,
            "status": "complete",
        },
        "scenarios": {
            name: {"source": f"{name}.toml", "sha256": "2" * 64, "experiment": {}}
            for name in scenarios
        },
        "factors": [{"key": key, "range": [0.0, 1.0]} for key in names],
        "design": design,
        "units": UNITS,
        "versions": {"marketsim": "test"},
        "plugins": [],
        "seeds": [{"replication": r, "entropy": "7", "spawn_key": [r]} for r in range(3)],
        "tasks": len(scenarios) * len(design["points"]) * replications,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def sobol_design(n: int = 16) -> dict:
    """A Sobol design over three factors in [0, 1] (the manifest's ``design``)."""
    from SALib.sample import sobol as sobol_sample

    problem = {"num_vars": 3, "names": ["a.x0", "a.x1", "a.x2"], "bounds": [[0.0, 1.0]] * 3}
    x = sobol_sample.sample(problem, n, calc_second_order=False, seed=7)
    points = [
        {"point": i, "values": dict(zip(problem["names"], map(float, row), strict=True))}
        for i, row in enumerate(x)
    ]
    return {
        "method": "sobol",
        "n": n,
        "points": points,
        "salib_problem": problem,
        "morris_levels": None,
        "calc_second_order": False,
    }


# --- outcome measures -------------------------------------------------------------------


def _values(outcomes: pd.DataFrame) -> dict:
    """(replication, outcome) -> value (None for null)."""
    return {
        (int(row.replication), row.outcome): (None if pd.isna(row.value) else float(row.value))
        for row in outcomes.itertuples()
    }


def _hand_tables() -> dict[str, pd.DataFrame]:
    chain = pd.DataFrame(
        {
            "replication": [0, 0, 0, 1, 1, 1],
            "step": [0, 1, 2, 0, 1, 2],
            "chain_capex": [1.0, 2.0, 3.0, 0.0, 0.0, 0.0],
            "end_revenue": [2.0, 2.0, 4.0, 0.5, 0.25, 0.25],
            "valuation_to_fundamental": [1.0, None, 2.0, None, None, None],
            "utilization": [0.5, 0.7, None, 0.1, 0.2, 0.3],
            "not_in_units": [9.0] * 6,
        }
    )
    sectors = pd.DataFrame(
        {
            "replication": [0, 0, 0, 0, 1, 1, 1, 1],
            "step": [0, 0, 1, 1, 0, 0, 1, 1],
            "sector": ["a", "b"] * 4,
            "revenue": [10.0, 0.0, 30.0, 0.0, None, 10.0, 20.0, 10.0],
            "gross_profit": [5.0, 2.0, 3.0, -1.0, 4.0, 0.0, 4.0, 0.0],
            "gross_margin": [0.5, None, 0.1, None, None, 0.0, 0.2, 0.0],
        }
    )
    markets = pd.DataFrame(
        {"replication": [0, 0], "step": [0, 1], "market": ["m", "m"], "price": [1.0, 3.0]}
    )
    return {"chain": chain, "sectors": sectors, "markets": markets}


HAND_UNITS = {
    "chain": {
        "chain_capex": "USD per step",
        "end_revenue": "USD per step",
        "valuation_to_fundamental": "ratio",
        "utilization": "share",
    },
    "sectors": {"revenue": "USD per step", "gross_profit": "USD per step", "gross_margin": "share"},
    "markets": {"price": "good's price unit"},
}


def test_outcome_measures_match_hand_computation():
    values = _values(outcome_measures(_hand_tables(), HAND_UNITS, ["replication"]))
    expected = {
        (0, "chain.chain_capex.cumulative"): 6.0,
        (0, "chain.chain_capex.peak"): 3.0,
        (0, "chain.chain_capex.mean"): 2.0,
        (0, "chain.chain_capex.final"): 3.0,
        (0, "chain.end_revenue.cumulative"): 8.0,
        (0, "chain.end_revenue.mean"): 8.0 / 3.0,
        (0, "chain.capex_to_revenue.horizon"): 6.0 / 8.0,
        (0, "chain.valuation_to_fundamental.mean"): 1.5,
        (0, "chain.valuation_to_fundamental.peak"): 2.0,
        (0, "chain.valuation_to_fundamental.final"): 2.0,
        (0, "chain.utilization.mean"): 0.6,
        (0, "chain.utilization.final"): None,  # the last step is undefined
        (1, "chain.end_revenue.cumulative"): 1.0,
        (1, "chain.capex_to_revenue.horizon"): None,  # one dollar of revenue: undefined
        (1, "chain.valuation_to_fundamental.mean"): None,
        (1, "chain.valuation_to_fundamental.peak"): None,
        # Horizon margin 8/40, not the mean of monthly margins (0.5 + 0.1)/2.
        (0, "sectors.a.gross_margin.horizon"): 8.0 / 40.0,
        (0, "sectors.a.gross_margin.mean"): 0.3,
        (0, "sectors.b.gross_margin.horizon"): None,
        (0, "sectors.b.gross_margin.mean"): None,
        (0, "sectors.a.value_capture_share.horizon"): 8.0 / 9.0,
        (0, "sectors.b.value_capture_share.horizon"): 1.0 / 9.0,
        (0, "sectors.a.revenue.cumulative"): 40.0,
        # Only step 1 has both revenue and gross profit.
        (1, "sectors.a.gross_margin.horizon"): 0.2,
        (1, "sectors.a.revenue.cumulative"): 20.0,
        (1, "sectors.a.value_capture_share.horizon"): 1.0,
        (1, "sectors.b.value_capture_share.horizon"): 0.0,
        (0, "markets.m.price.mean"): 2.0,
        (0, "markets.m.price.final"): 3.0,
    }
    for key, value in expected.items():
        assert key in values, key
        if value is None:
            assert values[key] is None, key
        else:
            assert values[key] == pytest.approx(value, rel=1e-12), key
    names = {outcome for _, outcome in values}
    assert "chain.valuation_to_fundamental.cumulative" not in names  # not a flow
    assert "chain.utilization.cumulative" not in names
    assert not any("not_in_units" in name for name in names)


def test_outcome_measures_layout_and_no_nan():
    outcomes = outcome_measures(_hand_tables(), HAND_UNITS, ["replication"])
    assert list(outcomes.columns) == ["replication", "outcome", "value"]
    assert str(outcomes["value"].dtype) == "Float64"
    defined = outcomes["value"].dropna().to_numpy(dtype=float)
    assert np.isfinite(defined).all()
    ordered = outcomes.sort_values(["replication", "outcome"], ignore_index=True)
    pd.testing.assert_frame_equal(outcomes, ordered)


def test_outcome_measures_window():
    outcomes = outcome_measures(_hand_tables(), HAND_UNITS, ["replication"], window=(1, 2))
    values = _values(outcomes)
    assert values[(0, "chain.chain_capex.mean_1_2")] == pytest.approx(2.5)
    assert values[(0, "chain.chain_capex.mean")] == pytest.approx(2.0)
    assert values[(0, "markets.m.price.mean_1_2")] == pytest.approx(3.0)


def test_outcome_units():
    assert outcome_unit("chain.chain_capex.cumulative", UNITS) == "USD"
    assert outcome_unit("chain.chain_capex.mean", UNITS) == "USD per step"
    assert outcome_unit("sectors.x.gross_margin.horizon", UNITS) == "share"
    assert outcome_unit("chain.capex_to_revenue.horizon", UNITS) == "ratio"
    assert outcome_unit("markets.compute.price.peak", UNITS) == "good's price unit"


@given(
    st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        min_size=1,
        max_size=12,
    )
)
def test_outcomes_never_hold_nan_or_inf(values):
    chain = pd.DataFrame(
        {
            "replication": 0,
            "step": np.arange(len(values)),
            "chain_capex": pd.array(values, dtype="float64"),
            "end_revenue": 1e300,
        }
    )
    outcomes = outcome_measures({"chain": chain}, HAND_UNITS, ["replication"])
    defined = outcomes["value"].dropna().to_numpy(dtype=float)
    assert np.isfinite(defined).all()


# --- summaries --------------------------------------------------------------------------


def test_step_summary_matches_hand_computation():
    table = pd.DataFrame(
        {
            "scenario": "s",
            "replication": [0, 1, 2] * 3,
            "step": [0, 0, 0, 1, 1, 1, 2, 2, 2],
            "x": [1.0, 2.0, 6.0, 1.0, None, 3.0, 5.0, None, None],
        }
    )
    summary = step_summary(table, ["scenario"])
    assert list(summary.columns) == [
        "scenario",
        "step",
        "column",
        "mean",
        "std",
        "n",
        "ci_low",
        "ci_high",
    ]
    rows = summary.set_index("step")
    half0 = T2 * math.sqrt(7) / math.sqrt(3)
    assert rows.at[0, "mean"] == pytest.approx(3.0)
    assert rows.at[0, "std"] == pytest.approx(math.sqrt(7))
    assert rows.at[0, "ci_low"] == pytest.approx(3.0 - half0, rel=1e-9)
    assert rows.at[0, "ci_high"] == pytest.approx(3.0 + half0, rel=1e-9)
    assert rows.at[1, "n"] == 2
    assert rows.at[1, "ci_low"] == pytest.approx(2.0 - T1, rel=1e-9)
    assert rows.at[2, "n"] == 1
    assert rows.at[2, "mean"] == pytest.approx(5.0)
    assert pd.isna(rows.at[2, "std"]) and pd.isna(rows.at[2, "ci_low"])
    assert pd.isna(rows.at[2, "ci_high"])


def test_step_summary_zero_spread_has_a_point_interval():
    table = pd.DataFrame({"replication": [0, 1], "step": [0, 0], "x": [4.0, 4.0]})
    row = step_summary(table, []).iloc[0]
    assert (row["ci_low"], row["ci_high"], row["n"]) == (4.0, 4.0, 2)


def test_outcome_summary_matches_hand_computation():
    outcomes = pd.DataFrame(
        {
            "scenario": ["a"] * 4 + ["b"] * 2,
            "replication": [0, 1, 2, 3, 0, 1],
            "outcome": "o",
            "value": pd.array([1.0, 2.0, 3.0, 6.0, None, None], dtype="Float64"),
        }
    )
    summary = outcome_summary(outcomes, ["scenario"]).set_index("scenario")
    std = math.sqrt(14 / 3)  # deviations -2, -1, 0, 3
    assert summary.at["a", "mean"] == pytest.approx(3.0)
    assert summary.at["a", "std"] == pytest.approx(std)
    assert summary.at["a", "ci_high"] == pytest.approx(3.0 + T3 * std / 2, rel=1e-9)
    assert summary.at["b", "n"] == 0
    assert pd.isna(summary.at["b", "mean"]) and pd.isna(summary.at["b", "ci_low"])


# --- paired differences -------------------------------------------------------------------


def _outcomes(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario", "point", "replication", "outcome", "value"])
    frame["value"] = pd.array(frame["value"].tolist(), dtype="Float64")
    return frame


def test_paired_differences_match_hand_computation():
    rows = []
    for replication, (ref, alt) in enumerate([(1, 2), (2, 4), (3, 6), (4, None)]):
        rows += [("ref", 0, replication, "x", ref), ("alt", 0, replication, "x", alt)]
    for replication in range(4):
        rows += [
            ("ref", 0, replication, "y", 1.0 if replication == 0 else None),
            ("alt", 0, replication, "y", 5.0),
            ("ref", 0, replication, "z", None),
            ("alt", 0, replication, "z", 1.0),
        ]
    differences = paired_differences(_outcomes(rows), "ref")
    assert list(differences.columns) == [
        "scenario",
        "reference",
        "outcome",
        "mean_difference",
        "ci_low",
        "ci_high",
        "n",
    ]
    by = differences.set_index("outcome")
    half = T2 * 1.0 / math.sqrt(3)  # differences 1, 2, 3: sd 1
    assert by.at["x", "mean_difference"] == pytest.approx(2.0)
    assert by.at["x", "ci_low"] == pytest.approx(2.0 - half, rel=1e-9)
    assert by.at["x", "ci_high"] == pytest.approx(2.0 + half, rel=1e-9)
    assert by.at["x", "n"] == 3
    assert by.at["y", "n"] == 1 and by.at["y", "mean_difference"] == pytest.approx(4.0)
    assert pd.isna(by.at["y", "ci_low"]) and pd.isna(by.at["y", "ci_high"])
    assert by.at["z", "n"] == 0 and pd.isna(by.at["z", "mean_difference"])
    assert set(differences["scenario"]) == {"alt"}
    assert set(differences["reference"]) == {"ref"}


def test_paired_differences_per_point_and_pooled():
    rows = []
    for point, pairs in ((0, [(0, 1), (0, 3)]), (1, [(0, 10), (5, 15)])):
        for replication, (ref, alt) in enumerate(pairs):
            rows += [("ref", point, replication, "x", ref), ("alt", point, replication, "x", alt)]
    differences = paired_differences(_outcomes(rows), "ref")
    assert list(differences.columns)[:4] == ["scenario", "reference", "point", "outcome"]
    by = {
        (None if pd.isna(p) else int(p)): row
        for p, row in differences.set_index("point").iterrows()
    }
    assert by[0]["mean_difference"] == pytest.approx(2.0)
    assert by[0]["ci_high"] == pytest.approx(2.0 + T1 * math.sqrt(2) / math.sqrt(2), rel=1e-9)
    assert (by[1]["mean_difference"], by[1]["ci_low"], by[1]["ci_high"]) == (10.0, 10.0, 10.0)
    pooled = by[None]  # differences 1, 3, 10, 10
    assert pooled["n"] == 4 and pooled["mean_difference"] == pytest.approx(6.0)
    assert pooled["ci_low"] == pytest.approx(6.0 - T3 * math.sqrt(22) / 2, rel=1e-9)
    assert pd.isna(differences["point"].iloc[-1])  # the pooled row comes last


def test_paired_differences_unknown_reference_is_a_user_error():
    rows = [("ref", 0, 0, "x", 1.0), ("alt", 0, 0, "x", 2.0)]
    with pytest.raises(AnalysisError, match="reference: expected one of the scenarios"):
        paired_differences(_outcomes(rows), "nope")


# --- sensitivity ------------------------------------------------------------------------


def _design_outcomes(design: dict, function) -> pd.DataFrame:
    names = design["salib_problem"]["names"]
    rows = []
    for entry in design["points"]:
        x = [entry["values"][name] for name in names]
        for replication in range(2):
            rows.append(("s", entry["point"], replication, "o", function(x)))
    return _outcomes(rows)


def test_sobol_indices_match_salib_and_find_the_factor_that_matters():
    from SALib.analyze import sobol

    design = sobol_design(64)

    def function(x):
        return 4 * x[0] + x[1] ** 2

    indices = sensitivity(_design_outcomes(design, function), design, ["o"], seed=3)
    assert list(indices.columns) == [
        "scenario",
        "outcome",
        "factor",
        "method",
        "index",
        "value",
        "ci_low",
        "ci_high",
    ]
    y = np.array([function(list(p["values"].values())) for p in design["points"]])
    expected = sobol.analyze(
        design["salib_problem"], y, calc_second_order=False, num_resamples=100, seed=3
    )
    total = indices[indices["index"] == "ST"].set_index("factor")
    first = indices[indices["index"] == "S1"].set_index("factor")
    names = design["salib_problem"]["names"]
    for i, name in enumerate(names):
        assert first.at[name, "value"] == pytest.approx(expected["S1"][i])
        assert total.at[name, "value"] == pytest.approx(expected["ST"][i])
        assert total.at[name, "ci_low"] == pytest.approx(expected["ST"][i] - expected["ST_conf"][i])
    assert total["value"].idxmax() == "a.x0"
    assert abs(total.at["a.x2", "value"]) < 1e-12


def test_morris_indices_match_salib():
    from SALib.analyze import morris
    from SALib.sample import morris as morris_sample

    problem = {"num_vars": 3, "names": ["a.x0", "a.x1", "a.x2"], "bounds": [[0.0, 1.0]] * 3}
    x = morris_sample.sample(problem, 10, num_levels=4, seed=5)
    points = [
        {"point": i, "values": dict(zip(problem["names"], map(float, row), strict=True))}
        for i, row in enumerate(x)
    ]
    design = {"method": "morris", "points": points, "salib_problem": problem, "morris_levels": 4}

    def function(values):
        return 3 * values[0] - values[1]

    indices = sensitivity(_design_outcomes(design, function), design, ["o"])
    y = np.array([function(row) for row in x])
    expected = morris.analyze(problem, x, y, num_levels=4, num_resamples=100, seed=0)
    mu_star = indices[indices["index"] == "mu_star"].set_index("factor")["value"]
    sigma = indices[indices["index"] == "sigma"].set_index("factor")
    assert mu_star.to_numpy(dtype=float) == pytest.approx(np.asarray(expected["mu_star"]))
    assert mu_star["a.x2"] == pytest.approx(0.0)
    assert sigma["ci_low"].isna().all()


def test_sensitivity_defaults_and_errors():
    names = [
        "chain.chain_capex.cumulative",
        "chain.valuation_to_fundamental.mean",
        "sectors.a.value_capture_share.horizon",
        "sectors.b.value_capture_share.horizon",
        "markets.compute.price.mean",
        "markets.power.price.mean",
    ]
    assert default_sensitivity_outcomes(names) == names[:5]
    design = sobol_design(4)
    outcomes = _design_outcomes(design, lambda x: x[0])
    with pytest.raises(AnalysisError, match="study.outcomes: unknown outcome 'p'"):
        sensitivity(outcomes, design, ["p"])
    constant = sensitivity(_design_outcomes(design, lambda x: 1.0), design, ["o"])
    assert len(constant) == 6 and constant["value"].isna().all()  # undefined, not zero
    empty = sensitivity(outcomes, {"method": "lhs", "points": []}, ["o"])
    assert empty.empty and "index" in empty.columns


def test_headline_outcomes_follow_the_chain_order():
    names = ["sectors.b.gross_margin.horizon", "sectors.a.gross_margin.horizon", "chain.x.mean"]
    assert headline_outcomes(names, ["b", "a"]) == names[:2]


# --- study directories --------------------------------------------------------------------


def test_analyse_study_dir_writes_the_four_files_byte_identically(tmp_path):
    directory = write_study_dir(
        tmp_path / "study",
        {"base": 0.0, "boom": 0.5},
        reference="base",
        design=sobol_design(4),
        replications=2,
    )
    first = analyse_study_dir(directory)
    written = {
        name: (directory / f"{name}.parquet").read_bytes()
        for name in ("outcomes", "summary", "differences", "sensitivity")
    }
    second = analyse_study_dir(directory)
    for name, data in written.items():
        assert (directory / f"{name}.parquet").read_bytes() == data, name
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]

    outcomes = pd.read_parquet(directory / "outcomes.parquet")
    assert list(outcomes.columns) == ["scenario", "point", "replication", "outcome", "value"]
    assert len(outcomes) == len(first.outcomes)
    summary = pd.read_parquet(directory / "summary.parquet")
    assert list(summary.columns) == [
        "scenario",
        "point",
        "step",
        "series",
        "mean",
        "std",
        "n",
        "ci_low",
        "ci_high",
    ]
    assert set(summary["n"]) == {2}
    differences = second.differences
    assert "point" in differences.columns  # a design of several points
    pooled = differences[differences["point"].isna()].set_index("outcome")
    # effect 0.5 raises capex by half in every pair: a significant positive difference.
    row = pooled.loc["chain.chain_capex.cumulative"]
    assert row["ci_low"] > 0 and row["n"] == 2 * len(sobol_design(4)["points"])
    assert set(second.sensitivity["method"]) == {"sobol"}
    assert set(second.sensitivity["scenario"]) == {"base", "boom"}


def test_analyse_study_dir_checks_its_input(tmp_path):
    run = write_run_dir(tmp_path / "run")
    with pytest.raises(AnalysisError, match="expected a study directory"):
        analyse_study_dir(run)
    with pytest.raises(AnalysisError, match="not a marketsim results directory"):
        analyse_study_dir(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(AnalysisError, match="expected JSON"):
        analyse_study_dir(broken)


def test_analyse_study_dir_reference_without_results(tmp_path):
    directory = write_study_dir(tmp_path / "study", {"a": 0.0}, reference="missing")
    with pytest.raises(AnalysisError) as error:
        analyse_study_dir(directory)
    assert str(error.value) == (
        f"{directory / 'manifest.json'}: study.reference: expected a scenario with results "
        "('a'), got 'missing'"
    )
    assert not (directory / "outcomes.parquet").exists()  # nothing half-written


def test_analyse_study_dir_unknown_sensitivity_outcome(tmp_path):
    directory = write_study_dir(tmp_path / "study", {"a": 0.0}, design=sobol_design(4))
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["study"]["outcomes"] = ["chain.chain_capex.cumulativ"]
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(AnalysisError) as error:
        analyse_study_dir(directory)
    assert str(error.value) == (
        f"{directory / 'manifest.json'}: study.outcomes: unknown outcome "
        "'chain.chain_capex.cumulativ' (did you mean 'chain.chain_capex.cumulative'?)"
    )


# --- the run summary ----------------------------------------------------------------------


def test_run_summary_reports_horizon_figures_with_intervals(tmp_path):
    directory = write_run_dir(tmp_path / "run", replications=3, steps=4)
    text = run_summary(directory).splitlines()
    assert text[0] == "horizon of 4 steps, mean of 3 replications [95% CI], by sector:"
    sectors = pd.read_parquet(directory / "sectors.parquet")
    chip = sectors[sectors["sector"] == "chip_vendor"]
    revenue = chip.groupby("replication")["revenue"].sum() / 1e9
    line = next(line for line in text if line.strip().startswith("chip_vendor"))
    assert f"{revenue.mean():,.1f} [" in line
    assert "70.0% [70.0%, 70.0%]" in line  # gross margin is 70% in every month


def test_run_summary_of_one_replication_has_no_intervals(tmp_path):
    directory = write_run_dir(tmp_path / "run", replications=1, steps=4)
    text = run_summary(directory)
    assert text.splitlines()[0] == "horizon of 4 steps (replication 0), by sector:"
    assert "[" not in text
