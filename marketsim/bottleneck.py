"""Which input limits token output this step: the ``binding_input`` column of ``chain``.

Token output is limited by the compute inference firms can buy, and compute by the
data-center fleet that can run. The chain-level rule, applied at the end of each step:

1. **demand** when compute is not sold out: the compute market sold less than
   ``1 - SOLD_OUT_TOLERANCE`` of the accelerator-hours the data centers offered (more end
   demand would have bought more compute, so no input binds).
2. Otherwise the input that binds for the largest share of the installed fleet. Each data
   center's usable fleet is the smallest of what each input of its recipe
   (`marketsim.recipes`; labels ``accelerators`` installed, ``network`` kits, ``power``
   bought, ``buildings`` shell, then any added input such as ``cooling_units``) can keep
   running (its ``input_limits()``; Leontief). An operator's binding input is the input with
   the smallest limit; limits within a relative ``TIE_TOLERANCE`` of the smallest count as
   equal, and among equals the first in `TIE_ORDER` wins, then added inputs in recipe order
   (power is bought for what the fleet and the shell can use, so a power limit equal to the
   fleet's or the shell's is not power binding). Each operator's binding input is weighted
   by its installed accelerators, summed per input over every sector exposing
   ``input_limits``; the input with the largest weight binds (ties: the same order). With no
   accelerators installed anywhere, ``accelerators`` binds.

The value is null only when no sector exposes ``input_limits`` (a chain without data
centers). Which input binds how often over a run is an outcome measure
(``chain.binding_input.months_<input>``, `marketsim.analysis.outcomes`).

The column's categories are the built-in data center's recipe labels and ``demand``, plus,
in a run, every input the experiment adds (`marketsim.recipes.InputCategories`); each added
input also gets a ``chain.stranded_by_<input>`` column (`stranded_by_metric`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.metrics import TEXT_UNIT
from marketsim.metrics import MetricSpec
from marketsim.recipes import InputCategories
from marketsim.sectors.datacenter_inputs import DATACENTER_RECIPE

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

TIE_ORDER = ("accelerators", "buildings", "network", "power")
"""The built-in inputs, in the order that breaks ties between equal limits (added inputs
follow in recipe order)."""
BINDING_INPUTS = (*DATACENTER_RECIPE.labels, "demand")
"""The categories of ``chain.binding_input`` (the data center's recipe, then demand), in the
column's category order; a run adds its added inputs (`InputCategories`)."""
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


def tie_order(labels) -> tuple[str, ...]:
    """``labels`` in tie-breaking order: `TIE_ORDER` first, then the others as given."""
    return (*[n for n in TIE_ORDER if n in labels], *[n for n in labels if n not in TIE_ORDER])


def binding_input_of_operators(
    limits: dict[str, np.ndarray], order: tuple[str, ...] = TIE_ORDER
) -> np.ndarray:
    """Each operator's binding input as an index into ``order``.

    Args:
        limits: input name -> accelerators that input can keep running, per operator.
        order: the input names in tie-breaking order (`tie_order`).

    Returns:
        int array, one per operator.
    """
    stacked = np.stack([np.asarray(limits[name], dtype=float) for name in order])
    smallest = stacked.min(axis=0)
    binds = stacked <= smallest + TIE_TOLERANCE * np.abs(smallest)
    return np.argmax(binds, axis=0)  # the first binding input in order


def binding_input(model: SupplyChainModel) -> str | None:
    """The input limiting token output this step (see the module docstring)."""
    sectors = [s for s in model.sectors.values() if callable(getattr(s, "input_limits", None))]
    if not sectors:
        return None
    if not compute_sold_out(model):
        return "demand"
    all_limits = [sector.input_limits() for sector in sectors]
    order = tie_order(list(dict.fromkeys(name for limits in all_limits for name in limits)))
    weight = np.zeros(len(order))
    for limits in all_limits:
        fleet = np.asarray(limits["accelerators"], dtype=float)
        mine = tie_order(list(limits))
        picked = binding_input_of_operators(limits, mine)
        per_input = np.bincount(picked, weights=fleet, minlength=len(mine))
        weight[[order.index(name) for name in mine]] += per_input
    if not weight.sum() > 0.0:
        return "accelerators"
    return order[int(np.argmax(weight))]


def stranded_by(model: SupplyChainModel, label: str) -> float:
    """Installed accelerators the input ``label`` alone leaves idle, summed over the sectors
    whose ``input_limits`` name it (``fleet - limit``, at least 0)."""
    total = 0.0
    for sector in model.sectors.values():
        if not callable(getattr(sector, "input_limits", None)):
            continue
        limits = sector.input_limits()
        if label in limits:
            fleet = np.asarray(limits["accelerators"], dtype=float)
            total += float(np.maximum(fleet - np.asarray(limits[label], dtype=float), 0.0).sum())
    return total


def stranded_by_metric(label: str) -> MetricSpec:
    """The ``chain.stranded_by_<label>`` column of an added input (`marketsim.recipes`)."""
    return MetricSpec(
        "chain",
        f"stranded_by_{label}",
        lambda model: stranded_by(model, label),
        "accelerators",
        f"installed accelerators that {label} held alone cannot keep running (what this input "
        "strands, whatever the other inputs allow)",
    )


BOTTLENECK_METRICS = [
    MetricSpec(
        "chain",
        "binding_input",
        binding_input,
        TEXT_UNIT,
        "which input limits token output this step: demand (compute not sold out), else"
        " accelerators, network, power or buildings (or an input the experiment adds, e.g."
        " cooling_units), whichever binds for the largest share of the installed fleet"
        " (docs/model.md 7.14); null without data centers",
        categories=InputCategories(BINDING_INPUTS),
    ),
]
