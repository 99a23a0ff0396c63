"""Recipes as data: what a producing sector needs per unit of capacity or output.

Each producing sector declares its `Recipe` as a class attribute (``Sector.recipe``): a
tuple of `Input` s, each a good (or an input bought outside the markets, such as the
data center's building shell), what it is counted per (`PER`) and how much of it is needed
per that unit (a number times the product of some of the sector's parameters). The
built-in recipes (docs/plugins.md section 8.7 lists them):

- data center: ``accelerators`` 1 per accelerator; ``network_kits`` ``kits_per_accelerator``
  per accelerator; ``power`` ``kw_per_accelerator x pue / 1000`` MW per (generation-0)
  accelerator; the building shell, 1 MW built per MW of facility power drawn.
- inference: ``compute`` 1 / efficiency accelerator-hours per million tokens.

The built-in inputs keep their own code paths (pipelines, the power contract); the recipe
is the one place that names them: `marketsim.bottleneck` reads the labels (the categories
of ``chain.binding_input``) and the docs list them from here.

**Added inputs.** A sector whose recipe lists ``added_per`` (the data center: ``"mw"`` and
``"accelerator"``) takes more inputs from the experiment::

    [agents.datacenter.inputs.cooling_units]
    per_mw = 1.0      # cooling units per MW of facility power the fleet draws

or from the sector that sells the good: a class attribute ``input_to = {"datacenter":
{"per_mw": 1.0}}`` on a registered sector adds the input to the data centers of every
experiment where that seller is present (count >= 1) and the experiment does not list the
good itself. An added input is a **stock**: bought as capex in the good's market (whose
sellers are any sector that sells the good), held, depreciated and retired with the fleet it
serves (`marketsim.sectors.datacenter_inputs`), and it caps the usable fleet like every other
input (Leontief). `check_added_inputs` refuses, before anything runs, an unknown good, a good
no sector of the experiment sells, a good the sector already trades, an unknown or negative
``per_*``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from marketsim.errors import ExperimentError
from marketsim.limits import show_value
from marketsim.schema import Param

if TYPE_CHECKING:
    from marketsim.experiment import Components
    from marketsim.metrics import MetricSpec
    from marketsim.model import SupplyChainModel

PER = {
    "accelerator": "per installed accelerator",
    "mw": "per MW of facility power the installed accelerators draw (kW x PUE)",
    "unit_output": "per unit of the good the sector sells",
}
"""What an input's amount is counted per."""

INPUTS_KEY = "inputs"
"""The key of a sector's table that adds inputs: ``[agents.<sector>.inputs.<good>]``."""


@dataclass(frozen=True)
class Input:
    """One input of a recipe.

    Args:
        good: the good bought in its market, or None for an input the sector builds or buys
            outside the markets (the data center's building shell).
        per: what the amount is counted per, a key of `PER`.
        amount: units of the input per ``per``, times the product of ``params`` and divided
            by the product of ``divide_by`` (parameters of the sector).
        params: names of the sector's parameters that multiply ``amount``.
        divide_by: names of the sector's parameters that divide it.
        label: the name the input binds under (``chain.binding_input``); the good by default.
        stock: True for an input held as a stock (capex), False for one used up each step.
        doc: what it is, with its unit.
    """

    good: str | None
    per: str
    amount: float = 1.0
    params: tuple[str, ...] = ()
    divide_by: tuple[str, ...] = ()
    label: str = ""
    stock: bool = True
    doc: str = ""

    def __post_init__(self) -> None:
        if self.per not in PER:
            raise ValueError(f"Input.per must be one of {', '.join(PER)}, got {self.per!r}")
        if not self.label:
            if self.good is None:
                raise ValueError("an Input without a good needs a label")
            object.__setattr__(self, "label", self.good)

    def amount_for(self, params: dict[str, Any]) -> float:
        """The amount with the sector's parameters filled in (units per ``per``)."""
        value = self.amount
        for name in self.params:
            value *= params[name]
        for name in self.divide_by:
            value /= params[name]
        return value


@dataclass(frozen=True)
class Recipe:
    """A producing sector's inputs (Leontief: every input binds).

    Args:
        inputs: the built-in inputs, in the order they are reported.
        added_per: the ``per`` bases on which an experiment may add inputs (empty: none).
    """

    inputs: tuple[Input, ...] = ()
    added_per: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The inputs' labels, in order."""
        return tuple(item.label for item in self.inputs)

    @property
    def goods(self) -> tuple[str, ...]:
        """The goods bought in markets, in order."""
        return tuple(item.good for item in self.inputs if item.good is not None)

    def input(self, label: str) -> Input:
        """The input with ``label``."""
        for item in self.inputs:
            if item.label == label:
                return item
        raise KeyError(label)

    def with_added(self, params: dict[str, Any]) -> Recipe:
        """This recipe plus the inputs ``params[INPUTS_KEY]`` adds (see the module doc)."""
        return dataclasses.replace(self, inputs=self.inputs + added_inputs(params))


def inputs_param(recipe: Recipe) -> Param:
    """The ``inputs`` key of a sector that accepts added inputs (its schema lists it)."""
    keys = " or ".join(f"`per_{per}`" for per in recipe.added_per)
    return Param(
        dict,
        {},
        f"inputs added to the recipe: a table per good, `[agents.<sector>.inputs.<good>]` with "
        f"{keys} (units of the good needed {', or '.join(PER[p] for p in recipe.added_per)}); "
        "bought as capex and held (docs/plugins.md section 8.7)",
        "table of goods",
        source="scenario lever (empty: the built-in recipe only)",
    )


def added_inputs(params: dict[str, Any]) -> tuple[Input, ...]:
    """The stock inputs an already checked ``inputs`` table adds, in the table's order."""
    added = []
    for good, table in (params.get(INPUTS_KEY) or {}).items():
        ((key, value),) = table.items()
        added.append(
            Input(
                good,
                key.removeprefix("per_"),
                float(value),
                stock=True,
                doc=f"added input: {float(value):g} {good} {PER[key.removeprefix('per_')]}",
            )
        )
    return tuple(added)


def goods_bought(cls: type, params: dict[str, Any]) -> tuple[str, ...]:
    """The goods a sector of class ``cls`` with ``params`` buys: ``cls.buys`` and the goods
    its added inputs name."""
    extra = tuple(g for g in (params.get(INPUTS_KEY) or {}) if g not in cls.buys)
    return (*cls.buys, *extra)


# --- checking an experiment's added inputs ------------------------------------------------


def add_seller_inputs(config: dict[str, Any], components: Components) -> None:
    """Add the inputs present sellers declare with ``input_to`` to their buyers' tables.

    Only where the buyer is present, accepts added inputs and does not list the good.
    Modifies ``config`` in place (the resolved experiment then shows them).
    """
    agents = config["agents"]
    for name, cls in components.sectors.items():
        if name not in agents or not agents[name].get("count"):
            continue
        for buyer, amounts in (getattr(cls, "input_to", None) or {}).items():
            table = agents.get(buyer)
            if table is None or INPUTS_KEY not in table or cls.sells is None:
                continue
            table[INPUTS_KEY].setdefault(cls.sells, dict(amounts))


def check_added_inputs(
    config: dict[str, Any], components: Components, origins: dict[str, str], source: str
) -> None:
    """Refuse added inputs that cannot work (see the module doc).

    Raises:
        ExperimentError: naming ``agents.<sector>.inputs.<good>[.per_<base>]``.
    """
    agents = config["agents"]
    sold = {
        components.sectors[n].sells
        for n in agents
        if agents[n].get("count") and n in components.sectors
    }

    def fail(path: str, message: str):
        where = origins.get(path) or next(
            (src for key, src in origins.items() if key.startswith(path + ".")), None
        )
        raise ExperimentError(message, where or source, path)

    for name, table in agents.items():
        inputs = table.get(INPUTS_KEY)
        if not inputs:
            continue
        cls = components.sectors[name]
        recipe = getattr(cls, "recipe", Recipe())
        allowed = [f"per_{per}" for per in recipe.added_per]
        for good, amounts in inputs.items():
            path = f"agents.{name}.{INPUTS_KEY}.{good}"
            if good not in components.goods:
                close = difflib.get_close_matches(good, list(components.goods), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                fail(path, f"expected a registered good, got unknown good {good!r}{hint}")
            if good in cls.buys or good == cls.sells:
                fail(path, f"expected a good {name} does not already trade, got {good!r}")
            if not isinstance(amounts, dict):
                fail(
                    path,
                    f"expected a table with one of {', '.join(allowed)}, got {show_value(amounts)}",
                )
            for key in amounts:
                if key not in allowed:
                    fail(f"{path}.{key}", f"expected one of {', '.join(allowed)}, got {key!r}")
            if len(amounts) != 1:
                fail(path, f"expected exactly one of {', '.join(allowed)}, got {len(amounts)} keys")
            ((key, value),) = amounts.items()
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0 or value > 1e9:
                fail(
                    f"{path}.{key}", f"must be a number >= 0 and <= 1e+09, got {show_value(value)}"
                )
            if table.get("count") and good not in sold:
                sellers = [s for s, c in components.sectors.items() if c.sells == good]
                hint = f" (add [agents.{sellers[0]}] with count >= 1)" if sellers else ""
                fail(
                    path,
                    f"expected a good some sector of the experiment sells, got {good!r}, "
                    f"which none sells{hint}",
                )


# --- text metrics whose categories include the experiment's inputs --------------------------


class InputCategories(tuple):
    """Categories of a text metric that also names every input of the experiment's recipes.

    A `MetricSpec` declared with ``categories=InputCategories(("a", "b"))`` accepts, in a
    run, these plus the label of every input of every sector's recipe (added inputs too):
    ``chain.binding_input`` uses it to say ``cooling_units``.
    """

    def resolved(self, model: SupplyChainModel) -> tuple[str, ...]:
        """The categories in ``model``: these, then the recipes' other labels in order."""
        labels: list[str] = list(self)
        for sector in model.sectors.values():
            recipe = getattr(sector, "recipe", None)
            for label in recipe.labels if recipe is not None else ():
                if label not in labels:
                    labels.append(label)
        return tuple(labels)


def metrics_for(model: SupplyChainModel, metrics: list[MetricSpec]) -> list[MetricSpec]:
    """The metrics a run records: ``metrics`` with `InputCategories` resolved, then a
    ``chain.stranded_by_<input>`` column for each added input of the experiment's recipes."""
    from marketsim.bottleneck import stranded_by_metric  # noqa: PLC0415 (bottleneck imports us)

    out = [
        dataclasses.replace(m, categories=m.categories.resolved(model))
        if isinstance(m.categories, InputCategories)
        else m
        for m in metrics
    ]
    columns = {m.column for m in out if m.table == "chain"}
    for sector in model.sectors.values():
        recipe = getattr(sector, "recipe", None)
        base = getattr(type(sector), "recipe", None)
        if recipe is None or base is None:
            continue
        for item in recipe.inputs[len(base.inputs) :]:
            spec = stranded_by_metric(item.label)
            if spec.column not in columns:
                columns.add(spec.column)
                out.append(spec)
    return out
