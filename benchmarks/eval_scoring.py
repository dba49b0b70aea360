"""Log-likelihood scoring throughput of `gemmaflow eval` against Hugging Face transformers, same weights.

Both sides score the same multiple-choice-shaped requests (a shared context and four short
continuations per item, as HellaSwag or ARC produce) with the same model: ours through
`model.evaluate.loglikelihoods` (JAX, jitted, fixed batch shapes), theirs through transformers'
`GemmaForCausalLM` (PyTorch, float32) on the folder `save_pretrained(format="hf")` writes, batched the
same way (longest first, right padding, an attention mask), log-softmax and a gather, as
lm-evaluation-harness does it. Reported per side: tokens scored (real, unpadded) per CPU-second (all
threads) and per wall second, after one untimed warm-up pass (compilation for JAX); and the largest
difference between the two sides' log-likelihoods.

Needs torch (CPU build) and transformers next to gemmaflow (`pip install torch==2.13.0` and the
dev extra):

    python benchmarks/eval_scoring.py                       # the `small` preset, vocab 32k
    python benchmarks/eval_scoring.py --items 32 --repeats 1 --json-out scoring.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from gemmaflow.model import GemmaLM
from gemmaflow.model.evaluate import Request, ScoringStats, loglikelihoods


def requests_like_multiple_choice(items: int, choices: int, vocab: int, seed: int) -> list[Request]:
    """Contexts of 48-200 tokens (BOS first), continuations of 2-24 tokens, token ids drawn uniformly."""
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(items):
        context = (2, *rng.integers(3, vocab, int(rng.integers(48, 200))).tolist())
        for _ in range(choices):
            requests.append(Request(context, tuple(rng.integers(3, vocab, int(rng.integers(2, 24))).tolist())))
    return requests


def hf_scorer(folder: Path, batch_size: int) -> Callable[[list[Request]], tuple[list[float], int]]:
    import torch
    import transformers

    model = transformers.GemmaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def score(requests: list[Request]) -> tuple[list[float], int]:
        rows = [([*r.context, *r.continuation], len(r.continuation)) for r in requests]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        results, tokens = [0.0] * len(rows), 0
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                width = len(rows[chosen[0]][0]) - 1
                ids = torch.zeros((len(chosen), width), dtype=torch.long)
                mask = torch.zeros((len(chosen), width), dtype=torch.long)
                for row, i in enumerate(chosen):
                    sequence = rows[i][0]
                    ids[row, :len(sequence) - 1] = torch.tensor(sequence[:-1])
                    mask[row, :len(sequence) - 1] = 1
                    tokens += len(sequence) - 1
                logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
                for row, i in enumerate(chosen):
                    sequence, n = rows[i]
                    end = len(sequence) - 1
                    targets = torch.tensor(sequence[end - n + 1:end + 1])
                    results[i] = float(logprobs[row, end - n:end].gather(-1, targets[:, None]).sum())
        return results, tokens

    return score


def timed(fn: Callable[[], object], repeats: int) -> tuple[object, float, float]:
    """The result of the last run, and the median CPU and wall seconds over `repeats` runs."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return result, float(np.median(cpu)), float(np.median(wall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=32_000)
    parser.add_argument("--items", type=int, default=64, help="multiple-choice items (x4 requests)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    lm = GemmaLM.from_preset(args.preset, vocab_size=args.vocab_size, seed=0)
    requests = requests_like_multiple_choice(args.items, 4, args.vocab_size, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        lm.save_pretrained(tmp, format="hf")
        theirs_fn = hf_scorer(Path(tmp), args.batch_size)
        c0, w0 = time.process_time(), time.perf_counter()
        loglikelihoods(lm, requests, args.batch_size)  # warm-up: compiles each padded shape once
        compile_cpu, compile_wall = time.process_time() - c0, time.perf_counter() - w0
        theirs_fn(requests)  # warm-up
        stats = ScoringStats()
        ours, ours_cpu, ours_wall = timed(lambda: loglikelihoods(lm, requests, args.batch_size, stats=stats),
                                          args.repeats)
        (theirs, tokens), hf_cpu, hf_wall = timed(lambda: theirs_fn(requests), args.repeats)
    tokens_per_run = stats.tokens // args.repeats
    assert tokens_per_run == tokens, (tokens_per_run, tokens)
    result = {
        "preset": args.preset, "vocab_size": args.vocab_size, "requests": len(requests), "tokens": tokens,
        "batch_size": args.batch_size, "repeats": args.repeats,
        "gemmaflow": {"cpu_s": ours_cpu, "wall_s": ours_wall, "tokens_per_cpu_s": tokens / ours_cpu,
                      "tokens_per_wall_s": tokens / ours_wall, "first_pass_cpu_s": compile_cpu,
                      "first_pass_wall_s": compile_wall},
        "transformers": {"cpu_s": hf_cpu, "wall_s": hf_wall, "tokens_per_cpu_s": tokens / hf_cpu,
                         "tokens_per_wall_s": tokens / hf_wall},
        "max_abs_loglik_difference": float(np.max(np.abs(np.array(ours) - np.array(theirs)))),
    }
    result["ratio_per_cpu_s"] = result["gemmaflow"]["tokens_per_cpu_s"] / result["transformers"]["tokens_per_cpu_s"]
    print(f"{len(requests)} requests, {tokens:,} tokens scored per pass, batch {args.batch_size}, "
          f"preset {args.preset} (vocab {args.vocab_size:,})")
    print(f"{'':14}{'tokens/CPU-s':>14}{'tokens/s':>12}{'CPU s':>9}{'wall s':>9}")
    for name in ("gemmaflow", "transformers"):
        side = result[name]
        print(f"{name:14}{side['tokens_per_cpu_s']:>14,.0f}{side['tokens_per_wall_s']:>12,.0f}"
              f"{side['cpu_s']:>9.2f}{side['wall_s']:>9.2f}")
    print(f"gemmaflow / transformers per CPU-second: {result['ratio_per_cpu_s']:.2f}x; first (compiling) pass "
          f"{compile_wall:.1f} s; largest log-likelihood difference {result['max_abs_loglik_difference']:.2e}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
