"""Typed thresholds for the heuristic quality filters, one frozen dataclass per rule set.

Defaults start from the field's published thresholds (Gopher, Rae et al., 2021; C4, Raffel et al.,
2020; FineWeb, Penedo et al., 2024; The Stack, Kocetkov et al., 2022 / StarCoder, Li et al., 2023).
Those were tuned on Common Crawl prose; our web text is technical documentation (man pages, kernel,
Python and PostgreSQL docs) full of tables, option lists, code and repeated headings. Where a
default deviates, its docstring says so and gives the reason measured on the development corpus
(9,452 good web pages that are English by truth and by lid.176, 2,183 junk pages, 4,370 code files,
3,750 math documents). "N good pages" counts the good English pages the rule alone would drop.

Fields are limited to bool / int / float / str / tuple so the generic YAML loader builds these
classes without special cases; a str field that names one of a few modes is checked when the class
is built.

Options whose non-default value is named after datatrove reproduce HuggingFace datatrove's
reference filters (GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, C4ParagraphFilter,
FineWebQualityFilter) exactly; ``configs/curate-web-strict.yaml`` sets them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gemmaflow.pipeline.heuristics.punctuation import LINE_END_STYLES
from gemmaflow.pipeline.heuristics.text_stats import TERMINAL_PUNCTUATION
from gemmaflow.pipeline.heuristics.words import WORD_TOKENIZERS


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class CommonConfig:
    """Universal pre-checks applied to every domain before its own rule set."""

    enabled: bool = True
    max_replacement_char_fraction: float = 0.002
    """Max fraction of characters that are U+FFFD or UTF-8-read-as-Latin-1/cp1252 pairs ("Ã©", "â€").

    Dev: good English web <= 0.00024, mojibake junk >= 0.0042; 0.002 sits between.
    """


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher (Rae et al. 2021, table A1) repetition removal; fractions as defined in the paper.

    Defaults are for web text. With the paper's values (lines 0.30, paragraphs 0.30, line / paragraph
    characters 0.20, top 2/3/4-gram 0.20/0.18/0.16, duplicated 5..10-grams 0.15..0.10) this rule set
    alone drops 2,716 good pages (29%: kernel API docs repeat "Parameters" / "Description" headings and
    table separators); with these defaults 39 (0.4%), while still catching 507 junk pages of the 516
    (repeated lines and keyword stuffing sit far above every limit).
    """

    enabled: bool = True
    max_dup_line_fraction: float = 0.85
    """Gopher rule: fraction of lines repeating an earlier line (paper: 0.30)."""
    max_dup_para_fraction: float = 0.85
    """Gopher rule: fraction of paragraphs repeating an earlier paragraph (paper: 0.30)."""
    max_dup_line_char_fraction: float = 0.5
    """Gopher rule: characters in repeated lines / all characters (paper: 0.20)."""
    max_dup_para_char_fraction: float = 0.5
    """Gopher rule: characters in repeated paragraphs / all characters (paper: 0.20)."""
    top_ngram_min_n: int = 2
    top_ngram_max_fractions: tuple[float, ...] = (0.20, 0.20, 0.25)
    """Gopher rule: characters covered by the most frequent n-gram, n = ``top_ngram_min_n + i``.

    Paper: 0.20/0.18/0.16 (71 good pages); 3- and 4-gram loosened (28 good pages), losing 4 of 508 junk
    pages that other rules drop anyway: keyword stuffing's top 2-gram alone covers >= 0.18.
    """
    dup_ngram_min_n: int = 5
    dup_ngram_max_fractions: tuple[float, ...] = (0.80, 0.78, 0.76, 0.74, 0.72, 0.70)
    """Gopher rule: characters covered by repeated n-grams, n = ``dup_ngram_min_n + i`` (paper: 0.15..0.10)."""
    word_tokenizer: str = "whitespace"
    """Words of the n-grams: "whitespace" (the paper) or "spacy_en" (spaCy's English tokenizer, as
    datatrove), where "Frank," and "Frank." share the word "Frank"."""
    segments: str = "non_blank"
    """"non_blank": lines are the non-blank lines without trailing whitespace, paragraphs the blocks
    between blank lines. "newline_runs" (datatrove): the text split at runs of newlines and at runs of
    two or more newlines, compared as they are (trailing spaces and whitespace-only lines count)."""
    paragraphs_first: bool = False
    """Check the paragraph rules before the line rules (datatrove's order), which decides the reported
    reason when both fail."""
    ngram_denominator: str = "word_chars"
    """What the n-gram fractions divide by: "word_chars" (characters in words, whitespace excluded) or
    "text_chars" (every character of the text, as datatrove)."""
    top_ngram_ties: str = "longest"
    """Among equally frequent n-grams the top one is the "longest" (independent of order) or the
    "first" to occur (datatrove: ``Counter.most_common``)."""
    ngram_counting: str = "coverage"
    """"coverage" (the paper): the top n-gram counts only when it repeats, its characters are its words';
    duplicate n-grams count every word they cover once. "greedy" (datatrove): the top n-gram counts
    even when it occurs once, with the spaces between its words; duplicates are found left to right,
    an n-gram seen before adds its characters (words concatenated) and the scan jumps past it."""

    def __post_init__(self) -> None:
        if self.top_ngram_min_n < 1 or self.dup_ngram_min_n < 1:
            raise ValueError("n-gram sizes start at 1")
        _check_choice("word_tokenizer", self.word_tokenizer, WORD_TOKENIZERS)
        _check_choice("segments", self.segments, ("non_blank", "newline_runs"))
        _check_choice("ngram_denominator", self.ngram_denominator, ("word_chars", "text_chars"))
        _check_choice("top_ngram_ties", self.top_ngram_ties, ("longest", "first"))
        _check_choice("ngram_counting", self.ngram_counting, ("coverage", "greedy"))


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher (Rae et al. 2021, appendix A) quality filter for prose, plus two measured extensions."""

    enabled: bool = True
    min_words: int = 40
    """Gopher rule: 50..100,000 words. Lowered to 40: 40-49-word man pages and API stubs are 46 good
    pages (0.5%); too-short junk has <= 9 words."""
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    """Gopher rule: mean word length in [3, 10]."""
    max_mean_word_length: float = 40.0
    """Gopher rule: <= 10. Raised to 40: sysfs ABI listings and path tables (good on dev) average 11-40
    characters per word (206 good pages, 2.2%, at 10; 16 at 40); link farms fail the URL ratio."""
    max_symbol_word_ratio: float = 0.2
    """Gopher rule: '#' to word and ellipsis ('...', '…') to word ratios each <= 0.1. Raised to 0.2:
    C varargs, shell comments and "/sys/…/" paths: 47 good pages at 0.1, 19 at 0.2."""
    max_url_word_ratio: float = 0.1
    """Extension (link-farm detection): URLs (counted by their "://") per word.
    Dev: every link farm >= 0.19, every good English page < 0.08."""
    max_bullet_line_fraction: float = 0.9
    """Gopher rule: lines starting with a bullet <= 90%."""
    max_ellipsis_line_fraction: float = 0.3
    """Gopher rule: lines ending with an ellipsis <= 30%."""
    min_alpha_word_fraction: float = 0.4
    """Gopher rule: >= 80% of words contain a letter. Lowered to 0.4: register tables and hex dumps in
    kernel docs (559 good pages, 5.9%, at 0.8; 9 at 0.4); number/symbol junk is below 0.4 or has a mean
    word length under 3."""
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
    min_stop_words: int = 2
    """Gopher rule: >= 2 occurrences of ``stop_words``."""
    min_prose_stop_word_fraction: float = 0.02
    """Extension (stop-word ratio, as FineWeb-2 uses): stop words / words over the lines that end in
    terminal punctuation, checked when they hold >= ``prose_min_words`` words. Real English sentences
    are 5-25% stop words; word salad and lorem ipsum are < 1.5%. Tables and listings have no such
    lines, so they are not judged. Dev: below 0.02 for all 302 word-salad pages and 20 good pages."""
    prose_min_words: int = 20
    extensions: bool = True
    """Apply the two extensions above (URL ratio, stop words in prose); off for the published rules only."""
    word_tokenizer: str = "whitespace"
    """"whitespace" (the paper) or "spacy_en" (spaCy's English tokenizer, as datatrove)."""
    count_punctuation_words: bool = True
    """False (datatrove): tokens made only of punctuation ("-", "...") are left out of the word count
    and the mean word length; the symbol and alphabetic ratios still divide by every token."""
    bullets: tuple[str, ...] = ("-", "*", "•", "‣", "◦", "●", "▪", "∙")
    """Line starts counted as bullets (datatrove: "•" and "-")."""
    line_split: str = "non_blank"
    """Lines for the bullet and ellipsis ratios: "non_blank" lines, or every line of ``str.splitlines``
    ("splitlines", datatrove), blank ones included."""
    letter_test: str = "word_char"
    """A word is alphabetic when it has a "word_char" (a regex word character other than a decimal
    digit or "_") or an "isalpha" character (datatrove; differs for characters like "²" or "½")."""
    stop_word_count: str = "occurrences"
    """"occurrences" of the stop words, case-insensitive, or "distinct_tokens" (datatrove): how many
    different stop words occur as tokens, case-sensitive."""

    def __post_init__(self) -> None:
        if self.min_words > self.max_words or self.min_mean_word_length > self.max_mean_word_length:
            raise ValueError("a minimum is above its maximum")
        _check_choice("word_tokenizer", self.word_tokenizer, WORD_TOKENIZERS)
        _check_choice("line_split", self.line_split, ("non_blank", "splitlines"))
        _check_choice("letter_test", self.letter_test, ("word_char", "isalpha"))
        _check_choice("stop_word_count", self.stop_word_count, ("occurrences", "distinct_tokens"))


@dataclass(frozen=True)
class C4Config:
    """C4 (Raffel et al. 2020; TFDS ``c4_utils.py``) page and line rules."""

    enabled: bool = True
    drop_lorem_ipsum: bool = True
    """C4 rule: drop pages containing "lorem ipsum"."""
    drop_curly_bracket: bool = False
    """C4 rule: drop pages containing '{'. DEFAULT OFF: our web text is technical documentation
    (C, shell, SQL, JSON examples) where braces are normal, so the rule would drop good pages."""
    max_word_length: int = 1000
    """C4 rule: drop pages with a word over 1000 characters."""
    remove_javascript_lines: bool = True
    """C4 rule: remove lines mentioning "javascript"."""
    remove_boilerplate_lines: bool = True
    """C4 rule: remove lines containing one of ``boilerplate_phrases`` (lower-case substrings)."""
    boilerplate_phrases: tuple[str, ...] = (
        # C4's policy substrings.
        "terms of use",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
        # Extension: consent-banner, legal-footer and site-navigation chrome. On dev these lines occur
        # in good pages only as boilerplate pasted around near-duplicate copies (and copyright lines).
        "terms of service",
        "privacy notice",
        "all rights reserved",
        "do not sell or share",
        "accept all cookies",
        "strictly necessary cookies",
        "cookie preferences",
        "manage preferences",
        "personal data",
        "without warranty of any kind",
        "earn a commission",
        "skip to main content",
        "skip to content",
        "toggle navigation",
        "back to top",
        "subscribe to our newsletter",
        "follow us",
        "powered by",
        "sitemap",
        "recent posts",
    )
    max_boilerplate_word_fraction: float = 0.3
    """Extension: drop the page when removed lines held more than this fraction of its words (a
    cookie banner or navigation page, not an article with a footer). Dev: cookie/legal and navigation
    junk lose more than 0.3 (370 of 385; other rules drop the rest), no good page more than 0.28."""
    min_sentences: int = 0
    """C4 rule: drop pages with fewer than 5 sentences (TFDS ``c4_utils``; counted after line removal).
    DEFAULT 0 (off): on dev, 3 would drop 230 more good pages (tables, ABI listings, option lists; 2.4%) for 18 more
    junk pages (0.8%); even 1 would drop 105 good pages for 3 junk pages."""
    remove_unterminated_lines: bool = False
    """C4 rule: remove lines not ending in terminal punctuation. DEFAULT OFF: it deletes headings,
    code, tables and option lists from technical text."""
    min_words_per_line: int = 0
    """C4 rule: remove lines with fewer words (TFDS ``c4_utils`` and datatrove: 3). DEFAULT 0 (off) for the same
    reason as ``remove_unterminated_lines``."""
    line_pass: str = "page_then_lines"
    """"page_then_lines": the page rules (lorem ipsum, curly bracket, word length) judge the whole
    page, then lines are removed and blank lines kept. "single_pass" (TFDS ``c4_utils`` and datatrove):
    one pass over the ``str.splitlines`` lines, each stripped, then in this order: a word over
    ``max_word_length`` removes the line, citations are deleted, an unterminated or short line is
    removed, "lorem ipsum" drops the page, a javascript line is removed, '{' drops the page, a policy
    line is removed; so only lines that survived the earlier line rules can drop the page, and the
    first such line names the reason. Kept lines are joined by newlines, blank lines dropped."""
    remove_citations: bool = False
    """C4 rule: delete "[1]", "[edit]" and "[citation needed]" from lines (``single_pass`` only)."""
    terminal_punctuation: tuple[str, ...] = TERMINAL_PUNCTUATION
    """Line ends that count as terminated for ``remove_unterminated_lines`` (C4: . ? ! " ')."""
    ellipsis_terminates: bool = True
    """False (C4): a line ending in "..." is unterminated."""
    sentence_splitter: str = "regex"
    """How ``min_sentences`` counts: "regex" (sentence-final punctuation before whitespace) or
    "spacy_en" (spaCy's rule-based sentencizer on each kept line, as datatrove)."""
    min_paragraphs: int = 0
    """mC4 rule (Xue et al., 2021; datatrove ``C4ParagraphFilter``): drop pages with fewer than this
    many lines of at least ``min_paragraph_chars`` characters, judged on the unedited page (mC4: 3).
    DEFAULT 0 (off), and off in the strict profile: English C4 does not use it; it is the mC4 rule."""
    min_paragraph_chars: int = 200

    def __post_init__(self) -> None:
        _check_choice("line_pass", self.line_pass, ("page_then_lines", "single_pass"))
        _check_choice("sentence_splitter", self.sentence_splitter, ("regex", "spacy_en"))


@dataclass(frozen=True)
class FineWebConfig:
    """FineWeb (Penedo et al. 2024) quality filter, datatrove ``FineWebQualityFilter`` semantics.

    Its thresholds were fit to Common Crawl prose; on technical documentation the converted HTML
    puts headings, table cells and list items on lines of their own, so three limits are loosened
    to where they still flag degenerate pages without dropping good ones.
    """

    enabled: bool = True
    min_line_punct_fraction: float = 0.0
    """FineWeb rule: >= 12% of non-blank lines end in terminal punctuation. DEFAULT 0 (off): 18% of
    good technical pages are below 0.12 and 3.1% have no such line at all."""
    max_short_line_fraction: float = 0.98
    """FineWeb rule: <= 67% of non-blank lines are ``short_line_length`` characters or shorter.
    Raised: tables rendered one cell per line put 8.2% of good pages over 0.67, 0.2% over 0.98."""
    short_line_length: int = 30
    max_dup_line_char_fraction: float = 0.5
    """FineWeb rule: characters in duplicated lines / non-newline characters <= 1%. Raised: repeated
    headings and table separators put 38% of good pages over 1%, 0.1% over 0.5."""
    max_newline_word_ratio: float = 2.0
    """FineWeb rule: newlines / words <= 0.3. Raised: 15% of good pages exceed 0.3 (one table cell per
    line), the highest reaches 2.07."""
    word_tokenizer: str = "whitespace"
    """Words for the newline ratio: "whitespace" or "spacy_en" (spaCy's English tokenizer, as datatrove)."""
    strip_lines: bool = True
    """Lines lose their trailing whitespace before they are judged; False (datatrove): a line ending
    in ". " does not end in punctuation, and its spaces count towards its length."""
    line_end: str = "with_quotes"
    """Line ends that count as punctuation: "with_quotes" (. ! ? … 。！？ and closing quotes) or
    "unicode" (Unicode sentence terminals, datatrove's list; no quotes, no "…")."""

    def __post_init__(self) -> None:
        _check_choice("word_tokenizer", self.word_tokenizer, WORD_TOKENIZERS)
        _check_choice("line_end", self.line_end, LINE_END_STYLES)


@dataclass(frozen=True)
class CodeConfig:
    """Source-code rules after The Stack / StarCoder practice."""

    enabled: bool = True
    max_line_length: int = 1000
    """The Stack rule: drop files whose longest line exceeds 1000 characters."""
    max_mean_line_length: float = 100.0
    """The Stack rule: drop files whose mean line length exceeds 100 characters."""
    min_alnum_fraction: float = 0.25
    """The Stack rule: drop files with fewer than 25% alphanumeric characters."""
    autogen_markers: tuple[str, ...] = ("auto-generated", "autogenerated", "generated by", "do not edit")
    """StarCoder rule: drop files with one of these (lower-case) markers in their first lines.
    Dev: 2.2% of the code files (generated C headers) carry one; empty the tuple to keep them."""
    autogen_header_lines: int = 5
    max_data_line_fraction: float = 0.5
    """Data-dump rule: drop files where most non-blank lines are only numbers / hex / base64."""


@dataclass(frozen=True)
class MathRepetitionConfig(GopherRepetitionConfig):
    """Gopher repetition limits for math, looser than web's.

    LaTeX test files and class documentation repeat ``\\item`` lines, table rows and filler text
    ("bla bla"); web's limits drop 120 of 3,750 good math documents on dev (3.2%), these 50 (1.3%).
    A mostly repeated file still fails (its top 2-gram alone covers > 40% of the characters).
    """

    max_dup_line_char_fraction: float = 0.7
    max_dup_para_char_fraction: float = 0.7
    top_ngram_max_fractions: tuple[float, ...] = (0.4, 0.4, 0.4)
    dup_ngram_max_fractions: tuple[float, ...] = (0.90, 0.89, 0.88, 0.87, 0.86, 0.85)


@dataclass(frozen=True)
class MathConfig:
    """Lenient rules for formula-dense math (LaTeX source, math manuals): no prose rules."""

    enabled: bool = True
    """Off skips every math rule, the repetition limits below included."""
    repetition: MathRepetitionConfig = field(default_factory=MathRepetitionConfig)
    min_words: int = 10
    """Drop fragments too short to carry content."""
    max_line_length: int = 10_000
    """Drop files with a line longer than this (embedded data, minified output)."""


@dataclass(frozen=True)
class HeuristicsConfig:
    """All heuristic rule sets; ``apply_heuristics`` picks the ones for a document's domain."""

    common: CommonConfig = field(default_factory=CommonConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    code: CodeConfig = field(default_factory=CodeConfig)
    math: MathConfig = field(default_factory=MathConfig)
