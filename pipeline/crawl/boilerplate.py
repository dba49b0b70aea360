"""Boilerplate that survives main-content extraction, removed by rule: elements whose class names
them as page furniture (before extraction), and footer-, menu- and banner-shaped lines at the start
and end of the text (after it).

The element names follow the class names boilerplate detectors key on (Kohlschütter et al., 2010,
boilerpipe; trafilatura's and resiliparse's main-content rules); the line rules extend C4's
(Raffel et al., 2020) policy-line removal, but only to short lines that read as a footer, a
consent banner, a share bar, a menu row or a docs feedback widget, so a paragraph *about* cookie
policies stays.
Lines of `<pre>` blocks are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# class-name tokens (split on anything but letters and digits) that mark page furniture
FURNITURE_TOKENS = frozenset({
    "breadcrumb", "breadcrumbs", "cookie", "cookies", "consent", "gdpr", "share", "sharing", "sharebar",
    "social", "related", "promo", "promotion", "advert", "advertisement", "ads", "sponsored", "newsletter",
    "subscribe", "signup", "feedback", "rating", "pagination", "pager", "skiplink", "banner",
})  # fmt: skip
# an element is only removed when it holds less than this share of the page's text: a class name is
# a hint, and a docs page whose main `<div>` is called `cookie-jar-docs` keeps its text
MAX_FURNITURE_SHARE = 0.25
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_MENU_SEPARATOR = re.compile(r"\s+[|·•/»]\s+")
MIN_MENU_ITEMS = 4
MAX_RULE_WORDS = 40  # line rules only judge lines this short: footers are, paragraphs are not
_LEGAL_LINKS = re.compile(
    r"privacy (policy|notice|statement)|terms (of|and) (use|service|conditions)|cookie (policy|settings|preferences)"
    r"|accessibility statement|sitemap|contact us|imprint|impressum|legal notice|do not sell",
    re.IGNORECASE,
)
_SOCIAL = re.compile(r"\b(facebook|twitter|linkedin|reddit|whatsapp|pinterest|email|print|mastodon|telegram|x)\b",
                     re.IGNORECASE)  # fmt: skip
_FOOTER_LINE = re.compile(
    r"all rights reserved|^\s*(copyright\b|©|\(c\)\s*\d{4})|registered office|company (number|registration)"
    r"|registered in (england|wales|scotland)|does not constitute (legal |financial |investment |medical )?advice"
    r"|^\s*(was this (page|article) helpful|edit this page|improve this page|last updated( on)?\b.*\bby\b"
    r"|share (this|on)\b|follow us\b|sign up for (our|the) newsletter|subscribe to (our|the) newsletter)"
    r"|\b(we|this (site|website)) uses? cookies|by (using|continuing to use) (this|our) (site|website)"
    r"|accept (all )?cookies",
    re.IGNORECASE,
)


def class_tokens(value: str) -> set[str]:
    return {token for token in _TOKEN_SPLIT.split(value.lower()) if token}


def is_furniture_name(class_names: str) -> bool:
    return not FURNITURE_TOKENS.isdisjoint(class_tokens(class_names))


def is_menu_row(line: str) -> bool:
    """ "Home | About | Links | Contact": four or more items of one to three words between separators."""
    items = [item.split() for item in _MENU_SEPARATOR.split(line)]
    return len(items) >= MIN_MENU_ITEMS and all(1 <= len(item) <= 3 for item in items)


def is_boilerplate_line(line: str) -> bool:
    """True for a short line that reads as a footer, a menu or legal-links row, a banner or a share bar."""
    words = line.split()
    if not words or len(words) > MAX_RULE_WORDS:
        return False
    if _FOOTER_LINE.search(line) or is_menu_row(line):
        return True
    if len(_LEGAL_LINKS.findall(line)) >= 2:
        return True
    return len(words) <= 12 and len(_SOCIAL.findall(line)) >= 3


def drop_boilerplate_lines(text: str, keep: Iterable[str] = ()) -> tuple[str, int]:
    """`text` without the boilerplate lines at its start and end (lines in `keep`, the page's code
    lines, always stay).

    Only the edges are trimmed: furniture that survives main-content extraction sits before or
    after the article, while the same words inside it (a post quoting a cookie banner, a forum
    reply ending "follow us on Twitter") are the author's text.
    """
    protected = set(keep)
    lines = text.split("\n")

    def removable(line: str) -> bool:
        return not line.strip() or (line not in protected and is_boilerplate_line(line))

    start, end = 0, len(lines)
    while start < end and removable(lines[start]):
        start += 1
    while end > start and removable(lines[end - 1]):
        end -= 1
    dropped = sum(1 for line in lines[:start] + lines[end:] if line.strip())
    return "\n".join(lines[start:end]), dropped
