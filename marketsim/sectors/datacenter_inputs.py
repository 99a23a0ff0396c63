"""The data center's inputs: its recipe, what they cost, and the inputs experiments add.

`DATACENTER_RECIPE` (`marketsim.recipes`) names what one accelerator needs: itself, network
kits, power and the building shell. Those four keep their own code paths in
`marketsim.sectors.datacenter` (delivery pipelines, the power contract, construction).

**Added inputs** (``[agents.datacenter.inputs.<good>] per_mw = x`` or ``per_accelerator =
x``, or a seller's ``input_to``) are handled here, all operators and inputs at once, as
arrays ``(operators, added inputs)``:

- need: ``x`` times the installed fleet (``per_accelerator``) or times the facility MW the
  installed fleet draws (``per_mw``: kW x PUE of each accelerator's generation);
- purchase: each month an operator orders what it lacks, ``need - held``, cut to what it can
  fund at the posted mean price; the good arrives at once (its market clears before the
  compute market, so this month's offer uses it); payments are capex;
- usable fleet: ``held / x`` accelerators (or MW, newest generation first) can run, so the
  added input caps the usable fleet like kits and power (Leontief: the fleet runs on the
  scarcest input); ``x = 0`` never binds;
- depreciation: declining balance, ``book / useful_life_months`` a month;
- retirement: units beyond the need of the fleet left after retirements (they served the
  retired accelerators) go to scrap with their share of the book, which is written off as
  depreciation; units still needed serve the accelerators that replace the retired ones;
- the installed base starts with what it needs, valued at the market's opening reference
  price and half depreciated (like the accelerators);
- the ledger holds each added good in the operator's account (a ``physical_stocks`` entry);
  ``stranded_by_<label>`` in ``firm_state`` and ``chain.stranded_by_<label>`` report the
  accelerators the input alone leaves idle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketsim.finance import affordable_share
from marketsim.finance import capex_budget
from marketsim.recipes import Input
from marketsim.recipes import Recipe
from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.fleet import newest_first
from marketsim.sectors.fleet import runnable_accelerators
from marketsim.sectors.market_data import opening_reference_price

DATACENTER_RECIPE = Recipe(
    inputs=(
        Input("accelerators", "accelerator", label="accelerators", doc="1 per accelerator"),
        Input(
            "network_kits",
            "accelerator",
            params=("kits_per_accelerator",),
            label="network",
            doc="kits_per_accelerator network kits per accelerator",
        ),
        Input(
            "power",
            "accelerator",
            0.001,
            params=("kw_per_accelerator", "pue"),
            label="power",
            stock=False,
            doc="MW contracted per generation-0 accelerator (kW x PUE / 1000); generation g "
            "draws its power ratio times that",
        ),
        Input(
            None,
            "mw",
            label="buildings",
            doc="1 MW of built shell per MW of facility power drawn (built by the operator, "
            "paid to suppliers; no market)",
        ),
    ),
    added_per=("mw", "accelerator"),
)
"""What a data center needs per accelerator (see the module doc)."""


class DatacenterInputs:
    """Input prices and added stock inputs of `marketsim.sectors.datacenter.Datacenter`.

    Expects of the sector: ``recipe`` (the instance's, with added inputs), ``params``,
    ``count``, ``alive``, ``accounts``, ``rows``, ``model``, ``fleet``, ``fleet_mw``,
    ``vintage_units``, ``vintage_mw``, ``vintage_generation``, ``mw_per_new_accelerator``,
    ``schedule``, ``newest_generation`` and the `Sector` helpers.
    """

    recipe: Recipe
    params: Any

    # -- prices of the inputs -----------------------------------------------------------------

    def _market_of(self, label: str):
        return self.model.markets.get(self.recipe.input(label).good)

    def _unit_capex_guess(self) -> float:
        """Capex per accelerator of the installed base: accelerator + kit + rest of server, at
        the markets' opening reference prices (`marketsim.sectors.market_data`)."""
        accelerator = opening_reference_price(self._market_of("accelerators"))
        kit = opening_reference_price(self._market_of("network"))
        return (
            accelerator
            + kit * self.params["kits_per_accelerator"]
            + self.params["server_overhead_usd_per_accelerator"]
        )

    def _posted_mean(self, market) -> float:
        return float(market.book.seller_price.mean()) if market and market.book.n_sellers else 0

    def _unit_prices(self) -> float:
        """Expected cost per accelerator (mean posted price + rest of the server), USD."""
        return self._posted_mean(self._market_of("accelerators")) + self._server_overhead()

    def _kit_price(self) -> float:
        return self._posted_mean(self._market_of("network"))

    def _funded_share(self, spend: np.ndarray) -> np.ndarray:
        """Share of ``spend`` (USD) the operator can still fund at the time of ordering."""
        return affordable_share(capex_budget(self.model, self.rows), spend)

    def full_cost_per_acc_hour(self) -> float:
        """Full cost of an accelerator-hour sold at target utilization (USD).

        Capex of the accelerator, its kits, the rest of the server and its added inputs over
        its useful life, the shell per accelerator over the building's life, site operations
        and power, divided by the hours sold per month.
        """
        p = self.params
        mw = self.mw_per_new_accelerator
        monthly = (
            (
                self._unit_prices()
                + self._kit_price() * p["kits_per_accelerator"]
                + self._added_capex_per_new_accelerator()
            )
            / p["useful_life_months"]
            + mw * p["build_cost_usd_per_mw"] / p["building_life_months"]
            + mw * p["site_opex_usd_per_mw_month"]
            + mw * self.power_price_usd_per_mwh * self.power_billed_hours
        )
        hours = (
            HOURS_PER_MONTH
            * p["availability"]
            * p["target_utilization"]
            * self.schedule.performance_of(self.newest_generation)
        )
        return capped_quotient(monthly, hours)

    # -- added stock inputs -------------------------------------------------------------------

    @property
    def added_inputs(self) -> tuple[Input, ...]:
        """The inputs the experiment added to the built-in recipe, in order."""
        return self.recipe.inputs[len(DATACENTER_RECIPE.inputs) :]

    def _setup_added_inputs(self) -> None:
        """Opening stocks: what the installed fleet needs, valued at the opening price."""
        added = self.added_inputs
        self.input_stock = self._input_need()
        """Units held of each added input, per operator (columns in recipe order)."""
        prices = np.array(
            [opening_reference_price(self.model.markets.get(i.good)) for i in added], dtype=float
        )
        self.input_book = self.input_stock * prices * 0.5
        """Net book value of each added input held, per operator (USD)."""
        ledger = self.model.ledger
        for j, item in enumerate(added):
            ledger.open_balance(ledger.asset(item.good), self.accounts, self.input_stock[:, j])

    def _input_need(self) -> np.ndarray:
        """Units of each added input the installed fleet needs, per operator."""
        columns = [self._per_unit_of(item) * item.amount for item in self.added_inputs]
        if not columns:
            return np.zeros((self.count, 0))
        return np.stack(columns, axis=1)

    def _per_unit_of(self, item: Input) -> np.ndarray:
        """The fleet's size in the input's ``per`` unit (accelerators, or MW drawn)."""
        return self.fleet if item.per == "accelerator" else self.fleet_mw

    def _added_capex_per_new_accelerator(self) -> float:
        """Added inputs one new accelerator needs, at posted mean prices (USD)."""
        total = 0.0
        for item in self.added_inputs:
            per = 1.0 if item.per == "accelerator" else self.mw_per_new_accelerator
            total += item.amount * per * self._posted_mean(self.model.markets.get(item.good))
        return total

    def _added_index(self, good: str) -> int | None:
        for j, item in enumerate(self.added_inputs):
            if item.good == good:
                return j
        return None

    def _retire_added_inputs(self) -> None:
        """Scrap units beyond the remaining fleet's need, writing off their book share."""
        if not self.added_inputs:
            return
        excess = np.maximum(self.input_stock - self._input_need(), 0.0)
        share = np.where(self.input_stock > 0, capped_quotient(excess, self.input_stock), 0.0)
        share = np.minimum(share, 1.0)
        written_off = self.input_book * share
        scrap = self.model.ledger.account("scrap")
        for j, item in enumerate(self.added_inputs):
            self.move_goods(item.good, self.accounts, scrap, excess[:, j], "retirement")
        self.input_stock = self.input_stock - excess
        self.input_book = self.input_book - written_off
        self.model.firms.charge_depreciation(self.rows, written_off.sum(axis=1))

    def _bid_added_input(self, market, block, j: int) -> None:
        """Order what the installed fleet lacks of added input ``j``, as far as funded."""
        lacking = np.maximum(self._input_need()[:, j] - self.input_stock[:, j], 0.0)
        order = lacking * self._funded_share(lacking * self._posted_mean(market))
        market.book.buyer_demand[block] = np.where(self.alive, order, 0.0)

    def _receive_added_input(self, market, outcome, block, j: int) -> None:
        self.input_stock[:, j] += outcome.buyer_filled[block]
        self.input_book[:, j] += outcome.buyer_value[block] * market.billed_units_per_unit

    def _depreciate_added_inputs(self) -> np.ndarray:
        """This month's depreciation of added inputs per operator (declining balance), USD."""
        depreciation = (self.input_book / self.params["useful_life_months"]).sum(axis=1)
        self.input_book = self.input_book * (1.0 - 1.0 / self.params["useful_life_months"])
        return depreciation

    def _added_rooms(self) -> tuple[np.ndarray, np.ndarray]:
        """Accelerators (per accelerator inputs) and MW (per MW inputs) the added inputs held
        can serve, per operator: inf where no such input binds."""
        count_room = np.full(self.count, np.inf)
        mw_room = np.full(self.count, np.inf)
        for j, item in enumerate(self.added_inputs):
            if item.amount <= 0:
                continue
            room = capped_quotient(self.input_stock[:, j], item.amount)
            if item.per == "accelerator":
                count_room = np.minimum(count_room, room)
            else:
                mw_room = np.minimum(mw_room, room)
        return count_room, mw_room

    def _added_limits(self) -> dict[str, np.ndarray]:
        """Accelerators each added input could keep running, per operator (input_limits)."""
        limits = {}
        order = newest_first(self.vintage_generation)
        for j, item in enumerate(self.added_inputs):
            if item.amount <= 0:
                limits[item.label] = np.full(self.count, np.inf)
                continue
            room = capped_quotient(self.input_stock[:, j], item.amount)
            if item.per == "accelerator":
                limits[item.label] = room
            else:
                limits[item.label] = runnable_accelerators(
                    self.vintage_units, self.vintage_mw, order, room, self.mw_per_new_accelerator
                )
        return limits

    def _added_default(self, defaulted: np.ndarray) -> None:
        ledger = self.model.ledger
        scrap = ledger.account("scrap")
        ids = self.accounts[defaulted]
        for item in self.added_inputs:  # everything the books say they hold
            held = np.maximum(ledger.balances[ledger.asset(item.good), ids], 0.0)
            self.move_goods(item.good, ids, scrap, held, "retirement")
        self.input_stock[defaulted] = 0.0
        self.input_book[defaulted] = 0.0

    def _added_state(self) -> dict[str, np.ndarray]:
        """``<label>_held`` and ``stranded_by_<label>`` per added input (firm_state)."""
        state = {}
        limits = self._added_limits()
        for j, item in enumerate(self.added_inputs):
            state[f"{item.label}_held"] = self.input_stock[:, j]
            state[f"stranded_by_{item.label}"] = np.maximum(self.fleet - limits[item.label], 0.0)
        return state
