import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow import cli
from gemmaflow.model.api import GemmaLM
from gemmaflow.model.checkpoint import CHECKSUMS, CheckpointError, CheckpointStore, TrainState
from gemmaflow.model.gemma import init_params
from gemmaflow.model.optim import make_optimizer
from gemmaflow.model.shards import ShardChecksumError, ShardFormatError
from gemmaflow.model.train import ResumeError, TrainingDiverged, _Output, write_whole
from gemmaflow.model.train_config import load_train_config
from tests.model.shard_fixtures import write_shards
from tests.model.train_fixtures import REPO, environment, losses, run, write_config


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), seq_len=32, vocab_size=64)


@pytest.fixture(scope="module")
def base_run(shards, tmp_path_factory):
    """The reference run: 12 steps, checkpoints every 2 (last 2 kept), eval every 6."""
    folder = tmp_path_factory.mktemp("base")
    config = write_config(folder / "train.yaml")
    result = run(shards, config, folder / "out")
    return folder / "out", config, result


@pytest.mark.slow
def test_loss_decreases_and_the_run_leaves_checkpoints_metrics_and_a_model(base_run):
    out, _, result = base_run
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [entry for entry in lines if "loss" in entry]
    assert [entry["step"] for entry in steps] == list(range(1, 13))
    assert steps[-1]["loss"] < 0.6 * steps[0]["loss"]
    assert steps[0]["lr"] == 0.0 and max(entry["lr"] for entry in steps) == pytest.approx(1e-2)
    for key in ("grad_norm", "tokens_per_s", "mfu", "loss_tokens", "peak_tflops"):
        assert all(entry[key] > 0 for entry in steps), key
    assert {entry["peak_source"] for entry in steps} == {"probe"}  # a CPU: the measured matmul peak
    evals = [entry for entry in lines if "eval_loss" in entry]
    assert [entry["step"] for entry in evals] == [6, 12] and evals[1]["eval_loss"] < evals[0]["eval_loss"]
    assert result.eval_loss == evals[1]["eval_loss"]
    assert CheckpointStore(out / "checkpoints", keep=2).steps() == [10, 12]
    lm = GemmaLM.from_pretrained(out)  # final/ holds the trained weights
    assert lm.config.num_layers == 1 and lm.config.vocab_size == 64


def test_a_run_is_not_overwritten_and_resumes_only_with_its_own_config(base_run, shards, tmp_path):
    out, config, _ = base_run
    with pytest.raises(ResumeError, match="--resume"):
        run(shards, config, out)
    with pytest.raises(ResumeError, match="different config"):
        run(shards, write_config(tmp_path / "other.yaml", seed=4), out, resume=True)


def test_kind_mismatch_is_refused(shards, tmp_path):
    with pytest.raises(ShardFormatError, match="pretrain shards, the config expects sft"):
        run(shards, write_config(tmp_path / "sft.yaml", kind="sft"), tmp_path / "out")


def test_a_missing_init_from_fails_before_any_work(shards, tmp_path):
    config = write_config(tmp_path / "ft.yaml", model__init_from=str(tmp_path / "no-such-model"))
    with pytest.raises(CheckpointError, match="no-such-model: not a gemmaflow model"):
        run(shards, config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_shards_are_refused_before_anything_is_written(tmp_path):
    damaged = write_shards(tmp_path / "shards", seq_len=32, vocab_size=64)
    shard = next((damaged / "train").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    with pytest.raises(ShardChecksumError):
        run(damaged, write_config(tmp_path / "train.yaml"), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # no checkpoints/ folder, no train_config.json


def test_the_progress_lines_leave_out_mfu_when_the_peak_is_unknown(tmp_path):
    stream = io.StringIO()
    output = _Output(tmp_path, total=1, start=0, log_every=1, stream=stream)
    output.record({"step": 1, "loss": 2.0, "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 100.0, "mfu": None})
    assert stream.getvalue() == "step 1 loss 2.0000 lr 1.000e-03 grad_norm 0.500 tokens/s 100\n"
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["mfu"] is None


def test_a_metrics_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}\n{"step": 3, "lo')
    _Output(tmp_path, total=4, start=2, log_every=1, stream=io.StringIO())
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}\n'


def test_a_run_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    record = tmp_path / "train_config.json"
    record.write_text('{"fingerprint": "old"}')

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL just before the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_whole(record, b'{"fingerprint": "new"}')
    assert record.read_text() == '{"fingerprint": "old"}'  # what --resume reads is never half of either
    monkeypatch.undo()
    write_whole(record, b'{"fingerprint": "new"}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_config.json"]


def template(config_path):
    """A TrainState shaped like the base run's (abstract arrays: nothing computed)."""
    config = load_train_config(config_path)
    model_config = config.model.build(64, 32)
    params = jax.eval_shape(functools.partial(init_params, model_config), jax.random.key(0))
    opt_state = jax.eval_shape(make_optimizer(config.optimizer, config.steps).init, params)
    return TrainState(step=0, params=params, opt_state=opt_state, rng=jax.random.key(0))


@pytest.mark.parametrize("damage", ["truncate", "unfinished"])
def test_a_damaged_or_unfinished_checkpoint_falls_back_to_the_previous_one(base_run, tmp_path, damage):
    out = tmp_path / "out"
    shutil.copytree(base_run[0], out)
    newest = out / "checkpoints" / "12"
    if damage == "truncate":
        victim = max((p for p in (newest / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    else:  # killed after Orbax's rename, before the checksums were written
        (newest / CHECKSUMS).unlink()
    store = CheckpointStore(out / "checkpoints", keep=2)
    restored = store.restore_latest(template(base_run[1]))
    assert restored.step == 10
    assert (out / "checkpoints" / "corrupt_12").is_dir() and store.steps() == [10]
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(restored.params))


@pytest.mark.slow
def test_a_non_finite_step_stops_the_run_and_saves_the_last_good_state(shards, tmp_path):
    config = write_config(tmp_path / "nan.yaml", optimizer__learning_rate=1e30, optimizer__warmup_fraction=0.0,
                          checkpoint_every=100, eval_every=0)
    with pytest.raises(TrainingDiverged) as caught:
        run(shards, config, tmp_path / "out")
    step, saved = caught.value.step, caught.value.checkpoint_step
    assert saved == step - 1 >= 1
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, step))
    store = CheckpointStore(tmp_path / "out" / "checkpoints", keep=2)
    assert store.steps() == [saved]
    params, _ = store.restore_params(saved)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(params))


@pytest.mark.slow
def test_lora_sft_fine_tuning_trains_only_the_adapters(base_run, tmp_path):
    sft_shards = write_shards(tmp_path / "sft", seq_len=32, vocab_size=64, seed=5, sft=True, validation_rows=0)
    config = write_config(tmp_path / "lora.yaml", kind="sft", model__init_from=str(base_run[0]),
                          lora={"enabled": True, "rank": 4, "alpha": 8.0, "targets": ["query", "value", "down"]},
                          optimizer={"learning_rate": 3e-2, "warmup_fraction": 0.0}, steps=8, checkpoint_every=8,
                          eval_every=0)
    run(sft_shards, config, tmp_path / "out")
    base = GemmaLM.from_pretrained(base_run[0]).params
    store = CheckpointStore(tmp_path / "out" / "checkpoints", keep=2)
    frozen, adapters = store.restore_params(8)
    for ours, theirs in zip(jax.tree.leaves(frozen), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert sorted(adapters["layers_0"]) == ["attention", "ffw"]
    b_matrices = [np.asarray(w["b"]) for module in adapters["layers_0"].values() for w in module.values()]
    assert all(np.abs(b).max() > 0 for b in b_matrices)
    steps = losses(tmp_path / "out")
    assert steps[8] < steps[1]
    merged = GemmaLM.from_pretrained(tmp_path / "out").params  # final/: adapters merged into the base
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), merged, base)
    assert changed["layers_0"]["attention"] == {"query": True, "key": False, "value": True, "output": False}
    assert changed["layers_0"]["ffw"] == {"gate": False, "up": False, "down": True}
    assert not changed["embedder"]["embedding"]


def test_a_run_without_final_model_loads_from_its_newest_whole_checkpoint(base_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(base_run[0], out)
    shutil.rmtree(out / "final")
    from_checkpoint = GemmaLM.from_pretrained(out).params
    final = GemmaLM.from_pretrained(base_run[0]).params
    for a, b in zip(jax.tree.leaves(from_checkpoint), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_commands(base_run, shards, tmp_path, capsys):
    out, config, _ = base_run
    assert cli.main(["generate", "--model", str(out), "--token-ids", "2,20,21", "--max-length", "8"]) == 0
    row = [int(t) for t in capsys.readouterr().out.strip().split(",")]
    assert row[:3] == [2, 20, 21] and len(row) <= 8
    assert cli.main(["generate", "--model", str(out), "--token-ids", "2,20,21", "--max-length", "8",
                     "--sampler", "contrastive", "--top-k", "3", "--penalty-alpha", "0"]) == 0
    assert [int(t) for t in capsys.readouterr().out.strip().split(",")] == row  # alpha 0 is greedy
    assert cli.main(["generate", "--model", str(out), "--token-ids", "2", "--sampler", "contrastive",
                     "--penalty-alpha", "2"]) == 2
    assert "alpha" in capsys.readouterr().err
    assert cli.main(["generate", "--model", str(out), "--prompt", "hi"]) == 2
    assert "no tokenizer.model" in capsys.readouterr().err
    assert cli.main(["train", "--shards", str(tmp_path), "--config", str(config), "--out", str(out)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert cli.main(["train", "--shards", str(shards), "--config", str(config), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_resumes_bit_for_bit(base_run, shards, tmp_path):
    reference, config, _ = base_run  # uninterrupted, in this process
    command = [sys.executable, "-m", "gemmaflow.cli", "train", "--shards", str(shards), "--config", str(config),
               "--out", str(tmp_path / "out")]
    cache = tmp_path / "compiled"  # the resumed run reuses the killed run's compiled programs
    killed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=environment(cache), cwd=REPO)
    for line in killed.stdout:
        if line.startswith("saved checkpoint 4"):
            killed.send_signal(signal.SIGKILL)
            break
    assert killed.wait() == -signal.SIGKILL
    assert not (tmp_path / "out" / "final").exists()  # it really died mid-run

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=environment(cache),
                             cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first = int(resumed.stdout.split("resumed from checkpoint ")[1].split()[0])
    assert 4 <= first < 12
    expected, got = losses(reference), losses(tmp_path / "out")
    assert sorted(got) == list(range(1, 13))
    assert [got[step] for step in range(first + 1, 13)] == [expected[step] for step in range(first + 1, 13)]


@pytest.mark.slow
def test_four_cpu_devices_with_data_and_fsdp_axes_match_one_device(base_run, shards, tmp_path):
    reference, config, _ = base_run
    done = subprocess.run([sys.executable, "-m", "gemmaflow.cli", "train", "--shards", str(shards), "--config",
                           str(config), "--out", str(tmp_path / "out"), "--set", "mesh.data=2", "--set", "mesh.fsdp=2"],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=environment(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert done.returncode == 0, done.stderr[-2000:]
    one, four = losses(reference), losses(tmp_path / "out")
    assert sorted(four) == list(range(1, 13))
    assert [four[step] for step in range(1, 13)] == pytest.approx([one[step] for step in range(1, 13)], abs=1e-5)


def test_resuming_on_other_shards_is_refused_and_touches_nothing(base_run, shards, tmp_path):
    out, config, _ = base_run
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    final_before = {p: p.stat().st_mtime_ns for p in (out / "final").rglob("*")}
    other = tmp_path / "other_shards"
    shutil.copytree(shards, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["tokenizer"]["vocab_size"] = 2000  # another tokenizer: the checkpoints cannot be this run's
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResumeError, match=r"other shards \(vocab_size 64 -> 2000\)"):
        run(other, config, out, resume=True)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before
    assert {p: p.stat().st_mtime_ns for p in (out / "final").rglob("*")} == final_before


def test_a_step_damaged_twice_is_set_aside_again_and_all_damaged_is_refused(base_run, shards, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(base_run[0], out)
    (out / "checkpoints" / "corrupt_12").mkdir()  # set aside by an earlier resume
    (out / "checkpoints" / "12" / CHECKSUMS).unlink()
    store = CheckpointStore(out / "checkpoints", keep=2)
    assert store.restore_latest(template(base_run[1])).step == 10
    assert (out / "checkpoints" / "corrupt_12.2").is_dir()
    (out / "checkpoints" / "10" / CHECKSUMS).unlink()
    with pytest.raises(ResumeError, match=r"every checkpoint .* is damaged"):
        run(shards, base_run[1], out, resume=True)


def test_an_unreadable_checkpoint_is_reported_in_one_line(base_run, tmp_path, caplog):
    out = tmp_path / "out"
    shutil.copytree(base_run[0], out)
    newest = out / "checkpoints" / "12"
    victim = max((p for p in (newest / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    store = CheckpointStore(out / "checkpoints", keep=2, verify=False)  # Orbax itself meets the damage
    with caplog.at_level("WARNING", logger="gemmaflow.model.checkpoint"):
        assert store.restore_latest(template(base_run[1])).step == 10
    [message] = [record.getMessage() for record in caplog.records if "damaged" in record.getMessage()]
    assert "\n" not in message and len(message) < 400


@pytest.mark.slow
def test_qlora_keeps_the_base_in_nf4_resumes_exactly_and_exports_a_merged_model(base_run, shards, tmp_path):
    config = write_config(tmp_path / "qlora.yaml", model__init_from=str(base_run[0]),
                          lora={"enabled": True, "rank": 4, "alpha": 8.0, "dropout": 0.1, "quantize": "nf4",
                                "targets": ["query", "value", "down"]},
                          optimizer={"learning_rate": 3e-2, "warmup_fraction": 0.0}, steps=6, checkpoint_every=3,
                          keep_checkpoints=2, eval_every=0)
    out = tmp_path / "out"
    run(shards, config, out)
    steps = losses(out)
    assert steps[6] < steps[1]
    frozen, adapters = CheckpointStore(out / "checkpoints", keep=2).restore_params(6)
    for weight in (frozen["layers_0"]["attention"]["query"], frozen["layers_0"]["ffw"]["gate"],
                   frozen["embedder"]["embedding"]):  # the base is stored once, packed 4-bit codes and int8 scales
        assert sorted(weight) == ["absmax", "absmax_offset", "absmax_scale", "packed"]
        assert np.asarray(weight["packed"]).dtype == np.uint8 and np.asarray(weight["absmax"]).dtype == np.int8
    assert frozen["final_norm"]["scale"].dtype == np.float32 and sorted(adapters["layers_0"]) == ["attention", "ffw"]

    base = GemmaLM.from_pretrained(base_run[0]).params
    merged = GemmaLM.from_pretrained(out).params  # final/: the dequantized base plus the adapters, float32
    key, base_key = np.asarray(merged["layers_0"]["attention"]["key"]), np.asarray(base["layers_0"]["attention"]["key"])
    assert key.dtype == np.float32 and 0 < np.abs(key - base_key).max() < 0.25 * np.abs(base_key).max()

    resumed = tmp_path / "resumed"  # killed after the checkpoint of step 3: resume redraws the same dropout masks
    shutil.copytree(out, resumed)
    shutil.rmtree(resumed / "checkpoints" / "6")
    shutil.rmtree(resumed / "final")
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("".join(line + "\n" for line in lines[:3]))
    assert GemmaLM.from_pretrained(resumed).params["layers_0"]["ffw"]["down"].dtype == np.float32  # from step 3
    run(shards, config, resumed, resume=True)
    assert losses(resumed) == steps
    for ours, theirs in zip(jax.tree.leaves(GemmaLM.from_pretrained(resumed).params), jax.tree.leaves(merged),
                            strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
