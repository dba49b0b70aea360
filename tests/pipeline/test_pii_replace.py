"""Overlap resolution and replacement: pure functions on hand-written spans."""

from __future__ import annotations

import itertools

from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.replace import Span, placeholder, replace_spans, resolve_overlaps


def test_overlaps_resolved_by_priority_then_length_whatever_the_input_order():
    spans = [
        Span(0, 30, E.PERSON),  # long but low priority
        Span(5, 20, E.EMAIL_ADDRESS),
        Span(15, 25, E.URL),  # overlaps the email: loses
        Span(40, 50, E.PHONE_NUMBER),
        Span(40, 52, E.PHONE_NUMBER),  # same type, longer: wins
        Span(60, 70, E.API_KEY),
        Span(60, 70, E.AWS_SECRET_KEY),  # same extent, higher priority: wins
    ]
    expected = [Span(5, 20, E.EMAIL_ADDRESS), Span(40, 52, E.PHONE_NUMBER), Span(60, 70, E.AWS_SECRET_KEY)]
    for order in itertools.permutations(spans):
        assert resolve_overlaps(order) == expected


def test_adjacent_spans_both_kept_and_empty_spans_ignored():
    spans = [Span(0, 5, E.PERSON), Span(5, 9, E.PERSON), Span(3, 3, E.EMAIL_ADDRESS)]
    assert resolve_overlaps(spans) == [Span(0, 5, E.PERSON), Span(5, 9, E.PERSON)]


def test_replacement_right_to_left_keeps_every_offset_valid():
    text = "Mail ann@x.org, call 555-0100, mail ann@x.org."
    spans = [Span(5, 14, E.EMAIL_ADDRESS), Span(21, 29, E.PHONE_NUMBER), Span(36, 45, E.EMAIL_ADDRESS)]
    new, counts = replace_spans(text, spans, {})
    assert new == "Mail <EMAIL>, call <PHONE>, mail <EMAIL>."
    assert counts == {E.EMAIL_ADDRESS: 2, E.PHONE_NUMBER: 1}


def test_unicode_before_and_after_spans_keeps_offsets():
    text = "Ünïcödé 😀 — 田中 明美 <tanaka@example.jp> ✓ done"
    start = text.index("tanaka")
    end = start + len("tanaka@example.jp")
    new, _ = replace_spans(text, [Span(start, end, E.EMAIL_ADDRESS)], {})
    assert new == "Ünïcödé 😀 — 田中 明美 <<EMAIL>> ✓ done"


def test_pseudonyms_are_consistent_within_a_document_and_reserved():
    text = "a@b.io then c@d.io then a@b.io; ring 555 123 4567"
    spans = [Span(0, 6, E.EMAIL_ADDRESS), Span(12, 18, E.EMAIL_ADDRESS), Span(24, 30, E.EMAIL_ADDRESS),
             Span(37, 49, E.PHONE_NUMBER)]  # fmt: skip
    new, counts = replace_spans(text, spans, {E.EMAIL_ADDRESS: "pseudonym"})
    assert new == "person1@example.com then person2@example.com then person1@example.com; ring <PHONE>"
    assert counts == {E.EMAIL_ADDRESS: 3, E.PHONE_NUMBER: 1}
    new_all, _ = replace_spans(text, spans, {}, default_policy="pseudonym")
    assert new_all.endswith("ring +1-555-0101")


def test_placeholder_format_is_configurable_and_nothing_to_replace_is_identity():
    assert placeholder(E.US_SSN, "[{label}]") == "[SSN]"
    assert replace_spans("", [], {}) == ("", {})
    assert replace_spans("plain", [], {}) == ("plain", {})
