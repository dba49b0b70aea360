"""Gopher repetition removal (Rae et al. 2021, appendix A): repeated lines, paragraphs and n-grams.

Definitions follow the paper. A line or paragraph is a duplicate when it repeats an earlier one.
The top n-gram fraction is the characters of the most frequent repeated n-gram times its count,
over all word characters. The duplicate n-gram fraction is the characters of the words covered by
any n-gram that occurs more than once, each word counted once however many n-grams cover it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import compress

from pipeline.heuristics.config import GopherRepetitionConfig
from pipeline.heuristics.text_stats import TextStats, ratio

NAME = "gopher_repetition"


def _ngrams(words: list[str], n: int) -> Iterator[tuple[str, ...]]:
    """Word n-grams as tuples; ``str`` caches its hash, so hashing a tuple is cheap."""
    return zip(*(words[i:] for i in range(n)), strict=False)  # shorter shifted copies end the n-grams


def top_ngram_char_fraction(stats: TextStats, n: int) -> float:
    """Characters in all occurrences of the most frequent n-gram, if it repeats, over word characters."""
    counts = Counter(_ngrams(stats.words, n))
    if len(counts) == max(0, len(stats.words) - n + 1):
        return 0.0  # every n-gram unique (or too few words)
    gram, count = counts.most_common(1)[0]
    return ratio(sum(map(len, gram)) * count, stats.word_chars)


def dup_ngram_char_fraction(stats: TextStats, n: int) -> float:
    """Characters of the words covered by repeated n-grams over word characters."""
    grams = list(_ngrams(stats.words, n))
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0.0
    repeated = {gram for gram, count in counts.items() if count > 1}
    covered = bytearray(len(stats.words))
    span = b"\x01" * n
    for start in compress(range(len(grams)), map(repeated.__contains__, grams)):
        covered[start : start + n] = span
    return ratio(sum(compress(stats.word_lengths, covered)), stats.word_chars)


def check(stats: TextStats, cfg: GopherRepetitionConfig, signals: dict[str, float]) -> str | None:
    """Drop reason (without the ``gopher_repetition.`` prefix) or None to keep."""
    dup_lines, dup_line_chars = stats.line_duplicates
    dup_paras, dup_para_chars = stats.paragraph_duplicates
    n_chars = len(stats.text)
    for signal, value, limit, reason in (
        (
            "dup_line_fraction",
            ratio(dup_lines, len(stats.lines)),
            cfg.max_dup_line_fraction,
            "too_many_duplicate_lines",
        ),
        (
            "dup_para_fraction",
            ratio(dup_paras, len(stats.paragraphs)),
            cfg.max_dup_para_fraction,
            "too_many_duplicate_paragraphs",
        ),
        (
            "dup_line_char_fraction",
            ratio(dup_line_chars, n_chars),
            cfg.max_dup_line_char_fraction,
            "too_many_duplicate_line_chars",
        ),
        (
            "dup_para_char_fraction",
            ratio(dup_para_chars, n_chars),
            cfg.max_dup_para_char_fraction,
            "too_many_duplicate_paragraph_chars",
        ),
    ):
        signals[f"{NAME}.{signal}"] = value
        if value > limit:
            return reason

    for offset, limit in enumerate(cfg.top_ngram_max_fractions):
        n = cfg.top_ngram_min_n + offset
        value = top_ngram_char_fraction(stats, n)
        signals[f"{NAME}.top_{n}gram_char_fraction"] = value
        if value > limit:
            return f"top_{n}gram_too_frequent"

    limits = cfg.dup_ngram_max_fractions
    for offset, limit in enumerate(limits):
        n = cfg.dup_ngram_min_n + offset
        value = dup_ngram_char_fraction(stats, n)
        signals[f"{NAME}.dup_{n}gram_char_fraction"] = value
        if value > limit:
            return f"too_many_duplicate_{n}grams"
        # Coverage never grows with n (a repeated (n+1)-gram's words are covered by its two repeated
        # n-grams), so once it is within every remaining limit no larger n can fail: stop computing.
        if value <= min(limits[offset + 1 :], default=value):
            break
    return None
