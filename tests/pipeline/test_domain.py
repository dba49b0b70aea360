import pytest

from gemmaflow.pipeline.config import DomainConfig
from gemmaflow.pipeline.domain import code_line_fraction, detect_domain, latex_densities

CFG = DomainConfig()
PROSE = "The river flows through the old town, and people walk along its banks in the evening. " * 5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/python/cpython/blob/v3.11.7/Lib/heapq.py?print=1", "code"),
        ("file:///usr/include/stdio.h", "code"),
        ("https://example.org/paper.tex#sec2", "math"),
        ("https://example.org/page.php", "web"),
        ("https://example.org/page.html", "web"),
        (None, "web"),
    ],
)
def test_extension_rules(url, expected):
    assert detect_domain(PROSE, url, None, CFG)[0] == expected


def test_source_extension_counts_too():
    assert detect_domain(PROSE, None, "repo/src/main.rs", CFG) == ("code", "extension")


def test_shebang_is_code():
    assert detect_domain("#!/bin/sh\necho hello\n", None, None, CFG) == ("code", "content")


def test_latex_density_is_math():
    text = r"\begin{theorem} Let $x^2 = y$. Then \frac{a}{b} \leq \sqrt{c}. \end{theorem}"
    assert detect_domain(text, None, None, CFG) == ("math", "content")


def test_shell_dollar_signs_are_not_math():
    text = "Run the command:\n$ ls -l $HOME\n$ echo $PATH\nThe output lists your files and the search path.\n" * 3
    assert detect_domain(text, None, None, CFG)[0] != "math"


def test_string_escapes_are_not_latex():
    assert latex_densities(r"printf('\x1b[0m\u00e9\n')")[0] == 0.0


def test_code_line_fraction_threshold():
    code = "int main(void) {\n    int x = 1;\n    return x;\n}\n"
    assert code_line_fraction(code) == 1.0
    assert detect_domain(code, None, None, CFG) == ("code", "content")
    assert code_line_fraction(PROSE) == 0.0
    assert code_line_fraction("") == 0.0


def test_keyword_must_be_followed_by_whitespace():
    # "enum.Enum" starts with a C keyword but is a heading in prose, not a declaration.
    assert code_line_fraction("enum.Enum is the base class.\nenum.auto makes values.\n") == 0.0
    assert code_line_fraction("enum color { RED, GREEN };\n") == 1.0
