"""Beam stage: exact deduplication by content hash, grouped by the runner on keys only (no in-memory set).

The hash is taken where the text is (the spill step of pipeline/stages/grouping.py); the runner
groups (hash, KeyedDoc) pairs, never the documents themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from gemmaflow.pipeline.config import ExactDedupeConfig
from gemmaflow.pipeline.dedupe import split_survivor
from gemmaflow.pipeline.record_text import identity_hash
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, CountingDoFn, Document
from gemmaflow.pipeline.stages.grouping import GroupingStage, KeyedDoc, Removal
from gemmaflow.pipeline.stats import StageCounts

STAGE = "exact_dedupe"
REASON = "exact_duplicate"


def _keyed_by_hash(keyed: KeyedDoc) -> tuple[str, KeyedDoc]:
    return keyed.keys[STAGE], keyed


class _KeepSurvivorDoFn(CountingDoFn):
    def __init__(self) -> None:
        super().__init__(STAGE)

    def process(self, group: tuple[str, Iterable[KeyedDoc]]) -> Iterator[Any]:
        _, docs = group
        survivor, duplicates = split_survivor(docs, KeyedDoc.order)
        self.counts.record_in(survivor.nbytes, len(duplicates) + 1)
        self.counts.record_kept(survivor.nbytes)
        if duplicates:
            survivor = survivor.with_signal("exact_dedupe.copies", float(len(duplicates) + 1))
            self.counts.tally("groups_with_duplicates")
        yield survivor
        for duplicate in duplicates:
            self.counts.record_dropped(REASON)
            yield beam.pvalue.TaggedOutput(
                REJECTED, Removal(duplicate.spill_id, duplicate.row, STAGE, REASON, f"survivor={survivor.id}")
            )


class ExactDedupe(GroupingStage):
    """One survivor (smallest id) per identical normalised text (per identical conversation, for chat records)."""

    name = STAGE

    def __init__(self, config: ExactDedupeConfig | None = None) -> None:
        super().__init__()
        self.config = config or ExactDedupeConfig()

    def key_of(self, doc: Document, counts: StageCounts) -> str:
        return identity_hash(doc)

    def expand(self, keyed: beam.PCollection) -> dict[str, beam.PCollection]:
        outputs = (
            keyed
            | "KeyByTextHash" >> beam.Map(_keyed_by_hash)
            | "GroupIdenticalTexts" >> beam.GroupByKey()
            | "KeepSurvivor" >> beam.ParDo(_KeepSurvivorDoFn()).with_outputs(STATS, REJECTED, main=KEPT)
        )
        return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], STATS: outputs[STATS]}
