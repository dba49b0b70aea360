"""The spaCy NER model behind PERSON (and LOCATION): loaded once, only its NER component, fed windows.

The model is looked up by module name among those installed; nothing is ever downloaded. When none
is importable, `load_ner_model` returns None and the scrubber runs pattern-only (one warning per
process and a `ner_unavailable` count per document that needed NER).

NER reads only windows of prose: runs of lines holding two adjacent capitalised words (a name needs
at least that shape). Formulas, option tables and LaTeX markup without such a pair never reach the
model, which is most of the cost saved on technical text.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import regex
import spacy
from spacy.language import Language

from gemmaflow.pipeline.pii import entities as E

# spaCy labels and the presidio entities they become (presidio's SpacyNlpEngine mapping, restricted
# to the two entity types asked of NER); everything else the model finds is ignored.
MODEL_LABELS = {"PERSON": E.PERSON, "PER": E.PERSON, "GPE": E.LOCATION, "LOC": E.LOCATION}


def model_entity(label: str) -> str | None:
    return MODEL_LABELS.get(label)
# Two capitalised words side by side, optionally with an initial or a particle between them.
_NAME_SHAPE = regex.compile(
    r"\b\p{Lu}[\p{Ll}'’-]+(?:[ \t]+(?:\p{Lu}\.|van|von|de|del|da|di|du|der|den|la|le|bin|al))*[ \t]+\p{Lu}[\p{Ll}'’-]+"
)

# The small English model also tags identifiers and formulas as PERSON ("str", "json", "P_2…P_p.",
# "N≥13"); replacing those damages code and text and protects no one. A span with no capital letter,
# or with a character of code or mathematics, is not taken for a name. Digits and commas stay
# allowed: the spans the model gives around street addresses are PII, whatever their label.
_NOT_IN_NAMES = regex.compile(r"[_=<>≤≥(){}\[\]|\\^$#*+~;“”\"…/]")


def plausible_name(span: str) -> bool:
    return regex.search(r"\p{Lu}", span) is not None and _NOT_IN_NAMES.search(span) is None


@dataclass(frozen=True)
class NerModel:
    """A loaded spaCy pipeline, NER only."""

    name: str
    nlp: Language


def load_ner_model(names: Sequence[str]) -> NerModel | None:
    """The first of `names` that is an importable spaCy model package, with only its NER loaded."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            continue
        nlp: Language = spacy.load(name)
        # Keep NER and whatever it listens to (a shared tok2vec or transformer in some pipelines;
        # the small English model's NER has its own embedding layer, so only `ner` stays).
        keep = {"ner"} | {n for n, pipe in nlp.pipeline if "ner" in getattr(pipe, "listener_map", {})}
        for component in [n for n in nlp.component_names if n not in keep]:
            nlp.remove_pipe(component)
        return NerModel(name, nlp)
    return None


def prose_windows(text: str, max_chars: int = 2000) -> Iterator[tuple[int, int]]:
    """(start, end) spans of consecutive lines holding a name-shaped word pair, at most ~max_chars long."""
    start = end = -1
    for match in _NAME_SHAPE.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end < 0 else line_end
        if start >= 0 and line_start <= end:  # another pair on a line already in the window
            continue
        if start >= 0 and line_start == end + 1 and line_end - start <= max_chars:
            end = line_end
            continue
        if start >= 0:
            yield from _split(text, start, end, max_chars)
        start, end = line_start, line_end
    if start >= 0:
        yield from _split(text, start, end, max_chars)


def _split(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut one over-long line at whitespace so no window exceeds max_chars (huge documents)."""
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = start + max_chars if cut < 0 else cut
        yield start, cut
        start = cut
    yield start, end
