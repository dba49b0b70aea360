"""`gemmaflow sxs`: two models answer a prompt set, a judge prefers one answer per prompt (model/sxs.py)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from gemmaflow.commands.common import UserError

if TYPE_CHECKING:
    from gemmaflow.model.api import GemmaLM

RESULT_FILE = "sxs.json"
SAMPLES_FILE = "sxs_samples.jsonl"


def _load_model(path: str) -> GemmaLM:
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.checkpoint import CheckpointError

    try:
        lm = GemmaLM.from_pretrained(path)
    except (CheckpointError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    if lm.tokenizer is None:
        raise UserError(f"{path} has no tokenizer.model")
    return lm


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    from gemmaflow.model.checkpoint import CheckpointError
    from gemmaflow.model.eval_tasks import TaskFileError
    from gemmaflow.model.sxs import answer, load_judge, load_prompts, side_by_side, write_samples

    try:
        prompts = load_prompts(args.prompts, args.prompt_field, args.capability_field, args.limit)
    except TaskFileError as exc:
        raise UserError(str(exc)) from exc
    if args.output:
        from gemmaflow.pipeline.run_output import OutputExistsError, prepare_output

        try:
            prepare_output(args.output, args.overwrite, "sxs", owned_names=frozenset({RESULT_FILE, SAMPLES_FILE}))
        except OutputExistsError as exc:
            raise UserError(str(exc)) from exc
    try:
        judge = load_judge(args.judge, args.batch_size)
    except (ValueError, CheckpointError) as exc:
        raise UserError(str(exc)) from exc
    answers = {}
    for side, path in (("a", args.model_a), ("b", args.model_b)):
        if not args.quiet:
            print(f"model {side.upper()} ({path}) answers {len(prompts)} prompts", file=sys.stderr, flush=True)
        answers[side] = answer(_load_model(path), prompts, args.max_new_tokens, not args.no_chat, args.batch_size)
    try:
        result = side_by_side(prompts, answers["a"], answers["b"], judge)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    document = {"model_a": args.model_a, "model_b": args.model_b, "judge": args.judge, **result.to_json()}
    print(json.dumps(document, indent=2))
    if args.output:
        from gemmaflow.pipeline.run_output import write_completion_marker

        (Path(args.output) / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n")
        write_samples(Path(args.output) / SAMPLES_FILE, result)
        write_completion_marker(args.output, {"job": "sxs", "prompts": args.prompts})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sxs",
        help="side by side: two models answer the same prompts, a judge prefers one; win rate per capability",
        description=(
            "Both models answer every prompt (greedy, in Gemma's chat turn unless --no-chat); the judge sees each "
            "pair in both orders, so a judge that favours a position scores ties; A's win rate per capability "
            "(the prompt file's `capability` field) with a 95% bootstrap interval."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            judges (--judge):
              reward:MODEL_FOLDER    a reward model (gemmaflow train --set kind=reward): sigmoid(r_A - r_B)
              lm:MODEL_FOLDER        a Gemma asked "which response is better?" (its probability of A vs B)
              FILE.py:FUNCTION       your function(prompt, first, second) -> probability that first is better
              MODULE:FUNCTION        the same, importable

            examples:
              gemmaflow sxs --model-a runs/sft-new --model-b runs/sft-old --prompts prompts.jsonl \\
                  --judge lm:runs/judge --output sxs/
              gemmaflow sxs --model-a A --model-b B --prompts prompts.jsonl --judge my_judges.py:prefers_shorter
            """
        ),
    )
    parser.add_argument("--model-a", required=True, help="model folder of side A")
    parser.add_argument("--model-b", required=True, help="model folder of side B")
    parser.add_argument("--prompts", required=True, help="JSONL of {prompt, capability}")
    parser.add_argument("--judge", required=True,
                        help="reward:MODEL_FOLDER, lm:MODEL_FOLDER, FILE.py:FUNCTION or MODULE:FUNCTION")
    parser.add_argument("--prompt-field", default="prompt")
    parser.add_argument("--capability-field", default="capability")
    parser.add_argument("--output", help="folder for sxs.json and sxs_samples.jsonl (both answers, both verdicts)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier sxs run's files in --output")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--no-chat", action="store_true", help="prompts as plain text, not in the chat turn")
    parser.add_argument("--limit", type=int, help="the first N prompts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run)
