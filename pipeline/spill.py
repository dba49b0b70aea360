"""Spill files: documents written once while the grouping stages decide on their keys, then read back.

A grouping stage (exact and near dedupe) needs every document's key before it can drop any
document, so its documents must wait somewhere. Waiting in the runner's shuffle costs the corpus
in memory on Beam's in-process runner (it holds whole PCollections) and the corpus in shuffle
bytes on a cluster; waiting in a file costs one sequential write and one read, as datatrove's
dedupe blocks do. A spill file is a zstd stream of length-prefixed pickles: exact for every value
a document holds (NaN signals, nested turns), and fast. Only gemmaflow's own spill folder is ever
read this way, never a user's file.

Plain functions, no Beam: the stage (pipeline/stages/grouping.py) calls them per bundle.
"""

from __future__ import annotations

import pickle
import struct
import uuid
from collections.abc import Iterator
from typing import IO, Any

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SPILL_DIR = "_spill"
SUFFIX = ".spill.zst"
_LENGTH = struct.Struct("<I")
_LEVEL = 1  # the text compresses ~3x at level 1; higher levels cost CPU the run has better uses for


def spill_path(folder: str, spill_id: str) -> str:
    return FileSystems.join(folder, spill_id + SUFFIX)


class SpillWriter:
    """One spill file under `folder`, named by a fresh id so a retried bundle never reuses one."""

    def __init__(self, folder: str) -> None:
        self.spill_id = uuid.uuid4().hex
        self.rows = 0
        path = spill_path(folder, self.spill_id)
        self._raw = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._stream: IO[bytes] = zstandard.ZstdCompressor(level=_LEVEL).stream_writer(self._raw, closefd=False)

    def write(self, doc: dict[str, Any]) -> int:
        """Append `doc`; returns its row number in this file."""
        data = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
        self._stream.write(_LENGTH.pack(len(data)))
        self._stream.write(data)
        self.rows += 1
        return self.rows - 1

    def close(self) -> None:
        self._stream.close()
        self._raw.close()


def read_spill(folder: str, spill_id: str) -> Iterator[dict[str, Any]]:
    """The documents of one spill file, in the order they were written, one in memory at a time."""
    path = spill_path(folder, spill_id)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        while True:
            header = _read_exactly(stream, _LENGTH.size, path, end_ok=True)
            if not header:
                return
            (length,) = _LENGTH.unpack(header)
            yield pickle.loads(_read_exactly(stream, length, path))


def _read_exactly(stream: IO[bytes], n: int, path: str, end_ok: bool = False) -> bytes:
    """`n` bytes, or b"" at the end of the file where `end_ok`; a cut file is an error, never a short read."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got == 0 and end_ok:
                return b""
            raise OSError(f"spill file {path} ends inside a record (was the run killed while writing it?)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def delete_spill(folder: str) -> None:
    """Remove a run's spill folder (every file in it is the run's own); absent is fine."""
    if FileSystems.exists(folder):
        FileSystems.delete([folder])
