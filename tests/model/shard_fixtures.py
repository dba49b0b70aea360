"""Packed shards written for tests straight from docs/shard-format.md (no `pipeline` import; the
format's names come from gemmaflow.core.shard_format, as the writers' do).

The documents are counting sequences (start, start + stride, ... modulo the vocabulary), so a tiny
model can learn them within a few dozen steps: the loss falls well below log(vocab).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gemmaflow.core.shard_format import COLUMN_TYPES, FORMAT, FORMAT_VERSION, MANIFEST_FILE

FIRST_TOKEN = 10  # ids below this are reserved (pad 0, eos 1, bos 2, ...)


def packed_rows(num_rows: int, seq_len: int, vocab_size: int, seed: int, sft: bool = False) -> dict[str, np.ndarray]:
    """Rows of 1-3 counting documents each, then padding. For SFT the first half of each document
    is the "prompt" (loss_mask 0)."""
    rng = np.random.default_rng(seed)
    columns = {name: np.zeros((num_rows, seq_len), np.int32) for name in ("tokens", "segment_ids", "positions")}
    columns["loss_mask"] = np.zeros((num_rows, seq_len), np.uint8)
    span = vocab_size - FIRST_TOKEN
    for row in range(num_rows):
        cursor = 0
        for segment in range(1, rng.integers(1, 4) + 1):
            length = min(int(rng.integers(seq_len // 4, seq_len // 2)), seq_len - cursor)
            if length < 2:
                break
            start, stride = rng.integers(0, span), rng.integers(1, 4)
            doc = slice(cursor, cursor + length)
            columns["tokens"][row, doc] = FIRST_TOKEN + (start + stride * np.arange(length)) % span
            columns["segment_ids"][row, doc] = segment
            columns["positions"][row, doc] = np.arange(length)
            columns["loss_mask"][row, doc] = 1
            if sft:
                columns["loss_mask"][row, cursor:cursor + length // 2] = 0
            cursor += length
    return columns


def document_rows(documents: list[list[int]], seq_len: int) -> dict[str, np.ndarray]:
    """One document per row (cut to seq_len), then padding: rows of real token ids for tests that train on text."""
    columns = {name: np.zeros((len(documents), seq_len), np.int32) for name in ("tokens", "segment_ids", "positions")}
    columns["loss_mask"] = np.zeros((len(documents), seq_len), np.uint8)
    for row, document in enumerate(documents):
        length = min(len(document), seq_len)
        columns["tokens"][row, :length] = document[:length]
        columns["segment_ids"][row, :length] = 1
        columns["positions"][row, :length] = np.arange(length)
        columns["loss_mask"][row, :length] = 1
    return columns


def write_shards(out: Path, *, seq_len: int = 64, vocab_size: int = 128, train_rows: tuple[int, ...] = (20, 12),
                 validation_rows: int = 8, row_group_size: int = 4, seed: int = 0, sft: bool = False) -> Path:
    """A shard folder as `gemmaflow pack` writes it: train/ and validation/ shards and manifest.json."""
    splits = {
        split: [packed_rows(rows, seq_len, vocab_size, seed=seed * 1000 + offset + index, sft=sft)
                for index, rows in enumerate(counts)]
        for offset, split, counts in ((0, "train", train_rows),
                                      (500, "validation", (validation_rows,) if validation_rows else ()))
    }
    return write_shard_folder(out, splits, seq_len=seq_len, vocab_size=vocab_size, row_group_size=row_group_size,
                              kind="sft" if sft else "pretrain")


def write_shard_folder(out: Path, splits: dict[str, list[dict[str, np.ndarray]]], *, seq_len: int, vocab_size: int,
                       row_group_size: int = 4, kind: str = "pretrain") -> Path:
    """Each split's shards (one column dict per shard) and the manifest, in the documented layout."""
    out.mkdir(parents=True, exist_ok=True)
    described = {}
    for split, datas in splits.items():
        shards = []
        for index, data in enumerate(datas):
            rows = len(data["tokens"])
            table = pa.table({name: pa.array(list(data[name]), pa.list_(pa.type_for_alias(element)))
                              for name, element in COLUMN_TYPES.items()})
            relative = f"{split}/shard-{index:05d}-of-{len(datas):05d}.parquet"
            (out / split).mkdir(exist_ok=True)
            pq.write_table(table, out / relative, row_group_size=row_group_size)
            shards.append({"path": relative, "sequences": rows, "tokens": rows * seq_len,
                           "non_pad_tokens": int((data["segment_ids"] > 0).sum()),
                           "loss_tokens": int(data["loss_mask"].sum()),
                           "sha256": hashlib.sha256((out / relative).read_bytes()).hexdigest()})
        described[split] = {key: sum(shard[key] for shard in shards)
                            for key in ("sequences", "tokens", "non_pad_tokens", "loss_tokens")}
        described[split]["shards"] = shards
    tokens = sum(split["tokens"] for split in described.values())
    non_pad = sum(split["non_pad_tokens"] for split in described.values())
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "seq_len": seq_len, "row_group_size": row_group_size,
                "tokenizer": {"sha256": "", "vocab_size": vocab_size, "pad_id": 0, "eos_id": 1, "bos_id": 2},
                "splits": described, "padding_fraction": (tokens - non_pad) / tokens if tokens else 0.0}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return out
