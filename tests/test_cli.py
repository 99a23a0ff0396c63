"""End-to-end tests of the command line: run, validate, graph, plugins."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from datetime import datetime

import networkx as nx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from marketsim.cli import cli
from marketsim.config import experiment_sha256
from marketsim.experiment import load_experiment

SECTOR_COLUMNS = {
    "replication",
    "step",
    "sector",
    "revenue",
    "cost_of_goods",
    "gross_profit",
    "gross_margin",
    "operating_margin",
    "capex",
    "net_income",
    "cash",
    "capacity",
    "utilization",
}
MARKET_COLUMNS = {"replication", "step", "market", "price", "quantity", "demand", "supply"}
VERSIONED = ("marketsim", "python", "numpy", "numba", "mesa", "networkx")


def invoke(*args: str):
    """Run the CLI in-process and return click's result (stdout and stderr apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result) -> str:
    """The single stderr line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(directory):
    """Bytes and modification time of every file in ``directory``."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


@pytest.fixture(scope="module")
def layout(baseline_path) -> dict:
    """What the baseline holds: firm sectors (rows of sectors), all sectors, markets, members
    (incumbents and potential entrants, each a row of firms.parquet)."""
    experiment = load_experiment(baseline_path)
    present = experiment.sector_names()
    agents = experiment.config["agents"]
    return {
        "firm_sectors": {n for n in present if experiment.components.sectors[n].has_accounts},
        "sectors": set(present),
        "markets": set(experiment.config["markets"]),
        "members": sum(
            agents[n]["count"] + agents[n].get("potential_entrants", 0) for n in present
        ),
        "incumbents": sum(agents[n]["count"] for n in present),
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, baseline_path):
    """Results of a 6-step baseline run with firm-level output (one run for the module)."""
    out = tmp_path_factory.mktemp("cli") / "out"
    result = invoke(
        "run",
        baseline_path,
        "--steps",
        "6",
        "--out",
        out,
        "--quiet",
        "--set",
        "output.firm_level=true",
    )
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_manifest_and_tables(run_dir):
    """A run writes the manifest and the four tables, and nothing else."""
    names = {p.name for p in run_dir.iterdir()}
    assert names == {
        "manifest.json",
        "sectors.parquet",
        "markets.parquet",
        "chain.parquet",
        "firms.parquet",
    }


def test_firms_table_only_when_asked(short_baseline, tmp_path):
    """Without output.firm_level no firms.parquet is written."""
    out = tmp_path / "out"
    result = invoke("run", short_baseline, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert not (out / "firms.parquet").exists()
    assert (out / "sectors.parquet").exists()


def test_tables_have_columns_and_rows(run_dir, layout):
    """Tables hold the documented columns and one row per step and sector/market/firm."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    sectors = pq.read_table(run_dir / "sectors.parquet").to_pandas()
    markets = pq.read_table(run_dir / "markets.parquet").to_pandas()
    chain = pq.read_table(run_dir / "chain.parquet").to_pandas()
    firms = pq.read_table(run_dir / "firms.parquet").to_pandas()
    assert set(sectors.columns) >= SECTOR_COLUMNS
    assert set(markets.columns) >= MARKET_COLUMNS
    assert set(firms.columns) >= {"replication", "step", "firm", "sector"}
    assert set(sectors["sector"]) == layout["firm_sectors"] >= {"utility", "datacenter"}
    assert set(markets["market"]) == layout["markets"] >= {"power", "compute", "tokens"}
    assert len(sectors) == 6 * len(layout["firm_sectors"])
    assert len(markets) == 6 * len(layout["markets"])
    assert len(chain) == 6
    assert len(firms) == 6 * layout["members"]
    assert set(manifest["experiment"]["agents"]) == layout["sectors"]
    assert sorted(chain["step"]) == list(range(6))


@pytest.mark.parametrize("table", ["sectors", "markets", "chain", "firms"])
def test_no_nan_or_inf_written(run_dir, table):
    """Float columns hold no NaN and no inf: undefined values are written as null."""
    data = pq.read_table(run_dir / f"{table}.parquet")
    for name in data.column_names:
        column = data[name]
        if pa.types.is_floating(column.type):
            assert pc.sum(pc.is_nan(column)).as_py() in (0, None), f"{table}.{name} has NaN"
            assert pc.sum(pc.is_inf(column)).as_py() in (0, None), f"{table}.{name} has inf"


def test_manifest_records_experiment_and_versions(run_dir):
    """The manifest holds the resolved experiment, its hash, seed, steps, times, versions."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    experiment = manifest["experiment"]
    assert experiment["finance"]["interest_rate_per_year"] == pytest.approx(0.06)
    assert experiment["output"]["firm_level"] is True
    digest = manifest["experiment_sha256"]
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert digest == experiment_sha256(experiment)
    assert manifest["seed"] == experiment["experiment"]["seed"] == 2025
    assert manifest["steps"] == 6
    started = datetime.fromisoformat(manifest["started"])
    finished = datetime.fromisoformat(manifest["finished"])
    assert started <= finished
    for name in VERSIONED:
        assert manifest["versions"][name] not in ("", "unknown", None), name
    assert "marketsim.builtin" in [plugin["name"] for plugin in manifest["plugins"]]


def test_rerun_into_results_is_refused_and_keeps_them(short_baseline, tmp_path):
    """Running into existing results exits 2 naming --overwrite and leaves them untouched."""
    out = tmp_path / "out"
    assert invoke("run", short_baseline, "--out", out, "--quiet").exit_code == 0
    before = snapshot(out)
    line = one_line_error(invoke("run", short_baseline, "--out", out, "--seed", "9"))
    assert "--overwrite" in line and str(out) in line
    assert snapshot(out) == before


def test_overwrite_replaces_results(short_baseline, tmp_path):
    """With --overwrite a second run replaces the results (the manifest shows the new seed)."""
    out = tmp_path / "out"
    assert invoke("run", short_baseline, "--out", out, "--quiet").exit_code == 0
    result = invoke("run", short_baseline, "--out", out, "--quiet", "--seed", "9", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["seed"] == 9
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_non_results_directory_is_never_replaced(short_baseline, tmp_path):
    """A non-empty directory without a manifest is refused even with --overwrite."""
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    line = one_line_error(invoke("run", short_baseline, "--out", out, "--overwrite"))
    assert str(out) in line and "not empty" in line
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    assert (out / "chapter1.tex").read_text() == "precious"


def test_seed_steps_and_set_reach_the_manifest(short_baseline, tmp_path):
    """--seed, --steps and --set change the experiment that runs and is recorded."""
    out = tmp_path / "out"
    result = invoke(
        "run",
        short_baseline,
        "--out",
        out,
        "--quiet",
        "--seed",
        "11",
        "--steps",
        "3",
        "--set",
        "agents.utility.count=2",
        "--set",
        "finance.tax_rate=0.3",
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == manifest["experiment"]["experiment"]["seed"] == 11
    assert manifest["steps"] == 3
    assert manifest["experiment"]["agents"]["utility"]["count"] == 2
    assert manifest["experiment"]["finance"]["tax_rate"] == pytest.approx(0.3)
    assert len(pq.read_table(out / "chain.parquet")) == 3


def test_quiet_prints_nothing(short_baseline, tmp_path):
    """--quiet prints nothing on stdout; without it a summary names the directory."""
    quiet = invoke("run", short_baseline, "--out", tmp_path / "a", "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    loud = invoke("run", short_baseline, "--out", tmp_path / "b")
    assert loud.exit_code == 0
    assert str(tmp_path / "b") in loud.stdout and "datacenter" in loud.stdout


def test_validate_prints_resolved_toml(write_experiment):
    """validate prints TOML that parses and fills in defaults the file did not give."""
    path = write_experiment(
        '[experiment]\nname = "mini"\n\n[agents.chip_vendor]\ncount = 1\n', base=False, steps=None
    )
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output
    resolved = tomllib.loads(result.stdout)
    assert resolved["finance"]["interest_rate_per_year"] == pytest.approx(0.06)
    assert resolved["experiment"]["steps"] == 120
    assert resolved["agents"]["chip_vendor"]["count"] == 1
    assert "datacenter" not in resolved["agents"]


def test_validate_output_is_the_same_experiment(short_baseline, tmp_path):
    """The TOML validate prints is itself valid and resolves to the same sha256."""
    first = invoke("validate", short_baseline)
    assert first.exit_code == 0, first.output
    digest = first.stdout.splitlines()[0].split("sha256 ")[1].rstrip(")")
    dumped = tmp_path / "resolved.toml"
    dumped.write_text(first.stdout)
    second = invoke("validate", dumped)
    assert second.exit_code == 0, second.output
    assert f"sha256 {digest}" in second.stdout.splitlines()[0]
    assert tomllib.loads(second.stdout) == tomllib.loads(first.stdout)


def test_validate_hash_matches_the_run(short_baseline, tmp_path):
    """validate with --set reports the sha256 the run records in its manifest."""
    checked = invoke("validate", short_baseline, "--set", "agents.datacenter.count=5")
    assert checked.exit_code == 0, checked.output
    assert tomllib.loads(checked.stdout)["agents"]["datacenter"]["count"] == 5
    out = tmp_path / "out"
    ran = invoke("run", short_baseline, "--out", out, "-q", "--set", "agents.datacenter.count=5")
    assert ran.exit_code == 0, ran.output
    digest = json.loads((out / "manifest.json").read_text())["experiment_sha256"]
    assert f"(sha256 {digest})" in checked.stdout.splitlines()[0]


def test_default_output_directory(write_experiment, tmp_path, monkeypatch):
    """Without --out results go to [output] dir, else to results/<name>, from the cwd."""
    monkeypatch.chdir(tmp_path)
    plain = write_experiment(name="plain.toml")
    assert invoke("run", plain, "-q").exit_code == 0
    assert (tmp_path / "results" / "baseline" / "manifest.json").exists()
    routed = write_experiment('[output]\ndir = "elsewhere/run1"\n', name="routed.toml")
    assert invoke("run", routed, "-q").exit_code == 0
    assert (tmp_path / "elsewhere" / "run1" / "manifest.json").exists()


def test_out_dot_writes_into_the_empty_cwd(short_baseline, tmp_path, monkeypatch):
    """--out . in an empty working directory writes the results there."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = invoke("run", short_baseline, "--out", ".", "-q")
    assert result.exit_code == 0, repr(result.exception)
    assert (here / "manifest.json").exists()


def test_validate_invalid_file_is_one_line(write_experiment):
    """validate on a broken file exits 2 with one line naming the key."""
    path = write_experiment("[agents.utility]\ncapacity_mw = -5\n")
    line = one_line_error(invoke("validate", path))
    assert str(path) in line and "agents.utility.capacity_mw" in line
    assert "must be > 0" in line and line.endswith("got -5")


def test_graph_writes_graphml(short_baseline, tmp_path, layout):
    """graph writes GraphML with sector and region on nodes and good on edges."""
    out = tmp_path / "g.graphml"
    result = invoke("graph", short_baseline, "--out", out)
    assert result.exit_code == 0, result.output
    graph = nx.read_graphml(out)
    assert graph.is_directed()
    sectors = {data["sector"] for _, data in graph.nodes(data=True)}
    assert sectors == layout["sectors"]
    assert {data["region"] for _, data in graph.nodes(data=True)} == {"us", "eu", "asia"}
    assert {data["good"] for _, _, data in graph.edges(data=True)} == layout["markets"]
    for seller, buyer in graph.edges():
        assert graph.nodes[seller]["sector"] != graph.nodes[buyer]["sector"]
    # potential entrants are not nodes: each copies an incumbent's links when the model is built
    assert graph.number_of_nodes() == layout["incumbents"]


def test_graph_respects_restrictions(write_experiment, tmp_path):
    """A restriction removes every edge of that good from sellers in one region to another."""
    path = write_experiment(
        '[graph]\nrestrictions = [{good = "accelerators", from_region = "us", to_region = "eu"}]\n'
    )
    out = tmp_path / "g.graphml"
    assert invoke("graph", path, "--out", out).exit_code == 0
    graph = nx.read_graphml(out)
    regions = nx.get_node_attributes(graph, "region")
    accelerators = [(u, v) for u, v, d in graph.edges(data=True) if d["good"] == "accelerators"]
    into_eu = [(u, v) for u, v in accelerators if regions[v] == "eu"]
    assert into_eu, "eu buyers should still buy accelerators from other regions"
    assert [(u, v) for u, v in into_eu if regions[u] == "us"] == []


def test_graph_refuses_to_overwrite(short_baseline, tmp_path):
    """graph refuses an existing file without --overwrite and replaces it with it."""
    out = tmp_path / "g.graphml"
    out.write_text("not a graph")
    line = one_line_error(invoke("graph", short_baseline, "--out", out))
    assert "--overwrite" in line
    assert out.read_text() == "not a graph"
    assert invoke("graph", short_baseline, "--out", out, "--overwrite").exit_code == 0
    assert nx.read_graphml(out).number_of_nodes() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.graphml", "short.toml"]


def test_plugins_lists_builtin_and_hooks():
    """plugins lists the built-in plugin and the hooks it implements."""
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    assert "marketsim.builtin" in result.stdout
    for hook in (
        "marketsim_register_sectors",
        "marketsim_register_goods",
        "marketsim_register_mechanisms",
        "marketsim_register_metrics",
        "marketsim_register_config_tables",
    ):
        assert hook in result.stdout


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["graph"], ["plugins"]])
def test_help_on_every_command(command):
    """--help works on the group and every command."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_python_m_marketsim_help():
    """python -m marketsim --help works and lists the commands."""
    done = subprocess.run(
        [sys.executable, "-m", "marketsim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for command in ("run", "validate", "graph", "plugins"):
        assert command in done.stdout


def test_subprocess_user_error_has_no_traceback(write_experiment, tmp_path):
    """A real process given a broken file exits 2 with one stderr line and writes nothing."""
    path = write_experiment('[agents.utility]\ncapacity_mw = "lots"\n')
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "marketsim", "run", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: {path}: agents.utility.capacity_mw: expected a number, got 'lots'"
    ]
    assert done.stdout == ""
    assert not out.exists()


def test_subprocess_run_succeeds(short_baseline, tmp_path):
    """A real process runs the short baseline, exits 0 and writes finite cash totals."""
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "marketsim", "run", str(short_baseline), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    cash = pq.read_table(out / "sectors.parquet")["cash"].to_pylist()
    assert cash and all(math.isfinite(value) for value in cash)
