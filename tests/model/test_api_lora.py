"""`GemmaLM.enable_lora`, `quantize`, `fit` and saving adapters: the Keras-style fine-tuning path."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model import GemmaLM
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.lora import LoraWeight, attach
from gemmaflow.model.train_config import LoraConfig

PATTERN = [2] + [5, 9, 13, 17, 21, 25] * 5  # a repeated phrase: easy to learn, so loss must fall
DATA = [PATTERN[:n] for n in (31, 25, 19, 28)]
PROBE = [[2, 5, 9, 13, 17], [2, 21, 25, 5]]


@functools.cache
def _base(**overrides):
    return GemmaLM.from_preset("tiny", vocab_size=32, seed=3, **overrides)


def fresh(**overrides):
    """A new model object (LoRA and quantization are per object) over the same random weights."""
    base = _base(**overrides)
    return GemmaLM(base.config, base.params)


def probe_scores(lm):
    return np.asarray(lm.score(PROBE, scoring_mode="loss", target_ids=[[*row[1:], 0] for row in PROBE]))


def test_enabled_lora_starts_as_the_base_and_fit_trains_only_the_adapters(tmp_path):
    lm = fresh()
    base = jax.tree.map(np.asarray, lm.params)
    before = probe_scores(lm)
    lm.enable_lora(rank=4, targets=("query", "value", "down"))
    np.testing.assert_allclose(probe_scores(lm), before, atol=1e-6)  # B starts at zero
    history = lm.fit(DATA, steps=25, batch_size=4, sequence_length=32, learning_rate=2e-2)
    assert len(history) == 25 and np.mean(history[-3:]) < 0.7 * np.mean(history[:3])
    for ours, theirs in zip(jax.tree.leaves(lm.params), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(np.asarray(ours), theirs)  # the base stays frozen
    assert probe_scores(lm).mean() < before.mean()

    lm.save_pretrained(tmp_path / "merged")
    merged = GemmaLM.from_pretrained(tmp_path / "merged")
    np.testing.assert_allclose(probe_scores(merged), probe_scores(lm), atol=1e-4)
    lm.save_pretrained(tmp_path / "adapters", adapters_only=True)
    assert not (tmp_path / "adapters" / "params").exists()
    again = fresh().load_lora(tmp_path / "adapters")
    np.testing.assert_array_equal(probe_scores(again), probe_scores(lm))
    assert lm.generate([PROBE[0]], max_length=12) == again.generate([PROBE[0]], max_length=12)
    with pytest.raises(CheckpointError, match="d_model"):
        fresh(d_model=32).load_lora(tmp_path / "adapters")
    with pytest.raises(CheckpointError, match="no LoRA adapters"):
        fresh().load_lora(tmp_path / "merged")


def test_qlora_trains_adapters_over_an_nf4_base_and_exports_dense_weights(tmp_path):
    lm = fresh().quantize("nf4").enable_lora(rank=4, alpha=8.0, dropout=0.1, targets=("query", "up"),
                                             dtype="bfloat16")
    assert lm.lora["layers_0"]["ffw"]["up"]["a"].dtype == jnp.bfloat16
    history = lm.fit(DATA, steps=25, batch_size=4, sequence_length=32, learning_rate=2e-2)
    assert np.mean(history[-3:]) < 0.7 * np.mean(history[:3])
    text = lm.summary(print_fn=None)
    assert "weights nf4" in text and "LoRA rank 4, alpha 8, dropout 0.1 on query, up" in text
    trainable = sum(leaf.size for leaf in jax.tree.leaves(lm.lora))
    assert f"trainable: {trainable:,}; frozen: {sum(int(np.prod(s)) for s in _shapes(fresh().params)):,}" in text
    lm.save_pretrained(tmp_path / "merged")
    merged = GemmaLM.from_pretrained(tmp_path / "merged")
    assert merged.params["layers_0"]["attention"]["key"].dtype == jnp.float32
    np.testing.assert_allclose(probe_scores(merged), probe_scores(lm), atol=2e-2)  # adapters in bfloat16


def _shapes(params):
    return [leaf.shape for leaf in jax.tree.leaves(params)]


def test_lora_dropout_acts_only_while_training_and_only_on_the_adapter_input():
    lm = fresh().enable_lora(rank=2, dropout=0.5, targets=("query",))
    lm.lora = jax.tree.map(lambda x: x + 0.1, lm.lora)  # a nonzero update, so dropout shows
    config = lm.lora_config
    weight = attach(lm.params, lm.lora, config, jax.random.key(0))["layers_0"]["attention"]["query"]
    assert isinstance(weight, LoraWeight) and weight.dropout_rng is not None
    x = jnp.ones((6, weight.a.shape[0]))
    dropped, other = weight.update(x), attach(lm.params, lm.lora, config, jax.random.key(1))["layers_0"][
        "attention"]["query"].update(x)
    clean = attach(lm.params, lm.lora, config)["layers_0"]["attention"]["query"].update(x)
    assert not np.allclose(dropped, clean) and not np.allclose(dropped, other)
    np.testing.assert_allclose(clean, x @ weight.a @ weight.b * config.alpha / config.rank, rtol=1e-5)
    assert attach(lm.params, lm.lora, config)["layers_0"]["attention"]["query"].dropout_rng is None


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="enable_lora first"):
        fresh().quantize("int8").fit(DATA, steps=1)
    with pytest.raises(ValueError, match="steps"):
        fresh().fit(DATA, steps=0)
    with pytest.raises(ValueError, match="two or more tokens"):
        fresh().fit([[2]], steps=1)
    with pytest.raises(ValueError, match="already quantized"):
        fresh().quantize("int8").quantize("nf4")
    with pytest.raises(ValueError, match="already enabled"):
        fresh().enable_lora(2).enable_lora(2)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        fresh().save_pretrained("unused", adapters_only=True)
    with pytest.raises(ValueError, match="mode"):
        fresh().quantize("fp8")
    with pytest.raises(ValueError, match="dropout"):
        LoraConfig(enabled=True, dropout=1.0)
    with pytest.raises(ValueError, match=r"lora\.enabled=true"):
        LoraConfig(quantize="nf4")
