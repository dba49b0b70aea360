"""What every Beam job's output folder shares (curate, pack, sft): refusing to mix runs, the
per-stage counts merged from every bundle into `_stats/counts.json` (read back for stats.json), and
the completion marker, written last, so a folder without it is recognisably unfinished."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.pipeline.stages.write import STATS_DIR
from gemmaflow.pipeline.stats import StageCounts, merge_parts, ordered_stages

STATS_FILE = "stats.json"
COUNTS_FILE = "counts.json"
COMPLETE_FILE = "_COMPLETE.json"


class OutputExistsError(FileExistsError):
    """The output folder already holds a run; refusing to mix two runs' shards."""


class MergeCountsFn(beam.CombineFn):
    """Merges per-bundle StageCounts parts into one per stage (the only place counts meet)."""

    def create_accumulator(self) -> dict[str, StageCounts]:
        return {}

    def add_input(self, acc: dict[str, StageCounts], part: StageCounts) -> dict[str, StageCounts]:
        acc.setdefault(part.stage, StageCounts(part.stage)).merge(part)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, StageCounts]]) -> dict[str, StageCounts]:
        return merge_parts(part for acc in accs for part in acc.values())

    def extract_output(self, acc: dict[str, StageCounts]) -> str:
        return json.dumps([counts.to_dict() for counts in ordered_stages(acc)])  # by name; stats.json orders by chain


def write_counts(stats: list[beam.PCollection], output: str) -> None:
    """Merge every stage's per-bundle StageCounts into OUTPUT/_stats/counts.json (one file)."""
    (
        stats
        | "GatherStats" >> beam.Flatten()
        | "MergeStats" >> beam.CombineGlobally(MergeCountsFn())
        | "WriteStats" >> beam.io.WriteToText(
            FileSystems.join(output, STATS_DIR, COUNTS_FILE), shard_name_template="", num_shards=1
        )
    )


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse (or, with `overwrite`, clear) an output folder that holds an earlier run's files."""
    previous = [
        m.path
        for pattern in (FileSystems.join(output, STATS_FILE), FileSystems.join(output, "*", "*"))
        for result in FileSystems.match([pattern])
        for m in result.metadata_list
    ]
    if previous and not overwrite:
        raise OutputExistsError(f"output folder {output} already holds files; pass --overwrite to replace them")
    marker = FileSystems.join(output, COMPLETE_FILE)
    if FileSystems.exists(marker):  # first, so an overwrite that dies midway is not taken as complete
        FileSystems.delete([marker])
    if previous:
        FileSystems.delete(previous)


def write_completion_marker(output: str, record: dict[str, Any]) -> None:
    """The last file a job writes: which job finished, when, with which config."""
    with FileSystems.create(FileSystems.join(output, COMPLETE_FILE)) as handle:
        handle.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_counts(output: str) -> dict[str, StageCounts]:
    """The merged per-stage counts `write_counts` left in OUTPUT/_stats/counts.json."""
    with FileSystems.open(FileSystems.join(output, STATS_DIR, COUNTS_FILE)) as handle:
        parts = json.loads(handle.read().decode("utf-8"))
    return {part["stage"]: StageCounts.from_dict(part) for part in parts}
