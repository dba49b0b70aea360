"""Reader property tests' inputs (text with the Unicode that breaks readers, JSON of every shape) and checks."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from hypothesis import strategies as st

from gemmaflow.pipeline.stages.base import DEAD
from gemmaflow.pipeline.stats import StageCounts

# Characters readers get wrong: lone surrogates (JSON may escape them; UTF-8 cannot hold them), NUL and
# other controls, a BOM, JavaScript's line terminators, combining marks, right-to-left text, non-BMP.
EDGE_CHARS = (
    "\ud800", "\udfff", "\ud83d", "\ude00", "\x00", "\x1f", "\x7f", "\ufeff", "\u2028", "\u2029", "\r", "\n",
    "\u0301", "\u0327\u0301", "\u05e9\u05dc\u05d5\u05dd", "\u0627\u0644\u0633\u0644\u0627\u0645", "\u202e", "\u200f",
    "\ufffd", "\U0001f600", "\U0010ffff", "\\", '"',
)  # fmt: skip

edge_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(EDGE_CHARS)), max_size=8).map("".join)
any_text = st.one_of(st.text(max_size=20), edge_text)
numbers = st.one_of(st.integers(min_value=-(10**40), max_value=10**40), st.floats())
scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)


def field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly the right type, sometimes any JSON value."""
    return st.one_of(value, json_values)


def json_line(value: Any, ascii_escapes: bool) -> bytes:
    """`value` as one JSONL line: lone surrogates \\u-escaped, or (not ASCII) written as the invalid
    UTF-8 bytes a careless encoder writes for them."""
    return json.dumps(value, ensure_ascii=ascii_escapes).encode("utf-8", errors="surrogatepass")


def lone_surrogates_replaced(text: str) -> str:
    """What a JSON parser that repairs text gives for `text` \\u-escaped: pairs joined, lone halves U+FFFD."""
    return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", errors="replace")


def strings_in(value: Any) -> list[str]:
    """Every string in a nested value (dict keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (*strings_in(key), *strings_in(item))]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in strings_in(item)]
    if dataclasses.is_dataclass(value):
        return strings_in([getattr(value, f.name) for f in dataclasses.fields(value)])
    return []


def assert_utf8(value: Any) -> None:
    """Every string in `value` can be written as UTF-8 (Beam's coder and Parquet need that)."""
    for text in strings_in(value):
        text.encode("utf-8")


def nested_value(depth: int, leaf: Any) -> Any:
    """`leaf` inside `depth` lists."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@dataclasses.dataclass
class ReaderOutput:
    """What a reading DoFn emitted for one file, by output, and its counts."""

    kept: list[dict[str, Any]]
    dead: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    counts: StageCounts

    def assert_accounted(self) -> None:
        """records read = kept + dropped + dead-lettered, and every counted record was emitted."""
        counts = self.counts
        assert counts.docs_in == counts.kept + counts.total_dropped + counts.total_dead
        assert (counts.kept, counts.total_dropped, counts.total_dead) == (
            len(self.kept),
            len(self.rejected),
            len(self.dead),
        )
        assert_utf8([self.kept, self.dead, self.rejected])


def assert_every_line_counted(output: ReaderOutput, data: bytes) -> None:
    """Each line of a JSONL file is a record read or a blank line (the last may lack its newline)."""
    lines = data.count(b"\n") + (data[-1:] not in b"\n")
    assert output.counts.docs_in + output.counts.extra.get("blank_lines", 0) == lines


def read_with(dofn: beam.DoFn, path: Any) -> ReaderOutput:
    """Run a reading DoFn on one file (a path, or a FileRange) in this process, as a Beam worker
    would, without a pipeline."""
    dofn.setup()
    dofn.start_bundle()
    output = ReaderOutput([], [], [], dofn.counts)
    for item in dofn.process(path):
        if isinstance(item, TaggedOutput):
            (output.dead if item.tag == DEAD else output.rejected).append(item.value)
        else:
            output.kept.append(item)
    return output
