"""8- and 4-bit weights (model/quant.py): formats, error bounds, and the model computing with them."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from gemmaflow.model.config import preset
from gemmaflow.model.gemma import Gemma, init_params
from gemmaflow.model.quant import (
    NF4_BLOCK,
    NF4_LEVELS,
    Int8Weight,
    NF4Weight,
    dense,
    dequantize_params,
    matmul,
    quantize_int8,
    quantize_nf4,
    quantize_params,
    stored_bytes,
)

CONFIG = preset("tiny", vocab_size=128)


def test_nf4_levels_are_the_normal_quantiles_qlora_defines():
    offset = 0.9677083  # bitsandbytes' create_normal_map: 8 positive, 7 negative quantiles and an exact zero
    positive = norm.ppf(jnp.linspace(offset, 0.5, 9)[:-1])
    negative = -norm.ppf(jnp.linspace(offset, 0.5, 8)[:-1])
    levels = np.sort(np.concatenate([positive, [0.0], negative]))
    np.testing.assert_allclose(NF4_LEVELS, levels / levels.max(), atol=2e-6)


def test_int8_is_per_output_channel_and_within_half_a_step():
    w = jax.random.normal(jax.random.key(0), (4, 64, 16)) * jnp.arange(1, 5)[:, None, None]  # query [N, D, H]
    q = quantize_int8(w, (1,))
    assert q.codes.dtype == jnp.int8 and q.scale.shape == (4, 1, 16)  # one scale per output channel (N, H)
    error = np.abs(np.asarray(q.dequantize(jnp.float32) - w))
    assert (error <= np.asarray(q.scale) / 2 + 1e-6).all()
    np.testing.assert_allclose(np.abs(np.asarray(q.codes)).max(axis=1), 127)  # each channel uses the full range


@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_round_trips_values_on_its_levels_packs_two_codes_per_byte_and_pads(double_quant):
    rng = np.random.default_rng(0)
    absmax = rng.uniform(0.5, 2.0, 7)  # 7 blocks; the weight's 400 values end mid-block (padding)
    codes = rng.integers(0, 16, (7, NF4_BLOCK))
    codes[:, 0] = 15  # each block reaches its absmax
    values = (NF4_LEVELS[codes] * absmax[:, None]).reshape(-1)[:400].reshape(20, 20)
    q = quantize_nf4(jnp.asarray(values), double_quant)
    assert q.packed.shape == (7, NF4_BLOCK // 2) and q.packed.dtype == jnp.uint8 and q.shape == (20, 20)
    assert (q.absmax.dtype == jnp.int8) == double_quant
    restored = np.asarray(q.dequantize(jnp.float32))
    if double_quant:  # the block scales are off by at most half a step of their own int8 scale
        step = float(np.asarray(q.absmax_scale).max())
        np.testing.assert_allclose(restored, values, atol=step / 2 * 1.0001)
    else:
        np.testing.assert_allclose(restored, values, rtol=1e-6, atol=1e-7)


def test_nf4_error_on_gaussian_weights_is_what_4_bits_give():
    w = jax.random.normal(jax.random.key(1), (256, 256))
    q = quantize_nf4(w)
    error = np.asarray(q.dequantize(jnp.float32) - w)
    relative = np.sqrt(np.mean(error**2) / np.mean(np.asarray(w) ** 2))
    assert 0.05 < relative < 0.15  # NF4 on normal data: about 0.1 relative RMS error
    assert np.abs(error).max() <= 0.5 * (NF4_LEVELS[-1] - NF4_LEVELS[-2]) * float(jnp.abs(w).max()) * 1.01


@pytest.mark.parametrize("quantize", [lambda w: quantize_int8(w, (1,)), quantize_nf4,
                                      lambda w: quantize_nf4(w[:, :40])])  # rows of 40: blocks straddle rows
def test_row_lookup_equals_dequantizing_everything(quantize):
    q = quantize(jax.random.normal(jax.random.key(2), (32, 128)))
    index = jnp.asarray([[3, 0, 31], [7, 7, 1]])
    np.testing.assert_array_equal(q.rows(index, jnp.float32), q.dequantize(jnp.float32)[index])


@pytest.mark.parametrize("quantize", [quantize_nf4, lambda w: quantize_int8(w, (0,))])
def test_a_quantized_matmul_and_its_input_gradient_equal_those_of_the_dequantized_weight(quantize):
    w = quantize(jax.random.normal(jax.random.key(3), (64, 96)))
    x = jax.random.normal(jax.random.key(4), (5, 64))
    dense_w = w.dequantize(jnp.float32)
    np.testing.assert_allclose(matmul("LD,DF->LF", x, w), x @ dense_w, rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda x: jnp.sum(jnp.sin(matmul("LD,DF->LF", x, w))))(x)
    expected = jax.grad(lambda x: jnp.sum(jnp.sin(x @ dense_w)))(x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)


def test_quantize_params_covers_projections_and_embedding_and_shrinks_the_model():
    params = init_params(CONFIG, jax.random.key(0))
    nf4 = quantize_params(params, "nf4")
    layer = nf4["layers_0"]
    assert all(isinstance(layer["attention"][n], NF4Weight) for n in ("query", "key", "value", "output"))
    assert all(isinstance(layer["ffw"][n], NF4Weight) for n in ("gate", "up", "down"))
    assert isinstance(nf4["embedder"]["embedding"], NF4Weight)
    assert nf4["final_norm"]["scale"] is params["final_norm"]["scale"]
    assert isinstance(quantize_params(params, "int8")["layers_1"]["ffw"]["down"], Int8Weight)
    weights = CONFIG.vocab_size * CONFIG.d_model + 2 * (CONFIG.num_heads * 2 + 2) * CONFIG.d_model * CONFIG.head_dim \
        + 2 * 3 * CONFIG.d_model * CONFIG.ffw_dim
    norms = (2 * CONFIG.num_layers + 1) * CONFIG.d_model * 4
    assert stored_bytes(params) == 4 * weights + norms
    assert stored_bytes(quantize_params(params, "int8")) < 0.3 * stored_bytes(params)
    assert stored_bytes(nf4) - norms < 0.53 * weights  # 4 bits, int8 block scales, float32 per 256 blocks
    assert stored_bytes(quantize_params(params, "nf4", double_quant=False)) - norms > 0.56 * weights
    back = dequantize_params(nf4, jnp.float32)
    np.testing.assert_array_equal(back["layers_0"]["ffw"]["up"], dense(layer["ffw"]["up"], jnp.float32))


@pytest.mark.parametrize("mode, tolerance", [("int8", 0.02), ("nf4", 0.25)])
def test_the_model_computes_with_quantized_weights_close_to_float(mode, tolerance):
    params = init_params(CONFIG, jax.random.key(0))
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 128, (2, 12)), jnp.int32)
    positions, segments = jnp.broadcast_to(jnp.arange(12), (2, 12)), jnp.ones((2, 12), jnp.int32)
    forward = jax.jit(Gemma(CONFIG).apply)
    exact = forward({"params": params}, tokens, positions, segments)
    quantized = quantize_params(params, mode)
    approx = forward({"params": quantized}, tokens, positions, segments)
    via_dense = forward({"params": dequantize_params(quantized, jnp.float32)}, tokens, positions, segments)
    np.testing.assert_allclose(approx, via_dense, rtol=1e-4, atol=1e-4)  # dequantized at the matmul, same maths
    assert 0 < float(jnp.abs(approx - exact).max()) < tolerance * float(jnp.abs(exact).max())
