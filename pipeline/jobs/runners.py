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
