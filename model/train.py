"""The trainer: packed shards in, checkpoints, metrics and a final model out (`gemmaflow train`).

One step: read the step's batch (a pure function of seed and step, model/shards.py), split it into
`grad_accum_steps` micro-batches, sum each micro-batch's token-summed loss and gradient under a
`lax.scan`, divide by the batch's target tokens (so accumulation gives the same loss as one big
batch), clip, AdamW. Everything after reading runs inside one jitted function.

Sharding: a `jax.sharding.Mesh` with axes `data` and `fsdp`. Batches are split over both (every
device sees different rows); each parameter (and its AdamW moments) is split over `fsdp` along its
largest divisible axis, so a model's memory divides by the FSDP width while XLA gathers weights
for the matmuls. With several processes (`gemmaflow train --distributed` calls
`jax.distributed.initialize()` first) each reads only its rows of each batch, every process writes
its part of each checkpoint and process 0 alone writes the files beside them.

Exactness: a step's inputs are the restored params, optimiser state and the step number, so a run
killed after checkpoint k and resumed computes bit-for-bit the steps an uninterrupted run would
(on the same devices and software). A non-finite loss or gradient norm leaves the state as it was
(selected inside the step), saves it as a checkpoint and stops the run with `TrainingDiverged`.

Each step's metrics record MFU (PaLM appendix B) against the peak of the devices in use, and which
peak that was (`model/device_peak.py`): a vendor table, a CPU probe or the config's `peak_tflops`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gemmaflow.core.configio import ConfigError, fingerprint, to_dict
from gemmaflow.model import lora as lora_lib
from gemmaflow.model.checkpoint import CheckpointStore, TrainState, config_to_dict, save_model
from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.device_peak import Peak, job_peak
from gemmaflow.model.gemma import Params, init_params, train_flops_per_token
from gemmaflow.model.objectives import REWARD_HEAD, Objective, init_reward_head, make_objective
from gemmaflow.model.optim import learning_rate_schedule, make_optimizer
from gemmaflow.model.pairs import PairDataset, PairReader
from gemmaflow.model.quant import quantize_params, stored_bytes
from gemmaflow.model.rollout import RewardScorer, rollout
from gemmaflow.model.shards import Manifest, ShardDataset, ShardFormatError, ShardReader, file_sha256
from gemmaflow.model.train_config import LoraConfig, TrainConfig
from gemmaflow.model.weights import TOKENIZER_FILE, fresh_params, load_weights, weights_folder_kind

Array = jax.Array
Batch = dict[str, Array]  # inputs, positions, segment_ids, targets, mask: [A, b, T] each (pairs: [A, b, 2, T])
Dataset = ShardDataset | PairDataset


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
    """[A, b, ...] batches: micro-batch rows over every device."""
    return NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp")))


# --- The step ----------------------------------------------------------------------------------


def make_train_step(objective: Objective, lora: LoraConfig, optimizer: optax.GradientTransformation) -> Callable:
    """step(trainable, frozen, reference, opt_state, batch, rng) -> (trainable updated, opt_state, metrics).

    `trainable` is the model's parameters, or with LoRA the adapters over the `frozen` base (else None),
    attached to it (`lora.attach`) inside the differentiated function so only the adapters get gradients;
    `reference` is the frozen model DPO and REINFORCE regularise towards (else None); `rng` draws the LoRA
    dropout masks, a new key per micro-batch.
    """

    def step(trainable: Params, frozen: Params | None, reference: Params | None, opt_state: Any,
             batch: Batch, rng: Array) -> tuple[Params, Any, dict]:
        def micro(trainable: Params, micro_batch: Batch, micro_rng: Array) -> tuple[Array, Array]:
            full = trainable if frozen is None else lora_lib.attach(frozen, trainable, lora, micro_rng)
            return objective.summed_loss(full, reference, micro_batch)

        grad_fn = jax.value_and_grad(micro, has_aux=True)

        def accumulate(carry: tuple[Params, Array], batch_and_rng: tuple[Batch, Array]
                       ) -> tuple[tuple[Params, Array], None]:
            grads, sums = carry
            (total, parts), micro_grads = grad_fn(trainable, *batch_and_rng)
            return (jax.tree.map(jnp.add, grads, micro_grads), sums + jnp.concatenate([total[None], parts])), None

        zeros = (jax.tree.map(jnp.zeros_like, trainable), jnp.zeros(len(objective.metric_names) + 1, jnp.float32))
        micro_rngs = jax.random.split(rng, jax.tree.leaves(batch)[0].shape[0])
        (grads, sums), _ = jax.lax.scan(accumulate, zeros, (batch, micro_rngs))
        count = jnp.maximum(sums[-1], 1.0)  # tokens, pairs or sequences: what the loss averages over
        grads = jax.tree.map(lambda g: g / count, grads)
        metrics = objective.step_metrics(sums)
        loss = metrics["loss"]
        grad_norm = optax.global_norm(grads)
        updates, new_opt_state = optimizer.update(grads, opt_state, trainable)
        new_trainable = optax.apply_updates(trainable, updates)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        # On a non-finite step keep the old state, so the caller can save it as the last good one.
        new_trainable, new_opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                                    (new_trainable, new_opt_state), (trainable, opt_state))
        return new_trainable, new_opt_state, {**metrics, "grad_norm": grad_norm, "finite": finite}

    return step


def make_eval_step(objective: Objective, lora_config: LoraConfig) -> Callable:
    """eval(params, lora, reference, batch) -> the summed [loss, *metrics] of an [A, b, ...] batch."""

    def evaluate(params: Params, lora: Params | None, reference: Params | None, batch: Batch) -> Array:
        full = params if lora is None else lora_lib.attach(params, lora, lora_config)

        def micro(sums: Array, micro_batch: Batch) -> tuple[Array, None]:
            total, parts = objective.summed_loss(full, reference, micro_batch)
            return sums + jnp.concatenate([total[None], parts]), None

        return jax.lax.scan(micro, jnp.zeros(len(objective.metric_names) + 1, jnp.float32), batch)[0]

    return evaluate


# --- The run -----------------------------------------------------------------------------------


def train(shards: str | Path, config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          stream: TextIO | None = None) -> TrainResult:
    """Train on the shard folder `shards` into `out_dir` (checkpoints/, metrics.jsonl, train_config.json, final/).

    In order: check what the config names (cheap, so mistakes fail before any work), open the
    checkpoints (refusing to overwrite or to resume inexactly), set up the run's fixed parts, build
    or restore the state, then step until `config.steps`.
    """
    out_dir = Path(out_dir)
    inputs = check_inputs(shards, config)
    _check_resume(config, out_dir, resume, inputs.manifest)
    job, loaded = _set_up(shards, config, out_dir, inputs, resume)
    state, reference = _initial_state(job, loaded, resume)
    job = dataclasses.replace(job, reference=reference)
    _write_run_files(job)
    output = _Output(out_dir, config.steps, state.step, config.log_every, stream or sys.stdout)
    try:
        _announce(job, state, output)
        return _loop(job, _compile_train_step(job, state), state, output)
    finally:
        output.close()


def _announce(job: _Job, state: TrainState, output: _Output) -> None:
    """The run's facts a reader of the log needs to trust its numbers: where it resumed, what trains, MFU's peak."""
    if state.step:
        output.say(f"resumed from checkpoint {state.step}")
    if state.lora is not None:
        base = "" if job.config.lora.quantize == "none" else (
            f" over the {job.config.lora.quantize} base ({stored_bytes(state.params) / 1e6:,.1f} MB)")
        output.say(f"LoRA: {lora_lib.count(state.lora):,} trainable parameters on "
                   f"{', '.join(job.config.lora.targets)}{base}")
    if job.config.kind in ("reward", "dpo", "reinforce"):
        output.say(f"objective: {job.config.kind} ({type(job.objective).__name__}); sequences of "
                   f"{job.sequence_width} tokens")
    output.say(job.peak.describe())


def _loop(job: _Job, step_fn: Callable, state: TrainState, output: _Output) -> TrainResult:
    """Steps up to `config.steps`, checkpointing and evaluating on schedule; then the last evaluation and final/.

    A non-finite step saves the state before it (the last good one) and raises `TrainingDiverged`.
    """
    config = job.config
    saved_step = state.step if state.step in job.store.steps() else None
    loss = float("nan")
    while state.step < config.steps:
        started = time.perf_counter()
        batch, host_metrics = _next_batch(job, state)
        lr = float(job.schedule(state.step))
        state, metrics = _train_step(job, step_fn, state, batch)
        metrics.update(host_metrics)
        if not metrics["finite"]:
            _save(job, state, saved_step, output)  # the step kept the previous state: that is the last good one
            raise TrainingDiverged(state.step + 1, state.step)
        state = dataclasses.replace(state, step=state.step + 1)
        loss = metrics["loss"]
        output.record(_step_record(job, state.step, metrics, lr, time.perf_counter() - started))
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            saved_step = _save(job, state, saved_step, output)
        if config.eval_every and state.step % config.eval_every == 0 and state.step != config.steps:
            _evaluate(job, state, output)
    eval_loss = _evaluate(job, state, output)
    _save_final_model(job, state)
    output.say(f"done: step {state.step}, loss {loss:.4f}, model in {job.out_dir / 'final'}")
    return TrainResult(step=state.step, loss=loss, eval_loss=eval_loss, out_dir=job.out_dir)


# --- Setup: the checks, then the run's fixed parts ---------------------------------------------

RUN_RECORD = "train_config.json"


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """What `check_inputs` found: the shards' manifest, the tokenizer to copy (or None) and the mesh."""

    manifest: Manifest
    tokenizer: Path | None
    mesh: Mesh


def check_inputs(shards: str | Path, config: TrainConfig) -> RunInputs:
    """Check everything the config names before any work, so a wrong path fails in seconds, not after loading.

    Reads the shards' manifest, hashes the tokenizer, looks at the `init_from` folder's file names
    and checks that the micro-batches split over the devices. It loads no weights and writes nothing.
    """
    manifest = Manifest.load(shards)
    if config.preference and manifest.kind != "preference":
        raise ShardFormatError(f"{shards}: {manifest.kind} shards; kind {config.kind} trains on preference pairs "
                               "(gemmaflow prefs)")
    if not config.preference and manifest.kind == "preference":
        raise ShardFormatError(f"{shards}: preference shards (gemmaflow prefs) hold pairs, not packed rows; a "
                               "language model trains on gemmaflow pack or sft shards, and pairs train with "
                               "--set kind=reward, kind=dpo or kind=reinforce")
    if config.kind in ("pretrain", "sft") and manifest.kind != config.kind:
        raise ShardFormatError(f"{shards}: {manifest.kind} shards, the config expects {config.kind}")
    tokenizer = _check_tokenizer(config, manifest)
    if config.model.init_from:
        weights_folder_kind(config.model.init_from)
    if config.kind == "reinforce":
        weights_folder_kind(config.reinforce.reward_model)
    mesh = make_mesh(config.mesh.data, config.mesh.fsdp)
    rows_per_micro_batch = config.micro_batch_size
    if rows_per_micro_batch % mesh.size or rows_per_micro_batch % jax.process_count():
        raise ConfigError(f"a micro-batch of {rows_per_micro_batch} rows (batch_size / grad_accum_steps) does not "
                          f"split over {mesh.size} devices and {jax.process_count()} processes")
    return RunInputs(manifest, tokenizer, mesh)


def _check_tokenizer(config: TrainConfig, manifest: Manifest) -> Path | None:
    if not config.tokenizer:
        return None
    path = Path(config.tokenizer)
    if not path.is_file():
        raise ShardFormatError(f"tokenizer {path} not found")
    if manifest.tokenizer_sha256 and file_sha256(path) != manifest.tokenizer_sha256:
        raise ShardFormatError(f"tokenizer {path} is not the one the shards were made with (SHA-256 differs)")
    return path


def data_identity(manifest: Manifest) -> dict[str, Any]:
    """What a run's checkpoints depend on in its shards: a resumed run must see the same."""
    return {"vocab_size": manifest.vocab_size, "seq_len": manifest.seq_len,
            "tokenizer_sha256": manifest.tokenizer_sha256}  # fmt: skip


def _check_resume(config: TrainConfig, out_dir: Path, resume: bool, manifest: Manifest) -> None:
    """Refuse to resume a run with another config or other data (a resumed run is exact only with what it started
    with). It reads the earlier run's record and writes nothing, so a refused resume touches nothing."""
    record = out_dir / RUN_RECORD
    if resume and record.exists():
        earlier = json.loads(record.read_text())
        if earlier["fingerprint"] != fingerprint(config):
            raise ResumeError(f"{out_dir} was trained with a different config; resuming would not be exact")
        before = earlier.get("data") or {"vocab_size": earlier.get("model_config", {}).get("vocab_size")}
        now = data_identity(manifest)
        changed = sorted(key for key, value in before.items() if value is not None and now.get(key) != value)
        if changed:
            detail = ", ".join(f"{key} {before[key]} -> {now[key]}" for key in changed)
            raise ResumeError(f"{out_dir} was trained on other shards ({detail}); resume with the shards it "
                              "started with, or train into another --out")  # fmt: skip


def _open_checkpoints(config: TrainConfig, out_dir: Path, resume: bool) -> CheckpointStore:
    """The run's checkpoint store (creating its folder), refusing to write over another run's checkpoints."""
    store = CheckpointStore(out_dir / "checkpoints", keep=config.keep_checkpoints, verify=config.verify_checkpoints)
    if not resume and store.steps():
        raise ResumeError(f"{out_dir} already holds checkpoints {store.steps()}: pass --resume, or another --out")
    return store


@dataclasses.dataclass(frozen=True)
class _Job:
    """A run's fixed parts: everything except the state its steps change."""

    config: TrainConfig
    out_dir: Path
    inputs: RunInputs
    model_config: GemmaConfig
    objective: Objective
    train_data: Dataset
    eval_data: Dataset | None
    sequence_width: int  # tokens per sequence of a batch (pairs: per side; REINFORCE: prompt slots + answer)
    store: CheckpointStore
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule  # the optimizer's learning rate, for the metrics
    evaluate: Callable  # jitted `make_eval_step`
    flops_per_token: float
    peak: Peak  # for MFU
    run_record: dict[str, Any]
    scorer: RewardScorer | None = None  # REINFORCE's reward model
    reference: Params | None = None  # DPO's and REINFORCE's frozen model, set once the state exists

    @property
    def mesh(self) -> Mesh:
        return self.inputs.mesh

    @property
    def batch_layout(self) -> NamedSharding:
        return batch_sharding(self.inputs.mesh)

    @property
    def tokens_per_step(self) -> int:
        sides = 2 if self.config.kind in ("reward", "dpo") else 1
        return self.config.batch_size * sides * self.sequence_width

    @property
    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint records beside the arrays, so `GemmaLM.from_pretrained` can rebuild the model."""
        return {"model_config": self.run_record["model_config"], "lora": to_dict(self.config.lora),
                "config_fingerprint": self.run_record["fingerprint"]}


def _set_up(shards: str | Path, config: TrainConfig, out_dir: Path, inputs: RunInputs,
            resume: bool) -> tuple[_Job, Params | None]:
    """The job, and the loaded weights when fine-tuning (`init_from`; None for fresh weights).

    The shards are opened (and their checksums verified) before the checkpoint store creates anything
    under `out_dir`, so a run refused for its data leaves no trace."""
    model_config, loaded = _model_and_weights(config, inputs.manifest)
    train_data = _dataset(shards, "train", config, model_config, shuffle=True)
    eval_data = None
    if inputs.manifest.splits.get("validation") and config.kind != "reinforce":
        eval_data = _dataset(shards, "validation", config, model_config, shuffle=False)
    scorer, width = None, inputs.manifest.seq_len
    if isinstance(train_data, PairDataset):
        width = train_data.reader.width
    if config.kind == "reinforce":
        scorer = _reward_scorer(config, model_config)
        width = train_data.reader.prompt_width + config.reinforce.max_new_tokens
    store = _open_checkpoints(config, out_dir, resume)
    run_record = {"config": to_dict(config), "fingerprint": fingerprint(config),
                  "shards": str(Path(shards).absolute()), "data": data_identity(inputs.manifest),
                  "model_config": config_to_dict(model_config)}
    objective = make_objective(config, model_config)
    job = _Job(config=config, out_dir=out_dir, inputs=inputs, model_config=model_config, objective=objective,
               train_data=train_data, eval_data=eval_data, sequence_width=width, store=store,
               optimizer=make_optimizer(config.optimizer, config.steps),
               schedule=learning_rate_schedule(config.optimizer, config.steps),
               evaluate=jax.jit(make_eval_step(objective, config.lora)),
               flops_per_token=train_flops_per_token(model_config, width),
               peak=job_peak(list(inputs.mesh.devices.flat), config.peak_tflops), run_record=run_record,
               scorer=scorer)
    return job, loaded


def _dataset(shards: str | Path, split: str, config: TrainConfig, model_config: GemmaConfig,
             shuffle: bool) -> Dataset:
    """The split as packed rows (language models) or pairs (reward model, DPO, REINFORCE's prompts)."""
    if config.preference:
        reader = PairReader(shards, split, vocab_size=model_config.vocab_size)
        if config.kind == "reinforce":  # the batch is samples; its prompts are batch_size / k pairs
            return PairDataset(reader, config.batch_size // config.reinforce.samples_per_prompt, config.seed, shuffle)
        return PairDataset(reader, config.batch_size, config.seed, shuffle)
    return ShardDataset(ShardReader(shards, split, vocab_size=model_config.vocab_size), config.batch_size,
                        config.seed, shuffle)


def _reward_scorer(config: TrainConfig, model_config: GemmaConfig) -> RewardScorer:
    """REINFORCE's reward model, float32, checked to read the policy's tokens."""
    reward_config, params, _ = load_weights(config.reinforce.reward_model)
    if reward_config.vocab_size < model_config.vocab_size:
        raise ShardFormatError(f"reward model {config.reinforce.reward_model} has {reward_config.vocab_size} "
                               f"embedding rows, the policy {model_config.vocab_size}: not the same tokenizer")
    reward_config = dataclasses.replace(reward_config, param_dtype=DType.FLOAT32, dtype=DType.FLOAT32)
    try:
        return RewardScorer.build(reward_config, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params))
    except ValueError as exc:
        raise ShardFormatError(f"{config.reinforce.reward_model}: {exc}") from exc


def _model_and_weights(config: TrainConfig, manifest: Manifest) -> tuple[GemmaConfig, Params | None]:
    """The model config and, when fine-tuning (`init_from`), the loaded float32 weights."""
    if not config.model.init_from:
        return config.model.build(manifest.vocab_size, manifest.seq_len), None
    loaded_config, params, _ = load_weights(config.model.init_from)
    if REWARD_HEAD in params and config.kind != "reward":
        raise ShardFormatError(f"{config.model.init_from} is a reward model; kind {config.kind} starts from a "
                               "language model")
    model_config = dataclasses.replace(loaded_config, param_dtype=DType.FLOAT32,
                                       dtype=DType(config.model.compute_dtype),
                                       max_seq_len=max(loaded_config.max_seq_len, manifest.seq_len))
    return model_config, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)


def _write_run_files(job: _Job) -> None:
    """train_config.json (what `--resume` checks) and the tokenizer, so the output folder is self-describing."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        write_whole(job.out_dir / RUN_RECORD, (json.dumps(job.run_record, indent=2) + "\n").encode())
        if job.inputs.tokenizer is not None:
            write_whole(job.out_dir / TOKENIZER_FILE, job.inputs.tokenizer.read_bytes())


def write_whole(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: a kill leaves the old file or the new one, never part of
    one (`--resume` reads the run record; a cut tokenizer can still load, with fewer pieces)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# --- State -------------------------------------------------------------------------------------


def _initial_state(job: _Job, loaded: Params | None, resume: bool) -> tuple[TrainState, Params | None]:
    """Fresh or loaded weights, LoRA adapters and AdamW state laid out over the mesh; with `resume`, the
    newest whole checkpoint in their place (the fresh state is its template, so it lands where they would).

    Also the objective's frozen reference (None if it needs none): the starting weights, which with LoRA
    are the frozen base itself and otherwise a copy (the trained tree is donated to each step). A reward
    model's head is trainable: beside the weights, or beside the adapters with LoRA.
    """
    config, mesh = job.config, job.mesh
    param_rng, lora_rng, rng = jax.random.split(jax.random.key(config.seed), 3)
    if loaded is None:
        abstract_params = jax.eval_shape(functools.partial(init_params, job.model_config), param_rng)
        params = fresh_params(job.model_config, param_rng, tree_shardings(abstract_params, mesh))
    else:
        params = jax.device_put(loaded, tree_shardings(loaded, mesh))
    head = None
    if config.kind == "reward":
        params = dict(params)
        head = params.pop(REWARD_HEAD, None) or init_reward_head(job.model_config, jax.random.fold_in(param_rng, 1))
    adapters = None
    if config.lora.enabled:
        adapters = lora_lib.init_lora(params, config.lora, lora_rng)
        if head is not None:
            adapters[REWARD_HEAD] = head
        adapters = jax.device_put(adapters, tree_shardings(adapters, mesh))
        if config.lora.quantize != "none":  # QLoRA: the frozen base held in 8 or 4 bits from here on
            params = quantize_params(params, config.lora.quantize, config.lora.double_quant)
            params = jax.device_put(params, tree_shardings(params, mesh))
    elif head is not None:
        params[REWARD_HEAD] = head
        params = jax.device_put(params, tree_shardings(params, mesh))
    reference = None
    if job.objective.needs_reference:
        reference = params if adapters is not None else jax.tree.map(jnp.copy, params)
    trainable = params if adapters is None else adapters
    opt_shardings = tree_shardings(jax.eval_shape(job.optimizer.init, trainable), mesh)
    opt_state = jax.jit(job.optimizer.init, out_shardings=opt_shardings)(trainable)
    state = TrainState(step=0, params=params, opt_state=opt_state, rng=rng, lora=adapters)
    if not resume or not job.store.steps():
        return state, reference
    restored = job.store.restore_latest(state)
    if restored is None:  # every checkpoint was damaged (each now set aside as corrupt_<step>)
        raise ResumeError(f"every checkpoint in {job.store.directory} is damaged (set aside as corrupt_<step>); "
                          "nothing to resume: train into another --out to start from step 0")  # fmt: skip
    return restored, reference


def _save(job: _Job, state: TrainState, saved_step: int | None, output: _Output) -> int:
    """Checkpoint `state` unless its step is saved already; returns the step now saved."""
    if saved_step != state.step:
        job.store.save(state, job.checkpoint_meta)
        output.say(f"saved checkpoint {state.step}")
    return state.step


def _save_final_model(job: _Job, state: TrainState) -> None:
    """final/: the trained weights (LoRA adapters merged) and the tokenizer, as `GemmaLM.from_pretrained` reads them."""
    final = state.params if state.lora is None else lora_lib.merge(state.params, state.lora, job.config.lora)
    save_model(job.out_dir / "final", job.model_config, final)
    if jax.process_index() == 0 and job.inputs.tokenizer is not None:
        write_whole(job.out_dir / "final" / TOKENIZER_FILE, job.inputs.tokenizer.read_bytes())


# --- Steps -------------------------------------------------------------------------------------


def _compile_train_step(job: _Job, state: TrainState) -> Callable:
    """`make_train_step` jitted for this state's layout; it donates the trainable tree and the AdamW state."""
    lora_run = job.config.lora.enabled
    trainable_shardings = tree_shardings(state.lora if lora_run else state.params, job.mesh)
    frozen_shardings = tree_shardings(state.params, job.mesh) if lora_run else None
    reference_shardings = None if job.reference is None else tree_shardings(job.reference, job.mesh)
    opt_shardings = tree_shardings(state.opt_state, job.mesh)
    return jax.jit(make_train_step(job.objective, job.config.lora, job.optimizer),
                   in_shardings=(trainable_shardings, frozen_shardings, reference_shardings, opt_shardings,
                                 job.batch_layout, None),
                   out_shardings=(trainable_shardings, opt_shardings, None), donate_argnums=(0, 3))


def _put_batch(arrays: dict[str, np.ndarray], micro_batches: int, sharding: NamedSharding) -> Batch:
    """Host rows [A*b_local, ...] -> global [A, b, ...] arrays laid out over the mesh."""
    return {name: jax.make_array_from_process_local_data(
        sharding, np.ascontiguousarray(value.reshape(micro_batches, -1, *value.shape[1:])))
        for name, value in arrays.items()}


def _read_batch(job: _Job, data: Dataset, index: int) -> Batch:
    """Batch `index` of `data`: this process's rows, laid out over the mesh as [A, b, ...]."""
    micro_batches = job.config.grad_accum_steps
    arrays = data.batch_at(index, micro_batches, jax.process_index(), jax.process_count())
    return _put_batch(arrays, micro_batches, job.batch_layout)


def _next_batch(job: _Job, state: TrainState) -> tuple[Batch, dict[str, float]]:
    """The batch of the state's step and host-side metrics of making it: read from the shards, or for
    REINFORCE sampled from the current policy and scored (its rng a pure function of seed and step)."""
    if job.scorer is None:
        return _read_batch(job, job.train_data, state.step), {}
    assert isinstance(job.train_data, PairDataset)
    micro_batches = job.config.grad_accum_steps
    prompts = job.train_data.prompts_at(state.step, micro_batches, jax.process_index(), jax.process_count())
    policy = state.params if state.lora is None else lora_lib.attach(state.params, state.lora, job.config.lora)
    rng = jax.random.fold_in(jax.random.key(job.config.seed), state.step)
    arrays = rollout(policy, job.model_config, job.scorer, prompts, job.config.reinforce,
                     job.train_data.reader.prompt_width, rng)
    truncated = float(arrays.pop("truncated").mean())
    return _put_batch(arrays, micro_batches, job.batch_layout), {"truncated": truncated}


def _train_step(job: _Job, step_fn: Callable, state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, float]]:
    """One optimizer step (the step number is the caller's to advance) and its metrics on the host.

    On a non-finite loss or gradient the returned state is the one passed in (`make_train_step`).
    """
    rng = jax.random.fold_in(state.rng, state.step)
    if job.config.lora.enabled:
        trained, opt_state, metrics = step_fn(state.lora, state.params, job.reference, state.opt_state, batch, rng)
        state = dataclasses.replace(state, lora=trained, opt_state=opt_state)
    else:
        trained, opt_state, metrics = step_fn(state.params, None, job.reference, state.opt_state, batch, rng)
        state = dataclasses.replace(state, params=trained, opt_state=opt_state)
    return state, {k: float(v) for k, v in jax.device_get(metrics).items()}


def _step_record(job: _Job, step: int, metrics: dict[str, float], lr: float, seconds: float) -> dict[str, Any]:
    """The metrics.jsonl line of one step; MFU is None where the devices' peak is unknown."""
    tokens_per_s = job.tokens_per_step / seconds
    count = job.objective.metric_names[-1]
    measured = {name: value for name, value in metrics.items() if name not in ("loss", "finite", count)}
    return {"step": step, "loss": metrics["loss"], **measured, "lr": lr, count: int(metrics[count]),
            "tokens_per_s": tokens_per_s, "mfu": job.peak.mfu(tokens_per_s * job.flops_per_token),
            "step_seconds": seconds, "peak_tflops": job.peak.tflops, "peak_source": job.peak.source}


def _evaluate(job: _Job, state: TrainState, output: _Output) -> float | None:
    """Validation loss over the split's first `eval_batches` batches (None without a validation split)."""
    if job.eval_data is None:
        return None
    batches = min(job.config.eval_batches, math.ceil(len(job.eval_data.reader) / job.config.batch_size))
    sums = np.zeros(len(job.objective.metric_names) + 1)
    for index in range(batches):
        sums += np.asarray(job.evaluate(state.params, state.lora, job.reference,
                                        _read_batch(job, job.eval_data, index)))
    record = job.objective.eval_record(sums)
    output.record({"step": state.step, **record})
    shown = ", ".join(f"{name.removeprefix('eval_')} {value:.4f}" for name, value in record.items()
                      if isinstance(value, float))
    output.say(f"eval at step {state.step}: {shown}")
    return record["eval_loss"]


# --- Progress ---------------------------------------------------------------------------------


def _logged_step(line: str) -> float:
    """The step of a metrics.jsonl line; a line a kill cut short counts as logged after every checkpoint."""
    try:
        return json.loads(line).get("step", 0)
    except json.JSONDecodeError:
        return math.inf


class _Output:
    """metrics.jsonl and stdout: a progress bar on a terminal, plain lines every `log_every` steps otherwise.

    MFU is left out where the devices' peak is unknown (model/device_peak.py).
    """

    def __init__(self, out_dir: Path, total: int, start: int, log_every: int, stream: TextIO) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.log_every, self.stream = log_every, stream
        self.primary = jax.process_index() == 0
        self.bar = None
        if self.primary and stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, file=stream, dynamic_ncols=True, unit="step")
        if self.primary and self.path.exists():  # resuming: forget what the killed run logged past the checkpoint
            kept = [line for line in self.path.read_text().splitlines() if _logged_step(line) <= start]
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
            postfix = {"loss": f"{entry['loss']:.4f}", "lr": f"{entry['lr']:.2e}",
                       "gnorm": f"{entry['grad_norm']:.2f}", "tok_s": f"{entry['tokens_per_s']:.0f}"}
            if entry["mfu"] is not None:
                postfix["mfu"] = f"{100 * entry['mfu']:.1f}%"
            self.bar.set_postfix(postfix)
        elif entry["step"] % self.log_every == 0:
            mfu = "" if entry["mfu"] is None else f" mfu {100 * entry['mfu']:.2f}%"
            self.say(f"step {entry['step']} loss {entry['loss']:.4f} lr {entry['lr']:.3e} grad_norm "
                     f"{entry['grad_norm']:.3f} tokens/s {entry['tokens_per_s']:.0f}{mfu}")

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
