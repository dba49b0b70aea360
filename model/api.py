"""`GemmaLM`: the Python API users script against (load, save, generate, score), Keras-Hub-like.

    from gemmaflow.model import GemmaLM
    lm = GemmaLM.from_pretrained("runs/train")            # our checkpoint, a training run, or an HF folder
    lm.generate(["The capital of France is"], max_length=32, sampler="top_k")
    lm.score(token_ids, scoring_mode="loss", target_ids=targets)
    lm.save_pretrained("export/", format="hf")

`from_pretrained` recognises three kinds of folder: our saved model (`gemmaflow_model.json` +
`params/`), a `gemmaflow train` output (its `final/` model, else its newest whole checkpoint, LoRA
adapters merged) and a Hugging Face Gemma folder (`config.json` + safetensors). A `tokenizer.model`
(SentencePiece) in the folder is attached, so prompts may be strings.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.core.chat import END_OF_TURN, END_OF_TURN_ID, EOS_ID, PAD_ID
from gemmaflow.model import checkpoint, convert
from gemmaflow.model.checkpoint import CheckpointError, load_adapters, save_adapters
from gemmaflow.model.config import PRESETS, RELEASED_PRESETS, DType, GemmaConfig, preset
from gemmaflow.model.gemma import LayerIntercept, Params
from gemmaflow.model.layers import Array
from gemmaflow.model.lora import attach, init_lora, merge
from gemmaflow.model.objectives import REWARD_HEAD, LanguageModeling
from gemmaflow.model.optim import make_optimizer
from gemmaflow.model.quant import QuantMode, dequantize_params, is_quantized, quantize_params, stored_bytes
from gemmaflow.model.sampling import BeamSampler, ContrastiveSampler, Sampler, SamplerKind, generate
from gemmaflow.model.scoring import ScoringMode, score
from gemmaflow.model.train import make_train_step
from gemmaflow.model.train_config import LoraConfig, OptimizerConfig
from gemmaflow.model.weights import TOKENIZER_FILE, fresh_params, load_weights

# The fields that make two configs the same network (max_seq_len, dtypes and query_block do not).
_ARCHITECTURE = ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "head_dim", "ffw_dim", "norm_eps",
                 "rope_base")


def _cast(config: GemmaConfig, params: Params, dtype: DType | str | None) -> tuple[GemmaConfig, Params]:
    """Weights and activations in `dtype` (float32 by default, whatever the weights were saved in)."""
    dtype = DType(dtype) if dtype is not None else DType.FLOAT32
    config = dataclasses.replace(config, param_dtype=dtype, dtype=dtype)
    return config, jax.tree.map(lambda x: jnp.asarray(x, dtype.jnp), params)


SamplerFn = Callable[[Array, Array], Array]  # (logits [B, V] float32, rng) -> next token ids [B]


def _sampler(
    sampler: Sampler | BeamSampler | ContrastiveSampler | SamplerFn | str,
) -> Sampler | BeamSampler | ContrastiveSampler | SamplerFn:
    """A sampler by name ("greedy", "random", "top_k", "top_p", "beam", "contrastive"; the last two with their
    default settings), a configured one, or a plain callable `(logits, rng) -> token ids`: traced once into the
    jitted decoding loop, so it must be a JAX function."""
    if isinstance(sampler, (Sampler, BeamSampler, ContrastiveSampler)):
        return sampler
    if sampler == "beam":
        return BeamSampler()
    if sampler == "contrastive":
        return ContrastiveSampler()
    if isinstance(sampler, str):
        return Sampler(SamplerKind(sampler))
    if callable(sampler):
        return sampler
    raise TypeError("sampler must be a name, a Sampler, a BeamSampler, a ContrastiveSampler or a callable, got "
                    f"{type(sampler).__name__}")


def _lm_batch(rows: list[list[int]], length: int) -> dict[str, np.ndarray]:
    """Next-token rows [b, length]: inputs, targets shifted by one, positions, segment 1 (0 on padding), mask."""
    inputs = np.full((len(rows), length), PAD_ID, np.int32)
    targets = np.full_like(inputs, PAD_ID)
    segments = np.zeros_like(inputs)
    for i, row in enumerate(rows):
        n = len(row) - 1
        inputs[i, :n], targets[i, :n], segments[i, :n] = row[:-1], row[1:], 1
    positions = np.broadcast_to(np.arange(length, dtype=np.int32), inputs.shape) * segments
    return {"inputs": inputs, "targets": targets, "positions": positions, "segment_ids": segments,
            "mask": segments.astype(np.float32)}


def _ragged(rows: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A list of unequal-length token lists -> (right-padded [B, T] ids, padding mask); None for a rectangle."""
    if isinstance(rows, (np.ndarray, jax.Array)) or not isinstance(rows, Sequence) or not rows:
        return None
    if not all(isinstance(row, (Sequence, np.ndarray)) for row in rows):
        return None
    lengths = [len(row) for row in rows]
    if len(set(lengths)) == 1:
        return None
    ids = np.full((len(rows), max(lengths)), PAD_ID, np.int32)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


class GemmaLM:
    """A Gemma model with its weights and (optionally) its SentencePiece tokenizer."""

    def __init__(self, config: GemmaConfig, params: Params, tokenizer: str | Path | None = None) -> None:
        self.config, self.params = config, params
        self.lora: Params | None = None  # adapters over the frozen `params`, after `enable_lora`
        self.lora_config: LoraConfig | None = None
        self.quantization: QuantMode = "none"
        self.tokenizer_path = Path(tokenizer) if tokenizer else None
        self.tokenizer = None
        if self.tokenizer_path is not None:
            import sentencepiece

            self.tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(self.tokenizer_path))

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: DType | str | None = None,
                        tokenizer: str | Path | None = None) -> GemmaLM:
        config, params, found = load_weights(path, DType(dtype) if dtype is not None else DType.FLOAT32)
        if REWARD_HEAD in params:
            raise CheckpointError(f"{path} is a reward model: load it with GemmaRewardModel.from_pretrained")
        config, params = _cast(config, params, dtype)
        return cls(config, params, tokenizer or found)

    @classmethod
    def from_preset(cls, name: str, weights: str | Path | None = None, *, load_weights: bool | None = None,
                    vocab_size: int | None = None, seed: int = 0, dtype: DType | str | None = None,
                    tokenizer: str | Path | None = None, **overrides: Any) -> GemmaLM:
        """A preset of `model.config` by name: Keras Hub's released names (`gemma_2b_en`, `gemma_instruct_7b_en`,
        ...) or an architecture (`gemma_2b`, `small`, `tiny`).

        With `weights=FOLDER` (a Hugging Face Gemma folder, a Keras Hub preset folder or one of ours) the
        weights are loaded and must have the preset's exact shape. A released name needs them unless
        `load_weights=False`, which gives random weights (Flax's initialisers, seeded) of that shape, as an
        architecture name always does without `weights`. Nothing is ever downloaded. `vocab_size` and
        `overrides` (any GemmaConfig field) change the architecture of random weights only.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        load = (weights is not None or name in RELEASED_PRESETS) if load_weights is None else load_weights
        if weights is None and load:
            raise CheckpointError(f"{name}: weights are not bundled and never downloaded; pass weights=FOLDER "
                                  "holding a Hugging Face checkpoint (config.json + model*.safetensors), a Keras Hub "
                                  "preset (config.json + model.weights.h5) or a gemmaflow model "
                                  "(gemmaflow_model.json + params/), or load_weights=False for random weights")
        if weights is None or not load:
            config = preset(name, **({"vocab_size": vocab_size} if vocab_size else {}), **overrides)
            config, params = _cast(config, fresh_params(config, jax.random.key(seed)), dtype)
            return cls(config, params, tokenizer)
        if vocab_size or overrides:
            raise ValueError("vocab_size and overrides shape random weights; loaded weights keep their own shape")
        loaded = cls.from_pretrained(weights, dtype=dtype, tokenizer=tokenizer)
        expected = preset(name)
        different = [f"{field} {getattr(loaded.config, field)} (preset: {getattr(expected, field)})"
                     for field in _ARCHITECTURE if getattr(loaded.config, field) != getattr(expected, field)]
        if different:
            raise CheckpointError(f"{weights} does not hold {name}: " + ", ".join(different))
        return loaded

    def save_pretrained(self, path: str | Path, format: str = "native", adapters_only: bool = False) -> None:
        """Our folder (`native`, loads back exactly) or a Hugging Face Gemma folder (`hf`); the tokenizer is copied.

        With LoRA enabled the adapters are merged into the saved weights, or with `adapters_only` saved alone
        (`adapters/` and `gemmaflow_lora.json`, a few MB; `load_lora` puts them back on the same base). A
        quantized model is saved dequantized, in float32.
        """
        if adapters_only:
            if self.lora is None or self.lora_config is None:
                raise ValueError("adapters_only: this model has no LoRA adapters (call enable_lora first)")
            if format != "native":
                raise ValueError("adapters are saved in the native format only")
            save_adapters(path, self.config, self.lora, self.lora_config)
            return
        params = self.merged_params()
        if format == "native":
            checkpoint.save_model(path, self.config, params)
        elif format == "hf":
            convert.save_hf(path, self.config, params)
        else:
            raise ValueError(f"format must be 'native' or 'hf', got {format!r}")
        if self.tokenizer_path is not None:
            shutil.copyfile(self.tokenizer_path, Path(path) / TOKENIZER_FILE)

    # --- LoRA, QLoRA and fine-tuning -------------------------------------------------------------

    def quantize(self, mode: QuantMode, double_quant: bool = True) -> GemmaLM:
        """Store the weights in 8 bits (`int8`, per-channel absmax) or 4 bits (`nf4`, QLoRA's NormalFloat with
        block-wise scales, `double_quant` quantizing those too) from now on, as Keras' `model.quantize` does;
        model/quant.py. Generation and scoring dequantize at each matmul; with `enable_lora`, `fit` trains
        adapters over the quantized base (QLoRA). Returns the model, for chaining."""
        if mode not in ("int8", "nf4"):
            raise ValueError(f"mode must be 'int8' or 'nf4', got {mode!r}")
        if self.quantization != "none":
            raise ValueError(f"the weights are already quantized ({self.quantization})")
        self.params = quantize_params(self.params, mode, double_quant)
        self.quantization = mode
        return self

    def enable_lora(self, rank: int, alpha: float | None = None, dropout: float = 0.0,
                    targets: Sequence[str] = ("query", "value"), dtype: str = "float32", seed: int = 0) -> GemmaLM:
        """Freeze the weights and add rank-`rank` adapters to `targets` (Keras Hub's `backbone.enable_lora`).

        `alpha` defaults to `rank` (an update scale of 1, as Keras does); `dropout` drops the adapters' inputs
        in `fit`; `dtype` is the adapters' ("float32" or "bfloat16"). B starts at zero, so the model is unchanged
        until trained. Generation, scoring and `fit` then use base plus adapters; `save_pretrained` merges them
        or saves them alone. Returns the model, for chaining.
        """
        if self.lora is not None:
            raise ValueError("LoRA is already enabled on this model")
        self.lora_config = LoraConfig(enabled=True, rank=rank, alpha=float(rank if alpha is None else alpha),
                                      dropout=dropout, targets=tuple(targets), dtype=dtype)  # type: ignore[arg-type]
        self.lora = init_lora(self.params, self.lora_config, jax.random.key(seed))
        return self

    def load_lora(self, path: str | Path) -> GemmaLM:
        """Attach adapters saved by `save_pretrained(..., adapters_only=True)` from a model of this architecture."""
        if self.lora is not None:
            raise ValueError("LoRA is already enabled on this model")
        config, self.lora, self.lora_config = load_adapters(path)
        different = [name for name in _ARCHITECTURE if getattr(config, name) != getattr(self.config, name)]
        if different:
            self.lora = self.lora_config = None
            raise CheckpointError(f"{path}: adapters of another architecture ({', '.join(different)} differ)")
        return self

    def weights(self) -> Params:
        """What the model computes with: the parameters, with the LoRA adapters attached if enabled."""
        if self.lora is None or self.lora_config is None:
            return self.params
        return attach(self.params, self.lora, self.lora_config)

    def merged_params(self) -> Params:
        """Dense parameters: adapters merged, a quantized base dequantized (float32)."""
        if self.lora is not None and self.lora_config is not None:
            return merge(self.params, self.lora, self.lora_config)
        return dequantize_params(self.params, jnp.float32)

    def fit(self, data: Sequence[str] | Sequence[Sequence[int]], steps: int, batch_size: int = 4,
            sequence_length: int = 128, learning_rate: float = 1e-3, seed: int = 0) -> list[float]:
        """Train on `data` (strings, with a tokenizer attached, or token-id lists) for `steps` AdamW steps of
        `batch_size` sequences (Keras' `fit`), each cut to `sequence_length` tokens, every token a target.

        With LoRA enabled only the adapters train (over a quantized base too: QLoRA); otherwise every weight
        does. The trainer's own step (`model.train.make_train_step`) runs it, with a constant learning rate
        after a 10% warmup. Returns the loss of each step. For shard folders and multi-device runs use
        `gemmaflow train`.
        """
        if self.lora is None and self.quantization != "none":
            raise ValueError("a quantized model trains LoRA adapters only: call enable_lora first")
        if min(steps, batch_size, sequence_length) < 1 or learning_rate <= 0:
            raise ValueError("steps, batch_size and sequence_length must be at least 1, learning_rate positive")
        rows = [self.encode(item) if isinstance(item, str) else [int(t) for t in item] for item in data]
        rows = [row[:sequence_length + 1] for row in rows if len(row) >= 2]
        if not rows:
            raise ValueError("fit needs at least one sequence of two or more tokens")
        lora_config = self.lora_config or LoraConfig()
        objective = LanguageModeling(self.config, chunk_size=1024, z_loss_weight=0.0)
        optimizer = make_optimizer(OptimizerConfig(learning_rate=learning_rate, schedule="constant",
                                                   weight_decay=0.0), steps)
        trainable, frozen = (self.params, None) if self.lora is None else (self.lora, self.params)
        step_fn = jax.jit(make_train_step(objective, lora_config, optimizer), donate_argnums=(3,))
        opt_state = optimizer.init(trainable)
        order = np.random.default_rng(seed)
        rng, history = jax.random.key(seed), []
        for step in range(steps):
            chosen = [rows[i] for i in order.integers(0, len(rows), batch_size)]
            batch = {name: jnp.asarray(value[None]) for name, value in _lm_batch(chosen, sequence_length).items()}
            trainable, opt_state, metrics = step_fn(trainable, frozen, None, opt_state, batch,
                                                    jax.random.fold_in(rng, step))
            history.append(float(metrics["loss"]))
        if self.lora is None:
            self.params = trainable
        else:
            self.lora = trainable
        return history

    # --- Text ------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` with one leading BOS, as Gemma expects."""
        if self.tokenizer is None:
            raise ValueError("no tokenizer attached: pass token ids, or a tokenizer= .model file")
        return [self.tokenizer.bos_id(), *self.tokenizer.encode(text)]

    def stop_tokens(self) -> tuple[int, ...]:
        if self.tokenizer is None:
            return (EOS_ID, END_OF_TURN_ID)
        end_of_turn = self.tokenizer.piece_to_id(END_OF_TURN)
        has_end_of_turn = end_of_turn != self.tokenizer.unk_id()
        return (self.tokenizer.eos_id(), *([end_of_turn] if has_end_of_turn else []))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids` without BOS, padding and stop tokens."""
        special = {self.tokenizer.bos_id(), self.tokenizer.pad_id(), *self.stop_tokens()}
        return self.tokenizer.decode([int(i) for i in ids if int(i) not in special])

    # --- Generation and scoring ------------------------------------------------------------------

    def generate(
        self,
        prompts: str | Sequence[str] | Sequence[Sequence[int]],
        max_length: int = 64,
        sampler: Sampler | BeamSampler | ContrastiveSampler | SamplerFn | str = "greedy",
        seed: int = 0,
        stop_tokens: Sequence[int] | None = None,
    ) -> str | list[str] | list[list[int]]:
        """Continue each prompt up to `max_length` tokens in all (prompt included) or a stop token.

        As in Keras Hub, strings in give strings out (prompt plus continuation, special tokens
        removed; a single string gives a single string) and token ids give token ids (prompt,
        continuation and any stop token). `sampler`: "greedy", "random", "top_k", "top_p", "beam",
        "contrastive", a configured `Sampler` / `BeamSampler` / `ContrastiveSampler`, or a callable
        `(logits [B, V], rng) -> token ids [B]`.
        `stop_tokens` defaults to EOS and `<end_of_turn>` (their ids in the attached tokenizer, else Gemma's
        1 and 107).
        """
        if stop_tokens is None:
            stop_tokens = self.stop_tokens()
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        as_text = bool(texts) and isinstance(texts[0], str)
        ids = [self.encode(t) for t in texts] if as_text else [[int(i) for i in p] for p in texts]
        result = generate(self.weights(), self.config, ids, max_length=max_length, sampler=_sampler(sampler),
                          rng=jax.random.key(seed), stop_tokens=tuple(stop_tokens))
        rows = [row[:length].tolist() for row, length in zip(result.tokens, result.lengths, strict=True)]
        if not as_text:
            return rows
        decoded = [self.decode(row) for row in rows]
        return decoded[0] if single else decoded

    def score(
        self,
        token_ids: Array | np.ndarray,
        padding_mask: Array | np.ndarray | None = None,
        scoring_mode: ScoringMode | str = "logits",
        layer_intercept_fn: LayerIntercept | None = None,
        target_ids: Array | np.ndarray | None = None,
        score_positions: Array | np.ndarray | None = None,
    ) -> Array:
        """Keras Hub's `GemmaCausalLM.score`: logits [B, T, V] or per-token loss [B, T] (model/scoring.py);
        with `score_positions` [B, K], only those positions ([B, K, V] or [B, K]).

        Beyond Keras Hub: `token_ids` may be a list of unequal-length sequences (right-padded here, the
        padding mask built from their lengths; `target_ids` then a list of the same lengths), and one 1-D
        sequence (with 1-D `target_ids`) gives one row's result without the batch axis. Scores at padded
        positions are unspecified, as in Keras Hub.

        `layer_intercept_fn(x, i)` follows Keras Hub's convention, with one difference. It sees the unscaled
        token embeddings (i = -1) and each block's output (i = 0, 1, ...), and for the blocks its return value
        replaces the activations, as in Keras Hub. At i = -1 Keras Hub ignores the return value (it multiplies
        the original embeddings by sqrt(d_model)); here the returned embeddings are the ones scaled and used.
        An intercept that returns `x` unchanged at -1 behaves identically in both.
        """
        ragged = _ragged(token_ids)
        single = ragged is None and np.ndim(token_ids) == 1
        if single:
            token_ids = np.asarray(token_ids)[None]
            target_ids = None if target_ids is None else np.asarray(target_ids)[None]
        elif ragged is not None:
            if padding_mask is not None:
                raise ValueError("ragged token_ids build their own padding mask; pass padding_mask only with a "
                                 "rectangular batch")
            token_ids, padding_mask = ragged
            if target_ids is not None:
                padded = _ragged(target_ids)
                target_ids = padded[0] if padded is not None else np.asarray(target_ids)
                if target_ids.shape != token_ids.shape:
                    raise ValueError(f"target_ids {target_ids.shape} must have the lengths of token_ids")
        result = score(self.weights(), self.config, token_ids, padding_mask, scoring_mode, layer_intercept_fn,
                       target_ids, score_positions)
        return result[0] if single else result

    def summary(self, print_fn: Callable[[str], None] | None = print) -> str:
        """Keras-style summary: the embedding, each block's weights (shapes, parameters, how they are stored),
        the LoRA adapters, and the totals, trainable and frozen. Returned as text and, unless `print_fn` is None,
        printed with it."""
        c = self.config
        stored = c.param_dtype.value
        if self.quantization != "none":
            stored = f"{self.quantization} (norms {stored})"
        lines = [f"Gemma: {c.num_layers} blocks, d_model {c.d_model}, {c.num_heads} query heads / {c.num_kv_heads} "
                 f"key-value heads of {c.head_dim}, GeGLU {c.ffw_dim}, vocabulary {c.vocab_size:,}, context "
                 f"{c.max_seq_len:,}, weights {stored}", "",
                 f"{'layer':<14}{'weight':<28}{'shape':<20}{'parameters':>14}"]
        for name in ["embedder", *(f"layers_{i}" for i in range(c.num_layers)), "final_norm"]:
            for path, leaf in jax.tree_util.tree_flatten_with_path(self.params[name], is_leaf=is_quantized)[0]:
                weight = "/".join(str(getattr(k, "key", k)) for k in path)
                lines.append(f"{name:<14}{weight:<28}{tuple(leaf.shape)!s:<20}{int(np.prod(leaf.shape)):>14,}")
        total, embedding = _count(self.params), _count(self.params["embedder"])
        trainable = total if self.lora is None else _count(self.lora)
        if self.lora is not None and self.lora_config is not None:
            lc = self.lora_config
            lines += ["", f"LoRA rank {lc.rank}, alpha {lc.alpha:g}, dropout {lc.dropout:g} on "
                          f"{', '.join(lc.targets)}: {trainable:,} parameters ({lc.dtype})"]
        lines += ["", f"total parameters: {total + (0 if self.lora is None else trainable):,} (embedding "
                      f"{embedding:,}, tied with the output projection); {stored_bytes(self.params):,} bytes "
                      "of weights", f"trainable: {trainable:,}; frozen: {0 if self.lora is None else total:,}", ""]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def _count(tree: Any) -> int:
    """Parameters of a tree, a quantized weight counting as the weight it stands for."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree, is_leaf=is_quantized))
