import math

import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.layers import apply_rope, attention_mask, rms_norm


def test_rms_norm_by_hand():
    # mean([3^2, 4^2]) = 12.5, so x / sqrt(12.5) = [0.848528, 1.131371]; gains (1 + scale) = [1, 2].
    out = rms_norm(jnp.array([[3.0, 4.0]]), jnp.array([0.0, 1.0]), eps=0.0)
    np.testing.assert_allclose(out, [[0.848528, 2.262742]], rtol=1e-6)


def test_rms_norm_eps_is_inside_the_root():
    out = rms_norm(jnp.array([[0.0, 0.0, 0.003]]), jnp.zeros(3), eps=1e-6)
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.003 / math.sqrt(0.003**2 / 3 + 1e-6)]], rtol=1e-6)


def test_rms_norm_computes_in_float32_and_returns_the_input_dtype():
    x = jnp.array([[1000.0, 1001.0, 1002.0, 1003.0]])
    scale = jnp.array([0.5, -0.5, 0.25, 0.0])
    out = rms_norm(x.astype(jnp.bfloat16), scale, eps=1e-6)
    assert out.dtype == jnp.bfloat16
    expected = rms_norm(x.astype(jnp.bfloat16).astype(jnp.float32), scale, eps=1e-6).astype(jnp.bfloat16)
    np.testing.assert_array_equal(out, expected)


def test_rope_by_hand():
    # head_dim 4: timescales base^(0/4) = 1 and base^(2/4) = 100; halves are (0, 1) and (2, 3).
    x = jnp.eye(4).reshape(1, 4, 1, 4)  # one batch row, 4 tokens, 1 head; token t is the unit vector e_t
    out = apply_rope(x, positions=jnp.array([[1, 1, 1, 1]]), base=10_000.0)[0, :, 0]
    c1, s1, c2, s2 = math.cos(1.0), math.sin(1.0), math.cos(0.01), math.sin(0.01)
    expected = [
        [c1, 0, s1, 0],  # e0 = x1[0]: rotates into x2[0]
        [0, c2, 0, s2],
        [-s1, 0, c1, 0],  # e2 = x2[0]: x1 gets -sin
        [0, -s2, 0, c2],
    ]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_rope_at_position_zero_is_the_identity():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 2, 8)), jnp.float32)
    np.testing.assert_array_equal(apply_rope(x, jnp.zeros((2, 3), jnp.int32), 10_000.0), x)


@pytest.mark.parametrize("shift", [1, 17, 1000, 7000])
def test_rope_dot_products_depend_only_on_the_position_difference(shift):
    q, k = jnp.asarray(np.random.default_rng(1).normal(size=(2, 1, 1, 1, 64)), jnp.float32)
    positions = jnp.array([[3, 10]])  # query at 3, key at 10

    def score(offset):
        rotated_q = apply_rope(q, positions[:, :1] + offset, 10_000.0)
        rotated_k = apply_rope(k, positions[:, 1:] + offset, 10_000.0)
        return float(jnp.sum(rotated_q * rotated_k))

    # float32 angles near position 7000 carry ~4e-4 rad of rounding, as in every float32 implementation.
    assert score(shift) == pytest.approx(score(0), abs=1e-3)
    # ... and does depend on the difference itself.
    moved_k = apply_rope(k, positions[:, 1:] + 1, 10_000.0)
    assert abs(float(jnp.sum(apply_rope(q, positions[:, :1], 10_000.0) * moved_k)) - score(0)) > 0.1


def test_rope_keeps_bfloat16_and_norms():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 5, 3, 16)), jnp.float32)
    out = apply_rope(x.astype(jnp.bfloat16), jnp.arange(5)[None] * 300, 10_000.0)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(jnp.linalg.norm(out.astype(jnp.float32), axis=-1), jnp.linalg.norm(x, axis=-1),
                               rtol=2e-2)


def test_attention_mask_is_causal_within_segments_and_skips_padding():
    segments = jnp.array([[1, 1, 2, 2, 0]])
    slots = jnp.arange(5)
    expected = np.array([
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0],  # padding attends to nothing
    ], dtype=bool)
    np.testing.assert_array_equal(attention_mask(segments, segments, slots, slots)[0], expected)


def test_attention_mask_for_a_decode_step_sees_written_slots_only():
    key_segments = jnp.array([[0, 1, 1, 1, 0, 0]])  # slot 0 left padding; slots 4, 5 not yet written
    mask = attention_mask(jnp.array([[1]]), key_segments, jnp.array([3]), jnp.arange(6))
    np.testing.assert_array_equal(mask[0, 0], [False, True, True, True, False, False])
