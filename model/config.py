"""Gemma model configuration: one frozen dataclass, one factory per size.

The 2B and 7B factories reproduce Gemma v1 (Gemma report, Gemma Team 2024, Table 1). Their `vocab_size` defaults to
the 256,000 embedding rows of the released checkpoints as Hugging Face (`config.json`: vocab_size
256000) and Keras Hub (`vocabulary_size` 256000) ship them, one row per tokenizer piece, so loading
those weights needs no argument; a model trained on our own tokenizer passes that tokenizer's size
instead. The named presets are Keras Hub's names for the released models (`gemma_2b_en`,
`gemma_instruct_7b_en`, ...): the exact architecture, with weights only from a local folder
(`GemmaLM.from_preset`). The small presets keep Gemma's architecture (multi-query attention, GeGLU,
tied embeddings) at sizes a CPU runs in milliseconds (`tiny`) or trains on (`small`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import jax.numpy as jnp

GEMMA_VOCAB_SIZE = 256_000  # the released tokenizer's pieces: the embedding rows of the released checkpoints


class DType(enum.Enum):
    """Floating-point types for parameters and activations."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"

    @property
    def jnp(self) -> jnp.dtype:
        return jnp.dtype(self.value)


@dataclasses.dataclass(frozen=True)
class GemmaConfig:
    """Hyperparameters of a Gemma v1 decoder.

    `ffw_dim` is the width of *one* GeGLU branch (Gemma 2B: 16,384); Keras Hub's `intermediate_dim`
    counts both branches and is twice this. `num_kv_heads` 1 is multi-query attention, equal to
    `num_heads` multi-head attention, anything dividing `num_heads` grouped-query attention.
    `param_dtype` is what the weights are stored in (float32 master weights for training);
    `dtype` is what activations and matmuls run in. Norms, RoPE, softmax and logits are float32
    whatever `dtype` says. `query_block` only sets how attention is computed: that many queries
    at a time, against only the keys at or before the block's last query, which skips the masked
    upper triangle (close to half the attention work on long rows); results do not depend on it.
    """

    vocab_size: int
    d_model: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffw_dim: int
    max_seq_len: int = 8192
    rope_base: float = 10_000.0
    norm_eps: float = 1e-6
    param_dtype: DType = DType.FLOAT32
    dtype: DType = DType.FLOAT32
    query_block: int = 256

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "head_dim", "ffw_dim",
                     "max_seq_len", "query_block"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for half-split RoPE, got {self.head_dim}")
        if self.rope_base <= 1 or self.norm_eps <= 0:
            raise ValueError(f"need rope_base > 1 and norm_eps > 0, got {self.rope_base} and {self.norm_eps}")
        for name in ("param_dtype", "dtype"):
            if not isinstance(getattr(self, name), DType):
                raise ValueError(f"{name} must be a DType, got {getattr(self, name)!r}")


def _build(overrides: dict[str, object], **fields: object) -> GemmaConfig:
    """A preset's fields with the caller's overrides on top (any field, e.g. num_layers for a shallow 2B)."""
    unknown = set(overrides) - {field.name for field in dataclasses.fields(GemmaConfig)}
    if unknown:
        raise ValueError(f"unknown GemmaConfig fields: {sorted(unknown)}")
    return GemmaConfig(**{**fields, **overrides})  # type: ignore[arg-type]


def gemma_2b(vocab_size: int = GEMMA_VOCAB_SIZE, **overrides: object) -> GemmaConfig:
    """Gemma v1 2B: multi-query attention, 18 layers (524,288,000 embedding + 1,981,884,416 other parameters:
    2,506,172,416)."""
    return _build(vocab_size=vocab_size, d_model=2048, num_layers=18, num_heads=8, num_kv_heads=1, head_dim=256,
                  ffw_dim=16_384, overrides=overrides)


def gemma_7b(vocab_size: int = GEMMA_VOCAB_SIZE, **overrides: object) -> GemmaConfig:
    """Gemma v1 7B: multi-head attention, head_dim 256 (not 3072 / 16), 28 layers (786,432,000 embedding +
    7,751,248,896 other parameters: 8,537,680,896)."""
    return _build(vocab_size=vocab_size, d_model=3072, num_layers=28, num_heads=16, num_kv_heads=16, head_dim=256,
                  ffw_dim=24_576, overrides=overrides)


def small(vocab_size: int = 32_000, **overrides: object) -> GemmaConfig:
    """The CPU benchmark shape (benchmarks/model_train_step.py): d_model 256, 4 layers, 4 query heads / 1 KV head
    of 64."""
    return _build(vocab_size=vocab_size, d_model=256, num_layers=4, num_heads=4, num_kv_heads=1, head_dim=64,
                  ffw_dim=1024, max_seq_len=1024, overrides=overrides)


def tiny(vocab_size: int = 512, **overrides: object) -> GemmaConfig:
    """For unit tests: every code path of the full model in milliseconds."""
    return _build(vocab_size=vocab_size, d_model=64, num_layers=2, num_heads=4, num_kv_heads=1, head_dim=16,
                  ffw_dim=128, max_seq_len=256, overrides=overrides)


# Keras Hub's names for the released checkpoints (base and instruction-tuned share an architecture). Their
# weights are never bundled or downloaded: `GemmaLM.from_preset(name, weights=FOLDER)` reads a local copy.
RELEASED_PRESETS: dict[str, Callable[..., GemmaConfig]] = {
    "gemma_2b_en": gemma_2b,
    "gemma_instruct_2b_en": gemma_2b,
    "gemma_7b_en": gemma_7b,
    "gemma_instruct_7b_en": gemma_7b,
}

PRESETS: dict[str, Callable[..., GemmaConfig]] = {
    "gemma_2b": gemma_2b,
    "gemma_7b": gemma_7b,
    **RELEASED_PRESETS,
    "small": small,
    "tiny": tiny,
}


def preset(name: str, **overrides: object) -> GemmaConfig:
    """The named preset with fields replaced, e.g. `preset("gemma_2b", vocab_size=32_000)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name](**overrides)
