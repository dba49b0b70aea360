"""SentencePiece tokenization for packing: the model's identity (checksum, special ids) and batched encode.

The model is handed over as bytes (read once per worker through Beam's filesystems by the stage),
so the same code loads it from a local path or gs://.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sentencepiece as spm


class TokenizerError(ValueError):
    """The SentencePiece model cannot serve this job (not a model, or a special piece is missing)."""


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about the tokenizer: the trainer checks its vocabulary against it."""

    sha256: str
    vocab_size: int
    pad_id: int
    eos_id: int
    bos_id: int

    def to_dict(self) -> dict[str, int | str]:
        return {"sha256": self.sha256, "vocab_size": self.vocab_size, "pad_id": self.pad_id,
                "eos_id": self.eos_id, "bos_id": self.bos_id}


def load_processor(model_bytes: bytes) -> spm.SentencePieceProcessor:
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model_bytes)
    except (RuntimeError, OSError) as exc:
        raise TokenizerError(f"not a SentencePiece model: {exc}") from exc
    return processor


def tokenizer_info(model_bytes: bytes) -> TokenizerInfo:
    """Checksum of the .model file's bytes and the ids the shards depend on.

    A pad id of -1 (SentencePiece's "none") would make padding collide with a real token, so a model
    without one is refused.
    """
    processor = load_processor(model_bytes)
    pad = processor.pad_id()
    if pad < 0:
        raise TokenizerError("the SentencePiece model has no pad piece (train it with pad_id, e.g. 0)")
    return TokenizerInfo(
        sha256=hashlib.sha256(model_bytes).hexdigest(),
        vocab_size=processor.get_piece_size(),
        pad_id=pad,
        eos_id=processor.eos_id(),
        bos_id=processor.bos_id(),
    )


def piece_id(processor: spm.SentencePieceProcessor, piece: str) -> int:
    """The id of a special piece such as <start_of_turn>; raises if the model does not have it."""
    token = processor.piece_to_id(piece)
    if token == processor.unk_id() and piece != processor.id_to_piece(token):
        raise TokenizerError(f"the SentencePiece model has no {piece} piece")
    return token


def encode_documents(
    processor: spm.SentencePieceProcessor,
    texts: Sequence[str],
    add_bos: bool,
    add_eos: bool,
    num_threads: int = 1,
    max_tokens: int = 0,
) -> tuple[list[np.ndarray], int]:
    """Token ids of each text (int32), BOS/EOS added as asked; returns them and how many were truncated.

    One batched `encode` call for all texts: SentencePiece's batch path is the fast one.
    """
    encoded = processor.encode(list(texts), add_bos=add_bos, add_eos=add_eos, num_threads=num_threads)
    arrays = [np.asarray(ids, dtype=np.int32) for ids in encoded]
    truncated = 0
    if max_tokens:
        for i, ids in enumerate(arrays):
            if len(ids) > max_tokens:
                arrays[i] = ids[:max_tokens]
                truncated += 1
    return arrays, truncated
