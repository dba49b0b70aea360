import pytest

from gemmaflow.pipeline.dedupe import split_survivor, text_hash
from gemmaflow.pipeline.stages.grouping import KeyedDoc
from gemmaflow.pipeline.stats import AccountingError, StageCounts, check_accounting, merge_parts, render_table


def _doc(doc_id: str, position: int = 0) -> KeyedDoc:
    return KeyedDoc("spill", position, doc_id, "f", position, 1, {})


def test_text_hash_is_stable_and_content_sensitive():
    assert text_hash("abc") == text_hash("abc") != text_hash("abd")
    assert len(text_hash("")) == 32


def test_survivor_is_smallest_id_whatever_the_order():
    docs = [_doc("c"), _doc("a"), _doc("b")]
    for ordering in (docs, docs[::-1]):
        survivor, dups = split_survivor(ordering, KeyedDoc.order)
        assert survivor.id == "a" and [d.id for d in dups] == ["b", "c"]


def test_survivor_tie_broken_by_position():
    survivor, _ = split_survivor([_doc("a", 5), _doc("a", 2)], KeyedDoc.order)
    assert survivor.position == 2


def _counts(stage: str, docs_in: int, kept: int, dropped: dict | None = None, dead: dict | None = None) -> StageCounts:
    return StageCounts(stage, docs_in=docs_in, kept=kept, dropped=dropped or {}, dead_lettered=dead or {})


def test_merge_parts_adds_everything():
    a = _counts("read", 3, 2, dead={"invalid_json": 1})
    b = _counts("read", 4, 4)
    b.tally("blank_lines", 2)
    merged = merge_parts([a, b])["read"]
    assert (merged.docs_in, merged.kept, merged.dead_lettered, merged.extra) == (
        7, 6, {"invalid_json": 1}, {"blank_lines": 2}
    )


def test_merge_rejects_other_stage():
    with pytest.raises(ValueError):
        _counts("read", 1, 1).merge(_counts("write", 1, 1))


def test_accounting_identity_holds():
    stages = {
        "read": _counts("read", 10, 8, dead={"invalid_json": 2}),
        "heuristics": _counts("heuristics", 8, 5, dropped={"x": 3}),
        "write": _counts("write", 5, 5),
    }
    assert check_accounting(stages, ["read", "heuristics", "write"]) == {
        "records_read": 10, "kept": 5, "dropped": 3, "dead_lettered": 2
    }


def test_accounting_detects_a_lost_document():
    stages = {"read": _counts("read", 10, 10), "write": _counts("write", 9, 9)}
    with pytest.raises(AccountingError, match="write received 9"):
        check_accounting(stages, ["read", "write"])


def test_accounting_detects_inconsistent_stage():
    with pytest.raises(AccountingError, match="stage read"):
        check_accounting({"read": _counts("read", 10, 8)}, ["read"])


def test_round_trip_and_table():
    c = _counts("heuristics", 8, 5, dropped={"gopher_quality.too_few_words": 3})
    assert StageCounts.from_dict(c.to_dict()) == c
    table = render_table([c])
    assert "gopher_quality.too_few_words" in table and "heuristics" in table
