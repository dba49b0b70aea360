"""Helpers shared by the model tests."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.gemma import Gemma, Params, init_params


def random_params(config: GemmaConfig, seed: int = 0, norm_scale_std: float = 0.3, block_gain: float = 1.0) -> Params:
    """Random weights of the right shapes, drawn in numpy: no XLA compile (a Flax init compiles one
    RNG kernel per weight, seconds of CPU time). Norm scales are random too, unlike a fresh
    init, so tests see the (1 + scale) gains. At block_gain 1 a random model mostly predicts its
    input token again (tied embeddings, residual stream); a larger gain lets attention decide."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))

    fan_in = {"embedding": lambda s: s[1], "query": lambda s: s[1], "key": lambda s: s[1], "value": lambda s: s[1],
              "output": lambda s: s[0] * s[1], "gate": lambda s: s[0], "up": lambda s: s[0], "down": lambda s: s[0]}

    def draw(path: tuple, leaf: jax.ShapeDtypeStruct) -> jax.Array:
        name = path[-1].key
        if name == "scale":
            std = norm_scale_std
        else:
            std = fan_in[name](leaf.shape) ** -0.5 * (1.0 if name == "embedding" else block_gain)
        return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def unpacked(tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Positions and segment ids for rows that each hold one document and no padding."""
    batch, length = tokens.shape
    return jnp.broadcast_to(jnp.arange(length), (batch, length)), jnp.ones((batch, length), jnp.int32)


@functools.cache
def forward(config: GemmaConfig, method: str = "__call__"):
    """A jitted `Gemma(config).apply(params, ...)`: one compile instead of hundreds of eager ops."""
    model = Gemma(config)
    return jax.jit(lambda params, *args: model.apply({"params": params}, *args, method=method))
