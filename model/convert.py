"""Weights between our parameter tree and other Gemma implementations.

- Keras Hub's `GemmaBackbone` uses our layouts (both follow DeepMind's Gemma), so its conversion
  is a renaming checked against the shapes our config expects. It takes plain arrays keyed by Keras
  variable path, `{v.path: np.asarray(v) for v in backbone.weights}`, so this module does not
  import Keras.
- Hugging Face Gemma folders (`config.json` + `model.safetensors`, or shards listed in
  `model.safetensors.index.json`) store PyTorch `[out, in]` matrices with heads flattened into
  rows; `load_hf` and `save_hf` reshape and transpose. HF's norms also store `scale` (HF applies
  `1 + weight` too), and HF's `post_attention_layernorm` is Gemma's pre-feed-forward norm.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import numpy as np
import safetensors.numpy

from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.gemma import Params, init_params

# --- Keras Hub ---------------------------------------------------------------------------------

# Our name inside a block <- Keras Hub's name inside `decoder_block_{i}/`.
_KERAS_BLOCK_NAMES = {
    ("pre_attention_norm", "scale"): "pre_attention_norm/scale",
    ("attention", "query"): "attention/query/kernel",  # [N, D, H]
    ("attention", "key"): "attention/key/kernel",  # [K, D, H]
    ("attention", "value"): "attention/value/kernel",  # [K, D, H]
    ("attention", "output"): "attention/attention_output/kernel",  # [N, H, D]
    ("pre_ffw_norm", "scale"): "pre_ffw_norm/scale",
    ("ffw", "gate"): "ffw_gating/kernel",  # [D, F], the GELU branch
    ("ffw", "up"): "ffw_gating_2/kernel",  # [D, F], the linear branch
    ("ffw", "down"): "ffw_linear/kernel",  # [F, D]
}


def params_from_keras_hub(weights: Mapping[str, np.ndarray], config: GemmaConfig) -> Params:
    """Our parameter tree from Keras Hub `GemmaBackbone` weights keyed by variable path.

    Raises ValueError on a missing, unexpected or wrongly shaped weight, so a config that does
    not describe the backbone (say, Keras Hub's `intermediate_dim` passed as our per-branch
    `ffw_dim`) fails here instead of producing a silently different model.
    """
    names = {("embedder", "embedding"): "token_embedding/embeddings",
             ("final_norm", "scale"): "final_normalization/scale"}
    for i in range(config.num_layers):
        names.update({(f"layers_{i}", *ours): f"decoder_block_{i}/{theirs}"
                      for ours, theirs in _KERAS_BLOCK_NAMES.items()})
    return _params_from_names(weights, names, config, {}, "Keras Hub")


# --- Hugging Face ------------------------------------------------------------------------------

_HF_ACTIVATIONS = {"gelu_pytorch_tanh", "gelu_tanh", "gelu_new", "gelu_fast"}  # all tanh-approximate GELU


def _hf_names(config: GemmaConfig) -> dict[tuple[str, ...], str]:
    names = {("embedder", "embedding"): "model.embed_tokens.weight", ("final_norm", "scale"): "model.norm.weight"}
    for i in range(config.num_layers):
        hf = f"model.layers.{i}"
        names.update({
            (f"layers_{i}", "pre_attention_norm", "scale"): f"{hf}.input_layernorm.weight",
            (f"layers_{i}", "attention", "query"): f"{hf}.self_attn.q_proj.weight",
            (f"layers_{i}", "attention", "key"): f"{hf}.self_attn.k_proj.weight",
            (f"layers_{i}", "attention", "value"): f"{hf}.self_attn.v_proj.weight",
            (f"layers_{i}", "attention", "output"): f"{hf}.self_attn.o_proj.weight",
            (f"layers_{i}", "pre_ffw_norm", "scale"): f"{hf}.post_attention_layernorm.weight",
            (f"layers_{i}", "ffw", "gate"): f"{hf}.mlp.gate_proj.weight",
            (f"layers_{i}", "ffw", "up"): f"{hf}.mlp.up_proj.weight",
            (f"layers_{i}", "ffw", "down"): f"{hf}.mlp.down_proj.weight",
        })
    return names


def _hf_to_ours(config: GemmaConfig) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Per weight name: HF [out, in] array -> our layout (names not listed are copied)."""
    d, h = config.d_model, config.head_dim

    def heads_in(w: np.ndarray) -> np.ndarray:
        return w.reshape(-1, h, d).transpose(0, 2, 1)  # [N*H, D] -> [N, H, D] -> [N, D, H]

    def heads_out(w: np.ndarray) -> np.ndarray:
        return w.reshape(d, -1, h).transpose(1, 2, 0)  # [D, N*H] -> [D, N, H] -> [N, H, D]

    return {"query": heads_in, "key": heads_in, "value": heads_in, "output": heads_out,
            "gate": np.transpose, "up": np.transpose, "down": np.transpose}


def _ours_to_hf(config: GemmaConfig) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The inverse of `_hf_to_ours`."""
    d = config.d_model

    def heads_in(w: np.ndarray) -> np.ndarray:
        return w.transpose(0, 2, 1).reshape(-1, d)  # [N, D, H] -> [N, H, D] -> [N*H, D]

    def heads_out(w: np.ndarray) -> np.ndarray:
        return w.transpose(2, 0, 1).reshape(d, -1)  # [N, H, D] -> [D, N, H] -> [D, N*H]

    return {"query": heads_in, "key": heads_in, "value": heads_in, "output": heads_out,
            "gate": np.transpose, "up": np.transpose, "down": np.transpose}


def config_from_hf(hf_config: Mapping[str, object], param_dtype: DType = DType.FLOAT32,
                   dtype: DType = DType.FLOAT32) -> GemmaConfig:
    """Our config from a Hugging Face Gemma (v1) `config.json`; refuses what Gemma v1 is not."""
    if hf_config.get("model_type") != "gemma":
        raise ValueError(f"not a Gemma v1 config: model_type {hf_config.get('model_type')!r}")
    activation = hf_config.get("hidden_activation") or hf_config.get("hidden_act")
    if activation not in _HF_ACTIVATIONS:
        raise ValueError(f"Gemma uses tanh-approximate GELU, this config says {activation!r}")
    if hf_config.get("attention_bias") or not hf_config.get("tie_word_embeddings", True):
        raise ValueError("Gemma has no attention biases and ties its output to the embedding")
    return GemmaConfig(
        vocab_size=hf_config["vocab_size"], d_model=hf_config["hidden_size"],
        num_layers=hf_config["num_hidden_layers"], num_heads=hf_config["num_attention_heads"],
        num_kv_heads=hf_config["num_key_value_heads"], head_dim=hf_config["head_dim"],
        ffw_dim=hf_config["intermediate_size"], max_seq_len=hf_config.get("max_position_embeddings", 8192),
        rope_base=float(hf_config.get("rope_theta", 10_000.0)), norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
        param_dtype=param_dtype, dtype=dtype,
    )


def to_hf_config(config: GemmaConfig) -> dict[str, object]:
    """A Hugging Face `config.json` for `GemmaForCausalLM` describing this model."""
    return {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma",
        "vocab_size": config.vocab_size, "hidden_size": config.d_model, "intermediate_size": config.ffw_dim,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads, "head_dim": config.head_dim,
        "max_position_embeddings": config.max_seq_len, "rope_theta": config.rope_base,
        "rms_norm_eps": config.norm_eps, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
        "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": True,
        "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "torch_dtype": config.param_dtype.value,
    }


def load_hf(path: str | Path, param_dtype: DType = DType.FLOAT32,
            dtype: DType = DType.FLOAT32) -> tuple[GemmaConfig, Params]:
    """Config and parameters from a Hugging Face Gemma folder, weights cast to `param_dtype`."""
    path = Path(path)
    config = config_from_hf(json.loads((path / "config.json").read_text()), param_dtype, dtype)
    index = path / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else [
        "model.safetensors"]
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        tensors.update(safetensors.numpy.load_file(str(path / name)))
    lm_head = tensors.pop("lm_head.weight", None)  # some exports write the tied matrix out as well
    if lm_head is not None and not np.array_equal(lm_head, tensors.get("model.embed_tokens.weight")):
        raise ValueError("lm_head.weight differs from the embedding: not a tied Gemma checkpoint")
    return config, _params_from_names(tensors, _hf_names(config), config, _hf_to_ours(config), "Hugging Face")


def save_hf(path: str | Path, config: GemmaConfig, params: Params) -> None:
    """Write `config.json` and one `model.safetensors` (weights in `config.param_dtype`)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    transforms = _ours_to_hf(config)
    tensors = {}
    for ours, theirs in _hf_names(config).items():
        value = np.asarray(functools.reduce(lambda tree, key: tree[key], ours, params))
        tensors[theirs] = np.ascontiguousarray(transforms.get(ours[-1], np.asarray)(value), config.param_dtype.jnp)
    safetensors.numpy.save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(to_hf_config(config), indent=2) + "\n")


# --- Shared ------------------------------------------------------------------------------------


def _params_from_names(
    weights: Mapping[str, np.ndarray],
    names: Mapping[tuple[str, ...], str],
    config: GemmaConfig,
    transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    source: str,
) -> Params:
    """Build our tree from `weights` via `names` (our path -> their key), transforming by leaf name,
    checking that every weight is used once and has the shape `config` expects."""
    unexpected = sorted(set(weights) - set(names.values()))
    if unexpected:
        raise ValueError(f"{source} weights not in a {config.num_layers}-layer Gemma: {unexpected}")
    expected = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    params: Params = {}
    for path, their_name in names.items():
        if their_name not in weights:
            raise ValueError(f"{source} weights lack {their_name}")
        theirs = np.asarray(weights[their_name])
        want = functools.reduce(lambda tree, key: tree[key], path, expected)
        # Reshaping needs the right size; the layout check then catches e.g. an untransposed matrix.
        ours = transforms.get(path[-1], np.asarray)(theirs) if theirs.size == math.prod(want.shape) else None
        if ours is None or ours.shape != want.shape:
            raise ValueError(f"{their_name} has shape {theirs.shape}, the config expects {want.shape} (our layout)")
        *parents, leaf = path
        functools.reduce(lambda tree, key: tree.setdefault(key, {}), parents, params)[leaf] = ours.astype(want.dtype)
    return params
