"""`gemmaflow sft` end to end: the bundled dolly sample, chat records, dead letters, cleaning, loss masks in shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.commands.common import sample_path
from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.jobs.sft import run_sft
from gemmaflow.pipeline.pack_config import PackingConfig, SftConfig
from gemmaflow.pipeline.tokenize import load_processor
from tests.conftest import write_jsonl
from tests.pipeline.test_pack_tokenizer import tiny_tokenizer  # noqa: F401 (fixture)


def rows(out, manifest) -> dict[str, np.ndarray]:
    tables = [pq.read_table(out / s["path"]) for split in ("train", "validation")
              for s in manifest["splits"][split]["shards"]]
    table = pa.concat_tables(tables)
    return {c: np.array(table.column(c).to_pylist()) for c in ("tokens", "segment_ids", "loss_mask")}


def segments(data: dict[str, np.ndarray]):
    for tokens, segment_ids, mask in zip(data["tokens"], data["segment_ids"], data["loss_mask"], strict=True):
        for s in np.unique(segment_ids[segment_ids > 0]):
            yield tokens[segment_ids == s], mask[segment_ids == s]


def test_bundled_dolly_sample_through_the_cli(tmp_path, tiny_tokenizer):  # noqa: F811
    out = tmp_path / "sft"
    # PII off, so every answer reaches the shards as written (test_sft_sources.py checks the scrubbing).
    assert main(["sft", "--tokenizer", str(tiny_tokenizer), "--output", str(out), "--seq-len", "1024",
                 "--set", "pii.enabled=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "sft" and manifest["documents_split"] == 0
    assert manifest["splits"]["train"]["documents"] + manifest["splits"]["validation"]["documents"] == 57
    dead = pq.read_table(out / "dead_letter").to_pylist()
    assert sorted(d["reason"] for d in dead) == ["empty_turn", "field_not_string", "missing_response"]
    assert sorted(d["position"] for d in dead) == [57, 58, 59]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounting"] == {"records_read": 60, "kept": 57, "dropped": 0, "dead_lettered": 3}

    processor = load_processor(tiny_tokenizer.read_bytes())
    lines = Path(sample_path("sft_dolly.jsonl")).read_text(encoding="utf-8").splitlines()
    answers = sorted([*processor.encode(json.loads(line)["response"].strip()), 6] for line in lines[:57])
    found = []
    for tokens, mask in segments(rows(out, manifest)):
        assert tokens[0] == 2 and (tokens == 2).sum() == 1  # exactly one BOS, first
        assert tokens[1] == 5  # <start_of_turn>
        found.append(tokens[mask == 1].tolist())
    assert sorted(found) == answers  # the loss covers each response and its <end_of_turn>, nothing else
    assert sum(manifest["splits"]["train"]["tokens_per_domain"].values()) > 0
    assert "open_qa" in manifest["splits"]["train"]["tokens_per_domain"]


@pytest.mark.slow  # the PII scrubber's imports take most of its time
def test_chat_records_deduplicated_scrubbed_and_overlong_rejected(tmp_path, tiny_tokenizer):  # noqa: F811
    chat = [{"role": "user", "content": "Write to me at jane.doe@example.com please"},
            {"role": "assistant", "content": "I will write to you soon."}]
    records = [
        {"id": "c1", "messages": chat},
        {"id": "c2", "messages": [{**m, "content": m["content"].upper()} for m in chat]},  # duplicate of c1
        {"id": "c3", "messages": [{"role": "user", "content": "print value " * 400},
                                  {"role": "assistant", "content": "ok"}]},  # too long for 256 tokens
        {"id": "c4", "messages": [{"role": "assistant", "content": "I speak first"}]},
        {"id": "c5", "messages": [{"role": "user", "content": "Review my essay"},  # the default safety filter
                                  {"role": "assistant", "content": "Shut the fuck up, you stupid moron."}]},
        "{not json",
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", records)
    config = SftConfig(packing=PackingConfig(seq_len=256, validation_fraction=0.0),
                       pii=PiiConfig(enabled=True, entities=("EMAIL_ADDRESS",)))
    out = tmp_path / "out"
    manifest = run_sft([str(path)], str(tiny_tokenizer), str(out), config, echo=False)
    assert manifest["splits"]["train"]["documents"] == 1
    assert manifest["splits"]["train"]["tokens_per_domain"].keys() == {"chat"}
    rejected = {r["reject_reason"]: r for r in pq.read_table(out / "rejected").to_pylist()}
    assert rejected.keys() == {"exact_duplicate", "too_long", "safety.offensive_above_threshold"}
    assert rejected["safety.offensive_above_threshold"]["id"] == "c5"
    assert rejected["exact_duplicate"]["reject_detail"] == "survivor=c1"
    # The rejected sink keeps the conversation, scrubbed like everything else.
    duplicate = json.loads(rejected["exact_duplicate"]["meta"])
    assert duplicate["turns"][0] == ["user", "WRITE TO ME AT <EMAIL> PLEASE"]
    assert sorted(d["reason"] for d in pq.read_table(out / "dead_letter").to_pylist()) == [
        "bad_role_order", "invalid_json"]
    processor = load_processor(tiny_tokenizer.read_bytes())
    [(tokens, _)] = list(segments(rows(out, manifest)))
    text = processor.decode(tokens.tolist())
    assert "jane.doe@example.com" not in text and "<EMAIL>" in text
    # The curate PII stage's counters: the kept example in `pii`, the duplicate in `pii_rejected`.
    stages = {s["stage"]: s for s in json.loads((out / "stats.json").read_text())["stages"]}
    assert stages["pii"]["extra"] == {"detected.EMAIL_ADDRESS": 1, "docs_scrubbed": 1, "replaced.EMAIL_ADDRESS": 1}
    assert stages["pii_rejected"]["extra"]["replaced.EMAIL_ADDRESS"] == 1


@pytest.mark.slow  # loads the shipped fastText classifiers
def test_classifiers_judge_the_answers_when_enabled(tmp_path, tiny_tokenizer):  # noqa: F811
    from gemmaflow.pipeline.config import ClassifyConfig

    config = SftConfig(packing=PackingConfig(seq_len=1024), classify=ClassifyConfig(enabled=True))
    out = tmp_path / "out"
    manifest = run_sft([sample_path("sft_dolly.jsonl")], str(tiny_tokenizer), str(out), config, echo=False)
    stats = json.loads((out / "stats.json").read_text())
    classify = next(s for s in stats["stages"] if s["stage"] == "classify")
    assert classify["docs_in"] == 57 and classify["kept"] + sum(classify["dropped"].values()) == 57
    assert 0 < classify["extra"]["quality.scored"] <= 57  # answers the domain model calls prose
    packed = manifest["splits"]["train"]["documents"] + manifest["splits"]["validation"]["documents"]
    assert packed == classify["kept"]
    if classify["dropped"]:
        reasons = {r["reject_reason"] for r in pq.read_table(out / "rejected").to_pylist()}
        assert reasons <= set(classify["dropped"])
