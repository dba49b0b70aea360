"""The trainer: packed shards in, checkpoints, metrics and a final model out (`gemmaflow train`).

One step: read the step's batch (a pure function of seed and step, model/shards.py), split it into
`grad_accum_steps` micro-batches, sum each micro-batch's token-summed loss and gradient under a
`lax.scan`, divide by the batch's target tokens (so accumulation gives the same loss as one big
batch), clip, AdamW. Everything after reading runs inside one jitted function.

Sharding: a `jax.sharding.Mesh` with axes `data` and `fsdp`. Batches are split over both (every
device sees different rows); each parameter (and its AdamW moments) is split over `fsdp` along its
largest divisible axis, so a model's memory divides by the FSDP width while XLA gathers weights
for the matmuls. With several hosts, call `jax.distributed.initialize()` first; each host then
reads only its rows of each batch.

Exactness: a step's inputs are the restored params, optimiser state and the step number, so a run
killed after checkpoint k and resumed computes bit-for-bit the steps an uninterrupted run would
(on the same devices and software). A non-finite loss or gradient norm leaves the state as it was
(selected inside the step), saves it as a checkpoint and stops the run with `TrainingDiverged`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np
import optax
from gemmaflow.model import lora as lora_lib
from gemmaflow.model.api import TOKENIZER_FILE, fresh_params, load_weights
from gemmaflow.model.checkpoint import CheckpointStore, TrainState, config_to_dict, save_model
from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.gemma import Gemma, Params, init_params, train_flops_per_token
from gemmaflow.model.loss import chunked_cross_entropy
from gemmaflow.model.optim import learning_rate_schedule, make_optimizer
from gemmaflow.model.shards import Manifest, ShardDataset, ShardFormatError, ShardReader, file_sha256
from gemmaflow.model.train_config import TrainConfig
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gemmaflow.core.configio import ConfigError, fingerprint, to_dict

log = logging.getLogger(__name__)

Array = jax.Array
Batch = dict[str, Array]  # inputs, positions, segment_ids, targets, mask: [A, b, T] each


class TrainingDiverged(RuntimeError):
    """The loss or gradient norm of `step` was NaN or infinite; `checkpoint_step` holds the last good state."""

    def __init__(self, step: int, checkpoint_step: int) -> None:
        super().__init__(f"non-finite loss or gradient at step {step}; stopped, last good state saved as "
                         f"checkpoint {checkpoint_step}")
        self.step, self.checkpoint_step = step, checkpoint_step


class ResumeError(RuntimeError):
    """The output folder's run cannot be resumed (or would be overwritten) with this config."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    step: int
    loss: float
    eval_loss: float | None
    out_dir: Path


# --- Sharding ----------------------------------------------------------------------------------


def make_mesh(data: int, fsdp: int) -> Mesh:
    """A (data, fsdp) mesh over the first data * fsdp devices; data -1 uses every device."""
    devices = jax.devices()
    if data == -1:
        data = len(devices) // fsdp
    if data < 1 or fsdp < 1 or data * fsdp > len(devices):
        raise ConfigError(f"mesh data={data} x fsdp={fsdp} does not fit the {len(devices)} devices here")
    return Mesh(np.asarray(devices[:data * fsdp]).reshape(data, fsdp), ("data", "fsdp"))


def fsdp_sharding(shape: tuple[int, ...], mesh: Mesh) -> NamedSharding:
    """Split the largest axis divisible by the FSDP width over `fsdp`; replicate what does not divide.

    A function of the shape alone, so AdamW's moments land exactly where their parameters are.
    """
    width = mesh.shape["fsdp"]
    spec: list[str | None] = [None] * len(shape)
    candidates = [axis for axis in range(len(shape)) if width > 1 and shape[axis] % width == 0]
    if candidates:
        spec[max(candidates, key=lambda axis: shape[axis])] = "fsdp"
    return NamedSharding(mesh, PartitionSpec(*spec))


def tree_shardings(tree: Any, mesh: Mesh) -> Any:
    return jax.tree.map(lambda leaf: fsdp_sharding(tuple(leaf.shape), mesh), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """[A, b, T] batches: micro-batch rows over every device."""
    return NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp"), None))


# --- The step ----------------------------------------------------------------------------------


def _summed_loss(params: Params, batch: Batch, model_config: GemmaConfig, config: TrainConfig) -> tuple[Array, Any]:
    """Token-summed loss of one micro-batch [b, T] (and its cross-entropy, z-loss and token sums)."""
    hidden = Gemma(model_config).apply({"params": params}, batch["inputs"], batch["positions"],
                                       batch["segment_ids"], method=Gemma.hidden_states)
    loss = chunked_cross_entropy(hidden, params["embedder"]["embedding"], batch["targets"], batch["mask"],
                                 chunk_size=config.loss_chunk_size, z_loss_weight=config.z_loss_weight)
    tokens = loss.num_tokens
    return loss.total * tokens, jnp.stack([loss.cross_entropy * tokens, loss.z_loss * tokens, tokens])


def make_train_step(model_config: GemmaConfig, config: TrainConfig,
                    optimizer: optax.GradientTransformation) -> Callable:
    """step(trainable, frozen, opt_state, batch) -> (trainable updated, opt_state, metrics).

    `trainable` is the model's parameters, or with LoRA the adapters over the `frozen` base (else None).
    """

    def step(trainable: Params, frozen: Params | None, opt_state: Any, batch: Batch) -> tuple[Params, Any, dict]:
        def micro(trainable: Params, micro_batch: Batch) -> tuple[Array, Array]:
            full = trainable if frozen is None else lora_lib.merge(frozen, trainable, config.lora)
            return _summed_loss(full, micro_batch, model_config, config)

        grad_fn = jax.value_and_grad(micro, has_aux=True)

        def accumulate(carry: tuple[Params, Array], micro_batch: Batch) -> tuple[tuple[Params, Array], None]:
            grads, sums = carry
            (total, parts), micro_grads = grad_fn(trainable, micro_batch)
            return (jax.tree.map(jnp.add, grads, micro_grads), sums + jnp.concatenate([total[None], parts])), None

        zeros = (jax.tree.map(jnp.zeros_like, trainable), jnp.zeros(4, jnp.float32))
        (grads, sums), _ = jax.lax.scan(accumulate, zeros, batch)
        tokens = jnp.maximum(sums[3], 1.0)
        grads = jax.tree.map(lambda g: g / tokens, grads)
        loss = sums[0] / tokens
        grad_norm = optax.global_norm(grads)
        updates, new_opt_state = optimizer.update(grads, opt_state, trainable)
        new_trainable = optax.apply_updates(trainable, updates)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        # On a non-finite step keep the old state, so the caller can save it as the last good one.
        new_trainable, new_opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                                    (new_trainable, new_opt_state), (trainable, opt_state))
        metrics = {"loss": loss, "cross_entropy": sums[1] / tokens, "z_loss": sums[2] / tokens,
                   "loss_tokens": sums[3], "grad_norm": grad_norm, "finite": finite}
        return new_trainable, new_opt_state, metrics

    return step


def make_eval_step(model_config: GemmaConfig, config: TrainConfig) -> Callable:
    """eval(params, lora, batch) -> [cross-entropy sum, target tokens] over an [A, b, T] batch."""

    def evaluate(params: Params, lora: Params | None, batch: Batch) -> Array:
        full = params if lora is None else lora_lib.merge(params, lora, config.lora)

        def micro(sums: Array, micro_batch: Batch) -> tuple[Array, None]:
            _, parts = _summed_loss(full, micro_batch, model_config, config)
            return sums + parts[jnp.array([0, 2])], None

        return jax.lax.scan(micro, jnp.zeros(2, jnp.float32), batch)[0]

    return evaluate


# --- Setup -------------------------------------------------------------------------------------


def _model_and_weights(config: TrainConfig, manifest: Manifest) -> tuple[GemmaConfig, Params | None]:
    """The model config and, when fine-tuning (`init_from`), the loaded float32 weights."""
    if not config.model.init_from:
        return config.model.build(manifest.vocab_size, manifest.seq_len), None
    loaded_config, params, _ = load_weights(config.model.init_from)
    model_config = dataclasses.replace(loaded_config, param_dtype=DType.FLOAT32,
                                       dtype=DType(config.model.compute_dtype),
                                       max_seq_len=max(loaded_config.max_seq_len, manifest.seq_len))
    return model_config, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)


def _check_tokenizer(config: TrainConfig, manifest: Manifest) -> Path | None:
    if not config.tokenizer:
        return None
    path = Path(config.tokenizer)
    if not path.is_file():
        raise ShardFormatError(f"tokenizer {path} not found")
    if manifest.tokenizer_sha256 and file_sha256(path) != manifest.tokenizer_sha256:
        raise ShardFormatError(f"tokenizer {path} is not the one the shards were made with (SHA-256 differs)")
    return path


class _Output:
    """metrics.jsonl and stdout: a progress bar on a terminal, plain lines every `log_every` steps otherwise."""

    def __init__(self, out_dir: Path, total: int, start: int, log_every: int, stream: TextIO) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.log_every, self.stream = log_every, stream
        self.primary = jax.process_index() == 0
        self.bar = None
        if self.primary and stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, file=stream, dynamic_ncols=True, unit="step")
        if self.primary and self.path.exists():  # resuming: forget what the killed run logged past the checkpoint
            kept = [line for line in self.path.read_text().splitlines() if json.loads(line).get("step", 0) <= start]
            self.path.write_text("".join(line + "\n" for line in kept))

    def record(self, entry: dict[str, Any]) -> None:
        if not self.primary:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        if "loss" not in entry:
            return
        if self.bar is not None:
            self.bar.update(entry["step"] - self.bar.n)
            self.bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}",
                                 gnorm=f"{entry['grad_norm']:.2f}", tok_s=f"{entry['tokens_per_s']:.0f}",
                                 mfu=f"{100 * entry['mfu']:.1f}%")
        elif entry["step"] % self.log_every == 0:
            self.say(f"step {entry['step']} loss {entry['loss']:.4f} lr {entry['lr']:.3e} grad_norm "
                     f"{entry['grad_norm']:.3f} tokens/s {entry['tokens_per_s']:.0f} mfu {100 * entry['mfu']:.2f}%")

    def say(self, line: str) -> None:
        if not self.primary:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _put_batch(arrays: dict[str, np.ndarray], micro_batches: int, sharding: NamedSharding) -> Batch:
    """Host rows [A*b_local, T] -> global [A, b, T] arrays laid out over the mesh."""
    return {name: jax.make_array_from_process_local_data(
        sharding, np.ascontiguousarray(value.reshape(micro_batches, -1, value.shape[-1])))
        for name, value in arrays.items()}


# --- The loop ----------------------------------------------------------------------------------


def train(shards: str | Path, config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          stream: TextIO | None = None) -> TrainResult:
    """Train on the shard folder `shards` into `out_dir` (checkpoints/, metrics.jsonl, final/)."""
    stream = stream or sys.stdout
    out_dir = Path(out_dir)
    manifest = Manifest.load(shards)
    if config.kind != "any" and manifest.kind != config.kind:
        raise ShardFormatError(f"{shards}: {manifest.kind} shards, the config expects {config.kind}")
    tokenizer = _check_tokenizer(config, manifest)
    model_config, loaded = _model_and_weights(config, manifest)
    train_data = ShardDataset(ShardReader(shards, "train", vocab_size=model_config.vocab_size),
                              config.batch_size, config.seed)
    has_validation = bool(manifest.splits.get("validation"))
    eval_data = ShardDataset(ShardReader(shards, "validation", vocab_size=model_config.vocab_size),
                             config.batch_size, config.seed, shuffle=False) if has_validation else None

    store = CheckpointStore(out_dir / "checkpoints", keep=config.keep_checkpoints, verify=config.verify_checkpoints)
    config_file = out_dir / "train_config.json"
    run_record = {"config": to_dict(config), "fingerprint": fingerprint(config), "shards": str(Path(shards).absolute()),
                  "model_config": config_to_dict(model_config)}
    if resume:
        if config_file.exists() and json.loads(config_file.read_text())["fingerprint"] != run_record["fingerprint"]:
            raise ResumeError(f"{out_dir} was trained with a different config; resuming would not be exact")
    elif store.steps():
        raise ResumeError(f"{out_dir} already holds checkpoints {store.steps()}: pass --resume, or another --out")

    mesh = make_mesh(config.mesh.data, config.mesh.fsdp)
    rows_per_micro_batch = config.micro_batch_size
    if rows_per_micro_batch % mesh.size or rows_per_micro_batch % jax.process_count():
        raise ConfigError(f"a micro-batch of {rows_per_micro_batch} rows (batch_size / grad_accum_steps) does not "
                          f"split over {mesh.size} devices and {jax.process_count()} processes")

    # --- State: fresh, loaded or restored, laid out over the mesh.
    param_rng, lora_rng, rng = jax.random.split(jax.random.key(config.seed), 3)
    abstract_params = jax.eval_shape(functools.partial(init_params, model_config), param_rng)
    param_shardings = tree_shardings(abstract_params, mesh)
    if loaded is None:
        params = fresh_params(model_config, param_rng, param_shardings)
    else:
        params = jax.device_put(loaded, param_shardings)
    adapters = None
    if config.lora.enabled:
        adapters = lora_lib.init_lora(params, config.lora, lora_rng)
        adapters = jax.device_put(adapters, tree_shardings(adapters, mesh))
    trainable = params if adapters is None else adapters
    optimizer = make_optimizer(config.optimizer, config.steps)
    opt_shardings = tree_shardings(jax.eval_shape(optimizer.init, trainable), mesh)
    opt_state = jax.jit(optimizer.init, out_shardings=opt_shardings)(trainable)
    state = TrainState(step=0, params=params, opt_state=opt_state, rng=rng, lora=adapters)

    if resume and (restored := store.restore_latest(state)) is not None:
        state = restored
    out_dir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        config_file.write_text(json.dumps(run_record, indent=2) + "\n")
        if tokenizer is not None:
            shutil.copyfile(tokenizer, out_dir / TOKENIZER_FILE)

    output = _Output(out_dir, config.steps, state.step, config.log_every, stream)
    if state.step:
        output.say(f"resumed from checkpoint {state.step}")
    if adapters is not None:
        output.say(f"LoRA: {lora_lib.count(adapters):,} trainable parameters on {', '.join(config.lora.targets)}")
    meta = {"model_config": config_to_dict(model_config), "lora": to_dict(config.lora),
            "config_fingerprint": run_record["fingerprint"]}

    batch_shard = batch_sharding(mesh)
    lora_run = adapters is not None
    trainable_shardings = tree_shardings(state.lora if lora_run else state.params, mesh)
    frozen_shardings = param_shardings if lora_run else None
    step_fn = jax.jit(make_train_step(model_config, config, optimizer),
                      in_shardings=(trainable_shardings, frozen_shardings, opt_shardings, batch_shard),
                      out_shardings=(trainable_shardings, opt_shardings, None), donate_argnums=(0, 2))
    eval_fn = jax.jit(make_eval_step(model_config, config))
    schedule = learning_rate_schedule(config.optimizer, config.steps)
    flops_per_token = train_flops_per_token(model_config, manifest.seq_len)
    tokens_per_step = config.batch_size * manifest.seq_len
    saved_step = state.step if state.step in store.steps() else None

    def save() -> None:
        nonlocal saved_step
        if saved_step != state.step:
            store.save(state, meta)
            saved_step = state.step
            output.say(f"saved checkpoint {state.step}")

    def evaluate() -> float | None:
        if eval_data is None:
            return None
        batches = min(config.eval_batches, math.ceil(len(eval_data.reader) / config.batch_size))
        sums = np.zeros(2)
        for index in range(batches):
            arrays = eval_data.batch_at(index, config.grad_accum_steps, jax.process_index(), jax.process_count())
            sums += np.asarray(eval_fn(state.params, state.lora, _put_batch(arrays, config.grad_accum_steps,
                                                                           batch_shard)))
        eval_loss = float(sums[0] / max(sums[1], 1.0))
        output.record({"step": state.step, "eval_loss": eval_loss, "eval_tokens": int(sums[1])})
        output.say(f"eval at step {state.step}: loss {eval_loss:.4f}")
        return eval_loss

    loss, eval_loss = float("nan"), None
    try:
        while state.step < config.steps:
            started = time.perf_counter()
            arrays = train_data.batch_at(state.step, config.grad_accum_steps, jax.process_index(), jax.process_count())
            batch = _put_batch(arrays, config.grad_accum_steps, batch_shard)
            lr = float(schedule(state.step))
            if lora_run:
                trained, opt_state, metrics = step_fn(state.lora, state.params, state.opt_state, batch)
                state = dataclasses.replace(state, lora=trained, opt_state=opt_state)
            else:
                trained, opt_state, metrics = step_fn(state.params, None, state.opt_state, batch)
                state = dataclasses.replace(state, params=trained, opt_state=opt_state)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not metrics["finite"]:
                save()  # the step kept the previous state: that is the last good one
                raise TrainingDiverged(state.step + 1, state.step)
            state = dataclasses.replace(state, step=state.step + 1)
            elapsed = time.perf_counter() - started
            loss = metrics["loss"]
            tokens_per_s = tokens_per_step / elapsed
            output.record({"step": state.step, "loss": loss, "cross_entropy": metrics["cross_entropy"],
                           "z_loss": metrics["z_loss"], "grad_norm": metrics["grad_norm"], "lr": lr,
                           "loss_tokens": int(metrics["loss_tokens"]), "tokens_per_s": tokens_per_s,
                           "mfu": tokens_per_s * flops_per_token / (config.peak_tflops * 1e12),
                           "step_seconds": elapsed})
            if state.step % config.checkpoint_every == 0 or state.step == config.steps:
                save()
            if config.eval_every and state.step % config.eval_every == 0 and state.step != config.steps:
                evaluate()
        eval_loss = evaluate()
        final = state.params if state.lora is None else lora_lib.merge(state.params, state.lora, config.lora)
        save_model(out_dir / "final", model_config, final)
        if jax.process_index() == 0 and tokenizer is not None:
            shutil.copyfile(tokenizer, out_dir / "final" / TOKENIZER_FILE)
        output.say(f"done: step {state.step}, loss {loss:.4f}, model in {out_dir / 'final'}")
    finally:
        output.close()
    return TrainResult(step=state.step, loss=loss, eval_loss=eval_loss, out_dir=out_dir)
