"""Benchmark evaluation: task mapping, the harness's log-likelihood definition, bits per byte, generation,
and a planted task that only a model trained on its facts can solve."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from gemmaflow.core.configio import ConfigError
from gemmaflow.model import GemmaLM
from gemmaflow.model.eval_tasks import (
    TaskFileError,
    TaskSpec,
    extract_answer,
    fewshot_prefixes,
    load_items,
    load_task_spec,
)
from gemmaflow.model.evaluate import (
    Request,
    ScoringStats,
    bits_per_byte,
    choice_request,
    evaluate,
    loglikelihoods,
    rolling_requests,
)
from tests.conftest import write_jsonl
from tests.model.planted import fact_sentence, facts, write_task


@pytest.fixture
def pairs(planted_pairs):
    return planted_pairs


@pytest.fixture
def untrained(planted_untrained):
    return planted_untrained


@pytest.fixture
def trained(planted_trained):
    return planted_trained


# --- Task files ------------------------------------------------------------------------------------


def spec_for(path, **fields) -> TaskSpec:
    return TaskSpec(name="t", path=str(path), kind=fields.pop("kind", "multiple_choice"), **fields)


def test_a_field_the_file_lacks_is_named_with_its_line(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"ctx": "a", "endings": ["x", "y"], "label": 1},
                                              {"ctx": "b", "label": 0}])
    with pytest.raises(TaskFileError, match=r"task 't' \(.*t.jsonl:2\): field 'endings' not found"):
        load_items(spec_for(path, context="ctx", choices="endings"))
    with pytest.raises(TaskFileError, match=r"t.jsonl:1\): field 'question' not found \(record has \['ctx'"):
        load_items(spec_for(path, context="question", choices="endings"))


@pytest.mark.parametrize(("label", "index"), [(2, 2), ("2", 2), ("C", 2), ("c", 2), ([0, 0, 1], 2)])
def test_labels_in_each_common_form(tmp_path, label, index):
    path = write_jsonl(tmp_path / "t.jsonl", [{"context": "q", "choices": ["a", "b", "c"], "label": label}])
    (item,) = load_items(spec_for(path))
    assert item.label == index


@pytest.mark.parametrize("label", [3, "D", True, [1, 1, 0], None, -1])
def test_a_label_that_names_no_choice_is_refused(tmp_path, label):
    path = write_jsonl(tmp_path / "t.jsonl", [{"context": "q", "choices": ["a", "b", "c"], "label": label}])
    with pytest.raises(TaskFileError, match="field 'label'"):
        load_items(spec_for(path))


def test_choice_keys_map_an_arc_answer_key_to_its_choice(tmp_path):
    records = [{"q": "x", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, "answerKey": "2"},
               {"q": "y", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}]
    spec = spec_for(write_jsonl(tmp_path / "arc.jsonl", records), context="q", choices="choices.text",
                    label="answerKey", choice_labels="choices.label", limit=1)
    assert load_items(spec, limit=1)[0].label == 1  # the key "2" is the second choice, not index 2
    with pytest.raises(TaskFileError, match=r"'answerKey' = 'C' is none of the keys \['A', 'B'\]"):
        load_items(spec)


def test_templates_dotted_fields_and_choices_from_several_fields(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"goal": "Open a jar", "sol1": "twist", "sol2": "bite",
                                                "meta": {"gold": 0}}])
    (item,) = load_items(spec_for(path, context_template="Question: {goal}\nAnswer:", choices=("sol1", "sol2"),
                                  label="meta.gold"))
    assert (item.context, item.choices, item.label) == ("Question: Open a jar\nAnswer:", ("twist", "bite"), 0)


def test_yaml_paths_are_relative_to_the_yaml_and_bare_jsonl_takes_its_shape_from_its_fields(tmp_path, pairs):
    yaml_path = write_task(tmp_path / "tasks", pairs)
    yaml_path.write_text(yaml_path.read_text() + "num_fewshot: 1\nfewshot_path: capitals.jsonl\n")
    spec = load_task_spec(yaml_path)
    assert spec.path == spec.fewshot_path == str(tmp_path / "tasks" / "capitals.jsonl")
    assert len(load_items(spec)) == len(pairs)
    shapes = {"mc": {"context": "c", "choices": ["a", "b"], "label": 0}, "gen": {"context": "c", "answer": "#### 4"},
              "ppl": {"text": "some words"}}
    kinds = {name: load_task_spec(write_jsonl(tmp_path / f"{name}.jsonl", [record])).kind
             for name, record in shapes.items()}
    assert kinds == {"mc": "multiple_choice", "gen": "generate", "ppl": "perplexity"}
    with pytest.raises(TaskFileError, match="needs `choices`"):
        load_task_spec(write_jsonl(tmp_path / "odd.jsonl", [{"prompt": "x"}]))
    (tmp_path / "bad.yaml").write_text("name: x\npath: x.jsonl\nkind: multiple_choice\ncontxt: q\n")
    with pytest.raises(ConfigError, match="unknown key contxt"):
        load_task_spec(tmp_path / "bad.yaml")


def test_answer_extraction_follows_gsm8k_strict_match():
    assert extract_answer("so 6 * 7 = 42.\n#### 42", TaskSpec.answer_pattern) == "42"
    assert extract_answer("#### 1,000.", TaskSpec.answer_pattern) == "1000"
    assert extract_answer("the answer is 42", TaskSpec.answer_pattern) is None
    assert extract_answer("  Paris. ", "") == "Paris"


def test_fewshot_examples_are_fixed_by_seed_and_index_and_never_the_item_itself(tmp_path):
    records = [{"context": f"q{i}", "choices": ["a", "b"], "label": i % 2} for i in range(12)]
    spec = spec_for(write_jsonl(tmp_path / "t.jsonl", records), num_fewshot=3)
    items = load_items(spec)
    prefixes = fewshot_prefixes(spec, items, None)
    assert prefixes == fewshot_prefixes(spec, list(reversed(items)), None)[::-1]  # order-independent
    for item, prefix in zip(items, prefixes, strict=True):
        shots = prefix.split("\n\n")[:-1]
        assert len(shots) == 3 and f"{item.context} " not in [s[: len(item.context) + 1] for s in shots]
        assert all(shot in {f"q{i} {'ab'[i % 2]}" for i in range(12)} for shot in shots)
    other = fewshot_prefixes(TaskSpec(**{**spec.__dict__, "fewshot_seed": 5}), items, None)
    assert other != prefixes


# --- Scoring ---------------------------------------------------------------------------------------


def reference_loglik(lm: GemmaLM, request: Request) -> float:
    """One request alone, from the full logits and a float64 log-softmax: the definition, unbatched."""
    sequence = [*request.context, *request.continuation]
    logits = np.asarray(lm.score(np.array([sequence[:-1]], np.int32)), np.float64)[0]
    logprobs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    n = len(request.continuation)
    return float(sum(logprobs[len(sequence) - 1 - n + j, token] for j, token in enumerate(request.continuation)))


def test_choice_requests_follow_the_harness_encoding(untrained):
    sp = untrained.tokenizer
    request = choice_request(untrained, "The capital of Kalo is ", "Quoren")
    context = sp.encode("The capital of Kalo is")
    assert request.context == (sp.bos_id(), *context)  # the trailing space moved to the continuation
    assert request.continuation == tuple(sp.encode("The capital of Kalo is Quoren")[len(context):])


def test_batched_log_likelihoods_equal_each_request_scored_alone(untrained):
    requests = [choice_request(untrained, fact_sentence(country, "")[:-2], " " + capital)
                for country, capital in facts()[:7]]
    requests.append(Request((2,), (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22)))
    stats = ScoringStats()
    batched = loglikelihoods(untrained, requests, batch_size=3, bucket=8, stats=stats)
    alone = [reference_loglik(untrained, r) for r in requests]
    np.testing.assert_allclose(batched, alone, atol=2e-5)
    assert stats.tokens == sum(len(r.context) + len(r.continuation) - 1 for r in requests)


def test_bits_per_byte_over_windows_adds_up_each_windows_tokens(untrained, tmp_path):
    import dataclasses

    short = GemmaLM(dataclasses.replace(untrained.config, max_seq_len=16), untrained.params, untrained.tokenizer_path)
    text = " ".join(fact_sentence(*pair) for pair in facts()[:4])
    windows = rolling_requests(short, text)
    ids = short.tokenizer.encode(text)
    assert len(windows) == -(-len(ids) // 16) > 1
    assert [t for w in windows for t in w.continuation] == ids  # every token predicted exactly once
    assert all(w.context == (ids[sum(len(v.continuation) for v in windows[:i]) - 1],) for i, w in enumerate(windows)
               if i > 0)
    spec = spec_for(write_jsonl(tmp_path / "d.jsonl", [{"text": text, "domain": "web"}]), kind="perplexity")
    result = bits_per_byte(short, spec, load_items(spec), batch_size=2, stats=ScoringStats())
    expected = -sum(reference_loglik(short, w) for w in windows) / np.log(2) / len(text.encode())
    assert result.metrics["bits_per_byte"] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["by_group"]["web"]["bits_per_byte"] == pytest.approx(expected, rel=1e-5)


# --- The planted task ------------------------------------------------------------------------------


def test_a_planted_task_is_at_chance_before_training_and_solved_after(untrained, trained, tmp_path, pairs):
    specs = [load_task_spec(write_task(tmp_path, pairs))]
    generate_spec = TaskSpec(name="capital_generate", kind="generate", path=str(write_jsonl(
        tmp_path / "gen.jsonl", [{"context": f"The capital of {country} is", "answer": capital}
                                 for country, capital in pairs])), answer_pattern="", stop=(".",), max_new_tokens=8)
    before, _ = evaluate(untrained, [*specs, generate_spec], batch_size=8)
    after, stats = evaluate(trained, [*specs, generate_spec], batch_size=8)
    assert before[0].metrics["chance"] == 0.25
    assert before[0].metrics["acc"] <= 0.45 and before[1].metrics["exact_match"] == 0.0
    assert after[0].metrics["acc"] >= 0.95 and after[0].metrics["acc_norm"] >= 0.95
    assert after[1].metrics["exact_match"] >= 0.9
    assert stats.tokens > 0 and len(after[0].samples) == len(pairs) and len(after[0].samples[0]["loglik"]) == 4


def test_trained_model_scores_its_training_text_below_an_untrained_one(untrained, trained, tmp_path, pairs):
    path = write_jsonl(tmp_path / "held.jsonl", [{"text": fact_sentence(*pair), "domain": "facts"} for pair in pairs])
    spec = spec_for(path, kind="perplexity")
    (before,), _ = evaluate(untrained, [spec])
    (after,), _ = evaluate(trained, [spec])
    assert after.metrics["bits_per_byte"] < 0.5 * before.metrics["bits_per_byte"]
    assert set(after.metrics["by_group"]) == {"facts"}
    assert json.dumps(after.metrics)  # plain JSON
    assert jax.tree.leaves(trained.params)
