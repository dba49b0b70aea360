"""Train the SentencePiece model with Gemma's conventions, refusing impossible vocabulary sizes up front.

Id layout. SentencePiece places pad/eos/bos/unk at their `*_id` settings, then hands the next free
ids, in order, to the symbols it is given, then to the 256 byte-fallback pieces, then to learned
pieces. Passing every special token, a reserved `<unusedN>` for each unclaimed id below the highest
special id, and the newline-run pieces as one ordered list of user-defined symbols therefore puts
each at its configured id (checked after training). Pieces configured as `control` (and the reserved
pieces) are then retyped CONTROL in the model proto, which SentencePiece's flags cannot do for
control symbols that sit above user-defined ones (Gemma: `<mask>` 4 and `<start_of_turn>` 106 are
user-defined, the reserved ids between them are not matched in text).

Vocabulary check. A BPE piece never crosses a whitespace-word, digit or script boundary, so the
pieces SentencePiece can learn are bounded by `sum(len(w) - ceil(len(w) / max_piece_len))` over the
distinct words `w` of the sample, split a little more coarsely than SentencePiece splits them, plus
the distinct characters and the fixed pieces. A request above that bound cannot succeed and fails
before training; one below it can still exceed what BPE reaches, which SentencePiece reports after
training and `train_model` translates into the same kind of message.
"""

from __future__ import annotations

import io
import logging
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemmaflow.core.chat import CORE_PIECES
from gemmaflow.tokenizer_train.config import TrainerConfig

log = logging.getLogger(__name__)

_SP_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_SP_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")
_BYTE_PIECES = 256


class VocabularyTooLargeError(ValueError):
    """The sample cannot support the requested vocabulary; the message names the largest it supports."""


class TrainingError(RuntimeError):
    """SentencePiece failed for a reason other than the vocabulary size."""


def fixed_pieces(config: TrainerConfig) -> list[tuple[str, str]]:
    """(piece, kind) for the ids SentencePiece assigns after pad/eos/bos/unk, in id order: special
    tokens, reserved fillers and newline runs; `kind` is `user_defined` or `control`."""
    core = {config.pad_id, config.eos_id, config.bos_id, config.unk_id}
    by_id = {t.id: t for t in config.special_tokens}
    top = max([*core, *by_id])
    ordered: list[tuple[str, str]] = []
    reserved = 0
    for token_id in range(top + 1):
        if token_id in core:
            continue
        if token_id in by_id:
            ordered.append((by_id[token_id].piece, by_id[token_id].kind))
        else:
            ordered.append((config.reserved_piece_format.format(reserved), "control"))
            reserved += 1
    ordered.extend(("\n" * n, "user_defined") for n in range(1, config.newline_run_pieces + 1))
    return ordered


def meta_piece_count(config: TrainerConfig) -> int:
    """Pieces that exist whatever the text: core, special, reserved, newline runs and byte pieces."""
    return len(CORE_PIECES) + len(fixed_pieces(config)) + (_BYTE_PIECES if config.byte_fallback else 0)


@dataclass(frozen=True)
class VocabularyEstimate:
    """An upper bound on the vocabulary the sample supports, and how it grows with more text."""

    max_vocab_size: int
    distinct_words: int
    distinct_chars: int
    text_bytes: int  # bytes scanned (all of the sample when `complete`)
    growth_exponent: float  # learnable pieces grow like bytes ** growth_exponent (Heaps' law)
    complete: bool  # False when the scan stopped early because the bound already exceeded the request

    def bytes_needed(self, vocab_size: int, supported: int, meta: int, sample_bytes: int) -> int:
        """Text bytes a sample of `sample_bytes` that supports `supported` pieces would need to support
        `vocab_size`, extrapolating with the growth exponent."""
        have, want = max(supported - meta, 1), max(vocab_size - meta, 1)
        return math.ceil(sample_bytes * (want / have) ** (1 / max(self.growth_exponent, 0.05)))


def _word_pattern(chars: Iterable[str]) -> re.Pattern[str]:
    """Words as SentencePiece's BPE sees them, slightly coarser: optional leading spaces, then a run of
    letters (any script) or a run of other non-space characters, or a single digit, or trailing spaces.
    Combining marks join either run, so the split is never finer than SentencePiece's."""
    marks = re.escape("".join(sorted(c for c in chars if unicodedata.category(c).startswith("M"))))
    mark = f"|[{marks}]" if marks else ""
    letter, other = rf"(?:[^\W\d_]{mark})", rf"(?:[^\w ]|_{mark})"
    return re.compile(rf" *{letter}+| *{other}+| +|\d")


def estimate_vocabulary(train_path: Path, config: TrainerConfig, stop_above: int | None = None) -> VocabularyEstimate:
    """Scan the training text once and bound the vocabulary it supports (see the module docstring).

    With `stop_above`, the scan ends as soon as the bound exceeds it: the request is then known to be
    possible by this test, and large samples are not read in full.
    """
    meta = meta_piece_count(config)
    longest = config.max_sentencepiece_length
    words: set[str] = set()
    chars: set[str] = set()
    learnable = 0
    text_bytes = 0
    checkpoints: list[tuple[int, int]] = []  # (bytes, learnable) at every doubling of bytes
    next_checkpoint = 1 << 16
    pattern = _word_pattern(())
    with train_path.open("rb") as lines:
        for raw in lines:
            text_bytes += len(raw)
            line = raw.decode("utf-8").rstrip("\n")
            new_chars = set(line) - chars
            if new_chars:
                chars |= new_chars
                if any(unicodedata.category(c).startswith("M") for c in new_chars):
                    pattern = _word_pattern(chars)
            for word in pattern.findall(line):
                if word not in words:
                    words.add(word)
                    learnable += len(word) - math.ceil(len(word) / longest)
            if text_bytes >= next_checkpoint:
                checkpoints.append((text_bytes, learnable + len(chars)))
                next_checkpoint *= 2
                if stop_above is not None and meta + learnable + len(chars) > stop_above:
                    break
        else:
            checkpoints.append((text_bytes, learnable + len(chars)))
            stop_above = None
    exponent = 0.5
    if len(checkpoints) >= 2 and checkpoints[-2][1] > 0:
        (b0, v0), (b1, v1) = checkpoints[-2], checkpoints[-1]
        if b1 > b0 and v1 > v0:
            exponent = math.log(v1 / v0) / math.log(b1 / b0)
    return VocabularyEstimate(
        max_vocab_size=meta + learnable + len(chars),
        distinct_words=len(words),
        distinct_chars=len(chars),
        text_bytes=text_bytes,
        growth_exponent=exponent,
        complete=stop_above is None,
    )


def _too_large_message(
    vocab_size: int, supported: int, estimate: VocabularyEstimate, meta: int, sample_bytes: int, exact: bool
) -> str:
    total = estimate.bytes_needed(vocab_size, supported, meta, sample_bytes)
    more = max(total - sample_bytes, 0)
    if exact:
        how, amount = "SentencePiece's count after training", "about"
    else:  # the bound over-counts what BPE reaches, so text extrapolated from it is a lower limit
        how, amount = "an upper bound from its distinct words; BPE reaches fewer", "at least"
    return (
        f"the training sample ({sample_bytes / 1e6:.1f} MB) supports a vocabulary of at most {supported:,} "
        f"pieces ({how}); {vocab_size:,} were requested. Lower the vocabulary size (--vocab-size / "
        f"trainer.vocab_size) to {supported:,} or less, or give {amount} {more / 1e6:.1f} MB more text "
        f"({amount} {total / 1e6:.1f} MB in all, extrapolated from how the sample's vocabulary grows; raise "
        "sample.byte_budget or add input)."
    )


def check_vocabulary(vocab_size: int, estimate: VocabularyEstimate, config: TrainerConfig) -> None:
    """Fail before training when the request exceeds the bound or does not fit the fixed pieces."""
    meta = meta_piece_count(config)
    if vocab_size <= meta:
        raise VocabularyTooLargeError(
            f"vocabulary size {vocab_size:,} leaves no room for learned pieces: the special, reserved, newline "
            f"and byte pieces alone take {meta:,} ids"
        )
    if estimate.complete and vocab_size > estimate.max_vocab_size:
        raise VocabularyTooLargeError(
            _too_large_message(vocab_size, estimate.max_vocab_size, estimate, meta, estimate.text_bytes, exact=False)
        )


def trainer_arguments(config: TrainerConfig, train_path: Path) -> dict[str, Any]:
    """The SentencePieceTrainer keyword arguments for this config (recorded in the model card)."""
    args: dict[str, Any] = {
        "input": str(train_path),
        "model_type": config.model_type,
        "vocab_size": config.vocab_size,
        "byte_fallback": config.byte_fallback,
        "split_digits": config.split_digits,
        "allow_whitespace_only_pieces": config.allow_whitespace_only_pieces,
        "add_dummy_prefix": config.add_dummy_prefix,
        "normalization_rule_name": config.normalization_rule_name,
        "remove_extra_whitespaces": False,  # identity normalisation keeps every space (code indentation)
        "character_coverage": config.character_coverage,
        "max_sentencepiece_length": config.max_sentencepiece_length,
        "max_sentence_length": config.max_sentence_length,
        "input_sentence_size": config.input_sentence_size,
        "shuffle_input_sentence": True,
        "num_threads": config.threads,
        "pad_id": config.pad_id, "eos_id": config.eos_id, "bos_id": config.bos_id, "unk_id": config.unk_id,
        "pad_piece": CORE_PIECES[0], "eos_piece": CORE_PIECES[1], "bos_piece": CORE_PIECES[2],
        "unk_piece": CORE_PIECES[3],
        "user_defined_symbols": [piece for piece, _ in fixed_pieces(config)],
        "train_extremely_large_corpus": False,
        "minloglevel": 2,  # errors only; they come back as exceptions
    }  # fmt: skip
    return args


def _finalise_proto(model: bytes, config: TrainerConfig) -> bytes:
    """Retype control pieces, make the proto independent of local paths (byte-identical reruns) and
    check every fixed piece sits at its configured id."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString(model)
    kinds = dict(fixed_pieces(config))
    expected = {t.piece: t.id for t in config.special_tokens}
    expected.update(zip(CORE_PIECES, (config.pad_id, config.eos_id, config.bos_id, config.unk_id), strict=True))
    for index, piece in enumerate(proto.pieces):
        if piece.piece in expected and expected[piece.piece] != index:
            raise TrainingError(f"{piece.piece} landed at id {index}, configured {expected[piece.piece]}")
        if kinds.get(piece.piece) == "control":
            piece.type = model_pb2.ModelProto.SentencePiece.CONTROL
    missing = set(expected) - {p.piece for p in proto.pieces}
    if missing:
        raise TrainingError(f"pieces missing from the trained model: {sorted(missing)}")
    spec = proto.trainer_spec
    del spec.input[:]
    spec.input.append("train.txt")
    spec.model_prefix = "tokenizer"
    del spec.user_defined_symbols[:]
    del spec.control_symbols[:]
    for piece, kind in fixed_pieces(config):
        (spec.control_symbols if kind == "control" else spec.user_defined_symbols).append(piece)
    return proto.SerializeToString(deterministic=True)


def train_model(
    train_path: Path, config: TrainerConfig, seed: int, estimate: VocabularyEstimate
) -> tuple[bytes, dict[str, Any]]:
    """Train on `train_path` (one paragraph per line); return the serialized model and the arguments used.

    Raises VocabularyTooLargeError for a vocabulary the sample cannot reach, checked before training
    where possible and translated from SentencePiece's own error otherwise.
    """
    import sentencepiece as spm

    check_vocabulary(config.vocab_size, estimate, config)
    args = trainer_arguments(config, train_path)
    spm.set_random_generator_seed(seed)  # SentencePiece's line sampling and shuffling
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(model_writer=writer, **args)
    except RuntimeError as exc:
        message = str(exc)
        too_high = _SP_TOO_HIGH.search(message)
        if too_high:
            supported, meta, sample_bytes = int(too_high.group(2)), meta_piece_count(config), train_path.stat().st_size
            raise VocabularyTooLargeError(
                _too_large_message(config.vocab_size, supported, estimate, meta, sample_bytes, exact=True)
            ) from None
        too_small = _SP_TOO_SMALL.search(message)
        if too_small:
            raise VocabularyTooLargeError(
                f"vocabulary size {config.vocab_size:,} is smaller than the {too_small.group(2)} pieces the sample's "
                "characters and fixed pieces need; raise it or lower trainer.character_coverage"
            ) from None
        raise TrainingError(f"SentencePiece training failed: {message}") from exc
    return _finalise_proto(writer.getvalue(), config), args


def vocab_file_text(model: bytes) -> str:
    """The `.vocab` companion SentencePiece writes: `piece<TAB>score` per id, pieces unescaped as
    SentencePiece writes them (so the newline-run pieces span lines there too)."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString(model)
    return "".join(f"{p.piece}\t{p.score:g}\n" for p in proto.pieces)
