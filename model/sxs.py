"""Side-by-side evaluation: two models answer the same prompts, a judge prefers one answer per prompt.

Gemma's SFT mixtures were chosen this way (Gemma Team, 2024, section 4: side-by-side evaluations against
a reference model on held-out prompt sets per capability). Judges favour the answer shown first or
second (Zheng et al., 2023, "Judging LLM-as-a-judge", section 3.3), so every prompt is judged in both
orders and the two verdicts are averaged: a judge that always picks one position scores every prompt a
tie. The win rate of A per capability is the mean of those averaged verdicts, with a 95% percentile
bootstrap interval (seeded, so reruns agree).

A judge is any callable `(prompt, first, second) -> probability that first is better`, in [0, 1]: a
user's Python function, a `GemmaLM` asked which answer is better (`LMJudge`), a trained reward model
(`GemmaRewardModel`: the Bradley–Terry probability from its two rewards), or anything with a
`judge_batch(triples)` method for batched scoring.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gemmaflow.core.chat import generation_prompt
from gemmaflow.model.api import GemmaLM
from gemmaflow.model.eval_tasks import TaskFileError, records
from gemmaflow.model.evaluate import choice_request, greedy_continuations, loglikelihoods
from gemmaflow.model.reward import GemmaRewardModel

Triple = tuple[str, str, str]  # (prompt, first response, second response)
JudgeFn = Callable[[str, str, str], float]
TIE_MARGIN = 1e-6  # averaged verdicts this close to 0.5 count as ties


class BatchJudge(Protocol):
    def judge_batch(self, triples: Sequence[Triple]) -> list[float]: ...


@dataclass(frozen=True)
class SxsPrompt:
    index: int
    text: str
    capability: str


def load_prompts(path: str, prompt_field: str = "prompt", capability_field: str = "capability",
                 limit: int | None = None) -> list[SxsPrompt]:
    """`{prompt, capability}` records (field names configurable); a record without a capability is `general`."""
    prompts = []
    for index, (number, record) in enumerate(records(path, limit)):
        text = record.get(prompt_field)
        if not isinstance(text, str) or not text.strip():
            raise TaskFileError(f"{path}:{number}: field {prompt_field!r} should hold the prompt text "
                                f"(record has {sorted(record)})")
        capability = record.get(capability_field, "general")
        prompts.append(SxsPrompt(index, text, str(capability)))
    if not prompts:
        raise TaskFileError(f"{path}: no prompts")
    return prompts


def answer(lm: GemmaLM, prompts: Sequence[SxsPrompt], max_new_tokens: int, chat: bool, batch_size: int) -> list[str]:
    """Greedy answers; with `chat`, each prompt goes in Gemma's user turn and the answer is the model turn."""
    if lm.tokenizer is None:
        raise ValueError("side-by-side needs each model's tokenizer (a tokenizer.model in the model folder)")
    texts = [generation_prompt(p.text) if chat else p.text for p in prompts]
    ids = [lm.encode(text) for text in texts]
    return [text.strip() for text in greedy_continuations(lm, ids, max_new_tokens, batch_size)]


JUDGE_TEMPLATE = (
    "Which response answers the request better? Reply with A or B.\n\n"
    "Request: {prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\nThe better response is"
)


class LMJudge:
    """A `GemmaLM` as the judge: no sampling, the probability of " A" against " B" after the question."""

    def __init__(self, lm: GemmaLM, template: str = JUDGE_TEMPLATE, chat: bool = False, batch_size: int = 16) -> None:
        self.lm, self.template, self.chat, self.batch_size = lm, template, chat, batch_size

    def judge_batch(self, triples: Sequence[Triple]) -> list[float]:
        requests = []
        for prompt, first, second in triples:
            question = self.template.format(prompt=prompt, first=first, second=second)
            context = generation_prompt(question) if self.chat else question
            requests += [choice_request(self.lm, context, " A"), choice_request(self.lm, context, " B")]
        scores = loglikelihoods(self.lm, requests, self.batch_size)
        return [1.0 / (1.0 + math.exp(b - a)) for a, b in zip(scores[::2], scores[1::2], strict=True)]

    def __call__(self, prompt: str, first: str, second: str) -> float:
        return self.judge_batch([(prompt, first, second)])[0]


def load_judge(spec: str, batch_size: int = 16) -> JudgeFn | BatchJudge:
    """`reward:FOLDER` (a reward model: sigmoid of the reward difference), `lm:FOLDER` (a model asked which is
    better), or `MODULE:FUNCTION` / `FILE.py:FUNCTION` (a callable)."""
    kind, _, target = spec.partition(":")
    if kind == "reward" and target:
        judge = GemmaRewardModel.from_pretrained(target, batch_size=batch_size)
        if judge.tokenizer is None:
            raise ValueError(f"judge {spec!r}: the reward model folder has no tokenizer.model")
        return judge
    if kind == "lm" and target:
        return LMJudge(GemmaLM.from_pretrained(target), batch_size=batch_size)
    if not target:
        raise ValueError(f"judge {spec!r}: expected reward:MODEL_FOLDER, lm:MODEL_FOLDER, MODULE:FUNCTION or "
                         "FILE.py:FUNCTION")
    if kind.endswith(".py"):
        location = importlib.util.spec_from_file_location(Path(kind).stem, kind)
        if location is None or location.loader is None or not Path(kind).is_file():
            raise ValueError(f"judge {spec!r}: no Python file {kind}")
        module = importlib.util.module_from_spec(location)
        location.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(kind)
        except ImportError as exc:
            raise ValueError(f"judge {spec!r}: cannot import {kind} ({exc})") from None
    judge = getattr(module, target, None)
    if not callable(judge):
        raise ValueError(f"judge {spec!r}: {kind} has no callable {target!r}")
    return judge


def _judge_all(judge: JudgeFn | BatchJudge, triples: Sequence[Triple]) -> list[float]:
    verdicts = judge.judge_batch(triples) if hasattr(judge, "judge_batch") else [judge(*t) for t in triples]
    for triple, verdict in zip(triples, verdicts, strict=True):
        if not isinstance(verdict, (int, float)) or not 0.0 <= float(verdict) <= 1.0:  # NaN fails too
            raise ValueError(f"the judge returned {verdict!r} for prompt {triple[0][:60]!r}; it must return the "
                             "probability (0 to 1) that the first response is better")
    return [float(v) for v in verdicts]


def bootstrap_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    data = np.asarray(values, np.float64)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    means = data[np.random.default_rng(seed).integers(0, len(data), (resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _summary(scores: Sequence[float]) -> dict[str, Any]:
    low, high = bootstrap_interval(scores)
    return {"n": len(scores), "win_rate_a": float(np.mean(scores)), "ci_low": low, "ci_high": high,
            "wins_a": sum(s > 0.5 + TIE_MARGIN for s in scores), "wins_b": sum(s < 0.5 - TIE_MARGIN for s in scores),
            "ties": sum(abs(s - 0.5) <= TIE_MARGIN for s in scores)}


@dataclass
class SxsResult:
    by_capability: dict[str, dict[str, Any]]
    overall: dict[str, Any]
    samples: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"overall": self.overall, "by_capability": self.by_capability}


def side_by_side(prompts: Sequence[SxsPrompt], answers_a: Sequence[str], answers_b: Sequence[str],
                 judge: JudgeFn | BatchJudge) -> SxsResult:
    """Judge every prompt in both orders; A's score per prompt is the mean of its two verdicts."""
    forward = [(p.text, a, b) for p, a, b in zip(prompts, answers_a, answers_b, strict=True)]
    verdicts = _judge_all(judge, forward + [(prompt, b, a) for prompt, a, b in forward])
    a_first, b_first = verdicts[: len(forward)], verdicts[len(forward):]
    scores = [(x + (1.0 - y)) / 2 for x, y in zip(a_first, b_first, strict=True)]
    grouped: dict[str, list[float]] = defaultdict(list)
    samples = []
    for prompt, a, b, x, y, score in zip(prompts, answers_a, answers_b, a_first, b_first, scores, strict=True):
        grouped[prompt.capability].append(score)
        samples.append({"index": prompt.index, "capability": prompt.capability, "prompt": prompt.text,
                        "answer_a": a, "answer_b": b, "a_first_verdict": x, "b_first_verdict": y, "score_a": score})
    return SxsResult({c: _summary(s) for c, s in sorted(grouped.items())}, _summary(scores), samples)


def write_samples(path: Path, result: SxsResult) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for sample in result.samples:
            handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
