"""Calling hooks through pluggy's relay, with every plugin's errors and writes named.

`marketsim.plugins.PluginManager` wraps each hook implementation as its plugin is registered
(`named_implementation`); `call_hook` calls a hook through ``manager.hook.<name>(...)`` with
a check to run after each implementation. So pluggy's own ordering, ``tryfirst``/``trylast``
and wrappers all work, and still:

- a plugin that raises (``SystemExit`` included: a plugin may not end the program) is
  reported on one line naming the plugin and the hook (`PluginError`); built-in code keeps
  its traceback, and ``KeyboardInterrupt`` passes through (Ctrl-C stays an interrupt);
- the caller's ``after_each(plugin name)`` runs after each implementation, and after each
  half of a wrapper (before and after its ``yield``), so a NaN is blamed on its writer;
- a registry hook's ``register`` (a `PerPlugin` argument) is that plugin's own callback;
- a ``marketsim_validate_config`` answer must be (key, message) pairs of strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketsim.errors import PluginError
from marketsim.errors import one_line

BUILTIN_NAME = "marketsim.builtin"
"""The name marketsim's own plugin (`marketsim.builtin`) is registered under."""


def call_hook(
    manager,
    hook_name: str,
    *,
    after_each: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Call a hook through pluggy's relay; ``after_each`` runs after each implementation.

    pluggy's ordering applies: ``tryfirst`` implementations first and ``trylast`` last;
    within each, the built-ins act first, then installed plugins, then the experiment's in
    the order listed; wrappers (``wrapper=True``, ``hookwrapper=True``) run around the
    others. A plugin that raises is named with the hook (`PluginError`); built-in
    implementations keep their tracebacks (an exception there is a bug in marketsim).

    Args:
        manager: the plugin manager.
        hook_name: the hook.
        after_each: called with the plugin's name after each implementation returns, and
            after each half of a wrapper (to check what it changed and blame the right
            plugin).
        **kwargs: the hook's arguments; each implementation receives those it names.

    Returns:
        The implementations' results that are not None, in the order they were called.
    """
    manager.checks.append(after_each)
    try:
        return getattr(manager.hook, hook_name)(**kwargs)
    finally:
        manager.checks.pop()


class PerPlugin:
    """An argument each implementation receives in its own version: ``make(plugin name)``."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[str], Any]):
        self.make = make


def call_registry_hook(manager, hook_name: str, make_register) -> None:
    """Call a registry hook, giving each plugin its own ``register`` callback.

    Args:
        manager: the plugin manager.
        hook_name: a ``marketsim_register_*`` hook.
        make_register: plugin name -> the ``register`` callback for that plugin.
    """
    call_hook(manager, hook_name, register=PerPlugin(make_register))


VALIDATE_CONFIG = "marketsim_validate_config"


def _config_problems(plugin_name: str, answer: Any) -> list[tuple[str, str]] | None:
    """A ``marketsim_validate_config`` answer as (key, message) pairs, or `PluginError`."""
    if answer is None:
        return None
    pairs = isinstance(answer, list | tuple) and all(
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(part, str) for part in pair)
        for pair in answer
    )
    if not pairs:
        raise PluginError(
            f"plugin {plugin_name!r} hook {VALIDATE_CONFIG}: expected a list of (key, message) "
            f"pairs of strings, got {one_line(repr(answer))[:120]}"
        )
    return [(key, message) for key, message in answer]


_ANSWER_CHECKS = {VALIDATE_CONFIG: _config_problems}
"""Hook -> check of what an implementation returns (plugin name, answer) -> answer."""


def named_implementation(manager, impl: Any, hook_name: str):
    """``impl.function`` wrapped: errors named, per-plugin arguments bound, checks run after."""
    function = impl.function
    plugin_name = impl.plugin_name
    what = f"hook {hook_name}"
    per_plugin = hook_name.startswith("marketsim_register_")
    check_answer = _ANSWER_CHECKS.get(hook_name)

    def own(args, kwargs):
        if per_plugin:
            args = tuple(a.make(plugin_name) if type(a) is PerPlugin else a for a in args)
            kwargs = {
                k: a.make(plugin_name) if type(a) is PerPlugin else a for k, a in kwargs.items()
            }
        return args, kwargs

    if impl.wrapper or impl.hookwrapper:

        def named_wrapper(*args, **kwargs):
            args, kwargs = own(args, kwargs)
            teardown = guarded(plugin_name, what, function, *args, **kwargs)
            return (yield from _wrapped(manager, plugin_name, what, teardown))

        return named_wrapper

    def named(*args, **kwargs):
        args, kwargs = own(args, kwargs)
        answer = guarded(plugin_name, what, function, *args, **kwargs)
        if check_answer is not None:
            answer = check_answer(plugin_name, answer)
        manager.after(plugin_name)
        return answer

    return named


def _wrapped(manager, plugin_name: str, what: str, teardown):
    """Run a wrapper implementation's generator for pluggy, naming the plugin if it fails.

    An exception pluggy throws in (raised by an implementation inside the wrapper) passes
    through unchanged unless the wrapper raises another one; ``after_each`` runs after the
    wrapper's code before and after its ``yield``.
    """
    done, value = _advance(plugin_name, what, teardown.send, None)
    if done:
        raise PluginError(f"plugin {plugin_name!r} {what}: a wrapper must yield, it returned")
    manager.after(plugin_name)
    try:
        sent = yield value
    except GeneratorExit:
        teardown.close()
        raise
    except BaseException as thrown:
        done, value = _advance(plugin_name, what, teardown.throw, thrown)
    else:
        done, value = _advance(plugin_name, what, teardown.send, sent)
    if not done:
        teardown.close()
        raise PluginError(
            f"plugin {plugin_name!r} {what}: a wrapper must yield once, it yielded twice"
        )
    manager.after(plugin_name)
    return value


def _advance(plugin_name: str, what: str, method, argument) -> tuple[bool, Any]:
    """``method(argument)`` on a wrapper's generator: (finished, returned or yielded value)."""
    try:
        return False, method(argument)
    except StopIteration as stop:
        return True, stop.value
    except (Exception, SystemExit) as error:
        if error is argument or plugin_name == BUILTIN_NAME or isinstance(error, PluginError):
            raise
        raise PluginError(
            f"plugin {plugin_name!r} raised in {what}: {describe_error(error)}"
        ) from None


def guarded(plugin_name: str, what: str, function, *args, **kwargs):
    """Call plugin code; if it raises, report the plugin and ``what`` it was doing.

    ``SystemExit`` counts as raising (a plugin may not end the program); ``KeyboardInterrupt``
    passes through. Built-in code is called unguarded: an exception there is a bug and keeps its
    traceback.
    """
    if plugin_name == BUILTIN_NAME:
        return function(*args, **kwargs)
    try:
        return function(*args, **kwargs)
    except PluginError:
        raise
    except (Exception, SystemExit) as error:
        raise PluginError(
            f"plugin {plugin_name!r} raised in {what}: {describe_error(error)}"
        ) from None


def describe_error(error: BaseException) -> str:
    """``Type: message``; for ``SystemExit``, that a plugin may not exit the program."""
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r}) (a plugin may not exit the program)"
    return f"{type(error).__name__}: {error}"
