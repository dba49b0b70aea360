"""The rule-following RLHF check: its data and rule, then the whole run (SFT, reward model, REINFORCE, DPO)."""

import json
from pathlib import Path

import pytest

from gemmaflow.rule_following import (
    RuleFollowingConfig,
    follows_rule,
    load_rule_config,
    questions,
    run_rule_following,
    write_data,
)


@pytest.mark.parametrize(("question", "reply", "expected"), [
    ("Write 12 in words.", "It is twelve.", True),
    ("Write 12 in words.", "It is 12.", False),
    ("How do you write seven in digits?", "It is 7.", True),
    ("How do you write seven in digits?", "It is seven.", False),
    ("Give 4 in words.", "It is fourr.", False),  # a made-up number word does not count
    ("Give 4 in words.", "", False),
])
def test_the_rule_reads_the_last_word_of_the_reply(question, reply, expected):
    assert follows_rule(question, reply) is expected


def test_the_data_holds_out_questions_and_prefers_the_requested_form(tmp_path):
    config = RuleFollowingConfig(pairs=200, sft_examples=400)
    train, heldout = questions(config)
    assert not {q.text for q in train} & {q.text for q in heldout} and len(heldout) == round(336 * 0.2)
    data = write_data(tmp_path / "a", config)
    pairs = [json.loads(line) for line in Path(data["files"]["prefs"]).read_text().splitlines()]
    assert all(follows_rule(p["prompt"], p["chosen"]) and not follows_rule(p["prompt"], p["rejected"]) for p in pairs)
    assert {p["prompt"] for p in pairs} <= {q.text for q in train}
    sft = [json.loads(line) for line in Path(data["files"]["sft"]).read_text().splitlines()]
    share = sum(follows_rule(r["instruction"], r["response"]) for r in sft) / len(sft)
    assert 0.4 < share < 0.6  # the SFT data teaches each form half the time
    again = write_data(tmp_path / "b", config)
    for name in ("sft", "prefs", "heldout_prefs"):
        assert Path(data["files"][name]).read_bytes() == Path(again["files"][name]).read_bytes()
    with pytest.raises(ValueError, match="heldout_fraction"):
        load_rule_config(None, {"heldout_fraction": 1.0})


@pytest.mark.slow
def test_reward_model_reinforce_and_dpo_learn_the_rule(tmp_path):
    """The issue's targets: held-out reward accuracy >= 0.95; REINFORCE and DPO raise the share of sampled
    answers that follow the rule (over >= 200 samples) by a clear margin, at a bounded KL to the SFT policy."""
    result = run_rule_following(tmp_path / "run", RuleFollowingConfig())
    assert json.loads((tmp_path / "run" / "rule_following.json").read_text()) == result
    for name in ("sft", "prefs"):
        terms = result["data"][name]["accounting"]
        assert terms["records_read"] == terms["kept"] + terms["dropped"] + terms["dead_lettered"] and terms["kept"]
    assert result["reward_model"]["accuracy"] >= 0.95 and result["reward_model"]["pairs"] >= 50
    sft, reinforce, dpo = (result["policies"][name] for name in ("sft", "reinforce", "dpo"))
    assert sft["samples"] >= 200 and 0.3 < sft["rule_share"] < 0.7
    for policy in (reinforce, dpo):
        assert policy["rule_share"] >= sft["rule_share"] + 0.25, result["policies"]
        assert 0 < policy["kl_to_sft"] < 6
    curves = result["training"]["reinforce"]
    assert curves["last_reward"] > curves["first_reward"] and curves["steps"] == 200


def test_a_folder_holding_files_it_did_not_write_is_refused_untouched(tmp_path):
    from gemmaflow.pipeline.run_output import OutputExistsError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="already holds files"):
        run_rule_following(tmp_path, RuleFollowingConfig())
    with pytest.raises(OutputExistsError, match="did not write"):
        run_rule_following(tmp_path, RuleFollowingConfig(), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
