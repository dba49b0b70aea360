"""`gemmaflow classifier train|eval`: fastText classifiers on any labeled JSONL (classifiers/)."""

from __future__ import annotations

import argparse
import json
import shlex
import textwrap
from typing import Any

from gemmaflow.commands.common import UserError

# Command-line flags that override TrainConfig keys (dotted paths), in the order the card's command lists them.
_TRAIN_OVERRIDES = {
    "text_field": "text_fields", "label_field": "label_field", "split_field": "split_field",
    "valid_fraction": "valid_fraction", "max_chars": "max_chars", "positive_label": "positive_label",
    "min_recall": "min_recall", "autotune_seconds": "autotune_seconds", "epoch": "fasttext.epoch",
    "lr": "fasttext.lr", "dim": "fasttext.dim", "word_ngrams": "fasttext.word_ngrams",
    "min_count": "fasttext.min_count", "bucket": "fasttext.bucket", "seed": "fasttext.seed",
}  # fmt: skip


def _command_line(args: argparse.Namespace) -> str:
    """The train command as the card records it: every option that was given, in a fixed order."""
    words = ["gemmaflow", "classifier", "train", "--data", args.data, "--out", args.out]
    for flag in ("name", "config", *_TRAIN_OVERRIDES):
        value = getattr(args, flag)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                words += [f"--{flag.replace('_', '-')}", str(item)]
    if args.quantize:
        words.append("--quantize")
    return shlex.join(words)


def _train(args: argparse.Namespace) -> int:
    from gemmaflow.classifiers.config import load_train_config
    from gemmaflow.classifiers.data import DataError
    from gemmaflow.classifiers.metrics import format_report
    from gemmaflow.classifiers.train import TrainingError, train_classifier

    overrides: dict[str, Any] = {
        key: getattr(args, flag) for flag, key in _TRAIN_OVERRIDES.items() if getattr(args, flag) is not None
    }
    if args.quantize:
        overrides["quantize.enabled"] = True
    config = load_train_config(args.config, overrides)
    if args.quantize and not args.out.endswith(".ftz"):
        raise UserError(f"--quantize writes a .ftz model; --out {args.out} should end in .ftz")
    try:
        card = train_classifier(args.data, args.out, config, name=args.name or "", command=_command_line(args))
    except (DataError, TrainingError) as exc:
        raise UserError(str(exc)) from exc
    size, seconds, cpu = card.model_bytes / 1e6, card.training_seconds, card.training_cpu_seconds
    print(f"wrote {args.out} ({size:.2f} MB; trained in {seconds:.1f} s, {cpu:.1f} CPU s) and its card")
    print(f"split: {card.split['train_rows']} train / {card.split['valid_rows']} validation rows")
    print(format_report(card.metrics))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gemmaflow.classifiers.data import DataError
    from gemmaflow.classifiers.evaluate import EvalRequest, evaluate_model
    from gemmaflow.classifiers.metrics import format_report
    from gemmaflow.classifiers.model import ModelLoadError

    request = EvalRequest(
        model=args.model, data=args.data, text_fields=tuple(args.text_field or ()), label_field=args.label_field or "",
        split=args.split, split_field=args.split_field or "", positive_label=args.positive_label or "",
        threshold=args.threshold,
    )  # fmt: skip
    try:
        metrics = evaluate_model(request)
    except (DataError, ModelLoadError) as exc:
        raise UserError(str(exc)) from exc
    print(json.dumps(metrics, indent=2) if args.json else format_report(metrics))
    return 0


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    return args.classifier_handler(args)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "classifier",
        help="train and evaluate fastText classifiers (domain, quality, safety, your own labels)",
        description="Train a fastText classifier on labeled JSONL and write its model card, or evaluate one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow classifier train --data labeled.jsonl --label-field label --text-field text \\
                  --split-field source --out quality.ftz --quantize --positive-label good --min-recall 0.98
              gemmaflow classifier train --data sft.jsonl --text-field instruction --text-field response \\
                  --label-field toxic --out safety.bin
              gemmaflow classifier eval --model quality.ftz --data labeled.jsonl --split valid
              gemmaflow classifier eval --model quality.ftz --data other.jsonl --json
            """
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train", help="train a model and write it with its card (<out stem>.json)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  gemmaflow classifier train --data d.jsonl --label-field label --out m.ftz --quantize",
    )  # fmt: skip
    train.add_argument("--data", required=True, help="labeled JSONL (.jsonl, .gz, .zst), one object per line")
    train.add_argument("--out", required=True, help="model file to write (.bin, or .ftz with --quantize)")
    train.add_argument("--name", help="model name in the card (default: the --out file stem)")
    train.add_argument("--config", help="YAML TrainConfig (classifiers/config.py); flags override it")
    train.add_argument("--text-field", action="append", help="field(s) holding the text; repeatable (default text)")
    train.add_argument("--label-field", help="field holding the label (default label)")
    train.add_argument(
        "--split-field", help="group key of the train/validation split, e.g. a source (default: text hash)"
    )
    train.add_argument("--valid-fraction", type=float, help="share of groups held out for validation (default 0.2)")
    train.add_argument("--max-chars", type=int, help="characters of each text the model reads (default 1500)")
    train.add_argument("--positive-label", help="binary models: the label scored and thresholded (default: rarer)")
    train.add_argument("--min-recall", type=float, help="binary: highest threshold keeping this share of positives")
    train.add_argument(
        "--autotune-seconds", type=int, help="fastText auto-tuning on the validation split (default off)"
    )
    train.add_argument("--quantize", action="store_true", help="product-quantise to a small .ftz")
    for flag, kind in (("epoch", int), ("lr", float), ("dim", int), ("word-ngrams", int), ("min-count", int),
                       ("bucket", int), ("seed", int)):  # fmt: skip
        train.add_argument(f"--{flag}", type=kind, help=f"fastText {flag}")
    train.set_defaults(classifier_handler=_train)

    evaluate = actions.add_parser(
        "eval", help="print a model's metrics and confusion matrix on labeled JSONL",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  gemmaflow classifier eval --model quality.ftz --data d.jsonl --split valid",
    )  # fmt: skip
    evaluate.add_argument("--model", required=True, help="fastText model (.bin or .ftz); its card is read if present")
    evaluate.add_argument("--data", required=True, help="labeled JSONL (.jsonl, .gz, .zst)")
    evaluate.add_argument("--text-field", action="append", help="text field(s) (default: the card's)")
    evaluate.add_argument("--label-field", help="label field (default: the card's)")
    evaluate.add_argument(
        "--split",
        choices=("all", "train", "valid"),
        default="all",
        help="score every row, or the card's train/validation split of this file (default all)",
    )
    evaluate.add_argument("--split-field", help="group key of the split (default: the card's)")
    evaluate.add_argument("--positive-label", help="binary models: label for ROC-AUC and threshold (default: card's)")
    evaluate.add_argument("--threshold", type=float, help="threshold on P(positive label) (default: the card's)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(classifier_handler=_eval)
    parser.set_defaults(handler=run)
