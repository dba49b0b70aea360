"""`gemmaflow generate`: continue prompts with a trained (or Hugging Face) Gemma (model/api.py)."""

from __future__ import annotations

import argparse
import textwrap

from gemmaflow.commands.common import UserError
from gemmaflow.core.chat import generation_prompt


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.checkpoint import CheckpointError
    from gemmaflow.model.sampling import BeamSampler, ContrastiveSampler, Sampler, SamplerKind

    if not args.prompt and not args.token_ids:
        raise UserError("give at least one --prompt or --token-ids")
    try:
        lm = GemmaLM.from_pretrained(args.model, dtype=args.dtype, tokenizer=args.tokenizer)
    except (CheckpointError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    try:
        if args.sampler == "beam":
            sampler = BeamSampler(num_beams=args.num_beams)
        elif args.sampler == "contrastive":
            sampler = ContrastiveSampler(top_k=args.top_k, alpha=args.penalty_alpha)
        else:
            sampler = Sampler(SamplerKind(args.sampler), temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    prompts: list = []
    if args.prompt:
        if lm.tokenizer is None:
            raise UserError(f"{args.model} has no tokenizer.model: pass --tokenizer, or use --token-ids")
        prompts = [generation_prompt(p) if args.chat else p for p in args.prompt]
    else:
        try:
            prompts = [[int(t) for t in ids.split(",")] for ids in args.token_ids]
        except ValueError:
            raise UserError("--token-ids expects comma-separated integers, e.g. 2,651,6037") from None
    try:
        outputs = lm.generate(prompts, max_length=args.max_length, sampler=sampler, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    for output in outputs:
        print(output if isinstance(output, str) else ",".join(map(str, output)))
        if len(outputs) > 1:
            print("---")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="continue prompts with a trained Gemma (greedy, top-k, top-p, random, beam search)",
        description="Load a model (a `gemmaflow train` output, a saved GemmaLM folder or a Hugging Face Gemma "
                    "folder) and print each prompt with its continuation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow generate --model runs/train --prompt "The license grants"
              gemmaflow generate --model runs/train --prompt "def main(" --sampler top_p --top-p 0.9 --seed 3
              gemmaflow generate --model runs/lora --chat --prompt "Name three primary colours."
              gemmaflow generate --model hf/gemma-2b --tokenizer hf/gemma-2b/tokenizer.model --prompt "Hi" \\
                  --sampler beam --num-beams 4
              gemmaflow generate --model runs/train --token-ids 2,651,6037 --max-length 16
            """
        ),
    )
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--prompt", action="append", help="prompt text; repeatable (a batch)")
    parser.add_argument("--token-ids", action="append", help="a prompt as comma-separated token ids; repeatable")
    parser.add_argument("--tokenizer", help="SentencePiece .model (default: the model folder's tokenizer.model)")
    parser.add_argument("--chat", action="store_true", help="wrap each prompt in Gemma's chat turn template")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per row, prompt included (default 64)")
    parser.add_argument("--sampler", default="greedy", choices=["greedy", "random", "top_k", "top_p", "beam",
                                                                         "contrastive"])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=50, help="top_k: tokens kept; contrastive: candidates (e.g. 4)")
    parser.add_argument("--penalty-alpha", type=float, default=0.6,
                        help="contrastive: weight of the degeneration penalty (0 is greedy)")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="random seed of the random samplers")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="weights and compute dtype (default float32)")
    parser.set_defaults(handler=run)
