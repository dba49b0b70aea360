"""What every Beam job's output folder shares (curate, pack, sft): ownership, the per-stage counts
merged from every bundle into `_stats/counts.json` (read back for stats.json), and the completion
marker, written last, so a folder without it is recognisably unfinished.

Ownership: a job writes `_GEMMAFLOW.json` into its output folder before anything else, and the
completion marker lists every file the run wrote. An output folder is reused only when it is empty
or ours: `--overwrite` deletes the files of our earlier run (those its marker lists, or, for a run
that never finished, those under the names our jobs write, Beam's temporary folders included) and
refuses a folder holding anything else. The path is a path, never a glob.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.run_markers import COMPLETE_FILE, OWNER_FILE
from gemmaflow.pipeline.spill import SPILL_DIR
from gemmaflow.pipeline.stages.write import STATS_DIR
from gemmaflow.pipeline.stats import StageCounts, merge_parts, ordered_stages

STATS_FILE = "stats.json"
COUNTS_FILE = "counts.json"
# Top-level names a curate, pack or sft run writes (data/, shard splits, sinks, stats, markers) and
# the temporary folders Beam's file sinks leave when a run is killed.
OWNED_NAMES = frozenset({"data", "rejected", "dead_letter", STATS_DIR, STATS_FILE, COMPLETE_FILE, OWNER_FILE,
                         "manifest.json", "train", "validation", SPILL_DIR})  # fmt: skip
OWNED_PATTERNS = ("beam-temp-*", ".temp-beam-*")
SHOWN = 5  # foreign files named in a refusal


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


def list_files(folder: str) -> list[str]:
    """Every file under `folder`, as paths relative to it; `folder` is taken literally (no glob)."""
    if "://" not in folder:
        if not os.path.isdir(folder):
            return []
        return sorted(
            os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names
        )
    prefix = folder.rstrip("/") + "/"
    escaped = re.sub(r"([*?\[])", r"[\1]", prefix)  # fnmatch's way to say a character literally
    matched = FileSystems.match([escaped + "**"])[0].metadata_list
    return sorted(m.path[len(prefix) :] for m in matched)


def _top(relative: str) -> str:
    return relative.replace(os.sep, "/").split("/", 1)[0]


def _temporary(relative: str) -> bool:
    return any(fnmatch.fnmatch(_top(relative), pattern) for pattern in OWNED_PATTERNS)


def _owned(relative: str, names: frozenset[str]) -> bool:
    return _top(relative) in names or _temporary(relative)


def _listed_by_marker(output: str) -> set[str] | None:
    """The files a finished run's completion marker lists; None when there is no readable list."""
    try:
        with FileSystems.open(FileSystems.join(output, COMPLETE_FILE)) as handle:
            files = json.loads(handle.read().decode("utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return set(files) if isinstance(files, list) else None


def prepare_output(output: str, overwrite: bool, job: str = "run", owned_names: frozenset[str] = OWNED_NAMES) -> None:
    """Make `output` ready for a new run: empty, or (with `overwrite`) cleared of our earlier run.

    `owned_names` are the top-level names the job writes (the demo's differ from a Beam job's).

    Raises OutputExistsError, touching nothing, for a folder that holds files without `overwrite`,
    for a folder that is not ours, and for files in our folder that no run of ours wrote.
    """
    if "://" not in output and os.path.exists(output) and not os.path.isdir(output):
        raise OutputExistsError(f"output {output} is a file, not a folder")
    existing = list_files(output)
    if existing and not overwrite:
        raise OutputExistsError(f"output folder {output} already holds files; pass --overwrite to replace them")
    if existing:
        if OWNER_FILE not in existing and COMPLETE_FILE not in existing:
            raise OutputExistsError(
                f"output folder {output} holds files gemmaflow did not write (no {OWNER_FILE}); refusing to delete "
                f"them: {', '.join(existing[:SHOWN])}"
            )
        listed = _listed_by_marker(output)
        if listed is None:  # a run that never finished: what lies under the names our jobs write
            ours = [f for f in existing if _owned(f, owned_names | {OWNER_FILE})]
        else:  # a finished run: the files it listed, its markers and Beam's temporary folders
            ours = [f for f in existing if f in listed or f in (OWNER_FILE, COMPLETE_FILE) or _temporary(f)]
        foreign = [f for f in existing if f not in ours]
        if foreign:
            raise OutputExistsError(
                f"output folder {output} holds files no gemmaflow run wrote; refusing to delete them: "
                f"{', '.join(foreign[:SHOWN])}"
            )
        if COMPLETE_FILE in existing:  # first, so an overwrite that dies midway is not taken as complete
            FileSystems.delete([FileSystems.join(output, COMPLETE_FILE)])
        # The owner marker stays (rewritten below): a kill midway leaves a run of ours that did not
        # finish, which readers refuse and the next --overwrite clears, not files nobody owns.
        FileSystems.delete([FileSystems.join(output, f) for f in ours if f not in (COMPLETE_FILE, OWNER_FILE)])
        _remove_empty_folders(output)
    _write_json(FileSystems.join(output, OWNER_FILE), {
        "format": "gemmaflow-run/1", "job": job,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })  # fmt: skip


def _remove_empty_folders(output: str) -> None:
    if "://" in output:
        return  # object stores have no folders to leave behind
    for root, _, _ in sorted(os.walk(output), key=lambda entry: -len(entry[0])):
        if root != output and not os.listdir(root):
            os.rmdir(root)


def _write_json(path: str, record: dict[str, Any]) -> None:
    with FileSystems.create(path) as handle:
        handle.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def write_completion_marker(output: str, record: dict[str, Any]) -> None:
    """The last file a job writes: which job finished, when, with which config, and every file the
    run wrote (what a later `--overwrite` may delete)."""
    files = [f for f in list_files(output) if f != COMPLETE_FILE]
    _write_json(FileSystems.join(output, COMPLETE_FILE), {**record, "files": files})


def read_counts(output: str) -> dict[str, StageCounts]:
    """The merged per-stage counts `write_counts` left in OUTPUT/_stats/counts.json."""
    with FileSystems.open(FileSystems.join(output, STATS_DIR, COUNTS_FILE)) as handle:
        parts = json.loads(handle.read().decode("utf-8"))
    return {part["stage"]: StageCounts.from_dict(part) for part in parts}
