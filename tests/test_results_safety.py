"""Writing results never destroys what marketsim did not write, and survives kills and races.

Each test is a reproducer from the reliability issue (items 1, 2, 11, 12, 15): foreign files
under --overwrite, a kill at every step of the swap, SIGTERM, two writers to one target,
names and places that cannot be created, and error texts holding newlines. Nothing here
depends on timing: kills happen at named steps of the swap (the ``swap_step`` hook), signals
are sent once the child says it is running, and "concurrent" writers are made by holding the
lock in the test process.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import marketsim.cli
import marketsim.results
from marketsim import ResultsError
from marketsim import resultsdir
from marketsim.cli import cli
from marketsim.cli import main
from marketsim.errors import ExperimentError
from marketsim.results import Results
from marketsim.results import results_target

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

EXCHANGE_STEPS = [
    "staged",
    "exchanged",
    "retired:manifest.json",
    "retired:chain.parquet",
    "retired:firms.parquet",
    "retired:markets.parquet",
    "retired:sectors.parquet",
    "retired-removed",
]
FALLBACK_STEPS = ["staged", "moved-aside", "moved-in", *EXCHANGE_STEPS[2:]]

KILL_SCRIPT = """
import errno, os, signal, sys
sys.path.insert(0, sys.argv[5])
from marketsim import resultsdir
from test_results_safety import small_results

target, seed, step, swap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def kill_at(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

def unsupported(source, destination):
    raise OSError(errno.EINVAL, "Invalid argument")

resultsdir.swap_step = kill_at
if swap == "fallback":
    resultsdir.rename_exchange = unsupported
small_results(seed).write(target, overwrite=True)
"""

SIGNAL_AT_STEP_SCRIPT = """
import os, signal, sys
from marketsim import resultsdir
from marketsim.cli import main

step = sys.argv[1]

def terminate_at(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGTERM)

resultsdir.swap_step = terminate_at
main(sys.argv[2:])
"""

BLOCKING_RUN_SCRIPT = """
import sys
import marketsim.cli
import marketsim.results

def blocking_run(experiment, progress=None, workers=1, target=None):
    print("running", flush=True)
    sys.stdin.readline()
    raise AssertionError("SIGTERM should have stopped the run")

marketsim.cli.run_experiment = blocking_run
marketsim.cli.main(sys.argv[1:])
"""


def small_results(seed: int, name: str = "small", firms: bool = False) -> Results:
    """Hand-made results: every table carries ``seed`` so old and new never mix unseen."""
    rng = np.random.default_rng(seed)
    tables = {
        "sectors": pd.DataFrame({"step": [0, 1], "seed": seed, "revenue": rng.random(2)}),
        "markets": pd.DataFrame({"step": [0, 1], "seed": seed, "price": rng.random(2)}),
        "chain": pd.DataFrame({"step": [0, 1, 2], "seed": seed, "end_revenue": rng.random(3)}),
    }
    if firms:
        tables["firms"] = pd.DataFrame({"step": [0], "seed": seed, "cash": [1.0]})
    manifest = {
        "experiment": {"experiment": {"name": name}},
        "seed": seed,
        "tables": {table: {"rows": len(frame)} for table, frame in tables.items()},
    }
    return Results(tables, manifest)


def complete_seed(directory: Path) -> int:
    """The seed of the complete, consistent results in ``directory`` (asserts they are)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    parquet = {p.name for p in directory.iterdir() if p.suffix == ".parquet"}
    assert parquet == {f"{name}.parquet" for name in manifest["tables"]}
    for name, info in manifest["tables"].items():
        table = pq.read_table(directory / f"{name}.parquet")
        assert table.num_rows == info["rows"]
        assert set(table["seed"].to_pylist()) == {manifest["seed"]}
    return manifest["seed"]


def hidden(directory: Path) -> list[str]:
    """Names of hidden entries (staging, retired, lock) in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def invoke(*args):
    """Run the CLI in-process (stdout and stderr apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result) -> str:
    """The single stderr line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def no_run(monkeypatch):
    """Make running an experiment from the CLI a test failure: checks must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the run started although the target was refused")

    monkeypatch.setattr(marketsim.cli, "run_experiment", refuse)


def child(script: str, *args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python with ``args``."""
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        **kwargs,
    )


# Item 1: --overwrite deletes only what marketsim wrote.


@pytest.mark.parametrize("foreign", ["notes.txt", "analysis"])
def test_overwrite_refuses_a_foreign_entry_and_keeps_everything(
    short_baseline, tmp_path, no_run, foreign
):
    """notes.txt or an analysis/ folder beside results: --overwrite exits 2 naming it, before
    the run, and neither it nor the results change."""
    out = tmp_path / "out"
    small_results(1, name="baseline").write(out)
    if foreign == "analysis":
        (out / foreign).mkdir()
        (out / foreign / "plot.py").write_text("precious")
    else:
        (out / foreign).write_text("precious")
    line = one_line_error(invoke("run", short_baseline, "--out", out, "--overwrite"))
    assert f"holds '{foreign}', which marketsim did not write" in line and str(out) in line
    assert complete_seed(out) == 1
    kept = out / foreign / "plot.py" if foreign == "analysis" else out / foreign
    assert kept.read_text() == "precious"
    assert hidden(tmp_path) == []


def test_first_foreign_entry_is_named_in_sorted_order(tmp_path):
    """With several foreign entries the message names the first in sorted order."""
    out = tmp_path / "out"
    small_results(1).write(out)
    for name in ("zeta.txt", "alpha.txt", "beta"):
        (out / name).write_text("x")
    with pytest.raises(ResultsError, match="holds 'alpha.txt'"):
        small_results(2).write(out, overwrite=True)
    assert complete_seed(out) == 1


def test_inherited_output_dir_does_not_replace_another_experiments_results(
    write_experiment, tmp_path, monkeypatch
):
    """Two experiments sharing an [output] dir from a base file: the second, with
    --overwrite, is refused before running, naming the first; its results stay."""
    shared = tmp_path / "shared"
    base = write_experiment(
        f'[experiment]\nname = "alpha"\nsteps = 2\n\n[output]\ndir = "{shared.as_posix()}"\n',
        name="alpha.toml",
        steps=None,
    )
    child_file = write_experiment(
        f'extends = "{base.as_posix()}"\n[experiment]\nname = "beta"\n',
        name="beta.toml",
        base=False,
        steps=None,
    )
    assert invoke("run", base, "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in shared.iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("beta ran although its target holds alpha's results")

    monkeypatch.setattr(marketsim.cli, "run_experiment", refuse)
    line = one_line_error(invoke("run", child_file, "--overwrite"))
    assert "results of experiment 'alpha', not 'beta'" in line
    assert {p.name: p.read_bytes() for p in shared.iterdir()} == before


def test_dataset_directory_ownership_names_a_foreign_file_inside(tmp_path):
    """A caller owning a dataset directory ("sectors/") gets foreign files inside it named."""
    out = tmp_path / "study"
    (out / "sectors" / "replication=0").mkdir(parents=True)
    (out / "sectors" / "replication=0" / "part-0.parquet").write_bytes(b"x")
    (out / "manifest.json").write_text("{}")
    owned = {"manifest.json", "sectors/"}
    with results_target(out, overwrite=True, owned=owned):
        pass
    (out / "sectors" / "notes.txt").write_text("mine")
    with (
        pytest.raises(ResultsError, match="holds 'sectors/notes.txt'"),
        results_target(out, overwrite=True, owned=owned),
    ):
        pass
    assert (out / "sectors" / "notes.txt").read_text() == "mine"


def test_foreign_file_appearing_during_the_run_stops_the_swap(tmp_path):
    """A file put into the target while the run was under way is found before the swap."""
    out = tmp_path / "out"
    small_results(1).write(out)
    with results_target(out, overwrite=True, experiment_name="small") as target:
        (out / "notes.txt").write_text("written during the run")
        with pytest.raises(ResultsError, match="holds 'notes.txt'"):
            target.write(small_results(2))
    assert complete_seed(out) == 1
    assert (out / "notes.txt").read_text() == "written during the run"
    assert hidden(tmp_path) == []


def test_results_of_another_experiment_are_not_replaced(tmp_path):
    """--overwrite replaces only results of the same experiment name."""
    out = tmp_path / "out"
    small_results(1, name="alpha").write(out)
    with pytest.raises(ResultsError, match="results of experiment 'alpha', not 'beta'"):
        small_results(2, name="beta").write(out, overwrite=True)
    assert complete_seed(out) == 1


def test_results_in_the_working_directory_are_not_replaced(tmp_path, monkeypatch):
    """--out . inside a results directory is refused (the swap would move the cwd away)."""
    out = tmp_path / "out"
    small_results(1).write(out)
    monkeypatch.chdir(out)
    with pytest.raises(ResultsError, match="working directory"):
        small_results(2).write(".", overwrite=True)
    assert complete_seed(out) == 1


# Item 2: a kill at any step of the swap leaves complete results.


def test_swap_steps_are_the_ones_the_kill_tests_cover(tmp_path, monkeypatch):
    """The steps of overwriting, with and without RENAME_EXCHANGE, are the listed ones."""
    for swap, expected in (("exchange", EXCHANGE_STEPS), ("fallback", FALLBACK_STEPS)):
        out = tmp_path / swap
        small_results(1, firms=True).write(out)
        steps = []
        monkeypatch.setattr(resultsdir, "swap_step", steps.append)
        if swap == "fallback":
            monkeypatch.setattr(resultsdir, "rename_exchange", unsupported_exchange)
        small_results(2).write(out, overwrite=True)
        monkeypatch.undo()
        assert steps == expected
        assert complete_seed(out) == 2


def unsupported_exchange(source, destination):
    """RENAME_EXCHANGE as a file system without it answers."""
    raise OSError(errno.EINVAL, "Invalid argument")


@pytest.mark.parametrize(
    ("swap", "step"),
    [("exchange", step) for step in EXCHANGE_STEPS] + [("fallback", s) for s in FALLBACK_STEPS],
)
def test_kill_at_every_step_of_the_swap_leaves_complete_results(tmp_path, swap, step):
    """SIGKILL at each step of overwriting: the target holds the old or the new results,
    complete and unmixed (with the exchange, at every instant; with the fallback, once the
    next run has put back what the killed one moved aside), and the next run removes every
    hidden leftover."""
    out = tmp_path / "out"
    small_results(1, firms=True).write(out)
    done = child(KILL_SCRIPT, out, 2, step, swap, TESTS)
    assert done.returncode == -signal.SIGKILL, done.stderr
    steps = EXCHANGE_STEPS if swap == "exchange" else FALLBACK_STEPS
    committed = steps.index(step) >= steps.index("exchanged" if swap == "exchange" else "moved-in")
    if swap == "exchange" or step != "moved-aside":
        assert complete_seed(out) == (2 if committed else 1)
    else:
        assert not out.exists()
    with results_target(out, overwrite=True, experiment_name="small"):
        pass
    assert complete_seed(out) == (2 if committed else 1)
    assert hidden(tmp_path) == []
    small_results(3).write(out, overwrite=True)
    assert complete_seed(out) == 3
    assert hidden(tmp_path) == []


def test_kill_while_filling_an_empty_directory_leaves_only_marketsim_files(tmp_path):
    """A kill while moving results into an existing empty directory leaves marketsim's own
    files and no manifest: refused as incomplete without --overwrite, replaced with it."""
    out = tmp_path / "out"
    out.mkdir()
    done = child(KILL_SCRIPT, out, 2, "filled:chain.parquet", "exchange", TESTS)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chain.parquet"]
    with pytest.raises(ResultsError, match="incomplete results"):
        small_results(3).write(out)
    small_results(3).write(out, overwrite=True)
    assert complete_seed(out) == 3
    assert hidden(tmp_path) == []


def test_stale_leftovers_are_cleaned_but_foreign_files_in_them_kept(tmp_path, capfd):
    """Staging dirs of dead processes (and the old unnumbered kind) are removed on the next
    run; a foreign file found in one is left, with a warning naming it."""
    out = tmp_path / "out"
    small_results(1).write(out)
    pid = 2**22 + 1  # above Linux's PID_MAX_LIMIT: no process can have it
    stale = tmp_path / f".out.partial-{pid}-abcd1234"
    old_kind = tmp_path / ".out.old-k2j4_x9q"
    for directory in (stale, old_kind):
        small_results(0).write(directory)
    (old_kind / "mine.txt").write_text("keep me")
    small_results(2).write(out, overwrite=True)
    assert hidden(tmp_path) == [".out.old-k2j4_x9q"]
    assert sorted(p.name for p in old_kind.iterdir()) == ["mine.txt"]
    assert "mine.txt" in capfd.readouterr().err


# SIGTERM is Ctrl-C.


def test_sigterm_during_a_run_writes_nothing(short_baseline, tmp_path):
    """SIGTERM while the experiment runs: exit 143, one line, no target, no staging, no lock,
    no parent directory left."""
    out = tmp_path / "a" / "b" / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKING_RUN_SCRIPT, "run", str(short_baseline), "--out", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout.readline() == "running\n"
    assert (tmp_path / "a" / "b").is_dir()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines() == ["interrupted: nothing was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.toml"]


@pytest.mark.parametrize("step", ["staged", "moved-in"])
def test_sigterm_during_the_swap_waits_for_it(short_baseline, tmp_path, step):
    """SIGTERM before the renames stops the write; during them it waits until the results
    are in place, and says where."""
    out = tmp_path / "out"
    done = child(SIGNAL_AT_STEP_SCRIPT, step, "run", short_baseline, "--out", out, "-q")
    assert done.returncode == 143, done.stderr
    if step == "staged":
        assert done.stderr.splitlines() == ["interrupted: nothing was written"]
        assert not out.exists()
    else:
        assert done.stderr.splitlines() == [f"interrupted: results were written to {out}"]
        assert (out / "manifest.json").exists() and (out / "sectors.parquet").exists()
    assert hidden(tmp_path) == []


def test_ctrl_c_during_a_run_writes_nothing(short_baseline, tmp_path, monkeypatch):
    """KeyboardInterrupt in the run: exit 130, one line, nothing created."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(marketsim.cli, "run_experiment", interrupted)
    result = invoke("run", short_baseline, "--out", tmp_path / "new" / "out")
    assert result.exit_code == 130
    assert result.stderr.splitlines() == ["interrupted: nothing was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.toml"]


# Item 11: one writer per target, and refusals before the run.


def test_second_writer_fails_at_once_while_the_first_holds_the_lock(
    short_baseline, tmp_path, no_run
):
    """While a run holds the target, another exits 2 naming its pid, before running; the
    Python API is refused too; the first run's write then succeeds and leaves no lock."""
    out = tmp_path / "out"
    with results_target(out, experiment_name="small") as first:
        line = one_line_error(invoke("run", short_baseline, "--out", out))
        assert line == f"error: {out}: another marketsim run is writing there (pid {os.getpid()})"
        with pytest.raises(ResultsError, match="another marketsim run is writing there"):
            small_results(9).write(out)
        first.write(small_results(1))
    assert complete_seed(out) == 1
    assert hidden(tmp_path) == []


def test_existing_results_are_refused_before_the_run(short_baseline, tmp_path, no_run):
    """Without --overwrite, existing results are refused before anything runs."""
    out = tmp_path / "out"
    small_results(1, name="baseline").write(out)
    assert "--overwrite" in one_line_error(invoke("run", short_baseline, "--out", out))
    assert complete_seed(out) == 1


def test_lock_file_of_a_killed_run_does_not_block(tmp_path):
    """A lock file left by a killed run (no process holds it) is taken over and removed."""
    out = tmp_path / "out"
    (tmp_path / ".out.lock").write_text("999999999\n")
    small_results(1).write(out)
    assert complete_seed(out) == 1
    assert hidden(tmp_path) == []


# Item 15: what cannot be created is refused before the run, and nothing is left.


def test_too_long_name_is_refused_before_the_run(short_baseline, tmp_path, no_run):
    """A path component longer than NAME_MAX: exit 2 before the run, nothing created."""
    out = tmp_path / "a" / "b" / ("x" * 300) / "out"
    line = one_line_error(invoke("run", short_baseline, "--out", out))
    assert "300 bytes long" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.toml"]


def test_long_name_that_fits_is_written_with_short_hidden_names(tmp_path):
    """A 250-byte directory name works: staging and lock names are shortened to fit."""
    out = tmp_path / ("n" * 250)
    steps = []
    original = resultsdir.swap_step
    resultsdir.swap_step = lambda step: steps.append(hidden(tmp_path))
    try:
        small_results(1).write(out)
    finally:
        resultsdir.swap_step = original
    assert complete_seed(out) == 1
    assert all(len(name) < 255 for names in steps for name in names) and steps[0]
    assert hidden(tmp_path) == []


def test_failed_write_removes_the_parents_it_created(short_baseline, tmp_path, monkeypatch):
    """A write failing (disk full) under --out a/b/c/d/out exits 2 and leaves no a/."""

    def full_disk(frame, path, name):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(marketsim.results, "_write_parquet", full_disk)
    out = tmp_path / "a" / "b" / "c" / "d" / "out"
    line = one_line_error(invoke("run", short_baseline, "--out", out, "--steps", "2"))
    assert "No space left on device" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.toml"]


def _sys_refuses_files() -> bool:
    if not Path("/sys").is_dir():
        return False
    try:
        os.close(os.open("/sys/.marketsim-probe", os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        return True
    os.unlink("/sys/.marketsim-probe")
    return False


@pytest.mark.skipif(not _sys_refuses_files(), reason="/sys is missing or takes files here")
def test_virtual_file_system_is_refused_before_the_run(short_baseline, no_run):
    """--out /sys/x is refused before the run (the lock file cannot be created there)."""
    line = one_line_error(invoke("run", short_baseline, "--out", "/sys/marketsim-x"))
    assert "/sys/marketsim-x: cannot write results there" in line
    assert not Path("/sys/marketsim-x").exists()


# Item 12 (part): every error is one line.


def test_newlines_in_an_error_text_stay_on_one_line(short_baseline, monkeypatch):
    """An error whose file, key and message hold newlines prints one escaped line."""

    def broken(*args, **kwargs):
        raise ExperimentError("expected\na number", source="my\nfile.toml", key="a\rb")

    monkeypatch.setattr(marketsim.cli, "load_experiment", broken)
    line = one_line_error(invoke("run", short_baseline))
    assert line == "error: my\\nfile.toml: a\\rb: expected\\na number"


def test_newline_in_a_path_stays_on_one_line(short_baseline, tmp_path, no_run):
    """A foreign file and a results directory with newlines in their names: one line."""
    out = tmp_path / "two\nlines"
    out.mkdir()
    (out / "x\ny.txt").write_text("z")
    line = one_line_error(invoke("run", short_baseline, "--out", out, "--overwrite"))
    assert "two\\nlines" in line and "x\\ny.txt" in line
    missing = one_line_error(invoke("run", tmp_path / "no\nsuch.toml"))
    assert "no\\nsuch.toml" in missing


def test_usage_error_with_a_newline_is_one_line(capsys):
    """click's own errors (here a bad --steps value) are escaped onto one line too."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.toml", "--steps", "1\n2"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "1\\n2" in lines[0]
