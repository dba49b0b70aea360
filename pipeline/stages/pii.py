"""Beam stage: scrub PII from every document in batches; nothing is dropped, the text is edited.

The scrubber (presidio recognisers and the spaCy NER model) is built once per worker in
`setup()`. Counts per entity type go to StageCounts (`detected.<TYPE>`, `replaced.<TYPE>`,
`docs_scrubbed`, `ner_unavailable`), hence to Beam metrics and stats.json; each document carries
its own replacement counts in `pii_replacements`. Rows bound for the rejected sink (documents
earlier stages dropped) are scrubbed the same way before they are written. No value a recogniser
found is ever logged, counted by value or written to any sink.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import apache_beam as beam

from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.record_text import editable_texts, replace_texts
from gemmaflow.pipeline.stages.base import BatchedDocumentStageDoFn, Document, Verdict, stage_outputs

if TYPE_CHECKING:
    from gemmaflow.pipeline.pii.scrubber import PiiScrubber

STAGE = "pii"
# Rows bound for the rejected sink are scrubbed too, counted under their own name: they are outside
# the accounting chain (already counted as dropped by the stage that rejected them).
REJECTED_STAGE = "pii_rejected"


class _ScrubPiiDoFn(BatchedDocumentStageDoFn):
    def __init__(self, config: PiiConfig, stage: str = STAGE) -> None:
        super().__init__(stage)
        self.config = config
        self.scrubber: PiiScrubber | None = None

    def setup(self) -> None:
        # Loaded once per worker process, never pickled with the DoFn; imported here because presidio
        # and spaCy take seconds to import, which building the pipeline graph should not pay.
        from gemmaflow.pipeline.pii.scrubber import PiiScrubber

        self.scrubber = PiiScrubber(self.config)

    def judge_batch(self, docs: Sequence[Document]) -> list[Verdict]:
        assert self.scrubber is not None, "setup() builds the scrubber"
        texts = [editable_texts(doc) for doc in docs]
        flat = [text for doc_texts in texts for text in doc_texts]
        domains = [doc["domain"] for doc, doc_texts in zip(docs, texts, strict=True) for _ in doc_texts]
        results = iter(self.scrubber.scrub_batch(flat, domains))
        for doc, doc_texts in zip(docs, texts, strict=True):
            replaced: Counter[str] = Counter()
            ner_unavailable = False
            scrubbed = []
            for _ in doc_texts:
                result = next(results)
                scrubbed.append(result.text)
                replaced.update(result.replaced)
                ner_unavailable |= result.ner_unavailable
                for entity, n in result.detected.items():
                    self.counts.tally(f"detected.{entity}", n)
            replace_texts(doc, scrubbed)
            doc["pii_replacements"] = dict(sorted(replaced.items()))
            for entity, n in replaced.items():
                self.counts.tally(f"replaced.{entity}", n)
            if replaced:
                self.counts.tally("docs_scrubbed")
            if ner_unavailable:
                self.counts.tally("ner_unavailable")
        return [None] * len(docs)


class ScrubPii(beam.PTransform):
    """PII replaced by typed placeholders (or pseudonyms) per `PiiConfig`; every document is kept."""

    def __init__(self, config: PiiConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        batches = docs | "BatchForPii" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.config.batch_size)
        return stage_outputs(batches, "ScrubPii", _ScrubPiiDoFn(self.config))


class ScrubRejected(beam.PTransform):
    """The same scrubbing for rejected-sink rows, so no PII reaches that sink either; counts as `pii_rejected`."""

    def __init__(self, config: PiiConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, rows: beam.PCollection) -> dict[str, beam.PCollection]:
        batches = rows | "BatchRejectedForPii" >> beam.BatchElements(
            min_batch_size=1, max_batch_size=self.config.batch_size
        )
        return stage_outputs(batches, "ScrubRejectedPii", _ScrubPiiDoFn(self.config, REJECTED_STAGE))
