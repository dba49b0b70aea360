"""Greedy decoding speed with a KV cache: `GemmaLM.generate` against Hugging Face transformers, same weights.

Both sides decode the same prompts greedily, for exactly `--new-tokens` tokens (no stop token), with the
same model: ours through `GemmaLM.generate` (JAX, the prompt prefilled in one call, then one jitted
`while_loop` over cached steps), theirs through transformers' `GemmaForCausalLM.generate` (PyTorch,
float32, `use_cache=True`) on the folder `save_pretrained(format="hf")` writes. Prompts in a batch share
one length, so neither side pads. Reported per batch size: generated tokens per wall second and per
CPU-second (all threads), the median of `--repeats` timed runs after one untimed warm-up run
(compilation for JAX), and whether both sides generated the same tokens.

Needs torch (CPU build) and transformers next to gemmaflow (`pip install torch==2.13.0` and the dev
extra):

    python benchmarks/generation_speed.py                    # the `small` preset, vocab 32k, batch 1 and 8
    python benchmarks/generation_speed.py --batch-sizes 1 8 32 --new-tokens 64 --json-out generation.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from gemmaflow.model import GemmaLM

Decode = Callable[[np.ndarray], np.ndarray]  # prompts [B, P] -> generated tokens [B, new]


def ours(lm: GemmaLM, new_tokens: int) -> Decode:
    def decode(prompts: np.ndarray) -> np.ndarray:
        rows = lm.generate(prompts.tolist(), max_length=prompts.shape[1] + new_tokens, stop_tokens=())
        return np.asarray([row[prompts.shape[1]:] for row in rows])

    return decode


def theirs(folder: Path, new_tokens: int) -> Decode:
    import torch
    import transformers

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = transformers.GemmaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def decode(prompts: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.generate(torch.as_tensor(prompts), attention_mask=torch.ones(prompts.shape, dtype=torch.long),
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 use_cache=True, pad_token_id=0)
        return out[:, prompts.shape[1]:].numpy()

    return decode


def timed(decode: Decode, prompts: np.ndarray, repeats: int) -> dict[str, object]:
    c0, w0 = time.process_time(), time.perf_counter()
    first = decode(prompts)  # warm-up: compilation on our side, allocator and thread pools on theirs
    warmup = {"warmup_wall_s": time.perf_counter() - w0, "warmup_cpu_s": time.process_time() - c0}
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        decode(prompts)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    generated = first.size
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"tokens": generated, "wall_s": wall, "cpu_s": cpu, "tokens_per_s": generated / wall,
            "tokens_per_cpu_s": generated / cpu, **warmup, "first": first}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=32_000)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out")
    args = parser.parse_args()

    lm = GemmaLM.from_preset(args.preset, vocab_size=args.vocab_size, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        lm.save_pretrained(folder, format="hf")
        sides = {"gemmaflow": ours(lm, args.new_tokens), "transformers": theirs(Path(folder), args.new_tokens)}
        for batch in args.batch_sizes:
            rng = np.random.default_rng(batch)
            prompts = np.concatenate([np.full((batch, 1), 2), rng.integers(3, args.vocab_size,
                                                                           (batch, args.prompt_tokens - 1))], axis=1)
            results = {name: timed(decode, prompts.astype(np.int32), args.repeats) for name, decode in sides.items()}
            same = bool(np.array_equal(results["gemmaflow"].pop("first"), results["transformers"].pop("first")))
            ratio = results["gemmaflow"]["tokens_per_s"] / results["transformers"]["tokens_per_s"]
            rows.append({"batch": batch, "same_tokens": same, "ratio_tokens_per_s": ratio, **{
                f"{name}_{key}": value for name, result in results.items() for key, value in result.items()}})
    print(f"{args.preset} preset, vocab {args.vocab_size:,}, {args.prompt_tokens}-token prompts, {args.new_tokens} "
          f"new tokens, greedy, median of {args.repeats}")
    print("| batch | gemmaflow tokens/s | transformers tokens/s | ratio | gemmaflow tokens/CPU-s | "
          "transformers tokens/CPU-s | same tokens | gemmaflow compile s |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['batch']} | {r['gemmaflow_tokens_per_s']:,.0f} | {r['transformers_tokens_per_s']:,.0f} | "
              f"{r['ratio_tokens_per_s']:.2f}x | {r['gemmaflow_tokens_per_cpu_s']:,.0f} | "
              f"{r['transformers_tokens_per_cpu_s']:,.0f} | {r['same_tokens']} | {r['gemmaflow_warmup_wall_s']:.1f} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
