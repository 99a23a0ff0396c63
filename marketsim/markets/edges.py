"""Per-buyer sums over a market's edges, without per-edge temporaries.

`buyer_edge_sums` adds up a per-seller value over each buyer's edges (CSR over buyers), the
sum a sector needs to know, say, the mean price of the sellers it is linked to. It is a
numba kernel (``@njit(cache=True)``, pure) with a plain-Python twin, `buyer_edge_sums_reference`,
that the tests hold it to. On ten million edges it replaces ``np.repeat`` + ``np.bincount``
(two 80 MB temporaries) with one pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def buyer_edge_sums(indptr, edge_seller, seller_value):
    """Sum of ``seller_value`` over each buyer's edges, in edge order.

    Args:
        indptr: int64[n_buyers + 1], CSR row pointer over buyers.
        edge_seller: int64[n_edges], seller of each edge.
        seller_value: float64[n_sellers], the value to add up (e.g. a posted price).

    Returns:
        float64[n_buyers]: the sums (0.0 for a buyer without edges).
    """
    n_buyers = indptr.shape[0] - 1
    sums = np.zeros(n_buyers)
    for b in range(n_buyers):
        total = 0.0
        for e in range(indptr[b], indptr[b + 1]):
            total += seller_value[edge_seller[e]]
        sums[b] = total
    return sums


def buyer_edge_sums_reference(indptr, edge_seller, seller_value) -> np.ndarray:
    """Plain-Python twin of `buyer_edge_sums` (same order of additions, same result)."""
    n_buyers = len(indptr) - 1
    sums = np.zeros(n_buyers)
    for b in range(n_buyers):
        total = 0.0
        for e in range(int(indptr[b]), int(indptr[b + 1])):
            total += float(seller_value[int(edge_seller[e])])
        sums[b] = total
    return sums


def csr_by_buyer(buyer, seller, n_buyers: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges (buyer, seller) as CSR over buyers, each buyer's sellers ascending.

    The same arrays as ``order = np.lexsort((seller, buyer))`` with ``indptr`` from the
    buyers' edge counts, in O(edges + buyers) (a counting sort by buyer, then an insertion
    sort of each buyer's sellers, or ``np.sort`` when it has more than 16) instead of
    O(edges log edges).

    Args:
        buyer: int64[n_edges], buyer of each edge (0 <= buyer < n_buyers).
        seller: int64[n_edges], seller of each edge.
        n_buyers: number of buyers.

    Returns:
        ``(indptr, edge_seller)``: int64[n_buyers + 1] and int64[n_edges].
    """
    buyer = np.ascontiguousarray(buyer, dtype=np.int64)
    seller = np.ascontiguousarray(seller, dtype=np.int64)
    return _csr_by_buyer(buyer, seller, int(n_buyers))


@njit(cache=True)
def _csr_by_buyer(buyer, seller, n_buyers):
    indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    for e in range(buyer.shape[0]):
        indptr[buyer[e] + 1] += 1
    for b in range(n_buyers):
        indptr[b + 1] += indptr[b]
    fill = indptr[:-1].copy()
    edge_seller = np.empty(buyer.shape[0], dtype=np.int64)
    for e in range(buyer.shape[0]):
        edge_seller[fill[buyer[e]]] = seller[e]
        fill[buyer[e]] += 1
    for b in range(n_buyers):
        if indptr[b + 1] - indptr[b] > 16:  # many sellers (a graph file): O(k log k)
            edge_seller[indptr[b] : indptr[b + 1]] = np.sort(edge_seller[indptr[b] : indptr[b + 1]])
            continue
        for i in range(indptr[b] + 1, indptr[b + 1]):  # insertion sort of a handful
            value = edge_seller[i]
            j = i - 1
            while j >= indptr[b] and edge_seller[j] > value:
                edge_seller[j + 1] = edge_seller[j]
                j -= 1
            edge_seller[j + 1] = value
    return indptr, edge_seller


def csr_by_buyer_reference(buyer, seller, n_buyers: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy twin of `csr_by_buyer` (the lexsort it replaces)."""
    buyer = np.asarray(buyer, dtype=np.int64)
    seller = np.asarray(seller, dtype=np.int64)
    order = np.lexsort((seller, buyer))
    indptr = np.zeros(n_buyers + 1, dtype=np.int64)
    np.cumsum(np.bincount(buyer, minlength=n_buyers), out=indptr[1:])
    return indptr, seller[order]


@njit(cache=True)
def buyer_edge_values(indptr, edge_seller, edge_quantity, seller_price):
    """Value of each buyer's purchases: the sum over its edges of quantity x seller's price,
    in edge order (as ``np.bincount(edge_buyer, weights=edge_quantity * price[edge_seller])``
    adds them, so the sums are the same to the bit).

    Args:
        indptr: int64[n_buyers + 1], CSR row pointer over buyers.
        edge_seller: int64[n_edges], seller of each edge.
        edge_quantity: float64[n_edges], quantity over each edge (units).
        seller_price: float64[n_sellers], price per unit.

    Returns:
        float64[n_buyers]: the values (0.0 for a buyer without edges).
    """
    n_buyers = indptr.shape[0] - 1
    values = np.zeros(n_buyers)
    for b in range(n_buyers):
        total = 0.0
        for e in range(indptr[b], indptr[b + 1]):
            total += edge_quantity[e] * seller_price[edge_seller[e]]
        values[b] = total
    return values


def buyer_edge_values_reference(indptr, edge_seller, edge_quantity, seller_price) -> np.ndarray:
    """Plain-Python twin of `buyer_edge_values`."""
    n_buyers = len(indptr) - 1
    values = np.zeros(n_buyers)
    for b in range(n_buyers):
        total = 0.0
        for e in range(int(indptr[b]), int(indptr[b + 1])):
            total += float(edge_quantity[e]) * float(seller_price[int(edge_seller[e])])
        values[b] = total
    return values


@njit(cache=True)
def same_mask(a, b):
    """Whether two boolean arrays of one length are equal (stops at the first difference;
    no temporary, unlike ``np.array_equal``)."""
    if a.shape[0] != b.shape[0]:
        return False
    for i in range(a.shape[0]):  # noqa: SIM110 (numba compiles no generator in all())
        if a[i] != b[i]:
            return False
    return True


@njit(cache=True)
def close_edges_of(edge_open, edge_buyer, edge_seller, buyer_closed, seller_closed):
    """Close (in place) every edge whose buyer or seller is marked closed.

    Args:
        edge_open: bool[n_edges], changed in place.
        edge_buyer, edge_seller: int64[n_edges], each edge's buyer and seller.
        buyer_closed: bool[n_buyers]; seller_closed: bool[n_sellers].
    """
    for e in range(edge_open.shape[0]):
        if buyer_closed[edge_buyer[e]] or seller_closed[edge_seller[e]]:
            edge_open[e] = False


def close_edges_of_reference(edge_open, edge_buyer, edge_seller, buyer_closed, seller_closed):
    """Plain numpy twin of `close_edges_of`."""
    edge_open &= ~(seller_closed[edge_seller] | buyer_closed[edge_buyer])
