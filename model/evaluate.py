"""Benchmark evaluation of a `GemmaLM`: multiple choice by log-likelihood, generation, bits per byte.

Definitions follow EleutherAI's lm-evaluation-harness, so numbers compare with published ones:

- A log-likelihood request is a context and a continuation. The context is BOS plus the tokens of
  the context text; the continuation's tokens are those of the joined text (context + continuation)
  after the context's tokens, and its log-likelihood is the sum over them. Spaces that end a context
  move to the start of its continuation. Sequences longer than the model's window lose their oldest
  context tokens.
- Multiple choice: continuation = target delimiter + choice; `acc` takes the choice of highest
  log-likelihood, `acc_norm` the highest log-likelihood per byte of the continuation.
- Bits per byte: a document's negative log-likelihood in bits over its UTF-8 bytes, scored in windows
  of the model's length each conditioned on the token before it (the harness's rolling windows), so
  models with different tokenizers compare.
- Generation: greedy, cut at the first stop sequence, exact match of the extracted answer.

Requests are sorted by length and scored in fixed-size batches through `GemmaLM.score`, rows right-padded
to a multiple of `bucket` tokens with a padding mask, so a task compiles a handful of shapes. Only the
continuation's positions are projected onto the vocabulary (`score_positions`): for a small model that
projection is most of the work, and a multiple-choice continuation is a few tokens of a long row.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gemmaflow.model.api import GemmaLM
from gemmaflow.model.eval_tasks import (
    ChoiceItem,
    GenerateItem,
    TaskSpec,
    TextItem,
    extract_answer,
    fewshot_prefixes,
    load_items,
)
from gemmaflow.model.sampling import generate

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    """Score `continuation` after `context` (token ids; the context holds at least BOS)."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass
class ScoringStats:
    """Work done, for throughput: real (unpadded) tokens through the model, and the seconds it took."""

    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0


@dataclass
class TaskResult:
    name: str
    kind: str
    metrics: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)


def _tokenizer(lm: GemmaLM) -> Any:
    if lm.tokenizer is None:
        raise ValueError("evaluation needs a tokenizer: a tokenizer.model in the model folder, or --tokenizer")
    return lm.tokenizer


def choice_request(lm: GemmaLM, context: str, continuation: str) -> Request:
    """lm-evaluation-harness's encoding of one (context, continuation) pair, with Gemma's BOS."""
    tokenizer = _tokenizer(lm)
    stripped = context.rstrip(" ")
    continuation = context[len(stripped):] + continuation
    context_ids = tokenizer.encode(stripped)
    whole = tokenizer.encode(stripped + continuation)
    return Request((tokenizer.bos_id(), *context_ids), tuple(whole[len(context_ids):]))


def loglikelihoods(lm: GemmaLM, requests: Sequence[Request], batch_size: int = 16, bucket: int = 32,
                   stats: ScoringStats | None = None) -> list[float]:
    """Sum of the continuation's token log-probabilities (natural log) for each request, in order."""
    window = lm.config.max_seq_len
    rows: list[tuple[list[int], int]] = []  # (sequence, continuation length)
    for request in requests:
        if not request.continuation:
            raise ValueError("a request needs at least one continuation token")
        if len(request.continuation) > window:
            raise ValueError(f"a continuation of {len(request.continuation)} tokens exceeds the window of {window}")
        sequence = [*request.context, *request.continuation][-(window + 1):]  # oldest context dropped first
        rows.append((sequence, len(request.continuation)))
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    results = np.zeros(len(rows), np.float64)
    stats = stats if stats is not None else ScoringStats()
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        width = _round_up(len(rows[chosen[0]][0]) - 1, bucket, window)
        scored = _round_up(max(rows[i][1] for i in chosen), 8, width)
        tokens = np.zeros((batch_size, width), np.int32)
        targets = np.zeros((batch_size, width), np.int32)
        mask = np.zeros((batch_size, width), np.int32)
        mask[:, 0] = 1  # filler rows score one token, so no row attends to nothing
        positions = np.zeros((batch_size, scored), np.int32)
        for row, i in enumerate(chosen):
            sequence, n_continuation = rows[i]
            n = len(sequence) - 1
            tokens[row, :n], targets[row, :n], mask[row, :n] = sequence[:-1], sequence[1:], 1
            positions[row, :n_continuation] = np.arange(n - n_continuation, n)
            stats.tokens += n
        began = time.perf_counter()
        losses = np.asarray(lm.score(tokens, mask, "loss", target_ids=targets, score_positions=positions), np.float64)
        stats.seconds += time.perf_counter() - began
        stats.padded_tokens += tokens.size
        for row, i in enumerate(chosen):
            results[i] = -losses[row, :rows[i][1]].sum()
    return results.tolist()


def _round_up(value: int, multiple: int, cap: int) -> int:
    return min(cap, -(-value // multiple) * multiple)


def _mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation over sqrt(n)), as the harness reports."""
    n = len(values)
    mean = float(np.mean(values))
    return mean, (float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else 0.0)


def _fewshot_pool(spec: TaskSpec) -> list | None:
    return load_items(spec, spec.fewshot_path) if spec.fewshot_path and spec.num_fewshot else None


def multiple_choice(lm: GemmaLM, spec: TaskSpec, items: Sequence[ChoiceItem], batch_size: int,
                    stats: ScoringStats) -> TaskResult:
    prefixes = fewshot_prefixes(spec, items, _fewshot_pool(spec))
    requests = [choice_request(lm, prefix + item.context, spec.target_delimiter + choice)
                for item, prefix in zip(items, prefixes, strict=True) for choice in item.choices]
    scores = iter(loglikelihoods(lm, requests, batch_size, stats=stats))
    correct, correct_norm, samples = [], [], []
    for item in items:
        loglik = [next(scores) for _ in item.choices]
        per_byte = [value / len((spec.target_delimiter + choice).encode("utf-8"))
                    for value, choice in zip(loglik, item.choices, strict=True)]
        correct.append(float(int(np.argmax(loglik)) == item.label))
        correct_norm.append(float(int(np.argmax(per_byte)) == item.label))
        samples.append({"task": spec.name, "index": item.index, "loglik": loglik, "label": item.label})
    acc, acc_stderr = _mean_and_stderr(correct)
    acc_norm, acc_norm_stderr = _mean_and_stderr(correct_norm)
    metrics = {"acc": acc, "acc_stderr": acc_stderr, "acc_norm": acc_norm, "acc_norm_stderr": acc_norm_stderr,
               "n": len(items), "num_fewshot": spec.num_fewshot,
               "chance": float(np.mean([1 / len(item.choices) for item in items]))}
    return TaskResult(spec.name, spec.kind, metrics, samples)


def rolling_requests(lm: GemmaLM, text: str) -> list[Request]:
    """A document as windows of at most the model's length, each conditioned on the token before it."""
    tokenizer = _tokenizer(lm)
    ids = tokenizer.encode(text)
    window = lm.config.max_seq_len
    return [Request((tokenizer.bos_id(),) if start == 0 else (ids[start - 1],), tuple(ids[start:start + window]))
            for start in range(0, len(ids), window)]


def bits_per_byte(lm: GemmaLM, spec: TaskSpec, items: Sequence[TextItem], batch_size: int,
                  stats: ScoringStats) -> TaskResult:
    requests, owners = [], []
    for item in items:
        windows = rolling_requests(lm, item.text)
        requests.extend(windows)
        owners.extend([item.index] * len(windows))
    nats: dict[int, float] = defaultdict(float)
    for owner, value in zip(owners, loglikelihoods(lm, requests, batch_size, stats=stats), strict=True):
        nats[owner] -= value
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # bits, bytes, documents
    samples = []
    for item in items:
        bits, size = nats[item.index] / math.log(2), len(item.text.encode("utf-8"))
        for group in ("all", item.group) if item.group != "all" else ("all",):
            totals[group][0] += bits
            totals[group][1] += size
            totals[group][2] += 1
        samples.append({"task": spec.name, "index": item.index, "group": item.group, "bits": bits, "bytes": size})
    overall = totals.pop("all")
    metrics = {
        "bits_per_byte": overall[0] / max(overall[1], 1), "n": len(items), "bytes": int(overall[1]),
        "by_group": {group: {"bits_per_byte": bits / max(size, 1), "bytes": int(size), "n": int(count)}
                     for group, (bits, size, count) in sorted(totals.items())},
    }
    return TaskResult(spec.name, spec.kind, metrics, samples)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the earliest stop sequence."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def greedy_continuations(lm: GemmaLM, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int,
                         stop: Sequence[str] = ()) -> list[str]:
    """Each prompt's greedy continuation as text (at most `max_new_tokens`), cut at the first stop sequence.

    Prompts are batched longest first, so a batch's rows have similar lengths; a prompt too long for the
    model's window keeps its last tokens (BOS first).
    """
    room = lm.config.max_seq_len - max_new_tokens
    if room < 2:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in {lm.config.max_seq_len}")
    prompts = [list(p) if len(p) <= room else [p[0], *p[len(p) - room + 1:]] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = [prompts[i] for i in chosen]
        result = generate(lm.params, lm.config, batch, max_length=max(map(len, batch)) + max_new_tokens,
                          stop_tokens=lm.stop_tokens())
        for i, continuation in zip(chosen, result.continuations(), strict=True):
            outputs[i] = cut_at_stop(lm.decode(continuation[:max_new_tokens]), stop)
    return outputs


def generation(lm: GemmaLM, spec: TaskSpec, items: Sequence[GenerateItem], batch_size: int) -> TaskResult:
    tokenizer = _tokenizer(lm)
    prefixes = fewshot_prefixes(spec, items, _fewshot_pool(spec))
    prompts = [[tokenizer.bos_id(), *tokenizer.encode(prefix + item.context)]
               for item, prefix in zip(items, prefixes, strict=True)]
    outputs = greedy_continuations(lm, prompts, spec.max_new_tokens, batch_size, spec.stop)
    correct, samples = [], []
    for item, output in zip(items, outputs, strict=True):
        extracted = extract_answer(output, spec.answer_pattern)
        correct.append(float(extracted is not None and extracted == item.answer))
        samples.append({"task": spec.name, "index": item.index, "output": output, "extracted": extracted,
                        "answer": item.answer, "correct": bool(correct[-1])})
    exact_match, stderr = _mean_and_stderr(correct)
    metrics = {"exact_match": exact_match, "exact_match_stderr": stderr, "n": len(items),
               "num_fewshot": spec.num_fewshot}
    return TaskResult(spec.name, spec.kind, metrics, samples)


def evaluate(lm: GemmaLM, specs: Sequence[TaskSpec], batch_size: int = 16,
             progress: Progress | None = None) -> tuple[list[TaskResult], ScoringStats]:
    """Every task's metrics and per-item samples; task files are all read and checked before any scoring."""
    loaded = [(spec, load_items(spec, limit=spec.limit)) for spec in specs]
    for spec, _ in loaded:
        if spec.fewshot_path and spec.num_fewshot:
            _fewshot_pool(spec)  # a broken few-shot file fails now, not after hours of scoring
    stats = ScoringStats()
    results = []
    for spec, items in loaded:
        began = time.perf_counter()
        if spec.kind == "multiple_choice":
            result = multiple_choice(lm, spec, items, batch_size, stats)  # type: ignore[arg-type]
        elif spec.kind == "perplexity":
            result = bits_per_byte(lm, spec, items, batch_size, stats)  # type: ignore[arg-type]
        else:
            result = generation(lm, spec, items, batch_size)  # type: ignore[arg-type]
        result.metrics["seconds"] = round(time.perf_counter() - began, 3)
        results.append(result)
        if progress is not None:
            progress(f"{spec.name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in result.metrics.items() if k != "by_group"))
    return results, stats
