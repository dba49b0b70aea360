"""`gemmaflow sft`: dolly/chat JSONL -> Gemma chat turns packed with loss masks (Beam options pass through)."""

from __future__ import annotations

import argparse
import textwrap

from gemmaflow.commands.common import add_quiet_flag, sample_path, set_overrides
from gemmaflow.commands.pack import run_token_job, with_seq_len


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.pipeline.jobs.sft import run_sft
    from gemmaflow.pipeline.pack_config import load_sft_config

    config = with_seq_len(load_sft_config(args.config, set_overrides(args.set or [])), args.seq_len)
    inputs = args.input or ([] if config.sources else [sample_path("sft_dolly.jsonl")])
    return run_token_job("sft", lambda: run_sft(inputs, args.tokenizer, args.output, config, beam_args,
                                                overwrite=args.overwrite, progress=not args.quiet))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sft",
        help="instruction/chat JSONL -> Gemma chat-format shards with loss on the model turns",
        description="Parse databricks-dolly-15k records ({instruction, context, response, category}) or chat "
        "records ({messages: [{role, content}]}) from one or more sources, clean them as curate cleans documents "
        "(safety classifier, exact and prompt near-dedupe across sources, benchmark decontamination, PII), mix "
        "the sources to their weights, format Gemma chat turns and pack them into shards (docs/shard-format.md) "
        "with loss_mask = 1 on the model turns. Malformed records go to OUTPUT/dead_letter with a reason, "
        "dropped ones to OUTPUT/rejected. Unrecognised options are Beam pipeline options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow sft --tokenizer tokenizer.model --output sft-shards/       # the bundled dolly sample
              gemmaflow sft --input dolly.jsonl --tokenizer tokenizer.model --output sft-shards/ --seq-len 2048
              gemmaflow sft --config my-sources.yaml --tokenizer tokenizer.model --output sft-shards/  # sources: ...
              gemmaflow sft --input 'chats/*.jsonl.zst' --tokenizer tokenizer.model --output sft-shards/ \\
                  --set pii.enabled=false --direct_running_mode multi_processing --direct_num_workers 2
            """
        ),
    )
    parser.add_argument("--input", action="append", metavar="GLOB",
                        help="JSONL files (.jsonl, .gz, .zst), read as one source of weight 1 in place of the "
                        "config's `sources`; repeatable (default: the config's sources, else the bundled dolly "
                        "sample)")
    parser.add_argument("--tokenizer", required=True,
                        help="SentencePiece .model with <start_of_turn> and <end_of_turn> pieces (local or gs://)")
    parser.add_argument("--output", required=True, help="output folder for shards and manifest.json (local or gs://)")
    parser.add_argument("--config", help="YAML config; missing keys take the defaults (configs/sft.yaml)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. --set pii.enabled=false --set token_budget=2000000")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (overrides packing.seq_len; default 8192)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --output")
    add_quiet_flag(parser)
    parser.set_defaults(handler=run, accepts_beam_args=True)
