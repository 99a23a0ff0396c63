"""Tests of marketsim.config: reading, extending, overriding, validating and dumping."""

from __future__ import annotations

import json
import tomllib

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from marketsim.config import apply_overrides
from marketsim.config import canonical_json
from marketsim.config import dump_toml
from marketsim.config import experiment_sha256
from marketsim.config import read_experiment_file
from marketsim.config import schema_problems
from marketsim.config import validate
from marketsim.errors import ExperimentError
from marketsim.experiment import check_name
from marketsim.experiment import collect_components
from marketsim.experiment import load_experiment
from marketsim.limits import INT64_MAX
from marketsim.limits import INT64_MIN
from marketsim.limits import MAX_NESTING
from marketsim.limits import MEMORY_BUDGET_BYTES
from marketsim.limits import estimate_size
from marketsim.plugins import plugin_manager
from marketsim.schema import Param
from marketsim.schema import Registry
from marketsim.schema import TableSchema


def make_registry() -> Registry:
    """A small registry shaped like the real one."""
    sector = {"count": Param(int, default=1, ge=0)}
    return Registry(
        tables={
            "experiment": TableSchema(
                {
                    "name": Param(str),
                    "seed": Param(int, default=0, ge=0),
                    "steps": Param(int, default=120, ge=1),
                }
            ),
            "graph": TableSchema(
                {
                    "regions": Param(list, default=["us"], item_kind=str),
                    "buyer_degree": Param(int, default=2, ge=1),
                    "restrictions": Param(list, default=[], item_kind=dict),
                }
            ),
            "output": TableSchema(
                {
                    "firm_level": Param(bool, default=False),
                    "format": Param(str, default="csv", choices=("csv", "parquet")),
                }
            ),
            "notes": TableSchema(open_keys=True),
        },
        sector_tables={
            "utility": TableSchema({**sector, "capacity_mw": Param(float, default=100, gt=0)}),
            "chip_vendor": TableSchema(dict(sector)),
        },
        market_goods={"power": "posted_price"},
        mechanism_tables={
            "posted_price": TableSchema({"price_sensitivity": Param(float, default=2, ge=0)}),
            "call_auction": TableSchema(),
        },
    )


REGISTRY = make_registry()
MINIMAL = '[experiment]\nname = "t"\n'


def write(path, text):
    """Writes ``text`` to ``path`` (creating directories) and returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(path, overrides=()):
    """Reads, overrides and validates an experiment file like the CLI does."""
    raw, origins = read_experiment_file(path)
    raw = apply_overrides(raw, origins, list(overrides))
    return validate(raw, REGISTRY, origins, str(path))


def load_error(path, overrides=()) -> ExperimentError:
    """The ExperimentError raised while loading ``path``."""
    with pytest.raises(ExperimentError) as info:
        load(path, overrides)
    assert "\n" not in info.value.line()
    return info.value


def check(text: str) -> ExperimentError:
    """The ExperimentError raised when validating ``text`` (no files involved)."""
    raw = tomllib.loads(text)
    with pytest.raises(ExperimentError) as info:
        validate(raw, REGISTRY, {}, "x.toml")
    return info.value


# --- valid files and defaults -------------------------------------------------------------


def test_valid_file_resolves_with_defaults(tmp_path):
    """A minimal file gets every table, sector given and market filled with defaults."""
    path = write(tmp_path / "x.toml", MINIMAL + "[agents.utility]\ncount = 3\n")
    resolved = load(path)
    assert resolved["experiment"] == {"name": "t", "seed": 0, "steps": 120}
    assert resolved["graph"] == {"regions": ["us"], "buyer_degree": 2, "restrictions": []}
    assert resolved["output"] == {"firm_level": False, "format": "csv"}
    assert resolved["agents"] == {"utility": {"count": 3, "capacity_mw": 100.0}}
    assert resolved["markets"] == {"power": {"mechanism": "posted_price", "price_sensitivity": 2.0}}
    assert resolved["plugins"] == []


def test_resolved_keeps_schema_order():
    """Params come in schema order, whatever the order in the file."""
    raw = tomllib.loads('[experiment]\nsteps = 5\nname = "t"\n[agents.utility]\ncapacity_mw = 1\n')
    resolved = validate(raw, REGISTRY, {}, "x.toml")
    assert list(resolved["experiment"]) == ["name", "seed", "steps"]
    assert list(resolved["agents"]["utility"]) == ["count", "capacity_mw"]


def test_float_defaults_are_floats():
    """An int default of a float param resolves to a float, like an int given in a file."""
    resolved = validate({"experiment": {"name": "t"}}, REGISTRY, {}, "x.toml")
    assert isinstance(resolved["markets"]["power"]["price_sensitivity"], float)


def test_defaults_are_not_shared():
    """Mutating a resolved default list does not change the schema's default."""
    first = validate({"experiment": {"name": "t"}}, REGISTRY, {}, "x.toml")
    first["graph"]["regions"].append("cn")
    second = validate({"experiment": {"name": "t"}}, REGISTRY, {}, "x.toml")
    assert second["graph"]["regions"] == ["us"]


def test_open_table_passes_unknown_keys():
    """Keys of an open table pass through unchecked."""
    resolved = validate({"experiment": {"name": "t"}, "notes": {"x": [1, "a"]}}, REGISTRY, {}, "")
    assert resolved["notes"] == {"x": [1, "a"]}


def test_other_mechanism_takes_its_own_params():
    """Choosing a mechanism validates that mechanism's parameters, not the default's."""
    raw = tomllib.loads(MINIMAL + '[markets.power]\nmechanism = "call_auction"\n')
    assert validate(raw, REGISTRY, {}, "x.toml")["markets"]["power"] == {
        "mechanism": "call_auction"
    }
    error = check(MINIMAL + '[markets.power]\nmechanism = "call_auction"\nprice_sensitivity = 1\n')
    assert error.key == "markets.power.price_sensitivity"


def test_list_of_tables_passes_through():
    """A list of small tables (graph restrictions) resolves as written."""
    text = MINIMAL + '[[graph.restrictions]]\ngood = "accelerators"\nfrom_region = "us"\n'
    resolved = validate(tomllib.loads(text), REGISTRY, {}, "x.toml")
    assert resolved["graph"]["restrictions"] == [{"good": "accelerators", "from_region": "us"}]


# --- reading and extends ------------------------------------------------------------------


def test_origins_map_leaf_keys_to_file(tmp_path):
    """Every leaf key path maps to the file it came from."""
    path = write(tmp_path / "x.toml", MINIMAL + "[agents.utility]\ncapacity_mw = 5\n")
    raw, origins = read_experiment_file(path)
    assert origins == {"experiment.name": str(path), "agents.utility.capacity_mw": str(path)}


def test_extends_deep_merges_from_subdirectory(tmp_path):
    """A base is found relative to the extending file; tables merge, lists replace."""
    base = write(
        tmp_path / "base.toml",
        MINIMAL + 'seed = 3\n[graph]\nregions = ["us", "cn"]\nbuyer_degree = 4\n',
    )
    child = write(
        tmp_path / "sub" / "child.toml",
        'extends = "../base.toml"\n[experiment]\nsteps = 10\n[graph]\nregions = ["eu"]\n',
    )
    raw, origins = read_experiment_file(child)
    assert "extends" not in raw
    assert raw["experiment"] == {"name": "t", "seed": 3, "steps": 10}
    assert raw["graph"] == {"regions": ["eu"], "buyer_degree": 4}
    assert origins["experiment.seed"] == str(base)
    assert origins["experiment.steps"] == str(child)
    assert origins["graph.regions"] == str(child)


def test_extends_chain_of_three(tmp_path):
    """A base may itself extend another file."""
    write(tmp_path / "a.toml", MINIMAL + "seed = 1\n")
    write(tmp_path / "b.toml", 'extends = "a.toml"\n[experiment]\nseed = 2\nsteps = 7\n')
    child = write(tmp_path / "c.toml", 'extends = "b.toml"\n[experiment]\nseed = 3\n')
    assert load(child)["experiment"] == {"name": "t", "seed": 3, "steps": 7}


def test_extends_cycle_is_reported(tmp_path):
    """A file extending itself through another names the cycle."""
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    error = load_error(tmp_path / "a.toml")
    assert "cycle" in error.message
    assert "a.toml -> " in error.message and "b.toml" in error.message
    assert error.key == "extends"


def test_missing_extends_base_names_extending_file(tmp_path):
    """A missing base is reported against the extending file's ``extends`` key."""
    child = write(tmp_path / "child.toml", 'extends = "nope.toml"\n')
    error = load_error(child)
    assert (error.source, error.key) == (str(child), "extends")
    assert "nope.toml" in error.message


def test_extends_must_be_a_string(tmp_path):
    """``extends = 3`` is an error on the key ``extends``."""
    error = load_error(write(tmp_path / "x.toml", "extends = 3\n"))
    assert error.key == "extends" and "expected a string" in error.message


def test_missing_file_is_named(tmp_path):
    """A missing experiment file is an error naming the file."""
    error = load_error(tmp_path / "absent.toml")
    assert error.source == str(tmp_path / "absent.toml")
    assert "not found" in error.message


def test_toml_syntax_error_mentions_line_and_column(tmp_path):
    """A syntax error reports where it is."""
    path = write(tmp_path / "x.toml", '[experiment]\nname = "t"\nseed = = 3\n')
    error = load_error(path)
    assert error.source == str(path)
    assert error.message.startswith("invalid TOML at line 3, column ")


def test_toml_error_at_end_of_file(tmp_path):
    """A syntax error at the very end says so."""
    error = load_error(write(tmp_path / "x.toml", "[experiment"))
    assert error.message.startswith("invalid TOML at end of file: ")


def test_non_utf8_file_is_an_error(tmp_path):
    """A file that is not UTF-8 is an ExperimentError."""
    path = tmp_path / "x.toml"
    path.write_bytes(b'[experiment]\nname = "\xff"\n')
    error = load_error(path)
    assert "UTF-8" in error.message and error.source == str(path)


# --- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (MINIMAL + "[agnets.utility]\n", "agnets", "unknown key 'agnets' (did you mean 'agents'?)"),
        (
            MINIMAL + "[agents.utility]\ncapacity_mv = 1\n",
            "agents.utility.capacity_mv",
            "unknown key 'capacity_mv' (did you mean 'capacity_mw'?)",
        ),
        (
            MINIMAL + "[agents.utilty]\n",
            "agents.utilty",
            "unknown sector 'utilty' (did you mean 'utility'?)",
        ),
        (MINIMAL + "[markets.powr]\n", "markets.powr", "unknown market 'powr' (did you mean"),
        (
            MINIMAL + '[markets.power]\nmechanism = "posted_prise"\n',
            "markets.power.mechanism",
            "unknown mechanism 'posted_prise' (did you mean 'posted_price'?)",
        ),
        (
            MINIMAL + "[markets.power]\nmechansim = 1\n",
            "markets.power.mechansim",
            "(did you mean 'mechanism'?)",
        ),
    ],
)
def test_unknown_keys_suggest_close_names(text, key, message):
    """An unknown key, sector, market or mechanism is reported with a close suggestion."""
    error = check(text)
    assert error.key == key
    assert message in error.message


def test_unknown_key_without_close_match_has_no_suggestion():
    """Nothing close means no 'did you mean'."""
    error = check(MINIMAL + "zzzz = 1\n")
    assert error.message == "unknown key 'zzzz'"


# --- values -------------------------------------------------------------------------------


def test_out_of_range_line(tmp_path):
    """An out-of-range value gives the documented one-line error."""
    path = write(tmp_path / "x.toml", MINIMAL + "[agents.utility]\ncapacity_mw = -5\n")
    assert load_error(path).line() == f"{path}: agents.utility.capacity_mw: must be > 0, got -5"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("capacity_mw = 'abc'", "capacity_mw", "expected a number, got 'abc'"),
        ("capacity_mw = true", "capacity_mw", "expected a number, got true"),
        ("count = 5.0", "count", "expected an integer, got 5.0"),
        ("count = -1", "count", "must be >= 0, got -1"),
        ("capacity_mw = nan", "capacity_mw", "must be a finite number, got nan"),
        ("capacity_mw = -inf", "capacity_mw", "must be a finite number, got -inf"),
    ],
)
def test_bad_sector_values(text, key, message):
    """Wrong types, bools as numbers, floats as ints, ranges and NaN are rejected."""
    error = check(MINIMAL + "[agents.utility]\n" + text + "\n")
    assert (error.key, error.message) == (f"agents.utility.{key}", message)


def test_int_accepted_for_float():
    """An int where a float is expected resolves to a float."""
    raw = tomllib.loads(MINIMAL + "[agents.utility]\ncapacity_mw = 50\n")
    value = validate(raw, REGISTRY, {}, "x.toml")["agents"]["utility"]["capacity_mw"]
    assert value == 50.0 and isinstance(value, float)


def test_missing_required_key():
    """A required key absent from the file is reported against the default source."""
    with pytest.raises(ExperimentError) as info:
        validate({"experiment": {"seed": 1}}, REGISTRY, {"experiment.seed": "a"}, "top.toml")
    assert info.value.line() == "top.toml: experiment.name: missing required key"


def test_choices_are_enforced():
    """A value outside the choices lists them."""
    error = check(MINIMAL + "[output]\nformat = 'xls'\n")
    assert error.message == "must be one of 'csv', 'parquet', got 'xls'"


def test_list_items_are_checked():
    """Each list item is checked against the item kind, keyed by its index."""
    error = check(MINIMAL + "[graph]\nregions = ['us', 3]\n")
    assert (error.key, error.message) == ("graph.regions[1]", "expected a string, got 3")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("experiment = 1\n", "experiment"),
        ("agents = []\n" + MINIMAL, "agents"),
        (MINIMAL + "[agents]\nutility = 3\n", "agents.utility"),
        (MINIMAL + "[markets]\npower = 'x'\n", "markets.power"),
    ],
)
def test_non_table_where_table_expected(text, key):
    """A scalar or list where a table belongs is an error."""
    error = check(text)
    assert error.key == key and error.message.startswith("expected a table")


def test_plugins_must_be_list_of_strings():
    """``plugins`` is a list of strings."""
    assert check("plugins = 'a'\n" + MINIMAL).message == "expected a list of strings, got 'a'"
    assert check("plugins = [1]\n" + MINIMAL).key == "plugins[0]"


def test_nan_in_open_table_is_rejected():
    """Free-form values are still required to be finite."""
    error = check(MINIMAL + "[notes]\nx = [1.0, nan]\n")
    assert error.key == "notes.x[1]"


# --- overrides ----------------------------------------------------------------------------


def test_override_values(tmp_path):
    """Overrides parse TOML values, fall back to strings and create nested tables."""
    path = write(tmp_path / "x.toml", MINIMAL)
    resolved = load(
        path,
        ["experiment.seed=7", "experiment.name=foo bar", "agents.utility.count=3", "plugins=['p']"],
    )
    assert resolved["experiment"]["seed"] == 7
    assert resolved["experiment"]["name"] == "foo bar"
    assert resolved["agents"]["utility"]["count"] == 3
    assert resolved["plugins"] == ["p"]


def test_override_does_not_mutate_input_and_marks_origin():
    """The input dict is untouched and overridden keys get the ``--set`` origin."""
    raw = {"experiment": {"name": "t"}, "agents": {"utility": {}}}
    origins = {"experiment.name": "x.toml", "agents.utility": "x.toml"}
    result = apply_overrides(raw, origins, ["experiment.name='u'", "agents.utility.count=2"])
    assert raw == {"experiment": {"name": "t"}, "agents": {"utility": {}}}
    assert result["experiment"]["name"] == "u"
    assert origins == {"experiment.name": "--set", "agents.utility.count": "--set"}


@pytest.mark.parametrize("text", ["experiment.seed", "=3", ".x=1", "a..b=1", " =1"])
def test_malformed_override(text):
    """An override without ``=`` or with an empty key part is rejected, quoting it."""
    with pytest.raises(ExperimentError) as info:
        apply_overrides({}, {}, [text])
    assert info.value.source == "--set"
    assert repr(text) in info.value.message


def test_override_into_scalar_is_rejected():
    """Setting a key inside a non-table value is an error."""
    with pytest.raises(ExperimentError) as info:
        apply_overrides({"experiment": {"seed": 1}}, {}, ["experiment.seed.x=1"])
    assert (info.value.source, info.value.key) == ("--set", "experiment.seed.x")


# --- error sources ------------------------------------------------------------------------


def test_error_source_is_base_file_for_base_key(tmp_path):
    """A bad value written in the base is reported against the base file."""
    base = write(tmp_path / "base.toml", MINIMAL + "[agents.utility]\ncapacity_mw = -1\n")
    child = write(tmp_path / "child.toml", 'extends = "base.toml"\n[experiment]\nseed = 1\n')
    error = load_error(child)
    assert (error.source, error.key) == (str(base), "agents.utility.capacity_mw")


def test_error_source_is_base_file_for_unknown_table(tmp_path):
    """An unknown table written in the base is reported against the base file."""
    base = write(tmp_path / "base.toml", MINIMAL + "[agents.utilty]\ncount = 1\n")
    child = write(tmp_path / "child.toml", 'extends = "base.toml"\n')
    assert load_error(child).source == str(base)


def test_error_source_is_set_for_override(tmp_path):
    """A bad value given with ``--set`` is reported against ``--set``."""
    path = write(tmp_path / "x.toml", MINIMAL)
    error = load_error(path, ["experiment.steps=0"])
    assert error.line() == "--set: experiment.steps: must be >= 1, got 0"


# --- identity and dumping -----------------------------------------------------------------


def test_sha256_is_stable_and_key_order_independent():
    """The hash depends on content only, not on key order."""
    first = {"b": {"y": 1, "x": "é"}, "a": [1.5, True]}
    second = {"a": [1.5, True], "b": {"x": "é", "y": 1}}
    assert canonical_json(first) == '{"a":[1.5,true],"b":{"x":"é","y":1}}'
    assert experiment_sha256(first) == experiment_sha256(second)
    assert len(experiment_sha256(first)) == 64
    assert experiment_sha256(first) != experiment_sha256({**first, "c": 0})


def test_dump_resolved_experiment_round_trips(tmp_path):
    """A resolved experiment written as TOML reads back equal and validates to itself."""
    text = MINIMAL + '[[graph.restrictions]]\ngood = "accelerators"\nto_region = "cn"\n'
    resolved = validate(tomllib.loads(text + "[agents.utility]\n"), REGISTRY, {}, "x.toml")
    dumped = dump_toml(resolved)
    assert tomllib.loads(dumped) == resolved
    assert validate(tomllib.loads(dumped), REGISTRY, {}, "x.toml") == resolved


def test_dump_rejects_nan():
    """NaN cannot be written."""
    with pytest.raises(ValueError):
        dump_toml({"a": float("nan")})


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _TEXT,
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.lists(st.dictionaries(_TEXT, _SCALARS, max_size=3), max_size=2),
)
_TABLES = st.recursive(
    st.dictionaries(_TEXT, _VALUES, max_size=4),
    lambda inner: st.dictionaries(_TEXT, st.one_of(_VALUES, inner), max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_TABLES)
def test_dump_toml_round_trips(table):
    """Any nested dict of tables, scalars and lists reads back equal."""
    dumped = dump_toml(table)
    assert tomllib.loads(dumped) == table
    assert json.loads(canonical_json(table)) == table


# --- bounds: what the model can hold ------------------------------------------------------


def builtin_schemas() -> list[tuple[str, TableSchema]]:
    """Every schema the built-in plugin registers, with where it appears in a file."""
    components = collect_components(plugin_manager())
    return [
        *((f"[{name}]", schema) for name, schema in components.tables.items()),
        *((f"[agents.{name}]", cls.schema) for name, cls in components.sectors.items()),
        *((f"mechanism {name}", spec.schema) for name, spec in components.mechanisms.items()),
    ]


def test_every_builtin_number_has_a_finite_range():
    """Every int and float key of a built-in table has a finite lower and upper bound.

    A new key without both fails here: choose bounds from its meaning and say why in
    docs/experiments.md (schema_docs.UNIT_BOUND_REASONS).
    """
    unbounded = []
    for where, schema in builtin_schemas():
        for key, param in schema.params.items():
            kinds = {param.kind, param.item_kind}
            if not kinds & {int, float} or param.choices is not None:
                continue
            lower = param.ge if param.ge is not None else param.gt
            upper = param.le if param.le is not None else param.lt
            if lower is None or upper is None:
                unbounded.append(f"{where} {key}")
    assert not unbounded, unbounded


def test_builtin_defaults_pass_their_own_checks():
    """No built-in default breaks its own type, range or choices."""
    problems = [(where, *p) for where, schema in builtin_schemas() for p in schema_problems(schema)]
    assert problems == []


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (Param(float, float("nan")), "default must be a finite number, got nan"),
        (Param(float, float("inf"), ge=0), "default must be a finite number, got inf"),
        (Param(float, 2.0, ge=0, le=1), "default must be >= 0 and <= 1, got 2.0"),
        (Param(int, 1.5), "default expected an integer, got 1.5"),
        (Param(str, "x", choices=("a", "b")), "default must be one of 'a', 'b', got 'x'"),
        (Param(float, 1.0, le=float("nan")), "bound le must be a finite number, got nan"),
    ],
)
def test_schema_problems_name_the_key(param, message):
    """A schema whose default breaks its own rules is reported key by key."""
    assert list(schema_problems(TableSchema({"k": param}))) == [("k", message)]


def test_required_keys_have_no_default_to_check():
    """A required key is not a problem."""
    assert list(schema_problems(TableSchema({"name": Param(str)}))) == []


def test_nesting_up_to_the_limit_is_accepted(tmp_path):
    """Arrays nested exactly MAX_NESTING deep (the key's table counted) are read."""
    depth = MAX_NESTING - 1  # [notes] is one level
    text = MINIMAL + "[notes]\nx = " + "[" * depth + "]" * depth + "\n"
    resolved = load(write(tmp_path / "x.toml", text))
    value = resolved["notes"]["x"]
    for _ in range(depth - 1):
        (value,) = value
    assert value == []


def test_nesting_beyond_the_limit_names_the_key(tmp_path):
    """One level more names the first key path too deep."""
    depth = MAX_NESTING + 1
    error = load_error(write(tmp_path / "x.toml", "x = " + "[" * depth + "]" * depth + "\n"))
    assert error.key == "x" + "[0]" * MAX_NESTING
    assert error.message.startswith(f"expected tables and arrays nested at most {MAX_NESTING}")


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 5000])
def test_deep_override_is_an_error_not_a_recursion(tmp_path, depth):
    """A --set value nested too deep is reported against --set, however deep."""
    path = write(tmp_path / "x.toml", MINIMAL)
    error = load_error(path, ["notes.x=" + "[" * depth + "]" * depth])
    assert error.source == "--set"
    assert "nested at most" in error.message


def test_deep_key_in_override_is_an_error(tmp_path):
    """An override key of thousands of parts is reported, not walked recursively."""
    error = load_error(write(tmp_path / "x.toml", MINIMAL), [".".join(["a"] * 5000) + "=1"])
    assert error.source == "--set" and "nested at most" in error.message


@pytest.mark.parametrize(
    ("value", "ok"),
    [(INT64_MAX, True), (INT64_MIN, True), (INT64_MAX + 1, False), (INT64_MIN - 1, False)],
)
def test_integers_are_64_bit(tmp_path, value, ok):
    """Integers from -2^63 to 2^63-1 are read; one beyond is an error naming the key."""
    path = write(tmp_path / "x.toml", MINIMAL + f"[notes]\nbig = {value}\n")
    if ok:
        assert load(path)["notes"]["big"] == value
    else:
        error = load_error(path)
        assert error.key == "notes.big"
        assert error.message.startswith("expected an integer from -2^63 to 2^63-1 (64 bits)")


def test_huge_integer_in_override_is_one_line(tmp_path):
    """An override integer too long for Python to convert is an error, not a ValueError."""
    error = load_error(write(tmp_path / "x.toml", MINIMAL), ["experiment.seed=" + "9" * 5000])
    assert (error.source, error.key) == ("--set", "experiment.seed")
    assert "too long to read" in error.message


def test_bom_and_crlf_read_like_plain_text(tmp_path):
    """A UTF-8 byte-order mark and Windows line ends change nothing."""
    text = MINIMAL + "[agents.utility]\ncapacity_mw = 5\n"
    plain = write(tmp_path / "plain.toml", text)
    windows = tmp_path / "windows.toml"
    windows.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert load(windows) == load(plain)


def test_directory_is_not_an_experiment(tmp_path):
    """A directory given as the experiment is refused with one line."""
    error = load_error(tmp_path)
    assert error.line() == f"{tmp_path}: expected a regular file (a TOML file), got a directory"


def test_error_line_escapes_control_characters():
    """A key, value or file name with newlines or other controls stays on one line."""
    error = ExperimentError("unknown key 'a\nb'\u2028\u202e", "dir\nx.toml", "t.a\nb\x00")
    line = error.line()
    assert line == "dir\\nx.toml: t.a\\nb\\x00: unknown key 'a\\nb'\\u2028\\u202e"
    assert len(line.splitlines()) == 1


def test_message_of_a_huge_value_is_short():
    """Error renderings are bounded, whatever the size or depth of the value."""
    wide: list = []
    for _ in range(MAX_NESTING - 1):
        wide = [wide] * 20
    error = check(MINIMAL + "[graph]\nregions = 1\n")
    assert len(error.message) < 200
    with pytest.raises(ExperimentError) as info:
        validate({"experiment": {"name": "t"}, "graph": {"regions": wide}}, REGISTRY, {}, "x")
    assert len(info.value.line()) < 300


def test_experiment_name_length_is_capped():
    """A name of 100 characters is fine; one of 101 is an error naming the limit."""
    check_name("a" * 100, "x.toml")
    with pytest.raises(ExperimentError) as info:
        check_name("a" * 101, "x.toml")
    assert info.value.key == "experiment.name"
    assert info.value.message.startswith("expected at most 100 characters")


def test_size_estimate_bounds_the_supply_graph(baseline_path):
    """The estimated edges are never fewer than the graph built has, for several shapes."""
    for overrides in (
        [],
        ["graph.buyer_degree=1"],
        ["graph.buyer_degree=3", "agents.end_demand.count=40", "agents.inference.count=7"],
        ["agents.chip_vendor.count=1", "agents.datacenter.count=30"],
    ):
        experiment = load_experiment(baseline_path, overrides)
        size = estimate_size(experiment.config, experiment.components.sectors)
        assert experiment.supply_graph().number_of_edges() <= size.edges
        assert size.firms + size.segments == sum(
            table["count"] for table in experiment.config["agents"].values()
        )


def test_a_million_segments_sixty_thousand_firms_ten_million_edges_fit(baseline_path):
    """The size a coming feature needs validates: ~1M segments, ~60k firms, ~10M edges."""
    experiment = load_experiment(
        baseline_path,
        [
            "agents.end_demand.count=1000000",
            "agents.inference.count=10000",
            "agents.datacenter.count=30000",
            "agents.chip_vendor.count=10000",
            "agents.network_vendor.count=5000",
            "agents.utility.count=4998",
            "graph.buyer_degree=10",
        ],
    )
    size = estimate_size(experiment.config, experiment.components.sectors)
    assert size.firms == 60_000 and size.segments == 1_000_000
    assert size.edges >= 10_000_000
    assert size.bytes <= MEMORY_BUDGET_BYTES
