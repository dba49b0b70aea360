"""Beam stages of `gemmaflow prefs`: format preference pairs as two Gemma chat sequences, and write pair shards.

    pair records -> FormatPairs (both sequences, loss mask on the final answer; a pair either of whose
                    sequences exceeds seq_len is dropped, `too_long`)
                 -> WritePairShards: per split, deal pairs to shards by a seeded hash of their id
                    (GroupByKey) -> rows in id order -> Parquet + checksum (pipeline/shards_write.py)

Pairs are not packed: a row is one pair, each sequence unpadded, as a reward model or DPO reads them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.mixture import seeded_hash
from gemmaflow.pipeline.pack_config import PrefsConfig, ShardOutputConfig
from gemmaflow.pipeline.prefs import format_pairs
from gemmaflow.pipeline.record_text import REJECTED_ANSWER, TURNS
from gemmaflow.pipeline.shards_write import PairSequences, pairs_to_table
from gemmaflow.pipeline.stages.base import STATS, CountingDoFn
from gemmaflow.pipeline.stages.pack import SHARDS_FILE, write_shard_file
from gemmaflow.pipeline.stages.sft import ChatFormatDoFn, ChatRecord, FormatChatRecords
from gemmaflow.pipeline.stages.write import STATS_DIR

Keyed = tuple[str, PairSequences]  # (split, pair)


class _FormatPairsDoFn(ChatFormatDoFn):
    """A pair: its chosen and rejected sequences, written together as one row."""

    def sequences(self, records: Sequence[ChatRecord]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        assert self.ids is not None
        triples = [(tuple(map(tuple, r[TURNS][:-1])), r[TURNS][-1][1], r[REJECTED_ANSWER]) for r in records]
        return [list(pair) for pair in format_pairs(triples, self.encode, self.ids)]

    def item(self, record: ChatRecord, sequences: list[tuple[np.ndarray, np.ndarray]]) -> PairSequences:
        (chosen, chosen_mask), (rejected, rejected_mask) = sequences
        return PairSequences(record["id"], record["category"], chosen, chosen_mask, rejected, rejected_mask)


class FormatPairs(FormatChatRecords):
    """Pair records -> (split, PairSequences); a pair either of whose sequences is over-long is rejected."""

    def __init__(self, tokenizer_path: str, config: PrefsConfig) -> None:
        super().__init__(_FormatPairsDoFn(tokenizer_path, config))


def _shard_of(element: Keyed, seed: int, sequences_per_shard: int, pairs: dict[str, int]) -> Any:
    split, pair = element
    shards = max(1, math.ceil(pairs[split] / sequences_per_shard))
    return (split, seeded_hash(seed, "shard", pair.key) % shards), pair


class _WritePairShardDoFn(CountingDoFn):
    """One shard's pairs, in id order -> one Parquet file (temporary name) and its summary."""

    def __init__(self, output: str, config: ShardOutputConfig) -> None:
        super().__init__("pack")
        self.output = output
        self.config = config

    def process(self, element: tuple[tuple[str, int], Iterable[PairSequences]]) -> Iterator[dict[str, Any]]:
        (split, shard), pairs = element
        rows = sorted(pairs, key=lambda pair: pair.key)
        self.counts.record_in(0, len(rows))
        self.counts.kept += len(rows)
        self.counts.tally(f"documents.{split}", len(rows))
        table, tally = pairs_to_table(rows)
        yield write_shard_file(self.output, split, shard, table, tally, self.config)


class WritePairShards(beam.PTransform):
    """(split, PairSequences) -> Parquet shards under output/<split>/ and their summaries in _stats/shards.json.

    Returns the write's counts (stage `pack`, as `gemmaflow pack` and `sft` name theirs).
    """

    def __init__(self, output: str, config: PrefsConfig) -> None:
        super().__init__()
        self.output = output
        self.config = config

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        shards, seed = self.config.output, self.config.packing.seed
        counts = beam.pvalue.AsDict(pairs | "PairsPerSplit" >> beam.Map(lambda e: (e[0], 1))
                                    | "CountPerSplit" >> beam.CombinePerKey(sum))
        written = (
            pairs
            | "DealToShards" >> beam.Map(_shard_of, seed, shards.sequences_per_shard, counts)
            | "GatherShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WritePairShardDoFn(self.output, shards)).with_outputs(STATS, main="shards")
        )
        (
            written["shards"]
            | "ShardList" >> beam.combiners.ToList()
            | "ShardsJson" >> beam.Map(json.dumps)
            | "WriteShardList" >> beam.io.WriteToText(
                FileSystems.join(self.output, STATS_DIR, SHARDS_FILE), shard_name_template="", num_shards=1
            )
        )
        return written[STATS]
