"""HTML to main text: resiliparse's main-content extraction (default) or trafilatura, with
gemmaflow's boilerplate rules around it (pipeline/crawl/boilerplate.py).

resiliparse is the default by measurement (benchmarks/crawl_extract.py, README "Web crawls"): on a
crawl of documentation sites and templated pages it keeps more main text than trafilatura as
datatrove configures it, keeps `<pre>` code verbatim where trafilatura loses about a third of the
code lines, and runs about 20x faster; what it lets through (footer rows, feedback widgets) the
rules here remove.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import DOMNode, HTMLTree

from gemmaflow.pipeline.crawl.boilerplate import (
    MAX_FURNITURE_SHARE,
    drop_boilerplate_lines,
    is_furniture_name,
)

ExtractorName = Literal["resiliparse", "trafilatura"]
# A `<ul>` whose text is at least this share link text is a menu, not part of the article.
MAX_CONTENT_LIST_LINK_SHARE = 0.5
MAX_COLLECTION = 300  # elements of one tag or class read from the DOM (see _elements)
# a trailing slash does not close a non-void element in HTML, so `<div/>` opens one, as parsers agree
_START_OR_END_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")
# void elements, and elements whose end tag may be left out (WHATWG HTML, "optional tags")
_NOT_NESTING = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup", "rt", "rp",
    "colgroup", "caption", "html", "head", "body",
})  # fmt: skip
_LIST_TAG = re.compile(r"<(/?)ul\b", re.IGNORECASE)
_LINK = re.compile(r"<a\b[^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
# an unquoted value takes the rest of its tag along: its extra names are not furniture words
_CLASS_ATTRIBUTE = re.compile(r"""class\s*=\s*["']?([^"'>]*)""", re.IGNORECASE)


@dataclass(frozen=True)
class ExtractedPage:
    text: str
    title: str
    lang: str  # the `<html lang>` attribute, "" when absent
    pruned_elements: int  # furniture elements removed before extraction
    dropped_lines: int  # boilerplate lines removed after it
    seconds: float


def _elements(root: DOMNode, tag: str) -> list[DOMNode]:
    """`root`'s `tag` elements, or none when there are more than MAX_COLLECTION.

    Reading item i of a resiliparse DOMCollection costs time linear in i, so a collection is read
    only while it is small: the lists, headings and code blocks of a page are, its `<a>` or `<span>`
    elements may not be (iterating 3,755 spans took 24 s).
    """
    found = root.get_elements_by_tag_name(tag)
    count = len(found)
    return [] if count > MAX_COLLECTION else [found[index] for index in range(count)]


def _furniture_classes(html: str) -> set[str]:
    """The class names in `html` whose tokens name page furniture (`share-bar`, `cookie-consent`)."""
    names = {name for value in _CLASS_ATTRIBUTE.findall(html) for name in value.split()}
    return {name for name in names if is_furniture_name(name)}


def _prune_furniture(body: DOMNode, html: str) -> int:
    """Remove elements of a furniture class holding under MAX_FURNITURE_SHARE of the page's text.

    Judged by class only: ids are mostly anchors made from headings or API names (Sphinx gives the
    section on cookies `id="cookies"`), classes name the element's role.
    """
    classes = _furniture_classes(html)
    if not classes:
        return 0
    total = len(body.text) or 1
    removed = 0
    for name in sorted(classes):
        found = body.get_elements_by_class_name(name)
        if len(found) > MAX_COLLECTION:
            continue
        for element in [found[index] for index in range(len(found))]:
            parent = element.parent
            if parent is not None and len(element.text) / total < MAX_FURNITURE_SHARE:
                parent.remove_child(element)
                removed += 1
    return removed


def markup_depth(html: str) -> int:
    """How deep the page's elements nest, counting only elements whose end tag is required.

    resiliparse's main-content pass takes time that grows faster than the square of the nesting
    depth (10 s at 20,000 nested `<div>`s, 196 s at 60,000), so depth is checked before parsing.
    Elements HTML lets authors leave open (`<p>`, `<li>`, `<td>`, ...) and void elements are not
    counted, so sloppy but ordinary pages do not look deep.
    """
    depth = deepest = 0
    for closing, name in _START_OR_END_TAG.findall(html):
        if name in _NOT_NESTING or name.lower() in _NOT_NESTING:
            continue
        if closing:
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _is_content_list(block: str) -> bool:
    text = len(" ".join(_TAG.sub(" ", block).split())) or 1
    link_text = sum(len(" ".join(_TAG.sub(" ", link).split())) for link in _LINK.findall(block))
    return link_text < MAX_CONTENT_LIST_LINK_SHARE * text


def _retag_content_lists(html: str) -> str:
    """`html` with its `<ul>` lists that are mostly not links re-tagged `<ol>`.

    resiliparse's main-content mode drops every `<ul>` as navigation, the article's own bullet
    lists included (on a crawl of documentation pages: main-text recall 0.974 with, 0.977 without,
    boilerplate leak 0 either way). The price: those items come out numbered, not bulleted. Done on
    the markup, one linear scan, because reading a page's lists back from resiliparse's DOM costs
    time quadratic in their number.
    """
    blocks: list[tuple[int, int]] = []  # outermost lists, nested ones inside
    depth = start = 0
    for tag in _LIST_TAG.finditer(html):
        if not tag.group(1):
            start = tag.start() if depth == 0 else start
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                blocks.append((start, html.find(">", tag.end()) + 1 or len(html)))
    if depth:
        blocks.append((start, len(html)))  # an unclosed list runs to the end
    pieces: list[str] = []
    done = 0
    for begin, end in blocks:
        block = html[begin:end]
        if _is_content_list(block):
            pieces += [html[done:begin], _LIST_TAG.sub(lambda tag: f"<{tag.group(1)}ol", block)]
            done = end
    return "".join(pieces) + html[done:] if pieces else html


def _in_article(element: DOMNode) -> bool:
    node = element.parent
    while node is not None and node.tag not in ("body", "html"):
        if node.tag in _OUTSIDE_ARTICLE or (node.class_name and is_furniture_name(node.class_name)):
            return False
        node = node.parent
    return True


def _article_heading(body: DOMNode) -> str:
    """The first `<h1>` outside header, nav, footer, aside and furniture, whitespace collapsed."""
    heading = next((h for h in _elements(body, "h1") if _in_article(h)), None)
    return " ".join(heading.text.split()) if heading is not None else ""


def _code_lines(body: DOMNode) -> set[str]:
    return {line for pre in _elements(body, "pre") for line in pre.text.split("\n")}


_OUTSIDE_ARTICLE = frozenset({"header", "nav", "footer", "aside"})


def _with_heading(text: str, heading: str) -> str:
    """`text` led by the article's heading. resiliparse keeps only a `post-content`-style container
    when the page has one, and the `<h1>` just above it goes (on blog templates, every title)."""
    if not heading or heading in " ".join(text.split()):
        return text
    return f"{heading}\n\n{text}"


def _resiliparse_text(tree: HTMLTree) -> str:
    return extract_plain_text(
        tree, main_content=True, preserve_formatting=True, list_bullets=True, alt_texts=False,
        links=False, form_fields=False, noscript=False, comments=False,
    )  # fmt: skip


def _trafilatura_text(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=False) or ""


def _lang(tree: HTMLTree) -> str:
    root = tree.document.query_selector("html")
    return (root.getattr("lang", "") or "").strip() if root is not None else ""


def extract_page(html: str, extractor: ExtractorName = "resiliparse", boilerplate_rules: bool = True) -> ExtractedPage:
    """Main text, title and declared language of one page. Raises only on HTML the parser rejects."""
    start = time.perf_counter()
    tree = HTMLTree.parse(_retag_content_lists(html) if extractor == "resiliparse" else html)
    title = (tree.title or "").strip()
    lang = _lang(tree)
    body = tree.body
    pruned = 0
    if extractor == "resiliparse":
        heading = ""
        if body is not None and boilerplate_rules:
            pruned = _prune_furniture(body, html)
            heading = _article_heading(body)
        text = _with_heading(_resiliparse_text(tree), heading)
    else:
        text = _trafilatura_text(html)
    dropped = 0
    if boilerplate_rules:
        trimmed, dropped = drop_boilerplate_lines(text)
        if dropped and body is not None:  # trim again, sparing the lines of code blocks
            trimmed, dropped = drop_boilerplate_lines(text, _code_lines(body))
        text = trimmed
    return ExtractedPage(text.strip("\n"), title, lang, pruned, dropped, time.perf_counter() - start)
