"""The research policies shipped in plugins/: a carbon price on power, a tariff on accelerators.

Each is run through its shipped experiment. The tests check the plugin's own rule exactly (the
carbon fund receives price x intensity x MWh sold; the duty is the rate times the value of the
taxed trade; without a duty the tariff's mechanism clears like posted_price) and the economic
claims as paired differences over common-random-number replications (tests/economy.py).
"""

from __future__ import annotations

import importlib.util
import weakref
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from economy import assert_lowers
from economy import assert_raises
from economy import market_rows
from economy import sector_rows

import marketsim
from marketsim.cli import cli
from marketsim.plugin import POSTED_PRICE
from marketsim.plugin import MarketBook
from marketsim.plugin import clear_posted_price

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
SHORT = "experiment.steps=36"
"""Paired claims run three years: the carbon price starts in month 12 and the tariff is moved
to month 12 as well, so both act for two years."""


def run(name: str, *overrides: str) -> marketsim.Results:
    """One replication of a shipped experiment."""
    return marketsim.run(marketsim.load_experiment(EXPERIMENTS / f"{name}.toml", list(overrides)))


def tariff_plugin():
    """The tariff plugin's module, loaded from its file (as an experiment loads it)."""
    path = ROOT / "plugins" / "accelerator_tariff.py"
    spec = importlib.util.spec_from_file_location("accelerator_tariff_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- carbon price ------------------------------------------------------------------------------


def test_carbon_fund_receives_price_times_intensity_times_mwh_sold():
    """Each month the carbon fund's receipts (read off the ledger) are the levy per MWh, on its
    ramp, times the MWh the utilities sold; nothing before the start month."""
    results = run("carbon_price", "experiment.steps=30")
    config = marketsim.load_experiment(EXPERIMENTS / "carbon_price.toml").config
    rule = config["carbon_price"]
    mwh_per_mw = 730.0 * config["agents"]["utility"]["load_factor"]
    power = market_rows(results, "power").reset_index(drop=True)
    levy = results.chain["carbon_levy_usd"].to_numpy()
    step = results.chain["step"].to_numpy()
    ramp = np.clip((step - rule["start_step"] + 1) / rule["ramp_months"], 0.0, 1.0)
    per_mwh = rule["price_usd_per_tonne"] * rule["emission_intensity_t_per_mwh"] * ramp
    expected = per_mwh * power["quantity"].to_numpy() * mwh_per_mw
    assert (levy[: rule["start_step"]] == 0).all()
    assert (levy[rule["start_step"] :] > 0).all()
    np.testing.assert_allclose(levy, expected, rtol=1e-12, atol=0)


def test_carbon_price_changes_nothing_before_its_start():
    """Until the start month the run is the baseline's, month for month."""
    priced = run("carbon_price", "experiment.steps=14").markets
    base = run("baseline", "experiment.steps=14").markets
    columns = ["step", "market", "price", "quantity", "demand", "unfilled"]
    assert priced[priced["step"] < 12][columns].equals(base[base["step"] < 12][columns])
    assert not priced[priced["step"] >= 12][columns].equals(base[base["step"] >= 12][columns])


def test_carbon_price_raises_the_power_price():
    """Paired: the levy, passed on in the tariffs, raises the mean power price."""

    def power_price(results):
        return market_rows(results, "power")["price"].mean()

    priced = ("carbon_price", SHORT)
    unpriced = ("carbon_price", SHORT, "carbon_price.price_usd_per_tonne=0")
    assert_raises(priced, unpriced, power_price, "mean power price")


def test_carbon_price_passed_on_lowers_data_centers_gross_margin():
    """Paired: data centers pay the levy in their power bill, so their gross margin falls."""

    def datacenter_gross_margin(results):
        datacenter = sector_rows(results, "datacenter")
        return datacenter["gross_profit"].sum() / datacenter["revenue"].sum()

    priced = ("carbon_price", SHORT)
    unpriced = ("carbon_price", SHORT, "carbon_price.price_usd_per_tonne=0")
    assert_lowers(priced, unpriced, datacenter_gross_margin, "data centers' gross margin")


# -- accelerator tariff ------------------------------------------------------------------------


def test_duty_is_the_rate_times_the_value_of_the_taxed_trade():
    """From the start month, what ``taxes`` receives (read off the ledger) is the rate times the
    value of the trade from US sellers to Asian buyers; nothing before."""
    results = run("accelerator_tariff", "experiment.steps=20", "accelerator_tariff.start_step=12")
    chain = results.chain
    duty = chain["tariff_revenue_usd"].to_numpy()
    value = chain["tariff_lane_value_usd"].to_numpy()
    assert (duty[:12] == 0).all() and value[:12].sum() > 0  # the lane trades before the duty
    assert (value[12:] > 0).all()
    np.testing.assert_allclose(duty[12:], 0.25 * value[12:], rtol=1e-12, atol=0)


def test_without_duty_the_tariff_mechanism_clears_like_posted_price():
    """With rate 0 the shipped experiment reproduces the baseline (the same rule, per edge)."""
    free = run("accelerator_tariff", "experiment.steps=24", "accelerator_tariff.rate=0").markets
    base = run("baseline", "experiment.steps=24").markets
    assert (free["market"] == base["market"]).all()
    scale = base["demand"].to_numpy()
    for column in ("price", "quantity", "demand", "unfilled"):
        gap = np.abs(free[column].to_numpy() - base[column].to_numpy())
        # to rounding: relative to the value, or to the market's demand for rationing dust
        assert (gap <= 1e-9 * np.maximum(np.abs(base[column].to_numpy()), scale)).all(), column


def random_book(rng, n_buyers=7, n_sellers=5):
    """A book with random edges, some closed, and some sellers without capacity."""
    degree = rng.integers(0, n_sellers + 1, n_buyers)
    edge_seller = np.concatenate(
        [rng.choice(n_sellers, size=d, replace=False) for d in degree]
    ).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    return MarketBook(
        buyer_indptr=indptr,
        edge_seller=edge_seller,
        edge_open=rng.random(len(edge_seller)) > 0.2,
        seller_price=rng.uniform(0.5, 2.0, n_sellers),
        seller_capacity=np.where(rng.random(n_sellers) < 0.2, 0.0, rng.uniform(0, 10, n_sellers)),
        buyer_demand=rng.uniform(0, 8, n_buyers),
        buyer_limit_price=np.full(n_buyers, np.inf),
        buyer_forward_demand=np.zeros(n_buyers),
    )


def test_tariff_clearing_without_duty_matches_the_builtin_rule_on_random_books():
    """Books with closed edges, sold-out sellers and rationing: every field agrees."""
    plugin = tariff_plugin()
    rng = np.random.default_rng(20261129)
    for sensitivity, rounds in ((0.0, 1), (4.0, 3), (12.0, 5)):
        params = {"price_sensitivity": sensitivity, "max_rounds": rounds}
        for _ in range(50):
            book = random_book(rng)
            ours = plugin.clear_tariff_posted_price(book, params)
            builtin = clear_posted_price(book, params)
            for field in (
                "seller_sold",
                "seller_requested",
                "seller_value",
                "buyer_filled",
                "buyer_unfilled",
                "buyer_value",
            ):
                np.testing.assert_allclose(
                    getattr(ours, field), getattr(builtin, field), rtol=1e-9, atol=1e-12
                )
            assert ours.price == pytest.approx(builtin.price, rel=1e-9)


def test_a_taxed_buyer_splits_its_demand_by_duty_inclusive_prices():
    """Two sellers at the same price; a duty on one edge of buyer 1 only. Buyer 0 splits evenly;
    buyer 1 buys from the taxed seller in the logit ratio (1 + rate) ** -sensitivity."""
    plugin = tariff_plugin()
    book = MarketBook(
        buyer_indptr=np.array([0, 2, 4]),
        edge_seller=np.array([0, 1, 0, 1]),
        edge_open=np.ones(4, dtype=bool),
        seller_price=np.array([100.0, 100.0]),
        seller_capacity=np.array([1e9, 1e9]),
        buyer_demand=np.array([10.0, 10.0]),
        buyer_limit_price=np.full(2, np.inf),
        buyer_forward_demand=np.zeros(2),
    )
    rate = np.array([0.0, 0.0, 0.25, 0.0])
    trade = plugin._Trade(rate > 0, rate)
    plugin._TRADE[id(book)] = (weakref.ref(book), trade)
    params = {key: param.default for key, param in POSTED_PRICE.schema.params.items()}
    outcome = plugin.clear_tariff_posted_price(book, params)
    taxed_weight = 1.25 ** -params["price_sensitivity"]
    np.testing.assert_allclose(trade.fill[:2], [5.0, 5.0], rtol=1e-12)
    np.testing.assert_allclose(
        trade.fill[2:], 10.0 * np.array([taxed_weight, 1.0]) / (1.0 + taxed_weight), rtol=1e-12
    )
    # sellers are paid their posted price; the duty is not in the outcome (it is posted apart)
    np.testing.assert_allclose(outcome.buyer_value, [1000.0, 1000.0], rtol=1e-12)


def test_tariff_shifts_the_taxed_regions_purchases_to_untaxed_sellers():
    """Paired: Asian data centers buy a smaller share of their accelerators from US vendors."""

    def share_from_taxed_sellers(results):
        chain = results.chain[results.chain["step"] >= 12]
        return chain["tariff_lane_units"].sum() / chain["tariff_importer_units"].sum()

    taxed = ("accelerator_tariff", SHORT, "accelerator_tariff.start_step=12")
    free = (*taxed, "accelerator_tariff.rate=0")
    assert_lowers(taxed, free, share_from_taxed_sellers, "share bought from US sellers")


# -- bad settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("experiment", "setting", "key", "says"),
    [
        ("carbon_price", "carbon_price.price_usd_per_tonne=-5", "price_usd_per_tonne", ">= 0"),
        ("carbon_price", 'carbon_price.sellers=["utilities"]', "carbon_price.sellers", "utility"),
        ("carbon_price", "carbon_price.pass_through=1.5", "carbon_price.pass_through", "<= 1"),
        ("accelerator_tariff", "accelerator_tariff.rate=-0.1", "accelerator_tariff.rate", ">= 0"),
        (
            "accelerator_tariff",
            'accelerator_tariff.to_region="us"',
            "accelerator_tariff.to_region",
            "must differ",
        ),
        (
            "accelerator_tariff",
            'accelerator_tariff.from_region="mars"',
            "accelerator_tariff.from_region",
            "'mars'",
        ),
        (
            "accelerator_tariff",
            'markets.accelerators.mechanism="posted_price"',
            "markets.accelerators.mechanism",
            "tariff_posted_price",
        ),
    ],
)
def test_bad_settings_stop_the_run_with_one_line(experiment, setting, key, says, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["run", str(EXPERIMENTS / f"{experiment}.toml"), "--set", setting, "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert key in lines[0] and says in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
