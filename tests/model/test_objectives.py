"""The preference objectives' maths against hand-written formulas, and the pair reader, without the trainer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model import lora as lora_lib
from gemmaflow.model.config import preset
from gemmaflow.model.gemma import Gemma, init_params
from gemmaflow.model.loss import token_log_probs
from gemmaflow.model.objectives import (
    REWARD_HEAD,
    BradleyTerry,
    DirectPreference,
    Reinforce,
    init_reward_head,
    rewards,
    sequence_log_probs,
)
from gemmaflow.model.pairs import PairDataset, PairReader, pair_arrays, sequence_arrays
from gemmaflow.model.rollout import normalise
from gemmaflow.model.shards import ShardChecksumError, ShardFormatError
from gemmaflow.model.train_config import LoraConfig, ReinforceConfig
from tests.model.pair_fixtures import VOCAB, rule_pairs, write_pair_folder, write_planted_pairs
from tests.model.shard_fixtures import write_shards

CONFIG = preset("tiny", vocab_size=VOCAB, num_layers=1)


def params(seed: int) -> dict:
    weights = init_params(CONFIG, jax.random.key(seed))
    return {**weights, REWARD_HEAD: init_reward_head(CONFIG, jax.random.key(seed + 100))}


def pair_batch(count: int = 4, seed: int = 0) -> dict:
    pairs = rule_pairs(count, seed)
    rows = {"chosen_tokens": [np.asarray(p[0]) for p in pairs], "chosen_loss_mask": [np.asarray(p[1]) for p in pairs],
            "rejected_tokens": [np.asarray(p[2]) for p in pairs],
            "rejected_loss_mask": [np.asarray(p[3]) for p in pairs]}
    return {name: jnp.asarray(value) for name, value in pair_arrays(rows, 12).items()}


def full_log_probs(weights: dict, arrays: dict) -> np.ndarray:
    """Per-sequence answer log-probability from the full logits: the reference formula."""
    logits = Gemma(CONFIG).apply({"params": {k: v for k, v in weights.items() if k != REWARD_HEAD}},
                                 arrays["inputs"], arrays["positions"], arrays["segment_ids"])
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, arrays["targets"][..., None], axis=-1)[..., 0]
    return np.asarray(jnp.sum(picked * arrays["mask"], axis=-1))


def test_sequence_arrays_score_the_answer_and_read_the_reward_at_its_last_token():
    arrays = sequence_arrays([np.array([2, 5, 6, 7, 107])], [np.array([0, 0, 0, 1, 1])], width=8)
    assert arrays["inputs"][0].tolist() == [2, 5, 6, 7, 107, 0, 0, 0]
    assert arrays["segment_ids"][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert arrays["targets"][0, :4].tolist() == [5, 6, 7, 107]
    assert arrays["mask"][0].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]  # slots predicting 7 and <end_of_turn>
    assert arrays["last"].tolist() == [4]
    with pytest.raises(ShardFormatError, match="does not fit"):
        sequence_arrays([np.arange(9)], [np.ones(9)], width=8)


def test_the_pair_reader_measures_its_split_and_serves_pairs_by_step(tmp_path):
    folder = write_planted_pairs(tmp_path / "pairs", train=20, validation=4)
    reader = PairReader(folder, "train", vocab_size=VOCAB)
    assert len(reader) == 20 and reader.width == 10 and reader.prompt_width == 8
    data = PairDataset(reader, batch_size=4, seed=1)
    batch = data.batch_at(3, micro_batches=2)
    assert batch["inputs"].shape == (4, 2, 10) and batch["last"].shape == (4, 2)
    assert (batch["last"] == 9).all()
    np.testing.assert_array_equal(batch["inputs"][:, 0, :8], batch["inputs"][:, 1, :8])  # the shared prompt
    assert data.prompts_at(3, micro_batches=2) == batch["inputs"][:, 0, :8].tolist()
    np.testing.assert_array_equal(PairDataset(reader, 4, seed=1).batch_at(3, 2)["inputs"], batch["inputs"])


def test_the_pair_reader_refuses_packed_and_damaged_shards(tmp_path):
    with pytest.raises(ShardFormatError, match="preference pairs"):
        PairReader(write_shards(tmp_path / "packed"), "train", vocab_size=128)
    folder = write_planted_pairs(tmp_path / "pairs", train=8, validation=4)
    shard = folder / "train" / "shard-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ShardChecksumError):
        PairReader(folder, "train", vocab_size=VOCAB)
    empty = write_pair_folder(tmp_path / "empty", {"train": []})
    with pytest.raises(ShardFormatError, match="no pairs"):
        PairReader(empty, "train", vocab_size=VOCAB)


@pytest.mark.parametrize("chunk_size", [3, 512])
def test_chunked_token_log_probs_equal_the_full_softmax(chunk_size):
    weights, arrays = params(0), sequence_arrays([np.arange(2, 12)], [np.ones(10)], width=12)
    hidden = Gemma(CONFIG).apply({"params": {k: v for k, v in weights.items() if k != REWARD_HEAD}},
                                 arrays["inputs"], arrays["positions"], arrays["segment_ids"],
                                 method=Gemma.hidden_states)
    log_p, entropy = token_log_probs(hidden, weights["embedder"]["embedding"], jnp.asarray(arrays["targets"]),
                                     chunk_size=chunk_size)
    full = jax.nn.log_softmax(Gemma(CONFIG).apply({"params": {k: v for k, v in weights.items() if k != REWARD_HEAD}},
                                                  arrays["inputs"], arrays["positions"], arrays["segment_ids"]))
    expected = np.take_along_axis(np.asarray(full), arrays["targets"][..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(log_p, expected, atol=1e-5)
    np.testing.assert_allclose(entropy, -(np.exp(full) * full).sum(-1), atol=1e-4)


def test_bradley_terry_is_minus_log_sigmoid_of_the_reward_margin():
    weights, batch = params(1), pair_batch()
    total, metrics = BradleyTerry(CONFIG).summed_loss(weights, None, batch)
    flat = {name: value.reshape(-1, *value.shape[2:]) for name, value in batch.items()}
    scores = np.asarray(rewards(weights, CONFIG, flat)).reshape(-1, 2)
    margin = scores[:, 0] - scores[:, 1]
    np.testing.assert_allclose(total, np.sum(np.log1p(np.exp(-margin))), rtol=1e-5)
    assert metrics.tolist() == pytest.approx([np.sum(margin > 0), margin.sum(), 4], rel=1e-5)


def test_dpo_is_log_two_at_the_reference_and_follows_its_formula_elsewhere():
    reference, policy, batch = params(2), params(3), pair_batch()
    total, metrics = DirectPreference(CONFIG, chunk_size=7, beta=0.5).summed_loss(reference, reference, batch)
    assert float(total) == pytest.approx(4 * np.log(2), rel=1e-5) and float(metrics[1]) == pytest.approx(0, abs=1e-5)
    total, metrics = DirectPreference(CONFIG, chunk_size=7, beta=0.5).summed_loss(policy, reference, batch)
    flat = {name: value.reshape(-1, *value.shape[2:]) for name, value in batch.items()}
    ratio = (full_log_probs(policy, flat) - full_log_probs(reference, flat)).reshape(-1, 2)
    margin = 0.5 * (ratio[:, 0] - ratio[:, 1])
    np.testing.assert_allclose(total, np.sum(np.log1p(np.exp(-margin))), rtol=1e-4)
    np.testing.assert_allclose(metrics[1], margin.sum(), rtol=1e-4, atol=1e-5)


def test_reinforce_uses_a_leave_one_out_baseline_and_a_kl_penalty():
    policy, reference = params(4), params(5)
    sequences = [np.array(p[0] if i % 2 else p[2]) for i, p in enumerate(rule_pairs(4, 9))]
    arrays = sequence_arrays(sequences, [np.array([0] * 8 + [1, 1])] * 4, width=12)
    reward = np.array([1.0, -1.0, 0.5, 2.0], np.float32)
    batch = {**{k: jnp.asarray(v) for k, v in arrays.items()}, "reward": jnp.asarray(reward),
             "raw_reward": jnp.asarray(reward * 3)}
    objective = Reinforce(CONFIG, chunk_size=5, samples_per_prompt=2, kl_coef=0.1)
    total, metrics = objective.summed_loss(policy, reference, batch)
    log_p, ref_log_p = full_log_probs(policy, arrays), full_log_probs(reference, arrays)
    shaped = (reward - 0.1 * (log_p - ref_log_p)).reshape(2, 2)
    advantage = (shaped - shaped[:, ::-1]).reshape(-1)  # with k = 2 the baseline is the other sample
    np.testing.assert_allclose(total, -np.sum(advantage * log_p), rtol=1e-4)
    assert float(metrics[0]) == pytest.approx(reward.sum() * 3)
    assert float(metrics[1]) == pytest.approx(np.sum(log_p - ref_log_p), rel=1e-4)
    assert float(metrics[2]) == 8 and float(metrics[4]) == 4  # answer tokens, sequences
    _, same = objective.summed_loss(reference, reference, batch)
    assert float(same[1]) == pytest.approx(0.0, abs=1e-5)  # no KL to itself


def test_rewards_are_whitened_then_clipped():
    raw = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    out = normalise(raw, ReinforceConfig(reward_clip=1.5))
    assert out.max() == pytest.approx(1.5) and out.min() > -1.5
    np.testing.assert_allclose(normalise(raw, ReinforceConfig(normalize_rewards=False, reward_clip=0)), raw)


def test_a_reward_head_trained_beside_lora_adapters_joins_the_merged_model():
    weights = init_params(CONFIG, jax.random.key(0))
    config = LoraConfig(enabled=True, rank=2)
    adapters = lora_lib.init_lora(weights, config, jax.random.key(1))
    adapters[REWARD_HEAD] = init_reward_head(CONFIG, jax.random.key(2))
    merged = lora_lib.merge(weights, adapters, config)
    assert merged[REWARD_HEAD] is adapters[REWARD_HEAD] and REWARD_HEAD not in weights
    arrays = {k: jnp.asarray(v) for k, v in sequence_arrays([np.arange(2, 9)], [np.ones(7)], 8).items()}
    assert np.isfinite(np.asarray(rewards(merged, CONFIG, arrays))).all()
    np.testing.assert_allclose(sequence_log_probs(merged, CONFIG, arrays, 4)[0],
                               sequence_log_probs(weights, CONFIG, arrays, 4)[0], atol=1e-6)  # B starts at 0
