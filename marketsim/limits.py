"""What the model can hold: limits on experiment files, values and size.

Every experiment is held to these before anything is built or written (`marketsim.config`
reads and validates with them; `marketsim.experiment` checks the size):

- files: regular files only, at most `MAX_FILE_BYTES` (a FIFO or device is never opened);
- values: tables and arrays nested at most `MAX_NESTING` deep, integers within 64 bits,
  no NUL in a key or string (`check_shape`, an iterative walk safe on any input);
- size: `estimate_size` of the whole experiment, in bytes, within `MEMORY_BUDGET_BYTES`.

docs/experiments.md ("Bounds", generated from these constants) states each limit and why.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import NoReturn

from marketsim.errors import ExperimentError

MAX_FILE_BYTES = 4 * 2**20
"""Largest experiment file read (bytes). A file this size parses in about 3 s and 130 MB;
the baseline is 8 KB, so only a runaway generator or the wrong file comes near it."""

MAX_NESTING = 32
"""Deepest nesting of tables and arrays (``[agents.utility]`` is 2 deep). Experiments nest
at most 3 deep; the cap keeps every walk over a value far from Python's recursion limit."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""TOML integers are 64-bit (the spec); larger ones are refused rather than overflowing."""

_NON_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def non_regular_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, if not a regular file ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    return next((kind for test, kind in _NON_REGULAR if test(mode)), "not a regular file")


def read_regular_file(name: str) -> bytes:
    """The bytes of ``name``, which must be a regular file of at most `MAX_FILE_BYTES`.

    The file is stat-ed before it is opened, so a FIFO or a device is refused without
    being opened (opening a FIFO would wait for a writer forever); it is opened
    non-blocking and checked again, in case it was swapped in between.
    """
    try:
        kind = non_regular_kind(os.stat(name).st_mode)
        if kind:
            raise ExperimentError(f"expected a regular file (a TOML file), got {kind}", name)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        with os.fdopen(os.open(name, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            kind = non_regular_kind(info.st_mode)
            if kind:
                raise ExperimentError(f"expected a regular file (a TOML file), got {kind}", name)
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ExperimentError("file not found", source=name) from None
    except OSError as exc:
        raise ExperimentError(f"cannot read file: {exc.strerror or exc}", source=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExperimentError(
            f"expected an experiment file of at most {MAX_FILE_BYTES:,} bytes, got "
            f"{max(info.st_size, len(data)):,} bytes",
            source=name,
        )
    return data


def too_deep_message() -> str:
    """The message for values nested deeper than `MAX_NESTING`."""
    return f"expected tables and arrays nested at most {MAX_NESTING} deep, got deeper nesting"


def check_shape(table: dict, fail: Callable[[str, str], NoReturn]) -> None:
    """Checks what every experiment value must be, before anything walks it recursively.

    Tables and arrays nest at most `MAX_NESTING` deep (the document itself not counted),
    integers fit in 64 bits, and no key or string holds a NUL character (it cannot be part
    of a name or a path). The walk is iterative, so input of any depth is safe to check.

    Args:
        table: a parsed TOML document.
        fail: called as ``fail(dotted_path, message)`` on the first problem; must raise.
    """
    stack: list[tuple[Any, str, int]] = [(table, "", -1)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            if level > MAX_NESTING:
                fail(where, too_deep_message())
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                if "\0" in key:
                    fail(where, f"expected keys without NUL characters, got {show_value(key)}")
                stack.append((child, f"{where}.{key}" if where else key, level))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}[{index}]", level)
                for index, child in reversed(list(enumerate(item)))
            )
        elif isinstance(item, str) and "\0" in item:
            fail(where, f"expected text without NUL characters, got {show_value(item)}")
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:  # bools fit
            shown = show_value(item)
            fail(where, f"expected an integer from -2^63 to 2^63-1 (64 bits), got {shown}")


def show_value(value: Any, limit: int = 60) -> str:
    """A short one-line TOML-like rendering of a value for error messages (at most ``limit``
    characters, whatever the size or depth of the value)."""
    text = _render(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(value: Any, budget: int) -> str:
    """``value`` as TOML-like text, stopping once about ``budget`` characters are written.

    Each nested array is given only what is left of the budget, so a value of any size or
    depth is rendered in a bounded number of calls.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        text = "["
        for item in value:
            if len(text) >= budget:
                break
            text += ("" if text == "[" else ", ") + _render(item, budget - len(text))
        return text + "]"
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"an integer of {_digits(value)} digits"
    if isinstance(value, str):
        return repr(value[:budget])
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def _digits(value: int) -> str:
    """How many decimal digits ``value`` has (Python will not print one of over 4300)."""
    try:
        return str(len(str(abs(value))))
    except ValueError:
        return "more than 4300"


MEMORY_BUDGET_BYTES = 8 * 2**30
"""The memory an experiment may need (8 GiB), held against `SizeEstimate.bytes`."""

# What one unit of an experiment costs in memory: the peak resident memory of short runs
# of the baseline, raising one count at a time (docs/experiments.md, Bounds), rounded up.
BYTES_BASE = 256 * 2**20
"""The interpreter, numpy, numba, pandas and the model's fixed parts (150 MB measured)."""
BYTES_PER_FIRM = 16 * 2**10
"""A firm: its books, state arrays, graph node and Mesa agent (5.7 KB measured for a data
center with 60-month vintages; its arrays grow to about twice that with 240 months)."""
BYTES_PER_SEGMENT = 2**10
"""An end-market segment: state arrays and graph node (170 B measured at a million segments),
and its Mesa agent if ``model.agents`` is read (about 350 B; a run never makes it)."""
BYTES_PER_EDGE = 128
"""A supply-graph edge: the drawn arrays and its market's CSR entry and per-edge buffers (82 B
measured between 10.6M and 20.7M edges of full_resolution.toml; no networkx graph is built),
plus its entry in the market's edges sorted by seller that the posted-price kernel keeps (two
int64: the peak of a full_resolution run rose by 18 B per edge, 1.46 to 1.64 GB)."""
BYTES_PER_STEP_RECORD = 16 * 2**10
"""One step of one replication in the results tables (11-12 KB measured)."""
BYTES_PER_FIRM_ROW = 2**10
"""One row of firms.parquet while it is assembled (620 B measured). The rows stream to disk a
step at a time (`marketsim.firm_output`), so a run holds one step's rows."""


@dataclass(frozen=True)
class SizeEstimate:
    """How big an experiment is, and the memory it is expected to need.

    Attributes:
        firms: members of sectors with books (firms and funds).
        segments: members of sectors without books (end-market segments).
        edges: supply-graph edges, at most: each buyer links to ``buyer_degree`` sellers of
            each good it buys (all of them if fewer), and each seller to at most one more.
        step_records: steps times replications, each one row group of the results tables.
        firm_rows: rows of firms.parquet held in memory at once, 0 unless ``[output]
            firm_level`` is true: one step's (every member), since each step's rows are
            written out as one row group before the next step runs.
    """

    firms: int
    segments: int
    edges: int
    step_records: int
    firm_rows: int

    def bytes_by_key(self) -> dict[str, int]:
        """Memory (bytes) attributed to the key that sets it: agents, experiment, output."""
        return {
            "agents": self.firms * BYTES_PER_FIRM
            + self.segments * BYTES_PER_SEGMENT
            + self.edges * BYTES_PER_EDGE,
            "experiment": self.step_records * BYTES_PER_STEP_RECORD,
            "output.firm_level": self.firm_rows * BYTES_PER_FIRM_ROW,
        }

    @property
    def bytes(self) -> int:
        """Expected peak memory of the run (bytes)."""
        return BYTES_BASE + sum(self.bytes_by_key().values())

    def describe(self) -> str:
        """The counts and the memory, e.g. ``"1,000 firms, ... : about 9.3 GiB"``."""
        parts = [
            f"{self.firms:,} firms",
            f"{self.segments:,} segments",
            f"{self.edges:,} supply-graph edges",
            f"{self.step_records:,} steps x replications",
        ]
        if self.firm_rows:
            parts.append(f"{self.firm_rows:,} firm-level rows a step")
        return f"{', '.join(parts)}: about {self.bytes / 2**30:.1f} GiB"


def estimate_size(
    config: dict[str, Any], sectors: Mapping[str, Any], edges: int | None = None
) -> SizeEstimate:
    """The size of a resolved experiment.

    Args:
        config: the resolved experiment (`validate`).
        sectors: sector name to its class (anything with ``has_accounts``, ``sells`` and
            ``buys``), for at least the sectors under ``agents``.
        edges: the supply graph's edges when known (read from ``[graph] file``); by default
            the most the ``[graph]`` rules can draw.

    Returns:
        Its `SizeEstimate`; compare ``.bytes`` with `MEMORY_BUDGET_BYTES`.
    """
    counts = {name: int(table.get("count", 0)) for name, table in config["agents"].items()}
    firms = sum(n for name, n in counts.items() if sectors[name].has_accounts)
    segments = sum(counts.values()) - firms
    degree = int(config["graph"]["buyer_degree"])
    degree_by_good = config["graph"].get("degree_by_good", {})
    sellers: dict[str, int] = {}
    for name, count in counts.items():
        if sectors[name].sells is not None:
            sellers[sectors[name].sells] = sellers.get(sectors[name].sells, 0) + count
    drawn = 0
    for name, count in counts.items():
        for good in sectors[name].buys:
            drawn += count * min(int(degree_by_good.get(good, degree)), sellers.get(good, 0))
    drawn += sum(n for good, n in sellers.items() if any(good in sectors[s].buys for s in counts))
    edges = edges if edges is not None else drawn
    runs = int(config["experiment"]["steps"]) * int(config["experiment"]["replications"])
    firm_level = bool(config.get("output", {}).get("firm_level", False))
    return SizeEstimate(firms, segments, edges, runs, (firms + segments) * firm_level)
