"""Data-center operators: buy accelerators, network kits and power; sell accelerator-hours.

State per operator: the accelerator fleet by monthly vintage (a ring buffer over the useful
life), each vintage of one accelerator generation (`marketsim.technology`), network kits,
accelerators and kits on order (delivery pipelines), the built shell in MW of facility power
and MW under construction, and the price of compute. Compute is sold in reference
accelerator-hours (hours of a generation-0, H100-class accelerator): an accelerator of
generation g supplies performance_g of them per hour and draws power_g times generation 0's
kW (`marketsim.sectors.fleet`).

Usable fleet (the constraint that strands accelerators): kits and
``min(power_mw, shell_mw)`` go to the newest generation first; the accelerators they keep
running are usable, the rest stranded:
    compute capacity (reference accelerator-hours) =
        sum over vintages of running_v * performance_v * 730 * availability

Economic life: a vintage whose rental value per hour (price x performance x availability)
no longer covers its power and site cost is retired early and its book value written off,
whatever ``useful_life_months`` (its accounting life) says.

Planning (order-up-to, the bullwhip source): smoothed own demand D and the smoothed growth g
of the whole compute market's demand (both notional, at posted prices) give expected demand
``D * (1 + optimism * g) ** H`` at horizon
H months; the target fleet serves it at ``target_utilization``, scaled by
``(V/F) ** valuation_sensitivity`` (the capital market's valuation / fundamental value:
Tobin's q makes plans bigger in a boom), by ``(price / full cost) ** price_response``
(price over the full cost of an accelerator-hour, clipped to 0.5..2: scarcity prices call
forth capacity, prices below cost hold it back) and by the operator's own boldness (a
mean-one lognormal draw, ``plan_dispersion``), capped at what the shell
built by delivery can power (plus ``strand_tolerance``). Targets are in reference
accelerators; accelerator orders (of the newest generation) = (target - the fleet installed
and on order that is not due to retire within the horizon, in reference accelerators) /
the newest generation's performance; kits follow; shell MW is ordered for the construction
horizon. Orders are scaled down to what the operator can
fund (`marketsim.finance.capex_budget`: cash + equity offered + ``planning_credit_share``
of the debt room, less a buffer of ``cash_buffer_months`` of monthly cash costs),
kits for accelerators already installed first (they bring idle accelerators into service),
then new equipment, then buildings; orders are cut again when placed if funding has shrunk.

Price of compute (``pricing``, `marketsim.sectors.compute_pricing`): by default a Lerner
markup from the operator's market share over the full cost of an accelerator-hour (capex
over useful lives, site operations and power, at target utilization), raised towards the
clearing price while notional demand exceeds capacity; or ``tatonnement``. Either way never
below the power cost of an accelerator-hour nor above ``max_price_usd_per_acc_hour``.

Costs: accelerators, kits and the rest of the server (its cost scales with the generation's
price) are capex (depreciated straight-line over
``useful_life_months``); the shell is capex (over ``building_life_months``); power and site
operations are cost of goods, as is depreciation.
"""

from __future__ import annotations

import numpy as np

from marketsim.entry import operating_mean
from marketsim.entry import starting_capacity
from marketsim.finance import affordable_share
from marketsim.finance import capex_budget
from marketsim.recipes import goods_bought
from marketsim.recipes import inputs_param
from marketsim.schema import Param
from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import firm_schema
from marketsim.sectors.base import shift_pipeline
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param
from marketsim.sectors.compute_pricing import compute_price
from marketsim.sectors.compute_pricing import compute_pricing_params
from marketsim.sectors.datacenter_inputs import DATACENTER_RECIPE
from marketsim.sectors.datacenter_inputs import DatacenterInputs
from marketsim.sectors.fleet import GenerationFleet
from marketsim.sectors.fleet import SlotGenerations
from marketsim.sectors.fleet import newest_first
from marketsim.sectors.fleet import run_newest_first
from marketsim.technology import GenerationSchedule


class Datacenter(DatacenterInputs, GenerationFleet, Sector):
    """Data-center operators (see module doc)."""

    name = "datacenter"
    doc = "Data-center operators: fleet by vintage, power-capped usable fleet, compute price."
    sells = "compute"
    buys = ("accelerators", "network_kits", "power")
    purchase_flows = {"accelerators": "capex", "network_kits": "capex", "power": "cost_of_goods"}
    recipe = DATACENTER_RECIPE
    schema = firm_schema(
        doc,
        {
            "initial_accelerators": Param(
                float,
                500_000.0,
                "accelerators installed per operator at the start",
                "accelerators",
                ge=0,
                le=1e9,
                source="assumption: ~4M installed data-center accelerators (2025) over 8 operators",
            ),
            "initial_shell_mw": Param(
                float,
                900.0,
                "facility power built per operator at the start",
                "MW",
                ge=0,
                le=1e7,
                source="assumption: initial fleet x 1.26 kW x PUE 1.3 plus 10% headroom",
            ),
            "initial_under_construction_mw": Param(
                float,
                600.0,
                "shell under construction at the start per operator, finishing "
                "evenly over the construction lead time (already paid for)",
                "MW",
                ge=0,
                le=1e7,
                source="assumption",
            ),
            "kw_per_accelerator": Param(
                float,
                1.26,
                "server power per accelerator",
                "kW",
                gt=0,
                le=1000,
                source="docs/calibration.md: chips: H100 700 W x whole server about 1.8",
            ),
            "pue": Param(
                float,
                1.3,
                "power usage effectiveness (facility / IT power)",
                "ratio",
                ge=1,
                le=10,
                source="docs/calibration.md: power: PUE AI builds under 1.3",
            ),
            "kits_per_accelerator": Param(
                float,
                1.0,
                "network kits needed per accelerator",
                "kits per accelerator",
                gt=0,
                le=1000,
                source="assumption (a kit is the optics and ports of one accelerator)",
            ),
            "availability": Param(
                float,
                0.95,
                "share of hours a usable accelerator can be sold",
                "share",
                gt=0,
                le=1,
                source="assumption",
            ),
            "useful_life_months": Param(
                int,
                60,
                "depreciation life and retirement age of servers",
                "months",
                ge=2,
                le=240,
                source="docs/calibration.md: data centers: server useful life 5-6 years",
            ),
            "building_life_months": Param(
                int,
                240,
                "depreciation life of the shell",
                "months",
                ge=1,
                le=1200,
                source="assumption",
            ),
            "delivery_lead_months": Param(
                int,
                3,
                "months from order to delivery of accelerators and kits",
                "months",
                ge=1,
                le=60,
                source="assumption",
            ),
            "construction_lead_months": Param(
                int,
                21,
                "months from starting a building to powering it",
                "months",
                ge=1,
                le=120,
                source="docs/calibration.md: data centers: construction 18-24 months (middle)",
            ),
            "build_cost_usd_per_mw": Param(
                float,
                11.7e6,
                "shell, power and cooling capex per MW (no IT)",
                "USD per MW",
                ge=0,
                le=1e10,
                source="docs/calibration.md: data centers: build cost about $11.7M per MW",
            ),
            "server_overhead_usd_per_accelerator": Param(
                float,
                17_600.0,
                "rest of the server (CPU, memory, chassis) per accelerator",
                "USD per accelerator",
                ge=0,
                le=1e9,
                source="docs/calibration.md: chips: server cost about 1.64 x accelerator price",
            ),
            "site_opex_usd_per_mw_month": Param(
                float,
                25_000.0,
                "site operations per MW of shell",
                "USD per MW per month",
                ge=0,
                le=1e7,
                source="assumption",
            ),
            "initial_price_usd_per_acc_hour": Param(
                float,
                2.0,
                "compute price in the first month",
                "USD per accelerator-hour",
                gt=0,
                le=1e6,
                source="docs/calibration.md: compute: H100 rental about $1.70-2.35 2025-2026",
            ),
            **compute_pricing_params(),
            "target_utilization": Param(
                float,
                0.85,
                "share of capacity the fleet plan expects to sell",
                "share",
                gt=0,
                le=1,
                source="assumption",
            ),
            "demand_smoothing": smoothing_param(0.3),
            "growth_smoothing": smoothing_param(0.1, "demand growth"),
            "strand_tolerance": Param(
                float,
                0.05,
                "how far the fleet plan may run ahead of the shell that will be built by delivery",
                "share",
                ge=0,
                le=10,
                source="assumption",
            ),
            "valuation_sensitivity": Param(
                float,
                0.5,
                "elasticity of planned capacity to the market's valuation / "
                "fundamental value (Tobin's q): rich valuations make plans bigger",
                "ratio",
                ge=0,
                le=10,
                source="assumption",
            ),
            "price_response": Param(
                float,
                0.5,
                "elasticity of planned capacity to the compute price over its full "
                "cost (price / cost clipped to 0.5..2): scarcity prices call forth capacity",
                "ratio",
                ge=0,
                le=10,
                source="assumption",
            ),
            "plan_dispersion": Param(
                float,
                0.2,
                "spread of planning boldness across operators: each plans for "
                "a lognormal multiple (mean 1, this log standard deviation) of the capacity "
                "its forecast needs",
                "log",
                ge=0,
                le=2,
                source="assumption",
            ),
            "demand_optimism": Param(
                float,
                1.0,
                "multiplier on extrapolated demand growth in capacity plans",
                "ratio",
                ge=0,
                le=100,
                source="assumption",
            ),
            "max_growth_per_month": Param(
                float,
                0.04,
                "cap on extrapolated monthly demand growth",
                "share",
                ge=0,
                le=1,
                source="assumption",
            ),
            "initial_demand_growth_per_month": Param(
                float,
                0.04,
                "smoothed monthly growth of compute demand operators have observed "
                "before the start (their first plans extrapolate it; later months learn it)",
                "share per month",
                ge=-0.5,
                le=1,
                source="docs/calibration.md: data centers: capex of the four largest US "
                "hyperscalers +63% 2023-2024 and about +60% 2024-2025 (about 4% a month)",
            ),
            "inputs": inputs_param(DATACENTER_RECIPE),
        },
    )

    def __init__(self, model, params, rows, count, region):
        super().__init__(model, params, rows, count, region)
        self.recipe = type(self).recipe.with_added(params)
        """The recipe with the experiment's added inputs (`marketsim.recipes`)."""
        self.buys = goods_bought(type(self), params)
        self.purchase_flows = {**type(self).purchase_flows}
        self.purchase_flows.update({item.good: "capex" for item in self.added_inputs})

    def setup(self) -> None:
        p = self.params
        n = self.count
        life = p["useful_life_months"]
        self.life = life
        self.schedule = GenerationSchedule.of(self.model)
        """When accelerator generations launch and what each delivers (`marketsim.technology`)."""
        self.newest_generation = 0
        """Newest accelerator generation on sale this month (what new orders are)."""
        self.generations = SlotGenerations(
            np.zeros(life, dtype=int), np.zeros(p["delivery_lead_months"], dtype=int)
        )
        """Generation of each vintage slot and delivery-pipeline slot (shared by operators)."""
        self.retired_early = np.zeros(n)
        """Accelerators retired this month before their accounting life ended (economic life)."""
        self.writedown = np.zeros(n)
        """Book value written off this month on accelerators retired early (USD)."""
        self.usable_reference = np.zeros(n)
        """Usable accelerators in reference (generation-0) equivalents."""
        per_vintage = np.full((n, life), p["initial_accelerators"] / life)
        self.vintage_units = per_vintage
        unit_capex = self._unit_capex_guess()
        self.vintage_cost = per_vintage * unit_capex
        remaining = np.arange(life) / life  # slot s has s months of depreciation left
        self.it_book = (self.vintage_cost * remaining).sum(axis=1)
        self.kits = np.full(n, p["initial_accelerators"] * p["kits_per_accelerator"])
        self.accelerator_pipeline = np.zeros((n, p["delivery_lead_months"]))
        self.kit_pipeline = np.zeros((n, p["delivery_lead_months"]))
        self.pending_cost = np.zeros((n, p["delivery_lead_months"]))
        self.shell_mw = np.full(n, p["initial_shell_mw"])
        build = p["construction_lead_months"]
        self.shell_pipeline = np.full((n, build), p["initial_under_construction_mw"] / build)
        # the built shell, half depreciated, plus the shell under construction (paid for)
        built = self.shell_mw * p["build_cost_usd_per_mw"] * 0.5
        building = self.shell_pipeline.sum(axis=1) * p["build_cost_usd_per_mw"]
        self.shell_book = built + building
        self.shell_depreciation = built / (p["building_life_months"] * 0.5) + (
            building / p["building_life_months"]
        )
        self.price = np.full(n, p["initial_price_usd_per_acc_hour"])
        sigma = p["plan_dispersion"]
        self.aggressiveness = np.exp(sigma * self.rng.standard_normal(n) - 0.5 * sigma**2)
        """Each operator's multiplier on planned capacity (mean one): some build bolder."""
        capacity = self.reference_fleet * HOURS_PER_MONTH * p["availability"]
        self.demand_smoothed = capacity * p["target_utilization"]
        self.growth_smoothed = float(p["initial_demand_growth_per_month"])
        """Smoothed monthly growth of the whole compute market's demand (share)."""
        self.power_mw = np.zeros(n)
        self.usable = np.zeros(n)
        self.accelerator_order = np.zeros(n)
        self.kit_order = np.zeros(n)
        self.power_price_usd_per_mwh = 80.0
        self.power_billed_hours = HOURS_PER_MONTH
        """Hours of energy billed per MW contracted for a month (730 x the load factor)."""
        ledger = self.model.ledger
        ledger.open_balance(ledger.asset("accelerators"), self.accounts, self.fleet)
        ledger.open_balance(ledger.asset("network_kits"), self.accounts, self.kits)
        self._setup_added_inputs()

    # -- phases ---------------------------------------------------------------------------

    def observe(self, step: int) -> None:
        slot = step % self.life
        self.newest_generation = self.schedule.generation_at(step)
        self._retire(self.vintage_units[:, slot].copy())
        arriving = shift_pipeline(self.accelerator_pipeline)
        self.vintage_units[:, slot] = arriving
        self.vintage_cost[:, slot] = shift_pipeline(self.pending_cost)
        self.vintage_generation[slot] = self.order_generation[0]
        self.order_generation[:-1] = self.order_generation[1:]
        self.order_generation[-1] = self.newest_generation
        self.kits += shift_pipeline(self.kit_pipeline)
        self.shell_mw += shift_pipeline(self.shell_pipeline)
        self._retire_uneconomic(step)
        self._retire_added_inputs()

    def bid(self, market, block) -> None:
        alive = self.alive
        added = self._added_index(market.name)
        if added is not None:
            self._bid_added_input(market, block, added)
            return
        if market.name == "accelerators":  # orders are cut to what can be funded now
            demand = self.accelerator_order * self._funded_share(
                self.accelerator_order * market.book.seller_price.mean()
            )
        elif market.name == "network_kits":
            demand = self.kit_order * self._funded_share(
                self.kit_order * market.book.seller_price.mean()
            )
        else:  # power: enough for the whole installed fleet, within the built shell
            fleet_mw = self.fleet_mw
            demand = np.minimum(self.shell_mw, fleet_mw)
            queued = self.shell_mw + self.shell_pipeline.sum(axis=1)
            market.book.buyer_forward_demand[block] = np.where(alive, queued, 0.0)
            # the most a MWh is worth: the compute it runs (used by auction mechanisms)
            reference_per_mw = np.where(
                fleet_mw > 0,
                capped_quotient(self.reference_fleet, fleet_mw),
                capped_quotient(1.0, self.mw_per_accelerator),
            )
            value_per_mw = self.price * self.params["availability"] * reference_per_mw
            market.book.buyer_limit_price[block] = capped_quotient(
                value_per_mw, market.billed_units_per_unit / HOURS_PER_MONTH
            )
        market.book.buyer_demand[block] = np.where(alive, demand, 0.0)

    def on_bought(self, market, outcome, block) -> None:
        filled = outcome.buyer_filled[block]
        value = outcome.buyer_value[block] * market.billed_units_per_unit
        added = self._added_index(market.name)
        if added is not None:
            self._receive_added_input(market, outcome, block, added)
        elif market.name == "accelerators":
            self.accelerator_pipeline[:, -1] += filled
            overhead = filled * self._server_overhead()
            self.pay(overhead, "suppliers", "capex")
            self.pending_cost[:, -1] += value + overhead
            self.it_book += value + overhead
        elif market.name == "network_kits":
            self.kit_pipeline[:, -1] += filled
            self.pending_cost[:, -1] += value
            self.it_book += value
        else:
            self.power_mw = filled.copy()
            self.move_goods(
                "power",
                self.accounts,
                self.model.ledger.account("consumption"),
                filled,
                "consumption",
            )
            if filled.sum() > 0:
                self.power_billed_hours = market.billed_units_per_unit
                self.power_price_usd_per_mwh = float(
                    outcome.buyer_value[block].sum() / filled.sum()
                )

    def offer(self, market, block) -> None:
        p = self.params
        count_room, mw_room = self._added_rooms()
        running = run_newest_first(
            self.vintage_units,
            self.vintage_mw,
            newest_first(self.vintage_generation),
            np.minimum(capped_quotient(self.kits, p["kits_per_accelerator"]), count_room),
            np.minimum(np.minimum(self.power_mw, self.shell_mw), mw_room),
        )
        self.usable = np.where(self.alive, running.sum(axis=1), 0.0)
        self.usable_reference = np.where(self.alive, running @ self.vintage_performance, 0.0)
        self.offered = self.usable_reference * HOURS_PER_MONTH * p["availability"]
        market.book.seller_price[block] = self.price
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        production = self.model.ledger.account("production")
        self.move_goods("compute", production, self.accounts, self.sold, "production")

    def account(self, step: int) -> None:
        p = self.params
        firms = self.model.firms
        self.pay(
            np.where(self.alive, self.shell_mw * p["site_opex_usd_per_mw_month"], 0.0),
            "wages",
            "cost_of_goods",
        )
        self.pay_overheads()
        it_depreciation = np.minimum(self.vintage_cost.sum(axis=1) / self.life, self.it_book)
        shell_depreciation = np.minimum(self.shell_depreciation, self.shell_book)
        self.it_book -= it_depreciation
        self.shell_book -= shell_depreciation
        firms.charge_depreciation(self.rows, it_depreciation + shell_depreciation)
        if self.added_inputs:
            firms.charge_depreciation(self.rows, self._depreciate_added_inputs())
        self.price = compute_price(self)
        self._plan(step)

    def _plan(self, step: int) -> None:
        p = self.params
        previous = self.demand_smoothed.sum()
        self.demand_smoothed = smooth(self.demand_smoothed, self.requested, p["demand_smoothing"])
        growth = (
            capped_quotient(self.demand_smoothed.sum(), previous) - 1.0 if previous > 0 else 0.0
        )
        self.growth_smoothed = smooth(self.growth_smoothed, growth, p["growth_smoothing"])
        expected_growth = float(
            np.clip(
                p["demand_optimism"] * self.growth_smoothed,
                -p["max_growth_per_month"],
                p["max_growth_per_month"],
            )
        )
        hours = HOURS_PER_MONTH * p["availability"] * p["target_utilization"]
        profitability = np.clip(
            capped_quotient(self.price, self.full_cost_per_acc_hour()), 0.5, 2.0
        )
        boldness = (
            bounded_power(self.model.valuation_ratio[self.rows], p["valuation_sensitivity"])
            * self.aggressiveness
            * bounded_power(profitability, p["price_response"])
        )
        hours = hours / np.clip(boldness, 1.0 / MAX_RESPONSE, MAX_RESPONSE)

        # targets in reference accelerators; what is ordered is the newest generation
        lead = p["delivery_lead_months"]
        target_fleet = capped_quotient(
            self.demand_smoothed * (1.0 + expected_growth) ** lead, hours
        )
        units, reference, mw = self._committed(step, lead)
        shell_at_delivery = self.shell_mw + self.shell_pipeline[:, :lead].sum(axis=1)
        powered_at_delivery = reference + capped_quotient(
            np.maximum(shell_at_delivery - mw, 0.0), self.mw_per_accelerator
        )
        target_fleet = np.minimum(target_fleet, powered_at_delivery * (1.0 + p["strand_tolerance"]))
        accelerators = capped_quotient(
            np.maximum(0.0, target_fleet - reference),
            self.schedule.performance_of(self.newest_generation),
        )
        kits_target = (units + accelerators) * p["kits_per_accelerator"]
        kits = np.maximum(0.0, kits_target - self.kits - self.kit_pipeline.sum(axis=1))

        build_lead = p["construction_lead_months"]
        fleet_later = capped_quotient(
            self.demand_smoothed * (1.0 + expected_growth) ** build_lead, hours
        )
        shell_target = mw + np.maximum(fleet_later - reference, 0.0) * self.mw_per_accelerator
        shell = np.maximum(0.0, shell_target - self.shell_mw - self.shell_pipeline.sum(axis=1))

        # funding, in the order things earn: kits for accelerators already installed (a small
        # outlay that brings idle accelerators into service), then new equipment, then
        # buildings with what is left
        budget = capex_budget(self.model, self.rows)
        kit_price = self._kit_price()
        missing = np.maximum(
            0.0, self.fleet * p["kits_per_accelerator"] - self.kits - self.kit_pipeline.sum(axis=1)
        )
        missing = np.minimum(missing, kits)
        missing_scale = affordable_share(budget, missing * kit_price)
        budget = np.maximum(0.0, budget - missing * kit_price * missing_scale)
        other_kits = kits - missing
        equipment = accelerators * self._unit_prices() + other_kits * kit_price
        equipment_scale = affordable_share(budget, equipment)
        self.accelerator_order = accelerators * equipment_scale
        self.kit_order = missing * missing_scale + other_kits * equipment_scale
        budget = np.maximum(0.0, budget - equipment * equipment_scale)
        shell_order = shell * affordable_share(budget, shell * p["build_cost_usd_per_mw"])
        self.shell_pipeline[:, -1] += shell_order
        shell_capex = shell_order * p["build_cost_usd_per_mw"]
        self.pay(shell_capex, "suppliers", "capex")
        self.shell_book += shell_capex
        self.shell_depreciation += shell_capex / p["building_life_months"]

    def on_default(self, defaulted) -> None:
        ledger = self.model.ledger
        scrap = ledger.account("scrap")
        ids = self.accounts[defaulted]
        for good in ("accelerators", "network_kits"):  # everything the books say they hold
            held = np.maximum(ledger.balances[ledger.asset(good), ids], 0.0)
            self.move_goods(good, ids, scrap, held, "retirement")
        for array in (
            self.vintage_units,
            self.vintage_cost,
            self.accelerator_pipeline,
            self.kit_pipeline,
            self.pending_cost,
            self.shell_pipeline,
        ):
            array[defaulted] = 0.0
        for array in (
            self.kits,
            self.shell_mw,
            self.it_book,
            self.shell_book,
            self.shell_depreciation,
            self.accelerator_order,
            self.kit_order,
            self.retired_early,
            self.writedown,
            self.usable_reference,
        ):
            array[defaulted] = 0.0
        self._added_default(defaulted)

    # -- what the model reads ----------------------------------------------------------------

    @property
    def stranded(self) -> np.ndarray:
        """Installed accelerators that cannot run for want of an input (power, kits, ...)."""
        return np.maximum(0.0, self.fleet - self.usable)

    def installed_capacity(self) -> np.ndarray:
        """Reference accelerator-hours the whole fleet could sell if powered and networked."""
        return (
            np.where(self.alive, self.reference_fleet, 0.0)
            * HOURS_PER_MONTH
            * self.params["availability"]
        )

    def book_value(self) -> np.ndarray:
        return self.it_book + self.shell_book + self.input_book.sum(axis=1)

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {
            "accelerators": self.fleet + self.accelerator_pipeline.sum(axis=1),
            "network_kits": self.kits + self.kit_pipeline.sum(axis=1),
            "power": np.zeros(self.count),
            "compute": np.zeros(self.count),
            **{item.good: self.input_stock[:, j] for j, item in enumerate(self.added_inputs)},
        }

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd_per_acc_hour": self.price,
            "accelerators": self.fleet,
            "reference_accelerators": self.reference_fleet,
            "accelerators_on_order": self.accelerator_pipeline.sum(axis=1),
            "usable_accelerators": self.usable,
            "stranded_accelerators": self.stranded,
            "network_kits": self.kits,
            "shell_mw": self.shell_mw,
            "shell_under_construction_mw": self.shell_pipeline.sum(axis=1),
            "power_mw": self.power_mw,
            **self._added_state(),
        }

    def on_entry(self, entering) -> None:
        """Entrants (mask) build ``entry_scale`` x the operating operators' mean shell (MW) from
        their cash, post their mean price and plan for that share of their mean demand; they
        buy accelerators and kits by the ordinary plan with the cash left."""
        p = self.params
        cost = p["build_cost_usd_per_mw"]
        built = starting_capacity(self, entering, self.shell_mw, cost)
        self.pay(built * cost, "suppliers", "capex")
        self.shell_book += built * cost
        self.shell_depreciation += built * cost / p["building_life_months"]
        self.shell_mw += built
        demand = p["entry_scale"] * operating_mean(self, entering, self.demand_smoothed, 0.0)
        self.demand_smoothed = np.where(entering, demand, self.demand_smoothed)
        price = operating_mean(self, entering, self.price, p["initial_price_usd_per_acc_hour"])
        self.price = np.where(entering, price, self.price)
