"""`gemmaflow curate`: the curation pipeline's command line (Beam options pass through)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from typing import TYPE_CHECKING

from gemmaflow.commands.common import EXIT_RUN_ERROR, UserError, add_quiet_flag, sample_path
from gemmaflow.core.configio import to_dict

if TYPE_CHECKING:
    from gemmaflow.pipeline.config import CurateConfig


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.pipeline.config import load_curate_config
    from gemmaflow.pipeline.jobs.beam_job import PipelineOptionsError, UnusableRunError
    from gemmaflow.pipeline.jobs.curate import run_curate, submit_curate
    from gemmaflow.pipeline.run_output import OutputExistsError
    from gemmaflow.pipeline.stages.read import InputNotFoundError
    from gemmaflow.pipeline.stats import AccountingError

    config = load_curate_config(args.config)
    if args.benchmark:
        benchmarks = config.decontamination.benchmarks + tuple(args.benchmark)
        config = dataclasses.replace(
            config, decontamination=dataclasses.replace(config.decontamination, benchmarks=benchmarks)
        )
    inputs = args.input or [sample_path("raw.jsonl.gz")]
    try:
        if args.dry_run:
            dry_run(inputs, args.output, config, beam_args)
            return 0
        if args.submit_only:
            job_id = submit_curate(inputs, args.output, config, beam_args, overwrite=args.overwrite)
            print(f"submitted{' job ' + job_id if job_id else ''}: its last step writes {args.output}/stats.json "
                  "and the completion marker")
            return 0
        run_curate(inputs, args.output, config, beam_args, overwrite=args.overwrite, progress=not args.quiet)
    except (InputNotFoundError, OutputExistsError, PipelineOptionsError) as exc:
        raise UserError(str(exc)) from exc
    except AccountingError as exc:
        print(f"gemmaflow curate: accounting check failed: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except UnusableRunError as exc:
        print(f"gemmaflow curate: nothing usable: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    return 0


def dry_run(inputs: list[str], output: str, config: CurateConfig, beam_args: list[str]) -> None:
    """Build the run's Beam graph with its pipeline options and translate it to Beam's portable proto,
    which pickles every step, then print it and the resolved config: what fails here (a bad option, a
    glob matching nothing, a step that cannot be serialised) would fail the run. Nothing is submitted,
    read from the inputs or written."""
    import yaml

    from gemmaflow.pipeline.jobs.curate import plan_curate
    from gemmaflow.pipeline.jobs.runners import runner_name

    # Beam's own dry-run option: with the GCP libraries installed, building for Dataflow would
    # otherwise ask Cloud Storage about the buckets' soft-delete policies.
    pipeline, chain = plan_curate(inputs, output, config, [*beam_args, "--dry_run=True"])
    transforms = len(pipeline.to_runner_api().components.transforms)
    print("stages: " + " -> ".join(chain))
    print(f"inputs: {inputs}\noutput: {output}\nbeam options: {beam_args}")
    print(f"graph: {transforms} transforms built for {runner_name(pipeline.options)}, not run")
    print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "curate",
        help="raw documents -> curated Parquet (normalise, language, heuristics, dedupe, decontamination)",
        description="Run the curation pipeline on Apache Beam. Unrecognised options are Beam pipeline options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow curate --output curated/                      # the bundled sample
              gemmaflow curate --input 'raw/*.jsonl.zst' --output curated/ --config configs/curate.yaml
              gemmaflow curate --input 'crawl/*.warc.gz' --output curated/  # WARC; *.warc.wet.gz reads WET
              gemmaflow curate --input 'raw/*.jsonl.zst' --output curated/ \\
                  --direct_running_mode multi_processing --direct_num_workers 2
              gemmaflow curate --input 'raw/*.jsonl.zst' --output curated/ --runner dask --dask-workers 4
              gemmaflow curate --input 'gs://bucket/raw/*.jsonl.zst' --output gs://bucket/curated \\
                  --runner DataflowRunner --project P --region us-central1 \\
                  --temp_location gs://bucket/tmp --setup_file ./setup.py
            """
        ),
    )
    parser.add_argument(
        "--input", action="append", metavar="GLOB",
        help="input files: JSONL (.jsonl, .gz, .zst), Parquet, WARC (.warc, .warc.gz) or WET (.warc.wet.gz), "
        "told apart by name (read.format overrides); repeatable (default: the bundled sample)",
    )
    parser.add_argument("--output", required=True, help="output folder (local or gs://)")
    parser.add_argument("--config", help="YAML config; missing keys take the defaults (configs/curate.yaml)")
    parser.add_argument(
        "--benchmark", action="append", metavar="GLOB",
        help="benchmark JSONL files to decontaminate against; repeatable, added to decontamination.benchmarks",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --output")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="build the Beam graph with the given pipeline options and print it with the resolved config; "
        "submit, read and write nothing",
    )  # fmt: skip
    parser.add_argument(
        "--submit-only", action="store_true",
        help="submit the job and exit without waiting (a Dataflow flex template's launcher must); the job's "
        "last step writes stats.json and the completion marker",
    )  # fmt: skip
    add_quiet_flag(parser)
    parser.set_defaults(handler=run, accepts_beam_args=True)
