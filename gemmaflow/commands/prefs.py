"""`gemmaflow prefs`: preference pairs -> two Gemma chat sequences per pair in pair shards (Beam options pass)."""

from __future__ import annotations

import argparse
import textwrap

from gemmaflow.commands.common import add_quiet_flag
from gemmaflow.commands.pack import run_token_job, with_seq_len


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.pipeline.jobs.prefs import run_prefs
    from gemmaflow.pipeline.pack_config import load_prefs_config

    config = with_seq_len(load_prefs_config(args.config), args.seq_len)
    return run_token_job("prefs", lambda: run_prefs(args.input, args.tokenizer, args.output, config, beam_args,
                                                    overwrite=args.overwrite, progress=not args.quiet))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "prefs",
        help="preference pairs (prompt/chosen/rejected, HH-RLHF dialogues, chat messages) -> pair shards",
        description="Read preference pairs in the common shapes: {prompt, chosen, rejected} strings "
        "(UltraFeedback-binarized), {chosen, rejected} dialogues with Human:/Assistant: turns sharing their "
        "prompt (HH-RLHF), or {chosen, rejected} chat-message lists. Clean them with the curate stages (PII on "
        "by default), drop pairs whose answers are equal or whose prompts differ (rejected/, with the reason), "
        "send malformed records to dead_letter/, and write both sequences of each pair with the loss mask on "
        "the final answer (docs/shard-format.md, kind preference). Unrecognised options are Beam options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow prefs --input hh-rlhf/train.jsonl.gz --tokenizer tokenizer.model --output prefs-shards/
              gemmaflow prefs --input 'ultrafeedback/*.jsonl' --tokenizer tokenizer.model --output prefs/ \\
                  --seq-len 2048 --config configs/prefs.yaml
            """
        ),
    )
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="JSONL files (.jsonl, .gz, .zst); repeatable")
    parser.add_argument("--tokenizer", required=True,
                        help="SentencePiece .model with <start_of_turn> and <end_of_turn> pieces (local or gs://)")
    parser.add_argument("--output", required=True, help="output folder for shards and manifest.json (local or gs://)")
    parser.add_argument("--config", help="YAML config; missing keys take the defaults (configs/prefs.yaml)")
    parser.add_argument("--seq-len", type=int, help="longest sequence, prompt and answer (default 8192)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --output")
    add_quiet_flag(parser)
    parser.set_defaults(handler=run, accepts_beam_args=True)
