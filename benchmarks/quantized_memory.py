"""Weight memory of the released Gemma shapes stored in float32, bfloat16, int8 and NF4 (model/quant.py).

For each preset and format the forward pass is compiled on abstract weights (nothing is allocated) and
XLA's buffer assignment reports what the program holds, as benchmarks/model_memory.py does:

- `weights`: the parameter arguments alone (XLA's argument bytes less the token inputs);
- `forward temp`: the temporaries of a 1 x `--seq-len` forward pass (with quantized weights this includes
  the one weight dequantized at a time);
- with `--train`, a QLoRA / LoRA step (rank 8 adapters on every projection, gradients of the adapters only):
  its temporaries, and arguments + temporaries in all.

    python benchmarks/quantized_memory.py                        # 2B and 7B, about 10 minutes on 2 cores
    python benchmarks/quantized_memory.py --presets gemma_2b_en --train --json-out mem.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from gemmaflow.model.config import DType, preset
from gemmaflow.model.gemma import Gemma
from gemmaflow.model.lora import attach, init_lora
from gemmaflow.model.objectives import LanguageModeling
from gemmaflow.model.quant import stored_bytes
from gemmaflow.model.train_config import LORA_TARGETS, LoraConfig
from gemmaflow.model.weights import abstract_params

FORMATS = {  # name -> (stored dtype, quantize mode, double quantization)
    "float32": (DType.FLOAT32, "none", False),
    "bfloat16": (DType.BFLOAT16, "none", False),
    "int8": (DType.BFLOAT16, "int8", False),  # norms and compute in bfloat16
    "nf4": (DType.BFLOAT16, "nf4", True),
    "nf4 (no double quant)": (DType.BFLOAT16, "nf4", False),
}


def abstract_weights(name: str, fmt: str) -> tuple:
    dtype, mode, double_quant = FORMATS[fmt]
    config = preset(name, param_dtype=dtype, dtype=dtype)  # computing in the stored dtype (bfloat16 when quantized)
    return config, abstract_params(config, mode, double_quant)


def forward_memory(config, params, seq_len: int) -> dict:
    tokens = jax.ShapeDtypeStruct((1, seq_len), jnp.int32)

    def forward(params, tokens):
        positions = jnp.arange(seq_len)[None]
        hidden = Gemma(config).apply({"params": params}, tokens, positions, jnp.ones_like(tokens),
                                     method=Gemma.hidden_states)
        return hidden[:, -1]  # the last position's state: no [T, V] logits in the figure

    stats = jax.jit(forward).lower(params, tokens).compile().memory_analysis()
    return {"weights": stats.argument_size_in_bytes - seq_len * 4, "forward_temp": stats.temp_size_in_bytes}


def train_memory(config, params, seq_len: int) -> dict:
    lora_config = LoraConfig(enabled=True, rank=8, targets=LORA_TARGETS)
    adapters = jax.eval_shape(lambda: init_lora(params, lora_config, jax.random.key(0)))
    objective = LanguageModeling(config, chunk_size=1024, z_loss_weight=0.0)
    batch = {name: jax.ShapeDtypeStruct((1, seq_len), jnp.int32)
             for name in ("inputs", "positions", "segment_ids", "targets")}
    batch["mask"] = jax.ShapeDtypeStruct((1, seq_len), jnp.float32)

    def loss(adapters, params, batch):
        return objective.summed_loss(attach(params, adapters, lora_config), None, batch)[0]

    stats = jax.jit(jax.grad(loss)).lower(adapters, params, batch).compile().memory_analysis()
    return {"train_temp": stats.temp_size_in_bytes,
            "train_total": stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["gemma_2b_en", "gemma_7b_en"])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--train", action="store_true", help="also compile a LoRA step (slower)")
    parser.add_argument("--json-out", help="write the rows here as JSON")
    args = parser.parse_args()
    rows = []
    print(f"{'preset':<14}{'format':<24}{'weights GB':>12}{'(tree GB)':>11}{'fwd temp GB':>13}"
          + (f"{'step temp GB':>14}{'step total GB':>15}" if args.train else "") + f"{'s':>6}")
    for name in args.presets:
        for fmt in args.formats:
            start = time.perf_counter()
            config, params = abstract_weights(name, fmt)
            row = {"preset": name, "format": fmt, "tree_bytes": stored_bytes(params),
                   **forward_memory(config, params, args.seq_len)}
            if args.train:
                row.update(train_memory(config, params, args.seq_len))
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            line = (f"{name:<14}{fmt:<24}{row['weights'] / 1e9:>12.2f}{row['tree_bytes'] / 1e9:>11.2f}"
                    f"{row['forward_temp'] / 1e9:>13.2f}")
            if args.train:
                line += f"{row['train_temp'] / 1e9:>14.2f}{row['train_total'] / 1e9:>15.2f}"
            print(line + f"{row['seconds']:>6.0f}", flush=True)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump({"seq_len": args.seq_len, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
