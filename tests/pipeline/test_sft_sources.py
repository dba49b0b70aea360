"""`gemmaflow sft` over several sources: mixture weights with realised counts, prompt near-dedupe across
sources, benchmark decontamination, PII on by default, and the same output from the same inputs."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.commands.common import sample_path
from gemmaflow.core.configio import ConfigError
from gemmaflow.pipeline.config import DecontaminationConfig, PiiConfig
from gemmaflow.pipeline.jobs.sft import match_sources, run_sft
from gemmaflow.pipeline.pack_config import PackingConfig, SftConfig, SftSource
from gemmaflow.pipeline.tokenize import load_processor
from tests.conftest import write_jsonl
from tests.pipeline.test_pack_tokenizer import generated_text, tiny_tokenizer  # noqa: F401 (fixture)
from tests.pipeline.test_sft_pipeline import rows, segments

# Long enough that one changed word leaves most of its word 3-grams shared.
PROMPT = ("Read the following description of a small coastal town and then explain in two or three sentences "
          "why its harbour became the centre of local trade during the nineteenth century, mentioning the "
          "fishing fleet, the new railway line and the weekly market that drew farmers from the valley.")


def chat(prompt: str, answer: str, **fields: str) -> dict:
    return {**fields, "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def chat_source(path: Path, n: int) -> Path:
    """`n` distinct chat records (category `chat`), so their tokens are told apart from dolly's in the shards."""
    rng = random.Random(3)
    return write_jsonl(path, [chat(f"Question {i}: {generated_text(rng, 25)}", generated_text(rng, 30), id=f"c{i}")
                              for i in range(n)])


def fast(config: SftConfig) -> SftConfig:
    """No PII (its NER model takes seconds to load) and no validation split, unless a test says otherwise."""
    return dataclasses.replace(config, pii=PiiConfig(enabled=False),
                               packing=PackingConfig(seq_len=1024, validation_fraction=0.0))


def two_sources(tmp_path: Path, token_budget: int = 0) -> SftConfig:
    sources = (SftSource("dolly", (sample_path("sft_dolly.jsonl"),), 0.5),
               SftSource("chats", (str(chat_source(tmp_path / "chats.jsonl", 30)),), 0.5))
    return fast(SftConfig(sources=sources, token_budget=token_budget))


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def stage(out: Path, name: str) -> dict:
    return next(s for s in stats_of(out)["stages"] if s["stage"] == name)


def test_two_sources_are_mixed_to_their_weights_and_the_manifest_counts_what_was_selected(tmp_path, tiny_tokenizer,  # noqa: F811
                                                                                         capsys):
    out = tmp_path / "out"
    manifest = run_sft([], str(tiny_tokenizer), str(out), two_sources(tmp_path), progress=False)
    sources, plan = manifest["sources"], manifest["mixture"]
    dolly, chats = sources["dolly"], sources["chats"]
    assert (dolly["read"], dolly["dead_lettered"], dolly["kept"]) == (60, 3, 57)
    assert (chats["read"], chats["dead_lettered"], chats["kept"]) == (30, 0, 30)
    # Equal token shares with no budget: the smaller source whole, the larger sampled down to match it.
    assert plan["token_budget"] == 2 * plan["available_tokens"]["chats"]
    assert chats["selected"] == 30 and chats["train_tokens"] == chats["target_tokens"]
    assert 0 < dolly["selected"] < 57 and dolly["not_sampled"] == 57 - dolly["selected"]
    lengths = [len(tokens) for tokens, _ in segments(rows(out, manifest))]
    assert abs(dolly["train_tokens"] - dolly["target_tokens"]) <= max(lengths)
    # What the manifest says was selected is what the shards hold (chat records are category `chat`).
    train = manifest["splits"]["train"]["tokens_per_domain"]
    assert chats["tokens"] == train["chat"] and dolly["tokens"] == sum(train.values()) - train["chat"]
    assert len(lengths) == dolly["examples"] + chats["examples"] == dolly["selected"] + chats["selected"]
    assert plan["realised_tokens"] == {"dolly": dolly["train_tokens"], "chats": chats["train_tokens"]}
    # stats.json: the same per-source counts, each source's identity, and the mixture's drops in the accounting.
    stats = stats_of(out)
    for name, counts in stats["sources"].items():
        assert counts.items() <= sources[name].items()
        assert counts["read"] == counts["dead_lettered"] + counts["dropped"] + counts["kept"]
    assert stats["chain"][-2:] == ["format", "mixture"]
    assert stage(out, "mixture")["dropped"] == {"not_sampled": dolly["not_sampled"]}
    assert stats["accounting"] == {"records_read": 90, "kept": dolly["selected"] + chats["selected"],
                                   "dropped": dolly["not_sampled"], "dead_lettered": 3}
    printed = capsys.readouterr().out
    assert "dolly" in printed and f"{chats['tokens']}" in printed  # the run summary's per-source table

    # A budget of four times the chats' tokens: chats repeated twice over, dolly sampled to the same share.
    more = tmp_path / "more"
    manifest = run_sft([], str(tiny_tokenizer), str(more), two_sources(tmp_path, 2 * plan["token_budget"]),
                       echo=False, progress=False)
    chats = manifest["sources"]["chats"]
    assert (chats["selected"], chats["examples"]) == (30, 60) and chats["train_tokens"] == chats["target_tokens"]
    assert manifest["sources"]["dolly"]["selected"] > dolly["selected"]


def test_the_same_inputs_and_config_give_the_same_shards(tmp_path, tiny_tokenizer):  # noqa: F811
    config = two_sources(tmp_path)
    first = run_sft([], str(tiny_tokenizer), str(tmp_path / "first"), config, echo=False, progress=False)
    second = run_sft([], str(tiny_tokenizer), str(tmp_path / "second"), config, echo=False, progress=False)
    assert first["sources"]["dolly"]["not_sampled"] > 0  # the seeded sample was exercised
    assert first == second  # every shard's name, counts and sha256
    for shard in first["splits"]["train"]["shards"]:
        assert (tmp_path / "first" / shard["path"]).read_bytes() == (tmp_path / "second" / shard["path"]).read_bytes()


def test_a_prompt_from_two_sources_is_kept_once(tmp_path, tiny_tokenizer):  # noqa: F811
    rng = random.Random(5)
    edited = PROMPT.replace("weekly market", "monthly market")
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "a1", "instruction": PROMPT, "response": "Trade grew there."},
                                           {"id": "a2", "instruction": generated_text(rng, 30), "response": "Yes."}])
    b = write_jsonl(tmp_path / "b.jsonl", [chat(edited, "Because of the railway.", id="b1"),
                                           chat(generated_text(rng, 30), "No.", id="b2")])
    config = fast(SftConfig(sources=(SftSource("a", (str(a),)), SftSource("b", (str(b),)))))
    out = tmp_path / "out"
    manifest = run_sft([], str(tiny_tokenizer), str(out), config, echo=False, progress=False)
    assert stage(out, "exact_dedupe")["dropped"] == {}  # different answers: not exact duplicates
    assert stage(out, "prompt_dedupe")["dropped"] == {"near_duplicate_prompt": 1}
    [rejected] = pq.read_table(out / "rejected").to_pylist()
    assert (rejected["id"], rejected["source"], rejected["reject_stage"]) == ("b1", "b", "prompt_dedupe")
    assert "survivor=a1" in rejected["reject_detail"]  # the smallest id survives, whichever source it is in
    assert manifest["sources"]["a"]["kept"] == 2 and manifest["sources"]["b"]["dropped"] == 1


def test_an_example_holding_a_benchmark_item_is_dropped(tmp_path, tiny_tokenizer):  # noqa: F811
    question = ("A baker uses 350 grams of flour for each loaf of bread. If she has a sack containing 10 kilograms "
                "of flour, how many complete loaves can she bake from it?")
    bench = write_jsonl(tmp_path / "bakery_test.jsonl", [{"id": "q1", "question": question, "answer": "28"}])
    records = [
        {"id": "in-prompt", "instruction": f"Solve this: {question}", "response": "She can bake 28 loaves."},
        chat("Give me a practice problem about baking.", f"Try this one. {question}", id="in-answer"),
        {"id": "clean", "instruction": "How many grams are in a kilogram?", "response": "A thousand."},
    ]
    path = write_jsonl(tmp_path / "sft.jsonl", records)
    config = fast(SftConfig(decontamination=DecontaminationConfig(benchmarks=(str(bench),))))
    out = tmp_path / "out"
    manifest = run_sft([str(path)], str(tiny_tokenizer), str(out), config, echo=False, progress=False)
    decontaminate = stage(out, "decontaminate")
    assert decontaminate["dropped"] == {"benchmark_contamination": 2}
    assert decontaminate["extra"]["contaminated.bakery_test"] == 2
    assert sorted(r["id"] for r in pq.read_table(out / "rejected").to_pylist()) == ["in-answer", "in-prompt"]
    assert manifest["splits"]["train"]["documents"] == 1


@pytest.mark.slow  # the PII scrubber's NER model takes seconds to load
def test_pii_is_scrubbed_by_default_and_kept_only_when_switched_off(tmp_path, tiny_tokenizer):  # noqa: F811
    answer = "You can reach our support desk at help.desk@example.org or call +1 212 555 0187 on weekdays."
    path = write_jsonl(tmp_path / "sft.jsonl", [{"instruction": "How do I contact support?", "response": answer}])
    processor = load_processor(tiny_tokenizer.read_bytes())

    def answer_in_shards(out: Path, *flags: str) -> str:
        assert main(["sft", "--input", str(path), "--tokenizer", str(tiny_tokenizer), "--output", str(out),
                     "--seq-len", "256", "--quiet", *flags]) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        [(tokens, mask)] = list(segments(rows(out, manifest)))
        return processor.decode(tokens[mask == 1].tolist())

    scrubbed = answer_in_shards(tmp_path / "default")
    assert "help.desk@example.org" not in scrubbed and "555" not in scrubbed
    assert "<EMAIL>" in scrubbed and "<PHONE>" in scrubbed
    assert stage(tmp_path / "default", "pii")["extra"]["replaced.PHONE_NUMBER"] == 1
    kept = answer_in_shards(tmp_path / "off", "--set", "pii.enabled=false")
    assert "help.desk@example.org" in kept and "+1 212 555 0187" in kept
    assert "pii" not in stats_of(tmp_path / "off")["chain"]


def test_sources_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="used twice"):
        SftConfig(sources=(SftSource("a", ("x.jsonl",)), SftSource("a", ("y.jsonl",))))
    with pytest.raises(ValueError, match="weight must be positive"):
        SftSource("a", ("x.jsonl",), weight=0.0)
    with pytest.raises(ValueError, match="letters, digits"):
        SftSource("my source", ("x.jsonl",))
    path = write_jsonl(tmp_path / "one.jsonl", [chat("hi", "hello")])
    with pytest.raises(ConfigError, match="sources a and b both match"):
        match_sources({"a": [str(path)], "b": [str(tmp_path / "*.jsonl")]})
    with pytest.raises(ConfigError, match="no SFT input"):
        run_sft([], "tokenizer.model", str(tmp_path / "out"), SftConfig())
    # `--input` replaces the config's sources with one source of weight 1.
    config = SftConfig(sources=(SftSource("a", ("x.jsonl",), 2.0),)).with_inputs(["y.jsonl"])
    assert config.sources == (SftSource("input", ("y.jsonl",), 1.0),)
