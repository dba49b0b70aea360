"""Beam stage: fastText language ID in batches; documents outside the allowed languages are dropped."""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam

from gemmaflow.pipeline.config import LanguageConfig
from gemmaflow.pipeline.language import LanguageIdentifier
from gemmaflow.pipeline.stages.base import BatchedDocumentStageDoFn, Document, Verdict, stage_outputs
from gemmaflow.pipeline.stats import language_key


class _LanguageDoFn(BatchedDocumentStageDoFn):
    def __init__(self, config: LanguageConfig) -> None:
        super().__init__("language")
        self.config = config
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        # Loaded once per worker process, never pickled with the DoFn.
        self.identifier = LanguageIdentifier(self.config.model_path, self.config.max_chars)

    def judge_batch(self, docs: Sequence[Document]) -> list[Verdict]:
        assert self.identifier is not None, "setup() loads the model"
        labelled = [doc for doc in docs if doc["domain"] in self.config.label_domains]
        predictions = self.identifier.predict([doc["text"] for doc in labelled])
        for doc, prediction in zip(labelled, predictions, strict=True):
            doc["lang"], doc["lang_score"] = prediction.lang, prediction.score
            doc["signals"]["language.en_stop_word_fraction"] = prediction.english_stop_word_fraction
        for doc in docs:  # every document's language before the filter, for the run report
            self.counts.tally(language_key(doc["lang"]))
        return [self._verdict(doc) for doc in docs]

    def _verdict(self, doc: Document) -> Verdict:
        if doc["domain"] not in self.config.filter_domains:
            return None
        if doc["lang"] not in self.config.allowed:
            return "not_allowed_language", f"{doc['lang']} ({doc['lang_score']:.2f})"
        if doc["lang_score"] < self.config.min_score:
            if self._rescued(doc):
                self.counts.tally("rescued_by_stop_words")
                return None
            return "low_language_score", f"{doc['lang']} ({doc['lang_score']:.2f})"
        return None

    def _rescued(self, doc: Document) -> bool:
        """Low-confidence English whose prose is full of English function words is English."""
        rescue = self.config
        return (
            rescue.stop_word_rescue
            and doc["lang"] == "en"
            and doc["lang_score"] >= rescue.rescue_min_score
            and doc["signals"]["language.en_stop_word_fraction"] >= rescue.rescue_min_stop_word_fraction
        )


class IdentifyLanguage(beam.PTransform):
    """lid.176 on the domains configured; code is never judged by a prose language model."""

    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        batches = docs | "BatchForLanguageID" >> beam.BatchElements(
            min_batch_size=1, max_batch_size=self.config.batch_size
        )
        return stage_outputs(batches, "PredictLanguage", _LanguageDoFn(self.config))
