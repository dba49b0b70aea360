"""The packed-shard reader: validates a shard folder (docs/shard-format.md) and serves batches by step.

This is the one implementation of the format's reading side; the writers live in `pipeline/` and
neither imports the other: both take the format's names and the manifest parser from
`gemmaflow.core.shard_format`. Opening a split checks what the document lists under "What the
reader checks": format and version (the manifest parser), the tokenizer's vocabulary against the
model's, `seq_len`, every shard's SHA-256 and row count. Rows are fetched by global sequence index
one row group at a time (the writer keeps row groups small for exactly this), so no shard is ever
read whole.

Training order is a pure function of `(seed, step)`: global sample `g = step * batch_size + j` is
drawn from epoch `g // num_sequences` at slot `g % num_sequences` of that epoch's permutation,
itself seeded by `(seed, epoch)`. A resumed run therefore needs only its step to see the same
batches, and no sequence repeats before every sequence has been seen once.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gemmaflow.core.shard_format import COLUMNS, Manifest, ShardFormatError, ShardInfo


class ShardChecksumError(ShardFormatError):
    """A shard's bytes do not match the SHA-256 in the manifest."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(f"{path}: SHA-256 {actual} does not match the manifest's {expected}")
        self.path = path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def open_shard(path: Path, info: ShardInfo, columns: Sequence[str], verify_checksum: bool) -> pq.ParquetFile:
    """A shard the manifest lists, checked as the format requires: present, its SHA-256 (when verifying), its
    row count and its columns."""
    if not path.is_file():
        raise ShardFormatError(f"{path}: listed in the manifest but missing")
    if verify_checksum and (actual := file_sha256(path)) != info.sha256:
        raise ShardChecksumError(path, info.sha256, actual)
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows != info.sequences:
        raise ShardFormatError(f"{path}: {parquet.metadata.num_rows} rows, the manifest says {info.sequences}")
    missing = sorted(set(columns) - set(parquet.schema_arrow.names))
    if missing:
        raise ShardFormatError(f"{path}: missing columns {missing}")
    return parquet


def row_group_starts(parquet: pq.ParquetFile) -> list[int]:
    """The first row of each row group: rows are fetched one row group at a time."""
    sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()


def locate_rows(indices: Sequence[int], shard_starts: Sequence[int],
                group_starts: Sequence[Sequence[int]]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Global row indices -> {(shard, row group): [(position in `indices`, row within the group)]}, so each
    needed row group is read once however many of the indices fall in it. `shard_starts` ends with the total."""
    located: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for out_row, index in enumerate(indices):
        if not 0 <= index < shard_starts[-1]:
            raise IndexError(f"row {index} out of range for {shard_starts[-1]} rows")
        shard = bisect.bisect_right(shard_starts, index) - 1
        row = index - shard_starts[shard]
        group = bisect.bisect_right(group_starts[shard], row) - 1
        located.setdefault((shard, group), []).append((out_row, row - group_starts[shard][group]))
    return located


def training_arrays(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shard rows [B, T] -> what the model trains on: inputs, positions, segment_ids, targets, mask.

    Per the format, the target of slot i is the token at i+1 when that token is a training target
    (`loss_mask[i+1]`) of the same segment; the last slot of a row has no target. `mask` is float32
    so it can weight the loss directly.
    """
    tokens, segments = rows["tokens"], rows["segment_ids"]
    targets = np.zeros_like(tokens)
    targets[:, :-1] = tokens[:, 1:]
    mask = np.zeros(tokens.shape, np.float32)
    mask[:, :-1] = (rows["loss_mask"][:, 1:] != 0) & (segments[:, 1:] == segments[:, :-1]) & (segments[:, :-1] != 0)
    return {"inputs": tokens, "positions": rows["positions"], "segment_ids": segments, "targets": targets,
            "mask": mask}


class ShardReader:
    """One split of a shard folder, validated on open, read by global sequence index.

    `vocab_size` is the model's embedding rows (at least the tokenizer's vocabulary); `seq_len`,
    when given, must equal the manifest's. `verify_checksums` hashes every shard once at open.
    """

    def __init__(self, directory: str | Path, split: str, *, vocab_size: int, seq_len: int | None = None,
                 verify_checksums: bool = True) -> None:
        self.directory = Path(directory)
        self.manifest = manifest = Manifest.load(self.directory)
        self.split = split
        if split not in manifest.splits:
            raise ShardFormatError(f"{self.directory}: no split {split!r} (has {sorted(manifest.splits)})")
        if vocab_size < manifest.vocab_size:
            raise ShardFormatError(f"{self.directory}: tokenizer vocabulary {manifest.vocab_size} does not fit the "
                                   f"model's {vocab_size} embedding rows")
        if seq_len is not None and seq_len != manifest.seq_len:
            raise ShardFormatError(f"{self.directory}: shards hold {manifest.seq_len}-token sequences, "
                                   f"the caller asked for {seq_len}")
        self.seq_len = manifest.seq_len
        self._paths: list[Path] = []
        self._files: list[pq.ParquetFile] = []
        self._row_group_starts: list[list[int]] = []  # per shard: first row of each row group
        starts = [0]
        for info in manifest.splits[split]:
            path = self.directory / info.path
            parquet = open_shard(path, info, COLUMNS, verify_checksums)
            self._paths.append(path)
            self._files.append(parquet)
            self._row_group_starts.append(row_group_starts(parquet))
            starts.append(starts[-1] + info.sequences)
        self._shard_starts = starts  # global index of each shard's first row, then the total

    def __len__(self) -> int:
        return self._shard_starts[-1]

    def read(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Rows at the given global indices, in that order: a dict of [len(indices), seq_len] arrays.

        Each needed row group is read once however many of the indices fall in it.
        """
        located = locate_rows(indices, self._shard_starts, self._row_group_starts)
        out = {name: np.empty((len(indices), self.seq_len), np.int32) for name in COLUMNS}
        for (shard, group), wanted in located.items():
            table = self._files[shard].read_row_group(group, columns=list(COLUMNS))
            for name in COLUMNS:
                column = table.column(name).combine_chunks()
                lengths = np.diff(column.offsets.to_numpy())
                if np.any(lengths != self.seq_len):
                    raise ShardFormatError(f"{self._paths[shard]}: row group {group} has {name} lists not of "
                                           f"length {self.seq_len}")
                values = column.values.to_numpy(zero_copy_only=False).reshape(-1, self.seq_len)
                for out_row, row in wanted:
                    out[name][out_row] = values[row]
        return out


class BatchOrder:
    """Which sequences make up the batch of each step: a pure function of (seed, step).

    Shuffled, each epoch is a fresh seeded permutation; unshuffled (evaluation), batches walk the
    split in file order, wrapping around.
    """

    def __init__(self, num_sequences: int, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if num_sequences <= 0:
            raise ShardFormatError("the split holds no sequences")
        self.num_sequences, self.batch_size, self.seed, self.shuffle = num_sequences, batch_size, seed, shuffle

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_sequences)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_sequences)

    def local_indices(self, step: int, micro_batches: int, process_index: int, process_count: int) -> list[int]:
        """This process's share of step `step`'s batch: its contiguous block of every micro-batch, micro-batch
        after micro-batch (the rows `jax.make_array_from_process_local_data` expects from it)."""
        indices = np.asarray(self.indices(step)).reshape(micro_batches, -1)  # [A, b]
        block = indices.shape[1] // process_count
        return indices[:, process_index * block:(process_index + 1) * block].reshape(-1).tolist()

    def indices(self, step: int) -> list[int]:
        """The global sequence indices of step `step`'s batch (it may straddle two epochs)."""
        samples = step * self.batch_size + np.arange(self.batch_size)
        epochs, slots = np.divmod(samples, self.num_sequences)
        permutations = {int(e): self._permutation(int(e)) for e in np.unique(epochs)}
        return [int(permutations[int(e)][s]) for e, s in zip(epochs, slots, strict=True)]


class ShardDataset:
    """A split plus its order: `batch_at(step)` gives the same training arrays for the same step and seed.

    The batch is `micro_batches` consecutive micro-batches (gradient accumulation). With several
    processes (multi-host data parallelism) each reads only its contiguous block of every
    micro-batch, the block `jax.make_array_from_process_local_data` expects from it.
    """

    def __init__(self, reader: ShardReader, batch_size: int, seed: int, shuffle: bool = True) -> None:
        self.reader = reader
        self.order = BatchOrder(len(reader), batch_size, seed, shuffle)

    def batch_at(self, step: int, micro_batches: int = 1, process_index: int = 0,
                 process_count: int = 1) -> dict[str, np.ndarray]:
        """Training arrays (see `training_arrays`) of [rows, seq_len]; rows = batch_size / process_count,
        micro-batch after micro-batch."""
        return training_arrays(self.reader.read(self.order.local_indices(step, micro_batches, process_index,
                                                                         process_count)))
