"""Plugins and worker processes that are safe.

A plugin cannot end the program; workers run exactly the plugin code that was loaded and
hashed; code that no experiment names (a ``*.dist-info`` or module in the working directory)
never runs, under ``python -m marketsim`` or ``marketsim``; module-name plugins are found
next to the experiment under both; workers die with the process that started them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import marketsim
from marketsim.cli import cli
from marketsim.errors import PluginError
from marketsim.plugins import guarded

SCALE_PLUGIN = '''\
"""Scales compute demand before the compute market clears by a constant of the module."""
import marketsim

__version__ = "1.0"
SCALE = {scale}


@marketsim.hookimpl
def marketsim_before_clear(model, market):
    if market.name == "compute":
        market.book.buyer_demand *= SCALE
'''

EXIT_IN_HOOK_PLUGIN = """\
import sys

import marketsim


@marketsim.hookimpl
def marketsim_step_start(model):
    sys.exit(3)
"""

FIRST_REPLICATION_FAILS_PLUGIN = """\
from pathlib import Path

import marketsim

STARTED = Path({started!r})


@marketsim.hookimpl
def marketsim_step_start(model):
    if model.step_index == 0:
        (STARTED / f"replication-{{model.replication}}").touch()
        if model.replication == 0:
            raise ValueError("replication 0 fails")
"""


def run_cli(*args) -> object:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def sha256(path: Path) -> str:
    """Hash of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def module_name():
    """A unique module name for a module-name plugin; forgotten by this process afterwards."""
    name = f"marketsim_test_plugin_{uuid.uuid4().hex[:12]}"
    yield name
    for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
        del sys.modules[key]


# -- a plugin may not end the program; Ctrl-C stays an interrupt -------------------------------


def test_sys_exit_in_a_hook_is_the_plugins_error(write_experiment, tmp_path):
    """sys.exit(3) in a hook exits 2 with one line naming the plugin and hook, not silently 3."""
    (tmp_path / "quitter.py").write_text(EXIT_IN_HOOK_PLUGIN)
    path = write_experiment('plugins = ["quitter.py"]\n')
    result = run_cli("run", path, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: plugin 'quitter.py' raised in hook marketsim_step_start: SystemExit(3) "
        "(a plugin may not exit the program)"
    ]
    assert not (tmp_path / "out").exists()


def test_sys_exit_while_importing_a_plugin_is_reported(write_experiment, tmp_path):
    """A plugin file that calls sys.exit at import is an experiment error naming the plugin."""
    (tmp_path / "quitter.py").write_text("import sys\n\nsys.exit(3)\n")
    path = write_experiment('plugins = ["quitter.py"]\n')
    result = run_cli("validate", path)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: plugins[0]: plugin 'quitter.py' failed to import: SystemExit(3) "
        "(a plugin may not exit the program)"
    ]


def test_ctrl_c_inside_plugin_code_stays_an_interrupt():
    """KeyboardInterrupt raised in plugin code passes through as an interrupt."""

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        guarded("someone.py", "hook marketsim_step_start", interrupted)


# -- the code that ran is the code that was hashed ----------------------------------------------


def test_workers_run_the_plugin_code_that_was_loaded(write_experiment, tmp_path):
    """Editing a plugin file after loading changes neither the results nor the recorded hash."""
    plugin = tmp_path / "scale.py"
    plugin.write_text(SCALE_PLUGIN.format(scale=0.5))
    loaded_hash = sha256(plugin)
    path = write_experiment('plugins = ["scale.py"]\n')
    overrides = ["experiment.replications=2"]
    experiment = marketsim.load_experiment(path, overrides)
    plugin.write_text(SCALE_PLUGIN.format(scale=2.0))  # edited while the run is under way
    alone = marketsim.run(experiment)
    pooled = marketsim.run(experiment, workers=2)
    for name, frame in alone.tables.items():
        pd.testing.assert_frame_equal(pooled.tables[name], frame, check_exact=True)
    for results in (alone, pooled):
        recorded = {p["name"]: p["sha256"] for p in results.manifest["plugins"]}
        assert recorded["scale.py"] == loaded_hash
    edited = marketsim.run(marketsim.load_experiment(path, overrides))
    assert not edited.markets.equals(alone.markets)  # the edit would have changed results


def test_module_plugin_changed_on_disk_stops_the_workers(write_experiment, tmp_path, module_name):
    """A module-name plugin edited after loading is refused by the workers, not run."""
    module = tmp_path / f"{module_name}.py"
    module.write_text(SCALE_PLUGIN.format(scale=0.5))
    path = write_experiment(f'plugins = ["{module_name}"]\n')
    experiment = marketsim.load_experiment(path, ["experiment.replications=2"])
    assert Path(experiment.manager.get_plugin(module_name).__file__) == module.resolve()
    module.write_text(SCALE_PLUGIN.format(scale=2.0))
    with pytest.raises(PluginError) as raised:
        marketsim.run(experiment, workers=2)
    assert str(raised.value) == (
        f"plugin {module_name!r} changed on disk during the run ({module.resolve()}); "
        "run again to use the new code"
    )


def test_a_plugin_registered_by_hand_is_not_silently_dropped(baseline_path):
    """An experiment with a plugin registered by hand refuses to pickle rather than lose it."""

    class ByHand:
        @marketsim.hookimpl
        def marketsim_step_start(self, model):
            pass

    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=6"])
    experiment.manager.register(ByHand(), name="by_hand")
    with pytest.raises(PluginError, match="'by_hand' was registered by hand"):
        pickle.dumps(experiment)


def test_a_failing_replication_stops_the_run(write_experiment, tmp_path):
    """A replication that fails stops the run: the replications still queued never start."""
    started = tmp_path / "started"
    started.mkdir()
    (tmp_path / "fails.py").write_text(FIRST_REPLICATION_FAILS_PLUGIN.format(started=str(started)))
    path = write_experiment('plugins = ["fails.py"]\n', steps=None)
    experiment = marketsim.load_experiment(path, ["experiment.replications=60"])
    with pytest.raises(PluginError, match="replication 0 fails"):
        marketsim.run(experiment, workers=2)
    assert len(list(started.iterdir())) < 60


# -- only what the experiment names runs, the same under both commands ------------------------


def commands() -> list:
    """``python -m marketsim`` and the ``marketsim`` script of this environment."""
    script = Path(sys.executable).with_name("marketsim")
    return [
        pytest.param([sys.executable, "-m", "marketsim"], id="python -m marketsim"),
        pytest.param(
            [str(script)],
            id="marketsim",
            marks=pytest.mark.skipif(not script.is_file(), reason="no marketsim script"),
        ),
    ]


def hostile_directory(tmp_path: Path) -> tuple[Path, Path]:
    """A directory with a ``*.dist-info`` declaring a marketsim entry point and a module.

    Returns the directory and the file the entry point's module writes when it is imported.
    """
    place = tmp_path / "downloads"
    info = place / "evil-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[marketsim]\nevil = evil_plugin\n")
    marker = tmp_path / "evil-ran"
    (place / "evil_plugin.py").write_text(
        f"from pathlib import Path\n\nPath({str(marker)!r}).write_text('ran')\n"
    )
    (place / "only_in_cwd.py").write_text('"""A module in the working directory."""\n')
    return place, marker


def run_command(command: list[str], *args, cwd: Path, env: dict | None = None):
    """Run a marketsim command in a subprocess."""
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("command", commands())
def test_working_directory_code_never_runs(command, tmp_path, baseline_path):
    """From a directory holding a marketsim dist-info and modules, nothing there is imported.

    Module-name plugins resolve next to the experiment file, the same under both commands;
    a module only in the working directory is not found.
    """
    place, marker = hostile_directory(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "nearby.py").write_text('"""Next to the experiment."""\n__version__ = "7.7"\n')
    header = f'extends = "{baseline_path.as_posix()}"\n'
    (project / "near.toml").write_text(header + 'plugins = ["nearby"]\n')
    (project / "far.toml").write_text(header + 'plugins = ["only_in_cwd"]\n')

    listed = run_command(command, "plugins", project / "near.toml", cwd=place)
    assert listed.returncode == 0, listed.stderr
    assert "nearby  7.7  (experiment)" in listed.stdout.splitlines()
    assert "evil" not in listed.stdout
    assert not marker.exists(), "code in the working directory ran"

    far = run_command(command, "validate", project / "far.toml", cwd=place)
    assert far.returncode == 2
    assert len(far.stderr.splitlines()) == 1
    assert "plugins[0]: plugin 'only_in_cwd' not found" in far.stderr


def test_hostile_dist_info_is_a_real_entry_point(tmp_path):
    """Control for the test above: put on sys.path on purpose, the dist-info's plugin loads."""
    place, marker = hostile_directory(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(place), os.environ.get("PYTHONPATH")])),
    }
    listed = run_command([sys.executable, "-m", "marketsim"], "plugins", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "evil  1.0  (entry point)" in listed.stdout.splitlines()
    assert marker.read_text() == "ran"


# -- workers die with the process that started them --------------------------------------------


def process_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def workers_of(parent: int) -> list[tuple[int, str]]:
    """(pid, start time) of the multiprocessing workers whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = process_stat(int(entry.name))
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields and int(fields[1]) == parent and b"spawn_main" in command:
            found.append((int(entry.name), fields[19]))
    return found


def alive(pid: int, started: str) -> bool:
    """The process exists, is the one that started at ``started`` and is not a zombie."""
    fields = process_stat(pid)
    return fields is not None and fields[19] == started and fields[0] not in "ZX"


def wait_for(condition, timeout: float):
    """Poll ``condition`` until it returns something true; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_the_run_is_killed(baseline_path, tmp_path):
    """kill -9 of a --workers run: its worker processes exit too, none is left orphaned."""
    log = tmp_path / "stderr.txt"
    command = [
        *(sys.executable, "-m", "marketsim", "run", str(baseline_path), "-q", "--workers", "2"),
        *("--set", "experiment.replications=400", "--out", str(tmp_path / "out")),
    ]
    with log.open("w") as stderr:
        parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        workers = wait_for(
            lambda: parent.poll() is None and len(found := workers_of(parent.pid)) == 2 and found,
            timeout=180,
        )
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert workers, f"no two workers seen; the run said: {log.read_text()}"
    try:
        gone = wait_for(lambda: not any(alive(*worker) for worker in workers), timeout=60)
    finally:
        for pid, started in workers:
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
    assert gone, "workers outlived the killed run"
