"""Cheap domain labelling (web, code or math) for records that carry no `domain`.

The rules, in order (the first that decides wins):
1. the record's own `domain` field (when `trust_record_domain`);
2. the file extension of `url` or `source` (`.py` -> code, `.tex` -> math; `.html`, `.php` decide nothing);
3. a `#!` shebang on the first line -> code;
4. LaTeX density: commands (`\\section`, `\\frac`) per word, or math markup (`$`, `\\[`, `\\begin{equation}`)
   per word, above the configured minimums -> math;
5. code-line fraction: the share of non-blank lines that look like code (end in `;`, `{`, `}`, `:` after
   a keyword, start with `#include`, `def `, `import `...) above the minimum -> code;
6. otherwise web.
The classify stage (pipeline/classify.py) backs these rules with the shipped fastText domain model.
"""

from __future__ import annotations

import re
from typing import Literal

from gemmaflow.core.domains import Domain
from gemmaflow.pipeline.config import DomainConfig

Method = Literal["record", "extension", "content"]

_EXTENSION = re.compile(r"\.([A-Za-z0-9_+-]{1,8})$")
# Two or more letters, not a string escape such as \\x1b or \\u00e9 that code and shell docs are full of.
_LATEX_COMMAND = re.compile(r"\\(?!x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})[A-Za-z]{2,}")
# Inline math with an operator inside ($x^2$, $a_i = b$), display math, or math environments; a bare `$`
# is a shell prompt or a variable far more often than math.
_MATH_MARKUP = re.compile(
    r"\$[^$\n]{0,80}?[\\^_=][^$\n]{0,80}?\$|\\[\[\(]|\\begin\{(?:equation|align|eqnarray|gather|multline|math)"
)
_CODE_LINE = re.compile(
    r"""^\s*(?:
        \#\s*(?:include|define|ifn?def|endif|if|else|pragma|undef)\b
      | (?:def|class|import|from|return|elif|except|async\s+def|yield|raise|assert)(?=\s)
      | (?:public|private|protected|static|const|struct|typedef|enum|namespace|template|extern|void|int|char)(?=[\s<*&])
      | (?:fi|done|esac|then|local|export)(?:\s|$)
      | [{}()\]]\s*[;,]?\s*$
    )
    | (?:[;{}]|\)\s*:|\):\s*\#.*|=>|->)\s*$
    """,
    re.VERBOSE,
)
_CONTENT_SAMPLE_CHARS = 20_000


def _extension(path: str | None) -> str | None:
    if not path:
        return None
    path = path.split("#", 1)[0].split("?", 1)[0].rstrip("/")
    match = _EXTENSION.search(path.rsplit("/", 1)[-1])
    return match.group(1).lower() if match else None


def code_line_fraction(text: str) -> float:
    """Share of non-blank lines that look like source code."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return 0.0
    return sum(1 for line in lines if _CODE_LINE.search(line)) / len(lines)


def latex_densities(text: str) -> tuple[float, float]:
    """(LaTeX commands per word, math markers per word)."""
    words = len(text.split())
    if words == 0:
        return 0.0, 0.0
    return len(_LATEX_COMMAND.findall(text)) / words, len(_MATH_MARKUP.findall(text)) / words


def detect_domain(text: str, url: str | None, source: str | None, config: DomainConfig) -> tuple[Domain, Method]:
    """Label a document without a trusted `domain` field; see the module docstring for the rules."""
    for path in (url, source):
        ext = _extension(path)
        if ext in config.code_extensions:
            return "code", "extension"
        if ext in config.math_extensions:
            return "math", "extension"
    sample = text[:_CONTENT_SAMPLE_CHARS]
    if sample.startswith("#!"):
        return "code", "content"
    command_density, markup_density = latex_densities(sample)
    if command_density >= config.min_latex_command_density or markup_density >= config.min_math_markup_density:
        return "math", "content"
    if code_line_fraction(sample) >= config.min_code_line_fraction:
        return "code", "content"
    return "web", "content"
