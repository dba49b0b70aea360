"""The README's main job end to end, with tiny training settings: every step runs and leaves its artefact."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gemmaflow.cli import EXIT_USER_ERROR, main


@pytest.mark.slow
def test_demo_runs_every_step_into_one_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "demo"
    assert main(["demo", "--output", str(run_dir), "--tiny", "4"]) == 0
    printed = capsys.readouterr().out
    steps = ["curate", "tokenizer", "pack", "pretrain", "sample", "eval", "sft", "sft-train", "chat", "rlhf",
             "ablate", "report"]
    for index, step in enumerate(steps, start=1):
        assert f"[{index}/{len(steps)}] {step}:" in printed

    stats = json.loads((run_dir / "curated" / "stats.json").read_text())
    chain = [stage["stage"] for stage in stats["stages"]]
    for stage in ("url_dedupe", "near_dedupe", "decontaminate", "pii", "classify"):
        assert stage in chain, f"the demo's curate step must run {stage}"
    read = stats["stages"][chain.index("read")]
    assert read["extra"]["crawl.records"] == 208  # the bundled crawl is curated with the raw sample
    assert "crawl: 208 records" in printed
    assert stats["accounting"]["kept"] > 0

    card = json.loads((run_dir / "tokenizer" / "tokenizer_card.json").read_text())
    assert card["model"]["vocab_size"] == 8192
    manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())
    assert manifest["seq_len"] == 256 and set(manifest["mixture"]["weights"]) == {"web", "code", "math"}
    sft_manifest = json.loads((run_dir / "sft_shards" / "manifest.json").read_text())
    assert sft_manifest["kind"] == "sft" and sft_manifest["splits"]["train"]["loss_tokens"] > 0

    for folder, steps in (("pretrain", 4), ("sft", 2)):
        records = [json.loads(line) for line in (run_dir / folder / "metrics.jsonl").read_text().splitlines()]
        assert max(r.get("step", 0) for r in records) == steps
        assert (run_dir / folder / "final").is_dir()

    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results) == {"arithmetic", "cloze", "heldout", "science_qa"}
    ablation = json.loads((run_dir / "ablation" / "ablation.json").read_text())
    assert set(ablation["variants"]) == {"raw", "curated"} and ablation["seeds"] == [0, 1]
    assert ablation["budget_tokens"] == 4 * 4 * 256  # --tiny 4: four steps of four 256-token rows

    rlhf = json.loads((run_dir / "rlhf" / "rule_following.json").read_text())
    assert set(rlhf["policies"]) == {"sft", "reinforce", "dpo"} and rlhf["training"]["reinforce"]["steps"] == 4
    assert "reward model:" in printed and "REINFORCE" in printed

    samples = (run_dir / "samples.md").read_text()
    assert "What is a Python dictionary?" in samples and "def main(" in samples
    html = (run_dir / "report.html").read_text()
    assert html.count("<svg") >= 10
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "the report must not reach the network"
    index = (run_dir / "INDEX.md").read_text()
    assert "report.html" in index and "tokenizer/tokenizer.model" in index and "rlhf/rule_following.json" in index
    assert 'id="rlhf"' in html and "Share of sampled answers that follow the rule" in html


def test_demo_refuses_to_mix_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.txt").write_text("an earlier run")
    assert main(["demo", "--output", str(tmp_path), "--tiny", "2"]) == EXIT_USER_ERROR
    assert "--overwrite" in capsys.readouterr().err


def test_demo_overwrite_keeps_what_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `gemmaflow demo --output . --overwrite` in a checkout deleted the whole folder, .git included
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "src.py").write_text("print('mine')\n")
    assert main(["demo", "--output", str(tmp_path), "--overwrite", "--tiny", "2"]) == EXIT_USER_ERROR
    assert "did not write" in capsys.readouterr().err
    assert (tmp_path / ".git" / "HEAD").exists() and (tmp_path / "src.py").exists()


def test_demo_with_a_missing_input_fails_before_touching_the_folder(tmp_path: Path, capsys) -> None:
    config = tmp_path / "demo.yaml"
    config.write_text("raw_input: no-such-file.jsonl\n")
    out = tmp_path / "out"
    assert main(["demo", "--output", str(out), "--config", str(config), "--tiny", "2"]) == EXIT_USER_ERROR
    assert "no-such-file.jsonl" in capsys.readouterr().err and not out.exists()
