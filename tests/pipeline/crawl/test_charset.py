import codecs

import pytest

from gemmaflow.pipeline.crawl.charset import codec_for, decode_html, meta_charset

FRENCH = "<p>Déjà vu — « œuvre » café naïve</p>"


def html(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body>{body}</body></html>"


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        (FRENCH, "windows-1252"),
        ("<p>日本語のテキストです。東京は大きい都市です。</p>", "shift_jis"),
        ("<p>中文文本，北京是一个大城市。我们喜欢读书。</p>", "gb2312"),
        ("<p>Русский текст: Москва большой город, мы любим читать книги.</p>", "koi8-r"),
        ("<p>Русский текст: Москва большой город.</p>", "windows-1251"),
    ],
)
def test_header_charset_decodes_legacy_pages(text, charset):
    page = decode_html(html(text).encode(charset), f"{charset}")
    assert text in page.text
    assert page.source == "header"
    assert page.replaced == 0


def test_iso_8859_1_label_decodes_as_windows_1252_like_browsers():
    # 0x93/0x94 are curly quotes in windows-1252 and C1 controls in strict ISO-8859-1
    body = html("<p>\u201cquoted\u201d</p>").encode("windows-1252")
    assert "\u201cquoted\u201d" in decode_html(body, "ISO-8859-1").text
    assert codec_for("us-ascii") == codec_for("latin1") == codec_for("windows-1252")
    assert codec_for("no-such-charset") is None


@pytest.mark.parametrize(
    "head",
    ['<meta charset="windows-1252">', "<meta charset=windows-1252>",
     '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'],
)  # fmt: skip
def test_meta_declarations_when_the_header_says_nothing(head):
    page = decode_html(html(FRENCH, head).encode("windows-1252"), None)
    assert FRENCH in page.text
    assert page.source == "meta"
    assert meta_charset(html("", head).encode()) == "windows-1252"


def test_header_wins_over_meta():
    page = decode_html(html(FRENCH, '<meta charset="utf-8">').encode("windows-1252"), "windows-1252")
    assert FRENCH in page.text and page.source == "header"


def test_undeclared_pages_are_detected():
    text = "<p>" + "Il était une fois une très belle journée d'été à la plage. " * 20 + "</p>"
    assert text in decode_html(html(text).encode("utf-8"), None).text
    assert decode_html(html(text).encode("utf-8"), None).source == "detected"


def test_a_lying_declaration_falls_back_to_detection():
    text = "<p>" + "Это текст на русском языке, и он довольно длинный. " * 20 + "</p>"
    page = decode_html(html(text).encode("utf-8"), "shift_jis")  # header lies; the bytes are UTF-8
    assert text in page.text
    assert page.source == "fallback"


def test_bom_wins_and_undecodable_bytes_are_counted():
    assert decode_html(codecs.BOM_UTF8 + html(FRENCH).encode(), "windows-1251").source == "bom"
    # a UTF-8 page with a few damaged bytes stays UTF-8 (single-byte detection would turn every é into Ã©)
    broken = html("<p>" + "Déjà vu, café crème. " * 200 + "</p>").encode() + b"\xff\xfe bad"
    page = decode_html(broken, "utf-8")
    assert (page.charset, page.source, page.replaced) == ("utf-8", "header", 2)
    assert "Déjà vu, café crème." in page.text
