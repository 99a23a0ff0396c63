"""Firm-level output streamed to Parquet a row group per step (`marketsim.firm_output`).

The rows are what the in-memory path built (a frame per sector from the model's arrays,
concatenated), one row group per replication and step, ordered by replication then step;
the Recorder keeps no step's firm rows; the same seed gives the same bytes on any worker
count and executor; a failed or killed run leaves no firm-level file in the target.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import marketsim
import marketsim.firm_output
from marketsim.cli import cli
from marketsim.firms import INCOME_FIELDS
from marketsim.guard import StepGuardError
from marketsim.model import SupplyChainModel
from marketsim.study import load_study
from marketsim.study import run_study

ROOT = Path(__file__).resolve().parent.parent
STEPS = 3
FIRM_LEVEL = "output.firm_level=true"


def invoke(*args):
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def hidden(directory: Path) -> list[str]:
    """Hidden entries (staging, retired, lock) in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def expected_rows(model: SupplyChainModel, replication: int = 0) -> pd.DataFrame:
    """This step's firm rows as the in-memory path built them: one frame per sector from the
    model's arrays (labels, accounts, ``firm_state``), concatenated (union of columns)."""
    regions = np.array(model.experiment["graph"]["regions"], dtype=object)
    firms = model.firms
    blocks = []
    for sector in model.sectors.values():
        block = {
            "step": np.full(sector.count, model.step_index - 1, dtype=np.int64),
            "firm": np.array([f"{sector.name}:{k}" for k in range(sector.count)], object),
            "sector": np.full(sector.count, sector.name, dtype=object),
            "region": regions[sector.region],
        }
        if sector.has_accounts:
            block["alive"] = firms.alive[sector.rows].astype(float)
            block["cash"] = firms.cash[sector.rows].copy()
            block["debt"] = firms.debt[sector.rows].copy()
            for name in INCOME_FIELDS:
                block[name] = getattr(firms, name)[sector.rows].copy()
        for name, values in sector.firm_state().items():
            block[name] = np.asarray(values, dtype=float)
        blocks.append(pd.DataFrame(block))
    frame = pd.concat(blocks, ignore_index=True)
    frame.insert(0, "replication", np.int64(replication))
    return frame


@pytest.fixture(scope="module")
def experiment(baseline_path):
    """The baseline, STEPS steps, firm-level output."""
    return marketsim.load_experiment(baseline_path, [f"experiment.steps={STEPS}", FIRM_LEVEL])


def held_bytes(value, seen=None) -> int:
    """Bytes of arrays and items of containers reachable from ``value`` (the model aside)."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, SupplyChainModel):
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, pa.Array | pa.ChunkedArray | pa.Table):
        return value.nbytes
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, dict):
        return len(value) + sum(held_bytes(v, seen) for v in value.values())
    if isinstance(value, list | tuple | set):
        return len(value) + sum(held_bytes(v, seen) for v in value)
    if hasattr(value, "__dict__") and type(value).__module__.startswith("marketsim"):
        return held_bytes(vars(value), seen)
    return 0


def test_rows_equal_the_frame_built_from_the_sectors_state(experiment, tmp_path):
    """Each row group equals the frame built from the model's arrays after that step, with
    the same columns and dtypes as the in-memory path gave."""
    model = SupplyChainModel(experiment, np.random.SeedSequence(11))
    path = tmp_path / "firms.parquet"
    model.recorder.stream_firms_to(path)
    expected = []
    for _ in range(STEPS):
        model.step()
        expected.append(expected_rows(model))
    model.recorder.finish_firms()
    assert "firms" not in model.recorder.tables(0)  # the file holds them
    file = pq.ParquetFile(path)
    assert file.metadata.num_row_groups == STEPS
    for step, rows in enumerate(expected):
        group = file.read_row_group(step).to_pandas()
        pd.testing.assert_frame_equal(group, rows, check_exact=True)
    whole = pd.read_parquet(path)
    pd.testing.assert_frame_equal(whole, pd.concat(expected, ignore_index=True), check_exact=True)


def test_a_model_stepped_by_hand_still_gives_its_firms_table(experiment):
    """Without a file to stream to, the Recorder spools to temporary files it reads back:
    tables() holds every step's firm rows, also when called between steps."""
    model = SupplyChainModel(experiment, np.random.SeedSequence(11))
    model.step()
    first = expected_rows(model)
    assert model.recorder.tables(0)["firms"].equals(first)
    model.step()
    second = expected_rows(model)
    both = model.recorder.tables(0)["firms"]
    pd.testing.assert_frame_equal(both, pd.concat([first, second], ignore_index=True))


def test_the_recorder_holds_no_step_of_firm_rows(experiment, tmp_path):
    """After every record() the firm-level part of the Recorder holds the same bytes: what
    grows with steps is the file, never memory."""
    model = SupplyChainModel(experiment, np.random.SeedSequence(3))
    model.recorder.stream_firms_to(tmp_path / "firms.parquet")
    output = model.recorder.firm_output
    sizes, rows = [], []
    for _ in range(STEPS + 2):
        model.step()
        sizes.append(held_bytes(output))
        rows.append(output.stream.rows)
    assert len(set(sizes)) == 1, sizes
    assert rows == [rows[0] * (k + 1) for k in range(STEPS + 2)] and rows[0] > 0
    assert not hasattr(model.recorder, "firm_rows")


def test_one_row_group_per_replication_and_step_in_order(experiment, tmp_path):
    """firms.parquet from the CLI: a row group per (replication, step), ordered, with the
    rows of each replication run alone; the manifest counts its rows."""
    out = tmp_path / "out"
    result = invoke(
        "run",
        experiment.source,
        "--set",
        FIRM_LEVEL,
        "--set",
        "experiment.replications=2",
        "--steps",
        STEPS,
        "--out",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    file = pq.ParquetFile(out / "firms.parquet")
    assert file.metadata.num_row_groups == 2 * STEPS
    keys = []
    for index in range(file.metadata.num_row_groups):
        group = file.read_row_group(index, columns=["replication", "step"]).to_pandas()
        assert group.nunique().tolist() == [1, 1]
        keys.append(tuple(group.iloc[0]))
    assert keys == [(r, s) for r in range(2) for s in range(STEPS)]
    manifest = marketsim.Results.read(out).manifest
    assert manifest["tables"]["firms"]["rows"] == file.metadata.num_rows
    assert sorted(p.name for p in out.iterdir()) == [
        "chain.parquet",
        "firms.parquet",
        "manifest.json",
        "markets.parquet",
        "sectors.parquet",
    ]
    assert hidden(tmp_path) == []


def test_same_seed_same_bytes_on_any_worker_count(experiment, tmp_path):
    """Two replications in one process or in two give the same firms.parquet, byte for byte,
    and the Python API gives the same rows."""
    paths = []
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        result = invoke(
            "run",
            experiment.source,
            "--set",
            FIRM_LEVEL,
            "--set",
            "experiment.replications=2",
            "--steps",
            STEPS,
            "--workers",
            workers,
            "--out",
            out,
            "--quiet",
        )
        assert result.exit_code == 0, result.output
        paths.append(out / "firms.parquet")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    api = marketsim.run(experiment.with_overrides(["experiment.replications=2"]), workers=2)
    pd.testing.assert_frame_equal(api.firms, pd.read_parquet(paths[0]), check_exact=True)


def test_python_api_reads_the_streamed_file_lazily_and_removes_it(experiment, tmp_path):
    """marketsim.run without a target streams to a temporary file: results.tables["firms"]
    reads it when asked, Results.write copies it as it is, and it goes with the results."""
    results = marketsim.run(experiment)
    source = results.tables.file("firms")
    assert source is not None and source.exists()
    assert results.manifest["tables"]["firms"]["rows"] == pq.read_metadata(source).num_rows
    written = results.write(tmp_path / "run")
    assert (written / "firms.parquet").read_bytes() == source.read_bytes()
    assert results.firms["step"].tolist() == sorted(results.firms["step"].tolist())
    back = marketsim.Results.read(written)
    pd.testing.assert_frame_equal(back.firms, results.firms, check_exact=True)
    folder = source.parent
    del results
    gc.collect()
    assert not folder.exists()


OBSERVER = """
import marketsim

SEEN = []


@marketsim.hookimpl
def marketsim_run_finished(model, results):
    SEEN.append((model.replication, results.firms["step"].max(), len(results.firms)))
"""


def test_run_finished_hooks_read_their_replications_firm_rows(write_experiment, tmp_path):
    """A marketsim_run_finished hook reads its replication's streamed firm rows."""
    (tmp_path / "observer.py").write_text(OBSERVER)
    path = write_experiment('plugins = ["observer.py"]\n', steps=STEPS)
    experiment = marketsim.load_experiment(path, [FIRM_LEVEL, "experiment.replications=2"])
    results = marketsim.run(experiment)
    seen = experiment.manager.get_plugin("observer.py").SEEN
    per_replication = len(results.firms) // 2
    assert seen == [(0, STEPS - 1, per_replication), (1, STEPS - 1, per_replication)]


def test_a_firm_state_column_appearing_later_stops_the_run(experiment):
    """The schema is fixed at the first step: a new firm_state column later is one line
    naming the sector and both steps."""
    model = SupplyChainModel(experiment, np.random.SeedSequence(1))
    model.step()
    sector = model.sectors["utility"]
    original = sector.firm_state
    sector.firm_state = lambda: {**original(), "late_usd": np.zeros(sector.count)}
    with pytest.raises(StepGuardError, match=r"sector 'utility' .*'late_usd' first returned at"):
        model.step()


@pytest.mark.parametrize("replications", [1, 2])
def test_a_failing_run_leaves_nothing_in_the_target(
    experiment, tmp_path, monkeypatch, replications
):
    """A disk filling up after some steps were streamed: one line, exit 2, and no target,
    no staging, no parts (not even the parent directory created for it)."""
    real = marketsim.firm_output.open_writer

    class FillingDisk:
        def __init__(self, path, schema):
            self.writer, self.groups = real(path, schema), 0

        def write_table(self, table, row_group_size):
            self.groups += 1
            if self.groups == 3:
                raise OSError(28, "No space left on device")
            self.writer.write_table(table, row_group_size=row_group_size)

        def close(self):
            self.writer.close()

    monkeypatch.setattr(marketsim.firm_output, "open_writer", FillingDisk)
    out = tmp_path / "deep" / "out"
    result = invoke(
        "run",
        experiment.source,
        "--set",
        FIRM_LEVEL,
        "--steps",
        STEPS,
        "--set",
        f"experiment.replications={replications}",
        "--out",
        out,
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: {out}: cannot write results: No space left on device"
    ]
    assert not (tmp_path / "deep").exists()


KILLED_RUN = """
import os, signal, sys
import marketsim.firm_output
from marketsim.cli import main

real = marketsim.firm_output.FirmStream.write

def write(self, table):
    real(self, table)
    if self.row_groups == 2:
        os.kill(os.getpid(), signal.SIGKILL)

marketsim.firm_output.FirmStream.write = write
main(sys.argv[1:])
"""


def test_a_killed_run_leaves_no_firm_file_and_the_next_run_cleans_up(experiment, tmp_path):
    """SIGKILL while firm rows stream: the target holds nothing; the next run to it writes
    complete results and removes the killed run's staging directory."""
    out = tmp_path / "out"
    args = ["run", experiment.source, "--set", FIRM_LEVEL, "--steps", str(STEPS), "--out"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, *args, str(out), "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    staging = [name for name in hidden(tmp_path) if ".partial-" in name]
    assert len(staging) == 1 and (tmp_path / staging[0] / "firms.parquet").exists()
    assert invoke(*args, out, "--quiet").exit_code == 0
    assert pq.read_metadata(out / "firms.parquet").num_row_groups == STEPS
    assert hidden(tmp_path) == []


STUDY = """
[study]
name = "firm_stream"
seed = 5
replications = 2

[study.scenarios]
baseline = "{baseline}"

[study.set]
"experiment.steps" = {steps}
"output.firm_level" = true

[study.factors]
"agents.end_demand.elasticity" = [0.6, 1.6]
"""


def test_a_study_streams_each_tasks_firm_part_identically_on_any_worker_count(
    baseline_path, tmp_path
):
    """A study's firm parts: a row group per step, the task's keys and factor first, and the
    same bytes from one worker or two."""
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(baseline=baseline_path.as_posix(), steps=STEPS))
    parts = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run_study(load_study(path), workers=workers, out=out, analyse=False)
        names = sorted(os.listdir(out / "firms"))
        parts.append({name: (out / "firms" / name).read_bytes() for name in names})
    assert parts[0] == parts[1] and len(parts[0]) == 4
    first = tmp_path / "out1" / "firms" / sorted(parts[0])[-1]
    file = pq.ParquetFile(first)
    assert file.metadata.num_row_groups == STEPS
    frame = file.read().to_pandas()
    assert list(frame.columns[:5]) == [
        "scenario",
        "point",
        "replication",
        "agents.end_demand.elasticity",
        "step",
    ]
    assert frame["replication"].unique().tolist() == [1]
    assert frame["scenario"].unique().tolist() == ["baseline"]
    runs = marketsim.read_study(tmp_path / "out1").runs("firms")
    assert len(runs) == 4 * len(frame)


def test_the_memory_check_counts_one_step_of_firm_rows():
    """The rows stream to disk a step at a time, so the memory check charges one step of
    them: full resolution with firm-level output for ten years fits the budget (it was
    refused at "about 125 GiB"), and more steps or replications add nothing for them."""
    from marketsim import limits
    from marketsim.experiment import load_experiment

    path = ROOT / "experiments" / "full_resolution.toml"
    ten_years = load_experiment(path, [FIRM_LEVEL, "experiment.steps=120"])
    size = limits.estimate_size(ten_years.config, ten_years.components.sectors)
    members = sum(table["count"] for table in ten_years.config["agents"].values())
    assert size.firm_rows == members
    assert size.bytes < limits.MEMORY_BUDGET_BYTES
    more = load_experiment(path, [FIRM_LEVEL, "experiment.steps=1200", "experiment.replications=4"])
    assert limits.estimate_size(more.config, more.components.sectors).firm_rows == members
