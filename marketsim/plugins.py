"""The plugin manager: built-ins first, then installed entry points, then experiment plugins.

Where plugins are found, in this order (which is also the order their hooks run in):

1. `marketsim.builtin`, always.
2. Entry points in the group ``marketsim`` of the *installed* distributions (limit them with
   ``MARKETSIM_LOAD_PLUGINS=name1,name2``; an empty value loads none). ``python -m marketsim``
   drops the working directory that ``-m`` puts first on ``sys.path`` (`marketsim.__main__`),
   so it finds the same plugins as the ``marketsim`` command: a ``*.dist-info`` or module that
   merely sits in the working directory is never imported.
3. The files or modules named in the experiment's ``plugins = [...]``. A file path (ending in
   ``.py`` or containing a path separator) is relative to the file that holds the ``plugins``
   key, which may be a base file named by ``extends``. A module name is looked up first next
   to that file (its directory is on ``sys.path`` only while the module is imported), then
   among installed modules; never in the working directory. Given with ``--set``, both are
   relative to the working directory instead.

The code that runs is the code that was hashed. A plugin file is read once, hashed (sha256,
recorded in the manifest) and executed from those bytes; its `PluginRecord` keeps the bytes,
and `restore_plugin_manager` (used when a pickled `marketsim.Experiment` is loaded, e.g. in a
worker process) executes them again without reading the disk. Module-name and entry-point
plugins are imported as usual and the hash of their file is taken at import; a process that
imports them again checks that hash and stops with ``plugin X changed on disk during the
run`` if the file differs.

Hooks are called through pluggy's relay (``manager.hook.<name>(...)``, or `call_hook`), so
pluggy's ordering, ``tryfirst``/``trylast`` and wrappers (``wrapper=True``, ``hookwrapper=True``)
work as pluggy documents them. pluggy calls the implementations of one hook last registered
first; plugins are therefore *registered* in the reverse of the order above, so within each of
pluggy's classes (``tryfirst``, plain, ``trylast``) the built-ins act first, then installed
plugins, then the experiment's in the order listed; wrappers run around all of them, the first
loaded outermost.

Each implementation is wrapped when its plugin is registered (`PluginManager.register`) so
that: a plugin that raises (``SystemExit`` included: a plugin may not end the program) is
reported by name and hook as a `PluginError` on one line (built-in code keeps its traceback;
``KeyboardInterrupt`` passes through, so Ctrl-C stays an interrupt); the caller's
``after_each`` check (`call_hook`) runs after each implementation, and after each half of a
wrapper, with the plugin's name, so a bad value is blamed on the plugin that wrote it; a
registry hook's ``register`` argument (`PerPlugin`) becomes that plugin's own callback; and a
``marketsim_validate_config`` implementation's answer is checked to be (key, message) pairs.

An installed (entry-point) plugin that fails to load or is not a valid plugin is skipped with
a `marketsim.diagnostics.MarketsimWarning` (an error under ``--strict``): one broken package
does not lock a user out of every command. A plugin the experiment names that fails to load
stops the command with an `ExperimentError` naming the ``plugins`` item.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from marketsim import hookspecs
from marketsim.diagnostics import warn
from marketsim.errors import ExperimentError
from marketsim.errors import PluginError
from marketsim.hookcalls import BUILTIN_NAME
from marketsim.hookcalls import VALIDATE_CONFIG
from marketsim.hookcalls import PerPlugin  # noqa: F401  (re-exported)
from marketsim.hookcalls import call_hook  # noqa: F401  (re-exported)
from marketsim.hookcalls import call_registry_hook  # noqa: F401  (re-exported)
from marketsim.hookcalls import describe_error as _describe
from marketsim.hookcalls import guarded  # noqa: F401  (re-exported)
from marketsim.hookcalls import named_implementation

hookimpl = pluggy.HookimplMarker("marketsim")
"""Decorator marking a plugin's hook implementations."""

ENTRY_POINT_GROUP = "marketsim"
LOAD_PLUGINS_ENV = "MARKETSIM_LOAD_PLUGINS"

BUILT_IN = "built-in"
ENTRY_POINT = "entry point"
FILE = "file"
MODULE = "module"


@dataclass(frozen=True)
class PluginRecord:
    """How one plugin was loaded: enough to load exactly the same code in another process.

    Attributes:
        name: the name it is registered under (the ``plugins`` item as written, the
            entry-point name, or ``marketsim.builtin``).
        source: ``built-in``, ``entry point`` or ``experiment`` (as listed and recorded).
        version: the distribution's version, or the module's ``__version__``.
        sha256: hash of the plugin's file when it was loaded ("" if it has none).
        kind: ``built-in``, ``entry point``, ``file`` or ``module``: how to load it again.
        target: the resolved file path, the module name, or the entry point's value.
        module_name: the name the module is kept under in ``sys.modules``.
        code: for a file plugin, the exact bytes that were executed.
        search_dir: for a module-name plugin, the directory looked in before installed modules.
    """

    name: str
    source: str
    version: str
    sha256: str
    kind: str
    target: str
    module_name: str = ""
    code: bytes = b""
    search_dir: str = ""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering how each plugin was loaded (`PluginRecord`).

    Every hook implementation is wrapped as its plugin is registered (by `plugin_manager` or
    by hand): errors name the plugin and hook, and the check `call_hook` was given runs after
    it (see the module docstring).
    """

    def __init__(self):
        super().__init__("marketsim")
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        """Plugin name -> how it was loaded, in load order (built-in, installed, experiment)."""
        self.checks: list[Callable[[str], None] | None] = []
        """The ``after_each`` checks of the hook calls in progress (innermost last)."""

    @property
    def sources(self) -> dict[str, tuple[str, str]]:
        """Plugin name -> (source, version)."""
        return {name: (r.source, r.version) for name, r in self.records.items()}

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin`` (pluggy's `register`) and wrap its hook implementations."""
        plugin_name = super().register(plugin, name)
        if plugin_name is not None:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function = named_implementation(self, impl, caller.name)
        return plugin_name

    def after(self, plugin_name: str) -> None:
        """Run the innermost hook call's ``after_each`` check for ``plugin_name``, if any."""
        check = self.checks[-1] if self.checks else None
        if check is not None:
            check(plugin_name)


@dataclass
class PluginInfo:
    """What `marketsim plugins` lists about one plugin."""

    name: str
    source: str
    version: str
    hooks: list[str] = field(default_factory=list)
    sha256: str = ""
    """Hash of the plugin's source file as loaded, so results record exactly which code ran."""


def plugin_manager(
    plugin_refs: list[str] | tuple[str, ...] = (),
    base_dir: Path | None = None,
    source: str | None = None,
) -> PluginManager:
    """A plugin manager with built-ins, entry points and the named plugins registered.

    Args:
        plugin_refs: the experiment's ``plugins`` list: ``.py`` file paths or module names.
        base_dir: directory file paths and module names are resolved from (the experiment's).
        source: the experiment file, for error messages.

    Raises:
        ExperimentError: a named plugin cannot be found, imported or registered.
        PluginError: an installed plugin fails to load.
    """
    loaded = [(_builtin_module(), _builtin_record()), *_load_entry_points()]
    keys: dict[str, str] = {}
    for index, ref in enumerate(plugin_refs):
        key = f"plugins[{index}]"
        module, record = _import_plugin(ref, (base_dir or Path.cwd()).resolve(), source, key)
        if any(module is other for other, _ in loaded):
            continue
        loaded.append((module, record))
        keys[record.name] = key

    def refuse(record: PluginRecord, error: Exception) -> None:
        if record.kind == ENTRY_POINT:
            _skip_entry_point(record.name, record.target, error)
            return
        message = f"plugin {record.name!r} is not valid: {error}"
        raise ExperimentError(message, source, keys.get(record.name)) from None

    return _registered(loaded, refuse)


def _registered(
    loaded: list[tuple[Any, PluginRecord]], refuse: Callable[[PluginRecord, Exception], None]
) -> PluginManager:
    """A manager with ``loaded`` registered so that pluggy calls them in the order given.

    pluggy calls a hook's implementations last registered first, so they are registered in
    reverse. ``refuse(record, error)`` is called for a plugin pluggy rejects (an invalid
    implementation, an unknown hook, a name taken); it raises, or returns to skip the plugin.
    """
    manager = PluginManager()
    accepted = []
    for module, record in reversed(loaded):
        try:
            _register(manager, module, record)
        except (pluggy.PluginValidationError, ValueError) as error:
            refuse(record, error)
            continue
        accepted.append(record)
    manager.records = {record.name: record for record in reversed(accepted)}
    return manager


def plugin_records(manager: PluginManager) -> tuple[PluginRecord, ...]:
    """How every plugin of ``manager`` was loaded, in load order (picklable).

    Raises:
        PluginError: a plugin was registered by hand (``manager.register``), so there is no
            record of how to load it in another process.
    """
    by_hand = [name for name, _ in manager.list_name_plugin() if name not in manager.records]
    if by_hand:
        raise PluginError(
            f"plugin {by_hand[0]!r} was registered by hand, not loaded from a file, module or "
            "entry point: it cannot be loaded in another process (name it in the experiment)"
        )
    return tuple(manager.records.values())


def restore_plugin_manager(records: tuple[PluginRecord, ...]) -> PluginManager:
    """A manager with exactly the plugins of ``records``, in this or another process.

    File plugins run from the recorded bytes (the disk is not read); module-name and
    entry-point plugins are imported and must still hash as recorded.

    Raises:
        PluginError: a plugin's file changed on disk since it was recorded, or it cannot be
            loaded again.
    """
    loaded = []
    for record in records:
        if record.kind == BUILT_IN:
            loaded.append((_builtin_module(), record))
            continue
        what = "installed plugin" if record.kind == ENTRY_POINT else "plugin"
        try:
            module = _load_again(record)
        except PluginError:
            raise
        except (Exception, SystemExit) as error:
            raise PluginError(
                f"{what} {record.name!r} failed to load again: {_describe(error)}"
            ) from None
        home = None if record.kind == FILE else _home_module(record, module)
        if home is not None and _module_sha256(home) != record.sha256:
            raise PluginError(
                f"{what} {record.name!r} changed on disk during the run "
                f"({getattr(home, '__file__', None) or record.target}); "
                "run again to use the new code"
            )
        loaded.append((module, record))

    def refuse(record: PluginRecord, error: Exception) -> None:
        what = "installed plugin" if record.kind == ENTRY_POINT else "plugin"
        raise PluginError(f"{what} {record.name!r} is not valid: {error}") from None

    return _registered(loaded, refuse)


def _register(manager: PluginManager, module: Any, record: PluginRecord) -> None:
    manager.register(module, name=record.name)
    try:
        manager.check_pending()
    except BaseException:
        manager.unregister(module)
        raise


def _builtin_module() -> ModuleType:
    from marketsim import builtin

    return builtin


def _builtin_record() -> PluginRecord:
    return PluginRecord(
        BUILTIN_NAME,
        BUILT_IN,
        _version("marketsim"),
        _module_sha256(_builtin_module()),
        BUILT_IN,
        BUILTIN_NAME,
        BUILTIN_NAME,
    )


def _load_entry_points() -> list[tuple[Any, PluginRecord]]:
    """The installed plugins that load; each one that does not is skipped with a warning."""
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    loaded: list[tuple[Any, PluginRecord]] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry.name not in allowed:
            continue
        if entry.name == BUILTIN_NAME or any(r.name == entry.name for _, r in loaded):
            continue
        try:
            plugin = entry.load()
            dist = entry.dist.version if entry.dist is not None else "unknown"
            sha256 = _module_sha256(sys.modules.get(entry.module))
        except (Exception, SystemExit) as error:  # a broken installed plugin is the user's to fix
            _skip_entry_point(entry.name, entry.value, error)
            continue
        record = PluginRecord(
            entry.name, ENTRY_POINT, dist, sha256, ENTRY_POINT, entry.value, entry.module
        )
        loaded.append((plugin, record))
    return loaded


def _skip_entry_point(name: str, value: str, error: BaseException) -> None:
    """Warn that installed plugin ``name`` is skipped (an error under ``--strict``)."""
    warn(
        f"installed plugin {name!r} (entry point {value}) failed to load: {_describe(error)}",
        "it is skipped (marketsim --strict makes this an error; MARKETSIM_LOAD_PLUGINS "
        "chooses which installed plugins load)",
    )


def _import_plugin(
    ref: str, base_dir: Path, source: str | None, key: str
) -> tuple[ModuleType, PluginRecord]:
    if not isinstance(ref, str) or not ref.strip():
        raise ExperimentError("expected a plugin file path or module name", source, key)
    is_file = ref.endswith(".py") or "/" in ref or os.sep in ref
    try:
        if is_file:
            path = (base_dir / ref).resolve()
            if not path.is_file():
                raise ExperimentError(f"plugin file not found: {path}", source, key)
            code = path.read_bytes()
            module_name = _file_module_name(path, code)
            module = _exec_plugin_file(module_name, path, code)
            kind, target, sha256, search_dir = FILE, str(path), _sha256(code), ""
        else:
            module = _import_module_plugin(ref, base_dir)
            module_name, code = module.__name__, b""
            kind, target, search_dir = MODULE, ref, str(base_dir)
            sha256 = _module_sha256(module)
    except ExperimentError:
        raise
    except ModuleNotFoundError as error:
        raise ExperimentError(
            f"plugin {ref!r} not found ({error}); expected a .py file (relative to the "
            "experiment file), a module next to the experiment file or an installed module",
            source,
            key,
        ) from None
    except (Exception, SystemExit) as error:
        raise ExperimentError(
            f"plugin {ref!r} failed to import: {_describe(error)}", source, key
        ) from None
    version = str(getattr(module, "__version__", "unversioned"))
    record = PluginRecord(
        ref, "experiment", version, sha256, kind, target, module_name, code, search_dir
    )
    return module, record


def _load_again(record: PluginRecord) -> Any:
    """Load a recorded plugin in this process (file plugins from their recorded bytes)."""
    if record.kind == FILE:
        return _exec_plugin_file(record.module_name, Path(record.target), record.code)
    if record.kind == MODULE:
        return _import_module_plugin(record.target, Path(record.search_dir))
    if record.kind == ENTRY_POINT:
        entry = importlib.metadata.EntryPoint(record.name, record.target, ENTRY_POINT_GROUP)
        return entry.load()
    raise ValueError(f"unknown plugin kind {record.kind!r}")


def _home_module(record: PluginRecord, plugin: Any) -> ModuleType | None:
    """The module whose file is hashed for a module-name or entry-point plugin."""
    return plugin if record.kind == MODULE else sys.modules.get(record.module_name)


class _PluginSource(importlib.abc.SourceLoader):
    """Loads a plugin module from bytes already read (never from the disk again)."""

    def __init__(self, path: str, code: bytes):
        self.path = path
        self.code = code

    def get_filename(self, fullname: str) -> str:
        return self.path

    def get_data(self, path: str) -> bytes:
        if path != self.path:
            raise OSError(f"{path}: a plugin file is executed from the bytes read at load")
        return self.code


def _file_module_name(path: Path, code: bytes) -> str:
    """``sys.modules`` name of a file plugin: one per path and content."""
    stem = re.sub(r"\W", "_", path.stem)
    digest = _sha256(str(path).encode() + b"\0" + code)[:16]
    return f"marketsim_plugin_{stem}_{digest}"


def _exec_plugin_file(module_name: str, path: Path, code: bytes) -> ModuleType:
    """Execute a plugin file's bytes as module ``module_name`` (once per process)."""
    existing = sys.modules.get(module_name)
    if existing is not None:
        return existing
    loader = _PluginSource(str(path), code)
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look modules up here
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    _CODE_SHA256[module] = _sha256(code)
    return module


def _import_module_plugin(name: str, search_dir: Path) -> ModuleType:
    """Import module ``name`` from ``search_dir`` if it is there, else from installed modules.

    ``search_dir`` is on ``sys.path`` only while the module is imported; a module of the same
    top-level name already imported from elsewhere is refused rather than silently reused.
    """
    top = name.partition(".")[0]
    importlib.invalidate_caches()
    local = importlib.machinery.PathFinder.find_spec(top, [str(search_dir)])
    if local is None:
        return importlib.import_module(name)
    loaded = sys.modules.get(top)
    if loaded is not None and not _comes_from(loaded, search_dir, top):
        raise ImportError(
            f"a module named {top!r} is already imported from "
            f"{getattr(loaded, '__file__', None) or loaded!r}, not from {search_dir}"
        )
    entry = str(search_dir)
    sys.path.insert(0, entry)
    try:
        return importlib.import_module(name)
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _comes_from(module: ModuleType, directory: Path, top: str) -> bool:
    places = {Path(p).resolve() for p in getattr(module, "__path__", None) or ()}
    file = getattr(module, "__file__", None)
    if file:
        places.add(Path(file).resolve().parent)
    return bool(places & {directory, directory / top})


_CODE_SHA256: weakref.WeakKeyDictionary[ModuleType, str] = weakref.WeakKeyDictionary()
"""Module -> hash of its file when this process first hashed it (at import, for plugins)."""


def _module_sha256(module: ModuleType | None) -> str:
    """Hash of a module's file as first seen by this process; "" if it has no file."""
    if module is None:
        return ""
    known = _CODE_SHA256.get(module)
    if known is not None:
        return known
    path = getattr(module, "__file__", None)
    if not path or not os.path.isfile(path):
        return ""
    with open(path, "rb") as handle:
        digest = _sha256(handle.read())
    _CODE_SHA256[module] = digest
    return digest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def validate_config(manager: PluginManager, config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every plugin's (key, message) problems with the resolved experiment ``config``.

    Calls ``marketsim_validate_config`` with a copy of ``config`` (a plugin cannot change the
    experiment it checks).

    Raises:
        PluginError: an implementation raised, or answered something other than (key,
            message) pairs of strings.
    """
    answers = call_hook(manager, VALIDATE_CONFIG, experiment=copy.deepcopy(config))
    return [problem for answer in answers for problem in answer]


def plugin_infos(manager: PluginManager) -> list[PluginInfo]:
    """Name, source, version, implemented hooks and code hash of every registered plugin."""
    infos = []
    order = list(manager.records)
    listed = sorted(
        manager.list_name_plugin(),
        key=lambda item: order.index(item[0]) if item[0] in order else len(order),
    )
    for name, plugin in listed:
        record = manager.records.get(name)
        if record is None:  # registered by hand, not through this module
            source, version = "registered", "unknown"
            sha256 = _module_sha256(plugin if isinstance(plugin, ModuleType) else None)
        else:
            source, version, sha256 = record.source, record.version, record.sha256
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name, source, version, hooks, sha256))
    return infos


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
