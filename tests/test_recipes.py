"""Recipes as data (marketsim.recipes) and an input added to the data centers.

The built-in recipes name every input; the cooling plugin (plugins/cooling_vendor.py,
experiments/cooling.toml) adds ``cooling_units`` per MW without touching the core: a market
exists, data centers buy and hold the units, short cooling strands accelerators (Leontief),
``binding_input`` can say so, the ledger holds the good by name and metrics report it.
Mistakes in ``[agents.<sector>.inputs]`` exit 2 with one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from economy import assert_lowers
from economy import assert_raises

import marketsim
from marketsim.bottleneck import BINDING_INPUTS
from marketsim.cli import cli
from marketsim.errors import LedgerError
from marketsim.model import SupplyChainModel
from marketsim.recipes import PER
from marketsim.recipes import Input
from marketsim.sectors.datacenter import Datacenter
from marketsim.sectors.inference import Inference

ROOT = Path(__file__).resolve().parent.parent
COOLING = ROOT / "experiments" / "cooling.toml"
PLUGIN = (ROOT / "plugins" / "cooling_vendor.py").as_posix()
SHORT = "agents.cooling_vendor.capacity_per_month=100.0"
"""Cooling vendors' capacity cut to an eighth: about 0.2 GW a month for a fleet growing ~1."""


def test_builtin_recipes_name_every_input():
    """The data center's recipe is what binding_input's categories and amounts come from."""
    recipe = Datacenter.recipe
    assert recipe.labels == ("accelerators", "network", "power", "buildings")
    assert (*recipe.labels, "demand") == BINDING_INPUTS
    assert recipe.goods == ("accelerators", "network_kits", "power")
    assert set(recipe.goods) == set(Datacenter.buys)
    params = {"kits_per_accelerator": 2.0, "kw_per_accelerator": 1.5, "pue": 1.2}
    assert recipe.input("network").amount_for(params) == 2.0
    assert recipe.input("power").amount_for(params) == pytest.approx(1.5 * 1.2 / 1000)
    assert not recipe.input("power").stock
    compute = Inference.recipe.input("compute")
    assert compute.per == "unit_output"
    assert compute.amount_for({"tokens_per_acc_hour_millions": 2.5}) == pytest.approx(0.4)
    assert all(item.per in PER for r in (recipe, Inference.recipe) for item in r.inputs)
    with pytest.raises(ValueError, match="per must be one of"):
        Input("x", "per_year")


@pytest.fixture(scope="module")
def cooling_short():
    """The cooling experiment with short cooling capacity, 36 months."""
    experiment = marketsim.load_experiment(COOLING, ["experiment.steps=36", SHORT])
    return marketsim.run(experiment)


def test_added_input_has_a_market_and_is_bought(cooling_short):
    markets = cooling_short.markets
    cooling = markets[markets["market"] == "cooling_units"]
    assert len(cooling) == 36
    assert cooling["quantity"].sum() > 0
    sectors = cooling_short.sectors
    vendor = sectors[sectors["sector"] == "cooling_vendor"]
    assert vendor["revenue"].sum() > 0


def test_short_cooling_binds_and_strands(cooling_short):
    chain = cooling_short.chain
    assert "cooling_units" in set(chain["binding_input"])
    assert chain["stranded_by_cooling_units"].max() > 0
    # what cooling strands is part of what is stranded
    assert (
        chain["stranded_by_cooling_units"] <= chain["stranded_accelerators"] * (1 + 1e-9) + 1e-6
    ).all()


def test_binding_cooling_lowers_usable_fleet():
    """Paired: short cooling capacity strands more accelerators for want of cooling and sells
    less compute than the shipped cooling experiment (common random numbers)."""

    def stranded(results):
        return results.chain["stranded_by_cooling_units"].mean()

    def compute_sold(results):
        markets = results.markets
        return markets.loc[markets["market"] == "compute", "quantity"].sum()

    short = ("cooling", "experiment.steps=36", SHORT)
    ample = ("cooling", "experiment.steps=36")
    assert_raises(short, ample, stranded, "accelerators stranded by cooling")
    assert_lowers(short, ample, compute_sold, "compute sold")


def test_ledger_holds_the_added_good_by_name():
    """Opening stocks, purchases and retirements post cooling_units; a stock the operator does
    not hold by its own state fails the books naming cooling_units."""
    experiment = marketsim.load_experiment(COOLING, ["experiment.steps=6"])
    model = SupplyChainModel(experiment, rng=0)
    for _ in range(3):
        model.step()
    ledger = model.ledger
    datacenter = model.sectors["datacenter"]
    held = ledger.balances[ledger.asset("cooling_units"), datacenter.accounts]
    np.testing.assert_allclose(held, datacenter.input_stock[:, 0], rtol=1e-9, atol=1e-6)
    assert datacenter.input_stock[datacenter.alive, 0].min() > 0
    assert datacenter.book_value().sum() > datacenter.it_book.sum() + datacenter.shell_book.sum()
    datacenter.input_stock[0, 0] += 1.0
    with pytest.raises(LedgerError, match="cooling_units"):
        model.step()


def test_seller_declares_the_input_when_the_table_is_absent(write_experiment):
    """The plugin's ``input_to`` adds cooling per MW to data centers when its vendors are
    present and the experiment does not list the input itself."""
    path = write_experiment(f'plugins = ["{PLUGIN}"]\n\n[agents.cooling_vendor]\ncount = 2\n')
    experiment = marketsim.load_experiment(path)
    assert experiment.config["agents"]["datacenter"]["inputs"] == {"cooling_units": {"per_mw": 1.0}}
    without = marketsim.load_experiment(write_experiment(name="plain.toml"))
    assert without.config["agents"]["datacenter"]["inputs"] == {}


def test_zero_amount_never_binds(write_experiment):
    path = write_experiment(
        f'plugins = ["{PLUGIN}"]\n\n[agents.cooling_vendor]\ncount = 2\n\n'
        "[agents.datacenter.inputs.cooling_units]\nper_mw = 0.0\n",
        steps=4,
    )
    chain = marketsim.run(marketsim.load_experiment(path)).chain
    assert (chain["stranded_by_cooling_units"] == 0).all()
    assert "cooling_units" not in set(chain["binding_input"])


def test_input_per_accelerator_caps_the_usable_fleet(write_experiment):
    """An input per accelerator from a vendor that makes one unit a month: accelerators
    delivered after the opening stock run only as far as the units allow (Leontief)."""
    path = write_experiment(
        f'plugins = ["{PLUGIN}"]\n\n[agents.cooling_vendor]\ncount = 1\n'
        "capacity_per_month = 1.0\nexpansion_response = 0.0\n\n"
        "[agents.datacenter.inputs.cooling_units]\nper_accelerator = 2.0\n",
        steps=6,
    )
    model = SupplyChainModel(marketsim.load_experiment(path), rng=3)
    for _ in range(6):
        model.step()
    datacenter = model.sectors["datacenter"]
    limits = datacenter.input_limits()
    alive = datacenter.alive
    held = datacenter.input_stock[:, 0]
    np.testing.assert_allclose(limits["cooling_units"][alive], held[alive] / 2.0, rtol=1e-12)
    smallest = np.min(np.stack(list(limits.values())), axis=0)
    assert (datacenter.usable <= smallest * (1 + 1e-9) + 1e-6).all()
    stranded = datacenter.fleet - limits["cooling_units"]
    assert stranded[alive].max() > 1e4  # accelerators delivered without their cooling


BAD_INPUTS = {
    "unknown good": (
        "[agents.datacenter.inputs.cooling_unit]\nper_mw = 1.0\n",
        ["agents.datacenter.inputs.cooling_unit", "unknown good 'cooling_unit'", "cooling_units"],
    ),
    "nobody sells it": (
        "[agents.datacenter.inputs.cooling_units]\nper_mw = 1.0\n",
        ["agents.datacenter.inputs.cooling_units", "none sells", "agents.cooling_vendor"],
    ),
    "negative amount": (
        "[agents.cooling_vendor]\ncount = 1\n\n"
        "[agents.datacenter.inputs.cooling_units]\nper_mw = -1.0\n",
        ["agents.datacenter.inputs.cooling_units.per_mw", ">= 0", "-1.0"],
    ),
    "unknown basis": (
        "[agents.cooling_vendor]\ncount = 1\n\n"
        "[agents.datacenter.inputs.cooling_units]\nper_rack = 1.0\n",
        ["agents.datacenter.inputs.cooling_units.per_rack", "per_mw, per_accelerator"],
    ),
    "a good it already buys": (
        "[agents.datacenter.inputs.power]\nper_mw = 1.0\n",
        ["agents.datacenter.inputs.power", "does not already trade"],
    ),
    "not a table": (
        "[agents.datacenter.inputs]\ncooling_units = 1.0\n",
        ["agents.datacenter.inputs.cooling_units", "expected a table"],
    ),
    "a sector without added inputs": (
        "[agents.inference.inputs.cooling_units]\nper_mw = 1.0\n",
        ["agents.inference", "unknown key 'inputs'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_inputs_are_one_line_exit_2(case, write_experiment, tmp_path):
    text, expected = case
    path = write_experiment(f'plugins = ["{PLUGIN}"]\n\n{text}')
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert not out.exists()
