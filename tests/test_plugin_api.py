"""The public plugin API (`marketsim.plugin`): its names are pinned and documented, docs/plugins.md
imports nothing else, its worked examples run as written, and its helpers behave as documented.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import marketsim.plugin as api
from marketsim.experiment import load_experiment
from marketsim.runner import run

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"

PINNED = [
    "API_VERSION",
    "CALL_AUCTION",
    "ClearingOutcome",
    "EquipmentVendor",
    "EquityMarket",
    "Experiment",
    "ExperimentError",
    "FLOWS",
    "GoodSpec",
    "HOURS_PER_MONTH",
    "Input",
    "LedgerError",
    "MAX_RESPONSE",
    "Market",
    "MarketBook",
    "MarketsimError",
    "MarketsimWarning",
    "MechanismSpec",
    "MetricSpec",
    "OUTSIDE_ACCOUNTS",
    "PER",
    "POSTED_PRICE",
    "Param",
    "PluginError",
    "QUOTIENT_CAP",
    "REQUIRED",
    "Recipe",
    "Results",
    "Sector",
    "SupplyChainModel",
    "TableSchema",
    "affordable_share",
    "bounded_power",
    "brock_hommes_step",
    "buyers_value",
    "by_sector",
    "call_auction",
    "capex_budget",
    "capped_at_value",
    "capped_quotient",
    "clear_call_auction",
    "clear_posted_price",
    "competition_params",
    "demand_at_price",
    "equal_shares",
    "firm_schema",
    "hookimpl",
    "initial_capacity",
    "lerner_scarcity_price",
    "lerner_scarcity_target",
    "load_experiment",
    "opening_reference_price",
    "operating_mean",
    "outside_account_index",
    "partial_adjustment",
    "posted_price_clear",
    "posted_price_clear_indexed",
    "ratio",
    "require_api",
    "run",
    "seller_slots",
    "shift_pipeline",
    "smooth",
    "smoothed_shares",
    "smoothing_param",
    "starting_capacity",
    "tatonnement_price",
    "transfer",
    "vendor_params",
]
"""The API, name by name. Adding or removing a name fails `test_the_api_is_pinned` until this
list, docs/plugins.md (section 9) and, for a removal, the major `API_VERSION` change too."""


def test_the_api_is_pinned():
    assert sorted(api.__all__) == PINNED, "update PINNED, docs/plugins.md and API_VERSION"
    assert len(set(api.__all__)) == len(api.__all__)
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert not missing, missing


def test_star_import_gives_exactly_the_api():
    namespace: dict = {}
    exec("from marketsim.plugin import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == PINNED


def test_the_api_version_is_semver_and_checked():
    assert re.fullmatch(r"\d+\.\d+\.\d+", api.API_VERSION)
    major, minor, _ = (int(p) for p in api.API_VERSION.split("."))
    api.require_api(f"{major}.{minor}")
    api.require_api(f"{major}.0")
    api.require_api(api.API_VERSION)
    with pytest.raises(api.PluginError, match=rf"needs marketsim.plugin API {major}\.{minor + 1}"):
        api.require_api(f"{major}.{minor + 1}")
    with pytest.raises(api.PluginError, match=f"this marketsim has {api.API_VERSION}"):
        api.require_api(f"{major + 1}.0")
    with pytest.raises(ValueError, match="expected an API version"):
        api.require_api("one")


def test_a_deprecated_name_still_works_and_warns(monkeypatch):
    monkeypatch.setitem(api._DEPRECATED, "old_smooth", (api.smooth, "smooth"))
    with pytest.warns(DeprecationWarning, match="old_smooth is deprecated.*use smooth"):
        from marketsim.plugin import old_smooth
    assert old_smooth is api.smooth
    with pytest.raises(AttributeError, match="no attribute 'never_was'"):
        api.never_was  # noqa: B018


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_every_name_is_documented_in_the_api_section():
    section = _section(DOC.read_text(encoding="utf-8"), "## 9 The plugin API")
    undocumented = [name for name in PINNED if not re.search(rf"`{name}[`(,]", section)]
    assert not undocumented, undocumented
    assert "API_VERSION" in section and "DeprecationWarning" in section  # the versioning rules


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def test_plugins_doc_examples_import_only_the_plugin_api():
    blocks = _code_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) > 10
    imports = re.compile(
        r"^\s*(?:from\s+(marketsim[\w.]*)\s+import|import\s+(marketsim[\w.]*))", re.M
    )
    offending = [
        (language, (a or b))
        for language, body in blocks
        for a, b in imports.findall(body)
        if (a or b) != "marketsim.plugin"
    ]
    assert not offending, offending
    python = [body for language, body in blocks if language == "python"]
    assert sum("from marketsim.plugin import" in body for body in python) >= 10
    for body in python:
        compile(body, "docs/plugins.md", "exec")  # every Python example is valid Python


def test_the_api_section_lists_only_names_the_api_has():
    section = _section(DOC.read_text(encoding="utf-8"), "## 9 The plugin API")
    listed = set()
    for cell in re.findall(r"^\| (`.*?) \|", section, re.M):
        listed.update(re.findall(r"`([A-Za-z_]\w*)[`(]", cell))
    assert listed, "no table in section 9"
    assert listed <= set(PINNED), sorted(listed - set(PINNED))


def _worked_examples(tmp_path: Path) -> list[Path]:
    """Write every ``File `NAME`:`` block of docs/plugins.md into ``tmp_path``; return the
    experiment files (their baseline path pointed at this checkout)."""
    text = DOC.read_text(encoding="utf-8")
    experiments = []
    for name, body in re.findall(r"^File `([\w.]+)`:\n\n```\w*\n(.*?)^```", text, re.S | re.M):
        body = body.replace("/abs/path/to/marketsim", ROOT.as_posix())
        (tmp_path / name).write_text(body, encoding="utf-8")
        if name.endswith(".toml"):
            experiments.append(tmp_path / name)
    return experiments


def test_the_worked_examples_run_as_written(tmp_path):
    """Each example experiment (with its plugin file) loads and runs; two months each."""
    experiments = _worked_examples(tmp_path)
    assert len(experiments) == 6, [p.name for p in experiments]
    for path in experiments:
        experiment = load_experiment(path, {"experiment.steps": 2})
        results = run(experiment)
        named = experiment.config["plugins"]
        recorded = [p["name"] for p in results.manifest["plugins"]]
        assert set(named) <= set(recorded), (path.name, named, recorded)
        assert len(results.chain) == 2


def test_the_vendor_example_sells_beside_the_built_in_vendors(tmp_path):
    """Section 8.6: the EquipmentVendor subclass trades network kits like the built-ins."""
    ov = next(p for p in _worked_examples(tmp_path) if p.name == "ov.toml")
    results = run(load_experiment(ov, {"experiment.steps": 4}))
    rows = results.sectors[results.sectors["sector"] == "optical_vendor"]
    assert len(rows) == 4
    assert rows["sold"].sum() > 0
    assert (rows["sold"] <= rows["capacity"] * (1 + 1e-12)).all()


LEVY_PLUGIN = """
from marketsim.plugin import hookimpl
from marketsim.plugin import transfer

LEVY_USD = 7.0


@hookimpl
def marketsim_register_outside_accounts(register):
    register("levy_fund", "receives the levy on accelerators")


@hookimpl
def marketsim_after_clear(model, market, outcome):
    if market.name != "accelerators":
        return
    sold = outcome.seller_sold * LEVY_USD
    transfer(model, "cash", market.sellers.accounts, "levy_fund", sold, "cost_of_goods")
"""


def test_transfer_posts_through_the_ledger_under_the_named_flow(write_experiment, tmp_path):
    """A levy paid with `transfer` to an outside account the plugin registers shows in the
    sellers' cost of goods, exactly, in the first month anything is sold (every earlier month
    is identical with and without it)."""
    (tmp_path / "levy.py").write_text(LEVY_PLUGIN)
    plain = run(load_experiment(write_experiment(name="plain.toml", steps=3)))
    levied = run(load_experiment(write_experiment('plugins = ["levy.py"]\n', steps=3)))
    markets = plain.markets[plain.markets["market"] == "accelerators"].reset_index()
    first = int(markets.index[markets["quantity"] > 0][0])
    chip = "chip_vendor"

    def cost(results):
        rows = results.sectors
        return float(
            rows[(rows["sector"] == chip) & (rows["step"] == first)]["cost_of_goods"].iloc[0]
        )

    sold = float(markets.loc[first, "quantity"])
    assert cost(levied) - cost(plain) == pytest.approx(7.0 * sold, rel=1e-9)


@pytest.fixture(scope="module")
def model():
    """A model of the baseline, built but not stepped."""
    from marketsim.model import SupplyChainModel

    experiment = load_experiment(ROOT / "experiments" / "baseline.toml", {"experiment.steps": 1})
    return SupplyChainModel(experiment, np.random.SeedSequence(1))


def test_outside_accounts_and_flows_are_what_the_ledger_has(model):
    ledger = model.ledger
    assert tuple(ledger.flows.NAMES) == api.FLOWS
    for name in ("taxes", "fuel", "wages", "foundry"):
        assert name in api.OUTSIDE_ACCOUNTS
        assert api.outside_account_index(model, name) == ledger.account(name)


def test_ledger_helpers_name_what_exists(model):
    with pytest.raises(ValueError, match="no outside account 'cooling'; the outside accounts are "):
        api.outside_account_index(model, "cooling")
    with pytest.raises(ValueError, match="unknown asset 'gold'; the assets are cash, "):
        api.transfer(model, "gold", "taxes", "fuel", 1.0, "tax")
    with pytest.raises(ValueError, match="unknown flow 'bribe'; the flows are revenue, "):
        api.transfer(model, "cash", "taxes", "fuel", 1.0, "bribe")
    with pytest.raises(api.LedgerError, match="amount must be finite and >= 0"):
        api.transfer(model, "cash", "taxes", "fuel", -1.0, "tax")


def test_the_shipped_plugins_import_only_the_plugin_api():
    """The research plugins in plugins/ are written as a user would write them."""
    shipped = sorted((ROOT / "plugins").rglob("*.py"))
    assert len(shipped) >= 2
    for path in shipped:
        source = path.read_text(encoding="utf-8")
        imported = re.findall(r"^\s*(?:from|import)\s+(marketsim[\w.]*)", source, re.M)
        assert imported and set(imported) == {"marketsim.plugin"}, (path.name, imported)
