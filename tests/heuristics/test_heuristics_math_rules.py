"""Lenient math rules."""

from __future__ import annotations

from gemmaflow.pipeline.heuristics import math_rules
from gemmaflow.pipeline.heuristics.config import MathConfig
from gemmaflow.pipeline.heuristics.text_stats import TextStats


def run(text: str) -> str | None:
    return math_rules.check(TextStats(text), MathConfig(), {})


def test_minimum_words():
    assert run("$a^2 + b^2 = c^2$ holds for every right triangle with legs a, b") is None  # 13 words
    assert run("$a^2 + b^2 = c^2$ holds") == "too_few_words"


def test_maximum_line_length():
    formula = "$" + "x+" * 4998 + "yz$"  # 10,000 characters
    assert run(formula + "\nwhere x and y are real numbers and the sum is finite") is None
    assert run(formula + "z\nwhere x and y are real numbers and the sum is finite") == "line_too_long"
