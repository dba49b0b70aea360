"""Beam stage: Gopher, C4, FineWeb, code and math rule sets (pipeline/heuristics/)."""

from __future__ import annotations

import apache_beam as beam

from gemmaflow.pipeline.heuristics import HeuristicsConfig, apply_heuristics
from gemmaflow.pipeline.stages.base import Document, DocumentStageDoFn, Verdict, stage_outputs


class _HeuristicsDoFn(DocumentStageDoFn):
    def __init__(self, config: HeuristicsConfig) -> None:
        super().__init__("heuristics")
        self.config = config

    def judge(self, doc: Document) -> Verdict:
        result = apply_heuristics(doc["text"], doc["domain"], self.config)
        doc["signals"].update(result.signals)
        if result.lines_removed:
            doc["text"] = result.text
            self.counts.tally("lines_removed", result.lines_removed)
            self.counts.tally("docs_edited")
        if result.drop_reason is not None:
            return result.drop_reason, doc["domain"]
        return None


class ApplyHeuristics(beam.PTransform):
    def __init__(self, config: HeuristicsConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        return stage_outputs(docs, "JudgeQuality", _HeuristicsDoFn(self.config))
