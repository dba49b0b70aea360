"""The one text preprocessing of every classifier, shared by training and inference so they cannot drift.

fastText reads one example per line and splits on whitespace, so the text becomes one line of
tokens: lower-cased words, each punctuation character a token of its own (braces, semicolons,
backslashes and dollar signs are what tell code and LaTeX from prose), and every line break a
`␤` token (short navigation lines, repeated lines and list-like junk show in how lines end).
U+FFFD replacement characters are removed: decoding damage is judged by the heuristics' calibrated
replacement-character share, and a model that learned it from generated mojibake dropped good pages
carrying a single one. Only the first `max_chars` characters are read: the label of a document shows
early, and the stage's cost grows with the text it reads.
"""

from __future__ import annotations

import re

DEFAULT_MAX_CHARS = 1500
LINE_BREAK = "\u2424"  # ␤: not a word character and not whitespace, so it is a token of its own
_BREAK = re.compile(r"\n\s*")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def preprocess(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """`text` as the single line of space-separated tokens that fastText trains and predicts on."""
    sample = _BREAK.sub(f" {LINE_BREAK} ", text[:max_chars].lower().replace("\ufffd", ""))
    return " ".join(_TOKEN.findall(sample))
