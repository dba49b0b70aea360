"""The preference-pair reader: validates a `gemmaflow prefs` shard folder and serves pairs by step.

A preference row is one pair, unpadded (docs/shard-format.md, "Preference rows"). The reward model,
DPO and REINFORCE read them here: pairs as fixed-width arrays for the first two, the shared prompt for
the third. The width is the split's longest sequence (measured once at open, one row group at a
time), not the manifest's `seq_len`, so a split of 200-token pairs made with `seq_len` 8192 costs
200-token forward passes, and every batch has the same shape (one compilation).

Order is `BatchOrder`'s (model/shards.py): a pure function of seed and step, so a resumed run sees the
same pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gemmaflow.core.shard_format import PAIR_COLUMN_TYPES, Manifest, ShardFormatError
from gemmaflow.model.shards import BatchOrder, locate_rows, open_shard, row_group_starts

SIDES = ("chosen", "rejected")


def _prompt_length(mask: np.ndarray) -> int:
    """Tokens before the first answer token: the prompt both sequences share."""
    answer = np.flatnonzero(mask)
    if not answer.size:
        raise ShardFormatError("a preference sequence has no answer tokens (its loss mask is all 0)")
    return int(answer[0])


def sequence_arrays(sequences: Sequence[np.ndarray], masks: Sequence[np.ndarray], width: int) -> dict[str, np.ndarray]:
    """Unpadded sequences and their answer masks -> model arrays [n, width], right-padded with segment 0.

    `targets`/`mask` follow `training_arrays`: slot i predicts token i+1, scored when that token is an
    answer token. `last` [n] is the slot of each sequence's last answer token (its `<end_of_turn>`),
    where a reward model reads its score.
    """
    n = len(sequences)
    out = {name: np.zeros((n, width), np.int32) for name in ("inputs", "positions", "segment_ids", "targets")}
    out["mask"] = np.zeros((n, width), np.float32)
    out["last"] = np.zeros(n, np.int32)
    for row, (tokens, answer) in enumerate(zip(sequences, masks, strict=True)):
        length = len(tokens)
        if length > width:
            raise ShardFormatError(f"a {length}-token sequence does not fit the width {width}")
        out["inputs"][row, :length] = tokens
        out["positions"][row, :length] = np.arange(length)
        out["segment_ids"][row, :length] = 1
        out["targets"][row, :length - 1] = tokens[1:]
        out["mask"][row, :length - 1] = answer[1:] != 0
        answered = np.flatnonzero(answer)
        out["last"][row] = answered[-1] if answered.size else length - 1
    return out


def pair_arrays(rows: dict[str, list[np.ndarray]], width: int) -> dict[str, np.ndarray]:
    """Pair rows -> model arrays with a side axis: [n, 2, width] (and `last` [n, 2]); side 0 is chosen."""
    sides = [sequence_arrays(rows[f"{side}_tokens"], rows[f"{side}_loss_mask"], width) for side in SIDES]
    return {name: np.stack([side[name] for side in sides], axis=1) for name in sides[0]}


class PairReader:
    """One split of a preference shard folder, validated on open (checksums, row counts, columns), read by index."""

    def __init__(self, directory: str | Path, split: str, *, vocab_size: int, verify_checksums: bool = True) -> None:
        self.directory = Path(directory)
        self.manifest = manifest = Manifest.load(self.directory)
        if manifest.kind != "preference":
            raise ShardFormatError(f"{self.directory}: {manifest.kind} shards; this objective reads preference pairs "
                                   "(gemmaflow prefs)")
        if split not in manifest.splits:
            raise ShardFormatError(f"{self.directory}: no split {split!r} (has {sorted(manifest.splits)})")
        if vocab_size < manifest.vocab_size:
            raise ShardFormatError(f"{self.directory}: tokenizer vocabulary {manifest.vocab_size} does not fit the "
                                   f"model's {vocab_size} embedding rows")
        self._files: list[pq.ParquetFile] = []
        self._row_group_starts: list[list[int]] = []  # per shard: first row of each row group
        starts = [0]
        self.width = self.prompt_width = 0
        for info in manifest.splits[split]:
            path = self.directory / info.path
            parquet = open_shard(path, info, tuple(PAIR_COLUMN_TYPES), verify_checksums)
            self._measure(parquet, path)
            self._files.append(parquet)
            self._row_group_starts.append(row_group_starts(parquet))
            starts.append(starts[-1] + info.sequences)
        self._starts = starts
        if len(self) == 0:
            raise ShardFormatError(f"{self.directory}: split {split!r} holds no pairs")

    def _measure(self, parquet: pq.ParquetFile, path: Path) -> None:
        """Widen `width` (longest sequence) and `prompt_width` (longest prompt) over one shard's row groups."""
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=list(PAIR_COLUMN_TYPES))
            for side in SIDES:
                lengths = pc.list_value_length(table.column(f"{side}_tokens")).to_numpy(zero_copy_only=False)
                masks = pc.list_value_length(table.column(f"{side}_loss_mask")).to_numpy(zero_copy_only=False)
                if np.any(lengths != masks):
                    raise ShardFormatError(f"{path}: row group {group}: {side} tokens and masks differ in length")
                self.width = max(self.width, int(lengths.max(initial=0)))
            for mask in table.column("chosen_loss_mask").to_pylist():
                self.prompt_width = max(self.prompt_width, _prompt_length(np.asarray(mask)))

    def __len__(self) -> int:
        return self._starts[-1]

    def read(self, indices: Sequence[int]) -> dict[str, list[np.ndarray]]:
        """The pairs at these global indices, in order: each column a list of 1-D arrays. Each needed row
        group is read once."""
        out: dict[str, list[np.ndarray]] = {name: [np.empty(0)] * len(indices) for name in PAIR_COLUMN_TYPES}
        for (shard, group), wanted in locate_rows(indices, self._starts, self._row_group_starts).items():
            table = self._files[shard].read_row_group(group, columns=list(PAIR_COLUMN_TYPES))
            table = table.take([row for _, row in wanted])
            for name in PAIR_COLUMN_TYPES:
                values = table.column(name).to_pylist()
                for (out_row, _), value in zip(wanted, values, strict=True):
                    out[name][out_row] = np.asarray(value, np.int32)
        return out


class PairDataset:
    """A pair split plus its order. `batch_at` gives pair arrays (reward model, DPO); `prompts_at` the prompts
    (REINFORCE), both with the same rows per process and micro-batch as `ShardDataset.batch_at`."""

    def __init__(self, reader: PairReader, batch_size: int, seed: int, shuffle: bool = True) -> None:
        self.reader = reader
        self.order = BatchOrder(len(reader), batch_size, seed, shuffle)

    def batch_at(self, step: int, micro_batches: int = 1, process_index: int = 0,
                 process_count: int = 1) -> dict[str, np.ndarray]:
        rows = self.reader.read(self.order.local_indices(step, micro_batches, process_index, process_count))
        return pair_arrays(rows, self.reader.width)

    def prompts_at(self, step: int, micro_batches: int = 1, process_index: int = 0,
                   process_count: int = 1) -> list[list[int]]:
        """The shared prompt of each pair (BOS through the opened model turn), as token lists."""
        rows = self.reader.read(self.order.local_indices(step, micro_batches, process_index, process_count))
        return [tokens[:_prompt_length(mask)].tolist()
                for tokens, mask in zip(rows["chosen_tokens"], rows["chosen_loss_mask"], strict=True)]
