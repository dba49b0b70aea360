"""Masked next-token cross-entropy without materialising the logits.

The loss is `sum(xent * mask) / sum(mask)` over tokens whose `mask` is set
(non-padding; for SFT, answer tokens only). With Gemma's 256k vocabulary, logits for one 8192-token
row are 8.4 GB in float32, so `chunked_cross_entropy` walks the flattened tokens in chunks: each
step projects C hidden states onto the vocabulary, reduces them to per-token losses and drops the
[C, V] logits. The step is rematerialised (`jax.checkpoint`), so the backward pass recomputes each
chunk's logits rather than keeping all of them alive as scan residuals. That costs one more
logits matmul (4 instead of 3); a chunk_size covering the whole batch skips it, for speed when
the full logits fit.

Optional z-loss (PaLM): `z_loss_weight * log(Z)^2` per token, which keeps the softmax normaliser
near 1 so bfloat16 logits stay in range.

Einsum letters: C tokens of a chunk, D model width, V vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gemmaflow.model.quant import Array, QuantizedWeight, dense


class Loss(NamedTuple):
    """`total` is what to differentiate: `cross_entropy + z_loss_weight * z_loss`."""

    total: Array
    cross_entropy: Array  # masked mean over tokens
    z_loss: Array  # masked mean of log(Z)^2, unweighted
    num_tokens: Array  # sum(mask)


def token_cross_entropy(logits: Array, targets: Array) -> tuple[Array, Array]:
    """float32 logits [..., V] and targets [...] -> (cross-entropy, log Z) of each token, [...] each."""
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return log_z - target_logit, log_z


def _reduce(xent_sum: Array, z_sum: Array, num_tokens: Array, z_loss_weight: float) -> Loss:
    denominator = jnp.maximum(num_tokens, 1.0)  # a batch with nothing to score has loss 0, not NaN
    cross_entropy, z_loss = xent_sum / denominator, z_sum / denominator
    return Loss(cross_entropy + z_loss_weight * z_loss, cross_entropy, z_loss, num_tokens)


def cross_entropy(logits: Array, targets: Array, mask: Array, z_loss_weight: float = 0.0) -> Loss:
    """The reference loss from full logits [B, T, V]: simple, but O(B T V) memory."""
    mask = mask.astype(jnp.float32)
    xent, log_z = token_cross_entropy(logits.astype(jnp.float32), targets)
    return _reduce(jnp.sum(xent * mask), jnp.sum(jnp.square(log_z) * mask), jnp.sum(mask), z_loss_weight)


def chunked_cross_entropy(
    hidden: Array,
    embedding: Array | QuantizedWeight,
    targets: Array,
    mask: Array,
    *,
    chunk_size: int = 512,
    z_loss_weight: float = 0.0,
) -> Loss:
    """The loss of tied logits `hidden @ embedding^T`, computed `chunk_size` tokens at a time.

    hidden: [B, T, D] final-normed states (`Gemma.hidden_states`); embedding: [V, D] (the tied
    table, cast to hidden's dtype like `Embedder.logits`); targets, mask: [B, T]. Peak memory for
    the logits is chunk_size x V float32 instead of B x T x V. Equal to `cross_entropy` on
    `Embedder.logits(hidden)` up to float32 summation order.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    d_model = hidden.shape[-1]
    hidden = hidden.reshape(-1, d_model)  # [B, T, D] -> [B*T, D]
    chunk_size = max(1, min(chunk_size, hidden.shape[0]))  # no padding beyond one short batch
    targets = targets.reshape(-1)  # [B, T] -> [B*T]
    mask = mask.reshape(-1).astype(jnp.float32)
    padding = -hidden.shape[0] % chunk_size  # pad to whole chunks; padded tokens have mask 0
    hidden = jnp.pad(hidden, ((0, padding), (0, 0))).reshape(-1, chunk_size, d_model)  # [chunks, C, D]
    targets = jnp.pad(targets, (0, padding)).reshape(-1, chunk_size)  # [chunks, C]
    mask = jnp.pad(mask, (0, padding)).reshape(-1, chunk_size)  # [chunks, C]
    table = dense(embedding, hidden.dtype)  # a quantized table is dequantized once per call

    def chunk_sums(chunk: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        chunk_hidden, chunk_targets, chunk_mask = chunk
        logits = jnp.einsum("CD,VD->CV", chunk_hidden, table, preferred_element_type=jnp.float32)
        xent, log_z = token_cross_entropy(logits, chunk_targets)
        return jnp.sum(xent * chunk_mask), jnp.sum(jnp.square(log_z) * chunk_mask)

    if hidden.shape[0] == 1:  # one chunk: recomputing would save nothing, so keep the logits for backward
        xent_sum, z_sum = chunk_sums((hidden[0], targets[0], mask[0]))
    else:
        xent_sums, z_sums = jax.lax.map(jax.checkpoint(chunk_sums), (hidden, targets, mask))  # [chunks] each
        xent_sum, z_sum = jnp.sum(xent_sums), jnp.sum(z_sums)
    return _reduce(xent_sum, z_sum, jnp.sum(mask), z_loss_weight)


def token_log_probs(
    hidden: Array, embedding: Array | QuantizedWeight, targets: Array, *, chunk_size: int = 512
) -> tuple[Array, Array]:
    """log p(target) and the entropy of the next-token distribution at every slot, [B, T] each (float32).

    What DPO and REINFORCE need per token, computed `chunk_size` tokens at a time like
    `chunked_cross_entropy` (rematerialised), so the [B, T, V] logits never exist at once.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    batch, length, d_model = hidden.shape
    flat = hidden.reshape(-1, d_model)
    chunk_size = max(1, min(chunk_size, flat.shape[0]))
    padding = -flat.shape[0] % chunk_size
    chunks = jnp.pad(flat, ((0, padding), (0, 0))).reshape(-1, chunk_size, d_model)
    chunk_targets = jnp.pad(targets.reshape(-1), (0, padding)).reshape(-1, chunk_size)
    table = dense(embedding, hidden.dtype)  # a quantized table is dequantized once per call

    def per_token(chunk: tuple[Array, Array]) -> tuple[Array, Array]:
        chunk_hidden, chunk_target = chunk
        logits = jnp.einsum("CD,VD->CV", chunk_hidden, table, preferred_element_type=jnp.float32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
        return jnp.take_along_axis(log_probs, chunk_target[:, None], axis=-1)[:, 0], entropy

    log_p, entropy = jax.lax.map(jax.checkpoint(per_token), (chunks, chunk_targets))
    unpad = slice(0, batch * length)
    return log_p.reshape(-1)[unpad].reshape(batch, length), entropy.reshape(-1)[unpad].reshape(batch, length)
