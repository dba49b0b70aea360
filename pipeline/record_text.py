"""What the shared stages read and edit in a record: a document's text, or every turn of a chat record.

A chat record (an SFT example; preference pairs later) is a document that also carries `turns`,
`[[role, text], ...]`. Its `text` is the model's answers joined, which is what classifiers judge
(the tokens the model learns from); stages that edit text (PII) edit every turn and rebuild `text`,
and exact dedupe compares the whole conversation, so two examples with the same answer to
different prompts both stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gemmaflow.core.chat import MODEL
from gemmaflow.pipeline.dedupe import text_hash
from gemmaflow.pipeline.sft import dedupe_key

TURNS = "turns"
ANSWER_SEPARATOR = "\n\n"


def answers_text(turns: Sequence[Sequence[str]]) -> str:
    """The model turns of a conversation, joined: the chat record's `text`."""
    return ANSWER_SEPARATOR.join(text for role, text in turns if role == MODEL)


def editable_texts(doc: dict[str, Any]) -> list[str]:
    """The texts a text-editing stage must edit: every turn of a chat record, else the one text."""
    turns = doc.get(TURNS)
    return [text for _, text in turns] if turns is not None else [doc["text"]]


def replace_texts(doc: dict[str, Any], texts: Sequence[str]) -> None:
    """Write edited texts back, in `editable_texts` order; a chat record's `text` is rebuilt from its turns."""
    turns = doc.get(TURNS)
    if turns is None:
        (doc["text"],) = texts
        return
    for turn, text in zip(turns, texts, strict=True):
        turn[1] = text
    doc["text"] = answers_text(turns)


def identity_hash(doc: dict[str, Any]) -> str:
    """What exact dedupe groups by: the text's hash, or a chat record's normalised whole conversation."""
    turns = doc.get(TURNS)
    return text_hash(doc["text"]) if turns is None else dedupe_key(tuple(tuple(turn) for turn in turns))
