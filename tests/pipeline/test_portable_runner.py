"""Every Beam job through Beam's PortableRunner gives the DirectRunner's output: the portable path.

The path Flink, Spark and Dataflow Runner v2 take: the pipeline is translated to the portable
proto, submitted to a job service, and its steps run in SDK worker processes that unpickle each
DoFn and load its models in setup. Here the job service is Beam's Python one
(`local_job_service_main`) and the workers come from an external worker pool
(`worker_pool_main`), each in its own process, started once for the module. Each job runs on both
runners and is compared as tests/pipeline/runner_parity.py describes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import grpc
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

RUNNER = "PortableRunner"
REPO = Path(__file__).resolve().parents[2]  # the workers import the tests' DoFns from here
START_SECONDS = 60  # for a service to answer on its port
TEST_SECONDS = 240  # for one test: a job whose worker never started would wait for ever


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _python_on_path(folder: Path) -> dict[str, str]:
    """The environment for the worker pool: it starts each SDK worker as plain `python`, so that
    must be this interpreter (with gemmaflow and the tests importable), whatever PATH holds."""
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    path = os.pathsep.join([str(folder), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONPATH": str(REPO)}


def _start(module: str, args: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m module args` in its own process group, answering gRPC on `port` (or failing with its log)."""
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        grpc.channel_ready_future(grpc.insecure_channel(f"localhost:{port}")).result(timeout=START_SECONDS)
    except grpc.FutureTimeoutError:
        _stop(process)
        pytest.fail(f"{module} did not start on port {port}:\n{log.read_text()[-3000:]}")
    return process


def _stop(process: subprocess.Popen) -> None:
    """The process and the SDK workers it started (its process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def job_service(tmp_path_factory) -> Iterator[str]:
    """The address of a Python local job service, in its own process."""
    folder = tmp_path_factory.mktemp("job-service")
    port = _free_port()
    args = ["--port", str(port), "--staging_dir", str(folder / "staging")]
    process = _start("apache_beam.runners.portability.local_job_service_main", args, port, folder / "log")
    yield f"localhost:{port}"
    _stop(process)


@pytest.fixture(scope="module")
def portable_args(job_service, tmp_path_factory) -> Iterator[list[str]]:
    """Beam options that submit a job to the job service, its steps run by an external worker pool."""
    folder = tmp_path_factory.mktemp("worker-pool")
    port = _free_port()
    process = _start("apache_beam.runners.worker.worker_pool_main", ["--service_port", str(port)], port,
                     folder / "log", _python_on_path(folder))  # fmt: skip
    yield ["--runner", RUNNER, "--job_endpoint", job_service, "--environment_type", "EXTERNAL",
           "--environment_config", f"localhost:{port}"]  # fmt: skip
    _stop(process)


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Fail a test that runs past TEST_SECONDS instead of hanging the suite (gRPC waits wake for signals)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the test ran past {TEST_SECONDS} s (see the job service's and worker pool's logs)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.slow
def test_curate_with_every_stage_on_the_portable_runner_matches_direct(tmp_path, portable_args):
    assert_curate_matches_direct(tmp_path, portable_args, RUNNER)


@pytest.mark.slow
def test_pack_on_the_portable_runner_matches_direct_shard_for_shard(tmp_path, portable_args, tiny_tokenizer):  # noqa: F811
    assert_pack_matches_direct(tmp_path, portable_args, RUNNER, tiny_tokenizer)


@pytest.mark.slow
def test_sft_on_the_portable_runner_matches_direct(tmp_path, portable_args, tiny_tokenizer):  # noqa: F811
    assert_sft_matches_direct(tmp_path, portable_args, RUNNER, tiny_tokenizer)


@pytest.mark.slow
def test_a_failing_step_fails_the_portable_run_and_writes_no_marker(tmp_path, portable_args):
    assert_a_failing_step_fails_the_run(tmp_path, portable_args, RuntimeError)


@pytest.mark.slow
def test_loopback_workers_in_the_submitting_process(tmp_path, job_service):
    """`--environment_type LOOPBACK`: the job service calls back into this process for its worker;
    `--runner portable` is Beam's short name, recorded by its class name."""
    out = str(tmp_path / "out")
    args = ["--runner", "portable", "--job_endpoint", job_service, "--environment_type", "LOOPBACK"]
    result = run_beam_job(BeamJob("numbers", [], out, NumbersConfig(), args, echo=False), build_numbers(out, 10))
    assert result.stats["accounting"] == {"records_read": 10, "kept": 5, "dropped": 5, "dead_lettered": 0}
    assert result.stats["run"]["runner"] == RUNNER


@pytest.mark.parametrize(
    ("given", "name"),
    [("portable", RUNNER), ("PortableRunner", RUNNER),
     ("apache_beam.runners.portability.portable_runner.PortableRunner", RUNNER), ("flink", "FlinkRunner"),
     ("SPARK", "SparkRunner"), ("direct", "DirectRunner"), ("my_runners.CustomRunner", "my_runners.CustomRunner")],
)  # fmt: skip
def test_beams_short_names_are_recorded_by_class_name(given, name):
    assert runner_name(PipelineOptions(["--runner", given])) == name
