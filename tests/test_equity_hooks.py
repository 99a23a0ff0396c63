"""The capital market and the outside accounts go through hooks a plugin can use too.

- ``marketsim_value_firms`` publishes ``model.equity``; a plugin can be the capital market
  (with the investor switched off), or adjust the built-in's offer (``trylast``);
- ``marketsim_buy_new_shares`` / ``marketsim_receive_dividends`` settle the cash, the first
  implementation that returns True wins; without one dividends go to ``savers``;
- a malformed publication is named (plugin, hook, field) with exit 2; shares issued with no
  one to pay for them stop the run;
- ``marketsim_register_outside_accounts`` adds accounts to the ledger, closed into
  ``outside_world`` each step like the built-in ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import marketsim
from marketsim.cli import cli
from marketsim.errors import ExperimentError
from marketsim.model import SupplyChainModel


def run_model(path, steps: int) -> SupplyChainModel:
    model = SupplyChainModel(marketsim.load_experiment(path), 1)
    for _ in range(steps):
        model.step()
    return model


SOVEREIGN_FUND = """\
import numpy as np
import marketsim

RATIO = 1.25
OFFER_USD = 2e9


@marketsim.hookimpl
def marketsim_register_outside_accounts(register):
    register("sovereign_fund", "a sovereign fund that buys new shares and takes dividends")


@marketsim.hookimpl
def marketsim_value_firms(model, step):
    equity = model.equity
    alive = model.firms.alive
    equity.valuation_ratio = np.full(model.firms.n, RATIO)
    equity.fundamental = np.where(alive, np.maximum(model.firms.cash, 0.0), 0.0)
    equity.valuation = RATIO * equity.fundamental
    equity.offer = np.where(alive, OFFER_USD, 0.0)
    equity.cost_of_capital_per_year = 0.08
    equity.trend_follower_share = 0.0
    equity.active = True


def _move(model, amounts, to_firms):
    ledger = model.ledger
    fund = ledger.account("sovereign_fund")
    firms = np.arange(model.firms.n)
    payer, payee = (fund, firms) if to_firms else (firms, fund)
    flow = ledger.flows.EQUITY if to_firms else ledger.flows.DIVIDEND
    ledger.transfer(ledger.asset("cash"), payer, payee, amounts, flow)


@marketsim.hookimpl
def marketsim_buy_new_shares(model, amounts):
    _move(model, amounts, to_firms=True)
    model.firms.equity_raised += amounts
    model.__dict__["bought"] = model.__dict__.get("bought", 0.0) + float(amounts.sum())
    return True


@marketsim.hookimpl
def marketsim_receive_dividends(model, amounts):
    _move(model, amounts, to_firms=False)
    model.__dict__["dividends"] = model.__dict__.get("dividends", 0.0) + float(amounts.sum())
    return True
"""


def test_a_plugin_can_be_the_capital_market(write_experiment, tmp_path):
    """With the investor switched off, a plugin values firms, funds them and takes their
    dividends through the hooks; the results and the ledger follow."""
    (tmp_path / "sovereign.py").write_text(SOVEREIGN_FUND)
    path = write_experiment('plugins = ["sovereign.py"]\n[agents.investor]\ncount = 0\n', steps=12)
    model = run_model(path, 12)
    assert model.equity.active
    assert "sovereign_fund" in model.ledger.outside_accounts
    assert model.bought > 0  # firms drew on the fund's offer
    assert model.dividends > 0  # and paid it dividends
    results = marketsim.run(marketsim.load_experiment(path))
    assert np.allclose(results.chain["valuation_to_fundamental"].dropna(), 1.25)
    assert (results.chain["trend_follower_share"] == 0.0).all()
    assert results.sectors["equity_issued"].sum() > 0


def test_without_any_capital_market_dividends_go_to_savers(write_experiment):
    path = write_experiment("[agents.investor]\ncount = 0\n", steps=12)
    model = run_model(path, 12)
    assert not model.equity.active
    assert (model.valuation_ratio == 1.0).all()
    assert (model.equity.offer == 0.0).all()
    results = marketsim.run(marketsim.load_experiment(path))
    assert results.chain["valuation_to_fundamental"].isna().all()


CUT_THE_OFFER = """\
import marketsim


@marketsim.hookimpl(trylast=True)
def marketsim_value_firms(model, step):
    model.equity.offer[:] = 0.0
"""


def test_a_trylast_plugin_adjusts_the_built_in_offer(write_experiment, tmp_path):
    """The built-in capital market publishes first; a trylast plugin sees and changes it."""
    (tmp_path / "cut.py").write_text(CUT_THE_OFFER)
    base = marketsim.run(marketsim.load_experiment(write_experiment(steps=24)))
    cut = marketsim.run(
        marketsim.load_experiment(
            write_experiment('plugins = ["cut.py"]\n', name="cut.toml", steps=24)
        )
    )
    assert base.sectors["equity_issued"].sum() > 0
    assert cut.sectors["equity_issued"].sum() == 0.0
    assert cut.chain["valuation_to_fundamental"].notna().all()  # the valuation still shows


BAD_RATIO = """\
import numpy as np
import marketsim


@marketsim.hookimpl(trylast=True)
def marketsim_value_firms(model, step):
    model.equity.valuation_ratio = np.full(model.firms.n, np.nan)
"""

OFFER_WITHOUT_BUYER = """\
import numpy as np
import marketsim


@marketsim.hookimpl
def marketsim_value_firms(model, step):
    model.equity.offer = np.full(model.firms.n, 1e12)
    model.equity.active = True
"""


@pytest.mark.parametrize(
    ("source", "investors", "expected"),
    [
        (BAD_RATIO, 2, ["bad.py", "marketsim_value_firms", "valuation_ratio", "not finite"]),
        (OFFER_WITHOUT_BUYER, 0, ["marketsim_buy_new_shares", "shares"]),
    ],
)
def test_capital_market_misbehaviour_is_named(
    write_experiment, tmp_path, source, investors, expected
):
    (tmp_path / "bad.py").write_text(source)
    path = write_experiment(
        f'plugins = ["bad.py"]\n[agents.investor]\ncount = {investors}\n', steps=24
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    for word in expected:
        assert word in line, line
    assert not out.exists()


CARBON_FUND = """\
import numpy as np
import marketsim


@marketsim.hookimpl
def marketsim_register_outside_accounts(register):
    register("carbon_fund", "receives a levy on data centers' cash")


@marketsim.hookimpl
def marketsim_step_end(model):
    ledger = model.ledger
    rows = np.flatnonzero(model.firms.alive & (model.firms.cash > 0))
    ledger.transfer(
        ledger.asset("cash"),
        rows,
        ledger.account("carbon_fund"),
        1e-3 * model.firms.cash[rows],
        ledger.flows.OPEX,
    )
"""


def test_plugins_register_outside_accounts(write_experiment, tmp_path):
    """A registered outside account is in the ledger and closed into outside_world each
    step like the built-in ones; the books still balance."""
    (tmp_path / "carbon.py").write_text(CARBON_FUND)
    model = run_model(write_experiment('plugins = ["carbon.py"]\n', steps=3), 3)
    ledger = model.ledger
    assert ledger.outside_accounts[-1] == "outside_world"
    assert {"carbon_fund", "savers", "lenders", "taxes"} <= set(ledger.outside_accounts)
    cash = ledger.asset("cash")
    # closed into outside_world at the start of the step: holds only this step's levy
    levy = ledger.balances[cash, ledger.account("carbon_fund")]
    assert levy > 0
    assert ledger.opening[cash, ledger.account("carbon_fund")] == 0.0


CLASH = """\
import marketsim


@marketsim.hookimpl
def marketsim_register_outside_accounts(register):
    register("savers", "something else entirely")
"""


def test_an_outside_account_with_two_meanings_is_refused(write_experiment, tmp_path):
    (tmp_path / "clash.py").write_text(CLASH)
    with pytest.raises(ExperimentError, match="savers.*registered twice"):
        marketsim.load_experiment(write_experiment('plugins = ["clash.py"]\n'))
