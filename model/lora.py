"""LoRA: train a low-rank update `(alpha / rank) * A @ B` of chosen projections, the base weights frozen.

The update is merged into the weights functionally (`merge`) before each forward pass, so the Gemma
module needs no adapter-aware layers and the merged tree is an ordinary checkpoint. Each target
weight is viewed as a matrix [inputs, outputs] over the axes it contracts and produces:

    query/key/value [X, D, H]: inputs D, outputs X*H      output [N, H, D]: inputs N*H, outputs D
    gate/up [D, F]: inputs D, outputs F                    down [F, D]: inputs F, outputs D

A starts random (fan-in scaled), B at zero, so training starts from the base model exactly.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.model.gemma import Params
from gemmaflow.model.train_config import LoraConfig

# weight name -> (input axes, output axes) of its array
_AXES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "query": ((1,), (0, 2)), "key": ((1,), (0, 2)), "value": ((1,), (0, 2)), "output": ((0, 1), (2,)),
    "gate": ((0,), (1,)), "up": ((0,), (1,)), "down": ((0,), (1,)),
}


def _targets(params: Params, config: LoraConfig) -> list[tuple[str, str, str]]:
    """(layer, module, weight) of every adapted weight, in a fixed order."""
    return [(layer, module, name) for layer in sorted(k for k in params if k.startswith("layers_"))
            for module in sorted(params[layer]) for name in sorted(params[layer][module])
            if name in config.targets]


def init_lora(params: Params, config: LoraConfig, rng: jax.Array) -> Params:
    """Adapters {layer: {module: {weight: {"a": [I, r], "b": [r, O]}}}} for the configured targets (float32)."""
    lora: Params = {}
    for i, (layer, module, name) in enumerate(_targets(params, config)):
        shape = params[layer][module][name].shape
        in_axes, out_axes = _AXES[name]
        fan_in, fan_out = math.prod(shape[a] for a in in_axes), math.prod(shape[a] for a in out_axes)
        a = jax.random.normal(jax.random.fold_in(rng, i), (fan_in, config.rank), jnp.float32) * fan_in**-0.5
        lora.setdefault(layer, {}).setdefault(module, {})[name] = {"a": a, "b": jnp.zeros((config.rank, fan_out))}
    return lora


def merge(params: Params, lora: Params, config: LoraConfig) -> Params:
    """The base weights with each adapter's update added (a new tree; untouched leaves are shared).

    Entries of `lora` outside the layers (a reward model's head, trained beside the adapters) join the
    merged tree as they are.
    """
    scale = config.alpha / config.rank
    merged = jax.tree.map(lambda x: x, params)
    for layer, modules in lora.items():
        if not layer.startswith("layers_"):
            merged[layer] = modules
            continue
        for module, weights in modules.items():
            for name, adapter in weights.items():
                base = params[layer][module][name]
                in_axes, out_axes = _AXES[name]
                order = in_axes + out_axes
                delta = (adapter["a"] @ adapter["b"]).reshape([base.shape[a] for a in order])  # [I, O] -> in+out axes
                delta = jnp.transpose(delta, np.argsort(order))  # back to the weight's own axis order
                merged[layer][module][name] = base + (scale * delta).astype(base.dtype)
    return merged


def count(lora: Any) -> int:
    """Trainable parameters in the adapters."""
    return sum(x.size for x in jax.tree.leaves(lora))
