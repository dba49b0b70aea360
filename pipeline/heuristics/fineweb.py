"""FineWeb quality filter (Penedo et al. 2024), with datatrove ``FineWebQualityFilter`` semantics.

Lines are the non-blank lines; by default without trailing whitespace, and a line "ends in
punctuation" with gemmaflow's terminal punctuation (closing quotes included). ``FineWebConfig``'s
datatrove options keep the trailing whitespace, use datatrove's line ends and its word tokens.
"""

from __future__ import annotations

from gemmaflow.pipeline.heuristics.config import FineWebConfig
from gemmaflow.pipeline.heuristics.punctuation import ends_in_sentence_terminal
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TERMINAL_PUNCTUATION, TextStats, duplicate_stats, ratio

NAME = "fineweb"


def _lines(stats: TextStats, cfg: FineWebConfig) -> tuple[list[str], int, int]:
    """(non-blank lines, how many end in punctuation, characters in repeated lines)."""
    if cfg.strip_lines:
        lines = stats.lines
        dup_chars = stats.line_duplicates[1]
    else:
        lines = [line for line in stats.raw_lines if line and not line.isspace()]
        dup_chars = duplicate_stats(lines)[1]
    if cfg.line_end == "unicode":
        punctuated = sum(map(ends_in_sentence_terminal, lines))
    elif cfg.strip_lines:
        punctuated = len(stats.prose_lines)
    else:
        punctuated = sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines)
    return lines, punctuated, dup_chars


def check(stats: TextStats, cfg: FineWebConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``fineweb.`` prefix) or None to keep."""
    lines, punctuated, dup_chars = _lines(stats, cfg)
    punct_fraction = ratio(punctuated, len(lines))
    if falls_short(signals, f"{NAME}.line_punct_fraction", punct_fraction, cfg.min_line_punct_fraction):
        return "too_few_lines_end_in_punctuation"
    short_fraction = ratio(sum(len(line) <= cfg.short_line_length for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.short_line_fraction", short_fraction, cfg.max_short_line_fraction):
        return "too_many_short_lines"
    # datatrove divides by the characters other than newlines.
    dup_fraction = ratio(dup_chars, len(stats.text) - stats.text.count("\n"))
    if exceeds(signals, f"{NAME}.dup_line_char_fraction", dup_fraction, cfg.max_dup_line_char_fraction):
        return "too_many_duplicate_line_chars"
    newline_ratio = ratio(stats.text.count("\n"), len(stats.tokens(cfg.word_tokenizer)))
    if exceeds(signals, f"{NAME}.newline_word_ratio", newline_ratio, cfg.max_newline_word_ratio):
        return "too_many_newlines"
    return None
