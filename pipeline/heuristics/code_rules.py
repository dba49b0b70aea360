"""Source-code rules after The Stack / StarCoder practice: minified, generated and data files.

(Named ``code_rules`` rather than ``code`` so it never shadows the standard library's ``code``.)
"""

from __future__ import annotations

import re

from gemmaflow.pipeline.heuristics.config import CodeConfig
from gemmaflow.pipeline.heuristics.signals import Signals, exceeds, falls_short
from gemmaflow.pipeline.heuristics.text_stats import TextStats, ratio

NAME = "code"

_NOT_ALNUM = re.compile(r"[\W_]+")
# A line that is only data: numbers / hex literals separated by commas, spaces or brackets, or one
# unbroken base64 run. Possessive quantifiers keep the match linear on long numeric lines.
_DATA_LINE = re.compile(
    r"^[ \t,;{}()\[\]]*+(?:(?:0[xX][0-9a-fA-F]++|[-+]?\.?\d[\w.+-]*+)[ \t,;{}()\[\]]*+)++$"
    r"|^[ \t]*+[A-Za-z0-9+/]{40,}+={0,2}[ \t]*$",
    re.MULTILINE,
)


def check(stats: TextStats, cfg: CodeConfig, signals: Signals) -> str | None:
    """Drop reason (without the ``code.`` prefix) or None to keep."""
    text = stats.text
    line_lengths = list(map(len, stats.raw_lines))
    if exceeds(signals, f"{NAME}.max_line_length", max(line_lengths), cfg.max_line_length):
        return "line_too_long"
    mean_length = ratio(sum(line_lengths), len(line_lengths))
    if exceeds(signals, f"{NAME}.mean_line_length", mean_length, cfg.max_mean_line_length):
        return "mean_line_too_long"
    alnum_fraction = ratio(len(_NOT_ALNUM.sub("", text)), len(text))
    if falls_short(signals, f"{NAME}.alnum_fraction", alnum_fraction, cfg.min_alnum_fraction):
        return "too_few_alnum_chars"
    header = "\n".join(stats.raw_lines[: cfg.autogen_header_lines]).lower()
    if any(marker in header for marker in cfg.autogen_markers):
        return "auto_generated"
    data_fraction = ratio(len(_DATA_LINE.findall(text)), len(stats.lines))
    if exceeds(signals, f"{NAME}.data_line_fraction", data_fraction, cfg.max_data_line_fraction):
        return "data_dump"
    return None
