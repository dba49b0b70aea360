"""`gemmaflow train`: train the bundled JAX Gemma on packed shards (model/train.py)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from gemmaflow.commands.common import EXIT_RUN_ERROR, UserError, set_overrides


def _join_processes(args: argparse.Namespace) -> None:
    """`jax.distributed.initialize` with what the flags or JAX_* variables give; what neither gives is left to
    JAX's cluster detection (TPU pods, SLURM, Open MPI). JAX reads JAX_COORDINATOR_ADDRESS itself but not the
    process count and id, hence the variables here. CPU processes then reduce over Gloo (JAX's default)."""
    import jax

    try:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=_flag_or_env(args.num_processes, "JAX_NUM_PROCESSES"),
                                   process_id=_flag_or_env(args.process_id, "JAX_PROCESS_ID"),
                                   heartbeat_timeout_seconds=args.peer_timeout)
    except ValueError as exc:  # what is missing or out of range, e.g. "Number of processes must be defined."
        raise UserError(f"--distributed: {exc}") from exc


def _flag_or_env(value: int | None, variable: str) -> int | None:
    if value is not None or not os.environ.get(variable):
        return value
    try:
        return int(os.environ[variable])
    except ValueError:
        raise UserError(f"{variable} must be an integer, got {os.environ[variable]!r}") from None


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    from gemmaflow.model.checkpoint import CheckpointError
    from gemmaflow.model.shards import ShardFormatError
    from gemmaflow.model.train import ResumeError, TrainingDiverged, train
    from gemmaflow.model.train_config import load_train_config

    config = load_train_config(args.config, set_overrides(args.set or []))
    if args.distributed:
        _join_processes(args)
    elif args.coordinator or args.num_processes is not None or args.process_id is not None:
        raise UserError("--coordinator, --num-processes and --process-id need --distributed")
    if not Path(args.shards, "manifest.json").is_file():
        raise UserError(f"{args.shards} has no manifest.json: not a shard folder (see docs/shard-format.md)")
    try:
        train(args.shards, config, args.out, resume=args.resume)
    except (ShardFormatError, ResumeError, CheckpointError) as exc:
        raise UserError(str(exc)) from exc
    except TrainingDiverged as exc:
        print(f"gemmaflow train: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train the JAX Gemma: pretrain / SFT on packed shards; reward model, REINFORCE or DPO on pairs",
        description="Train the bundled JAX Gemma on a `gemmaflow pack` / `gemmaflow sft` shard folder, or with "
                    "kind reward, reinforce or dpo on a `gemmaflow prefs` folder. Writes OUT/checkpoints/<step>/, "
                    "OUT/metrics.jsonl and the final model in OUT/final/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow train --shards runs/shards --config configs/train-tiny.yaml --out runs/train
              gemmaflow train --shards runs/shards --config configs/train-tiny.yaml --out runs/train --resume
              gemmaflow train --shards runs/sft --config configs/train-tiny.yaml --out runs/lora \\
                  --set model.init_from=runs/train --set lora.enabled=true --set kind=sft
              XLA_FLAGS=--xla_force_host_platform_device_count=4 gemmaflow train --shards runs/shards \\
                  --config configs/train-tiny.yaml --set mesh.fsdp=2     # 2 data x 2 FSDP on CPU

            on preference shards (gemmaflow prefs):
              gemmaflow train --shards runs/prefs --config configs/train-tiny.yaml --out runs/reward \\
                  --set kind=reward --set model.init_from=runs/lora        # Bradley-Terry reward model
              gemmaflow train --shards runs/prefs --config configs/train-tiny.yaml --out runs/rl \\
                  --set kind=reinforce --set model.init_from=runs/lora --set reinforce.reward_model=runs/reward
              gemmaflow train --shards runs/prefs --config configs/train-tiny.yaml --out runs/dpo \\
                  --set kind=dpo --set model.init_from=runs/lora
            """
        ),
    )
    parser.add_argument("--shards", required=True, help="shard folder holding manifest.json")
    parser.add_argument("--config", help="YAML TrainConfig (model/train_config.py); missing keys take the defaults")
    parser.add_argument("--out", default="runs/train", help="output folder (default: runs/train)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest whole checkpoint in --out (exactly, bit for bit)")
    parser.add_argument("--distributed", action="store_true",
                        help="multi-host: call jax.distributed.initialize() first (TPU pods need no more; "
                             "elsewhere give the next three flags or their environment variables)")
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="with --distributed: process 0's address and a free port "
                             "(default: $JAX_COORDINATOR_ADDRESS)")
    parser.add_argument("--num-processes", type=int, metavar="N",
                        help="with --distributed: how many processes train together (default: $JAX_NUM_PROCESSES)")
    parser.add_argument("--process-id", type=int, metavar="I",
                        help="with --distributed: this process, 0 to N-1 (default: $JAX_PROCESS_ID)")
    parser.add_argument("--peer-timeout", type=int, default=100, metavar="SECONDS",
                        help="with --distributed: a process silent this long counts as dead and every other one "
                             "stops (default: 100)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. --set steps=50 --set optimizer.learning_rate=1e-3")
    parser.set_defaults(handler=run)
