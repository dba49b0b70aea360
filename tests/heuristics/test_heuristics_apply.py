"""apply_heuristics: domain routing, rule order, reason names, signals and line edits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gemmaflow.core.domains import DOMAINS
from gemmaflow.pipeline.heuristics import HeuristicResult, HeuristicsConfig, apply_heuristics
from gemmaflow.pipeline.heuristics.config import C4Config, CodeConfig, CommonConfig, GopherQualityConfig

CONFIG = HeuristicsConfig()
RULE_SETS = ("common", "gopher_repetition", "gopher_quality", "c4", "fineweb", "code", "math")

LATEX = r"""\begin{align}
\int_0^\infty e^{-x^2}\,dx &= \frac{\sqrt{\pi}}{2} \\
\sum_{n=1}^{\infty} \frac{1}{n^2} &= \frac{\pi^2}{6} \\
\nabla \cdot \mathbf{E} &= \frac{\rho}{\varepsilon_0} \\
\hat{f}(\xi) &= \int_{-\infty}^{\infty} f(x)\, e^{-2\pi i x \xi}\,dx \\
\det(A - \lambda I) &= 0, \quad \lambda \in \mathbb{C}
\end{align}"""

CODE = "\n".join(
    [
        "#include <stdio.h>",
        "static int table[] = {1, 2, 3};",
        "int main(void) {",
        '    for (int i = 0; i < 3; i++) printf("%d\\n", table[i]);',
        "    return 0;",
        "}",
    ]
)


def test_good_prose_is_kept_with_every_prose_signal(prose):
    text = prose(60)
    result = apply_heuristics(text, "web", CONFIG)
    assert result == HeuristicResult(text, None, result.signals, 0)
    assert result.text is text  # unchanged text is the same object
    assert {name.split(".")[0] for name in result.signals} == {
        "common",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb",
    }
    assert all(type(value) is float for value in result.signals.values())


def test_formula_dense_latex_is_kept_as_math_but_not_as_prose():
    assert apply_heuristics(LATEX, "math", CONFIG).drop_reason is None
    assert apply_heuristics(LATEX, "web", CONFIG).drop_reason == "gopher_quality.too_few_words"


def test_code_rules_apply_to_code_only():
    long_line = CODE + '\nstatic const char *blob = "' + "A" * 1000 + '";'
    assert apply_heuristics(long_line, "code", CONFIG).drop_reason == "code.line_too_long"
    assert apply_heuristics(long_line, "web", CONFIG).drop_reason == "gopher_quality.too_few_words"
    assert apply_heuristics(long_line, "math", CONFIG).drop_reason is None  # math allows 10,000


def test_prose_rules_are_not_applied_to_code():
    result = apply_heuristics(CODE, "code", CONFIG)  # 30 words, no stop words, braces
    assert result.drop_reason is None
    assert {name.split(".")[0] for name in result.signals} == {"common", "code"}
    assert apply_heuristics(CODE, "web", CONFIG).drop_reason == "gopher_quality.too_few_words"


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("text", ["", "   \n", "word", "x\n"])
def test_empty_and_one_word_documents_never_crash(domain, text):
    result = apply_heuristics(text, domain, CONFIG)
    if not text.strip():
        assert result.drop_reason == "common.empty"
    assert result.drop_reason is None or result.drop_reason.split(".")[0] in RULE_SETS


def test_first_failing_rule_set_wins_and_keeps_earlier_signals(prose):
    text = "Buy now! " * 100  # repetitive and without stop words
    result = apply_heuristics(text, "web", CONFIG)
    assert result.drop_reason == "gopher_repetition.top_2gram_too_frequent"
    assert "gopher_repetition.top_2gram_char_fraction" in result.signals
    assert not any(name.startswith(("gopher_quality.", "c4.", "fineweb.")) for name in result.signals)


def test_disabled_rule_sets_are_skipped():
    text = "Buy now! " * 100
    config = replace(CONFIG, gopher_repetition=replace(CONFIG.gopher_repetition, enabled=False))
    assert apply_heuristics(text, "web", config).drop_reason == "gopher_quality.too_few_stop_words"
    off = HeuristicsConfig(
        common=CommonConfig(enabled=False),
        gopher_repetition=replace(CONFIG.gopher_repetition, enabled=False),
        gopher_quality=GopherQualityConfig(enabled=False),
        c4=C4Config(enabled=False),
        fineweb=replace(CONFIG.fineweb, enabled=False),
        code=CodeConfig(enabled=False),
        math=replace(CONFIG.math, enabled=False),
    )
    for domain in DOMAINS:
        assert apply_heuristics("", domain, off) == HeuristicResult("", None, {}, 0)


def test_c4_line_removal_edits_the_text_and_counts_lines(prose):
    body = prose(80)
    text = "Skip to main content\n" + body + "\nPowered by WordPress"
    result = apply_heuristics(text, "web", CONFIG)
    assert (result.drop_reason, result.text, result.lines_removed) == (None, body, 2)


BOILERPLATE_PAGE = """Read our privacy policy before you sign up for the offer today.
By continuing you accept the terms of use of this website and its partners.
This website uses cookies to improve the experience of every visitor here.
Cookie policy: we store small files on your device for analytics purposes.
Copyright 2024 Example Incorporated. All rights reserved worldwide and online.
Subscribe to our newsletter to get weekly updates delivered to your inbox."""


def test_page_left_empty_by_line_removal_is_dropped_with_its_count():
    result = apply_heuristics(BOILERPLATE_PAGE, "web", CONFIG)
    assert (result.drop_reason, result.lines_removed) == ("c4.no_lines_left", 6)


def test_mojibake_is_dropped_in_every_domain():
    text = "The rÃ©sumÃ© of the cafÃ© was donâ€™t " * 20
    for domain in DOMAINS:
        assert apply_heuristics(text, domain, CONFIG).drop_reason == "common.too_many_replacement_chars"


def test_unknown_domain_is_refused():
    with pytest.raises(ValueError, match="unknown domain 'prose'"):
        apply_heuristics("text", "prose", CONFIG)
