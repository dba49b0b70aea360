"""Dataflow packaging: the flex template's parameters are curate's flags, the image's Beam is the tested
one, and a curate graph builds with Dataflow's options offline (nothing is submitted)."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gemmaflow.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
IMAGE = "us-central1-docker.pkg.dev/my-project/gemmaflow/gemmaflow:test"
DATAFLOW = ["--runner", "DataflowRunner", "--project", "my-project", "--region", "us-central1",
            "--temp_location", "gs://my-bucket/tmp", "--sdk_container_image", IMAGE]  # fmt: skip


def curate_flags() -> dict[str, argparse.Action]:
    subparsers = build_parser()._subparsers._group_actions[0].choices  # argparse's own table of subcommands
    return {opt[2:]: action for action in subparsers["curate"]._actions for opt in action.option_strings}


def test_every_template_parameter_is_a_curate_flag_taking_a_value():
    flags = curate_flags()
    parameters = json.loads((DOCKER / "curate-flex-template-metadata.json").read_text())["parameters"]
    for parameter in parameters:
        action = flags[parameter["name"]]
        assert action.nargs != 0, f"{parameter['name']}: the launcher passes --name=value; the flag takes none"
        assert parameter.get("isOptional", False) is not action.required, parameter["name"]
    required = {name for name, action in flags.items() if action.required}
    assert required <= {parameter["name"] for parameter in parameters}


def test_the_image_has_the_beam_version_the_tests_passed_with():
    tested = re.search(r"^apache-beam==(\S+)$", (ROOT / "requirements-tested.txt").read_text(), re.M)
    image = re.search(r"^ARG BEAM_VERSION=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert tested and image and image.group(1) == tested.group(1)


def test_flex_program_dry_runs_curate_on_dataflow_with_launcher_style_options(tmp_path):
    """The launcher's `--name=value` form, Dataflow by default: the graph is built and translated."""
    options = [f"{name}={value}" for name, value in zip(DATAFLOW[2::2], DATAFLOW[3::2], strict=True)]
    program = [sys.executable, str(DOCKER / "flex_curate.py"), f"--output={tmp_path / 'out'}", "--dry-run"]
    result = subprocess.run([*program, *options], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^graph: \d+ transforms built for DataflowRunner, not run$", result.stdout, re.M)
    assert not (tmp_path / "out").exists()


def test_dataflow_options_beam_refuses_are_a_one_line_user_error(tmp_path, capsys):
    without_region = DATAFLOW[:4] + DATAFLOW[6:]
    assert main(["curate", "--output", str(tmp_path / "out"), "--dry-run", *without_region]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Missing required option: region" in err[-1] and err[-1].startswith("gemmaflow curate: error:")


def test_dataflow_translates_the_curate_graph_into_a_job_offline(tmp_path):
    """Beam's own Dataflow translation (its `--dry_run` stops before the client is made): needs
    apache-beam[gcp], which the dev extra leaves out."""
    pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", exc_type=ImportError)
    from apache_beam.portability.api import beam_runner_api_pb2

    from gemmaflow.commands.common import sample_path
    from gemmaflow.pipeline.config import load_curate_config
    from gemmaflow.pipeline.jobs.curate import plan_curate

    output = "gs://my-bucket/curated"
    args = [*DATAFLOW, "--dry_run", "True"]
    pipeline, chain = plan_curate([sample_path("raw.jsonl.gz")], output, load_curate_config(), args)
    job = pipeline.run().job
    assert chain[0] == "read" and chain[-1] == "write"
    assert str(job.proto.type_) in ("JobType.JOB_TYPE_BATCH", "1")
    [environment] = job.proto_pipeline.components.environments.values()
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == IMAGE
    names = {transform.unique_name for transform in job.proto_pipeline.components.transforms.values()}
    assert {"Read", "Write", "WriteDeadLetters"} <= names
