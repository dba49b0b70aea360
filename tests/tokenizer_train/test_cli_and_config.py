"""`gemmaflow tokenizer train` end to end, its user errors, and the shipped YAML configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gemmaflow.cli import main
from gemmaflow.core.configio import ConfigError
from gemmaflow.tokenizer_train.config import TokenizerConfig, load_tokenizer_config
from tests.tokenizer_train.conftest import write_curated

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _write_yaml(path: Path, vocab_size: int) -> Path:
    path.write_text(
        f"sample: {{byte_budget: 200000, heldout_fraction: 0.1}}\ntrainer: {{vocab_size: {vocab_size}, threads: 2}}\n",
        encoding="utf-8",
    )
    return path


def test_cli_writes_model_vocab_and_card(curated_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = _write_yaml(tmp_path / "c.yaml", 5000)
    out = tmp_path / "tok"
    args = ["tokenizer", "train", "--input", str(curated_dir), "--out", str(out), "--config", str(config)]
    assert main([*args, "--vocab-size", "800", "--keep-text", str(tmp_path / "text")]) == 0
    assert (tmp_path / "text" / "train.txt").stat().st_size > 100_000
    printed = capsys.readouterr().out
    assert "round-trip" in printed and "tokenizer.model" in printed
    card = json.loads((out / "tokenizer_card.json").read_text(encoding="utf-8"))
    assert card["model"]["vocab_size"] == 800  # --vocab-size wins over the file
    assert (out / "tokenizer.vocab").read_text(encoding="utf-8").count("\t") == 800
    assert main([*args, "--vocab-size", "800"]) == 2  # an existing output is refused
    assert "--overwrite" in capsys.readouterr().err


def test_cli_empty_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_curated(tmp_path / "empty", [], parts=1)
    assert main(["tokenizer", "train", "--input", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no text" in err[0]


def test_cli_impossible_vocabulary_is_a_user_error(curated_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["tokenizer", "train", "--input", str(curated_dir), "--out", str(tmp_path / "o")]) == 2
    assert "256,000 were requested" in capsys.readouterr().err


def test_shipped_default_config_is_the_dataclass_defaults() -> None:
    assert load_tokenizer_config(CONFIGS / "tokenizer.yaml") == TokenizerConfig()


def test_demo_config_sets_a_small_vocabulary_explicitly() -> None:
    demo = load_tokenizer_config(CONFIGS / "tokenizer-demo.yaml")
    assert demo.trainer.vocab_size < 256_000
    assert "vocab_size" in (CONFIGS / "tokenizer-demo.yaml").read_text(encoding="utf-8")
    assert load_tokenizer_config(CONFIGS / "tokenizer-demo.yaml", vocab_size=1234).trainer.vocab_size == 1234


def test_unknown_config_keys_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: {vocab_sise: 10}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"trainer\.vocab_sise"):
        load_tokenizer_config(bad)
