"""Design points: the combinations of factor values a study runs every scenario at.

No factors: one point (point 0) with no values. A grid (``[study.factors]`` with lists):
every combination, the cartesian product in the order the factors are written (the first
factor changes slowest). A sample (``[study.sample]`` with ``range`` factors), from SALib:

- ``sobol``: Saltelli's extension of the Sobol' sequence, ``n * (k + 2)`` points for ``k``
  factors (first-order and total indices; ``calc_second_order = false``);
- ``morris``: ``n`` trajectories of ``k + 1`` points on a grid of ``levels`` levels;
- ``lhs``: a Latin hypercube of ``n`` points.

Every sampler is seeded with the study seed, so the same study file gives the same points.
A factor whose parameter is an integer (``interconnection_lead_months``) is sampled on
``[low - 0.5, high + 0.5]`` and rounded to the nearest integer, so every integer in
``[low, high]`` is equally likely; the SALib problem recorded in the manifest carries those
widened bounds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketsim.study.schema import FactorEntry
from marketsim.study.schema import SampleEntry


@dataclass(frozen=True)
class Factor:
    """A factor with its parameter's kind (``float``, ``int``, ``str`` or ``bool``)."""

    key: str
    kind: type
    values: tuple[Any, ...] | None = None
    """Grid values, converted to the parameter's kind."""
    range: tuple[float, float] | None = None
    """Sampled range ``[low, high]`` as written."""

    def manifest(self) -> dict[str, Any]:
        """``{"key", "values"}`` or ``{"key", "range"}`` as the manifest records it."""
        if self.values is not None:
            return {"key": self.key, "values": list(self.values)}
        return {"key": self.key, "range": list(self.range)}


@dataclass(frozen=True)
class Design:
    """The design points, in design order (the order SALib's analysers expect).

    Attributes:
        method: ``"none"``, ``"grid"``, ``"sobol"``, ``"morris"`` or ``"lhs"``.
        n: the base sample size for samplers; the number of points otherwise.
        points: each point's factor values, key -> value (the parameter's kind).
        salib_problem: ``{"num_vars", "names", "bounds"}`` for samplers, else None.
        morris_levels: grid levels for Morris, else None.
    """

    method: str
    n: int
    points: tuple[dict[str, Any], ...]
    salib_problem: dict[str, Any] | None = None
    morris_levels: int | None = None

    def manifest(self) -> dict[str, Any]:
        """The ``design`` entry of the study manifest."""
        return {
            "method": self.method,
            "n": self.n,
            "points": [{"point": i, "values": dict(v)} for i, v in enumerate(self.points)],
            "salib_problem": self.salib_problem,
            "morris_levels": self.morris_levels,
            "calc_second_order": False,
        }


def convert(value: Any, kind: type) -> Any:
    """A grid value in its parameter's kind: ints become floats for float parameters."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def build_design(factors: list[Factor], sample: SampleEntry | None, seed: int) -> Design:
    """The design points for ``factors``: one point, a grid, or a SALib sample.

    Args:
        factors: in the order written in the study file.
        sample: ``[study.sample]``, or None for a grid (or no factors).
        seed: the study seed (seeds the sampler).

    Returns:
        The `Design`.
    """
    if not factors:
        return Design("none", 1, ({},))
    if sample is None:
        keys = [factor.key for factor in factors]
        points = tuple(
            dict(zip(keys, combination, strict=True))
            for combination in itertools.product(*(factor.values for factor in factors))
        )
        return Design("grid", len(points), points)
    problem = {
        "num_vars": len(factors),
        "names": [factor.key for factor in factors],
        "bounds": [_sampled_bounds(factor) for factor in factors],
    }
    matrix = _salib_sample(problem, sample, seed)
    points = tuple(
        {factor.key: _sampled_value(row[column], factor) for column, factor in enumerate(factors)}
        for row in matrix
    )
    levels = sample.levels if sample.method == "morris" else None
    return Design(sample.method, sample.n, points, problem, levels)


def _sampled_bounds(factor: Factor) -> list[float]:
    """The SALib bounds: the range, widened by half a unit on each side for integers."""
    low, high = factor.range
    if factor.kind is int:
        return [float(low) - 0.5, float(high) + 0.5]
    return [float(low), float(high)]


def _sampled_value(value: float, factor: Factor) -> Any:
    """A sampled value in its parameter's kind: integers rounded (half up) into the range."""
    value = float(value)
    if factor.kind is int:
        low, high = factor.range
        return int(min(max(math.floor(value + 0.5), math.ceil(low)), math.floor(high)))
    return value


def _salib_sample(problem: dict[str, Any], sample: SampleEntry, seed: int) -> np.ndarray:
    """The SALib sample matrix, one row per point."""
    salib_problem = {key: list(value) for key, value in problem.items() if key != "num_vars"}
    salib_problem["num_vars"] = problem["num_vars"]
    if sample.method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(salib_problem, sample.n, calc_second_order=False, seed=seed)
    if sample.method == "morris":
        from SALib.sample import morris

        return morris.sample(salib_problem, sample.n, num_levels=sample.levels, seed=seed)
    from SALib.sample import latin

    return latin.sample(salib_problem, sample.n, seed=seed)


def factor_from_entry(entry: FactorEntry, kind: type) -> Factor:
    """A `Factor` from its study-file entry and its parameter's kind."""
    if entry.values is not None:
        return Factor(entry.key, kind, values=tuple(convert(v, kind) for v in entry.values))
    return Factor(entry.key, kind, range=entry.range)
