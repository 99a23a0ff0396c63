"""Errors a user can cause, as values with a message.

`ExperimentError` is raised for anything wrong in an experiment file, an override or a
plugin; the CLI shows its message on one line and exits with code 2. `LedgerError` is raised
when the books stop balancing during a run. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import unicodedata

_LINE_UNSAFE = ("Cc", "Cf", "Cs", "Zl", "Zp")
"""Unicode categories escaped in error lines: controls (newlines among them), format
characters (bidirectional overrides), lone surrogates, line and paragraph separators."""
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with every character that could break or disguise a line escaped.

    Newlines, other control characters, line separators, bidirectional overrides and lone
    surrogates become ``\\n``, ``\\x07``, ``\\u2028``, ... so a message naming a key or value
    written with them is still one line, shown as written.
    """
    if text.isprintable():
        return text
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char == " " or unicodedata.category(char) not in _LINE_UNSAFE:
        return char
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


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
        """The one-line form: ``file: key: message``, control characters escaped."""
        parts = [p for p in (self.source, self.key) if p]
        parts.append(self.message)
        return one_line(": ".join(parts))


class LedgerError(MarketsimError):
    """The ledger does not balance: names the step, the account and the amount."""


class ResultsError(MarketsimError):
    """Results cannot be written where asked (e.g. they exist and --overwrite is not given)."""


class PluginError(MarketsimError):
    """A plugin could not be loaded, or raised inside a hook: names the plugin and hook."""
