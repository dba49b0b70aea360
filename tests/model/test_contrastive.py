"""Contrastive search (`ContrastiveSampler`) against greedy decoding and an uncached reference."""

import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model import GemmaLM
from gemmaflow.model.api import _sampler
from gemmaflow.model.config import tiny
from gemmaflow.model.gemma import Gemma, init_cache
from gemmaflow.model.sampling import ContrastiveSampler, generate
from tests.model.utils import forward, random_params, unpacked

CONFIG = tiny(vocab_size=101, num_layers=1)  # one layer: each test compiles a decoding loop
PROMPTS = [[2, 17, 33, 4, 90, 12, 7], [2, 45]]
MAX_LENGTH = 14
SAMPLER = ContrastiveSampler(top_k=3, alpha=0.6)

pytestmark = pytest.mark.slow  # each test compiles a contrastive search (a few seconds)


@pytest.fixture(scope="module")
def params():
    return random_params(CONFIG, seed=3, block_gain=3.0)  # gain: attention decides (see random_params)


@pytest.fixture(scope="module")
def contrastive(params):
    """The two prompts together, alpha 0.6, top 3, no stop tokens: shared by the tests that compare with it."""
    return generate(params, CONFIG, PROMPTS, max_length=MAX_LENGTH, sampler=SAMPLER, stop_tokens=())


def contrastive_without_cache(params, prompt, max_length, top_k, alpha):
    """The reference, one prompt alone: rerun the whole sequence for the context and again for every
    candidate, in float64 numpy from there (rows right-padded to max_length so one compile serves all)."""

    def run(tokens, method):
        row = jnp.asarray([tokens + [0] * (max_length - len(tokens))], jnp.int32)
        positions, _ = unpacked(row)
        segments = (positions < len(tokens)).astype(jnp.int32)
        return np.asarray(forward(CONFIG, method)(params, row, positions, segments)[0, :len(tokens)], np.float64)

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    tokens = list(prompt)
    while len(tokens) < max_length:
        logits = run(tokens, "__call__")[-1]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        context = unit(run(tokens, "hidden_states"))  # [T, D] every earlier token's hidden state
        best, best_score = None, -np.inf
        for candidate in np.argsort(-logits, kind="stable")[:top_k]:
            hidden = unit(run([*tokens, int(candidate)], "hidden_states")[-1])
            score = (1 - alpha) * probs[candidate] - alpha * max(float(hidden @ h) for h in context)
            if score > best_score:
                best, best_score = int(candidate), score
        tokens.append(best)
    return tokens


def test_cached_hidden_states_are_the_uncached_ones(params):
    """`call_with_cache_hidden`, the contrastive search's source of hidden states, on a prefill."""
    row = jnp.asarray([PROMPTS[0]], jnp.int32)
    positions, segments = unpacked(row)
    model = Gemma(CONFIG)
    logits, hidden, _ = model.apply({"params": params}, row, positions, segments, init_cache(CONFIG, 1, 8),
                                    method=Gemma.call_with_cache_hidden)
    np.testing.assert_allclose(hidden, forward(CONFIG, "hidden_states")(params, row, positions, segments), atol=1e-5)
    np.testing.assert_allclose(logits, forward(CONFIG)(params, row, positions, segments), atol=1e-4)


def test_alpha_zero_is_greedy(params, contrastive):
    greedy = generate(params, CONFIG, PROMPTS, max_length=MAX_LENGTH, stop_tokens=())
    plain = generate(params, CONFIG, PROMPTS, max_length=MAX_LENGTH, sampler=ContrastiveSampler(top_k=3, alpha=0.0),
                     stop_tokens=())
    np.testing.assert_array_equal(plain.tokens, greedy.tokens)
    np.testing.assert_array_equal(plain.lengths, greedy.lengths)
    # The penalty does change these continuations, so the equality above says alpha 0 switched it off.
    assert not np.array_equal(contrastive.tokens, greedy.tokens)


def test_batched_cached_search_equals_the_uncached_reference(params, contrastive):
    for row, prompt in enumerate(PROMPTS):
        expected = contrastive_without_cache(params, prompt, MAX_LENGTH, SAMPLER.top_k, SAMPLER.alpha)
        assert contrastive.lengths[row] == MAX_LENGTH
        assert contrastive.tokens[row].tolist() == expected


def test_a_left_padded_prompt_generates_what_it_would_alone(params, contrastive):
    alone = generate(params, CONFIG, PROMPTS[1:], max_length=MAX_LENGTH, sampler=SAMPLER, stop_tokens=())
    assert contrastive.continuations()[1] == alone.continuations()[0]  # the left-padded row of the batch


def test_stop_tokens_and_max_length_end_rows(params, contrastive):
    stop = contrastive.continuations()[1][2]  # row 1's third token
    out = generate(params, CONFIG, PROMPTS, max_length=MAX_LENGTH, sampler=SAMPLER, stop_tokens=(stop,))
    for row, free in enumerate(contrastive.continuations()):
        expected = free[:free.index(stop) + 1] if stop in free else free  # rows decode independently
        assert out.continuations()[row] == expected
        assert out.lengths[row] <= MAX_LENGTH
        assert out.tokens[row, out.lengths[row]:].tolist() == [0] * (MAX_LENGTH - out.lengths[row])
    assert out.continuations()[1][-1] == stop and len(out.continuations()[1]) <= 3


def test_gemma_lm_generates_with_the_named_sampler():
    lm = GemmaLM.from_preset("tiny", vocab_size=64, seed=1, num_layers=1)
    ids = [[2, 5, 9, 11], [2, 7]]
    out = lm.generate(ids, max_length=10, sampler="contrastive")
    expected = generate(lm.params, lm.config, ids, max_length=10, sampler=ContrastiveSampler(),
                        stop_tokens=lm.stop_tokens())
    assert out == [row[:length].tolist() for row, length in zip(expected.tokens, expected.lengths, strict=True)]
    assert [row[:len(prompt)] for row, prompt in zip(out, ids, strict=True)] == ids
    configured = ContrastiveSampler(top_k=2, alpha=0.3)
    assert _sampler("contrastive") == ContrastiveSampler() and _sampler(configured) is configured


@pytest.mark.parametrize("arguments", [{"top_k": 0}, {"alpha": -0.1}, {"alpha": 1.5}, {"alpha": float("nan")}])
def test_invalid_arguments_are_refused(arguments):
    with pytest.raises(ValueError):
        ContrastiveSampler(**arguments)

