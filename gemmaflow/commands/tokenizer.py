"""`gemmaflow tokenizer train`: a SentencePiece vocabulary with Gemma's conventions from curated Parquet."""

from __future__ import annotations

import argparse
import sys
import textwrap

from gemmaflow.commands.common import EXIT_RUN_ERROR, UserError


def run_train(args: argparse.Namespace, extra: list[str]) -> int:
    from gemmaflow.tokenizer_train.config import load_tokenizer_config
    from gemmaflow.tokenizer_train.job import OutputExistsError, train_tokenizer
    from gemmaflow.tokenizer_train.report import format_report
    from gemmaflow.tokenizer_train.sample import SampleError
    from gemmaflow.tokenizer_train.train import TrainingError, VocabularyTooLargeError

    config = load_tokenizer_config(args.config, args.vocab_size)
    try:
        card = train_tokenizer(args.input, args.out, config, overwrite=args.overwrite, keep_text_in=args.keep_text)
    except (SampleError, VocabularyTooLargeError, OutputExistsError) as exc:
        raise UserError(str(exc)) from exc
    except TrainingError as exc:
        print(f"gemmaflow tokenizer train: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    sample = card["sample"]
    print(
        f"sample: {sample['bytes_taken'] / 1e6:.1f} MB of {sample['bytes_scanned'] / 1e6:.1f} MB, "
        f"{sample['lines']:,} lines ({sample['long_lines_split']:,} long lines split), "
        f"{sample['heldout']['documents']:,} held-out documents"
    )
    print(format_report(card["report"]))
    print(
        f"wrote {args.out}/tokenizer.model (sha256 {card['model']['sha256'][:16]}...), tokenizer.vocab, "
        "tokenizer_card.json"
    )
    if card["report"]["round_trip"]["rate"] not in (None, 1.0):
        print("gemmaflow tokenizer train: round trip is not exact on every held-out document", file=sys.stderr)
        return EXIT_RUN_ERROR
    return 0


_EXAMPLES = textwrap.dedent(
    """\
    examples:
      gemmaflow curate --output runs/sample
      gemmaflow tokenizer train --input runs/sample --out runs/tokenizer \\
          --config configs/tokenizer-demo.yaml                 # the bundled sample: a small vocabulary
      gemmaflow tokenizer train --input curated/ --out tok/ --config configs/tokenizer.yaml
      gemmaflow tokenizer train --input gs://bucket/curated --out gs://bucket/tokenizer --vocab-size 32000
    """
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tokenizer",
        help="train and validate a SentencePiece tokenizer from curated Parquet",
        description="SentencePiece tokenizers with Gemma's conventions. Actions: train.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EXAMPLES,
    )
    actions = parser.add_subparsers(dest="tokenizer_command", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="curated Parquet -> tokenizer.model, tokenizer.vocab, tokenizer_card.json",
        description=(
            "Sample curated Parquet to a byte budget with per-domain weights, train a SentencePiece BPE "
            "vocabulary with Gemma's settings and special-token ids, and validate it on held-out documents."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EXAMPLES,
    )
    train.add_argument("--input", required=True, help="curated output folder (its data/part-*.parquet), or a glob")
    train.add_argument("--out", required=True, help="output folder (local or gs://)")
    train.add_argument("--config", help="YAML config; missing keys take the defaults (configs/tokenizer.yaml)")
    train.add_argument("--vocab-size", type=int, help="overrides trainer.vocab_size")
    train.add_argument("--overwrite", action="store_true", help="replace a tokenizer already in --out")
    train.add_argument(
        "--keep-text",
        metavar="DIR",
        help="write the sampled training text to DIR/train.txt and keep it (default: a temporary file, removed)",
    )
    train.set_defaults(handler=run_train)
