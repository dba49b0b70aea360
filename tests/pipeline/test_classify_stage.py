"""The classify stage: score, threshold and action semantics, domain relabelling, SFT fields, Beam wiring."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gemmaflow.pipeline.classify import DocumentClassifiers
from gemmaflow.pipeline.config import ClassifierEntry, ClassifyConfig
from gemmaflow.pipeline.records import document_from_record
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.classify import Classify
from gemmaflow.pipeline.stats import merge_parts
from tests.classifiers.synthetic import train_small

GOOD = "the careful explanation describes the reference example in this section clearly and the chapter figure"
JUNK = "cheap click buy now best deal free win casino offer cheap click buy now free win"
CODE = "def f ( ) : return self ; int void { } import class if else while ( ) == self"
MATH = "\\frac \\int \\sum $ x ^ 2 _ theorem lemma proof \\alpha \\beta equation of the"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("classify-models")
    return {
        "domain": str(train_small(folder, "domain", ["web", "code", "math"])),
        "quality": str(train_small(folder, "quality", ["good", "junk"], positive_label="good")),
    }


def doc(doc_id: str, text: str, domain: str | None = None, method: str | None = None) -> dict:
    result = document_from_record({"id": doc_id, "text": text}, "mem", 0, "fp")
    assert isinstance(result, dict)
    result["domain"], result["domain_method"] = domain, method
    return result


def entries(models: dict[str, str], **quality: object) -> ClassifyConfig:
    return ClassifyConfig(classifiers=(
        ClassifierEntry("domain", models["domain"], write_domain=True),
        ClassifierEntry("quality", models["quality"], **{"label": "good", "threshold": 0.5, "action": "keep-only",
                                                         "domains": ("web",), **quality}),
    ))  # fmt: skip


def judge(config: ClassifyConfig, docs: list[dict]) -> tuple[list, dict[str, int]]:
    tallies: dict[str, int] = {}

    def tally(key: str, n: int) -> None:
        tallies[key] = tallies.get(key, 0) + n

    return DocumentClassifiers(config).judge_batch(docs, tally), tallies


def test_keep_only_drops_low_scores_on_its_domains_and_annotates(models):
    docs = [
        doc("good", GOOD, "web", "content"),
        doc("junk", JUNK, "web", "content"),
        doc("code", CODE, "code", "extension"),
    ]
    verdicts, tallies = judge(entries(models), docs)
    assert verdicts[0] is None and verdicts[2] is None
    assert verdicts[1][0] == "quality.good_below_threshold" and "< 0.5" in verdicts[1][1]
    assert docs[0]["scores"]["quality"] > 0.5 > docs[1]["scores"]["quality"]
    assert set(docs[2]["scores"]) == {"domain"}  # quality applies to web only
    assert tallies["domain.scored"] == 3 and tallies["quality.scored"] == 2


def test_drop_and_annotate_actions(models):
    docs = [doc("good", GOOD, "web", "content"), doc("junk", JUNK, "web", "content")]
    verdicts, _ = judge(entries(models, label="junk", action="drop"), docs)
    assert verdicts[0] is None and verdicts[1][0] == "quality.junk_above_threshold"
    verdicts, _ = judge(entries(models, action="annotate"), [doc("junk", JUNK, "web", "content")])
    assert verdicts == [None]
    verdicts, _ = judge(entries(models, label="junk", action="drop", threshold=0.0), [doc("g", GOOD, "web", "x")])
    assert verdicts[0][0] == "quality.junk_above_threshold"  # score >= 0 always


def test_domain_from_the_model_replaces_only_guessed_domains(models):
    docs = [doc("guessed", MATH, "web", "content"), doc("given", MATH, "web", "record"),
            doc("by-extension", MATH, "code", "extension"), doc("none", CODE)]  # fmt: skip
    _, tallies = judge(entries(models), docs)
    assert [(d["domain"], d["domain_method"]) for d in docs] == [
        ("math", "model"),
        ("web", "record"),
        ("code", "extension"),
        ("code", "model"),
    ]
    assert tallies["domain.domain_web_to_math"] == 1
    # The relabelled math document is no longer web, so quality neither scores nor judges it.
    assert "quality" not in docs[0]["scores"] and "quality" in docs[1]["scores"]


def test_sft_records_are_scored_on_their_configured_fields(models):
    config = ClassifyConfig(
        classifiers=(
            ClassifierEntry(
                "quality",
                models["quality"],
                label="good",
                threshold=0.5,
                action="keep-only",
                text_fields=("instruction", "response"),
            ),
        )
    )
    records = [{"instruction": "explain", "response": GOOD, "domain": None}, {"instruction": "x", "response": JUNK}]
    verdicts, _ = judge(config, records)
    assert verdicts[0] is None and verdicts[1][0] == "quality.good_below_threshold"
    assert records[0]["scores"]["quality"] > 0.5


@pytest.mark.slow  # Beam start-up
def test_beam_stage_counts_and_routes(models):
    docs = [
        doc("good", GOOD, "web", "content"),
        doc("junk", JUNK, "web", "content"),
        doc("math", MATH, "web", "content"),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Classify(entries(models))
        kept = out[KEPT] | beam.Map(lambda d: (d["id"], d["domain"]))
        assert_that(kept, equal_to([("good", "web"), ("math", "math")]), label="Kept")
        assert_that(
            out[REJECTED] | beam.Map(lambda d: (d["id"], d["reject_stage"], d["reject_reason"])),
            equal_to([("junk", "classify", "quality.good_below_threshold")]),
            label="Rejected",
        )
        totals = out[STATS] | beam.combiners.ToList() | beam.Map(lambda parts: merge_parts(parts)["classify"])
        assert_that(
            totals | beam.Map(lambda c: (c.docs_in, c.kept, c.dropped, c.extra["domain.scored"])),
            equal_to([(3, 2, {"quality.good_below_threshold": 1}, 3)]),
            label="Stats",
        )


def test_scores_are_written_to_parquet(models, tmp_path):
    import pyarrow as pa

    from gemmaflow.pipeline.records import CURATED_SCHEMA

    docs = [doc("good", GOOD, "web", "content")]
    judge(entries(models), docs)
    table = pa.Table.from_pylist([{k: d.get(k) for k in CURATED_SCHEMA.names} for d in docs], schema=CURATED_SCHEMA)
    assert dict(table.column("scores")[0].as_py())["quality"] == pytest.approx(docs[0]["scores"]["quality"], 1e-6)
