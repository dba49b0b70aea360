"""Gopher repetition removal (Rae et al. 2021, appendix A): repeated lines, paragraphs and n-grams.

Definitions follow the paper. A line or paragraph is a duplicate when it repeats an earlier one.
The top n-gram fraction is the characters of the most frequent n-gram (when it occurs more than
once) times its count, over all word characters. The duplicate n-gram fraction is the characters of
the words covered by any n-gram occurring more than once, each word counted once however many
n-grams cover it.

N-grams are compared by a 64-bit rolling hash of their words' hashes and grouped by sorting the
hashes with numpy: about 3x faster than counting word tuples in a ``Counter``. A collision
between two different n-grams of one document is vanishingly unlikely (2^-64 per pair), and every
result is independent of hash values and their order, so results are deterministic.
"""

from __future__ import annotations

import numpy as np

from gemmaflow.pipeline.heuristics.config import GopherRepetitionConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "gopher_repetition"

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (2^64 / golden ratio) for the rolling hash


class WordNgrams:
    """One document's words as arrays, for counting its n-grams of any length."""

    def __init__(self, stats: TextStats) -> None:
        self.n_words = len(stats.words)
        self.word_keys = np.array(list(map(hash, stats.words)), dtype=np.int64).view(np.uint64)
        self.lengths = np.array(stats.word_lengths, dtype=np.int64)
        # cumulative[i] = characters in words[:i], so words[i:j] hold cumulative[j] - cumulative[i].
        self.cumulative = np.zeros(self.n_words + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.cumulative[1:])
        self.total_chars = int(self.cumulative[-1])

    def keys(self, n: int) -> np.ndarray:
        """One key per n-gram start: ``((w0 * MIX + w1) * MIX + w2) ...`` wrapping modulo 2^64."""
        starts = self.n_words - n + 1
        keys = self.word_keys[:starts].copy()
        for offset in range(1, n):
            keys *= _MIX
            keys += self.word_keys[offset : offset + starts]
        return keys

    def runs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equal n-grams grouped: (start positions sorted by key, where each group begins, group sizes)."""
        keys = self.keys(n)
        order = np.argsort(keys)
        sorted_keys = keys[order]
        begins_group = np.empty(len(keys), dtype=bool)
        begins_group[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=begins_group[1:])
        group_starts = np.flatnonzero(begins_group)
        return order, group_starts, np.diff(np.append(group_starts, len(keys)))

    def top_char_fraction(self, n: int) -> float:
        """Characters in all occurrences of the most frequent n-gram, if it repeats, over word characters.

        Among equally frequent n-grams the longest counts, so the result does not depend on order.
        """
        if self.n_words < n:
            return 0.0
        order, group_starts, counts = self.runs(n)
        top = int(counts.max())
        if top < 2:
            return 0.0
        firsts = order[group_starts[counts == top]]  # one occurrence of each most frequent n-gram
        chars = int((self.cumulative[firsts + n] - self.cumulative[firsts]).max())
        return ratio(top * chars, self.total_chars)

    def dup_char_fraction(self, n: int) -> float:
        """Characters of the words covered by repeated n-grams over word characters."""
        if self.n_words < n:
            return 0.0
        order, _, counts = self.runs(n)
        if len(counts) == len(order):
            return 0.0  # every n-gram unique
        repeated = np.empty(len(order), dtype=bool)  # per n-gram start
        repeated[order] = np.repeat(counts > 1, counts)
        covered = np.zeros(self.n_words, dtype=bool)
        for offset in range(n):
            covered[offset : offset + len(repeated)] |= repeated
        return ratio(int(self.lengths[covered].sum()), self.total_chars)


def check(stats: TextStats, cfg: GopherRepetitionConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``gopher_repetition.`` prefix) or None to keep."""
    dup_lines, dup_line_chars = stats.line_duplicates
    dup_paras, dup_para_chars = stats.paragraph_duplicates
    n_chars = len(stats.text)
    if exceeds(
        signals, f"{NAME}.dup_line_fraction", ratio(dup_lines, len(stats.lines)), cfg.max_dup_line_fraction
    ):
        return "too_many_duplicate_lines"
    if exceeds(
        signals,
        f"{NAME}.dup_para_fraction",
        ratio(dup_paras, len(stats.paragraphs)),
        cfg.max_dup_para_fraction,
    ):
        return "too_many_duplicate_paragraphs"
    if exceeds(
        signals,
        f"{NAME}.dup_line_char_fraction",
        ratio(dup_line_chars, n_chars),
        cfg.max_dup_line_char_fraction,
    ):
        return "too_many_duplicate_line_chars"
    if exceeds(
        signals,
        f"{NAME}.dup_para_char_fraction",
        ratio(dup_para_chars, n_chars),
        cfg.max_dup_para_char_fraction,
    ):
        return "too_many_duplicate_paragraph_chars"

    ngrams = WordNgrams(stats)
    for offset, limit in enumerate(cfg.top_ngram_max_fractions):
        n = cfg.top_ngram_min_n + offset
        if exceeds(signals, f"{NAME}.top_{n}gram_char_fraction", ngrams.top_char_fraction(n), limit):
            return f"top_{n}gram_too_frequent"

    limits = cfg.dup_ngram_max_fractions
    for offset, limit in enumerate(limits):
        n = cfg.dup_ngram_min_n + offset
        value = ngrams.dup_char_fraction(n)
        if exceeds(signals, f"{NAME}.dup_{n}gram_char_fraction", value, limit):
            return f"too_many_duplicate_{n}grams"
        # Coverage never grows with n (a repeated (n+1)-gram's words are covered by its two repeated
        # n-grams), so once it is within every remaining limit no larger n can fail: stop computing.
        if value <= min(limits[offset + 1 :], default=value):
            break
    return None
