"""presidio AnalyzerEngines holding only the recognisers the configuration asks for.

Two engines: one for patterns, on a no-op NLP engine (no model runs for a regex), and one for NER
on presidio's spaCy engine with the NER-only pipeline from pipeline/pii/ner.py. Both return plain
`Span`s; NER spans found in a prose window are shifted back to document offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.ner import NerModel, plausible_name, prose_windows
from gemmaflow.pipeline.pii.prescreen import triggered
from gemmaflow.pipeline.pii.recognisers import build_recognisers
from gemmaflow.pipeline.pii.replace import Span

LANGUAGE = "en"  # presidio's language key; recognisers here are language-independent patterns


class PatternAnalyzer:
    """presidio pattern recognisers, asked only for the entity types the pre-screen lets through."""

    def __init__(self, entities: Sequence[str], phone_regions: Sequence[str], keep_private_ips: bool = False) -> None:
        recognisers = build_recognisers(entities, phone_regions, keep_private_ips)
        self.entities = [e for e in entities if any(e in r.supported_entities for r in recognisers)]
        self.engine = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognisers, supported_languages=[LANGUAGE]),
            nlp_engine=NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}]),
            supported_languages=[LANGUAGE],
        )

    def analyze(self, text: str, entities: Sequence[str] | None = None) -> list[Span]:
        """Spans of `entities` (default: all this analyzer has) in `text`; [] when no trigger fires."""
        wanted = triggered(text, self.entities if entities is None else entities)
        if not wanted:
            return []
        results = self.engine.analyze(text=text, language=LANGUAGE, entities=wanted)
        return [Span(r.start, r.end, r.entity_type) for r in results]


class NerAnalyzer:
    """PERSON/LOCATION from the spaCy model through presidio's SpacyRecognizer, on prose windows only."""

    def __init__(self, model: NerModel, entities: Sequence[str], batch_size: int) -> None:
        self.entities = [e for e in entities if e in E.NER]
        self.batch_size = batch_size
        self.model = model
        self.engine = AnalyzerEngine(
            registry=RecognizerRegistry(
                recognizers=[SpacyRecognizer(supported_language=LANGUAGE, supported_entities=self.entities)],
                supported_languages=[LANGUAGE],
            ),
            nlp_engine=model.engine,
            supported_languages=[LANGUAGE],
        )

    def analyze_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        """NER spans per text; all windows of the batch go through one `nlp.pipe`."""
        found: list[list[Span]] = [[] for _ in texts]
        if not self.entities:
            return found
        windows = [(i, start, end) for i, text in enumerate(texts) for start, end in prose_windows(text)]
        artifacts = self.model.engine.process_batch(
            [texts[i][start:end] for i, start, end in windows], LANGUAGE, batch_size=self.batch_size
        )
        for (i, start, _), (window, nlp_artifacts) in zip(windows, artifacts, strict=True):
            results = self.engine.analyze(
                text=window, language=LANGUAGE, entities=self.entities, nlp_artifacts=nlp_artifacts
            )
            found[i].extend(
                Span(start + r.start, start + r.end, r.entity_type)
                for r in results
                if r.entity_type != E.PERSON or plausible_name(window[r.start : r.end])
            )
        return found
