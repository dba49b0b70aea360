"""Gopher quality filter (Rae et al. 2021, appendix A): is this page natural-language prose?

Two extensions, measured on the dev corpus (see ``GopherQualityConfig``): a URL-to-word ratio for
link farms, and a stop-word ratio over sentence-like lines for word salad. The config's datatrove
options switch tokens, word counting, bullets, lines, the letter test and stop-word counting to the
reference implementation's definitions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gemmaflow.pipeline.heuristics.config import GopherQualityConfig
from gemmaflow.pipeline.heuristics.punctuation import is_punctuation_only
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "gopher_quality"

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


def _counted_words(stats: TextStats, cfg: GopherQualityConfig) -> tuple[int, int]:
    """(words, their characters) for the word count and mean word length."""
    if cfg.word_tokenizer == "whitespace" and cfg.count_punctuation_words:
        return len(stats.words), stats.word_chars
    counted = [w for w in stats.tokens(cfg.word_tokenizer) if cfg.count_punctuation_words or not is_punctuation_only(w)]
    return len(counted), sum(map(len, counted))


def _alphabetic_fraction(words: Sequence[str], cfg: GopherQualityConfig) -> float:
    if cfg.letter_test == "isalpha":
        return ratio(sum(any(c.isalpha() for c in word) for word in words), len(words))
    return 1.0 - ratio(len(_NO_LETTER_WORD.findall("\n".join(words))), len(words))


def _stop_words(stats: TextStats, cfg: GopherQualityConfig) -> int:
    if cfg.stop_word_count == "distinct_tokens":
        return len(set(cfg.stop_words).intersection(stats.tokens(cfg.word_tokenizer)))
    return stop_word_count(stats.lower, cfg.stop_words)


def check(stats: TextStats, cfg: GopherQualityConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``gopher_quality.`` prefix) or None to keep."""
    text = stats.text
    words = stats.tokens(cfg.word_tokenizer)
    n_words, word_chars = _counted_words(stats, cfg)
    if falls_short(signals, f"{NAME}.word_count", n_words, cfg.min_words):
        return "too_few_words"
    if n_words > cfg.max_words:
        return "too_many_words"

    mean_word_length = ratio(word_chars, n_words)
    if falls_short(signals, f"{NAME}.mean_word_length", mean_word_length, cfg.min_mean_word_length):
        return "mean_word_length_too_short"
    if mean_word_length > cfg.max_mean_word_length:
        return "mean_word_length_too_long"

    n_tokens = len(words)  # the symbol and letter ratios count every token
    hash_ratio = ratio(text.count("#"), n_tokens)
    if exceeds(signals, f"{NAME}.hash_word_ratio", hash_ratio, cfg.max_symbol_word_ratio):
        return "too_many_hashes"
    ellipsis_ratio = ratio(text.count("...") + text.count("…"), n_tokens)
    if exceeds(signals, f"{NAME}.ellipsis_word_ratio", ellipsis_ratio, cfg.max_symbol_word_ratio):
        return "too_many_ellipses"
    if cfg.extensions:
        url_ratio = ratio(text.count("://"), n_tokens)  # one "scheme://" per URL
        if exceeds(signals, f"{NAME}.url_word_ratio", url_ratio, cfg.max_url_word_ratio):
            return "too_many_urls"

    # non-blank lines without trailing whitespace, or every line
    lines = text.splitlines() if cfg.line_split == "splitlines" else stats.lines
    bullet_fraction = ratio(sum(line.lstrip().startswith(cfg.bullets) for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.bullet_line_fraction", bullet_fraction, cfg.max_bullet_line_fraction):
        return "too_many_bullet_lines"
    ellipsis_fraction = ratio(sum(line.rstrip().endswith(_ELLIPSES) for line in lines), len(lines))
    if exceeds(signals, f"{NAME}.ellipsis_line_fraction", ellipsis_fraction, cfg.max_ellipsis_line_fraction):
        return "too_many_ellipsis_lines"

    alpha_fraction = _alphabetic_fraction(words, cfg)
    if falls_short(signals, f"{NAME}.alpha_word_fraction", alpha_fraction, cfg.min_alpha_word_fraction):
        return "too_few_alpha_words"

    stop_words = _stop_words(stats, cfg)
    if falls_short(signals, f"{NAME}.stop_word_count", stop_words, cfg.min_stop_words):
        return "too_few_stop_words"

    if not cfg.extensions:
        return None
    prose = "\n".join(stats.prose_lines).lower()
    prose_words = len(prose.split())
    if prose_words >= cfg.prose_min_words:
        prose_stop_fraction = ratio(stop_word_count(prose, cfg.stop_words), prose_words)
        name = f"{NAME}.prose_stop_word_fraction"
        if falls_short(signals, name, prose_stop_fraction, cfg.min_prose_stop_word_fraction):
            return "too_few_stop_words_in_prose"
    return None
