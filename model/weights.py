"""Model weights in and out of the folders a run starts from: fresh, saved, trained or Hugging Face.

The trainer and the user API (`model/api.py`, `GemmaLM`) both start from weights; this module is
what they share, so the trainer never imports the user API (and its sampling and tokenizer code).

A folder holding weights is one of four kinds: our saved model (`gemmaflow_model.json` +
`params/`), a `gemmaflow train` output (its `final/` model, else its newest whole checkpoint, LoRA
adapters merged), a Hugging Face Gemma folder (`config.json` + safetensors) or a Keras Hub preset
(`config.json` + `model.weights.h5`). A `tokenizer.model` (SentencePiece) beside the weights, or a
Keras Hub preset's `assets/tokenizer/vocabulary.spm`, belongs to them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp

from gemmaflow.core.configio import from_dict
from gemmaflow.model import checkpoint, convert, lora
from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.gemma import Params, count_params, init_params
from gemmaflow.model.layers import Block, Embedder, RMSNorm
from gemmaflow.model.quant import QuantMode, quantize_params
from gemmaflow.model.train_config import LoraConfig

TOKENIZER_FILE = "tokenizer.model"

WeightsFolder = Literal["native", "hf", "keras_hub", "run_final", "run_checkpoints"]
KERAS_HUB_TOKENIZER = "assets/tokenizer/vocabulary.spm"  # a Keras Hub preset's SentencePiece model


def weights_folder_kind(path: str | Path) -> WeightsFolder:
    """Which kind of weights folder `path` is, from its file names alone (nothing is loaded).

    Cheap on purpose: a job checks its `init_from` with it before any work, and `load_weights`
    dispatches on it, so the check and the load never disagree.
    """
    path = Path(path)
    if (path / checkpoint.MODEL_CONFIG).is_file():
        return "native"
    if (path / "config.json").is_file() and any(path.glob("*.safetensors*")):
        return "hf"
    if (path / "config.json").is_file() and (path / "model.weights.h5").is_file():
        return "keras_hub"
    if (path / "final" / checkpoint.MODEL_CONFIG).is_file():
        return "run_final"
    if (path / "checkpoints").is_dir():
        return "run_checkpoints"
    raise checkpoint.CheckpointError(f"{path}: not a gemmaflow model (gemmaflow_model.json + params/), training run, "
                                     "Hugging Face Gemma folder (config.json + *.safetensors) or Keras Hub preset "
                                     "(config.json + model.weights.h5)")


def load_weights(path: str | Path, param_dtype: DType = DType.FLOAT32) -> tuple[GemmaConfig, Params, Path | None]:
    """(config, params, tokenizer file or None) from any weights folder (see the module). Hugging Face and Keras
    Hub weights are cast to `param_dtype` one tensor at a time, so loading a 7B in bfloat16 never holds a
    float32 copy; ours come back as saved."""
    path = Path(path)
    kind = weights_folder_kind(path)
    if kind == "run_final":
        return load_weights(path / "final", param_dtype)
    if kind == "native":
        config, params = checkpoint.load_model(path)
    elif kind == "hf":
        config, params = convert.load_hf(path, param_dtype)
    elif kind == "keras_hub":
        config, params = convert.load_keras_hub(path, param_dtype)
    else:
        config, params = _newest_whole_checkpoint(path / "checkpoints")
    tokenizer = next((path / name for name in (TOKENIZER_FILE, KERAS_HUB_TOKENIZER) if (path / name).is_file()), None)
    return config, params, tokenizer


def _newest_whole_checkpoint(folder: Path) -> tuple[GemmaConfig, Params]:
    """A run killed before its final model still has weights: its newest whole checkpoint, adapters merged."""
    store = checkpoint.CheckpointStore(folder, keep=1_000_000)
    step = store.latest_whole_step()
    if step is None:
        raise checkpoint.CheckpointError(f"{folder} holds no whole checkpoint")
    meta = store.read_meta(step)
    config = checkpoint.config_from_dict(meta["model_config"])
    lora_config = from_dict(LoraConfig, meta["lora"]) if meta.get("lora") else None
    template = None
    if lora_config is not None and lora_config.quantize != "none":  # a QLoRA run's base is stored quantized
        template = abstract_params(config, lora_config.quantize, lora_config.double_quant)
    params, adapters = store.restore_params(step, template)
    if adapters is not None:
        params = lora.merge(params, adapters, lora_config)
    return config, params


def abstract_params(config: GemmaConfig, quantize: QuantMode = "none", double_quant: bool = True) -> Params:
    """The parameter tree's shapes and dtypes (nothing allocated), as `quantize_params` would store it."""
    return jax.eval_shape(lambda key: quantize_params(init_params(config, key), quantize, double_quant),
                          jax.random.key(0))


BLOCKWISE_INIT_ABOVE = 500_000_000  # parameters; larger models are initialised one block at a time


def fresh_params(config: GemmaConfig, rng: jax.Array, shardings: Any = None) -> Params:
    """New weights from the model's own initialisers (`init_params`), optionally laid out over a mesh.

    The init program runs once, so it is compiled without LLVM's optimisations: on CPU that takes
    seconds instead of tens of seconds for the random-number kernels, and draws the same
    distributions (the exact bits are fixed by this choice, so seeds stay reproducible). One program
    for the whole model holds every weight's random bits at once, which for the released 2B shape
    exceeds 23 GB of host memory; above `BLOCKWISE_INIT_ABOVE` parameters each top-level entry (the
    embedding, each block, the final norm) is initialised by its own program instead, with the same
    initialisers and its own key, so memory peaks at one block's worth (the bits differ from the
    one-program draw; they are as reproducible).
    """
    if count_params(config).total <= BLOCKWISE_INIT_ABOVE:
        init = jax.jit(functools.partial(init_params, config), out_shardings=shardings)
        return init.lower(rng).compile(compiler_options={"xla_backend_optimization_level": 0})(rng)
    params = _blockwise_params(config, rng)
    return params if shardings is None else jax.device_put(params, shardings)


def _blockwise_params(config: GemmaConfig, rng: jax.Array) -> Params:
    tokens = jnp.zeros((1, 1), jnp.int32)
    x = jnp.zeros((1, 1, config.d_model), config.dtype.jnp)
    mask = jnp.ones((1, 1, 1), bool)
    embed_key, *block_keys = jax.random.split(rng, config.num_layers + 1)
    embedder = jax.jit(lambda key: Embedder(config).init(key, tokens, method=Embedder.lookup)["params"])
    block = jax.jit(lambda key: Block(config).init(key, x, tokens, mask)["params"])
    params: Params = {"embedder": embedder(embed_key)}
    for i, key in enumerate(block_keys):
        params[f"layers_{i}"] = jax.block_until_ready(block(key))  # one block's temporaries at a time
    params["final_norm"] = RMSNorm(config).init(rng, x)["params"]
    return params
