"""`GemmaRewardModel`: a trained reward model as users call it, and as the side-by-side judge.

    from gemmaflow.model import GemmaRewardModel
    rm = GemmaRewardModel.from_pretrained("runs/reward")     # a `gemmaflow train --set kind=reward` output
    rm.score(["What is 2 + 2?"], ["4"])                        # one reward per (prompt, answer)
    rm.judge_batch([(prompt, first, second)])                  # P(first is better), for `gemmaflow sxs`

A reward model is the Gemma backbone plus a scalar head read at the answer's `<end_of_turn>`
(model/objectives.py). Text is formatted as training saw it: BOS, the prompt in Gemma's user turn,
the answer in the model turn closed by `<end_of_turn>`. Under Bradley–Terry the probability that the
first answer is preferred is `sigmoid(r_first - r_second)`, which is what the judge returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.core.chat import END_OF_TURN, MODEL, START_OF_TURN, TURN_END, USER, role_header
from gemmaflow.model.checkpoint import CheckpointError
from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.gemma import Params
from gemmaflow.model.objectives import REWARD_HEAD, rewards
from gemmaflow.model.pairs import sequence_arrays
from gemmaflow.model.weights import load_weights

Triple = tuple[str, str, str]
_WIDTH_STEP = 64  # batches are padded to a multiple of this, so a few shapes cover any input


class GemmaRewardModel:
    """A reward model's weights, its tokenizer, and batched scoring."""

    def __init__(self, config: GemmaConfig, params: Params, tokenizer: str | Path | None = None,
                 batch_size: int = 16) -> None:
        if REWARD_HEAD not in params:
            raise CheckpointError("these weights have no reward head: a language model, not a reward model "
                                  "(train one with `gemmaflow train --set kind=reward`)")
        self.config, self.params, self.batch_size = config, params, batch_size
        self.tokenizer = None
        if tokenizer is not None:
            import sentencepiece

            self.tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
        self._rewards = jax.jit(lambda p, batch: rewards(p, config, batch))

    @classmethod
    def from_pretrained(cls, path: str | Path, tokenizer: str | Path | None = None,
                        batch_size: int = 16) -> GemmaRewardModel:
        """A saved reward model, or a reward training run (its final model, else its newest checkpoint)."""
        config, params, found = load_weights(path)
        config = dataclasses.replace(config, param_dtype=DType.FLOAT32, dtype=DType.FLOAT32)
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        return cls(config, params, tokenizer or found, batch_size)

    def encode(self, prompt: str, answer: str) -> list[int]:
        """BOS, the prompt's user turn, the answer's model turn through `<end_of_turn>` (where the reward is read).

        Token for token the layout `gemmaflow prefs` writes: the user turn's text is encoded with its
        role header, the model header and the answer apart, so the answer's first piece is the one the
        reward model was trained on (a test holds the two equal).
        """
        if self.tokenizer is None:
            raise ValueError("no tokenizer attached: score token ids, or pass tokenizer= a .model file")
        sp = self.tokenizer
        start, end = sp.piece_to_id(START_OF_TURN), sp.piece_to_id(END_OF_TURN)
        for piece, token in ((START_OF_TURN, start), (END_OF_TURN, end)):
            if token == sp.unk_id():
                raise ValueError(f"the tokenizer has no {piece} piece: not a Gemma chat tokenizer")
        return [sp.bos_id(), start, *sp.encode(role_header(USER) + prompt.strip()), end, *sp.encode(TURN_END),
                start, *sp.encode(role_header(MODEL)), *sp.encode(answer.strip()), end]

    def score(self, prompts: Sequence[str] | Sequence[Sequence[int]],
              answers: Sequence[str] | None = None) -> np.ndarray:
        """Rewards [n] (float32) of (prompt, answer) strings, or of token sequences (read at their last token)."""
        if answers is not None:
            if len(answers) != len(prompts):
                raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
            sequences = [self.encode(str(p), a) for p, a in zip(prompts, answers, strict=True)]
        else:
            sequences = [[int(t) for t in p] for p in prompts]
        if any(not s for s in sequences):
            raise ValueError("an empty sequence has no token to read a reward at")
        longest = max((len(s) for s in sequences), default=0)
        if longest > self.config.max_seq_len:
            raise ValueError(f"a {longest}-token sequence exceeds the model's max_seq_len {self.config.max_seq_len}")
        out = np.zeros(len(sequences), np.float32)
        for start in range(0, len(sequences), self.batch_size):
            chunk = sequences[start:start + self.batch_size]
            width = min(-(-max(len(s) for s in chunk) // _WIDTH_STEP) * _WIDTH_STEP, self.config.max_seq_len)
            rows = chunk + [chunk[-1]] * (self.batch_size - len(chunk))  # a fixed batch shape: one compilation
            masks = [np.ones(len(s), np.uint8) for s in rows]
            arrays = sequence_arrays([np.asarray(s, np.int32) for s in rows], masks, width)
            batch = {name: arrays[name] for name in ("inputs", "positions", "segment_ids", "last")}
            out[start:start + len(chunk)] = np.asarray(self._rewards(self.params, batch))[: len(chunk)]
        return out

    def judge_batch(self, triples: Sequence[Triple]) -> list[float]:
        """P(first answer preferred) = sigmoid(r_first - r_second), per (prompt, first, second)."""
        prompts = [p for p, _, _ in triples]
        first = self.score(prompts, [a for _, a, _ in triples])
        second = self.score(prompts, [b for _, _, b in triples])
        return [float(v) for v in jax.nn.sigmoid(jnp.asarray(first - second, jnp.float32))]

    def __call__(self, prompt: str, first: str, second: str) -> float:
        return self.judge_batch([(prompt, first, second)])[0]
