"""SFT examples: parsing dolly and chat records into Gemma turns, validation reasons, and token ids with loss masks.

Gemma's chat format (`gemmaflow.core.chat`): exactly one BOS, then per turn
`<start_of_turn>{user|model}\\n{text}<end_of_turn>\\n`. There is no system role: system text is
folded into the first user turn, and dolly's `context` is folded into the user turn after the
instruction. The loss mask is 1 on the model's answer and its `<end_of_turn>`, 0 elsewhere.
Turn texts are stripped of surrounding whitespace, as Gemma's own chat template does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sentencepiece as spm

from gemmaflow.core.chat import END_OF_TURN, MODEL, START_OF_TURN, TURN_END, USER, role_header
from gemmaflow.pipeline.dedupe import text_hash
from gemmaflow.pipeline.tokenize import piece_id

_CHAT_ROLES = {"user": USER, "assistant": MODEL, "model": MODEL, "system": "system"}

Turns = tuple[tuple[str, str], ...]  # ((role, text), ...), roles alternating user, model, ...


@dataclass(frozen=True)
class Invalid:
    """Why a record cannot become an SFT example (the dead-letter reason and a detail)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Conversation:
    turns: Turns
    category: str  # dolly's category, or "chat"


def _text_field(record: dict[str, Any], key: str, role: str, required: bool) -> str | Invalid:
    value = record.get(key)
    if value is None:
        if required:
            return Invalid(f"missing_{role}", f"no `{key}` field")
        return ""
    if not isinstance(value, str):
        return Invalid("field_not_string", f"`{key}` is a {type(value).__name__}")
    return value.strip()


def _from_dolly(record: dict[str, Any], context_separator: str) -> Conversation | Invalid:
    fields = {}
    for key, role, required in (("response", "response", True), ("instruction", "instruction", True),
                                ("context", "context", False)):
        value = _text_field(record, key, role, required)
        if isinstance(value, Invalid):
            return value
        fields[key] = value
    if not fields["instruction"]:
        return Invalid("empty_turn", "`instruction` is empty")
    if not fields["response"]:
        return Invalid("empty_turn", "`response` is empty")
    prompt = fields["instruction"]
    if fields["context"]:
        prompt += context_separator + fields["context"]
    category = record.get("category")
    return Conversation(((USER, prompt), (MODEL, fields["response"])), category if isinstance(category, str) else "")


def _from_chat(messages: Any, context_separator: str) -> Conversation | Invalid:
    if not isinstance(messages, list) or not messages:
        return Invalid("bad_messages", "`messages` must be a non-empty list")
    turns: list[tuple[str, str]] = []
    system = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return Invalid("bad_message", f"message {i} is not an object with string `content`")
        raw_role = message.get("role")
        role = _CHAT_ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            return Invalid("bad_role", f"message {i} has role {raw_role!r}")
        text = message["content"].strip()
        if not text:
            return Invalid("empty_turn", f"message {i} ({role}) is empty")
        if role == "system":
            if i != 0:
                return Invalid("bad_role_order", f"system message at position {i}; only the first may be system")
            system = text
            continue
        expected = USER if len(turns) % 2 == 0 else MODEL
        if role != expected:
            return Invalid("bad_role_order", f"message {i} is {role}, expected {expected}")
        if system and role == USER and not turns:
            text = system + context_separator + text
        turns.append((role, text))
    if not turns or turns[-1][0] != MODEL:
        return Invalid("missing_response", "the conversation does not end with a model turn")
    return Conversation(tuple(turns), "chat")


def parse_record(record: Any, context_separator: str = "\n\n") -> Conversation | Invalid:
    """A dolly record `{instruction, context, response, category}` or a chat record `{messages: [...]}`."""
    if not isinstance(record, dict):
        return Invalid("not_an_object", f"record is a JSON {type(record).__name__}, expected an object")
    if "messages" in record:
        return _from_chat(record["messages"], context_separator)
    if "instruction" in record or "response" in record:
        return _from_dolly(record, context_separator)
    return Invalid("unknown_schema", "neither dolly fields (instruction, response) nor `messages`")


_SPACES = re.compile(r"\s+")


def dedupe_key(turns: Turns) -> str:
    """Hash of the normalised turns (NFC, case-folded, whitespace collapsed): copies differing only in these match."""
    parts = [role + "\x1f" + _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()
             for role, text in turns]
    return text_hash("\x1e".join(parts))


@dataclass(frozen=True)
class ChatTokens:
    """The fixed token ids of the chat format, encoded once per worker."""

    bos: int
    start_of_turn: int
    end_of_turn: int
    model_header: tuple[int, ...]  # "model\n"
    newline: tuple[int, ...]  # "\n" after each <end_of_turn>

    @classmethod
    def from_processor(cls, processor: spm.SentencePieceProcessor) -> ChatTokens:
        """The ids in this SentencePiece model; raises TokenizerError if it lacks a turn piece."""
        return cls(
            bos=processor.bos_id(),
            start_of_turn=piece_id(processor, START_OF_TURN),
            end_of_turn=piece_id(processor, END_OF_TURN),
            model_header=tuple(processor.encode(role_header(MODEL))),
            newline=tuple(processor.encode(TURN_END)),
        )


def format_conversations(
    conversations: Sequence[Turns], encode: Callable[[list[str]], list[list[int]]], ids: ChatTokens,
    last_answer_only: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(token ids int32, loss mask uint8) per conversation, with one batched `encode` call for all turn texts.

    The user turn is encoded with its "user\\n" header (all prompt); the model's header and answer are
    encoded apart so the mask boundary falls exactly where the answer starts. The mask covers every
    model answer, or with `last_answer_only` the final one (a preference pair's compared response;
    earlier answers are part of its prompt).
    """
    texts = [role_header(USER) + text if role == USER else text for turns in conversations for role, text in turns]
    encoded = iter(encode(texts))
    result = []
    for turns in conversations:
        tokens: list[int] = [ids.bos]
        mask: list[int] = [0]
        for index, (role, _) in enumerate(turns):
            body = next(encoded)
            if role == USER:
                prompt = [ids.start_of_turn, *body, ids.end_of_turn, *ids.newline]
                tokens += prompt
                mask += [0] * len(prompt)
            else:
                header = [ids.start_of_turn, *ids.model_header]
                tokens += header + body + [ids.end_of_turn] + list(ids.newline)
                learnt = 0 if last_answer_only and index < len(turns) - 1 else 1
                mask += [0] * len(header) + [learnt] * (len(body) + 1) + [0] * len(ids.newline)
        result.append((np.asarray(tokens, dtype=np.int32), np.asarray(mask, dtype=np.uint8)))
    return result
