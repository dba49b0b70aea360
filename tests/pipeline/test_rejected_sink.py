"""The rejected sink holds a scrubbed preview of each text by default, with no PII cut in half at its end."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gemmaflow.pipeline.config import OutputConfig, PiiConfig
from gemmaflow.pipeline.stages.base import KEPT, STATS
from gemmaflow.pipeline.stages.rejected import PrepareRejected, clip_record, clip_text

EMAIL = "jane.roe@example.net"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nq9Zs+0b3\n-----END RSA PRIVATE KEY-----"


def test_clip_text_keeps_short_texts_and_cuts_long_ones():
    assert clip_text("short", 10) == "short"
    assert clip_text("x" * 50, 10) == "x" * 10


def test_a_private_key_block_open_at_the_cut_is_removed():
    text = "config follows\n" + PEM
    assert clip_text(text, 60) == "config follows\n"  # the cut falls inside the key
    assert clip_text(text + "\nmore text", len(text)) == text  # a whole block is the scrubber's business


def test_clip_record_clips_every_turn_and_leaves_the_input_alone():
    chat = {"id": "c", "text": "", "turns": [["user", "q" * 30], ["model", "a" * 30]]}
    clipped = clip_record(chat, 10)
    assert clipped["turns"] == [["user", "q" * 10], ["model", "a" * 10]] and clipped["text"] == "a" * 10
    assert chat["turns"][0][1] == "q" * 30


def rejected_row(text: str) -> dict:
    return {"id": "r1", "text": text, "domain": "web", "reject_stage": "language", "reject_reason": "x"}


def test_the_preview_is_scrubbed_before_it_is_cut():
    # The address straddles the preview's end: the scrubber must see it whole, or half of it would stay.
    text = "a" * 90 + " " + EMAIL + " " + "b" * 500
    with TestPipeline() as p:
        prepared = (p | beam.Create([rejected_row(text)]),) | PrepareRejected(
            OutputConfig(rejected_preview_chars=100), PiiConfig(ner_models=())
        )
        lengths = prepared[KEPT] | beam.Map(lambda row: (len(row["text"]), "jane" in row["text"], "<EM" in row["text"]))
        assert_that(lengths, equal_to([(100, False, True)]))


def test_full_text_on_request_and_a_preview_without_pii():
    text = "a" * 5000
    with TestPipeline() as p:
        full = (p | "Full" >> beam.Create([rejected_row(text)]),) | "PrepFull" >> PrepareRejected(
            OutputConfig(rejected_text="full"), PiiConfig(enabled=False)
        )
        preview = (
            p | "Preview" >> beam.Create([rejected_row(text)]),
            p | "Preview2" >> beam.Create([rejected_row(text)]),
        ) | "PrepPreview" >> PrepareRejected(OutputConfig(), PiiConfig(enabled=False))
        assert STATS not in full
        assert_that(full[KEPT] | "FullLen" >> beam.Map(lambda r: len(r["text"])), equal_to([5000]), label="full")
        previews = preview[KEPT] | "PrevLen" >> beam.Map(lambda r: len(r["text"]))
        assert_that(previews, equal_to([2000, 2000]), label="prev")
