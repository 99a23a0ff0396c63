"""From an experiment file to a validated `Experiment` ready to run.

`load_experiment` reads the TOML (with ``extends``), applies ``--set`` overrides, loads the
plugins the file names, gathers every registered schema, validates, and checks what only
makes sense once the whole experiment is known (graph restrictions, a complete chain).
Nothing runs and nothing is written until all of that has passed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import networkx as nx

from marketsim.config import SET_SOURCE
from marketsim.config import apply_overrides
from marketsim.config import experiment_sha256
from marketsim.config import leaf_paths
from marketsim.config import override_texts
from marketsim.config import read_experiment_file
from marketsim.config import schema_problems
from marketsim.config import validate
from marketsim.errors import ExperimentError
from marketsim.errors import PluginError
from marketsim.graph import SupplyGraph
from marketsim.graph import check_graph_table
from marketsim.graph import sample_supply_graph
from marketsim.graph import supply_graph_problem
from marketsim.graph_io import read_graph_file
from marketsim.graph_io import resolve_graph_file
from marketsim.limits import MEMORY_BUDGET_BYTES
from marketsim.limits import estimate_size
from marketsim.markets.market import GoodSpec
from marketsim.markets.market import MechanismSpec
from marketsim.metrics import TABLES
from marketsim.metrics import MetricSpec
from marketsim.plugins import BUILTIN_NAME
from marketsim.plugins import PluginManager
from marketsim.plugins import call_hook
from marketsim.plugins import call_registry_hook
from marketsim.plugins import plugin_manager
from marketsim.plugins import plugin_records
from marketsim.plugins import restore_plugin_manager
from marketsim.plugins import validate_config
from marketsim.recipes import add_seller_inputs
from marketsim.recipes import check_added_inputs
from marketsim.recipes import goods_bought
from marketsim.schema import Registry
from marketsim.schema import TableSchema
from marketsim.sectors.base import Sector


@dataclass
class Components:
    """Everything the plugins registered, by name, in registration order."""

    goods: dict[str, GoodSpec] = field(default_factory=dict)
    sectors: dict[str, type[Sector]] = field(default_factory=dict)
    mechanisms: dict[str, MechanismSpec] = field(default_factory=dict)
    metrics: list[MetricSpec] = field(default_factory=list)
    tables: dict[str, TableSchema] = field(default_factory=dict)
    outside_accounts: dict[str, str] = field(default_factory=dict)
    """Outside account name -> what it stands for (`marketsim_register_outside_accounts`)."""
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) -> the plugin that registered it (kind: sector, good, mechanism, ...)."""

    def origin(self, kind: str, name: str) -> str:
        """The plugin that registered ``name`` of ``kind``."""
        return self.origins.get((kind, name), BUILTIN_NAME)

    def registry(self) -> Registry:
        """The schemas experiment files are validated against."""
        return Registry(
            tables=dict(self.tables),
            sector_tables={name: cls.schema for name, cls in self.sectors.items()},
            market_goods={name: g.default_mechanism for name, g in self.goods.items()},
            mechanism_tables={name: m.schema for name, m in self.mechanisms.items()},
        )


def collect_components(manager: PluginManager) -> Components:
    """Call every registry hook and gather what the plugins register.

    Raises:
        PluginError: a plugin registers something malformed or a name twice.
    """
    found = Components()

    def adder(kind: str, target: dict, check, plugin: str):
        def register(item, *extra):
            name, value = check(item, *extra)
            if name in target:
                first = found.origins.get((kind, name), BUILTIN_NAME)
                raise PluginError(
                    f"{kind} {name!r} is registered twice (by plugin {first!r} "
                    f"and by plugin {plugin!r})"
                )
            target[name] = value
            found.origins[(kind, name)] = plugin

        return register

    def sector(cls):
        if not (isinstance(cls, type) and issubclass(cls, Sector) and cls.name):
            raise PluginError(f"register_sectors: expected a named Sector subclass, got {cls!r}")
        return cls.name, cls

    def good(spec):
        if not isinstance(spec, GoodSpec):
            raise PluginError(f"register_goods: expected a GoodSpec, got {spec!r}")
        return spec.name, spec

    def mechanism(spec):
        if not isinstance(spec, MechanismSpec):
            raise PluginError(f"register_mechanisms: expected a MechanismSpec, got {spec!r}")
        return spec.name, spec

    def table(name, schema=None, plugin=BUILTIN_NAME):
        if not isinstance(name, str) or not isinstance(schema, TableSchema):
            raise PluginError("register_config_tables: expected (name, TableSchema)")
        if name in ("agents", "markets", "plugins"):
            raise PluginError(f"register_config_tables: {name!r} is reserved")
        for key, problem in schema_problems(schema):
            raise PluginError(f"plugin {plugin!r}: config table [{name}], key {key!r}: {problem}")
        return name, schema

    def metric_register(plugin: str):
        def register(spec):
            if not isinstance(spec, MetricSpec) or spec.table not in TABLES:
                raise PluginError(
                    f"register_metrics: expected a MetricSpec on {TABLES}, got {spec!r}"
                )
            if spec.column in RESERVED_COLUMNS:
                raise PluginError(
                    f"metric {spec.table}.{spec.column}: {spec.column!r} is a key "
                    "column of the results tables; choose another name"
                )
            key = ("metric", f"{spec.table}.{spec.column}")
            if key in found.origins:
                raise PluginError(
                    f"metric {key[1]} is registered twice (by plugin "
                    f"{found.origins[key]!r} and by plugin {plugin!r})"
                )
            found.metrics.append(spec)
            found.origins[("metric", f"{spec.table}.{spec.column}")] = plugin

        return register

    call_registry_hook(
        manager, "marketsim_register_goods", lambda plugin: adder("good", found.goods, good, plugin)
    )
    call_registry_hook(
        manager,
        "marketsim_register_sectors",
        lambda plugin: adder("sector", found.sectors, sector, plugin),
    )
    call_registry_hook(
        manager,
        "marketsim_register_mechanisms",
        lambda plugin: adder("mechanism", found.mechanisms, mechanism, plugin),
    )
    call_registry_hook(manager, "marketsim_register_metrics", metric_register)
    call_registry_hook(
        manager,
        "marketsim_register_config_tables",
        lambda plugin: adder(
            "config table", found.tables, lambda *item: table(*item, plugin=plugin), plugin
        ),
    )

    def outside_register(plugin: str):
        def register(name, doc=""):
            if not isinstance(name, str) or not name or not isinstance(doc, str):
                raise PluginError(
                    f"plugin {plugin!r}: register_outside_accounts: expected (name, doc) "
                    f"strings, got {name!r}"
                )
            if ":" in name or name.startswith("market"):
                raise PluginError(
                    f"plugin {plugin!r}: outside account {name!r}: names with ':' or starting "
                    "with 'market' are the firms' and markets' own"
                )
            known = found.outside_accounts.get(name)
            if known is not None and known != doc and doc:
                first = found.origins.get(("outside account", name), BUILTIN_NAME)
                raise PluginError(
                    f"outside account {name!r} is registered twice with different meanings "
                    f"(by plugin {first!r} and by plugin {plugin!r})"
                )
            if known is None:
                found.outside_accounts[name] = doc
                found.origins[("outside account", name)] = plugin

        return register

    call_registry_hook(manager, "marketsim_register_outside_accounts", outside_register)
    for cls in found.sectors.values():
        for name in (cls.sells, *cls.buys):
            if name is not None and name not in found.goods:
                raise PluginError(
                    f"sector {cls.name!r} trades {name!r}, which no plugin registers as a good"
                )
    return found


@dataclass
class Experiment:
    """A validated experiment, ready to run.

    Attributes:
        config: the resolved experiment (every default filled in).
        source: the file it was read from.
        sha256: hash of the canonical JSON of ``config``.
        manager: the plugin manager with the experiment's plugins loaded.
        components: what the plugins registered.
        overrides: the ``--set`` overrides it was loaded with (to load it again elsewhere).

    An experiment pickles (``pickle.dumps(experiment)``) without its manager and components:
    it carries the resolved config and how each plugin was loaded, file plugins with the exact
    bytes that were hashed. Unpickling, in this or another process, loads those plugins again
    without reading the experiment file or a plugin file (`restore_plugin_manager`), so it runs
    identically; a module-name or entry-point plugin whose file changed since stops with
    `PluginError` ("plugin X changed on disk during the run").
    """

    config: dict[str, Any]
    source: str
    sha256: str
    manager: PluginManager
    components: Components
    overrides: list[str] = field(default_factory=list)
    graph_file: SupplyGraph | None = None
    """The supply graph read from ``[graph] file`` (`marketsim.graph_io`), None without one;
    it travels with the pickled experiment, so workers do not read the file again."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["manager"] = plugin_records(self.manager)
        del state["components"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["manager"] = manager = restore_plugin_manager(state["manager"])
        state["components"] = collect_components(manager)
        self.__dict__.update(state)

    def with_overrides(self, overrides: Sequence[str] | Mapping[str, Any]) -> Experiment:
        """A copy with ``overrides`` applied and every check run again (a new ``sha256``).

        Args:
            overrides: as for `load_experiment`: ``"key=value"`` strings or a mapping.

        Raises:
            ExperimentError: an override is invalid, or changes ``plugins`` (load the file
                again with `load_experiment` for that).
        """
        texts = override_texts(overrides)
        origins = {leaf: self.source for leaf in leaf_paths(self.config)}
        raw = apply_overrides(self.config, origins, texts)
        if raw.get("plugins") != self.config["plugins"]:
            raise ExperimentError(
                "cannot change plugins of a loaded experiment; pass them to load_experiment",
                SET_SOURCE,
                "plugins",
            )
        return _validated(
            raw, origins, self.source, self.manager, self.components, [*self.overrides, *texts]
        )

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.config["experiment"]["name"]

    def sector_names(self) -> list[str]:
        """Sectors present in the experiment, in registration order."""
        return [name for name in self.components.sectors if name in self.config["agents"]]

    @property
    def graph_seed(self) -> int:
        """Seed of the supply graph: ``[graph] seed``, or ``experiment.seed`` when it is -1."""
        seed = self.config["graph"]["seed"]
        return self.config["experiment"]["seed"] if seed < 0 else seed

    def supply_graph(self) -> nx.DiGraph:
        """The supply graph as networkx (built from `supply_edges`, or as a plugin left it).

        Raises:
            PluginError: as `supply_edges`.
        """
        return self.supply_edges().to_networkx()

    def supply_edges(self) -> SupplyGraph:
        """The supply graph as arrays: drawn from ``[graph]`` and the seed, or read from
        ``[graph] file``, then modified by plugins.

        Without a ``marketsim_modify_graph`` implementation no networkx graph is built. With
        one, the networkx graph is built, edited, checked, and the edges read back from it
        (``.networkx`` holds it).

        Raises:
            PluginError: a ``marketsim_modify_graph`` implementation raised, or left the graph
                invalid (`supply_graph_problem`): names the plugin and the first problem.
        """
        present = self.sector_names()
        classes = self.components.sectors
        sells = {name: classes[name].sells for name in present}
        buys = {name: goods_bought(classes[name], self.config["agents"][name]) for name in present}
        if self.graph_file is not None:
            supply = self.graph_file
        else:
            supply = sample_supply_graph(
                {name: self.config["agents"][name]["count"] for name in present},
                sells,
                buys,
                self.config["graph"],
                self.graph_seed,
            )
        if not self.manager.hook.marketsim_modify_graph.get_hookimpls():
            return supply
        graph = supply.to_networkx()
        participants = {node: (data["sector"], data["index"]) for node, data in graph.nodes.items()}

        def check(plugin: str) -> None:
            problem = supply_graph_problem(graph, participants, sells, buys)
            if problem is not None:
                raise PluginError(
                    f"plugin {plugin!r} left an invalid supply graph in hook "
                    f"marketsim_modify_graph: {problem}"
                )

        call_hook(
            self.manager,
            "marketsim_modify_graph",
            after_each=check,
            graph=graph,
            experiment=self.config,
        )
        return supply.with_edges_from(graph)


def load_experiment(
    path: str | Path, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> Experiment:
    """Read, override and validate an experiment file, loading the plugins it names.

    Args:
        path: the experiment TOML file.
        overrides: ``"dotted.key=value"`` strings (values in TOML syntax, as with ``--set``),
            or a mapping of dotted keys to Python values (``{"experiment.steps": 12}``).

    Returns:
        The validated `Experiment`.

    Raises:
        ExperimentError: the file, an override or a plugin is invalid (one-line message).
    """
    source = str(path)
    overrides = override_texts(overrides)
    raw, origins = read_experiment_file(path)
    raw = apply_overrides(raw, origins, overrides)
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ExperimentError(
            "expected a list of strings (plugin files or modules)",
            origins.get("plugins", source),
            "plugins",
        )
    plugins_source = origins.get("plugins", source)
    base_dir = Path.cwd() if plugins_source == SET_SOURCE else Path(plugins_source).parent
    manager = plugin_manager(plugins, base_dir.resolve(), plugins_source)
    try:
        components = collect_components(manager)
    except PluginError as error:
        raise ExperimentError(str(error), plugins_source, "plugins") from None
    return _validated(raw, origins, source, manager, components, overrides)


def _validated(raw, origins, source, manager, components, overrides) -> Experiment:
    """The `Experiment` from overridden tables, once every check has passed."""
    check_name(config_name(raw), origins.get("experiment.name", source))
    config = validate(raw, components.registry(), origins, source)
    present = {name: table for name, table in config["agents"].items()}
    config["markets"] = {
        good: table
        for good, table in config["markets"].items()
        if any(components.sectors[s].sells == good for s in present)
    }
    check_graph_table(config["graph"], list(config["markets"]), source)
    add_seller_inputs(config, components)
    check_added_inputs(config, components, origins, source)
    check_chain(config, components, source)
    for name, params in config["agents"].items():
        for key, message in components.sectors[name].check_params(params):
            raise ExperimentError(
                message, origins.get(f"agents.{name}.{key}", source), f"agents.{name}.{key}"
            )
    graph_file, graph_sha256 = _graph_file(config, origins, source, components)
    if graph_file is not None:
        check_size(config, components, source, graph_file.n_edges)
    for key, message in validate_config(manager, config):
        raise ExperimentError(message, origins.get(key, source), key)
    sha256 = experiment_sha256(config)
    if graph_file is not None:  # the file's bytes are part of what is run
        sha256 = hashlib.sha256(f"{sha256} {graph_sha256}".encode()).hexdigest()
    return Experiment(config, source, sha256, manager, components, list(overrides), graph_file)


def _graph_file(config, origins, source, components) -> tuple[SupplyGraph | None, str]:
    """The supply graph of ``[graph] file`` checked against the experiment, and its sha256;
    (None, "") without one (`marketsim.graph_io`)."""
    path = resolve_graph_file(config, origins, source)
    if path is None:
        return None, ""
    present = [name for name in components.sectors if name in config["agents"]]
    return read_graph_file(
        path,
        {name: config["agents"][name]["count"] for name in present},
        {name: components.sectors[name].sells for name in present},
        {name: goods_bought(components.sectors[name], config["agents"][name]) for name in present},
        config["graph"],
        origins.get("graph.file", source),
    )


RESERVED_COLUMNS = ("replication", "step", "sector", "market", "firm", "region")
"""Key columns of the results tables; no metric may take these names."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LENGTH = 100
"""Longest experiment name: it names a directory, and file systems cap a name at 255 bytes."""


def config_name(raw: dict[str, Any]) -> Any:
    """The experiment's name as written (before validation), or None."""
    table = raw.get("experiment")
    return table.get("name") if isinstance(table, dict) else None


def check_name(name: Any, source: str) -> None:
    """The name becomes a directory: up to 100 letters, digits, ``.``, ``_``, ``-``; no ``..``."""
    if not isinstance(name, str):
        return
    if len(name) > MAX_NAME_LENGTH:
        raise ExperimentError(
            f"expected at most {MAX_NAME_LENGTH} characters (it names the results directory), "
            f"got {len(name)}: {name[:20]!r}...",
            source,
            "experiment.name",
        )
    if not _NAME.fullmatch(name) or ".." in name:
        raise ExperimentError(
            f"must be letters, digits, '.', '_' or '-' (it names the results directory), "
            f"got {name!r}",
            source,
            "experiment.name",
        )


def check_chain(config: dict[str, Any], components: Components, source: str) -> None:
    """Every good a present sector buys must be sold by a present sector.

    Raises:
        ExperimentError: naming the sector whose input has no seller.
    """
    present = [name for name in components.sectors if name in config["agents"]]
    if not present or not any(config["agents"][n]["count"] for n in present):
        raise ExperimentError(
            "the experiment has no agents: add [agents.<sector>] tables", source, "agents"
        )
    sold = {components.sectors[n].sells for n in present if config["agents"][n]["count"]}
    for name in present:
        for good in goods_bought(components.sectors[name], config["agents"][name]):
            if good not in sold and config["agents"][name]["count"]:
                sellers = [s for s, c in components.sectors.items() if c.sells == good]
                hint = f" (add [agents.{sellers[0]}] with count >= 1)" if sellers else ""
                raise ExperimentError(
                    f"buys {good!r} but no sector in the experiment sells it{hint}",
                    source,
                    f"agents.{name}",
                )
    check_size(config, components, source)


def check_size(
    config: dict[str, Any], components: Components, source: str, edges: int | None = None
) -> None:
    """The experiment must fit the memory budget (`marketsim.limits.estimate_size`; ``edges``:
    the supply graph's, when read from ``[graph] file``).

    Raises:
        ExperimentError: on the key that contributes most (``agents`` or ``experiment``; the
            firm-level rows of one step never cost more than the members' own state), with
            the counts and the estimate.
    """
    size = estimate_size(config, components.sectors, edges)
    if size.bytes > MEMORY_BUDGET_BYTES:
        parts = size.bytes_by_key()
        key = max(parts, key=parts.__getitem__)
        raise ExperimentError(
            f"expected an experiment that fits in {MEMORY_BUDGET_BYTES / 2**30:g} GiB of "
            f"memory (docs/experiments.md, Bounds), got {size.describe()}",
            source,
            key,
        )
