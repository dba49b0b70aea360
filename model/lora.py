"""LoRA (Hu et al., 2021): train a low-rank update `(alpha / rank) * A @ B` of chosen projections, the
base weights frozen; with a quantized base (model/quant.py) this is QLoRA (Dettmers et al., 2023).

Each target weight is viewed as a matrix [inputs, outputs] over the axes it contracts and produces
(`quant.WEIGHT_AXES`):

    query/key/value [X, D, H]: inputs D, outputs X*H      output [N, H, D]: inputs N*H, outputs D
    gate/up [D, F]: inputs D, outputs F                    down [F, D]: inputs F, outputs D

A starts random (fan-in scaled), B at zero, so training starts from the base model exactly.

For training and inference the adapters are *attached* (`attach`): each target weight in the tree
becomes a `LoraWeight` holding the frozen base and its adapter, and the layers compute
`x W + scale * dropout(x) A B`, never forming `W + scale * A B`. That keeps a quantized base quantized
and lets LoRA dropout act on the adapter's input only, as PEFT does. `merge` forms the dense sum once,
for exporting an ordinary model.
"""

from __future__ import annotations

import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.model.quant import WEIGHT_AXES, Array, QuantizedWeight, dequantize_params
from gemmaflow.model.train_config import LoraConfig

Params = dict[str, Any]


@flax.struct.dataclass
class LoraWeight:
    """A frozen weight and its trainable low-rank update, as the layers receive it from `attach`."""

    base: Array | QuantizedWeight
    a: Array  # [I, r]
    b: Array  # [r, O]
    dropout_rng: Array | None  # None: no dropout (evaluation, generation)
    scale: float = flax.struct.field(pytree_node=False)  # alpha / rank
    dropout: float = flax.struct.field(pytree_node=False)

    def update(self, x: Array) -> Array:
        """`scale * dropout(x) @ A @ B`: inputs [L, *input axes] -> [L, O] (the caller reshapes), in x's dtype."""
        flat = x.reshape(x.shape[0], -1)  # [L, I]
        if self.dropout_rng is not None and self.dropout > 0:
            keep = jax.random.bernoulli(self.dropout_rng, 1.0 - self.dropout, flat.shape)
            flat = jnp.where(keep, flat / (1.0 - self.dropout), 0).astype(flat.dtype)
        low_rank = (flat @ self.a.astype(flat.dtype)) @ self.b.astype(flat.dtype)  # [L, r] -> [L, O]
        return low_rank * jnp.asarray(self.scale, flat.dtype)


def _targets(params: Params, config: LoraConfig) -> list[tuple[str, str, str]]:
    """(layer, module, weight) of every adapted weight, in a fixed order."""
    return [(layer, module, name) for layer in sorted(k for k in params if k.startswith("layers_"))
            for module in sorted(params[layer]) for name in sorted(params[layer][module])
            if name in config.targets]


def init_lora(params: Params, config: LoraConfig, rng: jax.Array) -> Params:
    """Adapters {layer: {module: {weight: {"a": [I, r], "b": [r, O]}}}} for the configured targets, in
    `config.dtype` (a quantized base is fine: only its shape is read)."""
    lora: Params = {}
    dtype = jnp.dtype(config.dtype)
    for i, (layer, module, name) in enumerate(_targets(params, config)):
        shape = tuple(params[layer][module][name].shape)
        in_axes, out_axes = WEIGHT_AXES[name]
        fan_in, fan_out = math.prod(shape[a] for a in in_axes), math.prod(shape[a] for a in out_axes)
        a = jax.random.normal(jax.random.fold_in(rng, i), (fan_in, config.rank), jnp.float32) * fan_in**-0.5
        lora.setdefault(layer, {}).setdefault(module, {})[name] = {
            "a": a.astype(dtype), "b": jnp.zeros((config.rank, fan_out), dtype)}
    return lora


def _with_adapters(params: Params, lora: Params, combine: Any) -> Params:
    """A new tree: the i-th adapted weight replaced by `combine(i, name, base, adapter)`; entries of
    `lora` outside the layers (a reward model's head, trained beside the adapters) join as they are."""
    index = 0
    tree = {key: (dict(value) if isinstance(value, dict) else value) for key, value in params.items()}
    for layer, modules in lora.items():
        if not layer.startswith("layers_"):
            tree[layer] = modules
            continue
        tree[layer] = {module: dict(weights) for module, weights in tree[layer].items()}
        for module, weights in modules.items():
            for name, adapter in weights.items():
                tree[layer][module][name] = combine(index, name, params[layer][module][name], adapter)
                index += 1
    return tree


def attach(params: Params, lora: Params, config: LoraConfig, dropout_rng: Array | None = None) -> Params:
    """The base tree with each target weight a `LoraWeight`, for the layers to apply; with `dropout_rng`
    (training) each adapter drops its inputs at `config.dropout` with its own key."""
    def combine(index: int, name: str, base: Any, adapter: Params) -> LoraWeight:
        rng = None if dropout_rng is None or config.dropout == 0 else jax.random.fold_in(dropout_rng, index)
        return LoraWeight(base=base, a=adapter["a"], b=adapter["b"], dropout_rng=rng,
                          scale=config.alpha / config.rank, dropout=config.dropout)

    return _with_adapters(params, lora, combine)


def merge(params: Params, lora: Params, config: LoraConfig) -> Params:
    """The dense weights `W + scale * A @ B`, as an ordinary model to save or export (quantized weights,
    adapted or not, come back in float32); untouched float leaves are shared with `params`."""
    scale = config.alpha / config.rank

    def combine(index: int, name: str, base: Array, adapter: Params) -> Array:
        in_axes, out_axes = WEIGHT_AXES[name]
        order = in_axes + out_axes
        delta = (adapter["a"].astype(jnp.float32) @ adapter["b"].astype(jnp.float32))
        delta = delta.reshape([base.shape[a] for a in order])  # [I, O] -> input + output axes
        delta = jnp.transpose(delta, np.argsort(order))  # back to the weight's own axis order
        return base + (scale * delta).astype(base.dtype)

    return _with_adapters(dequantize_params(params, jnp.float32), lora, combine)


def count(lora: Any) -> int:
    """Trainable parameters in the adapters."""
    return sum(x.size for x in jax.tree.leaves(lora))
