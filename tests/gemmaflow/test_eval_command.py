"""`gemmaflow eval` as a user runs it: task files in, results.json and samples.jsonl out, clear refusals."""

from __future__ import annotations

import json

import pytest

from gemmaflow.cli import main
from gemmaflow.core.run_markers import COMPLETE_FILE, OWNER_FILE
from gemmaflow.model import GemmaLM
from tests.conftest import write_jsonl
from tests.model.planted import facts, train_tokenizer, write_task


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-model")
    tokenizer = train_tokenizer(folder / "tokenizer", facts())
    GemmaLM.from_preset("tiny", vocab_size=128, seed=0, tokenizer=tokenizer, num_layers=1).save_pretrained(
        folder / "model")
    return folder / "model"


@pytest.fixture
def task(tmp_path):
    return write_task(tmp_path / "tasks", facts()[:6])


def test_results_and_samples_are_written_in_the_documented_shapes(model_dir, task, tmp_path, capsys):
    held = write_jsonl(tmp_path / "held.jsonl", [{"text": "The capital of Kalo is Ren.", "domain": "web"}])
    out = tmp_path / "out"
    assert main(["eval", "--model", str(model_dir), "--tasks", f"{task},{held}", "--output", str(out),
                 "--log-samples", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"capitals", "held"}
    assert results["capitals"]["n"] == 6 and 0 <= results["capitals"]["acc"] <= 1 and "acc_norm" in results["capitals"]
    assert results["held"]["bits_per_byte"] > 0 and set(results["held"]["by_group"]) == {"web"}
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    choice_samples = [s for s in samples if s["task"] == "capitals"]
    assert [s["index"] for s in choice_samples] == list(range(6))
    assert all(len(s["loglik"]) == 4 and isinstance(s["label"], int) for s in choice_samples)
    assert (out / OWNER_FILE).is_file() and (out / COMPLETE_FILE).is_file()
    assert json.loads(capsys.readouterr().out)["capitals"]["n"] == 6

    # A second run into the same folder needs --overwrite; a folder holding a file not ours is refused.
    assert main(["eval", "--model", str(model_dir), "--tasks", str(task), "--output", str(out), "--quiet"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["eval", "--model", str(model_dir), "--tasks", str(task), "--output", str(out), "--quiet",
                 "--overwrite"]) == 0
    assert not (out / "samples.jsonl").exists()  # the earlier run's file went with it
    (out / "notes.txt").write_text("mine")
    assert main(["eval", "--model", str(model_dir), "--tasks", str(task), "--output", str(out), "--quiet",
                 "--overwrite"]) == 2
    assert "refusing to delete" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"


def test_a_task_file_that_does_not_match_its_mapping_names_the_field(model_dir, tmp_path, capsys):
    (tmp_path / "t.jsonl").write_text(json.dumps({"ctx": "a", "endings": ["x", "y"], "gold": 0}) + "\n")
    (tmp_path / "t.yaml").write_text("name: t\npath: t.jsonl\nkind: multiple_choice\ncontext: ctx\nchoices: endings\n")
    assert main(["eval", "--model", str(model_dir), "--tasks", str(tmp_path / "t.yaml"), "--quiet"]) == 2
    assert "field 'label' not found (record has ['ctx', 'endings', 'gold'])" in capsys.readouterr().err
    assert main(["eval", "--model", str(model_dir), "--tasks", str(tmp_path / "none.yaml"), "--quiet"]) == 2
    assert "task file not found" in capsys.readouterr().err


def test_two_tasks_with_one_name_are_refused(model_dir, task, capsys):
    assert main(["eval", "--model", str(model_dir), "--tasks", str(task), "--tasks", str(task), "--quiet"]) == 2
    assert "share the name 'capitals'" in capsys.readouterr().err


def test_sxs_writes_win_rates_and_both_verdicts(model_dir, tmp_path, capsys):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"The capital of {country} is", "capability": cap}
                                                        for (country, _), cap in zip(facts()[:4], ["a", "a", "b", "b"],
                                                                                     strict=True)])
    (tmp_path / "judges.py").write_text("def first(prompt, first, second):\n    return 1.0\n")
    out = tmp_path / "sxs"
    assert main(["sxs", "--model-a", str(model_dir), "--model-b", str(model_dir), "--prompts", str(prompts),
                 "--judge", f"{tmp_path / 'judges.py'}:first", "--output", str(out), "--max-new-tokens", "4",
                 "--no-chat", "--quiet"]) == 0
    document = json.loads((out / "sxs.json").read_text())
    assert set(document["by_capability"]) == {"a", "b"} and document["overall"]["ties"] == 4  # position bias cancels
    samples = [json.loads(line) for line in (out / "sxs_samples.jsonl").read_text().splitlines()]
    assert [s["a_first_verdict"] for s in samples] == [1.0] * 4 and [s["b_first_verdict"] for s in samples] == [1.0] * 4
    assert (out / COMPLETE_FILE).is_file()
    capsys.readouterr()
    assert main(["sxs", "--model-a", str(model_dir), "--model-b", str(model_dir), "--prompts", str(prompts),
                 "--judge", "nowhere.py:f", "--quiet"]) == 2
    assert "no Python file nowhere.py" in capsys.readouterr().err


def test_every_bundled_task_runs_from_any_folder(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # task files (and the few-shot file) resolve beside their YAML, not here
    assert main(["eval", "--model", str(model_dir), "--tasks", "sample", "--limit", "3", "--quiet"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"arithmetic", "cloze", "heldout", "science_qa"}
    assert results["arithmetic"]["num_fewshot"] == 3 and all(r["n"] == 3 for r in results.values())
