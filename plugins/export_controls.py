"""Export controls as a policy: from a given month, a good may not flow between regions.

Unlike ``[graph] restrictions``, which shape the supply graph before the run, this policy
closes existing trade edges part-way through a run, so a researcher can watch the chain
adjust to a shock: buyers in the controlled region lose their foreign suppliers, unmet
demand rises, and prices move.

Use it from an experiment file (path relative to that file)::

    plugins = ["../plugins/export_controls.py"]

    [export_controls]
    good = "accelerators"
    from_region = "us"
    to_region = "asia"
    start_step = 24
"""

from __future__ import annotations

import weakref

import numpy as np

from marketsim.plugin import MetricSpec
from marketsim.plugin import Param
from marketsim.plugin import TableSchema
from marketsim.plugin import hookimpl

__version__ = "1.0.0"

TABLE = TableSchema(
    doc="Close trade in one good from sellers in one region to buyers in another.",
    params={
        "good": Param(
            str,
            "accelerators",
            "the controlled good (a market of the experiment)",
            source="scenario lever",
        ),
        "from_region": Param(
            str, "us", "region of the sellers ([graph] regions)", source="scenario lever"
        ),
        "to_region": Param(
            str, "asia", "region of the buyers ([graph] regions)", source="scenario lever"
        ),
        "start_step": Param(
            int, 24, "first step of the control", "step", ge=0, source="scenario lever"
        ),
    },
)


@hookimpl
def marketsim_register_config_tables(register):
    register("export_controls", TABLE)


@hookimpl
def marketsim_validate_config(experiment):
    """Check the rule against the experiment before anything runs (a typo is an error)."""
    rule = experiment["export_controls"]
    regions = experiment["graph"]["regions"]
    goods = list(experiment["markets"])
    problems = [
        (f"export_controls.{key}", f"must be one of {_listed(regions)}, got {rule[key]!r}")
        for key in ("from_region", "to_region")
        if rule[key] not in regions
    ]
    if rule["good"] not in goods:
        problems.append(
            ("export_controls.good", f"must be one of {_listed(goods)}, got {rule['good']!r}")
        )
    return problems


def _listed(names) -> str:
    return ", ".join(map(repr, names))


@hookimpl
def marketsim_before_clear(model, market):
    rule = model.experiment["export_controls"]
    if market.name != rule["good"] or model.step_index < rule["start_step"]:
        return
    regions = model.experiment["graph"]["regions"]
    book = market.book
    seller_region = _regions(market.sellers, book.n_sellers)
    buyer_region = _regions(market.buyers, book.n_buyers)
    edge_buyer = np.repeat(np.arange(book.n_buyers), np.diff(book.buyer_indptr))
    controlled = (seller_region[book.edge_seller] == regions.index(rule["from_region"])) & (
        buyer_region[edge_buyer] == regions.index(rule["to_region"])
    )
    book.edge_open &= ~controlled
    _CONTROLLED[model] = float(controlled.sum())


def _regions(participants, count: int) -> np.ndarray:
    """Region index of every participant of one side of a market."""
    region = np.zeros(count, dtype=np.int64)
    for sector, start, size in participants.sectors:
        region[start : start + size] = sector.region
    return region


@hookimpl
def marketsim_register_metrics(register):
    register(
        MetricSpec(
            "chain",
            "export_controlled_edges",
            _closed_edges,
            "edges",
            "trade edges closed by the export control this step",
        )
    )


_CONTROLLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Model -> edges the control closed in its latest step (other closures, such as dormant
entrants' links, are not counted)."""


def _closed_edges(model) -> float:
    if model.step_index < model.experiment["export_controls"]["start_step"]:
        return 0.0
    return _CONTROLLED.get(model, 0.0)
