"""Gemma v1 building blocks: the math as small pure functions, the weights in Flax Linen modules.

Every number here is from the Gemma report (Gemma Team, 2024) and its reference implementation
(google-deepmind/gemma). Einsum letters, one per dimension:

    B  batch                      N  query heads
    T  query positions            K  key/value heads
    S  key/value positions        G  query heads per key/value head (N = K * G)
    L  tokens of the batch, B*T   H  head dimension
    D  model width (d_model)      F  feed-forward width of one GeGLU branch
    V  vocabulary (embedding rows)

Projections run on the flattened tokens L rather than on [B, T]: XLA's CPU backend computes the
weight gradient of a matmul with one contracting dimension about twice as fast as with two.

Weight layouts follow DeepMind's Gemma and Keras Hub (query [N, D, H], key/value [K, D, H],
output [N, H, D], feed-forward [D, F] and [F, D]), so converting their checkpoints is renaming.
Parameters are stored in `param_dtype` and cast to the activation `dtype` where they are used, which
gives float32 master weights with bfloat16 compute without a second copy of the model. A projection or
the embedding may instead arrive quantized (model/quant.py, dequantized at its matmul) or with a LoRA
adapter attached (model/lora.py, `x W + x A B` computed without forming the sum): `_weight` takes
whichever the parameter tree holds, and `_project` applies it.
"""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.lora import LoraWeight
from gemmaflow.model.quant import Array, QuantizedWeight, is_quantized, matmul

# Replaces masked attention logits (a large negative value, as in Gemma's reference implementation).
# Finite, unlike -inf, so a row with no visible key (a padding query) gives a uniform softmax instead of NaN.
MASK_VALUE = float(jnp.finfo(jnp.float32).min)


# --- Pure functions -----------------------------------------------------------------------------


def rms_norm(x: Array, scale: Array, eps: float) -> Array:
    """`x * rsqrt(mean(x^2) + eps) * (1 + scale)` over the last axis, computed in float32.

    Gemma stores `scale` around zero (initialised to 0) so a fresh norm is the identity gain; the
    float32 upcast keeps the mean of squares accurate when activations are bfloat16.
    """
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + eps)
    return (normed * (1.0 + scale.astype(jnp.float32))).astype(x.dtype)


def apply_rope(x: Array, positions: Array, base: float) -> Array:
    """Rotary position embedding, half-split, over the whole head dimension.

    x: [B, T, N, H]; positions: [B, T] integer positions, explicit so they restart at 0 in each
    document of a packed row. With x = [x1, x2] (halves of H) and timescale base^(2i/H) for
    i < H/2, returns [x1 cos - x2 sin, x2 cos + x1 sin]. The angles are float32: bfloat16 cannot
    represent positions above 256 exactly.
    """
    half = x.shape[-1] // 2
    timescale = base ** (2.0 * jnp.arange(half, dtype=jnp.float32) / x.shape[-1])  # [H/2]
    angles = positions.astype(jnp.float32)[:, :, None, None] / timescale  # [B, T, 1, H/2]
    sin, cos = jnp.sin(angles), jnp.cos(angles)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)  # 2 x [B, T, N, H/2]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def attention_mask(query_segments: Array, key_segments: Array, query_slots: Array, key_slots: Array) -> Array:
    """Which keys each query may attend to: [B, T, S] booleans.

    A query sees a key when the key is not after it (causal, by slot index in the row or cache)
    and both belong to the same segment, segment 0 being padding that nobody sees. For a packed
    row this confines attention to each document; since positions restart per document but slots
    do not, causality is by slot.

    query_segments: [B, T]; key_segments: [B, S]; query_slots: [T]; key_slots: [S].
    """
    causal = key_slots[None, None, :] <= query_slots[None, :, None]  # [1, T, S]
    same_segment = query_segments[:, :, None] == key_segments[:, None, :]  # [B, T, S]
    return causal & same_segment & (key_segments[:, None, :] != 0)


def attend(query: Array, key: Array, value: Array, mask: Array) -> Array:
    """Softmax attention of already rotated and scaled queries: [B, T, N, H] -> [B, T, N, H].

    key, value: [B, S, K, H], each key/value head shared by a group of G = N / K query heads;
    mask: [B, T, S]. Logits and softmax are float32 whatever the input dtype.
    """
    batch, length, num_heads, head_dim = query.shape
    num_kv_heads = key.shape[2]
    query = query.reshape(batch, length, num_kv_heads, num_heads // num_kv_heads, head_dim)  # -> [B, T, K, G, H]
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", query, key, preferred_element_type=jnp.float32)
    logits = jnp.where(mask[:, None, None, :, :], logits, MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1).astype(value.dtype)
    encoded = jnp.einsum("BKGTS,BSKH->BTKGH", probs, value)
    return encoded.reshape(batch, length, num_heads, head_dim)  # [B, T, K, G, H] -> [B, T, N, H]


def _blocks(length: int, block: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering range(length) in steps of `block`."""
    return [(start, min(start + block, length)) for start in range(0, length, block)]


# --- Modules -----------------------------------------------------------------------------------


def _fan_in_init(in_axis: int | tuple[int, ...], out_axis: int | tuple[int, ...]) -> nn.initializers.Initializer:
    """LeCun-normal over the axes a weight actually contracts (einsum weights are not 2-D)."""
    return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis)


Weight = Array | QuantizedWeight | LoraWeight


def _weight(module: nn.Module, name: str, init: nn.initializers.Initializer, shape: tuple[int, ...]) -> Weight:
    """The parameter `name` as the tree holds it. A float array goes through `Module.param`, which creates it
    at init and checks its shape after; a quantized or adapted weight is a pytree of several arrays, so it is
    read as stored (the shapes were checked when it was made from a float one)."""
    if module.has_variable("params", name):
        stored = module.get_variable("params", name)
        if isinstance(stored, LoraWeight) or is_quantized(stored):
            return stored
    return module.param(name, init, shape, module.config.param_dtype.jnp)


def _project(equation: str, x: Array, weight: Weight) -> Array:
    """`einsum(equation, x, W)` in x's dtype for x [L, *input axes], plus the low-rank update of an adapted W."""
    if not isinstance(weight, LoraWeight):
        return matmul(equation, x, weight)
    out = matmul(equation, x, weight.base)
    return out + weight.update(x).reshape(out.shape)


@flax.struct.dataclass
class LayerCache:
    """Keys and values of one layer for every slot of a decoding buffer: [B, S, K, H] each."""

    key: Array
    value: Array


class RMSNorm(nn.Module):
    config: GemmaConfig

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param("scale", nn.initializers.zeros_init(), (x.shape[-1],), self.config.param_dtype.jnp)
        return rms_norm(x, scale, self.config.norm_eps)


class Embedder(nn.Module):
    """Token embedding, also the output projection (Gemma ties them)."""

    config: GemmaConfig

    def setup(self) -> None:
        cfg = self.config
        # Std 1/sqrt(D): the sqrt(D) input scaling then gives unit-RMS embeddings, and the tied
        # logits of a unit-RMS hidden state start at unit scale.
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=1, out_axis=0)
        self.embedding = _weight(self, "embedding", init, (cfg.vocab_size, cfg.d_model))

    def encode(self, tokens: Array) -> Array:
        """tokens [B, T] -> the decoder's input [B, T, D]: `scale(lookup(tokens))`."""
        return self.scale(self.lookup(tokens))

    def lookup(self, tokens: Array) -> Array:
        """tokens [B, T] -> embedding rows [B, T, D] in the activation dtype, unscaled."""
        if is_quantized(self.embedding):
            return self.embedding.rows(tokens, self.config.dtype.jnp)
        return self.embedding[tokens].astype(self.config.dtype.jnp)

    def scale(self, x: Array) -> Array:
        """Multiply by sqrt(D), the factor cast to x's dtype first (in bfloat16 sqrt(3072) = 55.4256
        becomes 55.5, as in the reference)."""
        return x * jnp.sqrt(self.config.d_model).astype(x.dtype)

    def logits(self, x: Array) -> Array:
        """Hidden states [B, T, D] -> float32 logits [B, T, V] against the embedding table."""
        return matmul("BTD,VD->BTV", x, self.embedding, preferred_element_type=jnp.float32)


class Attention(nn.Module):
    """Multi-query, grouped-query or multi-head attention (`num_kv_heads` 1, between, or = heads)."""

    config: GemmaConfig

    @nn.compact
    def __call__(
        self, x: Array, positions: Array, mask: Array, cache: LayerCache | None = None, cache_index: Array | None = None
    ) -> tuple[Array, LayerCache | None]:
        """x: [B, T, D]; positions: [B, T]; mask: [B, T, S] from `attention_mask`.

        Without a cache S = T. With one, this step's keys and values are written into it at slot
        `cache_index` and the queries attend over all S slots of the updated cache.
        """
        cfg = self.config
        dtype = cfg.dtype.jnp
        n, k, d, h = cfg.num_heads, cfg.num_kv_heads, cfg.d_model, cfg.head_dim
        w_query = _weight(self, "query", _fan_in_init(1, (0, 2)), (n, d, h))
        w_key = _weight(self, "key", _fan_in_init(1, (0, 2)), (k, d, h))
        w_value = _weight(self, "value", _fan_in_init(1, (0, 2)), (k, d, h))
        w_output = _weight(self, "output", _fan_in_init((0, 1), 2), (n, h, d))

        batch, length = x.shape[:2]
        tokens = x.reshape(batch * length, d)  # [B, T, D] -> [L, D]
        query = _project("LD,NDH->LNH", tokens, w_query).reshape(batch, length, n, h)  # [L, N, H] -> [B, T, N, H]
        key = _project("LD,KDH->LKH", tokens, w_key).reshape(batch, length, k, h)  # [L, K, H] -> [B, S, K, H]
        value = _project("LD,KDH->LKH", tokens, w_value).reshape(batch, length, k, h)
        # Scale after RoPE, as the reference does; rotation and scaling commute only up to rounding.
        query = apply_rope(query, positions, cfg.rope_base) * jnp.asarray(h**-0.5, dtype)
        key = apply_rope(key, positions, cfg.rope_base)

        if cache is None:
            # Keys after a block's last query are masked for the whole block, so skip them.
            encoded = jnp.concatenate([
                attend(query[:, start:stop], key[:, :stop], value[:, :stop], mask[:, start:stop, :stop])
                for start, stop in _blocks(length, cfg.query_block)
            ], axis=1)
        else:
            offset = (0, cache_index, 0, 0)
            key = jax.lax.dynamic_update_slice(cache.key, key.astype(cache.key.dtype), offset)  # [B, S, K, H]
            value = jax.lax.dynamic_update_slice(cache.value, value.astype(cache.value.dtype), offset)
            cache = LayerCache(key=key, value=value)
            encoded = attend(query, key.astype(dtype), value.astype(dtype), mask)
        encoded = encoded.reshape(batch * length, n, h)  # [B, T, N, H] -> [L, N, H]
        return _project("LNH,NHD->LD", encoded, w_output).reshape(x.shape), cache  # [L, D] -> [B, T, D]


class FeedForward(nn.Module):
    """GeGLU: down(gelu_tanh(x W_gate) * (x W_up)), no biases."""

    config: GemmaConfig

    @nn.compact
    def __call__(self, x: Array) -> Array:
        cfg = self.config
        w_gate = _weight(self, "gate", _fan_in_init(0, 1), (cfg.d_model, cfg.ffw_dim))
        w_up = _weight(self, "up", _fan_in_init(0, 1), (cfg.d_model, cfg.ffw_dim))
        w_down = _weight(self, "down", _fan_in_init(0, 1), (cfg.ffw_dim, cfg.d_model))
        tokens = x.reshape(-1, x.shape[-1])  # [B, T, D] -> [L, D]
        gate = jax.nn.gelu(_project("LD,DF->LF", tokens, w_gate), approximate=True)
        up = _project("LD,DF->LF", tokens, w_up)
        return _project("LF,FD->LD", gate * up, w_down).reshape(x.shape)  # [L, D] -> [B, T, D]


class Block(nn.Module):
    """Pre-norm residual block. Gemma 1 has no post-attention or post-feed-forward norms."""

    config: GemmaConfig

    @nn.compact
    def __call__(
        self, x: Array, positions: Array, mask: Array, cache: LayerCache | None = None, cache_index: Array | None = None
    ) -> tuple[Array, LayerCache | None]:
        attended, cache = Attention(self.config, name="attention")(
            RMSNorm(self.config, name="pre_attention_norm")(x), positions, mask, cache, cache_index
        )
        x = x + attended
        x = x + FeedForward(self.config, name="ffw")(RMSNorm(self.config, name="pre_ffw_norm")(x))
        return x, cache
