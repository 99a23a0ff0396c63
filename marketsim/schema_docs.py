"""Documentation of every experiment key, generated from the registered schemas.

``python -m marketsim.schema_docs > docs/experiments.md`` regenerates the reference; a
test fails when the file in the repository differs from what the schemas say, so the
documentation cannot drift from the code. Its last section, "Bounds", states every limit
an experiment is checked against (file, nesting, integers, names, memory, and the range of
every number, grouped by unit with the reason for each), from the constants the checks use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketsim import limits
from marketsim.experiment import MAX_NAME_LENGTH
from marketsim.experiment import collect_components
from marketsim.plugins import plugin_manager
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.schema import format_bound

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
    parts.append(bounds_section(documented_schemas()))
    return "\n".join(parts)


UNIT_BOUND_REASONS = {
    "": "seeds: any 64-bit integer (`graph.seed` up to 10^18)",
    "steps": "100,000 months (8,333 years); each step of each replication adds about 12 KB "
    "of results, which the memory budget counts",
    "step": "within the longest run (100,000 steps)",
    "runs": "10,000 replications; the memory budget (16 KiB per step and replication) "
    "usually binds first",
    "rounds": "100 re-routing rounds per clearing",
    "edges": "a buyer links to at most 1,000 sellers of a good; the memory budget bounds "
    "the total number of edges",
    "firms": "1,000,000 per sector; the memory budget bounds the total (16 KiB a firm: "
    "about 500,000 firms in 8 GiB)",
    "funds": "1,000,000, like a firm sector",
    "segments": "10,000,000 end-market segments; the memory budget bounds the total "
    "(2 KiB a segment: about 4 million in 8 GiB)",
    "share": "a share of a whole: 1; leverage (`max_debt_to_assets`): 5; `queue_weight`: 2; "
    "how far purchases or plans may run ahead of need (`compute_buffer`, "
    "`strand_tolerance`): 10; multipliers written as shares (markups, scarcity premia, "
    "`expansion_response`): 100, a price 101 times cost; growth and expansion per month: "
    "1, doubling a month, which compounded over the longest lead time (2^240, about 2e72) "
    "is still finite",
    "share per month": "all of the funds' cash each month",
    "ratio": "exponents applied to a ratio (sensitivities, elasticities): 10, so a ratio "
    "anywhere in 1e-30..1e30 raised to them stays finite; `pue`: 10; `demand_optimism`: "
    "100; Brock-Hommes: gross return R at most 2 (100% a period) and trend coefficient g "
    "at most 4, twice the largest R (beyond g = 2R the fundamental steady state is "
    "unstable for every intensity of choice)",
    "log": "log standard deviations: e^2 to e^3 (7 to 20) times the mean at one standard deviation",
    "per year": "rates: 100% a year",
    "per month": "`software_productivity`: efficiency doubling a month at full spend; "
    "`adoption_speed_per_month`: 10, the S-curve passes within a month",
    "months": "lead times: 60 to 240 months, beyond any documented lead; lives and debt "
    "terms: 1,200 months (100 years); the cash buffer: 120 months; the adoption midpoint: "
    "within 100,000 months either side of the start (the longest run)",
    "years": "100 years of EBITDA",
    "profit units": "Brock-Hommes cost C within 10 either side of 0",
    "1 / profit": "intensity of choice: with C within 10 of 0 the logit sees at most 10^4, "
    "handled by a numerically safe logistic",
    "1 / log USD": "a logit coefficient: at 1,000 the cheapest seller takes all demand long before",
    "USD": "1e15 per firm, about ten times world GDP: sums over a million firms stay far "
    "inside the float range",
    "USD per month": "1e14 a month, more than world GDP",
    "USD per unit": "1e9 per unit, more than any one machine costs",
    "USD per accelerator": "1e9 per accelerator, as for any unit",
    "USD per (unit/month)": "1e9 per unit of monthly capacity, as for any unit",
    "USD per MW": "1e10 per MW, about a thousand times today's build costs",
    "USD per MW per month": "1e7 per MW a month, about the cost of building the MW again "
    "every month",
    "USD per MWh": "1e5 per MWh, twenty times the highest wholesale price caps (ERCOT's $5,000)",
    "USD per accelerator-hour": "1e6 per accelerator-hour, about a million times today's "
    "rental price",
    "USD per million tokens": "1e6 per million tokens, about a million times today's API prices",
    "MW": "1e7 MW (10 TW) per firm, more than the whole world's generating capacity (about 9 TW)",
    "accelerators": "1e9 per firm, hundreds of times the world's installed data-center "
    "accelerators (about 4 million in 2025)",
    "accelerators per month": "1e9 a month per firm, as for the installed fleet",
    "network kits per month": "1e9 a month per firm, as for accelerators",
    "kW": "1,000 kW (1 MW) per accelerator",
    "kits per accelerator": "1,000 network kits per accelerator",
    "million tokens per accelerator-hour": "1e6 (1e12 tokens an hour), 400,000 times today's 2.5",
    "million tokens per month": "1e15 per segment, about 500,000 times a baseline segment's demand",
}
"""Why each unit's numbers stop where they do (docs/experiments.md, Bounds). Every bound
keeps products of the largest stocks, prices and quantities, summed over a million firms
and 100,000 steps, far inside the float range (1.8e308), so no value in range reaches an
overflow; a schema using a unit not listed here cannot be documented until it is."""


def _size_example() -> str:
    """The memory estimate of the size a large study needs, as documented."""
    size = limits.SizeEstimate(
        firms=60_000, segments=1_000_000, edges=10_000_000, step_records=120, firm_rows=0
    )
    return size.describe()


def bounds_section(schemas: list[TableSchema]) -> str:
    """The "Bounds" section: every limit an experiment is checked against, and why."""
    budget = limits.MEMORY_BUDGET_BYTES / 2**30
    lines = [
        "## Bounds",
        "",
        "Everything below is checked when an experiment is loaded, before anything is built "
        "or written; a value outside is an error naming the file, the key and the limit.",
        "",
        "| what | limit | why |",
        "|---|---|---|",
        f"| experiment file (and each `extends` base) | a regular file of at most "
        f"{limits.MAX_FILE_BYTES:,} bytes | a FIFO, device or directory is refused without "
        "being opened (opening a FIFO waits for a writer forever); a file this size parses "
        "in about 3 s and 130 MB, the baseline is 8 KB |",
        f"| nesting | tables and arrays at most {limits.MAX_NESTING} deep, in a file or a "
        "`--set` value (`[agents.utility]` is 2 deep) | experiments nest 3 deep; the cap "
        "keeps every walk over a value far from Python's recursion limit |",
        "| integers | -2^63 to 2^63-1 | TOML integers are 64-bit; larger ones would "
        "overflow when the model converts them |",
        "| keys and strings | no NUL character | a NUL cannot be part of a name or a path |",
        f"| `experiment.name` | at most {MAX_NAME_LENGTH} characters: letters, digits, "
        "`.`, `_`, `-` | it names the results directory; file systems cap a name at 255 "
        "bytes |",
        f"| the whole experiment | an estimated {budget:g} GiB of memory | below |",
        "",
        f"**Memory.** An experiment must fit in {budget:g} GiB, estimated as "
        f"{_mib(limits.BYTES_BASE)} + {_kib(limits.BYTES_PER_FIRM)} per firm + "
        f"{_kib(limits.BYTES_PER_SEGMENT)} per end-market segment + "
        f"{limits.BYTES_PER_EDGE} B per supply-graph edge + "
        f"{_kib(limits.BYTES_PER_STEP_RECORD)} per step and replication (+ "
        f"{_kib(limits.BYTES_PER_FIRM_ROW)} per member with "
        "`[output] firm_level = true`: the firm-level rows stream to disk a step at a time, "
        "so a run holds one step's rows, whatever the steps and replications). Edges are "
        "counted at most: each buyer links to "
        "`buyer_degree` sellers of each good it buys (all of them if fewer), and each seller "
        "to at most one more buyer. The costs were measured as the peak resident memory of "
        "short runs of the baseline, raising one count at a time (Python 3.11): "
        "about 150 MB for the interpreter and libraries; 5.7 KB per data-center firm with "
        "60-month vintages (its books, state arrays, graph node and Mesa agent; up to twice "
        "that with 240-month vintages); 170 B per segment (350 B more once its Mesa agent "
        "is made) and 82 B per edge, 100 B with the markets' edges sorted by seller that the "
        "posted-price kernel keeps (both measured on experiments/full_resolution.toml, "
        "varying the buyers and the edges); 11-12 KB per "
        "step and replication of results; 620 B per firm-level row. Each is rounded up. For "
        f"example {_size_example()}. The error names the key that costs most (`agents`, or "
        "`experiment` for steps x replications).",
        "",
        "**Numbers.** Every number of the built-in tables has a finite range (the `valid` "
        "column above); by unit, the largest value allowed and why:",
        "",
        "| unit | largest | why |",
        "|---|---|---|",
    ]
    by_unit: dict[str, set] = {}
    for schema in schemas:
        for param in schema.params.values():
            upper = param.le if param.le is not None else param.lt
            if param.kind in (int, float) and upper is not None:
                by_unit.setdefault(param.unit, set()).add(upper)
    for unit, uppers in sorted(by_unit.items()):
        if unit not in UNIT_BOUND_REASONS:
            raise KeyError(f"add a reason for unit {unit!r} to UNIT_BOUND_REASONS")
        largest = ", ".join(format_bound(b) for b in sorted(uppers))
        cells = [unit or "(none)", largest, UNIT_BOUND_REASONS[unit]]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [
        "",
        "A plugin's tables need not bound their numbers, but every bound must be finite and "
        "every default must pass the table's own checks (type, finite, range, choices): this "
        "is checked when the plugin registers the table.",
        "",
    ]
    return "\n".join(lines)


def _kib(count: int) -> str:
    return f"{count // 2**10} KiB" if count >= 2**10 else f"{count} B"


def _mib(count: int) -> str:
    return f"{count // 2**20} MiB"


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
