"""`gemmaflow curate`: raw documents in, curated Parquet, rejected and dead-letter sinks and stats.json out.

The stage chain is built from the configuration; every stage returns its kept documents plus
`rejected` and `stats` outputs, which are gathered here into the rejected sink and the stats table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from gemmaflow.pipeline.config import CurateConfig
from gemmaflow.pipeline.records import CURATED_SCHEMA, DEAD_LETTER_SCHEMA, PIPELINE_VERSION, REJECTED_SCHEMA
from gemmaflow.pipeline.run_output import STATS_FILE, prepare_output, read_counts, write_counts
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.classify import Classify
from gemmaflow.pipeline.stages.decontaminate import Decontaminate
from gemmaflow.pipeline.stages.dedupe import ExactDedupe
from gemmaflow.pipeline.stages.domain import DetectDomain
from gemmaflow.pipeline.stages.heuristics import ApplyHeuristics
from gemmaflow.pipeline.stages.language import IdentifyLanguage
from gemmaflow.pipeline.stages.near_dedupe import NearDedupe
from gemmaflow.pipeline.stages.normalise import Normalise
from gemmaflow.pipeline.stages.pii import ScrubPii, ScrubRejected
from gemmaflow.pipeline.stages.read import ReadDocuments, match_inputs
from gemmaflow.pipeline.stages.write import DATA_DIR, DEAD_LETTER_DIR, REJECTED_DIR, WriteCurated, WriteParquet
from gemmaflow.pipeline.stats import StageCounts, dumps, ordered_stages, render_table, stats_document

from gemmaflow.core.configio import fingerprint, to_dict


@dataclass(frozen=True)
class StagePlan:
    """The stages a config enables, in order; `chain` names them for the accounting check."""

    chain: tuple[str, ...]

    @classmethod
    def from_config(cls, config: CurateConfig) -> StagePlan:
        stages = ["read", "normalise", "domain"]
        if config.language.enabled:
            stages.append("language")
        stages.append("heuristics")
        if config.classify.enabled and config.classify.classifiers:
            stages.append("classify")
        if config.exact_dedupe.enabled:
            stages.append("exact_dedupe")
        if config.near_dedupe.enabled:
            stages.append("near_dedupe")
        if config.decontamination.benchmarks:
            stages.append("decontaminate")
        if config.pii.enabled:
            stages.append("pii")
        stages.append("write")
        return cls(tuple(stages))


def _join(*parts: str) -> str:
    return FileSystems.join(*parts)


def build_curate(pipeline: beam.Pipeline, paths: list[str], output: str, config: CurateConfig) -> StagePlan:
    """Add the curate graph to `pipeline`; nothing runs until the pipeline does."""
    plan = StagePlan.from_config(config)
    config_fp = fingerprint(config)
    read = pipeline | "Read" >> ReadDocuments(paths, config.read, config_fp)
    rejected, stats = [read[REJECTED]], [read[STATS]]
    docs = read[KEPT]
    stages: dict[str, beam.PTransform] = {
        "normalise": Normalise(config.normalise),
        "domain": DetectDomain(config.domain),
        "language": IdentifyLanguage(config.language),
        "heuristics": ApplyHeuristics(config.heuristics),
        "classify": Classify(config.classify),
        "exact_dedupe": ExactDedupe(),
        "near_dedupe": NearDedupe(config.near_dedupe),
        "decontaminate": Decontaminate(config.decontamination),
        "pii": ScrubPii(config.pii),
    }
    for name in plan.chain[1:-1]:
        result = docs | name.title().replace("_", "") >> stages[name]
        docs = result[KEPT]
        rejected.append(result[REJECTED])
        stats.append(result[STATS])
    written = docs | "Write" >> WriteCurated(_join(output, DATA_DIR, "part"), CURATED_SCHEMA, config.output)
    stats.append(written[STATS])

    all_rejected = rejected | "GatherRejected" >> beam.Flatten()
    if config.output.write_rejected:
        if config.pii.enabled:  # the rejected sink gets no PII either
            scrubbed = all_rejected | "ScrubRejected" >> ScrubRejected(config.pii)
            all_rejected = scrubbed[KEPT]
            stats.append(scrubbed[STATS])
        all_rejected | "WriteRejected" >> WriteParquet(
            _join(output, REJECTED_DIR, "part"), REJECTED_SCHEMA, config.output
        )
    read[DEAD] | "WriteDeadLetters" >> WriteParquet(
        _join(output, DEAD_LETTER_DIR, "part"), DEAD_LETTER_SCHEMA, config.output
    )
    write_counts(stats, output)
    return plan


def run_curate(
    inputs: list[str],
    output: str,
    config: CurateConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
) -> dict[str, Any]:
    """Run the pipeline to completion, write stats.json and return it; raises if the counts do not add up."""
    paths = match_inputs(inputs)
    prepare_output(output, overwrite)
    options = PipelineOptions(beam_args or [])
    started = time.time()
    with beam.Pipeline(options=options) as pipeline:
        plan = build_curate(pipeline, paths, output, config)
    seconds = time.time() - started
    counted = read_counts(output)
    stages = {**{name: StageCounts(name) for name in plan.chain}, **counted}
    run = {
        "pipeline_version": PIPELINE_VERSION,
        "inputs": inputs,
        "files": len(paths),
        "output": output,
        "runner": options.get_all_options().get("runner") or "DirectRunner",
        "wall_seconds": round(seconds, 3),
        "config_fingerprint": fingerprint(config),
        "config": to_dict(config),
    }
    document = stats_document(stages, plan.chain, run)
    with FileSystems.create(_join(output, STATS_FILE)) as handle:
        handle.write(dumps(document).encode("utf-8"))
    if echo:
        print(render_table(ordered_stages(stages)))
        terms = document["accounting"]
        print(
            f"\n{terms['records_read']} records read = {terms['kept']} kept + {terms['dropped']} dropped + "
            f"{terms['dead_lettered']} dead-lettered  ({seconds:.1f} s)"
        )
    return document
