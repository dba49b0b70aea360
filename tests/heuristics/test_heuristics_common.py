"""Universal pre-checks: empty and mis-decoded text."""

from __future__ import annotations

import pytest

from gemmaflow.pipeline.heuristics import common
from gemmaflow.pipeline.heuristics.config import CommonConfig
from gemmaflow.pipeline.heuristics.text_stats import TextStats

DEFAULT = CommonConfig()


def run(text: str, cfg: CommonConfig = DEFAULT) -> tuple[str | None, dict[str, float]]:
    signals: dict[str, float] = {}
    return common.check(TextStats(text), cfg, signals), signals


@pytest.mark.parametrize("text", ["", " ", "\n\t \n"])
def test_empty_or_whitespace_is_dropped(text):
    assert run(text)[0] == "empty"


def test_replacement_fraction_just_inside_and_just_outside_the_limit():
    inside, signals = run("a" * 998 + "\ufffd" * 2)  # 2 / 1000 = 0.002, the default limit
    assert inside is None
    assert signals["common.replacement_char_fraction"] == pytest.approx(0.002)
    assert run("a" * 997 + "\ufffd" * 3)[0] == "too_many_replacement_chars"


def test_utf8_read_as_latin1_counts_as_replacement():
    assert common.misdecoded_count("cafÃ© donâ€™t") == 2  # "Ã©" and "â€" (then "™" is not a lead)
    assert run("Ã©" * 10 + "x" * 90)[0] == "too_many_replacement_chars"


def test_correctly_decoded_accents_and_quotes_are_not_counted():
    assert common.misdecoded_count("café naïve — don’t «ça» Größe ½") == 0
    assert common.misdecoded_count("plain ascii") == 0


def test_limit_is_configurable():
    assert run("a" * 90 + "\ufffd" * 10, CommonConfig(max_replacement_char_fraction=0.1))[0] is None
