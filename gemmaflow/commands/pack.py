"""`gemmaflow pack`: curated documents -> tokenized, mixed, packed Parquet shards + manifest (Beam options pass)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from gemmaflow.commands.common import EXIT_RUN_ERROR, UserError, add_quiet_flag


def with_seq_len(config: Any, seq_len: int | None) -> Any:
    """A pack or sft config with `--seq-len` applied (validated by the packing config itself)."""
    if seq_len is None:
        return config
    try:
        packing = dataclasses.replace(config.packing, seq_len=seq_len)
    except ValueError as exc:
        raise UserError(f"--seq-len: {exc}") from exc
    return dataclasses.replace(config, packing=packing)


def run_token_job(command: str, job: Callable[[], object]) -> int:
    """Run a pack or sft job, turning the user's mistakes into one-line errors (shared by both commands)."""
    from gemmaflow.pipeline.jobs.beam_job import UnusableRunError
    from gemmaflow.pipeline.run_output import OutputExistsError
    from gemmaflow.pipeline.stages.read import InputNotFoundError
    from gemmaflow.pipeline.stats import AccountingError
    from gemmaflow.pipeline.tokenize import TokenizerError

    try:
        job()
    except (InputNotFoundError, OutputExistsError, TokenizerError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    except AccountingError as exc:
        print(f"gemmaflow {command}: accounting check failed: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except UnusableRunError as exc:
        print(f"gemmaflow {command}: nothing usable: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    return 0


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.pipeline.jobs.pack import run_pack
    from gemmaflow.pipeline.pack_config import load_pack_config

    config = with_seq_len(load_pack_config(args.config), args.seq_len)
    return run_token_job("pack", lambda: run_pack(args.input, args.tokenizer, args.output, config, beam_args,
                                                  overwrite=args.overwrite, progress=not args.quiet))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pack",
        help="curated Parquet -> fixed-length token shards (tokenize, mixture, best-fit packing, manifest)",
        description="Tokenize curated documents with a SentencePiece model and pack them into seq_len-token "
        "Parquet shards (docs/shard-format.md). Unrecognised options are Beam pipeline options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow pack --input 'curated/data/*.parquet' --tokenizer tokenizer.model --output shards/
              gemmaflow pack --input 'curated/data/*.parquet' --tokenizer tokenizer.model --output shards/ \\
                  --config configs/pack.yaml --seq-len 2048
              gemmaflow pack --input 'curated/data/*.parquet' --tokenizer tokenizer.model --output shards/ \\
                  --direct_running_mode multi_processing --direct_num_workers 2
              gemmaflow pack --input 'gs://bucket/curated/data/*.parquet' --tokenizer gs://bucket/tokenizer.model \\
                  --output gs://bucket/shards --runner DataflowRunner --project P --region us-central1 \\
                  --temp_location gs://bucket/tmp --setup_file ./setup.py
            """
        ),
    )
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="curated Parquet (or JSONL) files; repeatable")
    parser.add_argument("--tokenizer", required=True, help="SentencePiece .model file (local or gs://)")
    parser.add_argument("--output", required=True, help="output folder for shards and manifest.json (local or gs://)")
    parser.add_argument("--config", help="YAML config; missing keys take the defaults (configs/pack.yaml)")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (overrides packing.seq_len; default 8192)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --output")
    add_quiet_flag(parser)
    parser.set_defaults(handler=run, accepts_beam_args=True)
