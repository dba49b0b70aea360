"""Junk pages: one seeded generator per kind, each a page some curate rule must drop.

The word lists are in written/word_lists.json. Every generator draws from the one shared
`random.Random`, in plan order, so the calls below must keep their order for the sample to stay the same.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable

from gemmaflow.pipeline.heuristics.config import GopherQualityConfig

from .similarity import NEAR_DUP_SCREEN, NearDupIndex
from .sources import WRITTEN, Doc, read_json

_WORDS = read_json(WRITTEN / "word_lists.json")["junk"]
HOST_WORDS: list[str] = _WORDS["host_words"]  # generated hosts use the reserved .example top-level domain
KEYWORD_SETS: list[list[str]] = _WORDS["keyword_sets"]  # [keyword, place]
LINK_PREFIXES: list[str] = _WORDS["link_prefixes"]
NAV_ITEMS: list[str] = _WORDS["nav_items"]
FOOTER_ITEMS: list[str] = _WORDS["footer_items"]
COOKIE_LINES: list[str] = _WORDS["cookie_lines"]
COOKIE_BUTTONS: list[str] = _WORDS["cookie_buttons"]
LOREM_WORDS: list[str] = _WORDS["lorem_words"]
REPEATED_LINES: list[str] = _WORDS["repeated_lines"]
SHORT_FRAGMENTS: list[str] = _WORDS["short_fragments"]
# The stop words of the Gopher quality rule as the pipeline configures it: word salad without them is
# junk that rule must catch.
STOP_WORDS = frozenset(GopherQualityConfig().stop_words)


def host(rng: random.Random) -> str:
    return "-".join(rng.sample(HOST_WORDS, 2)) + ".example"


def keyword_stuffing(rng: random.Random, i: int) -> str:
    """A few money keywords repeated until they dominate the page (Gopher top-n-gram rules)."""
    keyword, place = KEYWORD_SETS[i % len(KEYWORD_SETS)]
    pieces = []
    for _ in range(rng.randint(45, 70)):
        pieces.append(rng.choice([
            f"{keyword}", f"best {keyword}", f"{keyword} {place}", f"cheap {keyword}", f"{keyword} online",
            f"buy {keyword} now", f"top {keyword} deals", f"{keyword} {keyword}",
        ]))  # fmt: skip
    return f"{keyword.title()} | {keyword} {place}\n\n" + ", ".join(pieces) + ".\n"


def word_salad(rng: random.Random, source_words: list[str], stop_words: bool) -> str:
    """Real words in random order, no punctuation. Without stop words the Gopher quality rule drops it;
    with them only C4's sentence rule, FineWeb's punctuation rule or a quality classifier can."""
    words = [w for w in re.findall(r"[a-z]+", " ".join(source_words).lower()) if len(w) <= 14]
    if not stop_words:
        words = [w for w in words if w not in STOP_WORDS]
    rng.shuffle(words)
    words = words[: rng.randint(140, 220)]
    lines = []
    while words:
        take = rng.randint(9, 15)
        lines.append(" ".join(words[:take]))
        words = words[take:]
    return "\n".join(lines) + "\n"


def link_farm(rng: random.Random) -> str:
    """Anchor text and links, one per line, pointing at generated hosts."""
    lines = []
    for _ in range(rng.randint(25, 40)):
        kw = rng.choice(KEYWORD_SETS)[0]
        path = "-".join(rng.sample(HOST_WORDS, 3))
        lines.append(f"{rng.choice(LINK_PREFIXES)} {kw} >> http://{host(rng)}/{path}.html")
    return "\n".join(lines) + "\n"


def boilerplate_nav(rng: random.Random) -> str:
    """A page that is only navigation: menus, breadcrumbs and a footer."""
    menu = rng.sample(NAV_ITEMS, rng.randint(8, 14))
    crumbs = " > ".join(rng.sample(NAV_ITEMS, 3))
    footer = rng.sample(FOOTER_ITEMS, 4)
    year = rng.randint(2009, 2024)
    lines = ["Skip to main content", *menu, crumbs, *footer, f"\u00a9 {year} All rights reserved"]
    return "\n".join(lines) + "\n"


def cookie_legal(rng: random.Random) -> str:
    """Cookie banners and legal boilerplate: C4's policy-line rule empties the page."""
    lines = rng.sample(COOKIE_LINES, rng.randint(3, 6))
    return "\n".join([*lines, " | ".join(rng.sample(COOKIE_BUTTONS, 3))]) + "\n"


def lorem_ipsum(rng: random.Random) -> str:
    """Placeholder Latin (C4's lorem-ipsum rule; language ID says la)."""
    paragraphs = []
    for p in range(rng.randint(2, 4)):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(LOREM_WORDS) for _ in range(rng.randint(6, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        if p == 0:
            sentences[0] = "Lorem ipsum dolor sit amet, " + sentences[0][0].lower() + sentences[0][1:]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs) + "\n"


def repeated_line(i: int) -> str:
    """One line repeated 30 times (Gopher duplicate-line rules)."""
    return "\n".join([REPEATED_LINES[i % len(REPEATED_LINES)]] * 30) + "\n"


def symbols_numbers(rng: random.Random) -> str:
    """Symbol and number soup: no words at all (Gopher alphabetic-word rule)."""
    tokens = []
    for _ in range(rng.randint(120, 200)):
        kind = rng.random()
        if kind < 0.45:
            tokens.append(str(rng.randint(0, 99999)))
        elif kind < 0.8:
            tokens.append("".join(rng.choice("#%&*+=|~!@^") for _ in range(rng.randint(1, 4))))
        else:
            tokens.append(f"{rng.randint(0, 999)}.{rng.randint(0, 99)}%")
    lines = [" ".join(tokens[k : k + 10]) for k in range(0, len(tokens), 10)]
    return "\n".join(lines) + "\n"


def too_short(i: int) -> str:
    """Fragments under ten words."""
    return SHORT_FRAGMENTS[i % len(SHORT_FRAGMENTS)] + "\n"


def mojibake(rng: random.Random, base: str) -> str:
    """A real paragraph damaged in transit: U+FFFD replacement characters, stray control characters and
    UTF-8 read as cp1252. The replacement characters cannot be repaired, so the common rule drops it."""
    out = []
    for ch in base:
        roll = rng.random()
        if ch.isalpha() and roll < 0.06:
            out.append("\ufffd")
        elif roll < 0.075:
            out.append(ch + rng.choice(["\x00", "\x07", "\x1b", "\x08", "\x0b", "\x7f"]))
        elif ch == " " and roll < 0.09:
            out.append(rng.choice(["\u00e2\u20ac\u2122", "\u00c3\u00a9", "\u00c2\u00a0"]) + " ")
        else:
            out.append(ch)
    return "".join(out)


def junk_documents(rng: random.Random, bases: list[str]) -> list[Doc]:
    """60 junk pages. Word salad and mojibake start from docstring pages that are in no other document,
    so none of their text appears anywhere else in the sample."""
    plan: list[tuple[str, str, Callable[[int], str]]] = []
    plan += [("keyword_stuffing", "en", lambda i: keyword_stuffing(rng, i))] * 7
    plan += [("word_salad", "en", lambda i: word_salad(rng, bases[i].split(), False))] * 4
    plan += [("word_salad_stopwords", "en", lambda i: word_salad(rng, bases[i + 4].split(), True))] * 3
    plan += [("link_farm", "en", lambda i: link_farm(rng))] * 7
    plan += [("boilerplate_nav", "en", lambda i: boilerplate_nav(rng))] * 6
    plan += [("cookie_legal", "en", lambda i: cookie_legal(rng))] * 6
    plan += [("lorem_ipsum", "la", lambda i: lorem_ipsum(rng))] * 6
    plan += [("repeated_line", "en", repeated_line)] * 6
    plan += [("symbols_numbers", "zxx", lambda i: symbols_numbers(rng))] * 5
    plan += [("too_short", "en", too_short)] * 5
    plan += [("mojibake", "en", lambda i: mojibake(rng, bases[7 + i][:1400]))] * 5
    docs = []
    seen: Counter[str] = Counter()
    index = NearDupIndex()  # generated pages of one kind look alike: redraw until they are not near copies
    for variant, lang, make in plan:
        i = seen[variant]
        seen[variant] += 1
        for _ in range(50):
            text = make(i)
            if index.most_similar(text)[0] <= NEAR_DUP_SCREEN:
                break
        else:
            raise SystemExit(f"could not generate a distinct {variant} page")
        key = f"junk:{variant}:{i:02d}"
        index.add(key, text)
        url = f"http://{host(rng)}/{'-'.join(rng.sample(HOST_WORDS, 2))}.html"
        docs.append(Doc(key, text, url, "web-crawl", "junk", lang, variant, "generated"))
    return docs
