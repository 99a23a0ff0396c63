"""Research plugins that add sellers to existing markets (plugins/custom_accelerators.py,
plugins/onsite_power.py) and their experiments.

Each new seller trades (revenue > 0 once it has capacity, none before), its market clears with
it (quantity = what the sellers sold; the ledger is checked by the framework every step), and
its directional claim holds as a paired difference over 10 common-random-number replications
(tests/economy.py): the custom-accelerator entrant lowers the incumbent chip vendors' gross
margin and the accelerator price, and wins a positive share; the on-site developer lowers the
power price in the power crunch and sells power; priced above the grid (tariff_rule
"merchant") it lowers the accelerators stranded for want of power instead. The reference
that holds the supply graph fixed is the same experiment with the new firms kept out of the
market; the shipped scenario without the plugin (baseline, power_crunch) is checked too.
Bad settings exit 2 with one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from economy import REPLICATIONS
from economy import assert_lowers
from economy import market_rows
from economy import per_replication
from economy import replications
from economy import sector_rows

import marketsim
from marketsim.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CUSTOM = ROOT / "experiments" / "custom_accelerators.toml"
ONSITE = ROOT / "experiments" / "onsite_power.toml"

STEPS = "experiment.steps=36"
"""Three years: the entrant ships from month 12 and ramps over 12; the crunch bites from ~12."""
ENTRY_MONTH = 12
"""experiments/custom_accelerators.toml: entry_month."""
NEVER_ENTERS = "agents.custom_accelerator.entry_month=100000"
NO_DEVELOPERS = (
    "agents.onsite_power.initial_capacity_mw=0",
    "agents.onsite_power.max_build_mw_per_month=0",
)
MERCHANT = 'agents.onsite_power.tariff_rule="merchant"'
"""Developers priced at twice the grid's last price: buyers ask the utilities first."""
CRUNCH_FROM = 12
"""Month from which power_crunch's price has risen above the baseline's (measured)."""


def _from(table, first):
    return table[table["step"] >= first]


def incumbent_gross_margin(results) -> float:
    """Built-in chip vendors' gross profit over revenue from the entry month (share)."""
    rows = _from(sector_rows(results, "chip_vendor"), ENTRY_MONTH)
    return float(rows["gross_profit"].sum() / rows["revenue"].sum())


def accelerator_price(results) -> float:
    """Mean accelerator price index from the entry month (USD per accelerator)."""
    return float(_from(market_rows(results, "accelerators"), ENTRY_MONTH)["price"].mean())


def entrant_share(results) -> float:
    """Custom accelerators' share of the accelerators traded from the entry month."""
    sold = _from(sector_rows(results, "custom_accelerator"), ENTRY_MONTH)["sold"].sum()
    return float(sold / _from(market_rows(results, "accelerators"), ENTRY_MONTH)["quantity"].sum())


def power_price(results) -> float:
    """Mean power price index once the crunch bites (USD per MWh)."""
    return float(_from(market_rows(results, "power"), CRUNCH_FROM)["price"].mean())


def _clears_with(results, market: str, seller: str) -> None:
    """The market's quantity is what its sellers sold, the new seller's share included."""
    built_in = {"accelerators": "chip_vendor", "power": "utility"}[market]
    sectors = results.sectors[results.sectors["sector"].isin([built_in, seller])]
    sold = sectors.groupby(["replication", "step"])["sold"].sum()
    rows = market_rows(results, market).set_index(["replication", "step"])
    np.testing.assert_allclose(rows["quantity"], sold.loc[rows.index], rtol=1e-9, atol=1e-6)
    assert (rows["unfilled"] >= 0).all()
    assert (sectors[sectors["sector"] == seller]["sold"] > 0).any()


# -- the custom-accelerator entrant -----------------------------------------------------------


@pytest.fixture(scope="module")
def custom_run():
    return marketsim.run(marketsim.load_experiment(CUSTOM, [STEPS]))


def test_entrant_sells_after_entry_and_not_before(custom_run):
    rows = sector_rows(custom_run, "custom_accelerator")
    before = rows[rows["step"] < ENTRY_MONTH]
    after = rows[rows["step"] >= ENTRY_MONTH]
    assert (before["sold"] == 0).all() and (before["revenue"] == 0).all()
    assert (after["revenue"] > 0).all()
    assert after["firms_alive"].iloc[-1] == 2


def test_accelerator_market_clears_with_the_entrant(custom_run):
    _clears_with(custom_run, "accelerators", "custom_accelerator")


def test_entrant_prices_below_the_leader(custom_run):
    rows = _from(sector_rows(custom_run, "custom_accelerator"), ENTRY_MONTH)
    entrant = rows["revenue"].sum() / rows["sold"].sum()
    leader = _from(sector_rows(custom_run, "chip_vendor"), ENTRY_MONTH)
    assert entrant < leader["revenue"].sum() / leader["sold"].sum()


def test_entry_lowers_incumbent_margin_against_no_entry():
    assert_lowers(
        ("custom_accelerators", STEPS),
        ("custom_accelerators", STEPS, NEVER_ENTERS),
        incumbent_gross_margin,
        "incumbent chip vendors' gross margin",
    )


def test_entry_lowers_accelerator_price_against_no_entry_and_baseline():
    for reference in (("custom_accelerators", STEPS, NEVER_ENTERS), ("baseline", STEPS)):
        assert_lowers(
            ("custom_accelerators", STEPS), reference, accelerator_price, "accelerator price"
        )


def test_entrant_wins_a_positive_share_in_every_replication():
    shares = per_replication(replications("custom_accelerators", STEPS), entrant_share)
    assert len(shares) == REPLICATIONS
    assert (shares > 0.05).all(), shares


def test_entry_month_beyond_the_run_keeps_the_entrant_out(tmp_path):
    late = marketsim.load_experiment(
        CUSTOM, ["experiment.steps=6", "agents.custom_accelerator.entry_month=6"]
    )
    rows = sector_rows(marketsim.run(late), "custom_accelerator")
    assert (rows["sold"] == 0).all() and (rows["revenue"] == 0).all()


# -- the on-site generation developer -----------------------------------------------------------


@pytest.fixture(scope="module")
def onsite_run():
    return marketsim.run(marketsim.load_experiment(ONSITE, [STEPS]))


def test_developer_sells_power_and_builds(onsite_run):
    rows = sector_rows(onsite_run, "onsite_power")
    assert (rows["revenue"] > 0).all()
    assert rows["capacity"].iloc[-1] > rows["capacity"].iloc[0]  # MW built after the lead time


def test_power_market_clears_with_the_developer(onsite_run):
    _clears_with(onsite_run, "power", "onsite_power")


def test_developer_lowers_the_crunch_power_price():
    for reference in (("onsite_power", STEPS, *NO_DEVELOPERS), ("power_crunch", STEPS)):
        assert_lowers(("onsite_power", STEPS), reference, power_price, "power price")


def stranded_accelerators(results) -> float:
    """Mean installed accelerators idle for want of an input once the crunch bites."""
    return float(_from(results.chain, CRUNCH_FROM)["stranded_accelerators"].mean())


def test_merchant_developer_lowers_stranded_accelerators():
    """Priced above the grid, the developer sells what the utilities cannot deliver: fewer
    accelerators stand unpowered than with the same developers out of the market."""
    assert_lowers(
        ("onsite_power", STEPS, MERCHANT),
        ("onsite_power", STEPS, *NO_DEVELOPERS),
        stranded_accelerators,
        "stranded accelerators",
    )
    sold = per_replication(
        replications("onsite_power", STEPS, MERCHANT),
        lambda r: _from(sector_rows(r, "onsite_power"), CRUNCH_FROM)["sold"].sum(),
    )
    assert (sold > 0).all(), sold


def test_developers_out_of_the_market_trade_nothing():
    rows = sector_rows(replications("onsite_power", STEPS, *NO_DEVELOPERS), "onsite_power")
    assert (rows["sold"] == 0).all() and (rows["revenue"] == 0).all()


# -- bad settings ---------------------------------------------------------------------------------

BAD = {
    "negative foundry capacity": (
        CUSTOM,
        "agents.custom_accelerator.capacity_per_month=-1.0",
        "agents.custom_accelerator.capacity_per_month: must be >= 0",
    ),
    "negative entry month": (
        CUSTOM,
        "agents.custom_accelerator.entry_month=-1",
        "agents.custom_accelerator.entry_month: must be >= 0",
    ),
    "negative MW": (
        ONSITE,
        "agents.onsite_power.initial_capacity_mw=-5.0",
        "agents.onsite_power.initial_capacity_mw: must be >= 0",
    ),
    "negative build rate": (
        ONSITE,
        "agents.onsite_power.max_build_mw_per_month=-5.0",
        "agents.onsite_power.max_build_mw_per_month: must be >= 0",
    ),
    "tariff below the cost of a MWh": (
        ONSITE,
        "agents.onsite_power.levelised_cost_usd_per_mwh=30.0",
        "agents.onsite_power.levelised_cost_usd_per_mwh: must be >= energy_cost_usd_per_mwh",
    ),
}


@pytest.mark.parametrize("case", list(BAD.values()), ids=list(BAD))
def test_bad_settings_are_one_line_exit_2(case, tmp_path):
    path, setting, expected = case
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["run", str(path), "--steps", "2", "--set", setting, "--out", str(out)]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert not out.exists()


def test_entry_month_beyond_the_run_is_accepted(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["run", str(CUSTOM), "--steps", "2", "-q", "--out", str(out)]
        + ["--set", "agents.custom_accelerator.entry_month=50"],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert (out / "sectors.parquet").exists() or any(out.iterdir())
