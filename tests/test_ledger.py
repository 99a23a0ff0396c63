"""The books balance: random experiments run clean, stocks are conserved, tampering is caught."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import marketsim
from marketsim import LedgerError
from marketsim.cli import cli
from marketsim.ledger import OUTSIDE_ACCOUNTS
from marketsim.ledger import OUTSIDE_WORLD
from marketsim.ledger import Ledger
from marketsim.model import SupplyChainModel

SECTORS = ("chip_vendor", "network_vendor", "utility", "datacenter", "inference", "end_demand")

CASH_TAMPER_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    model.firms.cash[0] += 1e6
"""

FLEET_TAMPER_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 1:
        model.sectors["datacenter"].vintage_units[0, 0] += 10
"""

FLEET_NAN_PLUGIN = """\
import numpy as np

import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 1:
        model.sectors["datacenter"].vintage_units[0, 0] = np.nan
"""

START_TAMPER_PLUGIN = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_start(model):
    if model.step_index == 2:
        utility = model.sectors["utility"]
        model.firms.cash[utility.rows.start + 1] -= 5e5
"""


def random_overrides(index: int) -> list[str]:
    """A reproducible random valid experiment (as overrides of the baseline) for ``index``."""
    rng = np.random.default_rng(1000 + index)
    overrides = [
        f"experiment.seed={int(rng.integers(0, 2**31))}",
        f"experiment.steps={int(rng.integers(8, 16))}",
        f"graph.buyer_degree={int(rng.integers(1, 4))}",
        f"graph.cross_region_weight={rng.uniform(0, 1)!r}",
        f"finance.interest_rate_per_year={rng.uniform(0, 0.2)!r}",
        f"agents.chip_vendor.demand_elasticity={rng.uniform(0.5, 3.0)!r}",
        f"agents.utility.load_factor={rng.uniform(0.5, 1.0)!r}",
        f"agents.utility.target_reserve_margin={rng.uniform(0.05, 0.5)!r}",
        f"agents.datacenter.demand_optimism={rng.uniform(0.0, 2.0)!r}",
        f"agents.end_demand.elasticity={rng.uniform(0.3, 2.0)!r}",
        f"agents.end_demand.demand_noise={rng.uniform(0.0, 0.3)!r}",
    ]
    overrides += [f"agents.{name}.count={int(rng.integers(1, 5))}" for name in SECTORS]
    if index % 2:
        overrides.append('markets.power.mechanism="call_auction"')
    return overrides


@pytest.mark.parametrize("index", range(8))
def test_random_experiments_keep_the_books(baseline_path, index):
    """Random valid experiments run to the end (the ledger is checked every step)."""
    experiment = marketsim.load_experiment(baseline_path, random_overrides(index))
    steps = experiment.config["experiment"]["steps"]
    results = marketsim.run(experiment)

    sectors, markets = results.sectors, results.markets
    assert sorted(results.chain["step"]) == list(range(steps))
    assert all(math.isfinite(v) for v in sectors.groupby("step")["cash"].sum())
    assert np.isfinite(sectors["revenue"]).all() and np.isfinite(sectors["capex"]).all()
    np.testing.assert_allclose(
        sectors["gross_profit"],
        sectors["revenue"] - sectors["cost_of_goods"],
        rtol=1e-9,
        atol=1e-3,
    )
    expected_net = (
        sectors["revenue"]
        - sectors["cost_of_goods"]
        - sectors["opex"]
        - sectors["interest"]
        - sectors["tax"]
    )
    np.testing.assert_allclose(sectors["net_income"], expected_net, rtol=1e-9, atol=1e-3)
    slack = 1e-9 * (1 + markets[["supply", "demand"]].max(axis=1))
    assert (markets["quantity"] <= markets["supply"] + slack).all()
    assert (markets["quantity"] <= markets["demand"] + slack).all()


@pytest.mark.parametrize("good", ["power", "compute"])
def test_call_auction_clears_at_a_finite_price(baseline_path, good):
    """A market cleared by call auction trades at a finite price within the posted range."""
    overrides = ["experiment.steps=3", f'markets.{good}.mechanism="call_auction"']
    results = marketsim.run(marketsim.load_experiment(baseline_path, overrides))
    market = results.markets[results.markets["market"] == good]
    assert (market["quantity"] > 0).all()
    assert np.isfinite(market["price"]).all() and (market["price"] < 1e6).all()


def test_defaults_scrap_fleets_and_keep_the_books(baseline_path):
    """Data centers with no cash, no credit and no customers default; the books still balance."""
    overrides = [
        "experiment.steps=10",
        "output.firm_level=true",
        "agents.datacenter.initial_cash_usd=0",
        "finance.max_debt_to_assets=0",
        "agents.end_demand.base_demand_mtokens_per_month=1",
    ]
    experiment = marketsim.load_experiment(baseline_path, overrides)
    results = marketsim.run(experiment)
    last = results.sectors[results.sectors["step"] == 9].set_index("sector")
    count = experiment.config["agents"]["datacenter"]["count"]
    assert last.loc["datacenter", "defaults"] == count
    assert last.loc["datacenter", "firms_alive"] == 0
    assert last.loc["datacenter", "written_off"] > 0
    firms = results.firms
    dead = firms[(firms["step"] == 9) & (firms["sector"] == "datacenter")]
    assert (dead["alive"] == 0).all()
    assert (dead["accelerators"] == 0).all() and (dead["cash"] == 0).all()


@pytest.fixture
def model(baseline_path) -> SupplyChainModel:
    """The baseline economy, built directly, before its first step."""
    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=6"])
    return SupplyChainModel(experiment, np.random.SeedSequence(1))


def test_step_conserves_every_asset(model):
    """Cash and each good are conserved over all accounts, outside ones included."""
    ledger = model.ledger
    opening = ledger.balances.sum(axis=1).copy()
    assert opening[ledger.asset("cash")] > 0
    assert opening[ledger.asset("accelerators")] > 0
    for _ in range(3):
        model.step()
        scale = 1.0 + ledger.turnover.sum(axis=1)
        assert np.all(np.abs(ledger.balances.sum(axis=1) - opening) <= 1e-9 * scale), dict(
            zip(ledger.asset_names, ledger.balances.sum(axis=1) - opening, strict=True)
        )
    assert ledger.turnover[ledger.asset("compute")].sum() > 0


def test_market_accounts_are_cleared_after_a_step(model):
    """Every market (clearing-house) account holds nothing at the end of a step."""
    model.step()
    ledger = model.ledger
    names = [ledger.account_names[i] for i in ledger.market_accounts]
    assert {f"market:{good}" for good in model.markets} | {"market:equity"} == set(names)
    held = ledger.balances[:, ledger.market_accounts]
    scale = 1.0 + ledger.turnover[:, ledger.market_accounts]
    assert np.all(np.abs(held) <= 1e-9 * scale)


def test_firm_cash_is_the_ledger(model):
    """A firm's cash as the agents see it is its ledger balance."""
    model.step()
    cash = model.ledger.balances[model.ledger.asset("cash")]
    for agent in model.agents:
        if hasattr(agent, "cash"):
            assert agent.cash == cash[model.ledger.account(agent.name)]


def tampered_run(write_experiment, tmp_path, source: str) -> str:
    """Run the short baseline with a tampering plugin; return the LedgerError message."""
    (tmp_path / "tamper.py").write_text(source)
    experiment = marketsim.load_experiment(write_experiment('plugins = ["tamper.py"]\n'))
    with pytest.raises(LedgerError) as caught:
        marketsim.run(experiment)
    return str(caught.value)


def test_cash_changed_behind_the_ledger_is_caught(write_experiment, tmp_path):
    """Cash added outside the ledger stops the run naming step, account and amount."""
    message = tampered_run(write_experiment, tmp_path, CASH_TAMPER_PLUGIN)
    assert "step 0" in message
    assert "chip_vendor:0" in message and "cash" in message
    assert "1e+06" in message


def test_goods_changed_behind_the_ledger_are_caught(write_experiment, tmp_path):
    """Accelerators added to a fleet without a posting are caught naming firm and good."""
    message = tampered_run(write_experiment, tmp_path, FLEET_TAMPER_PLUGIN)
    assert "step 1" in message
    assert "datacenter:0" in message and "accelerators" in message
    assert "10" in message


def test_fleet_set_to_nan_is_caught(write_experiment, tmp_path):
    """A fleet set to NaN stops the run (a NaN fails every comparison of the checks)."""
    (tmp_path / "tamper.py").write_text(FLEET_NAN_PLUGIN)
    experiment = marketsim.load_experiment(write_experiment('plugins = ["tamper.py"]\n'))
    with pytest.raises(marketsim.MarketsimError) as caught:
        marketsim.run(experiment)
    message = str(caught.value)
    assert "step 1" in message and "datacenter" in message and "NaN" in message


def test_tampering_at_step_start_is_caught(write_experiment, tmp_path):
    """Cash removed at the start of a step is caught at its end."""
    message = tampered_run(write_experiment, tmp_path, START_TAMPER_PLUGIN)
    assert "step 2" in message and "utility:1" in message and "-500000" in message


def test_ledger_error_on_the_command_line(write_experiment, tmp_path):
    """On the command line a ledger violation is one line, exit 2, and nothing is written."""
    (tmp_path / "tamper.py").write_text(CASH_TAMPER_PLUGIN)
    path = write_experiment('plugins = ["tamper.py"]\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "chip_vendor:0" in lines[0] and "step 0" in lines[0]
    assert not out.exists()


DUST_OVERRIDES = [
    "--steps",
    "24",
    "--set",
    "agents.chip_vendor.capacity_per_month=0",
    "--set",
    "agents.datacenter.initial_accelerators=4e6",
    "--set",
    "agents.datacenter.useful_life_months=23",
]


def test_retired_fleet_does_not_stop_on_rounding_dust(baseline_path, tmp_path):
    """Reproducer: a fleet retired vintage by vintage with no deliveries runs to the end.

    The ledger subtracts 23 vintages of 4e6/23 accelerators one by one while the operator
    sums its (then empty) vintages; the two differ by about 1e-9 at step 23, which stopped
    the run before the tolerance followed the magnitudes the account has carried.
    """
    out = tmp_path / "out"
    args = ["run", str(baseline_path), "--out", str(out), "--quiet", *DUST_OVERRIDES]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    chain = pd.read_parquet(out / "chain.parquet")
    assert list(chain["step"]) == list(range(24))


def test_outside_accounts_hold_one_step_of_flows(model):
    """Sources and sinks are closed into outside_world each step: no balance piles up."""
    ledger = model.ledger
    world = ledger.account(OUTSIDE_WORLD)
    outside = [ledger.account(name) for name in OUTSIDE_ACCOUNTS if name != OUTSIDE_WORLD]
    for _ in range(4):
        model.step()
    held = np.abs(ledger.balances[:, outside])
    assert np.all(held <= ledger.turnover[:, outside] * (1 + 1e-12))
    consumed = ledger.balances[ledger.asset("compute"), ledger.account("consumption")]
    assert consumed == ledger.flow_in[ledger.asset("compute"), ledger.flows.CONSUMPTION].sum()
    inside = np.delete(ledger.balances, outside + [world], axis=1).sum(axis=1)
    everything = ledger.balances[:, outside].sum(axis=1) + ledger.balances[:, world] + inside
    scale = 1e-12 * (1 + np.abs(ledger.balances).sum(axis=1))
    np.testing.assert_array_less(np.abs(everything - ledger.opening.sum(axis=1)), scale)


SMALL_ECONOMY = """\
[experiment]
name = "small"
seed = 1
steps = {steps}

[agents.chip_vendor]
count = 1

[agents.network_vendor]
count = 1

[agents.utility]
count = 1

[agents.datacenter]
count = 1

[agents.inference]
count = 1
software_productivity = 0.0   # no exponential efficiency growth: flows stay finite

[agents.end_demand]
count = 1
demand_noise = 0.0
"""


@pytest.mark.slow
def test_long_run_keeps_every_balance_bounded_by_flows(tmp_path):
    """30,000 steps of a small economy: balances stay finite and sinks hold one step's flows.

    Before outside accounts were closed each step, ``consumption`` and ``end_customers``
    kept every unit ever used (30,000 months of compute and tokens) and a long enough run
    overflowed to inf. Slow (one to two minutes): marked ``slow``.
    """
    path = tmp_path / "small.toml"
    path.write_text(SMALL_ECONOMY.format(steps=30_000))
    model = SupplyChainModel(marketsim.load_experiment(path), np.random.SeedSequence(3))
    model.run_model()
    assert model.step_index == 30_000
    ledger = model.ledger
    assert np.isfinite(ledger.balances).all()
    outside = [ledger.account(name) for name in OUTSIDE_ACCOUNTS if name != OUTSIDE_WORLD]
    held = np.abs(ledger.balances[:, outside])
    assert np.all(held <= ledger.turnover[:, outside] * (1 + 1e-12))
    for good in ("compute", "tokens", "power"):
        row = ledger.balances[ledger.asset(good)]
        assert np.abs(row).max() <= 2 * ledger.turnover[ledger.asset(good)].max()


# -- the Ledger on its own -------------------------------------------------------------------


def small_ledger() -> Ledger:
    """Three firm accounts, one market, one outside account; cash and widgets."""
    ledger = Ledger(["a", "b", "c", "market:widgets", "outside"], ["cash", "widgets"], [3])
    ledger.open_balance(0, [0, 1, 2], [100.0, 50.0, 0.0])
    ledger.open_balance(1, [0, 1, 2], [5.0, 0.0, 1.0])
    ledger.begin_step(0)
    return ledger


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), -1.0])
def test_bad_posting_is_refused(amount):
    """A posting of NaN, inf or a negative amount raises LedgerError naming the accounts."""
    ledger = small_ledger()
    before = ledger.balances.copy()
    with pytest.raises(LedgerError, match="from a to b") as caught:
        ledger.transfer(0, [0, 0], [1, 1], [1.0, amount], ledger.flows.REVENUE)
    assert "step 0" in str(caught.value) and "cash" in str(caught.value)
    np.testing.assert_array_equal(ledger.balances, before)


def test_balance_changed_outside_is_caught():
    """A balance edited directly fails the end-of-step check naming account and amount."""
    ledger = small_ledger()
    ledger.transfer(0, 0, 1, 10.0, ledger.flows.REVENUE)
    ledger.check({})
    ledger.balances[1, 2] += 2.5
    with pytest.raises(LedgerError, match=r"step 0: account c, widgets: .* 2\.5"):
        ledger.check({})


def test_uncleared_market_is_caught():
    """Goods left in a market account fail the check."""
    ledger = small_ledger()
    ledger.transfer(1, 0, 3, 2.0, ledger.flows.SALE)
    with pytest.raises(LedgerError, match="market:widgets"):
        ledger.check({})


def test_physical_stock_mismatch_is_caught():
    """A firm's own stock differing from its ledger balance fails the check."""
    ledger = small_ledger()
    ledger.check({1: (np.array([0, 2]), np.array([5.0, 1.0]))})
    with pytest.raises(LedgerError, match="account c, widgets"):
        ledger.check({1: (np.array([0, 2]), np.array([5.0, 4.0]))})


postings = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.integers(0, 4),
        st.integers(0, 4),
        st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(postings)
def test_postings_conserve_totals(moves):
    """Any sequence of valid postings keeps each asset's total and passes the check."""
    ledger = Ledger(["a", "b", "c", "d", "outside"], ["cash", "widgets"], [])
    ledger.open_balance(0, [0, 1], [1e6, 2e6])
    ledger.begin_step(0)
    totals = ledger.balances.sum(axis=1).copy()
    for asset, source, destination, amount in moves:
        ledger.transfer(asset, source, destination, amount, ledger.flows.SALE)
    scale = 1.0 + np.abs(ledger.opening).sum(axis=1) + ledger.turnover.sum(axis=1)
    assert np.all(np.abs(ledger.balances.sum(axis=1) - totals) <= 1e-12 * scale)
    ledger.check({})


def test_nan_stock_is_caught():
    """A firm's own stock of NaN fails the check (NaN compares false with any tolerance)."""
    ledger = small_ledger()
    with pytest.raises(LedgerError, match="account a, widgets: .* nan"):
        ledger.check({1: (np.array([0, 2]), np.array([np.nan, 1.0]))})


def test_nan_balance_is_caught():
    """A balance set to NaN behind the ledger's back fails the check."""
    ledger = small_ledger()
    ledger.balances[0, 1] = np.nan
    with pytest.raises(LedgerError, match="account b, cash: balance is not finite"):
        ledger.check({})


def test_one_ulp_behind_the_ledger_is_caught():
    """The ledger keeps its own copy of the balances: a change of one ulp is seen."""
    ledger = small_ledger()
    ledger.transfer(0, 0, 1, 10.0 / 3.0, ledger.flows.REVENUE)
    ledger.check({})
    ledger.balances[0, 1] = np.nextafter(ledger.balances[0, 1], np.inf)
    with pytest.raises(LedgerError, match="account b, cash: balance changed outside"):
        ledger.check({})


def test_change_between_steps_is_caught():
    """A balance changed after one step's check and before the next step is still caught."""
    ledger = small_ledger()
    ledger.check({})
    ledger.balances[0, 0] += 1.0
    ledger.begin_step(1)
    with pytest.raises(LedgerError, match="step 1: account a, cash: .* by 1"):
        ledger.check({})


def test_dust_of_a_retired_fleet_passes_and_a_real_gap_does_not():
    """Stock summed over vintages vs postings one by one: dust passes, 1e-3 of a unit fails."""
    ledger = Ledger(["fleet", "scrap"], ["cash", "accelerators"], [])
    vintages = np.full(23, 4e6 / 23)
    ledger.open_balance(1, [0], [vintages.sum()])
    for step in range(24):
        ledger.begin_step(step)
        if step < 23:
            ledger.transfer(1, 0, 1, vintages[step], ledger.flows.RETIREMENT)
            vintages[step] = 0.0
        ledger.check({1: (np.array([0]), np.array([vintages.sum()]))})
    assert vintages.sum() == 0.0
    with pytest.raises(LedgerError, match="differs from the firm's own stock"):
        ledger.check({1: (np.array([0]), np.array([1e-3]))})


def test_outside_accounts_are_closed_into_outside_world():
    """begin_step moves each outside balance to outside_world under the closing flow."""
    names = ["firm", "consumption", "end_customers", OUTSIDE_WORLD]
    ledger = Ledger(names, ["cash", "tokens"], [])
    ledger.open_balance(1, [0], [5.0])
    ledger.begin_step(0)
    ledger.transfer(1, 0, 1, 3.0, ledger.flows.CONSUMPTION)
    ledger.transfer(0, 2, 0, 7.0, ledger.flows.REVENUE)
    ledger.check({})
    ledger.begin_step(1)
    np.testing.assert_array_equal(ledger.balances[:, 1:3], 0.0)
    np.testing.assert_array_equal(ledger.balances[:, 3], [-7.0, 3.0])
    closing = ledger.flows.CLOSING
    assert ledger.flow_out[1, closing, 1] == 3.0 and ledger.flow_in[0, closing, 2] == 7.0
    ledger.check({})


# -- sparse postings: the same books as a dense ledger, bit for bit ----------------------------


class DenseLedger:
    """The ledger's arithmetic as it was: dense per-account sums and [asset, flow, account] rows.

    Postings are summed per account with ``np.bincount`` (in posting order from 0.0) and
    applied to whole rows (``row -= paid; row += received``): the reference the sparse
    ledger is held to, bit for bit.
    """

    def __init__(self, ledger: Ledger):
        self.n = len(ledger.account_names)
        self.n_flows = len(ledger.flows)
        self.balances = ledger.balances.copy()
        self.turnover = np.zeros_like(self.balances)
        self.flow_in = np.zeros((len(ledger.asset_names), self.n_flows, self.n))
        self.flow_out = np.zeros_like(self.flow_in)
        self.closed = ledger._closed_accounts
        self.world = ledger._world

    def per_account(self, accounts, amounts):
        return np.bincount(accounts, weights=amounts, minlength=self.n)

    def move(self, asset, paid, received):
        self.balances[asset] -= paid
        self.balances[asset] += received
        self.turnover[asset] += paid + received

    def transfer(self, asset, source, destination, amounts, flow):
        paid, received = self.per_account(source, amounts), self.per_account(destination, amounts)
        self.flow_out[asset, flow] += paid
        self.flow_in[asset, flow] += received
        self.move(asset, paid, received)

    def transfer_flows(self, asset, source, destination, amounts, flows, receiver_flow):
        keys = flows * self.n + source
        by_flow = np.bincount(keys, weights=amounts, minlength=self.n_flows * self.n)
        self.flow_out[asset] += by_flow.reshape(self.n_flows, self.n)
        received = self.per_account(destination, amounts)
        self.flow_in[asset, receiver_flow] += received
        self.move(asset, self.per_account(source, amounts), received)

    def begin_step(self, closing):
        self.turnover[:] = 0.0
        self.flow_in[:] = 0.0
        self.flow_out[:] = 0.0
        if self.world is None or not len(self.closed):
            return
        closed, world = self.closed, self.world
        held = self.balances[:, closed].copy()
        paid, received = np.maximum(held, 0.0), np.maximum(-held, 0.0)
        self.flow_out[:, closing, closed] += paid
        self.flow_in[:, closing, closed] += received
        self.flow_in[:, closing, world] += paid.sum(axis=1)
        self.flow_out[:, closing, world] += received.sum(axis=1)
        self.balances[:, closed] -= held
        self.balances[:, world] += held.sum(axis=1)
        self.turnover[:, closed] += paid + received
        self.turnover[:, world] += (paid + received).sum(axis=1)


def assert_bits_equal(got, want, what):
    """Equal bit for bit (the sign of zero too)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    assert (got.view(np.int64) == want.view(np.int64)).all(), (what, got, want)


ACCOUNT_NAMES = ["a", "b", "c", "d", "end_customers", "consumption", OUTSIDE_WORLD]
AMOUNTS = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-324, 1.0, 1.0, 0.1, 1e300]),  # subnormal, ties, huge
    st.floats(0, 1e12, allow_nan=False, allow_infinity=False),
)
ACCOUNT = st.integers(0, len(ACCOUNT_NAMES) - 1)
ONE_OR_MANY = st.one_of(ACCOUNT, st.lists(ACCOUNT, min_size=0, max_size=6))
POSTING = st.tuples(
    st.sampled_from(["transfer", "transfer_flows", "read", "begin_step"]),
    st.integers(0, 2),  # asset
    ONE_OR_MANY,  # source: one account or one per posting (repeats likely)
    ONE_OR_MANY,  # destination
    st.lists(AMOUNTS, min_size=0, max_size=6),
    st.lists(st.integers(0, 18), min_size=1, max_size=6),  # flow codes
)


def shaped(accounts, n):
    """One account (an int) or a list of them cut or cycled to ``n``."""
    if isinstance(accounts, int):
        return accounts
    if not accounts:
        return np.zeros(n, dtype=np.int64)
    return np.resize(np.array(accounts, dtype=np.int64), n)


@settings(max_examples=150, deadline=None)
@given(st.lists(POSTING, max_size=30))
@example([("transfer", 0, [], [], [], [0])])  # empty transfer
@example([("transfer", 1, 0, [1, 1, 1], [5e-324, 5e-324, 1.0], [13])])
@example([("transfer_flows", 0, [0, 1, 0, 0], 3, [0.1, 0.2, 0.3, -0.0], [1, 2, 1, 3])])
@example([("transfer", 0, [0, 1], [1, 0], [1.0, 1.0], [0]), ("begin_step", 0, 0, 0, [], [0])])
def test_sparse_postings_keep_the_dense_books_bit_for_bit(moves):
    """Any postings, reads and steps: balances, turnover and flows equal a dense ledger's.

    Accounts repeat within a posting, one account pays many, amounts are zero, -0.0,
    subnormal, tied or huge; rows are read between postings (a kept row must follow later
    postings) and steps begin (outside accounts are closed, kept rows are cleared).
    """
    ledger = Ledger(ACCOUNT_NAMES, ["cash", "widgets", "tokens"], [])  # no market to clear
    ledger.open_balance(0, [0, 1, 2], [1e6, 2.5, 0.0])
    ledger.open_balance(1, [0, 2], [7.0, 5e-324])
    ledger.begin_step(0)
    dense = DenseLedger(ledger)
    dense.begin_step(ledger.flows.CLOSING)  # nothing to close yet: only clears
    step = 0
    for kind, asset, source, destination, amounts, flows in moves:
        n = len(amounts)
        source, destination = shaped(source, n), shaped(destination, n)
        amounts = np.array(amounts, dtype=np.float64)
        if kind == "transfer":
            ledger.transfer(asset, source, destination, amounts, flows[0])
            broadcast = np.broadcast_to
            dense.transfer(
                asset, broadcast(source, (n,)), broadcast(destination, (n,)), amounts, flows[0]
            )
        elif kind == "transfer_flows":
            codes = np.resize(np.array(flows, dtype=np.int64), n)
            ledger.transfer_flows(asset, source, destination, amounts, codes)
            receiver = ledger.flows.BUY if asset else ledger.flows.INVESTMENT
            dense.transfer_flows(
                asset,
                np.broadcast_to(source, (n,)),
                np.broadcast_to(destination, (n,)),
                amounts,
                codes,
                receiver,
            )
        elif kind == "read":  # keep a row, so later postings must bring it up to date
            assert_bits_equal(
                ledger.flow_out[asset, flows[0]], dense.flow_out[asset, flows[0]], "read"
            )
            assert_bits_equal(
                ledger.flow_total_in(flows[0], asset), dense.flow_in[asset, flows[0]], "in"
            )
        else:
            step += 1
            ledger.begin_step(step)
            dense.begin_step(ledger.flows.CLOSING)
    assert_bits_equal(ledger.balances, dense.balances, "balances")
    assert_bits_equal(ledger.booked, dense.balances, "booked")
    assert_bits_equal(ledger.turnover, dense.turnover, "turnover")
    assert_bits_equal(np.asarray(ledger.flow_in), dense.flow_in, "flow_in")
    assert_bits_equal(np.asarray(ledger.flow_out), dense.flow_out, "flow_out")
    assert_bits_equal(ledger.posted_net, ledger.booked - ledger.opening, "posted_net")
    if np.isfinite(ledger.balances).all():
        ledger.check({})


@pytest.mark.parametrize(
    "key",
    [
        (0, 1),
        (0, 1, 2),
        (0, -1, -1),
        (0, slice(None), 2),
        (1, slice(None), slice(None)),
        (slice(None), 1, np.array([0, 2, 2])),
        (slice(None), slice(0, 3), 1),
        (0, np.array([1, 13]), slice(0, 2)),
        (Ellipsis, 2),
        (1,),
        1,
    ],
)
def test_flow_book_reads_like_the_dense_array(key):
    """Indexing a flow book gives what indexing the dense [asset, flow, account] array gives."""
    ledger = small_ledger()
    ledger.transfer(0, [0, 1, 0], 2, [1.0, 2.0, 4.0], ledger.flows.REVENUE)
    ledger.transfer(1, 0, [1, 2], [0.5, 0.25], ledger.flows.SALE)
    ledger.transfer(0, 2, 1, 3.0, ledger.flows.REVENUE)
    dense = np.asarray(ledger.flow_in)
    assert dense.shape == ledger.flow_in.shape == (2, len(ledger.flows), 5)
    assert dense[0, ledger.flows.REVENUE].tolist() == [0.0, 3.0, 7.0, 0.0, 0.0]
    got, want = ledger.flow_in[key], dense[key]
    assert np.shape(got) == np.shape(want)
    np.testing.assert_array_equal(got, want)


def test_flows_are_cleared_at_the_start_of_a_step_even_once_read():
    """A row kept by a read is zeroed where it was posted to; the next step starts empty."""
    ledger = small_ledger()
    ledger.transfer(0, [0, 1], 2, [1.0, 2.0], ledger.flows.REVENUE)
    revenue = ledger.flow_total_in(ledger.flows.REVENUE)
    assert revenue.tolist() == [0.0, 0.0, 3.0, 0.0, 0.0]
    ledger.begin_step(1)
    assert revenue.tolist() == [0.0] * 5  # the same row, cleared in place as before
    assert not ledger.turnover.any()
    ledger.transfer(0, 1, 0, 5.0, ledger.flows.REVENUE)
    assert ledger.flow_total_in(ledger.flows.REVENUE).tolist() == [5.0, 0.0, 0.0, 0.0, 0.0]
    assert ledger.turnover[0].tolist() == [5.0, 5.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("source, destination", [(-1, 1), (0, 5), ([0, 7], [1, 1])])
def test_posting_to_an_account_outside_the_ledger_changes_nothing(source, destination):
    """An account index outside the ledger raises IndexError and leaves every balance as is.

    (A negative index must not wrap around to the last account.)
    """
    ledger = small_ledger()
    before = ledger.balances.copy()
    with pytest.raises(IndexError, match="outside the ledger's 5 accounts"):
        ledger.transfer(0, source, destination, [1.0, 1.0], ledger.flows.REVENUE)
    np.testing.assert_array_equal(ledger.balances, before)
    assert not ledger.turnover.any() and not np.asarray(ledger.flow_out).any()
    ledger.check({})


def test_flow_book_cannot_be_written():
    """Flows change only through postings: writing into the flow book is refused."""
    ledger = small_ledger()
    with pytest.raises(TypeError):
        ledger.flow_in[0, 0, 0] = 1.0
