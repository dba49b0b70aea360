"""The tokenizer job: sample curated Parquet, train, validate, write the model, vocabulary and card.

Output folder (local or any fsspec URL):
  tokenizer.model       the SentencePiece model proto
  tokenizer.vocab       piece<TAB>score per id
  tokenizer_card.json   settings, trainer arguments, sample stats, vocabulary estimate, the validation
                        report, timings and the model's SHA-256

tokenizer.model, the file every other command reads, is written last, under a temporary name renamed
once whole: a folder holding it holds a finished run (a model cut short at a piece boundary would
still load, with fewer pieces).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from gemmaflow.core.chat import CORE_PIECES
from gemmaflow.core.configio import fingerprint, to_dict
from gemmaflow.tokenizer_train.config import TokenizerConfig
from gemmaflow.tokenizer_train.report import validation_report
from gemmaflow.tokenizer_train.sample import Sample, sample_corpus
from gemmaflow.tokenizer_train.train import VocabularyEstimate, estimate_vocabulary, train_model, vocab_file_text

CARD_FORMAT = "gemmaflow-tokenizer-card/1"
OUTPUT_FILES = ("tokenizer.model", "tokenizer.vocab", "tokenizer_card.json")
PARTIAL_MODEL = "tokenizer.model.partial"
TEXT_DIR_PREFIX = "gemmaflow-tokenizer-"
OWNER_PID_FILE = "owner.pid"


class OutputExistsError(FileExistsError):
    """The output folder already holds a tokenizer and overwriting was not asked for."""


def _special_tokens(config: TokenizerConfig) -> list[dict[str, Any]]:
    trainer = config.trainer
    core = zip(CORE_PIECES, (trainer.pad_id, trainer.eos_id, trainer.bos_id, trainer.unk_id), strict=True)
    tokens = [{"piece": piece, "id": token_id, "kind": "core"} for piece, token_id in core]
    tokens += [{"piece": t.piece, "id": t.id, "kind": t.kind} for t in trainer.special_tokens]
    return sorted(tokens, key=lambda t: t["id"])


def _sample_and_train(
    input_url: str, train_path: Path, config: TokenizerConfig
) -> tuple[bytes, dict[str, Any], Sample, VocabularyEstimate, dict[str, float]]:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    sample = sample_corpus(input_url, train_path, config.sample, config.trainer.max_sentence_length)
    seconds["sample"] = time.perf_counter() - start
    start = time.perf_counter()
    estimate = estimate_vocabulary(train_path, config.trainer, stop_above=config.trainer.vocab_size)
    seconds["vocabulary_estimate"] = time.perf_counter() - start
    start = time.perf_counter()
    model, arguments = train_model(train_path, config.trainer, config.sample.seed, estimate)
    seconds["train"] = time.perf_counter() - start
    return model, arguments, sample, estimate, seconds


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_text_dirs(root: str | None = None) -> list[Path]:
    """Delete the sampled-text folders of tokenizer runs that were killed (their process is gone).

    A run removes its folder on every exit Python sees; SIGKILL is the one it cannot, so the next run
    cleans up: each folder names its process in `owner.pid`, and folders without one are left alone.
    """
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(TEXT_DIR_PREFIX + "*"):
        try:
            pid = int((folder / OWNER_PID_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def train_tokenizer(
    input_url: str, out_url: str, config: TokenizerConfig, overwrite: bool = False, keep_text_in: str | None = None
) -> dict[str, Any]:
    """Run the whole job and return the card (also written to `out_url`). The training text goes to a
    temporary folder that is removed afterwards, or to `keep_text_in`/train.txt, which is kept."""
    import fsspec
    import sentencepiece

    fs, out_root = fsspec.core.url_to_fs(out_url)
    out_root = out_root.rstrip("/")
    if fs.isfile(out_root):  # found before the hours of training, not after
        raise OutputExistsError(f"--out {out_url} is a file, not a folder")
    existing = [name for name in OUTPUT_FILES if fs.exists(f"{out_root}/{name}")]
    if existing and not overwrite:
        raise OutputExistsError(f"{out_url} already holds {', '.join(existing)}; pass --overwrite to replace it")
    with contextlib.ExitStack() as stack:
        if keep_text_in is None:
            remove_stale_text_dirs()
            text_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=TEXT_DIR_PREFIX)))
            (text_dir / OWNER_PID_FILE).write_text(str(os.getpid()))
        else:
            text_dir = Path(keep_text_in)
            text_dir.mkdir(parents=True, exist_ok=True)
        model, arguments, sample, estimate, seconds = _sample_and_train(input_url, text_dir / "train.txt", config)
    start = time.perf_counter()
    report = validation_report(model, sample.heldout, config.report_longest_pieces, config.trainer.threads)
    seconds["report"] = time.perf_counter() - start
    arguments = {k: v for k, v in arguments.items() if k != "input"}
    card = {
        "format": CARD_FORMAT,
        "model": {
            "file": "tokenizer.model",
            "sha256": hashlib.sha256(model).hexdigest(),
            "bytes": len(model),
            "vocab_size": report["vocabulary"]["size"],
            "special_tokens": _special_tokens(config),
        },
        "input": input_url,
        "config": to_dict(config),
        "config_fingerprint": fingerprint(config),
        "sentencepiece_version": sentencepiece.__version__,
        "trainer_arguments": arguments,
        "sample": sample.stats,
        "vocabulary_estimate": dataclasses.asdict(estimate),
        "report": report,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    fs.makedirs(out_root, exist_ok=True)
    if fs.exists(f"{out_root}/tokenizer.model"):  # the replaced run's model goes before its card does
        fs.rm(f"{out_root}/tokenizer.model")
    with fs.open(f"{out_root}/tokenizer.vocab", "w", encoding="utf-8") as fh:
        fh.write(vocab_file_text(model))
    with fs.open(f"{out_root}/tokenizer_card.json", "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    with fs.open(f"{out_root}/{PARTIAL_MODEL}", "wb") as fh:
        fh.write(model)
    fs.mv(f"{out_root}/{PARTIAL_MODEL}", f"{out_root}/tokenizer.model")
    return card
