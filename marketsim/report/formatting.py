"""Numbers for people: shares as percentages, money and counts with k/M/B/T suffixes.

Used by the HTML report and the ``marketsim compare`` table. A null (undefined) value is
shown as ``-``. Differences carry an explicit sign and shares' differences are percentage
points (``pp``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

MISSING = "-"
SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def is_missing(value: Any) -> bool:
    """True for None, pd.NA, NaN and ±inf (nothing to show)."""
    if value is None or value is pd.NA:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def format_value(value: Any, unit: str = "", difference: bool = False) -> str:
    """One number in its unit, e.g. ``75.0%``, ``366.6B``, ``1.07``, ``+3.1 pp``.

    Args:
        value: the number (None/NA/NaN: undefined).
        unit: its unit (``"share"`` is shown as a percentage; others by magnitude).
        difference: show an explicit sign (and ``pp`` for shares).

    Returns:
        The text.
    """
    if is_missing(value):
        return MISSING
    value = float(value)
    sign = "+" if difference else ""
    if unit == "share":
        if difference:
            return _digits(value * 100, sign) + " pp"
        return f"{value * 100:.1f}%"
    magnitude = abs(value)
    for size, suffix in SUFFIXES:
        if magnitude >= size:
            return _digits(value / size, sign) + suffix
    return _digits(value, sign)


def _digits(value: float, sign: str) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:{sign},.0f}"
    if magnitude >= 10:
        return f"{value:{sign}.1f}"
    if magnitude >= 1:
        return f"{value:{sign}.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:{sign}.3g}"


def format_interval(low: Any, high: Any, unit: str = "", difference: bool = False) -> str:
    """``[low, high]`` in the unit, or ``""`` when the interval is undefined."""
    if is_missing(low) or is_missing(high):
        return ""
    return f"[{format_value(low, unit, difference)}, {format_value(high, unit, difference)}]"


def significant(low: Any, high: Any) -> bool:
    """True when the interval ``[low, high]`` is defined and excludes zero."""
    if is_missing(low) or is_missing(high):
        return False
    return float(low) > 0 or float(high) < 0
