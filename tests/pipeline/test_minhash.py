"""Shingling, signatures (equal to datasketch's), LSH parameter derivation, band keys and verification."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from gemmaflow.pipeline import shingles
from gemmaflow.pipeline.config import NearDedupeConfig, NearDedupeProfile
from gemmaflow.pipeline.minhash import (
    EMPTY_HASH,
    LshShape,
    Sketch,
    band_keys,
    estimated_jaccard,
    lsh_shape,
    permutations,
    shingle_hashes,
    signature,
    verified,
)
from gemmaflow.pipeline.shingles import (
    ngram_hash,
    ngram_hashes,
    ngram_hashes_by_length,
    token_hash,
    token_hashes,
    word_spans,
    words,
)

VOCABULARY = [f"word{i}" for i in range(3000)]


def prose(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VOCABULARY) for _ in range(n)]


def edited(text: list[str], n_edits: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = list(text)
    for _ in range(n_edits):
        out[rng.randrange(len(out))] = rng.choice(VOCABULARY)
    return out


def reference_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    w = words(text)
    if len(w) < n:
        return [tuple(w)] if w else []
    return [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]


def test_words_ignore_case_punctuation_and_spacing():
    assert words("Hello,  WORLD!\r\nfoo_bar x1") == ["hello", "world", "foo_bar", "x1"]
    assert words("  ... ") == [] and words("") == []
    a = token_hashes("The  quick\nbrown FOX.")
    b = token_hashes("the quick brown fox")
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "text",
    ["", "one", "Some words, some MORE words.", "İstanbul Ǆemal straße 北京 naïve x_y 3.14 \U0001d400b", "e\u0301"],
)
def test_vectorised_hashes_equal_the_reference_definitions(text):
    assert token_hashes(text).tolist() == [token_hash(w) for w in words(text)]
    for n in (1, 2, 3, 5):
        assert ngram_hashes(token_hashes(text), n).tolist() == [ngram_hash(g) for g in reference_ngrams(text, n)]


def test_several_ngram_lengths_at_once_equal_one_at_a_time():
    tokens = token_hashes(" ".join(prose(5, 40)))
    together = ngram_hashes_by_length(tokens, [13, 8, 10, 8])
    assert sorted(together) == [8, 10, 13]
    for n, hashes in together.items():
        assert np.array_equal(hashes, ngram_hashes(tokens, n))
    for bad in ([41], [0], []):
        with pytest.raises(ValueError):
            ngram_hashes_by_length(tokens, bad)


def test_long_text_is_hashed_in_slices_with_the_same_result(monkeypatch):
    text = " ".join(prose(1, 400)) + "\n" + "-".join(prose(2, 50))
    whole = token_hashes(text)
    monkeypatch.setattr(shingles, "_SLICE_CHARS", 64)
    assert np.array_equal(token_hashes(text), whole)
    assert len(whole) == 450


def test_short_one_word_and_empty_texts_get_one_or_no_shingle():
    assert len(shingle_hashes("", 5)) == 0
    assert len(shingle_hashes("!!!", 5)) == 0
    assert len(shingle_hashes("word", 5)) == 1
    assert len(shingle_hashes("two words", 5)) == 1
    assert len(shingle_hashes("a b c d e f", 5)) == 2
    with pytest.raises(ValueError):
        ngram_hashes(token_hashes("a b"), 0)


def test_word_spans_point_into_the_original_text():
    text = "İİ ab, cd"  # U+0130 lower-cases to "i" + a combining dot, which is no word character
    assert words(text) == ["i", "i", "ab", "cd"]
    assert [text[s:e] for s, e in word_spans(text)] == ["İ", "İ", "ab", "cd"]
    assert word_spans("x  y.") == [(0, 1), (3, 4)]


@pytest.mark.parametrize(("num_perm", "seed", "n"), [(128, 1, 5), (256, 7, 3), (64, 42, 1)])
def test_signature_equals_datasketch_for_same_seed_and_num_perm(num_perm, seed, n):
    text = " ".join(prose(3, 250)) + " Mixed CASE, punctuation; and\ttabs."
    reference = MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda gram: ngram_hash(gram) >> 32)
    reference.update_batch(reference_ngrams(text, n))
    ours = signature(shingle_hashes(text, n), permutations(num_perm, seed))
    assert ours.dtype == np.uint32
    assert np.array_equal(ours, reference.hashvalues)


def test_signature_of_nothing_is_datasketchs_empty_signature():
    sig = signature(np.zeros(0, dtype=np.uint32), permutations(16, 1))
    assert np.array_equal(sig, MinHash(num_perm=16, seed=1).hashvalues)
    assert (sig == EMPTY_HASH).all()


def test_signature_is_blocked_without_changing_the_result(monkeypatch):
    import gemmaflow.pipeline.minhash as minhash

    hashes = shingle_hashes(" ".join(prose(4, 300)), 3)
    perms = permutations(32, 1)
    whole = signature(hashes, perms)
    monkeypatch.setattr(minhash, "_SHINGLES_PER_BLOCK", 7)
    assert np.array_equal(signature(hashes, perms), whole)


@pytest.mark.parametrize(("threshold", "weight"), [(0.5, 0.5), (0.6, 0.05), (0.8, 0.3)])
def test_lsh_shape_is_datasketchs_optimum(threshold, weight):
    shape = lsh_shape(threshold, 128, weight)
    lsh = MinHashLSH(threshold=threshold, num_perm=128, weights=(weight, 1 - weight))
    assert (shape.bands, shape.rows) == (lsh.b, lsh.r)
    assert shape.bands * shape.rows <= 128


def test_weighing_false_negatives_more_catches_more_pairs_at_the_threshold():
    balanced, recall_first = lsh_shape(0.6, 256, 0.5), lsh_shape(0.6, 256, 0.05)
    assert recall_first.candidate_probability(0.6) > balanced.candidate_probability(0.6)
    assert recall_first.candidate_probability(0.6) > 0.95
    assert recall_first.candidate_probability(0.2) < 0.02


def test_lsh_shape_must_fit_the_signature():
    with pytest.raises(ValueError, match="do not fit"):
        LshShape(num_perm=16, bands=5, rows=4)
    assert LshShape(16, 4, 4).candidate_probability(1.0) == 1.0


def test_band_keys_collide_only_on_equal_bands_in_the_same_slot():
    shape = LshShape(num_perm=8, bands=4, rows=2)
    sig = np.arange(8, dtype=np.uint32)
    other = sig.copy()
    other[0] = 99  # changes band 0 only
    assert len(set(band_keys(sig, shape)) & set(band_keys(other, shape))) == 3
    swapped = np.array([2, 3, 0, 1, 4, 5, 6, 7], dtype=np.uint32)  # band 0 and 1 values swapped
    assert set(band_keys(sig, shape)) & set(band_keys(swapped, shape)) == set(band_keys(sig, shape)[2:])


def test_estimated_jaccard_tracks_the_true_value():
    perms = permutations(256, 1)
    a = np.arange(0, 3000, dtype=np.uint32)
    b = np.arange(1000, 4000, dtype=np.uint32)  # true Jaccard 2000 / 4000 = 0.5
    estimate = estimated_jaccard(signature(a, perms), signature(b, perms))
    assert abs(estimate - 0.5) < 0.1
    assert estimated_jaccard(signature(a, perms), signature(a, perms)) == 1.0
    with pytest.raises(ValueError):
        estimated_jaccard(signature(a, perms), signature(a, perms)[:10])


def _sketch(text: list[str], threshold: float = 0.6, ngram: int = 3) -> Sketch:
    return Sketch.of(signature(shingle_hashes(" ".join(text), ngram), permutations(256, 1)), ngram, threshold)


def test_verification_keeps_light_edits_and_rejects_shared_header_or_footer():
    body = prose(10, 600)
    header = prose(11, 400)
    copy = edited(body, 15) + prose(12, 20)  # 2.5% of words changed plus a short footer
    assert verified(_sketch(body), _sketch(copy))
    # Hard negatives: the same long header (40% of each document) over different bodies.
    first, second = header + prose(13, 600), header + prose(14, 600)
    assert not verified(_sketch(first), _sketch(second))
    assert not verified(_sketch(header + body), _sketch(body + header[::-1]))


def test_verification_applies_the_stricter_threshold_and_compares_like_with_like():
    body = prose(20, 500)
    copy = edited(body, 40)  # about 0.6 Jaccard on 3-grams
    similarity = estimated_jaccard(_sketch(body).signature(), _sketch(copy).signature())
    assert verified(_sketch(body, similarity - 0.05), _sketch(copy, similarity - 0.05))
    assert not verified(_sketch(body, similarity - 0.05), _sketch(copy, similarity + 0.05))
    assert not verified(_sketch(body, ngram=3), _sketch(body, ngram=5))


def test_near_dedupe_config_validates_and_picks_the_domain_profile():
    config = NearDedupeConfig()
    assert config.profile("code") is config.code and config.profile(None) is config.web
    assert config.profile("math").threshold > config.profile("web").threshold
    with pytest.raises(ValueError, match="survivor_signal"):
        NearDedupeConfig(survivor="highest_signal")
    with pytest.raises(ValueError, match="threshold"):
        NearDedupeProfile(3, 0.0)
    with pytest.raises(ValueError, match="max_bucket_size"):
        NearDedupeConfig(max_bucket_size=1)
