"""FineWeb quality filter (Penedo et al. 2024), with datatrove ``FineWebQualityFilter`` semantics."""

from __future__ import annotations

from gemmaflow.pipeline.heuristics.config import FineWebConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "fineweb"


def check(stats: TextStats, cfg: FineWebConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``fineweb.`` prefix) or None to keep."""
    lines = stats.lines
    punct_fraction = ratio(len(stats.prose_lines), len(lines))
    if falls_short(signals, f"{NAME}.line_punct_fraction", punct_fraction, cfg.min_line_punct_fraction):
        return "too_few_lines_end_in_punctuation"
    short_fraction = ratio(sum(len(line) <= cfg.short_line_length for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.short_line_fraction", short_fraction, cfg.max_short_line_fraction):
        return "too_many_short_lines"
    # datatrove divides by the characters other than newlines.
    dup_fraction = ratio(stats.line_duplicates[1], len(stats.text) - stats.text.count("\n"))
    if exceeds(signals, f"{NAME}.dup_line_char_fraction", dup_fraction, cfg.max_dup_line_char_fraction):
        return "too_many_duplicate_line_chars"
    newline_ratio = ratio(stats.text.count("\n"), len(stats.words))
    if exceeds(signals, f"{NAME}.newline_word_ratio", newline_ratio, cfg.max_newline_word_ratio):
        return "too_many_newlines"
    return None
