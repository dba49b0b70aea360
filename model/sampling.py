"""Autoregressive generation with a KV cache: greedy, temperature, top-k, top-p sampling, beam search and
contrastive search.

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

Contrastive search (`ContrastiveSampler`, Su et al., 2022) keeps `top_k` rows per prompt in the
cache too, one per candidate: each step feeds the `top_k` most likely next tokens of every prompt
in one call, scores each by (1 - alpha) * its probability - alpha * the highest cosine similarity
between its final-normed hidden state and those of the prompt's earlier tokens (padding slots
excluded), keeps the best and gathers its cache row. The candidate's hidden state is only known once
it has been fed, so a step feeds this step's token, not the last one, and its logits serve the next
step. The hidden states of the earlier tokens are kept, at unit length, in a buffer aligned with the
cache slots. alpha 0 is greedy decoding.
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


@dataclasses.dataclass(frozen=True)
class ContrastiveSampler:
    """Contrastive search: of the `top_k` most likely next tokens, the one with the highest
    (1 - alpha) * probability - alpha * max cosine similarity to an earlier token's hidden state.

    The penalty favours tokens whose representation says something the context has not said yet,
    which keeps greedy-like decoding from looping; alpha 0 is greedy, alpha 1 ignores probability
    beyond the top_k cut.
    """

    top_k: int = 4
    alpha: float = 0.6

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


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


@flax.struct.dataclass
class ContrastiveState:
    """Contrastive search state over B prompts, the cache over B * k rows (prompt b's candidates are
    rows b*k .. b*k + k - 1, identical between steps)."""

    cache: Cache
    past: Array  # [B, S, D] unit-length hidden state of the token in each cache slot
    logits: Array  # [B, V] float32 logits of each prompt's next token
    tokens: Array  # [B, max_length]
    lengths: Array  # [B]
    done: Array  # [B]


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
    sampler: Sampler | BeamSampler | ContrastiveSampler | Callable[[Array, Array], Array] | None = None,
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
    if isinstance(sampler, ContrastiveSampler):
        tokens, lengths = _contrastive_search(params, jnp.asarray(padded), jnp.asarray(prompt_lengths),
                                              jnp.float32(sampler.alpha), config=config, max_length=max_length,
                                              cache_size=cache_size, top_k=sampler.top_k,
                                              stop_tokens=tuple(stop_tokens))
        return Generation(tokens=np.asarray(tokens), lengths=np.asarray(lengths), prompt_lengths=prompt_lengths)
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


def _advance(tokens: Array, lengths: Array, done: Array, token: Array, *, max_length: int,
             stop_tokens: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """Write `token` [R] after each unfinished row of `tokens` [R, max_length]; a finished row only
    gets padding. Returns the new tokens, lengths and done: a row is done once it emits a stop token
    or holds `max_length` tokens."""
    token = jnp.where(done, PAD_ID, token)
    tokens = tokens.at[jnp.arange(tokens.shape[0]), lengths].set(token, mode="drop")
    lengths = lengths + (~done).astype(jnp.int32)
    done = done | jnp.isin(token, jnp.asarray(stop_tokens)) | (lengths >= max_length)
    return tokens, lengths, done


def _gather_rows(cache: Cache, source: Array) -> Cache:
    """The cache whose row i is row `source[i]` of `cache`: copies a prompt's rows for its beams or
    candidates, and moves the rows that survive a step into place."""
    layers = tuple(LayerCache(key=layer.key[source], value=layer.value[source]) for layer in cache.layers)
    return Cache(layers=layers, segment_ids=cache.segment_ids[source], end_index=cache.end_index)


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
        tokens, lengths, done = _advance(state.tokens, state.lengths, state.done, sampler(logits, step_rng),
                                         max_length=max_length, stop_tokens=stop_tokens)
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
        tokens, lengths, done = _advance(state.tokens[source], state.lengths[source], state.done[source], token,
                                         max_length=max_length, stop_tokens=stop_tokens)
        return BeamState(cache=_gather_rows(cache, source), tokens=tokens, lengths=lengths, done=done,
                         scores=scores.reshape(-1))

    def step(state: BeamState) -> BeamState:
        last = state.tokens[rows, state.lengths - 1][:, None]  # [B*W, 1]
        logits, cache = model.apply({"params": params}, last, (state.lengths - 1)[:, None],
                                    jnp.ones_like(last), state.cache, method=Gemma.call_with_cache)
        return extend(state, logits[:, -1], cache)

    cache = init_cache(config, batch, cache_size)
    logits, cache = model.apply({"params": params}, padded, positions, segments, cache, method=Gemma.call_with_cache)
    cache = _gather_rows(cache, beams(jnp.arange(batch)))
    # Only beam 0 of each prompt is live at first, so the first step picks W different tokens.
    scores = jnp.tile(jnp.where(jnp.arange(width) == 0, 0.0, -jnp.inf), batch)  # [B*W]
    state = BeamState(cache=cache, tokens=beams(tokens), lengths=beams(prompt_lengths),
                      done=jnp.zeros(batch * width, bool), scores=scores)
    state = extend(state, beams(logits[:, -1]), cache)
    state = jax.lax.while_loop(lambda s: ~jnp.all(s.done), step, state)
    best = jnp.arange(batch) * width + jnp.argmax(state.scores.reshape(batch, width), axis=-1)  # [B]
    return state.tokens[best], state.lengths[best], state.scores[best]


def _unit(x: Array) -> Array:
    """x [..., D] scaled to unit length along D (in float32), so a dot product is a cosine similarity."""
    x = x.astype(jnp.float32)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


@functools.partial(jax.jit, static_argnames=("config", "max_length", "cache_size", "top_k", "stop_tokens"))
def _contrastive_search(
    params: Params,
    padded: Array,
    prompt_lengths: Array,
    alpha: Array,
    *,
    config: GemmaConfig,
    max_length: int,
    cache_size: int,
    top_k: int,
    stop_tokens: tuple[int, ...],
) -> tuple[Array, Array]:
    """`alpha` is traced (one compile serves every alpha); `top_k` shapes the arrays, so it is static."""
    model = Gemma(config)
    batch = padded.shape[0]
    width = min(top_k, config.vocab_size)
    rows = jnp.arange(batch)
    copies = jnp.repeat(rows, width)  # [B*k] the prompt of each candidate row
    positions, segments, tokens = _prompt_layout(padded, prompt_lengths, max_length)

    def step(state: ContrastiveState) -> ContrastiveState:
        """Feed every prompt's k most likely next tokens, keep the best scoring and its cache row."""
        top_logits, candidates = jax.lax.top_k(state.logits, width)  # [B, k] each, most likely first
        top_probs = jnp.exp(top_logits - jax.nn.logsumexp(state.logits, axis=-1, keepdims=True))
        feed = candidates.reshape(-1, 1).astype(jnp.int32)  # [B*k, 1]
        # A candidate sits at its row's next position, one slot after the earlier tokens.
        logits, hidden, cache = model.apply({"params": params}, feed, state.lengths[copies][:, None],
                                            jnp.ones_like(feed), state.cache, method=Gemma.call_with_cache_hidden)
        hidden = _unit(hidden[:, 0]).astype(state.past.dtype).reshape(batch, width, -1)  # [B, k, D]
        similarity = jnp.einsum("bkd,bsd->bks", hidden, state.past, preferred_element_type=jnp.float32)
        earlier = state.cache.segment_ids[::width] != 0  # [B, S] slots holding a real token of the prompt's row
        penalty = jnp.max(jnp.where(earlier[:, None, :], similarity, -jnp.inf), axis=-1)  # [B, k]
        choice = jnp.argmax((1 - alpha) * top_probs - alpha * penalty, axis=-1)  # [B]
        chosen = rows * width + choice  # [B] the chosen candidate's cache row
        tokens, lengths, done = _advance(state.tokens, state.lengths, state.done, candidates[rows, choice],
                                         max_length=max_length, stop_tokens=stop_tokens)
        past = jax.lax.dynamic_update_slice(state.past, hidden[rows, choice][:, None], (0, state.cache.end_index, 0))
        return ContrastiveState(cache=_gather_rows(cache, chosen[copies]), past=past, logits=logits[chosen, 0],
                                tokens=tokens, lengths=lengths, done=done)

    cache = init_cache(config, batch, cache_size)
    logits, hidden, cache = model.apply({"params": params}, padded, positions, segments, cache,
                                        method=Gemma.call_with_cache_hidden)
    past = jnp.zeros((batch, cache_size, config.d_model), config.dtype.jnp)
    past = jax.lax.dynamic_update_slice(past, _unit(hidden).astype(past.dtype), (0, 0, 0))  # the prompt's slots
    state = ContrastiveState(cache=_gather_rows(cache, copies), past=past, logits=logits[:, -1], tokens=tokens,
                             lengths=prompt_lengths, done=jnp.zeros(batch, bool))
    state = jax.lax.while_loop(lambda s: ~jnp.all(s.done), step, state)
    return state.tokens, state.lengths
