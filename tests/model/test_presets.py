"""Named presets: the released models' exact shapes, weights only from a local folder, nothing downloaded."""

import json
import socket

import h5py
import jax
import numpy as np
import pytest

from gemmaflow.model.api import GemmaLM
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.config import RELEASED_PRESETS, preset
from gemmaflow.model.convert import _KERAS_BLOCK_NAMES, _KERAS_H5_BLOCK_NAMES
from gemmaflow.model.gemma import count_params
from gemmaflow.model.weights import load_weights


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a preset tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_released_presets_have_the_published_parameter_counts():
    counts = {name: count_params(preset(name)).total for name in RELEASED_PRESETS}
    assert counts == {"gemma_2b_en": 2_506_172_416, "gemma_instruct_2b_en": 2_506_172_416,
                      "gemma_7b_en": 8_537_680_896, "gemma_instruct_7b_en": 8_537_680_896}
    two = preset("gemma_2b_en")
    assert (two.vocab_size, two.d_model, two.num_layers, two.num_heads, two.num_kv_heads, two.head_dim,
            two.ffw_dim) == (256_000, 2048, 18, 8, 1, 256, 16_384)
    seven = preset("gemma_instruct_7b_en")
    assert (seven.vocab_size, seven.num_heads, seven.num_kv_heads, seven.ffw_dim) == (256_000, 16, 16, 24_576)


def test_a_released_preset_without_weights_names_the_files_it_needs(no_network):
    with pytest.raises(CheckpointError) as info:
        GemmaLM.from_preset("gemma_2b_en")
    message = str(info.value)
    assert "\n" not in message and "never downloaded" in message
    for expected in ("config.json + model*.safetensors", "model.weights.h5", "gemmaflow_model.json",
                     "load_weights=False"):
        assert expected in message
    with pytest.raises(ValueError, match="unknown preset 'gemma_3b_en'"):
        GemmaLM.from_preset("gemma_3b_en")


def test_load_weights_false_gives_random_weights_of_the_released_shape(no_network):
    lm = GemmaLM.from_preset("gemma_2b_en", load_weights=False, vocab_size=256, num_layers=1, ffw_dim=64)
    assert (lm.config.d_model, lm.config.num_kv_heads, lm.config.head_dim) == (2048, 1, 256)
    assert lm.params["layers_0"]["attention"]["query"].shape == (8, 2048, 256)


def test_from_preset_round_trips_through_a_hugging_face_folder(tmp_path, no_network):
    original = GemmaLM.from_preset("tiny", seed=3)
    original.save_pretrained(tmp_path / "hf", format="hf")
    loaded = GemmaLM.from_preset("tiny", weights=tmp_path / "hf")
    for ours, theirs in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(original.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    tokens = np.arange(2, 14, dtype=np.int32)[None]
    np.testing.assert_array_equal(loaded.score(tokens), original.score(tokens))
    with pytest.raises(CheckpointError, match=r"does not hold gemma_2b_en: vocab_size 512 \(preset: 256000\), "
                                              r"d_model 64 \(preset: 2048\)"):
        GemmaLM.from_preset("gemma_2b_en", weights=tmp_path / "hf")
    with pytest.raises(ValueError, match="loaded weights keep their own shape"):
        GemmaLM.from_preset("tiny", weights=tmp_path / "hf", num_layers=1)


def write_keras_preset(folder, config, params) -> None:
    """A Keras Hub preset folder as `GemmaBackbone.save_to_preset` lays it out (float32), without Keras."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"class_name": "GemmaBackbone", "config": {
        "vocabulary_size": config.vocab_size, "num_layers": config.num_layers, "num_query_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads, "hidden_dim": config.d_model,
        "intermediate_dim": 2 * config.ffw_dim, "head_dim": config.head_dim, "layer_norm_epsilon": 1e-6}}))
    ours_by_keras = {keras: ours for ours, keras in _KERAS_BLOCK_NAMES.items()}
    with h5py.File(folder / "model.weights.h5", "w") as handle:
        handle["layers/reversible_embedding/vars/0"] = np.asarray(params["embedder"]["embedding"])
        handle["layers/rms_normalization/vars/0"] = np.asarray(params["final_norm"]["scale"])
        for i in range(config.num_layers):
            block = "gemma_decoder_block" + (f"_{i + 4}" if i else "")  # counters need not start at 1
            for h5_name, keras_name in _KERAS_H5_BLOCK_NAMES.items():
                module, weight = ours_by_keras[keras_name]
                handle[f"layers/{block}/{h5_name}/vars/0"] = np.asarray(params[f"layers_{i}"][module][weight])


def test_a_keras_hub_preset_folder_loads_weight_for_weight(tmp_path, no_network):
    original = GemmaLM.from_preset("tiny", seed=5, num_layers=3)
    write_keras_preset(tmp_path / "keras", original.config, original.params)
    config, params, _ = load_weights(tmp_path / "keras")
    assert (config.num_layers, config.ffw_dim, config.vocab_size) == (3, original.config.ffw_dim, 512)
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(original.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    (tmp_path / "keras" / "config.json").write_text(json.dumps({"class_name": "GemmaBackbone", "config": {
        **json.loads((tmp_path / "keras" / "config.json").read_text())["config"], "final_logit_soft_cap": 30.0}}))
    with pytest.raises(ValueError, match="Gemma 2 backbone"):
        load_weights(tmp_path / "keras")


def test_a_hugging_face_export_is_sharded_with_an_index_and_loads_back(tmp_path):
    from gemmaflow.model.convert import save_hf

    original = GemmaLM.from_preset("tiny", seed=2)
    save_hf(tmp_path, original.config, original.params, max_shard_bytes=200_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert not (tmp_path / "model.safetensors").exists()
    assert all((tmp_path / name).stat().st_size <= 200_000 + 1_000 for name in files)  # tensors plus a header
    loaded = GemmaLM.from_preset("tiny", weights=tmp_path)
    for ours, theirs in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(original.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_large_models_are_initialised_block_by_block_with_the_same_distributions(monkeypatch):
    """Above BLOCKWISE_INIT_ABOVE parameters each block is its own init program (memory: one block), which
    must give the tree, shapes, dtypes and initialiser scales of the one-program init."""
    from gemmaflow.model import weights
    from gemmaflow.model.gemma import init_params

    config = preset("small", vocab_size=1000)
    whole = init_params(config, jax.random.key(0))
    monkeypatch.setattr(weights, "BLOCKWISE_INIT_ABOVE", 0)
    blockwise = weights.fresh_params(config, jax.random.key(0))
    assert jax.tree.structure(blockwise) == jax.tree.structure(whole)
    for ours, theirs in zip(jax.tree.leaves(blockwise), jax.tree.leaves(whole), strict=True):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(np.std(ours), np.std(theirs), rtol=0.05, atol=1e-6)
    again = weights.fresh_params(config, jax.random.key(0))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(blockwise), strict=True))
    assert not np.array_equal(blockwise["layers_0"]["ffw"]["up"], blockwise["layers_1"]["ffw"]["up"])
