from dataclasses import dataclass, field
from typing import Literal

import pytest

from gemmaflow.core.configio import ConfigError, fingerprint, from_dict, load_yaml, to_dict
from gemmaflow.pipeline.config import CurateConfig, load_curate_config


@dataclass(frozen=True)
class Inner:
    threshold: float = 0.5
    names: tuple[str, ...] = ("a",)
    mode: Literal["x", "y"] = "x"


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    count: int = 1
    label: str | None = None


def test_partial_dict_takes_defaults_and_converts():
    cfg = from_dict(Outer, {"inner": {"threshold": 1, "names": ["p", "q"]}})
    assert cfg == Outer(Inner(1.0, ("p", "q")), 1, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inner": {"treshold": 1}}, "unknown key inner.treshold"),
        ({"cuont": 1}, "unknown key cuont"),
        ({"count": "3"}, "count: expected an integer"),
        ({"count": True}, "count: expected an integer"),
        ({"inner": {"mode": "z"}}, "inner.mode: must be one of"),
        ({"inner": {"names": "abc"}}, "inner.names: expected a list"),
        ({"inner": 3}, "inner: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  threshold: 0.9\n")
    cfg = load_yaml(Outer, path, {"count": 4})
    assert cfg.inner.threshold == 0.9 and cfg.count == 4


def test_yaml_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(Outer, bad)


def test_fingerprint_changes_with_config():
    assert fingerprint(Outer()) == fingerprint(Outer())
    assert fingerprint(Outer()) != fingerprint(Outer(count=2))


def test_shipped_curate_yaml_equals_the_defaults():
    """configs/curate.yaml documents the defaults; it must not drift from the dataclasses."""
    from pathlib import Path

    shipped = load_curate_config(Path(__file__).parents[2] / "configs" / "curate.yaml")
    assert to_dict(shipped) == to_dict(CurateConfig())


def test_curate_config_validation():
    with pytest.raises(ConfigError, match="min_score"):
        from_dict(CurateConfig, {"language": {"min_score": 2}})
    with pytest.raises(ConfigError, match="unknown key heuristics"):
        from_dict(CurateConfig, {"heuristics": {"gopher_qualty": {}}})


def test_strict_web_profile_loads_with_published_thresholds():
    from pathlib import Path

    strict = load_curate_config(Path(__file__).parents[2] / "configs" / "curate-web-strict.yaml")
    assert strict.heuristics.gopher_repetition.max_dup_line_fraction == 0.30
    assert strict.heuristics.fineweb.max_short_line_fraction == 0.67
    assert strict.language == CurateConfig().language  # untouched sections keep the defaults
