"""Analysing a study directory: outcomes, per-step summaries, differences, sensitivity.

`analyse_study_dir` reads a study's datasets and manifest and writes four Parquet files
beside them, each atomically (a temporary file renamed into place) and deterministically
(rows sorted, no timestamps: the same inputs give byte-identical files):

- ``outcomes.parquet``: ``scenario, point, replication, outcome, value`` — every run's
  outcome measures (`marketsim.analysis.outcome_measures`);
- ``summary.parquet``: ``scenario, point, step, series, mean, std, n, ci_low, ci_high`` —
  per scenario, design point and step, each series across replications; ``series`` is
  ``chain.<column>``, ``sectors.<sector>.<column>`` or ``markets.<market>.<column>``;
- ``differences.parquet`` (when the study names a reference): ``scenario, reference,
  [point], outcome, mean_difference, ci_low, ci_high, n`` (`paired_differences`);
- ``sensitivity.parquet`` (Sobol and Morris designs): ``scenario, outcome, factor, method,
  index, value, ci_low, ci_high`` (`marketsim.analysis.sensitivity`).

A file that no longer applies (a reference or design since removed) is deleted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

from marketsim.analysis.loading import ENTITY
from marketsim.analysis.loading import KEYS
from marketsim.analysis.loading import AnalysisError
from marketsim.analysis.loading import load_results
from marketsim.analysis.outcomes import outcome_measures
from marketsim.analysis.sensitivity import sensitivity
from marketsim.analysis.stats import STATISTICS
from marketsim.analysis.stats import paired_differences
from marketsim.analysis.stats import statistics_frame
from marketsim.analysis.stats import step_arrays

OUTPUTS = ("outcomes", "summary", "differences", "sensitivity")


@dataclass(frozen=True)
class StudyAnalysis:
    """What `analyse_study_dir` wrote, as DataFrames (None: not applicable)."""

    outcomes: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame | None
    sensitivity: pd.DataFrame | None


def series_summary(
    tables: dict[str, pd.DataFrame],
    units: dict[str, dict[str, str]],
    group: list[str],
) -> pd.DataFrame:
    """`step_summary` of every table's numeric unit columns, named as series, in one tidy frame.

    Args:
        tables: ``chain``, ``sectors``, ``markets`` with ``group`` and ``step`` columns.
        units: table -> column -> unit; the columns summarised.
        group: e.g. ``["scenario", "point"]`` or ``["scenario"]`` (pooling points).

    Returns:
        ``group..., step, series, mean, std, n, ci_low, ci_high``; rows by table (in the
        order of ``tables``), then group, sector or market, step, and the table's columns in
        manifest order. ``series`` (``chain.<column>``, ``sectors.<sector>.<column>``,
        ``markets.<market>.<column>``) and string group columns are categorical.
    """
    pieces = []
    for name, frame in tables.items():
        if name not in ENTITY:
            continue
        entity = ENTITY[name]
        columns = [
            c
            for c in units.get(name, {})
            if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])
        ]  # text columns (e.g. chain.binding_input) have no mean: see outcome_measures
        arrays = step_arrays(frame, [*group, *([entity] if entity else [])], columns)
        if arrays is None:
            continue
        column = arrays.pop("column")
        if entity:
            owner = pd.Categorical(arrays.pop(entity))
            codes = owner.codes.astype("int64") * len(columns) + column.codes
            names = [f"{name}.{e}.{c}" for e in owner.categories for c in columns]
        else:
            codes = column.codes
            names = [f"{name}.{c}" for c in columns]
        arrays["series"] = pd.Categorical.from_codes(codes, categories=names)
        pieces.append(arrays)
    order = [*group, "step", "series", *STATISTICS]
    if not pieces:
        return pd.DataFrame({c: [] for c in order})
    combined = {}
    for column in order:
        parts = [piece[column] for piece in pieces]
        if isinstance(parts[0], pd.Categorical):
            combined[column] = union_categoricals(parts)
        else:
            combined[column] = np.concatenate(parts)
    return statistics_frame(combined)


def analyse_study_dir(directory: str | Path) -> StudyAnalysis:
    """Analyse the study in ``directory`` and write the files listed in the module docstring.

    Args:
        directory: a study directory (manifest with ``"kind": "study"``).

    Returns:
        The `StudyAnalysis` of the frames written.

    Raises:
        AnalysisError: not a study directory, unreadable tables, a reference that is not a
            scenario with results, an unknown outcome in ``study.outcomes``, or a file that
            cannot be written.
    """
    directory = Path(directory)
    loaded = load_results(directory)
    if loaded.kind != "study":
        raise AnalysisError(f"{directory}: expected a study directory, got a run directory")
    outcomes = outcome_measures(loaded.tables, loaded.units, list(KEYS))
    summary = series_summary(loaded.tables, loaded.units, ["scenario", "point"])
    study = loaded.manifest.get("study") or {}
    manifest = directory / "manifest.json"
    reference = loaded.reference
    differences = None
    if reference:
        present = sorted(outcomes["scenario"].unique().tolist())
        if reference not in present:
            raise AnalysisError(
                f"{manifest}: study.reference: expected a scenario with results "
                f"({', '.join(map(repr, present))}), got {reference!r}"
            )
        differences = paired_differences(outcomes, reference)
    design = loaded.design or {}
    analysed = None
    if design.get("method") in ("sobol", "morris"):
        try:
            analysed = sensitivity(
                outcomes, design, study.get("outcomes") or (), seed=int(study.get("seed") or 0)
            )
        except AnalysisError as error:
            raise AnalysisError(f"{manifest}: {error}") from None
    frames = {
        "outcomes": outcomes,
        "summary": summary,
        "differences": differences,
        "sensitivity": analysed,
    }
    for name, frame in frames.items():
        path = directory / f"{name}.parquet"
        if frame is None:
            path.unlink(missing_ok=True)
        else:
            write_parquet(frame, path)
    return StudyAnalysis(**frames)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` atomically and deterministically (no index, no times).

    Raises:
        AnalysisError: the file cannot be written (one line naming it).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_atomically(path, lambda temporary: pq.write_table(table, temporary))


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary)`` on a hidden file beside ``path``, then rename it into place.

    ``path`` is either untouched or complete; the file gets the user's umask permissions.

    Raises:
        AnalysisError: the file cannot be written (one line naming it).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
    except OSError as error:
        raise AnalysisError(f"{path}: cannot write: {error.strerror}") from None
    try:
        write(temporary)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise AnalysisError(f"{path}: cannot write: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
