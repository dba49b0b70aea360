"""`gemmaflow eval`: score a model on benchmark-shaped task files (model/evaluate.py, model/eval_tasks.py)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import replace
from importlib import resources
from pathlib import Path

from gemmaflow.commands.common import UserError

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
BUNDLED = "sample"  # --tasks sample: the task files shipped in gemmaflow/sample/tasks


def task_paths(values: list[str]) -> list[str]:
    """--tasks values (repeatable, comma-separated) as task files; `sample` is the bundled set."""
    paths: list[str] = []
    for value in values:
        for part in filter(None, (p.strip() for p in value.split(","))):
            if part == BUNDLED:
                folder = resources.files("gemmaflow.sample").joinpath("tasks")
                paths.extend(sorted(str(f) for f in folder.iterdir() if f.name.endswith(".yaml")))
            else:
                paths.append(part)
    if not paths:
        raise UserError("--tasks names no task file")
    return paths


def load_specs(args: argparse.Namespace) -> list:
    from gemmaflow.core.configio import ConfigError
    from gemmaflow.model.eval_tasks import TaskFileError, load_task_spec

    specs = []
    for path in task_paths(args.tasks):
        if "://" not in path and not Path(path).is_file():
            raise UserError(f"task file not found: {path}")
        try:
            spec = load_task_spec(path)
        except (ConfigError, TaskFileError) as exc:
            raise UserError(f"{path}: {exc}") from exc
        specs.append(replace(spec, limit=args.limit or spec.limit))
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"two tasks share the name {repeated[0]!r}; names key results.json")
    return specs


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.checkpoint import CheckpointError
    from gemmaflow.model.eval_tasks import TaskFileError
    from gemmaflow.model.evaluate import evaluate

    specs = load_specs(args)
    if args.output:
        from gemmaflow.pipeline.run_output import OutputExistsError, prepare_output

        try:
            prepare_output(args.output, args.overwrite, "eval",
                           owned_names=frozenset({RESULTS_FILE, SAMPLES_FILE}))
        except OutputExistsError as exc:
            raise UserError(str(exc)) from exc
    try:
        lm = GemmaLM.from_pretrained(args.model, dtype=args.dtype, tokenizer=args.tokenizer)
    except (CheckpointError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    if lm.tokenizer is None:
        raise UserError(f"{args.model} has no tokenizer.model: pass --tokenizer")
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        results, stats = evaluate(lm, specs, batch_size=args.batch_size, progress=progress)
    except (TaskFileError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    table = {result.name: {"kind": result.kind, **result.metrics} for result in results}
    print(json.dumps(table, indent=2))
    if args.output:
        from gemmaflow.pipeline.run_output import write_completion_marker

        output = Path(args.output)
        (output / RESULTS_FILE).write_text(json.dumps(table, indent=2) + "\n")
        if args.log_samples:
            with (output / SAMPLES_FILE).open("w", encoding="utf-8") as handle:
                for result in results:
                    for sample in result.samples:
                        handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
        write_completion_marker(args.output, {
            "job": "eval", "model": str(args.model), "tasks": [spec.path for spec in specs],
            "scored_tokens": stats.tokens, "scoring_seconds": round(stats.seconds, 3),
        })
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval",
        help="score a model on benchmark task files (multiple choice, generation, bits per byte)",
        description=(
            "Evaluate a model (a `gemmaflow train` output, a saved GemmaLM folder or a Hugging Face Gemma folder) "
            "on task files: JSONL benchmark files mapped by a small YAML (name, path, kind, and the fields "
            "holding context, choices, label or answer), scored as EleutherAI's lm-evaluation-harness scores "
            "them. Prints the results as JSON; --output also writes results.json (and samples.jsonl)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow eval --model runs/demo/pretrain --tasks sample              # the bundled tiny tasks
              gemmaflow eval --model runs/train --tasks hellaswag.yaml,arc.yaml --output evals/ --log-samples
              gemmaflow eval --model hf/gemma-2b --tasks heldout.jsonl --limit 200

            a task YAML (keys: model/eval_tasks.py TaskSpec):
              name: hellaswag
              path: hellaswag_val.jsonl      # relative to the YAML, or gs://...
              kind: multiple_choice          # or generate, perplexity
              context: ctx
              choices: endings
              label: label
              num_fewshot: 0
            """
        ),
    )
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--tasks", action="append", required=True,
                        help="task YAML or JSONL files, comma-separated or repeated; `sample` = the bundled tasks")
    parser.add_argument("--tokenizer", help="SentencePiece .model (default: the model folder's tokenizer.model)")
    parser.add_argument("--output", help="folder for results.json (and samples.jsonl with --log-samples)")
    parser.add_argument("--log-samples", action="store_true", help="write samples.jsonl: one line per item")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier eval's files in --output")
    parser.add_argument("--limit", type=int, help="the first N items of every task")
    parser.add_argument("--batch-size", type=int, default=16, help="rows scored per forward pass (default 16)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="weights and compute dtype (default float32)")
    parser.add_argument("--quiet", action="store_true", help="no per-task progress lines on stderr")
    parser.set_defaults(handler=run)
