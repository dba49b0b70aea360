"""The two files that say a folder is a gemmaflow run's and that the run finished.

A job writes OWNER_FILE into its output folder before anything else and COMPLETE_FILE last, so a
folder with the first and not the second is a run that was killed or is still going. Every command
that reads another's output refuses such a folder (`unfinished_run`), the way a build tool refuses
a half-written artefact; folders without OWNER_FILE (made by hand, or by older versions) are read.
"""

from __future__ import annotations

import os

OWNER_FILE = "_GEMMAFLOW.json"
COMPLETE_FILE = "_COMPLETE.json"
RUN_DEPTH = 3  # a run's files sit at most this many folders below it (curated/data/part-0.parquet: 1)


def unfinished_run(path: str) -> str | None:
    """The run folder holding `path` (a file or folder) when that run did not finish, else None.

    Local paths only: object stores are written by runners that finalise their sinks atomically.
    """
    if "://" in path:
        return None
    folder = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
    for _ in range(RUN_DEPTH):
        if os.path.isfile(os.path.join(folder, OWNER_FILE)):
            return None if os.path.isfile(os.path.join(folder, COMPLETE_FILE)) else folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
    return None


def refusal(path: str, run: str) -> str:
    return f"input {path} belongs to a gemmaflow run that did not finish ({run} has no {COMPLETE_FILE})"
