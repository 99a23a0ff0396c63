"""Plugins: what a plugin registers or does through each hook reaches the results."""

from __future__ import annotations

import inspect
import json
import tomllib
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import marketsim
from marketsim import hookspecs
from marketsim.cli import cli

TESTS = Path(__file__).resolve().parent

KNOB_PLUGIN = '''\
"""Scales compute demand before the compute market clears; a knob table; two metrics."""
import marketsim
from marketsim import MetricSpec
from marketsim import Param
from marketsim import TableSchema

__version__ = "1.2.3"

KNOB = TableSchema(
    params={"compute_demand_scale": Param(float, 1.0, "multiplier on compute demand", gt=0)},
    doc="A policy knob.",
)


@marketsim.hookimpl
def marketsim_register_config_tables(register):
    register("knob", KNOB)


@marketsim.hookimpl
def marketsim_register_metrics(register):
    register(MetricSpec("chain", "my_metric", lambda m: 1.0))
    register(MetricSpec("chain", "knob_scale",
                        lambda m: m.experiment["knob"]["compute_demand_scale"], "ratio"))


@marketsim.hookimpl
def marketsim_before_clear(model, market):
    if market.name == "compute":
        market.book.buyer_demand *= model.experiment["knob"]["compute_demand_scale"]
'''

IDLE_SECTOR_PLUGIN = '''\
"""A sector of funds that hold cash and trade nothing."""
import marketsim
from marketsim.sectors.base import firm_schema


class IdleFund(marketsim.Sector):
    name = "idle_fund"
    doc = "Funds holding cash."
    schema = firm_schema(doc, {})


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(IdleFund)
'''

PRICE_CAP_PLUGIN = '''\
"""Posted-price clearing with a price ceiling."""
import numpy as np

import marketsim
from marketsim import Param
from marketsim.markets.mechanisms import POSTED_PRICE
from marketsim.markets.mechanisms import clear_posted_price


def clear(book, params):
    capped = marketsim.MarketBook(**{**vars(book),
                                    "seller_price": np.minimum(book.seller_price,
                                                               params["cap_usd"])})
    posted = {k: v for k, v in params.items() if k != "cap_usd"}
    return clear_posted_price(capped, posted)


@marketsim.hookimpl
def marketsim_register_mechanisms(register):
    schema = POSTED_PRICE.schema.merged(marketsim.TableSchema(
        params={"cap_usd": Param(float, 1e9, "price ceiling", gt=0)}))
    register(marketsim.MechanismSpec("capped_posted_price", clear, schema))
'''

NEW_GOOD_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_register_goods(register):
    register(marketsim.GoodSpec("carbon_credits", "tCO2", "USD per tCO2"))
"""

CUT_VENDOR_PLUGIN = '''\
"""Export controls by hand: chip vendor 0 loses every customer."""
import marketsim


@marketsim.hookimpl
def marketsim_modify_graph(graph, experiment):
    graph.remove_edges_from(list(graph.out_edges("chip_vendor:0")))
'''

OBSERVER_PLUGIN = '''\
"""Keeps what it sees after each clearing and at the end of each replication."""
import marketsim

SEEN = []
FINISHED = []


@marketsim.hookimpl
def marketsim_after_clear(model, market, outcome):
    SEEN.append((model.replication, model.step_index, market.name, outcome.price,
                 float(outcome.seller_sold.sum())))


@marketsim.hookimpl
def marketsim_run_finished(model, results):
    FINISHED.append((model.replication, model.step_index, results.chain.copy()))
'''


def write_plugin(tmp_path, name: str, source: str) -> None:
    """Write a plugin file next to the experiments."""
    (tmp_path / name).write_text(source)


def run_cli(*args) -> object:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def baseline_run(baseline_path) -> marketsim.Results:
    """The 6-step baseline without plugins, to compare against."""
    return marketsim.run(marketsim.load_experiment(baseline_path, ["experiment.steps=6"]))


def compute(markets: pd.DataFrame) -> pd.DataFrame:
    """The compute market's rows."""
    return markets[markets["market"] == "compute"].reset_index(drop=True)


# -- config tables, metrics and before_clear ----------------------------------------------


def test_plugin_table_unknown_key_suggests(write_experiment, tmp_path):
    """An unknown key in a plugin's table exits 2 with a did-you-mean."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    path = write_experiment('plugins = ["knob.py"]\n[knob]\ncompute_demand_scal = 2\n')
    result = run_cli("run", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: knob.compute_demand_scal: unknown key 'compute_demand_scal' "
        "(did you mean 'compute_demand_scale'?)"
    ]
    assert not (tmp_path / "out").exists()


def test_plugin_table_is_range_checked(write_experiment, tmp_path):
    """A plugin table's value out of its range exits 2 naming the key and the bound."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    path = write_experiment('plugins = ["knob.py"]\n[knob]\ncompute_demand_scale = 0\n')
    result = run_cli("validate", path)
    assert result.exit_code == 2
    assert "knob.compute_demand_scale: must be > 0, got 0" in result.stderr


def test_plugin_table_value_and_metrics_reach_results(write_experiment, tmp_path):
    """A plugin's table value reaches the plugin and its metrics become chain columns."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    path = write_experiment('plugins = ["knob.py"]\n[knob]\ncompute_demand_scale = 0.5\n')
    out = tmp_path / "out"
    result = run_cli("run", path, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    chain = pd.read_parquet(out / "chain.parquet")
    assert (chain["my_metric"] == 1.0).all()
    assert (chain["knob_scale"] == 0.5).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["experiment"]["knob"] == {"compute_demand_scale": 0.5}
    assert manifest["units"]["chain"]["knob_scale"] == "ratio"
    knob = [p for p in manifest["plugins"] if p["name"] == "knob.py"]
    assert len(knob) == 1 and knob[0]["version"] == "1.2.3" and knob[0]["source"] == "experiment"
    assert len(knob[0]["sha256"]) == 64


def test_before_clear_changes_what_trades(write_experiment, tmp_path, baseline_run):
    """Halving compute demand before clearing halves step-0 demand and changes trade."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    path = write_experiment('plugins = ["knob.py"]\n[knob]\ncompute_demand_scale = 0.5\n')
    scaled = compute(marketsim.run(marketsim.load_experiment(path)).markets)
    base = compute(baseline_run.markets)
    assert scaled.loc[0, "demand"] == pytest.approx(0.5 * base.loc[0, "demand"], rel=1e-12)
    assert not np.allclose(scaled["quantity"], base["quantity"])


def test_neutral_plugin_changes_nothing(write_experiment, tmp_path, baseline_run):
    """With its knob at 1 the plugin leaves every built-in column as in the baseline."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    path = write_experiment('plugins = ["knob.py"]\n')
    results = marketsim.run(marketsim.load_experiment(path))
    pd.testing.assert_frame_equal(results.markets, baseline_run.markets, check_exact=True)
    pd.testing.assert_frame_equal(results.sectors, baseline_run.sectors, check_exact=True)
    builtin = list(baseline_run.chain.columns)
    pd.testing.assert_frame_equal(results.chain[builtin], baseline_run.chain, check_exact=True)


CLASH_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_register_metrics(register):
    register(marketsim.MetricSpec("chain", "step", lambda m: 99.0))
"""


def test_metric_cannot_replace_a_key_column(write_experiment, tmp_path):
    """A plugin metric named like a key column (step) is refused, not written over it."""
    write_plugin(tmp_path, "clash.py", CLASH_PLUGIN)
    path = write_experiment('plugins = ["clash.py"]\n')
    out = tmp_path / "out"
    result = run_cli("run", path, "--out", out, "-q")
    written = pd.read_parquet(out / "chain.parquet")["step"].tolist() if out.exists() else None
    assert result.exit_code == 2, f"run succeeded and wrote chain.step = {written}"
    assert "step" in result.stderr and len(result.stderr.splitlines()) == 1


def test_plugins_command_lists_experiment_plugins(write_experiment, tmp_path):
    """plugins FILE lists the experiment's plugin with its version, source and hooks."""
    write_plugin(tmp_path, "knob.py", KNOB_PLUGIN)
    result = run_cli("plugins", write_experiment('plugins = ["knob.py"]\n'))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "knob.py  1.2.3  (experiment)" in lines
    after = lines[lines.index("knob.py  1.2.3  (experiment)") + 1 :]
    assert [line.strip() for line in after[:3]] == [
        "marketsim_before_clear",
        "marketsim_register_config_tables",
        "marketsim_register_metrics",
    ]


def test_plugin_path_is_relative_to_the_file_naming_it(tmp_path, baseline_path):
    """A plugin named in a base file is found next to that base file when extended."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "mine").mkdir()
    write_plugin(tmp_path / "shared", "knob.py", KNOB_PLUGIN)
    (tmp_path / "shared" / "policy.toml").write_text(
        f'extends = "{baseline_path.as_posix()}"\nplugins = ["knob.py"]\n'
        "[knob]\ncompute_demand_scale = 0.5\n"
    )
    child = tmp_path / "mine" / "short.toml"
    child.write_text('extends = "../shared/policy.toml"\nexperiment.steps = 6\n')
    result = run_cli("validate", child)
    assert result.exit_code == 0, result.stderr
    assert tomllib.loads(result.stdout)["knob"]["compute_demand_scale"] == 0.5


# -- goods, sectors, mechanisms ------------------------------------------------------------


def test_registered_good_is_a_known_market(write_experiment, tmp_path):
    """A good registered by a plugin may be configured under [markets]; without it, not."""
    write_plugin(tmp_path, "carbon.py", NEW_GOOD_PLUGIN)
    text = '[markets.carbon_credits]\nmechanism = "call_auction"\n'
    without = run_cli("validate", write_experiment(text, name="without.toml"))
    assert without.exit_code == 2
    assert "markets.carbon_credits: unknown market 'carbon_credits'" in without.stderr
    with_plugin = write_experiment('plugins = ["carbon.py"]\n' + text, name="with.toml")
    assert run_cli("validate", with_plugin).exit_code == 0


def test_registered_sector_runs_alongside(write_experiment, tmp_path, baseline_run):
    """A plugin sector appears in the sectors table; a passive one changes no first-step trade."""
    write_plugin(tmp_path, "idle.py", IDLE_SECTOR_PLUGIN)
    path = write_experiment(
        'plugins = ["idle.py"]\n[agents.idle_fund]\ncount = 2\ninitial_cash_usd = 1e6\n'
        "cash_dispersion = 0.0\n"
    )
    results = marketsim.run(marketsim.load_experiment(path))
    sectors = results.sectors
    idle = sectors[sectors["sector"] == "idle_fund"]
    assert len(idle) == 6
    assert (idle["cash"] == 2e6).all() and (idle["revenue"] == 0).all()
    assert idle["gross_margin"].isna().all()
    assert set(sectors["sector"]) == set(baseline_run.sectors["sector"]) | {"idle_fund"}
    first = results.markets[results.markets["step"] == 0]
    base_first = baseline_run.markets[baseline_run.markets["step"] == 0]
    pd.testing.assert_frame_equal(first, base_first, check_exact=True)


def test_registered_sector_is_validated(write_experiment, tmp_path):
    """A plugin sector's table is checked like a built-in one (did-you-mean on keys)."""
    write_plugin(tmp_path, "idle.py", IDLE_SECTOR_PLUGIN)
    path = write_experiment('plugins = ["idle.py"]\n[agents.idle_fund]\ncont = 2\n')
    result = run_cli("validate", path)
    assert result.exit_code == 2
    assert "agents.idle_fund.cont: unknown key 'cont' (did you mean 'count'?)" in result.stderr


def test_registered_mechanism_clears_a_market(write_experiment, tmp_path, baseline_run):
    """A plugin mechanism chosen for compute caps the price paid; its parameters are checked."""
    write_plugin(tmp_path, "cap.py", PRICE_CAP_PLUGIN)
    text = 'plugins = ["cap.py"]\n[markets.compute]\nmechanism = "capped_posted_price"\n'
    capped = marketsim.run(marketsim.load_experiment(write_experiment(text + "cap_usd = 1.5\n")))
    prices = compute(capped.markets)["price"]
    assert (prices <= 1.5 + 1e-12).all()
    assert (compute(baseline_run.markets)["price"] > 1.5).all()
    loose = marketsim.run(marketsim.load_experiment(write_experiment(text, name="loose.toml")))
    pd.testing.assert_frame_equal(loose.markets, baseline_run.markets, check_exact=True)
    bad = run_cli("validate", write_experiment(text + "cap_usd = -1\n", name="bad.toml"))
    assert bad.exit_code == 2
    assert "markets.compute.cap_usd: must be > 0, got -1" in bad.stderr


# -- graph and observation hooks -------------------------------------------------------------


def test_modify_graph_cuts_a_vendor(write_experiment, tmp_path):
    """A graph plugin's edits show in the GraphML and the cut vendor sells nothing."""
    write_plugin(tmp_path, "cut.py", CUT_VENDOR_PLUGIN)
    path = write_experiment('plugins = ["cut.py"]\n')
    graph_file = tmp_path / "g.graphml"
    assert run_cli("graph", path, "--out", graph_file).exit_code == 0
    graph = nx.read_graphml(graph_file)
    assert graph.out_degree("chip_vendor:0") == 0
    assert graph.out_degree("chip_vendor:1") > 0
    results = marketsim.run(marketsim.load_experiment(path, ["output.firm_level=true"]))
    firms = results.firms
    assert (firms.loc[firms["firm"] == "chip_vendor:0", "revenue"] == 0).all()
    assert firms.loc[firms["firm"] == "chip_vendor:1", "revenue"].sum() > 0


def test_after_clear_and_run_finished_see_what_is_recorded(write_experiment, tmp_path):
    """What a plugin sees after clearing and at the end of a replication is what is written."""
    write_plugin(tmp_path, "observer.py", OBSERVER_PLUGIN)
    path = write_experiment('plugins = ["observer.py"]\n')
    experiment = marketsim.load_experiment(path, ["experiment.replications=2"])
    results = marketsim.run(experiment)
    observer = experiment.manager.get_plugin("observer.py")
    seen = pd.DataFrame(
        observer.SEEN, columns=["replication", "step", "market", "price", "quantity"]
    )
    recorded = results.markets[["replication", "step", "market", "price", "quantity"]]
    pd.testing.assert_frame_equal(
        seen.sort_values(["replication", "step", "market"]).reset_index(drop=True),
        recorded.sort_values(["replication", "step", "market"]).reset_index(drop=True),
        check_exact=True,
    )
    assert [(r, steps) for r, steps, _ in observer.FINISHED] == [(0, 6), (1, 6)]
    for replication, _, chain in observer.FINISHED:
        written = results.chain[results.chain["replication"] == replication]
        pd.testing.assert_frame_equal(
            chain.reset_index(drop=True), written.reset_index(drop=True), check_exact=True
        )


# -- the plugin API itself -----------------------------------------------------------------


def hook_names() -> list[str]:
    """Every hook a plugin can implement."""
    return sorted(
        n
        for n, f in vars(hookspecs).items()
        if n.startswith("marketsim_") and inspect.isfunction(f)
    )


def test_hooks_exist():
    """The hook list is found (guards the coverage test below against finding nothing)."""
    assert len(hook_names()) >= 11


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_and_tested(hook):
    """Every hook has a docstring and is implemented in at least one test file."""
    assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"
    texts = [p.read_text() for p in TESTS.rglob("*.py")]
    assert any(f"def {hook}(" in text for text in texts), f"no test implements {hook}"


def test_public_api_is_pinned():
    """marketsim.__all__ is exactly the documented public API."""
    assert sorted(marketsim.__all__) == [
        "ClearingOutcome",
        "Experiment",
        "ExperimentError",
        "GoodSpec",
        "LedgerError",
        "MarketBook",
        "MarketsimError",
        "MechanismSpec",
        "MetricSpec",
        "Param",
        "PluginError",
        "Results",
        "ResultsError",
        "Sector",
        "Study",
        "StudyError",
        "StudyResults",
        "SupplyChainModel",
        "TableSchema",
        "hookimpl",
        "load_experiment",
        "load_study",
        "read_study",
        "run",
        "run_study",
    ]
    for name in marketsim.__all__:
        assert getattr(marketsim, name) is not None
