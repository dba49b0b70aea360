"""Beam stage: repair text (pipeline/normalise.py) and drop documents left empty."""

from __future__ import annotations

import apache_beam as beam

from gemmaflow.pipeline.config import NormaliseConfig
from gemmaflow.pipeline.normalise import normalise_text
from gemmaflow.pipeline.stages.base import Document, DocumentStageDoFn, Verdict, stage_outputs


class _NormaliseDoFn(DocumentStageDoFn):
    def __init__(self, config: NormaliseConfig) -> None:
        super().__init__("normalise")
        self.config = config

    def judge(self, doc: Document) -> Verdict:
        result = normalise_text(doc["text"], self.config)
        doc["text"] = result.text
        if result.mojibake_fixed:
            self.counts.tally("mojibake_fixed")
        if result.control_chars_removed:
            self.counts.tally("control_chars_removed", result.control_chars_removed)
            doc["signals"]["normalise.control_chars_removed"] = float(result.control_chars_removed)
        if result.replacement_chars:
            self.counts.tally("docs_with_replacement_chars")
            doc["signals"]["normalise.replacement_chars"] = float(result.replacement_chars)
        if doc["signals"].get("read.invalid_utf8"):
            self.counts.tally("invalid_utf8_replaced")
        if not result.text.strip():
            return "empty_text", "no visible characters after normalisation"
        return None


class Normalise(beam.PTransform):
    """Mojibake repair, Unicode normal form, control characters and newlines; empty documents dropped."""

    def __init__(self, config: NormaliseConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        return stage_outputs(docs, "RepairText", _NormaliseDoFn(self.config))
