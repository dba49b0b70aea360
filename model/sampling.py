"""Autoregressive generation with a KV cache: greedy, temperature, top-k, top-p sampling and beam search.

Prompts of different lengths are left-padded to a common length P, so every row writes its next
token at the same cache slot; padding slots have segment id 0 and are never attended to, and
positions count only real tokens, so a padded prompt generates what it would alone. The prompt
is one `Gemma.call_with_cache` call (prefill); each later token is one call with T = 1 inside a
`lax.while_loop` over a `SamplingState` pytree, which stops early once every row has hit a stop
token or its `max_length`.

Beam search (`BeamSampler`) runs the same prefill once per prompt, then keeps `num_beams` rows
per prompt in the cache: each step scores every (beam, next token) pair by the sum of token
log-probabilities, keeps the best `num_beams` and gathers their cache rows. A beam that has hit a
stop token or its `max_length` stays in the running with its score frozen (it may only extend by
padding, at log-probability 0), and the best beam of each prompt is returned, as Keras Hub's
`BeamSampler` does (no length penalty).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from gemmaflow.core.chat import END_OF_TURN_ID, EOS_ID, PAD_ID
from gemmaflow.model.config import GemmaConfig
from gemmaflow.model.gemma import Cache, Gemma, Params, init_cache
from gemmaflow.model.layers import Array, LayerCache


class SamplerKind(enum.Enum):
    GREEDY = "greedy"  # argmax; deterministic
    RANDOM = "random"  # sample from softmax(logits / temperature)
    TOP_K = "top_k"  # ... restricted to the k most likely tokens
    TOP_P = "top_p"  # ... restricted to the smallest set whose probability reaches p (nucleus)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """How the next token is chosen from its logits. `temperature` applies to all but GREEDY."""

    kind: SamplerKind = SamplerKind.GREEDY
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 0.9

    def __post_init__(self) -> None:
        if not isinstance(self.kind, SamplerKind):
            raise ValueError(f"kind must be a SamplerKind, got {self.kind!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive (GREEDY is the argmax), got {self.temperature}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def __call__(self, logits: Array, rng: Array) -> Array:
        """logits [B, V] -> token ids [B]."""
        if self.kind is SamplerKind.GREEDY:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        logits = logits.astype(jnp.float32) / self.temperature
        if self.kind is SamplerKind.TOP_K:
            top_logits, top_ids = jax.lax.top_k(logits, min(self.top_k, logits.shape[-1]))  # [B, k] each
            choice = jax.random.categorical(rng, top_logits, axis=-1)  # [B] index into the top k
            return jnp.take_along_axis(top_ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)
        if self.kind is SamplerKind.TOP_P:
            order = jnp.argsort(logits, axis=-1, descending=True)  # [B, V]
            sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
            probs = jax.nn.softmax(sorted_logits, axis=-1)
            # Keep a token if the tokens ranked above it have not yet reached p; the first always stays.
            keep = jnp.cumsum(probs, axis=-1) - probs < self.top_p
            choice = jax.random.categorical(rng, jnp.where(keep, sorted_logits, -jnp.inf), axis=-1)
            return jnp.take_along_axis(order, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)
        return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class BeamSampler:
    """Beam search with `num_beams` beams per prompt; returns each prompt's most likely beam."""

    num_beams: int = 4

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be at least 1, got {self.num_beams}")


@flax.struct.dataclass
class SamplingState:
    """Everything one decoding step reads and writes."""

    cache: Cache
    tokens: Array  # [B, max_length] prompt then generated tokens, PAD_ID after each row's end
    lengths: Array  # [B] tokens in each row so far
    done: Array  # [B] row has emitted a stop token or reached max_length
    rng: Array


@flax.struct.dataclass
class BeamState:
    """Beam search state over B * W rows (prompt b's beams are rows b*W .. b*W + W - 1)."""

    cache: Cache
    tokens: Array  # [B*W, max_length]
    lengths: Array  # [B*W]
    done: Array  # [B*W]
    scores: Array  # [B*W] float32 sum of the log-probabilities of the generated tokens


@dataclasses.dataclass(frozen=True)
class Generation:
    """`tokens[b, :lengths[b]]` is prompt b followed by its continuation (a stop token included)."""

    tokens: np.ndarray  # [B, max_length]
    lengths: np.ndarray  # [B]
    prompt_lengths: np.ndarray  # [B]
    scores: np.ndarray | None = None  # [B] beam search: log-probability of each continuation

    def continuations(self) -> list[list[int]]:
        """The generated tokens of each row, without its prompt."""
        rows = zip(self.tokens, self.prompt_lengths, self.lengths, strict=True)
        return [row[start:stop].tolist() for row, start, stop in rows]


def generate(
    params: Params,
    config: GemmaConfig,
    prompts: Sequence[Sequence[int]],
    *,
    max_length: int,
    sampler: Sampler | BeamSampler | Callable[[Array, Array], Array] | None = None,
    rng: Array | None = None,
    stop_tokens: Sequence[int] = (EOS_ID, END_OF_TURN_ID),
    prompt_slots: int | None = None,
) -> Generation:
    """Continue each prompt (token ids, BOS included by the caller) until a stop token or until the
    row holds `max_length` tokens in all. The default sampler is greedy; the random ones need `rng`. A
    plain callable `(logits [B, V], rng) -> ids [B]` samples too (it gets `rng`, a fixed key when None).

    `prompt_slots` fixes the padded prompt width (at least the longest prompt) and so every array's
    shape: a caller generating batch after batch (REINFORCE) then compiles once, whatever its prompts.
    """
    sampler = sampler or Sampler()
    if not prompts or min(len(p) for p in prompts) == 0:
        raise ValueError("need at least one prompt, and no empty prompt")
    longest, shortest = max(len(p) for p in prompts), min(len(p) for p in prompts)
    if prompt_slots is not None:
        if prompt_slots < longest:
            raise ValueError(f"prompt_slots {prompt_slots} is shorter than a {longest}-token prompt")
        longest, shortest = prompt_slots, 1
    if longest >= max_length:
        raise ValueError(f"max_length {max_length} leaves no room after a {longest}-token prompt")
    if max_length > config.max_seq_len:
        raise ValueError(f"max_length {max_length} exceeds the model's max_seq_len {config.max_seq_len}")
    if rng is None:
        if isinstance(sampler, Sampler) and sampler.kind is not SamplerKind.GREEDY:
            raise ValueError(f"the {sampler.kind.value} sampler needs an rng")
        rng = jax.random.key(0)  # unused by argmax
    prompt_lengths = np.array([len(p) for p in prompts], np.int32)
    padded = np.full((len(prompts), longest), PAD_ID, np.int32)
    for row, prompt in enumerate(prompts):
        padded[row, longest - len(prompt):] = prompt  # left padding: every prompt ends at slot P - 1
    # The longest continuation is the shortest prompt's; every step after the prefill takes one slot.
    cache_size = longest + max_length - shortest
    if isinstance(sampler, BeamSampler):
        tokens, lengths, scores = _beam_search(params, jnp.asarray(padded), jnp.asarray(prompt_lengths), config=config,
                                               max_length=max_length, cache_size=cache_size,
                                               num_beams=sampler.num_beams, stop_tokens=tuple(stop_tokens))
        return Generation(tokens=np.asarray(tokens), lengths=np.asarray(lengths), prompt_lengths=prompt_lengths,
                          scores=np.asarray(scores))
    tokens, lengths = _generate(params, jnp.asarray(padded), jnp.asarray(prompt_lengths), rng, config=config,
                                max_length=max_length, cache_size=cache_size, sampler=sampler,
                                stop_tokens=tuple(stop_tokens))
    return Generation(tokens=np.asarray(tokens), lengths=np.asarray(lengths), prompt_lengths=prompt_lengths)


def _prompt_layout(padded: Array, prompt_lengths: Array, max_length: int) -> tuple[Array, Array, Array]:
    """Left-padded prompts [B, P] -> their positions and segment ids [B, P] for the prefill, and the
    output buffer [B, max_length]: each prompt moved to the left edge, PAD_ID after it."""
    prompt_slots = padded.shape[1]
    padding = prompt_slots - prompt_lengths  # [B]
    segments = (jnp.arange(prompt_slots)[None, :] >= padding[:, None]).astype(jnp.int32)  # [B, P]
    positions = jnp.maximum(jnp.arange(prompt_slots)[None, :] - padding[:, None], 0)  # [B, P]
    source = jnp.clip(jnp.arange(max_length)[None, :] + padding[:, None], 0, prompt_slots - 1)  # [B, max_length]
    tokens = jnp.where(jnp.arange(max_length)[None, :] < prompt_lengths[:, None],
                       jnp.take_along_axis(padded, source, axis=1), PAD_ID)
    return positions, segments, tokens


@functools.partial(jax.jit, static_argnames=("config", "max_length", "cache_size", "sampler", "stop_tokens"))
def _generate(
    params: Params,
    padded: Array,
    prompt_lengths: Array,
    rng: Array,
    *,
    config: GemmaConfig,
    max_length: int,
    cache_size: int,
    sampler: Sampler,
    stop_tokens: tuple[int, ...],
) -> tuple[Array, Array]:
    model = Gemma(config)
    batch = padded.shape[0]
    rows = jnp.arange(batch)
    positions, segments, tokens = _prompt_layout(padded, prompt_lengths, max_length)

    def append(state: SamplingState, logits: Array, cache: Cache) -> SamplingState:
        """Sample from logits [B, V], write the token after each unfinished row, update done."""
        rng, step_rng = jax.random.split(state.rng)
        token = jnp.where(state.done, PAD_ID, sampler(logits, step_rng))  # [B]
        tokens = state.tokens.at[rows, state.lengths].set(token, mode="drop")
        lengths = state.lengths + (~state.done).astype(jnp.int32)
        done = state.done | jnp.isin(token, jnp.asarray(stop_tokens)) | (lengths >= max_length)
        return SamplingState(cache=cache, tokens=tokens, lengths=lengths, done=done, rng=rng)

    def step(state: SamplingState) -> SamplingState:
        last = state.tokens[rows, state.lengths - 1][:, None]  # [B, 1] the token to feed
        logits, cache = model.apply({"params": params}, last, (state.lengths - 1)[:, None],
                                    jnp.ones_like(last), state.cache, method=Gemma.call_with_cache)
        return append(state, logits[:, -1], cache)

    cache = init_cache(config, batch, cache_size)
    logits, cache = model.apply({"params": params}, padded, positions, segments, cache, method=Gemma.call_with_cache)
    state = SamplingState(cache=cache, tokens=tokens, lengths=prompt_lengths,
                          done=jnp.zeros(batch, bool), rng=rng)
    state = append(state, logits[:, -1], cache)  # the first new token comes from the prefill
    state = jax.lax.while_loop(lambda s: ~jnp.all(s.done), step, state)
    return state.tokens, state.lengths


@functools.partial(jax.jit, static_argnames=("config", "max_length", "cache_size", "num_beams", "stop_tokens"))
def _beam_search(
    params: Params,
    padded: Array,
    prompt_lengths: Array,
    *,
    config: GemmaConfig,
    max_length: int,
    cache_size: int,
    num_beams: int,
    stop_tokens: tuple[int, ...],
) -> tuple[Array, Array, Array]:
    model = Gemma(config)
    batch = padded.shape[0]
    width = num_beams
    rows = jnp.arange(batch * width)
    positions, segments, tokens = _prompt_layout(padded, prompt_lengths, max_length)

    def beams(x: Array) -> Array:
        return jnp.repeat(x, width, axis=0)  # [B, ...] -> [B*W, ...], prompt b's beams adjacent

    def gather(cache: Cache, source: Array) -> Cache:
        layers = tuple(LayerCache(key=layer.key[source], value=layer.value[source]) for layer in cache.layers)
        return Cache(layers=layers, segment_ids=cache.segment_ids[source], end_index=cache.end_index)

    def extend(state: BeamState, logits: Array, cache: Cache) -> BeamState:
        """Score every (beam, token) continuation of logits [B*W, V], keep the best W per prompt."""
        vocab = logits.shape[-1]
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [B*W, V]
        # A finished beam's only continuation is padding, at no cost: its score competes unchanged.
        finished = jnp.where(jnp.arange(vocab) == PAD_ID, 0.0, -jnp.inf)  # [V]
        log_probs = jnp.where(state.done[:, None], finished[None, :], log_probs)
        candidates = (state.scores[:, None] + log_probs).reshape(batch, width * vocab)  # [B, W*V]
        scores, best = jax.lax.top_k(candidates, width)  # [B, W] each
        source = (jnp.arange(batch)[:, None] * width + best // vocab).reshape(-1)  # [B*W] parent rows
        token = (best % vocab).reshape(-1).astype(jnp.int32)  # [B*W]
        was_done, lengths = state.done[source], state.lengths[source]
        tokens = state.tokens[source].at[rows, lengths].set(jnp.where(was_done, PAD_ID, token), mode="drop")
        lengths = lengths + (~was_done).astype(jnp.int32)
        done = was_done | jnp.isin(token, jnp.asarray(stop_tokens)) | (lengths >= max_length)
        return BeamState(cache=gather(cache, source), tokens=tokens, lengths=lengths, done=done,
                         scores=scores.reshape(-1))

    def step(state: BeamState) -> BeamState:
        last = state.tokens[rows, state.lengths - 1][:, None]  # [B*W, 1]
        logits, cache = model.apply({"params": params}, last, (state.lengths - 1)[:, None],
                                    jnp.ones_like(last), state.cache, method=Gemma.call_with_cache)
        return extend(state, logits[:, -1], cache)

    cache = init_cache(config, batch, cache_size)
    logits, cache = model.apply({"params": params}, padded, positions, segments, cache, method=Gemma.call_with_cache)
    cache = Cache(layers=tuple(LayerCache(key=beams(layer.key), value=beams(layer.value)) for layer in cache.layers),
                  segment_ids=beams(cache.segment_ids), end_index=cache.end_index)
    # Only beam 0 of each prompt is live at first, so the first step picks W different tokens.
    scores = jnp.tile(jnp.where(jnp.arange(width) == 0, 0.0, -jnp.inf), batch)  # [B*W]
    state = BeamState(cache=cache, tokens=beams(tokens), lengths=beams(prompt_lengths),
                      done=jnp.zeros(batch * width, bool), scores=scores)
    state = extend(state, beams(logits[:, -1]), cache)
    state = jax.lax.while_loop(lambda s: ~jnp.all(s.done), step, state)
    best = jnp.arange(batch) * width + jnp.argmax(state.scores.reshape(batch, width), axis=-1)  # [B]
    return state.tokens[best], state.lengths[best], state.scores[best]
