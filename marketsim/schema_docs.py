"""Documentation of every experiment key, generated from the registered schemas.

``python -m marketsim.schema_docs > docs/experiments.md`` regenerates the reference; a
test fails when the file in the repository differs from what the schemas say, so the
documentation cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketsim.experiment import collect_components
from marketsim.plugins import plugin_manager
from marketsim.schema import Param
from marketsim.schema import TableSchema

HEADER = """\
# Experiment files: every key

Generated from the schemas the built-in plugin registers (`python -m marketsim.schema_docs >
docs/experiments.md`); a test keeps this file in step with the code. Plugins add their own
tables, validated the same way.

An experiment is a TOML file. Top-level keys: `extends` (a file, relative to this one, that
this file is deep-merged onto: tables merge key by key, any other value replaces), `plugins`
(list of `.py` files relative to the file that names them, or importable module names), and
the tables below. `--set dotted.key=value` overrides any key with a TOML value (a value
that is not valid TOML is taken as a string). Unknown keys, wrong types and values out of
range are errors that name the file and the key. Money is in US dollars; a step is a month.
Sectors left out of `[agents]` are not in the economy (a sector whose inputs nobody sells is
an error); `[markets.<good>]` tables exist for every good a present sector sells.

"""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def parameter_table(schema: TableSchema) -> str:
    """A Markdown table of a schema's keys: type, unit, default, valid range, meaning, source."""
    lines = [
        "| key | type | unit | default | valid | meaning | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, param in schema.params.items():
        lines.append(_row(name, param))
    return "\n".join(lines) + "\n"


def _row(name: str, param: Param) -> str:
    default = "required" if param.required else f"`{_value(param.default)}`"
    cells = [
        f"`{name}`",
        param.kind_name(),
        param.unit or "-",
        default,
        param.range_text() or "-",
        param.doc or "-",
        param.source or "-",
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render() -> str:
    """The whole reference as Markdown."""
    components = collect_components(plugin_manager())
    parts = [HEADER]
    for name, schema in components.tables.items():
        parts.append(f"## `[{name}]`\n\n{schema.doc}\n\n{parameter_table(schema)}")
    for name, cls in components.sectors.items():
        where = "" if cls.has_accounts else " (not firms: they pay from outside the economy)"
        trade = []
        if cls.sells:
            trade.append(f"sells `{cls.sells}`")
        if cls.buys:
            trade.append("buys " + ", ".join(f"`{g}`" for g in cls.buys))
        parts.append(
            f"## `[agents.{name}]`{where}\n\n{cls.doc} It {' and '.join(trade)}.\n\n"
            f"{parameter_table(cls.schema)}"
        )
    goods = ", ".join(
        f"`{g.name}` ({g.unit}; price in {g.price_unit}; default `{g.default_mechanism}`)"
        for g in components.goods.values()
    )
    parts.append(
        f"## `[markets.<good>]`\n\nGoods: {goods}. Each market table takes `mechanism` (one of "
        + ", ".join(f"`{m}`" for m in components.mechanisms)
        + ") and that mechanism's parameters.\n"
    )
    for name, mechanism in components.mechanisms.items():
        table = (
            parameter_table(mechanism.schema) if mechanism.schema.params else ("No parameters.\n")
        )
        parts.append(f"### mechanism `{name}`\n\n{mechanism.doc}\n\n{table}")
    return "\n".join(parts)


TABLE_HEADER = "| key | type | unit | default | valid | meaning | source |"


def documented_schemas() -> list[TableSchema]:
    """Every built-in schema with parameters: top-level tables, sectors, mechanisms."""
    components = collect_components(plugin_manager())
    schemas = [*components.tables.values(), *(c.schema for c in components.sectors.values())]
    return schemas + [m.schema for m in components.mechanisms.values() if m.schema.params]


def update_parameter_tables(text: str, schemas: list[TableSchema]) -> str:
    """``text`` (Markdown) with every parameter table regenerated from its schema.

    A table is matched to the schema sharing most of its keys (at least half of them), so
    docs/model.md can keep tables beside its prose and stay current when a schema changes.
    """
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        if lines[index] != TABLE_HEADER:
            out.append(lines[index])
            index += 1
            continue
        end = index + 2
        while end < len(lines) and lines[end].startswith("| `"):
            end += 1
        rows = lines[index + 2 : end]
        keys = {row.split("`")[1] for row in rows}

        best = max(schemas, key=lambda schema: _likeness(schema, rows, keys), default=None)
        if best is not None and 2 * len(keys & set(best.params)) >= len(keys):
            out.extend(parameter_table(best).rstrip("\n").split("\n"))
        else:
            out.extend(lines[index:end])
        index = end
    return "\n".join(out)


def _likeness(schema: TableSchema, rows: list[str], keys: set[str]) -> tuple[int, int]:
    """How well a documented table matches ``schema``: shared keys, then identical rows."""
    same_rows = set(rows) & set(parameter_table(schema).split("\n"))
    return len(keys & set(schema.params)), len(same_rows)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"]:
        for name in sys.argv[2:]:
            path = Path(name)
            new = update_parameter_tables(path.read_text(encoding="utf-8"), documented_schemas())
            path.write_text(new, encoding="utf-8")
    else:
        print(render(), end="")
