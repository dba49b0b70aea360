"""The job helper every Beam job runs through: stats.json, the completion marker last, live progress."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pytest

from gemmaflow.pipeline.jobs.beam_job import BeamJob, run_beam_job
from gemmaflow.pipeline.progress import (
    ProgressMonitor,
    SnapshotWriter,
    StageProgress,
    give_steps_progress_folder,
    metrics_progress,
    read_snapshots,
    render_progress,
)
from gemmaflow.pipeline.run_output import COMPLETE_FILE, write_counts
from gemmaflow.pipeline.stages.base import STATS, CountingDoFn
from gemmaflow.pipeline.stats import AccountingError


@dataclass(frozen=True)
class NumbersConfig:
    count: int = 10


class _KeepOddDoFn(CountingDoFn):
    """Counts every number in, keeps the odd ones; sleeps per element when asked (to be watched)."""

    def __init__(self, stage: str, pause: float = 0.0) -> None:
        super().__init__(stage)
        self.pause = pause

    def process(self, n: int) -> Iterator[Any]:
        time.sleep(self.pause)
        self.counts.record_in(1)
        if n % 2:
            self.counts.record_kept(1)
            yield n
        else:
            self.counts.record_dropped("even")


def build_numbers(output: str, count: int, pause: float = 0.0, chain: tuple[str, ...] = ("numbers",)):
    def build(pipeline: beam.Pipeline) -> tuple[str, ...]:
        step = pipeline | beam.Create(range(count)) | beam.ParDo(_KeepOddDoFn("numbers", pause)).with_outputs(
            STATS, main="kept")
        write_counts([step[STATS]], output)
        return chain

    return build


def test_stats_then_marker_last(tmp_path):
    out = str(tmp_path / "out")
    order = []

    def finalise(result):
        folder = tmp_path / "out"
        order.append(("finalise", (folder / "stats.json").exists(), (folder / COMPLETE_FILE).exists()))
        return "product"

    job = BeamJob("numbers", ["mem"], out, NumbersConfig(), echo=False, progress=False)
    result = run_beam_job(job, build_numbers(out, 10), finalise)
    assert order == [("finalise", True, False)]  # stats.json before the job's own files, marker after them
    assert result.product == "product"
    assert result.stats["accounting"] == {"records_read": 10, "kept": 5, "dropped": 5, "dead_lettered": 0}
    marker = json.loads((tmp_path / "out" / COMPLETE_FILE).read_text())
    assert marker["job"] == "numbers" and marker["accounting"]["kept"] == 5
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["run"]["job"] == "numbers" and stats["chain"] == ["numbers"]


def test_failed_accounting_leaves_no_marker_even_after_an_earlier_complete_run(tmp_path):
    out = str(tmp_path / "out")
    run_beam_job(BeamJob("numbers", [], out, NumbersConfig(), echo=False, progress=False), build_numbers(out, 4))
    assert (tmp_path / "out" / COMPLETE_FILE).exists()
    broken = build_numbers(out, 4, chain=("numbers", "never_counted"))  # a stage that saw nothing: 2 kept != 0 in
    with pytest.raises(AccountingError, match="never_counted received 0, but numbers kept 2"):
        run_beam_job(BeamJob("numbers", [], out, NumbersConfig(), overwrite=True, echo=False, progress=False), broken)
    assert not (tmp_path / "out" / COMPLETE_FILE).exists()


def test_progress_lines_while_a_direct_runner_job_runs(tmp_path):
    """Snapshots reach the monitor during the run, not only at its end."""
    stream = io.StringIO()
    monitor = ProgressMonitor("numbers", ["numbers"], log_every=0.0, refresh=0.2, stream=stream)
    pipeline = beam.Pipeline()
    pipeline | beam.Create(range(4)) | beam.ParDo(_KeepOddDoFn("numbers", pause=0.8)).with_outputs(STATS, main="kept")
    with monitor.watching_local_steps(pipeline):
        pipeline.run().wait_until_finish()
    lines = stream.getvalue().splitlines()
    # Lines while the step was still counting (fewer than 4 in), before the run ended.
    assert any(" in " in line and "4 in" not in line for line in lines), lines


def test_snapshots_add_up_per_stage(tmp_path):
    totals = [StageProgress(3, 2, 1, 0), StageProgress(5, 5, 0, 1)]
    writers = [SnapshotWriter(str(tmp_path), "language", lambda t=t: t) for t in totals]
    SnapshotWriter(str(tmp_path), "pii", lambda: StageProgress(7, 7, 0, 0))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(list(tmp_path.glob("*.json"))) < 3:
        time.sleep(0.1)
    assert read_snapshots(str(tmp_path)) == {"language": StageProgress(8, 7, 1, 1), "pii": StageProgress(7, 7, 0, 0)}
    assert len(writers) == 2


def test_every_counting_step_gets_the_folder_and_metrics_give_the_same_totals(tmp_path):
    pipeline = beam.Pipeline()
    numbers = pipeline | beam.Create(range(9))
    numbers | "A" >> beam.ParDo(_KeepOddDoFn("a")).with_outputs(STATS, main="kept")
    numbers | "B" >> beam.ParDo(_KeepOddDoFn("b")).with_outputs(STATS, main="kept")
    numbers | "Plain" >> beam.Map(str)
    assert give_steps_progress_folder(pipeline, str(tmp_path)) == 2
    result = pipeline.run()
    result.wait_until_finish()
    # What a remote runner's poll would show: the counters every counting step increments.
    assert metrics_progress(result) == {"a": StageProgress(9, 4, 5, 0), "b": StageProgress(9, 4, 5, 0)}


def test_render_and_plain_log_line():
    lines = render_progress("curate", ["read", "language"], {"read": StageProgress(1200, 1200, 0, 3)}, 65.0,
                            {"read": 40.0})
    assert lines[0] == "[curate 01:05]"
    assert "1,200 in" in lines[1] and "3 dead" in lines[1] and "40/s" in lines[1]
    assert "0 in" in lines[2]
    stream = io.StringIO()
    monitor = ProgressMonitor("curate", ["read"], log_every=3600, stream=stream)
    monitor.show({"read": StageProgress(10, 10, 0, 0)})  # within log_every of the start: nothing printed
    assert stream.getvalue() == ""
    monitor.show({"read": StageProgress(10, 10, 0, 0)}, final=True)
    assert stream.getvalue().startswith("[curate 00:00] read 10 in 10 kept 0 dropped")
    quiet = io.StringIO()
    ProgressMonitor("curate", ["read"], enabled=False, stream=quiet).finish({})
    assert quiet.getvalue() == ""
