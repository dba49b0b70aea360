import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.config import DType, gemma_2b, gemma_7b, tiny
from gemmaflow.model.gemma import count_params, init_params, train_flops_per_token
from gemmaflow.model.layers import Embedder
from tests.model.utils import forward, random_params, unpacked

CONFIG = tiny(vocab_size=101)


@pytest.fixture(scope="module")
def params():
    return random_params(CONFIG)


def test_param_counts_match_the_released_models():
    two, seven = count_params(gemma_2b()), count_params(gemma_7b())
    assert (two.embedding, two.other) == (524_288_000, 1_981_884_416)  # 256,000 rows, as released
    assert (seven.embedding, seven.other) == (786_432_000, 7_751_248_896)


def test_param_count_formula_for_a_grouped_query_config():
    config = tiny(vocab_size=100, num_heads=4, num_kv_heads=2)
    d, n, k, h, f = config.d_model, config.num_heads, config.num_kv_heads, config.head_dim, config.ffw_dim
    per_layer = 2 * n * d * h + 2 * k * d * h + 3 * d * f + 2 * d  # q, o; k, v; gate, up, down; two norms
    count = count_params(config)
    assert count.embedding == 100 * d
    assert count.other == config.num_layers * per_layer + d  # + final norm
    assert count.total == count.embedding + count.other


def test_shapes_and_dtypes(params):
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, CONFIG.vocab_size, (3, 10)), jnp.int32)
    positions, segments = unpacked(tokens)
    logits = forward(CONFIG)(params, tokens, positions, segments)
    hidden = forward(CONFIG, "hidden_states")(params, tokens, positions, segments)
    assert logits.shape == (3, 10, CONFIG.vocab_size) and logits.dtype == jnp.float32
    assert hidden.shape == (3, 10, CONFIG.d_model)
    np.testing.assert_allclose(logits, hidden @ params["embedder"]["embedding"].T, atol=1e-5)  # tied


@pytest.mark.slow  # compiling for bfloat16 on CPU takes seconds
def test_bfloat16_compute_keeps_float32_weights_and_logits(params):
    config = tiny(vocab_size=101, dtype=DType.BFLOAT16)
    tokens = jnp.asarray(np.random.default_rng(2).integers(0, config.vocab_size, (2, 12)), jnp.int32)
    positions, segments = unpacked(tokens)
    hidden = forward(config, "hidden_states")(params, tokens, positions, segments)
    logits = forward(config)(params, tokens, positions, segments)
    assert hidden.dtype == jnp.bfloat16 and logits.dtype == jnp.float32
    reference = forward(CONFIG)(params, tokens, positions, segments)
    assert float(jnp.max(jnp.abs(logits - reference))) < 0.1 * float(jnp.max(jnp.abs(reference)))


def test_embedding_scale_is_rounded_to_the_activation_dtype():
    """As in Gemma's reference implementation, in bfloat16 sqrt(d_model) is cast before multiplying (sqrt(64) = 8
    is exact, so use 3072)."""
    config = tiny(vocab_size=101, d_model=3072, dtype=DType.BFLOAT16)
    table = jnp.ones((101, 3072))
    x = Embedder(config).apply({"params": {"embedding": table}}, jnp.array([[5]]), method=Embedder.encode)
    assert x.dtype == jnp.bfloat16 and float(x[0, 0, 0]) == 55.5


def test_causal_later_tokens_do_not_change_earlier_logits(params):
    tokens = jnp.asarray(np.random.default_rng(3).integers(0, CONFIG.vocab_size, (1, 12)), jnp.int32)
    changed = tokens.at[0, 8:].set((tokens[0, 8:] + 1) % CONFIG.vocab_size)
    positions, segments = unpacked(tokens)
    before = forward(CONFIG)(params, tokens, positions, segments)
    after = forward(CONFIG)(params, changed, positions, segments)
    np.testing.assert_array_equal(before[0, :8], after[0, :8])
    assert not np.allclose(before[0, 8:], after[0, 8:])


def packed_row(first_doc, second_doc, padding):
    """One row: document 1, document 2, padding; positions restart at 0 for each document."""
    tokens = jnp.concatenate([first_doc, second_doc, jnp.zeros(padding, jnp.int32)])[None]
    positions = jnp.concatenate([jnp.arange(len(first_doc)), jnp.arange(len(second_doc)), jnp.zeros(padding, int)])
    segments = jnp.array([1] * len(first_doc) + [2] * len(second_doc) + [0] * padding)
    return tokens, positions[None], segments[None]


def test_segment_isolation_in_a_packed_row(params):
    rng = np.random.default_rng(4)
    first = jnp.asarray(rng.integers(0, CONFIG.vocab_size, (7,)), jnp.int32)
    second = jnp.asarray(rng.integers(0, CONFIG.vocab_size, (5,)), jnp.int32)
    other_first = jnp.asarray(rng.integers(0, CONFIG.vocab_size, (7,)), jnp.int32)

    logits = forward(CONFIG)(params, *packed_row(first, second, padding=4))
    changed = forward(CONFIG)(params, *packed_row(other_first, second, padding=4))
    np.testing.assert_array_equal(logits[0, 7:12], changed[0, 7:12])  # document 2 untouched
    assert not np.allclose(logits[0, :7], changed[0, :7])  # document 1 did change

    # And document 2 packed behind document 1 is the same as document 2 alone in its own row.
    alone = forward(CONFIG)(params, second[None], *unpacked(second[None]))
    np.testing.assert_allclose(logits[0, 7:12], alone[0], atol=1e-5)


def test_padding_does_not_leak_into_documents(params):
    first = jnp.asarray(np.random.default_rng(5).integers(0, CONFIG.vocab_size, (6,)), jnp.int32)
    second = jnp.asarray(np.random.default_rng(6).integers(0, CONFIG.vocab_size, (3,)), jnp.int32)
    tokens, positions, segments = packed_row(first, second, padding=3)
    logits = forward(CONFIG)(params, tokens, positions, segments)
    garbage = forward(CONFIG)(params, tokens.at[0, 9:].set(42), positions, segments)
    np.testing.assert_array_equal(logits[0, :9], garbage[0, :9])


@pytest.mark.slow
def test_init_params_scales():
    """A fresh model: norms are the identity gain, embeddings and projections fan-in scaled."""
    config = tiny(vocab_size=4096)
    params = init_params(config, jax.random.key(0))
    assert all(float(jnp.abs(leaf).max()) == 0.0 for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if path[-1].key == "scale")
    assert float(jnp.std(params["embedder"]["embedding"])) == pytest.approx(config.d_model**-0.5, rel=0.05)
    assert float(jnp.std(params["layers_0"]["ffw"]["down"])) == pytest.approx(config.ffw_dim**-0.5, rel=0.1)
    assert float(jnp.std(params["layers_0"]["attention"]["output"])) == pytest.approx(
        (config.num_heads * config.head_dim) ** -0.5, rel=0.1)


def test_train_flops_per_token_by_hand():
    config = tiny(vocab_size=100)  # D 64, 2 layers, N 4, K 1, H 16, F 128
    ffw, qkv, out, attention = 3 * 2 * 64 * 128, 2 * 64 * 6 * 16, 2 * 4 * 16 * 64, 4 * 10 * 4 * 16 / 2
    assert train_flops_per_token(config, seq_len=10) == 3 * (2 * (ffw + qkv + out + attention) + 2 * 64 * 100)
    # Gemma 2B at 8192 tokens: ~6 x 2.5e9 parameters plus attention, as the usual estimate says.
    assert 1.5e10 < train_flops_per_token(gemma_2b(), 8192) < 2.0e10


@pytest.mark.parametrize("query_block", [1, 5, 7])  # a row of 12 tokens: many, uneven and two blocks
def test_query_blocks_do_not_change_the_logits(params, query_block):
    first = jnp.asarray(np.random.default_rng(8).integers(0, CONFIG.vocab_size, (7,)), jnp.int32)
    second = jnp.asarray(np.random.default_rng(9).integers(0, CONFIG.vocab_size, (3,)), jnp.int32)
    row = packed_row(first, second, padding=2)
    blocked = forward(dataclasses.replace(CONFIG, query_block=query_block))(params, *row)
    whole = forward(CONFIG)(params, *row)  # query_block 256: one block
    np.testing.assert_allclose(blocked[0, :10], whole[0, :10], atol=1e-5)
