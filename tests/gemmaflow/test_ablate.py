"""`gemmaflow ablate`: config checks before any work, seed statistics, and a whole small ablation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gemmaflow.ablate import (
    AblationConfig,
    AblationInputError,
    AblationVariant,
    check_inputs,
    headline_metrics,
    load_ablation_config,
    markdown_table,
    summarise,
    t_interval,
)
from gemmaflow.cli import main
from gemmaflow.commands.common import sample_path
from gemmaflow.core.configio import ConfigError
from gemmaflow.core.run_markers import COMPLETE_FILE

TWO = (AblationVariant("raw", curate="curate-raw.yaml"), AblationVariant("curated", curate="curate.yaml"))


@pytest.mark.parametrize(("changes", "message"), [
    ({"variants": TWO[:1]}, "at least two variants"),
    ({"variants": (TWO[0], TWO[0])}, "distinct names"),
    ({"seeds": (1, 1)}, "none repeated"),
])
def test_inconsistent_configs_are_refused(changes, message):
    base = {"variants": TWO, "input": ("raw.jsonl",), "heldout": "held.jsonl"}
    with pytest.raises(ValueError, match=message):
        AblationConfig(**{**base, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"heldout": "", "tasks": ()}, "something to evaluate on"),
    ({"input": ()}, "curate variants need `input`"),
    ({"input": ("nowhere.jsonl",)}, "ablation inputs not found: nowhere.jsonl"),
    ({"train": "no-such-train.yaml"}, "no-such-train.yaml"),
])
def test_inputs_are_checked_before_any_work(changes, message, tmp_path):
    (tmp_path / "raw.jsonl").write_text("{}\n")
    (tmp_path / "held.jsonl").write_text("{}\n")
    base = {"variants": TWO, "input": (str(tmp_path / "raw.jsonl"),), "heldout": str(tmp_path / "held.jsonl")}
    check_inputs(AblationConfig(**base))  # the base is fine
    with pytest.raises(AblationInputError, match=message):
        check_inputs(AblationConfig(**{**base, **changes}))


def test_a_variant_is_a_curate_config_or_a_shard_folder_not_both():
    with pytest.raises(ValueError, match="exactly one of `curate` or `shards`"):
        AblationVariant("x", curate="curate.yaml", shards="s/")
    with pytest.raises(ValueError, match="without '/'"):
        AblationVariant("a/b", curate="curate.yaml")


def test_yaml_paths_resolve_beside_the_yaml_and_bundled_names_stay(tmp_path):
    (tmp_path / "raw.jsonl").write_text("{}\n")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({
        "input": ["raw.jsonl"], "heldout": "held.jsonl", "tasks": ["sample"],
        "variants": [{"name": "raw", "curate": "curate-raw.yaml"}, {"name": "c", "curate": "curate.yaml"}]}))
    config = load_ablation_config(str(tmp_path / "a.yaml"))
    assert config.input == (str(tmp_path / "raw.jsonl"),) and config.heldout == "held.jsonl"
    assert config.tasks == ("sample",) and config.variants[1].curate == "curate.yaml"
    (tmp_path / "b.yaml").write_text("variants: []\nseedz: [1]\n")
    with pytest.raises(ConfigError, match="unknown key seedz"):
        load_ablation_config(str(tmp_path / "b.yaml"))


def test_seed_statistics_are_the_mean_and_a_student_t_interval():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3 ** 0.5)
    assert t_interval([5.0]) == (5.0, None)
    summary = summarise({0: {"a": 1.0, "b": 4.0}, 1: {"a": 3.0}})
    assert summary["a"]["mean"] == 2.0 and summary["b"] == {"mean": 4.0, "ci95": None}
    flat = headline_metrics({"h": {"kind": "perplexity", "n": 2, "bits_per_byte": 1.5,
                                   "by_group": {"web": {"bits_per_byte": 1.4, "bytes": 3, "n": 1}}},
                             "q": {"kind": "multiple_choice", "n": 4, "acc": 0.5, "acc_norm": 0.25},
                             "g": {"kind": "generate", "n": 4, "exact_match": 0.75}})
    assert flat == {"h/bits_per_byte": 1.5, "h/bits_per_byte/web": 1.4, "q/acc": 0.5, "q/acc_norm": 0.25,
                    "g/exact_match": 0.75}


@pytest.mark.slow  # two curate runs, a tokenizer, two packs and four tiny trainings: about a minute
def test_a_two_variant_ablation_on_the_bundled_sample(tmp_path, capsys):
    tasks = Path(sample_path("tasks"))
    config = tmp_path / "ablation.yaml"
    config.write_text(yaml.safe_dump({
        "input": ["elsewhere.jsonl"], "tasks": [str(tasks / "cloze.yaml")], "seeds": [0, 1], "steps": 4,
        "variants": [{"name": "raw", "curate": "curate-raw.yaml"}, {"name": "curated", "curate": "curate.yaml"}]}))
    out = tmp_path / "out"
    assert main(["ablate", "--config", str(config), "--output", str(out), "--input", sample_path("raw.jsonl.gz"),
                 "--heldout", str(tasks / "heldout.jsonl")]) == 0  # the command line replaces input, heldout
    printed = capsys.readouterr().out
    assert "| raw | " in printed and "| curated | " in printed
    document = json.loads((out / "ablation.json").read_text())
    raw, curated = document["variants"]["raw"], document["variants"]["curated"]
    assert raw["documents_kept"] == raw["documents_read"] == 475  # the raw arm drops nothing
    assert curated["documents_kept"] < raw["documents_kept"]  # curation drops junk and duplicates
    assert curated["train_tokens_available"] < raw["train_tokens_available"]
    assert document["budget_tokens"] == 4 * 4 * 256  # steps x batch x seq_len, the same for both
    for variant in (raw, curated):
        assert set(variant["per_seed"]) == {"0", "1"}
        summary = variant["summary"]["ablation_heldout/bits_per_byte"]
        assert summary["mean"] > 0 and summary["ci95"] is not None
        assert {"cloze/acc", "cloze/acc_norm", "ablation_heldout/bits_per_byte/code"} <= set(variant["summary"])
    assert raw["per_seed"]["0"] != raw["per_seed"]["1"]  # the seeds train different models
    assert (out / "raw" / "seed-1" / "eval" / "results.json").is_file() and (out / COMPLETE_FILE).is_file()
    assert "ablation_heldout/bits_per_byte" in markdown_table(document)
    assert main(["report", str(out)]) == 0 and "Data ablation" in (out / "report.html").read_text()
    assert main(["ablate", "--config", str(config), "--output", str(out)]) == 2  # elsewhere.jsonl: not found
    assert "ablation inputs not found: elsewhere.jsonl" in capsys.readouterr().err
    assert main(["ablate", "--config", str(config), "--output", str(out), "--input", sample_path("raw.jsonl.gz"),
                 "--heldout", str(tasks / "heldout.jsonl")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
