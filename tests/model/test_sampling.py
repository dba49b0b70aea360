import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.config import tiny
from gemmaflow.model.sampling import Sampler, SamplerKind, generate
from tests.model.utils import forward, random_params, unpacked

CONFIG = tiny(vocab_size=101)


@pytest.fixture(scope="module")
def params():
    return random_params(CONFIG, seed=3, block_gain=3.0)  # gain: see random_params


def greedy_without_cache(params, prompt, max_length, stop_tokens=()):
    """The reference: rerun the whole sequence for every new token, one prompt at a time (right-padded
    to max_length so that one compile serves every length)."""
    tokens = list(prompt)
    while len(tokens) < max_length:
        row = jnp.asarray([tokens + [0] * (max_length - len(tokens))], jnp.int32)
        positions, _ = unpacked(row)
        segments = (positions < len(tokens)).astype(jnp.int32)
        tokens.append(int(jnp.argmax(forward(CONFIG)(params, row, positions, segments)[0, len(tokens) - 1])))
        if tokens[-1] in stop_tokens:
            break
    return tokens


PROMPTS = [[2, 17, 33, 4, 90, 12, 7], [2, 45], [2, 8, 8, 61, 5]]


def test_cached_batched_greedy_equals_uncached_one_prompt_at_a_time(params):
    out = generate(params, CONFIG, PROMPTS, max_length=16, stop_tokens=())
    for row, prompt in enumerate(PROMPTS):
        expected = greedy_without_cache(params, prompt, 16)
        assert out.lengths[row] == 16
        assert out.tokens[row].tolist() == expected


def test_stop_tokens_end_a_row_and_pad_the_rest(params):
    free = generate(params, CONFIG, PROMPTS, max_length=16, stop_tokens=())
    stop = int(free.tokens[1, len(PROMPTS[1]) + 2])  # row 1's third generated token
    out = generate(params, CONFIG, PROMPTS, max_length=16, stop_tokens=(stop,))
    for row, prompt in enumerate(PROMPTS):
        continuation = out.continuations()[row]
        expected = greedy_without_cache(params, prompt, 16, stop_tokens=(stop,))[len(prompt):]
        assert continuation == expected
        assert out.tokens[row, out.lengths[row]:].tolist() == [0] * (16 - out.lengths[row])
    assert out.continuations()[1][-1] == stop and len(out.continuations()[1]) <= 3


def test_invalid_requests_are_refused(params):
    with pytest.raises(ValueError, match="no room"):
        generate(params, CONFIG, PROMPTS, max_length=7)
    with pytest.raises(ValueError, match="empty prompt"):
        generate(params, CONFIG, [[2], []], max_length=8)
    with pytest.raises(ValueError, match="needs an rng"):
        generate(params, CONFIG, PROMPTS, max_length=9, sampler=Sampler(SamplerKind.TOP_K))
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(params, CONFIG, PROMPTS, max_length=CONFIG.max_seq_len + 1)


@pytest.mark.parametrize("overrides", [{"temperature": 0.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}])
def test_invalid_samplers_are_refused(overrides):
    with pytest.raises(ValueError):
        Sampler(SamplerKind.TOP_P, **overrides)


# Sampler contracts, on 4000 independent rows of the same 8 logits.
LOGITS = jnp.log(jnp.array([0.30, 0.25, 0.15, 0.10, 0.08, 0.06, 0.04, 0.02]))[jnp.array([3, 0, 6, 1, 7, 2, 5, 4])]
ROWS = jnp.broadcast_to(LOGITS, (4000, 8))
PROBS = np.exp(np.asarray(LOGITS))


def frequencies(sampler):
    tokens = np.asarray(jax.jit(sampler)(ROWS, jax.random.key(7)))
    return np.bincount(tokens, minlength=8) / len(tokens)


def test_greedy_is_the_argmax():
    assert frequencies(Sampler())[int(np.argmax(PROBS))] == 1.0


def test_random_follows_the_softmax():
    np.testing.assert_allclose(frequencies(Sampler(SamplerKind.RANDOM)), PROBS, atol=0.03)


def test_low_temperature_sharpens():
    assert frequencies(Sampler(SamplerKind.RANDOM, temperature=0.1))[int(np.argmax(PROBS))] > 0.8


def test_top_k_never_leaves_the_top_k_and_renormalises():
    freq = frequencies(Sampler(SamplerKind.TOP_K, top_k=3))
    top3 = np.argsort(-PROBS)[:3]
    assert set(np.flatnonzero(freq)) == set(top3.tolist())
    np.testing.assert_allclose(freq[top3], PROBS[top3] / PROBS[top3].sum(), atol=0.03)


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    # Sorted probabilities 0.30, 0.25, 0.15, ... reach 0.7 with the third token: exactly three kept.
    freq = frequencies(Sampler(SamplerKind.TOP_P, top_p=0.7))
    top3 = np.argsort(-PROBS)[:3]
    assert set(np.flatnonzero(freq)) == set(top3.tolist())
    np.testing.assert_allclose(freq[top3], PROBS[top3] / PROBS[top3].sum(), atol=0.03)
    # A tiny p still keeps the most likely token.
    assert frequencies(Sampler(SamplerKind.TOP_P, top_p=1e-6))[int(np.argmax(PROBS))] == 1.0


def test_sampled_generation_is_reproducible_and_differs_across_keys(params):
    sampler = Sampler(SamplerKind.TOP_K, top_k=20, temperature=2.0)
    first = generate(params, CONFIG, PROMPTS, max_length=16, sampler=sampler, rng=jax.random.key(1), stop_tokens=())
    again = generate(params, CONFIG, PROMPTS, max_length=16, sampler=sampler, rng=jax.random.key(1), stop_tokens=())
    other = generate(params, CONFIG, PROMPTS, max_length=16, sampler=sampler, rng=jax.random.key(2), stop_tokens=())
    np.testing.assert_array_equal(first.tokens, again.tokens)
    assert not np.array_equal(first.tokens, other.tokens)
