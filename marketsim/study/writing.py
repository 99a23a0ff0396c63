"""The study directory: part files, the manifest, and what may be found there.

Layout::

    DIR/manifest.json                 the study, scenarios, design, seeds, versions, status
    DIR/sectors/part-SSSS-PPPPPP-RRRRRR.parquet   one file per task and table
    DIR/markets/...  DIR/chain/...  (DIR/firms/... with [output] firm_level = true)
    DIR/outcomes.parquet  summary.parquet  differences.parquet  sensitivity.parquet
                                      written by `marketsim.analysis.analyse_study_dir`

``SSSS`` is the scenario's index, ``PPPPPP`` the design point, ``RRRRRR`` the replication.
A part file is written under a hidden temporary name in its folder and renamed into place,
so it is always complete, and readers (`pandas.read_parquet(DIR / "chain")`) skip the hidden
names. A task is finished when all its part files exist.

Part files are byte-identical whoever writes them: columns ``scenario, point, replication``,
one column per factor (in the order written), the table's own key columns, then the metric
columns in the study's fixed order (a metric a scenario lacks is null); plain (not
dictionary) strings; no pandas metadata and no timestamps. A ``firms`` part is streamed
while its task runs (`marketsim.firm_output`: one row group per step, the firm-level
columns in their own order, no stored Arrow schema) under its hidden temporary name.

Only names listed here are ever deleted (``--overwrite``); anything else in the directory
stops the study before it starts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsim.errors import ResultsError
from marketsim.firm_output import Constant

MANIFEST = "manifest.json"
TABLE_DIRS = ("sectors", "markets", "chain", "firms")
ANALYSIS_FILES = (
    "outcomes.parquet",
    "summary.parquet",
    "differences.parquet",
    "sensitivity.parquet",
)
KNOWN_FILES = (MANIFEST, *ANALYSIS_FILES, "report.html")
KEY_COLUMNS = ("scenario", "point", "replication")
PART = re.compile(r"part-(\d{4})-(\d{6})-(\d{6})\.parquet")
_PART_TEMPORARY = re.compile(r"\.part-\d{4}-\d{6}-\d{6}\.parquet\..*\.tmp")
_KNOWN_TEMPORARY = re.compile(
    r"\.(?:" + "|".join(re.escape(name) for name in KNOWN_FILES) + r")\..*"
)


def part_name(scenario: int, point: int, replication: int) -> str:
    """The part file of a task, e.g. ``part-0001-000000-000019.parquet``."""
    return f"part-{scenario:04d}-{point:06d}-{replication:06d}.parquet"


# --- part files -----------------------------------------------------------------------------


def task_table(
    frame: pd.DataFrame,
    scenario: str,
    point: int,
    factors: Iterable[tuple[str, Any]],
    metric_columns: tuple[str, ...] | None,
) -> pa.Table:
    """One table of one task in the study's column layout, ready to write.

    Args:
        frame: the run's table (with its ``replication`` column).
        scenario: the scenario's name.
        point: the design point.
        factors: ``(key, value)`` of every factor, in the order written.
        metric_columns: the study's metric columns of this table in order (missing ones are
            written as null), or None to keep the frame's own order (``firms``).

    Raises:
        ValueError: a number is infinite (a bug: ratios must be null).
    """
    rows = len(frame)
    columns: dict[str, pa.Array] = {
        "scenario": pa.array([scenario] * rows, type=pa.string()),
        "point": pa.array(np.full(rows, point, dtype=np.int64)),
        "replication": pa.array(frame["replication"].to_numpy(dtype=np.int64)),
    }
    for key, value in factors:
        columns[key] = pa.array([value] * rows, type=_factor_type(value))
    own = [name for name in frame.columns if name != "replication"]
    if metric_columns is not None:
        keys = [name for name in own if name not in metric_columns]
        order = [*keys, *metric_columns]
        order += [name for name in own if name not in order]
    else:
        order = own
    for name in order:
        if name in frame.columns:
            columns[name] = _column(frame[name], name)
        else:
            columns[name] = pa.nulls(rows, type=pa.float64())
    return pa.table(columns)


def _factor_type(value: Any) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _column(series: pd.Series, name: str) -> pa.Array:
    """A column as a plain Arrow array: strings as ``string``, all-null columns as float."""
    array = pa.Array.from_pandas(series)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or _is_string_view(array.type):
        array = array.cast(pa.string())
    elif pa.types.is_null(array.type):
        array = array.cast(pa.float64())
    elif pa.types.is_floating(array.type):
        values = array.to_numpy(zero_copy_only=False)
        if np.isinf(values).any():
            raise ValueError(f"{name}: infinite value (a bug: ratios must be null)")
    return array


def _is_string_view(kind: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)  # pyarrow >= 16
    return bool(check and check(kind))


def firm_constants(
    scenario: str, point: int, replication: int, factors: Iterable[tuple[str, Any]]
) -> list[Constant]:
    """The leading columns of a task's firm rows, as `task_table` puts them first."""
    return [
        Constant("scenario", scenario, pa.string()),
        Constant("point", int(point), pa.int64()),
        Constant("replication", int(replication), pa.int64()),
        *(Constant(key, value, _factor_type(value)) for key, value in factors),
    ]


def temporary_part(directory: Path, name: str) -> Path:
    """A new hidden temporary file for part ``name`` in ``directory`` (renamed into place
    when complete; `remove_temporary_parts` deletes it after an interruption)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    return Path(temporary)


def write_part(table: pa.Table, directory: Path, name: str) -> None:
    """Write ``table`` to ``directory / name`` atomically (hidden temporary file, rename)."""
    temporary = temporary_part(directory, name)
    try:
        pq.write_table(table, temporary, compression="snappy")
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def finished_tasks(directory: Path, tables_of: dict[int, tuple[str, ...]]) -> set:
    """``(scenario, point, replication)`` of every task whose part files all exist.

    Args:
        directory: the study directory.
        tables_of: scenario index -> the tables each of its tasks writes.
    """
    present: dict[str, set[tuple[int, int, int]]] = {}
    for table in {name for names in tables_of.values() for name in names}:
        folder = directory / table
        names = os.listdir(folder) if folder.is_dir() else []
        present[table] = {
            tuple(int(group) for group in match.groups())
            for match in map(PART.fullmatch, names)
            if match
        }
    done = set()
    for scenario, names in tables_of.items():
        candidates = set.intersection(*(present[name] for name in names))
        done |= {task for task in candidates if task[0] == scenario}
    return done


def remove_temporary_parts(directory: Path) -> None:
    """Delete the hidden temporary part files an interrupted study left behind."""
    for table in TABLE_DIRS:
        folder = directory / table
        if folder.is_dir():
            for name in os.listdir(folder):
                if _PART_TEMPORARY.fullmatch(name):
                    (folder / name).unlink(missing_ok=True)


# --- the directory --------------------------------------------------------------------------


def foreign_entry(directory: Path) -> Path | None:
    """The first entry of ``directory`` that a study does not write, or None."""
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name in TABLE_DIRS and entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.iterdir()):
                ours = PART.fullmatch(inner.name) or _PART_TEMPORARY.fullmatch(inner.name)
                if not (ours and inner.is_file()):
                    return inner
        elif not (
            (name in KNOWN_FILES or _KNOWN_TEMPORARY.fullmatch(name))
            and entry.is_file()
            and not entry.is_symlink()
        ):
            return entry
    return None


def check_output(directory: Path, name: str, sha256: str, resume: bool, overwrite: bool) -> str:
    """Decide how a study may use ``directory``, before anything is written.

    Returns:
        ``"new"`` (absent or empty), ``"resume"`` (the same study, ``resume``) or
        ``"overwrite"`` (a study's files to delete first, ``overwrite``).

    Raises:
        ResultsError: the directory cannot be used (one line saying why and what to pass).
    """
    if resume and overwrite:
        raise ResultsError("--resume and --overwrite exclude each other: pass one")
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ResultsError(
            f"{directory}: cannot write a study there ({existing} is not a writable directory)"
        )
    if not directory.exists() or not any(directory.iterdir()):
        return "new"
    foreign = foreign_entry(directory)
    if foreign is not None:
        raise ResultsError(
            f"{directory}: holds {foreign.relative_to(directory)}, which a study does not "
            "write; choose another --out (nothing there is ever deleted)"
        )
    manifest = read_manifest(directory)
    if resume:
        if manifest is None:
            raise ResultsError(f"{directory}: holds no study manifest to resume; pass --overwrite")
        if manifest["study"].get("sha256") != sha256:
            raise ResultsError(
                f"{directory}: holds a different study ({manifest['study'].get('name')!r}: the "
                "study file, a scenario, a plugin or the design changed); pass --overwrite to "
                "replace it or choose another --out"
            )
        return "resume"
    if overwrite:
        return "overwrite"
    if manifest is not None and manifest["study"].get("name") == name:
        raise ResultsError(
            f"{directory}: study {name!r} is already there (status "
            f"{manifest['study'].get('status')}); pass --resume to run only the missing "
            "tasks or --overwrite to start again"
        )
    raise ResultsError(
        f"{directory}: is not empty and holds no study named {name!r}; pass --overwrite to "
        "replace it or choose another --out"
    )


def clear_output(directory: Path) -> None:
    """Delete a study's files from ``directory`` (only the names a study writes)."""
    if foreign_entry(directory) is not None:  # checked before; never delete what is not ours
        raise ResultsError(f"{directory}: holds files a study does not write")
    manifest = directory / MANIFEST
    manifest.unlink(missing_ok=True)
    for entry in directory.iterdir():
        if entry.name in TABLE_DIRS:
            shutil.rmtree(entry)
        else:
            entry.unlink()


def read_manifest(directory: Path) -> dict | None:
    """The study manifest in ``directory``, or None when there is none (or not a study's)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != "study":
        return None
    if not isinstance(manifest.get("study"), dict):
        return None
    return manifest


def write_manifest(directory: Path, manifest: dict) -> None:
    """Write ``manifest.json`` atomically (temporary file, rename)."""
    text = json.dumps(manifest, indent=2, allow_nan=False, default=_json_default) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, directory / MANIFEST)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating) and math.isfinite(value):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} to the manifest")
