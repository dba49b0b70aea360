"""Lenient rules for formula-dense math (LaTeX source, math manuals).

Prose rules would drop good LaTeX: formulas have few stop words, many symbols and braces, and
lines that end in "}" or "\\\\" rather than punctuation. So math keeps only content-agnostic checks:
Gopher repetition with looser limits (``MathRepetitionConfig``), run before these two.

(Named ``math_rules`` rather than ``math`` so it never shadows the standard library's ``math``.)
"""

from __future__ import annotations

from gemmaflow.pipeline.heuristics.config import MathConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats

NAME = "math"


def check(stats: TextStats, cfg: MathConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``math.`` prefix) or None to keep."""
    if falls_short(signals, f"{NAME}.word_count", len(stats.words), cfg.min_words):
        return "too_few_words"
    if exceeds(signals, f"{NAME}.max_line_length", max(map(len, stats.raw_lines)), cfg.max_line_length):
        return "line_too_long"
    return None
