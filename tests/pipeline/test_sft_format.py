"""SFT parsing, validation reasons, dedupe keys and Gemma chat formatting with loss masks (no runner)."""

from __future__ import annotations

import pytest

from gemmaflow.pipeline.sft import ChatTokens, Conversation, Invalid, dedupe_key, format_conversations, parse_record

IDS = ChatTokens(bos=2, start_of_turn=5, end_of_turn=6, model_header=(70, 71), newline=(80,))


def fake_encode(texts: list[str]) -> list[list[int]]:
    """One id per character (100 + code point), so expected token lists can be written by hand."""
    return [[100 + ord(c) for c in text] for text in texts]


def test_dolly_context_is_folded_into_the_user_turn():
    parsed = parse_record({"instruction": " Summarise. ", "context": "Text here.", "response": "Short.",
                           "category": "summarization"})
    assert parsed == Conversation((("user", "Summarise.\n\nText here."), ("model", "Short.")), "summarization")
    no_context = parse_record({"instruction": "Q?", "context": "  ", "response": "A."})
    assert no_context.turns[0] == ("user", "Q?")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"instruction": "Q?", "context": ""}, "missing_response"),
        ({"instruction": "", "response": "A."}, "empty_turn"),
        ({"instruction": "Q?", "response": "   "}, "empty_turn"),
        ({"instruction": "Q?", "response": ["A."]}, "field_not_string"),
        ({"response": "A."}, "missing_instruction"),
        (["not", "an", "object"], "not_an_object"),
        ({"text": "plain"}, "unknown_schema"),
        ({"messages": []}, "bad_messages"),
        ({"messages": [{"role": "model", "content": "Hi"}]}, "bad_role_order"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]}, "bad_role"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "bad_role_order"),
        ({"messages": [{"role": "user", "content": "Hi"}]}, "missing_response"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " "}]}, "empty_turn"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "s"}]}, "bad_role_order"),
        ({"messages": [{"role": "user", "content": 3}]}, "bad_message"),
    ],
)
def test_malformed_records_get_a_reason(record, reason):
    parsed = parse_record(record)
    assert isinstance(parsed, Invalid) and parsed.reason == reason


def test_chat_roles_map_to_gemma_and_system_folds_into_the_first_user_turn():
    parsed = parse_record({"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"},
        {"role": "model", "content": "Ciao"},
    ]})
    assert parsed.turns == (("user", "Be brief.\n\nHi"), ("model", "Hello"), ("user", "Bye"), ("model", "Ciao"))
    assert parsed.category == "chat"


def test_loss_mask_covers_each_model_answer_and_its_end_of_turn_only():
    turns = (("user", "Q"), ("model", "AB"), ("user", "R"), ("model", "C"))
    [(tokens, mask)] = format_conversations([turns], fake_encode, IDS)

    def u(c: str) -> int:
        return 100 + ord(c)

    n = u("\n")
    expected = [2,
                5, u("u"), u("s"), u("e"), u("r"), n, u("Q"), 6, 80,
                5, 70, 71, u("A"), u("B"), 6, 80,
                5, u("u"), u("s"), u("e"), u("r"), n, u("R"), 6, 80,
                5, 70, 71, u("C"), 6, 80]
    assert tokens.tolist() == expected
    assert [t for t, m in zip(tokens, mask, strict=True) if m] == [u("A"), u("B"), 6, u("C"), 6]
    assert tokens.tolist().count(2) == 1  # exactly one BOS


def test_dedupe_key_ignores_case_and_whitespace_but_not_content():
    a = (("user", "What is  2+2?"), ("model", "Four."))
    assert dedupe_key(a) == dedupe_key((("user", "what is 2+2?"), ("model", "four.")))
    assert dedupe_key(a) != dedupe_key((("user", "What is 2+2?"), ("model", "Five.")))
