"""Study executors: the same part files, byte for byte, from any executor and worker count;
a killed worker stops the study and --resume finishes it identically."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketsim.study import StudyError
from marketsim.study import load_study
from marketsim.study import run_study
from marketsim.study.command import study as study_command

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"

STUDY = """
[study]
name = "executors"
seed = 5
replications = 2
reference = "no_bubble"

[study.scenarios]
no_bubble = "{experiments}/no_bubble.toml"
bubble = "{experiments}/bubble.toml"

[study.set]
"experiment.steps" = 3

[study.factors]
"agents.end_demand.elasticity" = [0.6, 1.6]
"""


def part_bytes(directory: Path, committed_only: bool = False) -> dict[str, bytes]:
    """Every part file under the study directory, by relative path.

    ``committed_only`` leaves out hidden temporaries (``.part-...tmp``): a worker stopped while
    writing leaves one behind, which the next ``--resume`` removes.
    """
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for table in ("sectors", "markets", "chain", "firms")
        if (directory / table).is_dir()
        for path in sorted((directory / table).iterdir())
        if not (committed_only and path.name.startswith("."))
    }


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    path = folder / "study.toml"
    path.write_text(STUDY.format(experiments=EXPERIMENTS.as_posix()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def in_process(study_file, tmp_path_factory) -> dict[str, bytes]:
    """The part files of the study run task by task in this process."""
    out = tmp_path_factory.mktemp("in_process") / "out"
    run_study(load_study(study_file), workers=1, out=out, analyse=False)
    parts = part_bytes(out)
    assert len(parts) == 2 * 2 * 2 * 3
    return parts


def test_local_pool_of_two_workers_writes_identical_parts(study_file, in_process, tmp_path):
    """Two worker processes write the same bytes as one process."""
    results = run_study(load_study(study_file), workers=2, out=tmp_path / "out", analyse=False)
    assert results.timings["pid"].nunique() >= 1
    assert part_bytes(tmp_path / "out") == in_process


def test_dask_cluster_writes_identical_parts(study_file, in_process, tmp_path):
    """Tasks sent to a Dask LocalCluster by its scheduler address: the same bytes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        run_study(
            load_study(study_file),
            executor="dask",
            scheduler=cluster.scheduler_address,
            out=tmp_path / "out",
            analyse=False,
        )
    assert part_bytes(tmp_path / "out") == in_process


def test_dask_command_starts_and_closes_its_own_local_cluster(study_file, in_process, tmp_path):
    """--executor dask without a scheduler: its own LocalCluster, the same bytes."""
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        study_command,
        [str(study_file), "--out", str(out), "--executor", "dask", "--workers", "1", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert part_bytes(out) == in_process


def test_unreachable_scheduler_is_one_line(study_file, tmp_path, monkeypatch):
    """A scheduler address nobody answers: one line, exit 2."""
    pytest.importorskip("distributed")
    monkeypatch.setattr("marketsim.study.executors.CONNECT_TIMEOUT_S", 1)
    result = CliRunner().invoke(
        study_command,
        [
            str(study_file),
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


KILLER = '''
"""Test plugin: SIGKILL the worker running replication 1 while {marker} exists."""
import os
import signal
from pathlib import Path

import marketsim


@marketsim.hookimpl
def marketsim_step_start(model):
    if model.replication == 1 and Path({marker!r}).exists():
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_killed_worker_stops_the_study_and_resume_finishes_it_identically(tmp_path):
    """A worker killed mid-task: one-line error, finished tasks kept, --resume completes them
    with the same bytes as a study that was never interrupted."""
    marker = tmp_path / "kill-replication-1"
    plugin = tmp_path / "killer.py"
    plugin.write_text(KILLER.format(marker=str(marker)), encoding="utf-8")
    experiment = tmp_path / "killable.toml"
    experiment.write_text(
        f'extends = "{(EXPERIMENTS / "baseline.toml").as_posix()}"\nplugins = ["killer.py"]\n',
        encoding="utf-8",
    )
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "killable"\nseed = 1\nreplications = 2\n'
        '[study.scenarios]\nkillable = "killable.toml"\n'
        '[study.set]\n"experiment.steps" = 3\n'
        '[study.factors]\n"agents.end_demand.elasticity" = [0.6, 1.0, 1.6]\n',
        encoding="utf-8",
    )
    whole = tmp_path / "whole"
    run_study(load_study(path), workers=1, out=whole, analyse=False)

    out = tmp_path / "out"
    marker.touch()
    with pytest.raises(StudyError, match="a worker process died"):
        run_study(load_study(path), workers=2, out=out, analyse=False)
    marker.unlink()
    interrupted = part_bytes(out, committed_only=True)
    assert 0 < len(interrupted) < len(part_bytes(whole))
    assert all(part_bytes(whole)[name] == data for name, data in interrupted.items())

    result = CliRunner().invoke(
        study_command, [str(path), "--out", str(out), "--resume", "--workers", "1", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert part_bytes(out) == part_bytes(whole)


BLOCKER = '''
"""Test plugin: replication 1 waits while {marker} exists."""
import time
from pathlib import Path

import marketsim


@marketsim.hookimpl
def marketsim_step_start(model):
    while model.replication == 1 and Path({marker!r}).exists():
        time.sleep(0.05)
'''


def test_ctrl_c_keeps_finished_tasks_stops_workers_and_resume_completes(tmp_path):
    """SIGINT to `marketsim study` with a pool: exit 130, finished tasks kept, a message
    saying how to resume; --resume then gives the tables of an uninterrupted study."""
    marker = tmp_path / "hold-replication-1"
    (tmp_path / "blocker.py").write_text(BLOCKER.format(marker=str(marker)), encoding="utf-8")
    (tmp_path / "held.toml").write_text(
        f'extends = "{(EXPERIMENTS / "baseline.toml").as_posix()}"\nplugins = ["blocker.py"]\n',
        encoding="utf-8",
    )
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "held"\nseed = 2\nreplications = 2\n'
        '[study.scenarios]\nheld = "held.toml"\n'
        '[study.set]\n"experiment.steps" = 3\n'
        '[study.factors]\n"agents.end_demand.elasticity" = [0.6, 1.0, 1.6]\n',
        encoding="utf-8",
    )
    whole = tmp_path / "whole"
    run_study(load_study(path), workers=1, out=whole, analyse=False)

    out = tmp_path / "out"
    marker.touch()
    command = "from marketsim.study.command import study; study()"
    process = subprocess.Popen(
        [sys.executable, "-c", command, str(path), "--out", str(out), "--workers", "2", "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        # replication 0 is finished: every table holds its three parts
        while min(len(list((out / t).glob("part-*"))) for t in ("sectors", "markets", "chain")) < 3:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    # the parent counts a task when its worker reports back, which may come just after the
    # task's last part is on disk: the message says 2 or 3; the resume finds 3 on disk
    assert re.search(r"interrupted: [23] of 6 tasks are finished", stderr), stderr
    assert "--resume" in stderr
    marker.unlink()

    resumed = run_study(load_study(path), workers=1, out=out, resume=True, analyse=False)
    assert sorted(resumed.timings["replication"]) == [1, 1, 1]
    assert part_bytes(out) == part_bytes(whole)
