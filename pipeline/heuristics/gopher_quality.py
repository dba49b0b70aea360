"""Gopher quality filter (Rae et al. 2021, appendix A): is this page natural-language prose?

Two extensions, measured on the dev corpus (see ``GopherQualityConfig``): a URL-to-word ratio for
link farms, and a stop-word ratio over sentence-like lines for word salad.
"""

from __future__ import annotations

import re

from pipeline.heuristics.config import GopherQualityConfig
from pipeline.heuristics.text_stats import TextStats, ratio

NAME = "gopher_quality"

_BULLET_LINE = re.compile(r"^[ \t]*[-*•‣◦●▪∙]", re.MULTILINE)
_ELLIPSIS_LINE = re.compile(r"(?:\.\.\.|…)[ \t\r]*$", re.MULTILINE)
_URL = re.compile(r"(?:https?|ftp)://|www\.")
# A whitespace-delimited token with no letter: every character is a digit, "_" or a non-word char.
_NO_LETTER_WORD = re.compile(r"(?<!\S)(?:[\d_]|[^\w\s])+(?!\S)")


def stop_word_count(lower_text: str, stop_words: tuple[str, ...]) -> int:
    """Occurrences of ``stop_words`` as whole words in already lower-cased text."""
    if not stop_words:
        return 0
    pattern = r"\b(?:" + "|".join(map(re.escape, stop_words)) + r")\b"  # re caches the compiled form
    return len(re.findall(pattern, lower_text))


def check(stats: TextStats, cfg: GopherQualityConfig, signals: dict[str, float]) -> str | None:
    """Drop reason (without the ``gopher_quality.`` prefix) or None to keep."""
    text = stats.text
    n_words = len(stats.words)
    signals[f"{NAME}.word_count"] = float(n_words)
    if n_words < cfg.min_words:
        return "too_few_words"
    if n_words > cfg.max_words:
        return "too_many_words"

    mean_word_length = ratio(stats.word_chars, n_words)
    signals[f"{NAME}.mean_word_length"] = mean_word_length
    if mean_word_length < cfg.min_mean_word_length:
        return "mean_word_length_too_short"
    if mean_word_length > cfg.max_mean_word_length:
        return "mean_word_length_too_long"

    ellipses = text.count("...") + text.count("…")
    for signal, count, limit, reason in (
        ("hash_word_ratio", text.count("#"), cfg.max_symbol_word_ratio, "too_many_hashes"),
        ("ellipsis_word_ratio", ellipses, cfg.max_symbol_word_ratio, "too_many_ellipses"),
        ("url_word_ratio", len(_URL.findall(text)), cfg.max_url_word_ratio, "too_many_urls"),
    ):
        value = ratio(count, n_words)
        signals[f"{NAME}.{signal}"] = value
        if value > limit:
            return reason

    n_lines = len(stats.lines)
    bullet_fraction = ratio(len(_BULLET_LINE.findall(text)), n_lines)
    signals[f"{NAME}.bullet_line_fraction"] = bullet_fraction
    if bullet_fraction > cfg.max_bullet_line_fraction:
        return "too_many_bullet_lines"
    ellipsis_line_fraction = ratio(len(_ELLIPSIS_LINE.findall(text)), n_lines)
    signals[f"{NAME}.ellipsis_line_fraction"] = ellipsis_line_fraction
    if ellipsis_line_fraction > cfg.max_ellipsis_line_fraction:
        return "too_many_ellipsis_lines"

    alpha_fraction = 1.0 - ratio(len(_NO_LETTER_WORD.findall(text)), n_words)
    signals[f"{NAME}.alpha_word_fraction"] = alpha_fraction
    if alpha_fraction < cfg.min_alpha_word_fraction:
        return "too_few_alpha_words"

    stop_words = stop_word_count(stats.lower, cfg.stop_words)
    signals[f"{NAME}.stop_word_count"] = float(stop_words)
    if stop_words < cfg.min_stop_words:
        return "too_few_stop_words"

    prose = "\n".join(stats.prose_lines).lower()
    prose_words = len(prose.split())
    if prose_words >= cfg.prose_min_words:
        prose_stop_fraction = ratio(stop_word_count(prose, cfg.stop_words), prose_words)
        signals[f"{NAME}.prose_stop_word_fraction"] = prose_stop_fraction
        if prose_stop_fraction < cfg.min_prose_stop_word_fraction:
            return "too_few_stop_words_in_prose"
    return None
