"""Weights between our parameter tree and other Gemma implementations.

- Keras Hub's `GemmaBackbone` uses our layouts (both follow DeepMind's Gemma), so its conversion
  is a renaming checked against the shapes our config expects. It takes plain arrays keyed by Keras
  variable path, `{v.path: np.asarray(v) for v in backbone.weights}`, so this module does not
  import Keras; `load_keras_hub` reads a saved Keras Hub preset folder (`config.json` +
  `model.weights.h5`, as `save_to_preset` writes and Keras Hub's Kaggle presets ship) with h5py.
- Hugging Face Gemma folders (`config.json` + `model.safetensors`, or shards listed in
  `model.safetensors.index.json`) store PyTorch `[out, in]` matrices with heads flattened into
  rows; `load_hf` and `save_hf` reshape and transpose. HF's norms also store `scale` (HF applies
  `1 + weight` too), and HF's `post_attention_layernorm` is Gemma's pre-feed-forward norm.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
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


# A preset's model.weights.h5 names each layer's variables `layers/<layer name>/.../vars/0`, the layer names
# Keras gave the objects (block i is `gemma_decoder_block` then `_1`, `_2`, ... in creation order).
_KERAS_H5_BLOCK_NAMES = {
    "pre_attention_norm": "pre_attention_norm/scale", "attention/query_dense": "attention/query/kernel",
    "attention/key_dense": "attention/key/kernel", "attention/value_dense": "attention/value/kernel",
    "attention/output_dense": "attention/attention_output/kernel", "pre_ffw_norm": "pre_ffw_norm/scale",
    "gating_ffw": "ffw_gating/kernel", "gating_ffw_2": "ffw_gating_2/kernel", "ffw_linear": "ffw_linear/kernel",
}
_KERAS_H5_BLOCK = re.compile(r"layers/gemma_decoder_block(?:_(\d+))?/(.+)/vars/0")


def config_from_keras_hub(document: Mapping[str, object]) -> GemmaConfig:
    """Our config from a Keras Hub preset's `config.json` (a serialised `GemmaBackbone`); refuses Gemma 2's
    extras (soft caps, sliding windows, post-norms), which this model does not implement."""
    if document.get("class_name") != "GemmaBackbone" or not isinstance(document.get("config"), dict):
        raise ValueError(f"not a Keras Hub GemmaBackbone config (class_name {document.get('class_name')!r})")
    c: dict = document["config"]  # type: ignore[assignment]
    gemma2 = [k for k in ("use_post_ffw_norm", "use_post_attention_norm", "final_logit_soft_cap",
                          "attention_logit_soft_cap", "use_sliding_window_attention") if c.get(k)]
    if gemma2 or c.get("query_head_dim_normalize", True) is not True:
        raise ValueError(f"a Gemma 2 backbone ({', '.join(gemma2) or 'query_head_dim_normalize'}): this model is "
                         "Gemma v1")
    if c["intermediate_dim"] % 2:
        raise ValueError(f"intermediate_dim {c['intermediate_dim']} counts both GeGLU branches and must be even")
    return GemmaConfig(vocab_size=c["vocabulary_size"], d_model=c["hidden_dim"], num_layers=c["num_layers"],
                       num_heads=c["num_query_heads"], num_kv_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
                       ffw_dim=c["intermediate_dim"] // 2, norm_eps=float(c.get("layer_norm_epsilon", 1e-6)))


def load_keras_hub(path: str | Path, param_dtype: DType = DType.FLOAT32) -> tuple[GemmaConfig, Params]:
    """Config and parameters in `param_dtype` from a Keras Hub Gemma preset folder (float32 or bfloat16 weights)."""
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("reading a Keras Hub preset's model.weights.h5 needs h5py: pip install h5py") from exc
    import ml_dtypes

    path = Path(path)
    config = dataclasses.replace(config_from_keras_hub(json.loads((path / "config.json").read_text())),
                                 param_dtype=param_dtype)
    datasets: dict[str, np.ndarray] = {}
    with h5py.File(path / "model.weights.h5", "r") as handle:
        def collect(name: str, node: object) -> None:
            if isinstance(node, h5py.Dataset):
                value = node[()]
                if node.attrs.get("dtype") == "bfloat16":  # Keras stores bfloat16 as opaque 2-byte values
                    value = np.frombuffer(value.tobytes(), ml_dtypes.bfloat16).reshape(node.shape)
                datasets[name] = value

        handle.visititems(collect)
    return config, params_from_keras_hub(_keras_paths(datasets, path), config)


def _keras_paths(datasets: Mapping[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """model.weights.h5 names -> Keras variable paths (`decoder_block_3/attention/query/kernel`)."""
    blocks: dict[int, dict[str, np.ndarray]] = {}
    out: dict[str, np.ndarray] = {}
    for name, value in datasets.items():
        if (match := _KERAS_H5_BLOCK.fullmatch(name)) and match.group(2) in _KERAS_H5_BLOCK_NAMES:
            blocks.setdefault(int(match.group(1) or 0), {})[_KERAS_H5_BLOCK_NAMES[match.group(2)]] = value
        elif re.fullmatch(r"layers/reversible_embedding(?:_\d+)?/vars/0", name):
            out["token_embedding/embeddings"] = value
        elif re.fullmatch(r"layers/rms_normalization(?:_\d+)?/vars/0", name):
            out["final_normalization/scale"] = value
        else:
            raise ValueError(f"{path / 'model.weights.h5'}: unexpected weight {name}")
    for index, suffix in enumerate(sorted(blocks)):  # creation order, whatever the names' counter started at
        out.update({f"decoder_block_{index}/{name}": value for name, value in blocks[suffix].items()})
    return out


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


def save_hf(path: str | Path, config: GemmaConfig, params: Params, max_shard_bytes: int = 2 << 30) -> None:
    """Write `config.json` and the weights (in `config.param_dtype`): one `model.safetensors`, or shards of at
    most `max_shard_bytes` (`model-0000i-of-0000n.safetensors` and `model.safetensors.index.json`, Hugging
    Face's layout), converted and written one shard at a time so the copy never exceeds a shard."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    transforms = _ours_to_hf(config)
    names = list(_hf_names(config).items())
    itemsize = config.param_dtype.jnp.itemsize
    shards: list[list[tuple[tuple[str, ...], str]]] = [[]]
    size = 0
    for ours, theirs in names:
        nbytes = math.prod(functools.reduce(lambda tree, key: tree[key], ours, params).shape) * itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((ours, theirs))
        size += nbytes
    files = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    for file, shard in zip(files, shards, strict=True):
        tensors = {}
        for ours, theirs in shard:
            value = np.asarray(functools.reduce(lambda tree, key: tree[key], ours, params))
            tensors[theirs] = np.ascontiguousarray(transforms.get(ours[-1], np.asarray)(value), config.param_dtype.jnp)
        safetensors.numpy.save_file(tensors, str(path / file), metadata={"format": "pt"})
        del tensors
    if len(files) > 1:
        weight_map = {theirs: file for file, shard in zip(files, shards, strict=True) for _, theirs in shard}
        total = sum(math.prod(functools.reduce(lambda t, k: t[k], ours, params).shape) for ours, _ in names) * itemsize
        (path / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
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
