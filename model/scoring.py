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
    score_positions: Array | None = None,
) -> Array:
    """Score token_ids [B, T] (padding_mask [B, T], 1 = real token; default all real).

    LOGITS mode returns the next-token logits at every position; LOSS mode the cross-entropy of
    `target_ids` [B, T] under them (typically token_ids shifted left by one), one value per
    token, for the caller to mask and reduce. `layer_intercept_fn(x, i)` sees and may replace the
    unscaled token embeddings (i = -1) and the output of block i; gradients flow through it.

    `score_positions` [B, K] (ours; Keras Hub has none) keeps only those positions of each row:
    logits [B, K, V] or losses [B, K]. The projection onto the vocabulary, a small model's largest
    matmul, then runs on K positions instead of T: what a log-likelihood evaluation needs, since it
    reads only the continuation's positions.
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
    if score_positions is not None:
        score_positions = jnp.asarray(score_positions, jnp.int32)
        if score_positions.ndim != 2 or score_positions.shape[0] != token_ids.shape[0]:
            raise ValueError(f"score_positions must be [batch, K], got shape {score_positions.shape}")
    return _score(params, token_ids, jnp.asarray(padding_mask, jnp.int32), targets, score_positions, config=config,
                  layer_intercept_fn=layer_intercept_fn)


@functools.partial(jax.jit, static_argnames=("config", "layer_intercept_fn"))
def _score(
    params: Params,
    token_ids: Array,
    padding_mask: Array,
    target_ids: Array | None,
    score_positions: Array | None,
    *,
    config: GemmaConfig,
    layer_intercept_fn: LayerIntercept | None,
) -> Array:
    model, variables = Gemma(config), {"params": params}
    positions = jnp.broadcast_to(jnp.arange(token_ids.shape[1]), token_ids.shape)
    hidden = model.apply(variables, token_ids, positions, padding_mask, layer_intercept_fn, method=Gemma.hidden_states)
    if score_positions is not None:
        hidden = jnp.take_along_axis(hidden, score_positions[..., None], axis=1)
        target_ids = None if target_ids is None else jnp.take_along_axis(target_ids, score_positions, axis=1)
    logits = model.apply(variables, hidden, method=lambda module, h: module.embedder.logits(h))
    return logits if target_ids is None else token_cross_entropy(logits, target_ids)[0]
