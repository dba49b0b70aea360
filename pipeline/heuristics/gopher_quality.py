"""Gopher quality filter (Rae et al. 2021, appendix A): is this page natural-language prose?

Two extensions, measured on the dev corpus (see ``GopherQualityConfig``): a URL-to-word ratio for
link farms, and a stop-word ratio over sentence-like lines for word salad.
"""

from __future__ import annotations

import re

from gemmaflow.pipeline.heuristics.config import GopherQualityConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "gopher_quality"

_BULLETS = ("-", "*", "•", "‣", "◦", "●", "▪", "∙")
_ELLIPSES = ("...", "…")
# A word (one per line of the newline-joined word list) with no letter: every character is a digit,
# "_" or a non-word character. Matching line by line is twice as fast as finding whitespace-delimited
# tokens in the raw text with look-arounds.
_NO_LETTER_WORD = re.compile(r"^(?:[\d_]|[^\w\n])+$", re.MULTILINE)


def stop_word_count(lower_text: str, stop_words: tuple[str, ...]) -> int:
    """Occurrences of ``stop_words`` as whole words in already lower-cased text."""
    if not stop_words:
        return 0
    pattern = r"\b(?:" + "|".join(map(re.escape, stop_words)) + r")\b"  # re caches the compiled form
    return len(re.findall(pattern, lower_text))


def check(stats: TextStats, cfg: GopherQualityConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``gopher_quality.`` prefix) or None to keep."""
    text = stats.text
    n_words = len(stats.words)
    if falls_short(signals, f"{NAME}.word_count", n_words, cfg.min_words):
        return "too_few_words"
    if n_words > cfg.max_words:
        return "too_many_words"

    mean_word_length = ratio(stats.word_chars, n_words)
    if falls_short(signals, f"{NAME}.mean_word_length", mean_word_length, cfg.min_mean_word_length):
        return "mean_word_length_too_short"
    if mean_word_length > cfg.max_mean_word_length:
        return "mean_word_length_too_long"

    hash_ratio = ratio(text.count("#"), n_words)
    if exceeds(signals, f"{NAME}.hash_word_ratio", hash_ratio, cfg.max_symbol_word_ratio):
        return "too_many_hashes"
    ellipsis_ratio = ratio(text.count("...") + text.count("…"), n_words)
    if exceeds(signals, f"{NAME}.ellipsis_word_ratio", ellipsis_ratio, cfg.max_symbol_word_ratio):
        return "too_many_ellipses"
    url_ratio = ratio(text.count("://"), n_words)  # one "scheme://" per URL
    if exceeds(signals, f"{NAME}.url_word_ratio", url_ratio, cfg.max_url_word_ratio):
        return "too_many_urls"

    lines = stats.lines  # non-blank, trailing whitespace stripped
    bullet_fraction = ratio(sum(line.lstrip().startswith(_BULLETS) for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.bullet_line_fraction", bullet_fraction, cfg.max_bullet_line_fraction):
        return "too_many_bullet_lines"
    ellipsis_fraction = ratio(sum(line.endswith(_ELLIPSES) for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.ellipsis_line_fraction", ellipsis_fraction, cfg.max_ellipsis_line_fraction):
        return "too_many_ellipsis_lines"

    alpha_fraction = 1.0 - ratio(len(_NO_LETTER_WORD.findall("\n".join(stats.words))), n_words)
    if falls_short(signals, f"{NAME}.alpha_word_fraction", alpha_fraction, cfg.min_alpha_word_fraction):
        return "too_few_alpha_words"

    stop_words = stop_word_count(stats.lower, cfg.stop_words)
    if falls_short(signals, f"{NAME}.stop_word_count", stop_words, cfg.min_stop_words):
        return "too_few_stop_words"

    prose = "\n".join(stats.prose_lines).lower()
    prose_words = len(prose.split())
    if prose_words >= cfg.prose_min_words:
        prose_stop_fraction = ratio(stop_word_count(prose, cfg.stop_words), prose_words)
        name = f"{NAME}.prose_stop_word_fraction"
        if falls_short(signals, name, prose_stop_fraction, cfg.min_prose_stop_word_fraction):
            return "too_few_stop_words_in_prose"
    return None
