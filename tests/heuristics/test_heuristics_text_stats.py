"""TextStats views and the zero-guarded ratio every rule divides with."""

from __future__ import annotations

from gemmaflow.pipeline.heuristics.text_stats import TextStats, duplicate_stats, ratio


def test_ratio_guards_zero_denominator():
    assert ratio(3, 0) == 0.0
    assert ratio(1, 4) == 0.25


def test_lines_drop_blank_lines_and_trailing_space_but_keep_indentation():
    stats = TextStats("first  \n\n   \t\n  second\n")
    assert stats.lines == ["first", "  second"]
    assert stats.raw_lines == ["first  ", "", "   \t", "  second", ""]


def test_paragraphs_split_on_blank_lines_even_with_whitespace():
    assert TextStats("one\ntwo\n\n\nthree\n \t\nfour").paragraphs == ["one\ntwo", "three", "four"]
    assert TextStats("   ").paragraphs == []


def test_prose_lines_are_the_lines_ending_in_terminal_punctuation():
    stats = TextStats("A heading\nA sentence.\nA question?\nkey = value\nHe said 'go'")
    assert stats.prose_lines == ["A sentence.", "A question?", "He said 'go'"]


def test_duplicate_stats_count_repeats_after_the_first_occurrence():
    assert duplicate_stats(["ab", "c", "ab", "ab", "c"]) == (3, 5)
    assert duplicate_stats(["x", "y"]) == (0, 0)
    assert duplicate_stats([]) == (0, 0)


def test_word_views_on_empty_text():
    stats = TextStats("")
    assert stats.words == [] and stats.word_chars == 0 and stats.line_duplicates == (0, 0)
