"""Training-step speed of our Gemma vs Keras Hub's GemmaCausalLM, and chunked vs naive loss memory.

Speed: one AdamW training step on the same config and batch (the `small` preset: vocab 32k,
d_model 256, 4 layers, 4 query heads / 1 KV head of 64, feed-forward 1024 per branch; seq 1024,
batch 4), both on JAX, alternating between the two sides so machine noise hits both. Reported per
side: median wall time and CPU time (all threads) per step, tokens/s, and MFU (PaLM appendix B) with
the FLOP count of `model.gemma.train_flops_per_token`, against the device's peak as the trainer
finds it (`model/device_peak.py`: the vendor's figure for known accelerators, a matmul probe on a
CPU, none for an unknown accelerator) unless `--peak-tflops` gives one.

Memory: XLA's buffer assignment for the gradient of the loss at seq 8192 and vocab 256k on a small
model, chunked (model/loss.py) vs naive (full logits). Read from the compiled executable, so the
naive side's ~17 GB is reported without being allocated.

With gemmaflow and keras-hub installed (or PYTHONPATH=. from the repository root):

    python benchmarks/model_train_step.py              # both sides, a few minutes on CPU
    python benchmarks/model_train_step.py --skip-keras --steps 5 --json-out results.json
    python benchmarks/model_train_step.py --preset gemma_2b --num-layers 2 --seq-len 2048 --skip-keras
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gemmaflow.model.config import GemmaConfig, preset
from gemmaflow.model.device_peak import Peak, job_peak
from gemmaflow.model.gemma import Gemma, init_params, train_flops_per_token
from gemmaflow.model.loss import chunked_cross_entropy, cross_entropy

# AdamW as MaxText's defaults (b1 0.9, b2 0.95, eps 1e-8, weight decay 0.1), identical on both sides.
LEARNING_RATE, B1, B2, EPS, WEIGHT_DECAY = 1e-4, 0.9, 0.95, 1e-8, 0.1


def make_batch(config: GemmaConfig, batch: int, seq_len: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab_size, (batch, seq_len + 1)).astype(np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:], "mask": np.ones((batch, seq_len), np.float32)}


def ours(config: GemmaConfig, batch: dict[str, np.ndarray], chunk_size: int):
    """A jitted step(state) -> (state, loss) with chunked cross-entropy and AdamW."""
    model = Gemma(config)
    optimizer = optax.adamw(LEARNING_RATE, b1=B1, b2=B2, eps=EPS, weight_decay=WEIGHT_DECAY)
    params = init_params(config, jax.random.key(0))
    inputs, targets, mask = (jnp.asarray(batch[k]) for k in ("inputs", "targets", "mask"))
    positions = jnp.broadcast_to(jnp.arange(inputs.shape[1]), inputs.shape)
    segments = jnp.ones_like(inputs)

    def loss_fn(params):
        hidden = model.apply({"params": params}, inputs, positions, segments, method=Gemma.hidden_states)
        return chunked_cross_entropy(hidden, params["embedder"]["embedding"], targets, mask,
                                     chunk_size=chunk_size).total

    @jax.jit
    def step(state):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    state = (params, optimizer.init(params))

    def run():
        nonlocal state
        state, loss = step(state)
        return float(loss)

    return run


def keras_hub_side(config: GemmaConfig, batch: dict[str, np.ndarray]):
    """GemmaCausalLM with the same shape, AdamW and per-token cross-entropy; one train_on_batch per step."""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # read when Keras is first imported
    import keras
    import keras_hub

    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers, num_query_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads, hidden_dim=config.d_model, intermediate_dim=2 * config.ffw_dim,
        head_dim=config.head_dim, dtype="float32",
    )
    lm = keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None)
    lm.compile(
        optimizer=keras.optimizers.AdamW(LEARNING_RATE, beta_1=B1, beta_2=B2, epsilon=EPS, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[],
        jit_compile=True,
    )
    x = {"token_ids": batch["inputs"], "padding_mask": np.ones_like(batch["inputs"])}

    def run():
        return float(lm.train_on_batch(x, batch["targets"], sample_weight=batch["mask"]))

    return run


def timed(run) -> tuple[float, float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    loss = run()
    return time.perf_counter() - wall0, time.process_time() - cpu0, loss


def measure_speed(sides: dict, steps: int, tokens_per_step: int, flops_per_token: float, peak: Peak) -> dict:
    for name, run in sides.items():  # compile and warm up
        wall, _, loss = timed(run)
        print(f"{name}: first step (compile) {wall:.1f} s, loss {loss:.3f}", flush=True)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(steps):
        for name, run in sides.items():  # alternate, so load changes hit both sides alike
            wall, cpu, _ = timed(run)
            samples[name].append((wall, cpu))
    results = {}
    for name, times in samples.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        tokens_per_s = tokens_per_step / wall
        results[name] = {"step_wall_s": wall, "step_cpu_s": cpu, "tokens_per_s": tokens_per_s,
                         "mfu": peak.mfu(tokens_per_s * flops_per_token)}
    return results


def measure_memory(config: GemmaConfig, seq_len: int, chunk_size: int) -> dict:
    """Bytes XLA assigns (temporaries + arguments + outputs) to the gradient of each loss."""
    hidden = jax.ShapeDtypeStruct((1, seq_len, config.d_model), jnp.float32)
    embedding = jax.ShapeDtypeStruct((config.vocab_size, config.d_model), jnp.float32)
    targets = jax.ShapeDtypeStruct((1, seq_len), jnp.int32)
    mask = jax.ShapeDtypeStruct((1, seq_len), jnp.float32)

    def naive(h, e, y, m):
        return cross_entropy(jnp.einsum("BTD,VD->BTV", h, e), y, m).total

    def chunked(h, e, y, m):
        return chunked_cross_entropy(h, e, y, m, chunk_size=chunk_size).total

    results = {}
    for name, loss in (("chunked", chunked), ("naive", naive)):
        stats = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(hidden, embedding, targets, mask).compile()
        stats = stats.memory_analysis()
        results[name] = {"temp_bytes": stats.temp_size_in_bytes,
                         "total_bytes": stats.temp_size_in_bytes + stats.argument_size_in_bytes
                         + stats.output_size_in_bytes}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=32_000)
    parser.add_argument("--num-layers", type=int, default=None, help="override the preset's depth")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side, after one warm-up step")
    parser.add_argument("--chunk-size", type=int, default=0,
                        help="tokens per loss chunk in the speed run; 0: the whole batch (no recomputation, "
                             "full logits like Keras Hub); the memory comparison uses 1024")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's matmul peak for MFU; default: from the device (model/device_peak.py)")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--memory-seq-len", type=int, default=8192)
    parser.add_argument("--memory-vocab-size", type=int, default=256_000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    overrides = {"vocab_size": args.vocab_size, "max_seq_len": max(args.seq_len, 1024)}
    if args.num_layers:
        overrides["num_layers"] = args.num_layers
    config = preset(args.preset, **overrides)
    batch = make_batch(config, args.batch, args.seq_len)
    flops_per_token = train_flops_per_token(config, args.seq_len)
    peak = job_peak(jax.devices()[:1], args.peak_tflops)  # both sides run on the default device; probe it idle
    sides = {"gemmaflow": ours(config, batch, args.chunk_size or args.batch * args.seq_len)}
    if not args.skip_keras:
        sides["keras_hub"] = keras_hub_side(config, batch)
    print(f"config {config}\nbatch {args.batch} x {args.seq_len}, {flops_per_token / 1e6:.1f} MFLOP/token, "
          f"devices {jax.devices()}\n{peak.describe()}", flush=True)
    speed = measure_speed(sides, args.steps, args.batch * args.seq_len, flops_per_token, peak)
    for name, r in speed.items():
        mfu = "" if r["mfu"] is None else f", MFU {100 * r['mfu']:.1f}%"
        print(f"{name:10s} step {r['step_wall_s']:.2f} s wall, {r['step_cpu_s']:.2f} s CPU, "
              f"{r['tokens_per_s']:.0f} tokens/s{mfu}")
    if "keras_hub" in speed:
        wall_ratio = speed["keras_hub"]["step_wall_s"] / speed["gemmaflow"]["step_wall_s"]
        cpu_ratio = speed["keras_hub"]["step_cpu_s"] / speed["gemmaflow"]["step_cpu_s"]
        print(f"speed-up over Keras Hub: {wall_ratio:.2f}x wall time, {cpu_ratio:.2f}x CPU time "
              "(trust CPU time on a busy machine)")

    memory_config = preset("small", vocab_size=args.memory_vocab_size)
    memory = measure_memory(memory_config, args.memory_seq_len, chunk_size=1024)
    for name, r in memory.items():
        print(f"loss gradient, seq {args.memory_seq_len}, vocab {args.memory_vocab_size}, {name:8s}: "
              f"{r['temp_bytes'] / 2**30:.2f} GiB temporaries, {r['total_bytes'] / 2**30:.2f} GiB in all")
    if args.json_out:
        args.json_out.write_text(json.dumps({"config": str(config), "batch": args.batch, "seq_len": args.seq_len,
                                             "peak_tflops": peak.tflops, "peak_source": peak.source,
                                             "speed": speed, "loss_memory": memory}, indent=2))


if __name__ == "__main__":
    main()
