"""The model loads in Hugging Face transformers as a Gemma tokenizer (slow and fast) with the same ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm

from tests.tokenizer_train.test_train import TRICKY


@pytest.mark.slow
def test_transformers_gemma_tokenizers_match_sentencepiece(
    trained: tuple[Path, dict[str, Any]], curated_dir: Path, tmp_path: Path
) -> None:
    transformers = pytest.importorskip("transformers")
    from gemmaflow.tokenizer_train.config import SampleConfig
    from gemmaflow.tokenizer_train.sample import sample_corpus

    model = str(trained[0] / "tokenizer.model")
    processor = spm.SentencePieceProcessor(model_file=model)
    slow = transformers.GemmaTokenizer(vocab_file=model)
    fast = transformers.GemmaTokenizerFast(vocab_file=model)
    # The same held-out documents the job validated on (same seed and fraction as the `trained` fixture).
    heldout = sample_corpus(str(curated_dir), tmp_path / "t.txt", SampleConfig(heldout_fraction=0.1), 4192).heldout
    texts = [d.text for d in heldout] + TRICKY
    assert len(heldout) >= 10
    for text in texts:
        expected = processor.encode(text)
        assert slow.encode(text, add_special_tokens=False) == expected
        assert fast.encode(text, add_special_tokens=False) == expected
        assert fast.decode(expected) == text
    assert fast.bos_token_id == 2 and fast.eos_token_id == 1 and fast.pad_token_id == 0
    assert fast.convert_tokens_to_ids("<start_of_turn>") == 106
