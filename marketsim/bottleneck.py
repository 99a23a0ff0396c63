"""Which input limits token output this step: the ``binding_input`` column of ``chain``.

Token output is limited by the compute inference firms can buy, and compute by the
data-center fleet that can run. The chain-level rule, applied at the end of each step:

1. **demand** when compute is not sold out: the compute market sold less than
   ``1 - SOLD_OUT_TOLERANCE`` of the accelerator-hours the data centers offered (more end
   demand would have bought more compute, so no input binds).
2. Otherwise the input that binds for the largest share of the installed fleet. Each data
   center's usable fleet is the smallest of what each input can keep running (its
   ``input_limits()``: ``accelerators`` installed, ``network`` kits, ``power`` bought,
   ``buildings`` shell; the Leontief recipe). An operator's binding input is the input with
   the smallest limit; limits within a relative ``TIE_TOLERANCE`` of the smallest count as
   equal, and among equals the first in `TIE_ORDER` wins (power is bought for what the fleet
   and the shell can use, so a power limit equal to the fleet's or the shell's is not power
   binding). Each operator's binding input is weighted by its installed accelerators, summed
   per input over every sector exposing ``input_limits``; the input with the largest weight
   binds (ties: `TIE_ORDER`). With no accelerators installed anywhere, ``accelerators``
   binds.

The value is null only when no sector exposes ``input_limits`` (a chain without data
centers). Which input binds how often over a run is an outcome measure
(``chain.binding_input.months_<input>``, `marketsim.analysis.outcomes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.metrics import TEXT_UNIT
from marketsim.metrics import MetricSpec

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

TIE_ORDER = ("accelerators", "buildings", "network", "power")
"""The physical inputs, in the order that breaks ties between equal limits."""
BINDING_INPUTS = ("accelerators", "network", "power", "buildings", "demand")
"""The categories of ``chain.binding_input``, in the column's category order."""
SOLD_OUT_TOLERANCE = 1e-9
"""Compute counts as sold out when sold >= (1 - this) x offered (relative; rounding)."""
TIE_TOLERANCE = 1e-9
"""Limits within this relative distance of an operator's smallest limit tie with it."""


def compute_sold_out(model: SupplyChainModel) -> bool:
    """Whether the compute market sold (within `SOLD_OUT_TOLERANCE`) all it was offered.

    True without a compute market or when nothing was offered (demand cannot be what binds).
    """
    market = model.markets.get("compute")
    if market is None:
        return True
    offered = float(market.book.seller_capacity.sum())
    sold = float(market.outcome.seller_sold.sum())
    return offered <= 0.0 or sold >= (1.0 - SOLD_OUT_TOLERANCE) * offered


def binding_input_of_operators(limits: dict[str, np.ndarray]) -> np.ndarray:
    """Each operator's binding input as an index into `TIE_ORDER`.

    Args:
        limits: input name -> accelerators that input can keep running, per operator.

    Returns:
        int array, one per operator.
    """
    stacked = np.stack([np.asarray(limits[name], dtype=float) for name in TIE_ORDER])
    smallest = stacked.min(axis=0)
    binds = stacked <= smallest + TIE_TOLERANCE * np.abs(smallest)
    return np.argmax(binds, axis=0)  # the first binding input in TIE_ORDER


def binding_input(model: SupplyChainModel) -> str | None:
    """The input limiting token output this step (see the module docstring)."""
    sectors = [s for s in model.sectors.values() if callable(getattr(s, "input_limits", None))]
    if not sectors:
        return None
    if not compute_sold_out(model):
        return "demand"
    weight = np.zeros(len(TIE_ORDER))
    for sector in sectors:
        limits = sector.input_limits()
        fleet = np.asarray(limits["accelerators"], dtype=float)
        weight += np.bincount(
            binding_input_of_operators(limits), weights=fleet, minlength=len(TIE_ORDER)
        )
    if not weight.sum() > 0.0:
        return "accelerators"
    return TIE_ORDER[int(np.argmax(weight))]


BOTTLENECK_METRICS = [
    MetricSpec(
        "chain",
        "binding_input",
        binding_input,
        TEXT_UNIT,
        "which input limits token output this step: demand (compute not sold out), else"
        " accelerators, network, power or buildings, whichever binds for the largest share"
        " of the installed fleet (docs/model.md 7.14); null without data centers",
        categories=BINDING_INPUTS,
    ),
]
