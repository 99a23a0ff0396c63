"""Accelerator generations: the schedule of launches and what each generation delivers.

Every ``generation_months`` months from ``first_launch_month`` a new accelerator generation
launches. Generation 0 is the installed base at the start (H100-class). Generation ``k``:

    performance_k = performance_per_generation ** k   (reference accelerator-hours per hour)
    power_k       = power_per_generation ** k         (board power relative to generation 0)
    price_k       = price_per_generation ** k         (vendor unit cost relative to generation 0)

each factor clipped to ``[1 / MAX_FACTOR, MAX_FACTOR]`` and ``k`` to ``MAX_GENERATIONS`` so no
valid input overflows. Compute is sold in *reference accelerator-hours* (H100-equivalent hours):
an accelerator of generation ``k`` supplies ``performance_k`` of them per hour while drawing
``power_k`` times the power of a generation-0 accelerator. Chip vendors sell the newest
generation; data centers hold their fleet by vintage, each vintage of one generation
(`marketsim.sectors.fleet`).

The schedule is the ``[technology]`` table of an experiment; the defaults come from public
specifications (docs/calibration.md: chips) and say so. The module also holds the results
columns that report the fleet and rental prices by generation (`TECHNOLOGY_METRICS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marketsim.metrics import MetricSpec
from marketsim.schema import Param
from marketsim.schema import TableSchema

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

MAX_GENERATIONS = 64
"""Generations after which the schedule stops launching (128 years at the default spacing)."""
MAX_FACTOR = 1e6
"""Largest (and 1 / smallest) cumulative performance, power or price factor of a generation."""
REPORTED_GENERATIONS = 6
"""Generations 0..5 get their own results columns (six launches fit ten years at 24 months)."""

TECHNOLOGY_TABLE = TableSchema(
    doc="Accelerator generations: when they launch and what each delivers over the last.",
    params={
        "generation_months": Param(
            int,
            24,
            "months between accelerator generation launches",
            "months",
            ge=1,
            le=1200,
            source="docs/calibration.md: chips: H100-class (2023) to B200-class (2024-2025) "
            "list prices: about two years",
        ),
        "first_launch_month": Param(
            int,
            12,
            "month the first generation after the installed base (generation 1) launches",
            "months",
            ge=0,
            le=100_000,
            source="assumption: B200-class volume in the year after the start (2025)",
        ),
        "performance_per_generation": Param(
            float,
            2.25,
            "compute per accelerator of a generation over the previous one (reference "
            "accelerator-hours per hour)",
            "ratio",
            ge=0.01,
            le=100,
            source="assumption: dense FP8 throughput B200 about 4.5 PFLOPS over H100 about "
            "2 PFLOPS in vendor datasheets (not in docs/calibration.md)",
        ),
        "power_per_generation": Param(
            float,
            1.57,
            "board power of a generation over the previous one",
            "ratio",
            ge=0.01,
            le=100,
            source="docs/calibration.md: chips: board power: B200 1,000-1,200 W (middle "
            "1,100) over H100 700 W",
        ),
        "price_per_generation": Param(
            float,
            1.27,
            "vendor unit cost (and so price) of a generation over the previous one",
            "ratio",
            ge=0.01,
            le=100,
            source="docs/calibration.md: chips: B200-class price $30k-40k (middle $35k) over "
            "H100-class $25k-30k (middle $27.5k)",
        ),
    },
)


@dataclass(frozen=True)
class GenerationSchedule:
    """When generations launch and their performance, power and price factors.

    Args:
        generation_months: months between launches.
        first_launch_month: month generation 1 launches.
        performance: performance ratio of one generation over the previous.
        power: board power ratio of one generation over the previous.
        price: unit cost ratio of one generation over the previous.
    """

    generation_months: int = 24
    first_launch_month: int = 12
    performance: float = 2.25
    power: float = 1.57
    price: float = 1.27

    @classmethod
    def of(cls, model: SupplyChainModel) -> GenerationSchedule:
        """The schedule of a model's experiment (defaults without a ``[technology]`` table)."""
        params = model.experiment.get("technology") or {}
        return cls(
            params.get("generation_months", cls.generation_months),
            params.get("first_launch_month", cls.first_launch_month),
            params.get("performance_per_generation", cls.performance),
            params.get("power_per_generation", cls.power),
            params.get("price_per_generation", cls.price),
        )

    def generation_at(self, step: int) -> int:
        """Newest generation on sale in month ``step`` (0 before the first launch)."""
        if step < self.first_launch_month:
            return 0
        launched = 1 + (step - self.first_launch_month) // self.generation_months
        return int(min(launched, MAX_GENERATIONS))

    def _factor(self, ratio: float, generation) -> np.ndarray | float:
        k = np.minimum(np.asarray(generation, dtype=float), MAX_GENERATIONS)
        value = np.clip(np.power(ratio, k), 1.0 / MAX_FACTOR, MAX_FACTOR)
        return float(value) if np.ndim(value) == 0 else value

    def performance_of(self, generation) -> np.ndarray | float:
        """Reference accelerator-hours per hour of an accelerator of ``generation``."""
        return self._factor(self.performance, generation)

    def power_of(self, generation) -> np.ndarray | float:
        """Board power of ``generation`` relative to generation 0 (ratio)."""
        return self._factor(self.power, generation)

    def price_of(self, generation) -> np.ndarray | float:
        """Unit cost of ``generation`` relative to generation 0 (ratio)."""
        return self._factor(self.price, generation)


# -- results columns ------------------------------------------------------------------------


def _datacenter(model: SupplyChainModel):
    return model.sectors.get("datacenter")


def _fleet_of_generation(generation: int):
    def compute(model: SupplyChainModel) -> float:
        datacenter = _datacenter(model)
        if datacenter is None:
            return 0.0
        return float(datacenter.fleet_by_generation(generation).sum())

    return compute


def _rental_of_generation(generation: int):
    def compute(model: SupplyChainModel) -> float:
        datacenter = _datacenter(model)
        if datacenter is None or generation > datacenter.newest_generation:
            return float("nan")
        return float(datacenter.rental_price_of_generation(generation))

    return compute


def _newest_generation(model: SupplyChainModel) -> float:
    datacenter = _datacenter(model)
    return float(datacenter.newest_generation) if datacenter is not None else 0.0


def _datacenter_sum(attribute: str):
    def compute(model: SupplyChainModel) -> float:
        datacenter = _datacenter(model)
        return float(getattr(datacenter, attribute).sum()) if datacenter is not None else 0.0

    return compute


def _tokens_per_newest_hour(model: SupplyChainModel) -> float:
    datacenter = _datacenter(model)
    inference = model.sectors.get("inference")
    if datacenter is None or inference is None or not inference.alive.any():
        return float("nan")
    efficiency = float(inference.efficiency[inference.alive].mean())
    return efficiency * datacenter.schedule.performance_of(datacenter.newest_generation)


TECHNOLOGY_METRICS = [
    MetricSpec(
        "chain",
        "newest_generation",
        _newest_generation,
        "generation index",
        "newest accelerator generation on sale (0 = the installed base at the start, H100-class)",
    ),
    MetricSpec(
        "chain",
        "reference_accelerators",
        _datacenter_sum("reference_fleet"),
        "reference accelerators",
        "installed accelerators in generation-0 (H100) equivalents: each counts its "
        "generation's performance",
    ),
    MetricSpec(
        "chain",
        "accelerators_retired_early",
        _datacenter_sum("retired_early"),
        "accelerators",
        "accelerators retired this month before the end of their accounting life because "
        "their rental value no longer covered their power and site cost (economic life)",
    ),
    MetricSpec(
        "chain",
        "early_retirement_writedown_usd",
        _datacenter_sum("writedown"),
        "USD",
        "book value written off this month on accelerators retired early (booked as "
        "depreciation of the operators)",
    ),
    MetricSpec(
        "chain",
        "tokens_per_newest_acc_hour_millions",
        _tokens_per_newest_hour,
        "million tokens per accelerator-hour",
        "tokens an accelerator of the newest generation serves per hour: mean inference "
        "efficiency (per reference hour, software) x the generation's performance; null "
        "without live inference firms",
    ),
]
for _generation in range(REPORTED_GENERATIONS):
    TECHNOLOGY_METRICS.append(
        MetricSpec(
            "chain",
            f"accelerators_generation_{_generation}",
            _fleet_of_generation(_generation),
            "accelerators",
            f"installed accelerators of generation {_generation} (physical units)",
        )
    )
    TECHNOLOGY_METRICS.append(
        MetricSpec(
            "chain",
            f"rental_usd_per_acc_hour_generation_{_generation}",
            _rental_of_generation(_generation),
            "USD per accelerator-hour",
            f"rental value of one hour of a generation-{_generation} accelerator: the mean "
            "compute price per reference hour of live operators x the generation's "
            "performance; null before the generation launches",
        )
    )
