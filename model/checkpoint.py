"""Checkpoints: Orbax training checkpoints that resume exactly, and the native saved-model folder.

Training checkpoints (`OUT/checkpoints/<step>/`) hold the items `params`, `opt_state`, `lora` (LoRA
runs) and `meta` (step, RNG key, model and LoRA configs). Orbax writes each into a temporary folder
and renames it when complete, so a run killed mid-save leaves no step folder; on top of that,
after Orbax finishes we write `gemmaflow_checksums.json` (size and SHA-256 of every file). A step
folder without it was cut short after the rename; one whose files no longer match it was damaged
later. `restore_latest` skips both (and any step Orbax itself cannot read), renames them
`corrupt_<step>` so the resumed run can save that step again, and falls back to the newest
checkpoint that is whole.

The native model folder (`GemmaLM.save_pretrained(path)`) is `gemmaflow_model.json` (the
GemmaConfig) plus the parameters as one Orbax item in `params/`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from gemmaflow.core.configio import from_dict, to_dict
from gemmaflow.model.config import DType, GemmaConfig
from gemmaflow.model.gemma import Params
from gemmaflow.model.shards import file_sha256
from gemmaflow.model.train_config import LoraConfig

log = logging.getLogger(__name__)

CHECKSUMS = "gemmaflow_checksums.json"
MODEL_CONFIG = "gemmaflow_model.json"
LORA_CONFIG = "gemmaflow_lora.json"


class CheckpointError(RuntimeError):
    """A checkpoint or saved model is missing or unreadable."""


# --- GemmaConfig as JSON -----------------------------------------------------------------------


def config_to_dict(config: GemmaConfig) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, DType) else v) for k, v in dataclasses.asdict(config).items()}


def config_from_dict(data: dict[str, Any]) -> GemmaConfig:
    fields = {f.name for f in dataclasses.fields(GemmaConfig)}
    values = {k: v for k, v in data.items() if k in fields}
    for name in ("param_dtype", "dtype"):
        if name in values:
            values[name] = DType(values[name])
    return GemmaConfig(**values)


# --- Integrity ---------------------------------------------------------------------------------


def _file_digests(folder: Path) -> dict[str, list]:
    digests = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS):
        digests[str(path.relative_to(folder))] = [path.stat().st_size, file_sha256(path)]
    return digests


def _damage(folder: Path) -> str | None:
    """None if `folder` matches its checksum file, else what is wrong."""
    marker = folder / CHECKSUMS
    if not marker.is_file():
        return "no checksum file (the save did not finish)"
    try:
        expected = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return "unreadable checksum file"
    actual = _file_digests(folder)
    for name, digest in expected.items():
        if actual.get(name) != digest:
            return f"{name} is missing or changed"
    return None


# --- Training checkpoints ----------------------------------------------------------------------


@dataclasses.dataclass
class TrainState:
    """What a training step reads and writes; `lora` is None unless LoRA is on (then `params` is frozen)."""

    step: int
    params: Params
    opt_state: Any
    rng: jax.Array
    lora: Params | None = None


def _first_line(error: Exception, limit: int = 200) -> str:
    """One line of an error: Orbax's read errors carry a 60-line TensorStore spec."""
    text = (str(error).splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`, ... : a step damaged again is set aside beside the first one."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


class CheckpointStore:
    """Save every N steps (the caller decides when), keep the last K, restore the newest whole one."""

    def __init__(self, directory: str | Path, keep: int, verify: bool = True) -> None:
        self.directory = Path(directory).absolute()
        self.keep, self.verify = keep, verify
        self._manager = self._open()

    def _open(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True, enable_async_checkpointing=False)
        return ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, state: TrainState, meta: dict[str, Any]) -> None:
        items = {"params": ocp.args.StandardSave(state.params), "opt_state": ocp.args.StandardSave(state.opt_state),
                 "meta": ocp.args.JsonSave({**meta, "step": state.step,
                                            "rng": np.asarray(jax.random.key_data(state.rng)).tolist()})}
        if state.lora is not None:
            items["lora"] = ocp.args.StandardSave(state.lora)
        self._manager.save(state.step, args=ocp.args.Composite(**items), force=True)
        self._manager.wait_until_finished()
        if self.verify and jax.process_index() == 0:
            folder = self.directory / str(state.step)
            (folder / CHECKSUMS).write_text(json.dumps(_file_digests(folder), indent=0))

    def restore_latest(self, template: TrainState) -> TrainState | None:
        """The newest whole checkpoint, shaped and sharded like `template` (arrays or ShapeDtypeStructs)."""
        for step in reversed(self.steps()):
            folder = self.directory / str(step)
            problem = _damage(folder) if self.verify else None
            if problem is None:
                try:
                    return self._restore(step, template)
                except Exception as exc:  # any unreadable checkpoint: use the previous one
                    problem = f"Orbax could not read it ({type(exc).__name__}: {_first_line(exc)})"
            log.warning("checkpoint %s is damaged: %s; trying the previous one", folder, problem)
            if jax.process_index() == 0:
                folder.rename(_free_name(folder.with_name(f"corrupt_{step}")))
            # Every process must see the step gone before Orbax lists the steps again, or they disagree on them.
            ocp.multihost.sync_global_processes(f"gemmaflow_set_aside_{step}")
            self._manager = self._open()
        return None

    def _restore(self, step: int, template: TrainState) -> TrainState:
        def abstract(tree: Any) -> Any:
            return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)

        items = {"params": ocp.args.StandardRestore(abstract(template.params)),
                 "opt_state": ocp.args.StandardRestore(abstract(template.opt_state)),
                 "meta": ocp.args.JsonRestore()}
        if template.lora is not None:
            items["lora"] = ocp.args.StandardRestore(abstract(template.lora))
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        rng = jax.random.wrap_key_data(jnp.asarray(restored["meta"]["rng"], jnp.uint32))
        return TrainState(step=int(restored["meta"]["step"]), params=restored["params"],
                          opt_state=restored["opt_state"], rng=rng,
                          lora=restored["lora"] if template.lora is not None else None)

    def read_meta(self, step: int) -> dict[str, Any]:
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_params(self, step: int, params_template: Params | None = None) -> tuple[Params, Params | None]:
        """Parameters (and LoRA adapters, if the run had them) of one checkpoint, without the optimiser.

        `params_template` (shapes suffice) restores the parameters into its structure: needed when the tree
        holds quantized weights, which otherwise come back as plain dicts of their arrays.
        """
        params_args = _restore_anywhere() if params_template is None else ocp.args.StandardRestore(
            jax.tree.map(_on_first_device, params_template))
        items = {"params": params_args}
        if (self.directory / str(step) / "lora").is_dir():
            items["lora"] = _restore_anywhere()
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        return restored["params"], restored.get("lora")

    def latest_whole_step(self) -> int | None:
        """The newest step whose files match their checksums (no restore, nothing renamed)."""
        for step in reversed(self.steps()):
            if not self.verify or _damage(self.directory / str(step)) is None:
                return step
        return None


# --- The native saved-model folder -------------------------------------------------------------


def save_model(path: str | Path, config: GemmaConfig, params: Params) -> None:
    path = Path(path).absolute()
    path.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path / "params", params, force=True)
    if jax.process_index() == 0:
        (path / MODEL_CONFIG).write_text(json.dumps(config_to_dict(config), indent=2) + "\n")


def load_model(path: str | Path) -> tuple[GemmaConfig, Params]:
    path = Path(path).absolute()
    config = config_from_dict(json.loads((path / MODEL_CONFIG).read_text()))
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
        params = checkpointer.restore(path / "params", args=_restore_anywhere())
    return config, params


def save_adapters(path: str | Path, config: GemmaConfig, adapters: Params, lora_config: LoraConfig) -> None:
    """LoRA adapters alone (`adapters/`) and what they fit (`gemmaflow_lora.json`: the base's architecture and
    the LoRA config); the JSON is written last, so a folder without it is an unfinished save."""
    path = Path(path).absolute()
    path.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path / "adapters", adapters, force=True)
    if jax.process_index() == 0:
        record = {"model_config": config_to_dict(config), "lora": to_dict(lora_config)}
        (path / LORA_CONFIG).write_text(json.dumps(record, indent=2) + "\n")


def load_adapters(path: str | Path) -> tuple[GemmaConfig, Params, LoraConfig]:
    """(the architecture they were trained on, the adapters, their LoRA config) of a `save_adapters` folder."""
    path = Path(path).absolute()
    if not (path / LORA_CONFIG).is_file():
        raise CheckpointError(f"{path} holds no LoRA adapters ({LORA_CONFIG} is missing)")
    record = json.loads((path / LORA_CONFIG).read_text())
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
        adapters = checkpointer.restore(path / "adapters", args=_restore_anywhere())
    return config_from_dict(record["model_config"]), adapters, from_dict(LoraConfig, record["lora"])


def _first_device() -> jax.sharding.SingleDeviceSharding:
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def _on_first_device(leaf: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=_first_device())


def _restore_anywhere() -> ocp.args.StandardRestore:
    """Arrays laid out as saved where this process has those devices, else whole on its first device: weights
    trained over other devices or processes (FSDP, `--distributed`) still load into one process."""
    return ocp.args.StandardRestore(fallback_sharding=_first_device())
