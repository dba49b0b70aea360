from gemmaflow.pipeline.config import NormaliseConfig
from gemmaflow.pipeline.normalise import normalise_text

CFG = NormaliseConfig()


def test_mojibake_is_repaired():
    result = normalise_text("The caf\u00c3\u00a9 is open \u00e2\u20ac\u201d come in.", CFG)
    assert result.text == "The caf\u00e9 is open \u2014 come in."
    assert result.mojibake_fixed


def test_ascii_text_is_untouched_and_html_entities_stay():
    text = "if (a &lt; b) { return; }\n"
    result = normalise_text(text, CFG)
    assert result.text == text and not result.mojibake_fixed and result.control_chars_removed == 0


def test_nfc_composition():
    assert normalise_text("e\u0301", CFG).text == "\u00e9"


def test_control_chars_and_nul_removed_but_tabs_and_newlines_kept():
    result = normalise_text("a\x00b\x07c\td\ne\x1b\x7f", CFG)
    assert result.text == "abc\td\ne"
    assert result.control_chars_removed == 4


def test_c1_controls_read_as_windows_1252_or_removed():
    # ftfy treats a stray C1 control as a cp1252 byte (0x85 is an ellipsis); without ftfy it is stripped.
    assert normalise_text("wait\x85", CFG).text == "wait\u2026"
    assert normalise_text("wait\x85", NormaliseConfig(fix_mojibake=False)).text == "wait"


def test_newlines_normalised():
    assert normalise_text("a\r\nb\rc\n", CFG).text == "a\nb\nc\n"


def test_replacement_chars_counted():
    assert normalise_text("bad \ufffd\ufffd bytes", CFG).replacement_chars == 2


def test_everything_can_be_switched_off():
    off = NormaliseConfig(fix_mojibake=False, unicode_form="none", strip_control_chars=False, normalise_newlines=False)
    text = "caf\u00c3\u00a9\x00\r\ne\u0301"
    assert normalise_text(text, off).text == text
