"""Pack and SFT configuration: shipped YAML equals the defaults, bad keys and values fail by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmaflow.core.configio import ConfigError, from_dict
from gemmaflow.pipeline.pack_config import PackConfig, SftConfig, load_pack_config, load_sft_config

CONFIGS = Path(__file__).parents[2] / "configs"


def test_shipped_yaml_equals_the_defaults():
    assert load_pack_config(CONFIGS / "pack.yaml") == PackConfig()
    assert load_sft_config(CONFIGS / "sft.yaml") == SftConfig()


def test_bad_keys_and_values_are_named():
    with pytest.raises(ConfigError, match=r"unknown key packing\.seqlen"):
        from_dict(PackConfig, {"packing": {"seqlen": 10}})
    with pytest.raises(ConfigError, match="validation_fraction"):
        from_dict(PackConfig, {"packing": {"validation_fraction": 1.5}})
    with pytest.raises(ConfigError, match="weights"):
        from_dict(PackConfig, {"mixture": {"weights": {"web": 0.0}}})
    assert from_dict(PackConfig, {"mixture": {"weights": {"web": 3, "code": 1}}}).mixture.normalised() == {
        "code": 0.25, "web": 0.75}
