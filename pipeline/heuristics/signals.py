"""Recording quality signals while checking them against a limit.

Every rule records what it measured before it decides, so a dropped document still carries the
values of the rules evaluated up to the one that failed.
"""

from __future__ import annotations

Signals = dict[str, float]


def exceeds(signals: Signals, name: str, value: float, limit: float) -> bool:
    """Record ``value`` as ``name``; True (the rule fails) when it is above ``limit``."""
    signals[name] = float(value)
    return value > limit


def falls_short(signals: Signals, name: str, value: float, limit: float) -> bool:
    """Record ``value`` as ``name``; True (the rule fails) when it is below ``limit``."""
    signals[name] = float(value)
    return value < limit
