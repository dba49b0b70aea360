"""Beam stage: documents other stages dropped, made ready for the rejected sink (preview, then PII).

By default the sink keeps a preview of each text (`output.rejected_text`), which is what a reader
of `rejected/` needs to see why a document went. With PII on, the preview is scrubbed: the text is
first clipped a little past the preview's end, so a value cut by the clip (an e-mail address, a
key) is still whole when the recognisers see it, and clipped to the preview after scrubbing. A
private-key block can be longer than that margin; one left open at the cut is removed from its
`-----BEGIN` on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import regex

from gemmaflow.pipeline.config import OutputConfig, PiiConfig
from gemmaflow.pipeline.record_text import TURNS, editable_texts, replace_texts
from gemmaflow.pipeline.stages.base import KEPT, STATS, Document
from gemmaflow.pipeline.stages.pii import ScrubRejected

# Longer than any span a recogniser finds except a private-key block: addresses, IBANs and API
# keys (256 characters at most) stay whole across the preview's end.
SCRUB_MARGIN_CHARS = 300
_OPEN_PRIVATE_KEY = regex.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----END ).)*\Z", regex.S
)


def clip_text(text: str, limit: int) -> str:
    """The first `limit` characters, without a private-key block left open at the cut."""
    if len(text) <= limit:
        return text
    clipped = text[:limit]
    open_block = _OPEN_PRIVATE_KEY.search(clipped)
    return clipped[: open_block.start()] if open_block else clipped


def clip_record(doc: Document, limit: int) -> Document:
    """`doc` with every text it carries (each turn of a chat record) clipped to `limit` characters."""
    texts = editable_texts(doc)
    if all(len(text) <= limit for text in texts):
        return doc
    clipped = dict(doc)
    if TURNS in doc:
        clipped[TURNS] = [list(turn) for turn in doc[TURNS]]
    replace_texts(clipped, [clip_text(text, limit) for text in texts])
    return clipped


class PrepareRejected(beam.PTransform):
    """Every stage's rejected documents, gathered as the sink should hold them: clipped per
    `OutputConfig`, scrubbed per `PiiConfig`.

    Returns `{KEPT: rows}`, plus `STATS` (the `pii_rejected` counts) when PII is on.
    """

    def __init__(self, output: OutputConfig, pii: PiiConfig) -> None:
        super().__init__()
        self.output = output
        self.pii = pii

    def expand(self, sources: Sequence[beam.PCollection]) -> dict[str, Any]:
        preview = self.output.rejected_text == "preview"
        limit = self.output.rejected_preview_chars
        if preview:
            # Clipped where each stage rejects (the step fuses with it), before anything gathers
            # rows: a runner that holds the gathered rows in memory then holds previews, not texts.
            margin = SCRUB_MARGIN_CHARS if self.pii.enabled else 0
            sources = [rows | f"ClipRejected{i}" >> beam.Map(clip_record, limit + margin)
                       for i, rows in enumerate(sources)]
        rows = sources | "GatherRejected" >> beam.Flatten()
        if not self.pii.enabled:
            return {KEPT: rows}
        scrubbed = rows | "ScrubRejected" >> ScrubRejected(self.pii)
        rows = scrubbed[KEPT]
        if preview:
            rows = rows | "ClipScrubbedRejected" >> beam.Map(clip_record, limit)
        return {KEPT: rows, STATS: scrubbed[STATS]}
