"""`gemmaflow curate`: raw documents in, curated Parquet, rejected and dead-letter sinks and stats.json out.

    files -> Read [-> UrlDedupe, crawl input] -> the registry's curate stages, in order -> Write (data/)
    every stage's rejected -> PrepareRejected (preview; PII when on) -> rejected/;  unreadable records -> dead_letter/
    grouping stages (dedupe) decide on keys while the documents wait under _spill/ (deleted when done)

The chain comes from the stage registry (pipeline/registry.py); the run, its progress, stats.json
and the completion marker from the job helper (pipeline/jobs/beam_job.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.configio import ConfigError, fingerprint
from gemmaflow.pipeline.config import CurateConfig
from gemmaflow.pipeline.jobs.beam_job import BeamJob, build_graph, run_beam_job, submit_beam_job
from gemmaflow.pipeline.records import CURATED_SCHEMA, DEAD_LETTER_SCHEMA, REJECTED_SCHEMA
from gemmaflow.pipeline.registry import CURATE, REGISTRY, StageRegistry, apply_chain, chain_names
from gemmaflow.pipeline.run_output import write_counts
from gemmaflow.pipeline.spill import SPILL_DIR
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.read import ReadDocuments, dedupes_urls, has_crawl_input, match_inputs
from gemmaflow.pipeline.stages.rejected import PrepareRejected
from gemmaflow.pipeline.stages.url_dedupe import STAGE as URL_DEDUPE
from gemmaflow.pipeline.stages.write import DATA_DIR, DEAD_LETTER_DIR, REJECTED_DIR, WriteCurated, WriteParquet

SOURCE = "read"
SINK = "write"


def curate_chain(
    config: CurateConfig, registry: StageRegistry = REGISTRY, paths: Sequence[str] = ()
) -> tuple[str, ...]:
    """The stage names a curate run of `paths` with `config` goes through, read to write (also the
    dry-run graph): crawl inputs add url_dedupe after read."""
    names = chain_names(SOURCE, registry.chain(CURATE, config), SINK)
    if dedupes_urls(list(paths), config.read, config.crawl):
        names = (names[0], URL_DEDUPE, *names[1:])
    return names


def build_curate(
    pipeline: beam.Pipeline, paths: list[str], output: str, config: CurateConfig, registry: StageRegistry = REGISTRY
) -> tuple[str, ...]:
    """Add the curate graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    stages = registry.chain(CURATE, config)
    read = pipeline | "Read" >> ReadDocuments(paths, config.read, fingerprint(config), config.crawl)
    chain = apply_chain(read[KEPT], stages, config, FileSystems.join(output, SPILL_DIR))
    written = chain.kept | "Write" >> WriteCurated(
        FileSystems.join(output, DATA_DIR, "part"), CURATED_SCHEMA, config.output
    )
    stats = [read[STATS], *chain.stats, written[STATS]]

    if config.output.write_rejected:
        rejected = (read[REJECTED], *chain.rejected)
        prepared = rejected | "PrepareRejected" >> PrepareRejected(config.output, config.pii)  # no PII there either
        stats.extend([prepared[STATS]] if STATS in prepared else [])
        prepared[KEPT] | "WriteRejected" >> WriteParquet(
            FileSystems.join(output, REJECTED_DIR, "part"), REJECTED_SCHEMA, config.output
        )
    read[DEAD] | "WriteDeadLetters" >> WriteParquet(
        FileSystems.join(output, DEAD_LETTER_DIR, "part"), DEAD_LETTER_SCHEMA, config.output
    )
    write_counts(stats, output)
    return curate_chain(config, registry, paths)


def checked_inputs(inputs: list[str], config: CurateConfig, registry: StageRegistry = REGISTRY) -> list[str]:
    """The files `inputs` match, once the config, the globs and any crawl URL lists are known good: what
    a run checks before it reads any data."""
    registry.validate(CURATE, config)
    paths = match_inputs(inputs)
    if has_crawl_input(paths, config.read.format):
        try:
            config.crawl.url_filter()  # every list file readable, every regex valid, before any data is read
        except (OSError, ValueError) as exc:
            raise ConfigError(f"crawl: {exc}") from exc
    return paths


def plan_curate(
    inputs: list[str], output: str, config: CurateConfig, beam_args: list[str], registry: StageRegistry = REGISTRY
) -> tuple[beam.Pipeline, tuple[str, ...]]:
    """The curate pipeline, built with `beam_args` as a run would build it and not run (`--dry-run`);
    nothing is read from the inputs or written to `output`."""
    paths = checked_inputs(inputs, config, registry)
    return build_graph(beam_args, lambda pipeline: build_curate(pipeline, paths, output, config, registry))


def run_curate(
    inputs: list[str],
    output: str,
    config: CurateConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
    progress: bool = True,
    registry: StageRegistry = REGISTRY,
) -> dict[str, Any]:
    """Run the pipeline to completion, write stats.json and return it; raises if the counts do not add up."""
    paths = checked_inputs(inputs, config, registry)
    job = BeamJob("curate", inputs, output, config, beam_args or [], overwrite, echo, progress,
                  run_info={"files": len(paths)}, max_dead_letter_fraction=config.read.max_dead_letter_fraction)
    return run_beam_job(job, lambda pipeline: build_curate(pipeline, paths, output, config, registry)).stats


def submit_curate(
    inputs: list[str], output: str, config: CurateConfig, beam_args: list[str] | None = None,
    overwrite: bool = False, registry: StageRegistry = REGISTRY,
) -> str:
    """Submit the curate job and return its job id at once; the job writes stats.json and the
    completion marker itself, as its last step (`gemmaflow curate --submit-only`)."""
    paths = checked_inputs(inputs, config, registry)
    job = BeamJob("curate", inputs, output, config, beam_args or [], overwrite, echo=False, progress=False,
                  run_info={"files": len(paths)}, max_dead_letter_fraction=config.read.max_dead_letter_fraction)
    return submit_beam_job(job, lambda pipeline: build_curate(pipeline, paths, output, config, registry))
