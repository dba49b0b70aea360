"""C4 page and line rules (Raffel et al. 2020; TFDS ``c4_utils.py``).

Page rules drop the document; line rules delete lines and report how many, so the caller can count
page drops and line edits separately. Blank lines are never removed, so paragraph structure
survives an edit. One extension: a page whose removed lines held most of its words was boilerplate
(a cookie banner, a navigation page) and is dropped rather than kept as a stub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gemmaflow.pipeline.heuristics.config import C4Config
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TERMINAL_PUNCTUATION, TextStats, ratio

NAME = "c4"

# A sentence ends at ".", "!" or "?" (possibly closed by quotes or brackets) before whitespace or
# the end of the text; TFDS counts sentences with a tokenizer, this keeps the rule dependency-free.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


@dataclass(frozen=True)
class LineEdit:
    """The text after C4's line removal, and how many non-blank lines were removed."""

    stats: TextStats
    lines_removed: int


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
    if cfg.remove_unterminated_lines and not line.rstrip().endswith(TERMINAL_PUNCTUATION):
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


def check_edited(original: TextStats, edited: TextStats, cfg: C4Config, signals: Signals) -> str | None:
    """Drop reason for the text left by ``remove_lines`` (without the ``c4.`` prefix) or None."""
    if not edited.text.strip():
        return "no_lines_left"
    removed_fraction = ratio(len(original.words) - len(edited.words), len(original.words))
    if exceeds(
        signals, f"{NAME}.boilerplate_word_fraction", removed_fraction, cfg.max_boilerplate_word_fraction
    ):
        return "too_much_boilerplate"
    if cfg.min_sentences > 0:  # off by default: skip the count
        sentences = len(_SENTENCE_END.findall(edited.text))
        if falls_short(signals, f"{NAME}.sentence_count", sentences, cfg.min_sentences):
            return "too_few_sentences"
    return None
