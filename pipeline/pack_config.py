"""Configuration of `gemmaflow pack` and `gemmaflow sft`: typed dataclasses, loadable from YAML.

The two commands share how sequences are packed and how shards are written (`PackingConfig`,
`ShardOutputConfig`, `EncodeConfig`) and the mixture (`MixtureConfig`: pack mixes domains, SFT its
sources); pack adds the document tokens, SFT its sources and the sections of the curate stages it
shares. `configs/pack.yaml` and `configs/sft.yaml` spell out the defaults.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemmaflow.core.configio import load_yaml
from gemmaflow.pipeline.config import (
    ClassifyConfig,
    DecontaminationConfig,
    ExactDedupeConfig,
    NearDedupeConfig,
    NearDedupeProfile,
    PiiConfig,
    ReadConfig,
    safety_classifier,
)


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


def prompt_dedupe_config() -> NearDedupeConfig:
    """Curate's near dedupe with a higher bar, since prompts are short and often share a passage.

    On word 3-grams, the most similar different prompts of the bundled dolly sample (two questions
    about one passage) score 0.62; one word changed mid-way through a 30-word prompt scores 0.81 (25
    of 31 shingles shared), at its end 0.93; case, punctuation and spacing changes score 1. At 0.8
    the first stay and the others are caught. Every chat record is prose (`web`); the code and math
    profiles are set alike so the LSH bands are cut for this threshold.
    """
    profile = NearDedupeProfile(ngram=3, threshold=0.8)
    return NearDedupeConfig(web=profile, code=profile, math=profile)


SOURCE_NAME = re.compile(r"[\w.-]+")
INPUT_SOURCE = "input"  # the one source of a run given its files on the command line (`--input`)


@dataclass(frozen=True)
class SftSource:
    """One input of an SFT run: its name (in the counts, the manifest and the rejected sink's `source`),
    its files (globs, local or gs://; JSONL, .gz, .zst) and its mixture weight (see `SftConfig`)."""

    name: str
    input: tuple[str, ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not SOURCE_NAME.fullmatch(self.name):
            raise ValueError(f"source name {self.name!r}: use letters, digits, '_', '-' and '.'")
        if not self.input:
            raise ValueError(f"source {self.name}: input must name at least one file or glob")
        if not self.weight > 0:
            raise ValueError(f"source {self.name}: weight must be positive")


@dataclass(frozen=True)
class SftConfig:
    """`gemmaflow sft`. `classify`, `exact_dedupe`, `prompt_dedupe`, `decontamination` and `pii` configure
    the curate stages of those names (the stage registry runs them on chat records, across all sources
    at once): classifiers judge the model's answers, exact dedupe compares whole conversations, prompt
    dedupe the user turns (curate's near dedupe), decontamination matches every turn against the
    benchmarks (off without benchmarks, as in curate; a match drops the example, never redacts it), PII
    scrubs every turn (on: instructions and answers are written by people).

    Sources are mixed as pack mixes domains (`MixtureConfig`): a weight is a source's share of the
    training tokens, relative to the others'. With `token_budget` 0 the budget is the largest that
    repeats no source, so the source scarcest for its weight is used whole and the others are sampled
    down; a larger budget repeats sources (whole copies plus a seeded sample). The sample is chosen by
    a seeded hash of each example (`packing.seed`), after cleaning: the same inputs and config give the
    same examples. Validation examples are held out before the mixture and never sampled or repeated.
    """

    # Empty: the files given on the command line (`--input`, else the bundled dolly sample), one source.
    sources: tuple[SftSource, ...] = ()
    token_budget: int = 0  # training tokens over all sources; 0: the largest that repeats no source
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    classify: ClassifyConfig = field(default_factory=answers_classify_config)
    # Exact duplicates of the normalised conversation (every turn, case and whitespace folded).
    exact_dedupe: ExactDedupeConfig = field(default_factory=ExactDedupeConfig)
    prompt_dedupe: NearDedupeConfig = field(default_factory=prompt_dedupe_config)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    packing: PackingConfig = field(default_factory=lambda: PackingConfig(window_documents=2048))
    output: ShardOutputConfig = field(default_factory=ShardOutputConfig)
    # How dolly's `context` is folded into the user turn (Gemma has no system or context role).
    context_separator: str = "\n\n"

    def __post_init__(self) -> None:
        names = [source.name for source in self.sources]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"source name {duplicated[0]!r} is used twice")
        self.mixture()  # the budget's own checks

    def mixture(self) -> MixtureConfig:
        """Pack's mixture over the sources: one weight per source name."""
        return MixtureConfig(weights={source.name: source.weight for source in self.sources},
                             token_budget=self.token_budget)

    def with_inputs(self, inputs: Sequence[str]) -> SftConfig:
        """This config reading `inputs` as its one source, weight 1 (the command line's `--input`)."""
        return dataclasses.replace(self, sources=(SftSource(INPUT_SOURCE, tuple(inputs)),))


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


def load_sft_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> SftConfig:
    """Defaults, overridden by the YAML at `path`, then by dotted `overrides` (`--set pii.enabled=false`);
    raises ConfigError naming any bad key."""
    return load_yaml(SftConfig, path, overrides)


def load_prefs_config(path: str | Path | None = None) -> PrefsConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(PrefsConfig, path)
