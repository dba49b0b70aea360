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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.core.chat import END_OF_TURN, END_OF_TURN_ID, EOS_ID
from gemmaflow.model import checkpoint, convert
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.config import DType, GemmaConfig, preset
from gemmaflow.model.gemma import LayerIntercept, Params
from gemmaflow.model.layers import Array
from gemmaflow.model.objectives import REWARD_HEAD
from gemmaflow.model.sampling import BeamSampler, Sampler, SamplerKind, generate
from gemmaflow.model.scoring import ScoringMode, score
from gemmaflow.model.weights import TOKENIZER_FILE, fresh_params, load_weights


def _cast(config: GemmaConfig, params: Params, dtype: DType | str | None) -> tuple[GemmaConfig, Params]:
    """Weights and activations in `dtype` (float32 by default, whatever the weights were saved in)."""
    dtype = DType(dtype) if dtype is not None else DType.FLOAT32
    config = dataclasses.replace(config, param_dtype=dtype, dtype=dtype)
    return config, jax.tree.map(lambda x: jnp.asarray(x, dtype.jnp), params)


def _sampler(sampler: Sampler | BeamSampler | str) -> Sampler | BeamSampler:
    if isinstance(sampler, (Sampler, BeamSampler)):
        return sampler
    if sampler == "beam":
        return BeamSampler()
    return Sampler(SamplerKind(sampler))


class GemmaLM:
    """A Gemma model with its weights and (optionally) its SentencePiece tokenizer."""

    def __init__(self, config: GemmaConfig, params: Params, tokenizer: str | Path | None = None) -> None:
        self.config, self.params = config, params
        self.tokenizer_path = Path(tokenizer) if tokenizer else None
        self.tokenizer = None
        if self.tokenizer_path is not None:
            import sentencepiece

            self.tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(self.tokenizer_path))

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: DType | str | None = None,
                        tokenizer: str | Path | None = None) -> GemmaLM:
        config, params, found = load_weights(path)
        if REWARD_HEAD in params:
            raise CheckpointError(f"{path} is a reward model: load it with GemmaRewardModel.from_pretrained")
        config, params = _cast(config, params, dtype)
        return cls(config, params, tokenizer or found)

    @classmethod
    def from_preset(cls, name: str, vocab_size: int, seed: int = 0, dtype: DType | str | None = None,
                    tokenizer: str | Path | None = None, **overrides: Any) -> GemmaLM:
        """Fresh weights (Flax's initialisers, seeded) for a preset of `model.config`."""
        config = preset(name, vocab_size=vocab_size, **overrides)
        config, params = _cast(config, fresh_params(config, jax.random.key(seed)), dtype)
        return cls(config, params, tokenizer)

    def save_pretrained(self, path: str | Path, format: str = "native") -> None:
        """Our folder (`native`, loads back exactly) or a Hugging Face Gemma folder (`hf`); the tokenizer is copied."""
        if format == "native":
            checkpoint.save_model(path, self.config, self.params)
        elif format == "hf":
            convert.save_hf(path, self.config, self.params)
        else:
            raise ValueError(f"format must be 'native' or 'hf', got {format!r}")
        if self.tokenizer_path is not None:
            shutil.copyfile(self.tokenizer_path, Path(path) / TOKENIZER_FILE)

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
        sampler: Sampler | BeamSampler | str = "greedy",
        seed: int = 0,
        stop_tokens: Sequence[int] | None = None,
    ) -> str | list[str] | list[list[int]]:
        """Continue each prompt up to `max_length` tokens in all (prompt included) or a stop token.

        As in Keras Hub, strings in give strings out (prompt plus continuation, special tokens
        removed; a single string gives a single string) and token ids give token ids (prompt,
        continuation and any stop token). `sampler`: "greedy", "random", "top_k", "top_p", "beam" or
        a configured `Sampler` / `BeamSampler`. `stop_tokens` defaults to EOS and `<end_of_turn>` (their
        ids in the attached tokenizer, else Gemma's 1 and 107).
        """
        if stop_tokens is None:
            stop_tokens = self.stop_tokens()
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        as_text = bool(texts) and isinstance(texts[0], str)
        ids = [self.encode(t) for t in texts] if as_text else [[int(i) for i in p] for p in texts]
        result = generate(self.params, self.config, ids, max_length=max_length, sampler=_sampler(sampler),
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
        with `score_positions` [B, K], only those positions ([B, K, V] or [B, K])."""
        return score(self.params, self.config, token_ids, padding_mask, scoring_mode, layer_intercept_fn, target_ids,
                     score_positions)
