"""Property tests of the JSONL and Parquet readers: any input is read to the end, every record is
accounted for, every string out is UTF-8, and a valid record keeps its text (lone surrogates -> U+FFFD)."""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gemmaflow.core.domains import DOMAINS
from gemmaflow.pipeline.config import CrawlConfig, ReadConfig
from gemmaflow.pipeline.records import DeadLetter, loads_utf8, parse_json_line
from gemmaflow.pipeline.stages.base import KEPT
from gemmaflow.pipeline.stages.read import FileRange, ReadDocuments, _ReadFileDoFn, line_ranges

from .strategies import (
    any_text,
    assert_every_line_counted,
    assert_utf8,
    field,
    json_line,
    json_values,
    lone_surrogates_replaced,
    nested_value,
    read_with,
    strings_in,
)

MAX_INT_DIGITS = 4300  # Python refuses to parse longer integers (sys.get_int_max_str_digits)
# Lines json.dumps cannot write: past the parser's recursion limit, an integer too long for Python.
PATHOLOGICAL_LINES = (
    b"[" * 100_000 + b"]" * 100_000,
    b'{"text": "a", "meta": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"text": "a", "meta": ' + b"[" * 600 + b'"\\ud800"' + b"]" * 600 + b"}",
    b'{"text": "a", "meta": 1' + b"0" * MAX_INT_DIGITS + b"}",
    b'{"text": "a", "id": -' + b"9" * 5000 + b"}",
    b'{"text": "a", "meta": 1e999999}',
)

document_records = st.tuples(
    st.fixed_dictionaries(
        {},
        optional={
            "text": field(any_text),
            "id": field(st.one_of(any_text, st.integers())),
            "url": field(any_text),
            "source": field(any_text),
            "domain": field(st.sampled_from(sorted(DOMAINS))),
            "meta": json_values,
        },
    ),
    st.dictionaries(any_text, json_values, max_size=3),
).map(lambda fields: {**fields[1], **fields[0]})
records = st.one_of(document_records, json_values)


def expected_text(record: Any) -> str | None:
    """The text a record's document must have (surrogates still in); None if it must be a dead letter."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return None
    doc_id = record.get("id")
    if not (doc_id is None or isinstance(doc_id, str) or (isinstance(doc_id, int) and not isinstance(doc_id, bool))):
        return None
    if not all(record.get(key) is None or isinstance(record.get(key), str) for key in ("url", "source", "domain")):
        return None
    if record.get("domain") is not None and record["domain"] not in DOMAINS:
        return None
    return record["text"]


def without_replacements(text: str) -> str:
    """`text` less U+FFFD and surrogates: what survives however many U+FFFD an invalid byte became."""
    return re.sub("[\ud800-\udfff\ufffd]", "", text)


def assert_read_as(doc: dict[str, Any], text: str, ascii_escapes: bool) -> None:
    if ascii_escapes:
        assert doc["text"] == lone_surrogates_replaced(text)
    else:  # a surrogate written as (invalid) UTF-8 bytes becomes one or more U+FFFD
        assert without_replacements(doc["text"]) == without_replacements(text)


@given(record=records, ascii_escapes=st.booleans(), bom=st.booleans())
# A UTF-8 byte-order mark before the first record (Windows editors write one) made it invalid JSON.
@example(record={"text": "a"}, ascii_escapes=True, bom=True)
def test_a_json_record_becomes_its_document_or_a_dead_letter(record, ascii_escapes, bom):
    line = (codecs.BOM_UTF8 if bom else b"") + json_line(record, ascii_escapes)
    result = parse_json_line(line, "f.jsonl", 3, "fp")
    assert_utf8(result)
    text = expected_text(record)
    if text is None:
        assert isinstance(result, DeadLetter)
        assert len(result.to_row()["raw"]) <= 2000
    else:
        assert isinstance(result, dict), result
        assert_read_as(result, text, ascii_escapes)
        assert result["provenance"]["position"] == 3


@given(line=st.one_of(st.binary(max_size=200), st.sampled_from(PATHOLOGICAL_LINES)))
# RecursionError (nesting past json's limit) and ValueError (an integer of over 4300 digits) escaped
# parse_json_line: in the read stage the whole rest of the file became one `unreadable_file`.
@example(line=PATHOLOGICAL_LINES[0])
@example(line=PATHOLOGICAL_LINES[3])
# Nested 600 deep (json.loads takes it) around a lone surrogate: the recursive repair overflowed.
@example(line=PATHOLOGICAL_LINES[2])
def test_any_line_of_bytes_is_a_document_or_a_dead_letter(line):
    result = parse_json_line(line, "f.jsonl", 0, "fp")
    assert isinstance(result, (dict, DeadLetter))
    assert_utf8(result)


def keys_collide(value: Any) -> bool:
    """Whether two keys of some object in `value` become the same key once surrogates are repaired."""
    if isinstance(value, list):
        return any(keys_collide(item) for item in value)
    if isinstance(value, dict):
        return len({lone_surrogates_replaced(key) for key in value}) < len(value) or keys_collide(list(value.values()))
    return False


@given(value=json_values, depth=st.integers(0, 3))
@example(value="\ud800", depth=600)  # the recursive repair overflowed at 500 deep
def test_loads_utf8_repairs_every_lone_surrogate_and_nothing_else(value, depth):
    value = nested_value(depth, value)
    text = json.dumps(value)
    repaired, count = loads_utf8(text)
    assert_utf8(repaired)
    before = strings_in(value)
    assert count == sum(lone_surrogates_replaced(s).count("\ufffd") - s.count("\ufffd") for s in before)
    if not keys_collide(value):
        assert strings_in(repaired) == [lone_surrogates_replaced(s) for s in before]


# -- whole files through the read stage's DoFn (no pipeline) --------------------------------------

record_lines = st.tuples(records, st.booleans()).map(lambda r: (r[0], json_line(*r), r[1]))
other_lines = st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"  \t", b"\r", *PATHOLOGICAL_LINES[1:]])).map(
    lambda line: (None, line.replace(b"\n", b""), True)
)


def compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(data, mtime=0)
    if suffix == ".zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


@settings(max_examples=60)
@given(
    lines=st.lists(st.one_of(record_lines, other_lines), max_size=8),
    suffix=st.sampled_from(["", ".gz", ".zst"]),
    cut=st.none() | st.floats(0, 1),
)
def test_a_jsonl_file_is_read_to_the_end_and_every_line_accounted_for(lines, suffix, cut):
    data = b"\n".join(line for _, line, _ in lines)
    stored = compress(data, suffix)
    if cut is not None:
        stored = stored[: int(len(stored) * cut)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"in.jsonl{suffix}"
        path.write_bytes(stored)
        out = read_with(_ReadFileDoFn(ReadConfig(), CrawlConfig(), "fp"), FileRange(str(path)))
    out.assert_accounted()
    if cut is not None:
        return  # a cut file: what was readable is out, the rest is one `unreadable_file` dead letter
    assert_every_line_counted(out, data)
    kept = {doc["provenance"]["position"]: doc for doc in out.kept}
    for position, (record, _, ascii_escapes) in enumerate(lines):
        text = expected_text(record)
        if text is not None:
            assert_read_as(kept[position], text, ascii_escapes)


@settings(max_examples=60)
@given(
    lines=st.lists(st.one_of(record_lines, other_lines), max_size=12),
    split_bytes=st.integers(1, 200),
    limit=st.sampled_from([16 * 1024 * 1024, 40]),
    trailing_newline=st.booleans(),
)
def test_a_plain_file_read_in_ranges_gives_what_reading_it_whole_gives(lines, split_bytes, limit, trailing_newline):
    # Ranges cut anywhere (even inside a line or an oversized line): the same records, dead
    # letters, positions and counts as one read of the whole file.
    data = b"\n".join(line for _, line, _ in lines) + (b"\n" if trailing_newline and lines else b"")
    config = ReadConfig(max_document_bytes=limit, split_bytes=split_bytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.jsonl"
        path.write_bytes(data)
        whole = read_with(_ReadFileDoFn(config, CrawlConfig(), "fp"), FileRange(str(path)))
        with path.open("rb") as stream:
            ranges = list(line_ranges(stream, str(path), split_bytes))
        parts = [read_with(_ReadFileDoFn(config, CrawlConfig(), "fp"), where) for where in ranges]
    assert ranges[0].start == 0 and ranges[-1].end in (None, len(data))
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    assert [doc for part in parts for doc in part.kept] == whole.kept
    assert [row for part in parts for row in part.dead] == whole.dead
    assert sum(part.counts.docs_in for part in parts) == whole.counts.docs_in
    assert sum(part.counts.extra.get("blank_lines", 0) for part in parts) == whole.counts.extra.get("blank_lines", 0)


parquet_text = st.one_of(st.none(), st.text(max_size=20))
parquet_rows = st.lists(
    st.fixed_dictionaries({"text": parquet_text, "id": st.one_of(st.none(), st.text(max_size=5))}), max_size=6
)


@settings(max_examples=30)
@given(rows=parquet_rows, text_as_int=st.booleans(), cut=st.none() | st.floats(0, 1))
def test_a_parquet_file_is_read_and_every_row_accounted_for(rows, text_as_int, cut):
    table = pa.Table.from_pylist(rows, schema=pa.schema([("text", pa.string()), ("id", pa.string())]))
    if text_as_int:
        table = table.set_column(0, "text", pa.array([len(row["text"] or "") for row in rows], pa.int64()))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    stored = buffer.getvalue()
    if cut is not None:
        stored = stored[: int(len(stored) * cut)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.parquet"
        path.write_bytes(stored)
        out = read_with(_ReadFileDoFn(ReadConfig(), CrawlConfig(), "fp"), FileRange(str(path)))
    out.assert_accounted()
    if cut is None:
        expected = [] if text_as_int else [row["text"] for row in rows if row["text"] is not None]
        assert [doc["text"] for doc in out.kept] == expected
        assert out.counts.docs_in == len(rows)


# -- one Beam round trip ---------------------------------------------------------------------------


@settings(max_examples=5)
@given(values=st.lists(records, min_size=1, max_size=5))
def test_read_documents_on_direct_runner_keeps_every_valid_record(values, tmp_path_factory):
    path = tmp_path_factory.mktemp("read") / "in.jsonl"
    path.write_bytes(b"\n".join(json_line(value, ascii_escapes=True) for value in values))
    expected = [
        (position, lone_surrogates_replaced(text))
        for position, value in enumerate(values)
        if (text := expected_text(value)) is not None
    ]
    with TestPipeline() as p:
        out = p | ReadDocuments([str(path)], ReadConfig(), "fp")
        assert_that(out[KEPT] | beam.Map(lambda doc: (doc["provenance"]["position"], doc["text"])), equal_to(expected))
