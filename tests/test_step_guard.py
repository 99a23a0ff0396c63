"""The step guard: a NaN, inf or negative quantity or price stops the run on one line.

Each test writes a plugin under ``tmp_path`` that writes one bad value in one phase, runs
the short baseline through the command line and checks: exit code 2, no traceback, one line
on stderr naming the plugin (or built-in), the phase and the field, nothing written.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import marketsim
from marketsim.cli import cli
from marketsim.guard import LIMIT
from marketsim.guard import QUANTITY
from marketsim.guard import SIGNED
from marketsim.guard import StepGuardError
from marketsim.guard import all_obey
from marketsim.guard import violations
from marketsim.sectors.inference import Inference

SECTOR_PLUGIN = '''\
"""A sector of cooling suppliers whose state goes bad at step {step} in {phase}."""
import numpy as np

import marketsim
from marketsim.sectors.base import firm_schema


class Cooling(marketsim.Sector):
    name = "cooling"
    doc = "Cooling suppliers."
    schema = firm_schema(doc, {{}})
    signed_fields = frozenset({{"margin_trend"}})

    def setup(self):
        self.price = np.full(self.count, 10.0)
        self.margin_trend = np.full(self.count, -0.5)  # signed: may be negative

    def {phase}(self, *args):
        if self.model.step_index == {step}:
            self.{field}[{index}] = {value}


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(Cooling)
'''

COOLING = "[agents.cooling]\ncount = 2\n"


def run_cli(path, *extra: str):
    """Run ``path`` through the command line in-process, results under its directory."""
    out = path.parent / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet", *extra])
    return result, out


def refused(result, out) -> str:
    """The one stderr line of a run the guard stopped (exit 2, no traceback, no results)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert not out.exists()
    return lines[0]


def plugin_run(write_experiment, tmp_path, source: str, text: str = "", steps: int = 6):
    """Write ``source`` as ``bad.py``, run the short baseline with it; return the result."""
    (tmp_path / "bad.py").write_text(source)
    path = write_experiment('plugins = ["bad.py"]\n' + text, steps=steps)
    return run_cli(path)


# -- sectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "field", "index", "value", "says"),
    [
        ("account", "price", 1, "np.nan", "field 'price' is NaN at step 3 (firm cooling:1)"),
        ("observe", "price", 0, "np.inf", "field 'price' is inf at step 3 (firm cooling:0)"),
        ("account", "price", 0, "-5.0", "field 'price' is negative (-5) at step 3"),
        ("account", "margin_trend", 0, "np.nan", "field 'margin_trend' is NaN at step 3"),
    ],
)
def test_bad_sector_state_stops_the_run(
    write_experiment, tmp_path, phase, field, index, value, says
):
    """A plugin sector's NaN, inf or negative field names plugin, sector, phase, field, firm."""
    source = SECTOR_PLUGIN.format(phase=phase, field=field, index=index, value=value, step=3)
    line = refused(*plugin_run(write_experiment, tmp_path, source, COOLING))
    assert line.startswith(f"error: plugin 'bad.py' sector 'cooling' ({phase}): {says}")


def test_negative_field_hints_at_signed_fields(write_experiment, tmp_path):
    """A negative quantity says where a field that may be negative is declared."""
    source = SECTOR_PLUGIN.format(phase="account", field="price", index=0, value="-5.0", step=2)
    line = refused(*plugin_run(write_experiment, tmp_path, source, COOLING))
    assert line.endswith("a field that may be negative belongs in Cooling.signed_fields")


def test_signed_field_may_be_negative(write_experiment, tmp_path):
    """A field named in signed_fields may go negative (but not NaN): the run completes."""
    source = SECTOR_PLUGIN.format(
        phase="account", field="margin_trend", index=0, value="-1e12", step=2
    )
    result, out = plugin_run(write_experiment, tmp_path, source, COOLING)
    assert result.exit_code == 0, result.output
    assert (out / "sectors.parquet").exists()


def test_built_in_sector_producing_nan_is_named(baseline_path, monkeypatch):
    """NaN born in a built-in sector's arithmetic stops the run naming built-in and phase."""
    account = Inference.account

    def account_with_a_bug(self, step):
        account(self, step)
        if step == 4:
            with np.errstate(invalid="ignore"):
                self.price = self.price * np.inf * 0.0  # inf * 0: NaN

    monkeypatch.setattr(Inference, "account", account_with_a_bug)
    experiment = marketsim.load_experiment(baseline_path, ["experiment.steps=8"])
    with pytest.raises(StepGuardError) as caught:
        marketsim.run(experiment)
    assert str(caught.value) == (
        "built-in sector 'inference' (account): field 'price' is NaN at step 4 (firm inference:0)"
    )


def test_extreme_software_productivity_never_writes_null_capacity(baseline_path, tmp_path):
    """Reproducer: software_productivity=1e50 once nulled inference capacity with exit 0.

    Whatever the arithmetic or the bounds on the parameter do with it, the run either
    refuses with one line (exit 2) or writes finite capacities: never a silent NaN.
    """
    path = tmp_path / "experiment.toml"
    path.write_text(f'extends = "{baseline_path.as_posix()}"\n')
    result, out = run_cli(path, "--set", "agents.inference.software_productivity=1e50")
    if result.exit_code == 0:
        sectors = pd.read_parquet(out / "sectors.parquet")
        assert sectors["capacity"].notna().all()
    else:
        assert "agents.inference.software_productivity" in refused(result, out)


# -- the market book ------------------------------------------------------------------------

BOOK_PLUGIN = """\
import numpy as np

import marketsim


@marketsim.hookimpl
def marketsim_before_clear(model, market):
    if market.name == "power" and model.step_index == 2:
        market.book.{field}[{index}] = {value}
"""


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("seller_price", "-5.0", "field 'book.seller_price' is negative (-5) at step 2"),
        ("seller_price", "np.nan", "field 'book.seller_price' is NaN at step 2"),
        ("seller_capacity", "-1.0", "field 'book.seller_capacity' is negative (-1) at step 2"),
        ("buyer_demand", "np.inf", "field 'book.buyer_demand' is inf at step 2"),
        ("buyer_limit_price", "np.nan", "field 'book.buyer_limit_price' is NaN at step 2"),
    ],
)
def test_bad_book_from_a_policy_stops_the_run(write_experiment, tmp_path, field, value, says):
    """A before_clear hook writing a bad price, supply or demand is named with the market."""
    source = BOOK_PLUGIN.format(field=field, index=1, value=value)
    line = refused(*plugin_run(write_experiment, tmp_path, source))
    prefix = "error: plugin 'bad.py' hook marketsim_before_clear (market 'power'): "
    assert line.startswith(prefix + says)
    side = "seller utility:1" if field.startswith("seller") else "buyer datacenter:1"
    assert line.endswith(f"({side})")


def test_market_order_limit_price_is_allowed(write_experiment, tmp_path):
    """An infinite limit price is a market order, not an error."""
    source = BOOK_PLUGIN.format(field="buyer_limit_price", index=1, value="np.inf")
    result, _ = plugin_run(write_experiment, tmp_path, source)
    assert result.exit_code == 0, result.output


def test_sector_writing_a_bad_offer_is_named(write_experiment, tmp_path):
    """A sector's own offer with a NaN price names the sector, offer and market."""
    source = """\
import numpy as np

import marketsim
from marketsim.sectors.utility import Utility


class PowerBroker(Utility):
    name = "power_broker"

    def offer(self, market, block):
        super().offer(market, block)
        if self.model.step_index == 1:
            market.book.seller_price[block.start] = np.nan


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(PowerBroker)
"""
    text = "[agents.power_broker]\ncount = 1\n"
    line = refused(*plugin_run(write_experiment, tmp_path, source, text))
    assert line == (
        "error: plugin 'bad.py' sector 'power_broker' (offer in market 'power'): field "
        "'book.seller_price' is NaN at step 1 (firm power_broker:0)"
    )


# -- mechanisms and after_clear -------------------------------------------------------------

MECHANISM_PLUGIN = """\
import numpy as np

import marketsim
from marketsim.markets.mechanisms import POSTED_PRICE
from marketsim.markets.mechanisms import clear_posted_price


def clear(book, params):
    outcome = clear_posted_price(book, params)
    {change}
    return outcome


@marketsim.hookimpl
def marketsim_register_mechanisms(register):
    register(marketsim.MechanismSpec("broken", clear, POSTED_PRICE.schema))
"""

BROKEN_POWER = '[markets.power]\nmechanism = "broken"\n'


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("outcome = None", "returned NoneType, expected a ClearingOutcome at step 0"),
        (
            "outcome.seller_sold = outcome.seller_sold[:-1]",
            "field 'seller_sold' has shape (2,), expected (3,) (one value per seller) at step 0",
        ),
        (
            "outcome.buyer_filled = ['a'] * len(outcome.buyer_filled)",
            "field 'buyer_filled' is list of <U1, expected numbers at step 0",
        ),
        ("outcome.price = float('nan')", "field 'price' is NaN at step 0"),
        ("outcome.price = None", "field 'price' is NoneType, expected a number at step 0"),
        ("outcome.buyer_value[0] = -3.0", "field 'buyer_value' is negative (-3) at step 0"),
    ],
)
def test_bad_mechanism_outcome_stops_the_run(write_experiment, tmp_path, change, says):
    """A mechanism returning None, wrong lengths, strings or bad values is named on one line."""
    source = MECHANISM_PLUGIN.format(change=change)
    line = refused(*plugin_run(write_experiment, tmp_path, source, BROKEN_POWER))
    prefix = "error: plugin 'bad.py' mechanism 'broken' (clear in market 'power'): "
    assert line == prefix + says or line.startswith(prefix + says + " (")


def test_after_clear_writing_nan_is_named(write_experiment, tmp_path):
    """An after_clear hook that spoils the outcome is named, not the mechanism."""
    source = """\
import numpy as np

import marketsim


@marketsim.hookimpl
def marketsim_after_clear(model, market, outcome):
    if market.name == "compute":
        outcome.seller_sold[0] = np.nan
"""
    line = refused(*plugin_run(write_experiment, tmp_path, source))
    assert line == (
        "error: plugin 'bad.py' hook marketsim_after_clear (market 'compute'): field "
        "'seller_sold' is NaN at step 0 (seller datacenter:0)"
    )


# -- hooks at the start and end of a step ---------------------------------------------------


def test_step_start_hook_spoiling_a_sector_is_named(write_experiment, tmp_path):
    """A step_start hook writing NaN into a built-in sector names the hook and the sector."""
    source = """\
import numpy as np

import marketsim


@marketsim.hookimpl
def marketsim_step_start(model):
    if model.step_index == 2:
        model.sectors["inference"].efficiency[1] = np.nan
"""
    line = refused(*plugin_run(write_experiment, tmp_path, source))
    assert line == (
        "error: plugin 'bad.py' hook marketsim_step_start: sector 'inference': field "
        "'efficiency' is NaN at step 2 (firm inference:1)"
    )


def test_step_end_hook_spoiling_the_firm_table_is_named(write_experiment, tmp_path):
    """A step_end hook writing negative debt is named with the firm table field."""
    source = """\
import marketsim


@marketsim.hookimpl
def marketsim_step_end(model):
    if model.step_index == 1:
        model.firms.debt[0] = -1.0
"""
    line = refused(*plugin_run(write_experiment, tmp_path, source))
    assert line == (
        "error: plugin 'bad.py' hook marketsim_step_end: firm table field 'debt' is "
        "negative (-1) at step 1 (firm chip_vendor:0)"
    )


# -- metrics and firm state ------------------------------------------------------------------

METRIC_PLUGIN = """\
import numpy as np

import marketsim
from marketsim import MetricSpec


@marketsim.hookimpl
def marketsim_register_metrics(register):
    register(MetricSpec("{table}", "bad", lambda model: {value}))
"""


@pytest.mark.parametrize(
    ("table", "value", "says"),
    [
        ("chain", "None", "returned NoneType, expected numbers (NaN where undefined) at step 0"),
        ("chain", "'high'", "returned str, expected numbers (NaN where undefined) at step 0"),
        ("chain", "np.inf", "value is inf at step 0"),
        ("chain", "[1.0, 2.0]", "returned shape (2,), expected (1,) (one value per step)"),
        ("markets", "[1.0, None, 2.0, 3.0, 4.0]", "returned list of objects, expected numbers"),
        ("sectors", "np.full(6, -np.inf)", "value is -inf at step 0 (sector 'chip_vendor')"),
    ],
)
def test_bad_metric_stops_the_run(write_experiment, tmp_path, table, value, says):
    """A metric returning None, strings, inf or a wrong shape is named on one line."""
    source = METRIC_PLUGIN.format(table=table, value=value)
    line = refused(*plugin_run(write_experiment, tmp_path, source))
    assert line.startswith(f"error: plugin 'bad.py' metric {table}.bad: {says}")


def test_nan_metric_is_written_as_null(write_experiment, tmp_path):
    """NaN from a metric means undefined: written as null, the run succeeds."""
    source = METRIC_PLUGIN.format(table="chain", value="float('nan')")
    result, out = plugin_run(write_experiment, tmp_path, source)
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out / "chain.parquet")["bad"].isna().all()


def test_firm_state_of_strings_stops_the_run(write_experiment, tmp_path):
    """A sector's firm_state returning strings is one line, not a traceback."""
    source = """\
import marketsim
from marketsim.sectors.base import firm_schema


class Cooling(marketsim.Sector):
    name = "cooling"
    doc = "Cooling suppliers."
    schema = firm_schema(doc, {})

    def firm_state(self):
        return {"mood": ["fine"] * self.count}


@marketsim.hookimpl
def marketsim_register_sectors(register):
    register(Cooling)
"""
    text = COOLING + "[output]\nfirm_level = true\n"
    line = refused(*plugin_run(write_experiment, tmp_path, source, text))
    assert line.startswith(
        "error: plugin 'bad.py' sector 'cooling' (firm_state) column 'mood': returned list"
    )


# -- the checks themselves ------------------------------------------------------------------

RULES = {
    QUANTITY: lambda x: 0.0 <= x < math.inf,
    SIGNED: math.isfinite,
    LIMIT: lambda x: x >= 0.0,
}


@given(
    st.lists(st.lists(st.floats(width=64), max_size=6), max_size=4),
    st.sampled_from(sorted(RULES)),
)
def test_fast_check_agrees_with_the_rule(arrays, rule):
    """The one-reduction check and the locating mask agree with the rule on any floats.

    Any float at all: NaN, both infinities, -0.0, subnormals, empty arrays. The fast check
    may only err on the side of looking again (-0.0 reads as negative bits).
    """
    arrays = [np.array(values, dtype=float) for values in arrays]
    flat = [float(x) for values in arrays for x in values]
    obeys = all(RULES[rule](x) for x in flat)
    bad = [bool(violations(values, rule).any()) for values in arrays]
    assert (not any(bad)) == obeys
    if all_obey(arrays, rule):
        assert obeys
    elif obeys:
        assert any(x == 0.0 and math.copysign(1.0, x) < 0 for x in flat)


def test_negative_zero_is_not_an_error(write_experiment, tmp_path):
    """-0.0 is a zero: a field holding it passes (the fast check looks again and lets it)."""
    source = SECTOR_PLUGIN.format(phase="account", field="price", index=0, value="-0.0", step=2)
    result, _ = plugin_run(write_experiment, tmp_path, source, COOLING)
    assert result.exit_code == 0, result.output
