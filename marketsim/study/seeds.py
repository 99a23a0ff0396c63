"""Common random numbers: the seeds a study gives each replication and its supply graph.

Replication ``r`` of every scenario and every design point draws its random stream from
``SeedSequence(study_seed).spawn(R)[r]``, the same stream ``marketsim run`` gives
replication ``r`` of an experiment with ``seed = study_seed``. Scenarios and points that
differ only in a parameter therefore see the same demand noise and investor shocks, and their
paired differences cancel that shared noise.

The supply graph has its own seed (``[graph] seed``). With ``graph_per_replication = true``
(the default) replication ``r`` draws its graph from a child of its seed sequence
(`graph_seed`), again the same in every scenario and point, so intervals across replications
include the uncertainty of who trades with whom; with ``false`` every replication uses
``graph.seed = study_seed``: one graph, and intervals conditional on it.
"""

from __future__ import annotations

import numpy as np

GRAPH_STREAM = 2**32 + 0x67726170
"""Spawn-key element of the graph seed's stream: above every ``zlib.crc32`` value, so it never
equals a stream a sector draws from (`marketsim.model.SupplyChainModel.stream`)."""


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """``SeedSequence(seed).spawn(R)[replication]`` for any ``R > replication``."""
    return np.random.SeedSequence(seed, spawn_key=(replication,))


def graph_seed(seed_sequence: np.random.SeedSequence) -> int:
    """The supply graph's seed for a replication: 32 bits from a child stream of its seed."""
    child = np.random.SeedSequence(
        seed_sequence.entropy, spawn_key=(*seed_sequence.spawn_key, GRAPH_STREAM)
    )
    return int(child.generate_state(1, np.uint32)[0])


def seeds_manifest(seed: int, replications: int, graph_per_replication: bool) -> list[dict]:
    """The manifest's ``seeds``: entropy, spawn key and graph seed of each replication."""
    entries = []
    for replication in range(replications):
        sequence = replication_seed(seed, replication)
        entries.append(
            {
                "replication": replication,
                "entropy": str(sequence.entropy),
                "spawn_key": list(sequence.spawn_key),
                "graph_seed": graph_seed(sequence) if graph_per_replication else seed,
            }
        )
    return entries
