"""Results: tidy tables plus a manifest, written atomically.

A results directory holds ``manifest.json`` (resolved experiment, its sha256, seeds, times,
versions of every library and plugin, column units), ``sectors.parquet``,
``markets.parquet``, ``chain.parquet`` and, with ``[output] firm_level = true``,
``firms.parquet``. Undefined ratios are null; no NaN or inf is written.

Writing goes to a hidden temporary directory beside the target, which is renamed into place
only when every file is complete, so an interrupted run leaves nothing half-written. Existing
results are never replaced unless asked (``overwrite=True``), and a directory that is not a
results directory is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsim.errors import ResultsError

MANIFEST = "manifest.json"
TABLE_NAMES = ("sectors", "markets", "chain", "firms")


class Results:
    """The tables of a run as pandas DataFrames, and its manifest.

    Attributes:
        tables: table name -> DataFrame (``sectors``, ``markets``, ``chain``, maybe ``firms``).
        manifest: the manifest as a dict.
    """

    def __init__(self, tables: dict[str, pd.DataFrame], manifest: dict[str, Any]):
        self.tables = tables
        self.manifest = manifest

    @property
    def sectors(self) -> pd.DataFrame:
        """One row per (replication, step, sector)."""
        return self.tables["sectors"]

    @property
    def markets(self) -> pd.DataFrame:
        """One row per (replication, step, market)."""
        return self.tables["markets"]

    @property
    def chain(self) -> pd.DataFrame:
        """One row per (replication, step): the whole chain."""
        return self.tables["chain"]

    @property
    def firms(self) -> pd.DataFrame | None:
        """One row per (replication, step, firm), if firm-level output was asked for."""
        return self.tables.get("firms")

    def write(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the results atomically into ``directory``.

        Args:
            directory: where the results go; created with its parents.
            overwrite: replace existing results there.

        Returns:
            The directory written.

        Raises:
            ResultsError: results exist and ``overwrite`` is false, or the directory holds
                something other than results.
        """
        target = Path(directory).resolve()
        check_writable(target, overwrite)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        except OSError as error:
            raise ResultsError(f"{target}: cannot write results: {error.strerror}") from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        try:
            for name, frame in self.tables.items():
                _write_parquet(frame, staging / f"{name}.parquet", name)
            text = json.dumps(self.manifest, indent=2, sort_keys=False, allow_nan=False)
            (staging / MANIFEST).write_text(text + "\n", encoding="utf-8")
            _replace_directory(staging, target)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ResultsError(f"{target}: cannot write results: {error.strerror}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def read(cls, directory: str | Path) -> Results:
        """Read results written by `write`."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        tables = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            for name in TABLE_NAMES
            if (directory / f"{name}.parquet").exists()
        }
        return cls(tables, manifest)


def check_writable(target: Path, overwrite: bool) -> None:
    """Refuse early when ``target`` cannot take results (before anything runs)."""
    existing = target if target.exists() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ResultsError(
            f"{target}: cannot write results there ({existing} is not a writable directory)"
        )
    if target.exists() and not target.is_dir():
        raise ResultsError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        if not (target / MANIFEST).exists():
            raise ResultsError(
                f"{target}: directory is not empty and holds no marketsim results; "
                "choose another --out"
            )
        if not overwrite:
            raise ResultsError(
                f"{target}: results already exist; pass --overwrite to replace them or "
                "choose another --out"
            )


def _write_parquet(frame: pd.DataFrame, path: Path, name: str) -> None:
    numeric = frame.select_dtypes(include=[np.number])
    infinite = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan))
    if infinite.any():
        column = numeric.columns[np.argwhere(infinite)[0][1]]
        raise ValueError(f"{name}.{column}: infinite value (a bug: ratios must be null)")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path)


def _replace_directory(staging: Path, target: Path) -> None:
    """Put the staged results at ``target``; old results there go only at the last moment.

    A new target is one atomic rename. An existing directory (empty, or holding results to
    overwrite) is kept and its contents swapped file by file, the manifest last, so a
    directory is never left with a manifest and half the tables.
    """
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        manifest = target / MANIFEST
        if manifest.exists():
            os.replace(manifest, retired / MANIFEST)
        for old in target.iterdir():
            os.replace(old, retired / old.name)
        new_files = sorted(staging.iterdir(), key=lambda path: path.name == MANIFEST)
        for new in new_files:
            os.replace(new, target / new.name)
    except BaseException:
        for old in retired.iterdir():
            os.replace(old, target / old.name)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
