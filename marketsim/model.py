"""The Mesa model: sectors over arrays, markets over the supply graph, one ledger.

`SupplyChainModel` builds, from a resolved experiment and the plugins' registry, the
sectors (one Python object per sector, all firm state in numpy arrays), the supply graph,
one `Market` per good, the ledger and the firm table, and one thin Mesa agent per firm and
segment so `model.agents`, `select` and `groupby` work as Mesa users expect.

Mesa agents are made when first asked for (`agents`, `agents_by_type`, `agent_types`), not
at build: a step never touches them, and a million of them cost seconds and hundreds of MB
(benchmarks/README.md: scale). An agent's ``state`` reads its row of its sector's
``firm_state``, computed once per sector per step (`sector_state`).

A step (DESIGN.md):
    step_start hook
    value       the capital market values firms on last step's books, offers equity
    observe     every sector reads last step's outcomes; deliveries arrive
    per market, upstream first (a good is cleared before the goods made from it):
      plan      sellers post price and capacity, buyers write demand
      policy    before_clear hook
      clear     the mechanism's kernel
                after_clear hook
      settle    production, goods and cash through the ledger, delivery
    account     sectors: operating costs, depreciation, prices and plans for next step;
                interest, tax, dividends, funding, defaults
    step_end hook
    check       the ledger balances or the run stops
    record      metric columns appended

The step guard (`marketsim.guard`) checks what each phase wrote as soon as it returns: a
sector's state after each of its phases, the book after a plugin's before_clear, the
outcome after the mechanism and after a plugin's after_clear, the firm table after the
books close and after a plugin's step_start or step_end, metric values when recorded. A NaN,
inf or negative quantity or price stops the run with one line naming the plugin (or
built-in), the phase and the field (`marketsim.guard.StepGuardError`).

`run_model()` (Mesa's loop) runs the experiment's steps: ``running`` turns False after the
last one.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING
from typing import Any

import mesa
import numpy as np

from marketsim.agents import FirmAgent
from marketsim.agents import SegmentAgent
from marketsim.entry import EntryAndExit
from marketsim.entry import add_entrants_to_graph
from marketsim.entry import entrant_templates
from marketsim.entry import potential_entrants
from marketsim.equity import EquityMarket
from marketsim.finance import close_books
from marketsim.firms import FirmTable
from marketsim.graph import market_csr
from marketsim.guard import StepGuardError
from marketsim.guard import check_after_clear
from marketsim.guard import check_firms
from marketsim.guard import check_sector
from marketsim.guard import check_sector_writes
from marketsim.guard import check_sectors
from marketsim.guard import checked_member_values
from marketsim.guard import checked_outcome
from marketsim.guard import writer
from marketsim.ledger import EQUITY_MARKET
from marketsim.ledger import OUTSIDE_WORLD
from marketsim.ledger import Ledger
from marketsim.markets.market import Market
from marketsim.markets.market import MarketParticipants
from marketsim.metrics import Recorder
from marketsim.plugins import BUILTIN_NAME
from marketsim.plugins import call_hook
from marketsim.plugins import guarded
from marketsim.recipes import goods_bought
from marketsim.recipes import metrics_for

if TYPE_CHECKING:
    from marketsim.experiment import Experiment


class SupplyChainModel(mesa.Model):
    """An AI supply chain: sectors trading over a supply graph through markets.

    Args:
        experiment: the validated experiment (`marketsim.load_experiment`).
        rng: the replication's seed (a SeedSequence or an int). ``model.rng`` is seeded from
            it for Mesa users; every sector draws from its own stream (`stream`), so adding
            a sector never changes the draws of another.
        replication: index of the replication, recorded in the results.
    """

    def __init__(self, experiment: Experiment, rng, replication: int = 0):
        seed_sequence = (
            rng if isinstance(rng, np.random.SeedSequence) else (np.random.SeedSequence(rng))
        )
        self._seed_sequence = seed_sequence
        super().__init__(rng=np.random.default_rng(seed_sequence))
        self.experiment = experiment.config
        self.components = components = experiment.components
        self.manager = experiment.manager
        self.source = experiment.source
        self.replication = replication
        self.step_index = 0
        self.guard_layouts: dict[int, Any] = {}
        """The step guard's cache of which sector attributes it checks (`marketsim.guard`)."""
        self.steps_to_run = int(self.experiment["experiment"]["steps"])
        """Steps of the experiment: `run_model` stops after them (``running`` turns False)."""
        self._plugin_hooks = {
            name: any(
                impl.plugin_name != BUILTIN_NAME
                for impl in getattr(self.manager.hook, name).get_hookimpls()
            )
            for name in (
                "marketsim_step_start",
                "marketsim_value_firms",
                "marketsim_before_clear",
                "marketsim_after_clear",
                "marketsim_step_end",
            )
        }
        """Hook name -> whether plugins implement it (the guard then checks what each wrote)."""

        present = experiment.sector_names()
        incumbents = {name: self.experiment["agents"][name]["count"] for name in present}
        classes = {name: components.sectors[name] for name in present}
        entrants = {
            name: potential_entrants(self.experiment["agents"][name]) if cls.has_accounts else 0
            for name, cls in classes.items()
        }
        # rows per sector: its incumbents, then its potential entrants (marketsim.entry)
        members = {name: incumbents[name] + entrants[name] for name in present}
        supply = experiment.supply_edges()
        experiment = self.experiment
        regions = experiment["graph"]["regions"]
        self._graph = supply.networkx  # built when asked (`graph`) unless a plugin edited it
        if self._graph is not None:
            for name in present:
                if entrants[name]:
                    add_entrants_to_graph(
                        self._graph, name, incumbents[name], entrants[name], regions
                    )
            supply = supply.with_entrants(entrants).with_edges_from(self._graph)
        else:
            supply = supply.with_entrants(entrants)
        self.supply = supply
        """The supply graph as arrays, entrants included (`marketsim.graph.SupplyGraph`)."""

        goods = self._goods_in_order(classes)
        firm_names = [n for n in present if classes[n].has_accounts]
        n_firms = sum(members[n] for n in firm_names)
        account_names = [f"{n}:{k}" for n in firm_names for k in range(members[n])]
        market_accounts = list(range(n_firms, n_firms + len(goods) + 1))
        account_names += [f"market:{g}" for g in goods] + [EQUITY_MARKET]
        # the registered outside accounts, outside_world last (the others close into it)
        outside = [a for a in components.outside_accounts if a != OUTSIDE_WORLD]
        outside.append(OUTSIDE_WORLD)
        account_names += outside
        self.ledger = Ledger(account_names, ["cash", *goods], market_accounts, outside)

        self.sectors: dict[str, Any] = {}
        sector_code, region_code, start = [], [], 0
        for code, name in enumerate(firm_names + [n for n in present if n not in firm_names]):
            count = members[name]
            region = supply.member_regions(name)
            if classes[name].has_accounts:
                rows = slice(start, start + count)
                start += count
                sector_code += [code] * count
                region_code += list(region)
            else:
                rows = slice(0, 0)
            self.sectors[name] = classes[name](
                self, experiment["agents"][name], rows, count, region
            )
        self.firm_sectors = [self.sectors[n] for n in firm_names]
        self.firms = FirmTable(n_firms, sector_code, region_code, self.ledger)
        self.max_debt_to_ebitda = np.zeros(n_firms)
        """Each firm's borrowing ceiling in years of EBITDA (its sector's credit terms)."""
        for sector in self.firm_sectors:
            self.max_debt_to_ebitda[sector.rows] = sector.params.get("max_debt_to_ebitda", 0.0)
        self.equity = EquityMarket.empty(n_firms)
        """The equity market's data this step (`marketsim.equity`): valuation ratios and the
        equity offer, published by the capital market in ``marketsim_value_firms``."""

        self.markets: dict[str, Market] = {}
        for index, good in enumerate(goods):
            self.markets[good] = self._build_market(good, market_accounts[index])
        self._clear_labels = {good: self._clear_label(m) for good, m in self.markets.items()}
        """Good -> (plugin of its mechanism, what it does, who for the step guard's message)."""

        self._create_agents(members)
        for sector in self.sectors.values():
            self._setup(sector, incumbents[sector.name])
        self.entry = EntryAndExit(self, incumbents)
        """Potential entrants (dormant rows), entry commitments and exits (`marketsim.entry`)."""
        for sector in self.firm_sectors:
            self.ledger.open_balance(
                self.ledger.asset("cash"),
                sector.accounts,
                self.entry.dormant_cash(sector, self._starting_cash(sector)),
            )
        self.recorder = Recorder(self, metrics_for(self, components.metrics))

    # -- building --------------------------------------------------------------------------

    def stream(self, name: str) -> np.random.Generator:
        """A random stream of its own for ``name``, derived from the replication's seed.

        The same name gives the same stream in every run with the same seed, whatever other
        sectors or plugins exist.
        """
        key = zlib.crc32(name.encode("utf-8"))
        entropy = self._seed_sequence.entropy
        spawn_key = (*self._seed_sequence.spawn_key, key)
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=spawn_key))

    def _starting_cash(self, sector) -> np.ndarray:
        """Each firm's starting cash: the sector's level times a mean-one lognormal draw."""
        params = sector.params
        if "initial_cash_usd" not in params:
            return np.zeros(sector.count)
        sigma = params.get("cash_dispersion", 0.0)
        draw = np.exp(
            sigma * self.stream(f"{sector.name}:cash").standard_normal(sector.count)
            - 0.5 * sigma**2
        )
        return params["initial_cash_usd"] * draw

    def _setup(self, sector, incumbents: int) -> None:
        """Run a sector's ``setup`` for its incumbents; give its entrant rows their templates'.

        ``setup`` sees only the incumbents (``count``, ``rows`` and ``region`` cut to them),
        so a sector with potential entrants starts exactly as it would without them (same
        random draws, same shares). Its per-member arrays (those a throwaway setup over all
        rows makes one row per member; its ledger postings are undone) are then extended to
        the entrant rows with a copy of each entrant's template row (`marketsim.entry`),
        which `EntryAndExit` empties of capacity.
        """
        total = sector.count
        if incumbents == total:
            self._act(sector, "setup")
            return
        rows, region = sector.rows, sector.region
        per_member = self._per_member_arrays(sector)
        sector.count = incumbents
        sector.rows = slice(rows.start, rows.start + incumbents)
        sector.region = region[:incumbents]
        try:
            self._act(sector, "setup")
        finally:
            sector.count, sector.rows, sector.region = total, rows, region
        template = np.concatenate(
            [np.arange(incumbents), entrant_templates(incumbents, total - incumbents)]
        )
        for name in per_member:
            value = getattr(sector, name, None)
            if isinstance(value, np.ndarray) and value.ndim and len(value) == incumbents:
                if incumbents:
                    setattr(sector, name, np.take(value, template, axis=0))
                else:
                    setattr(sector, name, np.zeros((total, *value.shape[1:]), value.dtype))

    def _per_member_arrays(self, sector) -> set[str]:
        """Names of the arrays ``setup`` makes with one row per member of ``sector``.

        Found by a throwaway copy of the sector set up over all its rows; what its setup
        posted to the ledger is undone, and the sector's random stream is untouched.
        """
        probe = type(sector)(self, sector.params, sector.rows, sector.count, sector.region)
        ledger = self.ledger
        saved = {k: v.copy() for k, v in vars(ledger).items() if isinstance(v, np.ndarray)}
        try:
            self._query(probe, "setup")
        finally:
            for k, v in saved.items():
                getattr(ledger, k)[...] = v
        return {
            name
            for name, value in vars(probe).items()
            if isinstance(value, np.ndarray) and value.ndim and len(value) == sector.count
        }

    def _goods_in_order(self, classes) -> list[str]:
        """Goods sold in the experiment, upstream first (inputs before outputs)."""
        sold = [c.sells for c in classes.values() if c.sells]
        order: list[str] = []
        visiting: set[str] = set()

        def visit(good: str) -> None:
            if good in order or good in visiting:
                return
            visiting.add(good)
            for name, cls in classes.items():
                if cls.sells == good:
                    for upstream in goods_bought(cls, self.experiment["agents"][name]):
                        if upstream in sold:
                            visit(upstream)
            order.append(good)

        for good in [g for g in self.components.goods if g in sold]:
            visit(good)
        return order

    def _build_market(self, good: str, account: int) -> Market:
        spec = self.components.goods[good]
        table = self.experiment["markets"][good]
        mechanism = self.components.mechanisms[table["mechanism"]]
        params = {k: v for k, v in table.items() if k != "mechanism"}
        params["parallel_kernels"] = self.experiment["engine"]["parallel_kernels"]
        sellers = self._participants(lambda s: s.sells == good)
        buyers = self._participants(lambda s: good in s.buys)  # with added inputs
        indptr, edge_seller = market_csr(
            self.supply,
            good,
            [(s.name, start, count) for s, start, count in sellers.sectors],
            [(s.name, start, count) for s, start, count in buyers.sectors],
        )
        flows = self.ledger.flows
        buyer_flows = np.concatenate(
            [
                np.full(count, getattr(flows, s.purchase_flows.get(good, "cost_of_goods").upper()))
                for s, _, count in buyers.sectors
            ]
            or [np.zeros(0, dtype=np.int64)]
        ).astype(np.int64)
        market = Market(
            spec, mechanism, params, sellers, buyers, indptr, edge_seller, account, buyer_flows
        )
        return market

    @property
    def graph(self):
        """The supply graph as a `networkx.DiGraph`, entrants included: built on first use
        from `supply` (or the graph a ``marketsim_modify_graph`` plugin edited). Markets read
        `supply`; editing this graph during a run changes no market."""
        if self._graph is None:
            self._graph = self.supply.to_networkx()
        return self._graph

    def _clear_label(self, market: Market) -> tuple[str, str, str]:
        origin = self.components.origin("mechanism", market.mechanism.name)
        what = f"mechanism {market.mechanism.name!r} (clear)"
        who = f"{writer(origin)} mechanism {market.mechanism.name!r} (clear in market "
        return origin, what, f"{who}{market.name!r})"

    def _participants(self, condition) -> MarketParticipants:
        blocks, accounts, start = [], [], 0
        for sector in self.sectors.values():
            if condition(sector):
                blocks.append((sector, start, sector.count))
                accounts.append(sector.accounts)
                start += sector.count
        stacked = np.concatenate(accounts) if accounts else np.zeros(0, dtype=np.int64)
        return MarketParticipants(blocks, stacked.astype(np.int64))

    def _create_agents(self, members) -> None:
        """Note that agents are due; `_materialise_agents` makes them when first asked for."""
        self._agents_due = True
        self._state_cache: dict[str, tuple[int, dict[str, np.ndarray]]] = {}

    @property
    def agents(self) -> mesa.agent.AgentSet:
        """Every firm and segment as a Mesa agent (made on first use; see module doc)."""
        self._materialise_agents()
        return super().agents

    @agents.setter
    def agents(self, agents) -> None:
        mesa.Model.agents.fset(self, agents)

    @property
    def agents_by_type(self) -> dict[type, mesa.agent.AgentSet]:
        """Mesa's agents by class (made on first use)."""
        self._materialise_agents()
        return super().agents_by_type

    @property
    def agent_types(self) -> list[type]:
        """Mesa's agent classes (made on first use)."""
        self._materialise_agents()
        return super().agent_types

    def sector_state(self, name: str) -> dict[str, np.ndarray]:
        """``firm_state()`` of sector ``name``, computed once per step and shared by its
        agents (so reading every agent's ``state`` is O(members), not O(members^2))."""
        cached = self._state_cache.get(name)
        if cached is not None and cached[0] == self.step_index:
            return cached[1]
        state = self.sectors[name].firm_state()
        self._state_cache[name] = (self.step_index, state)
        return state

    def _materialise_agents(self) -> None:
        if not getattr(self, "_agents_due", False):
            return
        self._agents_due = False
        regions = self.experiment["graph"]["regions"]
        for sector in self.sectors.values():
            for k in range(sector.count):
                region = regions[int(sector.region[k])]
                if sector.has_accounts:
                    FirmAgent(self, sector, k, sector.rows.start + k, region)
                else:
                    SegmentAgent(self, sector, k, region)

    # -- running ---------------------------------------------------------------------------

    def _hook(self, hook_name: str, check=None, **kwargs) -> None:
        """Call a hook; after each plugin's implementation, ``check(who)`` what it wrote.

        Args:
            hook_name: the hook.
            check: called with ``"plugin '<name>' hook <hook_name>"`` after each plugin's
                implementation; by default every sector and the firm table are checked.
            **kwargs: the hook's arguments besides ``model``.
        """
        if not self._plugin_hooks[hook_name]:
            call_hook(self.manager, hook_name, model=self, **kwargs)
            return
        check = check or (lambda who: check_sectors(self, who))

        def after_each(plugin_name: str) -> None:
            if plugin_name != BUILTIN_NAME:
                check(f"{writer(plugin_name)} hook {hook_name}")

        call_hook(self.manager, hook_name, after_each=after_each, model=self, **kwargs)

    def step(self) -> None:
        """Advance the economy by one step (one month by default)."""
        t = self.step_index
        self._state_cache = {}
        self.ledger.begin_step(t)
        self.firms.begin_step()
        self._hook("marketsim_step_start")
        self._hook("marketsim_value_firms", self._check_equity, step=t)
        self._check_equity(BUILTIN_NAME)
        self.entry.enter(t)
        check_firms(self, "built-in entry (enter)")
        for sector in self.sectors.values():
            self._act(sector, "observe", t)
        for market in self.markets.values():
            self._trade(market)
        for sector in self.sectors.values():
            self._act(sector, "account", t)
        self.firms.book_value = self._book_values()
        close_books(self)
        check_firms(self, "built-in finance (close books)")
        defaulted_now = self.firms.defaulted_step == t
        if defaulted_now.any():  # close_books called these sectors' on_default
            for sector in self.firm_sectors:
                if defaulted_now[sector.rows].any():
                    check_sector(self, sector, "on_default")
        if self.entry.exit(t).any():
            check_firms(self, "built-in exit (exit)")
        self._hook("marketsim_step_end")
        self.firms.close_income_statement()  # include what step_end hooks posted
        self.ledger.check(self._physical_stocks())
        self.recorder.record(t)
        self._state_cache = {}
        self.step_index += 1
        if self.step_index >= self.steps_to_run:
            self.running = False

    def _trade(self, market: Market) -> None:
        market.book.edge_open[:] = True  # policies close edges afresh every step
        for sector, start, count in market.sellers.sectors:
            self._act(sector, "offer", market, slice(start, start + count))
        self.entry.shut_out_waiting(market)
        for sector, start, count in market.buyers.sectors:
            self._act(sector, "bid", market, slice(start, start + count))
        self._hook(
            "marketsim_before_clear",
            lambda who: check_sectors(self, who),
            market=market,
        )
        origin, what, who = self._clear_labels[market.name]
        outcome = checked_outcome(self, market, guarded(origin, what, market.clear), who)
        self._hook(
            "marketsim_after_clear",
            lambda who: check_after_clear(self, market, outcome, who),
            market=market,
            outcome=outcome,
        )
        for sector, start, count in market.sellers.sectors:
            self._act(sector, "on_sold", market, outcome, slice(start, start + count))
        market.settle(self.ledger)
        for sector, start, count in market.buyers.sectors:
            self._act(sector, "on_bought", market, outcome, slice(start, start + count))

    def _act(self, sector, phase: str, *args):
        """Call a sector's phase, then check what it wrote (`marketsim.guard`).

        A plugin's sector that raises is named (`guarded`). ``offer`` and ``bid`` take
        ``(market, block)``: the sector's block of the book is checked with its state.
        """
        origin = self.components.origin("sector", sector.name)
        result = guarded(origin, f"sector {sector.name!r} ({phase})", getattr(sector, phase), *args)
        if phase in ("offer", "bid"):
            check_sector(self, sector, phase, *args)
        else:
            check_sector(self, sector, phase)
        check_sector_writes(self, sector, phase, *args)
        return result

    def _query(self, sector, phase: str):
        """Call a sector's read-only phase (``book_value``, ``physical_stocks``)."""
        origin = self.components.origin("sector", sector.name)
        return guarded(origin, f"sector {sector.name!r} ({phase})", getattr(sector, phase))

    def _book_values(self) -> np.ndarray:
        values = np.zeros(self.firms.n)
        for sector in self.firm_sectors:
            returned = self._query(sector, "book_value")
            values[sector.rows] = checked_member_values(self, sector, "book_value", returned)
        return values

    def _physical_stocks(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        stocks: dict[int, tuple[list, list]] = {}
        for sector in self.firm_sectors:
            for good, stock in self._query(sector, "physical_stocks").items():
                if good in self.markets:
                    accounts, values = stocks.setdefault(self.ledger.asset(good), ([], []))
                    accounts.append(sector.accounts)
                    values.append(stock)
        return {a: (np.concatenate(acc), np.concatenate(val)) for a, (acc, val) in stocks.items()}

    def _check_equity(self, who: str) -> None:
        """Stop with a one-line error naming ``who`` if the equity data it published is
        malformed (`EquityMarket.check`)."""
        problem = self.equity.check(self.firms.n)
        if problem is not None:
            raise StepGuardError(f"{who}: model.equity: {problem} at step {self.step_index}")

    @property
    def valuation_ratio(self) -> np.ndarray:
        """Each firm's market valuation / fundamental value (ones without a capital market):
        ``model.equity.valuation_ratio``, a copy."""
        return np.array(self.equity.valuation_ratio, dtype=float)

    def pay_dividends(self, amounts: np.ndarray) -> None:
        """Pay ``amounts`` (USD per firm) to shareholders through ``marketsim_receive_dividends``;
        to the outside account ``savers`` when no capital market takes them."""
        if call_hook(self.manager, "marketsim_receive_dividends", model=self, amounts=amounts):
            return
        ledger = self.ledger
        ledger.transfer(
            ledger.asset("cash"),
            np.arange(self.firms.n),
            ledger.account("savers"),
            amounts,
            ledger.flows.DIVIDEND,
        )

    def issue_equity(self, amounts: np.ndarray) -> None:
        """Issue new shares worth ``amounts`` (USD per firm) through
        ``marketsim_buy_new_shares``.

        Raises:
            StepGuardError: shares were issued but no capital market paid for them (an offer
                was published without an implementation of ``marketsim_buy_new_shares``).
        """
        if not amounts.any():
            return
        if not call_hook(self.manager, "marketsim_buy_new_shares", model=self, amounts=amounts):
            raise StepGuardError(
                f"step {self.step_index}: firms issued ${float(amounts.sum()):.4g} of shares "
                "against model.equity.offer, but no plugin implements "
                "marketsim_buy_new_shares to pay for them"
            )
