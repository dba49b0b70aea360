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

The config's datatrove options (``GopherRepetitionConfig``) switch each of these definitions to
the reference implementation's: tokens, line and paragraph splitting, check order, the fractions'
denominator, the top n-gram's tie-break and the greedy duplicate scan.
"""

from __future__ import annotations

import re

import numpy as np

from gemmaflow.pipeline.heuristics.config import GopherRepetitionConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds
from gemmaflow.pipeline.heuristics.text_stats import TextStats, duplicate_stats, ratio

NAME = "gopher_repetition"

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (2^64 / golden ratio) for the rolling hash


class WordNgrams:
    """One document's words as arrays, for counting its n-grams of any length."""

    def __init__(self, stats: TextStats, tokenizer: str = "whitespace") -> None:
        self.words = stats.tokens(tokenizer)
        self.n_words = len(self.words)
        self.word_keys = np.array(list(map(hash, self.words)), dtype=np.int64).view(np.uint64)
        self.lengths = np.fromiter(map(len, self.words), dtype=np.int64, count=self.n_words)
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
        order = np.argsort(keys, kind="stable")  # a group's first entry is the n-gram's first occurrence
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
        return ratio(self.top_chars(n, ties="longest", counting="coverage"), self.total_chars)

    def top_chars(self, n: int, ties: str, counting: str) -> int:
        """Characters in all occurrences of the most frequent n-gram (see ``GopherRepetitionConfig``)."""
        if self.n_words < n:
            return 0
        order, group_starts, counts = self.runs(n)
        top = int(counts.max())
        if top < 2 and counting == "coverage":
            return 0
        firsts = order[group_starts[counts == top]]  # first occurrence of each most frequent n-gram
        if ties == "first":
            firsts = firsts[firsts.argmin(keepdims=True)]
        chars = int((self.cumulative[firsts + n] - self.cumulative[firsts]).max())
        spaces = n - 1 if counting == "greedy" else 0  # the n-gram as its words joined by spaces
        return top * (chars + spaces)

    def dup_char_fraction(self, n: int) -> float:
        """Characters of the words covered by repeated n-grams over word characters."""
        return ratio(self.covered_dup_chars(n), self.total_chars)

    def covered_dup_chars(self, n: int) -> int:
        """Characters of the words covered by repeated n-grams, each word counted once."""
        if self.n_words < n:
            return 0
        order, _, counts = self.runs(n)
        if len(counts) == len(order):
            return 0  # every n-gram unique
        repeated = np.empty(len(order), dtype=bool)  # per n-gram start
        repeated[order] = np.repeat(counts > 1, counts)
        covered = np.zeros(self.n_words, dtype=bool)
        for offset in range(n):
            covered[offset : offset + len(repeated)] |= repeated
        return int(self.lengths[covered].sum())

    def greedy_dup_chars(self, n: int) -> int:
        """datatrove's duplicate n-gram characters: scanning left to right, an n-gram (its words
        concatenated, so "ab c" equals "a bc") seen before adds its characters and the scan jumps past
        it; otherwise it is remembered and the scan moves one word on."""
        joined = "".join(self.words)
        offsets = self.cumulative.tolist()
        seen: set[str] = set()
        repeated = 0
        start = 0
        while start <= self.n_words - n:
            ngram = joined[offsets[start] : offsets[start + n]]
            if ngram in seen:
                repeated += len(ngram)
                start += n
            else:
                seen.add(ngram)
                start += 1
        return repeated


_NEWLINE_RUN = re.compile("\n+")
_BLANK_LINE_RUN = re.compile("\n{2,}")


def _segment_rules(stats: TextStats, cfg: GopherRepetitionConfig) -> list[tuple[str, str, float, float]]:
    """(reason, signal, value, limit) of the four line and paragraph rules, in checking order."""
    if cfg.segments == "newline_runs":
        lines = _NEWLINE_RUN.split(stats.text)
        paragraphs = _BLANK_LINE_RUN.split(stats.text.strip())
        (dup_lines, dup_line_chars), (dup_paras, dup_para_chars) = map(duplicate_stats, (lines, paragraphs))
    else:
        lines, paragraphs = stats.lines, stats.paragraphs
        (dup_lines, dup_line_chars), (dup_paras, dup_para_chars) = stats.line_duplicates, stats.paragraph_duplicates
    n_chars = len(stats.text)
    line_rules = [
        ("too_many_duplicate_lines", "dup_line_fraction", ratio(dup_lines, len(lines)), cfg.max_dup_line_fraction),
        (
            "too_many_duplicate_line_chars",
            "dup_line_char_fraction",
            ratio(dup_line_chars, n_chars),
            cfg.max_dup_line_char_fraction,
        ),
    ]
    paragraph_rules = [
        (
            "too_many_duplicate_paragraphs",
            "dup_para_fraction",
            ratio(dup_paras, len(paragraphs)),
            cfg.max_dup_para_fraction,
        ),
        (
            "too_many_duplicate_paragraph_chars",
            "dup_para_char_fraction",
            ratio(dup_para_chars, n_chars),
            cfg.max_dup_para_char_fraction,
        ),
    ]
    if cfg.paragraphs_first:
        return paragraph_rules + line_rules
    # Gopher's table order: line fraction, paragraph fraction, then the two character fractions.
    return [line_rules[0], paragraph_rules[0], line_rules[1], paragraph_rules[1]]


def check(stats: TextStats, cfg: GopherRepetitionConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``gopher_repetition.`` prefix) or None to keep."""
    for reason, signal, value, limit in _segment_rules(stats, cfg):
        if exceeds(signals, f"{NAME}.{signal}", value, limit):
            return reason

    ngrams = WordNgrams(stats, cfg.word_tokenizer)
    denominator = len(stats.text) if cfg.ngram_denominator == "text_chars" else ngrams.total_chars
    for offset, limit in enumerate(cfg.top_ngram_max_fractions):
        n = cfg.top_ngram_min_n + offset
        value = ratio(ngrams.top_chars(n, cfg.top_ngram_ties, cfg.ngram_counting), denominator)
        if exceeds(signals, f"{NAME}.top_{n}gram_char_fraction", value, limit):
            return f"top_{n}gram_too_frequent"

    limits = cfg.dup_ngram_max_fractions
    for offset, limit in enumerate(limits):
        n = cfg.dup_ngram_min_n + offset
        greedy = cfg.ngram_counting == "greedy"
        value = ratio(ngrams.greedy_dup_chars(n) if greedy else ngrams.covered_dup_chars(n), denominator)
        if exceeds(signals, f"{NAME}.dup_{n}gram_char_fraction", value, limit):
            return f"too_many_duplicate_{n}grams"
        # Coverage never grows with n (a repeated (n+1)-gram's words are covered by its two repeated
        # n-grams), so once it is within every remaining limit no larger n can fail: stop computing.
        # The greedy scan has no such bound: every n is checked.
        if not greedy and value <= min(limits[offset + 1 :], default=value):
            break
    return None
