"""Route a document to its domain's rule sets and report the first failing rule.

Order is fixed so results are deterministic: ``common`` first for every domain, then
web: Gopher repetition, Gopher quality, C4 (mC4 paragraphs, then page rules, line removal and
edited-page rules, or C4's single pass: see ``heuristics.c4``), FineWeb on the edited text;
code: the code rules only; math: Gopher repetition with math's looser limits, then the math rules.
Evaluation stops at the first failing rule; signals of the rules evaluated so far are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemmaflow.core.domains import DOMAINS, Domain
from gemmaflow.pipeline.heuristics import c4, code_rules, common, fineweb, gopher_quality, gopher_repetition, math_rules
from gemmaflow.pipeline.heuristics.config import HeuristicsConfig
from gemmaflow.pipeline.heuristics.signals import Signals
from gemmaflow.pipeline.heuristics.text_stats import TextStats

Check = Callable[[TextStats, Any, Signals], "str | None"]


@dataclass(frozen=True)
class HeuristicResult:
    """Outcome for one document.

    ``text`` is the text the rules last saw: C4's line removal may have edited it (it is the input
    object itself when nothing changed). ``drop_reason`` is ``"<rule_set>.<what_happened>"``, or None
    to keep. ``signals`` maps ``"<rule_set>.<measure>"`` to the value of every rule evaluated.
    """

    text: str
    drop_reason: str | None
    signals: Signals
    lines_removed: int = 0


def _run(name: str, check: Check, cfg: Any, stats: TextStats, signals: Signals) -> str | None:
    """Prefixed drop reason of one rule set, or None when it keeps the document or is disabled."""
    if not cfg.enabled:
        return None
    reason = check(stats, cfg, signals)
    return f"{name}.{reason}" if reason else None


def _web(stats: TextStats, config: HeuristicsConfig, signals: Signals) -> HeuristicResult:
    reason = _run(gopher_repetition.NAME, gopher_repetition.check, config.gopher_repetition, stats, signals)
    reason = reason or _run(gopher_quality.NAME, gopher_quality.check, config.gopher_quality, stats, signals)
    if reason:
        return HeuristicResult(stats.text, reason, signals)
    lines_removed = 0
    if config.c4.enabled:
        c4_reason, edit = c4.run(stats, config.c4, signals)
        lines_removed = edit.lines_removed
        stats = edit.stats
        if c4_reason:
            return HeuristicResult(stats.text, f"{c4.NAME}.{c4_reason}", signals, lines_removed)
    reason = _run(fineweb.NAME, fineweb.check, config.fineweb, stats, signals)
    return HeuristicResult(stats.text, reason, signals, lines_removed)


def _code(stats: TextStats, config: HeuristicsConfig, signals: Signals) -> HeuristicResult:
    reason = _run(code_rules.NAME, code_rules.check, config.code, stats, signals)
    return HeuristicResult(stats.text, reason, signals)


def _math(stats: TextStats, config: HeuristicsConfig, signals: Signals) -> HeuristicResult:
    if not config.math.enabled:
        return HeuristicResult(stats.text, None, signals)
    reason = _run(gopher_repetition.NAME, gopher_repetition.check, config.math.repetition, stats, signals)
    reason = reason or _run(math_rules.NAME, math_rules.check, config.math, stats, signals)
    return HeuristicResult(stats.text, reason, signals)


# Every domain of gemmaflow.core.domains has its route (tests/heuristics checks each one).
_BY_DOMAIN: dict[Domain, Callable[[TextStats, HeuristicsConfig, Signals], HeuristicResult]] = {
    "web": _web,
    "code": _code,
    "math": _math,
}


def apply_heuristics(text: str, domain: str, config: HeuristicsConfig) -> HeuristicResult:
    """Run the universal checks, then ``domain``'s rule sets ("web", "code" or "math") on ``text``."""
    route = _BY_DOMAIN.get(domain)
    if route is None:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    stats = TextStats(text)
    signals: Signals = {}
    reason = _run(common.NAME, common.check, config.common, stats, signals)
    if reason:
        return HeuristicResult(text, reason, signals)
    return route(stats, config, signals)
