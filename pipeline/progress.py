"""Live progress of a running Beam job: documents in, kept and dropped, and the rate, per stage.

Every counting step (`stages/base.py` CountingDoFn) keeps running totals per stage. They reach the
driver by one of two roads, and one display shows them:

- Runners whose `run()` returns while the job is still running (Dataflow, Flink, Spark, the
  portable runner) report Beam metrics as the job goes: the driver polls `result.metrics()` for the
  counters each step increments (namespace `gemmaflow.<stage>`: docs_in, kept, dropped,
  dead_lettered).
- Beam's DirectRunner runs the whole job inside `run()` and publishes its metrics only when it
  returns. For it, the job helper hands each counting step a local folder before the run; each
  step instance writes a snapshot of its totals there about once a second (a daemon thread, so the
  per-document path pays nothing), and a monitor thread in the driver sums the snapshots. The same
  works for the DirectRunner's multi-process mode, whose workers run on this machine, and for the
  Dask runner (which reports no metrics) when its workers do; workers elsewhere cannot write there
  and show nothing until the run ends.

On a terminal the table is redrawn in place; otherwise (logs, CI) one plain line is printed every
`log_every` seconds. Progress goes to stderr, so stdout keeps only the job's own output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineState

from gemmaflow.pipeline.stats import StageCounts

METRICS_NAMESPACE_PREFIX = "gemmaflow."
SNAPSHOT_SECONDS = 1.0
# Runners that execute the job in this process or in worker processes that may be on this machine.
LOCAL_RUNNERS = ("DirectRunner", "SwitchingDirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "DaskRunner")


@dataclass
class StageProgress:
    """Totals of one stage so far."""

    docs_in: int = 0
    kept: int = 0
    dropped: int = 0
    dead_lettered: int = 0

    def add(self, other: StageProgress) -> None:
        self.docs_in += other.docs_in
        self.kept += other.kept
        self.dropped += other.dropped
        self.dead_lettered += other.dead_lettered


def progress_of(counts: StageCounts) -> StageProgress:
    return StageProgress(counts.docs_in, counts.kept, counts.total_dropped, counts.total_dead)


# ----------------------------------------------------------------------------------- worker side


class SnapshotWriter:
    """A daemon thread that writes one step instance's running totals to the progress folder.

    `totals` is called from this thread while the step keeps counting in its own; a snapshot that
    races a new drop reason (a dict growing mid-copy) is simply skipped until the next tick. The
    thread ends by itself once the folder is gone (the job finished and removed it).
    """

    def __init__(self, folder: str, name: str, totals: Callable[[], StageProgress]) -> None:
        self.path = Path(folder) / f"{name}-{os.getpid()}-{id(self)}.json"
        self.totals = totals
        thread = threading.Thread(target=self._loop, name=f"gemmaflow-progress-{name}", daemon=True)
        thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(SNAPSHOT_SECONDS)
            try:
                snapshot: StageProgress = self.totals()
            except RuntimeError:  # a counter dict changed size while being read
                continue
            temporary = self.path.with_suffix(".tmp")
            try:
                temporary.write_text(json.dumps(snapshot.__dict__), encoding="utf-8")
                os.replace(temporary, self.path)
            except OSError:  # the folder was removed: the job is over
                return


# ----------------------------------------------------------------------------------- driver side


def give_steps_progress_folder(pipeline: beam.Pipeline, folder: str) -> int:
    """Point every counting step of `pipeline` at `folder`; returns how many steps were reached.

    Must run after the graph is built and before `pipeline.run()` (which serialises the steps).
    """
    visitor = _CountingStepVisitor(folder)
    pipeline.visit(visitor)
    return visitor.reached


class _CountingStepVisitor(beam.pipeline.PipelineVisitor):
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.reached = 0

    def visit_transform(self, applied: Any) -> None:
        from gemmaflow.pipeline.stages.base import CountingDoFn

        transform = applied.transform
        if isinstance(transform, beam.ParDo) and isinstance(transform.fn, CountingDoFn):
            transform.fn.progress_folder = self.folder
            self.reached += 1


def read_snapshots(folder: str) -> dict[str, StageProgress]:
    """Sum every step instance's latest snapshot per stage."""
    totals: dict[str, StageProgress] = {}
    for path in Path(folder).glob("*.json"):
        stage = path.name.split("-", 1)[0]
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # replaced or removed while being read
            continue
        totals.setdefault(stage, StageProgress()).add(StageProgress(**values))
    return totals


def metrics_progress(result: Any) -> dict[str, StageProgress]:
    """Per-stage totals from a running job's Beam counters (committed, else attempted)."""
    totals: dict[str, StageProgress] = {}
    for counter in result.metrics().query(MetricsFilter()).get("counters", []):
        namespace = counter.key.metric.namespace
        name = counter.key.metric.name
        if not namespace.startswith(METRICS_NAMESPACE_PREFIX) or name not in StageProgress.__dataclass_fields__:
            continue
        value = counter.committed if counter.committed is not None else counter.attempted
        stage = totals.setdefault(namespace[len(METRICS_NAMESPACE_PREFIX):], StageProgress())
        setattr(stage, name, getattr(stage, name) + int(value or 0))
    return totals


def render_progress(job: str, chain: Sequence[str], totals: dict[str, StageProgress], elapsed: float,
                    rates: dict[str, float]) -> list[str]:
    """One line per stage of the chain: in, kept, dropped, dead-lettered and documents in per second."""
    minutes, seconds = divmod(int(elapsed), 60)
    lines = [f"[{job} {minutes:02d}:{seconds:02d}]"]
    for name in chain:
        stage = totals.get(name, StageProgress())
        rate = rates.get(name, 0.0)
        line = f"  {name:<14}{stage.docs_in:>11,} in{stage.kept:>11,} kept{stage.dropped:>10,} dropped"
        if stage.dead_lettered:
            line += f"{stage.dead_lettered:>8,} dead"
        lines.append(f"{line}{rate:>10,.0f}/s")
    return lines


def one_line(lines: list[str]) -> str:
    """The table as one log line: `[job mm:ss] read 1,200 in 1,200 kept ... | normalise ...`."""
    return lines[0] + " " + " | ".join(" ".join(line.split()) for line in lines[1:])


class ProgressMonitor:
    """Shows a job's progress while it runs; a no-op when disabled (`--quiet`)."""

    def __init__(self, job: str, chain: Sequence[str], *, enabled: bool = True, log_every: float = 30.0,
                 refresh: float = 1.0, stream: IO[str] | None = None) -> None:
        self.job = job
        self.chain = tuple(chain)
        self.enabled = enabled
        self.log_every = log_every
        self.refresh = refresh
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = 0
        self._shown_at = 0.0  # elapsed seconds at the last display, and the totals it showed
        self._shown: dict[str, int] = {}

    def _rates(self, totals: dict[str, StageProgress], elapsed: float, final: bool) -> dict[str, float]:
        """Documents in per second since the last display (over the whole run for the final one)."""
        since, before = (0.0, {}) if final else (self._shown_at, self._shown)
        span = max(elapsed - since, 1e-9)
        return {name: (stage.docs_in - before.get(name, 0)) / span for name, stage in totals.items()}

    def show(self, totals: dict[str, StageProgress], *, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        if not (self.interactive or final or elapsed - self._shown_at >= self.log_every):
            return
        lines = render_progress(self.job, self.chain, totals, elapsed, self._rates(totals, elapsed, final))
        if self.interactive:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the table's first line, clear below
            self.stream.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            self.stream.write(one_line(lines) + "\n")
        self.stream.flush()
        self._shown_at, self._shown = elapsed, {name: stage.docs_in for name, stage in totals.items()}

    @contextlib.contextmanager
    def watching_local_steps(self, pipeline: beam.Pipeline) -> Iterator[None]:
        """While the block runs the pipeline on this machine, redraw from the steps' snapshots."""
        if not self.enabled:
            yield
            return
        folder = tempfile.mkdtemp(prefix="gemmaflow-progress-")
        give_steps_progress_folder(pipeline, folder)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(self.refresh):
                self.show(read_snapshots(folder))

        thread = threading.Thread(target=poll, name="gemmaflow-progress-monitor", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            shutil.rmtree(folder, ignore_errors=True)

    def follow(self, result: Any) -> None:
        """For runners still running after `run()` returned: poll their Beam metrics until the job ends."""
        if not self.enabled:
            return
        while not PipelineState.is_terminal(result.state):
            with contextlib.suppress(Exception):  # a runner may not report metrics mid-run
                self.show(metrics_progress(result))
            time.sleep(self.refresh)

    def finish(self, counts: dict[str, StageCounts]) -> None:
        """The final totals, from the merged counts the job wrote."""
        if self.enabled:
            self.show({name: progress_of(c) for name, c in counts.items()}, final=True)
