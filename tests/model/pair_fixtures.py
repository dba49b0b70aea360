"""Preference shards written for tests straight from docs/shard-format.md ("Preference rows"), and a
planted rule a tiny model can learn in seconds.

The rule: a prompt `BOS <start_of_turn> a b c <end_of_turn> <start_of_turn> MODEL` asks for the answer
token `ANSWER + a`; the chosen answer follows it, the rejected one names another token. Whether an
answer follows the rule is checkable from its tokens alone (`follows_rule`), so tests can count the
share of sampled answers that do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gemmaflow.core.chat import BOS_ID, END_OF_TURN_ID, START_OF_TURN_ID
from gemmaflow.core.shard_format import FORMAT, FORMAT_VERSION, MANIFEST_FILE, PAIR_COLUMN_TYPES

VOCAB = 128  # holds Gemma's <start_of_turn> 106 and <end_of_turn> 107
OPTIONS = 6  # a in 0..5
PROMPT_TOKEN = 10  # prompt tokens are 10 + x
MODEL = 30  # stands for the "model\n" header
ANSWER = 40  # answer tokens are 40 + y

Pair = tuple[list[int], list[int], list[int], list[int]]  # chosen tokens, mask, rejected tokens, mask


def prompt_tokens(a: int, b: int, c: int) -> list[int]:
    return [BOS_ID, START_OF_TURN_ID, PROMPT_TOKEN + a, PROMPT_TOKEN + b, PROMPT_TOKEN + c, END_OF_TURN_ID,
            START_OF_TURN_ID, MODEL]


def _side(prompt: list[int], answer: int) -> tuple[list[int], list[int]]:
    return [*prompt, ANSWER + answer, END_OF_TURN_ID], [0] * len(prompt) + [1, 1]


def rule_pairs(count: int, seed: int) -> list[Pair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        a, b, c = (int(x) for x in rng.integers(0, OPTIONS, 3))
        wrong = int((a + rng.integers(1, OPTIONS)) % OPTIONS)
        prompt = prompt_tokens(a, b, c)
        pairs.append((*_side(prompt, a), *_side(prompt, wrong)))
    return pairs


def follows_rule(prompt: list[int], answer: list[int]) -> bool:
    """The answer is exactly the requested token, then <end_of_turn>."""
    return answer[:2] == [ANSWER + prompt[2] - PROMPT_TOKEN, END_OF_TURN_ID]


def write_pair_folder(out: Path, splits: dict[str, list[Pair]], *, seq_len: int = 32, row_group_size: int = 8,
                      vocab_size: int = VOCAB) -> Path:
    """A preference shard folder as `gemmaflow prefs` writes it: one shard per split and manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    described = {}
    for split, pairs in splits.items():
        if not pairs:  # as the writer leaves an empty split: listed, with no shard
            described[split] = {"sequences": 0, "tokens": 0, "non_pad_tokens": 0, "loss_tokens": 0, "shards": []}
            continue
        columns = list(zip(*pairs, strict=True))
        table = pa.table({name: pa.array([list(v) for v in values], pa.list_(pa.type_for_alias(element)))
                          for (name, element), values in zip(PAIR_COLUMN_TYPES.items(), columns, strict=True)})
        relative = f"{split}/shard-00000-of-00001.parquet"
        (out / split).mkdir(exist_ok=True)
        pq.write_table(table, out / relative, row_group_size=row_group_size)
        tokens = sum(len(p[0]) + len(p[2]) for p in pairs)
        loss_tokens = sum(sum(p[1]) + sum(p[3]) for p in pairs)
        shard = {"path": relative, "sequences": len(pairs), "tokens": tokens, "non_pad_tokens": tokens,
                 "loss_tokens": loss_tokens, "sha256": hashlib.sha256((out / relative).read_bytes()).hexdigest()}
        described[split] = {"sequences": len(pairs), "tokens": tokens, "non_pad_tokens": tokens,
                            "loss_tokens": loss_tokens, "shards": [shard]}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "preference", "seq_len": seq_len,
                "row_group_size": row_group_size,
                "tokenizer": {"sha256": "", "vocab_size": vocab_size, "pad_id": 0, "eos_id": 1, "bos_id": 2},
                "splits": described, "padding_fraction": 0.0}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return out


def write_planted_pairs(out: Path, train: int = 256, validation: int = 64, seed: int = 0) -> Path:
    return write_pair_folder(out, {"train": rule_pairs(train, seed), "validation": rule_pairs(validation,
                                                                                                      seed + 1)})


def sft_rows_from_pairs(pairs: list[Pair], seq_len: int = 32) -> dict[str, np.ndarray]:
    """Both answers of every pair as SFT rows (one conversation per row): a policy trained on them follows the
    rule about half the time, the starting point DPO and REINFORCE improve on."""
    sequences = [(p[0], p[1]) for p in pairs] + [(p[2], p[3]) for p in pairs]
    columns = {name: np.zeros((len(sequences), seq_len), np.int32) for name in ("tokens", "segment_ids", "positions")}
    columns["loss_mask"] = np.zeros((len(sequences), seq_len), np.uint8)
    for row, (tokens, mask) in enumerate(sequences):
        columns["tokens"][row, :len(tokens)] = tokens
        columns["segment_ids"][row, :len(tokens)] = 1
        columns["positions"][row, :len(tokens)] = np.arange(len(tokens))
        columns["loss_mask"][row, :len(tokens)] = mask
    return columns
