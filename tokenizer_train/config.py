"""The `gemmaflow tokenizer train` configuration: sampling, SentencePiece settings and special tokens.

Defaults follow Gemma's tokenizer (Gemma report, 2024): SentencePiece BPE, 256,000 pieces, byte
fallback, split digits, whitespace-only pieces allowed, no dummy prefix, identity normalisation; the
special pieces and their ids (pad 0, eos 1, bos 2, unk 3, `<mask>` 4, reserved `<unusedN>` pieces,
`<start_of_turn>` 106, `<end_of_turn>` 107) come from `gemmaflow.core.chat`.
`configs/tokenizer.yaml` spells them out; unknown keys fail before any data is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gemmaflow.core.chat import (
    BOS_ID,
    CORE_PIECES,
    END_OF_TURN,
    END_OF_TURN_ID,
    EOS_ID,
    MASK_ID,
    MASK_PIECE,
    PAD_ID,
    START_OF_TURN,
    START_OF_TURN_ID,
    UNK_ID,
)
from gemmaflow.core.configio import load_yaml


@dataclass(frozen=True)
class SpecialToken:
    """A piece at a fixed id. `user_defined` pieces are matched in raw text when encoding (Gemma's
    `<start_of_turn>` encodes from the string); `control` pieces are never produced from text, only
    inserted by id."""

    piece: str
    id: int
    kind: Literal["user_defined", "control"] = "user_defined"


def _gemma_special_tokens() -> tuple[SpecialToken, ...]:
    return (
        SpecialToken(MASK_PIECE, MASK_ID),
        SpecialToken(START_OF_TURN, START_OF_TURN_ID),
        SpecialToken(END_OF_TURN, END_OF_TURN_ID),
    )


@dataclass(frozen=True)
class SampleConfig:
    """How the training text is drawn from curated Parquet.

    Each document gets a uniform key from BLAKE2b(seed, id); within a domain the documents with the
    smallest keys are taken until the domain's share of `byte_budget` is reached, so the sample is the
    same whatever the file order and a larger budget is a superset of a smaller one. A second key
    sets aside `heldout_fraction` of the documents (never trained on) for the validation report.
    """

    byte_budget: int = 2_000_000_000  # UTF-8 bytes of document text
    domain_weights: dict[str, float] = field(default_factory=lambda: {"web": 0.6, "code": 0.25, "math": 0.15})
    seed: int = 0
    heldout_fraction: float = 0.02
    # The report encodes at most this many held-out bytes per (domain, language) group.
    heldout_max_bytes_per_group: int = 2_000_000
    batch_rows: int = 2048  # Parquet rows per streamed batch

    def __post_init__(self) -> None:
        if self.byte_budget <= 0:
            raise ValueError("byte_budget must be positive")
        if not self.domain_weights or any(w < 0 for w in self.domain_weights.values()):
            raise ValueError("domain_weights must be a non-empty mapping of non-negative weights")
        if sum(self.domain_weights.values()) <= 0:
            raise ValueError("domain_weights must not all be zero")
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError("heldout_fraction must be in [0, 1)")


@dataclass(frozen=True)
class TrainerConfig:
    """SentencePiece trainer settings (names as in SentencePiece's TrainerSpec where they match)."""

    vocab_size: int = 256_000
    # BPE only: the vocabulary-size check before training bounds what BPE merges can reach.
    model_type: Literal["bpe"] = "bpe"
    byte_fallback: bool = True
    split_digits: bool = True
    allow_whitespace_only_pieces: bool = True
    add_dummy_prefix: bool = False
    normalization_rule_name: Literal["identity", "nfkc", "nmt_nfkc"] = "identity"
    character_coverage: float = 0.9995
    max_sentencepiece_length: int = 16
    # Longest training line in bytes; longer lines are split by the sampler (SentencePiece would skip them).
    max_sentence_length: int = 4192
    # Lines SentencePiece loads (0 = all); above this it samples this many lines with `seed`.
    input_sentence_size: int = 0
    threads: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))  # the cores this process may use
    # SentencePiece's own `pad/eos/bos/unk_id` settings place CORE_PIECES; everything else is a SpecialToken.
    pad_id: int = PAD_ID
    eos_id: int = EOS_ID
    bos_id: int = BOS_ID
    unk_id: int = UNK_ID
    special_tokens: tuple[SpecialToken, ...] = field(default_factory=_gemma_special_tokens)
    # Ids below the highest special id that nothing claims get reserved pieces named like this.
    reserved_piece_format: str = "<unused{}>"
    # Pieces for runs of 1..N newlines, placed after the special tokens (Gemma has 31). Training lines
    # hold no newlines (one paragraph per line), so without these a newline costs a byte-fallback piece.
    newline_run_pieces: int = 31

    def __post_init__(self) -> None:
        core = (self.pad_id, self.eos_id, self.bos_id, self.unk_id)
        ids = [*core, *(t.id for t in self.special_tokens)]
        if len(set(ids)) != len(ids):
            raise ValueError(f"special token ids must be distinct, got {sorted(ids)}")
        if min(ids) < 0:
            raise ValueError("special token ids must be non-negative")
        pieces = [t.piece for t in self.special_tokens]
        if len(set(pieces)) != len(pieces) or set(pieces) & set(CORE_PIECES):
            raise ValueError("special token pieces must be distinct and not one of " + ", ".join(CORE_PIECES))
        if "{}" not in self.reserved_piece_format:
            raise ValueError("reserved_piece_format must contain {}")
        if any("," in p for p in [*pieces, self.reserved_piece_format]):
            raise ValueError("special pieces must not contain ',' (SentencePiece splits symbol lists on it)")
        if self.max_sentence_length < 64:
            raise ValueError("max_sentence_length must be at least 64 bytes")
        if self.threads < 1 or self.vocab_size < 1 or self.newline_run_pieces < 0:
            raise ValueError("threads, vocab_size must be positive and newline_run_pieces non-negative")


@dataclass(frozen=True)
class TokenizerConfig:
    sample: SampleConfig = field(default_factory=SampleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # The report lists this many of the longest pieces.
    report_longest_pieces: int = 20


def load_tokenizer_config(path: str | Path | None, vocab_size: int | None = None) -> TokenizerConfig:
    """The config from YAML (defaults when `path` is None), with `--vocab-size` applied on top."""
    overrides = {} if vocab_size is None else {"trainer.vocab_size": vocab_size}
    return load_yaml(TokenizerConfig, path, overrides)
