"""Utilities: sell power to data centers; new capacity only after years of interconnection.

Quantity in the power market is contracted capacity in MW for the month; the price is in USD
per MWh and energy is billed at ``load_factor`` x 730 hours per MW. A utility pays its energy
cost (fuel or PPAs) per MWh delivered and fixed O&M per MW of capacity.

Cost of service per MWh, with K capacity in MW, r* the target reserve margin, B the asset
book, its in-service share ``K / (K + under construction)`` and D the depreciation charged:
    cost = energy_cost + (fixed_om * K + D + allowed_return / 12 * B_in_service)
           / (K * (1 - r*) * mwh_per_mw)
Tariff rule (``tariff_regime``), approached by partial adjustment, never below energy cost:
- ``regulated``: the cost of service. No scarcity adder: when data centers ask for more than
  the capacity, the load is rationed (pro rata by the market) at the regulated tariff, so the
  scarcity rent stays with the data centers that hold powered capacity.
- ``market``: wholesale scarcity pricing. Generation is competitive (no firm-level Lerner
  markup), so with reserves at or above target the price is the cost of service; when
  smoothed notional demand D exceeds ``K * (1 - r*)`` the price rises towards the level
  that clears it, ``tariff * (D / (K (1 - r*))) ** (1 / demand_elasticity)``, no higher
  than ``(1 + max_scarcity)`` times the cost of service nor the value of power to the data
  centers (their mean limit price per MWh, from the compute a MWh runs): the utilities
  receive the scarcity rent (`marketsim.sectors.competition`).
Capacity rule: when capacity plus projects under construction fall short of
``max(D * (1 + clip(w * g, 0, max_growth_per_month)) ** L, q * Q) * (1 + r*)`` (g: smoothed
growth of total demand, w: how much of it planners extrapolate, so falling demand never
shrinks plans; L: lead time, Q: its share of the load data centers have
queued for connection — shells built and under construction — and q: how much of the queue
it believes), order the shortfall (at most ``max_build_share_per_month`` of capacity a
month, and no more than it can fund); it arrives after ``interconnection_lead_months`` and is
paid at ``build_cost_usd_per_mw`` when ordered.
"""

from __future__ import annotations

import numpy as np

from marketsim.entry import operating_mean
from marketsim.entry import starting_capacity
from marketsim.finance import affordable_share
from marketsim.finance import capex_budget
from marketsim.schema import Param
from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import Sector
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import firm_schema
from marketsim.sectors.base import shift_pipeline
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param
from marketsim.sectors.competition import buyers_value
from marketsim.sectors.competition import capped_at_value
from marketsim.sectors.competition import lerner_scarcity_target
from marketsim.sectors.competition import partial_adjustment


class Utility(Sector):
    """Power utilities serving data-center load (see module doc)."""

    name = "utility"
    doc = "Utilities: regulated cost of service or market scarcity pricing; slow to connect."
    sells = "power"
    schema = firm_schema(
        doc,
        {
            "capacity_mw": Param(
                float,
                3000.0,
                "generation capacity available to data centers per utility",
                "MW",
                gt=0,
                le=1e7,
                source="assumption: ~9 GW for ~4M installed accelerators at 1.26 kW x PUE 1.3",
            ),
            "max_debt_to_ebitda": Param(
                float,
                8.0,
                "most a utility may borrow, in years of its smoothed EBITDA",
                "years",
                ge=0,
                le=100,
                source="assumption: regulated utilities borrow against their rate base, "
                "5-7x EBITDA",
            ),
            "initial_under_construction_mw": Param(
                float,
                3000.0,
                "capacity under construction at the start per utility, arriving "
                "evenly over the interconnection lead time",
                "MW",
                ge=0,
                le=1e7,
                source="assumption",
            ),
            "load_factor": Param(
                float,
                0.8,
                "share of contracted MW drawn on average (energy billed)",
                "share",
                gt=0,
                le=1,
                source="assumption",
            ),
            "energy_cost_usd_per_mwh": Param(
                float,
                45.0,
                "variable cost of energy (fuel, purchased energy) per MWh delivered",
                "USD per MWh",
                ge=0,
                le=1e5,
                source="assumption: below the all-in PPA prices of docs/calibration.md: power "
                "($57-75/MWh), which include capital",
            ),
            "tariff_regime": Param(
                str,
                "market",
                "who sets the tariff: regulated (cost of service, load rationed when short) "
                "or market (scarcity pricing up to the value of power to data centers)",
                choices=("regulated", "market"),
                source="assumption: most large data-center load is in wholesale markets "
                "with scarcity pricing",
            ),
            "allowed_return_per_year": Param(
                float,
                0.07,
                "return on the in-service asset book allowed in the cost of service",
                "per year",
                ge=0,
                le=1,
                source="assumption: a weighted cost of capital of regulated utilities "
                "(equity returns near 10%, debt near 5%)",
            ),
            "initial_tariff_usd_per_mwh": Param(
                float,
                80.0,
                "tariff in the first month",
                "USD per MWh",
                gt=0,
                le=1e5,
                source="docs/calibration.md: power: US industrial electricity about $80/MWh",
            ),
            "fixed_om_usd_per_mw_month": Param(
                float,
                3000.0,
                "fixed operations and maintenance per MW of capacity",
                "USD per MW per month",
                ge=0,
                le=1e7,
                source="assumption",
            ),
            "target_reserve_margin": Param(
                float,
                0.15,
                "spare capacity the utility plans to keep",
                "share",
                gt=0,
                lt=1,
                source="assumption",
            ),
            "demand_elasticity": Param(
                float,
                0.5,
                "market: price elasticity of power demand used to find the clearing "
                "price while reserves are short",
                "ratio",
                ge=0.05,
                le=10,
                source="assumption: short-run power demand is inelastic",
            ),
            "max_scarcity": Param(
                float,
                3.0,
                "market: largest scarcity premium over the cost of service",
                "share",
                ge=0,
                le=100,
                source="assumption: like a wholesale offer cap",
            ),
            "price_adjustment": Param(
                float,
                0.3,
                "share of the gap to the target tariff closed each month",
                "share",
                gt=0,
                le=1,
                source="assumption",
            ),
            "demand_smoothing": smoothing_param(0.3),
            "interconnection_lead_months": Param(
                int,
                48,
                "months from ordering new capacity to serving with it",
                "months",
                ge=1,
                le=240,
                source="docs/calibration.md: power: interconnection 3-5 years; large loads "
                "4-7 years",
            ),
            "growth_smoothing": smoothing_param(0.1, "demand growth"),
            "planning_growth_weight": Param(
                float,
                0.5,
                "how much of observed demand growth capacity plans extrapolate "
                "over the lead time (0 = plan for today's load)",
                "share",
                ge=0,
                le=10,
                source="assumption",
            ),
            "max_growth_per_month": Param(
                float,
                0.03,
                "cap on extrapolated monthly demand growth",
                "share",
                ge=0,
                le=1,
                source="assumption",
            ),
            "queue_weight": Param(
                float,
                0.8,
                "share of the load data centers have queued for connection (built "
                "and under construction) the utility plans capacity for",
                "share",
                ge=0,
                le=2,
                source="assumption",
            ),
            "build_cost_usd_per_mw": Param(
                float,
                1.5e6,
                "capex per MW of new generation and grid connection",
                "USD per MW",
                ge=0,
                le=1e10,
                source="assumption",
            ),
            "max_build_share_per_month": Param(
                float,
                0.05,
                "largest capacity order per month, as a share of capacity",
                "share",
                ge=0,
                le=1,
                source="assumption",
            ),
            "asset_life_months": Param(
                int,
                300,
                "depreciation life of generation capex",
                "months",
                ge=1,
                le=1200,
                source="assumption",
            ),
        },
    )

    def setup(self) -> None:
        p = self.params
        n = self.count
        self.capacity_mw = np.full(n, p["capacity_mw"])
        lead = p["interconnection_lead_months"]
        self.capacity_pipeline = np.full((n, lead), p["initial_under_construction_mw"] / lead)
        self.tariff = np.full(n, p["initial_tariff_usd_per_mwh"])
        self.demand_smoothed = self.capacity_mw * (1.0 - p["target_reserve_margin"])
        # the installed base, half depreciated, plus the projects already under construction
        self.asset_book = (0.5 * self.capacity_mw + self.capacity_pipeline.sum(axis=1)) * p[
            "build_cost_usd_per_mw"
        ]
        self.asset_depreciation = self.asset_book / p["asset_life_months"]
        self.total_demand = float(self.demand_smoothed.sum())
        self.queued_load = np.zeros(n)
        """This utility's share of the load queued for connection (MW)."""
        self.growth_smoothed = 0.0
        """Smoothed monthly growth of total power demand (share)."""

    @property
    def mwh_per_mw(self) -> float:
        """Energy billed per MW contracted for a month (MWh)."""
        return HOURS_PER_MONTH * self.params["load_factor"]

    def observe(self, step: int) -> None:
        self.capacity_mw += shift_pipeline(self.capacity_pipeline)

    def offer(self, market, block) -> None:
        book = market.book
        total_sold = self.sold.sum()
        share = self.sold / total_sold if total_sold > 0 else np.full(self.count, 1 / self.count)
        queued_weight = self.params["queue_weight"]
        self.queued_load = queued_weight * share * book.buyer_forward_demand.sum()
        market.billed_units_per_unit = self.mwh_per_mw
        self.offered = np.where(self.alive, self.capacity_mw, 0.0)
        market.book.seller_price[block] = self.tariff
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        fuel = self.model.ledger.account("fuel")
        self.move_goods("power", fuel, self.accounts, self.sold, "production")
        energy_cost = self.sold * self.mwh_per_mw * self.params["energy_cost_usd_per_mwh"]
        self.pay(energy_cost, "fuel", "cost_of_goods")

    def account(self, step: int) -> None:
        p = self.params
        alive = self.alive
        self.pay(
            np.where(alive, self.capacity_mw * p["fixed_om_usd_per_mw_month"], 0.0),
            "wages",
            "cost_of_goods",
        )
        self.pay_overheads()
        depreciation = np.minimum(self.asset_depreciation, self.asset_book)
        self.asset_book -= depreciation
        self.model.firms.charge_depreciation(self.rows, depreciation)

        self.demand_smoothed = smooth(self.demand_smoothed, self.requested, p["demand_smoothing"])
        self.tariff = np.maximum(
            partial_adjustment(self.tariff, self._target_tariff(), p["price_adjustment"]),
            p["energy_cost_usd_per_mwh"],
        )
        target_reserve = p["target_reserve_margin"]

        previous = self.total_demand
        self.total_demand = float(self.demand_smoothed.sum())
        growth = capped_quotient(self.total_demand, previous) - 1.0 if previous > 0 else 0.0
        self.growth_smoothed = smooth(self.growth_smoothed, growth, p["growth_smoothing"])
        expected_growth = float(
            np.clip(
                p["planning_growth_weight"] * self.growth_smoothed, 0.0, p["max_growth_per_month"]
            )
        )
        horizon = p["interconnection_lead_months"]
        planned = self.capacity_mw + self.capacity_pipeline.sum(axis=1)
        trend = self.demand_smoothed * (1.0 + expected_growth) ** horizon
        needed = np.maximum(trend, self.queued_load) * (1.0 + target_reserve)
        build = np.clip(needed - planned, 0.0, p["max_build_share_per_month"] * self.capacity_mw)
        build = np.where(alive, build, 0.0)
        budget = capex_budget(self.model, self.rows)
        build *= affordable_share(budget, build * p["build_cost_usd_per_mw"])
        self.capacity_pipeline[:, -1] += build
        capex = build * p["build_cost_usd_per_mw"]
        self.pay(capex, "suppliers", "capex")
        self.asset_book += capex
        self.asset_depreciation += capex / p["asset_life_months"]

    def cost_of_service(self) -> np.ndarray:
        """Each utility's cost of service per MWh at its planned load (see module doc), USD."""
        p = self.params
        planned = self.capacity_mw + self.capacity_pipeline.sum(axis=1)
        in_service = np.where(planned > 0, capped_quotient(self.capacity_mw, planned), 0.0)
        fixed = (
            self.capacity_mw * p["fixed_om_usd_per_mw_month"]
            + np.minimum(self.asset_depreciation, self.asset_book)
            + p["allowed_return_per_year"] / 12.0 * in_service * self.asset_book
        )
        planned_mwh = self.capacity_mw * (1.0 - p["target_reserve_margin"]) * self.mwh_per_mw
        return p["energy_cost_usd_per_mwh"] + capped_quotient(fixed, planned_mwh)

    def _target_tariff(self) -> np.ndarray:
        """This month's target tariff under the tariff regime (USD per MWh)."""
        p = self.params
        cost = self.cost_of_service()
        if p["tariff_regime"] == "regulated":
            return cost
        params = {**p, "max_lerner": 0.0}
        usable = self.capacity_mw * (1.0 - p["target_reserve_margin"])
        target = lerner_scarcity_target(
            params, cost, np.zeros(self.count), self.tariff, self.demand_smoothed, usable
        )
        return capped_at_value(target, buyers_value(self.model.markets.get("power")), cost)

    def on_default(self, defaulted) -> None:
        self.capacity_mw[defaulted] = 0.0
        self.capacity_pipeline[defaulted] = 0.0
        self.asset_book[defaulted] = 0.0
        self.asset_depreciation[defaulted] = 0.0

    def book_value(self) -> np.ndarray:
        return self.asset_book

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {"power": np.zeros(self.count)}

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd_per_mwh": self.tariff,
            "capacity_mw": self.capacity_mw,
            "capacity_on_order_mw": self.capacity_pipeline.sum(axis=1),
        }

    def on_entry(self, entering) -> None:
        """Entrants (mask) build ``entry_scale`` x the operating utilities' mean capacity (MW)
        at ``build_cost_usd_per_mw`` from their cash and post their mean tariff."""
        p = self.params
        cost = p["build_cost_usd_per_mw"]
        built = starting_capacity(self, entering, self.capacity_mw, cost)
        self.pay(built * cost, "suppliers", "capex")
        self.asset_book += built * cost
        self.asset_depreciation += built * cost / p["asset_life_months"]
        self.capacity_mw += built
        demand = built * (1.0 - p["target_reserve_margin"])
        self.demand_smoothed = np.where(entering, demand, self.demand_smoothed)
        tariff = operating_mean(self, entering, self.tariff, p["initial_tariff_usd_per_mwh"])
        self.tariff = np.where(entering, tariff, self.tariff)
