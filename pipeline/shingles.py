"""Word n-gram hashes of a text, computed with numpy: the shared input of near-dedupe and decontamination.

A *word* is a maximal run of word characters (those `\\w` matches: `str.isalnum()` or `_`) in the
lower-cased text, so case, punctuation and whitespace edits (CRLF, reflowed lines, doubled
spaces) do not change a document's n-grams.

Hashes are defined by small, exact formulas (the pure-Python `token_hash` and `ngram_hash` below,
which tests compare against) and computed for a whole document at once: per-character arithmetic
in uint64 arrays, where numpy's wrap-around is the intended arithmetic modulo 2^64. Python's `re`
costs about 50 ns a character to find words, more than everything else together, so words are
found with a lookup table of word characters instead. Nothing depends on Python's per-process
salted `hash()`: every worker computes the same values.

    token_hash(w)          = fmix64( sum_k ord(w[k]) * CHAR_BASE^k )              (mod 2^64)
    ngram_hash(w_0..w_m-1) = fmix64( sum_k token_hash(w_k) * TOKEN_BASE^k )       (mod 2^64)
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import sys
from collections.abc import Iterator, Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s")
_MASK64 = (1 << 64) - 1

CHAR_BASE = 0x100000001B3  # the 64-bit FNV prime: odd, so multiplication by it is a bijection mod 2^64
TOKEN_BASE = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd
# Documents are hashed in slices of about this many characters (cut at whitespace), so a 16 MB
# document needs tens of MB of temporary arrays, not hundreds.
_SLICE_CHARS = 1 << 20

_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output."""
    shift, m1, m2 = _FMIX64
    values = values ^ (values >> shift)
    values = values * m1
    values = values ^ (values >> shift)
    values = values * m2
    return values ^ (values >> shift)


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch's affine32 scheme pre-mixes input hashes with it)."""
    s1, m1, s2, m2 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s1)


def words(text: str) -> list[str]:
    """The document's words, as the hashes see them (the reference for tests and small texts)."""
    return _WORD.findall(text.lower())


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character span in `text` of each of its `words`, in order: lets decontamination cut out matches."""
    lowered = text.lower()
    spans = [match.span() for match in _WORD.finditer(lowered)]
    if len(lowered) == len(text):
        return spans
    # A few characters lower-case to several (U+0130 becomes "i" plus a combining dot): map offsets
    # in the lower-cased text back to the original characters they came from.
    ends = list(itertools.accumulate(len(ch.lower()) for ch in text))
    return [(bisect.bisect_right(ends, start), bisect.bisect_left(ends, end) + 1) for start, end in spans]


def _fmix64_int(value: int) -> int:
    return int(fmix64(np.array([value], dtype=np.uint64))[0])


def token_hash(word: str) -> int:
    """Reference definition of one word's hash (the vectorised `token_hashes` must agree with it)."""
    raw = sum(ord(ch) * pow(CHAR_BASE, k, 1 << 64) for k, ch in enumerate(word)) & _MASK64
    return _fmix64_int(raw)


def ngram_hash(ngram: Sequence[str]) -> int:
    """Reference definition of one word n-gram's hash (the vectorised `ngram_hashes` must agree with it)."""
    raw = sum(token_hash(word) * pow(TOKEN_BASE, k, 1 << 64) for k, word in enumerate(ngram)) & _MASK64
    return _fmix64_int(raw)


def _powers(base: int, count: int) -> np.ndarray:
    """base^0 .. base^(count-1) modulo 2^64."""
    powers = np.full(count, base, dtype=np.uint64)
    powers[:1] = 1
    return np.multiply.accumulate(powers)


@functools.cache
def _word_characters() -> np.ndarray:
    """Read-only table: is code point i a word character? (Computed once per process, about 0.2 s.)"""
    table = np.fromiter((chr(i).isalnum() for i in range(sys.maxunicode + 1)), dtype=bool, count=sys.maxunicode + 1)
    table[ord("_")] = True
    table.flags.writeable = False
    return table


def _slices(text: str) -> Iterator[str]:
    """`text` cut into pieces of about _SLICE_CHARS characters, at whitespace (which never splits a word)."""
    start = 0
    while start < len(text):
        cut = _SPACE.search(text, start + _SLICE_CHARS)
        end = len(text) if cut is None else cut.start()
        yield text[start:end]
        start = end


def _slice_token_hashes(piece: str) -> np.ndarray:
    codes = np.frombuffer(piece.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")
    is_word = _word_characters()[codes]
    edges = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    if not len(lengths):
        return np.zeros(0, dtype=np.uint64)
    word_codes = codes[is_word].astype(np.uint64)  # the words' characters, back to back
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    offsets = np.arange(len(word_codes)) - np.repeat(starts, lengths)  # each character's place in its word
    raw = np.add.reduceat(word_codes * _powers(CHAR_BASE, int(lengths.max()))[offsets], starts)
    return fmix64(raw)


def token_hashes(text: str) -> np.ndarray:
    """`token_hash` of every word of `text`, in order (uint64; empty for a text without words)."""
    lowered = text.lower()
    return np.concatenate([np.zeros(0, dtype=np.uint64), *map(_slice_token_hashes, _slices(lowered))])


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """`ngram_hash` of every run of `n` consecutive words (uint64).

    A text with fewer than `n` words (but at least one) yields the hash of all its words, so short
    documents still get a shingle; a text without words yields none.
    """
    if n < 1:
        raise ValueError("n-gram size must be at least 1")
    if not len(tokens):
        return np.zeros(0, dtype=np.uint64)
    width = min(n, len(tokens))
    return ngram_hashes_by_length(tokens, [width])[width]


def ngram_hashes_by_length(tokens: np.ndarray, lengths: Sequence[int]) -> dict[int, np.ndarray]:
    """`ngram_hash` of every run of each length in `lengths` (1 <= length <= len(tokens)), sharing the work.

    The hash sum of an m-gram is the (m-1)-gram's plus one term, so every length costs one pass.
    """
    wanted = sorted(set(lengths))
    if not wanted or wanted[0] < 1 or wanted[-1] > len(tokens):
        raise ValueError(f"n-gram lengths {wanted} must lie in 1..{len(tokens)}")
    longest, count = wanted[-1], len(tokens) - wanted[0] + 1
    padded = np.concatenate([tokens, np.zeros(longest, dtype=np.uint64)])  # runs may overhang the end
    raw = np.zeros(count, dtype=np.uint64)
    found: dict[int, np.ndarray] = {}
    for k, power in enumerate(_powers(TOKEN_BASE, longest)):
        raw += padded[k : k + count] * power
        if k + 1 in wanted:
            found[k + 1] = fmix64(raw[: len(tokens) - k])
    return found
