"""Every Beam job on the Dask runner, against a two-process dask.distributed cluster, gives the DirectRunner's output.

One cluster serves the module (its workers import the stages' libraries once). Each job runs on
both runners with the same input and config and is compared as tests/pipeline/runner_parity.py
describes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from gemmaflow.pipeline.jobs.beam_job import BeamJob, run_beam_job
from gemmaflow.pipeline.jobs.runners import runner_name
from tests.pipeline.runner_parity import (
    assert_a_failing_step_fails_the_run,
    assert_curate_matches_direct,
    assert_pack_matches_direct,
    assert_sft_matches_direct,
)
from tests.pipeline.test_beam_job import NumbersConfig, build_numbers
from tests.pipeline.test_pack_tokenizer import tiny_tokenizer  # noqa: F401 (fixture)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def dask_args() -> Iterator[list[str]]:
    """Beam options that run a job on a local cluster of two single-threaded worker processes."""
    with distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        yield ["--runner", "dask", "--dask_client_address", cluster.scheduler_address]


@pytest.mark.slow
def test_curate_with_every_stage_on_dask_matches_direct(tmp_path, dask_args):
    assert_curate_matches_direct(tmp_path, dask_args, "DaskRunner")


@pytest.mark.slow
def test_pack_on_dask_matches_direct_shard_for_shard(tmp_path, dask_args, tiny_tokenizer):  # noqa: F811
    assert_pack_matches_direct(tmp_path, dask_args, "DaskRunner", tiny_tokenizer)


@pytest.mark.slow
def test_sft_on_dask_matches_direct(tmp_path, dask_args, tiny_tokenizer):  # noqa: F811
    assert_sft_matches_direct(tmp_path, dask_args, "DaskRunner", tiny_tokenizer)


@pytest.mark.slow
def test_dask_workers_starts_a_local_cluster_when_no_address_is_given(tmp_path):
    out = str(tmp_path / "out")
    job = BeamJob("numbers", [], out, NumbersConfig(), ["--runner", "dask", "--dask-workers", "1"], echo=False)
    result = run_beam_job(job, build_numbers(out, 10))
    assert result.stats["accounting"] == {"records_read": 10, "kept": 5, "dropped": 5, "dead_lettered": 0}
    assert result.stats["run"]["runner"] == "DaskRunner"


@pytest.mark.slow
def test_a_failing_step_fails_the_run_and_writes_no_marker(tmp_path, dask_args):
    assert_a_failing_step_fails_the_run(tmp_path, dask_args, ValueError)


@pytest.mark.parametrize("name", ["dask", "DaskRunner", "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_every_dask_name_is_the_dask_runner(name):
    assert runner_name(PipelineOptions(["--runner", name])) == "DaskRunner"
    assert runner_name(PipelineOptions(["--runner", "DataflowRunner"])) == "DataflowRunner"
