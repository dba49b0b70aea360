"""The `gemmaflow train` configuration: typed frozen dataclasses, loaded from YAML by gemmaflow/core/configio.py.

The optimiser defaults are MaxText's AdamW (google/maxtext: b1 0.9, b2 0.95, eps 1e-8, weight decay
0.1, warmup 10% then cosine to 10% of peak, clip 1.0). Unknown keys fail before any work, naming the
key. Constructing a config only checks its values: nothing here reads a file, so a config can be
built, compared and fingerprinted anywhere; the files it names (tokenizer, `init_from`) are checked
when a job starts (`model.train.check_inputs`). `configs/train-tiny.yaml` is a complete example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemmaflow.core.configio import load_yaml
from gemmaflow.model.config import PRESETS, DType, GemmaConfig, preset

LORA_TARGETS = ("query", "key", "value", "output", "gate", "up", "down")


@dataclass(frozen=True)
class ModelSection:
    """The architecture: a preset with optional overrides. `vocab_size` 0 takes the shards' tokenizer
    vocabulary. `init_from` starts from a saved model (our format or a Hugging Face Gemma folder)
    instead of fresh weights, as fine-tuning does; its architecture then wins over the preset."""

    preset: str = "tiny"
    vocab_size: int = 0
    d_model: int | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    ffw_dim: int | None = None
    query_block: int | None = None
    compute_dtype: Literal["float32", "bfloat16"] = "float32"  # bfloat16: bfloat16 matmuls over float32 master weights
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")

    def build(self, vocab_size: int, seq_len: int) -> GemmaConfig:
        """The GemmaConfig for shards of this vocabulary and sequence length (float32 master weights)."""
        overrides: dict[str, Any] = {name: getattr(self, name) for name in
                                     ("d_model", "num_layers", "num_heads", "num_kv_heads", "head_dim", "ffw_dim",
                                      "query_block") if getattr(self, name) is not None}
        config = preset(self.preset, vocab_size=self.vocab_size or vocab_size, dtype=DType(self.compute_dtype),
                        param_dtype=DType.FLOAT32, **overrides)
        return dataclasses.replace(config, max_seq_len=max(config.max_seq_len, seq_len))


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with a warmup then cosine (or warmup-stable-decay) schedule and global-norm clipping."""

    learning_rate: float = 3e-4  # peak
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_fraction: float = 0.1  # of `steps`, linear from 0
    final_lr_fraction: float = 0.1  # cosine / wsd end at this fraction of the peak
    decay_fraction: float = 0.2  # wsd: the last 20% of steps decay linearly
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_norms: bool = False  # apply weight decay to RMSNorm scales
    decay_embeddings: bool = False  # ... and to the (tied) embedding table
    clip_norm: float = 1.0  # global gradient norm; 0 turns clipping off

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        for name in ("warmup_fraction", "final_lr_fraction", "decay_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.weight_decay < 0 or self.clip_norm < 0:
            raise ValueError("weight_decay and clip_norm must be non-negative")


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters: W + (alpha / rank) * A @ B on the named projections; the base stays frozen.

    `quantize` stores the frozen base in 8 or 4 bits (QLoRA; model/quant.py): every projection and the tied
    embedding, dequantized at each matmul. `dropout` drops the adapters' inputs while training (PEFT's
    `lora_dropout`); `dtype` is the adapters' own (bfloat16 halves their memory and optimiser state).
    """

    enabled: bool = False
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    dropout: float = 0.0
    dtype: Literal["float32", "bfloat16"] = "float32"
    quantize: Literal["none", "int8", "nf4"] = "none"
    double_quant: bool = True  # nf4: quantize the block scales too (QLoRA's double quantization)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError("rank must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.quantize != "none" and not self.enabled:
            raise ValueError(f"lora.quantize={self.quantize} quantizes the frozen base of a LoRA run: "
                             "set lora.enabled=true")
        unknown = sorted(set(self.targets) - set(LORA_TARGETS))
        if unknown or not self.targets:
            raise ValueError(f"targets must be a non-empty subset of {list(LORA_TARGETS)}, got {list(self.targets)}")


@dataclass(frozen=True)
class DpoConfig:
    """Direct preference optimisation (Rafailov et al., 2023): `beta` scales the implicit reward
    `log pi(y|x) - log pi_ref(y|x)`; the reference is the starting model (with LoRA, the frozen base)."""

    beta: float = 0.1
    # Weight of the chosen answer's per-token negative log-likelihood added to each pair's loss (the RPO /
    # "DPO + NLL" regulariser of Pang et al., 2024): DPO alone can lower both answers' likelihoods and drift
    # to text neither pair holds; 0 is plain DPO.
    sft_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.sft_weight < 0:
            raise ValueError("dpo.beta must be positive and dpo.sft_weight non-negative")


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE with a leave-one-out baseline (RLOO; Ahmadian et al., 2024), the policy-gradient family Gemma's
    RLHF used (Gemma Team, 2024): `samples_per_prompt` answers per prompt, each one's baseline the mean reward
    of the others. The reward model's scores are normalised over the batch and clipped to
    +-`reward_clip`; `kl_coef` times the sampled KL to the frozen reference is subtracted from each reward
    (the penalty against reward hacking). Prompts come from preference shards (the shared prompt of each pair)."""

    reward_model: str = ""  # a `gemmaflow train --set kind=reward` output or saved reward model
    samples_per_prompt: int = 4
    max_new_tokens: int = 64
    temperature: float = 1.0  # 1.0 samples the policy itself, which the KL estimate assumes
    kl_coef: float = 0.05
    normalize_rewards: bool = True
    reward_clip: float = 5.0  # 0 turns clipping off

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 2:
            raise ValueError("reinforce.samples_per_prompt must be at least 2 (the leave-one-out baseline needs two)")
        if self.max_new_tokens < 1 or self.temperature <= 0:
            raise ValueError("reinforce.max_new_tokens must be at least 1 and temperature positive")
        if self.kl_coef < 0 or self.reward_clip < 0:
            raise ValueError("reinforce.kl_coef and reward_clip must be non-negative")


@dataclass(frozen=True)
class MeshConfig:
    """Device mesh: `data` replicas x `fsdp` parameter shards; -1 takes the devices left over."""

    data: int = -1
    fsdp: int = 1


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    # What to train: a language model on packed shards ("any" takes pretrain or sft shards, the other two
    # refuse the other kind), or on preference shards a reward model, DPO or REINFORCE.
    kind: Literal["any", "pretrain", "sft", "reward", "dpo", "reinforce"] = "any"
    dpo: DpoConfig = field(default_factory=DpoConfig)
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)
    steps: int = 1000
    batch_size: int = 8  # sequences per optimizer step, all hosts together
    grad_accum_steps: int = 1  # the batch is split into this many micro-batches
    seed: int = 0  # data order and fresh weights
    z_loss_weight: float = 0.0  # PaLM z-loss; 1e-4 is common with bfloat16
    loss_chunk_size: int = 1024  # tokens per chunk of the cross-entropy (model/loss.py)
    eval_every: int = 0  # steps; 0: only at the end
    eval_batches: int = 4  # validation batches per evaluation (fixed, in file order)
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    verify_checkpoints: bool = True  # record and check SHA-256 of every checkpoint file
    log_every: int = 1  # plain stdout lines when stdout is not a terminal (metrics.jsonl gets every step)
    # The whole job's peak matmul TFLOP/s for MFU; null or 0: from the devices (model/device_peak.py).
    peak_tflops: float | None = None
    tokenizer: str = ""  # optional .model file: checked against the shards' tokenizer, copied into the output

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum_steps", "eval_batches", "checkpoint_every",
                     "keep_checkpoints", "log_every", "loss_chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of grad_accum_steps "
                             f"{self.grad_accum_steps}")
        if self.eval_every < 0 or self.z_loss_weight < 0 or (self.peak_tflops or 0.0) < 0:
            raise ValueError("eval_every, z_loss_weight and peak_tflops must be non-negative")
        if self.kind == "reinforce":
            if self.micro_batch_size % self.reinforce.samples_per_prompt:
                raise ValueError(f"reinforce: a micro-batch of {self.micro_batch_size} sequences must hold whole "
                                 f"groups of samples_per_prompt {self.reinforce.samples_per_prompt}")
            if not self.reinforce.reward_model:
                raise ValueError("kind reinforce needs reinforce.reward_model (a trained reward model folder)")
            if not self.model.init_from:
                raise ValueError("kind reinforce starts from a model: set model.init_from (the SFT model)")

    @property
    def preference(self) -> bool:
        """Whether the run reads preference pairs rather than packed rows."""
        return self.kind in ("reward", "dpo", "reinforce")

    @property
    def micro_batch_size(self) -> int:
        return self.batch_size // self.grad_accum_steps


def load_train_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    return load_yaml(TrainConfig, path, overrides)
