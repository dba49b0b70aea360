"""Each stage as a Beam transform on DirectRunner, checked with assert_that."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gemmaflow.pipeline.config import DomainConfig, LanguageConfig, NormaliseConfig, ReadConfig
from gemmaflow.pipeline.heuristics import HeuristicsConfig
from gemmaflow.pipeline.records import document_from_record
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.dedupe import ExactDedupe
from gemmaflow.pipeline.stages.domain import DetectDomain
from gemmaflow.pipeline.stages.heuristics import ApplyHeuristics
from gemmaflow.pipeline.stages.language import IdentifyLanguage
from gemmaflow.pipeline.stages.normalise import Normalise
from gemmaflow.pipeline.stages.read import ReadDocuments
from gemmaflow.pipeline.stats import merge_parts
from tests.conftest import write_jsonl

ENGLISH = (
    "The library opens at nine in the morning and closes at six in the evening. Visitors can borrow "
    "up to ten books at a time, and they have three weeks to return them. The reading room on the "
    "second floor is quiet and has plenty of desks, so many students come here to work. There is also "
    "a small cafe near the entrance, where people meet to talk about the books they have read. Children "
    "have their own section with picture books, and on Saturday mornings a volunteer reads stories aloud "
    "to them. The staff are happy to help anyone who is looking for information about the town."
)


def doc(doc_id: str, text: str, domain: str | None = None, position: int = 0) -> dict:
    record = {"id": doc_id, "text": text}
    if domain:
        record["domain"] = domain
    result = document_from_record(record, "mem", position, "fp")
    assert isinstance(result, dict)
    return result


def ids(pcoll: beam.PCollection, label: str) -> beam.PCollection:
    return pcoll | label >> beam.Map(lambda d: d["id"])


def reasons(pcoll: beam.PCollection, label: str) -> beam.PCollection:
    return pcoll | label >> beam.Map(lambda d: (d["id"], d["reject_stage"], d["reject_reason"]))


def stage_totals(pcoll: beam.PCollection, label: str) -> beam.PCollection:
    return (
        pcoll
        | f"{label}List" >> beam.combiners.ToList()
        | label >> beam.Map(lambda parts: {s: (c.docs_in, c.kept, c.dropped) for s, c in merge_parts(parts).items()})
    )


def test_read_stage_parses_and_dead_letters(tmp_path):
    records = [{"id": "a", "text": "x"}, "{oops", "", {"text": 3}, {"id": "b", "text": "y"}]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    with TestPipeline() as p:
        out = p | ReadDocuments([str(path)], ReadConfig(), "fp")
        assert_that(ids(out[KEPT], "Ids"), equal_to(["a", "b"]), label="Kept")
        assert_that(out[DEAD] | beam.Map(lambda r: (r["reason"], r["position"])),
                    equal_to([("invalid_json", 1), ("text_not_string", 3)]), label="Dead")
        assert_that(stage_totals(out[STATS], "Totals"), equal_to([{"read": (4, 2, {})}]), label="Stats")


def test_normalise_stage_repairs_and_drops_empty():
    with TestPipeline() as p:
        out = p | beam.Create([doc("a", "caf\u00c3\u00a9\r\nok"), doc("b", "\x00 \n")]) | Normalise(NormaliseConfig())
        assert_that(out[KEPT] | beam.Map(lambda d: d["text"]), equal_to(["caf\u00e9\nok"]), label="Kept")
        assert_that(reasons(out[REJECTED], "Why"), equal_to([("b", "normalise", "empty_text")]), label="Rejected")


def test_domain_stage_labels_without_dropping():
    docs = [doc("a", ENGLISH), doc("b", "#!/bin/sh\necho hi\n"), doc("c", ENGLISH, domain="math")]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | DetectDomain(DomainConfig())
        assert_that(out[KEPT] | beam.Map(lambda d: (d["id"], d["domain"], d["domain_method"])),
                    equal_to([("a", "web", "content"), ("b", "code", "content"), ("c", "math", "record")]))


def test_language_stage_keeps_english_and_skips_code():
    german = "Die Bibliothek öffnet um neun Uhr morgens und schließt um sechs Uhr abends für alle Besucher."
    docs = [doc("en", ENGLISH, "web"), doc("de", german, "web"), doc("code", "x = 1\nprint(x)\n", "code")]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | IdentifyLanguage(LanguageConfig(batch_size=2))
        assert_that(out[KEPT] | beam.Map(lambda d: (d["id"], d["lang"])), equal_to([("en", "en"), ("code", None)]),
                    label="Kept")
        assert_that(reasons(out[REJECTED], "Why"), equal_to([("de", "language", "not_allowed_language")]),
                    label="Rejected")


def test_heuristics_stage_routes_drop_reason():
    docs = [doc("good", ENGLISH, "web"), doc("short", "Under construction.", "web")]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | ApplyHeuristics(HeuristicsConfig())
        assert_that(ids(out[KEPT], "Ids"), equal_to(["good"]), label="Kept")
        assert_that(out[REJECTED] | beam.Map(lambda d: (d["id"], d["reject_stage"], d["reject_reason"].split(".")[0])),
                    equal_to([("short", "heuristics", "gopher_quality")]), label="Rejected")


def test_exact_dedupe_keeps_smallest_id_per_text(tmp_path):
    docs = [doc("b", "same"), doc("a", "same"), doc("c", "same"), doc("d", "different")]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | ExactDedupe().on_documents(str(tmp_path))
        assert_that(ids(out[KEPT], "Ids"), equal_to(["a", "d"]), label="Kept")
        assert_that(out[REJECTED] | beam.Map(lambda d: (d["id"], d["reject_detail"])),
                    equal_to([("b", "survivor=a"), ("c", "survivor=a")]), label="Rejected")
        assert_that(stage_totals(out[STATS], "Totals"),
                    equal_to([{"exact_dedupe": (4, 2, {"exact_duplicate": 2})}]), label="Stats")


def test_low_confidence_english_is_rescued_by_stop_words_only_when_enabled():
    # lid.176 scores this option-table-like English about 0.89: below a min_score of 0.95, above the
    # rescue floor, with 39% English function words.
    text = "arch supports the this_cpu_cmpxchg() API with the ok: arm, arm64, and the TODO: alpha, arc, of the ia64"
    for rescue, expected in ((True, ["en"]), (False, [])):
        config = LanguageConfig(
            min_score=0.95, stop_word_rescue=rescue, rescue_min_score=0.4, rescue_min_stop_word_fraction=0.3
        )
        with TestPipeline() as p:
            out = p | beam.Create([doc("en", text, "web")]) | IdentifyLanguage(config)
            assert_that(ids(out[KEPT], "Ids"), equal_to(expected))
