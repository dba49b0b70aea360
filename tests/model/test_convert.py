import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from gemmaflow.model.config import DType, tiny
from gemmaflow.model.convert import load_hf, params_from_keras_hub, save_hf
from gemmaflow.model.gemma import count_params
from tests.model.utils import random_params

CONFIG = tiny(vocab_size=10, num_layers=1)
D, N, K, H, F = CONFIG.d_model, CONFIG.num_heads, CONFIG.num_kv_heads, CONFIG.head_dim, CONFIG.ffw_dim


def keras_weights():
    """What `{v.path: np.asarray(v) for v in GemmaBackbone(...).weights}` gives for CONFIG."""
    shapes = {
        "token_embedding/embeddings": (10, D),
        "decoder_block_0/pre_attention_norm/scale": (D,),
        "decoder_block_0/attention/query/kernel": (N, D, H),
        "decoder_block_0/attention/key/kernel": (K, D, H),
        "decoder_block_0/attention/value/kernel": (K, D, H),
        "decoder_block_0/attention/attention_output/kernel": (N, H, D),
        "decoder_block_0/pre_ffw_norm/scale": (D,),
        "decoder_block_0/ffw_gating/kernel": (D, F),
        "decoder_block_0/ffw_gating_2/kernel": (D, F),
        "decoder_block_0/ffw_linear/kernel": (F, D),
        "final_normalization/scale": (D,),
    }
    rng = np.random.default_rng(0)
    return {path: rng.normal(size=shape).astype(np.float32) for path, shape in shapes.items()}


def test_every_keras_weight_lands_in_its_place():
    weights = keras_weights()
    params = params_from_keras_hub(weights, CONFIG)
    np.testing.assert_array_equal(params["layers_0"]["ffw"]["gate"], weights["decoder_block_0/ffw_gating/kernel"])
    np.testing.assert_array_equal(params["layers_0"]["ffw"]["up"], weights["decoder_block_0/ffw_gating_2/kernel"])
    np.testing.assert_array_equal(params["layers_0"]["attention"]["output"],
                                  weights["decoder_block_0/attention/attention_output/kernel"])
    np.testing.assert_array_equal(params["embedder"]["embedding"], weights["token_embedding/embeddings"])
    assert sum(leaf.size for layer in params.values() for group in layer.values()
               for leaf in (group.values() if isinstance(group, dict) else [group])) == count_params(CONFIG).total


def test_missing_unexpected_and_misshapen_weights_are_refused():
    weights = keras_weights()
    with pytest.raises(ValueError, match="lack final_normalization"):
        params_from_keras_hub({k: v for k, v in weights.items() if k != "final_normalization/scale"}, CONFIG)
    with pytest.raises(ValueError, match="decoder_block_1"):
        params_from_keras_hub({**weights, "decoder_block_1/pre_ffw_norm/scale": np.zeros(D)}, CONFIG)
    with pytest.raises(ValueError, match=r"ffw_gating/kernel has shape \(64, 256\), the config expects \(64, 128\)"):
        # Keras Hub's intermediate_dim (both branches) passed where our per-branch ffw_dim belongs.
        params_from_keras_hub({**weights, "decoder_block_0/ffw_gating/kernel": np.zeros((D, 2 * F))}, CONFIG)


# --- Hugging Face ---

HF_CONFIG = tiny(vocab_size=50, num_layers=2, num_heads=4, num_kv_heads=2)


def test_hf_round_trip_is_exact(tmp_path):
    params = random_params(HF_CONFIG, seed=1)
    save_hf(tmp_path, HF_CONFIG, params)
    config, loaded = load_hf(tmp_path)
    assert config == HF_CONFIG
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    assert json.loads((tmp_path / "config.json").read_text())["intermediate_size"] == HF_CONFIG.ffw_dim


def test_hf_layout_by_hand(tmp_path):
    params = random_params(HF_CONFIG, seed=2)
    save_hf(tmp_path, HF_CONFIG, params)
    tensors = safetensors.numpy.load_file(str(tmp_path / "model.safetensors"))
    h = HF_CONFIG.head_dim
    q_proj = tensors["model.layers.1.self_attn.q_proj.weight"]
    o_proj = tensors["model.layers.1.self_attn.o_proj.weight"]
    attention = params["layers_1"]["attention"]
    assert q_proj.shape == (HF_CONFIG.num_heads * h, HF_CONFIG.d_model)  # PyTorch [out, in]
    np.testing.assert_array_equal(q_proj[2 * h + 5], attention["query"][2, :, 5])  # row n*H + h is head n, dim h
    np.testing.assert_array_equal(o_proj[:, 3 * h + 1], attention["output"][3, 1])
    assert tensors["model.layers.1.self_attn.k_proj.weight"].shape == (2 * h, HF_CONFIG.d_model)
    np.testing.assert_array_equal(tensors["model.layers.0.mlp.gate_proj.weight"], params["layers_0"]["ffw"]["gate"].T)
    np.testing.assert_array_equal(tensors["model.layers.0.post_attention_layernorm.weight"],
                                  params["layers_0"]["pre_ffw_norm"]["scale"])  # HF's name for the pre-FFW norm
    assert "lm_head.weight" not in tensors  # tied


def test_hf_bfloat16_checkpoints_load_as_float32(tmp_path):
    params = random_params(HF_CONFIG, seed=3)
    save_hf(tmp_path, dataclasses.replace(HF_CONFIG, param_dtype=DType.BFLOAT16), params)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    config, loaded = load_hf(tmp_path)
    assert config.param_dtype is DType.FLOAT32 and loaded["embedder"]["embedding"].dtype == np.float32
    np.testing.assert_array_equal(loaded["embedder"]["embedding"],
                                  params["embedder"]["embedding"].astype(jnp.bfloat16).astype(np.float32))


def test_hf_sharded_checkpoint_with_index(tmp_path):
    params = random_params(HF_CONFIG, seed=4)
    save_hf(tmp_path, HF_CONFIG, params)
    tensors = safetensors.numpy.load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in shards.items():
        safetensors.numpy.save_file({k: tensors[k] for k in keys}, str(tmp_path / shard))
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    _, loaded = load_hf(tmp_path)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)


def test_hf_checkpoints_that_are_not_gemma_v1_are_refused(tmp_path):
    params = random_params(HF_CONFIG, seed=5)
    save_hf(tmp_path, HF_CONFIG, params)
    hf = json.loads((tmp_path / "config.json").read_text())
    for change, message in (({"model_type": "gemma2"}, "not a Gemma v1"), ({"hidden_act": "relu",
                            "hidden_activation": None}, "tanh-approximate"), ({"attention_bias": True}, "biases")):
        (tmp_path / "config.json").write_text(json.dumps({**hf, **change}))
        with pytest.raises(ValueError, match=message):
            load_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**hf, "intermediate_size": HF_CONFIG.ffw_dim * 2}))
    with pytest.raises(ValueError, match=r"gate_proj\.weight has shape"):
        load_hf(tmp_path)

    (tmp_path / "config.json").write_text(json.dumps(hf))
    tensors = safetensors.numpy.load_file(str(tmp_path / "model.safetensors"))
    untied = {**tensors, "lm_head.weight": tensors["model.embed_tokens.weight"] + 1}
    safetensors.numpy.save_file(untied, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="tied"):
        load_hf(tmp_path)
    tied_copy = {**tensors, "lm_head.weight": tensors["model.embed_tokens.weight"]}
    safetensors.numpy.save_file(tied_copy, str(tmp_path / "model.safetensors"))
    assert load_hf(tmp_path)[0] == HF_CONFIG
