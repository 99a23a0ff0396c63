"""The hooks a marketsim plugin can implement: one docstring each, nothing else.

Registry hooks receive a ``register`` callback. The built-in sectors, goods, mechanisms and
metrics are registered through these same hooks by `marketsim.builtin`.

Hooks are called through pluggy's relay: an implementation may be marked
``@hookimpl(tryfirst=True)`` or ``trylast=True``, or be a wrapper (``wrapper=True``, a
generator that yields once, around every other implementation). Among plain implementations
the built-ins act first, then installed plugins, then the experiment's in the order listed.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("marketsim")


@hookspec
def marketsim_register_goods(register):
    """Register goods (one market each).

    Call ``register(marketsim.GoodSpec(...))`` once per good: its name (the key of
    ``[markets.<good>]``), unit, price unit and default clearing mechanism.
    """


@hookspec
def marketsim_register_sectors(register):
    """Register sectors (agent types).

    Call ``register(SectorClass)`` with a subclass of `marketsim.Sector`. The class names
    the sector (``[agents.<name>]``), its parameter schema, the good it sells and the goods
    it buys; its methods act on all its firms at once through numpy arrays.
    """


@hookspec
def marketsim_register_mechanisms(register):
    """Register clearing mechanisms.

    Call ``register(marketsim.MechanismSpec(...))``: a name (the value of
    ``[markets.<good>] mechanism``), a parameter schema and a ``clear`` function that takes
    a `marketsim.MarketBook` and the mechanism's parameters and returns a
    `marketsim.ClearingOutcome`.
    """


@hookspec
def marketsim_register_metrics(register):
    """Register metrics: extra columns of the results tables.

    Call ``register(marketsim.MetricSpec(...))`` with a table (``"sectors"``, ``"chain"`` or
    ``"markets"``), a column name, a unit and a function computing the column's values from
    the model at the end of a step.
    """


@hookspec
def marketsim_register_config_tables(register):
    """Register top-level experiment tables.

    Call ``register(name, marketsim.TableSchema(...))``; the experiment file's ``[name]``
    table is then validated against the schema (unknown keys, types, ranges) like the core's.
    """


@hookspec
def marketsim_validate_config(experiment):
    """Check the experiment's settings across fields, before anything runs.

    Called once the experiment file has passed every schema (types, ranges, unknown keys)
    and the sectors' own ``check_params``, each time an experiment is loaded or overridden
    (``run``, ``validate``, ``graph``, each variation of a study). Check what a schema cannot
    express, typically rules across the keys of the plugin's own table.

    Args:
        experiment: the resolved experiment (dict), every default filled in.

    Returns:
        A list of ``(key, message)`` problems, empty (or None) if there are none. ``key`` is
        the dotted key the problem is about (``"carbon.price_cap"``), ``message`` says what
        was expected and what was found (``"must be >= price_floor (40), got 20"``). The
        first problem stops the command with ``error: <file>: <key>: <message>``, exit code
        2, before anything is written. Do not raise for a problem of the settings: an
        exception is reported as the plugin's error in this hook.
    """


@hookspec
def marketsim_modify_graph(graph, experiment):
    """Change the supply graph after it is built and before markets read it.

    Args:
        graph: the `networkx.DiGraph` (firm nodes with ``sector`` and ``region``; edges
            seller -> buyer with attribute ``good``). Edit it in place.
        experiment: the resolved experiment (dict).
    """


@hookspec
def marketsim_step_start(model):
    """Act at the start of a step, before sectors observe and plan (e.g. a shock)."""


@hookspec
def marketsim_value_firms(model, step):
    """Value firms and offer equity for this step (the capital market), after step_start.

    Fill in ``model.equity`` (`marketsim.equity.EquityMarket`): each firm row's
    ``valuation_ratio`` (market valuation / fundamental value), ``valuation`` and
    ``fundamental`` (USD), this step's equity ``offer`` (USD per firm row; finance draws on
    it to cover cash shortfalls), ``cost_of_capital_per_year``, ``trend_follower_share``, and
    set ``active = True``. The built-in investor sector implements this hook; a plugin may
    adjust what it published (``trylast``), wrap it, or, with the investor switched off,
    be the capital market itself. What is published is checked after each implementation.
    """


@hookspec(firstresult=True)
def marketsim_buy_new_shares(model, amounts):
    """Pay firms for new shares worth ``amounts`` (USD per firm row, a numpy array).

    Move the cash to the firms through the ledger and return True. The first implementation
    that returns True settles it; without one, no shares are sold (nothing was offered).
    """


@hookspec(firstresult=True)
def marketsim_receive_dividends(model, amounts):
    """Collect the dividends ``amounts`` (USD per firm row) that firms pay this step.

    Move the cash from the firms through the ledger and return True. The first
    implementation that returns True settles it; without one, dividends go to the outside
    account ``savers``.
    """


@hookspec
def marketsim_register_outside_accounts(register):
    """Register outside accounts: sources and sinks of cash and goods that are not firms.

    Call ``register(name, doc)`` once per account (``"lenders"``, ``"savers"``,
    ``"foundry"``, ``"fuel"``, ``"taxes"``, ...). A plugin that pays or is paid by someone
    outside the simulated economy (a carbon fund, a foreign buyer) registers its account
    here and posts to ``model.ledger.account(name)``. Registering a name twice with the
    same doc is allowed (plugins may share an account).
    """


@hookspec
def marketsim_before_clear(model, market):
    """Act on one market after orders are written and before it clears.

    Policies live here: adjust ``market.book`` prices, capacities, demands or close edges
    (``market.book.edge_open``; every edge is open again at the start of each step).
    Quantities are in the good's unit.
    """


@hookspec
def marketsim_after_clear(model, market, outcome):
    """Observe one market's `ClearingOutcome` before it settles.

    The outcome is what settles: change it only consistently (buyers' and sellers' values
    must still match); a tax or subsidy is a ledger posting (``model.ledger.transfer``)
    between the traders and an outside account such as ``taxes``.
    """


@hookspec
def marketsim_step_end(model):
    """Act at the end of a step, after accounts are closed and before metrics are recorded.

    The books are checked after this hook. Ledger postings made here count in the step's
    income statement (it is read again), but tax, dividends and funding have already been
    settled for the step.
    """


@hookspec
def marketsim_run_finished(model, results):
    """Observe a finished replication: the model and its `marketsim.Results` tables."""
