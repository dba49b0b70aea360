"""Preference pairs: the common record shapes parsed into one prompt and two answers, and both sequences formatted.

Shapes read (each record one pair):

- `{prompt, chosen, rejected}` with strings (UltraFeedback-binarized's string form);
- `{chosen, rejected}` whole dialogues with `Human:` / `Assistant:` turns that share everything but the
  last answer (Anthropic HH-RLHF, Bai et al., 2022);
- `{chosen, rejected}` chat-message lists (`[{role, content}, ...]`, UltraFeedback-binarized's list form),
  with the same rules as SFT chat records (pipeline/sft.py), sharing everything but the last answer.

A record of none of these shapes, or with a missing, empty or mistyped field, is a dead letter
(`Invalid`). A well-formed pair that teaches nothing is dropped with a reason (`Unusable`): its two
answers are equal once case and whitespace are folded (`chosen_equals_rejected`), or its two dialogues
do not share their prompt (`prompts_differ`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gemmaflow.core.chat import MODEL, USER
from gemmaflow.pipeline.sft import ChatTokens, Conversation, Invalid, Turns, format_conversations, parse_record

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_HH_ROLES = {"Human": USER, "Assistant": MODEL}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Pair:
    """One prompt (alternating turns, ending with the user's) and the preferred and dispreferred answers."""

    prompt: Turns
    chosen: str
    rejected: str
    shape: str  # "strings", "dialogues" or "messages": counted per run


@dataclass(frozen=True)
class Unusable:
    """A well-formed pair that teaches no preference: dropped with this reason, kept in the rejected sink."""

    reason: str
    detail: str
    pair: Pair


def hh_dialogue(text: str) -> Turns | Invalid:
    """`\\n\\nHuman: ...\\n\\nAssistant: ...` turns; they must alternate from Human and end with Assistant."""
    marks = list(_HH_TURN.finditer(text))
    if not marks or text[: marks[0].start()].strip():
        return Invalid("bad_dialogue", "a dialogue must start with 'Human:'")
    turns = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        role = _HH_ROLES[mark.group(1)]
        expected = USER if i % 2 == 0 else MODEL
        if role != expected:
            wanted = "Human" if i % 2 == 0 else "Assistant"
            return Invalid("bad_role_order", f"turn {i} is {mark.group(1)}, expected {wanted}")
        body = text[mark.end():end].strip()
        if not body and i + 1 < len(marks):
            return Invalid("empty_turn", f"turn {i} ({mark.group(1)}) is empty")
        turns.append((role, body))
    if turns[-1][0] != MODEL:
        return Invalid("missing_response", "the dialogue does not end with an Assistant turn")
    if not turns[-1][1]:
        return Invalid("empty_turn", "the last Assistant turn is empty")
    return tuple(turns)


def _folded(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


def _split_dialogues(chosen: Turns, rejected: Turns, shape: str) -> Pair | Unusable:
    pair = Pair(chosen[:-1], chosen[-1][1], rejected[-1][1], shape)
    if tuple((role, _folded(text)) for role, text in chosen[:-1]) != \
            tuple((role, _folded(text)) for role, text in rejected[:-1]):
        return Unusable("prompts_differ", f"{len(chosen) - 1} and {len(rejected) - 1} prompt turns that differ", pair)
    return pair


def _messages(value: Any, side: str, context_separator: str) -> Turns | Invalid:
    parsed = parse_record({"messages": value}, context_separator)
    if isinstance(parsed, Invalid):
        return Invalid(parsed.reason, f"`{side}`: {parsed.detail}")
    assert isinstance(parsed, Conversation)
    return parsed.turns


def parse_pair(record: Any, context_separator: str = "\n\n") -> Pair | Unusable | Invalid:
    """A pair in any of the module's shapes; `Invalid` for a dead letter, `Unusable` for a drop."""
    if not isinstance(record, dict):
        return Invalid("not_an_object", f"record is a JSON {type(record).__name__}, expected an object")
    if "chosen" not in record or "rejected" not in record:
        return Invalid("unknown_schema", "a preference pair needs `chosen` and `rejected`")
    chosen, rejected, prompt = record["chosen"], record["rejected"], record.get("prompt")
    parsed: Pair | Unusable
    if isinstance(chosen, str) and isinstance(rejected, str) and prompt is not None:
        if not isinstance(prompt, str):
            return Invalid("field_not_string", f"`prompt` is a {type(prompt).__name__}")
        for key, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
            if not value.strip():
                return Invalid("empty_turn", f"`{key}` is empty")
        parsed = Pair(((USER, prompt.strip()),), chosen.strip(), rejected.strip(), "strings")
    elif isinstance(chosen, str) and isinstance(rejected, str):
        sides = [hh_dialogue(chosen), hh_dialogue(rejected)]
        for side, turns in zip(("chosen", "rejected"), sides, strict=True):
            if isinstance(turns, Invalid):
                return Invalid(turns.reason, f"`{side}`: {turns.detail}")
        parsed = _split_dialogues(sides[0], sides[1], "dialogues")  # type: ignore[arg-type]
    elif isinstance(chosen, list) and isinstance(rejected, list):
        sides = [_messages(chosen, "chosen", context_separator), _messages(rejected, "rejected", context_separator)]
        for turns in sides:
            if isinstance(turns, Invalid):
                return turns
        parsed = _split_dialogues(sides[0], sides[1], "messages")  # type: ignore[arg-type]
    else:
        return Invalid("bad_pair", f"`chosen` and `rejected` must both be strings or both message lists, got "
                                   f"{type(chosen).__name__} and {type(rejected).__name__}")
    if isinstance(parsed, Pair) and _folded(parsed.chosen) == _folded(parsed.rejected):
        return Unusable("chosen_equals_rejected", "the two answers are the same text", parsed)
    return parsed


def format_pairs(
    pairs: Sequence[tuple[Turns, str, str]], encode: Callable[[list[str]], list[list[int]]], ids: ChatTokens
) -> list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    """((chosen tokens, mask), (rejected tokens, mask)) per (prompt, chosen, rejected): each a whole Gemma
    chat sequence, prompt and all, with the loss mask on its final answer (pipeline/sft.py's format)."""
    conversations = [(*prompt, (MODEL, answer)) for prompt, chosen, rejected in pairs for answer in (chosen, rejected)]
    formatted = format_conversations(conversations, encode, ids, last_answer_only=True)
    return [(formatted[2 * i], formatted[2 * i + 1]) for i in range(len(pairs))]
