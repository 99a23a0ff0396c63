"""Errors a user can cause, as values with a message.

`ExperimentError` is raised for anything wrong in an experiment file, an override or a
plugin; the CLI shows its message on one line and exits with code 2. `LedgerError` is raised
when the books stop balancing during a run. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MarketsimError(Exception):
    """Base class of the errors a user can cause; shown as one line, exit code 2."""


class ExperimentError(MarketsimError):
    """An experiment file, override or plugin is invalid.

    Args:
        message: what was expected and what was found.
        source: the file (or ``--set``) the problem comes from, if known.
        key: the dotted key path, e.g. ``agents.utility.capacity_mw``, if known.
    """

    def __init__(self, message: str, source: str | None = None, key: str | None = None):
        self.message = message
        self.source = source
        self.key = key
        super().__init__(self.line())

    def line(self) -> str:
        """The one-line form: ``file: key: message``."""
        parts = [p for p in (self.source, self.key) if p]
        parts.append(self.message)
        return ": ".join(parts)


class LedgerError(MarketsimError):
    """The ledger does not balance: names the step, the account and the amount."""


class ResultsError(MarketsimError):
    """Results cannot be written where asked (e.g. they exist and --overwrite is not given)."""


class PluginError(MarketsimError):
    """A plugin could not be loaded, or raised inside a hook: names the plugin and hook."""
