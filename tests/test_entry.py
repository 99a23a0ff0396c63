"""Entry and exit of firms (`marketsim.entry`): dormant rows, entry after a lead time when
returns beat the cost of capital, entrants' capacity and share, the incumbents' margin, and
exit on sustained losses (not counted as a default)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from economy import SEED as CLAIM_SEED

import marketsim
from marketsim.analysis.stats import t_interval
from marketsim.model import SupplyChainModel

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"
SEED = 20_261_129
REPLICATIONS = 10
NEVER = "1200"
"""An entry patience no run in these tests reaches: potential entrants stay dormant."""


NO_ENTRANTS = [
    f"agents.{sector}.potential_entrants=0" for sector in ("chip_vendor", "datacenter", "inference")
]
"""The baseline's potential entrants switched off, so each test sets its own."""


def model(*overrides: str, seed=SEED) -> SupplyChainModel:
    return SupplyChainModel(marketsim.load_experiment(BASELINE, [*NO_ENTRANTS, *overrides]), seed)


def entrants(sector: str, count: int, patience: str = NEVER, lead: int = 12) -> list[str]:
    return [
        f"agents.{sector}.potential_entrants={count}",
        f"agents.{sector}.entry_patience_months={patience}",
        f"agents.{sector}.entry_lead_months={lead}",
    ]


def incumbent_rows(m: SupplyChainModel, sector: str) -> slice:
    start = m.sectors[sector].rows.start
    return slice(start, start + m.experiment["agents"][sector]["count"])


def entrant_rows(m: SupplyChainModel, sector: str) -> slice:
    return slice(incumbent_rows(m, sector).stop, m.sectors[sector].rows.stop)


# -- dormant rows ------------------------------------------------------------------------------

DORMANT_EVERYWHERE = [
    *entrants("chip_vendor", 2),
    *entrants("utility", 1),
    *entrants("datacenter", 3),
    *entrants("inference", 2),
]


def test_dormant_rows_hold_nothing_and_do_nothing():
    m = model("experiment.steps=12", *DORMANT_EVERYWHERE)
    ledger, firms = m.ledger, m.firms
    dormant = np.zeros(firms.n, dtype=bool)
    for name in ("chip_vendor", "utility", "datacenter", "inference"):
        dormant[entrant_rows(m, name)] = True
    assert dormant.sum() == 8
    # a Mesa agent for every row, incumbents and potential entrants alike
    segments = m.experiment["agents"]["end_demand"]["count"]
    assert len(m.agents) == firms.n + segments
    for step in range(12):
        m.step()
        assert not firms.alive[dormant].any()
        assert (firms.defaulted_step[dormant] == -1).all()
        assert (ledger.balances[:, : firms.n][:, dormant] == 0.0).all()  # no cash, no goods
        assert (firms.revenue[dormant] == 0.0).all() and (firms.capex[dormant] == 0.0).all()
        for sector in m.firm_sectors:
            mask = dormant[sector.rows]
            if mask.any():
                assert (sector.offered[mask] == 0.0).all(), (sector.name, step)
                assert (sector.sold[mask] == 0.0).all(), (sector.name, step)
    assert m.entry.entries.sum() == 0
    rows = m.recorder.tables(0)["sectors"]
    alive = rows[rows["step"] == 11].set_index("sector")["firms_alive"]
    for name in ("chip_vendor", "utility", "datacenter", "inference"):
        assert alive[name] == m.experiment["agents"][name]["count"]  # operating firms only


def test_dormant_rows_leave_the_incumbents_economy_unchanged():
    """Potential entrants that never enter change nothing: the same tables to 1e-9."""
    quiet = [*entrants("chip_vendor", 2), *entrants("utility", 1), *entrants("inference", 2)]
    settings = ["experiment.steps=24", f"experiment.seed={SEED}", *NO_ENTRANTS]
    with_rows = marketsim.run(marketsim.load_experiment(BASELINE, [*settings, *quiet]))
    without = marketsim.run(marketsim.load_experiment(BASELINE, settings))
    for table in ("sectors", "markets", "chain"):
        a, b = with_rows.tables[table], without.tables[table]
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-6)


# -- entry -------------------------------------------------------------------------------------


def test_entrant_commits_when_returns_beat_the_cost_of_capital_and_starts_after_the_lead():
    lead = 6
    m = model("experiment.steps=30", *entrants("chip_vendor", 2, patience="3", lead=lead))
    rows = entrant_rows(m, "chip_vendor")
    first = rows.start
    committed_at = None
    for step in range(30):
        funds_before = float(m.sectors["investor"].cash.sum()) if step else None
        m.step()
        if committed_at is None and m.entry.start_step[first] >= 0:
            committed_at = step
            assert m.entry.start_step[first] == step + lead
            assert m.firms.equity_raised[first] > 0.0  # equity from the capital market
            assert m.firms.cash[first] == m.firms.equity_raised[first]
            assert funds_before is not None
        if committed_at is not None and step < committed_at + lead:
            assert not m.firms.alive[first]
            assert m.entry.entries[0] == 0
    assert committed_at is not None, "chip vendors' returns beat the cost of capital"
    # sector ROIC beat the discount rate for entry_patience_months before the commitment
    assert committed_at >= 3
    assert m.firms.alive[first]
    assert m.entry.entries[0] >= 1
    assert m.firms.defaulted_step[first] == -1


def test_no_entry_when_returns_fall_short_of_the_cost_of_capital():
    # overheads of 95% of revenue: every chip vendor loses money, whatever its markup
    m = model(
        "experiment.steps=30",
        "agents.chip_vendor.opex_share_of_revenue=0.95",
        *entrants("chip_vendor", 2, patience="3", lead=6),
    )
    for _ in range(30):
        m.step()
        assert m.entry.months_above[0] == 0
    assert m.entry.entries.sum() == 0
    assert not m.entry.committed.any()
    assert m.entry.dormant[entrant_rows(m, "chip_vendor")].all()


def test_no_entry_without_a_capital_market():
    m = model(
        "experiment.steps=30",
        "agents.investor.count=0",
        *entrants("chip_vendor", 2, patience="3", lead=6),
    )
    for _ in range(30):
        m.step()
    assert m.entry.entries.sum() == 0
    assert (m.firms.equity_raised == 0.0).all()


def test_entrant_adds_capacity_and_takes_market_share():
    lead = 6
    m = model("experiment.steps=36", *entrants("chip_vendor", 1, patience="3", lead=lead))
    vendor = m.sectors["chip_vendor"]
    incumbents = incumbent_rows(m, "chip_vendor")
    row = entrant_rows(m, "chip_vendor").start
    k = row - vendor.rows.start
    entrant_sold = 0.0
    for step in range(36):
        operating_capacity = vendor.capacity_units[m.firms.alive[vendor.rows]].mean()
        m.step()
        if m.entry.start_step[row] == step:
            expected = vendor.params["entry_scale"] * operating_capacity
            np.testing.assert_allclose(vendor.capacity_units[k], expected, rtol=1e-12)
        if m.firms.alive[row]:
            entrant_sold += vendor.sold[k]
    assert m.firms.alive[row]
    assert entrant_sold > 0.0
    assert vendor.market_share[k] > 0.0
    assert vendor.market_share[: incumbents.stop - incumbents.start].sum() < 1.0
    frame = m.recorder.tables(0)["sectors"]
    entries = frame[frame["sector"] == "chip_vendor"]["entries"].to_numpy()
    assert entries[-1] == 1 and (np.diff(entries) >= 0).all()


@cache
def incumbents_gross_margin(potential_entrants: int, replication: int) -> float:
    """Chip vendor incumbents' gross margin (gross profit / revenue) over months 19-36.

    Month 19 is the earliest an entrant can operate with the default entry parameters
    (6 months of patience, from the books of month 0, then a 12-month lead).
    """
    seed = np.random.SeedSequence(CLAIM_SEED).spawn(REPLICATIONS)[replication]
    m = model(
        "experiment.steps=37",
        f"agents.chip_vendor.potential_entrants={potential_entrants}",
        seed=seed,
    )
    rows = incumbent_rows(m, "chip_vendor")
    revenue = cost = 0.0
    for step in range(37):
        m.step()
        if step >= 19:
            revenue += m.firms.revenue[rows].sum()
            cost += m.firms.cost_of_goods[rows].sum()
    return (revenue - cost) / revenue


def test_more_entrants_lower_the_incumbents_margin():
    """Paired over 10 common-random-number replications: 95% CI of the difference < 0."""
    differences = np.array(
        [incumbents_gross_margin(2, r) - incumbents_gross_margin(0, r) for r in range(REPLICATIONS)]
    )
    mean = differences.mean()
    low, high = t_interval(
        np.array([mean]), np.array([differences.std(ddof=1)]), np.array([REPLICATIONS])
    )
    assert high[0] < 0, f"paired difference {mean:.4g} [{low[0]:.4g}, {high[0]:.4g}] not < 0"


# -- exit --------------------------------------------------------------------------------------

LOSING = [
    "experiment.steps=12",
    "agents.inference.opex_share_of_revenue=0.5",  # overheads above the gross margin
    "agents.inference.cash_dispersion=0",
]


def test_exit_on_sustained_losses_is_not_a_default():
    patience = 3
    m = model(*LOSING, f"agents.inference.exit_patience_months={patience}")
    rows = incumbent_rows(m, "inference")
    firm = m.sectors["inference"]
    paid_out = 0.0
    for step in range(12):
        m.step()
        exiting = m.entry.exited_step[rows] == step
        paid_out += m.firms.dividends[rows][exiting].sum()
        if step < patience - 1:
            assert m.firms.alive[rows].all()  # not before exit_patience_months of losses
    assert (m.entry.exited_step[rows] >= patience - 1).all()
    assert not m.firms.alive[rows].any()
    assert (m.firms.defaulted_step[rows] == -1).all()
    assert (m.firms.debt[rows] == 0.0).all()
    np.testing.assert_allclose(m.firms.cash[rows], 0.0, atol=1e-3)
    assert (firm.offered == 0.0).all() and (firm.compute_bought == 0.0).all()
    assert paid_out > 0.0  # the cash left went to shareholders
    frame = m.recorder.tables(0)["sectors"]
    last = frame[frame["step"] == 11].set_index("sector")
    count = rows.stop - rows.start
    assert last.loc["inference", "exits"] == count
    assert last.loc["inference", "defaults"] == 0
    assert last.loc["inference", "firms_alive"] == 0


def test_firms_do_not_exit_by_default():
    m = model(*LOSING)
    for _ in range(12):
        m.step()
    assert m.entry.exits.sum() == 0
    assert (m.entry.exited_step == -1).all()


# -- edges of the ranges ------------------------------------------------------------------------

EDGES = {
    "fastest": ("1", 1, 10.0, 1),
    "tiny": ("1", 1, 5e-324, 1),
    "slow": ("1200", 240, 1.0, 1200),
}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_entry_and_exit_at_the_edges_of_their_ranges_run_clean(checked_run, case):
    """Entrants in every firm sector at the parameters' bounds: every number stays finite,
    the ledger balances and the step guard passes (`conftest.run_checked`)."""
    patience, lead, scale, exit_patience = EDGES[case]
    overrides = []
    for sector in ("chip_vendor", "network_vendor", "utility", "datacenter", "inference"):
        overrides += [
            *entrants(sector, 3, patience=patience, lead=lead),
            f"agents.{sector}.entry_scale={scale}",
            f"agents.{sector}.exit_patience_months={exit_patience}",
        ]
    tables = checked_run(overrides, steps=24)
    assert (tables["sectors"]["entries"] >= 0).all()
