"""The `gemmaflow` command: parses arguments, validates configuration, calls each room's public function.

It is the only module that knows every room. User errors (bad config key, missing input, existing
output) end with one clear line and a non-zero exit code; `--verbose` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from gemmaflow.commands import (
    ablate,
    classifier,
    curate,
    demo,
    generate,
    pack,
    prefs,
    report,
    sft,
    sxs,
    tokenizer,
    train,
)
from gemmaflow.commands import eval as evaluate
from gemmaflow.commands.common import EXIT_USER_ERROR, UserError
from gemmaflow.core.configio import ConfigError

# Each subcommand module exposes `register(subparsers)`; the order here is the order in `--help`.
SUBCOMMANDS = (demo, curate, classifier, tokenizer, pack, sft, prefs, train, generate, evaluate, sxs, ablate, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemmaflow",
        description="Raw text to training-ready data for Gemma-style models, and a JAX Gemma trainer.",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # presidio imports `transformers` when installed, and transformers then imports TensorFlow when
    # that is installed too: seconds per process (Beam's workers included) for nothing gemmaflow uses.
    os.environ.setdefault("USE_TF", "0")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `gemmaflow curate ... -- --runner X` separates Beam's options; left in, the `--` would make
    # Beam's own parser ignore every option after it, and the run would quietly go local.
    extra = [arg for arg in extra if arg != "--"]
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
