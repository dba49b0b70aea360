"""The Gemma v1 decoder: embed, N pre-norm blocks, final norm, tied logits.

The entry points share the same weights (`Gemma.apply(params, ..., method=...)`):

- `__call__` gives float32 logits [B, T, V] for a (packed) batch;
- `hidden_states` stops before the vocabulary projection, so the training loss can project chunk by
  chunk (model/loss.py) instead of materialising [B, T, V] logits (8192 x 256k float32 = 8.4 GB);
- `call_with_cache` runs T new tokens against a `Cache` of earlier keys and values, for sampling;
  `call_with_cache_hidden` also returns their hidden states, for contrastive search's similarities.

Batches carry `positions` (restarting at 0 in each packed document) and `segment_ids` (1..k for
the documents of a row, 0 for padding): see `attention_mask` for what may attend to what.
Einsum letters are defined in model/layers.py.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.layers import Array, Block, Embedder, LayerCache, RMSNorm, attention_mask

Params = dict[str, Any]
LayerIntercept = Callable[[Array, int], Array]


@flax.struct.dataclass
class Cache:
    """Decoding state: every layer's keys and values for `S` slots, and what each slot holds.

    `segment_ids` [B, S] is 0 for a slot not yet written or holding padding, so attention skips it;
    `end_index` is the next slot to write (shared by the batch: rows of different lengths are
    aligned by padding, not by separate indices).
    """

    layers: tuple[LayerCache, ...]
    segment_ids: Array
    end_index: Array


def init_cache(config: GemmaConfig, batch_size: int, cache_size: int) -> Cache:
    """An empty cache of `cache_size` slots, keys and values in the activation dtype."""
    shape = (batch_size, cache_size, config.num_kv_heads, config.head_dim)  # [B, S, K, H]
    dtype = config.dtype.jnp
    layers = tuple(LayerCache(key=jnp.zeros(shape, dtype), value=jnp.zeros(shape, dtype))
                   for _ in range(config.num_layers))
    return Cache(layers=layers, segment_ids=jnp.zeros((batch_size, cache_size), jnp.int32),
                 end_index=jnp.zeros((), jnp.int32))


class Gemma(nn.Module):
    """Parameters: `embedder/embedding` [V, D], `layers_{i}/...` (see model/layers.py), `final_norm/scale`."""

    config: GemmaConfig

    def setup(self) -> None:
        self.embedder = Embedder(self.config)
        self.layers = [Block(self.config) for _ in range(self.config.num_layers)]  # params: layers_0, ...
        self.final_norm = RMSNorm(self.config)

    def __call__(
        self, tokens: Array, positions: Array, segment_ids: Array, layer_intercept_fn: LayerIntercept | None = None
    ) -> Array:
        """tokens, positions, segment_ids: [B, T] integers -> float32 logits [B, T, V]."""
        return self.embedder.logits(self.hidden_states(tokens, positions, segment_ids, layer_intercept_fn))

    def hidden_states(
        self, tokens: Array, positions: Array, segment_ids: Array, layer_intercept_fn: LayerIntercept | None = None
    ) -> Array:
        """The final-normed hidden states [B, T, D] that the logits are projected from.

        `layer_intercept_fn(x, i)`, for interpretability (Keras Hub's `score` convention), sees and
        may replace the unscaled embeddings (i = -1) and each block's output (i = 0, 1, ...).
        """
        intercept = layer_intercept_fn or (lambda x, _: x)
        slots = jnp.arange(tokens.shape[1])
        mask = attention_mask(segment_ids, segment_ids, slots, slots)  # [B, T, T]
        x = self.embedder.scale(intercept(self.embedder.lookup(tokens), -1))
        for i, layer in enumerate(self.layers):
            x, _ = layer(x, positions, mask)
            x = intercept(x, i)
        return self.final_norm(x)

    def call_with_cache(
        self, tokens: Array, positions: Array, segment_ids: Array, cache: Cache
    ) -> tuple[Array, Cache]:
        """Run T new tokens [B, T] at cache slots end_index .. end_index + T - 1.

        Returns their float32 logits [B, T, V] and the cache with their keys and values added. A
        prompt is one call with the whole (padded) prompt; each sampling step is a call with T = 1.
        """
        logits, _, cache = self.call_with_cache_hidden(tokens, positions, segment_ids, cache)
        return logits, cache  # under jit the unused hidden states cost nothing

    def call_with_cache_hidden(
        self, tokens: Array, positions: Array, segment_ids: Array, cache: Cache
    ) -> tuple[Array, Array, Cache]:
        """`call_with_cache` that also returns the final-normed hidden states [B, T, D] the logits are
        projected from: contrastive search compares a candidate token's with the earlier tokens'."""
        length = tokens.shape[1]
        slots = cache.end_index + jnp.arange(length)  # [T]
        key_segments = jax.lax.dynamic_update_slice(cache.segment_ids, segment_ids.astype(jnp.int32),
                                                    (0, cache.end_index))  # [B, S]
        mask = attention_mask(segment_ids, key_segments, slots, jnp.arange(key_segments.shape[1]))  # [B, T, S]
        x = self.embedder.encode(tokens)
        layer_caches = []
        for layer, layer_cache in zip(self.layers, cache.layers, strict=True):
            x, layer_cache = layer(x, positions, mask, layer_cache, cache.end_index)
            layer_caches.append(layer_cache)
        hidden = self.final_norm(x)
        cache = Cache(layers=tuple(layer_caches), segment_ids=key_segments, end_index=cache.end_index + length)
        return self.embedder.logits(hidden), hidden, cache


def init_params(config: GemmaConfig, rng: Array) -> Params:
    """Fresh weights. Under `jax.eval_shape` this allocates nothing (see `count_params`)."""
    dummy = jnp.zeros((1, 1), jnp.int32)
    return Gemma(config).init(rng, dummy, dummy, jnp.ones((1, 1), jnp.int32))["params"]


@dataclasses.dataclass(frozen=True)
class ParamCount:
    embedding: int
    other: int

    @property
    def total(self) -> int:
        return self.embedding + self.other


def count_params(config: GemmaConfig) -> ParamCount:
    """Parameter counts from shapes alone (`jax.eval_shape`): instant even for 7B."""
    shapes = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    embedding = math.prod(shapes["embedder"]["embedding"].shape)
    total = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
    return ParamCount(embedding=embedding, other=total - embedding)


def train_flops_per_token(config: GemmaConfig, seq_len: int) -> float:
    """Matmul FLOPs to train on one token of a `seq_len` row, for MFU (as PaLM defines it, Chowdhery et al., 2022).

    Forward per layer: feed-forward 3*2*D*F, query/key/value 2*D*(N+2K)*H, output 2*N*H*D, causal
    attention 4*S*N*H/2; plus the logits 2*D*V. Training is 3x forward (backward costs two).
    """
    c = config
    per_layer = (3 * 2 * c.d_model * c.ffw_dim + 2 * c.d_model * (c.num_heads + 2 * c.num_kv_heads) * c.head_dim
                 + 2 * c.num_heads * c.head_dim * c.d_model + 4 * seq_len * c.num_heads * c.head_dim / 2)
    return 3.0 * (c.num_layers * per_layer + 2 * c.d_model * c.vocab_size)
