"""Logits parity with Keras Hub's Gemma (the Keras 3 implementation users know), on the JAX backend.

Keras Hub has no segment ids, so the comparison is one unpacked row per sequence, causal mask only
(plus right padding for `score`).
Importing keras_hub loads TensorFlow (~15 s), hence the slow mark.
"""

import os

import jax
import numpy as np
import pytest

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.convert import params_from_keras_hub, save_hf
from gemmaflow.model.scoring import score
from gemmaflow.model.weights import load_weights
from tests.model.utils import forward, random_params, unpacked

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keras_hub():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    if keras.config.backend() != "jax":
        pytest.skip(f"Keras was imported with the {keras.config.backend()} backend")
    return keras_hub


@pytest.mark.parametrize("num_kv_heads", [1, 2, 4], ids=["mqa", "gqa", "mha"])
def test_logits_match_keras_hub(keras_hub, num_kv_heads):
    config = GemmaConfig(vocab_size=97, d_model=32, num_layers=2, num_heads=4, num_kv_heads=num_kv_heads,
                         head_dim=16, ffw_dim=48)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers, num_query_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads, hidden_dim=config.d_model,
        intermediate_dim=2 * config.ffw_dim,  # Keras Hub counts both GeGLU branches
        head_dim=config.head_dim, dtype="float32",
    )
    lm = keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None)
    rng = np.random.default_rng(num_kv_heads)
    for variable in backbone.weights:  # random everything, norm scales included, so (1 + scale) is exercised
        variable.assign(rng.normal(0.0, 0.3, variable.shape).astype("float32"))

    tokens = rng.integers(0, config.vocab_size, (2, 24)).astype("int32")
    theirs = np.asarray(lm({"token_ids": tokens, "padding_mask": np.ones_like(tokens)}))

    params = params_from_keras_hub({v.path: np.asarray(v) for v in backbone.weights}, config)
    ours = np.asarray(forward(config)(params, tokens, *unpacked(tokens)))

    assert theirs.shape == ours.shape == (2, 24, config.vocab_size)
    assert np.abs(theirs).max() > 1.0  # the comparison is not between two near-zero tensors
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)

    # score(): same per-token losses as GemmaCausalLM.score on the same padded batch.
    padding_mask = np.ones_like(tokens)
    padding_mask[1, 20:] = 0
    targets = np.roll(tokens, -1, axis=1)
    their_loss = np.asarray(lm.score(tokens, padding_mask=padding_mask, scoring_mode="loss", target_ids=targets))
    our_loss = np.asarray(score(params, config, tokens, padding_mask=padding_mask, scoring_mode="loss",
                                target_ids=targets))
    real = padding_mask.astype(bool)  # scores at padding positions are unspecified
    np.testing.assert_allclose(our_loss[real], their_loss[real], rtol=0, atol=1e-4)


def test_keras_hub_reads_our_hugging_face_export(keras_hub, tmp_path):
    """Keras Hub's own Hugging Face converter, an independent reading of the HF Gemma layout, loads
    what `save_hf` writes and computes the same logits."""
    config = GemmaConfig(vocab_size=50, d_model=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, ffw_dim=48)
    params = random_params(config, seed=7)
    save_hf(tmp_path, config, params)
    backbone = keras_hub.models.GemmaBackbone.from_preset(str(tmp_path))
    tokens = np.random.default_rng(7).integers(0, config.vocab_size, (2, 12)).astype("int32")
    hidden = backbone({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
    theirs = np.asarray(backbone.token_embedding(hidden, reverse=True))
    ours = np.asarray(forward(config)(params, tokens, *unpacked(tokens)))
    assert np.abs(theirs).max() > 1.0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_saved_keras_hub_preset_loads_as_keras_hub_holds_it(keras_hub, tmp_path, dtype):
    """`save_to_preset` writes what Keras Hub's published presets hold (config.json + model.weights.h5);
    `load_weights` reads it, bfloat16 included, weight for weight, and the float32 model computes Keras Hub's
    logits."""
    backbone = keras_hub.models.GemmaBackbone(vocabulary_size=50, num_layers=3, num_query_heads=4,
                                              num_key_value_heads=2, hidden_dim=32, intermediate_dim=96, head_dim=16,
                                              dtype=dtype)
    backbone.save_to_preset(str(tmp_path))
    config, params, _ = load_weights(tmp_path)
    assert (config.num_layers, config.ffw_dim, config.num_kv_heads) == (3, 48, 2)
    expected = params_from_keras_hub({v.path: np.asarray(v, np.float32) for v in backbone.weights}, config)
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    if dtype == "float32":
        tokens = np.random.default_rng(3).integers(0, 50, (2, 10)).astype("int32")
        hidden = backbone({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
        theirs = np.asarray(backbone.token_embedding(hidden, reverse=True))
        ours = np.asarray(forward(config)(params, tokens, *unpacked(tokens)))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
