import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model.config import tiny
from gemmaflow.model.scoring import ScoringMode, score
from tests.model.utils import forward, random_params, unpacked

CONFIG = tiny(vocab_size=101)
TOKENS = jnp.asarray(np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 9)), jnp.int32)


@pytest.fixture(scope="module")
def params():
    return random_params(CONFIG, seed=5)


def test_logits_mode_is_the_forward_pass(params):
    logits = score(params, CONFIG, TOKENS)
    np.testing.assert_allclose(logits, forward(CONFIG)(params, TOKENS, *unpacked(TOKENS)), atol=1e-6)


def test_loss_mode_is_per_token_cross_entropy(params):
    targets = jnp.roll(TOKENS, -1, axis=1)
    losses = score(params, CONFIG, TOKENS, scoring_mode="loss", target_ids=targets)
    log_probs = jax.nn.log_softmax(score(params, CONFIG, TOKENS, scoring_mode=ScoringMode.LOGITS))
    expected = -np.take_along_axis(np.asarray(log_probs), np.asarray(targets)[..., None], axis=-1)[..., 0]
    assert losses.shape == (2, 9)
    np.testing.assert_allclose(losses, expected, atol=1e-5)


def test_score_positions_keep_only_those_positions(params):
    targets = jnp.roll(TOKENS, -1, axis=1)
    chosen = jnp.array([[8, 0, 3], [2, 2, 7]])
    full_logits = np.asarray(score(params, CONFIG, TOKENS))
    full_losses = np.asarray(score(params, CONFIG, TOKENS, scoring_mode="loss", target_ids=targets))
    logits = score(params, CONFIG, TOKENS, score_positions=chosen)
    losses = score(params, CONFIG, TOKENS, scoring_mode="loss", target_ids=targets, score_positions=chosen)
    rows = np.arange(2)[:, None]
    np.testing.assert_allclose(logits, full_logits[rows, np.asarray(chosen)], atol=1e-5)
    np.testing.assert_allclose(losses, full_losses[rows, np.asarray(chosen)], atol=1e-5)
    with pytest.raises(ValueError, match="score_positions must be"):
        score(params, CONFIG, TOKENS, score_positions=jnp.array([1, 2]))


def test_right_padding_does_not_change_real_tokens(params):
    mask = jnp.array([[1] * 9, [1] * 5 + [0] * 4])
    padded = score(params, CONFIG, TOKENS.at[1, 5:].set(0), padding_mask=mask)
    alone = score(params, CONFIG, TOKENS[1:, :5])
    np.testing.assert_allclose(padded[1, :5], alone[0], atol=1e-5)


def test_intercept_sees_every_layer_and_its_return_value_is_used(params):
    seen = []

    def record(x, i):
        seen.append((i, x.shape))
        return x

    np.testing.assert_allclose(score(params, CONFIG, TOKENS, layer_intercept_fn=record), score(params, CONFIG, TOKENS),
                               atol=1e-6)
    assert seen == [(-1, (2, 9, CONFIG.d_model))] + [(i, (2, 9, CONFIG.d_model)) for i in range(CONFIG.num_layers)]

    # Zeroing the embeddings makes every position see the same inputs, so every position scores alike.
    blind = score(params, CONFIG, TOKENS, layer_intercept_fn=lambda x, i: jnp.zeros_like(x) if i == -1 else x)
    np.testing.assert_allclose(blind, jnp.broadcast_to(blind[:, :1], blind.shape), atol=1e-5)
    assert not np.allclose(blind, score(params, CONFIG, TOKENS), atol=1e-2)


@pytest.mark.slow
def test_gradients_flow_through_the_intercept(params):
    """d(loss)/d(a) where the intercept scales block 0's output by a, against a finite difference.
    Slow: every new intercept function is a new compile."""
    targets = jnp.roll(TOKENS, -1, axis=1)

    def total_loss(a):
        intercept = lambda x, i: x * a if i == 0 else x  # noqa: E731
        return score(params, CONFIG, TOKENS, scoring_mode="loss", layer_intercept_fn=intercept,
                     target_ids=targets).sum()

    gradient = float(jax.grad(total_loss)(1.0))
    finite_difference = (float(total_loss(1.01)) - float(total_loss(0.99))) / 0.02
    assert gradient != 0.0
    assert gradient == pytest.approx(finite_difference, rel=1e-2)


def test_bad_arguments_are_refused(params):
    with pytest.raises(ValueError, match="target_ids"):
        score(params, CONFIG, TOKENS, scoring_mode="loss")
    with pytest.raises(ValueError, match="perplexity"):
        score(params, CONFIG, TOKENS, scoring_mode="perplexity")
    with pytest.raises(ValueError, match=r"\[batch, length\]"):
        score(params, CONFIG, TOKENS[0])
