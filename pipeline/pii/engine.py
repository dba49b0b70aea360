"""presidio AnalyzerEngines holding only the recognisers the configuration asks for.

One engine for patterns, on a no-op NLP engine (no model runs for a regex); NER runs the NER-only
spaCy pipeline from pipeline/pii/ner.py directly. Both return plain `Span`s; NER spans found in a
prose window are shifted back to document offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine

from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.ner import NerModel, model_entity, plausible_name, prose_windows
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
    """PERSON/LOCATION from the spaCy model, on prose windows only, mapped as presidio's SpacyRecognizer maps them.

    The windows go through one `nlp.pipe` and their entities are read off directly. presidio's
    per-window `analyze` (artifacts of every token, then one recogniser on them) gives the same
    spans (tests/pipeline/test_pii_ner_parity.py) for a few percent more CPU; the model itself is
    the cost.
    """

    def __init__(self, model: NerModel, entities: Sequence[str], batch_size: int) -> None:
        self.entities = frozenset(e for e in entities if e in E.NER)
        self.batch_size = batch_size
        self.model = model

    def analyze_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        """NER spans per text; all windows of the batch go through one `nlp.pipe`."""
        found: list[list[Span]] = [[] for _ in texts]
        if not self.entities:
            return found
        windows = [(i, start, end) for i, text in enumerate(texts) for start, end in prose_windows(text)]
        docs = self.model.nlp.pipe([texts[i][start:end] for i, start, end in windows], batch_size=self.batch_size)
        for (i, start, _), doc in zip(windows, docs, strict=True):
            for ent in doc.ents:
                entity = model_entity(ent.label_)
                if entity in self.entities and (entity != E.PERSON or plausible_name(ent.text)):
                    found[i].append(Span(start + ent.start_char, start + ent.end_char, entity))
        return found
