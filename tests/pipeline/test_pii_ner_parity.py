"""NER read straight off spaCy gives the spans presidio's AnalyzerEngine + SpacyRecognizer gave on the same windows."""

from __future__ import annotations

import importlib.util

import pytest

from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.engine import NerAnalyzer
from gemmaflow.pipeline.pii.ner import MODEL_LABELS, load_ner_model, plausible_name, prose_windows
from gemmaflow.pipeline.pii.replace import Span

pytestmark = pytest.mark.skipif(
    not any(importlib.util.find_spec(name) for name in PiiConfig().ner_models), reason="no spaCy English model"
)

TEXTS = [
    "Dear Margaret Okafor,\nthanks for the visit to Lagos last week. John Smith and Dr. Ana de la Cruz say hi.\n",
    "Meeting notes\n\nPresent: Priya Raman, Tomás Ortega (Madrid office), and Wei Chen from Singapore.\n"
    "Action: Ortega to send the Berlin figures to Raman by Friday.",
    "def parse(x):\n    return x  # no prose here\n",
    "The Rhine flows from Switzerland through Germany. Mount Kilimanjaro is in Tanzania, said Amina Hassan.",
    "Kernel Maintainers List\nLinus Torvalds\nGreg Kroah-Hartman <greg@example.org>\n"
    "Andrew Morton (Linux Foundation)\n",
]


def presidio_spans(model, texts: list[str]) -> list[list[Span]]:
    """The reference: presidio's spaCy engine and SpacyRecognizer, window by window."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    ignored = ("ORG", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "DATE", "TIME",
               "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL", "MISC")  # fmt: skip
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": model.name}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=ignored,
                                                      model_to_presidio_entity_mapping=MODEL_LABELS),
    )
    nlp_engine.nlp = {"en": model.nlp}
    entities = [E.PERSON, E.LOCATION]
    engine = AnalyzerEngine(
        registry=RecognizerRegistry(recognizers=[SpacyRecognizer(supported_language="en", supported_entities=entities)],
                                    supported_languages=["en"]),
        nlp_engine=nlp_engine, supported_languages=["en"],
    )
    found: list[list[Span]] = []
    for text in texts:
        spans = []
        for start, end in prose_windows(text):
            window = text[start:end]
            for r in engine.analyze(text=window, language="en", entities=entities):
                if r.entity_type != E.PERSON or plausible_name(window[r.start : r.end]):
                    spans.append(Span(start + r.start, start + r.end, r.entity_type))
        found.append(sorted(spans, key=lambda s: (s.start, s.end)))
    return found


def test_direct_ner_spans_equal_presidio_spans():
    model = load_ner_model(PiiConfig().ner_models)
    assert model is not None
    ours = [sorted(spans, key=lambda s: (s.start, s.end))
            for spans in NerAnalyzer(model, [E.PERSON, E.LOCATION], 8).analyze_batch(TEXTS)]
    reference = presidio_spans(model, TEXTS)
    assert ours == reference
    assert sum(len(spans) for spans in ours) >= 8  # the texts do hold names and places the model finds
    assert ours[2] == []  # code: no window, no spans
