"""Loading and validating experiment files.

An experiment is a TOML file, optionally built on another one with ``extends``, adjusted by
``--set key=value`` overrides and checked against the schemas of a `Registry`::

    raw, origins = read_experiment_file("experiments/baseline.toml")
    raw = apply_overrides(raw, origins, ["experiment.seed=7"])
    resolved = validate(raw, registry, origins, "experiments/baseline.toml")

``origins`` maps every dotted leaf key (``"agents.utility.capacity_mw"``) to the file, or
``"--set"``, it came from, so an `ExperimentError` names where the bad value was written.
The resolved experiment has every default filled in; `experiment_sha256` identifies it and
`dump_toml` writes it back as TOML.

What the model can hold is bounded before anything is built: only regular files of at most
`MAX_FILE_BYTES` are read (a FIFO or device is never opened), tables and arrays nest at most
`MAX_NESTING` deep, integers fit in 64 bits, no string holds a NUL, every built-in number has
a finite range in its schema, and `estimate_size` checks the whole experiment against
`MEMORY_BUDGET_BYTES`. docs/experiments.md ("Bounds") states each limit and its reason.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import operator
import os
import re
import tomllib
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import NoReturn

from marketsim.errors import ExperimentError
from marketsim.limits import check_shape
from marketsim.limits import non_regular_kind
from marketsim.limits import read_regular_file
from marketsim.limits import show_value
from marketsim.limits import too_deep_message
from marketsim.schema import Param
from marketsim.schema import Registry
from marketsim.schema import TableSchema
from marketsim.schema import format_bound

SET_SOURCE = "--set"
"""The source named in errors about values given as overrides."""

_BUILTIN_TOP = ("plugins", "agents", "markets")
_PLUGINS_PARAM = Param(list, default=[], item_kind=str)
_TOML_POSITION = re.compile(
    r"(?P<what>.*) \((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)"
)
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {code: f"\\u{code:04X}" for code in [*range(0x20), 0x7F]} | {
    ord(char): "\\" + name for char, name in zip('"\\\b\t\n\f\r', '"\\btnfr', strict=True)
}


# --- reading files ------------------------------------------------------------------------


def read_experiment_file(path: str | Path) -> tuple[dict, dict]:
    """Reads an experiment file and the files it extends.

    Args:
        path: the TOML file; named in errors as given.

    Returns:
        ``(raw, origins)``: the merged tables (without ``extends``) and, for each dotted leaf
        key path (an empty table counts as a leaf), the file its value came from.

    Raises:
        ExperimentError: the file (or a base) is missing, unreadable, not UTF-8, not valid
            TOML, or ``extends`` forms a cycle.
    """
    return _load(str(path), ())


def _load(name: str, chain: tuple[tuple[str, str], ...]) -> tuple[dict, dict]:
    """Loads one file, then the file it extends, and merges the first onto the second."""
    raw = _parse(name)
    base_ref = raw.pop("extends", None)
    origins = {leaf: name for leaf in _leaf_paths(raw)}
    if base_ref is None:
        return raw, origins
    chain = (*chain, (os.path.realpath(name), name))
    base_name = _base_name(name, base_ref, chain)
    base, base_origins = _load(base_name, chain)
    merged = _deep_merge(base, raw)
    return merged, {p: origins.get(p, base_origins.get(p)) for p in _leaf_paths(merged)}


def _base_name(name: str, base_ref: Any, chain: tuple[tuple[str, str], ...]) -> str:
    """The path of the file ``name`` extends, checked to exist and not to close a cycle."""
    if not isinstance(base_ref, str) or not base_ref.strip():
        what = "an empty string" if isinstance(base_ref, str) else show_value(base_ref)
        raise ExperimentError(
            f"expected a string naming a TOML file (relative to this file), got {what}",
            source=name,
            key="extends",
        )
    base_name = os.path.normpath(os.path.join(os.path.dirname(name), base_ref))
    real = os.path.realpath(base_name)
    seen = [real_path for real_path, _ in chain]
    if real in seen:
        cycle = [shown for _, shown in chain[seen.index(real) :]] + [base_name]
        raise ExperimentError(f"extends cycle: {' -> '.join(cycle)}", source=name, key="extends")
    try:
        kind = non_regular_kind(os.stat(base_name).st_mode)
    except FileNotFoundError:
        raise ExperimentError(
            f"base file not found: {base_name}", source=name, key="extends"
        ) from None
    except OSError as exc:
        raise ExperimentError(
            f"cannot read base file {base_name}: {exc.strerror or exc}", source=name, key="extends"
        ) from None
    if kind:
        raise ExperimentError(
            f"expected a regular file (a TOML file), got {kind}: {base_name}",
            source=name,
            key="extends",
        )
    return base_name


def _parse(name: str) -> dict:
    """Reads and parses one TOML file, turning every failure into an `ExperimentError`."""
    if "\0" in name:
        raise ExperimentError("expected a file name, got one with a NUL character", source=name)
    data = read_regular_file(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExperimentError(f"not UTF-8 text (bad byte at line {line})", source=name) from None
    parsed = _parse_toml(text, source=name)
    check_shape(parsed, lambda path, message: _fail_at(name, path, message))
    return parsed


def _parse_toml(text: str, source: str, key: str | None = None) -> dict:
    """``tomllib.loads(text)``, every failure (syntax, depth, size) an `ExperimentError`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(_toml_error_message(str(exc)), source, key) from None
    except RecursionError:
        raise ExperimentError(too_deep_message(), source, key) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ExperimentError(
            f"invalid TOML: expected 64-bit integers, got a number too long to read "
            f"({_int_text(exc)})",
            source,
            key,
        ) from None


def _int_text(error: ValueError) -> str:
    """What Python said about a number it would not convert, without its advice to coders."""
    return str(error).split(";")[0]


def _fail_at(source: str, path: str, message: str) -> NoReturn:
    """Raises an `ExperimentError` about the key at ``path`` written in ``source``."""
    raise ExperimentError(message, source=source, key=path or None)


def _toml_error_message(message: str) -> str:
    """Rewrites tomllib's ``"What (at line L, column C)"`` as ``"invalid TOML at L, C: what"``."""
    match = _TOML_POSITION.fullmatch(message)
    if not match:
        return f"invalid TOML: {message}"
    where = f"line {match['line']}, column {match['col']}" if match["line"] else "end of file"
    return f"invalid TOML at {where}: {match['what'][:1].lower()}{match['what'][1:]}"


def _leaf_paths(table: dict, prefix: str = "") -> Iterator[str]:
    """The dotted paths of the non-table values and empty tables in ``table``."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, path + ".")
        else:
            yield path


def _deep_merge(base: dict, top: dict) -> dict:
    """``top`` merged onto ``base``: tables merge key by key, other values replace."""
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


# --- overrides ----------------------------------------------------------------------------


def apply_overrides(raw: dict, origins: dict, overrides: Iterable[str]) -> dict:
    """Applies ``dotted.key=value`` overrides, as given with ``--set``.

    The value is read as a TOML value (``7``, ``true``, ``[1, 2]``, ``{a = 1}``); if it is
    not one, it is taken as a plain string. Missing intermediate tables are created.

    Args:
        raw: the experiment tables; not modified.
        origins: dotted leaf key path to source; updated in place, overridden keys become
            ``"--set"``.
        overrides: the ``key=value`` texts, applied in order.

    Returns:
        A new dict with the overrides applied.

    Raises:
        ExperimentError: an override is malformed, nested too deeply (see `check_shape`) or
            sets a key inside a non-table value.
    """
    result = copy.deepcopy(raw)
    for text in overrides:
        keys, value = _parse_override(text)
        _set_path(result, keys, value, text)
        _mark_overridden(origins, ".".join(keys), value)
    return result


def override_texts(overrides: Iterable[str] | Mapping[str, Any]) -> list[str]:
    """Overrides as ``"dotted.key=value"`` texts; a mapping's values are written as TOML.

    Args:
        overrides: ``"key=value"`` strings (values in TOML syntax), or a mapping of dotted
            keys to Python values (numbers, strings, booleans, lists, tables).

    Raises:
        ExperimentError: a value cannot be written in an experiment file (NaN, a date, ...).
    """
    if isinstance(overrides, str):
        return [overrides]
    if not isinstance(overrides, Mapping):
        return list(overrides)
    texts = []
    for key, value in overrides.items():
        try:
            texts.append(f"{key}={toml_inline(value)}")
        except (TypeError, ValueError) as error:
            raise ExperimentError(str(error), source=SET_SOURCE, key=str(key)) from None
    return texts


def leaf_paths(table: dict) -> list[str]:
    """The dotted paths of the non-table values and empty tables in ``table``."""
    return list(_leaf_paths(table))


def _parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``dotted.key=value`` into its key parts and its parsed value."""
    key_text, sep, value_text = text.partition("=")
    keys = [part.strip() for part in key_text.split(".")]
    if not sep or not all(keys) or "\n" in key_text:
        raise ExperimentError(
            f"malformed override {show_value(text)}: expected dotted.key=value", source=SET_SOURCE
        )
    key = ".".join(keys)
    value = _parse_override_value(value_text.strip(), key)
    document: Any = value
    for part in reversed(keys):
        document = {part: document}
    check_shape(document, lambda path, message: _fail_at(SET_SOURCE, path, message))
    return keys, value


def _parse_override_value(text: str, key: str) -> Any:
    """The TOML value written in ``text``, or ``text`` itself if it is not one."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ExperimentError(too_deep_message(), SET_SOURCE, key) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ExperimentError(
            f"expected a 64-bit integer, got a number too long to read ({_int_text(exc)})",
            SET_SOURCE,
            key,
        ) from None
    return parsed["v"] if parsed.keys() == {"v"} else text


def _set_path(table: dict, keys: list[str], value: Any, text: str) -> None:
    """Sets ``table[k1][k2]...[kn] = value``, creating missing tables."""
    node = table
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            parent = ".".join(keys[: depth + 1])
            raise ExperimentError(
                f"cannot apply {text!r}: {parent} is {show_value(child)}, not a table",
                source=SET_SOURCE,
                key=".".join(keys),
            )
        node = child
    node[keys[-1]] = value


def _mark_overridden(origins: dict, path: str, value: Any) -> None:
    """Records ``"--set"`` as the origin of ``path`` and the keys under it."""
    for key in [key for key in origins if _nested(key, path)]:
        del origins[key]
    if isinstance(value, dict) and value:
        origins.update({f"{path}.{leaf}": SET_SOURCE for leaf in _leaf_paths(value)})
    else:
        origins[path] = SET_SOURCE


def _nested(first: str, second: str) -> bool:
    """True when one dotted path is the other or lies under it."""
    first, second = first + ".", second + "."
    return first.startswith(second) or second.startswith(first)


# --- validation ---------------------------------------------------------------------------


class _Context:
    """Where each key came from, to name the right file in errors."""

    def __init__(self, origins: dict, default_source: str):
        self.origins = origins
        self.default_source = default_source

    def fail(self, path: str, message: str) -> NoReturn:
        """Raises an `ExperimentError` about the key at ``path``."""
        raise ExperimentError(message, source=self.source_of(path), key=path)

    def source_of(self, path: str) -> str:
        """The origin of ``path``, else of a key under it, else of its nearest parent."""
        path = re.sub(r"\[\d+\]", "", path)
        below = [src for key, src in self.origins.items() if key.startswith(path + ".")]
        parts = path.split(".")
        parents = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
        found = [self.origins.get(path), *below[:1], *(self.origins.get(p) for p in parents)]
        return next((src for src in found if src is not None), self.default_source)


def validate(raw: dict, registry: Registry, origins: dict, default_source: str) -> dict:
    """Checks an experiment against the registry's schemas and fills in the defaults.

    Problems are looked for in a fixed order (unknown top-level keys, ``plugins``, the
    registry's tables, ``agents``, ``markets``) and the first one found is raised.

    Args:
        raw: the experiment tables, from `read_experiment_file` and `apply_overrides`.
        registry: the schemas to validate against.
        origins: dotted leaf key path to the file (or ``"--set"``) it came from.
        default_source: the source named for keys without an origin (e.g. a missing key).

    Returns:
        A new dict: ``plugins``, every table of ``registry.tables``, the sectors present
        under ``agents`` and every good of ``registry.market_goods`` under ``markets``,
        each table in schema order with defaults filled in.

    Raises:
        ExperimentError: an unknown key, a wrong type, a value out of range or a missing
            required key; ``source`` is where the key came from, ``key`` its dotted path.
    """
    ctx = _Context(origins, default_source)
    check_shape(raw, ctx.fail)
    _check_known(ctx, raw, [*registry.tables, *_BUILTIN_TOP], "", "key")
    resolved: dict[str, Any] = {
        "plugins": _param_value(ctx, _PLUGINS_PARAM, raw.get("plugins", []), "plugins")
    }
    for name, schema in registry.tables.items():
        resolved[name] = _table(ctx, raw.get(name, {}), schema, name)
    resolved["agents"] = _agents(ctx, raw.get("agents", {}), registry)
    resolved["markets"] = _markets(ctx, raw.get("markets", {}), registry)
    return resolved


def _check_known(
    ctx: _Context, table: dict, known: Iterable[str], prefix: str, what: str, listing=False
) -> None:
    """Fails on the first key of ``table`` not in ``known``, suggesting a close one."""
    known = list(known)
    for key in table:
        if key not in known:
            hint = _suggestion(key, known, listing)
            ctx.fail(_join(prefix, key), f"unknown {what} {key!r}{hint}")


def _suggestion(name: str, known: list[str], listing: bool) -> str:
    """`` (did you mean 'x'?)`` when a known name is close, else the known names if asked."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if listing:
        return f" (known: {', '.join(known) or 'none'})"
    return ""


def _join(prefix: str, key: str) -> str:
    """``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else key


def _require_table(ctx: _Context, value: Any, path: str) -> dict:
    """``value`` if it is a table, else fails."""
    if not isinstance(value, dict):
        ctx.fail(path, f"expected a table, got {show_value(value)}")
    return value


def _table(
    ctx: _Context, value: Any, schema: TableSchema, path: str, also_known: tuple = ()
) -> dict:
    """A table checked against ``schema``: params in schema order, then open extra keys."""
    value = _require_table(ctx, value, path)
    if not schema.open_keys:
        _check_known(ctx, value, [*also_known, *schema.params], path, "key")
    out: dict[str, Any] = {}
    for name, param in schema.params.items():
        key_path = _join(path, name)
        if name in value:
            out[name] = _param_value(ctx, param, value[name], key_path)
        elif param.required:
            ctx.fail(key_path, "missing required key")
        else:
            out[name] = _default(param)
    for name, extra in value.items():
        if name not in schema.params and name not in also_known:
            out[name] = _free_value(ctx, extra, _join(path, name))
    return out


def _agents(ctx: _Context, value: Any, registry: Registry) -> dict:
    """The ``[agents.<sector>]`` tables present, each checked against its sector schema."""
    value = _require_table(ctx, value, "agents")
    _check_known(ctx, value, registry.sector_tables, "agents", "sector", listing=True)
    return {
        name: _table(ctx, value[name], schema, f"agents.{name}")
        for name, schema in registry.sector_tables.items()
        if name in value
    }


def _markets(ctx: _Context, value: Any, registry: Registry) -> dict:
    """Every ``[markets.<good>]`` table, with its mechanism and the mechanism's parameters."""
    value = _require_table(ctx, value, "markets")
    _check_known(ctx, value, registry.market_goods, "markets", "market", listing=True)
    return {
        good: _market(ctx, value.get(good, {}), registry, good) for good in registry.market_goods
    }


def _market(ctx: _Context, value: Any, registry: Registry, good: str) -> dict:
    """One market table: ``mechanism`` (default from the registry) and its parameters."""
    path = f"markets.{good}"
    value = _require_table(ctx, value, path)
    mechanism = value.get("mechanism", registry.market_goods[good])
    if not isinstance(mechanism, str):
        ctx.fail(f"{path}.mechanism", f"expected a string, got {show_value(mechanism)}")
    if mechanism not in registry.mechanism_tables:
        hint = _suggestion(mechanism, list(registry.mechanism_tables), listing=True)
        ctx.fail(f"{path}.mechanism", f"unknown mechanism {mechanism!r}{hint}")
    schema = registry.mechanism_tables[mechanism]
    params = _table(ctx, value, schema, path, also_known=("mechanism",))
    return {"mechanism": mechanism, **params}


def _param_value(ctx: _Context, param: Param, value: Any, path: str) -> Any:
    """``value`` checked against ``param``: type, then range and choices."""
    if param.kind is list and param.item_kind is not None:
        return _list_value(ctx, param, value, path)
    checked = _typed(ctx, param.kind, value, path, param.kind_name())
    _check_range(ctx, param, value, path)
    return checked


def _list_value(ctx: _Context, param: Param, value: Any, path: str) -> list:
    """A list whose items are each checked against ``param.item_kind``, range and choices."""
    if not isinstance(value, list):
        ctx.fail(path, f"expected {param.kind_name()}, got {show_value(value)}")
    item_name = Param(param.item_kind).kind_name()
    items = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        checked = _typed(ctx, param.item_kind, item, item_path, item_name)
        _check_range(ctx, param, item, item_path)
        items.append(checked)
    return items


def _typed(ctx: _Context, kind: type, value: Any, path: str, kind_name: str) -> Any:
    """``value`` if it is of ``kind`` (an int counts as a float, a bool as no number)."""
    if isinstance(value, bool) and kind is not bool:
        ok = False
    elif kind is float:
        ok = isinstance(value, int | float)
    else:
        ok = isinstance(value, kind)
    if not ok:
        ctx.fail(path, f"expected {kind_name}, got {show_value(value)}")
    if kind is float:
        return _finite(ctx, value, path)
    return _free_value(ctx, value, path)


def _finite(ctx: _Context, value: int | float, path: str) -> float:
    """``value`` as a float, failing on NaN and infinities."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        ctx.fail(path, f"must be a finite number, got {show_value(value)}")
    return number


def _free_value(ctx: _Context, value: Any, path: str) -> Any:
    """A copy of an unchecked value, failing on non-finite floats and dates."""
    if isinstance(value, dict):
        return {k: _free_value(ctx, v, _join(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_free_value(ctx, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        return _finite(ctx, value, path)
    if not isinstance(value, str | int):
        ctx.fail(path, f"dates and times are not supported, got {show_value(value)}")
    return value


def _check_range(ctx: _Context, param: Param, value: Any, path: str) -> None:
    """Fails if ``value`` (as written, already type-checked) is outside choices or bounds."""
    if param.choices is not None and value not in param.choices:
        options = ", ".join(repr(choice) for choice in param.choices)
        ctx.fail(path, f"must be one of {options}, got {show_value(value)}")
    if not _is_number(value):
        return
    bounds = [(attr, getattr(param, attr)) for attr in _BOUNDS if getattr(param, attr) is not None]
    if not all(getattr(operator, attr)(value, bound) for attr, bound in bounds):
        text = " and ".join(f"{_BOUNDS[attr]} {format_bound(bound)}" for attr, bound in bounds)
        ctx.fail(path, f"must be {text}, got {show_value(value)}")


def _default(param: Param) -> Any:
    """A copy of ``param``'s default, with ints made floats where a float is expected."""
    value = copy.deepcopy(param.default)
    if isinstance(value, tuple) and param.kind is list:
        value = list(value)
    if param.kind is float and _is_number(value):
        return float(value)
    if param.kind is list and param.item_kind is float and isinstance(value, list):
        return [float(v) if _is_number(v) else v for v in value]
    return value


def _is_number(value: Any) -> bool:
    """True for ints and floats, false for bools."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- schemas and size ------------------------------------------------------------------


def schema_problems(schema: TableSchema) -> Iterator[tuple[str, str]]:
    """What is wrong with a schema's own bounds and defaults, key by key.

    Every bound must be a finite number and every default must pass the schema's own checks
    (type, finite, range, choices), so that a table left out of an experiment resolves to
    valid values. Plugins' schemas are checked when they are registered.

    Yields:
        ``(key, message)`` for each problem, e.g. ``("k", "default must be a finite number,
        got nan")``.
    """
    ctx = _Context({}, "")
    for name, param in schema.params.items():
        bad_bounds = [
            (attr, getattr(param, attr))
            for attr in _BOUNDS
            if getattr(param, attr) is not None
            and not (_is_number(getattr(param, attr)) and math.isfinite(getattr(param, attr)))
        ]
        for attr, bound in bad_bounds:
            yield name, f"bound {attr} must be a finite number, got {show_value(bound)}"
        if param.required or bad_bounds:
            continue
        try:
            _param_value(ctx, param, _default(param), name)
        except ExperimentError as error:
            yield name, f"default {error.message}"
        except (TypeError, ValueError) as error:  # e.g. a default of an unorderable type
            yield name, f"default cannot be checked: {error}"


# --- identity and output ------------------------------------------------------------------


def canonical_json(resolved: dict) -> str:
    """The experiment as JSON with sorted keys and no whitespace (non-ASCII kept as is)."""
    return json.dumps(
        resolved, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def experiment_sha256(resolved: dict) -> str:
    """The hex SHA-256 of the experiment's `canonical_json`, encoded as UTF-8."""
    return hashlib.sha256(canonical_json(resolved).encode("utf-8")).hexdigest()


def dump_toml(resolved: dict) -> str:
    """Writes an experiment as TOML that `tomllib` reads back to an equal dict.

    Tables become ``[a.b]`` sections; lists (including lists of tables) are written inline.
    A ``None`` value cannot be written in TOML and becomes a comment ``# key is unset``.

    Args:
        resolved: nested tables of str, int, finite float, bool and lists of those or tables.

    Returns:
        The TOML text.

    Raises:
        ValueError: a float is NaN or infinite.
        TypeError: a value has a type TOML cannot hold here.
    """
    lines: list[str] = []
    _dump_table(resolved, (), lines)
    return "\n".join(lines) + "\n" if lines else ""


def _dump_table(table: dict, keys: tuple[str, ...], lines: list[str]) -> None:
    """Appends a table's header (when needed), its values, then its sub-tables."""
    values = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if keys and (values or not tables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(key) for key in keys) + "]")
    for key, value in values.items():
        if value is None:
            lines.append(f"# {_toml_key(key)} is unset")
        else:
            lines.append(f"{_toml_key(key)} = {toml_inline(value)}")
    for key, sub in tables.items():
        _dump_table(sub, (*keys, key), lines)


def toml_inline(value: Any) -> str:
    """One value in TOML inline syntax (what `override_texts` writes after ``key=``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} in an experiment file")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(k)} = {toml_inline(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} in an experiment file")


def _toml_key(key: str) -> str:
    """A key, bare when it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string, with quotes, backslashes and control characters escaped."""
    return '"' + text.translate(_ESCAPES) + '"'
