"""Beam stages of `gemmaflow sft`: parse dolly/chat JSONL, clean, format Gemma chat turns, pack with loss masks.

    files -> ParseExamples (dead letters: malformed records) -> [ScrubPii] -> [Classify answers] -> [Dedupe]
          -> FormatChat (batched encode; rejected: longer than seq_len) -> PackAndWriteShards
    driver: shard names, manifest.json (kind "sft", tokens per category), stats.json

An example longer than `seq_len` is dropped (`too_long`) rather than split: a continuation row
would train the answer without its prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.dedupe import split_survivor
from gemmaflow.pipeline.mixture import split_of
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.packing import PackItem
from gemmaflow.pipeline.records import DEAD_LETTER_SCHEMA, DeadLetter, stable_id
from gemmaflow.pipeline.run_output import prepare_output, write_counts
from gemmaflow.pipeline.sft import MODEL, ChatTokens, Conversation, dedupe_key, format_conversations, parse_record
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS, CountingDoFn
from gemmaflow.pipeline.stages.classify import Classify
from gemmaflow.pipeline.stages.pack import PackAndWriteShards, finalise_output, read_bytes, write_sinks
from gemmaflow.pipeline.stages.read import match_inputs, open_lines
from gemmaflow.pipeline.tokenize import END_OF_TURN, START_OF_TURN, load_processor, piece_id, tokenizer_info

Example = dict[str, Any]  # id, category, turns [[role, text], ...], provenance {file, position}


def _example_bytes(example: Example) -> int:
    return sum(len(text.encode("utf-8", errors="surrogatepass")) for _, text in example["turns"])


def _rejected(example: Example, reason: str, detail: str) -> dict[str, Any]:
    raw = json.dumps({"id": example["id"], "turns": example["turns"]}, ensure_ascii=False)
    return DeadLetter(example["provenance"]["file"], example["provenance"]["position"], reason, detail, raw).to_row()


class _ParseExamplesDoFn(CountingDoFn):
    def __init__(self, context_separator: str) -> None:
        super().__init__("read")
        self.context_separator = context_separator

    def process(self, path: str) -> Iterator[Any]:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            for position, line in enumerate(open_lines(raw, path)):
                if not line.strip():
                    self.counts.tally("blank_lines")
                    continue
                self.counts.record_in(len(line))
                yield from self._parse(line.decode("utf-8", errors="replace"), path, position)

    def _parse(self, line: str, path: str, position: int) -> Iterator[Any]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed: Conversation | Any = None
            reason, detail = "invalid_json", str(exc)
        else:
            parsed = parse_record(record, self.context_separator)
            reason, detail = ("", "") if isinstance(parsed, Conversation) else (parsed.reason, parsed.detail)
        if not isinstance(parsed, Conversation):
            self.counts.record_dead(reason)
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(path, position, reason, detail, line).to_row())
            return
        raw_id = record.get("id")
        example = {
            "id": str(raw_id) if isinstance(raw_id, (str, int)) and raw_id != "" else stable_id(path, position),
            "category": parsed.category or "uncategorised",
            "turns": [list(turn) for turn in parsed.turns],
            "provenance": {"file": path, "position": position},
        }
        self.counts.record_kept(_example_bytes(example))
        yield example


class _ScrubPiiDoFn(CountingDoFn):
    """Every turn through the PII scrubber (pipeline/pii), loaded once per worker; nothing is dropped."""

    def __init__(self, config: PiiConfig) -> None:
        super().__init__("pii")
        self.config = config
        self.scrubber: Any = None

    def setup(self) -> None:
        from gemmaflow.pipeline.pii.scrubber import PiiScrubber

        self.scrubber = PiiScrubber(self.config)

    def process(self, examples: Sequence[Example]) -> Iterator[Example]:
        texts = [text for example in examples for _, text in example["turns"]]
        results = iter(self.scrubber.scrub_batch(texts, ["web"] * len(texts)))
        for example in examples:
            self.counts.record_in(_example_bytes(example))
            for turn in example["turns"]:
                result = next(results)
                turn[1] = result.text
                for entity, n in result.replaced.items():
                    self.counts.tally(f"replaced.{entity}", n)
            self.counts.record_kept(_example_bytes(example))
            yield example


def _as_document(example: Example) -> Example:
    """The fields the curate classify stage reads: it scores what the model learns, the answers."""
    answers = "\n\n".join(text for role, text in example["turns"] if role == MODEL)
    return {**example, "text": answers, "domain": "web", "domain_method": None, "signals": {}}


class _KeepFirstExampleDoFn(CountingDoFn):
    def __init__(self) -> None:
        super().__init__("exact_dedupe")

    def process(self, group: tuple[str, Iterable[Example]]) -> Iterator[Any]:
        survivor, duplicates = split_survivor(group[1])
        self.counts.record_in(_example_bytes(survivor), len(duplicates) + 1)
        self.counts.record_kept(_example_bytes(survivor))
        yield survivor
        for duplicate in duplicates:
            self.counts.record_dropped("exact_duplicate")
            yield beam.pvalue.TaggedOutput(REJECTED, _rejected(duplicate, "exact_duplicate",
                                                               f"survivor={survivor['id']}"))


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
        self.ids = ChatTokens(
            bos=processor.bos_id(),
            start_of_turn=piece_id(processor, START_OF_TURN),
            end_of_turn=piece_id(processor, END_OF_TURN),
            model_header=tuple(processor.encode(MODEL + "\n")),
            newline=tuple(processor.encode("\n")),
        )

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts, num_threads=self.config.encode.num_threads)

    def process(self, examples: Sequence[Example]) -> Iterator[Any]:
        assert self.ids is not None, "setup() loads the tokenizer"
        formatted = format_conversations([tuple(map(tuple, e["turns"])) for e in examples], self._encode, self.ids)
        packing = self.config.packing
        for example, (tokens, mask) in zip(examples, formatted, strict=True):
            self.counts.record_in(_example_bytes(example))
            if len(tokens) > packing.seq_len:
                self.counts.record_dropped("too_long")
                yield beam.pvalue.TaggedOutput(
                    REJECTED, _rejected(example, "too_long", f"{len(tokens)} tokens > seq_len {packing.seq_len}")
                )
                continue
            self.counts.record_kept(_example_bytes(example))
            self.counts.tally("tokens", len(tokens))
            split = split_of(example["id"], packing.validation_fraction, packing.seed)
            yield split, PackItem(example["id"], example["category"], tokens, mask)


def sft_chain(config: SftConfig) -> tuple[str, ...]:
    """The stages the config enables, in order (for the accounting check)."""
    return ("read", *(("pii",) if config.pii.enabled else ()), *(("classify",) if config.classify.enabled else ()),
            *(("exact_dedupe",) if config.cleaning.dedupe else ()), "format")


def build_sft(pipeline: beam.Pipeline, paths: list[str], tokenizer_path: str, output: str, config: SftConfig,
              pad_id: int) -> None:
    parsed = (
        pipeline
        | "ListFiles" >> beam.Create(paths)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ParseExamples" >> beam.ParDo(_ParseExamplesDoFn(config.context_separator)).with_outputs(
            STATS, DEAD, main=KEPT
        )
    )
    examples, stats, rejected = parsed[KEPT], [parsed[STATS]], []
    batch = config.encode.batch_size
    if config.pii.enabled:
        scrubbed = (
            examples
            | "BatchForPii" >> beam.BatchElements(min_batch_size=1, max_batch_size=config.pii.batch_size)
            | "ScrubPii" >> beam.ParDo(_ScrubPiiDoFn(config.pii)).with_outputs(STATS, main=KEPT)
        )
        examples = scrubbed[KEPT]
        stats.append(scrubbed[STATS])
    if config.classify.enabled:
        classified = (
            examples
            | "AsDocuments" >> beam.Map(_as_document)
            | "Classify" >> Classify(config.classify)
        )
        examples = classified[KEPT]
        stats.append(classified[STATS])
        rejected.append(classified[REJECTED] | "ClassifierRejects" >> beam.Map(
            lambda row: _rejected(row, row["reject_reason"], row["reject_detail"])))
    if config.cleaning.dedupe:
        deduped = (
            examples
            | "KeyByTurns" >> beam.Map(lambda e: (dedupe_key(tuple(map(tuple, e["turns"]))), e))
            | "GroupIdentical" >> beam.GroupByKey()
            | "KeepSurvivor" >> beam.ParDo(_KeepFirstExampleDoFn()).with_outputs(STATS, REJECTED, main=KEPT)
        )
        examples = deduped[KEPT]
        stats.append(deduped[STATS])
        rejected.append(deduped[REJECTED])
    formatted = (
        examples
        | "BatchForEncode" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
        | "FormatChat" >> beam.ParDo(_FormatChatDoFn(tokenizer_path, config)).with_outputs(STATS, REJECTED, main=KEPT)
    )
    stats.append(formatted[STATS])
    rejected.append(formatted[REJECTED])
    stats.append(formatted[KEPT] | "Pack" >> PackAndWriteShards(output, config.packing, config.output, pad_id))
    write_sinks(output, [parsed[DEAD]], rejected, rejected_schema=DEAD_LETTER_SCHEMA)
    write_counts(stats, output)


def run_sft(
    inputs: list[str],
    tokenizer_path: str,
    output: str,
    config: SftConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
) -> dict[str, Any]:
    """Format, clean and pack SFT examples into shards + manifest.json; returns the manifest."""
    paths = match_inputs(inputs)
    model_bytes = read_bytes(tokenizer_path)
    info = tokenizer_info(model_bytes)
    processor = load_processor(model_bytes)
    for piece in (START_OF_TURN, END_OF_TURN):
        piece_id(processor, piece)  # fail before the pipeline starts, not on a worker
    prepare_output(output, overwrite)
    options = PipelineOptions(beam_args or [])
    with beam.Pipeline(options=options) as pipeline:
        build_sft(pipeline, paths, tokenizer_path, output, config, info.pad_id)
    run = {"inputs": inputs, "files": len(paths), "tokenizer": tokenizer_path, "output": output,
           "runner": options.get_all_options().get("runner") or "DirectRunner"}
    return finalise_output(output, kind="sft", chain=sft_chain(config), tokenizer=info, packing=config.packing,
                           shards=config.output, config=config, run=run, echo=echo)
