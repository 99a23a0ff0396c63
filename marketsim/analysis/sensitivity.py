"""Global sensitivity of outcomes to a study's sampled factors (Sobol and Morris via SALib).

The outcome of a design point is the mean of its replications (common random numbers make
these means comparable across points); the points are taken in design order, which is the
order SALib sampled them in. A Sobol design gives first-order (``S1``) and total (``ST``)
indices with bootstrap confidence intervals (``calc_second_order=False``); a Morris design
gives ``mu_star`` (mean absolute elementary effect, in the outcome's unit per unit-range
step) with its bootstrap interval and ``sigma`` (their spread; no interval). Other designs
have no sensitivity indices. An outcome undefined (null) at some design point, or constant
over the design, has null indices. Output never holds NaN or inf.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from marketsim.analysis.loading import AnalysisError
from marketsim.analysis.outcomes import default_sensitivity_outcomes
from marketsim.analysis.stats import CONFIDENCE
from marketsim.analysis.stats import nullable

COLUMNS = ("scenario", "outcome", "factor", "method", "index", "value", "ci_low", "ci_high")
METHODS = ("sobol", "morris")
RESAMPLES = 100
"""Bootstrap resamples for the confidence intervals of the indices."""


def sensitivity(
    outcomes: pd.DataFrame,
    design: Mapping[str, Any],
    outcome_names: Sequence[str] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """Sobol or Morris indices of each outcome and factor, per scenario.

    Args:
        outcomes: tidy outcome measures with ``point`` and ``replication`` columns (and
            ``scenario``: indices are computed per scenario).
        design: the study manifest's ``design`` (``method``, ``points`` in design order,
            ``salib_problem``, ``morris_levels``).
        outcome_names: outcomes to analyse; empty: `default_sensitivity_outcomes`.
        seed: seed of the bootstrap resampling (the study's seed: same inputs, same output).

    Returns:
        Tidy frame ``scenario, outcome, factor, method, index, value, ci_low, ci_high``
        (``index`` is ``S1``/``ST`` or ``mu_star``/``sigma``), sorted by scenario, outcome,
        index and factor in design order; empty for a design that is not Sobol or Morris.

    Raises:
        AnalysisError: an outcome name that the outcomes do not have, or design points that
            do not match the SALib problem.
    """
    method = design.get("method")
    if method not in METHODS or outcomes.empty:
        return _empty()
    problem = design["salib_problem"]
    names = list(problem["names"])
    points = [int(p["point"]) for p in design["points"]]
    available = set(outcomes["outcome"].unique())
    wanted = list(outcome_names) or default_sensitivity_outcomes(available)
    for name in wanted:
        if name not in available:
            close = difflib.get_close_matches(name, sorted(available), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AnalysisError(f"study.outcomes: unknown outcome {name!r}{hint}")
    subset = outcomes[outcomes["outcome"].isin(wanted)]
    if "scenario" not in subset.columns:
        subset = subset.assign(scenario="")
    means = subset.groupby(["scenario", "outcome", "point"], sort=True)["value"].mean()
    frames = []
    for (scenario, outcome), per_point in means.groupby(level=["scenario", "outcome"]):
        y = per_point.droplevel(["scenario", "outcome"]).reindex(points)
        y = y.to_numpy(dtype=float, na_value=np.nan)
        rows = _indices(method, problem, design, y, seed)
        rows.insert(0, "outcome", outcome)
        rows.insert(0, "scenario", scenario)
        frames.append(rows)
    if not frames:
        return _empty()
    frame = pd.concat(frames, ignore_index=True)
    factor_rank = frame["factor"].map({name: i for i, name in enumerate(names)})
    frame = frame.assign(_rank=factor_rank).sort_values(
        ["scenario", "outcome", "index", "_rank"], kind="stable", ignore_index=True
    )
    return nullable(frame.drop(columns="_rank"), ["value", "ci_low", "ci_high"])[list(COLUMNS)]


def _indices(
    method: str, problem: Mapping[str, Any], design: Mapping[str, Any], y: np.ndarray, seed: int
) -> pd.DataFrame:
    names = list(problem["names"])
    salib_problem = {
        "num_vars": int(problem["num_vars"]),
        "names": names,
        "bounds": [list(map(float, b)) for b in problem["bounds"]],
    }
    k = len(names)
    if method == "sobol":
        if len(y) % (k + 2):
            raise AnalysisError(
                f"design.points: expected a multiple of {k + 2} Sobol points "
                f"(calc_second_order=false), got {len(y)}"
            )
        indices = {"S1": "S1_conf", "ST": "ST_conf"}
    else:
        if len(y) % (k + 1):
            raise AnalysisError(
                f"design.points: expected a multiple of {k + 1} Morris points, got {len(y)}"
            )
        indices = {"mu_star": "mu_star_conf", "sigma": None}
    result: dict[str, Any] = {}
    # An outcome that no factor moves (constant over the design) has undefined indices.
    if np.isfinite(y).all() and np.ptp(y) > 0:
        result = _analyse(method, salib_problem, design, y, seed)
    rows = []
    for index, conf in indices.items():
        values = np.asarray(result.get(index, np.full(k, np.nan)), dtype=float)
        half = (
            np.asarray(result.get(conf, np.full(k, np.nan)), dtype=float)
            if conf
            else np.full(k, np.nan)
        )
        rows.append(
            pd.DataFrame(
                {
                    "factor": names,
                    "method": method,
                    "index": index,
                    "value": values,
                    "ci_low": values - half,
                    "ci_high": values + half,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _analyse(
    method: str, problem: dict[str, Any], design: Mapping[str, Any], y: np.ndarray, seed: int
) -> dict[str, Any]:
    from SALib.analyze import morris
    from SALib.analyze import sobol

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # SALib warns about nearly constant outputs and bootstrap resamples; the indices
        # and intervals it returns are still the answer.
        warnings.simplefilter("ignore")
        if method == "sobol":
            return dict(
                sobol.analyze(
                    problem,
                    y,
                    calc_second_order=False,
                    num_resamples=RESAMPLES,
                    conf_level=CONFIDENCE,
                    seed=seed,
                )
            )
        x = np.array(
            [[float(p["values"][name]) for name in problem["names"]] for p in design["points"]]
        )
        return dict(
            morris.analyze(
                problem,
                x,
                y,
                num_resamples=RESAMPLES,
                conf_level=CONFIDENCE,
                num_levels=int(design.get("morris_levels") or 4),
                seed=seed,
            )
        )


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS[:5]})
    for column in COLUMNS[5:]:
        frame[column] = pd.Series(dtype="Float64")
    return frame
