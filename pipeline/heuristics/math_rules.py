"""Lenient rules for formula-dense math (LaTeX source, math manuals).

Prose rules would drop good LaTeX: formulas have few stop words, many symbols and braces, and
lines that end in "}" or "\\\\" rather than punctuation. So math keeps only content-agnostic checks
(Gopher repetition runs before these) and these two.

(Named ``math_rules`` rather than ``math`` so it never shadows the standard library's ``math``.)
"""

from __future__ import annotations

from pipeline.heuristics.config import MathConfig
from pipeline.heuristics.text_stats import TextStats

NAME = "math"


def check(stats: TextStats, cfg: MathConfig, signals: dict[str, float]) -> str | None:
    """Drop reason (without the ``math.`` prefix) or None to keep."""
    n_words = len(stats.words)
    signals[f"{NAME}.word_count"] = float(n_words)
    if n_words < cfg.min_words:
        return "too_few_words"
    longest = max(map(len, stats.raw_lines))
    signals[f"{NAME}.max_line_length"] = float(longest)
    if longest > cfg.max_line_length:
        return "line_too_long"
    return None
