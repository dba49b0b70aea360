"""`gemmaflow curate`: raw documents in, curated Parquet, rejected and dead-letter sinks and stats.json out.

The stage chain is built from the configuration; every stage returns its kept documents plus
`rejected` and `stats` outputs, which are gathered here into the rejected sink and the stats table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from gemmaflow.configio import fingerprint, to_dict
from pipeline.config import CurateConfig
from pipeline.records import CURATED_SCHEMA, DEAD_LETTER_SCHEMA, PIPELINE_VERSION, REJECTED_SCHEMA
from pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from pipeline.stages.decontaminate import Decontaminate
from pipeline.stages.dedupe import ExactDedupe
from pipeline.stages.domain import DetectDomain
from pipeline.stages.heuristics import ApplyHeuristics
from pipeline.stages.language import IdentifyLanguage
from pipeline.stages.near_dedupe import NearDedupe
from pipeline.stages.normalise import Normalise
from pipeline.stages.read import ReadDocuments, match_inputs
from pipeline.stages.write import DATA_DIR, DEAD_LETTER_DIR, REJECTED_DIR, STATS_DIR, WriteCurated, WriteParquet
from pipeline.stats import StageCounts, dumps, merge_parts, ordered_stages, render_table, stats_document

STATS_FILE = "stats.json"
_COUNTS_FILE = "counts.json"


class OutputExistsError(FileExistsError):
    """The output folder already holds a run; refusing to mix two runs' shards."""


class _MergeCountsFn(beam.CombineFn):
    """Merges per-bundle StageCounts parts into one per stage (the only place counts meet)."""

    def create_accumulator(self) -> dict[str, StageCounts]:
        return {}

    def add_input(self, acc: dict[str, StageCounts], part: StageCounts) -> dict[str, StageCounts]:
        acc.setdefault(part.stage, StageCounts(part.stage)).merge(part)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, StageCounts]]) -> dict[str, StageCounts]:
        return merge_parts(part for acc in accs for part in acc.values())

    def extract_output(self, acc: dict[str, StageCounts]) -> str:
        return json.dumps([counts.to_dict() for counts in ordered_stages(acc)])


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
        if config.exact_dedupe.enabled:
            stages.append("exact_dedupe")
        if config.near_dedupe.enabled:
            stages.append("near_dedupe")
        if config.decontamination.benchmarks:
            stages.append("decontaminate")
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
        "exact_dedupe": ExactDedupe(),
        "near_dedupe": NearDedupe(config.near_dedupe),
        "decontaminate": Decontaminate(config.decontamination),
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
        all_rejected | "WriteRejected" >> WriteParquet(
            _join(output, REJECTED_DIR, "part"), REJECTED_SCHEMA, config.output
        )
    read[DEAD] | "WriteDeadLetters" >> WriteParquet(
        _join(output, DEAD_LETTER_DIR, "part"), DEAD_LETTER_SCHEMA, config.output
    )
    (
        stats
        | "GatherStats" >> beam.Flatten()
        | "MergeStats" >> beam.CombineGlobally(_MergeCountsFn())
        | "WriteStats" >> beam.io.WriteToText(
            _join(output, STATS_DIR, _COUNTS_FILE), shard_name_template="", num_shards=1
        )
    )
    return plan


def _prepare_output(output: str, overwrite: bool) -> None:
    previous = [
        m.path
        for pattern in (_join(output, STATS_FILE), _join(output, "*", "*"))
        for result in FileSystems.match([pattern])
        for m in result.metadata_list
    ]
    if previous and not overwrite:
        raise OutputExistsError(f"output folder {output} already holds files; pass --overwrite to replace them")
    if previous:
        FileSystems.delete(previous)


def read_counts(output: str) -> dict[str, StageCounts]:
    with FileSystems.open(_join(output, STATS_DIR, _COUNTS_FILE)) as handle:
        parts = json.loads(handle.read().decode("utf-8"))
    return {part["stage"]: StageCounts.from_dict(part) for part in parts}


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
    _prepare_output(output, overwrite)
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
