"""C4 page and line rules (Raffel et al. 2020; TFDS ``c4_utils.py``).

Page rules drop the document; line rules delete lines and report how many, so the caller can count
page drops and line edits separately. Blank lines are never removed, so paragraph structure
survives an edit. One extension: a page whose removed lines held most of its words was boilerplate
(a cookie banner, a navigation page) and is dropped rather than kept as a stub.

``C4Config.line_pass = "single_pass"`` runs C4's own algorithm instead (TFDS ``c4_utils``, as
datatrove's ``C4QualityFilter``): one pass over the lines, where the page rules only see the lines
that survived the line rules before them. The mC4 paragraph rule (``min_paragraphs``) is checked
first, on the unedited page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gemmaflow.pipeline.heuristics.config import C4Config
from gemmaflow.pipeline.heuristics.punctuation import CITATION
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio
from gemmaflow.pipeline.heuristics.words import spacy_sentence_count

NAME = "c4"

# A sentence ends at ".", "!" or "?" (possibly closed by quotes or brackets) before whitespace or
# the end of the text; TFDS counts sentences with a tokenizer, this keeps the rule dependency-free.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


@dataclass(frozen=True)
class LineEdit:
    """The text after C4's line removal, and how many non-blank lines were removed."""

    stats: TextStats
    lines_removed: int


def _terminated(line: str, cfg: C4Config) -> bool:
    """Whether ``line`` (trailing whitespace stripped) ends in ``cfg.terminal_punctuation``."""
    return line.endswith(cfg.terminal_punctuation) and (cfg.ellipsis_terminates or not line.endswith("..."))


def check_paragraphs(stats: TextStats, cfg: C4Config, signals: Signals) -> str | None:
    """mC4's rule: at least ``min_paragraphs`` lines of ``min_paragraph_chars`` characters or more."""
    if cfg.min_paragraphs <= 0:
        return None
    long_lines = sum(len(line) >= cfg.min_paragraph_chars for line in stats.raw_lines)
    if falls_short(signals, f"{NAME}.long_line_count", long_lines, cfg.min_paragraphs):
        return "too_few_paragraphs"
    return None


def check_page(stats: TextStats, cfg: C4Config, signals: Signals) -> str | None:
    """Page-level drop reason on the unedited text (without the ``c4.`` prefix) or None."""
    if cfg.drop_lorem_ipsum and "lorem ipsum" in stats.lower:
        return "lorem_ipsum"
    if cfg.drop_curly_bracket and "{" in stats.text:
        return "curly_bracket"
    if exceeds(signals, f"{NAME}.max_word_length", max(stats.word_lengths, default=0), cfg.max_word_length):
        return "word_too_long"
    return None


def _boilerplate_markers(cfg: C4Config) -> tuple[str, ...]:
    """Lower-case substrings that make a line boilerplate under the enabled line rules."""
    javascript = ("javascript",) if cfg.remove_javascript_lines else ()
    return javascript + (cfg.boilerplate_phrases if cfg.remove_boilerplate_lines else ())


def _keep_line(line: str, markers: tuple[str, ...], cfg: C4Config) -> bool:
    if not line or line.isspace():
        return True
    lowered = line.lower()
    if any(marker in lowered for marker in markers):
        return False
    if cfg.remove_unterminated_lines and not _terminated(line.rstrip(), cfg):
        return False
    return len(line.split()) >= cfg.min_words_per_line


def remove_lines(stats: TextStats, cfg: C4Config) -> LineEdit:
    """Delete boilerplate lines; returns the same ``stats`` object when nothing is removed."""
    markers = _boilerplate_markers(cfg)
    per_line_rules = cfg.remove_unterminated_lines or cfg.min_words_per_line > 0
    if not per_line_rules and not any(marker in stats.lower for marker in markers):
        return LineEdit(stats, 0)  # fast path: no line can match, skip the per-line loop
    kept = [line for line in stats.raw_lines if _keep_line(line, markers, cfg)]
    removed = len(stats.raw_lines) - len(kept)
    return LineEdit(TextStats("\n".join(kept)) if removed else stats, removed)


def single_pass(stats: TextStats, cfg: C4Config) -> tuple[str | None, LineEdit]:
    """C4's one pass over the lines: (page drop reason or None, the edited text)."""
    policy = cfg.boilerplate_phrases if cfg.remove_boilerplate_lines else ()
    kept: list[str] = []
    for line in stats.text.splitlines():
        line = line.strip()
        words = line.split()
        if any(len(word) > cfg.max_word_length for word in words):
            continue
        if cfg.remove_citations:
            line = CITATION.sub("", line)
        if cfg.remove_unterminated_lines and not _terminated(line, cfg):
            continue
        if len(words) < cfg.min_words_per_line:
            continue
        lowered = line.lower()
        if cfg.drop_lorem_ipsum and "lorem ipsum" in lowered:
            return "lorem_ipsum", LineEdit(stats, 0)
        if cfg.remove_javascript_lines and "javascript" in lowered:
            continue
        if cfg.drop_curly_bracket and "{" in line:
            return "curly_bracket", LineEdit(stats, 0)
        if any(phrase in lowered for phrase in policy):
            continue
        kept.append(line)
    text = "\n".join(kept).strip()
    if text == stats.text:
        return None, LineEdit(stats, 0)
    non_blank = sum(1 for line in stats.text.splitlines() if line.strip())
    return None, LineEdit(TextStats(text), non_blank - sum(1 for line in kept if line))


def _sentence_count(edited: TextStats, cfg: C4Config) -> int:
    if cfg.sentence_splitter == "spacy_en":
        return sum(map(spacy_sentence_count, edited.lines))
    return len(_SENTENCE_END.findall(edited.text))


def run(stats: TextStats, cfg: C4Config, signals: Signals) -> tuple[str | None, LineEdit]:
    """Every C4 rule in ``cfg.line_pass`` order: (drop reason without the ``c4.`` prefix, the edit).

    A page rule's drop comes with the unedited text; the edited-page rules' with the edited one.
    """
    unedited = LineEdit(stats, 0)
    reason = check_paragraphs(stats, cfg, signals)
    if reason:
        return reason, unedited
    if cfg.line_pass == "single_pass":
        reason, edit = single_pass(stats, cfg)
    else:
        reason = check_page(stats, cfg, signals)
        edit = unedited if reason else remove_lines(stats, cfg)
    if reason:
        return reason, unedited
    return check_edited(stats, edit.stats, cfg, signals), edit


def check_edited(original: TextStats, edited: TextStats, cfg: C4Config, signals: Signals) -> str | None:
    """Drop reason for the text left by ``remove_lines`` (without the ``c4.`` prefix) or None."""
    if not edited.text.strip():
        return "no_lines_left"
    removed_fraction = ratio(len(original.words) - len(edited.words), len(original.words))
    if exceeds(signals, f"{NAME}.boilerplate_word_fraction", removed_fraction, cfg.max_boilerplate_word_fraction):
        return "too_much_boilerplate"
    if cfg.min_sentences > 0:  # off by default: skip the count
        sentences = _sentence_count(edited, cfg)
        if falls_short(signals, f"{NAME}.sentence_count", sentences, cfg.min_sentences):
            return "too_few_sentences"
    return None
