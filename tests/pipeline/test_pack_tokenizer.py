"""The tiny SentencePiece model the pack and SFT tests share, and the tokenizer helpers' own tests."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from gemmaflow.core.chat import BOS_ID, END_OF_TURN, EOS_ID, MASK_PIECE, PAD_ID, START_OF_TURN, UNK_ID
from gemmaflow.pipeline.tokenize import (
    TokenizerError,
    encode_documents,
    load_processor,
    piece_id,
    tokenizer_info,
)

WORDS = ("the model reads data and packs tokens into rows of fixed length while each document keeps its own "
         "positions def return import class for while print value index array shard manifest weight").split()


def generated_text(rng: random.Random, words: int) -> str:
    """Sentence-like lines of vocabulary words, digits and punctuation."""
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(WORDS) if rng.random() > 0.05 else str(rng.randrange(1000)))
        if rng.random() < 0.1:
            lines.append(" ".join(line) + rng.choice([".", ":", "!", "?"]))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines)


def train_tiny_model(path: Path) -> Path:
    """Gemma's settings at 600 pieces: ids pad 0, eos 1, bos 2, unk 3, chat pieces user-defined (at 5 and 6)."""
    rng = random.Random(7)
    sentences = [generated_text(rng, 40) for _ in range(3000)]
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, model_type="bpe", vocab_size=600,
        byte_fallback=True, split_digits=True, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, pad_id=PAD_ID, eos_id=EOS_ID,
        bos_id=BOS_ID, unk_id=UNK_ID, user_defined_symbols=[MASK_PIECE, START_OF_TURN, END_OF_TURN], minloglevel=2,
    )
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("tokenizer") / "tiny.model")


def test_tokenizer_info_records_checksum_and_special_ids(tiny_tokenizer):
    data = tiny_tokenizer.read_bytes()
    info = tokenizer_info(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (info.vocab_size, info.pad_id, info.eos_id, info.bos_id) == (600, 0, 1, 2)


def test_not_a_model_is_refused():
    with pytest.raises(TokenizerError):
        tokenizer_info(b"definitely not a protobuf")


def test_chat_pieces_have_ids_and_missing_pieces_fail(tiny_tokenizer):
    processor = load_processor(tiny_tokenizer.read_bytes())
    assert piece_id(processor, START_OF_TURN) == 5 and piece_id(processor, END_OF_TURN) == 6
    with pytest.raises(TokenizerError, match="<no_such_piece>"):
        piece_id(processor, "<no_such_piece>")


def test_batched_encode_adds_bos_eos_and_truncates_counted(tiny_tokenizer):
    processor = load_processor(tiny_tokenizer.read_bytes())
    texts = ["the model reads data", "", "print value " * 50]
    arrays, truncated = encode_documents(processor, texts, add_bos=True, add_eos=True, max_tokens=20)
    assert [a.dtype for a in arrays] == [np.int32] * 3
    assert arrays[0][0] == 2 and arrays[0][-1] == 1
    assert arrays[0][1:-1].tolist() == processor.encode(texts[0])
    assert arrays[1].tolist() == [2, 1]
    assert len(arrays[2]) == 20 and truncated == 1
    plain, _ = encode_documents(processor, texts[:1], add_bos=False, add_eos=False)
    assert plain[0].tolist() == processor.encode(texts[0])
