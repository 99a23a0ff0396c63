"""Broken experiments: exit code 2, one line naming file, key and expectation, nothing written.

Also the bounds of what the model can hold (docs/experiments.md, Bounds): counts, steps and
replications against the memory budget, nesting, 64-bit integers, a finite range for every
number, regular files only, and plugin tables whose defaults break their own rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from dataclasses import field

import pytest
from click.testing import CliRunner

from marketsim.cli import cli

BOOM_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 2:
        raise RuntimeError("boom")
"""

DUPLICATE_GOOD_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_register_goods(register):
    register(marketsim.GoodSpec("accelerators", "accelerators", "USD per accelerator"))
"""

UNKNOWN_HOOK_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_ends(model):
    pass
"""

NAN_DEFAULT_PLUGIN = """\
import marketsim
from marketsim import Param
from marketsim import TableSchema


@marketsim.hookimpl
def marketsim_register_config_tables(register):
    register("knobs", TableSchema(params={"k": Param(float, default=float("nan"))}))
"""

OUT_OF_RANGE_DEFAULT_PLUGIN = """\
import marketsim
from marketsim import Param
from marketsim import TableSchema


@marketsim.hookimpl
def marketsim_register_config_tables(register):
    register("knobs", TableSchema(params={"share": Param(float, default=2.0, ge=0, le=1)}))
"""

NAN_BOUND_PLUGIN = """\
import marketsim
from marketsim import Param
from marketsim import TableSchema


@marketsim.hookimpl
def marketsim_register_config_tables(register):
    register("knobs", TableSchema(params={"k": Param(float, default=1.0, le=float("nan"))}))
"""

INTERRUPT_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 3:
        raise KeyboardInterrupt
"""


@dataclass
class Case:
    """One broken experiment and what its error line must say.

    ``source`` is where the error must point: ``"FILE"`` for the experiment file itself,
    another file name under tmp_path, ``"--set"``, or None when the line names no file.
    ``files`` are written under tmp_path first, with ``@BASELINE@`` replaced by the baseline's
    absolute path.
    """

    text: str
    expect: list[str]
    source: str | None = "FILE"
    base: bool = True
    steps: int | None = 6
    args: list[str] = field(default_factory=list)
    files: dict[str, str | bytes] = field(default_factory=dict)
    write: bool = True


CASES = {
    "toml_syntax": Case(
        "[agents.utility\ncount = 1\n", ["invalid TOML at line 4, column 16", "expected ']'"]
    ),
    "unknown_top_level_key": Case(
        "[experimnt]\nseed = 1\n",
        ["experimnt: unknown key 'experimnt' (did you mean 'experiment'?)"],
    ),
    "unknown_sector": Case(
        "[agents.utilty]\ncount = 1\n",
        ["agents.utilty: unknown sector 'utilty' (did you mean 'utility'?)"],
    ),
    "unknown_key_in_sector": Case(
        "[agents.utility]\ncapacity_m = 1\n",
        ["agents.utility.capacity_m: unknown key 'capacity_m' (did you mean 'capacity_mw'?)"],
    ),
    "negative_capacity": Case(
        "[agents.utility]\ncapacity_mw = -5\n",
        ["agents.utility.capacity_mw", "must be > 0 and <= 1e+07, got -5"],
    ),
    "string_for_number": Case(
        '[agents.utility]\ncapacity_mw = "lots"\n',
        ["agents.utility.capacity_mw: expected a number, got 'lots'"],
    ),
    "bool_for_number": Case(
        "[agents.datacenter]\ninitial_accelerators = true\n",
        ["agents.datacenter.initial_accelerators: expected a number, got true"],
    ),
    "not_finite": Case(
        "[agents.utility]\ncapacity_mw = nan\n",
        ["agents.utility.capacity_mw: must be a finite number, got nan"],
    ),
    "unknown_mechanism": Case(
        '[markets.power]\nmechanism = "posted_prise"\n',
        [
            "markets.power.mechanism: unknown mechanism 'posted_prise' "
            "(did you mean 'posted_price'?)"
        ],
    ),
    "unknown_market": Case(
        '[markets.gpus]\nmechanism = "posted_price"\n',
        ["markets.gpus: unknown market 'gpus'", "accelerators", "tokens"],
    ),
    "missing_name_standalone": Case(
        "[experiment]\nsteps = 6\n\n[agents.chip_vendor]\ncount = 1\n",
        ["experiment.name: missing required key"],
        base=False,
        steps=None,
    ),
    "extends_missing_file": Case(
        'extends = "nowhere/base.toml"\n',
        ["extends: base file not found", "base.toml"],
        base=False,
        steps=None,
    ),
    "extends_cycle": Case(
        'extends = "loop.toml"\n',
        ["extends: extends cycle", "loop.toml -> ", "experiment.toml"],
        source="loop.toml",
        base=False,
        steps=None,
        files={"loop.toml": 'extends = "experiment.toml"\n'},
    ),
    "missing_plugin_file": Case(
        'plugins = ["nope.py"]\n', ["plugins[0]: plugin file not found", "nope.py"]
    ),
    "plugin_syntax_error": Case(
        'plugins = ["broken.py"]\n',
        ["plugins[0]: plugin 'broken.py' failed to import: SyntaxError"],
        files={"broken.py": "def broken(:\n    pass\n"},
    ),
    "plugin_module_missing": Case(
        'plugins = ["no_such_marketsim_plugin"]\n',
        ["plugins[0]: plugin 'no_such_marketsim_plugin' not found"],
    ),
    "plugin_unknown_hook": Case(
        'plugins = ["typo.py"]\n',
        ["plugins[0]: plugin 'typo.py' is not valid", "marketsim_step_ends"],
        files={"typo.py": UNKNOWN_HOOK_PLUGIN},
    ),
    "plugin_registers_good_twice": Case(
        'plugins = ["dup.py"]\n',
        ["dup.py", "'accelerators' is registered twice", "marketsim.builtin"],
        source=None,
        files={"dup.py": DUPLICATE_GOOD_PLUGIN},
    ),
    "malformed_set": Case(
        "",
        ["malformed override 'experimentsteps6'", "expected dotted.key=value"],
        source="--set",
        args=["--set", "experimentsteps6"],
    ),
    "set_into_a_value": Case(
        "",
        ["experiment.name.x", "experiment.name is 'baseline', not a table"],
        source="--set",
        args=["--set", "experiment.name.x=1"],
    ),
    "set_out_of_range": Case(
        "",
        ["experiment.steps: must be >= 1 and <= 100000, got 0"],
        source="--set",
        args=["--set", "experiment.steps=0"],
    ),
    "steps_zero": Case(
        "[experiment]\nsteps = 0\n",
        ["experiment.steps: must be >= 1 and <= 100000, got 0"],
        steps=None,
    ),
    "regions_not_a_list": Case(
        '[graph]\nregions = "us"\n', ["graph.regions: expected a list of strings, got 'us'"]
    ),
    "restriction_unknown_region": Case(
        '[graph]\nrestrictions = [{good = "accelerators", from_region = "us", '
        'to_region = "mars"}]\n',
        ["graph.restrictions[0].to_region: must be one of 'us', 'eu', 'asia', got 'mars'"],
    ),
    "restriction_unknown_good": Case(
        '[graph]\nrestrictions = [{good = "gpus", from_region = "us", to_region = "eu"}]\n',
        ["graph.restrictions[0].good: must be one of", "got 'gpus'"],
    ),
    "buyer_without_seller": Case(
        '[experiment]\nname = "orphan"\n\n[agents.inference]\ncount = 1\n\n'
        "[agents.end_demand]\ncount = 1\n",
        ["agents.inference: buys 'compute' but no sector", "sells it", "agents.datacenter"],
        base=False,
        steps=None,
    ),
    "not_utf8": Case(
        "",
        ["not UTF-8 text"],
        files={"experiment.toml": b'x = "\xe9"\n'},
        base=False,
        steps=None,
        write=False,
    ),
    "experiment_file_missing": Case("", ["file not found"], write=False),
    "bad_value_in_base_file": Case(
        'extends = "bases/parent.toml"\n',
        ["agents.utility.capacity_mw: must be > 0 and <= 1e+07, got 0"],
        source="bases/parent.toml",
        base=False,
        files={
            "bases/parent.toml": 'extends = "@BASELINE@"\n'
            "experiment.steps = 6\n[agents.utility]\ncapacity_mw = 0\n"
        },
    ),
    # --- bounds: counts and the memory budget (issue item 4) ---
    "count_beyond_bound": Case(
        "",
        ["agents.network_vendor.count: must be >= 0 and <= 1_000_000, got 10000000000"],
        source="--set",
        args=["--set", "agents.network_vendor.count=10000000000"],
    ),
    "segments_beyond_memory_budget": Case(
        "",
        ["agents: expected an experiment that fits in 8 GiB", "10,000,000 segments", "GiB"],
        args=["--set", "agents.end_demand.count=10000000"],
    ),
    "edges_beyond_memory_budget": Case(
        "",
        ["agents: expected an experiment that fits in 8 GiB", "supply-graph edges"],
        args=[
            "--set",
            "agents.end_demand.count=3000000",
            "--set",
            "agents.inference.count=1000",
            "--set",
            "graph.buyer_degree=1000",
        ],
    ),
    "steps_times_replications_beyond_budget": Case(
        "",
        ["experiment: expected an experiment that fits in 8 GiB", "1,000,000,000 steps"],
        steps=None,
        args=["--set", "experiment.steps=100000", "--set", "experiment.replications=10000"],
    ),
    # --- bounds: magnitudes and integers (issue items 6 and 12) ---
    "collateral_sensitivity_1e100": Case(
        "",
        ["finance.collateral_sensitivity: must be >= 0 and <= 10, got 1e+100"],
        source="--set",
        args=["--set", "finance.collateral_sensitivity=1e100"],
    ),
    "integer_of_400_digits": Case(
        "[agents.utility]\nasset_life_months = " + "1" * 400 + "\n",
        [
            "agents.utility.asset_life_months: expected an integer from -2^63 to 2^63-1 "
            "(64 bits), got an integer of 400 digits"
        ],
    ),
    "integer_of_5000_digits": Case(
        "[agents.utility]\nasset_life_months = " + "1" * 5000 + "\n",
        ["invalid TOML: expected 64-bit integers, got a number too long to read"],
    ),
    "brock_hommes_beyond_range": Case(
        "",
        ["agents.investor.inflow_sensitivity: must be >= 0 and <= 10, got 30.01"],
        source="--set",
        args=[
            "--set",
            "agents.investor.inflow_sensitivity=30.01",
            "--set",
            "agents.investor.trend_coefficient=4.39",
            "--set",
            "agents.investor.fundamentalist_cost=4.30",
        ],
    ),
    "near_float_max_stops_before_numpy": Case(
        "[agents.utility]\ncapacity_mw = 1.7e308\n",
        ["agents.utility.capacity_mw: must be > 0 and <= 1e+07, got 1.7e+308"],
    ),
    "seed_beyond_64_bits": Case(
        "experiment.seed = 18446744073709551616\n",
        ["experiment.seed: expected an integer from -2^63 to 2^63-1"],
    ),
    "nul_in_output_dir": Case(
        '[output]\ndir = "a\\u0000b"\n', ["output.dir: expected text without NUL characters"]
    ),
    # --- bounds: nesting (issue item 6) ---
    "array_2000_deep_in_file": Case(
        "x = " + "[" * 2000 + "]" * 2000 + "\n",
        ["expected tables and arrays nested at most 32 deep"],
    ),
    "array_40_deep_in_file": Case(
        "x = " + "[" * 40 + "]" * 40 + "\n",
        ["x" + "[0]" * 32 + ": expected tables and arrays nested at most 32 deep"],
    ),
    "dotted_key_3000_deep_in_file": Case(
        ".".join(["a"] * 3000) + " = 1\n",
        ["expected tables and arrays nested at most 32 deep"],
    ),
    "inline_tables_500_deep_in_file": Case(
        "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
        ["expected tables and arrays nested at most 32 deep"],
    ),
    "array_2000_deep_in_set": Case(
        "",
        ["--set: x: expected tables and arrays nested at most 32 deep"],
        source="--set",
        args=["--set", "x=" + "[" * 2000 + "]" * 2000],
    ),
    "array_40_deep_in_set": Case(
        "",
        ["expected tables and arrays nested at most 32 deep"],
        source="--set",
        args=["--set", "notes.x=" + "[" * 40 + "]" * 40],
    ),
    "key_3000_deep_in_set": Case(
        "",
        ["expected tables and arrays nested at most 32 deep"],
        source="--set",
        args=["--set", ".".join(["a"] * 3000) + "=1"],
    ),
    # --- files and names (issue items 7 and 15) ---
    "extends_empty_string": Case(
        'extends = ""\n',
        ["extends: expected a string naming a TOML file (relative to this file), got an empty"],
        base=False,
        steps=None,
    ),
    "extends_a_directory": Case(
        'extends = "bases"\n',
        ["extends: expected a regular file (a TOML file), got a directory"],
        base=False,
        steps=None,
        files={"bases/parent.toml": ""},
    ),
    "extends_a_device": Case(
        'extends = "/dev/null"\n',
        ["extends: expected a regular file (a TOML file), got a character device: /dev/null"],
        base=False,
        steps=None,
    ),
    "experiment_file_too_big": Case(
        "# padding\n" * 500_000, ["expected an experiment file of at most 4,194,304 bytes"]
    ),
    "name_of_250_characters": Case(
        "experiment.name = " + '"' + "a" * 250 + '"\n',
        ["experiment.name: expected at most 100 characters", "got 250"],
    ),
    "newline_in_key_stays_one_line": Case(
        '[agents.utility]\n"cap\\nacity" = 1\n',
        ["agents.utility.cap\\nacity: unknown key 'cap\\nacity'"],
    ),
    "line_separator_in_key_stays_one_line": Case(
        '[agents.utility]\n"a\\u2028b" = 1\n', ["agents.utility.a\\u2028b: unknown key"]
    ),
    # --- plugin tables (issue item 6) ---
    "plugin_table_nan_default": Case(
        'plugins = ["knobs.py"]\n',
        [
            "plugins: plugin 'knobs.py': config table [knobs], key 'k': default must be a "
            "finite number, got nan"
        ],
        files={"knobs.py": NAN_DEFAULT_PLUGIN},
    ),
    "plugin_table_default_out_of_range": Case(
        'plugins = ["knobs.py"]\n',
        ["plugin 'knobs.py': config table [knobs], key 'share': default must be >= 0 and <= 1"],
        files={"knobs.py": OUT_OF_RANGE_DEFAULT_PLUGIN},
    ),
    "plugin_table_nan_bound": Case(
        'plugins = ["knobs.py"]\n',
        ["plugin 'knobs.py': config table [knobs], key 'k': bound le must be a finite number"],
        files={"knobs.py": NAN_BOUND_PLUGIN},
    ),
    "plugin_raises_in_hook": Case(
        'plugins = ["hooks/boom.py"]\n',
        ["plugin 'hooks/boom.py' raised in hook marketsim_step_end", "RuntimeError: boom"],
        source=None,
        files={"hooks/boom.py": BOOM_PLUGIN},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_broken_experiment_is_one_line_and_writes_nothing(
    case, write_experiment, tmp_path, baseline_path
):
    """A broken experiment exits 2 with one line naming where and what, and writes nothing."""
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("@BASELINE@", baseline_path.as_posix()))
    experiment = tmp_path / "experiment.toml"
    if case.write:
        experiment = write_experiment(case.text, base=case.base, steps=case.steps)
    out = tmp_path / "out"
    before = set(tmp_path.iterdir())

    result = CliRunner().invoke(cli, ["run", str(experiment), "--out", str(out), *case.args])

    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    if case.source == "FILE":
        assert line.startswith(f"error: {experiment}: "), line
    elif case.source is not None:
        source = case.source if case.source == "--set" else str(tmp_path / case.source)
        assert line.startswith(f"error: {source}: "), line
    for text in case.expect:
        assert text in line, f"{text!r} not in {line!r}"
    assert not out.exists()
    assert set(tmp_path.iterdir()) == before, "a partial output was left behind"


def test_usage_errors_are_one_line(short_baseline, tmp_path):
    """An option out of click's range exits 2 with one line naming the option; no output."""
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "marketsim",
            "run",
            str(short_baseline),
            "--steps",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: marketsim run: ") and "--steps" in lines[0]
    assert not out.exists()


def test_output_path_is_a_file(short_baseline, tmp_path):
    """--out naming an existing file exits 2 and leaves the file alone."""
    out = tmp_path / "results"
    out.write_text("keep me")
    result = CliRunner().invoke(cli, ["run", str(short_baseline), "--out", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert out.read_text() == "keep me"


def test_interrupt_writes_nothing(write_experiment, tmp_path):
    """An interrupted run exits 130, says nothing was written, and leaves no directory."""
    (tmp_path / "stop.py").write_text(INTERRUPT_PLUGIN)
    path = write_experiment('plugins = ["stop.py"]\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 130
    assert result.stderr.splitlines() == ["interrupted: nothing was written"]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.toml", "stop.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("named_by", ["command", "extends"])
def test_fifo_is_refused_without_being_opened(tmp_path, named_by):
    """A FIFO, as the experiment or as its base, is one line and exit 2, never a hang.

    Run in a subprocess: opening a FIFO would wait for a writer forever, so a regression
    shows as the (generous) timeout expiring rather than as a hung test session.
    """
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    experiment = fifo
    if named_by == "extends":
        experiment = tmp_path / "experiment.toml"
        experiment.write_text('extends = "pipe.toml"\n', encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "marketsim", "run", str(experiment), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {experiment}: extends: expected a regular file (a TOML file), got a FIFO "
        f"(named pipe): {fifo}"
        if named_by == "extends"
        else f"error: {fifo}: expected a regular file (a TOML file), got a FIFO (named pipe)"
    ]
    assert not out.exists()
