"""The optimiser: AdamW behind global-norm clipping, a learning-rate schedule and a weight-decay mask.

Weight decay pulls weights towards zero. That is wrong for RMSNorm scales (Gemma stores the gain as
`1 + scale`, so zero is not "small") and commonly skipped for embeddings; the mask leaves both out
unless the config asks for them. Leaves are recognised by name: `scale` (norms) and `embedding`.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from gemmaflow.model.train_config import OptimizerConfig


def learning_rate_schedule(config: OptimizerConfig, total_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to the peak, then cosine (or constant, then linear: WSD) to the final fraction."""
    peak, end = config.learning_rate, config.learning_rate * config.final_lr_fraction
    warmup = round(config.warmup_fraction * total_steps)
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1), end)
    warm = optax.linear_schedule(0.0, peak, max(warmup, 1))
    if config.schedule == "constant":
        return optax.join_schedules([warm, optax.constant_schedule(peak)], [warmup])
    decay = round(config.decay_fraction * total_steps)
    stable = max(total_steps - decay - warmup, 0)
    return optax.join_schedules(
        [warm, optax.constant_schedule(peak), optax.linear_schedule(peak, end, max(decay, 1))],
        [warmup, warmup + stable],
    )


def weight_decay_mask(params: Any, config: OptimizerConfig) -> Any:
    """True for leaves that get weight decay: every matrix, norms and embeddings only if configured."""

    def decays(path: tuple, _: Any) -> bool:
        name = getattr(path[-1], "key", None)
        if name == "scale":
            return config.decay_norms
        if name == "embedding":
            return config.decay_embeddings
        return True

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(config: OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
    """clip_by_global_norm -> AdamW(schedule, mask). Clipping comes first, so AdamW sees clipped gradients."""
    adamw = optax.adamw(learning_rate_schedule(config, total_steps), b1=config.b1, b2=config.b2, eps=config.eps,
                        weight_decay=config.weight_decay, mask=lambda p: weight_decay_mask(p, config))
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)
    return adamw
