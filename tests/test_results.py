"""Results on disk: atomic writes, never clobbering, and faithful reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import marketsim
import marketsim.results
from marketsim import Results
from marketsim import ResultsError


def small_results(seed: int = 0) -> Results:
    """Hand-made results with three tables (one with an undefined ratio)."""
    rng = np.random.default_rng(seed)
    sectors = pd.DataFrame(
        {
            "replication": np.zeros(4, dtype=np.int64),
            "step": np.array([0, 0, 1, 1], dtype=np.int64),
            "sector": ["utility", "datacenter"] * 2,
            "revenue": rng.random(4),
            "gross_margin": [0.5, np.nan, 0.25, 0.1],
        }
    )
    markets = pd.DataFrame(
        {"replication": [0, 0], "step": [0, 1], "market": ["power"] * 2, "price": rng.random(2)}
    )
    chain = pd.DataFrame({"replication": [0, 0], "step": [0, 1], "end_revenue": rng.random(2)})
    manifest = {"experiment": {"experiment": {"name": "small"}}, "seed": seed}
    return Results({"sectors": sectors, "markets": markets, "chain": chain}, manifest)


def failing_on_call(monkeypatch, number: int) -> None:
    """Make the ``number``-th parquet write fail as a full disk would."""
    real = marketsim.results._write_parquet
    calls = []

    def write(frame, path, name):
        calls.append(name)
        if len(calls) == number:
            raise OSError(28, "No space left on device")
        real(frame, path, name)

    monkeypatch.setattr(marketsim.results, "_write_parquet", write)


def hidden(directory) -> list[str]:
    """Names of hidden entries (staging or retired directories) in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def file_bytes(directory) -> dict[str, bytes]:
    """Every file in ``directory`` with its bytes."""
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.fixture(scope="module")
def real_results(baseline_path) -> Results:
    """A 4-step baseline run with firm-level output."""
    experiment = marketsim.load_experiment(
        baseline_path, ["experiment.steps=4", "output.firm_level=true"]
    )
    return marketsim.run(experiment)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A write failing at the second table leaves no target, no hidden partial directory and
    not even the parent directory it created."""
    failing_on_call(monkeypatch, 2)
    target = tmp_path / "results" / "run1"
    with pytest.raises(ResultsError, match="cannot write results: No space left"):
        small_results().write(target)
    assert not target.parent.exists()
    assert hidden(tmp_path) == []


def test_failed_overwrite_keeps_old_results(tmp_path, monkeypatch):
    """A failed write with overwrite=True keeps the previous results byte for byte."""
    target = tmp_path / "run"
    small_results(seed=1).write(target)
    before = file_bytes(target)
    failing_on_call(monkeypatch, 2)
    with pytest.raises(ResultsError):
        small_results(seed=2).write(target, overwrite=True)
    assert file_bytes(target) == before
    assert hidden(tmp_path) == []


def test_existing_results_are_not_replaced_without_overwrite(tmp_path):
    """Writing over results without overwrite raises ResultsError and keeps them."""
    target = tmp_path / "run"
    small_results(seed=1).write(target)
    before = file_bytes(target)
    with pytest.raises(ResultsError, match="--overwrite"):
        small_results(seed=2).write(target)
    assert file_bytes(target) == before
    assert hidden(tmp_path) == []


def test_overwrite_replaces_results(tmp_path):
    """With overwrite=True the new results replace the old ones completely."""
    target = tmp_path / "run"
    first = small_results(seed=1)
    first.tables["firms"] = pd.DataFrame({"step": [0], "firm": ["utility:0"]})
    first.write(target)
    small_results(seed=2).write(target, overwrite=True)
    assert Results.read(target).manifest["seed"] == 2
    assert not (target / "firms.parquet").exists()
    assert hidden(tmp_path) == []


def test_empty_directory_is_used(tmp_path):
    """An existing empty directory takes the results."""
    target = tmp_path / "run"
    target.mkdir()
    small_results().write(target)
    assert (target / "manifest.json").exists()


def test_foreign_directory_is_refused_even_with_overwrite(tmp_path):
    """A non-empty directory without a manifest is never replaced."""
    target = tmp_path / "data"
    target.mkdir()
    (target / "survey.csv").write_text("a,b\n")
    with pytest.raises(ResultsError, match="holds 'survey.csv', which marketsim did not write"):
        small_results().write(target, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["survey.csv"]


def test_infinite_value_is_refused(tmp_path):
    """A table with an infinite value is not written (ratios must be null, not inf)."""
    results = small_results()
    results.tables["chain"].loc[1, "end_revenue"] = np.inf
    target = tmp_path / "run"
    with pytest.raises(ValueError, match="chain.end_revenue"):
        results.write(target)
    assert not target.exists()
    assert hidden(tmp_path) == []


def test_directory_permissions_follow_umask(tmp_path):
    """The results directory gets the usual permissions, not the 0700 of a temporary dir."""
    umask = os.umask(0o022)
    try:
        target = small_results().write(tmp_path / "run")
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o755


def test_read_round_trips_a_run(real_results, tmp_path):
    """Results.read gives back equal tables (nulls as NaN) and the same manifest."""
    target = real_results.write(tmp_path / "run")
    back = Results.read(target)
    assert set(back.tables) == {"sectors", "markets", "chain", "firms"}
    for name, frame in real_results.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], frame, check_exact=True)
    assert back.manifest == json.loads(json.dumps(real_results.manifest))
    assert back.sectors["gross_margin"].notna().any()


def test_firms_absent_without_firm_level(tmp_path):
    """Results without firm-level output have no firms table on disk or after reading."""
    target = small_results().write(tmp_path / "run")
    assert Results.read(target).firms is None
    assert sorted(p.name for p in target.iterdir()) == [
        "chain.parquet",
        "manifest.json",
        "markets.parquet",
        "sectors.parquet",
    ]


def test_output_under_a_file_is_refused_before_running(tmp_path):
    """--out inside a regular file is one line, exit 2, and nothing runs or is written."""
    from click.testing import CliRunner

    from marketsim.cli import cli

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    baseline = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"
    result = CliRunner().invoke(cli, ["run", str(baseline), "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "cannot write results there" in lines[0]
    assert blocker.read_text() == "x"
