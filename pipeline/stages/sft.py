"""Beam stages of `gemmaflow sft`: parse dolly/chat JSONL into chat records, and format them as Gemma chat turns.

A chat record is a curated-schema document that also carries `turns` (pipeline/record_text.py), so
the registry's shared stages (PII, classify, exact dedupe) clean SFT examples exactly as they clean
documents, with the same counters. An example longer than `seq_len` is dropped (`too_long`) rather
than split: a continuation row would train the answer without its prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.mixture import split_of
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.packing import PackItem
from gemmaflow.pipeline.record_text import TURNS, answers_text
from gemmaflow.pipeline.records import PIPELINE_VERSION, DeadLetter, loads_utf8, rejected_row, stable_id
from gemmaflow.pipeline.sft import ChatTokens, Conversation, format_conversations, parse_record
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS, CountingDoFn, utf8_len
from gemmaflow.pipeline.stages.pack import read_bytes
from gemmaflow.pipeline.stages.read import open_lines
from gemmaflow.pipeline.tokenize import load_processor

ChatRecord = dict[str, Any]  # the curated record's keys, plus `turns` [[role, text], ...] and `category`
SFT_SOURCE = "sft"
SFT_DOMAIN = "web"  # what the shared stages treat the turns as: prose (NER on, web classifiers apply)


def chat_record(conversation: Conversation, raw_id: Any, path: str, position: int, fingerprint: str) -> ChatRecord:
    """A parsed conversation as a document the shared stages can judge and edit."""
    turns = [list(turn) for turn in conversation.turns]
    return {
        "id": str(raw_id) if isinstance(raw_id, (str, int)) and raw_id != "" else stable_id(path, position),
        "text": answers_text(turns),
        "url": None,
        "source": SFT_SOURCE,
        "domain": SFT_DOMAIN,
        "domain_method": None,
        "lang": None,
        "lang_score": None,
        "meta": None,
        "signals": {},
        "scores": {},
        "provenance": {"file": path, "position": position, "pipeline_version": PIPELINE_VERSION,
                       "config_fingerprint": fingerprint},
        TURNS: turns,
        "category": conversation.category or "uncategorised",
    }


def conversation_bytes(record: ChatRecord) -> int:
    return sum(utf8_len(text) for _, text in record[TURNS])


def sink_row(row: dict[str, Any]) -> dict[str, Any]:
    """A rejected chat record for the rejected sink: its category and (scrubbed) turns kept in `meta`."""
    return {**row, "meta": json.dumps({"category": row["category"], TURNS: row[TURNS]}, ensure_ascii=False)}


class _ParseExamplesDoFn(CountingDoFn):
    def __init__(self, context_separator: str, fingerprint: str) -> None:
        super().__init__("read")
        self.context_separator = context_separator
        self.fingerprint = fingerprint

    def process(self, path: str) -> Iterator[Any]:
        position = 0
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                for position, line in enumerate(open_lines(raw, path)):
                    if not line.strip():
                        self.counts.tally("blank_lines")
                        continue
                    self.counts.record_in(len(line))
                    yield from self._parse(line.decode("utf-8", errors="replace"), path, position)
        except Exception as exc:  # a cut .gz or .zst: the rest of the file is a dead letter, as in curate's read
            self.counts.record_in(0)
            self.counts.record_dead("unreadable_file")
            error = DeadLetter(path, position, "unreadable_file", f"{type(exc).__name__}: {exc}", "")
            yield beam.pvalue.TaggedOutput(DEAD, error.to_row())

    def _parse(self, line: str, path: str, position: int) -> Iterator[Any]:
        try:
            record, surrogates = loads_utf8(line)
        except ValueError as exc:
            parsed: Conversation | Any = None
            reason, detail = "invalid_json", str(exc)
        else:
            if surrogates:
                self.counts.tally("surrogates_replaced", surrogates)
            parsed = parse_record(record, self.context_separator)
            reason, detail = ("", "") if isinstance(parsed, Conversation) else (parsed.reason, parsed.detail)
        if not isinstance(parsed, Conversation):
            self.counts.record_dead(reason)
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(path, position, reason, detail, line).to_row())
            return
        example = chat_record(parsed, record.get("id"), path, position, self.fingerprint)
        self.counts.record_kept(conversation_bytes(example))
        yield example


class ParseExamples(beam.PTransform):
    """Files (already matched) -> chat records, with `dead` (malformed records) and `stats` outputs."""

    def __init__(self, paths: list[str], context_separator: str, fingerprint: str) -> None:
        super().__init__()
        self.paths = paths
        self.context_separator = context_separator
        self.fingerprint = fingerprint

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        parsed = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ParseExamples" >> beam.ParDo(_ParseExamplesDoFn(self.context_separator, self.fingerprint)).with_outputs(
                STATS, DEAD, main=KEPT
            )
        )
        return {KEPT: parsed[KEPT], DEAD: parsed[DEAD], STATS: parsed[STATS]}


class _FormatChatDoFn(CountingDoFn):
    """Gemma chat turns -> (split, PackItem with loss mask); the tokenizer is loaded once per worker."""

    def __init__(self, tokenizer_path: str, config: SftConfig) -> None:
        super().__init__("format")
        self.tokenizer_path = tokenizer_path
        self.config = config
        self.processor: Any = None
        self.ids: ChatTokens | None = None

    def setup(self) -> None:
        processor = load_processor(read_bytes(self.tokenizer_path))
        self.processor = processor
        self.ids = ChatTokens.from_processor(processor)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts, num_threads=self.config.encode.num_threads)

    def process(self, examples: Sequence[ChatRecord]) -> Iterator[Any]:
        assert self.ids is not None, "setup() loads the tokenizer"
        formatted = format_conversations([tuple(map(tuple, e[TURNS])) for e in examples], self._encode, self.ids)
        packing = self.config.packing
        for example, (tokens, mask) in zip(examples, formatted, strict=True):
            self.counts.record_in(conversation_bytes(example))
            if len(tokens) > packing.seq_len:
                self.counts.record_dropped("too_long")
                detail = f"{len(tokens)} tokens > seq_len {packing.seq_len}"
                yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(example, "format", "too_long", detail))
                continue
            self.counts.record_kept(conversation_bytes(example))
            self.counts.tally("tokens", len(tokens))
            split = split_of(example["id"], packing.validation_fraction, packing.seed)
            yield split, PackItem(example["id"], example["category"], tokens, mask)


class FormatChat(beam.PTransform):
    """Chat records -> (split, PackItem) in batches of `encode.batch_size`, over-long examples rejected."""

    def __init__(self, tokenizer_path: str, config: SftConfig) -> None:
        super().__init__()
        self.tokenizer_path = tokenizer_path
        self.config = config

    def expand(self, examples: beam.PCollection) -> dict[str, beam.PCollection]:
        size = self.config.encode.batch_size
        formatted = (
            examples
            | "BatchForEncode" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | "FormatChat" >> beam.ParDo(_FormatChatDoFn(self.tokenizer_path, self.config)).with_outputs(
                STATS, REJECTED, main=KEPT
            )
        )
        return {KEPT: formatted[KEPT], REJECTED: formatted[REJECTED], STATS: formatted[STATS]}
