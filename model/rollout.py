"""REINFORCE's data: the policy answers each prompt `k` times, the reward model scores every answer.

A rollout is a pure function of the policy's weights, the prompts and an rng derived from (seed, step),
so a run resumed from a checkpoint samples exactly what the uninterrupted run did. Shapes are fixed
for the whole run (prompt slots: the split's longest prompt; answers: `max_new_tokens`), so sampling
and scoring compile once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import numpy as np

from gemmaflow.core.chat import END_OF_TURN_ID, EOS_ID
from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.gemma import Params
from gemmaflow.model.objectives import REWARD_HEAD, rewards
from gemmaflow.model.pairs import sequence_arrays
from gemmaflow.model.sampling import Sampler, SamplerKind, generate
from gemmaflow.model.train_config import ReinforceConfig


@dataclass(frozen=True)
class RewardScorer:
    """A reward model's weights and a jitted `rewards` over batches of fixed-width sequences."""

    config: GemmaConfig
    params: Params
    score: Callable[[Params, dict[str, np.ndarray]], jax.Array]

    @classmethod
    def build(cls, config: GemmaConfig, params: Params) -> RewardScorer:
        if REWARD_HEAD not in params:
            raise ValueError("these weights have no reward head: train one with `gemmaflow train --set kind=reward`")
        return cls(config, params, jax.jit(lambda p, batch: rewards(p, config, batch)))

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        arrays = {name: batch[name] for name in ("inputs", "positions", "segment_ids", "last")}
        return np.asarray(self.score(self.params, arrays), np.float64)


def normalise(raw: np.ndarray, config: ReinforceConfig) -> np.ndarray:
    """Batch-whitened (when configured) and clipped rewards: the policy gradient's scale stays the same
    whatever the reward model's scale, and one outlying score cannot dominate a step."""
    reward = raw.astype(np.float64)
    if config.normalize_rewards:
        reward = (reward - reward.mean()) / (reward.std() + 1e-6)
    if config.reward_clip:
        reward = np.clip(reward, -config.reward_clip, config.reward_clip)
    return reward.astype(np.float32)


def rollout(policy: Params, policy_config: GemmaConfig, scorer: RewardScorer, prompts: Sequence[Sequence[int]],
            config: ReinforceConfig, prompt_slots: int, rng: jax.Array,
            stop_tokens: Sequence[int] = (EOS_ID, END_OF_TURN_ID)) -> dict[str, np.ndarray]:
    """`samples_per_prompt` sampled answers per prompt (consecutive rows) as training arrays
    [n, prompt_slots + max_new_tokens] (`pairs.sequence_arrays`: the answer is the mask), with `reward`
    (normalised, clipped), `raw_reward` (the reward model's score) and `truncated` (no stop token)."""
    k, new = config.samples_per_prompt, config.max_new_tokens
    repeated = [list(prompt) for prompt in prompts for _ in range(k)]
    width = prompt_slots + new
    generation = generate(policy, policy_config, repeated, max_length=width,
                          sampler=Sampler(SamplerKind.RANDOM, temperature=config.temperature), rng=rng,
                          stop_tokens=tuple(stop_tokens), prompt_slots=prompt_slots)
    sequences, masks, truncated = [], [], []
    for prompt, answer in zip(repeated, generation.continuations(), strict=True):
        answer = answer[:new]
        truncated.append(not answer or answer[-1] not in stop_tokens)
        sequences.append(np.asarray(prompt + answer, np.int32))
        masks.append(np.concatenate([np.zeros(len(prompt), np.uint8), np.ones(len(answer), np.uint8)]))
    arrays = sequence_arrays(sequences, masks, width)
    raw = scorer(arrays)
    arrays.update(reward=normalise(raw, config), raw_reward=raw.astype(np.float32),
                  truncated=np.asarray(truncated, np.float32))
    return arrays
