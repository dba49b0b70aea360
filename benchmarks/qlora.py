"""Quantization error and QLoRA against LoRA, on the models and data of a `gemmaflow demo` run.

1. Error: the demo's pretrained model (`DEMO/pretrain/final`) scores the bundled held-out documents with its
   float32 weights and again with them stored in int8 and NF4 (model/quant.py); per format, the largest
   absolute logit difference, the mean and largest per-token KL(float32 || quantized), and the held-out
   cross-entropy.
2. Fine-tuning: the demo's SFT run (its train config and overrides: from the pretrained model, 100 steps,
   learning rate 1e-3 unless `--learning-rate`, on `DEMO/sft_shards`) with rank-8 adapters on every
   projection, once over the float32 base (LoRA) and once over an NF4 base (QLoRA); their final losses (last
   step, and the means of the first and last 10, to smooth batch noise) and validation losses.

    python benchmarks/qlora.py --demo runs/demo          # a finished `gemmaflow demo --output runs/demo`
    python benchmarks/qlora.py                           # runs the demo first (about 4 minutes)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.demo import bundled_config
from gemmaflow.model import GemmaLM
from gemmaflow.model.train import train
from gemmaflow.model.train_config import LORA_TARGETS, load_train_config

HELD_OUT = Path(__file__).resolve().parents[1] / "gemmaflow" / "sample" / "tasks" / "heldout.jsonl"


def held_out_rows(lm: GemmaLM, length: int) -> list[list[int]]:
    texts = [json.loads(line)["text"] for line in HELD_OUT.read_text().splitlines() if line.strip()]
    return [lm.encode(text)[:length] for text in texts]


def quantization_error(model: Path, tokenizer: Path, length: int) -> list[dict]:
    reference = GemmaLM.from_pretrained(model, tokenizer=tokenizer)
    rows = held_out_rows(reference, length)
    targets = [[*row[1:], 0] for row in rows]
    mask = [np.arange(len(row)) < len(row) - 1 for row in rows]  # positions with a next token

    def logits_of(lm: GemmaLM) -> list[np.ndarray]:
        return [np.asarray(lm.score([row]))[0, :len(row)] for row in rows]

    exact = logits_of(reference)
    spread = float(np.mean([np.std(row, axis=-1).mean() for row in exact]))  # the scale errors compare with
    results = []
    for mode, double_quant in (("none", False), ("int8", False), ("nf4", False), ("nf4", True)):
        lm = GemmaLM.from_pretrained(model)
        if mode != "none":
            lm.quantize(mode, double_quant)
        approx = logits_of(lm)
        max_abs, kls, xent, tokens = 0.0, [], 0.0, 0
        for p_logits, q_logits, target, keep in zip(exact, approx, targets, mask, strict=True):
            max_abs = max(max_abs, float(np.abs(p_logits - q_logits).max()))
            log_p = np.asarray(jax.nn.log_softmax(jnp.asarray(p_logits)))
            log_q = np.asarray(jax.nn.log_softmax(jnp.asarray(q_logits)))
            kls.append(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1))
            xent -= float(np.take_along_axis(log_q, np.asarray(target)[:, None], axis=1)[keep].sum())
            tokens += int(keep.sum())
        kl = np.concatenate(kls)
        name = "float32" if mode == "none" else mode + (" + double quant" if double_quant else "")
        results.append({"format": name, "max_abs_logit_error": max_abs, "mean_kl": float(kl.mean()),
                        "max_kl": float(kl.max()), "held_out_cross_entropy": xent / tokens, "tokens": tokens,
                        "float32_logit_std": spread})
    return results


def fine_tune(demo: Path, out: Path, quantize: str, learning_rate: float) -> dict:
    overrides = {"model.init_from": str(demo / "pretrain" / "final"), "kind": "sft", "steps": 100,
                 "optimizer.learning_rate": learning_rate, "eval_every": 0, "checkpoint_every": 100,
                 "lora.enabled": True, "lora.rank": 8, "lora.alpha": 16.0, "lora.targets": list(LORA_TARGETS),
                 "lora.quantize": quantize}
    config = load_train_config(bundled_config("train-tiny.yaml"), overrides)
    start = time.perf_counter()
    result = train(demo / "sft_shards", config, out, stream=open("/dev/null", "w"))  # noqa: SIM115
    seconds = time.perf_counter() - start
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    return {"base": "float32" if quantize == "none" else quantize, "final_loss": result.loss,
            "first10_loss": float(np.mean(losses[:10])), "last10_loss": float(np.mean(losses[-10:])),
            "eval_loss": result.eval_loss, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", help="a finished demo run folder (default: run the demo into a temporary one)")
    parser.add_argument("--length", type=int, default=256, help="tokens per held-out document")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="of both SFT runs (the demo's: 1e-3)")
    parser.add_argument("--json-out", help="write the figures here as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qlora-"))
    demo = Path(args.demo) if args.demo else work / "demo"
    if not args.demo:
        subprocess.run([sys.executable, "-m", "gemmaflow.cli", "demo", "--output", str(demo)], check=True)

    tokenizer = next((demo / "tokenizer").glob("*.model"))
    errors = quantization_error(demo / "pretrain" / "final", tokenizer, args.length)
    print(f"{'weights':<22}{'max |logit error|':>18}{'mean KL':>10}{'max KL':>10}{'held-out xent':>15}")
    for row in errors:
        print(f"{row['format']:<22}{row['max_abs_logit_error']:>18.4f}{row['mean_kl']:>10.5f}{row['max_kl']:>10.4f}"
              f"{row['held_out_cross_entropy']:>15.4f}")
    print(f"({errors[0]['tokens']:,} held-out tokens; float32 logits have a standard deviation of "
          f"{errors[0]['float32_logit_std']:.2f} over the vocabulary, on average)\n")

    runs = [fine_tune(demo, work / name, quantize, args.learning_rate)
            for name, quantize in (("lora", "none"), ("qlora", "nf4"))]
    print(f"SFT, learning rate {args.learning_rate:g}")
    print(f"{'base':<10}{'first-10 mean':>15}{'final loss':>12}{'last-10 mean':>14}{'eval loss':>11}{'seconds':>9}")
    for row in runs:
        eval_loss = "-" if row["eval_loss"] is None else f"{row['eval_loss']:.4f}"
        print(f"{row['base']:<10}{row['first10_loss']:>15.4f}{row['final_loss']:>12.4f}{row['last10_loss']:>14.4f}"
              f"{eval_loss:>11}{row['seconds']:>9.1f}")
    lora, qlora = runs
    gap = {key: (qlora[key] - lora[key]) / lora[key] for key in ("final_loss", "last10_loss", "eval_loss")
           if lora[key] is not None and qlora[key] is not None}
    print("QLoRA vs LoRA: " + ", ".join(f"{key} {100 * value:+.2f}%" for key, value in gap.items()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"errors": errors, "fine_tune": runs, "gap": gap}, indent=2))


if __name__ == "__main__":
    main()
