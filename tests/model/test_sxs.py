"""Side-by-side: both orders judged, position bias cancelled, win rates with intervals, judges of each kind."""

from __future__ import annotations

import pytest

from gemmaflow.model.eval_tasks import TaskFileError
from gemmaflow.model.sxs import (
    LMJudge,
    SxsPrompt,
    answer,
    bootstrap_interval,
    load_judge,
    load_prompts,
    side_by_side,
)
from tests.conftest import write_jsonl

PROMPTS = [SxsPrompt(i, f"prompt {i}", "factuality" if i < 6 else "creativity") for i in range(10)]


def test_a_judge_that_always_prefers_the_first_position_gives_only_ties():
    result = side_by_side(PROMPTS, ["a"] * 10, ["b"] * 10, lambda prompt, first, second: 1.0)
    assert result.overall["win_rate_a"] == 0.5 and result.overall["ties"] == 10
    assert result.overall["ci_low"] == result.overall["ci_high"] == 0.5


def test_win_rates_per_capability_follow_the_judge_in_both_orders():
    seen = []

    def judge(prompt: str, first: str, second: str) -> float:
        seen.append((first, second))
        return 1.0 if first.startswith("good") else 0.0

    answers_a = ["good"] * 6 + ["bad", "bad", "good", "bad"]  # factuality: A always better; creativity: mixed
    answers_b = ["bad"] * 6 + ["good", "good", "bad", "bad"]
    result = side_by_side(PROMPTS, answers_a, answers_b, judge)
    assert sorted(seen[:10]) == sorted(zip(answers_a, answers_b, strict=True))  # A shown first, then B first
    assert sorted(seen[10:]) == sorted(zip(answers_b, answers_a, strict=True))
    factuality, creativity = result.by_capability["factuality"], result.by_capability["creativity"]
    assert (factuality["win_rate_a"], factuality["wins_a"], factuality["n"]) == (1.0, 6, 6)
    assert (creativity["wins_a"], creativity["wins_b"], creativity["ties"]) == (1, 2, 1)
    assert creativity["win_rate_a"] == pytest.approx(1.5 / 4)
    assert 0.0 <= creativity["ci_low"] <= creativity["win_rate_a"] <= creativity["ci_high"] <= 1.0
    assert result.samples[0]["a_first_verdict"] == 1.0 and result.samples[0]["b_first_verdict"] == 0.0


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 10
    low, high = bootstrap_interval(values)
    assert (low, high) == bootstrap_interval(values) and low < 0.75 < high and high - low < 0.35


def test_a_judge_returning_something_else_than_a_probability_is_refused():
    with pytest.raises(ValueError, match="must return the probability"):
        side_by_side(PROMPTS[:1], ["a"], ["b"], lambda *_: "A")


def test_judges_load_from_a_python_file_or_module(tmp_path):
    source = "def longer(prompt, first, second):\n    return float(len(first) > len(second))\n"
    (tmp_path / "my_judge.py").write_text(source)
    judge = load_judge(f"{tmp_path / 'my_judge.py'}:longer")
    assert judge("p", "long answer", "short") == 1.0
    assert load_judge("math:sqrt")(4.0) == 2.0  # any importable callable
    for bad, message in ((f"{tmp_path / 'my_judge.py'}:missing", "no callable 'missing'"),
                         ("no_such_module_xyz:f", "cannot import"),
                         ("lm", "expected reward:MODEL_FOLDER, lm:MODEL_FOLDER")):
        with pytest.raises(ValueError, match=message):
            load_judge(bad)


def test_prompt_files_name_a_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Say hi", "capability": "chat"}, {"text": "x"}])
    with pytest.raises(TaskFileError, match=r"p.jsonl:2: field 'prompt'"):
        load_prompts(str(path))
    (prompt,) = load_prompts(str(path), limit=1)
    assert (prompt.text, prompt.capability) == ("Say hi", "chat")


def test_the_trained_model_beats_the_untrained_one_and_an_lm_judge_scores_both_orders(
        planted_trained, planted_untrained, planted_pairs):
    pairs = planted_pairs[:12]
    prompts = [SxsPrompt(i, f"The capital of {country} is", "factuality") for i, (country, _) in enumerate(pairs)]
    answers_a = answer(planted_trained, prompts, max_new_tokens=6, chat=False, batch_size=8)
    answers_b = answer(planted_untrained, prompts, max_new_tokens=6, chat=False, batch_size=8)
    capital = {f"The capital of {country} is": city for country, city in pairs}

    def knows_the_capital(prompt: str, first: str, second: str) -> float:
        return 0.5 + 0.5 * ((capital[prompt] in first) - (capital[prompt] in second))

    result = side_by_side(prompts, answers_a, answers_b, knows_the_capital)
    assert result.overall["win_rate_a"] >= 0.9 and result.overall["ci_low"] > 0.5

    triples = [(p.text, a, b) for p, a, b in zip(prompts, answers_a, answers_b, strict=True)][:3]
    verdicts = LMJudge(planted_untrained).judge_batch(triples)
    assert all(0.0 < v < 1.0 for v in verdicts)
    assert verdicts == pytest.approx(LMJudge(planted_untrained, batch_size=1).judge_batch(triples), abs=1e-5)
