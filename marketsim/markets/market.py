"""A market: one good, its sellers and buyers, the edges between them, and its order book.

The `Market` owns the numpy buffers sectors write orders into (`MarketBook`), asks its
clearing mechanism for a `ClearingOutcome`, and settles the outcome through the ledger:
goods move seller -> market -> buyer and cash buyer -> market -> seller, so the market's own
account is back at zero after every step.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from marketsim.markets.edges import same_mask
from marketsim.schema import TableSchema

if TYPE_CHECKING:
    from marketsim.ledger import Ledger


@dataclass(frozen=True)
class GoodSpec:
    """A traded good.

    Args:
        name: the good's name, also the key of ``[markets.<name>]``.
        unit: unit of quantity (``"accelerators"``, ``"MW"``, ``"million tokens"``).
        price_unit: unit of the posted price (``"USD per accelerator"``, ``"USD per MWh"``).
        default_mechanism: clearing mechanism used when the experiment names none.
        doc: what the good is, for researchers.
    """

    name: str
    unit: str
    price_unit: str
    default_mechanism: str = "posted_price"
    doc: str = ""


_BOOK_CACHES: dict[int, dict[str, Any]] = {}
"""``id(book)`` -> its derived arrays (`MarketBook._caches`)."""


@dataclass
class MarketBook:
    """The order book of one market for one step: plain numpy arrays.

    Buyers and sellers are numbered within the market (sector blocks concatenated in
    registration order). Edges are CSR over buyers: the edges of buyer ``b`` are
    ``buyer_indptr[b]:buyer_indptr[b + 1]``, each naming a seller in ``edge_seller``.

    Attributes:
        buyer_indptr: CSR row pointer over buyers (n_buyers + 1,).
        edge_seller: seller index of each edge (n_edges,).
        edge_open: whether trade over the edge is allowed this step (policies close edges).
        seller_price: posted price per unit, in the good's price unit (> 0).
        seller_capacity: quantity each seller offers this step, in the good's unit (>= 0).
        buyer_demand: quantity each buyer wants this step (>= 0).
        buyer_limit_price: the most a buyer pays per unit (used by auctions); ``inf`` (the
            default) marks a market order, which pays up to the highest ask in the book.
        buyer_forward_demand: what each buyer expects to need once its projects are
            built (for power: shell built plus under construction, the interconnection
            queue); sellers with long lead times plan capacity from it.
    """

    buyer_indptr: np.ndarray
    edge_seller: np.ndarray
    edge_open: np.ndarray
    seller_price: np.ndarray
    seller_capacity: np.ndarray
    buyer_demand: np.ndarray
    buyer_limit_price: np.ndarray
    buyer_forward_demand: np.ndarray

    @property
    def n_buyers(self) -> int:
        """Number of buyers in the market."""
        return len(self.buyer_demand)

    @property
    def n_sellers(self) -> int:
        """Number of sellers in the market."""
        return len(self.seller_price)

    def _caches(self) -> dict[str, Any]:
        """This book's derived arrays (kept outside ``vars(book)``, so
        ``MarketBook(**vars(book))`` still makes a book; dropped with the book)."""
        caches = _BOOK_CACHES.get(id(self))
        if caches is None:
            caches = _BOOK_CACHES[id(self)] = {}
            weakref.finalize(self, _BOOK_CACHES.pop, id(self), None)
        return caches

    @property
    def edge_buyer(self) -> np.ndarray:
        """Buyer index of each edge (n_edges,), made once per ``buyer_indptr``."""
        caches = self._caches()
        cached = caches.get("edge_buyer")
        if cached is None or cached[0] is not self.buyer_indptr:
            lengths = np.diff(self.buyer_indptr)
            buyers = np.repeat(np.arange(self.n_buyers, dtype=np.int64), lengths)
            caches["edge_buyer"] = cached = (self.buyer_indptr, buyers)
        return cached[1]

    def open_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The CSR (indptr, edge_seller) of the open edges only.

        Made again only when ``edge_open`` differs from the last call's (policies close edges
        afresh each step, usually the same ones); compared in O(edges) without allocating
        per-edge temporaries beyond the comparison.
        """
        if self.edge_open.all():
            return self.buyer_indptr, self.edge_seller
        caches = self._caches()
        cached = caches.get("open")
        if (
            cached is not None
            and cached[0] is self.buyer_indptr
            and cached[1] is self.edge_seller
            and same_mask(cached[2], self.edge_open)
        ):
            return cached[3], cached[4]
        kept_buyer = self.edge_buyer[self.edge_open]
        counts = np.bincount(kept_buyer, minlength=self.n_buyers)
        indptr = np.zeros(self.n_buyers + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        edge_seller = self.edge_seller[self.edge_open]
        caches["open"] = (
            self.buyer_indptr,
            self.edge_seller,
            self.edge_open.copy(),
            indptr,
            edge_seller,
        )
        return indptr, edge_seller


@dataclass
class ClearingOutcome:
    """What a mechanism returns: quantities and money per buyer and seller.

    Attributes:
        seller_sold: quantity each seller delivers, in the good's unit.
        seller_requested: notional demand at each seller at posted prices (price signal).
        seller_value: value of each seller's sales at the prices paid (price x quantity).
        buyer_filled: quantity each buyer receives.
        buyer_unfilled: demand each buyer could not get (it drives prices and investment).
        buyer_value: value of each buyer's purchases at the prices paid.
        price: the market's price index: volume-weighted mean price paid, or the posted mean
            when nothing trades, in the good's price unit.
    """

    seller_sold: np.ndarray
    seller_requested: np.ndarray
    seller_value: np.ndarray
    buyer_filled: np.ndarray
    buyer_unfilled: np.ndarray
    buyer_value: np.ndarray
    price: float


ClearFunction = Callable[[MarketBook, dict[str, Any]], ClearingOutcome]


@dataclass(frozen=True)
class MechanismSpec:
    """A clearing mechanism.

    Args:
        name: the value of ``[markets.<good>] mechanism``.
        clear: function (book, params) -> ClearingOutcome; must be deterministic.
        schema: the mechanism's parameters (validated in ``[markets.<good>]``).
        doc: the mechanism in one sentence.
    """

    name: str
    clear: ClearFunction
    schema: TableSchema = field(default_factory=TableSchema)
    doc: str = ""


@dataclass
class MarketParticipants:
    """Which sector rows sell and buy in a market, with their ledger accounts.

    Attributes:
        sectors: (sector, first index in the market, count) blocks, in order.
        accounts: ledger account of each participant (n,).
    """

    sectors: list[tuple[Any, int, int]]
    accounts: np.ndarray


class Market:
    """One good's market: participants, buffers, mechanism and settlement.

    Args:
        good: the good traded.
        mechanism: its clearing mechanism.
        params: the mechanism's validated parameters.
        sellers: the selling sector blocks and their accounts.
        buyers: the buying sector blocks and their accounts.
        buyer_indptr: CSR row pointer of the supply edges over buyers.
        edge_seller: seller index of each edge.
        account: the market's own ledger account (a clearing house; zero after settlement).
        buyer_flows: P&L flow code of each buyer's payment (cost of goods, capex, ...).
    """

    def __init__(
        self,
        good: GoodSpec,
        mechanism: MechanismSpec,
        params: dict[str, Any],
        sellers: MarketParticipants,
        buyers: MarketParticipants,
        buyer_indptr: np.ndarray,
        edge_seller: np.ndarray,
        account: int,
        buyer_flows: np.ndarray,
    ):
        self.good = good
        self.name = good.name
        self.mechanism = mechanism
        self.params = params
        self.sellers = sellers
        self.buyers = buyers
        self.account = account
        self.buyer_flows = buyer_flows
        n_sellers = len(sellers.accounts)
        n_buyers = len(buyers.accounts)
        self.book = MarketBook(
            buyer_indptr=buyer_indptr.astype(np.int64),
            edge_seller=edge_seller.astype(np.int64),
            edge_open=np.ones(len(edge_seller), dtype=bool),
            seller_price=np.ones(n_sellers),
            seller_capacity=np.zeros(n_sellers),
            buyer_demand=np.zeros(n_buyers),
            buyer_limit_price=np.full(n_buyers, np.inf),
            buyer_forward_demand=np.zeros(n_buyers),
        )
        self.billed_units_per_unit = 1.0
        """Units billed per unit of quantity (for power: hours x load factor per MW)."""
        self.outcome: ClearingOutcome | None = None

    @property
    def n_edges(self) -> int:
        """Number of supply edges (open or not)."""
        return len(self.book.edge_seller)

    def clear(self) -> ClearingOutcome:
        """Run the mechanism on the current book and keep the outcome."""
        outcome = self.mechanism.clear(self.book, self.params)
        self.outcome = outcome
        return outcome

    def settle(self, ledger: Ledger) -> None:
        """Move goods and cash for the current outcome through the ledger.

        Goods go seller -> market -> buyer; cash goes buyer -> market -> seller, each leg
        the value at the prices paid times ``billed_units_per_unit``.

        Args:
            ledger: the model's ledger.
        """
        outcome = self.outcome
        good = ledger.asset(self.name)
        cash = ledger.asset("cash")
        flows = ledger.flows
        ledger.transfer(good, self.sellers.accounts, self.account, outcome.seller_sold, flows.SALE)
        ledger.transfer(good, self.account, self.buyers.accounts, outcome.buyer_filled, flows.BUY)
        billed = self.billed_units_per_unit
        paid = outcome.buyer_value * billed
        ledger.transfer_flows(cash, self.buyers.accounts, self.account, paid, self.buyer_flows)
        received = outcome.seller_value * billed
        ledger.transfer(cash, self.account, self.sellers.accounts, received, flows.REVENUE)
        volume = float(paid.sum() + outcome.seller_sold.sum() + 1.0)
        ledger.sweep_rounding(self.account, volume)
