"""What a training run minimises: next-token loss, a Bradley–Terry reward model, DPO or REINFORCE.

The trainer (model/train.py) owns the loop, sharding, accumulation and checkpoints; an objective owns
one micro-batch's loss. `summed_loss(params, reference, batch)` returns the loss *summed* over what it
averages (tokens, pairs or sequences) and a vector of summed metrics whose last entry counts those
units, so gradient accumulation divides once by the batch's count and gives the loss of one big batch.
`reference` is the frozen model DPO and REINFORCE regularise towards (None for the others).

Each objective is a few lines over the model's hidden states and `token_log_probs`, so its maths can be
read beside the paper it cites.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.gemma import Gemma, Params
from gemmaflow.model.loss import chunked_cross_entropy, token_log_probs
from gemmaflow.model.train_config import TrainConfig

Array = jax.Array
Batch = dict[str, Array]
REWARD_HEAD = "reward_head"  # the scalar head's entry beside the Gemma parameters of a reward model


def backbone(params: Params) -> Params:
    """The Gemma parameters alone (a reward model's head removed)."""
    return {name: value for name, value in params.items() if name != REWARD_HEAD}


def hidden_states(params: Params, config: GemmaConfig, batch: Batch) -> Array:
    return Gemma(config).apply({"params": backbone(params)}, batch["inputs"], batch["positions"],
                               batch["segment_ids"], method=Gemma.hidden_states)


def init_reward_head(config: GemmaConfig, rng: Array) -> Params:
    """A linear read-out of the final hidden state: fan-in scaled kernel [D], zero bias (float32)."""
    kernel = jax.random.normal(rng, (config.d_model,), jnp.float32) * config.d_model**-0.5
    return {"kernel": kernel, "bias": jnp.zeros((), jnp.float32)}


def rewards(params: Params, config: GemmaConfig, batch: Batch) -> Array:
    """The reward of each sequence [n]: the head applied to the hidden state at `last` (its last answer
    token, `<end_of_turn>`), as InstructGPT's reward model reads its final token (Ouyang et al., 2022)."""
    hidden = hidden_states(params, config, batch)  # [n, T, D]
    at_last = jnp.take_along_axis(hidden, batch["last"][:, None, None], axis=1)[:, 0].astype(jnp.float32)
    head = params[REWARD_HEAD]
    return at_last @ head["kernel"] + head["bias"]


def sequence_log_probs(params: Params, config: GemmaConfig, batch: Batch, chunk_size: int) -> tuple[Array, Array]:
    """Per-token log p(target) and entropy [n, T] of the answer tokens (0 elsewhere)."""
    hidden = hidden_states(params, config, batch)
    log_p, entropy = token_log_probs(hidden, params["embedder"]["embedding"], batch["targets"], chunk_size=chunk_size)
    return log_p * batch["mask"], entropy * batch["mask"]


def _flatten_pairs(batch: Batch) -> Batch:
    """[b, 2, ...] pair arrays -> [2b, ...]: chosen and rejected of pair i at rows 2i and 2i + 1."""
    return {name: value.reshape(-1, *value.shape[2:]) for name, value in batch.items()}


class Objective(ABC):
    """One micro-batch's summed loss and summed metrics (see the module docstring)."""

    # Names of the summed metrics after the loss; the last one counts the units the loss averages over.
    metric_names: tuple[str, ...]
    needs_reference: bool = False

    @abstractmethod
    def summed_loss(self, params: Params, reference: Params | None, batch: Batch) -> tuple[Array, Array]:
        """(loss summed over the micro-batch's units, summed metrics [len(metric_names)])."""

    def step_metrics(self, sums: Array) -> dict[str, Array]:
        """Summed [loss, *metrics] of a batch -> the metrics' means (the count as it is)."""
        count = jnp.maximum(sums[-1], 1.0)
        means = {name: sums[i + 1] / count for i, name in enumerate(self.metric_names[:-1])}
        return {"loss": sums[0] / count, **means, self.metric_names[-1]: sums[-1]}

    def eval_record(self, sums: np.ndarray) -> dict[str, float]:
        """The metrics.jsonl entry of an evaluation from its summed [loss, *metrics]."""
        count = max(float(sums[-1]), 1.0)
        record = {"eval_loss": float(sums[0] / count)}
        record.update({f"eval_{name}": float(sums[i + 1] / count) for i, name in enumerate(self.metric_names[:-1])})
        record[f"eval_{self.metric_names[-1]}"] = int(sums[-1])
        return record


@dataclass(frozen=True)
class LanguageModeling(Objective):
    """Masked next-token cross-entropy (plus optional z-loss) over packed rows, averaged over target tokens."""

    model_config: GemmaConfig
    chunk_size: int
    z_loss_weight: float
    metric_names = ("cross_entropy", "z_loss", "loss_tokens")

    def summed_loss(self, params: Params, reference: Params | None, batch: Batch) -> tuple[Array, Array]:
        hidden = hidden_states(params, self.model_config, batch)
        loss = chunked_cross_entropy(hidden, params["embedder"]["embedding"], batch["targets"], batch["mask"],
                                     chunk_size=self.chunk_size, z_loss_weight=self.z_loss_weight)
        tokens = loss.num_tokens
        return loss.total * tokens, jnp.stack([loss.cross_entropy * tokens, loss.z_loss * tokens, tokens])

    def eval_record(self, sums: np.ndarray) -> dict[str, float]:
        """Validation loss is the cross-entropy alone (z-loss is a regulariser, not a measure of fit)."""
        return {"eval_loss": float(sums[1] / max(float(sums[3]), 1.0)), "eval_tokens": int(sums[3])}


@dataclass(frozen=True)
class BradleyTerry(Objective):
    """Reward model loss `-log sigmoid(r_chosen - r_rejected)` (Bradley & Terry, 1952; Ouyang et al., 2022),
    averaged over pairs; `accuracy` is the share of pairs the model orders right."""

    model_config: GemmaConfig
    metric_names = ("accuracy", "margin", "pairs")

    def summed_loss(self, params: Params, reference: Params | None, batch: Batch) -> tuple[Array, Array]:
        scores = rewards(params, self.model_config, _flatten_pairs(batch)).reshape(-1, 2)
        margin = scores[:, 0] - scores[:, 1]
        pairs = jnp.asarray(margin.shape[0], jnp.float32)
        return jnp.sum(jax.nn.softplus(-margin)), jnp.stack([jnp.sum(margin > 0), jnp.sum(margin), pairs])


@dataclass(frozen=True)
class DirectPreference(Objective):
    """DPO (Rafailov et al., 2023): `-log sigmoid(beta * ((log pi - log pi_ref)(chosen) - (...)(rejected)))`,
    sequence log-probabilities over the answer tokens, plus `sft_weight` times the chosen answer's mean token
    NLL; `accuracy` counts pairs whose implicit reward margin is positive, `reward_margin` is that margin
    (beta-scaled), as TRL reports them."""

    model_config: GemmaConfig
    chunk_size: int
    beta: float
    sft_weight: float = 0.0  # times the chosen answer's mean token NLL, added per pair (RPO; Pang et al., 2024)
    metric_names = ("accuracy", "reward_margin", "chosen_nll", "pairs")
    needs_reference = True

    def summed_loss(self, params: Params, reference: Params | None, batch: Batch) -> tuple[Array, Array]:
        assert reference is not None
        flat = _flatten_pairs(batch)
        policy = jnp.sum(sequence_log_probs(params, self.model_config, flat, self.chunk_size)[0], axis=-1)
        ref = jnp.sum(sequence_log_probs(reference, self.model_config, flat, self.chunk_size)[0], axis=-1)
        ratio = (policy - jax.lax.stop_gradient(ref)).reshape(-1, 2)
        margin = self.beta * (ratio[:, 0] - ratio[:, 1])
        chosen_tokens = jnp.maximum(jnp.sum(batch["mask"][:, 0], axis=-1), 1.0)
        chosen_nll = -policy.reshape(-1, 2)[:, 0] / chosen_tokens
        pairs = jnp.asarray(margin.shape[0], jnp.float32)
        loss = jnp.sum(jax.nn.softplus(-margin) + self.sft_weight * chosen_nll)
        return loss, jnp.stack([jnp.sum(margin > 0), jnp.sum(margin), jnp.sum(chosen_nll), pairs])


@dataclass(frozen=True)
class Reinforce(Objective):
    """REINFORCE with a leave-one-out baseline over `k` samples per prompt (RLOO; Ahmadian et al., 2024).

    The batch holds sampled sequences, `k` consecutive rows per prompt, with `reward` (the reward model's
    score, normalised and clipped) and `raw_reward`. Each sequence's reward is reduced by `kl_coef` times
    its sampled KL to the reference, `sum_t log pi(y_t) - log pi_ref(y_t)` over its answer tokens (an
    unbiased estimate of KL(pi || pi_ref) for samples of pi); its advantage is that reward minus the mean of
    the other k - 1; the loss is `-advantage * log pi(answer)`, averaged over sequences.
    """

    model_config: GemmaConfig
    chunk_size: int
    samples_per_prompt: int
    kl_coef: float
    metric_names = ("reward", "kl", "response_length", "entropy", "sequences")
    needs_reference = True

    def summed_loss(self, params: Params, reference: Params | None, batch: Batch) -> tuple[Array, Array]:
        assert reference is not None
        log_p, entropy = sequence_log_probs(params, self.model_config, batch, self.chunk_size)
        ref_log_p, _ = sequence_log_probs(reference, self.model_config, batch, self.chunk_size)
        kl = jax.lax.stop_gradient(jnp.sum(log_p - ref_log_p, axis=-1))  # [n]
        shaped = (batch["reward"] - self.kl_coef * kl).reshape(-1, self.samples_per_prompt)  # [prompts, k]
        others = (jnp.sum(shaped, axis=1, keepdims=True) - shaped) / (self.samples_per_prompt - 1)
        advantage = jax.lax.stop_gradient(shaped - others).reshape(-1)
        length = jnp.sum(batch["mask"], axis=-1)
        mean_entropy = jnp.sum(entropy, axis=-1) / jnp.maximum(length, 1.0)
        sequences = jnp.asarray(length.shape[0], jnp.float32)
        metrics = jnp.stack([jnp.sum(batch["raw_reward"]), jnp.sum(kl), jnp.sum(length), jnp.sum(mean_entropy),
                             sequences])
        return -jnp.sum(advantage * jnp.sum(log_p, axis=-1)), metrics


def make_objective(config: TrainConfig, model_config: GemmaConfig) -> Objective:
    """The objective of `config.kind`."""
    if config.kind == "reward":
        return BradleyTerry(model_config)
    if config.kind == "dpo":
        return DirectPreference(model_config, config.loss_chunk_size, config.dpo.beta, config.dpo.sft_weight)
    if config.kind == "reinforce":
        return Reinforce(model_config, config.loss_chunk_size, config.reinforce.samples_per_prompt,
                         config.reinforce.kl_coef)
    return LanguageModeling(model_config, config.loss_chunk_size, config.z_loss_weight)
