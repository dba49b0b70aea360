"""Property tests of the SFT reader: any record is an example or a reason, any file is read to the
end with every line accounted for, and a valid example keeps its turns' text."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gemmaflow.core.chat import MODEL, USER
from gemmaflow.pipeline.sft import Conversation, Invalid, parse_record
from gemmaflow.pipeline.stages.sft import _ParseExamplesDoFn

from .strategies import (
    any_text,
    assert_every_line_counted,
    assert_utf8,
    field,
    json_line,
    json_values,
    lone_surrogates_replaced,
    read_with,
)

ROLES = ("user", "assistant", "model", "system", "tool", "", "USER")
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": field(st.sampled_from(ROLES)), "content": field(any_text)}),
        json_values,
    ),
    max_size=5,
)
dolly = st.fixed_dictionaries(
    {},
    optional={
        "instruction": field(any_text),
        "response": field(any_text),
        "context": field(any_text),
        "category": field(any_text),
        "id": json_values,
    },
)
sft_records = st.one_of(st.fixed_dictionaries({"messages": field(messages)}), dolly, json_values)


@given(sft_records)
# An unhashable role (a list or an object) raised TypeError looking it up in the role table.
@example({"messages": [{"role": ["user"], "content": "hi"}, {"role": "model", "content": "hello"}]})
@example({"messages": [{"role": {"name": "user"}, "content": "hi"}]})
def test_any_record_is_a_conversation_or_a_reason(record):
    result = parse_record(record)
    assert isinstance(result, (Conversation, Invalid))
    if isinstance(result, Invalid):
        return
    roles = [role for role, _ in result.turns]
    assert roles == [USER, MODEL] * (len(roles) // 2) and roles  # alternating, starting user, ending model
    assert all(text and text == text.strip() for _, text in result.turns)


@given(instruction=any_text, response=any_text, context=any_text)
def test_a_dolly_record_keeps_its_text(instruction, response, context):
    result = parse_record({"instruction": instruction, "response": response, "context": context}, "\n\n")
    if not instruction.strip() or not response.strip():
        assert isinstance(result, Invalid) and result.reason == "empty_turn"
        return
    assert result.turns[1] == (MODEL, response.strip())
    expected_prompt = instruction.strip() + ("\n\n" + context.strip() if context.strip() else "")
    assert result.turns[0] == (USER, expected_prompt)


@settings(max_examples=40)
@given(
    lines=st.lists(
        st.one_of(
            sft_records.map(lambda record: json_line(record, ascii_escapes=True)),
            st.binary(max_size=40),
            st.sampled_from([b"", b"[" * 100_000, b'{"instruction": "a", "response": 1' + b"0" * 5000 + b"}"]),
        ).map(lambda line: line.replace(b"\n", b"")),
        max_size=6,
    ),
    gzipped=st.booleans(),
    cut=st.none() | st.floats(0, 1),
)
# A gzip file cut short raised EOFError out of the DoFn, failing the whole run.
@example(lines=[b'{"instruction": "a", "response": "b"}'] * 3, gzipped=True, cut=0.5)
def test_an_sft_file_is_read_to_the_end_and_every_line_accounted_for(lines, gzipped, cut):
    data = b"\n".join(lines)
    stored = gzip.compress(data, mtime=0) if gzipped else data
    if cut is not None:
        stored = stored[: int(len(stored) * cut)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("in.jsonl.gz" if gzipped else "in.jsonl")
        path.write_bytes(stored)
        out = read_with(_ParseExamplesDoFn("\n\n", "fp", pairs=False), ("input", str(path)))
    out.assert_accounted()
    if cut is None:
        assert_every_line_counted(out, data)


@given(instruction=any_text, response=any_text)
def test_a_valid_line_becomes_an_example_with_its_turns(instruction, response):
    line = json_line({"instruction": instruction, "response": response}, ascii_escapes=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.jsonl"
        path.write_bytes(line)
        out = read_with(_ParseExamplesDoFn("\n\n", "fp", pairs=False), ("input", str(path)))
    out.assert_accounted()
    expected = parse_record(
        {"instruction": lone_surrogates_replaced(instruction), "response": lone_surrogates_replaced(response)}
    )
    if isinstance(expected, Invalid):
        assert [row["reason"] for row in out.dead] == [expected.reason]
    else:
        [example_row] = out.kept
        assert [tuple(turn) for turn in example_row["turns"]] == list(expected.turns)
        assert_utf8(example_row)
