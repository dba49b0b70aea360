"""Beam stage: label each document web, code or math (pipeline/domain.py). Drops nothing."""

from __future__ import annotations

import apache_beam as beam

from gemmaflow.pipeline.config import DomainConfig
from gemmaflow.pipeline.domain import detect_domain
from gemmaflow.pipeline.stages.base import Document, DocumentStageDoFn, Verdict, stage_outputs


class _DomainDoFn(DocumentStageDoFn):
    def __init__(self, config: DomainConfig) -> None:
        super().__init__("domain")
        self.config = config

    def judge(self, doc: Document) -> Verdict:
        if not (self.config.trust_record_domain and doc["domain"]):
            doc["domain"], doc["domain_method"] = detect_domain(doc["text"], doc["url"], doc["source"], self.config)
        self.counts.tally(f"{doc['domain']}.{doc['domain_method']}")
        return None


class DetectDomain(beam.PTransform):
    def __init__(self, config: DomainConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        return stage_outputs(docs, "LabelDomain", _DomainDoFn(self.config))
