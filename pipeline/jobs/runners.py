"""Which runner a job's Beam options name, and the one Beam does not know by a short name: `--runner dask`.

A runner is recorded (stats.json) and recognised (live progress of a local run) by its class
name, whichever of Beam's spellings was given: `portable`, `PortableRunner` or the class path.

Every Dask name (`dask`, `DaskRunner`, Beam's own class path) runs on pipeline/jobs/dask_runner.py:
Beam's DaskRunner as shipped loses every sink but one, so taking the user at their word would give
a run that "succeeds" with missing output. That module imports dask, an optional extra, so it is
imported only when a Dask name is given.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

DEFAULT_RUNNER = "DirectRunner"
DASK_RUNNER = "DaskRunner"
_DASK_NAMES = frozenset({
    "dask", "daskrunner", "apache_beam.runners.dask.dask_runner.daskrunner",
    "gemmaflow.pipeline.jobs.dask_runner.daskrunner",
})  # fmt: skip
# Beam's own short names: its runners' class names, without "Runner" or as a class path, any case.
_BEAM_NAMES = {
    alias.lower(): path.rsplit(".", 1)[-1]
    for path in StandardOptions.ALL_KNOWN_RUNNERS
    for alias in (path, path.rsplit(".", 1)[-1], path.rsplit(".", 1)[-1].removesuffix("Runner"))
}


class DaskWorkerOptions(PipelineOptions):
    """`--dask-workers N`: the size of the local cluster the Dask runner starts when given no address."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dask-workers", "--dask_workers", dest="dask_workers", type=int, default=None,
            help="worker processes (one thread each) of the local dask.distributed cluster that --runner dask "
            "starts when no --dask_client_address is given (default: one per CPU)",
        )  # fmt: skip


def runner_name(options: PipelineOptions) -> str:
    """The class name of the runner `--runner` names (as given when Beam knows no such name),
    DirectRunner when none is, DaskRunner for any Dask name."""
    runner = options.get_all_options().get("runner")
    if runner is None:
        return DEFAULT_RUNNER
    name = runner if isinstance(runner, str) else type(runner).__name__
    return DASK_RUNNER if name.lower() in _DASK_NAMES else _BEAM_NAMES.get(name.lower(), name)


def runner_for(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to build the pipeline with: gemmaflow's Dask runner for a Dask name, else None
    (Beam creates the one `--runner` names)."""
    if runner_name(options) != DASK_RUNNER:
        return None
    try:
        from gemmaflow.pipeline.jobs.dask_runner import DaskRunner
    except ImportError as exc:
        raise ImportError(f"--runner dask needs dask and distributed: pip install 'gemmaflow[dask]' ({exc})") from exc
    return DaskRunner()


# Below this much input, Beam's in-process runner finishes before worker processes would have
# started and loaded their models (several seconds each), so small runs stay in this process.
PARALLEL_MIN_INPUT_BYTES = 16 * 1024 * 1024
# Above this share of the machine's memory, input stays in one process too: with worker processes
# Beam's local runner holds what it shuffles both in itself and in the worker receiving it, and
# peak memory grew 4.2 MB per MB of curate input (one process: 1.0 MB), so one process reaches
# inputs about four times larger, at half the speed.
PARALLEL_MAX_INPUT_SHARE_OF_MEMORY = 1 / 8
_LOG = logging.getLogger(__name__)


def input_bytes(patterns: Sequence[str]) -> int:
    """Total size of the files `patterns` match (0 for what cannot be listed)."""
    try:
        return sum(m.size_in_bytes for result in FileSystems.match(list(patterns)) for m in result.metadata_list)
    except Exception:  # listing is an estimate for choosing workers; the read reports real errors
        return 0


def memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def every_core(
    beam_args: Sequence[str], nbytes: int, cores: int | None = None, memory: int | None = None
) -> list[str]:
    """`beam_args` plus one worker process per core for Beam's local runner, when the user chose
    neither a runner other than the DirectRunner nor how it runs, and the input is worth it and fits."""
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    memory = memory if memory is not None else memory_bytes()
    chosen = {"direct_num_workers", "direct_running_mode"} & {
        arg.lstrip("-").split("=", 1)[0].replace("-", "_") for arg in beam_args if arg.startswith("--")
    }
    if runner_name(PipelineOptions(list(beam_args))) != DEFAULT_RUNNER or chosen or cores < 2 \
            or nbytes < PARALLEL_MIN_INPUT_BYTES:
        return list(beam_args)
    if nbytes > memory * PARALLEL_MAX_INPUT_SHARE_OF_MEMORY:
        _LOG.warning("input of %.1f GB: one process, since worker processes would need more memory than this "
                     "machine has (--direct_num_workers N to use them anyway)", nbytes / 1e9)
        return list(beam_args)
    _LOG.info("using %d worker processes, one per core (--direct_num_workers 1: this process only)", cores)
    return [*beam_args, "--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"]
