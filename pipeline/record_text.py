"""What the shared stages read and edit in a record: a document's text, or every turn of a chat record.

A chat record (an SFT example, or a preference pair) is a document that also carries `turns`,
`[[role, text], ...]`. Its `text` is the model's answers joined, which is what classifiers judge
(the tokens the model learns from); stages that edit text (PII) edit every turn and rebuild `text`,
exact dedupe compares the whole conversation, so two examples with the same answer to different
prompts both stay, prompt dedupe compares the user turns alone, and decontamination matches every
turn, so a benchmark question pasted into a prompt is found as surely as one in an answer. A
preference pair's turns end with its chosen answer and it also carries `rejected`, the dispreferred
answer: edited with the turns, part of its identity, and not judged by classifiers (a harmful
rejected answer is what such a pair teaches against).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gemmaflow.core.chat import MODEL, USER
from gemmaflow.pipeline.dedupe import text_hash
from gemmaflow.pipeline.sft import dedupe_key

TURNS = "turns"
REJECTED_ANSWER = "rejected"
ANSWER_SEPARATOR = "\n\n"


def answers_text(turns: Sequence[Sequence[str]]) -> str:
    """The model turns of a conversation, joined: the chat record's `text`."""
    return ANSWER_SEPARATOR.join(text for role, text in turns if role == MODEL)


def prompt_text(doc: dict[str, Any]) -> str:
    """A chat record's user turns, joined: what prompt dedupe compares."""
    return ANSWER_SEPARATOR.join(text for role, text in doc[TURNS] if role == USER)


def matched_text(doc: dict[str, Any]) -> str:
    """What decontamination matches: the text, or a chat record's every turn (prompts and answers) joined."""
    return ANSWER_SEPARATOR.join(editable_texts(doc))


def editable_texts(doc: dict[str, Any]) -> list[str]:
    """The texts a text-editing stage must edit: every turn of a chat record, else the one text."""
    turns = doc.get(TURNS)
    if turns is None:
        return [doc["text"]]
    texts = [text for _, text in turns]
    return [*texts, doc[REJECTED_ANSWER]] if REJECTED_ANSWER in doc else texts


def replace_texts(doc: dict[str, Any], texts: Sequence[str]) -> None:
    """Write edited texts back, in `editable_texts` order; a chat record's `text` is rebuilt from its turns."""
    turns = doc.get(TURNS)
    if turns is None:
        (doc["text"],) = texts
        return
    if REJECTED_ANSWER in doc:
        *texts, doc[REJECTED_ANSWER] = texts
    for turn, text in zip(turns, texts, strict=True):
        turn[1] = text
    doc["text"] = answers_text(turns)


def identity_hash(doc: dict[str, Any]) -> str:
    """What exact dedupe groups by: the text's hash, or a chat record's normalised whole conversation."""
    turns = doc.get(TURNS)
    if turns is None:
        return text_hash(doc["text"])
    pair = ((REJECTED_ANSWER, doc[REJECTED_ANSWER]),) if REJECTED_ANSWER in doc else ()
    return dedupe_key((*(tuple(turn) for turn in turns), *pair))
