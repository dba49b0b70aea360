"""The writer's side of docs/shard-format.md: rows to Arrow columns, Parquet bytes with a checksum, the manifest.

The format's name, version and columns come from `gemmaflow.core.shard_format`, the module the
readers (the trainer, the report) parse manifests with.

Plain functions (no Beam): the Beam stage calls them once per shard and the driver once per run.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gemmaflow.core.shard_format import COLUMN_TYPES, FORMAT, FORMAT_VERSION, PAIR_COLUMN_TYPES
from gemmaflow.pipeline.mixture import SPLITS
from gemmaflow.pipeline.packing import Row

SHARD_SCHEMA = pa.schema([(name, pa.list_(pa.type_for_alias(element))) for name, element in COLUMN_TYPES.items()])
PAIR_SHARD_SCHEMA = pa.schema([(name, pa.list_(pa.type_for_alias(element)))
                               for name, element in PAIR_COLUMN_TYPES.items()])


@dataclass
class ShardTally:
    """What one shard holds, as the manifest reports it (`tokens` counts padding too)."""

    sequences: int = 0
    tokens: int = 0
    non_pad_tokens: int = 0
    loss_tokens: int = 0
    tokens_per_domain: dict[str, int] = field(default_factory=dict)


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}/shard-{index:05d}-of-{count:05d}.parquet"


def rows_to_table(rows: list[Row], seq_len: int, pad_id: int) -> tuple[pa.Table, ShardTally]:
    """Flat columns for `rows`: padding after the last segment, positions restarting in each segment."""
    n = len(rows)
    tokens = np.full(n * seq_len, pad_id, dtype=np.int32)
    segments = np.zeros(n * seq_len, dtype=np.int32)
    positions = np.zeros(n * seq_len, dtype=np.int32)
    mask = np.zeros(n * seq_len, dtype=np.uint8)
    ramp = np.arange(seq_len, dtype=np.int32)
    tally = ShardTally(sequences=n, tokens=n * seq_len)
    for r, row in enumerate(rows):
        offset = r * seq_len
        for segment, piece in enumerate(row, start=1):
            length = len(piece.tokens)
            end = offset + length
            if end > (r + 1) * seq_len:
                raise ValueError(f"row {r} holds more than {seq_len} tokens")
            tokens[offset:end] = piece.tokens
            segments[offset:end] = segment
            positions[offset:end] = ramp[:length]
            mask[offset:end] = 1 if piece.loss_mask is None else piece.loss_mask
            tally.tokens_per_domain[piece.domain] = tally.tokens_per_domain.get(piece.domain, 0) + length
            offset = end
    tally.non_pad_tokens = int(np.count_nonzero(segments))
    tally.loss_tokens = int(mask.sum(dtype=np.int64))
    offsets = pa.array(np.arange(0, n * seq_len + 1, seq_len, dtype=np.int32))
    columns = [pa.ListArray.from_arrays(offsets, pa.array(values)) for values in (tokens, segments, positions, mask)]
    return pa.Table.from_arrays(columns, schema=SHARD_SCHEMA), tally


class PairSequences(NamedTuple):
    """One preference pair, formatted: each side's whole sequence and its loss mask (1 on the final answer)."""

    key: str  # unique within the split; orders the shard's rows
    category: str
    chosen_tokens: np.ndarray  # int32
    chosen_mask: np.ndarray  # uint8
    rejected_tokens: np.ndarray
    rejected_mask: np.ndarray


def pairs_to_table(pairs: list[PairSequences]) -> tuple[pa.Table, ShardTally]:
    """One row per pair, unpadded. `tokens` and `non_pad_tokens` count both sequences; `loss_tokens` both masks."""
    tally = ShardTally(sequences=len(pairs))
    for pair in pairs:
        length = len(pair.chosen_tokens) + len(pair.rejected_tokens)
        tally.tokens += length
        tally.loss_tokens += int(pair.chosen_mask.sum(dtype=np.int64) + pair.rejected_mask.sum(dtype=np.int64))
        tally.tokens_per_domain[pair.category] = tally.tokens_per_domain.get(pair.category, 0) + length
    tally.non_pad_tokens = tally.tokens
    columns = [pa.array([getattr(pair, field).tolist() for pair in pairs], type=PAIR_SHARD_SCHEMA.field(name).type)
               for name, field in zip(PAIR_COLUMN_TYPES, ("chosen_tokens", "chosen_mask", "rejected_tokens",
                                                           "rejected_mask"), strict=True)]
    return pa.Table.from_arrays(columns, schema=PAIR_SHARD_SCHEMA), tally


def parquet_bytes(table: pa.Table, row_group_size: int, compression: str) -> tuple[bytes, str]:
    """The shard file's bytes and their SHA-256 (what the manifest lists and the reader verifies)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size, compression=compression)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _add_counts(total: dict[str, int], part: Mapping[str, int]) -> None:
    for key, n in part.items():
        total[key] = total.get(key, 0) + n


def split_summary(shards: Iterable[dict[str, Any]], documents: int) -> dict[str, Any]:
    """A split's totals from its shard entries (already named and in order)."""
    shards = list(shards)
    summary: dict[str, Any] = {"sequences": 0, "tokens": 0, "non_pad_tokens": 0, "loss_tokens": 0,
                               "documents": documents, "tokens_per_domain": {}}
    for shard in shards:
        for key in ("sequences", "tokens", "non_pad_tokens", "loss_tokens"):
            summary[key] += shard[key]
        _add_counts(summary["tokens_per_domain"], shard["tokens_per_domain"])
    summary["tokens_per_domain"] = dict(sorted(summary["tokens_per_domain"].items()))
    summary["shards"] = shards
    return summary


def build_manifest(
    *,
    kind: str,
    seq_len: int,
    row_group_size: int,
    tokenizer: dict[str, Any],
    splits: Mapping[str, dict[str, Any]],
    documents_split: int,
    truncated_documents: int,
    mixture: dict[str, Any] | None,
    config: dict[str, Any],
    config_fingerprint: str,
    realised_tokens: Mapping[str, int] | None = None,
    sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """manifest.json (docs/shard-format.md); `splits` maps split name to `split_summary` output.

    The mixture's realised tokens are the train split's tokens per domain unless `realised_tokens` gives
    them per mixture group (SFT: per source); `sources` is SFT's per-source counts."""
    all_splits = {name: splits.get(name) or split_summary([], 0) for name in SPLITS}
    tokens = sum(s["tokens"] for s in all_splits.values())
    non_pad = sum(s["non_pad_tokens"] for s in all_splits.values())
    documents = sum(s["documents"] for s in all_splits.values())
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "seq_len": seq_len,
        "row_group_size": row_group_size,
        "tokenizer": tokenizer,
        "splits": all_splits,
        "padding_fraction": (tokens - non_pad) / tokens if tokens else 0.0,
        "documents_split": documents_split,
        "documents_split_fraction": documents_split / documents if documents else 0.0,
        "truncated_documents": truncated_documents,
    }
    if mixture is not None:
        realised = all_splits["train"]["tokens_per_domain"] if realised_tokens is None else dict(realised_tokens)
        manifest["mixture"] = {**mixture, "realised_tokens": realised}
    if sources is not None:
        manifest["sources"] = sources
    manifest["config"] = config
    manifest["config_fingerprint"] = config_fingerprint
    return manifest
