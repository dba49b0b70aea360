"""A planted task: made-up facts a tiny model can learn in seconds, and questions only they answer.

"The capital of Vorlan is Quessa." for 32 invented countries. The training text holds every fact; the
multiple-choice task asks for each capital among four capitals that all occur in the training text, so
only the learnt association (not mere familiarity with a name) scores above chance (25%).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import yaml

from gemmaflow.model.train import train
from gemmaflow.model.train_config import load_train_config
from tests.model.shard_fixtures import document_rows, write_shard_folder

SYLLABLES = "ka lo mi ren tas vor ul pen dri sa quo fel bar nis tor eh gal wun ze ipp".split()
SEQ_LEN = 24


def invented_names(count: int, seed: int) -> list[str]:
    rng, names = random.Random(seed), []
    while len(names) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name not in names:
            names.append(name)
    return names


def facts(count: int = 32) -> list[tuple[str, str]]:
    """(country, capital) pairs: no name is both, none repeats."""
    names = invented_names(2 * count, seed=7)
    return list(zip(names[:count], names[count:], strict=True))


def fact_sentence(country: str, capital: str) -> str:
    return f"The capital of {country} is {capital}."


def choice_items(pairs: list[tuple[str, str]], choices: int = 4) -> list[dict]:
    """ARC-style records (question, choices, answer letter); distractors are other capitals."""
    rng, capitals, records = random.Random(11), [capital for _, capital in pairs], []
    for country, capital in pairs:
        options = [capital, *rng.sample([c for c in capitals if c != capital], choices - 1)]
        rng.shuffle(options)
        records.append({"question": f"The capital of {country} is", "choices": options,
                        "answer": "ABCD"[options.index(capital)]})
    return records


def write_task(folder: Path, pairs: list[tuple[str, str]]) -> Path:
    """The task file and its YAML mapping, as a user would write them for a real benchmark file."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "capitals.jsonl").open("w") as fh:
        for record in choice_items(pairs):
            fh.write(json.dumps(record) + "\n")
    spec = {"name": "capitals", "path": "capitals.jsonl", "kind": "multiple_choice", "context": "question",
            "choices": "choices", "label": "answer"}
    (folder / "capitals.yaml").write_text(yaml.safe_dump(spec))
    return folder / "capitals.yaml"


def train_tokenizer(folder: Path, pairs: list[tuple[str, str]]) -> Path:
    import sentencepiece

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text.txt").write_text("\n".join(fact_sentence(*pair) for pair in pairs) * 3)
    sentencepiece.SentencePieceTrainer.train(
        input=str(folder / "text.txt"), model_prefix=str(folder / "sp"), vocab_size=120, model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, byte_fallback=False, minloglevel=2)
    return folder / "sp.model"


def train_on_facts(folder: Path, tokenizer: Path, pairs: list[tuple[str, str]], steps: int, seed: int = 0) -> Path:
    """A tiny Gemma trained by the real trainer on one fact per row; returns the run folder."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    documents = [[sp.bos_id(), *sp.encode(fact_sentence(*pair)), sp.eos_id()] for pair in pairs]
    shards = write_shard_folder(folder / "shards", {"train": [document_rows(documents, SEQ_LEN)],
                                                    "validation": [document_rows(documents[:8], SEQ_LEN)]},
                                seq_len=SEQ_LEN, vocab_size=128)
    config = {"model": {"preset": "tiny", "num_layers": 2}, "steps": steps, "batch_size": 16, "seed": seed,
              "optimizer": {"learning_rate": 1e-2, "warmup_fraction": 0.05, "weight_decay": 0.0},
              "checkpoint_every": steps, "eval_every": steps, "eval_batches": 1, "log_every": steps}
    (folder / "train.yaml").write_text(yaml.safe_dump(config))
    train(shards, load_train_config(folder / "train.yaml"), folder / "run", stream=io.StringIO())
    return folder / "run"
