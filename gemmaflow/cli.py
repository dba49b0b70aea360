"""The `gemmaflow` command: parses arguments, validates configuration, calls each room's public function.

It is the only module that knows every room. User errors (bad config key, missing input, existing
output) end with one clear line and a non-zero exit code; `--verbose` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import resources

from gemmaflow.configio import ConfigError, to_dict

EXIT_USER_ERROR = 2
EXIT_RUN_ERROR = 1


class UserError(Exception):
    """An error the user can fix (printed as one line, exit code 2)."""


def sample_path(name: str) -> str:
    """Path of a file bundled in gemmaflow/sample (the demo corpus and friends)."""
    return str(resources.files("gemmaflow.sample").joinpath(name))


def _cmd_curate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.config import load_curate_config
    from pipeline.curate import OutputExistsError, StagePlan, run_curate
    from pipeline.stages.read import InputNotFoundError
    from pipeline.stats import AccountingError

    config = load_curate_config(args.config)
    if args.benchmark:
        benchmarks = config.decontamination.benchmarks + tuple(args.benchmark)
        config = dataclasses.replace(
            config, decontamination=dataclasses.replace(config.decontamination, benchmarks=benchmarks)
        )
    inputs = args.input or [sample_path("raw.jsonl.gz")]
    if args.dry_run:
        import yaml

        print("stages: " + " -> ".join(StagePlan.from_config(config).chain))
        print(f"inputs: {inputs}\noutput: {args.output}\nbeam options: {beam_args}")
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    try:
        run_curate(inputs, args.output, config, beam_args, overwrite=args.overwrite)
    except (InputNotFoundError, OutputExistsError) as exc:
        raise UserError(str(exc)) from exc
    except AccountingError as exc:
        print(f"gemmaflow curate: accounting check failed: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    return 0


def _add_curate(sub: argparse._SubParsersAction) -> None:
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
              gemmaflow curate --input 'raw/*.jsonl.zst' --output curated/ \\
                  --direct_running_mode multi_processing --direct_num_workers 2
              gemmaflow curate --input 'gs://bucket/raw/*.jsonl.zst' --output gs://bucket/curated \\
                  --runner DataflowRunner --project P --region us-central1 \\
                  --temp_location gs://bucket/tmp --setup_file ./setup.py
            """
        ),
    )
    parser.add_argument(
        "--input", action="append", metavar="GLOB",
        help="input files: JSONL (.jsonl, .gz, .zst) or Parquet; repeatable (default: the bundled sample)",
    )
    parser.add_argument("--output", required=True, help="output folder (local or gs://)")
    parser.add_argument("--config", help="YAML config; missing keys take the defaults (configs/curate.yaml)")
    parser.add_argument(
        "--benchmark", action="append", metavar="GLOB",
        help="benchmark JSONL files to decontaminate against; repeatable, added to decontamination.benchmarks",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --output")
    parser.add_argument("--dry-run", action="store_true", help="print the stage graph and resolved config, run nothing")
    parser.set_defaults(handler=_cmd_curate, accepts_beam_args=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemmaflow",
        description="Curate raw text into training data for Gemma-style models.",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_curate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    handler: Callable[[argparse.Namespace, list[str]], int] = args.handler
    try:
        return handler(args, extra)
    except (UserError, ConfigError) as exc:
        if args.verbose:
            raise
        print(f"gemmaflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
