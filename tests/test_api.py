"""The notebook API: overrides as a mapping, re-validated copies, experiments that pickle."""

from __future__ import annotations

import pickle

import pytest

import marketsim


def test_overrides_may_be_a_mapping_of_python_values(baseline_path):
    """A mapping gives the same experiment as the equivalent ``key=value`` strings."""
    mapping = marketsim.load_experiment(
        baseline_path,
        {"experiment.steps": 12, "experiment.name": "mapped", "graph.regions": ["us", "eu"]},
    )
    texts = marketsim.load_experiment(
        baseline_path,
        ["experiment.steps=12", 'experiment.name="mapped"', 'graph.regions=["us", "eu"]'],
    )
    assert mapping.config["experiment"]["steps"] == 12
    assert mapping.config["graph"]["regions"] == ["us", "eu"]
    assert mapping.sha256 == texts.sha256


def test_with_overrides_returns_a_revalidated_copy(baseline_path):
    """The copy has the new value and a new hash; the original is unchanged."""
    experiment = marketsim.load_experiment(baseline_path, {"experiment.steps": 6})
    elastic = experiment.with_overrides({"agents.end_demand.elasticity": 1.6})
    assert elastic.config["agents"]["end_demand"]["elasticity"] == 1.6
    assert experiment.config["agents"]["end_demand"]["elasticity"] != 1.6
    assert elastic.sha256 != experiment.sha256
    assert experiment.with_overrides({}).sha256 == experiment.sha256
    direct = marketsim.load_experiment(
        baseline_path, {"experiment.steps": 6, "agents.end_demand.elasticity": 1.6}
    )
    assert elastic.sha256 == direct.sha256


def test_with_overrides_checks_the_new_values(baseline_path):
    """An out-of-range value is refused with the one-line message the CLI gives."""
    experiment = marketsim.load_experiment(baseline_path)
    with pytest.raises(marketsim.ExperimentError, match="agents.end_demand.elasticity: must be"):
        experiment.with_overrides({"agents.end_demand.elasticity": -5})
    with pytest.raises(marketsim.ExperimentError, match="unknown key"):
        experiment.with_overrides({"agents.end_demand.elastcity": 1.0})
    with pytest.raises(marketsim.ExperimentError, match="plugins"):
        experiment.with_overrides({"plugins": ["x.py"]})


def test_a_value_toml_cannot_hold_is_one_error(baseline_path):
    """NaN in a mapping is refused like NaN in a file."""
    with pytest.raises(marketsim.ExperimentError, match="agents.end_demand.elasticity"):
        marketsim.load_experiment(baseline_path, {"agents.end_demand.elasticity": float("nan")})


def test_an_overridden_copy_pickles_and_runs_identically(baseline_path):
    """A copy made with with_overrides survives pickling with the same tables."""
    experiment = marketsim.load_experiment(baseline_path, {"experiment.steps": 4})
    copy = experiment.with_overrides({"agents.end_demand.elasticity": 1.2})
    restored = pickle.loads(pickle.dumps(copy))
    assert restored.sha256 == copy.sha256
    first = marketsim.run(copy).chain
    second = marketsim.run(restored).chain
    assert first.equals(second)
