import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.loss import chunked_cross_entropy, cross_entropy


def batch(seed: int = 0, b: int = 3, t: int = 37, d: int = 16, v: int = 50):
    rng = np.random.default_rng(seed)
    hidden = jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32)
    embedding = jnp.asarray(rng.normal(size=(v, d)) / math.sqrt(d), jnp.float32)
    targets = jnp.asarray(rng.integers(0, v, (b, t)), jnp.int32)
    mask = jnp.asarray(rng.random((b, t)) < 0.7, jnp.int32)
    return hidden, embedding, targets, mask


def naive(hidden, embedding, targets, mask, z_loss_weight=0.0):
    return cross_entropy(jnp.einsum("BTD,VD->BTV", hidden, embedding), targets, mask, z_loss_weight)


def test_cross_entropy_by_hand():
    # Uniform logits over 4 classes: every token's loss is log 4 and log Z is log 4.
    loss = cross_entropy(jnp.zeros((1, 2, 4)), jnp.array([[0, 3]]), jnp.array([[1, 1]]), z_loss_weight=0.5)
    assert float(loss.cross_entropy) == pytest.approx(math.log(4))
    assert float(loss.z_loss) == pytest.approx(math.log(4) ** 2)
    assert float(loss.total) == pytest.approx(math.log(4) + 0.5 * math.log(4) ** 2)
    # One confident correct token and one masked-out wrong token: the mean ignores the latter.
    logits = jnp.array([[[5.0, 0.0], [5.0, 0.0]]])
    loss = cross_entropy(logits, jnp.array([[0, 1]]), jnp.array([[1, 0]]))
    assert float(loss.cross_entropy) == pytest.approx(math.log1p(math.exp(-5.0)), rel=1e-5)
    assert float(loss.num_tokens) == 1.0


@pytest.mark.parametrize("chunk_size", [1, 16, 37, 512])  # 111 tokens: uneven chunks, one chunk, larger than all
@pytest.mark.parametrize("z_loss_weight", [0.0, 1e-4])
def test_chunked_equals_naive(chunk_size, z_loss_weight):
    hidden, embedding, targets, mask = batch()
    chunked = jax.jit(functools.partial(chunked_cross_entropy, chunk_size=chunk_size, z_loss_weight=z_loss_weight))(
        hidden, embedding, targets, mask)
    reference = naive(hidden, embedding, targets, mask, z_loss_weight)
    assert float(chunked.total) == pytest.approx(float(reference.total), abs=1e-6)
    assert float(chunked.cross_entropy) == pytest.approx(float(reference.cross_entropy), abs=1e-6)
    assert float(chunked.z_loss) == pytest.approx(float(reference.z_loss), rel=1e-6)  # ~19: float32 relative
    assert float(chunked.num_tokens) == float(reference.num_tokens)
    assert float(reference.num_tokens) == float(mask.sum()) < mask.size  # the mask really masks


def test_chunked_gradient_equals_naive():
    hidden, embedding, targets, mask = batch(seed=1)

    def chunked_loss(hidden, embedding):
        return chunked_cross_entropy(hidden, embedding, targets, mask, chunk_size=16, z_loss_weight=1e-3).total

    def naive_loss(hidden, embedding):
        return naive(hidden, embedding, targets, mask, 1e-3).total

    got = jax.jit(jax.grad(chunked_loss, argnums=(0, 1)))(hidden, embedding)
    want = jax.jit(jax.grad(naive_loss, argnums=(0, 1)))(hidden, embedding)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-6)
    assert float(jnp.abs(got[0][mask == 0]).max()) == 0.0  # masked tokens get no gradient
    assert float(jnp.abs(got[1]).max()) > 0.0


def test_nothing_to_score_gives_zero_not_nan():
    hidden, embedding, targets, mask = batch()
    loss = chunked_cross_entropy(hidden, embedding, targets, jnp.zeros_like(mask), chunk_size=16)
    assert float(loss.total) == 0.0 and float(loss.num_tokens) == 0.0


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_cross_entropy(*batch(), chunk_size=0)


def test_chunked_gradient_never_holds_the_full_logits():
    """XLA's own buffer accounting: the compiled gradient's scratch memory is about one chunk's logits and
    their gradient (2 x C x V floats), not T x V."""
    t, d, v, chunk = 4096, 32, 8192, 256
    hidden = jax.ShapeDtypeStruct((1, t, d), jnp.float32)
    embedding = jax.ShapeDtypeStruct((v, d), jnp.float32)
    targets = jax.ShapeDtypeStruct((1, t), jnp.int32)
    full_logits_bytes = t * v * 4  # 128 MiB

    def scratch_bytes(loss_fn):
        grad = jax.jit(jax.grad(lambda h, e, y, m: loss_fn(h, e, y, m).total, argnums=(0, 1)))
        return grad.lower(hidden, embedding, targets, targets).compile().memory_analysis().temp_size_in_bytes

    chunked = scratch_bytes(functools.partial(chunked_cross_entropy, chunk_size=chunk))
    assert chunked < 3 * chunk * v * 4 < full_logits_bytes / 4, chunked
    assert scratch_bytes(naive) >= full_logits_bytes  # the measurement does see a materialised [T, V]
