"""Beam stages of `gemmaflow pack` (and the packing half of `gemmaflow sft`): tokenize, mix, pack, write shards.

    documents -> TokenizeDocuments -> (split, PackItem) -> ApplyMixture -> copies
              -> PackAndWriteShards: deal to windows (GroupByKey) -> best-fit decreasing per window
                 -> units of rows -> deal to shards (GroupByKey) -> seeded order -> Parquet + checksum
    driver:   rename shards to shard-i-of-n, write manifest.json and stats.json

A worker holds one window of documents or one shard of rows at a time, never the corpus. Every
decision is a seeded hash of a document key, so the output does not depend on the runner's order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.config import OutputConfig
from gemmaflow.pipeline.mixture import (
    TRAIN,
    DomainHistogram,
    MixturePlan,
    mixture_bucket,
    plan_mixture,
    seeded_hash,
    split_of,
)
from gemmaflow.pipeline.pack_config import MixtureConfig, PackConfig, PackingConfig, ShardOutputConfig
from gemmaflow.pipeline.packing import PackItem, Unit, pack_window
from gemmaflow.pipeline.records import DEAD_LETTER_SCHEMA, REJECTED_SCHEMA
from gemmaflow.pipeline.shards_write import ShardTally, parquet_bytes, rows_to_table
from gemmaflow.pipeline.stages.base import KEPT, STATS, CountingDoFn, Document, utf8_len
from gemmaflow.pipeline.stages.write import DEAD_LETTER_DIR, REJECTED_DIR, STATS_DIR, WriteParquet
from gemmaflow.pipeline.tokenize import encode_documents, load_processor

SHARDS_FILE = "shards.json"
MIXTURE_FILE = "mixture.json"

Keyed = tuple[str, PackItem]  # (split, item)


def read_bytes(path: str) -> bytes:
    """A whole file through Beam's filesystems (local or gs://)."""
    with FileSystems.open(path) as handle:
        return handle.read()


class _TokenizeDoFn(CountingDoFn):
    """Batched SentencePiece encode; the model is read and loaded once per worker in setup()."""

    def __init__(self, tokenizer_path: str, config: PackConfig) -> None:
        super().__init__("tokenize")
        self.tokenizer_path = tokenizer_path
        self.config = config
        self.processor: Any = None

    def setup(self) -> None:
        self.processor = load_processor(read_bytes(self.tokenizer_path))

    def process(self, docs: Sequence[Document]) -> Iterator[Keyed]:
        document = self.config.document
        arrays, truncated = encode_documents(
            self.processor, [doc["text"] for doc in docs], document.add_bos, document.add_eos,
            self.config.encode.num_threads, document.max_document_tokens,
        )
        self.counts.tally("truncated_documents", truncated)
        packing = self.config.packing
        for doc, tokens in zip(docs, arrays, strict=True):
            nbytes = utf8_len(doc["text"])
            self.counts.record_in(nbytes)
            self.counts.record_kept(nbytes)
            self.counts.tally("tokens", len(tokens))
            split = split_of(doc["id"], packing.validation_fraction, packing.seed)
            domain = doc["domain"] or "web"
            yield split, PackItem(doc["id"], domain, tokens, group=domain)


class TokenizeDocuments(beam.PTransform):
    """Documents -> (split, PackItem); the split is decided per document here, before any copy is made."""

    def __init__(self, tokenizer_path: str, config: PackConfig) -> None:
        super().__init__()
        self.tokenizer_path = tokenizer_path
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        size = self.config.encode.batch_size
        outputs = (
            docs
            | "BatchForEncode" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | "Encode" >> beam.ParDo(_TokenizeDoFn(self.tokenizer_path, self.config)).with_outputs(STATS, main=KEPT)
        )
        return {KEPT: outputs[KEPT], STATS: outputs[STATS]}


class _HistogramFn(beam.CombineFn):
    def __init__(self, buckets: int) -> None:
        self.buckets = buckets

    def create_accumulator(self) -> DomainHistogram:
        return DomainHistogram.empty(self.buckets)

    def add_input(self, acc: DomainHistogram, element: tuple[int, int]) -> DomainHistogram:
        return acc.add(*element)

    def merge_accumulators(self, accs: Iterable[DomainHistogram]) -> DomainHistogram:
        merged = DomainHistogram.empty(self.buckets)
        for acc in accs:
            merged.merge(acc)
        return merged

    def extract_output(self, acc: DomainHistogram) -> DomainHistogram:
        return acc


class _CopiesDoFn(CountingDoFn):
    """Emits each training document as often as the plan says (keys `id#k`); validation passes once.

    Tallies per mixture group what it was offered (`in.<group>`), what it kept (`selected.<group>`)
    and what it emitted (`copies.<group>`, `tokens.<group>`, `train_tokens.<group>`): the realised mix.
    """

    def __init__(self) -> None:
        super().__init__("mixture")

    def process(self, element: Keyed, plan: MixturePlan) -> Iterator[Keyed]:
        split, item = element
        self.counts.record_in(0)
        self.counts.tally(f"in.{item.group}")
        copies = plan.copies(item.key, item.group) if split == TRAIN else 1
        if copies == 0:
            self.counts.record_dropped("not_sampled" if item.group in plan.repeats else "domain_not_in_mixture")
            return
        self.counts.record_kept(0)
        self.counts.tally("copies", copies)
        self.counts.tally(f"selected.{item.group}")
        self.counts.tally(f"copies.{item.group}", copies)
        self.counts.tally(f"tokens.{item.group}", copies * len(item.tokens))
        if split == TRAIN:
            self.counts.tally(f"train_tokens.{item.group}", copies * len(item.tokens))
        for k in range(copies):
            yield split, item._replace(key=f"{item.key}#{k}")


class ApplyMixture(beam.PTransform):
    """Samples or repeats each mixture group's training documents (pack: each domain's; SFT: each source's)
    to the configured weights and budget, and writes the plan to OUTPUT/_stats/mixture.json for the
    manifest (jobs/pack.py `read_plan`). Returns the copies and the stats.
    """

    def __init__(self, config: MixtureConfig, seed: int, output: str) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.output = output

    def expand(self, items: beam.PCollection) -> dict[str, beam.PCollection]:
        config, seed = self.config, self.seed
        histograms = (
            items
            | "TrainOnly" >> beam.Filter(lambda kv: kv[0] == TRAIN)
            | "BucketTokens" >> beam.Map(
                lambda kv: (kv[1].group, (mixture_bucket(kv[1].key, seed, config.histogram_buckets),
                                           len(kv[1].tokens))))
            | "TokensPerBucket" >> beam.CombinePerKey(_HistogramFn(config.histogram_buckets))
            | "AllDomains" >> beam.combiners.ToDict()
        )
        plan = histograms | "PlanMixture" >> beam.Map(lambda h: plan_mixture(config, h, seed))
        copies = items | "Copy" >> beam.ParDo(_CopiesDoFn(), plan=beam.pvalue.AsSingleton(plan)).with_outputs(
            STATS, main=KEPT
        )
        (
            plan
            | "PlanJson" >> beam.Map(lambda plan: json.dumps(plan.to_dict()))
            | "WritePlan" >> beam.io.WriteToText(FileSystems.join(self.output, STATS_DIR, MIXTURE_FILE),
                                                 shard_name_template="", num_shards=1)
        )
        return {KEPT: copies[KEPT], STATS: copies[STATS]}


def _window_of(element: Keyed, seed: int, window_documents: int, documents: dict[str, int]) -> Any:
    split, item = element
    windows = max(1, math.ceil(documents[split] / window_documents))
    return (split, seeded_hash(seed, "window", item.key) % windows), item


class _PackWindowDoFn(CountingDoFn):
    def __init__(self, seq_len: int, seed: int) -> None:
        super().__init__("pack")
        self.seq_len = seq_len
        self.seed = seed

    def process(self, element: tuple[tuple[str, int], Iterable[PackItem]]) -> Iterator[Any]:
        (split, window), items = element
        units, stats = pack_window(list(items), self.seq_len)
        self.counts.record_in(0, stats.documents)
        self.counts.kept += stats.documents
        self.counts.tally(f"documents.{split}", stats.documents)
        self.counts.tally("documents_split", stats.documents_split)
        self.counts.tally("chunks", stats.chunks)
        self.counts.tally("windows")
        for index, unit in enumerate(units):
            yield split, seeded_hash(self.seed, "order", split, str(window), str(index)), unit


class _WriteShardDoFn(beam.DoFn):
    """Rows of one shard in their seeded order -> one Parquet file (temporary name) and its summary."""

    def __init__(self, output: str, seq_len: int, pad_id: int, config: ShardOutputConfig) -> None:
        self.output = output
        self.seq_len = seq_len
        self.pad_id = pad_id
        self.config = config

    def process(self, element: tuple[tuple[str, int], Iterable[tuple[int, Unit]]]) -> Iterator[dict[str, Any]]:
        (split, shard), units = element
        rows = [row for _, unit in sorted(units, key=lambda ou: ou[0]) for row in unit]
        table, tally = rows_to_table(rows, self.seq_len, self.pad_id)
        yield write_shard_file(self.output, split, shard, table, tally, self.config)


def write_shard_file(output: str, split: str, shard: int, table: pa.Table, tally: ShardTally,
                     config: ShardOutputConfig) -> dict[str, Any]:
    """One shard as Parquet under a temporary name (the driver renames it) -> its summary for the manifest."""
    data, sha256 = parquet_bytes(table, config.row_group_size, config.compression)
    path = f"{split}/part-{shard:05d}.parquet"
    with FileSystems.create(FileSystems.join(output, path)) as handle:
        handle.write(data)
    return {"split": split, "index": shard, "path": path, "sequences": tally.sequences, "tokens": tally.tokens,
            "non_pad_tokens": tally.non_pad_tokens, "loss_tokens": tally.loss_tokens,
            "tokens_per_domain": dict(sorted(tally.tokens_per_domain.items())), "sha256": sha256}


def _shard_of(element: tuple[str, int, Unit], sequences_per_shard: int, rows: dict[str, int]) -> Any:
    split, order, unit = element
    shards = max(1, math.ceil(rows[split] / sequences_per_shard))
    return (split, order % shards), (order, unit)


def _per_split_total(pcoll: beam.PCollection, label: str, size: Any) -> beam.pvalue.AsDict:
    return beam.pvalue.AsDict(
        pcoll | f"{label}Sizes" >> beam.Map(lambda e: (e[0], size(e))) | f"{label}Totals" >> beam.CombinePerKey(sum)
    )


class PackAndWriteShards(beam.PTransform):
    """(split, PackItem) -> Parquet shards under output/<split>/ and their summaries in _stats/shards.json.

    Returns the pack stage's counts.
    """

    def __init__(self, output: str, packing: PackingConfig, shards: ShardOutputConfig, pad_id: int) -> None:
        super().__init__()
        self.output = output
        self.packing = packing
        self.shards = shards
        self.pad_id = pad_id

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        packing, shards = self.packing, self.shards
        documents = _per_split_total(items, "Documents", lambda e: 1)
        packed = (
            items
            | "DealToWindows" >> beam.Map(_window_of, packing.seed, packing.window_documents, documents)
            | "GatherWindows" >> beam.GroupByKey()
            | "BestFitDecreasing" >> beam.ParDo(_PackWindowDoFn(packing.seq_len, packing.seed)).with_outputs(
                STATS, main="units"
            )
        )
        rows = _per_split_total(packed["units"], "Rows", lambda e: len(e[2]))
        (
            packed["units"]
            | "DealToShards" >> beam.Map(_shard_of, shards.sequences_per_shard, rows)
            | "GatherShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteShardDoFn(self.output, packing.seq_len, self.pad_id, shards))
            | "ShardList" >> beam.combiners.ToList()
            | "ShardsJson" >> beam.Map(json.dumps)
            | "WriteShardList" >> beam.io.WriteToText(
                FileSystems.join(self.output, STATS_DIR, SHARDS_FILE), shard_name_template="", num_shards=1
            )
        )
        return packed[STATS]


def write_sinks(output: str, dead: list[beam.PCollection], rejected: list[beam.PCollection],
                rejected_schema: pa.Schema = REJECTED_SCHEMA) -> None:
    """Dead letters and rejected records, as Parquet next to the shards."""
    sink = OutputConfig()
    dead | "GatherDead" >> beam.Flatten() | "WriteDeadLetters" >> WriteParquet(
        FileSystems.join(output, DEAD_LETTER_DIR, "part"), DEAD_LETTER_SCHEMA, sink
    )
    rejected | "GatherRejected" >> beam.Flatten() | "WriteRejected" >> WriteParquet(
        FileSystems.join(output, REJECTED_DIR, "part"), rejected_schema, sink
    )
