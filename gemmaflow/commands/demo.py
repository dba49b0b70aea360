"""`gemmaflow demo`: the whole system on the bundled sample, into one run folder (gemmaflow/demo.py)."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from gemmaflow.commands.common import UserError


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.demo import DemoInputError, load_demo_config, run_demo

    config = load_demo_config(args.config)
    overrides = {"beam_args": tuple(beam_args)}
    if args.tiny:
        overrides.update(pretrain_steps=args.tiny, sft_steps=max(1, args.tiny // 2), ablation_steps=args.tiny,
                         rlhf_steps=args.tiny, max_length=24)
    config = dataclasses.replace(config, **overrides)
    try:
        run_demo(args.output, config, overwrite=args.overwrite)
    except (FileExistsError, DemoInputError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="the whole system on the bundled sample: curate, tokenizer, pack, pretrain, eval, SFT, RLHF, ablation, "
             "report",
        description="Run every gemmaflow job on the bundled sample corpus into one folder, with a report.html. "
                    "Unrecognised options are Beam pipeline options for the curate, pack and sft steps.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow demo --output runs/demo                 # about 5 minutes on 2 cores
              gemmaflow demo --output runs/demo --overwrite --config my-demo.yaml
              gemmaflow demo --output runs/quick --tiny 20      # 20 pretraining steps: a smoke test
            """
        ),
    )
    parser.add_argument("--output", default="runs/demo", help="run folder (default: runs/demo)")
    parser.add_argument("--config", help="demo YAML (configs/demo.yaml): which config each job uses")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --output")
    parser.add_argument("--tiny", type=int, metavar="STEPS",
                        help="train for only STEPS pretraining steps (and STEPS/2 SFT steps): a smoke test")
    parser.set_defaults(handler=run, accepts_beam_args=True)
