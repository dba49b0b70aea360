"""`gemmaflow prefs`: the three pair shapes, drops and dead letters with reasons, both sequences with loss masks
on the final answer, PII scrubbed in both answers, and the accounting identity."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.core.shard_format import PAIR_COLUMN_TYPES, Manifest, ShardFormatError
from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.jobs.prefs import run_prefs
from gemmaflow.pipeline.pack_config import PackingConfig, PrefsConfig
from gemmaflow.pipeline.prefs import Pair, Unusable, format_pairs, hh_dialogue, parse_pair
from gemmaflow.pipeline.record_text import editable_texts, identity_hash, replace_texts
from gemmaflow.pipeline.sft import ChatTokens, Invalid
from gemmaflow.pipeline.tokenize import load_processor
from tests.conftest import write_jsonl
from tests.pipeline.test_pack_tokenizer import tiny_tokenizer  # noqa: F401 (fixture)

HH_CHOSEN = "\n\nHuman: What is two plus two?\n\nAssistant: Four.\n\nHuman: And times three?\n\nAssistant: Twelve."
HH_REJECTED = "\n\nHuman: What is two plus two?\n\nAssistant: Four.\n\nHuman: And times three?\n\nAssistant: Seven."


def messages(*turns: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def test_the_three_shapes_give_one_prompt_and_two_answers():
    strings = parse_pair({"prompt": " Name a colour. ", "chosen": "Blue.", "rejected": "A potato."})
    assert strings == Pair((("user", "Name a colour."),), "Blue.", "A potato.", "strings")
    dialogues = parse_pair({"chosen": HH_CHOSEN, "rejected": HH_REJECTED})
    assert isinstance(dialogues, Pair) and dialogues.shape == "dialogues"
    assert dialogues.prompt == (("user", "What is two plus two?"), ("model", "Four."), ("user", "And times three?"))
    assert (dialogues.chosen, dialogues.rejected) == ("Twelve.", "Seven.")
    chat = parse_pair({"chosen": messages("Hi", "Hello!"), "rejected": messages("Hi", "Go away.")})
    assert chat == Pair((("user", "Hi"),), "Hello!", "Go away.", "messages")


@pytest.mark.parametrize(("record", "reason"), [
    ({"prompt": "p", "chosen": "same answer", "rejected": "  Same   ANSWER "}, "chosen_equals_rejected"),
    ({"chosen": HH_CHOSEN, "rejected": HH_REJECTED.replace("two plus two", "three plus three")}, "prompts_differ"),
    ({"chosen": messages("Hi", "Hello!"), "rejected": messages("Hey", "Go away.")}, "prompts_differ"),
])
def test_pairs_that_teach_nothing_are_dropped_with_a_reason(record, reason):
    parsed = parse_pair(record)
    assert isinstance(parsed, Unusable) and parsed.reason == reason


@pytest.mark.parametrize(("record", "reason"), [
    ([1, 2], "not_an_object"),
    ({"prompt": "p", "chosen": "c"}, "unknown_schema"),
    ({"prompt": 3, "chosen": "c", "rejected": "r"}, "field_not_string"),
    ({"prompt": " ", "chosen": "c", "rejected": "r"}, "empty_turn"),
    ({"chosen": "c", "rejected": ["r"]}, "bad_pair"),
    ({"chosen": "Hello there\n\nHuman: x\n\nAssistant: y", "rejected": HH_REJECTED}, "bad_dialogue"),
    ({"chosen": "Assistant: hi\n\nHuman: x", "rejected": HH_REJECTED}, "bad_role_order"),
    ({"chosen": "\n\nHuman: a\n\nHuman: b\n\nAssistant: c", "rejected": HH_REJECTED}, "bad_role_order"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c", "rejected": HH_REJECTED}, "missing_response"),
    ({"chosen": messages("Hi", "Hello!"), "rejected": [{"role": "robot", "content": "x"}]}, "bad_role"),
])
def test_malformed_records_are_dead_letters_with_a_reason(record, reason):
    parsed = parse_pair(record)
    assert isinstance(parsed, Invalid) and parsed.reason == reason, parsed


def test_hh_dialogues_keep_newlines_inside_turns():
    assert hh_dialogue("Human: line one\nline two\n\nAssistant: ok") == (("user", "line one\nline two"),
                                                                        ("model", "ok"))


def test_both_sequences_share_the_prompt_and_learn_only_the_final_answer(tiny_tokenizer):  # noqa: F811
    processor = load_processor(tiny_tokenizer.read_bytes())
    ids = ChatTokens.from_processor(processor)
    pair = parse_pair({"chosen": HH_CHOSEN, "rejected": HH_REJECTED})
    ((chosen, chosen_mask), (rejected, rejected_mask)), = format_pairs(
        [(pair.prompt, pair.chosen, pair.rejected)], lambda texts: processor.encode(texts), ids)
    first_answer = len(chosen) - np.argmax(chosen_mask[::-1] == 1)  # everything before the learnt span agrees
    start = int(np.argmax(chosen_mask))
    assert chosen[:start].tolist() == rejected[:start].tolist() and first_answer <= len(chosen)
    assert chosen[chosen_mask == 1].tolist() == [*processor.encode("Twelve."), ids.end_of_turn]
    assert rejected[rejected_mask == 1].tolist() == [*processor.encode("Seven."), ids.end_of_turn]
    # the earlier model turn ("Four.") is prompt: no loss on it
    assert processor.encode("Four.")[0] in chosen[:start].tolist()


def test_pair_records_edit_and_identify_both_answers():
    doc = {"text": "Blue.", "turns": [["user", "Name a colour."], ["model", "Blue."]], "rejected": "A potato."}
    assert editable_texts(doc) == ["Name a colour.", "Blue.", "A potato."]
    before = identity_hash(doc)
    replace_texts(doc, ["Name a colour.", "Blue.", "A carrot."])
    assert doc["rejected"] == "A carrot." and doc["text"] == "Blue." and identity_hash(doc) != before


@pytest.mark.slow  # the PII scrubber's imports take most of its time
def test_pairs_in_every_shape_through_the_job(tmp_path, tiny_tokenizer):  # noqa: F811
    records = [
        {"id": "s1", "prompt": "Where do I write?", "chosen": "Use the contact form.",
         "rejected": "Write to jane.doe@example.com directly."},
        {"id": "s2", "prompt": "WHERE do I write?", "chosen": "use the contact form.",
         "rejected": "write to jane.doe@example.com directly."},  # exact duplicate of s1 once folded
        {"id": "h1", "chosen": HH_CHOSEN, "rejected": HH_REJECTED},
        {"id": "m1", "chosen": messages("Hi", "Hello!"), "rejected": messages("Hi", "Go away.")},
        {"id": "e1", "prompt": "p", "chosen": "same", "rejected": "same"},
        {"id": "d1", "chosen": messages("Hi", "Hello!"), "rejected": messages("Hey", "Go away.")},
        {"id": "l1", "prompt": "tell me " * 300, "chosen": "no", "rejected": "yes"},  # too long for 128 tokens
        {"id": "x1", "chosen": "c", "rejected": ["r"]},
        # The default safety filter judges the chosen answer only: an offensive rejected answer is the lesson.
        {"id": "t1", "prompt": "Review my essay", "chosen": "Shut the fuck up, you stupid moron.",
         "rejected": "It reads well."},
        {"id": "t2", "prompt": "Review my essay", "chosen": "It reads well; tighten the ending.",
         "rejected": "Shut the fuck up, you stupid moron."},
        "{not json",
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    config = PrefsConfig(packing=PackingConfig(seq_len=128, validation_fraction=0.0),
                         pii=PiiConfig(enabled=True, entities=("EMAIL_ADDRESS",)))
    out = tmp_path / "out"
    manifest = run_prefs([str(path)], str(tiny_tokenizer), str(out), config, echo=False)
    assert manifest["kind"] == "preference" and manifest["splits"]["train"]["sequences"] == 4
    assert Manifest.load(out).kind == "preference"  # the readers' parser accepts it

    table = pa.concat_tables([pq.read_table(out / s["path"]) for s in manifest["splits"]["train"]["shards"]])
    assert table.column_names == list(PAIR_COLUMN_TYPES)
    processor = load_processor(tiny_tokenizer.read_bytes())
    rejected_answers = sorted(processor.decode([t for t, m in zip(tokens, mask, strict=True) if m][:-1])
                              for tokens, mask in zip(table.column("rejected_tokens").to_pylist(),
                                                      table.column("rejected_loss_mask").to_pylist(), strict=True))
    assert any("<EMAIL>" in a for a in rejected_answers)  # the rejected answer was scrubbed too
    assert not any("jane.doe" in a for a in rejected_answers)
    assert manifest["splits"]["train"]["loss_tokens"] == sum(
        sum(m) for column in ("chosen_loss_mask", "rejected_loss_mask") for m in table.column(column).to_pylist())

    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounting"] == {"records_read": 11, "kept": 4, "dropped": 5, "dead_lettered": 2}
    read = next(s for s in stats["stages"] if s["stage"] == "read")
    assert read["dropped"] == {"chosen_equals_rejected": 1, "prompts_differ": 1}
    assert read["extra"]["shape.strings"] == 5 and read["extra"]["shape.dialogues"] == 1
    reasons = sorted(r["reject_reason"] for r in pq.read_table(out / "rejected").to_pylist())
    assert reasons == ["chosen_equals_rejected", "exact_duplicate", "prompts_differ",
                       "safety.offensive_above_threshold", "too_long"]
    dead = sorted(d["reason"] for d in pq.read_table(out / "dead_letter").to_pylist())
    assert dead == ["bad_pair", "invalid_json"]


def test_the_trainer_refuses_preference_shards(tmp_path, tiny_tokenizer, capsys):  # noqa: F811
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Name a colour.", "chosen": "Blue.",
                                                    "rejected": "A potato."}])
    out = tmp_path / "prefs"
    assert main(["prefs", "--input", str(path), "--tokenizer", str(tiny_tokenizer), "--output", str(out),
                 "--seq-len", "64", "--quiet"]) == 0
    from gemmaflow.model.train import check_inputs
    from gemmaflow.model.train_config import TrainConfig

    with pytest.raises(ShardFormatError, match=r"preference shards \(gemmaflow prefs\) hold pairs"):
        check_inputs(out, TrainConfig())
