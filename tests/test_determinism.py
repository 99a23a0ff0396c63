"""Same experiment and seed, same results; seeds and replications give distinct streams."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pandas as pd
import pytest

import marketsim

STEPS = ["experiment.steps=12"]


def run(baseline_path, *overrides: str) -> marketsim.Results:
    """Run the baseline for 12 steps (demand noise on, as in the baseline) with overrides."""
    return marketsim.run(marketsim.load_experiment(baseline_path, [*STEPS, *overrides]))


def replication(frame: pd.DataFrame, index: int) -> pd.DataFrame:
    """The rows of one replication, renumbered, without the replication column."""
    rows = frame[frame["replication"] == index]
    return rows.drop(columns="replication").reset_index(drop=True)


@pytest.fixture(scope="module")
def first(baseline_path) -> marketsim.Results:
    """The reference run."""
    return run(baseline_path)


def test_baseline_has_demand_noise(first):
    """The determinism checks below run with random demand noise switched on."""
    assert first.manifest["experiment"]["agents"]["end_demand"]["demand_noise"] > 0


def test_same_seed_same_tables_and_bytes(first, baseline_path, tmp_path):
    """Two runs of the same experiment and seed give identical tables and parquet bytes."""
    second = run(baseline_path)
    assert set(first.tables) == set(second.tables)
    for name, frame in first.tables.items():
        pd.testing.assert_frame_equal(second.tables[name], frame, check_exact=True)
    one = first.write(tmp_path / "one")
    two = second.write(tmp_path / "two")
    for name in first.tables:
        parquet = f"{name}.parquet"
        assert (one / parquet).read_bytes() == (two / parquet).read_bytes(), parquet
    assert first.manifest["experiment_sha256"] == second.manifest["experiment_sha256"]


def test_different_seed_different_markets(first, baseline_path):
    """Another seed gives another markets table."""
    other = run(baseline_path, "experiment.seed=7")
    assert other.markets.shape == first.markets.shape
    assert not other.markets.equals(first.markets)


def test_replications_differ_and_first_matches_single_run(first, baseline_path):
    """Replications draw distinct streams; replication 0 equals the one-replication run."""
    both = run(baseline_path, "experiment.replications=2")
    assert sorted(both.markets["replication"].unique()) == [0, 1]
    zero, one = replication(both.markets, 0), replication(both.markets, 1)
    assert not zero.equals(one)
    for name, frame in first.tables.items():
        pd.testing.assert_frame_equal(
            replication(both.tables[name], 0), replication(frame, 0), check_exact=True
        )
    assert both.manifest["replications"] == 2
    assert [s["spawn_key"] for s in both.manifest["replication_seeds"]] == [[0], [1]]


def test_same_bytes_across_processes_and_hash_seeds(short_baseline, tmp_path):
    """Separate processes with different PYTHONHASHSEED write byte-identical tables."""
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"out{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-m", "marketsim", "run", str(short_baseline), "-q"]
        done = subprocess.run(
            [*command, "--out", str(out)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        outputs.append(out)
    for name in ("sectors", "markets", "chain"):
        first, second = (out / f"{name}.parquet" for out in outputs)
        assert first.read_bytes() == second.read_bytes(), name


def test_equal_experiments_written_differently_share_a_hash(write_experiment, baseline_path):
    """An int for a float and defaults spelled out give the same experiment and sha256."""
    plain = marketsim.load_experiment(baseline_path, ["experiment.steps=6"])
    config = plain.config
    capacity = config["agents"]["utility"]["capacity_mw"]
    assert capacity == int(capacity)
    spelled = write_experiment(
        f"[agents.utility]\ncapacity_mw = {int(capacity)}\n\n"
        f"[finance]\npayout_ratio = {config['finance']['payout_ratio']!r}\n\n"
        f"[markets.power]\nmax_rounds = {config['markets']['power']['max_rounds']}\n"
    )
    other = marketsim.load_experiment(spelled)
    assert other.config == config
    assert other.sha256 == plain.sha256


def test_worker_processes_give_the_same_tables(short_baseline):
    """Replications run over two worker processes equal the same run in one process."""
    overrides = ["experiment.replications=2"]
    experiment = marketsim.load_experiment(short_baseline, overrides)
    alone = marketsim.run(experiment)
    pooled = marketsim.run(experiment, workers=2)
    for name, frame in alone.tables.items():
        pd.testing.assert_frame_equal(frame, pooled.tables[name], check_exact=True)


SCALE_PLUGIN = '''\
"""Scales compute demand before the compute market clears by a constant of the module."""
import marketsim

SCALE = {scale}


@marketsim.hookimpl
def marketsim_before_clear(model, market):
    if market.name == "compute":
        market.book.buyer_demand *= SCALE
'''

RUN_PICKLED = """\
import pickle
import sys

import marketsim

with open(sys.argv[1], "rb") as handle:
    experiment = pickle.load(handle)
with open(sys.argv[2], "wb") as handle:
    pickle.dump(marketsim.run(experiment).tables, handle)
"""


def test_pickled_experiment_runs_identically_in_another_process(write_experiment, tmp_path):
    """An unpickled experiment runs the plugin code and settings it was loaded with, elsewhere.

    The experiment file and its plugin are changed after pickling: neither is read again.
    """
    plugin = tmp_path / "scale.py"
    plugin.write_text(SCALE_PLUGIN.format(scale=0.5))
    path = write_experiment('plugins = ["scale.py"]\n')
    experiment = marketsim.load_experiment(path, ["experiment.replications=2"])
    here = marketsim.run(experiment)
    (tmp_path / "experiment.pickle").write_bytes(pickle.dumps(experiment))
    plugin.write_text(SCALE_PLUGIN.format(scale=2.0))
    path.write_text("this is not TOML")
    (tmp_path / "run_pickled.py").write_text(RUN_PICKLED)
    done = subprocess.run(
        [sys.executable, "run_pickled.py", "experiment.pickle", "tables.pickle"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    there = pickle.loads((tmp_path / "tables.pickle").read_bytes())
    assert set(there) == set(here.tables)
    for name, frame in here.tables.items():
        pd.testing.assert_frame_equal(there[name], frame, check_exact=True)


def test_pickled_experiment_keeps_config_and_plugins(write_experiment, tmp_path):
    """pickle round trip in one process: same config, hash, plugins and registered components."""
    plugin = tmp_path / "scale.py"
    plugin.write_text(SCALE_PLUGIN.format(scale=0.5))
    experiment = marketsim.load_experiment(write_experiment('plugins = ["scale.py"]\n'))
    copy = pickle.loads(pickle.dumps(experiment))
    assert copy.config == experiment.config and copy.sha256 == experiment.sha256
    assert copy.manager.records == experiment.manager.records
    assert list(copy.components.sectors) == list(experiment.components.sectors)
    assert [m.column for m in copy.components.metrics] == [
        m.column for m in experiment.components.metrics
    ]
