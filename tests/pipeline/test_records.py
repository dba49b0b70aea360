import json

from gemmaflow.pipeline.records import (
    CURATED_SCHEMA,
    DEAD_LETTER_SCHEMA,
    REJECTED_SCHEMA,
    DeadLetter,
    document_from_record,
    parse_json_line,
    rejected_row,
    stable_id,
)


def _parse(obj: object, position: int = 0) -> object:
    return parse_json_line(json.dumps(obj).encode(), "f.jsonl", position, "fp")


def test_valid_record_keeps_fields_and_provenance():
    doc = _parse({"id": "a", "text": "hello", "url": "u", "source": "s", "domain": "code", "meta": {"k": 1}}, 7)
    assert doc["id"] == "a" and doc["text"] == "hello" and doc["url"] == "u" and doc["source"] == "s"
    assert doc["domain"] == "code" and doc["domain_method"] == "record"
    assert json.loads(doc["meta"]) == {"k": 1}
    assert doc["provenance"]["file"] == "f.jsonl" and doc["provenance"]["position"] == 7
    assert doc["provenance"]["config_fingerprint"] == "fp"


def test_missing_id_is_stable_and_position_dependent():
    first, again, other = _parse({"text": "x"}, 3), _parse({"text": "x"}, 3), _parse({"text": "x"}, 4)
    assert first["id"] == again["id"] == stable_id("f.jsonl", 3)
    assert other["id"] != first["id"]


def test_integer_id_becomes_string():
    assert _parse({"id": 12, "text": "x"})["id"] == "12"


def test_bad_records_become_dead_letters_with_reasons():
    cases = {
        b"{not json": "invalid_json",
        b"[1, 2]": "not_an_object",
        b'{"id": "a"}': "missing_text",
        b'{"text": null}': "missing_text",
        b'{"text": 5}': "text_not_string",
        b'{"text": "x", "url": 3}': "field_not_string",
        b'{"text": "x", "domain": "poetry"}': "bad_domain",
        b'{"text": "x", "id": [1]}': "bad_id",
    }
    for line, reason in cases.items():
        result = parse_json_line(line, "f", 9, "fp")
        assert isinstance(result, DeadLetter), line
        assert result.reason == reason
        assert result.position == 9 and result.file == "f"


def test_invalid_utf8_is_replaced_and_flagged():
    doc = parse_json_line(b'{"text": "caf\xe9 ok"}', "f", 0, "fp")
    assert doc["text"] == "caf\ufffd ok"
    assert doc["signals"]["read.invalid_utf8"] == 1.0


def test_raw_nul_and_control_chars_inside_strings_are_accepted():
    doc = parse_json_line(b'{"text": "a\x00b\x01c"}', "f", 0, "fp")
    assert doc["text"] == "a\x00b\x01c"


def test_dead_letter_row_truncates_raw():
    row = DeadLetter("f", 1, "invalid_json", "d", "x" * 10_000).to_row()
    assert len(row["raw"]) == 2000


def test_rows_have_exactly_their_schemas_fields():
    doc = document_from_record({"text": "hi"}, "f", 0, "fp")
    assert set(doc) <= set(CURATED_SCHEMA.names)  # the stages fill the rest (lang, scores, ...)
    assert set(rejected_row(doc, "language", "why")) <= set(REJECTED_SCHEMA.names)
    assert list(DeadLetter("f", 1, "invalid_json", "d", "x").to_row()) == DEAD_LETTER_SCHEMA.names


def test_document_from_parquet_style_record():
    doc = document_from_record({"text": "hi", "id": None}, "p.parquet", 2, "fp")
    assert doc["id"] == stable_id("p.parquet", 2)


def test_loads_utf8_repairs_lone_surrogates_everywhere():
    from gemmaflow.pipeline.records import loads_utf8

    record, count = loads_utf8('{"text": "a\\ud800b", "list": ["\\udc00", 1], "\\ud83dkey": {"x": "\\ud83d\\ude00"}}')
    assert record == {"text": "a\ufffdb", "list": ["\ufffd", 1], "\ufffdkey": {"x": "😀"}}  # a valid pair stays
    assert count == 3
    assert loads_utf8('{"text": "plain"}') == ({"text": "plain"}, 0)
