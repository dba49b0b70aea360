"""Beam stage: fastText classifiers in batches, models loaded once per worker (pipeline/classify.py)."""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam

from gemmaflow.pipeline.classify import DocumentClassifiers
from gemmaflow.pipeline.config import ClassifyConfig
from gemmaflow.pipeline.stages.base import BatchedDocumentStageDoFn, Document, Verdict, stage_outputs


class _ClassifyDoFn(BatchedDocumentStageDoFn):
    def __init__(self, config: ClassifyConfig) -> None:
        super().__init__("classify")
        self.config = config
        self.classifiers: DocumentClassifiers | None = None

    def setup(self) -> None:
        # Loaded once per worker process, never pickled with the DoFn.
        self.classifiers = DocumentClassifiers(self.config)

    def judge_batch(self, docs: Sequence[Document]) -> list[Verdict]:
        assert self.classifiers is not None, "setup() loads the models"
        return self.classifiers.judge_batch(docs, self.counts.tally)


class Classify(beam.PTransform):
    """Scores every document with each configured classifier; drops per each one's action and threshold."""

    def __init__(self, config: ClassifyConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        batches = docs | "BatchForClassifiers" >> beam.BatchElements(
            min_batch_size=1, max_batch_size=self.config.batch_size
        )
        return stage_outputs(batches, "PredictClassifiers", _ClassifyDoFn(self.config))
