"""Configuration of `gemmaflow pack` and `gemmaflow sft`: typed dataclasses, loadable from YAML.

The two commands share how sequences are packed and how shards are written (`PackingConfig`,
`ShardOutputConfig`, `EncodeConfig`); pack adds the document tokens and the domain mixture, SFT adds
the sections of the curate stages it shares. `configs/pack.yaml` and `configs/sft.yaml` spell out the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gemmaflow.core.configio import load_yaml
from gemmaflow.pipeline.config import ClassifyConfig, ExactDedupeConfig, PiiConfig, ReadConfig, safety_classifier


@dataclass(frozen=True)
class EncodeConfig:
    """How SentencePiece is called: documents per batched `encode` call and its threads per call.

    One thread per call keeps one Beam worker on one core, so workers (not SentencePiece) scale out.
    """

    batch_size: int = 256
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.num_threads < 1:
            raise ValueError("num_threads must be at least 1")


@dataclass(frozen=True)
class PackingConfig:
    """How token sequences become rows of exactly `seq_len` tokens.

    Best-fit decreasing runs on windows of about `window_documents` documents (documents are dealt
    to windows by a seeded hash), so a worker never holds more than one window: larger windows
    leave less padding (the last, part-filled rows of each window) and cost memory.
    """

    seq_len: int = 8192
    window_documents: int = 4096
    validation_fraction: float = 0.005  # documents held out (by a hash of the id), never sequences
    seed: int = 0  # document-to-window dealing, validation split, mixture sampling, shuffle of rows

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ValueError("seq_len must be at least 2")
        if self.window_documents < 1:
            raise ValueError("window_documents must be at least 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1)")


@dataclass(frozen=True)
class ShardOutputConfig:
    """Parquet shards: target rows per shard, rows per row group (random access unit), codec."""

    sequences_per_shard: int = 1024
    row_group_size: int = 64
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    def __post_init__(self) -> None:
        if self.sequences_per_shard < 1:
            raise ValueError("sequences_per_shard must be at least 1")
        if self.row_group_size < 1:
            raise ValueError("row_group_size must be at least 1")


@dataclass(frozen=True)
class DocumentTokensConfig:
    """Tokens around each pretraining document, and an optional cap (truncations are counted)."""

    add_bos: bool = True
    add_eos: bool = True
    max_document_tokens: int = 0  # 0: no cap; longer documents are split across rows, not cut

    def __post_init__(self) -> None:
        if self.max_document_tokens < 0:
            raise ValueError("max_document_tokens must be 0 (no cap) or positive")


@dataclass(frozen=True)
class MixtureConfig:
    """Per-domain token weights and a total training-token budget.

    Empty `weights`: every training document once, in the corpus's own proportions. With weights and
    `token_budget` 0, the budget is the largest one that repeats no domain. Domains without a weight
    are left out. Each domain is repeated `floor(ratio)` times and a seeded, token-weighted sample of
    its documents supplies the fraction; `histogram_buckets` sets the sample's granularity (the
    realised tokens miss the target by at most about one bucket's share of the domain).
    """

    weights: dict[str, float] = field(default_factory=dict)
    token_budget: int = 0
    histogram_buckets: int = 4096

    def __post_init__(self) -> None:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("mixture weights must be non-negative")
        if self.weights and sum(self.weights.values()) <= 0:
            raise ValueError("mixture weights must not all be zero")
        if self.token_budget < 0:
            raise ValueError("token_budget must be 0 (automatic) or positive")
        if self.histogram_buckets < 1:
            raise ValueError("histogram_buckets must be at least 1")

    def normalised(self) -> dict[str, float]:
        total = sum(self.weights.values())
        return {domain: w / total for domain, w in sorted(self.weights.items()) if w > 0}


@dataclass(frozen=True)
class PackConfig:
    read: ReadConfig = field(default_factory=ReadConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    document: DocumentTokensConfig = field(default_factory=DocumentTokensConfig)
    packing: PackingConfig = field(default_factory=PackingConfig)
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    output: ShardOutputConfig = field(default_factory=ShardOutputConfig)


def answers_classify_config() -> ClassifyConfig:
    """SFT and preference answers are judged by the safety filter only: the shipped quality model
    learned documentation pages against web junk (short pages among it), so it would drop good short
    answers, and the domain model has nothing to relabel in chat records (they are prose, `web`)."""
    return ClassifyConfig(classifiers=(safety_classifier(),))


@dataclass(frozen=True)
class SftConfig:
    """`gemmaflow sft`. `classify`, `exact_dedupe` and `pii` configure the curate stages of the same
    names (the stage registry runs them on chat records): classifiers judge the model's answers, exact
    dedupe compares whole conversations, PII scrubs every turn."""

    encode: EncodeConfig = field(default_factory=EncodeConfig)
    classify: ClassifyConfig = field(default_factory=answers_classify_config)
    # Exact duplicates of the normalised conversation (every turn, case and whitespace folded).
    exact_dedupe: ExactDedupeConfig = field(default_factory=ExactDedupeConfig)
    pii: PiiConfig = field(default_factory=lambda: PiiConfig(enabled=False))
    packing: PackingConfig = field(default_factory=lambda: PackingConfig(window_documents=2048))
    output: ShardOutputConfig = field(default_factory=ShardOutputConfig)
    # How dolly's `context` is folded into the user turn (Gemma has no system or context role).
    context_separator: str = "\n\n"


@dataclass(frozen=True)
class PrefsConfig:
    """`gemmaflow prefs`. `classify`, `exact_dedupe` and `pii` configure the curate stages of the same names
    (the stage registry runs them on pair records): classifiers judge the chosen answer, exact dedupe
    compares the whole pair, PII scrubs every turn and both answers (on by default: pairs are written by
    people). `packing` gives the longest sequence (`seq_len`), the validation fraction and the seed; pairs
    are not packed, a row is one pair."""

    encode: EncodeConfig = field(default_factory=EncodeConfig)
    classify: ClassifyConfig = field(default_factory=answers_classify_config)
    exact_dedupe: ExactDedupeConfig = field(default_factory=ExactDedupeConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    packing: PackingConfig = field(default_factory=PackingConfig)
    output: ShardOutputConfig = field(default_factory=ShardOutputConfig)
    context_separator: str = "\n\n"  # a chat-message pair's system text before its first user turn


def load_pack_config(path: str | Path | None = None) -> PackConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(PackConfig, path)


def load_sft_config(path: str | Path | None = None) -> SftConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(SftConfig, path)


def load_prefs_config(path: str | Path | None = None) -> PrefsConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(PrefsConfig, path)
