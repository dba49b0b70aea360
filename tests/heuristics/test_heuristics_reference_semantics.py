"""The datatrove-compatible options of the strict web profile, each against a hand-derived value.

Expected values follow from the published definitions (Gopher, Rae et al., 2021; C4 / TFDS
``c4_utils``; mC4, Xue et al., 2021; FineWeb, Penedo et al., 2024) as datatrove implements them;
each test also shows the default giving a different answer, so it fails if the option is ignored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gemmaflow.pipeline.config import load_curate_config
from gemmaflow.pipeline.heuristics import apply_heuristics, c4, fineweb, gopher_quality, gopher_repetition
from gemmaflow.pipeline.heuristics.config import (
    C4Config,
    FineWebConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    HeuristicsConfig,
)
from gemmaflow.pipeline.heuristics.gopher_repetition import WordNgrams
from gemmaflow.pipeline.heuristics.text_stats import TextStats
from gemmaflow.pipeline.heuristics.words import spacy_sentence_count, words

STRICT = load_curate_config(Path(__file__).parents[2] / "configs" / "curate-web-strict.yaml").heuristics
NEVER = 1e9
_SEGMENT_LIMITS = (
    "max_dup_line_fraction",
    "max_dup_para_fraction",
    "max_dup_line_char_fraction",
    "max_dup_para_char_fraction",
)
LOOSE_REPETITION = GopherRepetitionConfig(
    top_ngram_max_fractions=(NEVER,) * 3, dup_ngram_max_fractions=(NEVER,) * 6, **dict.fromkeys(_SEGMENT_LIMITS, NEVER)
)
LOOSE_QUALITY = GopherQualityConfig(
    min_words=0,
    min_mean_word_length=0.0,
    max_mean_word_length=NEVER,
    max_symbol_word_ratio=NEVER,
    max_url_word_ratio=NEVER,
    max_bullet_line_fraction=NEVER,
    max_ellipsis_line_fraction=NEVER,
    min_alpha_word_fraction=0.0,
    min_stop_words=0,
    min_prose_stop_word_fraction=0.0,
)


def quality_signals(text: str, **options: object) -> dict[str, float]:
    signals: dict[str, float] = {}
    assert gopher_quality.check(TextStats(text), replace(LOOSE_QUALITY, **options), signals) is None
    return signals


def repetition(text: str, **options: object) -> tuple[str | None, dict[str, float]]:
    signals: dict[str, float] = {}
    cfg = replace(LOOSE_REPETITION, **options)
    return gopher_repetition.check(TextStats(text), cfg, signals), signals


# --- tokenisation -------------------------------------------------------------------------------


def test_spacy_tokens_split_punctuation_from_words():
    assert words("Frank, said: Frank.", "whitespace") == ["Frank,", "said:", "Frank."]
    assert words("Frank, said: Frank.", "spacy_en") == ("Frank", ",", "said", ":", "Frank", ".")
    assert words("a\n\n b\t c", "spacy_en") == ("a", "b", "c")  # whitespace tokens are dropped


def test_punctuation_glued_to_words_hides_repetition_from_whitespace_tokens():
    text = "Frank, Frank. Frank! Frank?"  # spaCy: Frank , Frank . Frank ! Frank ?
    top_1gram = {"top_ngram_min_n": 1, "top_ngram_max_fractions": (NEVER,)}
    _, whitespace = repetition(text, **top_1gram)
    _, spacy = repetition(text, word_tokenizer="spacy_en", **top_1gram)
    assert whitespace["gopher_repetition.top_1gram_char_fraction"] == 0.0  # four different words
    # "Frank" 4 times (20 characters) over the 24 characters of the eight tokens
    assert spacy["gopher_repetition.top_1gram_char_fraction"] == pytest.approx(20 / 24)


def test_gopher_quality_word_count_leaves_out_punctuation_tokens():
    text = "Hello - world ... and “quotes” x"
    signals = quality_signals(text, word_tokenizer="spacy_en", count_punctuation_words=False)
    # tokens: Hello - world ... and “ quotes ” x -> 5 words of 20 characters; the ratios use all 9 tokens
    assert signals["gopher_quality.word_count"] == 5
    assert signals["gopher_quality.mean_word_length"] == pytest.approx(20 / 5)
    assert signals["gopher_quality.ellipsis_word_ratio"] == pytest.approx(1 / 9)
    assert quality_signals(text, word_tokenizer="spacy_en")["gopher_quality.word_count"] == 9


# --- n-gram ties, counting and denominator --------------------------------------------------------

TIED = "a b a b xxxx yyyy xxxx yyyy"  # "a b" and "xxxx yyyy" both twice; 20 word chars, 27 chars


@pytest.mark.parametrize(
    ("ties", "counting", "expected_chars"),
    [
        ("longest", "coverage", 2 * 8),  # "xxxx yyyy": 8 word characters, twice
        ("first", "coverage", 2 * 2),  # "a b" occurs first
        ("first", "greedy", 2 * 3),  # "a b" with its space
    ],
)
def test_top_ngram_tie_break(ties, counting, expected_chars):
    assert WordNgrams(TextStats(TIED)).top_chars(2, ties, counting) == expected_chars


@pytest.mark.parametrize(("denominator", "expected"), [("word_chars", 4 / 20), ("text_chars", 4 / 27)])
def test_ngram_denominator(denominator, expected):
    _, signals = repetition(TIED, top_ngram_ties="first", ngram_denominator=denominator)
    assert signals["gopher_repetition.top_2gram_char_fraction"] == pytest.approx(expected)


def test_greedy_top_ngram_counts_even_when_it_occurs_once():
    # datatrove: the only 2-gram "Hello world" (11 characters) once, over the 11 characters of the text
    reason, signals = repetition(
        "Hello world",
        ngram_counting="greedy",
        ngram_denominator="text_chars",
        top_ngram_max_fractions=(0.2, 0.18, 0.16),
    )
    assert signals["gopher_repetition.top_2gram_char_fraction"] == 1.0 and reason == "top_2gram_too_frequent"
    assert repetition("Hello world", top_ngram_max_fractions=(0.2, 0.18, 0.16))[0] is None


def test_greedy_duplicate_scan_jumps_past_a_repeat_and_compares_concatenations():
    ngrams = WordNgrams(TextStats("a b c a b c a b c"))
    # abc, bca, cab are new; abc at 3 repeats (+3, jump to 6); abc at 6 repeats (+3)
    assert ngrams.greedy_dup_chars(3) == 6
    assert ngrams.covered_dup_chars(3) == 9  # the paper: every word is inside a repeated 3-gram
    concatenated = WordNgrams(TextStats("ab c a bc"))
    assert concatenated.greedy_dup_chars(2) == 3  # "ab"+"c" == "a"+"bc"
    assert concatenated.covered_dup_chars(2) == 0


# --- lines, paragraphs and rule order --------------------------------------------------------------


def test_newline_run_segments_compare_lines_verbatim():
    text = "one two \none two\n"
    # non-blank lines without trailing spaces: "one two" twice; datatrove: "one two ", "one two", ""
    assert repetition(text)[1]["gopher_repetition.dup_line_fraction"] == 0.5
    assert repetition(text, segments="newline_runs")[1]["gopher_repetition.dup_line_fraction"] == 0.0


def test_paragraphs_first_decides_the_reason_when_both_rules_fail():
    text = "\n\n".join(["the same paragraph"] * 3 + ["something else"])  # 2 of 4 lines and paragraphs repeat
    limits = {"max_dup_line_fraction": 0.3, "max_dup_para_fraction": 0.3}
    assert repetition(text, **limits)[0] == "too_many_duplicate_lines"
    assert repetition(text, paragraphs_first=True, **limits)[0] == "too_many_duplicate_paragraphs"


def test_gopher_quality_lines_and_stop_words_as_datatrove_counts_them():
    text = "\n".join(["* one", "* two", "", "- three", "The the the"])
    signals = quality_signals(text)
    assert signals["gopher_quality.bullet_line_fraction"] == pytest.approx(3 / 4)  # '*' and '-', non-blank
    assert signals["gopher_quality.stop_word_count"] == 3  # occurrences, case-insensitive
    signals = quality_signals(text, bullets=("•", "-"), line_split="splitlines", stop_word_count="distinct_tokens")
    assert signals["gopher_quality.bullet_line_fraction"] == pytest.approx(1 / 5)  # blank line counted
    assert signals["gopher_quality.stop_word_count"] == 1  # "the" is the only distinct lower-case one


def test_letter_test():
    text = "½ ² word x1"
    # "½" and "²" are word characters that are not decimal digits; they are not letters
    assert quality_signals(text)["gopher_quality.alpha_word_fraction"] == 1.0
    assert quality_signals(text, letter_test="isalpha")["gopher_quality.alpha_word_fraction"] == 0.5


def test_fineweb_keeps_trailing_whitespace_and_uses_sentence_terminals():
    text = 'A line that ends. \n"A quoted line."\nA plain line.'
    signals: dict[str, float] = {}
    fineweb.check(TextStats(text), FineWebConfig(), signals)
    assert signals["fineweb.line_punct_fraction"] == 1.0
    datatrove = FineWebConfig(strip_lines=False, line_end="unicode")
    fineweb.check(TextStats(text), datatrove, signals)
    assert signals["fineweb.line_punct_fraction"] == pytest.approx(1 / 3)  # only "A plain line."


# --- C4 ---------------------------------------------------------------------------------------------

C4_SINGLE_PASS = STRICT.c4


def c4_run(text: str, cfg: C4Config) -> tuple[str | None, str]:
    reason, edit = c4.run(TextStats(text), cfg, {})
    return reason, edit.stats.text


def test_c4_line_removal_as_c4_does_it():
    text = "\n".join(
        [
            "Too short.",  # 2 words
            "No terminal punctuation in this line",
            "This line trails off...",  # an ellipsis is not a sentence end
            "  See the manual [1] for the details.  ",  # kept: stripped, citation deleted
            "Enable JavaScript to view this page.",
            "Read our privacy policy before you start.",
            "",
            "He said it was fine, 'really'",  # closing quote ends a sentence
        ]
    )
    reason, edited = c4_run(text, replace(C4_SINGLE_PASS, min_sentences=0))
    assert reason is None
    assert edited == "See the manual  for the details.\nHe said it was fine, 'really'"


def test_c4_sentences_are_counted_with_spacy_per_kept_line():
    assert spacy_sentence_count("It works, e.g. here and there.") == 1  # the regex counts "g." as an end
    text = "\n".join(["It works, e.g. here and there."] * 4 + ["It rains. It pours. It stops."])
    assert c4_run(text, C4_SINGLE_PASS)[0] is None  # 4 + 3 = 7 sentences
    assert c4_run("\n".join(["It works, e.g. here and there."] * 4), C4_SINGLE_PASS)[0] == "too_few_sentences"
    regex = replace(C4_SINGLE_PASS, sentence_splitter="regex")
    assert c4_run("\n".join(["It works, e.g. here and there."] * 4), regex)[0] is None  # 8 by the regex


def test_curly_bracket_drops_the_page_only_from_a_line_that_survived():
    body = "\n".join(f"This is sentence number {i} of the page." for i in range(5))
    assert c4_run(body + "\nint main(void) {", C4_SINGLE_PASS)[0] is None  # unterminated: removed first
    assert c4_run(body + "\nUse {braces} in the template.", C4_SINGLE_PASS)[0] == "curly_bracket"
    assert c4_run(body + "\nUse {braces} in the template.", C4Config())[0] is None  # off by default


def test_c4_single_pass_reports_the_first_offending_line():
    text = "Put the {value} here, please.\nThis is lorem ipsum dolor text."
    page_first = replace(C4Config(), drop_curly_bracket=True)
    assert c4_run(text, page_first)[0] == "lorem_ipsum"  # page rules in fixed order on the whole page
    assert c4_run(text, replace(page_first, line_pass="single_pass"))[0] == "curly_bracket"


def test_a_long_word_removes_its_line_in_c4s_single_pass():
    text = "A normal sentence is here.\nThe word " + "x" * 1001 + " is long."
    single_pass = replace(C4_SINGLE_PASS, min_sentences=0)
    assert c4_run(text, single_pass) == (None, "A normal sentence is here.")
    assert c4_run(text, replace(single_pass, line_pass="page_then_lines"))[0] == "word_too_long"


# --- mC4 paragraphs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "reason"),
    [((200, 200, 200), None), ((200, 200, 199, 10), "too_few_paragraphs"), ((500, 500), "too_few_paragraphs")],
)
def test_mc4_paragraph_rule(lengths, reason):
    text = "\n".join("p" * n for n in lengths)
    assert c4_run(text, replace(C4Config(), min_paragraphs=3))[0] == reason
    assert c4_run(text, C4Config())[0] is None  # off by default


# --- the profile ---------------------------------------------------------------------------------------


def test_strict_profile_sets_every_reference_option_and_defaults_stay_put():
    reference = {
        "gopher_repetition": {
            "word_tokenizer": "spacy_en",
            "segments": "newline_runs",
            "paragraphs_first": True,
            "ngram_denominator": "text_chars",
            "top_ngram_ties": "first",
            "ngram_counting": "greedy",
        },
        "gopher_quality": {
            "extensions": False,
            "word_tokenizer": "spacy_en",
            "count_punctuation_words": False,
            "bullets": ("•", "-"),
            "line_split": "splitlines",
            "letter_test": "isalpha",
            "stop_word_count": "distinct_tokens",
            "min_words": 50,
        },
        "c4": {
            "line_pass": "single_pass",
            "min_sentences": 5,
            "sentence_splitter": "spacy_en",
            "remove_citations": True,
            "drop_curly_bracket": True,
            "ellipsis_terminates": False,
            "terminal_punctuation": (".", "?", "!", '"', "'"),
            "min_words_per_line": 3,
        },
        "fineweb": {"word_tokenizer": "spacy_en", "strip_lines": False, "line_end": "unicode"},
    }
    defaults = HeuristicsConfig()
    for rule_set, options in reference.items():
        for name, value in options.items():
            assert getattr(getattr(STRICT, rule_set), name) == value, (rule_set, name)
            assert getattr(getattr(defaults, rule_set), name) != value, (rule_set, name)
    assert STRICT.c4.min_paragraphs == 0  # mC4's rule, not English C4's


def test_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="word_tokenizer"):
        GopherRepetitionConfig(word_tokenizer="nltk")
    with pytest.raises(ValueError, match="line_pass"):
        C4Config(line_pass="twice")


def test_strict_profile_end_to_end_on_a_short_page():
    # datatrove counts the top n-gram even when it occurs once: "Herons wait in" is 14 of the 67
    # characters (0.21 > 0.18), while "Herons wait" is 11 (0.16 <= 0.20). The default sees no repetition.
    text = "Herons wait in the shallows for fish, and strike with their bills."
    assert apply_heuristics(text, "web", STRICT).drop_reason == "gopher_repetition.top_3gram_too_frequent"
    assert apply_heuristics(text, "web", HeuristicsConfig()).drop_reason == "gopher_quality.too_few_words"
