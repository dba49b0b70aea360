"""What every subcommand shares: the user-error type, exit codes, `--set` overrides and bundled sample paths."""

from __future__ import annotations

import argparse
from importlib import resources

import yaml

EXIT_USER_ERROR = 2
EXIT_RUN_ERROR = 1


class UserError(Exception):
    """An error the user can fix (printed as one line, exit code 2)."""


def set_overrides(pairs: list[str]) -> dict[str, object]:
    """`--set optimizer.learning_rate=1e-3` -> {"optimizer.learning_rate": 0.001} (values parsed as YAML)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def sample_path(name: str) -> str:
    """Path of a file bundled in gemmaflow/sample (the demo corpus and friends)."""
    return str(resources.files("gemmaflow.sample").joinpath(name))


def add_quiet_flag(parser: argparse.ArgumentParser) -> None:
    """`--quiet`: no live progress while a Beam job runs (shared by curate, pack and sft)."""
    parser.add_argument("--quiet", action="store_true",
                        help="no live progress on stderr (per-stage documents in, kept, dropped and rate)")
