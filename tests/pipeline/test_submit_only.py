"""`curate --submit-only`: the job records itself (stats.json, then the marker) as its last step."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest

from gemmaflow.cli import main
from gemmaflow.core.run_markers import COMPLETE_FILE
from gemmaflow.pipeline.config import CurateConfig
from gemmaflow.pipeline.jobs.beam_job import unconsumed
from gemmaflow.pipeline.jobs.curate import run_curate, submit_curate
from gemmaflow.pipeline.run_output import list_files
from tests.conftest import write_jsonl


def test_a_submitted_job_writes_what_a_waited_run_writes_and_the_marker_last(fixture_corpus, tmp_path):
    waited = run_curate([str(fixture_corpus)], str(tmp_path / "w"), CurateConfig(), echo=False)
    assert submit_curate([str(fixture_corpus)], str(tmp_path / "s"), CurateConfig()) == ""  # no job id locally
    stats = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert stats["accounting"] == waited["accounting"]
    assert [s["kept"] for s in stats["stages"]] == [s["kept"] for s in waited["stages"]]
    marker = json.loads((tmp_path / "s" / COMPLETE_FILE).read_text())
    # Listed when the marker was written: every sink's files were there already (it ran last).
    assert set(marker["files"]) == set(list_files(str(tmp_path / "s"))) - {COMPLETE_FILE}
    assert {f.split("/")[0] for f in marker["files"]} >= {"data", "rejected", "dead_letter", "stats.json"}
    assert not (tmp_path / "s" / "_spill").exists()


def test_a_submitted_job_with_nothing_usable_fails_without_the_marker(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ["not json", "{also not"])
    with pytest.raises(Exception, match="dead-lettered"):
        submit_curate([str(path)], str(tmp_path / "out"), CurateConfig())
    assert (tmp_path / "out" / "stats.json").exists() and not (tmp_path / "out" / COMPLETE_FILE).exists()


def test_the_ends_of_a_graph_are_what_nothing_reads():
    pipeline = beam.Pipeline()
    numbers = pipeline | "Numbers" >> beam.Create([1, 2])
    doubled = numbers | "Double" >> beam.Map(lambda x: 2 * x)
    total = numbers | "Sum" >> beam.CombineGlobally(sum)
    shifted = doubled | "Shift" >> beam.Map(lambda x, t: x + t, beam.pvalue.AsSingleton(total))
    assert unconsumed(pipeline) == [shifted]


def test_cli_submit_only(fixture_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["curate", "--input", str(fixture_corpus), "--output", str(out), "--submit-only"]) == 0
    assert "submitted" in capsys.readouterr().out and (out / COMPLETE_FILE).exists()
