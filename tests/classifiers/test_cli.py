import json

import pytest

from gemmaflow.classifiers.card import read_card
from gemmaflow.cli import main
from tests.classifiers.synthetic import labeled_rows, write_rows


def test_train_then_eval_reproduces_the_card(tmp_path, capsys):
    data = write_rows(tmp_path / "d.jsonl", labeled_rows(["good", "junk"], 80))
    out = tmp_path / "q.bin"
    assert (
        main(
            [
                "classifier",
                "train",
                "--data",
                str(data),
                "--out",
                str(out),
                "--split-field",
                "source",
                "--positive-label",
                "good",
                "--min-recall",
                "0.9",
                "--dim",
                "8",
                "--bucket",
                "10000",
            ]
        )
        == 0
    )
    card = read_card(tmp_path / "q.json")
    assert card.command.startswith("gemmaflow classifier train --data ") and "--min-recall 0.9" in card.command
    assert card.fasttext["dim"] == 8 and card.fasttext["bucket"] == 10000
    capsys.readouterr()
    assert main(["classifier", "eval", "--model", str(out), "--data", str(data), "--split", "valid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == card.metrics
    assert main(["classifier", "eval", "--model", str(out), "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "confusion matrix" in printed and "ROC-AUC" in printed


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["classifier", "eval", "--model", str(tmp_path / "none.bin"), "--data", "x.jsonl"]) == 2
    assert "classifier model not found" in capsys.readouterr().err
    assert main(["classifier", "train", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "m.bin")]) == 2
    assert "labeled data not found" in capsys.readouterr().err
    assert main(["classifier", "train", "--data", "x", "--out", "m.bin", "--quantize"]) == 2


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["classifier", "--help"])
    assert "gemmaflow classifier train --data" in capsys.readouterr().out
