import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.config import tiny
from gemmaflow.model.sampling import BeamSampler, generate
from tests.model.utils import forward, random_params, unpacked

CONFIG = tiny(vocab_size=101, num_layers=1)  # one layer: each test compiles a sampler, this halves the time
PROMPTS = [[2, 17, 33, 4, 90, 12, 7], [2, 45], [2, 8, 8, 61, 5]]


@pytest.fixture(scope="module")
def params():
    return random_params(CONFIG, seed=3, block_gain=3.0)


def log_probs(params, rows):
    """Uncached next-token log-probabilities after each row (equal-length rows [R, T]) -> [R, V]."""
    rows = jnp.asarray(rows, jnp.int32)
    return jax.nn.log_softmax(forward(CONFIG)(params, rows, *unpacked(rows))[:, -1])


pytestmark = pytest.mark.slow  # each test compiles a beam search (a few seconds)


def test_as_many_beams_as_tokens_finds_the_best_two_token_continuation(params):
    """With W = V beams, two steps of beam search are exhaustive: compare with brute force, uncached."""
    vocab, prompt = CONFIG.vocab_size, PROMPTS[0]
    out = generate(params, CONFIG, [prompt], max_length=len(prompt) + 2, sampler=BeamSampler(vocab), stop_tokens=())
    first = np.asarray(log_probs(params, [prompt]))[0]  # [V]
    second = np.asarray(log_probs(params, [[*prompt, t] for t in range(vocab)]))  # [V, V]
    totals = first[:, None] + second
    best = np.unravel_index(np.argmax(totals), totals.shape)
    assert out.continuations()[0] == [int(best[0]), int(best[1])]
    assert out.scores[0] == pytest.approx(totals.max(), abs=1e-4)


def test_batched_prompts_of_different_lengths_search_as_they_would_alone(params):
    together = generate(params, CONFIG, PROMPTS, max_length=16, sampler=BeamSampler(3), stop_tokens=())
    alone = generate(params, CONFIG, PROMPTS[1:2], max_length=16, sampler=BeamSampler(3), stop_tokens=())
    assert together.continuations()[1] == alone.continuations()[0]  # the most left-padded prompt
    assert together.scores[1] == pytest.approx(alone.scores[0], abs=1e-4)


def test_a_stop_token_ends_a_beam(params):
    free = generate(params, CONFIG, PROMPTS, max_length=16, sampler=BeamSampler(3), stop_tokens=())
    stop = free.continuations()[1][2]
    out = generate(params, CONFIG, PROMPTS, max_length=16, sampler=BeamSampler(3), stop_tokens=(stop,))
    for row, continuation in enumerate(out.continuations()):
        assert stop not in continuation[:-1]
        assert continuation[-1] == stop or out.lengths[row] == 16
        assert out.tokens[row, out.lengths[row]:].tolist() == [0] * (16 - out.lengths[row])
    assert stop in out.continuations()[1]


def test_bad_beam_width_is_refused():
    with pytest.raises(ValueError, match="num_beams"):
        BeamSampler(0)
