import importlib.util

import pytest

from gemmaflow.pipeline.crawl.boilerplate import drop_boilerplate_lines, is_boilerplate_line, is_furniture_name
from gemmaflow.pipeline.crawl.extract import extract_page, markup_depth

ARTICLE = [
    "The heron waits in the shallows for hours, perfectly still, until a fish comes close enough to strike.",
    "Its neck is folded in an S shape and unfolds in a fraction of a second, faster than the fish can turn.",
    "Young herons miss most of their strikes and improve over their first year by practice alone.",
]
CODE = (
    '<pre>def area(radius):\n    """Circle area."""\n    if radius &lt; 0:\n'
    "        raise ValueError(radius)\n    return 3.14159 * radius ** 2\n</pre>"
)


def page(main: str, lang: str = "en") -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><title> Herons &amp; fish </title></head><body>'
        '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/birds">Birds</a></li></ul></nav></header>'
        '<div class="cookie-banner">We use cookies to improve your experience. '
        "<button>Accept all cookies</button></div>"
        f"<main><article><h1>How herons fish</h1>{main}"
        '<div class="share-bar">Share on Facebook Share on X Email</div>'
        '<aside class="related-posts"><h3>Related posts</h3><ul><li><a href="/owls">Owls at night</a></li>'
        '<li><a href="/ducks">Ducks</a></li></ul></aside></article></main>'
        "<footer><p>© 2024 Birding Weekly. All rights reserved.</p>"
        "<p>Privacy policy · Terms of use · Contact us</p></footer>"
        "</body></html>"
    )


def test_main_text_kept_and_furniture_dropped():
    result = extract_page(page("".join(f"<p>{p}</p>" for p in ARTICLE)))
    for paragraph in ARTICLE:
        assert paragraph in result.text
    assert "How herons fish" in result.text
    for furniture in ("cookies", "Share on", "Owls at night", "All rights reserved", "Privacy policy", "Birds"):
        assert furniture not in result.text, furniture
    assert (result.title, result.lang) == ("Herons & fish", "en")


def test_code_blocks_keep_indentation_and_line_breaks():
    result = extract_page(page(f"<p>{ARTICLE[0]}</p>{CODE}<p>{ARTICLE[1]}</p>"))
    expected = ["def area(radius):", '    """Circle area."""', "    if radius < 0:",
                "        raise ValueError(radius)", "    return 3.14159 * radius ** 2"]  # fmt: skip
    lines = result.text.split("\n")
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_lists_and_tables_come_out_as_text():
    table = "<table><tr><th>Bird</th><th>Wingspan</th></tr><tr><td>grey heron</td><td>185 cm</td></tr></table>"
    html = page(f"<p>{ARTICLE[0]}</p><ul><li>grey heron</li><li>great egret</li></ul>{table}")
    text = extract_page(html).text
    assert "great egret" in text and "185 cm" in text and "Wingspan" in text


def test_a_main_element_named_like_furniture_is_kept_when_it_holds_the_page():
    html = page(f'<div class="cookie-jar-docs">{"".join(f"<p>{p}</p>" for p in ARTICLE)}</div>')
    assert ARTICLE[2] in extract_page(html).text


def test_ids_do_not_mark_furniture():
    # documentation generators give the section about cookies id="cookies"
    html = page(f'<p>{ARTICLE[0]}</p><section id="cookies"><h2>Cookies</h2><p>{ARTICLE[1]}</p></section>')
    assert ARTICLE[1] in extract_page(html).text


def test_line_rules_trim_only_the_edges():
    text = "Copyright 2020 Site. All rights reserved.\nReal text.\nWe use cookies on this site, she wrote.\nMore text.\nFollow us: Facebook Twitter LinkedIn"  # noqa: E501
    trimmed, dropped = drop_boilerplate_lines(text)
    assert trimmed == "Real text.\nWe use cookies on this site, she wrote.\nMore text."
    assert dropped == 2
    assert drop_boilerplate_lines("Real text.\n© 2024 Example", keep=["© 2024 Example"])[0].endswith("Example")


def test_rules_judge_short_lines_only():
    assert is_boilerplate_line("Was this page helpful? Yes No")
    assert is_boilerplate_line("Privacy Policy | Terms of Service | Sitemap")
    assert not is_boilerplate_line("All rights reserved " + "word " * 60)
    assert not is_boilerplate_line("The heron waits in the shallows.")
    assert is_furniture_name("site-footer breadcrumb") and not is_furniture_name("breadcrumbed-list shareholder")


def test_empty_and_unparseable_pages_give_empty_text():
    assert extract_page("").text == ""
    assert extract_page("<html><body><nav><a href='/'>Home</a></nav></body></html>").text.strip() in ("", "Home")


def test_rules_can_be_turned_off():
    html = page(f"<p>{ARTICLE[0]}</p><p>Copyright 2024 Birding Weekly. All rights reserved.</p>")
    assert "All rights reserved" not in extract_page(html).text
    assert extract_page(html, boilerplate_rules=False).pruned_elements == 0


@pytest.mark.skipif(importlib.util.find_spec("trafilatura") is None, reason="trafilatura is the [trafilatura] extra")
def test_trafilatura_extractor():
    result = extract_page(page("".join(f"<p>{p}</p>" for p in ARTICLE)), extractor="trafilatura")
    assert ARTICLE[0] in result.text and "Owls at night" not in result.text


def test_markup_depth_counts_only_elements_that_must_be_closed():
    assert markup_depth("<div><div><span>x</span></div></div>") == 3
    assert markup_depth("<ul>" + "<li><p>item" * 500 + "</ul>") == 1  # unclosed <li> and <p> do not nest
    assert markup_depth("<div>" * 40 + "<br><img src=x>" + "</div>" * 40) == 40
