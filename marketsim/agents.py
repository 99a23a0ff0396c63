"""Thin Mesa agents: handles onto rows of the sectors' arrays.

The model makes them when ``model.agents`` is first read (`SupplyChainModel.agents`), not at
build; ``state`` reads one row of the sector's state, computed once per step.

Each firm is a `FirmAgent` and each end-market segment a `SegmentAgent`, so the Mesa API
works as Mesa users expect (``model.agents.select(lambda a: a.sector == "utility")``,
``model.agents.groupby("sector")``), but the state lives in numpy arrays: reading
``agent.cash`` reads the ledger. Agents do nothing in a step; sectors act for all of them.
"""

from __future__ import annotations

import mesa


class FirmAgent(mesa.Agent):
    """A firm: a view of row ``row`` of the firm table and member ``index`` of its sector.

    Attributes:
        sector: the sector's name.
        index: position of the firm within its sector.
        row: the firm's row in `marketsim.firms.FirmTable` (and its ledger account).
        region: the firm's region.
    """

    def __init__(self, model, sector, index: int, row: int, region: str):
        super().__init__(model)
        self.sector = sector.name
        self.index = index
        self.row = row
        self.region = region
        self.name = f"{sector.name}:{index}"

    @property
    def cash(self) -> float:
        """Cash (USD), read from the ledger."""
        return float(self.model.firms.cash[self.row])

    @property
    def debt(self) -> float:
        """Outstanding debt (USD)."""
        return float(self.model.firms.debt[self.row])

    @property
    def alive(self) -> bool:
        """False once the firm has defaulted."""
        return bool(self.model.firms.alive[self.row])

    @property
    def revenue(self) -> float:
        """Revenue of the last completed step (USD)."""
        return float(self.model.firms.revenue[self.row])

    @property
    def net_income(self) -> float:
        """Net income of the last completed step (USD)."""
        return float(self.model.firms.net_income[self.row])

    @property
    def state(self) -> dict[str, float]:
        """The sector-specific state of this firm (names carry units)."""
        state = self.model.sector_state(self.sector)
        return {k: float(v[self.index]) for k, v in state.items()}


class SegmentAgent(mesa.Agent):
    """An end-market segment (not a firm: it pays from the outside account)."""

    def __init__(self, model, sector, index: int, region: str):
        super().__init__(model)
        self.sector = sector.name
        self.index = index
        self.region = region
        self.name = f"{sector.name}:{index}"

    @property
    def state(self) -> dict[str, float]:
        """This segment's demand, fill and price faced in the last step."""
        state = self.model.sector_state(self.sector)
        return {k: float(v[self.index]) for k, v in state.items()}
