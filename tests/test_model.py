"""The Mesa model: agents are handles onto arrays, and the API works as Mesa users expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import marketsim
from marketsim.model import SupplyChainModel

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"


@pytest.fixture()
def model():
    """A baseline model after three steps."""
    built = SupplyChainModel(marketsim.load_experiment(BASELINE), np.random.SeedSequence(5))
    for _ in range(3):
        built.step()
    return built


def test_every_firm_and_segment_is_a_mesa_agent(model):
    """model.agents holds one agent per firm and segment; groupby counts them by sector."""
    counts = {name: sector.count for name, sector in model.sectors.items()}
    assert len(model.agents) == sum(counts.values())
    grouped = model.agents.groupby("sector")
    assert {name: len(group) for name, group in grouped} == counts
    utilities = model.agents.select(lambda agent: agent.sector == "utility")
    assert len(utilities) == counts["utility"]


def test_agent_state_reads_the_arrays(model):
    """An agent's cash is its ledger balance; its state is its row of the sector's arrays."""
    cash = model.ledger.balances[model.ledger.asset("cash")]
    datacenter = model.sectors["datacenter"]
    for agent in model.agents.select(lambda a: a.sector == "datacenter"):
        assert agent.cash == cash[agent.row]
        assert agent.state["accelerators"] == datacenter.fleet[agent.index]
    segment = next(iter(model.agents.select(lambda a: a.sector == "end_demand")))
    assert segment.state["demand_mtokens"] > 0


def test_mesa_step_counter_and_rng_advance(model):
    """Mesa's own step counter advances with the model's; model.rng is a numpy Generator."""
    assert model.steps == model.step_index == 3
    assert isinstance(model.rng, np.random.Generator)


def test_sector_streams_do_not_depend_on_other_sectors(model):
    """A named random stream is the same whichever other streams were drawn from."""
    first = model.stream("end_demand").standard_normal(3)
    model.stream("something_else").standard_normal(10)
    assert np.array_equal(first, model.stream("end_demand").standard_normal(3))


def test_run_model_runs_the_experiments_steps():
    """Mesa's run_model() stops after experiment.steps steps (running turns False)."""
    experiment = marketsim.load_experiment(BASELINE, ["experiment.steps=4"])
    model = SupplyChainModel(experiment, np.random.SeedSequence(2))
    assert model.running
    model.run_model()
    assert not model.running
    assert model.steps == model.step_index == 4
    assert model.recorder.steps == [0, 1, 2, 3]
