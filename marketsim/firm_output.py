"""Firm-level output (``[output] firm_level = true``): one row per member and step, streamed.

Each recorded step's rows are built as one Arrow table (`FirmRows`) and appended to a Parquet
file as one row group (`FirmStream`); nothing of earlier steps stays in memory, so a run's
memory does not grow with steps x firms. Replications (or a study's tasks) stream to files of
their own; `merge_parts` joins them row group by row group, in order.

Columns, fixed at the first recorded step:

* the constant leading columns: ``replication`` (int64) for a run; a study's task writes
  ``scenario`` (string), ``point`` (int64), ``replication`` and one column per factor;
* ``step`` (int64), ``firm`` (``sector:index``), ``sector``, ``region`` (strings);
* for members with ledger accounts: ``alive`` (1.0 or 0.0), ``cash``, ``debt`` (USD) and the
  income-statement fields (USD per step, `marketsim.firms.INCOME_FIELDS`);
* each sector's ``firm_state`` columns (units in their names), in sector order.

A column a sector lacks is null for its members, and NaN is written as null (float64 columns
otherwise). A ``firm_state`` returning a column at a later step that it did not return at the
first one stops the run (`StepGuardError`); one it stops returning is null.

The labels (``firm``, ``sector``, ``region`` and a study's ``scenario``) are Arrow dictionary
arrays built once per replication, so a step of a million members costs no string work. On
disk they are plain Parquet strings (dictionary-encoded pages) and the Arrow schema is not
stored, so readers get plain strings, float64 and int64, as from a table written by pandas.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsim.firms import INCOME_FIELDS
from marketsim.guard import StepGuardError

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

ACCOUNT_COLUMNS = ("alive", "cash", "debt", *INCOME_FIELDS)
"""The columns of members with ledger accounts, before their sector's ``firm_state``."""
LABEL_COLUMNS = ("scenario", "firm", "sector", "region")
"""String columns that are dictionary arrays in memory."""
COMPRESSION = "snappy"


@dataclass(frozen=True)
class Constant:
    """A leading column holding one value in every row (a replication, a study's factor)."""

    name: str
    value: Any
    type: pa.DataType


def replication_columns(replication: int) -> list[Constant]:
    """The leading columns of a run's firm rows: ``replication``."""
    return [Constant("replication", int(replication), pa.int64())]


def _constant_array(constant: Constant, size: int) -> pa.Array:
    if pa.types.is_string(constant.type):
        dictionary = pa.array([constant.value], type=pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(size, np.int32)), dictionary)
    return pa.repeat(pa.scalar(constant.value, type=constant.type), size)


def _codes(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values, dtype=np.int32))


class FirmRows:
    """Builds each step's firm rows as one Arrow table with a fixed schema.

    Args:
        model: the model whose sectors' members are the rows (every sector, in order).
        leading: the constant leading columns (`replication_columns` for a run).
    """

    def __init__(self, model: SupplyChainModel, leading: Sequence[Constant]):
        self.model = model
        self.sectors = list(model.sectors.values())
        counts = np.array([sector.count for sector in self.sectors], dtype=np.int64)
        self.size = int(counts.sum())
        """Rows per step: every member of every sector."""
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        """Where each sector's members start in a step's rows."""
        regions = [str(name) for name in model.experiment["graph"]["regions"]]
        firm_names = [f"{s.name}:{k}" for s in self.sectors for k in range(s.count)]
        sector_code = np.repeat(np.arange(len(self.sectors)), counts)
        region_code = (
            np.concatenate([np.asarray(s.region, dtype=np.int64) for s in self.sectors])
            if self.sectors
            else np.zeros(0, np.int64)
        )
        self.labels = {
            "firm": pa.DictionaryArray.from_arrays(
                _codes(np.arange(self.size)), pa.array(firm_names, type=pa.string())
            ),
            "sector": pa.DictionaryArray.from_arrays(
                _codes(sector_code), pa.array([s.name for s in self.sectors], type=pa.string())
            ),
            "region": pa.DictionaryArray.from_arrays(
                _codes(region_code), pa.array(regions, type=pa.string())
            ),
        }
        """Label columns, built once (dictionary arrays)."""
        self.leading = {c.name: _constant_array(c, self.size) for c in leading}
        """Constant leading columns, built once."""
        self.columns: list[str] | None = None
        """The value columns, in order, fixed at the first table (None before it)."""
        self.first_step: int | None = None

    def account_columns(self, sector) -> dict[str, np.ndarray]:
        """``alive``, ``cash``, ``debt`` and the income fields of a sector with accounts."""
        if not sector.has_accounts:
            return {}
        firms = self.model.firms
        rows = sector.rows
        columns = {
            "alive": firms.alive[rows].astype(float),
            "cash": firms.cash[rows],
            "debt": firms.debt[rows],
        }
        for name in INCOME_FIELDS:
            columns[name] = getattr(firms, name)[rows]
        return columns

    def table(self, step: int, states: Sequence[tuple[str, dict[str, np.ndarray]]]) -> pa.Table:
        """This step's rows.

        Args:
            step: the step recorded.
            states: per sector, in order: who wrote its ``firm_state`` (for messages) and
                its checked columns (float64, one value per member).

        Raises:
            StepGuardError: a ``firm_state`` column not returned at the first step.
            ValueError: an account column is infinite (a bug: the books check them).
        """
        blocks = [
            {**self.account_columns(sector), **state}
            for sector, (_, state) in zip(self.sectors, states, strict=True)
        ]
        if self.columns is None:
            self.columns = list(dict.fromkeys(name for block in blocks for name in block))
            self.first_step = step
        known = set(self.columns)
        for (who, _), block in zip(states, blocks, strict=True):
            new = [name for name in block if name not in known]
            if new:
                raise StepGuardError(
                    f"{who}: column {new[0]!r} first returned at step {step}; firm_state must "
                    f"return the same columns every step (firms.parquet's columns were fixed "
                    f"at step {self.first_step})"
                )
        arrays: dict[str, pa.Array] = dict(self.leading)
        arrays["step"] = pa.repeat(pa.scalar(step, type=pa.int64()), self.size)
        arrays.update(self.labels)
        for name in self.columns:
            values = np.full(self.size, np.nan)
            for index, block in enumerate(blocks):
                if name in block:
                    values[self.offsets[index] : self.offsets[index + 1]] = block[name]
            if np.isinf(values).any():
                raise ValueError(f"firms.{name}: infinite value (a bug: ratios must be null)")
            arrays[name] = pa.array(values, from_pandas=True)  # NaN is null
        return pa.table(arrays)


class FirmWriteError(OSError):
    """The file system refused firm-level rows (``errno``, ``strerror``, ``filename``)."""


@contextmanager
def _refused_as_firm_write_error(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        raise FirmWriteError(error.errno, reason, str(path)) from None


class FirmStream:
    """A Parquet file taking one table per step, each as one row group.

    The file is opened at the first table (its schema is that table's) and complete once
    `close` has run; until then it has no footer and cannot be read.

    Args:
        path: the file to write (replaced if it exists).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows = 0
        """Rows written so far."""
        self.row_groups = 0
        """Row groups (steps) written so far."""
        self._writer: pq.ParquetWriter | None = None
        self.closed = False

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as one row group.

        Raises:
            FirmWriteError: the file system refused (full disk, ...).
        """
        if self.closed:
            raise RuntimeError(f"{self.path}: the firm-level stream is closed")
        with _refused_as_firm_write_error(self.path):
            if self._writer is None:
                self._writer = open_writer(self.path, table.schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows
        self.row_groups += 1

    def close(self) -> None:
        """Finish the file (write its footer). Idempotent."""
        writer, self._writer = self._writer, None
        self.closed = True
        if writer is not None:
            with _refused_as_firm_write_error(self.path):
                writer.close()

    def abort(self) -> None:
        """Close and delete the file (a failed run leaves nothing)."""
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)


class FirmOutput:
    """A model's firm-level output: rows built each step and streamed, none kept.

    Rows go to the caller's file (`stream_to`, as `marketsim.runner` does) or, without one,
    to a spool of temporary segment files (removed with this object) that `frame` reads
    back: a model stepped by hand still gives ``firms`` in `Recorder.tables`.

    Args:
        model: the model recorded.
    """

    def __init__(self, model: SupplyChainModel):
        self.model = model
        self.rows: FirmRows | None = None
        """Builds a step's rows; holds no earlier step's rows."""
        self.stream: FirmStream | None = None
        """The file this step's rows go to (a caller's, or the current spool segment)."""
        self.streamed = False
        """Rows go to a caller's file (`stream_to`)."""
        self._spool: Path | None = None
        self._segments: list[Path] = []
        """Finished spool segments, in order (paths only)."""

    def stream_to(self, path: str | Path, leading: Sequence[Constant] | None = None) -> None:
        """Append every following step's rows to the Parquet file ``path``.

        Call before the first step; `finish` completes the file.

        Args:
            path: the file to write (replaced).
            leading: the constant leading columns (default: ``replication``).
        """
        if self.stream is not None or self._spool is not None:
            raise RuntimeError("stream_to: firm rows are already being recorded")
        leading = leading or replication_columns(self.model.replication)
        self.rows = FirmRows(self.model, leading)
        self.stream = FirmStream(path)
        self.streamed = True

    def write(self, step: int, states: Sequence[tuple[str, dict[str, np.ndarray]]]) -> None:
        """Build this step's rows (`FirmRows.table`) and append them as one row group."""
        if self.stream is None:
            self._open_segment()
        self.stream.write(self.rows.table(step, states))

    def finish(self) -> None:
        """Complete the current file (idempotent); a later step starts a new spool segment."""
        stream = self.stream
        if stream is None or stream.closed:
            return
        stream.close()
        if not self.streamed:
            if stream.row_groups:
                self._segments.append(stream.path)
            self.stream = None

    def abort(self) -> None:
        """Close and delete the current file (a failed run leaves nothing)."""
        if self.stream is not None:
            self.stream.abort()

    def frame(self, replication: int) -> pd.DataFrame:
        """Every spooled row as a DataFrame, ``replication`` in its column."""
        self.finish()
        frame = read_frame(self._segments)
        if len(frame):
            frame["replication"] = np.int64(replication)
        return frame

    def _open_segment(self) -> None:
        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix="marketsim-firms-"))
            weakref.finalize(self, shutil.rmtree, self._spool, ignore_errors=True)
            self.rows = FirmRows(self.model, replication_columns(self.model.replication))
        self.stream = FirmStream(self._spool / f"segment-{len(self._segments):06d}.parquet")


def open_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer for firm rows: snappy, no stored Arrow schema (plain strings)."""
    return pq.ParquetWriter(path, schema, compression=COMPRESSION, store_schema=False)


def merge_parts(parts: Sequence[Path], destination: Path) -> None:
    """Join Parquet files into ``destination``, in order, one row group per row group read.

    Memory holds one row group at a time. Files whose columns differ are joined on the union
    of their columns (in order of first appearance; missing ones null). The parts are left in
    place.
    """
    schemas = [pq.read_schema(part) for part in parts]
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for field in schema:
            fields.setdefault(field.name, field)
    dictionary = [name for name in LABEL_COLUMNS if name in fields]
    target = pa.schema(
        [
            pa.field(name, pa.dictionary(pa.int32(), pa.string())) if name in dictionary else field
            for name, field in fields.items()
        ]
    )
    writer = open_writer(destination, target)
    try:
        for part in parts:
            file = pq.ParquetFile(part, read_dictionary=dictionary)
            for index in range(file.num_row_groups):
                table = _conform(file.read_row_group(index), target)
                writer.write_table(table, row_group_size=max(table.num_rows, 1))
    finally:
        writer.close()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order (missing ones null)."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def read_frame(paths: Sequence[Path]) -> pd.DataFrame:
    """The rows of ``paths`` (complete firm-level files) as one DataFrame, in order."""
    tables = [pq.read_table(path) for path in paths]
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="default").to_pandas()
