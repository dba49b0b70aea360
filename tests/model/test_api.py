import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model import GemmaLM
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.scoring import score

TEXT = ("the quick brown fox jumps over the lazy dog. " * 3 + "pack my box with five dozen liquor jugs. " * 3) * 20


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    import sentencepiece

    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "text.txt").write_text(TEXT.replace(". ", ".\n"))
    sentencepiece.SentencePieceTrainer.train(
        input=str(folder / "text.txt"), model_prefix=str(folder / "sp"), vocab_size=60, model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, byte_fallback=False, minloglevel=2)
    return folder / "sp.model"


@pytest.fixture(scope="module")
def lm(tokenizer):
    return GemmaLM.from_preset("tiny", vocab_size=64, seed=1, tokenizer=tokenizer, num_layers=1)


TOKENS = np.random.default_rng(0).integers(3, 64, (2, 7)).astype(np.int32)


def test_native_save_and_load_round_trip_exactly_with_the_tokenizer(lm, tmp_path):
    lm.save_pretrained(tmp_path / "native")
    again = GemmaLM.from_pretrained(tmp_path / "native")
    assert again.config == lm.config and again.tokenizer is not None
    for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(lm.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_hf_export_loads_back_with_the_same_logits(lm, tmp_path):
    lm.save_pretrained(tmp_path / "hf", format="hf")
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "tokenizer.model").is_file()
    again = GemmaLM.from_pretrained(tmp_path / "hf")
    np.testing.assert_allclose(again.score(TOKENS), lm.score(TOKENS), atol=1e-6)


def test_a_dtype_casts_weights_and_compute(lm, tmp_path):
    lm.save_pretrained(tmp_path / "native")
    half = GemmaLM.from_pretrained(tmp_path / "native", dtype="bfloat16")
    assert half.config.dtype.value == "bfloat16" and half.config.param_dtype.value == "bfloat16"
    assert {leaf.dtype for leaf in jax.tree.leaves(half.params)} == {jnp.dtype(jnp.bfloat16)}
    assert {leaf.dtype for leaf in jax.tree.leaves(lm.params)} == {jnp.dtype(jnp.float32)}


def test_score_is_model_scoring(lm):
    targets = np.roll(TOKENS, -1, axis=1)
    expected = score(lm.params, lm.config, TOKENS, scoring_mode="loss", target_ids=targets)
    np.testing.assert_array_equal(lm.score(TOKENS, scoring_mode="loss", target_ids=targets), expected)


@pytest.mark.slow
def test_generate_takes_strings_or_token_ids(lm):
    texts = lm.generate(["the quick brown", "pack my"], max_length=12)
    assert [t.startswith(p) for t, p in zip(texts, ["the quick brown", "pack my"], strict=True)] == [True, True]
    single = lm.generate("the quick brown", max_length=12)
    assert single == texts[0]  # a batch generates what each prompt would alone
    ids = lm.encode("the quick brown")
    assert ids[0] == 2  # one BOS
    out = lm.generate([ids], max_length=12)[0]
    assert out[: len(ids)] == ids and lm.decode(out) == single


def test_unknown_folders_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a gemmaflow model"):
        GemmaLM.from_pretrained(tmp_path)


def test_score_takes_ragged_lists_and_one_unbatched_sequence(lm):
    rows = [[2, 5, 6, 7, 8], [2, 9, 10]]
    ragged = np.asarray(lm.score(rows, scoring_mode="loss", target_ids=[[5, 6, 7, 8, 1], [9, 10, 1]]))
    for i, row in enumerate(rows):
        targets = [*row[1:], 1]
        alone = np.asarray(lm.score(row, scoring_mode="loss", target_ids=targets))  # 1-D in, [T] out
        assert alone.shape == (len(row),)
        np.testing.assert_allclose(ragged[i, :len(row)], alone, atol=1e-5)
    assert np.asarray(lm.score(rows[0])).shape == (5, lm.config.vocab_size)
    with pytest.raises(ValueError, match="build their own padding mask"):
        lm.score(rows, padding_mask=np.ones((2, 5)))


def test_a_plain_callable_samples(lm):
    def always_seven(logits, rng):
        return jnp.full(logits.shape[:1], 7, jnp.int32)

    out = lm.generate([[2, 5, 6], [2, 9]], max_length=8, sampler=always_seven, stop_tokens=())
    assert out == [[2, 5, 6, 7, 7, 7, 7, 7], [2, 9, 7, 7, 7, 7, 7, 7]]
    with pytest.raises(TypeError, match="sampler must be"):
        lm.generate([[2, 5]], max_length=4, sampler=3)


def test_summary_lists_every_weight_and_the_totals(lm):
    printed = []
    text = lm.summary(print_fn=printed.append)
    assert printed == [text]
    total = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(lm.params))
    assert f"total parameters: {total:,}" in text and "trainable: " in text
    embedding = str(tuple(lm.params["embedder"]["embedding"].shape))
    assert "layers_0" in text and "attention/query" in text and embedding in text
