"""Packing, mixture planning and shard columns as plain functions (no runner)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gemmaflow.pipeline.mixture import DomainHistogram, mixture_bucket, plan_mixture, seeded_hash, split_of
from gemmaflow.pipeline.pack_config import MixtureConfig
from gemmaflow.pipeline.packing import PackItem, best_fit_decreasing, pack_window
from gemmaflow.pipeline.shards_write import SHARD_SCHEMA, parquet_bytes, rows_to_table


def items(lengths: list[int], domain: str = "web") -> list[PackItem]:
    start = 10
    out = []
    for i, n in enumerate(lengths):
        out.append(PackItem(f"d{i:03d}", domain, np.arange(start, start + n, dtype=np.int32)))
        start += n
    return out


def test_best_fit_decreasing_puts_each_item_in_the_fullest_bin_it_fits():
    assert best_fit_decreasing([6, 5, 4, 3, 2], 10) == [[0, 2], [1, 3, 4]]  # 4 fills the 6-bin exactly
    # 7 opens a bin, 5 a second; 3 fits both and goes to the fuller one (7, room 3), 2 to room 5.
    assert best_fit_decreasing([3, 7, 5, 2], 10) == [[1, 0], [2, 3]]
    with pytest.raises(ValueError):
        best_fit_decreasing([11], 10)


def test_pack_window_splits_only_long_documents_and_chunks_reassemble():
    seq_len = 16
    docs = items([40, 5, 16, 11, 3, 33, 1])
    units, stats = pack_window(list(reversed(docs)), seq_len)
    assert (stats.documents, stats.documents_split) == (7, 2)
    rows = [row for unit in units for row in unit]
    assert all(sum(len(p.tokens) for p in row) <= seq_len for row in rows)
    # Every token exactly once, and each split document's pieces, in row order, rebuild it.
    placed = np.concatenate([p.tokens for row in rows for p in row])
    assert sorted(placed.tolist()) == sorted(np.concatenate([d.tokens for d in docs]).tolist())
    for doc in docs:
        pieces = [p.tokens for row in rows for p in row if p.tokens[0] in doc.tokens]
        assert np.concatenate(pieces).tolist() == doc.tokens.tolist()
    # A split document's full chunks come right before the row that holds its tail, in the same unit.
    for unit in units:
        assert all(len(row) == 1 and len(row[0].tokens) == seq_len for row in unit[:-1])


def test_pack_window_is_independent_of_delivery_order():
    docs = items([random.Random(3).randrange(1, 60) for _ in range(50)])
    first, _ = pack_window(docs, 32)
    shuffled = docs[:]
    random.Random(4).shuffle(shuffled)
    second, _ = pack_window(shuffled, 32)
    as_lists = [[[p.tokens.tolist() for p in row] for row in unit] for unit in first]
    assert as_lists == [[[p.tokens.tolist() for p in row] for row in unit] for unit in second]


def test_best_fit_leaves_little_padding_on_many_small_documents():
    rng = random.Random(5)
    docs = items([rng.randrange(20, 600) for _ in range(2000)])
    units, _ = pack_window(docs, 1024)
    rows = [row for unit in units for row in unit]
    used = sum(len(p.tokens) for row in rows for p in row)
    assert 1 - used / (len(rows) * 1024) < 0.01


def test_rows_to_table_segments_positions_and_masks():
    docs = items([5, 3])
    masked = PackItem("sft", "chat", np.array([7, 8, 9], dtype=np.int32), np.array([0, 1, 1], dtype=np.uint8))
    rows = [[pack_window([docs[0]], 8)[0][0][0][0], pack_window([masked], 8)[0][0][0][0]],
            [pack_window([docs[1]], 8)[0][0][0][0]]]
    table, tally = rows_to_table(rows, 8, pad_id=0)
    assert table.schema == SHARD_SCHEMA and table.num_rows == 2
    data = table.to_pydict()
    assert data["tokens"][0] == [10, 11, 12, 13, 14, 7, 8, 9]
    assert data["segment_ids"] == [[1, 1, 1, 1, 1, 2, 2, 2], [1, 1, 1, 0, 0, 0, 0, 0]]
    assert data["positions"] == [[0, 1, 2, 3, 4, 0, 1, 2], [0, 1, 2, 0, 0, 0, 0, 0]]
    assert data["loss_mask"] == [[1, 1, 1, 1, 1, 0, 1, 1], [1, 1, 1, 0, 0, 0, 0, 0]]
    assert data["tokens"][1] == [15, 16, 17, 0, 0, 0, 0, 0]
    assert (tally.tokens, tally.non_pad_tokens, tally.loss_tokens) == (16, 11, 10)
    assert tally.tokens_per_domain == {"web": 8, "chat": 3}
    first, digest = parquet_bytes(table, 1, "zstd")
    assert parquet_bytes(table, 1, "zstd") == (first, digest)  # deterministic bytes, so checksums are stable


def test_seeded_decisions_are_stable_and_seed_dependent():
    assert seeded_hash(0, "a", "b") == seeded_hash(0, "a", "b") != seeded_hash(1, "a", "b")
    held = [split_of(f"doc-{i}", 0.1, 0) for i in range(5000)]
    assert 0.08 < held.count("validation") / len(held) < 0.12


def test_mixture_plan_repeats_and_samples_to_the_target():
    rng = random.Random(9)
    buckets = 4096
    lengths = {domain: [rng.randrange(50, 500) for _ in range(n)] for domain, n in (("web", 3000), ("code", 500))}
    histograms = {d: DomainHistogram.empty(buckets) for d in lengths}
    for domain, ls in lengths.items():
        for i, n in enumerate(ls):
            histograms[domain].add(mixture_bucket(f"{domain}-{i}", 0, buckets), n)
    available = {d: sum(ls) for d, ls in lengths.items()}
    budget = available["web"]
    plan = plan_mixture(MixtureConfig(weights={"web": 0.5, "code": 0.5}, token_budget=budget), histograms, 0)
    assert plan.repeats == {"code": budget // 2 // available["code"], "web": 0}
    for domain, ls in lengths.items():
        realised = sum(n * plan.copies(f"{domain}-{i}", domain) for i, n in enumerate(ls))
        assert realised == pytest.approx(budget / 2, rel=0.01)
    assert plan.copies("x", "math") == 0  # no weight: left out
    auto = plan_mixture(MixtureConfig(weights={"web": 3, "code": 1}), histograms, 0)
    assert auto.token_budget == min(available["web"] / 0.75, available["code"] / 0.25) // 1
    natural = plan_mixture(MixtureConfig(), histograms, 0)
    assert natural.copies("anything", "math") == 1
