"""The plugin manager: built-ins first, then installed entry points, then experiment plugins.

Plugins are found from (1) `marketsim.builtin`, (2) installed packages' entry points in the
group ``marketsim`` (limit them with ``MARKETSIM_LOAD_PLUGINS=name1,name2``; an empty value
loads none), and (3) the files or modules named in the experiment's ``plugins = [...]``
(paths relative to the file that holds the ``plugins`` key, which may be a base file named
by ``extends``; relative to the working directory when given with ``--set``). A plugin that
fails to load or raises inside a hook is reported by name and hook as a `PluginError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from marketsim import hookspecs
from marketsim.errors import ExperimentError
from marketsim.errors import PluginError

hookimpl = pluggy.HookimplMarker("marketsim")
"""Decorator marking a plugin's hook implementations."""

ENTRY_POINT_GROUP = "marketsim"
LOAD_PLUGINS_ENV = "MARKETSIM_LOAD_PLUGINS"
BUILTIN_NAME = "marketsim.builtin"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering where each plugin came from and its version."""

    def __init__(self):
        super().__init__("marketsim")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, tuple[str, str]] = {}
        """Plugin name -> (source, version)."""


@dataclass
class PluginInfo:
    """What `marketsim plugins` lists about one plugin."""

    name: str
    source: str
    version: str
    hooks: list[str] = field(default_factory=list)
    sha256: str = ""
    """Hash of the plugin's source file, so results record exactly which code ran."""


def plugin_manager(
    plugin_refs: list[str] | tuple[str, ...] = (),
    base_dir: Path | None = None,
    source: str | None = None,
) -> PluginManager:
    """A plugin manager with built-ins, entry points and the named plugins registered.

    Args:
        plugin_refs: the experiment's ``plugins`` list: ``.py`` file paths or module names.
        base_dir: directory relative file paths are resolved from (the experiment's).
        source: the experiment file, for error messages.

    Raises:
        ExperimentError: a named plugin cannot be found, imported or registered.
    """
    from marketsim import builtin

    manager = PluginManager()
    manager.register(builtin, name=BUILTIN_NAME)
    manager.sources[BUILTIN_NAME] = ("built-in", _version("marketsim"))
    _load_entry_points(manager)
    for index, ref in enumerate(plugin_refs):
        key = f"plugins[{index}]"
        module = _import_plugin(ref, base_dir or Path.cwd(), source, key)
        if manager.is_registered(module):
            continue
        try:
            manager.register(module, name=ref)
            manager.check_pending()
        except (pluggy.PluginValidationError, ValueError) as error:
            manager.unregister(module)
            raise ExperimentError(f"plugin {ref!r} is not valid: {error}", source, key) from None
        version = str(getattr(module, "__version__", "unversioned"))
        manager.sources[ref] = ("experiment", version)
    return manager


def _load_entry_points(manager: PluginManager) -> None:
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry.name not in allowed:
            continue
        if manager.has_plugin(entry.name):
            continue
        try:
            module = entry.load()
            manager.register(module, name=entry.name)
            manager.check_pending()
        except Exception as error:  # a broken installed plugin is the user's to fix
            raise PluginError(
                f"installed plugin {entry.name!r} (entry point {entry.value}) failed to "
                f"load: {type(error).__name__}: {error}"
            ) from None
        dist = entry.dist.version if entry.dist is not None else "unknown"
        manager.sources[entry.name] = ("entry point", dist)


def _import_plugin(ref: str, base_dir: Path, source: str | None, key: str) -> ModuleType:
    if not isinstance(ref, str) or not ref.strip():
        raise ExperimentError("expected a plugin file path or module name", source, key)
    is_file = ref.endswith(".py") or "/" in ref or os.sep in ref
    try:
        if not is_file:
            return importlib.import_module(ref)
        path = (base_dir / ref).resolve()
        if not path.is_file():
            raise ExperimentError(f"plugin file not found: {path}", source, key)
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        module_name = f"marketsim_plugin_{path.stem}_{digest}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module
    except ExperimentError:
        raise
    except ModuleNotFoundError as error:
        raise ExperimentError(
            f"plugin {ref!r} not found ({error}); expected a .py file (relative to the "
            "experiment file) or an importable module name",
            source,
            key,
        ) from None
    except Exception as error:
        raise ExperimentError(
            f"plugin {ref!r} failed to import: {type(error).__name__}: {error}", source, key
        ) from None


def call_hook(manager: PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of a hook in registration order; name a plugin that raises.

    Registration order means the built-ins act first, then installed plugins, then the experiment's
    plugins in the order listed; ``tryfirst``/``trylast`` impls go first/last. Built-in
    implementations keep their tracebacks (an exception there is a bug in marketsim, not a user
    error).
    """
    results = []
    hook = getattr(manager.hook, hook_name)
    impls = sorted(hook.get_hookimpls(), key=lambda i: 0 if i.tryfirst else 2 if i.trylast else 1)
    for impl in impls:
        args = {name: kwargs[name] for name in impl.argnames}
        result = guarded(impl.plugin_name, f"hook {hook_name}", impl.function, **args)
        if result is not None:
            results.append(result)
    return results


def call_registry_hook(manager: PluginManager, hook_name: str, make_register) -> None:
    """Call a registry hook, giving each plugin its own ``register`` callback.

    Args:
        manager: the plugin manager.
        hook_name: a ``marketsim_register_*`` hook.
        make_register: plugin name -> the ``register`` callback for that plugin.
    """
    hook = getattr(manager.hook, hook_name)
    for impl in hook.get_hookimpls():
        guarded(
            impl.plugin_name,
            f"hook {hook_name}",
            impl.function,
            register=make_register(impl.plugin_name),
        )


def guarded(plugin_name: str, what: str, function, *args, **kwargs):
    """Call plugin code; if it raises, report the plugin and ``what`` it was doing.

    Built-in code is called unguarded: an exception there is a bug and keeps its traceback.
    """
    if plugin_name == BUILTIN_NAME:
        return function(*args, **kwargs)
    try:
        return function(*args, **kwargs)
    except PluginError:
        raise
    except Exception as error:
        raise PluginError(
            f"plugin {plugin_name!r} raised in {what}: {type(error).__name__}: {error}"
        ) from None


def plugin_infos(manager: PluginManager) -> list[PluginInfo]:
    """Name, source, version and implemented hooks of every registered plugin."""
    infos = []
    for name, plugin in manager.list_name_plugin():
        source, version = manager.sources.get(name, ("registered", "unknown"))
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name=name,
                source=source,
                version=version,
                hooks=hooks,
                sha256=_source_sha256(plugin),
            )
        )
    return infos


def _source_sha256(module: Any) -> str:
    path = getattr(module, "__file__", None)
    if not path or not os.path.isfile(path):
        return ""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
