"""Training: special-token ids, round trips, vocabulary-size failures, byte-identical reruns."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm

from gemmaflow.tokenizer_train.config import SpecialToken, TrainerConfig
from gemmaflow.tokenizer_train.job import train_tokenizer
from gemmaflow.tokenizer_train.train import (
    VocabularyEstimate,
    VocabularyTooLargeError,
    check_vocabulary,
    estimate_vocabulary,
    fixed_pieces,
    meta_piece_count,
)
from tests.tokenizer_train.conftest import small_config

TRICKY = [
    "def f(x):\n\tif x:\n\t\treturn {'a': [1, 2]}\n        return None  # eight spaces\n",
    "    indented\n\n\n\ttabbed\t\tand  double  spaces   \n",
    "Emoji 🎉🚀 and flags 🇫🇷, skin tones 👍🏽, ZWJ 👨‍👩‍👧",
    "中文文本：数据清洗很重要。日本語のテキスト。한국어 문장입니다.",
    "العربية: تعلم الآلة فرع من الذكاء الاصطناعي",
    "Digits 1234567890 3.14159 -42 1e-9 0xFF",
    " leading space and trailing space ",
    "मशीन लर्निंग के लिए डेटा",
    "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n",
    "\u0000 nul, \r carriage, \x7f del, zero\u200bwidth, combining e\u0301",
]


@pytest.fixture(scope="module")
def processor(trained: tuple[Path, dict[str, Any]]) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(trained[0] / "tokenizer.model"))


def test_special_tokens_sit_at_gemmas_ids(processor: spm.SentencePieceProcessor) -> None:
    assert [processor.id_to_piece(i) for i in range(5)] == ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    assert (processor.pad_id(), processor.eos_id(), processor.bos_id(), processor.unk_id()) == (0, 1, 2, 3)
    assert processor.piece_to_id("<start_of_turn>") == 106
    assert processor.piece_to_id("<end_of_turn>") == 107
    assert [processor.id_to_piece(i) for i in (5, 105)] == ["<unused0>", "<unused100>"]
    assert all(processor.is_control(i) for i in range(5, 106))
    assert processor.id_to_piece(108) == "\n"
    assert processor.is_byte(108 + 31) and processor.id_to_piece(108 + 31) == "<0x00>"
    assert processor.get_piece_size() == 1000
    # Gemma's chat markers are user-defined: they encode from text to their own id.
    assert processor.encode("<start_of_turn>user")[0] == 106


def test_special_ids_are_configurable() -> None:
    config = TrainerConfig(special_tokens=(SpecialToken("<sep>", 6, "control"), SpecialToken("<cls>", 4)),
                           newline_run_pieces=2)  # fmt: skip
    assert fixed_pieces(config) == [("<cls>", "user_defined"), ("<unused0>", "control"), ("<sep>", "control"),
                                    ("\n", "user_defined"), ("\n\n", "user_defined")]  # fmt: skip
    with pytest.raises(ValueError, match="distinct"):
        TrainerConfig(special_tokens=(SpecialToken("<x>", 1),))
    with pytest.raises(ValueError, match="must not contain ','"):
        TrainerConfig(special_tokens=(SpecialToken("<a,b>", 4),))


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_is_exact_on_tricky_text(processor: spm.SentencePieceProcessor, text: str) -> None:
    ids = processor.encode(text)
    assert processor.decode(ids) == text
    assert processor.unk_id() not in ids


def test_same_seed_and_input_give_a_byte_identical_model(curated_dir: Path, tmp_path: Path) -> None:
    config = small_config(vocab_size=700, byte_budget=120_000)
    cards = [train_tokenizer(str(curated_dir), str(tmp_path / f"run{i}"), config) for i in range(2)]
    models = [(tmp_path / f"run{i}" / "tokenizer.model").read_bytes() for i in range(2)]
    assert models[0] == models[1]
    assert cards[0]["model"]["sha256"] == cards[1]["model"]["sha256"] == hashlib.sha256(models[0]).hexdigest()


def test_impossible_vocabulary_fails_before_sentencepiece_runs(
    curated_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(**_: Any) -> None:
        raise AssertionError("SentencePiece must not be called")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", never)
    with pytest.raises(VocabularyTooLargeError, match=r"supports a vocabulary of at most [\d,]+ pieces") as err:
        train_tokenizer(str(curated_dir), str(tmp_path / "out"), small_config(vocab_size=256_000))
    assert "256,000 were requested" in str(err.value)
    assert "at least" in str(err.value) and "MB more text" in str(err.value)
    assert not (tmp_path / "out" / "tokenizer.model").exists()


def test_vocabulary_below_the_bound_but_above_what_bpe_reaches_is_translated(curated_dir: Path, tmp_path: Path) -> None:
    """The bound is an upper bound; SentencePiece's own exact count is turned into the same message."""
    config = small_config(byte_budget=60_000)
    from gemmaflow.tokenizer_train.sample import sample_corpus

    sample = sample_corpus(str(curated_dir), tmp_path / "t.txt", config.sample, 4192)
    bound = estimate_vocabulary(sample.train_path, config.trainer).max_vocab_size
    request = bound - 1
    with pytest.raises(VocabularyTooLargeError, match="SentencePiece's count after training") as err:
        train_tokenizer(str(curated_dir), str(tmp_path / "out"), small_config(vocab_size=request, byte_budget=60_000))
    supported = int(str(err.value).split("at most ")[1].split(" ")[0].replace(",", ""))
    assert meta_piece_count(config.trainer) < supported <= bound


def test_vocabulary_smaller_than_the_fixed_pieces_is_refused() -> None:
    config = TrainerConfig(vocab_size=300)
    estimate = VocabularyEstimate(10**6, 1, 1, 1, 0.5, True)
    with pytest.raises(VocabularyTooLargeError, match="leaves no room"):
        check_vocabulary(300, estimate, config)


def test_text_needed_grows_with_the_request() -> None:
    estimate = VocabularyEstimate(10_000, 1, 1, 1_000_000, 0.5, True)
    assert estimate.bytes_needed(20_000, 10_000, 0, 1_000_000) == pytest.approx(4_000_000, rel=1e-6)  # 2^(1/0.5)
