"""Beam stage: exact deduplication by content hash, grouped by the runner (no in-memory set anywhere)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from gemmaflow.pipeline.config import ExactDedupeConfig
from gemmaflow.pipeline.dedupe import split_survivor
from gemmaflow.pipeline.record_text import identity_hash
from gemmaflow.pipeline.records import rejected_row
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, CountingDoFn, Document, utf8_len


def _keyed_by_hash(doc: Document) -> tuple[str, Document]:
    return identity_hash(doc), doc


class _KeepSurvivorDoFn(CountingDoFn):
    def __init__(self) -> None:
        super().__init__("exact_dedupe")

    def process(self, group: tuple[str, Iterable[Document]]) -> Iterator[Any]:
        _, docs = group
        survivor, duplicates = split_survivor(docs)
        nbytes = utf8_len(survivor["text"])
        self.counts.record_in(nbytes, len(duplicates) + 1)
        self.counts.record_kept(nbytes)
        if duplicates:
            survivor["signals"]["exact_dedupe.copies"] = float(len(duplicates) + 1)
            self.counts.tally("groups_with_duplicates")
        yield survivor
        for duplicate in duplicates:
            self.counts.record_dropped("exact_duplicate")
            yield beam.pvalue.TaggedOutput(
                REJECTED, rejected_row(duplicate, "exact_dedupe", "exact_duplicate", f"survivor={survivor['id']}")
            )


class ExactDedupe(beam.PTransform):
    """One survivor (smallest id) per identical normalised text (per identical conversation, for chat records)."""

    def __init__(self, config: ExactDedupeConfig | None = None) -> None:
        super().__init__()
        self.config = config or ExactDedupeConfig()

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        outputs = (
            docs
            | "KeyByTextHash" >> beam.Map(_keyed_by_hash)
            | "GroupIdenticalTexts" >> beam.GroupByKey()
            | "KeepSurvivor" >> beam.ParDo(_KeepSurvivorDoFn()).with_outputs(STATS, REJECTED, main=KEPT)
        )
        return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], STATS: outputs[STATS]}
