"""Peak memory of a whole training step's gradient, chunked vs naive cross-entropy.

The model is the `small` preset (d_model 256, 4 layers) with Gemma's 256k vocabulary, one row of
8192 tokens. "chunked" is the trainer's loss (`model.objectives.LanguageModeling`: hidden states, then
model/loss.py's chunked cross-entropy); "naive" projects the full [T, V] float32 logits first
(`Gemma.__call__` + `cross_entropy`). Two figures per side:

- XLA's buffer assignment for the compiled gradient (temporaries, arguments, outputs): exact and
  allocation-free, so the naive side's tens of GB are reported without being allocated;
- with `--run`, the measured peak resident memory of a child process that runs the step once
  (the naive side only with `--run-naive`: it needs the memory it reports).

    python benchmarks/model_memory.py                       # analysis only, about a minute on CPU
    python benchmarks/model_memory.py --run --json-out mem.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.model.config import preset
from gemmaflow.model.gemma import Gemma, init_params
from gemmaflow.model.loss import cross_entropy
from gemmaflow.model.objectives import LanguageModeling


def step_functions(vocab_size: int, seq_len: int, chunk_size: int):
    config = preset("small", vocab_size=vocab_size, max_seq_len=seq_len)
    objective = LanguageModeling(config, chunk_size, z_loss_weight=0.0)
    params = jax.eval_shape(lambda key: init_params(config, key), jax.random.key(0))
    batch = {name: jax.ShapeDtypeStruct((1, seq_len), jnp.int32)
             for name in ("inputs", "positions", "segment_ids", "targets")}
    batch["mask"] = jax.ShapeDtypeStruct((1, seq_len), jnp.float32)

    def chunked(p, b):
        return objective.summed_loss(p, None, b)[0]

    def naive(p, b):
        logits = Gemma(config).apply({"params": p}, b["inputs"], b["positions"], b["segment_ids"])
        return cross_entropy(logits, b["targets"], b["mask"]).total

    return config, params, batch, {"chunked": chunked, "naive": naive}


def analyse(vocab_size: int, seq_len: int, chunk_size: int) -> dict:
    _, params, batch, sides = step_functions(vocab_size, seq_len, chunk_size)
    results = {}
    for name, loss in sides.items():
        stats = jax.jit(jax.grad(loss)).lower(params, batch).compile().memory_analysis()
        results[name] = {"temp_bytes": stats.temp_size_in_bytes,
                         "total_bytes": stats.temp_size_in_bytes + stats.argument_size_in_bytes
                         + stats.output_size_in_bytes}
    return results


def run_once(side: str, vocab_size: int, seq_len: int, chunk_size: int) -> None:
    """In a child process: one gradient step on real arrays; prints the peak RSS in bytes."""
    config, _, _, sides = step_functions(vocab_size, seq_len, chunk_size)
    params = init_params(config, jax.random.key(0))
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, vocab_size, (1, seq_len)), jnp.int32)
    batch = {"inputs": tokens, "positions": jnp.arange(seq_len)[None], "segment_ids": jnp.ones_like(tokens),
             "targets": jnp.roll(tokens, -1, axis=1), "mask": jnp.ones((1, seq_len), jnp.float32)}
    jax.block_until_ready(jax.jit(jax.grad(sides[side]))(params, batch))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=256_000)
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--run", action="store_true", help="also measure the chunked step's peak RSS")
    parser.add_argument("--run-naive", action="store_true", help="... and the naive one's (needs that memory)")
    parser.add_argument("--child", choices=["chunked", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if args.child:
        run_once(args.child, args.vocab_size, args.seq_len, args.chunk_size)
        return
    results = analyse(args.vocab_size, args.seq_len, args.chunk_size)
    runs = ["chunked"] * args.run + ["naive"] * args.run_naive
    for side in runs:
        child = subprocess.run([sys.executable, __file__, "--child", side, "--vocab-size", str(args.vocab_size),
                                "--seq-len", str(args.seq_len), "--chunk-size", str(args.chunk_size)],
                               capture_output=True, text=True, check=True)
        results[side]["peak_rss_bytes"] = int(child.stdout.strip().splitlines()[-1])
    for side, r in results.items():
        measured = f", measured peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB" if "peak_rss_bytes" in r else ""
        print(f"gradient of the training loss, small model, seq {args.seq_len}, vocab {args.vocab_size}, {side:8s}: "
              f"{r['temp_bytes'] / 2**30:.2f} GiB temporaries, {r['total_bytes'] / 2**30:.2f} GiB in all{measured}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"seq_len": args.seq_len, "vocab_size": args.vocab_size,
                                             "chunk_size": args.chunk_size, "results": results}, indent=2))


if __name__ == "__main__":
    main()
