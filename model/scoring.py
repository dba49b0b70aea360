"""`score`: per-token logits or losses of given token ids, as Keras Hub's `GemmaCausalLM.score`.

Same arguments and results, so scripts written against Keras Hub port by changing the call. Two
deliberate differences: the value `layer_intercept_fn` returns for the embeddings (i = -1) is used
(Keras Hub computes it and then ignores it), and the scores at padding positions are unspecified
(ours attend to nothing; Keras Hub's attend to the real tokens before them). Rows are right-padded
and positions count from 0, as in Keras Hub.
"""

from __future__ import annotations

import enum
import functools

import jax
import jax.numpy as jnp

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.gemma import Gemma, LayerIntercept, Params
from gemmaflow.model.layers import Array
from gemmaflow.model.loss import token_cross_entropy


class ScoringMode(enum.Enum):
    LOGITS = "logits"  # [B, T, V] float32
    LOSS = "loss"  # [B, T] float32 cross-entropy against target_ids, not reduced


def score(
    params: Params,
    config: GemmaConfig,
    token_ids: Array,
    padding_mask: Array | None = None,
    scoring_mode: ScoringMode | str = ScoringMode.LOGITS,
    layer_intercept_fn: LayerIntercept | None = None,
    target_ids: Array | None = None,
) -> Array:
    """Score token_ids [B, T] (padding_mask [B, T], 1 = real token; default all real).

    LOGITS mode returns the next-token logits at every position; LOSS mode the cross-entropy of
    `target_ids` [B, T] under them (typically token_ids shifted left by one), one value per
    token, for the caller to mask and reduce. `layer_intercept_fn(x, i)` sees and may replace the
    unscaled token embeddings (i = -1) and the output of block i; gradients flow through it.
    """
    mode = ScoringMode(scoring_mode)
    if mode is ScoringMode.LOSS and target_ids is None:
        raise ValueError("scoring_mode 'loss' needs target_ids")
    token_ids = jnp.asarray(token_ids, jnp.int32)
    if token_ids.ndim != 2:
        raise ValueError(f"token_ids must be [batch, length], got shape {token_ids.shape}")
    if padding_mask is None:
        padding_mask = jnp.ones_like(token_ids)
    targets = None if mode is ScoringMode.LOGITS else jnp.asarray(target_ids, jnp.int32)
    return _score(params, token_ids, jnp.asarray(padding_mask, jnp.int32), targets, config=config,
                  layer_intercept_fn=layer_intercept_fn)


@functools.partial(jax.jit, static_argnames=("config", "layer_intercept_fn"))
def _score(
    params: Params,
    token_ids: Array,
    padding_mask: Array,
    target_ids: Array | None,
    *,
    config: GemmaConfig,
    layer_intercept_fn: LayerIntercept | None,
) -> Array:
    positions = jnp.broadcast_to(jnp.arange(token_ids.shape[1]), token_ids.shape)
    logits = Gemma(config).apply({"params": params}, token_ids, positions, padding_mask, layer_intercept_fn)
    return logits if target_ids is None else token_cross_entropy(logits, target_ids)[0]
