"""Results: tidy tables and a manifest, written without destroying what marketsim did not write.

A results directory holds ``manifest.json`` (resolved experiment, its sha256, seeds, times,
versions of every library and plugin, column units, rows of each table), ``sectors.parquet``,
``markets.parquet``, ``chain.parquet`` and, with ``[output] firm_level = true``,
``firms.parquet``. Undefined ratios are null; no NaN or inf is written.

``firms.parquet`` is streamed while the run goes (`marketsim.firm_output`: a row group per
replication and step, ordered by replication then step): ``marketsim run`` streams it into the
staging directory (`ResultsTarget.stream_path`), where it goes in place with the rest, and a
failed or killed run leaves none in the target. A table backed by a file is read only when
asked for (`Tables`).

Writing (`results_target`, which the CLI holds around run and write; `Results.write` for the
Python API) promises:

* **Ownership.** marketsim owns the names in `RESULT_FILES` (a caller may pass its own set,
  ``owned``; a name ending in ``/`` is a dataset directory holding only ``*.parquet`` parts and
  partition directories). A target holding anything else is refused, naming the first foreign
  entry (sorted), with or without ``overwrite``. ``overwrite`` replaces only results of the
  same experiment (the old manifest's ``experiment.experiment.name``): results of another
  experiment are refused, naming it (choose another --out, or delete them yourself), so an
  ``[output] dir`` inherited from a shared base file cannot replace a sibling's results.
  Owned names without a manifest are what a kill while filling an empty directory leaves:
  refused without ``overwrite``, replaced with it. Retired results are deleted name by name
  (manifest first); anything foreign found there is left, with a warning on stderr.
* **Either old or new complete results, at every instant.** Tables and manifest go into a
  hidden staging directory beside the target, ``.NAME.partial-PID-XXXXXXXX``, and are put in
  place by renames: a new target is one no-replace rename; an existing empty directory (e.g.
  ``--out .``) keeps its identity and gets the files moved in, manifest last; existing results
  are swapped with the staged ones in one step by Linux ``renameat2(RENAME_EXCHANGE)``. Where
  the exchange is unavailable (another OS, or the file system answers EINVAL, ENOSYS or
  EOPNOTSUPP) the target is first renamed to ``.NAME.old-PID-XXXXXXXX`` and the staging
  directory then to the target; a kill between the two leaves no target, and the next run to
  that target renames the old results back before anything else. Results in the working
  directory are not replaced (that would move the shell's directory away): refused. Ctrl-C and
  SIGTERM arriving during the renames take effect once they are done. Staged files are
  fsynced before the swap (about 0.1 s a run), so a power cut cannot leave a directory that
  looks complete but holds empty files.
* **One writer per target.** ``.NAME.lock`` beside the target is locked (``flock``,
  exclusive, non-blocking) from before the run until the write ends, then removed; another
  run to the same target fails at once, naming the holder's pid. Under the lock, staging and
  retired siblings of killed runs (process gone) are cleaned up: owned names only.
* **Every check that can be made before the run is made before it**: the nearest existing
  ancestor is a writable directory, each missing path component fits the file system's
  NAME_MAX, missing parents are created, the lock file and the staging directory are created
  (so a read-only or virtual file system such as /sys refuses at once), ownership and
  experiment name are checked. Directories created here are removed again if the run or the
  write fails. Ownership is checked again just before the swap.

Sibling names are built from NAME, shortened with a hash when it is long, so every NAME the
file system takes works. Without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsim import resultsdir
from marketsim.errors import ResultsError
from marketsim.resultsdir import MANIFEST
from marketsim.resultsdir import one_line

TABLE_NAMES = ("sectors", "markets", "chain", "firms")
FIRM_PARTS = "firms.parts/"
"""Staging only: the replications' firm-level files, joined into ``firms.parquet`` before the
swap (never left in a results directory)."""
RESULT_FILES = frozenset({MANIFEST, FIRM_PARTS, *(f"{name}.parquet" for name in TABLE_NAMES)})
"""The names marketsim writes in a results directory (and so may delete on --overwrite)."""

__all__ = [
    "MANIFEST",
    "RESULT_FILES",
    "Results",
    "ResultsTarget",
    "Tables",
    "one_line",
    "results_target",
]


class Tables(MutableMapping):
    """Table name -> DataFrame, where a table may live in a Parquet file until read.

    A file-backed table (``files``: the firm-level table a run streamed) is read on first
    access and the frame kept; its row count and columns come from the file's metadata
    without reading it. Assigning a frame replaces the file. When results are written, a
    file-backed table's file is copied as it is (changing the frame read from it changes
    nothing written; assign it to write it).

    Args:
        frames: tables held as DataFrames.
        files: tables held in Parquet files (after ``frames`` in iteration order).
        keep: an object to keep alive as long as these tables (e.g. the temporary directory
            holding ``files``, removed when it is collected).
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame] | None = None,
        files: Mapping[str, str | Path] | None = None,
        keep: Any = None,
    ):
        self._entries: dict[str, pd.DataFrame | Path] = dict(frames or {})
        self._entries.update((name, Path(path)) for name, path in (files or {}).items())
        self._read: dict[str, pd.DataFrame] = {}
        self._keep = keep

    def __getitem__(self, name: str) -> pd.DataFrame:
        entry = self._entries[name]
        if isinstance(entry, Path):
            if name not in self._read:
                self._read[name] = pd.read_parquet(entry)
            return self._read[name]
        return entry

    def __setitem__(self, name: str, frame: pd.DataFrame) -> None:
        self._entries[name] = frame
        self._read.pop(name, None)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        self._read.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        kinds = {n: "file" if isinstance(e, Path) else "frame" for n, e in self._entries.items()}
        return f"Tables({kinds})"

    def __getstate__(self) -> dict:
        return {"_entries": self._entries, "_read": {}, "_keep": None}

    def file(self, name: str) -> Path | None:
        """The Parquet file holding table ``name``, or None when it is a DataFrame."""
        entry = self._entries[name]
        return entry if isinstance(entry, Path) else None

    def rows(self, name: str) -> int:
        """Table ``name``'s number of rows (a file's from its metadata)."""
        path = self.file(name)
        return len(self[name]) if path is None else pq.read_metadata(path).num_rows

    def columns(self, name: str) -> list[str]:
        """Table ``name``'s column names (a file's from its schema)."""
        path = self.file(name)
        return list(self[name].columns) if path is None else pq.read_schema(path).names

    def moved(self, name: str, path: Path) -> None:
        """Table ``name``'s file is now at ``path`` (it was put in place)."""
        if self.file(name) is not None:
            self._entries[name] = Path(path)


class Results:
    """The tables of a run as pandas DataFrames, and its manifest.

    ``firms`` (firm-level output) is streamed to a Parquet file during the run and read back
    when first asked for (`Tables`): from the results directory after `ResultsTarget.write`,
    or, for `marketsim.run` without a target, from a temporary file removed when these
    results are garbage-collected (or at exit).

    Attributes:
        tables: table name -> DataFrame (``sectors``, ``markets``, ``chain``, maybe ``firms``),
            a `Tables` mapping.
        manifest: the manifest as a dict.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame], manifest: dict[str, Any]):
        self.tables = tables if isinstance(tables, Tables) else Tables(tables)
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

    @property
    def experiment_name(self) -> str | None:
        """The experiment's name as the manifest records it, if it does."""
        return _experiment_name(self.manifest)

    def write(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the results into ``directory`` (see the module docstring for the promises).

        Args:
            directory: where the results go; created with its parents.
            overwrite: replace results of the same experiment there.

        Returns:
            The directory written (absolute).

        Raises:
            ResultsError: results exist and ``overwrite`` is false; the directory holds
                something marketsim did not write, or results of another experiment; another
                run is writing there; or the file system refused.
        """
        with results_target(directory, overwrite, experiment_name=self.experiment_name) as target:
            return target.write(self)

    @classmethod
    def read(cls, directory: str | Path) -> Results:
        """Read results written by `write` (``firms`` when first asked for)."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        present = [name for name in TABLE_NAMES if (directory / f"{name}.parquet").exists()]
        frames = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            for name in present
            if name != "firms"
        }
        files = {name: directory / f"{name}.parquet" for name in present if name == "firms"}
        return cls(Tables(frames, files), manifest)


@contextmanager
def results_target(
    directory: str | Path,
    overwrite: bool = False,
    *,
    experiment_name: str | None = None,
    owned: Collection[str] = RESULT_FILES,
) -> Iterator[ResultsTarget]:
    """Check, lock and prepare ``directory`` for results; yield it for `ResultsTarget.write`.

    Every check that can be made before a run is made on entering (see the module
    docstring); the lock is held until the block ends. If the block ends without a write,
    or the write fails, nothing stays behind: no staging directory, no lock file, no parent
    directory created here.

    Args:
        directory: the results directory.
        overwrite: replace results of the same experiment there.
        experiment_name: the name of the experiment about to be written (None: not checked).
        owned: the names marketsim may write and delete in the directory.

    Raises:
        ResultsError: the target cannot take the results (one line naming why).
    """
    target = ResultsTarget(directory, overwrite, experiment_name, owned)
    target._open()
    try:
        yield target
    finally:
        target._close()


class ResultsTarget:
    """A results directory, checked and locked, with a staging directory beside it.

    Attributes:
        path: the absolute results directory.
        committed: the new results are in place (set before a signal held during the swap
            can take effect).
    """

    def __init__(self, directory, overwrite, experiment_name, owned):
        if MANIFEST not in owned:
            raise ValueError(f"owned names must include {MANIFEST}")
        self.path = _absolute(Path(directory))
        self.overwrite = overwrite
        self.experiment_name = experiment_name
        self.owned = frozenset(owned)
        self.committed = False
        self._created: list[Path] = []
        self._lock: int | None = None
        self._staging: Path | None = None
        self._retired: Path | None = None
        self._state = "missing"

    # Opening and closing.

    def _open(self) -> None:
        _check_location(self.path)
        try:
            self._created = _make_parents(self.path.parent)
            self._lock = resultsdir.acquire_lock(self.path)
            resultsdir.recover_and_clean(self.path, self.owned)
            self._state = self._check()
            self._staging = resultsdir.make_sibling(self.path, "partial")
        except BaseException as error:
            self._close()
            if isinstance(error, OSError):
                message = _os_message(self.path, error, "cannot write results there")
                raise ResultsError(message) from None
            raise

    def _close(self) -> None:
        for leftover in (self._staging, self._retired):
            if leftover is not None and leftover.exists():
                try:
                    resultsdir.remove_owned(leftover, self.owned)
                except OSError as error:
                    resultsdir.warn(f"{leftover}: could not remove: {error.strerror or error}")
        self._staging = self._retired = None
        if self._lock is not None:
            resultsdir.release_lock(self.path, self._lock)
            self._lock = None
        if not self.committed:
            for created in reversed(self._created):
                try:
                    created.rmdir()
                except OSError:
                    break
        self._created = []

    def _check(self) -> str:
        """What the target is (missing, empty, results, incomplete); raise if it must not
        be written."""
        path = self.path
        if not os.path.lexists(path):
            return "missing"
        if not path.is_dir():
            raise ResultsError(f"{path}: exists and is not a directory")
        foreign = resultsdir.first_foreign(path, self.owned)
        if foreign is not None:
            raise ResultsError(
                f"{path}: directory is not empty: it holds {foreign!r}, which marketsim did not "
                "write; results never replace other files: choose another --out"
            )
        if not any(path.iterdir()):
            return "empty"
        if _inside(_cwd(), path):
            raise ResultsError(
                f"{path}: results in the working directory are not replaced; "
                "run from outside it (e.g. cd ..) or choose another --out"
            )
        if not (path / MANIFEST).exists():
            if not self.overwrite:
                raise ResultsError(
                    f"{path}: holds incomplete results (no {MANIFEST}) left by an interrupted "
                    "run; pass --overwrite to replace them or choose another --out"
                )
            return "incomplete"
        try:
            old_name = _experiment_name(json.loads((path / MANIFEST).read_text("utf-8")))
        except (OSError, ValueError) as error:
            raise ResultsError(
                f"{path}: {MANIFEST}: not a readable marketsim manifest ({error}); "
                "choose another --out"
            ) from None
        if old_name is not None and self.experiment_name not in (None, old_name):
            raise ResultsError(
                f"{path}: holds results of experiment {old_name!r}, not "
                f"{self.experiment_name!r}; --overwrite replaces only the same experiment's "
                "results: choose another --out"
            )
        if not self.overwrite:
            raise ResultsError(
                f"{path}: results already exist; pass --overwrite to replace them or "
                "choose another --out"
            )
        return "results"

    # Writing.

    def stream_path(self, name: str) -> Path:
        """Where a table streamed during the run goes: ``name`` in the staging directory.

        ``name`` is an owned name (``firms.parquet``, or ``firms.parts/`` for the
        replications' parts, removed before the swap); a file there goes in place at `write`
        and is deleted if the run or the write fails (or, after a kill, by the next run to
        this target).
        """
        if self._staging is None or self.committed:
            raise RuntimeError("stream_path: the results target is not open for a run")
        if name not in self.owned or name == MANIFEST:
            raise ValueError(f"{name}: not a table name this results target owns (a bug)")
        return self._staging / name.rstrip("/")

    def write(self, results: Results) -> Path:
        """Write ``results`` to the staging directory and swap them into place.

        A file-backed table (`Tables.file`) already in the staging directory (streamed there
        through `stream_path`) stays as it is; one elsewhere is copied.

        Returns:
            The results directory.

        Raises:
            ResultsError: the file system refused, or the target changed during the run
                into something that must not be replaced.
            ValueError: a table holds an infinite value or is not an owned name (bugs).
        """
        staging = self._staging
        if staging is None or self.committed:
            raise RuntimeError("a results target takes one write")
        names = [f"{name}.parquet" for name in results.tables]
        unowned = sorted(set(names) - self.owned)
        if unowned:
            raise ValueError(f"{unowned[0]}: not a name this results target owns (a bug)")
        tables = results.tables
        staged = []
        try:
            for name in tables:
                destination = staging / f"{name}.parquet"
                source = tables.file(name)
                if source is None:
                    _write_parquet(tables[name], destination, name)
                elif source == destination:
                    staged.append(name)
                else:
                    shutil.copyfile(source, destination)
            leftover = staging / FIRM_PARTS.rstrip("/")
            if leftover.exists():
                shutil.rmtree(leftover)
            text = json.dumps(results.manifest, indent=2, sort_keys=False, allow_nan=False)
            (staging / MANIFEST).write_text(text + "\n", encoding="utf-8")
            for name in [*names, MANIFEST, "."]:
                resultsdir.fsync(staging / name)
            self._state = self._check()
            self._commit(staging)
        except OSError as error:
            raise ResultsError(_os_message(self.path, error, "cannot write results")) from None
        for name in staged:
            tables.moved(name, self.path / f"{name}.parquet")
        return self.path

    def _commit(self, staging: Path) -> None:
        path = self.path
        if self._state != "empty":
            mode = path.stat().st_mode if self._state != "missing" else _default_mode()
            os.chmod(staging, mode & 0o7777)
        resultsdir.swap_step("staged")
        with resultsdir.signals_held():
            if self._state == "missing":
                resultsdir.rename_noreplace(staging, path)
                self._staging = None
                self.committed = True
                resultsdir.swap_step("moved-in")
            elif self._state == "empty":
                self._fill(staging)
            else:
                self._swap(staging)
        resultsdir.fsync(path.parent)
        if self._retired is not None:
            resultsdir.remove_owned(self._retired, self.owned, step="retired")
            self._retired = None

    def _fill(self, staging: Path) -> None:
        """Move the staged files into the existing empty target, manifest last."""
        names = sorted(p.name for p in staging.iterdir() if p.name != MANIFEST)
        for name in [*names, MANIFEST]:
            resultsdir.rename_noreplace(staging / name, self.path / name)
            if name == MANIFEST:
                self.committed = True
            resultsdir.swap_step(f"filled:{name}")
        staging.rmdir()
        self._staging = None
        resultsdir.swap_step("staging-removed")

    def _swap(self, staging: Path) -> None:
        """Exchange staged and old results in one step, or by two renames as a fallback."""
        try:
            resultsdir.rename_exchange(staging, self.path)
        except OSError as error:
            if error.errno not in resultsdir.UNSUPPORTED:
                raise
        else:
            self._retired, self._staging = staging, None
            self.committed = True
            resultsdir.swap_step("exchanged")
            return
        retired = resultsdir.sibling_path(self.path, "old")
        os.rename(self.path, retired)
        self._retired = retired
        resultsdir.swap_step("moved-aside")
        try:
            os.rename(staging, self.path)
        except BaseException:
            os.rename(retired, self.path)
            self._retired = None
            raise
        self._staging = None
        self.committed = True
        resultsdir.swap_step("moved-in")


def _experiment_name(manifest: Any) -> str | None:
    try:
        name = manifest["experiment"]["experiment"]["name"]
    except (KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _absolute(path: Path) -> Path:
    """The absolute path with symbolic links of its existing part resolved."""
    return Path(os.path.realpath(path))


def _inside(path: Path | None, directory: Path) -> bool:
    return path is not None and (path == directory or directory in path.parents)


def _cwd() -> Path | None:
    try:
        return Path(os.getcwd())
    except OSError:
        return None


def _os_message(target: Path, error: OSError, what: str) -> str:
    where = f"{error.filename}: " if error.filename and Path(error.filename) != target else ""
    return f"{target}: {what}: {where}{error.strerror or error}"


def _check_location(target: Path) -> None:
    """Refuse a target that cannot be created: blocked by a file, unwritable, too long."""
    if target.name == "":
        raise ResultsError(f"{target}: cannot write results there (the root directory)")
    existing = target
    missing = []
    while not os.path.exists(existing) and existing != existing.parent:
        missing.append(existing.name)
        existing = existing.parent
    if existing == target and not target.is_dir():
        raise ResultsError(f"{target}: exists and is not a directory")
    base = target.parent if existing == target else existing
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ResultsError(
            f"{target}: cannot write results there ({base} is not a writable directory)"
        )
    try:
        limit = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for name in missing:
        size = len(os.fsencode(name))
        if size > limit:
            raise ResultsError(
                f"{target}: cannot write results there: the name {name[:24]!r}... is {size} "
                f"bytes long; the file system takes at most {limit}"
            )


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return those created, outermost first."""
    missing = []
    while not os.path.exists(directory):
        missing.append(directory)
        directory = directory.parent
    created = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            created.append(path)
    except BaseException:
        for path in reversed(created):
            path.rmdir()
        raise
    return created


def _write_parquet(frame: pd.DataFrame, path: Path, name: str) -> None:
    numeric = frame.select_dtypes(include=[np.number])
    infinite = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan))
    if infinite.any():
        column = numeric.columns[np.argwhere(infinite)[0][1]]
        raise ValueError(f"{name}.{column}: infinite value (a bug: ratios must be null)")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask
