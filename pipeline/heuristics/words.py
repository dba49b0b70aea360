"""Word and sentence splitting for the rules that count words or sentences.

Two tokenisations, chosen per rule set in its config: ``"whitespace"`` splits at whitespace as the
Gopher paper (Rae et al., 2021) describes, so punctuation stays glued to words ("Frank," and
"Frank." are different words); ``"spacy_en"`` is spaCy's rule-based English tokenizer (a blank
``en`` pipeline, no model), which is what HuggingFace datatrove's filters tokenise English with:
punctuation, clitics ("'s") and brackets become tokens of their own. Its tokens are stripped and
whitespace tokens dropped, as datatrove does, and its sentences come from spaCy's rule-based
``sentencizer``. Loading spaCy costs a few seconds, paid once per process on first use.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

WORD_TOKENIZERS = ("whitespace", "spacy_en")

# Gopher repetition, Gopher quality and FineWeb all tokenise the same text in turn; a few entries
# let them share one tokenisation without keeping a corpus of token lists alive.
_CACHED_TEXTS = 4


@cache
def _english() -> Language:
    """A blank English pipeline with the sentencizer; built-in components only.

    A new spaCy pipeline first imports every component that installed packages register as a spaCy
    plugin; presidio's pulls in transformers and TensorFlow (20 s and more). The tokenizer and the
    sentencizer are spaCy's own, so plugin loading is switched off while the pipeline is built.
    """
    import spacy
    from spacy import util

    plugins = getattr(util.registry, "_entry_point_factories", None)
    loads_plugins = getattr(plugins, "entry_points", False)
    if plugins is not None:
        plugins.entry_points = False
    try:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
    finally:
        if plugins is not None:
            plugins.entry_points = loads_plugins
    return nlp


def _parse(nlp: Language, text: str, with_sentences: bool) -> list:
    nlp.max_length = max(nlp.max_length, len(text) + 1)  # the tokenizer alone has no length problem
    return nlp(text) if with_sentences else nlp.tokenizer(text)


@lru_cache(maxsize=_CACHED_TEXTS)
def spacy_words(text: str) -> tuple[str, ...]:
    """spaCy English tokens of ``text``, stripped, whitespace-only tokens left out."""
    nlp = _english()
    with nlp.memory_zone():  # frees the strings interned for this text: the vocabulary stays small
        stripped = (token.text.strip() for token in _parse(nlp, text, with_sentences=False))
        return tuple(word for word in stripped if word)


def words(text: str, tokenizer: str) -> tuple[str, ...] | list[str]:
    """``text``'s words under ``tokenizer`` (one of ``WORD_TOKENIZERS``)."""
    if tokenizer == "whitespace":
        return text.split()
    if tokenizer == "spacy_en":
        return spacy_words(text)
    raise ValueError(f"unknown word tokenizer {tokenizer!r}; expected one of {WORD_TOKENIZERS}")


def spacy_sentence_count(text: str) -> int:
    """Sentences spaCy's ``sentencizer`` finds in ``text``; a text without a sentence end is one."""
    nlp = _english()
    with nlp.memory_zone():
        return max(1, sum(1 for _ in _parse(nlp, text, with_sentences=True).sents))
