"""Character classes of datatrove's filters (the FineWeb reference code), for the strict web profile.

``"unicode"`` line ends are Unicode's Sentence_Terminal characters ('.', '!', '?', '。', '।', ...),
which is what datatrove's terminal-punctuation list enumerates. Its list was taken from an older
Unicode release and adds three Khmer signs, so the class here adds those three and leaves out the
sixteen characters that later releases made sentence terminals (U+2024 ONE DOT LEADER, vertical
presentation forms and new scripts): the same set, whatever Unicode version ``regex`` ships. Unlike
gemmaflow's default line ends it has no closing quotes and no ellipsis character.

A punctuation-only token ("-", "...", "»") is not a word for Gopher's word count in datatrove: its
list is the ASCII punctuation, the C0/C1 control characters other than tab and newline, the
sentence terminals, and a set of typographic and full-width marks.
"""

from __future__ import annotations

import re
import string

import regex

_CONTROLS = r"\x00-\x08\x0b\x0c\r\x0e-\x1f\x7f-\x9f"
# Typographic and full-width marks of the list (the full-width digit one is in it, too).
_MARKS = "—–”“„’´«»►━∶、，；．：（）～？！％〈〉《》【】「」。…１"
_NEWER_TERMINALS = (
    r"\u1b4e\u1b4f\u1b7f\u2024\u2cf9-\u2cfb\u2e60\u2e61\ufe12\ufe15\ufe16"
    r"\U000113d4\U000113d5\U00016d6e\U00016d6f"
)
_SENTENCE_TERMINAL = rf"[\p{{Sentence_Terminal}}\u17d6\u17d9\u17da]--[{_NEWER_TERMINALS}]"

_TERMINAL = regex.compile(f"[{_SENTENCE_TERMINAL}]", regex.V1)
_PUNCTUATION_ONLY = regex.compile(
    f"[[{_SENTENCE_TERMINAL}]{_CONTROLS}{regex.escape(string.punctuation + _MARKS)}]+", regex.V1
)

LINE_END_STYLES = ("with_quotes", "unicode")


def ends_in_sentence_terminal(line: str) -> bool:
    """Whether the last character of ``line`` is a Unicode sentence terminal."""
    return bool(line) and _TERMINAL.fullmatch(line[-1]) is not None


def is_punctuation_only(token: str) -> bool:
    """Whether every character of ``token`` is in datatrove's punctuation list."""
    return _PUNCTUATION_ONLY.fullmatch(token) is not None


CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
"""Wikipedia-style citation markers that C4 (TFDS ``c4_utils``) deletes from a line before judging it."""
