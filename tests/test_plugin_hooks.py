"""Hooks through pluggy's relay, the config-check hook, and plugin misbehaviour named.

- ordering: ``tryfirst``/``trylast`` and, among plain implementations, built-in first, then
  installed, then the experiment's plugins in the order listed; wrappers (``wrapper=True``,
  ``hookwrapper=True``) run around every other implementation, the built-ins' included;
- an error in a plugin's hook (or wrapper) names the plugin and the hook, one line, exit 2;
- ``marketsim_validate_config``: a plugin's own cross-field rule stops the command with
  ``error: <file>: <key>: <message>`` before anything is written;
- a NaN, inf or negative value a plugin's sector or hook writes where another part reads it
  (a book after bidding, another market's book, the firm table, a built-in sector's state)
  names the plugin, sector or hook, phase and field, not the part that reads it next;
- warnings: a good nobody buys, a market that never trades, an installed plugin that fails
  to load (skipped); ``--strict`` makes each an error.
"""

from __future__ import annotations

import importlib.metadata
import sys
import warnings

import pytest
from click.testing import CliRunner

import marketsim
from marketsim.cli import cli
from marketsim.diagnostics import MarketsimWarning
from marketsim.model import SupplyChainModel
from marketsim.plugins import plugin_manager


def run_cli(*args):
    """Invoke the command line in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(result, out=None) -> str:
    """The one stderr line of a command that stopped on a user error (exit 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if out is not None:
        assert not out.exists()
    return lines[0]


def write_plugins(tmp_path, **sources: str) -> list[str]:
    """Write ``name=source`` as ``name.py`` under ``tmp_path``; return the file names."""
    names = []
    for name, source in sources.items():
        (tmp_path / f"{name}.py").write_text(source)
        names.append(f"{name}.py")
    return names


def plugins_line(names) -> str:
    """The ``plugins = [...]`` line naming ``names``."""
    return "plugins = [" + ", ".join(f'"{n}"' for n in names) + "]\n"


def one_step(path) -> SupplyChainModel:
    """Load ``path`` and run one step in this process."""
    model = SupplyChainModel(marketsim.load_experiment(path), 1)
    model.step()
    return model


# -- ordering ------------------------------------------------------------------------------

CALLED = """\
import marketsim


@marketsim.hookimpl{options}
def marketsim_step_start(model):
    model.__dict__.setdefault("called", []).append({label!r})
"""


def test_tryfirst_trylast_and_load_order(write_experiment, tmp_path):
    """tryfirst first, trylast last; plain ones in the order the experiment lists them."""
    names = write_plugins(
        tmp_path,
        late=CALLED.format(options="(trylast=True)", label="late"),
        first=CALLED.format(options="", label="first"),
        second=CALLED.format(options="", label="second"),
        early=CALLED.format(options="(tryfirst=True)", label="early"),
    )
    model = one_step(write_experiment(plugins_line(names), steps=1))
    assert model.called == ["early", "first", "second", "late"]


METRIC_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_register_metrics(register):
    register(marketsim.MetricSpec("chain", "plugin_metric", lambda model: 1.0))
"""


def test_built_ins_register_first(write_experiment, tmp_path):
    """Registry hooks keep the promise too: the built-in metrics come before a plugin's."""
    names = write_plugins(tmp_path, extra=METRIC_PLUGIN)
    experiment = marketsim.load_experiment(write_experiment(plugins_line(names)))
    columns = [spec.column for spec in experiment.components.metrics]
    assert columns[-1] == "plugin_metric"
    assert experiment.components.origins[("metric", "chain.plugin_metric")] == "extra.py"
    first = experiment.components.metrics[0]
    origin = experiment.components.origins[("metric", f"{first.table}.{first.column}")]
    assert origin == "marketsim.builtin"


WRAPPED_REGISTRY = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_register_metrics(register):
    register(marketsim.MetricSpec("chain", "before_everyone", lambda model: 1.0))
    result = yield
    register(marketsim.MetricSpec("chain", "after_everyone", lambda model: 2.0))
    return result
"""


def test_wrapper_runs_around_the_built_ins(write_experiment, tmp_path):
    """A wrapper=True implementation acts before and after every other, the built-ins too."""
    names = write_plugins(tmp_path, extra=METRIC_PLUGIN, wrap=WRAPPED_REGISTRY)
    experiment = marketsim.load_experiment(write_experiment(plugins_line(names)))
    columns = [spec.column for spec in experiment.components.metrics]
    assert columns[0] == "before_everyone"
    assert columns[-2:] == ["plugin_metric", "after_everyone"]
    origins = experiment.components.origins
    assert origins[("metric", "chain.before_everyone")] == "wrap.py"  # its own register


WRAPPERS = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_step_start(model):
    model.__dict__.setdefault("called", []).append("new-style in")
    result = yield
    model.called.append("new-style out")
    return result


@marketsim.hookimpl(hookwrapper=True)
def marketsim_step_end(model):
    model.__dict__.setdefault("called", []).append("old-style in")
    outcome = yield
    outcome.get_result()
    model.called.append("old-style out")
"""


def test_new_and_old_style_wrappers_run(write_experiment, tmp_path):
    """wrapper=True and hookwrapper=True implementations run around the plain ones."""
    names = write_plugins(tmp_path, wrap=WRAPPERS, plain=CALLED.format(options="", label="plain"))
    model = one_step(write_experiment(plugins_line(names), steps=1))
    assert model.called == [
        "new-style in",
        "plain",
        "new-style out",
        "old-style in",
        "old-style out",
    ]


# -- errors name the plugin and the hook -----------------------------------------------------

RAISES = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 1:
        raise ValueError("no cooling data for step 1")
"""

WRAPPER_RAISES_AFTER = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_step_end(model):
    result = yield
    if model.step_index == 1:
        raise KeyError("tally")
    return result
"""

OLD_STYLE_RAISES_AFTER = """\
import marketsim


@marketsim.hookimpl(hookwrapper=True)
def marketsim_step_end(model):
    yield
    if model.step_index == 1:
        raise ValueError("old style")
"""

NEVER_YIELDS = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_step_end(model):
    if model.step_index < 100:
        return None
    yield
"""

PASSIVE_WRAPPER = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_step_end(model):
    return (yield)
"""


@pytest.mark.parametrize(
    ("sources", "says"),
    [
        (
            {"boom": RAISES},
            "error: plugin 'boom.py' raised in hook marketsim_step_end: ValueError: no cooling "
            "data for step 1",
        ),
        (
            {"wrap": WRAPPER_RAISES_AFTER},
            "error: plugin 'wrap.py' raised in hook marketsim_step_end: KeyError: 'tally'",
        ),
        (  # pluggy's own warning about it is not printed: the error is the one line
            {"old": OLD_STYLE_RAISES_AFTER},
            "error: plugin 'old.py' raised in hook marketsim_step_end: ValueError: old style",
        ),
        (
            {"never": NEVER_YIELDS},
            "error: plugin 'never.py' hook marketsim_step_end: a wrapper must yield, it returned",
        ),
        (  # an error from inside a wrapper keeps the name of the plugin that raised it
            {"wrap": PASSIVE_WRAPPER, "boom": RAISES},
            "error: plugin 'boom.py' raised in hook marketsim_step_end: ValueError: no cooling "
            "data for step 1",
        ),
    ],
)
def test_error_in_a_hook_names_plugin_and_hook(write_experiment, tmp_path, sources, says):
    """A plugin raising in a hook, plain or wrapper: one line naming plugin and hook, exit 2."""
    names = write_plugins(tmp_path, **sources)
    path = write_experiment(plugins_line(names), steps=3)
    out = tmp_path / "out"
    line = refused(run_cli("run", path, "--out", out, "-q"), out)
    assert line == says


# -- marketsim_validate_config -----------------------------------------------------------------

CARBON = """\
import marketsim
from marketsim import Param
from marketsim import TableSchema

CARBON = TableSchema(
    params={{
        "price_floor": Param(float, 40.0, "lowest carbon price", "USD per tonne", ge=0),
        "price_cap": Param(float, 100.0, "highest carbon price", "USD per tonne", ge=0),
    }},
    doc="A carbon price corridor.",
)


@marketsim.hookimpl
def marketsim_register_config_tables(register):
    register("carbon", CARBON)


@marketsim.hookimpl
def marketsim_validate_config(experiment):
    carbon = dict(experiment["carbon"])
    experiment["carbon"]["price_cap"] = -1.0  # a copy: changes nothing
    {answer}
"""

CORRIDOR_RULE = """if carbon["price_cap"] < carbon["price_floor"]:
        return [("carbon.price_cap",
                 f"must be >= carbon.price_floor ({carbon['price_floor']:g}), "
                 f"got {carbon['price_cap']:g}")]
    return []"""


@pytest.mark.parametrize("command", ["run", "validate"])
def test_validate_config_hook_stops_the_command(write_experiment, tmp_path, command):
    """A plugin's cross-field rule: one line naming file and key, exit 2, nothing written."""
    names = write_plugins(tmp_path, carbon=CARBON.format(answer=CORRIDOR_RULE))
    path = write_experiment(plugins_line(names) + "[carbon]\nprice_cap = 20.0\n")
    out = tmp_path / "out"
    extra = ["--out", out, "-q"] if command == "run" else []
    line = refused(run_cli(command, path, *extra), out)
    assert line == (f"error: {path}: carbon.price_cap: must be >= carbon.price_floor (40), got 20")


def test_validate_config_hook_passes_and_cannot_change_the_experiment(write_experiment, tmp_path):
    """Settings that keep the rule load; what the hook writes to its copy is not kept."""
    names = write_plugins(tmp_path, carbon=CARBON.format(answer=CORRIDOR_RULE))
    path = write_experiment(plugins_line(names) + "[carbon]\nprice_cap = 60.0\n")
    experiment = marketsim.load_experiment(path)
    assert experiment.config["carbon"]["price_cap"] == 60.0
    with pytest.raises(marketsim.ExperimentError, match="carbon.price_cap: must be"):
        experiment.with_overrides(["carbon.price_cap=10.0"])


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("return 'price_cap too low'", "expected a list of (key, message) pairs of strings"),
        ("return [('carbon.price_cap', 3)]", "expected a list of (key, message) pairs"),
        ("return ['ab']", "expected a list of (key, message) pairs"),
        ("raise RuntimeError('corridor')", "raised in hook marketsim_validate_config"),
    ],
)
def test_validate_config_misuse_names_the_plugin(write_experiment, tmp_path, answer, says):
    """A malformed answer or an exception is the plugin's error, named with the hook."""
    names = write_plugins(tmp_path, carbon=CARBON.format(answer=answer))
    path = write_experiment(plugins_line(names))
    line = refused(run_cli("validate", path))
    assert line.startswith("error: plugin 'carbon.py'")
    assert says in line
    assert "marketsim_validate_config" in line


# -- misbehaviour named ------------------------------------------------------------------------

SMELTER = """\
import numpy as np

import marketsim
from marketsim.sectors.base import firm_schema


class Smelter(marketsim.Sector):
    name = "smelter"
    doc = "Aluminium smelters buying power."
    schema = firm_schema(doc, {{}})
    buys = ("power",)
    purchase_flows = {{"power": "cost_of_goods"}}

    def setup(self):
        self.block = slice(0, 0)

    def bid(self, market, block):
        self.block = block
        market.book.buyer_demand[block] = 5.0

    def {phase}(self, *args):
        if self.model.step_index == 2:
            {write}


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(Smelter)
"""

SMELTERS = "[agents.smelter]\ncount = 2\n"


@pytest.mark.parametrize(
    ("phase", "write", "says"),
    [
        (
            "account",
            'self.model.markets["power"].book.buyer_demand[self.block] = np.nan',
            "error: plugin 'bad.py' sector 'smelter' (account): market 'power': field "
            "'book.buyer_demand' is NaN at step 2 (buyer smelter:0)",
        ),
        (
            "on_bought",
            'self.model.markets["power"].book.buyer_demand[self.block] = -2496.0',
            "error: plugin 'bad.py' sector 'smelter' (on_bought in market 'power'): field "
            "'book.buyer_demand' is negative (-2496) at step 2 (buyer smelter:0)",
        ),
        (
            "account",
            'self.model.markets["power"].book.buyer_forward_demand[self.block] = np.inf',
            "error: plugin 'bad.py' sector 'smelter' (account): market 'power': field "
            "'book.buyer_forward_demand' is inf at step 2 (buyer smelter:0)",
        ),
        (
            "observe",
            'self.model.markets["compute"].book.buyer_demand[0] = -1.0',
            "error: plugin 'bad.py' sector 'smelter' (observe): market 'compute': field "
            "'book.buyer_demand' is negative (-1) at step 2 (buyer inference:0)",
        ),
        (
            "account",
            "self.model.firms.debt[self.rows] = np.nan",
            "error: plugin 'bad.py' sector 'smelter' (account): firm table field 'debt' is "
            "NaN at step 2 (firm smelter:0)",
        ),
    ],
)
def test_plugin_sector_writing_outside_its_phase_is_named(
    write_experiment, tmp_path, phase, write, says
):
    """A buyer's demand spoiled after bidding, or elsewhere, names the buyer, not a vendor."""
    names = write_plugins(tmp_path, bad=SMELTER.format(phase=phase, write=write))
    path = write_experiment(plugins_line(names) + SMELTERS)
    out = tmp_path / "out"
    assert refused(run_cli("run", path, "--out", out, "-q"), out) == says


def test_policy_hook_spoiling_a_sector_is_named(write_experiment, tmp_path):
    """A before_clear hook writing NaN into a built-in sector is named, not that sector."""
    source = """\
import numpy as np

import marketsim


@marketsim.hookimpl
def marketsim_before_clear(model, market):
    if market.name == "power" and model.step_index == 1:
        model.sectors["utility"].tariff[0] = np.nan
"""
    names = write_plugins(tmp_path, bad=source)
    out = tmp_path / "out"
    line = refused(run_cli("run", write_experiment(plugins_line(names)), "--out", out, "-q"))
    assert line == (
        "error: plugin 'bad.py' hook marketsim_before_clear: sector 'utility': field 'tariff' "
        "is NaN at step 1 (firm utility:0)"
    )


def test_mechanism_spoiling_the_book_is_named(write_experiment, tmp_path):
    """A clearing mechanism that writes a NaN into the book it clears is named."""
    source = """\
import numpy as np

import marketsim
from marketsim.markets.mechanisms import POSTED_PRICE
from marketsim.markets.mechanisms import clear_posted_price


def clear(book, params):
    outcome = clear_posted_price(book, params)
    book.buyer_demand[0] = np.nan
    return outcome


@marketsim.hookimpl
def marketsim_register_mechanisms(register):
    register(marketsim.MechanismSpec("leaky", clear, POSTED_PRICE.schema))
"""
    names = write_plugins(tmp_path, bad=source)
    text = plugins_line(names) + '[markets.power]\nmechanism = "leaky"\n'
    out = tmp_path / "out"
    line = refused(run_cli("run", write_experiment(text), "--out", out, "-q"), out)
    assert line == (
        "error: plugin 'bad.py' mechanism 'leaky' (clear in market 'power'): field "
        "'book.buyer_demand' is NaN at step 0 (buyer datacenter:0)"
    )


def test_wrapper_spoiling_a_book_after_yield_is_named(write_experiment, tmp_path):
    """What a wrapper writes after its yield is checked and blamed on the wrapper."""
    source = """\
import marketsim


@marketsim.hookimpl(wrapper=True)
def marketsim_before_clear(model, market):
    result = yield
    if market.name == "tokens" and model.step_index == 1:
        market.book.buyer_demand[0] = -7.0
    return result
"""
    names = write_plugins(tmp_path, wrap=source, plain=CALLED.format(options="", label="x"))
    out = tmp_path / "out"
    line = refused(run_cli("run", write_experiment(plugins_line(names)), "--out", out, "-q"))
    assert line.startswith(
        "error: plugin 'wrap.py' hook marketsim_before_clear (market 'tokens'): field "
        "'book.buyer_demand' is negative (-7) at step 1"
    )


# -- warnings and --strict ---------------------------------------------------------------------

COOLING = """\
import numpy as np

import marketsim
from marketsim.sectors.base import firm_schema


class Cooling(marketsim.Sector):
    name = "cooling"
    doc = "Cooling vendors."
    schema = firm_schema(doc, {})
    sells = "cooling_units"

    def offer(self, market, block):
        market.book.seller_price[block] = 10.0
        market.book.seller_capacity[block] = 5.0


class Rack(marketsim.Sector):
    name = "rack"
    doc = "Buyers of cooling units that never need any."
    schema = firm_schema(doc, {})
    buys = ("cooling_units",)


@marketsim.hookimpl
def marketsim_register_goods(register):
    register(marketsim.GoodSpec("cooling_units", "units", "USD per unit"))


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(Cooling)
    register(Rack)
"""

CUT_COOLING = """\
import marketsim


@marketsim.hookimpl
def marketsim_modify_graph(graph):
    graph.remove_edges_from(
        [(a, b) for a, b, good in graph.edges(data="good") if good == "cooling_units"]
    )
"""


def run_warned(path, out, *extra):
    """Run ``path``; return the result and its stderr lines."""
    result = run_cli("run", path, "--out", out, "-q", *extra)
    return result, result.stderr.splitlines()


def test_good_with_no_buyer_warns_and_strict_refuses(write_experiment, tmp_path):
    """A good nobody buys: a warning naming it and its sellers; --strict: exit 2, nothing."""
    names = write_plugins(tmp_path, cooling=COOLING)
    path = write_experiment(plugins_line(names) + "[agents.cooling]\ncount = 2\n", steps=3)
    out = tmp_path / "out"
    result, lines = run_warned(path, out)
    assert result.exit_code == 0, result.output
    expected = (
        f"{path}: good 'cooling_units' has no buyer: sector 'cooling' sells it but no sector "
        "in the experiment buys it"
    )
    assert lines == [f"warning: {expected}"]
    assert (out / "markets.parquet").exists()
    strict_out = tmp_path / "strict"
    assert refused(run_cli("run", path, "--out", strict_out, "-q", "--strict"), strict_out) == (
        f"error: {expected}"
    )
    validated = run_cli("validate", path)
    assert validated.exit_code == 0, validated.output
    assert validated.stderr.splitlines() == [f"warning: {expected}"]


def test_study_strict_refuses_a_good_with_no_buyer(write_experiment, tmp_path):
    """study --strict: a scenario with a good nobody buys stops before any task is written."""
    names = write_plugins(tmp_path, cooling=COOLING)
    path = write_experiment(plugins_line(names) + "[agents.cooling]\ncount = 1\n", steps=2)
    study = tmp_path / "study.toml"
    study.write_text(
        f'[study]\nname = "s"\nreplications = 1\n[study.scenarios]\ncool = "{path.name}"\n'
    )
    out = tmp_path / "study_out"
    line = refused(run_cli("study", study, "--out", out, "-q", "--strict", "--workers", 1), out)
    assert line == (
        f"error: {path}: good 'cooling_units' has no buyer: sector 'cooling' sells it but no "
        "sector in the experiment buys it"
    )


@pytest.mark.parametrize(
    ("extra_plugins", "reason"),
    [
        ({}, "no buyer ever asked for any"),
        ({"cut": CUT_COOLING}, "the supply graph has no edge for it (no seller reaches a buyer)"),
    ],
)
def test_market_that_never_trades_warns(write_experiment, tmp_path, extra_plugins, reason):
    """A market that sold nothing over the run: a warning with why; --strict: an error."""
    names = write_plugins(tmp_path, cooling=COOLING, **extra_plugins)
    text = plugins_line(names) + "[agents.cooling]\ncount = 2\n[agents.rack]\ncount = 3\n"
    path = write_experiment(text, steps=3)
    out = tmp_path / "out"
    result, lines = run_warned(path, out)
    assert result.exit_code == 0, result.output
    expected = (
        f"{path}: market 'cooling_units' never traded over the run (3 steps x 1 replication): "
        f"{reason}"
    )
    assert lines == [f"warning: {expected}"]
    strict_out = tmp_path / "strict"
    assert refused(run_cli("run", path, "--out", strict_out, "-q", "--strict"), strict_out) == (
        f"error: {expected}"
    )


def test_the_baseline_has_nothing_to_warn_about(short_baseline, tmp_path):
    """Every market of the baseline trades and every good has a buyer: --strict passes."""
    result = run_cli("run", short_baseline, "--out", tmp_path / "out", "-q", "--strict")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# -- a broken installed plugin -----------------------------------------------------------------


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """Pretend ``entry point name -> module`` pairs are installed (importable from tmp_path)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MARKETSIM_LOAD_PLUGINS", raising=False)

    def install(**entries: str) -> None:
        points = [
            importlib.metadata.EntryPoint(name, value, "marketsim")
            for name, value in entries.items()
        ]

        def entry_points(**selection):
            if selection.get("group") == "marketsim":
                return importlib.metadata.EntryPoints(points)
            return importlib.metadata.EntryPoints(())

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return install


GOOD_INSTALLED = '''\
"""An installed plugin that loads."""
import marketsim

__version__ = "2.0"


@marketsim.hookimpl
def marketsim_step_start(model):
    pass
'''

INVALID_INSTALLED = '''\
"""An installed plugin implementing a hook that does not exist."""
import marketsim


@marketsim.hookimpl
def marketsim_step_middle(model):
    pass
'''


@pytest.fixture
def broken_modules(tmp_path):
    """Modules for the fake installed plugins; removed from sys.modules afterwards."""
    (tmp_path / "fine_plugin_i9.py").write_text(GOOD_INSTALLED)
    (tmp_path / "invalid_plugin_i9.py").write_text(INVALID_INSTALLED)
    (tmp_path / "crashing_plugin_i9.py").write_text("raise RuntimeError('half installed')\n")
    yield
    for name in ("fine_plugin_i9", "invalid_plugin_i9", "crashing_plugin_i9"):
        sys.modules.pop(name, None)


def test_broken_installed_plugins_are_skipped_with_a_warning(installed, broken_modules):
    """Missing, crashing and invalid installed plugins are skipped; the working one loads."""
    installed(
        missing="no_such_plugin_module_i9",
        crashing="crashing_plugin_i9",
        invalid="invalid_plugin_i9",
        fine="fine_plugin_i9",
    )
    result = run_cli("plugins")
    assert result.exit_code == 0, result.output
    assert "fine  unknown  (entry point)" in result.stdout.splitlines()
    assert "missing" not in result.stdout and "invalid" not in result.stdout
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3, result.stderr
    assert warnings[0].startswith(
        "warning: installed plugin 'missing' (entry point no_such_plugin_module_i9) failed to "
        "load: ModuleNotFoundError: "
    )
    assert (
        "'crashing' (entry point crashing_plugin_i9) failed to load: RuntimeError: half"
        in (warnings[1])
    )
    assert "'invalid' (entry point invalid_plugin_i9) failed to load" in warnings[2]
    assert "marketsim_step_middle" in warnings[2]
    assert all(
        line.endswith("MARKETSIM_LOAD_PLUGINS chooses which installed plugins load)")
        for line in warnings
    )


def test_broken_installed_plugin_under_strict_stops_the_run(
    installed, broken_modules, short_baseline, tmp_path
):
    """With --strict, a broken installed plugin is an error: exit 2, one line, nothing run."""
    installed(crashing="crashing_plugin_i9")
    out = tmp_path / "out"
    line = refused(run_cli("run", short_baseline, "--out", out, "-q", "--strict"), out)
    assert line == (
        "error: installed plugin 'crashing' (entry point crashing_plugin_i9) failed to load: "
        "RuntimeError: half installed"
    )
    result = run_cli("run", short_baseline, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").exists()


def test_broken_installed_plugin_in_python_is_a_warning(installed, broken_modules):
    """From Python, the broken plugin is a MarketsimWarning; as an error, a MarketsimError."""
    installed(missing="no_such_plugin_module_i9", fine="fine_plugin_i9")
    with pytest.warns(MarketsimWarning, match="installed plugin 'missing'"):
        manager = plugin_manager()
    assert manager.has_plugin("fine") and not manager.has_plugin("missing")
    assert list(manager.records) == ["marketsim.builtin", "fine"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MarketsimWarning)
        with pytest.raises(marketsim.MarketsimError, match="installed plugin 'missing'"):
            plugin_manager()
