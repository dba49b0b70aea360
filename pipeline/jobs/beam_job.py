"""The one way a Beam job runs: curate, pack and sft build a graph; this does everything around it.

    refuse or clear the output folder -> build the graph (locally: a worker process per core)
    -> run it, showing progress
    -> delete the spill files -> merge the per-bundle counts -> check the accounting identity -> stats.json
    -> the job's own files (manifest, shard names) -> the completion marker, last

A folder without the marker is an unfinished (or killed) run, whatever else it holds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor

from gemmaflow.core.configio import fingerprint, to_dict
from gemmaflow.pipeline.jobs.runners import every_core, input_bytes, runner_for, runner_name
from gemmaflow.pipeline.progress import LOCAL_RUNNERS, ProgressMonitor
from gemmaflow.pipeline.records import PIPELINE_VERSION
from gemmaflow.pipeline.run_output import STATS_FILE, prepare_output, read_counts, write_completion_marker
from gemmaflow.pipeline.spill import SPILL_DIR, delete_spill
from gemmaflow.pipeline.stats import StageCounts, dumps, ordered_stages, render_table, stats_document


@dataclass(frozen=True)
class BeamJob:
    """What a job run is: its name, inputs, output folder, config and how to run and report it."""

    name: str  # curate, pack, sft: in stats.json, the marker and progress lines
    inputs: Sequence[str]
    output: str
    config: Any
    beam_args: Sequence[str] = ()
    overwrite: bool = False
    echo: bool = True  # print the stage table when done
    progress: bool = True  # live progress on stderr while running (`--quiet` turns it off)
    run_info: dict[str, Any] = field(default_factory=dict)  # job-specific run fields (files, tokenizer)
    max_dead_letter_fraction: float = 1.0  # see ReadConfig; past it the run fails (UnusableRunError)
    # Job-specific blocks of stats.json, computed from the merged counts (sft: `sources`, per-source counts).
    summarise: Callable[[dict[str, StageCounts]], dict[str, Any]] | None = None


class PipelineOptionsError(ValueError):
    """Beam refused the job's pipeline options (a missing --project, a temp_location that is not gs://)."""


class UnusableRunError(RuntimeError):
    """The run finished but produced nothing usable: it read no record, every record was
    dead-lettered, or more than the allowed share was. stats.json is written; the marker is not."""


def unusable(accounting: dict[str, int], max_dead_letter_fraction: float) -> str | None:
    """Why a run with these counts is unusable, or None."""
    read, dead = accounting["records_read"], accounting["dead_lettered"]
    if read == 0:
        return "no record was read from the inputs (empty files?)"
    if dead == read:
        return f"every one of the {read} records read was dead-lettered (see dead_letter/ for why)"
    if dead / read > max_dead_letter_fraction:
        return (f"{dead} of {read} records were dead-lettered ({dead / read:.1%} > "
                f"max_dead_letter_fraction {max_dead_letter_fraction:.1%})")  # fmt: skip
    return None


@dataclass(frozen=True)
class JobResult:
    stats: dict[str, Any]  # the stats.json document
    stages: dict[str, StageCounts]
    product: Any = None  # what the job's finalise step returned (pack and sft: the manifest)


Build = Callable[[beam.Pipeline], Sequence[str]]  # adds the graph; returns the accounting chain
Finalise = Callable[[JobResult], Any]  # the job's own files, after stats.json, before the marker


def build_graph(beam_args: Sequence[str], build: Build) -> tuple[beam.Pipeline, tuple[str, ...]]:
    """The pipeline a run with `beam_args` would execute, built and not run, and its accounting chain.

    Building is where Beam checks the runner's options (Dataflow's project, region and gs://
    temp_location among them), so a dry run through here fails on what the real run would.
    """
    options = PipelineOptions(list(beam_args))
    try:
        pipeline = beam.Pipeline(runner=runner_for(options), options=options)
    except ValueError as exc:  # Beam's option checks, one multi-line message naming each bad option
        raise PipelineOptionsError(" ".join(str(exc).split())) from exc
    return pipeline, tuple(build(pipeline))


def run_beam_job(job: BeamJob, build: Build, finalise: Finalise | None = None) -> JobResult:
    """Run `build`'s graph to completion and write stats.json and the completion marker.

    Raises AccountingError (pipeline/stats.py) if the counts do not add up, UnusableRunError if the
    run produced nothing usable; the marker is then not written.
    """
    prepare_output(job.output, job.overwrite, job.name)
    pipeline, chain = build_graph(every_core(job.beam_args, input_bytes(job.inputs)), build)
    runner = runner_name(pipeline.options)
    monitor = ProgressMonitor(job.name, chain, enabled=job.progress)
    started = time.time()
    if runner in LOCAL_RUNNERS:
        with monitor.watching_local_steps(pipeline):
            pipeline.run().wait_until_finish()
    else:
        result = pipeline.run()
        monitor.follow(result)
        result.wait_until_finish()
    seconds = time.time() - started
    document, stages = record_run(job, chain, runner, seconds)
    monitor.finish(stages)
    if job.echo:
        print(render_table(ordered_stages(stages, chain)))
        terms = document["accounting"]
        print(f"\n{terms['records_read']} records read = {terms['kept']} kept + {terms['dropped']} dropped + "
              f"{terms['dead_lettered']} dead-lettered  ({seconds:.1f} s)")
    check_usable(job, document)
    outcome = JobResult(document, stages)
    if finalise is not None:
        outcome = dataclasses.replace(outcome, product=finalise(outcome))
    mark_complete(job, document)
    return outcome


def record_run(job: BeamJob, chain: Sequence[str], runner: str, seconds: float
               ) -> tuple[dict[str, Any], dict[str, StageCounts]]:
    """Once the graph has run: the spill files deleted, the counts merged and checked, stats.json written."""
    delete_spill(FileSystems.join(job.output, SPILL_DIR))  # documents that waited for the grouping stages
    stages = {**{name: StageCounts(name) for name in chain}, **read_counts(job.output)}
    run = {
        "job": job.name,
        "pipeline_version": PIPELINE_VERSION,
        "inputs": list(job.inputs),
        **job.run_info,
        "output": job.output,
        "runner": runner,
        "wall_seconds": round(seconds, 3),
        "config_fingerprint": fingerprint(job.config),
        "config": to_dict(job.config),
    }
    document = stats_document(stages, chain, run)
    if job.summarise is not None:
        document.update(job.summarise(stages))
    with FileSystems.create(FileSystems.join(job.output, STATS_FILE)) as handle:
        handle.write(dumps(document).encode("utf-8"))
    return document, stages


def check_usable(job: BeamJob, document: dict[str, Any]) -> None:
    problem = unusable(document["accounting"], job.max_dead_letter_fraction)
    if problem is not None:
        raise UnusableRunError(f"{problem}; counts in {FileSystems.join(job.output, STATS_FILE)}")


def mark_complete(job: BeamJob, document: dict[str, Any]) -> None:
    write_completion_marker(job.output, {
        "job": job.name,
        "pipeline_version": PIPELINE_VERSION,
        "config_fingerprint": document["run"]["config_fingerprint"],
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "accounting": document["accounting"],
    })


class _RecordRunDoFn(beam.DoFn):
    """The submitted job's last step: what the driver does after a run it waits for, on a worker."""

    def __init__(self, job: BeamJob, chain: Sequence[str], runner: str, submitted: float) -> None:
        self.job, self.chain, self.runner, self.submitted = job, chain, runner, submitted

    def process(self, _: Any, *finished: Any) -> Iterator[None]:
        document, _stages = record_run(self.job, self.chain, self.runner, time.time() - self.submitted)
        check_usable(self.job, document)  # raising fails the job: no marker
        mark_complete(self.job, document)
        yield None


def unconsumed(pipeline: beam.Pipeline) -> list[beam.PCollection]:
    """The PCollections nothing in `pipeline` reads: the ends of the graph (the sinks' results)."""
    produced: list[beam.PCollection] = []
    consumed: set[int] = set()

    class Ends(PipelineVisitor):
        def visit_transform(self, node: AppliedPTransform) -> None:
            produced.extend(p for p in node.outputs.values() if isinstance(p, beam.PCollection))
            consumed.update(id(p) for p in node.inputs)
            consumed.update(id(side.pvalue) for side in node.side_inputs)

    pipeline.visit(Ends())
    return [p for p in produced if id(p) not in consumed]


def submit_beam_job(job: BeamJob, build: Build) -> str:
    """Submit `build`'s graph and return without waiting (what a Dataflow flex template's launcher
    must do); the job's own last step, after every other step, writes stats.json and the marker.

    Returns the runner's job id, or "" for a runner without one.
    """
    prepare_output(job.output, job.overwrite, job.name)
    pipeline, chain = build_graph(every_core(job.beam_args, input_bytes(job.inputs)), build)
    runner = runner_name(pipeline.options)
    finished = [
        beam.pvalue.AsSingleton(end | f"CountEnd{i}" >> beam.combiners.Count.Globally())
        for i, end in enumerate(unconsumed(pipeline))
    ]
    (pipeline | "Once" >> beam.Create([None])
     | "RecordRun" >> beam.ParDo(_RecordRunDoFn(job, chain, runner, time.time()), *finished))  # fmt: skip
    result = pipeline.run()
    job_id = getattr(result, "job_id", None)
    return str(job_id() if callable(job_id) else job_id or "")
