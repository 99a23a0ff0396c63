"""Warnings: what did not stop a command but is probably not what the user meant.

A `MarketsimWarning` is an ordinary Python warning (``warnings.warn``), so a notebook shows it
the usual way and ``warnings.simplefilter("error", MarketsimWarning)`` turns it into an
exception. It is also a `MarketsimError`: raised as an error it is reported like any other
user error (one line, exit code 2). The command line prints each warning as one line on
stderr, ``warning: <what>`` (`warning_lines`); ``marketsim run --strict`` and ``marketsim
study --strict`` turn them into errors (`strict_warnings`).

What is warned about:

- an installed (entry-point) plugin that fails to load: it is skipped and the command goes
  on (`marketsim.plugins`);
- a good with no buyer: a sector of the experiment sells it but no sector of the experiment
  buys it (`check_experiment`, before anything runs);
- a market that never traded over a whole run (every step of every replication sold
  nothing), with why when it can be told: no edge of the supply graph for the good, no
  buyer ever asked for any, or no seller ever offered any (`check_run`, after the run and
  before anything is written).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pluggy

from marketsim.errors import MarketsimError
from marketsim.errors import one_line

if TYPE_CHECKING:
    from marketsim.experiment import Experiment
    from marketsim.results import Results


class MarketsimWarning(MarketsimError, UserWarning):
    """Something probably unintended that does not stop the command (unless ``--strict``).

    Args:
        message: what was found, naming the plugin, good or market.
        going_on: what happens instead of stopping (e.g. ``"it is skipped"``); shown after the
            message when this is a warning, left out when it is raised as an error.
    """

    def __init__(self, message: str, going_on: str = ""):
        super().__init__(message)
        self.message = message
        self.going_on = going_on

    def warning_line(self) -> str:
        """The one line the command line prints: ``warning: <message>[; <going_on>]``."""
        suffix = f"; {self.going_on}" if self.going_on else ""
        return one_line(f"warning: {self.message}{suffix}")


def warn(message: str, going_on: str = "") -> None:
    """Issue a `MarketsimWarning` (an error under `strict_warnings`)."""
    warnings.warn(MarketsimWarning(message, going_on), stacklevel=2)


@contextmanager
def warning_lines() -> Iterator[None]:
    """Print every `MarketsimWarning` raised inside as one line on stderr, each time.

    Other warnings are shown as Python shows them, except pluggy's
    ``PluggyTeardownRaisedWarning``: the error it announces is reported on its own line.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always", MarketsimWarning)
        warnings.simplefilter("ignore", pluggy.PluggyTeardownRaisedWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if isinstance(message, MarketsimWarning):
                print(message.warning_line(), file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@contextmanager
def strict_warnings(strict: bool = True) -> Iterator[None]:
    """Inside, a `MarketsimWarning` is raised as an error (with ``strict``; else no change)."""
    if not strict:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", MarketsimWarning)
        yield


def unbought_goods(experiment: Experiment) -> dict[str, list[str]]:
    """Goods sold in the experiment that no sector of the experiment buys.

    A sector counts when it has firms (``count`` >= 1) or may gain them
    (``potential_entrants`` >= 1). It buys the goods its class buys and the inputs its table
    adds (``[agents.<name>.inputs.<good>]``, with those sellers add by ``input_to``).

    Returns:
        good -> the sectors selling it, for each good without a buyer.
    """
    agents = experiment.config["agents"]
    classes = experiment.components.sectors

    def active(name: str) -> bool:
        table = agents[name]
        return table.get("count", 0) > 0 or table.get("potential_entrants", 0) > 0

    present = [name for name in experiment.sector_names() if active(name)]
    bought = {good for name in present for good in _goods_bought(classes[name], agents[name])}
    unbought: dict[str, list[str]] = {}
    for name in present:
        good = classes[name].sells
        if good is not None and good not in bought:
            unbought.setdefault(good, []).append(name)
    return unbought


def _goods_bought(cls, params) -> tuple[str, ...]:
    """The goods a sector buys: its class's and the inputs its parameters add."""
    added = params.get(ADDED_INPUTS)
    return (*cls.buys, *(added if isinstance(added, dict) else ()))


ADDED_INPUTS = "inputs"
"""The key of a sector's table that adds inputs to its recipe (docs/plugins.md)."""


def check_experiment(experiment: Experiment) -> None:
    """Warn about each good of ``experiment`` that no sector buys (before anything runs)."""
    for good, sellers in unbought_goods(experiment).items():
        names = ", ".join(repr(s) for s in sellers)
        warn(
            f"{experiment.source}: good {good!r} has no buyer: sector {names} sells it but "
            "no sector in the experiment buys it"
        )


def never_traded(experiment: Experiment, results: Results) -> dict[str, str]:
    """Markets that sold nothing at any step of any replication, and why if it shows.

    Goods without a buyer (`unbought_goods`) are left out: `check_experiment` names them.

    Returns:
        market -> the reason (may be empty).
    """
    markets = results.tables.get("markets")
    if markets is None or markets.empty:
        return {}
    totals = markets.groupby("market", sort=False)[["quantity", "demand", "supply"]].agg(
        lambda column: column.fillna(0.0).abs().max()
    )
    unbought = unbought_goods(experiment)
    idle = [m for m, row in totals.iterrows() if row["quantity"] <= 0 and m not in unbought]
    if not idle:
        return {}
    reasons = {}
    edges = _edges_by_good(experiment)
    for market in idle:
        row = totals.loc[market]
        if not edges.get(market):
            reasons[market] = "the supply graph has no edge for it (no seller reaches a buyer)"
        elif row["demand"] <= 0:
            reasons[market] = "no buyer ever asked for any"
        elif row["supply"] <= 0:
            reasons[market] = "no seller ever offered any"
        else:
            reasons[market] = ""
    return reasons


def _edges_by_good(experiment: Experiment) -> dict[str, int]:
    """Edges of the (plugin-modified) supply graph per good (from its arrays: O(edges)
    numpy, no networkx graph)."""
    return experiment.supply_edges().edges_by_good()


def check_run(experiment: Experiment, results: Results) -> None:
    """Warn about each market that never traded over the run (before results are written)."""
    config = experiment.config["experiment"]
    steps, replications = config["steps"], config["replications"]
    span = f"{steps} step{'s' * (steps != 1)} x {replications} replication"
    span += "s" * (replications != 1)
    for market, reason in never_traded(experiment, results).items():
        because = f": {reason}" if reason else ""
        warn(f"{experiment.source}: market {market!r} never traded over the run ({span}){because}")
