"""Equipment vendors: make-to-order producers pricing from market share and scarcity.

Shared behaviour of chip vendors (accelerators) and network vendors (network kits). Each
vendor has a monthly production capacity; sells at most that; pays its unit cost to an
outside supplier (a foundry) for every unit sold; prices by the Lerner-and-scarcity rule of
`marketsim.sectors.competition` (a markup from its smoothed share of units sold and the
elasticity of the demand the sector faces, raised towards the clearing price when orders
exceed capacity), approached by partial adjustment; and adds capacity after a lead time when
demand runs above capacity.

Initial capacity: the sector's total ``count * capacity_per_month`` is split so that the
first firm (the leader) holds ``max(leader_capacity_share, 1 / count)`` of it and the others
share the rest equally; the initial market shares are these capacity shares.

Capacity rule, with I = capacity plus capacity on order: when D/I > 1, order ``I *
min(max_expansion_per_month, expansion_response * (D/I - 1))`` units per month of new
capacity (no more than the vendor can fund), arriving after ``capacity_lead_months`` and paid
now at ``capacity_cost_usd_per_unit_month``; when D/I < 0.5, capacity shrinks by
``capacity_decay_per_month``. D is smoothed notional demand.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from marketsim.entry import operating_mean
from marketsim.entry import starting_capacity
from marketsim.finance import affordable_share
from marketsim.finance import capex_budget
from marketsim.schema import Param
from marketsim.sectors.base import Sector
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import shift_pipeline
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param
from marketsim.sectors.competition import competition_params
from marketsim.sectors.competition import equal_shares
from marketsim.sectors.competition import lerner_scarcity_target
from marketsim.sectors.competition import partial_adjustment
from marketsim.sectors.competition import smoothed_shares


def vendor_params(
    unit: str,
    capacity: tuple[float, str],
    unit_cost: tuple[float, str],
    price: tuple[float, str],
    elasticity: tuple[float, str],
    leader_share: tuple[float, str],
    lead: tuple[int, str],
) -> dict[str, Param]:
    """The parameters of an equipment vendor, with defaults and their sources."""
    return {
        "capacity_per_month": Param(
            float,
            capacity[0],
            f"production capacity per firm ({unit} per month)",
            f"{unit} per month",
            ge=0,
            le=1e9,
            source=capacity[1],
        ),
        "unit_cost_usd": Param(
            float,
            unit_cost[0],
            f"cost of making one {unit[:-1]}, paid to the foundry/suppliers",
            "USD per unit",
            gt=0,
            le=1e9,
            source=unit_cost[1],
        ),
        "initial_price_usd": Param(
            float,
            price[0],
            "price posted in the first month",
            "USD per unit",
            gt=0,
            le=1e9,
            source=price[1],
        ),
        "leader_capacity_share": Param(
            float,
            leader_share[0],
            "share of the sector's initial capacity held by its first firm (the leader); "
            "the others split the rest equally (at most 1 / count means equal shares)",
            "share",
            ge=0,
            le=1,
            source=leader_share[1],
        ),
        **competition_params(elasticity[0], elasticity[1], 0.5),
        "demand_smoothing": smoothing_param(0.3),
        "capacity_lead_months": Param(
            int,
            lead[0],
            "months from ordering capacity to producing with it",
            "months",
            ge=1,
            le=240,
            source=lead[1],
        ),
        "expansion_response": Param(
            float,
            0.5,
            "capacity added per month per unit of excess demand ratio",
            "share",
            ge=0,
            le=100,
            source="assumption",
        ),
        "max_expansion_per_month": Param(
            float,
            0.1,
            "largest capacity order per month, as a share of capacity",
            "share",
            ge=0,
            le=1,
            source="assumption",
        ),
        "capacity_decay_per_month": Param(
            float,
            0.01,
            "capacity released per month when demand is under half of it",
            "share",
            ge=0,
            lt=1,
            source="assumption",
        ),
        "capacity_cost_usd_per_unit_month": Param(
            float,
            5000.0,
            "capex per unit of monthly capacity added",
            "USD per (unit/month)",
            ge=0,
            le=1e9,
            source="assumption",
        ),
        "capacity_life_months": Param(
            int,
            60,
            "depreciation life of capacity capex",
            "months",
            ge=1,
            le=1200,
            source="assumption",
        ),
    }


def initial_capacity(count: int, per_firm: float, leader_share: float) -> np.ndarray:
    """Each firm's opening capacity (units per month): the leader's share, the rest equal.

    The sector's total is ``count * per_firm``; the first firm holds ``max(leader_share,
    1 / count)`` of it and the other firms split the remainder equally.
    """
    if count == 0:
        return np.zeros(0)
    total = count * per_firm
    lead = max(leader_share, 1.0 / count)
    capacity = np.full(count, total * (1.0 - lead) / max(count - 1, 1))
    capacity[0] = total * lead
    return capacity


class EquipmentVendor(Sector):
    """A vendor of equipment made to order from a fixed monthly capacity (see module doc)."""

    supplier_account: ClassVar[str] = "foundry"

    def setup(self) -> None:
        p = self.params
        n = self.count
        self.capacity_units = initial_capacity(
            n, p["capacity_per_month"], p["leader_capacity_share"]
        )
        self.capacity_pipeline = np.zeros((n, p["capacity_lead_months"]))
        self.price = np.full(n, p["initial_price_usd"])
        self.unit_cost = np.full(n, p["unit_cost_usd"])
        total = self.capacity_units.sum()
        self.market_share = self.capacity_units / total if total > 0 else equal_shares(n)
        """Smoothed share of the units the sector sells (0..1): sets the Lerner markup."""
        self.demand_smoothed = self.capacity_units * 0.9
        self.capex_book = np.zeros(n)
        self.capex_depreciation = np.zeros(n)

    def observe(self, step: int) -> None:
        self.capacity_units += shift_pipeline(self.capacity_pipeline)
        self.capacity_units[~self.alive] = 0.0

    def offer(self, market, block) -> None:
        self.offered = np.where(self.alive, self.capacity_units, 0.0)
        market.book.seller_price[block] = self.price
        market.book.seller_capacity[block] = self.offered

    def on_sold(self, market, outcome, block) -> None:
        super().on_sold(market, outcome, block)
        ledger = self.model.ledger
        self.move_goods(
            market.name,
            ledger.account(self.supplier_account),
            self.accounts,
            self.sold,
            "production",
        )
        self.pay(self.sold * self.unit_cost, self.supplier_account, "cost_of_goods")

    def account(self, step: int) -> None:
        p = self.params
        self.pay_overheads()
        depreciation = np.minimum(self.capex_depreciation, self.capex_book)
        self.capex_book -= depreciation
        self.model.firms.charge_depreciation(self.rows, depreciation)

        faced = self.residual_demand()
        self.demand_smoothed = smooth(self.demand_smoothed, faced, p["demand_smoothing"])
        self.market_share = smoothed_shares(
            self.market_share, self.sold, self.alive, p["share_smoothing"]
        )
        target = lerner_scarcity_target(
            p, self.unit_cost, self.market_share, self.price, faced, self.capacity_units
        )
        self.price = partial_adjustment(self.price, target, p["price_adjustment"])

        installed = self.capacity_units + self.capacity_pipeline.sum(axis=1)
        ratio = np.where(installed > 0, capped_quotient(self.demand_smoothed, installed), 0.0)
        expansion = installed * np.minimum(
            p["max_expansion_per_month"], p["expansion_response"] * np.maximum(ratio - 1.0, 0.0)
        )
        expansion = np.where(self.alive, expansion, 0.0)
        expansion *= affordable_share(
            capex_budget(self.model, self.rows), expansion * p["capacity_cost_usd_per_unit_month"]
        )
        self.capacity_pipeline[:, -1] += expansion
        capex = expansion * p["capacity_cost_usd_per_unit_month"]
        self.pay(capex, self.supplier_account, "capex")
        self.capex_book += capex
        self.capex_depreciation += capex / p["capacity_life_months"]
        shrink = (ratio < 0.5) & (installed > 0)
        self.capacity_units[shrink] *= 1.0 - p["capacity_decay_per_month"]

    def opening_price(self) -> np.ndarray:
        """``initial_price_usd`` for every vendor (USD per unit): its first month's price."""
        return np.full(self.count, self.params["initial_price_usd"])

    def residual_demand(self) -> np.ndarray:
        """Demand each vendor faces this month (units): its own orders, or more in a tight market.

        Buyers first ask the vendors they prefer by price (``requested``); orders a sold-out
        vendor cannot fill spill over to the others. So when the sector's orders exceed its
        capacity (tightness ``T`` = orders / capacity > 1), every vendor faces at least ``T``
        times its own capacity: a leader priced above its challengers still sells out while
        they are rationed, and reads that as demand, not as a reason to shrink.
        """
        capacity = np.where(self.alive, self.capacity_units, 0.0)
        tightness = capped_quotient(float(self.requested.sum()), float(capacity.sum()))
        return np.maximum(self.requested, tightness * capacity)

    def on_default(self, defaulted) -> None:
        self.capacity_units[defaulted] = 0.0
        self.market_share[defaulted] = 0.0
        self.capacity_pipeline[defaulted] = 0.0
        self.capex_book[defaulted] = 0.0
        self.capex_depreciation[defaulted] = 0.0

    def book_value(self) -> np.ndarray:
        return self.capex_book

    def physical_stocks(self) -> dict[str, np.ndarray]:
        return {self.sells: np.zeros(self.count)}

    def firm_state(self) -> dict[str, np.ndarray]:
        return {
            "price_usd": self.price,
            "capacity_per_month": self.capacity_units,
            "capacity_on_order": self.capacity_pipeline.sum(axis=1),
            "market_share": self.market_share,
        }

    def on_entry(self, entering) -> None:
        """Entrants (mask) buy ``entry_scale`` x the operating vendors' mean capacity at
        ``capacity_cost_usd_per_unit_month`` from their cash and post their mean price."""
        p = self.params
        cost = p["capacity_cost_usd_per_unit_month"]
        built = starting_capacity(self, entering, self.capacity_units, cost)
        self.pay(built * cost, self.supplier_account, "capex")
        self.capex_book += built * cost
        self.capex_depreciation += built * cost / p["capacity_life_months"]
        self.capacity_units += built
        self.demand_smoothed = np.where(entering, 0.9 * built, self.demand_smoothed)
        mean_price = operating_mean(self, entering, self.price, p["initial_price_usd"])
        self.price = np.where(entering, mean_price, self.price)
