"""The classics reproduced through the framework (plugins/classics, experiments/classics).

Each test runs a shipped experiment through `marketsim.run(marketsim.load_experiment(...))`
(the ledger is checked every step by the model) and compares the Parquet tables' figures
with the classic's formula: the cobweb's factor d/b, Chen et al.'s bullwhip bound, the
Brock-Hommes critical intensity of choice, and SIM's stationary state with a transaction-flow
matrix whose rows and columns sum to zero. docs/classics.md reports the same figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import marketsim
from marketsim.cli import cli
from marketsim.plugin import MarketBook
from marketsim.plugin import brock_hommes_step

ROOT = Path(__file__).resolve().parent.parent
CLASSICS = ROOT / "experiments" / "classics"
AI_SECTORS = {"chip_vendor", "network_vendor", "utility", "datacenter", "inference", "investor"}


def run(name: str, *overrides: str) -> marketsim.Results:
    """Run a shipped classic with ``--set``-style overrides."""
    return marketsim.run(marketsim.load_experiment(CLASSICS / f"{name}.toml", list(overrides)))


# --- the cobweb ------------------------------------------------------------------------------


def price_change_ratios(results) -> np.ndarray:
    """(p_t - p_(t-1)) / (p_(t-1) - p_(t-2)) over the run, from markets.parquet."""
    prices = results.markets.query("market == 'grain'")["price"].to_numpy()
    changes = np.diff(prices)
    return changes[1:] / changes[:-1]


@pytest.mark.parametrize(("name", "factor"), [("cobweb_stable", 0.8), ("cobweb_unstable", 1.2)])
def test_cobweb_price_changes_alternate_and_scale_by_d_over_b(name, factor):
    """Each price change is -d/b times the one before (within 1%): alternating signs,
    shrinking for d/b = 0.8 and growing for d/b = 1.2."""
    ratios = price_change_ratios(run(name))
    assert len(ratios) >= 18
    assert np.all(ratios < 0)  # alternate in sign
    assert np.all(np.abs(-ratios / factor - 1.0) <= 0.01)


def test_unstable_cobweb_fails_the_stable_claim():
    """The unstable run's changes grow: it cannot pass the stable run's assertion."""
    ratios = price_change_ratios(run("cobweb_unstable"))
    assert not np.all(np.abs(-ratios / 0.8 - 1.0) <= 0.01)
    assert np.all(np.abs(ratios) > 1.0)


def test_stable_cobweb_converges_to_the_equilibrium_price():
    """The price approaches p* = (a - c) / (b + d), reported in the chain table."""
    results = run("cobweb_stable")
    prices = results.markets.query("market == 'grain'")["price"].to_numpy()
    equilibrium = results.chain["cobweb_equilibrium_price"].to_numpy()
    assert equilibrium[0] == pytest.approx(80.0 / 1.8)
    gaps = np.abs(prices - equilibrium)
    assert gaps[-1] < 1e-3 * gaps[0]


def test_cobweb_factor_follows_the_parameters_with_many_farmers_and_segments():
    """With parameters of our own (d/b = 0.5, three farmers, two consumer segments) the
    factor is still d/b, and consumers take the whole harvest at the clearing price."""
    results = run(
        "cobweb_stable",
        "experiment.steps=25",  # the changes shrink to 13 x 0.5^25: still far above rounding
        "agents.grain_farmers.count=3",
        "agents.grain_farmers.supply_slope=1.0",
        "agents.grain_farmers.initial_price=30.0",
        "agents.grain_consumers.count=2",
        "agents.grain_consumers.demand_slope=2.0",
        "agents.grain_consumers.demand_intercept=150.0",
    )
    ratios = price_change_ratios(results)
    assert np.all(np.abs(-ratios / 0.5 - 1.0) <= 0.01)
    grain = results.markets.query("market == 'grain'")
    np.testing.assert_allclose(grain["quantity"], grain["supply"], rtol=1e-12)
    demand_at_price = 150.0 - 2.0 * grain["price"]
    np.testing.assert_allclose(grain["quantity"], demand_at_price, rtol=1e-12)


def book(demand, choke, supply) -> MarketBook:
    """A book where every buyer is linked to every seller."""
    n_buyers, n_sellers = len(demand), len(supply)
    return MarketBook(
        buyer_indptr=np.arange(0, n_buyers * n_sellers + 1, n_sellers),
        edge_seller=np.tile(np.arange(n_sellers), n_buyers),
        edge_open=np.ones(n_buyers * n_sellers, dtype=bool),
        seller_price=np.ones(n_sellers),
        seller_capacity=np.asarray(supply, dtype=float),
        buyer_demand=np.asarray(demand, dtype=float),
        buyer_limit_price=np.asarray(choke, dtype=float),
        buyer_forward_demand=np.zeros(n_buyers),
    )


def linear_demand_clear():
    module = marketsim.load_experiment(CLASSICS / "cobweb_stable.toml")
    return module.components.mechanisms["linear_demand"].clear


@pytest.mark.parametrize(
    ("demand", "choke", "supply", "price"),
    [
        ([100.0], [100.0], [40.0], 60.0),  # one buyer: 100 - p = 40
        # choke prices 10 and 50: above 10 only the second buys, 60 (1 - p / 50) = 12 -> 40
        ([30.0, 60.0], [10.0, 50.0], [5.0, 7.0], 40.0),
        # below 10 both buy: 30 (1 - p/10) + 60 (1 - p/50) = 60 -> p = 30 / 4.2
        ([30.0, 60.0], [10.0, 50.0], [60.0], 30.0 / 4.2),
        ([30.0, 60.0], [10.0, 50.0], [100.0], 0.0),  # more than demand at price zero
        ([30.0, 60.0], [10.0, 50.0], [0.0], 50.0),  # no harvest: the highest choke price
    ],
)
def test_linear_demand_mechanism_clears_where_demand_equals_supply(demand, choke, supply, price):
    """The price solves sum_i a_i max(0, 1 - p / L_i) = S; what is sold is what is bought
    and buyers pay what sellers receive."""
    outcome = linear_demand_clear()(book(demand, choke, supply), {})
    assert outcome.price == pytest.approx(price, rel=1e-12, abs=1e-12)
    wanted = np.asarray(demand) * np.clip(1 - outcome.price / np.asarray(choke), 0, 1)
    np.testing.assert_allclose(outcome.buyer_filled, wanted, rtol=1e-12)
    assert outcome.seller_sold.sum() == pytest.approx(outcome.buyer_filled.sum(), rel=1e-12)
    assert outcome.seller_value.sum() == pytest.approx(outcome.buyer_value.sum(), rel=1e-12)
    assert np.all(outcome.seller_sold <= np.asarray(supply) * (1 + 1e-12))


# --- the beer game ---------------------------------------------------------------------------

STAGES = ("beer_retailer", "beer_wholesaler", "beer_distributor", "beer_factory")
WARM_UP = 50
"""Steps left out of the variances: the forecast windows start full of the initial forecast."""


def bullwhip(results) -> list[float]:
    """Var(orders placed) / Var(end demand) at each stage, downstream first."""
    demand = results.chain["beer_end_demand"].to_numpy()[WARM_UP:]
    sectors = results.sectors
    ratios = []
    for stage in STAGES:
        orders = sectors[sectors["sector"] == stage]["beer_orders_placed"].to_numpy()[WARM_UP:]
        ratios.append(float(np.var(orders) / np.var(demand)))
    return ratios


def chen_bound(lead: int, periods: int) -> float:
    """Chen et al. (2000): Var(q) / Var(D) >= 1 + 2L/p + 2L^2/p^2 at the first stage."""
    return 1 + 2 * lead / periods + 2 * lead**2 / periods**2


def test_beer_game_bullwhip_is_above_chen_bound_and_grows_up_the_chain():
    """With safety stock (z = 2, L = 2, p = 4) the retailer's order variance is at least
    2.5 times the demand variance (measured about 3.2; the margin is several times the
    sampling spread of a 2,000-step run) and it grows at every stage; no stage ever wanted
    to return goods, so the linear policy the bound is derived for was followed exactly."""
    results = run("beer_game", "experiment.steps=2000")
    ratios = bullwhip(results)
    assert ratios[0] >= chen_bound(2, 4)
    assert np.all(np.diff(ratios) > 0)  # growing stage by stage
    assert (results.sectors["beer_returns_refused"].dropna() == 0).all()


def test_beer_game_without_safety_stock_attains_the_bound():
    """At z = 0 the policy is q_t = (1 + L/p) d_(t-1) - (L/p) d_(t-1-p), whose variance
    ratio is exactly 1 + 2L/p + 2L^2/p^2 for i.i.d. demand: the measured ratio is within
    10% of it (the sampling spread of a 2,000-step run is about 1.5%). Here L = 3, p = 5."""
    stages = [f"agents.{stage}" for stage in STAGES]
    overrides = [f"{s}.{key}" for s in stages for key in ("safety_factor=0", "lead_time=3")]
    overrides += [f"{s}.forecast_periods=5" for s in stages]
    results = run("beer_game", "experiment.steps=2000", *overrides)
    ratios = bullwhip(results)
    assert ratios[0] == pytest.approx(chen_bound(3, 5), rel=0.10)
    assert np.all(np.diff(ratios) > 0)  # growing stage by stage
    assert (results.sectors["beer_returns_refused"].dropna() == 0).all()


# --- Brock-Hommes ----------------------------------------------------------------------------


def deviations(results) -> np.ndarray:
    return results.chain["bh_deviation"].to_numpy()


def test_brock_hommes_beta_star_is_reported():
    """beta* = ln(R / (g - R)) / C = ln 11 for R = 1.1, g = 1.2, C = 1."""
    results = run("brock_hommes", "experiment.steps=3")
    assert results.chain["bh_beta_star"].iloc[0] == pytest.approx(math.log(11.0), rel=1e-12)
    assert math.log(11.0) == pytest.approx(2.40, abs=0.005)


def test_brock_hommes_fundamental_steady_state_is_stable_below_beta_star():
    """beta = 2.2 < beta*: from x = 0.1 the deviation dies out (below 1e-6 in 1,000 steps)."""
    x = deviations(run("brock_hommes"))
    assert abs(x[-1]) < 1e-6
    assert abs(x[-1]) < abs(x[len(x) // 2]) < abs(x[0])


def test_brock_hommes_fundamental_steady_state_is_unstable_above_beta_star():
    """beta = 2.6 > beta*: the same perturbation grows and settles at the non-fundamental
    steady state x = sqrt((C - ln(R / (g - R)) / beta) / ((R - 1) g)) = 0.805."""
    x = deviations(run("brock_hommes_unstable"))
    settled = math.sqrt((1.0 - math.log(1.1 / 0.1) / 2.6) / (0.1 * 1.2))
    assert abs(x[-1]) > 0.5
    assert x[-1] == pytest.approx(settled, rel=1e-6)


def test_brock_hommes_plugin_follows_the_numba_kernel():
    """The plugin's path is the project's numba map `brock_hommes_step`, step by step."""
    x = deviations(run("brock_hommes", "experiment.steps=50"))
    x1 = x2 = x3 = 0.1
    for t in range(50):
        new, _ = brock_hommes_step(x1, x2, x3, 1.1, 1.2, 0.0, 1.0, 2.2, 0.0)
        x1, x2, x3 = new, x1, x2
        assert x[t] == pytest.approx(new, rel=1e-12, abs=1e-15)


# --- SIM -------------------------------------------------------------------------------------

TFM_ROWS = ("consumption", "government", "wages", "taxes", "money")
TFM_COLUMNS = ("households", "firms", "government")


def tfm(chain, row: str, column: str) -> np.ndarray:
    """One cell of the transaction-flow matrix over the steps (zeros for an empty cell)."""
    name = f"sim_tfm_{row}_{column}"
    return chain[name].to_numpy() if name in chain.columns else np.zeros(len(chain))


def test_sim_converges_to_g_over_theta():
    """Y settles within 0.1% of G / theta = 100, and households' money at H* = 80."""
    chain = run("sim").chain
    output = chain["sim_output"].to_numpy()
    assert output[-1] == pytest.approx(100.0, rel=1e-3)
    assert abs(output[0] - 100.0) > 0.5  # it starts far from it: a claim that can fail
    assert chain["sim_money"].iloc[-1] == pytest.approx(80.0, rel=1e-3)


def test_sim_follows_godley_lavoie_period_by_period():
    """Y_t = (G + alpha2 H_(t-1)) / (1 - alpha1 (1 - theta)), H_t = H_(t-1) + (1 - theta) Y_t
    - C_t from H = 0: 38.46 in the first period, as in Godley and Lavoie's table 3.4."""
    chain = run("sim", "experiment.steps=30").chain
    money, expected = 0.0, []
    for _ in range(30):
        output = (20.0 + 0.4 * money) / (1.0 - 0.6 * 0.8)
        money += 0.8 * output - (output - 20.0)
        expected.append(output)
    np.testing.assert_allclose(chain["sim_output"], expected, rtol=1e-12)
    assert expected[0] == pytest.approx(38.4615, abs=1e-4)


def test_sim_transaction_flow_matrix_rows_and_columns_sum_to_zero_every_period():
    """Every row (a transaction: what one sector pays another receives) and every column
    (a sector's budget: sources = uses, including its change in money) sums to zero."""
    chain = run("sim", "agents.sim_firms.count=3").chain
    scale = 1e-9 * chain["sim_output"].to_numpy()
    for row in TFM_ROWS:
        total = sum(tfm(chain, row, column) for column in TFM_COLUMNS)
        assert np.all(np.abs(total) <= scale), row
    for column in TFM_COLUMNS:
        total = sum(tfm(chain, row, column) for row in TFM_ROWS)
        assert np.all(np.abs(total) <= scale), column
    # the matrix is not empty: consumption, wages and taxes flow every period
    assert np.all(tfm(chain, "wages", "households") > 0)
    assert np.all(tfm(chain, "taxes", "government") > 0)


def test_sim_with_other_policy_settles_at_the_new_g_over_theta():
    """G = 30, theta = 0.25: Y* = 120."""
    chain = run(
        "sim", "agents.sim_government.spending=30", "agents.sim_households.tax_rate=0.25"
    ).chain
    assert chain["sim_output"].iloc[-1] == pytest.approx(120.0, rel=1e-3)


def test_sim_clears_goods_before_labour():
    """Households plan consumption on the income the goods market will pay: goods first."""
    experiment = marketsim.load_experiment(CLASSICS / "sim.toml", ["experiment.steps=1"])
    model = marketsim.SupplyChainModel(experiment, 0)
    assert list(model.markets) == ["output", "labour"]


# --- all of them -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "cobweb_stable",
        "cobweb_unstable",
        "beer_game",
        "brock_hommes",
        "brock_hommes_unstable",
        "sim",
    ],
)
def test_classics_contain_no_ai_chain_sectors(name):
    """The classics do not extend the baseline: only their own sectors and goods."""
    experiment = marketsim.load_experiment(CLASSICS / f"{name}.toml")
    assert not set(experiment.config["agents"]) & AI_SECTORS
    assert set(experiment.config["markets"]).isdisjoint(
        {"accelerators", "network_kits", "power", "compute", "tokens"}
    )


def test_classic_runs_from_the_command_line(tmp_path):
    """`marketsim run` of a classic without firm sectors exits 0 and writes the tables."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["run", str(CLASSICS / "brock_hommes.toml"), "--out", str(out), "--steps", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "no firm sectors to summarise" in result.output
    assert (out / "chain.parquet").is_file()
