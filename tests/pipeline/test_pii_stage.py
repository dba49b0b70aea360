"""The PII stage on DirectRunner: documents kept, text edited, counts in stats, no value anywhere but the text."""

from __future__ import annotations

import json
import logging

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gemmaflow.pipeline.config import CurateConfig, PiiConfig
from gemmaflow.pipeline.jobs.curate import curate_chain
from gemmaflow.pipeline.records import CURATED_SCHEMA, document_from_record
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.pii import ScrubPii
from gemmaflow.pipeline.stats import merge_parts

SECRETS = ["jane.roe@example.net", "+1 (415) 555-0132", "AKIAIOSFODNN7EXAMPLE", "198.51.100.23"]


def doc(doc_id: str, text: str, domain: str) -> dict:
    result = document_from_record({"id": doc_id, "text": text, "domain": domain}, "mem", 0, "fp")
    assert isinstance(result, dict)
    return result


DOCS = [
    doc("web-1", f"Write to {SECRETS[0]} or call {SECRETS[1]}; the server is {SECRETS[3]}.", "web"),
    doc("code-1", f'KEY_ID = "{SECRETS[2]}"\nfor i in range(3):\n    print(i)\n', "code"),
    doc("math-1", "Let $x = 387 - 6300 y$ and see ISBN 978-4-529-53146-7.", "math"),
]


def test_stage_keeps_everything_edits_text_and_counts(tmp_path, caplog):
    stats_out = tmp_path / "stats.json"
    with caplog.at_level(logging.DEBUG), TestPipeline() as p:
        result = p | beam.Create(DOCS) | ScrubPii(PiiConfig(ner_models=()))
        kept = result[KEPT] | "Rows" >> beam.Map(lambda d: (d["id"], d["text"], d["pii_replacements"]))
        expected = [
            ("web-1", "Write to <EMAIL> or call <PHONE>; the server is <IP_ADDRESS>.",
             {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1, "PHONE_NUMBER": 1}),
            ("code-1", 'KEY_ID = "<AWS_ACCESS_KEY>"\nfor i in range(3):\n    print(i)\n', {"AWS_ACCESS_KEY": 1}),
            ("math-1", DOCS[2]["text"], {}),
        ]  # fmt: skip
        assert_that(kept, equal_to(expected))
        assert_that(result[REJECTED], equal_to([]), label="NothingRejected")
        (
            result[STATS]
            | beam.combiners.ToList()
            | beam.Map(lambda parts: stats_out.write_text(json.dumps(merge_parts(parts)["pii"].to_dict())))
        )
    stats = json.loads(stats_out.read_text())
    assert stats["docs_in"] == stats["kept"] == 3 and stats["dropped"] == {}
    assert stats["extra"]["replaced.EMAIL_ADDRESS"] == 1 and stats["extra"]["replaced.AWS_ACCESS_KEY"] == 1
    assert stats["extra"]["detected.PHONE_NUMBER"] >= 1 and stats["extra"]["docs_scrubbed"] == 2
    # No detected value in the stats or in anything logged during the run.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in SECRETS:
        assert value not in stats_out.read_text() and value not in logged


def test_curated_schema_has_replacement_counts_and_plan_runs_pii_before_write():
    assert str(CURATED_SCHEMA.field("pii_replacements").type) == "map<string, int32>"
    assert curate_chain(CurateConfig())[-2:] == ("pii", "write")
    assert "pii" not in curate_chain(CurateConfig(pii=PiiConfig(enabled=False)))


@pytest.mark.slow
def test_curate_run_writes_scrubbed_text_and_counts(tmp_path):
    import pyarrow.parquet as pq

    from gemmaflow.pipeline.jobs.curate import run_curate
    from tests.conftest import write_jsonl

    prose = (
        "The library opens at nine in the morning and closes at six in the evening. Visitors can borrow "
        "up to ten books at a time, and they have three weeks to return them. The reading room on the "
        "second floor is quiet and has plenty of desks, so many students come here to work. If you have "
        "questions about your account, write to the librarian at jane.roe@example.net and she will answer "
        "within two days. Children have their own section with picture books, and on Saturday mornings a "
        "volunteer reads stories aloud to them. The staff are happy to help anyone who needs it."
    )
    german = (
        "Die Bibliothek öffnet um neun Uhr und schließt um sechs Uhr am Abend. Bei Fragen schreiben Sie "
        "bitte an hans.mueller@example.de oder rufen Sie uns an. Wir helfen Ihnen gern weiter."
    )
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p1", "text": prose}, {"id": "de1", "text": german}])
    out = tmp_path / "out"
    stats = run_curate([str(path)], str(out), CurateConfig(), echo=False)
    rows = [r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [r["id"] for r in rows] == ["p1"]
    assert "jane.roe@example.net" not in rows[0]["text"] and "<EMAIL>" in rows[0]["text"]
    assert dict(rows[0]["pii_replacements"]) == {"EMAIL_ADDRESS": 1}
    pii = {s["stage"]: s for s in stats["stages"]}["pii"]
    assert pii["extra"]["replaced.EMAIL_ADDRESS"] == 1
    assert "jane.roe@example.net" not in (out / "stats.json").read_text()
    # The rejected sink is scrubbed too (its own counts, outside the accounting chain).
    rejected = [r for f in sorted((out / "rejected").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [(r["id"], r["reject_stage"]) for r in rejected] == [("de1", "language")]
    assert "hans.mueller@example.de" not in rejected[0]["text"] and "<EMAIL>" in rejected[0]["text"]
    assert {s["stage"]: s for s in stats["stages"]}["pii_rejected"]["extra"]["replaced.EMAIL_ADDRESS"] == 1
