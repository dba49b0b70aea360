"""The packed-shard format's names, version and manifest: what writers, the trainer and the report share.

docs/shard-format.md is the human description of the format; this module is its code. The
writers (`gemmaflow pack` and `gemmaflow sft`, pipeline/shards_write.py) stamp `FORMAT` and
`FORMAT_VERSION` and lay the rows out in `COLUMN_TYPES`; every reader of manifest.json (the
trainer's model/shards.py, the run report) parses it with `Manifest.load`, so a manifest is
accepted or refused the same way everywhere. Reading shard rows stays in model/shards.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemmaflow.core.chat import BOS_ID, EOS_ID, PAD_ID
from gemmaflow.core.run_markers import refusal, unfinished_run

FORMAT = "gemmaflow-shards"
FORMAT_VERSION = 1  # what the writers write
READABLE_VERSIONS = (FORMAT_VERSION,)  # what the readers accept
MANIFEST_FILE = "manifest.json"
KINDS = ("pretrain", "sft", "preference")
DEFAULT_ROW_GROUP_SIZE = 64
# Each row's columns, in file order, and the Arrow type of their list elements (docs/shard-format.md,
# "Rows"). Arrow type names keep pyarrow out of this module.
COLUMN_TYPES = {"tokens": "int32", "segment_ids": "int32", "positions": "int32", "loss_mask": "uint8"}
COLUMNS = tuple(COLUMN_TYPES)
# A preference shard's row is one pair, unpadded: each whole sequence (prompt and answer) and its loss mask
# (1 on the final answer), for the chosen and the rejected answer (docs/shard-format.md, "Preference rows").
PAIR_COLUMN_TYPES = {"chosen_tokens": "int32", "chosen_loss_mask": "uint8", "rejected_tokens": "int32",
                     "rejected_loss_mask": "uint8"}


class ShardFormatError(ValueError):
    """The folder does not hold valid shards (the message names the file and what is wrong)."""


@dataclass(frozen=True)
class ShardInfo:
    """One shard file as the manifest lists it."""

    path: str  # relative to the folder holding manifest.json
    sequences: int
    sha256: str


@dataclass(frozen=True)
class SplitTotals:
    """A split's counts (`tokens` includes padding; `loss_tokens` is absent from older manifests)."""

    sequences: int
    tokens: int
    non_pad_tokens: int
    loss_tokens: int | None
    tokens_per_domain: dict[str, int]  # non-padding tokens per domain, or per SFT category


@dataclass(frozen=True)
class Manifest:
    """manifest.json, validated: the fields the trainer and the report rely on.

    `splits` lists each split's shards in order (empty for a split with no sequences), which is what
    a reader opens; `split_totals` holds the counts the manifest reports for it.
    """

    path: Path
    kind: str
    seq_len: int
    row_group_size: int
    vocab_size: int
    pad_id: int
    eos_id: int
    bos_id: int
    tokenizer_sha256: str
    splits: dict[str, tuple[ShardInfo, ...]]
    split_totals: dict[str, SplitTotals]
    padding_fraction: float
    documents_split_fraction: float | None
    mixture_weights: dict[str, float]
    config_fingerprint: str

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        """The manifest of the shard folder `directory`; raises ShardFormatError naming the file."""
        path = Path(directory) / MANIFEST_FILE
        run = unfinished_run(str(directory))
        if run is not None:
            raise ShardFormatError(refusal(str(directory), run))
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ShardFormatError(f"{path} not found: not a shard folder") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ShardFormatError(f"{path} is not valid JSON: {exc}") from None
        return cls.parse(document, path)

    @classmethod
    def parse(cls, document: Any, path: Path) -> Manifest:
        """Check `document` against the format; `path` only names the file in error messages."""

        def require(condition: bool, message: str) -> None:
            if not condition:
                raise ShardFormatError(f"{path}: {message}")

        require(isinstance(document, dict) and document.get("format") == FORMAT,
                f"not a gemmaflow shard manifest ('format' is not {FORMAT!r})")
        require(document.get("format_version") in READABLE_VERSIONS,
                f"format {FORMAT!r} version {document.get('format_version')!r}; this reader knows versions "
                f"{list(READABLE_VERSIONS)}")
        tokenizer = document.get("tokenizer") or {}
        for name, value in (("seq_len", document.get("seq_len")), ("tokenizer.vocab_size", tokenizer.get("vocab_size")),
                            ("row_group_size", document.get("row_group_size", DEFAULT_ROW_GROUP_SIZE))):
            require(_is_count(value) and value > 0, f"{name} must be a positive integer, got {value!r}")
        kind = document.get("kind", "pretrain")
        require(kind in KINDS, f"unknown kind {kind!r}; expected one of {list(KINDS)}")
        require(_is_number(document.get("padding_fraction")), "'padding_fraction' must be a number")
        splits_raw = document.get("splits")
        require(isinstance(splits_raw, dict), "'splits' must be an object")
        splits: dict[str, tuple[ShardInfo, ...]] = {}
        totals: dict[str, SplitTotals] = {}
        for name, block in splits_raw.items():
            require(isinstance(block, dict), f"splits.{name} must be an object")
            for key in ("sequences", "tokens", "non_pad_tokens"):
                require(_is_count(block.get(key)), f"splits.{name}.{key} must be a non-negative integer")
            per_domain = block.get("tokens_per_domain", {})
            require(isinstance(per_domain, dict) and all(_is_count(v) for v in per_domain.values()),
                    f"splits.{name}.tokens_per_domain must map names to token counts")
            try:
                splits[name] = tuple(ShardInfo(s["path"], int(s["sequences"]), s["sha256"]) for s in block["shards"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ShardFormatError(f"{path}: malformed shard entry in splits.{name} ({exc!r})") from None
            loss_tokens = block.get("loss_tokens")
            totals[name] = SplitTotals(block["sequences"], block["tokens"], block["non_pad_tokens"],
                                       loss_tokens if _is_count(loss_tokens) else None, dict(per_domain))
        mixture = document.get("mixture") or {}
        weights = mixture.get("weights", {}) if isinstance(mixture, dict) else {}
        split_fraction = document.get("documents_split_fraction")
        return cls(
            path=path,
            kind=kind,
            seq_len=document["seq_len"],
            row_group_size=document.get("row_group_size", DEFAULT_ROW_GROUP_SIZE),
            vocab_size=tokenizer["vocab_size"],
            pad_id=int(tokenizer.get("pad_id", PAD_ID)),
            eos_id=int(tokenizer.get("eos_id", EOS_ID)),
            bos_id=int(tokenizer.get("bos_id", BOS_ID)),
            tokenizer_sha256=str(tokenizer.get("sha256", "")),
            splits=splits,
            split_totals=totals,
            padding_fraction=float(document["padding_fraction"]),
            documents_split_fraction=float(split_fraction) if _is_number(split_fraction) else None,
            mixture_weights={str(k): float(v) for k, v in weights.items() if _is_number(v)},
            config_fingerprint=str(document.get("config_fingerprint", "")),
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
