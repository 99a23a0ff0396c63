"""Reading a run directory or a study directory into one shape for analysis.

A run directory (``marketsim run``) holds ``manifest.json`` and ``sectors.parquet``,
``markets.parquet``, ``chain.parquet``; a study directory (``marketsim study``) holds a
manifest with ``"kind": "study"`` and Parquet datasets ``sectors/``, ``markets/``,
``chain/`` whose rows carry ``scenario``, ``point`` and ``replication`` plus one column per
design factor. `load_results` reads either and gives every table the key columns
``scenario`` (str), ``point`` (int) and ``replication`` (int): a run becomes one scenario
(named after its experiment) with the single design point 0. Firm-level tables are not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from marketsim.errors import MarketsimError

MANIFEST = "manifest.json"
TABLES = ("sectors", "markets", "chain")
"""The tables analysed, in the order they are reported."""
ENTITY = {"sectors": "sector", "markets": "market", "chain": None}
"""The column naming what one row of a table stands for within a step (None: the chain)."""
KEYS = ("scenario", "point", "replication")
"""The columns identifying one run of a study."""


class AnalysisError(MarketsimError):
    """A directory cannot be analysed or reported (not results, unreadable, a missing
    scenario); shown as one line, exit code 2."""


@dataclass
class LoadedResults:
    """The tables and manifest of one results directory, keyed like a study.

    Attributes:
        directory: where the results were read from.
        kind: ``"run"`` or ``"study"``.
        manifest: the manifest as a dict.
        tables: ``sectors``/``markets``/``chain`` -> DataFrame with ``scenario``, ``point``,
            ``replication`` and ``step`` columns (factor columns dropped).
        units: table -> column -> unit, from the manifest.
        label: the experiment's name (run) or the study's name (study).
        factors: the design factors' dotted keys (empty for a run).
    """

    directory: Path
    kind: str
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    units: dict[str, dict[str, str]]
    label: str
    factors: list[str] = field(default_factory=list)

    @property
    def scenarios(self) -> list[str]:
        """Scenario names: the study's in manifest order, or the run's label."""
        if self.kind == "study":
            return list(self.manifest.get("scenarios", {}))
        return [self.label]

    @property
    def reference(self) -> str | None:
        """The study's reference scenario, if it names one."""
        if self.kind != "study":
            return None
        return self.manifest.get("study", {}).get("reference")

    @property
    def design(self) -> dict[str, Any] | None:
        """The study's design (method, points, SALib problem), if any."""
        return self.manifest.get("design") if self.kind == "study" else None


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read ``directory/manifest.json``, raising `AnalysisError` with one line if unusable."""
    directory = Path(directory)
    if not directory.exists():
        raise AnalysisError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise AnalysisError(f"{directory}: expected a results directory, got a file")
    path = directory / MANIFEST
    if not path.is_file():
        raise AnalysisError(f"{directory}: not a marketsim results directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AnalysisError(f"{path}: cannot read: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnalysisError(f"{path}: expected JSON, got invalid text ({error})") from None
    if not isinstance(manifest, dict):
        raise AnalysisError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    units = manifest.get("units")
    if not isinstance(units, dict) or not all(isinstance(u, dict) for u in units.values()):
        raise AnalysisError(f"{path}: units: expected a table of column units, got {units!r}")
    return manifest


def load_results(directory: str | Path) -> LoadedResults:
    """Read a run or study directory (see the module docstring).

    Args:
        directory: a directory written by ``marketsim run`` or ``marketsim study``.

    Returns:
        The `LoadedResults`, tables sorted by scenario, point, replication and step (sectors
        and markets in the order the directory lists them within a step).

    Raises:
        AnalysisError: not a results directory, an unreadable table or manifest, a table
            without its key columns, or no table at all.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    kind = "study" if manifest.get("kind") == "study" else "run"
    if kind == "study":
        study = manifest.get("study") or {}
        label = str(study.get("name") or directory.name)
        factors = [str(f["key"]) for f in manifest.get("factors") or [] if "key" in f]
    else:
        label = str(
            ((manifest.get("experiment") or {}).get("experiment") or {}).get("name")
            or directory.resolve().name
        )
        factors = []
    tables = {}
    for name in TABLES:
        path = directory / (name if kind == "study" else f"{name}.parquet")
        if not path.exists():
            continue
        frame = _read_table(path)
        tables[name] = _keyed(frame, name, path, kind, label, factors)
    if not tables:
        expected = "sectors/, markets/, chain/" if kind == "study" else "chain.parquet"
        raise AnalysisError(f"{directory}: no results tables (expected {expected})")
    return LoadedResults(directory, kind, manifest, tables, manifest["units"], label, factors)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise AnalysisError(f"{path}: cannot read: {reason}") from None


def _keyed(
    frame: pd.DataFrame, name: str, path: Path, kind: str, label: str, factors: list[str]
) -> pd.DataFrame:
    entity = ENTITY[name]
    needed = ["replication", "step", *([entity] if entity else [])]
    if kind == "study":
        needed = ["scenario", "point", *needed]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise AnalysisError(
            f"{path}: expected columns {', '.join(needed)}, got no {', '.join(missing)}"
        )
    frame = frame.drop(columns=[c for c in factors if c in frame.columns])
    if kind == "run":
        frame.insert(0, "point", 0)
        frame.insert(0, "scenario", label)
    for column in ("point", "replication", "step"):
        frame[column] = _plain(frame[column]).astype("int64")
    frame["scenario"] = _plain(frame["scenario"]).astype(str)
    if entity:
        frame[entity] = _plain(frame[entity]).astype(str)
    order = [*KEYS, "step", *([entity] if entity else [])]
    rest = [c for c in frame.columns if c not in order]
    frame = frame[[*order, *rest]]
    # Stable on the run keys and step only: sectors and markets keep the chain's order.
    return frame.sort_values([*KEYS, "step"], kind="stable", ignore_index=True)


def _plain(column: pd.Series) -> pd.Series:
    """Undo dictionary encoding (categorical keys from partitioned datasets)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(column.cat.categories.dtype)
    return column
