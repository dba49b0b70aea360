import dataclasses

import pytest

from gemmaflow.model.config import GEMMA_VOCAB_SIZE, DType, gemma_2b, gemma_7b, preset, tiny


def test_gemma_presets_match_the_released_models():
    two, seven = gemma_2b(), gemma_7b()
    assert (two.vocab_size, two.d_model, two.num_layers, two.num_heads, two.num_kv_heads, two.head_dim,
            two.ffw_dim) == (GEMMA_VOCAB_SIZE, 2048, 18, 8, 1, 256, 16_384)
    assert (seven.d_model, seven.num_layers, seven.num_heads, seven.num_kv_heads, seven.head_dim,
            seven.ffw_dim) == (3072, 28, 16, 16, 256, 24_576)
    assert two.max_seq_len == seven.max_seq_len == 8192
    assert (two.rope_base, two.norm_eps) == (10_000.0, 1e-6)


def test_vocab_size_and_dtypes_come_from_the_caller():
    config = preset("gemma_2b", vocab_size=32_000, dtype=DType.BFLOAT16)
    assert config.vocab_size == 32_000 and config.dtype.jnp.name == "bfloat16"
    assert config.param_dtype is DType.FLOAT32


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny().d_model = 128  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_kv_heads": 3}, "multiple of num_kv_heads"),
        ({"head_dim": 15}, "even"),
        ({"d_model": 0}, "d_model must be a positive integer"),
        ({"vocab_size": 1.5}, "vocab_size must be a positive integer"),
        ({"norm_eps": 0.0}, "norm_eps > 0"),
        ({"query_block": 0}, "query_block must be a positive integer"),
        ({"dtype": "bfloat16"}, "dtype must be a DType"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="num_kv_head"):
        preset("tiny", num_kv_head=2)


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="gemma_2b"):
        preset("gemma_3b")
