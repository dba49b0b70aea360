from pathlib import Path

import pytest

from gemmaflow.core.configio import ConfigError
from gemmaflow.model.config import DType
from gemmaflow.model.train_config import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_the_shipped_cpu_config_loads_and_spells_out_every_section():
    config = load_train_config(CONFIGS / "train-tiny.yaml")
    assert config.model.preset == "tiny" and config.steps == 300
    model = config.model.build(vocab_size=8192, seq_len=512)
    assert model.vocab_size == 8192 and model.max_seq_len == 512 and model.param_dtype is DType.FLOAT32


def test_bfloat16_compute_keeps_float32_master_weights():
    model = load_train_config(None, {"model.compute_dtype": "bfloat16"}).model.build(100, 64)
    assert model.dtype is DType.BFLOAT16 and model.param_dtype is DType.FLOAT32


@pytest.mark.parametrize(("overrides", "message"), [
    ({"optimizer.learning_rat": 1.0}, "unknown key optimizer.learning_rat"),
    ({"batch_size": 6, "grad_accum_steps": 4}, "multiple of grad_accum_steps"),
    ({"lora.targets": ["attention"]}, "targets must be"),
    ({"model.preset": "huge"}, "unknown preset"),
    ({"kind": "chat"}, "kind"),
    ({"peak_tflops": -1.0}, "peak_tflops"),
])
def test_bad_configs_fail_naming_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, overrides)


def test_micro_batch_size():
    assert TrainConfig(batch_size=8, grad_accum_steps=4).micro_batch_size == 2


def test_the_mfu_peak_is_automatic_unless_given():
    assert TrainConfig().peak_tflops is None
    assert load_train_config(None, {"peak_tflops": 0}).peak_tflops == 0.0  # 0, like null: from the devices
    assert load_train_config(None, {"peak_tflops": 989.5}).peak_tflops == 989.5


def test_qlora_keys_load_and_bad_values_fail_before_any_work():
    config = load_train_config(CONFIGS / "train-tiny.yaml", {"lora.enabled": True, "lora.quantize": "nf4",
                                                              "lora.dropout": 0.05, "lora.dtype": "bfloat16"})
    assert config.lora.quantize == "nf4" and config.lora.double_quant and config.lora.dropout == 0.05
    with pytest.raises(ConfigError, match="quantize"):
        load_train_config(None, {"lora.enabled": True, "lora.quantize": "nf3"})
