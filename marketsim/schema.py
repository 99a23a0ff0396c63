"""Schemas of experiment tables: every key with its type, unit, default, range and source.

Built-in sectors, mechanisms and plugins describe their configuration tables with `Param`
and `TableSchema`; `marketsim.config` validates experiment files against them and
`docs/experiments.md` documents them. A default's ``source`` names the line of
``docs/calibration.md`` it comes from, or says ``"assumption"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

REQUIRED = object()
"""Sentinel default: the key must be given in the experiment file."""

_KIND_NAMES = {
    float: "a number",
    int: "an integer",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a table",
}
_PLURAL_NAMES = {
    float: "numbers",
    int: "integers",
    bool: "booleans",
    str: "strings",
    list: "lists",
    dict: "tables",
}


def format_bound(bound: float) -> str:
    """A bound as written in docs and errors: a float as ``%g``, an int exactly (from a
    million on with ``_`` between thousands, as TOML may write it: ``1_000_000``)."""
    if isinstance(bound, int) and not isinstance(bound, bool):
        return f"{bound:_}" if abs(bound) >= 10**6 else str(bound)
    return f"{bound:g}"


@dataclass(frozen=True)
class Param:
    """One key of an experiment table.

    Args:
        kind: Python type of the value: float, int, bool, str, list or dict. An int is
            accepted where a float is expected; a bool is never accepted as a number.
        default: value used when the key is absent; ``REQUIRED`` if it must be given.
        doc: what the key means, for researchers.
        unit: unit of the value (``"USD per unit"``, ``"months"``), empty if none.
        gt: the value must be strictly greater than this.
        ge: the value must be greater than or equal to this.
        le: the value must be less than or equal to this.
        lt: the value must be strictly less than this.
        choices: allowed values, if the key is an enumeration.
        item_kind: type of each item when ``kind`` is list.
        source: where the default comes from: a docs/calibration.md line or ``"assumption"``.
    """

    kind: type
    default: Any = REQUIRED
    doc: str = ""
    unit: str = ""
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    item_kind: type | None = None
    source: str = ""

    @property
    def required(self) -> bool:
        """True when the key has no default."""
        return self.default is REQUIRED

    def kind_name(self) -> str:
        """Human name of the expected type, e.g. ``"a number"``."""
        if self.kind is list and self.item_kind is not None:
            return f"a list of {_PLURAL_NAMES.get(self.item_kind, self.item_kind.__name__)}"
        return _KIND_NAMES.get(self.kind, self.kind.__name__)

    def range_text(self) -> str:
        """The valid range as text, e.g. ``"> 0 and <= 1"``, empty if unbounded."""
        parts = []
        for op, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if bound is not None:
                parts.append(f"{op} {format_bound(bound)}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        return " and ".join(parts)


@dataclass(frozen=True)
class TableSchema:
    """The keys of one experiment table.

    Args:
        params: key name to `Param`.
        doc: what the table configures.
        open_keys: if true, keys not in ``params`` are accepted as-is (for free-form tables).
    """

    params: dict[str, Param] = field(default_factory=dict)
    doc: str = ""
    open_keys: bool = False

    def defaults(self) -> dict[str, Any]:
        """The defaults of every optional key."""
        return {k: p.default for k, p in self.params.items() if not p.required}

    def merged(self, other: TableSchema) -> TableSchema:
        """A schema with the keys of both (``other`` wins on clashes)."""
        return TableSchema(
            params={**self.params, **other.params},
            doc=self.doc or other.doc,
            open_keys=self.open_keys or other.open_keys,
        )


@dataclass
class Registry:
    """Every schema an experiment file is validated against, gathered from the plugins.

    Args:
        tables: top-level tables (``experiment``, ``graph``, ``output`` and plugin tables)
            by name.
        sector_tables: schema of ``[agents.<sector>]`` by sector name.
        market_goods: good name (``[markets.<good>]``) to its default mechanism name.
        mechanism_tables: schema of a mechanism's parameters by mechanism name.
    """

    tables: dict[str, TableSchema] = field(default_factory=dict)
    sector_tables: dict[str, TableSchema] = field(default_factory=dict)
    market_goods: dict[str, str] = field(default_factory=dict)
    mechanism_tables: dict[str, TableSchema] = field(default_factory=dict)
