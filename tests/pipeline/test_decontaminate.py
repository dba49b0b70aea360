"""Benchmark items, the n-gram index and matching: exact, lightly edited and unrelated texts; redaction."""

from __future__ import annotations

import json

import pytest

from gemmaflow.pipeline.config import DecontaminationConfig
from gemmaflow.pipeline.decontaminate import (
    BenchmarkIndex,
    BenchmarkItem,
    benchmark_name,
    item_from_line,
    item_ngrams,
    redact,
)

QUESTION = (
    "Fill in the blank: the scheduler ____ on individual tasks and strives to provide fair processor time "
    "to each runnable task in the system."
)
OTHER_QUESTION = "Which command prints the name of the machine hardware and the operating system release in use?"
PROSE = (
    "The library opens at nine in the morning and closes at six in the evening. Visitors can borrow up to "
    "ten books at a time, and they have three weeks to return them."
)


def item(item_id: str, *texts: str, benchmark: str = "quiz") -> BenchmarkItem:
    return BenchmarkItem(benchmark, item_id, texts)


@pytest.fixture
def index() -> BenchmarkIndex:
    items = [
        item("q1", QUESTION, "operates"),
        item("q2", OTHER_QUESTION, "uname"),
        item("short", "True or false: tar extracts files from archives", "True"),  # 8 words: matched whole
        item("tiny", "What is xxd?", "hexdump"),  # 4 words: too short to index
    ]
    return BenchmarkIndex.build(items, ngram=13, min_ngram=8)


def test_benchmark_name_and_item_parsing():
    assert benchmark_name("gs://b/evals/mmlu_test.jsonl.gz") == "mmlu_test"
    line = json.dumps({"id": 7, "question": "Q?", "answer": "A", "choices": ["x", 3, "y"], "junk": 1})
    parsed = item_from_line(line, "mmlu", 4, ("question", "answer", "choices"), "id")
    assert parsed == BenchmarkItem("mmlu", "7", ("Q?", "A", "x", "y"))
    no_id = item_from_line(json.dumps({"text": "passage"}), "squad", 9, ("question", "text"), "id")
    assert no_id == BenchmarkItem("squad", "squad:9", ("passage",))
    assert item_from_line("   \n", "b", 0, ("text",), "id") is None
    assert item_from_line(json.dumps({"answer": "   "}), "b", 0, ("text", "answer"), "id") is None
    assert item_from_line("[1, 2]", "b", 0, ("text",), "id") is None


def test_item_ngrams_cover_fields_alone_and_joined():
    grams = item_ngrams(item("q", QUESTION, "operates"), ngram=13, min_ngram=8)
    assert set(grams) == {13}
    n_words = len(QUESTION.split())  # 24 words, no glued punctuation words
    # the question's own 13-grams, plus those of question + answer that reach into the answer
    assert len(grams[13]) == (n_words - 12) + 1
    short = item_ngrams(item("s", "one two three four five six seven eight", "yes"), ngram=13, min_ngram=8)
    assert {length: len(h) for length, h in short.items()} == {8: 1, 9: 1}
    assert item_ngrams(item("t", "too short", "no"), ngram=13, min_ngram=8) == {}


def test_exact_paste_matches_and_names_the_item(index):
    match = index.match(f"{PROSE}\n\nQ: {QUESTION}\nA: operates\n\n{PROSE}")
    assert match is not None
    assert (match.benchmark, match.item_id) == ("quiz", "q1")
    assert match.ngrams >= 12
    assert index.lengths == (8, 9, 13)


def test_lightly_edited_paste_still_matches(index):
    edited = QUESTION.lower().replace(":", "").replace("  ", " ").replace("individual", "single")
    assert index.match(f'{PROSE} {{"question": "{edited}", "answer": "operates"}}').item_id == "q1"
    spaced = "  ".join(OTHER_QUESTION.upper().split())
    assert index.match(f"{PROSE}\n21. {spaced}\n   Answer: uname").item_id == "q2"


def test_short_fields_match_whole_or_not_at_all(index):
    assert index.match("Quiz. True or false: tar extracts files from archives? True.").item_id == "short"
    assert index.match("What is xxd? A hexdump tool, it says.") is None


def test_unrelated_empty_and_one_word_texts_do_not_match(index):
    assert index.match(PROSE) is None
    assert index.match("") is None
    assert index.match("scheduler") is None
    assert index.match(QUESTION[:60]) is None  # fewer than 13 shared words


def test_best_item_has_most_shared_ngrams():
    shared = "according to the linux manual pages what is the one line description of"  # 13 words
    items = [item("a", f"{shared} usleep", "suspend execution"), item("b", f"{shared} tar", "an archiving utility")]
    index = BenchmarkIndex.build(items, ngram=13, min_ngram=8)
    match = index.match(f"Q: {shared} tar? A: an archiving utility")
    assert (match.item_id, match.ngrams) == ("b", 2)  # "a" shares only the template 13-gram


def test_index_does_not_depend_on_item_order():
    items = [item("q1", QUESTION), item("q2", OTHER_QUESTION)]
    one, two = BenchmarkIndex.build(items, 13, 8), BenchmarkIndex.build(items[::-1], 13, 8)
    assert one.names == two.names and (one.grams == two.grams).all() and (one.owners == two.owners).all()
    assert len(one) == len(two) > 0


def test_redact_cuts_matched_passages_and_keeps_the_rest(index):
    text = f"{PROSE}\nQ: {QUESTION}\nA: operates\nThanks for reading."
    match = index.match(text)
    redacted = redact(text, match.word_ranges, "[removed]")
    assert "scheduler" not in redacted and "[removed]" in redacted
    assert redacted.startswith(PROSE) and redacted.endswith("Thanks for reading.")
    assert redacted.count("[removed]") == 1  # overlapping n-grams merge into one passage
    assert index.match(redacted) is None


def test_redact_merges_adjacent_ranges_and_handles_none():
    text = "alpha beta gamma delta epsilon"
    assert redact(text, [(1, 2), (2, 4)], "#") == "alpha # epsilon"
    assert redact(text, [], "#") == text


def test_decontamination_config_validates():
    assert DecontaminationConfig().benchmarks == ()  # no benchmarks: the stage is off
    with pytest.raises(ValueError, match="min_ngram"):
        DecontaminationConfig(ngram=8, min_ngram=13)
    with pytest.raises(ValueError, match="fields"):
        DecontaminationConfig(fields=())
