"""The configuration contract: frozen, typed for the YAML loader, published defaults where not measured."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from gemmaflow.pipeline.heuristics.config import (
    GopherQualityConfig,
    GopherRepetitionConfig,
    HeuristicsConfig,
    MathRepetitionConfig,
)

LOADABLE = (bool, int, float, str)


def _leaf_configs(config: object) -> list[object]:
    nested = [getattr(config, f.name) for f in dataclasses.fields(config)]
    children = [c for c in nested if dataclasses.is_dataclass(c)]
    return [config] + [leaf for child in children for leaf in _leaf_configs(child)]


def test_every_field_is_a_primitive_a_tuple_of_primitives_or_a_nested_config():
    for config in _leaf_configs(HeuristicsConfig()):
        for name, hint in typing.get_type_hints(type(config)).items():
            if typing.get_origin(hint) is tuple:
                assert typing.get_args(hint)[0] in LOADABLE, (type(config).__name__, name)
            else:
                assert hint in LOADABLE or dataclasses.is_dataclass(hint), (type(config).__name__, name)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HeuristicsConfig().c4.enabled = False  # type: ignore[misc]


def test_every_rule_set_has_an_enabled_switch_on_by_default():
    rule_sets = _leaf_configs(HeuristicsConfig())[1:]
    assert len(rule_sets) == 8  # common, repetition, quality, c4, fineweb, code, math, math.repetition
    assert all(rule_set.enabled is True for rule_set in rule_sets)


def test_guide_defaults_kept_where_they_do_not_hurt_technical_text():
    config = HeuristicsConfig()
    assert config.gopher_quality.min_stop_words == 2
    assert config.gopher_quality.max_bullet_line_fraction == 0.9
    assert config.gopher_quality.max_ellipsis_line_fraction == 0.3
    assert config.gopher_repetition.top_ngram_max_fractions[0] == 0.20
    assert config.c4.max_word_length == 1000
    assert config.code.max_line_length == 1000 and config.code.min_alnum_fraction == 0.25


def test_documented_deviations_for_technical_text():
    config = HeuristicsConfig()
    assert config.c4.drop_curly_bracket is False  # braces are normal in technical documentation
    assert config.c4.remove_unterminated_lines is False and config.c4.min_words_per_line == 0


def test_math_repetition_is_looser_than_web_but_keeps_the_rule_shape():
    web, math = GopherRepetitionConfig(), MathRepetitionConfig()
    assert isinstance(HeuristicsConfig().math.repetition, MathRepetitionConfig)
    assert all(m > w for m, w in zip(math.top_ngram_max_fractions, web.top_ngram_max_fractions, strict=True))
    assert len(math.dup_ngram_max_fractions) == len(web.dup_ngram_max_fractions)


@pytest.mark.parametrize(
    "build",
    [
        lambda: GopherRepetitionConfig(top_ngram_min_n=0),
        lambda: GopherQualityConfig(min_words=10, max_words=5),
        lambda: GopherQualityConfig(min_mean_word_length=12.0, max_mean_word_length=10.0),
    ],
)
def test_inconsistent_limits_are_refused_when_the_config_is_built(build):
    with pytest.raises(ValueError):
        build()
