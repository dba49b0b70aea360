"""Reward model, DPO and REINFORCE through the trainer on a planted rule (tests/model/pair_fixtures.py).

A policy fine-tuned on both answers of every pair follows the rule about half the time; the reward
model must order held-out pairs, and DPO and REINFORCE must raise the share of sampled answers that
follow the rule while their KL to the starting policy stays bounded.
"""

import io
import json
import shutil

import jax
import numpy as np
import pytest

from gemmaflow import cli
from gemmaflow.model.api import GemmaLM
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.reward import GemmaRewardModel
from gemmaflow.model.sampling import Sampler, SamplerKind, generate
from gemmaflow.model.shards import ShardFormatError
from gemmaflow.model.train import train
from gemmaflow.model.train_config import load_train_config
from tests.model.pair_fixtures import (
    OPTIONS,
    VOCAB,
    follows_rule,
    prompt_tokens,
    rule_pairs,
    sft_rows_from_pairs,
    write_planted_pairs,
)
from tests.model.shard_fixtures import write_shard_folder, write_shards

COMMON = {"model.preset": "tiny", "model.num_layers": 2, "batch_size": 16, "checkpoint_every": 1000,
          "eval_batches": 4, "optimizer.learning_rate": 3e-3}
RL = {"optimizer.learning_rate": 1e-3, "optimizer.warmup_fraction": 0.0, "steps": 40}


def run(shards, out, **overrides):
    return train(shards, load_train_config(None, {**COMMON, **overrides}), out, stream=io.StringIO())


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def rule_share(model_folder, samples=240, seed=0):
    """Share of sampled answers (temperature 1) that follow the rule, over `samples` random prompts."""
    lm = GemmaLM.from_pretrained(model_folder)
    rng = np.random.default_rng(100)
    prompts = [prompt_tokens(*(int(x) for x in rng.integers(0, OPTIONS, 3))) for _ in range(samples)]
    generation = generate(lm.params, lm.config, prompts, max_length=12, sampler=Sampler(SamplerKind.RANDOM),
                          rng=jax.random.key(seed))
    return float(np.mean([follows_rule(p, a) for p, a in zip(prompts, generation.continuations(), strict=True)]))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Pairs, the SFT policy (both answers of every pair) and a reward model trained on the pairs."""
    root = tmp_path_factory.mktemp("planted")
    pairs = write_planted_pairs(root / "pairs")
    sft_shards = write_shard_folder(root / "sft_shards", {"train": [sft_rows_from_pairs(rule_pairs(256, 0))]},
                                    seq_len=32, vocab_size=VOCAB, kind="sft")
    run(sft_shards, root / "sft", kind="sft", steps=150)
    run(pairs, root / "rm", kind="reward", steps=80, eval_every=40)
    return {"pairs": pairs, "sft": root / "sft", "rm": root / "rm", "sft_share": rule_share(root / "sft")}


def test_the_reward_model_orders_held_out_pairs_and_loads_for_scoring(planted):
    evals = [m for m in metrics(planted["rm"]) if "eval_accuracy" in m]
    assert [m["step"] for m in evals] == [40, 80] and evals[-1]["eval_accuracy"] >= 0.95
    assert {"accuracy", "margin", "pairs", "grad_norm"} <= set(metrics(planted["rm"])[0])
    model = GemmaRewardModel.from_pretrained(planted["rm"])
    held_out = rule_pairs(64, 7)
    chosen = model.score([p[0] for p in held_out])
    rejected = model.score([p[2] for p in held_out])
    assert np.mean(chosen > rejected) >= 0.95
    with pytest.raises(CheckpointError, match="reward model"):
        GemmaLM.from_pretrained(planted["rm"])
    with pytest.raises(CheckpointError, match="no reward head"):
        GemmaRewardModel.from_pretrained(planted["sft"])


def test_a_lora_reward_model_trains_its_head_beside_the_adapters(planted, tmp_path):
    run(planted["pairs"], tmp_path / "rm", kind="reward", steps=80, **{
        "model.init_from": str(planted["sft"]), "lora.enabled": True, "lora.rank": 4, "optimizer.learning_rate": 1e-2})
    assert [m for m in metrics(tmp_path / "rm") if "eval_accuracy" in m][-1]["eval_accuracy"] >= 0.95
    held_out = rule_pairs(64, 8)
    model = GemmaRewardModel.from_pretrained(tmp_path / "rm")
    assert np.mean(model.score([p[0] for p in held_out]) > model.score([p[2] for p in held_out])) >= 0.95


def test_reinforce_raises_the_rule_share_at_a_bounded_kl(planted, tmp_path):
    result = run(planted["pairs"], tmp_path / "rl", kind="reinforce", **RL,
                 **{"model.init_from": str(planted["sft"]), "reinforce.reward_model": str(planted["rm"]),
                    "reinforce.max_new_tokens": 4, "reinforce.samples_per_prompt": 4})
    assert result.eval_loss is None  # no validation pass: prompts are sampled, not scored
    steps = metrics(tmp_path / "rl")
    assert {"reward", "kl", "response_length", "entropy", "truncated", "sequences"} <= set(steps[0])
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first samples come from the reference itself
    assert np.mean([m["reward"] for m in steps[-10:]]) > np.mean([m["reward"] for m in steps[:5]])
    assert 0.0 < max(m["kl"] for m in steps) < 3.0
    after = rule_share(tmp_path / "rl")
    assert planted["sft_share"] < 0.65 and after >= planted["sft_share"] + 0.2, (planted["sft_share"], after)


def test_dpo_raises_the_rule_share(planted, tmp_path):
    run(planted["pairs"], tmp_path / "dpo", kind="dpo", **RL, **{"model.init_from": str(planted["sft"])})
    evals = [m for m in metrics(tmp_path / "dpo") if "eval_accuracy" in m]
    assert evals[-1]["eval_accuracy"] >= 0.9 and evals[-1]["eval_reward_margin"] > 0
    after = rule_share(tmp_path / "dpo")
    assert after >= planted["sft_share"] + 0.2, (planted["sft_share"], after)


def test_a_reinforce_run_resumed_from_a_checkpoint_samples_and_steps_as_the_uninterrupted_one(planted, tmp_path):
    overrides = {**RL, "steps": 6, "checkpoint_every": 3, "kind": "reinforce", "model.init_from": str(planted["sft"]),
                 "reinforce.reward_model": str(planted["rm"]), "reinforce.max_new_tokens": 4}
    run(planted["pairs"], tmp_path / "whole", **overrides)
    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "whole", killed)
    shutil.rmtree(killed / "checkpoints" / "6")
    shutil.rmtree(killed / "final")
    train(planted["pairs"], load_train_config(None, {**COMMON, **overrides}), killed, resume=True,
          stream=io.StringIO())
    keys = ("loss", "reward", "kl", "entropy")
    resumed, whole = metrics(killed), metrics(tmp_path / "whole")
    assert [[m[k] for k in keys] for m in resumed] == [[m[k] for k in keys] for m in whole]


def test_preference_kinds_refuse_the_wrong_inputs(planted, tmp_path):
    packed = write_shards(tmp_path / "packed", seq_len=32, vocab_size=VOCAB)
    with pytest.raises(ShardFormatError, match="trains on preference pairs"):
        run(packed, tmp_path / "a", kind="reward", steps=1)
    with pytest.raises(ShardFormatError, match="kind=reward"):
        run(planted["pairs"], tmp_path / "b", steps=1)
    with pytest.raises(ValueError, match="reward_model"):
        load_train_config(None, {"kind": "reinforce", "model.init_from": str(planted["sft"])})
    with pytest.raises(ValueError, match="whole groups"):
        load_train_config(None, {"kind": "reinforce", "batch_size": 6, "reinforce.samples_per_prompt": 4,
                                 "reinforce.reward_model": "x", "model.init_from": "y"})
    with pytest.raises(ShardFormatError, match="no reward head"):
        run(planted["pairs"], tmp_path / "c", kind="reinforce", steps=1,
            **{"model.init_from": str(planted["sft"]), "reinforce.reward_model": str(planted["sft"])})
    with pytest.raises(ShardFormatError, match="is a reward model"):
        run(planted["pairs"], tmp_path / "d", kind="dpo", steps=1, **{"model.init_from": str(planted["rm"])})
    assert not (tmp_path / "c" / "checkpoints").exists()


def test_the_train_command_trains_a_reward_model(planted, tmp_path, capsys):
    code = cli.main(["train", "--shards", str(planted["pairs"]), "--out", str(tmp_path / "rm"),
                     "--set", "kind=reward", "--set", "model.preset=tiny", "--set", "model.num_layers=1",
                     "--set", "steps=3", "--set", "batch_size=4"])
    assert code == 0
    assert "eval at step 3: loss" in capsys.readouterr().out and "eval_accuracy" in metrics(tmp_path / "rm")[-1]
    assert GemmaRewardModel.from_pretrained(tmp_path / "rm").score([[2, 106, 10, 107]]).shape == (1,)


def test_dpo_and_reinforce_run_over_an_nf4_base(planted, tmp_path):
    """QLoRA for the preference kinds: the frozen quantized base is also the reference, so the first step
    compares the policy with itself (DPO's loss log 2, REINFORCE's KL 0)."""
    qlora = {**RL, "steps": 2, "model.init_from": str(planted["sft"]), "lora.enabled": True, "lora.rank": 4,
             "lora.quantize": "nf4"}
    run(planted["pairs"], tmp_path / "dpo", kind="dpo", **qlora)
    assert metrics(tmp_path / "dpo")[0]["loss"] == pytest.approx(np.log(2.0), abs=1e-4)
    run(planted["pairs"], tmp_path / "rl", kind="reinforce", **qlora, **{
        "reinforce.reward_model": str(planted["rm"]), "reinforce.max_new_tokens": 4})
    steps = metrics(tmp_path / "rl")
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-4) and all(np.isfinite(m["loss"]) for m in steps)
