"""Universal pre-checks run on every document, whatever its domain: empty and mis-decoded text."""

from __future__ import annotations

import re

from gemmaflow.pipeline.heuristics.config import CommonConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "common"

# UTF-8 bytes decoded as Latin-1 / cp1252 turn each multi-byte character into a lead character
# U+00C2..U+00EF ("Ã", "Â", "â", "Ð", ...) followed by a continuation byte rendered as U+0080..U+00BF
# or one of cp1252's 0x80..0x9F glyphs ("€", "™", curly quotes, dashes). Real text almost never
# has such a pair; U+FFFD is the decoder's own replacement character.
_LEADS = "\u00c2-\u00ef"
_CP1252_CONTINUATIONS = (
    "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
_MISDECODED = re.compile(f"[{_LEADS}][{_CP1252_CONTINUATIONS}]|\ufffd")
_SUSPECT = re.compile(f"[{_LEADS}\ufffd]")  # cheap pre-scan: no lead character, no pair


def misdecoded_count(text: str) -> int:
    """Replacement characters plus mis-decoded UTF-8 pairs in ``text``."""
    if text.isascii() or not _SUSPECT.search(text):
        return 0
    return len(_MISDECODED.findall(text))


def check(stats: TextStats, cfg: CommonConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``common.`` prefix) or None to keep."""
    text = stats.text
    if not text or text.isspace():
        return "empty"
    fraction = ratio(misdecoded_count(text), len(text))
    if exceeds(signals, f"{NAME}.replacement_char_fraction", fraction, cfg.max_replacement_char_fraction):
        return "too_many_replacement_chars"
    return None
