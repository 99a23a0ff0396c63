"""A data-center fleet held by vintage and generation: which accelerators run, which retire.

Arrays are per operator (rows) and per monthly vintage slot (columns, a ring buffer over the
accounting useful life, as in `marketsim.sectors.datacenter`). Every vintage is one
accelerator generation (`marketsim.technology`): all accelerators bought in one month are the
generation on sale that month. Per slot: ``performance`` (reference accelerator-hours per
hour of one accelerator) and ``mw`` (facility MW one accelerator draws).

Which accelerators run (`run_newest_first`): kits and power are given to the most efficient
accelerators first (newest generation first, the highest reference hours per MW), so when an
input binds it is the old generations that stand idle.

Economic life (`uneconomic`): an accelerator is retired early when the rental value of its
hours, ``price * performance * availability`` (USD per hour, ``price`` per reference hour),
falls below what keeping it running costs, ``mw * (power_price * h_b + site_opex) / 730``
(USD per hour: its power and the site cost of the MW it occupies), whatever its accounting
life. The book value left on it is written off (`remaining_book_share`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import capped_quotient
from marketsim.technology import GenerationSchedule


def newest_first(generation: np.ndarray) -> np.ndarray:
    """Slot order from newest to oldest generation (stable: ties keep slot order)."""
    return np.argsort(-np.asarray(generation), kind="stable")


def run_newest_first(
    units: np.ndarray,
    mw: np.ndarray,
    order: np.ndarray,
    kit_room: np.ndarray,
    power_room: np.ndarray,
) -> np.ndarray:
    """Accelerators of each vintage that kits and power can keep running (newest first).

    Args:
        units: accelerators per operator and slot, shape (operators, slots).
        mw: facility MW per accelerator of each slot, shape (slots,).
        order: slot order, newest generation first (`newest_first`).
        kit_room: accelerators the operator's kits can connect, shape (operators,).
        power_room: MW the operator can power, shape (operators,).

    Returns:
        Running accelerators per operator and slot, each between 0 and ``units``.
    """
    ranked = units[:, order]
    units_before = _sum_before(ranked)
    mw_before = _sum_before(ranked * mw[order])
    by_kits = np.asarray(kit_room, dtype=float)[:, None] - units_before
    power_left = np.maximum(np.asarray(power_room, dtype=float)[:, None] - mw_before, 0.0)
    by_power = capped_quotient(power_left, mw[order])
    running = np.clip(np.minimum(by_kits, by_power), 0.0, ranked)
    out = np.empty_like(running)
    out[:, order] = running
    return out


def _sum_before(values: np.ndarray) -> np.ndarray:
    """Exclusive running sum along each row (no cancellation: ``cumsum - values`` loses a
    small term next to a large one)."""
    out = np.zeros_like(values)
    np.cumsum(values[:, :-1], axis=1, out=out[:, 1:])
    return out


def runnable_accelerators(
    units: np.ndarray, mw: np.ndarray, order: np.ndarray, power_room: np.ndarray, mw_newest: float
) -> np.ndarray:
    """Accelerators ``power_room`` MW could keep running per operator (the power recipe).

    The installed accelerators it powers, newest first, plus what the MW left over would run
    of the newest generation (``mw_newest`` MW each).
    """
    unlimited = np.full(units.shape[0], np.inf)
    powered = run_newest_first(units, mw, order, unlimited, power_room).sum(axis=1)
    spare = np.maximum(np.asarray(power_room, dtype=float) - (units * mw).sum(axis=1), 0.0)
    return powered + capped_quotient(spare, mw_newest)


def uneconomic(
    units: np.ndarray,
    price: np.ndarray,
    performance: np.ndarray,
    mw: np.ndarray,
    availability: float,
    power_usd_per_mw_month: float,
    site_usd_per_mw_month: float,
) -> np.ndarray:
    """Vintages whose rental value per hour no longer covers their running cost (bool).

    Args:
        units: accelerators per operator and slot (a slot with none is never retired).
        price: each operator's compute price, USD per reference accelerator-hour.
        performance: reference hours per hour of an accelerator of each slot.
        mw: facility MW per accelerator of each slot.
        availability: share of hours an accelerator can be sold.
        power_usd_per_mw_month: what one MW of power costs a month (USD).
        site_usd_per_mw_month: site operations per MW a month (USD).
    """
    value = np.asarray(price, dtype=float)[:, None] * performance * availability
    cost = mw * (power_usd_per_mw_month + site_usd_per_mw_month) / HOURS_PER_MONTH
    return (units > 0.0) & (value < cost)


def remaining_book_share(life: int, step: int) -> np.ndarray:
    """Share of each slot's cost not yet depreciated at the start of month ``step``.

    Slot ``s`` has ``(s - step) mod life`` of its ``life`` months of straight-line
    depreciation left (the slot retiring this month has none).
    """
    return ((np.arange(life) - step) % life) / life


def due_within(step: int, months: int, life: int) -> np.ndarray:
    """Bool mask of the slots that reach the end of their accounting life in months
    ``step + 1 .. step + months``."""
    slots = (step + 1 + np.arange(months)) % life
    mask = np.zeros(life, dtype=bool)
    mask[slots] = True
    return mask


@dataclass
class SlotGenerations:
    """Generation of the accelerators in each vintage slot and each delivery-pipeline slot.

    The same for every operator (all accelerators bought in a month are the generation on sale
    then), so held once, outside the per-operator arrays.

    Args:
        vintage: generation per vintage slot (slots of the useful-life ring buffer).
        on_order: generation per delivery-pipeline slot (column 0 arrives next).
    """

    vintage: np.ndarray
    on_order: np.ndarray


class GenerationFleet:
    """The fleet-by-generation half of a data-center sector (mixed into `Datacenter`).

    Expects of the sector: ``params``, ``vintage_units`` and ``vintage_cost`` (operators x
    slots), ``generations`` (`SlotGenerations`),
    ``accelerator_pipeline``, ``kits``, ``power_mw``, ``shell_mw``, ``it_book``, ``price``,
    ``power_price_usd_per_mwh``, ``power_billed_hours``, ``newest_generation``, ``life`` and
    ``schedule`` (a `GenerationSchedule`), ``_added_limits()`` (the added inputs' limits,
    `marketsim.sectors.datacenter_inputs`), plus the `Sector` helpers.
    """

    schedule: GenerationSchedule
    generations: SlotGenerations
    params: Any

    @property
    def vintage_generation(self) -> np.ndarray:
        """Generation of the accelerators in each vintage slot."""
        return self.generations.vintage

    @property
    def order_generation(self) -> np.ndarray:
        """Generation of the accelerators in each slot of the delivery pipeline."""
        return self.generations.on_order

    @property
    def fleet(self) -> np.ndarray:
        """Accelerators installed per operator."""
        return self.vintage_units.sum(axis=1)

    @property
    def vintage_performance(self) -> np.ndarray:
        """Reference accelerator-hours per hour of an accelerator of each slot."""
        return np.asarray(self.schedule.performance_of(self.vintage_generation), dtype=float)

    @property
    def vintage_mw(self) -> np.ndarray:
        """Facility MW drawn per accelerator of each slot (generation-0 kW x power x PUE)."""
        return self._mw_generation0 * np.asarray(
            self.schedule.power_of(self.vintage_generation), dtype=float
        )

    @property
    def _mw_generation0(self) -> float:
        return self.params["kw_per_accelerator"] * self.params["pue"] / 1000.0

    @property
    def mw_per_new_accelerator(self) -> float:
        """Facility MW drawn by one accelerator of the newest generation."""
        return self._mw_generation0 * self.schedule.power_of(self.newest_generation)

    @property
    def mw_per_accelerator(self) -> float:
        """Facility MW per reference accelerator of the newest generation (kW x PUE / 1000
        x its power / its performance): what a reference accelerator-hour of new capacity draws.
        """
        return self.mw_per_new_accelerator / self.schedule.performance_of(self.newest_generation)

    @property
    def reference_fleet(self) -> np.ndarray:
        """Installed accelerators in reference equivalents (each counts its performance)."""
        return self.vintage_units @ self.vintage_performance

    @property
    def fleet_mw(self) -> np.ndarray:
        """Facility MW the whole installed fleet draws when it runs."""
        return self.vintage_units @ self.vintage_mw

    def fleet_by_generation(self, generation: int) -> np.ndarray:
        """Installed accelerators of ``generation`` per operator (physical units)."""
        return self.vintage_units[:, self.vintage_generation == generation].sum(axis=1)

    def rental_price_of_generation(self, generation: int) -> float:
        """Mean rental value of an hour of a ``generation`` accelerator over live operators:
        compute price per reference hour x the generation's performance (USD per hour)."""
        alive = self.alive
        if not alive.any():
            return float("nan")
        return float(self.price[alive].mean() * self.schedule.performance_of(generation))

    def _retire(self, retiring: np.ndarray) -> None:
        """Scrap ``retiring`` accelerators per operator and the kits that served them."""
        scrap = self.model.ledger.account("scrap")
        self.move_goods("accelerators", self.accounts, scrap, retiring, "retirement")
        kits_retiring = np.minimum(self.kits, retiring * self.params["kits_per_accelerator"])
        self.move_goods("network_kits", self.accounts, scrap, kits_retiring, "retirement")
        self.kits -= kits_retiring

    def _retire_uneconomic(self, step: int) -> None:
        """Retire vintages whose rental value no longer covers their power and site cost,
        writing off the book value left on them (economic life; see `marketsim.sectors.fleet`)."""
        p = self.params
        early = uneconomic(
            self.vintage_units,
            np.where(self.alive, self.price, np.inf),
            self.vintage_performance,
            self.vintage_mw,
            p["availability"],
            self.power_price_usd_per_mwh * self.power_billed_hours,
            p["site_opex_usd_per_mw_month"],
        )
        retiring = np.where(early, self.vintage_units, 0.0)
        self.retired_early = retiring.sum(axis=1)
        share = remaining_book_share(self.life, step)
        writedown = np.where(early, self.vintage_cost, 0.0) @ share
        self.writedown = np.minimum(writedown, self.it_book)
        if not early.any():
            return
        self._retire(self.retired_early)
        self.vintage_units[early] = 0.0
        self.vintage_cost[early] = 0.0
        self.it_book -= self.writedown
        self.model.firms.charge_depreciation(self.rows, self.writedown)

    def _committed(self, step: int, months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accelerators installed or on order that do not reach the end of their accounting
        life within ``months`` months, per operator: physical units, reference equivalents and
        facility MW."""
        keep = ~due_within(step, months, self.life)
        staying = self.vintage_units[:, keep]
        on_order = self.accelerator_pipeline
        return (
            staying.sum(axis=1) + on_order.sum(axis=1),
            staying @ self.vintage_performance[keep]
            + on_order @ self.schedule.performance_of(self.order_generation),
            staying @ self.vintage_mw[keep]
            + on_order @ (self._mw_generation0 * self.schedule.power_of(self.order_generation)),
        )

    def _server_overhead(self) -> float:
        """Rest of the server per accelerator of the newest generation (USD): scales with the
        generation's price (server cost about 1.64 x accelerator price)."""
        return self.params["server_overhead_usd_per_accelerator"] * self.schedule.price_of(
            self.newest_generation
        )

    def input_limits(self) -> dict[str, np.ndarray]:
        """Accelerators each input could keep running this step, per operator (the recipe).

        ``accelerators``: the installed fleet; ``network``: kits over kits per accelerator;
        ``power``: the installed accelerators the power bought can run, newest generation
        first (each draws its generation's MW), plus what power left over would run of the
        newest generation; ``buildings``: the same for the built shell's MW; then each added
        input of the recipe by its label (`marketsim.sectors.datacenter_inputs`). The usable
        fleet is their minimum (Leontief), so the smallest names the input that binds.
        """
        p = self.params
        alive = self.alive
        order = newest_first(self.vintage_generation)
        mw = self.vintage_mw
        new = self.mw_per_new_accelerator
        limits = {
            "accelerators": self.fleet,
            "network": capped_quotient(self.kits, p["kits_per_accelerator"]),
            "power": runnable_accelerators(self.vintage_units, mw, order, self.power_mw, new),
            "buildings": runnable_accelerators(self.vintage_units, mw, order, self.shell_mw, new),
            **self._added_limits(),
        }
        return {name: np.where(alive, value, 0.0) for name, value in limits.items()}
