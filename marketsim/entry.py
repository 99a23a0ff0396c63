"""Entry and exit of firms: entrants come when returns beat the cost of capital, losers leave.

Potential entrants. A firm sector's ``potential_entrants`` adds that many firm rows after
its ``count`` incumbents. They start dormant: not operating (``alive`` False), not
defaulted, with no capacity, cash or goods (the sector's ``on_default`` empties whatever
its ``setup`` gave them, and their opening balances are taken back). Each trades over the
supply-graph links of an incumbent (its template, incumbent ``k mod count``, whose region
it takes), so it can sell and buy as soon as it operates.

Entry, per sector and month, from last month's books of its operating firms:
    ROIC = 12 x NOPAT / invested capital,  NOPAT = operating income x (1 - tax) when > 0
    months_above = months_above + 1  if NOPAT > 0 and ROIC > cost of capital, else 0
with operating income = revenue - cost of goods (depreciation included) - opex, invested
capital = net book value of productive assets, and the cost of capital the capital market's
``discount_rate_per_year`` (the rate its fundamentalists discount cash flows at). When
``months_above`` reaches ``entry_patience_months``, the sector's next dormant firm commits
and ``months_above`` restarts from 0 (one commitment per spell of high returns). It raises
equity from the capital market at once:
    equity = entry_scale x mean over operating firms of
             (book value + cash_buffer_months x last month's cash costs)      (USD)
The raise is paid by the funds through the ledger (``model.issue_equity``), out of the
equity the market offers this month (the other firms' offers shrink by what it takes). No
capital market, or an offer smaller than the raise, and the firm does not commit (it may
next month). After ``entry_lead_months`` the firm starts operating: its sector's
``on_entry`` buys its starting capacity (``entry_scale`` x the operating firms' mean) from
its cash. The sectors table counts entries (``entries``, cumulative).

Exit, per firm and month, at the end of the month:
    income_smoothed = w x operating income + (1 - w) x income_smoothed,  w = 0.2
    months_losing   = months_losing + 1  if income_smoothed < 0, else 0
A firm whose ``months_losing`` reaches its sector's ``exit_patience_months`` (0: never)
and whose cash covers its debt winds down: it repays its debt, pays its remaining cash to its
shareholders (``model.pay_dividends``), and scraps its capacity (the sector's
``on_default``, goods to the ``scrap`` account). It is an exit, not a default: ``defaults``
does not count it, ``exits`` does. A loss-maker whose cash does not cover its debt carries
on until it recovers or defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from marketsim.finance import affordable_share
from marketsim.graph import node_name
from marketsim.guard import check_sector
from marketsim.markets.edges import close_edges_of
from marketsim.metrics import MetricSpec

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

DORMANT_ZEROED = ("demand_smoothed", "market_share")
"""Per-member arrays zeroed for dormant rows besides what ``on_default`` empties: a
dormant firm has no demand to plan for and no market share (it copied its template's)."""

EXIT_SMOOTHING = 0.2
"""Weight of the latest month in the smoothed operating income an exit looks at."""


def potential_entrants(params: dict) -> int:
    """A firm sector's number of potential entrants (0 for tables without the parameter)."""
    return int(params.get("potential_entrants", 0))


def entrant_templates(incumbents: int, entrants: int) -> np.ndarray:
    """Index of the incumbent whose supply-graph links each entrant copies (k mod count)."""
    if incumbents == 0:
        return np.zeros(0, dtype=np.int64) if entrants == 0 else np.full(entrants, -1)
    return (incumbents + np.arange(entrants)) % incumbents


def entrant_regions(incumbents: int, entrants: int, n_regions: int) -> np.ndarray:
    """Region index of every member: incumbents round-robin, entrants their template's."""
    region = np.arange(incumbents + entrants) % n_regions
    templates = entrant_templates(incumbents, entrants)
    has_template = templates >= 0
    region[incumbents:][has_template] = templates[has_template] % n_regions
    return region


def add_entrants_to_graph(
    graph: nx.DiGraph, sector: str, incumbents: int, entrants: int, regions: list[str]
) -> None:
    """Add the entrants of ``sector`` as nodes linked like their templates (in place)."""
    for j, template in enumerate(entrant_templates(incumbents, entrants)):
        k = incumbents + j
        name = node_name(sector, k)
        region = regions[int(template) % len(regions)] if template >= 0 else regions[0]
        if template >= 0 and node_name(sector, int(template)) in graph:
            source = node_name(sector, int(template))
            region = graph.nodes[source].get("region", region)
            graph.add_node(name, firm=name, sector=sector, region=region, index=k)
            for seller, _, data in list(graph.in_edges(source, data=True)):
                graph.add_edge(seller, name, **data)
            for _, buyer, data in list(graph.out_edges(source, data=True)):
                graph.add_edge(name, buyer, **data)
        else:
            graph.add_node(name, firm=name, sector=sector, region=region, index=k)


def operating_mean(sector, entering: np.ndarray, values: np.ndarray, default: float) -> float:
    """Mean of ``values`` over the sector's operating firms that are not entering now."""
    operating = sector.alive & ~entering
    return float(values[operating].mean()) if operating.any() else default


def starting_capacity(
    sector, entering: np.ndarray, capacity: np.ndarray, unit_cost: float
) -> np.ndarray:
    """What each entering firm can build: ``entry_scale`` x the operating firms' mean
    ``capacity`` (any unit), cut to what its cash buys at ``unit_cost`` (USD per unit).

    Returns the capacity per member, zero for firms not entering.
    """
    wanted = np.where(
        entering,
        sector.params["entry_scale"] * operating_mean(sector, entering, capacity, 0.0),
        0.0,
    )
    return wanted * affordable_share(np.maximum(sector.cash, 0.0), wanted * unit_cost)


class EntryAndExit:
    """Dormant rows, entry commitments and exits of every firm (state in arrays).

    Args:
        model: the model, with its firm table and sectors built; the dormant rows are
            emptied here (call after the sectors' ``setup``, before opening cash).
        incumbents: firm sector name -> its number of incumbents (``count``).

    Attributes:
        dormant: rows that have not entered and not committed to enter.
        committed: rows that raised equity and start operating at ``start_step``.
        start_step: step at which each row starts (or started) operating; 0 for
            incumbents, -1 for dormant rows.
        exited_step: step at which each row exited on losses, -1 if it has not.
        income_smoothed: smoothed monthly operating income (USD), what an exit looks at.
        months_losing: consecutive months of negative smoothed operating income.
        months_above: per firm sector, consecutive months its ROIC beat the cost of capital.
        entries, exits: per firm sector, firms that entered / exited so far.
    """

    def __init__(self, model: SupplyChainModel, incumbents: dict[str, int]):
        self.model = model
        firms = model.firms
        n, sectors = firms.n, model.firm_sectors
        self.dormant = np.zeros(n, dtype=bool)
        for sector in sectors:
            self.dormant[sector.rows.start + incumbents[sector.name] : sector.rows.stop] = True
        self.committed = np.zeros(n, dtype=bool)
        self.start_step = np.where(self.dormant, -1, 0).astype(np.int64)
        self.exited_step = np.full(n, -1, dtype=np.int64)
        self.income_smoothed = np.zeros(n)
        self.months_losing = np.zeros(n, dtype=np.int64)
        self.months_above = np.zeros(len(sectors), dtype=np.int64)
        self.entries = np.zeros(len(sectors))
        self.exits = np.zeros(len(sectors))

        def per_sector(key: str, default) -> np.ndarray:
            return np.array([s.params.get(key, default) for s in sectors])

        self.patience = per_sector("entry_patience_months", 1)
        self.lead = per_sector("entry_lead_months", 1)
        self.scale = per_sector("entry_scale", 0.0)
        self.exit_patience = per_sector("exit_patience_months", 0)[firms.sector_code]
        self.buffer_months = model.experiment["finance"]["cash_buffer_months"]
        self._empty_dormant_rows()

    # -- dormant rows -------------------------------------------------------------------------

    def _empty_dormant_rows(self) -> None:
        """Take back what ``setup`` gave the dormant rows: goods, capacity, operation."""
        model = self.model
        if not self.dormant.any():
            return
        model.firms.alive[self.dormant] = False
        ledger = model.ledger
        rows = np.flatnonzero(self.dormant)
        for asset in range(1, ledger.balances.shape[0]):  # goods (cash is opened later)
            held = ledger.balances[asset, rows].copy()
            if held.any():
                ledger.open_balance(asset, rows, -held)
        for sector in model.firm_sectors:
            mask = self.dormant[sector.rows]
            if mask.any():
                model._act(sector, "on_default", mask)
                for name in DORMANT_ZEROED:
                    value = getattr(sector, name, None)
                    if isinstance(value, np.ndarray) and value.shape[:1] == mask.shape:
                        value[mask] = 0
                check_sector(model, sector, "on_default")

    def dormant_cash(self, sector, cash: np.ndarray) -> np.ndarray:
        """``cash`` (USD per member of ``sector``) with zero for its dormant rows."""
        return np.where(self.dormant[sector.rows], 0.0, cash)

    def _waiting(self, accounts: np.ndarray) -> np.ndarray:
        """Which of ``accounts`` (ledger accounts) are firms waiting to enter."""
        firm = accounts < self.model.firms.n
        waiting = np.zeros(len(accounts), dtype=bool)
        waiting[firm] = self.dormant[accounts[firm]] | self.committed[accounts[firm]]
        return waiting

    def shut_out_waiting(self, market) -> None:
        """Keep firms that do not operate yet out of ``market`` this step.

        Their supply-graph edges are closed (so they draw no notional demand and place no
        orders), and their posted quote is set to the operating sellers' mean, so the mean
        posted price buyers plan with is the operating sellers'. Called after the sellers'
        offers, before the buyers' bids.
        """
        if not (self.dormant.any() or self.committed.any()):
            return
        book = market.book
        seller_waiting = self._waiting(market.sellers.accounts)
        buyer_waiting = self._waiting(market.buyers.accounts)
        if seller_waiting.any() and not seller_waiting.all():
            book.seller_price[seller_waiting] = book.seller_price[~seller_waiting].mean()
        close_edges_of(
            book.edge_open, book.edge_buyer, book.edge_seller, buyer_waiting, seller_waiting
        )

    # -- entry ---------------------------------------------------------------------------------

    def enter(self, step: int) -> None:
        """Start the firms whose lead time ends now; commit new entrants (see module doc).

        Called after the capital market's offer for this step and before the sectors
        observe: firm flows are still last step's.
        """
        self._start(step)
        self._commit(step)

    def _start(self, step: int) -> None:
        starting = self.committed & (self.start_step <= step)
        if not starting.any():
            return
        model = self.model
        self.committed[starting] = False
        model.firms.alive[starting] = True
        self.income_smoothed[starting] = 0.0
        self.months_losing[starting] = 0
        code = model.firms.sector_code
        self.entries += np.bincount(code[starting], minlength=len(self.entries))
        for sector in model.firm_sectors:
            mask = starting[sector.rows]
            if mask.any():
                model._act(sector, "on_entry", mask)

    def sector_returns_beat_cost_of_capital(self) -> np.ndarray:
        """Per firm sector: last step's ROIC of its operating firms > the cost of capital.

        ROIC = 12 x NOPAT / invested capital, compared without dividing (``12 x NOPAT >
        rate x capital`` and NOPAT > 0), so a sector with no book capital but profits counts
        as beating it. False everywhere without a capital market.
        """
        model = self.model
        n_sectors = len(model.firm_sectors)
        if not model.equity.active:
            return np.zeros(n_sectors, dtype=bool)
        firms = model.firms
        operating = firms.alive
        income = firms.revenue - firms.cost_of_goods - firms.opex
        tax_rate = model.experiment["finance"]["tax_rate"]
        nopat = np.where(operating, income - tax_rate * np.maximum(income, 0.0), 0.0)
        capital = np.where(operating, firms.book_value, 0.0)
        code = firms.sector_code
        nopat_sum = np.bincount(code, weights=nopat, minlength=n_sectors)
        capital_sum = np.bincount(code, weights=capital, minlength=n_sectors)
        rate = model.equity.cost_of_capital_per_year
        return (nopat_sum > 0.0) & (12.0 * nopat_sum > rate * capital_sum)

    def entry_equity(self) -> np.ndarray:
        """Per firm sector: equity an entrant raises (USD), see the module doc."""
        model = self.model
        firms = model.firms
        code = firms.sector_code
        n_sectors = len(model.firm_sectors)
        operating = firms.alive.astype(float)
        need = firms.book_value + self.buffer_months * firms.last_monthly_costs
        total = np.bincount(code, weights=np.where(firms.alive, need, 0.0), minlength=n_sectors)
        count = np.bincount(code, weights=operating, minlength=n_sectors)
        mean = np.divide(total, count, out=np.zeros(n_sectors), where=count > 0)
        return self.scale * np.maximum(mean, 0.0)

    def _commit(self, step: int) -> None:
        model = self.model
        above = self.sector_returns_beat_cost_of_capital()
        self.months_above = np.where(above, self.months_above + 1, 0)
        if not model.equity.active or not self.dormant.any():
            return
        code = model.firms.sector_code
        ready = self.months_above >= self.patience
        candidates = np.flatnonzero(self.dormant & ready[code])
        if len(candidates) == 0:
            return
        sectors, first = np.unique(code[candidates], return_index=True)
        rows = candidates[first]  # the next dormant row of each ready sector
        need = self.entry_equity()[sectors]
        offered = float(model.equity.offer.sum())
        funded = (need > 0.0) & (np.cumsum(need) <= offered)
        if not funded.any():
            return
        rows, sectors, need = rows[funded], sectors[funded], need[funded]
        amounts = np.zeros(model.firms.n)
        amounts[rows] = need
        model.equity.offer *= max(0.0, 1.0 - float(need.sum()) / offered)
        model.issue_equity(amounts)
        self.dormant[rows] = False
        self.committed[rows] = True
        self.start_step[rows] = step + self.lead[sectors]
        self.months_above[sectors] = 0

    # -- exit ----------------------------------------------------------------------------------

    def exit(self, step: int) -> np.ndarray:
        """Wind down the firms with sustained losses (see module doc); return who exited.

        Called after the books close (firm flows are this step's).
        """
        model = self.model
        firms = model.firms
        ledger = model.ledger
        alive = firms.alive
        income = firms.revenue - firms.cost_of_goods - firms.opex
        self.income_smoothed = np.where(
            alive,
            EXIT_SMOOTHING * income + (1.0 - EXIT_SMOOTHING) * self.income_smoothed,
            0.0,
        )
        losing = alive & (self.income_smoothed < 0.0)
        self.months_losing = np.where(losing, self.months_losing + 1, 0)
        exiting = (
            losing
            & (self.exit_patience > 0)
            & (self.months_losing >= self.exit_patience)
            & (firms.cash >= firms.debt)
        )
        if not exiting.any():
            return exiting
        accounts = np.arange(firms.n)
        repaid = np.where(exiting, firms.debt, 0.0)
        ledger.transfer(
            ledger.asset("cash"),
            accounts,
            ledger.account("lenders"),
            repaid,
            ledger.flows.DEBT_REPAY,
        )
        firms.debt[exiting] = 0.0
        model.pay_dividends(np.where(exiting, np.maximum(firms.cash, 0.0), 0.0))
        firms.alive[exiting] = False
        self.exited_step[exiting] = step
        self.exits += np.bincount(firms.sector_code[exiting], minlength=len(self.exits))
        for sector in model.firm_sectors:
            mask = exiting[sector.rows]
            if mask.any():
                model._act(sector, "on_default", mask)
        firms.book_value[exiting] = 0.0
        firms.ebitda_smoothed[exiting] = 0.0
        return exiting


ENTRY_METRICS = [
    MetricSpec(
        "sectors",
        "entries",
        lambda m: m.entry.entries.copy(),
        "firms",
        "firms that have entered so far (potential entrants that started operating; "
        "cumulative; 0 without potential_entrants)",
    ),
    MetricSpec(
        "sectors",
        "exits",
        lambda m: m.entry.exits.copy(),
        "firms",
        "firms that have exited on sustained losses so far (cumulative; not defaults)",
    ),
    MetricSpec(
        "sectors",
        "entrants_committed",
        lambda m: np.bincount(
            m.firms.sector_code,
            weights=m.entry.committed.astype(float),
            minlength=len(m.firm_sectors),
        ).astype(float),
        "firms",
        "entrants that have raised equity and are within their lead time (not yet operating)",
    ),
]
"""Result columns of entry and exit (registered by the built-in plugin)."""
