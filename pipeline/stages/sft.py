"""Beam stages of `gemmaflow sft` and `gemmaflow prefs`: parse JSONL into chat records, and format them as Gemma
chat turns (preference pairs: pipeline/stages/prefs.py formats and writes them).

A chat record is a curated-schema document that also carries `turns` (pipeline/record_text.py), so
the registry's shared stages (classify, exact and prompt dedupe, decontamination, PII) clean SFT
examples exactly as they clean documents, with the same counters. Its `source` is the name of the
input it came from (an SFT source; `prefs` for preference pairs). An example longer than `seq_len`
is dropped (`too_long`) rather than split: a continuation row would train the answer without its prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.mixture import split_of
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.packing import PackItem
from gemmaflow.pipeline.prefs import Pair, Unusable, parse_pair
from gemmaflow.pipeline.record_text import REJECTED_ANSWER, TURNS, answers_text
from gemmaflow.pipeline.records import PIPELINE_VERSION, DeadLetter, loads_utf8, rejected_row, stable_id
from gemmaflow.pipeline.sft import ChatTokens, Conversation, Invalid, format_conversations, parse_record
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS, CountingDoFn, utf8_len
from gemmaflow.pipeline.stages.pack import read_bytes
from gemmaflow.pipeline.stages.read import open_lines
from gemmaflow.pipeline.tokenize import load_processor

ChatRecord = dict[str, Any]  # the curated record's keys, plus `turns` [[role, text], ...] and `category`
SFT_DOMAIN = "web"  # what the shared stages treat the turns as: prose (NER on, web classifiers apply)
SourceFile = tuple[str, str]  # (source name, file path): what the read step is given


def chat_record(conversation: Conversation, raw_id: Any, source: str, path: str, position: int,
                fingerprint: str) -> ChatRecord:
    """A parsed conversation as a document the shared stages can judge and edit; `source` names its input."""
    turns = [list(turn) for turn in conversation.turns]
    return {
        "id": str(raw_id) if isinstance(raw_id, (str, int)) and raw_id != "" else stable_id(path, position),
        "text": answers_text(turns),
        "url": None,
        "source": source,
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


def pair_record(pair: Pair, raw_id: Any, source: str, path: str, position: int, fingerprint: str) -> ChatRecord:
    """A preference pair as a chat record: its prompt and chosen answer as `turns`, plus the rejected answer."""
    record = chat_record(Conversation((*pair.prompt, ("model", pair.chosen)), pair.shape), raw_id, source, path,
                         position, fingerprint)
    record[REJECTED_ANSWER] = pair.rejected
    return record


def conversation_bytes(record: ChatRecord) -> int:
    return sum(utf8_len(text) for _, text in record[TURNS]) + utf8_len(record.get(REJECTED_ANSWER, ""))


def sink_row(row: dict[str, Any]) -> dict[str, Any]:
    """A rejected chat record for the rejected sink: its category and (scrubbed) turns kept in `meta`."""
    meta = {"category": row["category"], TURNS: row[TURNS]}
    if REJECTED_ANSWER in row:
        meta[REJECTED_ANSWER] = row[REJECTED_ANSWER]
    return {**{k: v for k, v in row.items() if k != REJECTED_ANSWER}, "meta": json.dumps(meta, ensure_ascii=False)}


class _ParseExamplesDoFn(CountingDoFn):
    """JSONL lines -> chat records (SFT examples, or preference pairs with `pairs`); malformed lines are dead
    letters, and pairs that teach nothing are dropped to the rejected sink with their reason. Each source's
    records read and dead-lettered are also tallied (`read.<source>`, `dead_lettered.<source>`)."""

    def __init__(self, context_separator: str, fingerprint: str, pairs: bool) -> None:
        super().__init__("read")
        self.context_separator = context_separator
        self.fingerprint = fingerprint
        self.pairs = pairs

    def process(self, file: SourceFile) -> Iterator[Any]:
        source, path = file
        position = 0
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                for position, line in enumerate(open_lines(raw, path)):
                    if not line.strip():
                        self.counts.tally("blank_lines")
                        continue
                    self.counts.record_in(len(line))
                    self.counts.tally(f"read.{source}")
                    yield from self._parse(line.decode("utf-8", errors="replace"), source, path, position)
        except Exception as exc:  # a cut .gz or .zst: the rest of the file is a dead letter, as in curate's read
            self.counts.record_in(0)
            self.counts.tally(f"read.{source}")
            yield from self._dead(source, DeadLetter(path, position, "unreadable_file",
                                                     f"{type(exc).__name__}: {exc}", ""))

    def _dead(self, source: str, letter: DeadLetter) -> Iterator[Any]:
        self.counts.record_dead(letter.reason)
        self.counts.tally(f"dead_lettered.{source}")
        yield beam.pvalue.TaggedOutput(DEAD, letter.to_row())

    def _parse(self, line: str, source: str, path: str, position: int) -> Iterator[Any]:
        try:
            record, surrogates = loads_utf8(line)
        except ValueError as exc:
            parsed: Conversation | Any = None
            reason, detail = "invalid_json", str(exc)
        else:
            if surrogates:
                self.counts.tally("surrogates_replaced", surrogates)
            parse = parse_pair if self.pairs else parse_record
            parsed = parse(record, self.context_separator)
            reason, detail = (parsed.reason, parsed.detail) if isinstance(parsed, (Invalid, Unusable)) else ("", "")
        if parsed is None or isinstance(parsed, Invalid):
            yield from self._dead(source, DeadLetter(path, position, reason, detail, line))
            return
        if isinstance(parsed, Unusable):
            example = pair_record(parsed.pair, record.get("id"), source, path, position, self.fingerprint)
            self.counts.record_dropped(reason)
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(example, "read", reason, detail))
            return
        if isinstance(parsed, Pair):
            example = pair_record(parsed, record.get("id"), source, path, position, self.fingerprint)
            self.counts.tally(f"shape.{parsed.shape}")
        else:
            example = chat_record(parsed, record.get("id"), source, path, position, self.fingerprint)
        self.counts.record_kept(conversation_bytes(example))
        yield example


class ParseExamples(beam.PTransform):
    """Files (already matched, each with its source's name) -> chat records, with `dead` (malformed
    records), `rejected` (pairs that teach nothing; empty for SFT) and `stats` outputs."""

    def __init__(self, files: Sequence[SourceFile], context_separator: str, fingerprint: str,
                 pairs: bool = False) -> None:
        super().__init__()
        self.files = list(files)
        self.context_separator = context_separator
        self.fingerprint = fingerprint
        self.pairs = pairs

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        parsed = (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ParseExamples" >> beam.ParDo(
                _ParseExamplesDoFn(self.context_separator, self.fingerprint, self.pairs)
            ).with_outputs(STATS, DEAD, REJECTED, main=KEPT)
        )
        return {KEPT: parsed[KEPT], DEAD: parsed[DEAD], REJECTED: parsed[REJECTED], STATS: parsed[STATS]}


class ChatFormatDoFn(CountingDoFn):
    """Batches of chat records -> (split, item to write); a record whose longest sequence exceeds `seq_len` is
    rejected (`too_long`). Subclasses say which sequences a record becomes and what is written. The
    tokenizer is loaded once per worker. `config` is an SFT or prefs config (`encode`, `packing`)."""

    def __init__(self, tokenizer_path: str, config: Any) -> None:
        super().__init__("format")
        self.tokenizer_path = tokenizer_path
        self.config = config
        self.processor: Any = None
        self.ids: ChatTokens | None = None

    def setup(self) -> None:
        self.processor = load_processor(read_bytes(self.tokenizer_path))
        self.ids = ChatTokens.from_processor(self.processor)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts, num_threads=self.config.encode.num_threads)

    def sequences(self, records: Sequence[ChatRecord]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """Per record, its (tokens, loss mask) sequences."""
        raise NotImplementedError

    def item(self, record: ChatRecord, sequences: list[tuple[np.ndarray, np.ndarray]]) -> Any:
        raise NotImplementedError

    def process(self, records: Sequence[ChatRecord]) -> Iterator[Any]:
        assert self.ids is not None, "setup() loads the tokenizer"
        packing = self.config.packing
        for record, sequences in zip(records, self.sequences(records), strict=True):
            self.counts.record_in(conversation_bytes(record))
            longest = max(len(tokens) for tokens, _ in sequences)
            if longest > packing.seq_len:
                self.counts.record_dropped("too_long")
                detail = f"{longest} tokens > seq_len {packing.seq_len}"
                yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(record, "format", "too_long", detail))
                continue
            self.counts.record_kept(conversation_bytes(record))
            self.counts.tally("tokens", sum(len(tokens) for tokens, _ in sequences))
            split = split_of(record["id"], packing.validation_fraction, packing.seed)
            yield split, self.item(record, sequences)


class _FormatChatDoFn(ChatFormatDoFn):
    """An SFT example: one sequence, packed as a PackItem with its loss mask."""

    def sequences(self, records: Sequence[ChatRecord]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        assert self.ids is not None
        formatted = format_conversations([tuple(map(tuple, r[TURNS])) for r in records], self.encode, self.ids)
        return [[sequence] for sequence in formatted]

    def item(self, record: ChatRecord, sequences: list[tuple[np.ndarray, np.ndarray]]) -> PackItem:
        """Keyed by source and id (ids need only be unique within a source), mixed by source."""
        (tokens, mask), = sequences
        return PackItem(f"{record['source']}/{record['id']}", record["category"], tokens, mask, record["source"])


class FormatChatRecords(beam.PTransform):
    """Chat records -> (split, item) in batches of `encode.batch_size`, with `rejected` and `stats` outputs."""

    def __init__(self, dofn: ChatFormatDoFn) -> None:
        super().__init__()
        self.dofn = dofn

    def expand(self, records: beam.PCollection) -> dict[str, beam.PCollection]:
        size = self.dofn.config.encode.batch_size
        formatted = (
            records
            | "BatchForEncode" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | "Format" >> beam.ParDo(self.dofn).with_outputs(STATS, REJECTED, main=KEPT)
        )
        return {KEPT: formatted[KEPT], REJECTED: formatted[REJECTED], STATS: formatted[STATS]}


class FormatChat(FormatChatRecords):
    """SFT examples -> (split, PackItem); over-long examples rejected (never split from their prompt)."""

    def __init__(self, tokenizer_path: str, config: SftConfig) -> None:
        super().__init__(_FormatChatDoFn(tokenizer_path, config))
