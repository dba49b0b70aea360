"""C4 page rules, line removal and the edited-page rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gemmaflow.pipeline.heuristics import c4
from gemmaflow.pipeline.heuristics.config import C4Config
from gemmaflow.pipeline.heuristics.text_stats import TextStats

DEFAULT = C4Config()


def page(text: str, cfg: C4Config = DEFAULT) -> str | None:
    return c4.check_page(TextStats(text), cfg, {})


def edit(text: str, cfg: C4Config = DEFAULT) -> tuple[c4.LineEdit, str | None, dict[str, float]]:
    """Line removal, then the edited-page rules, as ``apply_heuristics`` runs them."""
    stats = TextStats(text)
    result = c4.remove_lines(stats, cfg)
    signals: dict[str, float] = {}
    return result, c4.check_edited(stats, result.stats, cfg, signals), signals


def test_lorem_ipsum_drops_the_page_unless_disabled():
    assert page("Intro.\nLorem Ipsum dolor sit amet.") == "lorem_ipsum"
    assert page("Lorem ipsum dolor.", replace(DEFAULT, drop_lorem_ipsum=False)) is None


def test_curly_bracket_rule_is_off_by_default_for_technical_text():
    code_sample = "Call it like this: int main(void) { return 0; }"
    assert page(code_sample) is None
    assert page(code_sample, replace(DEFAULT, drop_curly_bracket=True)) == "curly_bracket"


def test_word_length_limit():
    signals: dict[str, float] = {}
    assert c4.check_page(TextStats("ok " + "x" * 1000), DEFAULT, signals) is None
    assert signals["c4.max_word_length"] == 1000
    assert page("ok " + "x" * 1001) == "word_too_long"


def test_javascript_and_policy_lines_are_removed_and_counted(prose):
    text = "\n".join(
        [
            "Please enable JavaScript to view this site.",
            prose(80),
            "",
            "Read our Privacy Policy and Terms of Use.",
            "This website uses cookies.",
        ]
    )
    result, reason, signals = edit(text)
    assert result.lines_removed == 3
    assert result.stats.text == prose(80) + "\n"  # the blank line stays
    assert reason is None and signals["c4.boilerplate_word_fraction"] == pytest.approx(19 / 99)


def test_line_rules_can_be_disabled():
    text = "JavaScript is required.\nSee the privacy policy."
    cfg = replace(DEFAULT, remove_javascript_lines=False, remove_boilerplate_lines=False)
    assert c4.remove_lines(TextStats(text), cfg).lines_removed == 0
    cfg = replace(DEFAULT, remove_boilerplate_lines=False)
    assert c4.remove_lines(TextStats(text), cfg).lines_removed == 1


def test_nothing_to_remove_returns_the_same_stats_object(prose):
    stats = TextStats(prose(40))
    result = c4.remove_lines(stats, DEFAULT)
    assert result.stats is stats and result.lines_removed == 0


def test_page_that_was_mostly_boilerplate_is_dropped(words):
    article = " ".join(words(70))  # 70 words kept; 30 of 100 removed is the limit
    banner = "Accept all cookies " + " ".join(["now"] * 27)  # a 30-word boilerplate line
    assert edit(article + "\n" + banner)[1] is None
    banner = "Accept all cookies " + " ".join(["now"] * 28)  # 31 of 101 words removed
    assert edit(article + "\n" + banner)[1] == "too_much_boilerplate"


def test_page_with_only_boilerplate_has_no_lines_left():
    result, reason, _ = edit("© 2024 Example Inc. All rights reserved.\n\nSkip to main content\n")
    assert (result.lines_removed, reason) == (2, "no_lines_left")


def test_sentence_minimum_when_enabled():
    cfg = replace(DEFAULT, min_sentences=3)
    assert edit("One. Two! Three?", cfg)[1] is None
    _, reason, signals = edit("One. Two and e.g.three", cfg)  # a stop must be followed by whitespace
    assert reason == "too_few_sentences" and signals["c4.sentence_count"] == 1


def test_sentence_count_is_skipped_when_disabled():
    assert "c4.sentence_count" not in edit("no sentence here")[2]


def test_unterminated_and_short_line_removal_when_enabled():
    text = "A heading\nThis line is a full sentence.\nToo short.\n"
    assert edit(text, replace(DEFAULT, remove_unterminated_lines=True))[0].lines_removed == 1
    assert edit(text, replace(DEFAULT, min_words_per_line=3))[0].lines_removed == 2
