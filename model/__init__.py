"""The JAX Gemma model: architecture, trainer, checkpoints, sampling and scoring.

- `model.config`: `GemmaConfig` and the presets (`gemma_2b`, `gemma_7b`, `small`, `tiny`).
- `model.layers`: RMSNorm, RoPE, attention, GeGLU as pure functions and Flax Linen modules.
- `model.gemma`: the `Gemma` decoder, `init_params`, `count_params`, the KV `Cache`, FLOPs per token.
- `model.loss`: masked cross-entropy, chunked so that full logits never exist.
- `model.sampling`: `generate` with a KV cache (greedy, temperature, top-k, top-p, `BeamSampler`,
  `ContrastiveSampler`).
- `model.scoring`: `score`, Keras Hub's `GemmaCausalLM.score` semantics.
- `model.convert`: Keras Hub weights in; Hugging Face Gemma safetensors in and out.
- `model.shards`: the packed-shard reader (validation, random access, batch order from seed and step).
- `model.lora`: LoRA adapters, attached to the weights the layers read (with dropout) or merged for export.
- `model.quant`: int8 and NF4 weights for QLoRA, dequantized at each matmul.
- `model.train`, `model.train_config`, `model.optim`, `model.checkpoint`: the trainer.
- `model.objectives`: what a run minimises: next-token loss, Bradley–Terry reward, DPO, REINFORCE.
- `model.pairs`, `model.rollout`: preference pairs as batches; REINFORCE's sampled and scored answers.
- `model.weights`: fresh weights and loading any weights folder, for the trainer and `GemmaLM` alike.
- `model.device_peak`: the devices' peak matmul throughput, MFU's denominator.
- `model.api`: `GemmaLM`, the Keras-Hub-like Python API (`from model import GemmaLM`).
- `model.reward`: `GemmaRewardModel`, a trained reward model's scoring API and side-by-side judge.
- `model.eval_tasks`, `model.evaluate`: benchmark task files and their scoring through `GemmaLM`
  (`gemmaflow eval`), as lm-evaluation-harness defines it; the only model code above the user API.

The shard format document is this package's contract with the pipeline; it imports neither Beam
nor `pipeline`.
"""

__all__ = ["GemmaLM", "GemmaRewardModel"]


def __getattr__(name: str) -> object:
    """`from model import GemmaLM`, imported on first use so `import model.config` stays light."""
    if name == "GemmaLM":
        from gemmaflow.model.api import GemmaLM

        return GemmaLM
    if name == "GemmaRewardModel":
        from gemmaflow.model.reward import GemmaRewardModel

        return GemmaRewardModel
    raise AttributeError(f"module 'model' has no attribute {name!r}")
