"""HTML to main text: resiliparse's main-content extraction (default) or trafilatura, with
gemmaflow's boilerplate rules around it (pipeline/crawl/boilerplate.py).

resiliparse is the default by measurement (benchmarks/crawl_extract.py, README "Web crawls"): on a
crawl of documentation sites and templated pages it keeps more main text than trafilatura as
datatrove configures it, keeps `<pre>` code verbatim where trafilatura loses about a third of the
code lines, and runs about 20x faster; what it lets through (footer rows, feedback widgets) the
rules here remove.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import DOMNode, HTMLTree

from gemmaflow.pipeline.crawl.boilerplate import (
    MAX_FURNITURE_SHARE,
    drop_boilerplate_lines,
    is_furniture_name,
    mentions_furniture_class,
)

ExtractorName = Literal["resiliparse", "trafilatura"]
# A `<ul>` whose text is at least this share link text is a menu, not part of the article.
MAX_CONTENT_LIST_LINK_SHARE = 0.5


@dataclass(frozen=True)
class ExtractedPage:
    text: str
    title: str
    lang: str  # the `<html lang>` attribute, "" when absent
    pruned_elements: int  # furniture elements removed before extraction
    dropped_lines: int  # boilerplate lines removed after it
    seconds: float


@dataclass
class _Scan:
    """What one walk over `<body>` finds (one walk: every node visited costs a Python wrapper)."""

    pruned: int = 0
    lists: list[DOMNode] = field(default_factory=list)  # outermost `<ul>` elements
    list_link_chars: list[int] = field(default_factory=list)  # text inside their `<a>` elements
    heading: str = ""  # the first `<h1>` outside header, nav, footer, aside and furniture
    code_lines: set[str] = field(default_factory=set)  # lines of `<pre>` blocks


def _named_as_furniture(element: DOMNode) -> bool:
    """Judged by class only: ids are mostly anchors made from headings or API names (Sphinx gives
    the section on cookies `id="cookies"`), classes name the element's role."""
    names = element.class_name
    return bool(names) and is_furniture_name(names)


def _scan(body: DOMNode, prune: bool) -> _Scan:
    """Remove furniture (when `prune`) and collect lists, the article heading and code lines.

    Furniture is an element whose class names it so and that holds under MAX_FURNITURE_SHARE of the
    page's text. A hand walk, because indexing resiliparse's DOMCollection is linear per item:
    iterating a `query_selector_all` result took 50 s on a 350 kB page, this walk 20 ms.
    """
    found = _Scan()
    total = (len(body.text) or 1) if prune else 1
    # (node, index of the enclosing outermost <ul> or -1, inside furniture or page chrome)
    stack: list[tuple[DOMNode, int, bool]] = []

    def push_children(node: DOMNode, in_list: int, outside: bool) -> None:
        child = node.last_element_child
        while child is not None:
            stack.append((child, in_list, outside))
            child = child.previous_element_sibling

    push_children(body, -1, False)
    while stack:
        node, in_list, outside = stack.pop()
        tag = node.tag
        furniture = _named_as_furniture(node)
        if furniture and prune and len(node.text) / total < MAX_FURNITURE_SHARE:
            node.parent.remove_child(node)
            found.pruned += 1
            continue
        if tag == "pre":
            found.code_lines.update(node.text.split("\n"))
            continue
        if tag == "h1" and not outside and not found.heading:
            found.heading = " ".join(node.text.split())
        elif tag == "a" and in_list >= 0:
            found.list_link_chars[in_list] += len(node.text.strip())
        elif tag == "ul" and in_list < 0:
            in_list = len(found.lists)
            found.lists.append(node)
            found.list_link_chars.append(0)
        push_children(node, in_list, outside or furniture or tag in _OUTSIDE_ARTICLE)
    return found


def _keep_content_lists(tree: HTMLTree, scan: _Scan) -> None:
    """Re-tag `<ul>` lists that are mostly not links as `<ol>`.

    resiliparse's main-content mode drops every `<ul>` as navigation, the article's own bullet
    lists included (on a crawl of documentation pages: main-text recall 0.974 with, 0.977 without,
    boilerplate leak 0 either way). The price: those items come out numbered, not bulleted.
    """
    for listing, link_chars in zip(scan.lists, scan.list_link_chars, strict=True):
        if link_chars >= MAX_CONTENT_LIST_LINK_SHARE * (len(listing.text.strip()) or 1):
            continue
        ordered = tree.create_element("ol")
        while listing.first_child is not None:
            ordered.append_child(listing.first_child)
        listing.parent.replace_child(ordered, listing)


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
    tree = HTMLTree.parse(html)
    title = (tree.title or "").strip()
    lang = _lang(tree)
    body = tree.body
    scan = _Scan()
    if body is not None and (extractor == "resiliparse" or boilerplate_rules):
        scan = _scan(body, prune=extractor == "resiliparse" and boilerplate_rules and mentions_furniture_class(html))
    if extractor == "resiliparse":
        _keep_content_lists(tree, scan)
        text = _resiliparse_text(tree)
        if boilerplate_rules:
            text = _with_heading(text, scan.heading)
    else:
        text = _trafilatura_text(html)
    dropped = 0
    if boilerplate_rules:
        text, dropped = drop_boilerplate_lines(text, scan.code_lines)
    return ExtractedPage(text.strip("\n"), title, lang, scan.pruned, dropped, time.perf_counter() - start)
