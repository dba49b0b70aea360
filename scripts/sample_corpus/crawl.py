"""The sample's web crawl: crawl.warc.gz, its text as crawl.warc.wet.gz, and crawl_truth.jsonl.gz.

A made-up crawl of eight `.example` sites in the shape Common Crawl publishes: a WARC/1.1 file with one
gzip member per record (warcinfo, then request, response and metadata per fetch) and a WET file of
WARC/1.0 `conversion` records with each page's visible text. The page texts are documents of the sample
itself (raw.jsonl.gz: English articles and docstring pages mostly, some other-language articles, some
junk, some standard-library code in `<pre>`), laid into four page shapes written here (a blog, a
news-style `<div>` soup, an old table layout, a docs portal) with their menus, sidebars, banners and
footers. Around the pages are the fetches that must not become documents: redirects, 404 and 500
pages, images, a PDF, JSON, an empty body, robots.txt, a revisit record; and one truncated response
and one URL fetched twice.

The pages vary what a crawl extractor has to undo: the charset declared in the HTTP header, in a
`<meta>` element or nowhere, legacy charsets, gzip/br/deflate content coding, chunked transfer
coding, unclosed `<p>` elements, hard-wrapped paragraphs and indented code. crawl_truth.jsonl.gz says,
per response or revisit record, what it is and what the extractor should get from it.

Determinism: every choice is a keyed BLAKE2b rank (`sources.rank`), record ids are BLAKE2b hashes of a
key and dates count up from a fixed start. The compressed HTTP bodies come from compress.py, not from
zlib or brotli, so only the outer gzip members depend on the zlib that writes them.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import html
import io
import json
import re
import struct
import textwrap
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from .compress import brotli_stored, gzip_member, zlib_stream
from .sources import SEED, Doc, rank, ranked

WARC_FILE = "crawl.warc.gz"
WET_FILE = "crawl.warc.wet.gz"
TRUTH_FILE = "crawl_truth.jsonl.gz"

START = datetime.datetime(2024, 6, 11, 3, 12, 0, tzinfo=datetime.timezone.utc)
USER_AGENT = "gemmaflow-sample-crawler/1.0 (+https://gemmaflow.example/crawler)"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
CHUNK_SIZE = 1024  # bytes per chunk of the chunked responses
WRAP = 100  # columns of the hard-wrapped paragraphs (news and table pages)
FAMILIES = ("blog", "news", "table", "portal")

# How many pages of each source. English: every English article, the English pages whose non-ASCII
# characters are all in windows-1252 (they become the windows-1252 pages), then docstring pages.
N_CP1252 = 3
N_STDLIB = 20
N_STDLIB_WITH_CODE = 2  # docstring pages with a code example in <pre>
N_CODE = 4  # standard-library .py files shown whole on a docs page
CODE_BYTES = (1_500, 4_000)
JUNK_VARIANTS = ("keyword_stuffing", "lorem_ipsum", "word_salad", "link_farm", "repeated_line", "too_short")
# Charsets: (label in the HTTP header or <meta>, Python codec).
LEGACY_BY_LANG = {"ja": ("Shift_JIS", "shift_jis"), "zh": ("GB2312", "gb2312")}
# KOI8-R has no em dash, which every Russian article uses: then windows-1251, the other legacy Cyrillic
# charset, takes its place.
CYRILLIC = (("KOI8-R", "koi8_r"), ("windows-1251", "cp1251"))
N_LATIN1_META = 2  # other-language articles declared ISO-8859-1 in an http-equiv <meta> only
N_META_UTF8 = 8
N_UNDECLARED = 6  # of which up to half with non-ASCII text
# Codings, by position in the page's keyed order.
GZIP, GZIP_CHUNKED, BROTLI, DEFLATE, CHUNKED = range(0, 5), (5,), (6, 7), (8,), (9, 10)
N_UNCLOSED = 6  # pages whose every other paragraph has no </p>
N_NO_LANG = 2  # pages of the modern shapes without <html lang> (the table pages never have one)

# Made-up sites: first words, and second words per shape.
SITE_WORDS = ("Amber", "Birch", "Cobalt", "Driftwood", "Ember", "Fernhill", "Granite", "Harbor", "Juniper", "Lantern",
              "Meadow", "Northgate", "Orchard", "Pebble", "Quarry", "Riverbend", "Saltmarsh", "Thistle")  # fmt: skip
SITE_KINDS = {
    "blog": ("Notes", "Journal", "Notebook", "Field Notes"),
    "news": ("Gazette", "Courier", "Herald", "Dispatch"),
    "table": ("Home Page", "Library", "Archive", "Pages"),
    "portal": ("Docs", "Reference", "Handbook", "Developer Hub"),
}
SERVERS = {"blog": "nginx/1.24.0", "news": "Apache/2.4.58 (Debian)", "table": "Apache/2.2.22 (Unix)",
           "portal": "gunicorn"}  # fmt: skip
TAGLINES = ("Notes on history, food and how things work", "Long reads for slow evenings",
            "Things we looked up so you don't have to", "Essays, explainers and the odd recipe")  # fmt: skip
AUTHORS = ("Staff Reporter", "A. Correspondent", "The Science Desk", "Our Travel Editor")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip

_HEADING = re.compile(r"[A-Za-z_][\w.]*(\(.*\))?")  # "module.func(args)" lines of the docstring pages
_ITEM = re.compile(r"[A-Za-z_]\w* -- \S")  # "name -- what it is" lines: list items
_WORD = re.compile(r"\w+(?:['’´-]\w+)*")  # "module’s" is one word


# ---------------------------------------------------------------------------------------------- helpers


def _int(key: str, salt: str) -> int:
    return int(rank(key, salt), 16)


def record_id(key: str) -> str:
    """`<urn:uuid:...>` from a BLAKE2b hash of `key`, with the version 8 (custom) and RFC 4122 variant bits."""
    raw = bytearray(hashlib.blake2b(f"{SEED}|warc-record|{key}".encode(), digest_size=16).digest())
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"<urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}>"


def sha1_digest(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def collapse(text: str) -> str:
    return " ".join(text.split())


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def _warc_date(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _long_date(moment: datetime.datetime) -> str:
    return f"{MONTHS[moment.month - 1]} {moment.day}, {moment.year}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _legacy_only(text: str, codec: str) -> bool:
    """True when `text` has non-ASCII characters and all of them exist in `codec`."""
    if text.isascii():
        return False
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Site:
    family: str
    name: str
    host: str
    scheme: str
    ip: str

    @property
    def server(self) -> str:
        return SERVERS[self.family]

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}{path}"


@dataclass
class Page:
    """One document of the sample laid into a page, and what a reader of it should see."""

    doc: Doc
    blocks: list[tuple[str, str]]  # (tag, text): h1, h2, p, li, pre
    section: str  # what the site files it under
    family: str = ""
    site: Site | None = None
    path: str = ""
    lang: str | None = None  # the <html lang> attribute
    charset: str = "header:utf-8"  # where it is declared, then the label
    codec: str = "utf-8"
    encoding: str | None = None  # Content-Encoding
    chunked: bool = False
    unclosed: bool = False
    html: str = ""
    main: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    boiler: list[str] = field(default_factory=list)
    visible: list[tuple[str, str]] = field(default_factory=list)  # (role, line) in document order
    head_title: str = ""  # the <title>

    @property
    def key(self) -> str:
        return self.doc.doc_id

    @property
    def title(self) -> str:
        return collapse(self.blocks[0][1])

    @property
    def url(self) -> str:
        assert self.site is not None
        return self.site.url(self.path)

    @property
    def declared(self) -> str:
        return self.charset.split(":", 1)[1]


def _code_snippet(text: str) -> str | None:
    """The first top-level function of 4-16 lines with an indented body, or None."""
    lines = text.split("\n")
    for start, line in enumerate(lines):
        if not line.startswith("def "):
            continue
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t"))):
            end += 1
        body = "\n".join(lines[start:end]).rstrip()
        if 4 <= body.count("\n") + 1 <= 16 and all(len(x) <= 100 for x in body.split("\n")):
            return body
    return None


def _blocks(doc: Doc) -> list[tuple[str, str]]:
    """The document as blocks: its first line is the title; docstring pages have headings and lists."""
    lines = [line.strip() for line in doc.text.replace("\r", "").split("\n")]
    lines = [line for line in lines if line]
    blocks = [("h1", lines[0])]
    for line in lines[1:]:
        if doc.variant == "stdlib_page" and _HEADING.fullmatch(line):
            blocks.append(("h2", line))
        elif doc.variant == "link_farm" or (doc.variant == "stdlib_page" and _ITEM.match(line)):
            blocks.append(("li", line))
        else:
            blocks.append(("p", line))
    return blocks


def _code_blocks(doc: Doc) -> list[tuple[str, str]]:
    path = doc.url.split("/blob/", 1)[1].split("/", 1)[1]  # Lib/...
    return [("h1", path), ("pre", doc.text.rstrip())]


def _section(doc: Doc) -> str:
    """What a site files the page under (a breadcrumb, a kicker)."""
    if doc.kind == "code":
        return "Source code"
    return {"stdlib_page": "Library reference", "article": "Articles"}.get(doc.variant, "Misc")


def select_pages(docs: list[Doc]) -> tuple[list[Page], Page]:
    """The pages of the crawl and the page whose response is truncated, in no particular order."""
    usable = [d for d in sorted(docs, key=lambda d: d.doc_id) if d.dup_role != "copy"]

    def by(salt: str, keep: Callable[[Doc], bool]) -> list[Doc]:
        return [d for d in ranked(usable, f"crawl-{salt}", lambda d: d.doc_id) if keep(d)]

    cp1252 = by("cp1252", lambda d: d.kind == "web_en" and _legacy_only(d.text, "cp1252"))[:N_CP1252]
    taken = {d.doc_id for d in cp1252}
    articles = [d for d in usable if d.kind == "web_en" and d.variant == "article" and d.doc_id not in taken]
    stdlib = by("stdlib", lambda d: d.variant == "stdlib_page" and d.doc_id not in taken and d.text.isascii())
    plain, with_code, truncated = (stdlib[:N_STDLIB], stdlib[N_STDLIB : N_STDLIB + N_STDLIB_WITH_CODE],
                                   stdlib[N_STDLIB + N_STDLIB_WITH_CODE])  # fmt: skip
    code = by("code", lambda d: d.variant == "py" and CODE_BYTES[0] <= len(d.text) <= CODE_BYTES[1])
    snippets = [s for s in (_code_snippet(d.text) for d in code[N_CODE:]) if s][:N_STDLIB_WITH_CODE]
    others = by("other", lambda d: d.kind == "web_other")
    langs = sorted({d.lang or "" for d in others})
    other = [next(d for d in others if d.lang == lang) for lang in langs]
    junk_pool = by("junk", lambda d: d.kind == "junk")
    junk = [next(d for d in junk_pool if d.variant == v) for v in JUNK_VARIANTS]

    pages = [Page(d, _blocks(d), _section(d)) for d in cp1252 + articles + other + plain]
    for doc, snippet in zip(with_code, snippets, strict=True):
        blocks = _blocks(doc)
        at = next(i for i, (tag, _) in enumerate(blocks) if i > 0 and tag == "p") + 1
        pages.append(Page(doc, [*blocks[:at], ("pre", snippet), *blocks[at:]], _section(doc)))
    pages += [Page(d, _code_blocks(d), _section(d)) for d in code[:N_CODE]]
    pages += [Page(d, _blocks(d), _section(d)) for d in junk]
    return pages, Page(truncated, _blocks(truncated), _section(truncated))


def make_sites() -> list[Site]:
    """Two sites per page shape, with made-up names on the reserved .example domain."""
    firsts = ranked(SITE_WORDS, "crawl-site", str)
    sites = []
    for n, family in enumerate(FAMILIES):
        seconds = ranked(SITE_KINDS[family], f"crawl-site-{family}", str)
        for k in range(2):
            name = f"{firsts[2 * n + k]} {seconds[k]}"
            scheme = "http" if family == "table" else "https"
            sites.append(Site(family, name, _slug(name) + ".example", scheme, f"192.0.2.{20 + 10 * n + k}"))
    return sites


def _path(page: Page) -> str:
    doc = page.doc
    name = doc.url.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0]
    stem = _slug(name.rsplit(".", 1)[0] if "." in name and doc.kind != "web_en" else doc.key.split(":", 1)[1])
    when = _when(page)
    if page.family == "blog":
        return f"/{when.year}/{when.month:02d}/{stem}/"
    if page.family == "news":
        return f"/stories/{stem}-{_int(doc.doc_id, 'crawl-story') % 90000 + 10000}.html"
    if page.family == "table":
        return f"/pages/{stem}.htm"
    if doc.kind == "code":
        return f"/docs/source/{_slug(_code_blocks(doc)[0][1])}.html"
    return f"/docs/{_slug(page.section)}/{stem}/"


def assign(pages: list[Page], truncated: Page, sites: list[Site]) -> None:
    """Shape, site, URL, charset, codings and markup quirks of every page, by keyed rank."""
    spread = [p for p in ranked(pages, "crawl-family", lambda p: p.key) if all(t != "pre" for t, _ in p.blocks)]
    for n, page in enumerate(spread):
        page.family = FAMILIES[n % len(FAMILIES)]
    for page in pages:
        page.family = page.family or "portal"  # the pages with code
    truncated.family = "blog"
    for page in [*pages, truncated]:
        candidates = [s for s in sites if s.family == page.family]
        page.site = candidates[_int(page.key, "crawl-site") % len(candidates)]
        page.path = _path(page)
        lang = page.doc.lang if page.doc.lang and len(page.doc.lang) == 2 else None
        page.lang = "en" if page.doc.kind == "code" else lang
    paths = Counter(p.url for p in [*pages, truncated])
    clash = sorted(u for u, n in paths.items() if n > 1)
    if clash:
        raise SystemExit(f"two crawl pages on one URL: {clash}")

    # charsets
    rest = ranked(pages, "crawl-charset", lambda p: p.key)
    for page in rest:
        if page.doc.lang in LEGACY_BY_LANG:
            label, codec = LEGACY_BY_LANG[page.doc.lang]
            page.charset, page.codec = f"header:{label.lower()}", codec
        elif page.doc.lang == "ru":
            label, codec = next(c for c in CYRILLIC if _encodable(page.doc.text, c[1]))
            page.charset, page.codec = f"header:{label.lower()}", codec
        elif page.doc.kind == "web_en" and _legacy_only(page.doc.text, "cp1252"):
            page.charset, page.codec = "header:windows-1252", "cp1252"
    rest = [p for p in rest if p.codec == "utf-8"]
    latin1 = [p for p in rest if p.doc.kind == "web_other" and _legacy_only(p.doc.text, "latin-1")][:N_LATIN1_META]
    for page in latin1:
        page.charset, page.codec = "meta:iso-8859-1", "latin-1"
    rest = [p for p in rest if p.codec == "utf-8"]
    non_ascii = [p for p in rest if not p.doc.text.isascii()][: N_UNDECLARED // 2]
    undeclared = non_ascii + [p for p in rest if p.doc.text.isascii()][: N_UNDECLARED - len(non_ascii)]
    for page in undeclared:
        page.charset = "undeclared:utf-8"
    for page in [p for p in rest if p.charset == "header:utf-8"][:N_META_UTF8]:
        page.charset = "meta:utf-8"

    # content and transfer codings
    coded = ranked(pages, "crawl-coding", lambda p: p.key)
    for i, page in enumerate(coded):
        page.encoding = "gzip" if i in GZIP or i in GZIP_CHUNKED else "br" if i in BROTLI else None
        page.encoding = "deflate" if i in DEFLATE else page.encoding
        page.chunked = i in GZIP_CHUNKED or i in CHUNKED
    for page in ranked(pages, "crawl-unclosed", lambda p: p.key)[:N_UNCLOSED]:
        page.unclosed = True
    modern = [p for p in ranked(pages, "crawl-nolang", lambda p: p.key) if p.family != "table"]
    for page in modern[:N_NO_LANG]:
        page.lang = None
    for page in [*pages, truncated]:
        if page.family == "table":
            page.lang = None


# ---------------------------------------------------------------------------------------------- markup


class _Writer:
    """Collects a page's markup and, in document order, the text of each part by role."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.parts: list[str] = []

    def raw(self, *markup: str) -> None:
        self.parts.extend(markup)

    def boil(self, text: str, markup: str | None = None) -> str:
        """A line of boilerplate: recorded, and returned as markup (escaped `text` unless given)."""
        self.page.boiler.append(collapse(text))
        self.page.visible.append(("boiler", collapse(text)))
        return _esc(text) if markup is None else markup

    def main(self, text: str, indent: str = "", wrap: bool = False) -> str:
        self.page.main.append(collapse(text))
        self.page.visible.append(("main", collapse(text)))
        if not wrap:
            return _esc(text)
        lines = textwrap.wrap(text, WRAP, break_long_words=False, break_on_hyphens=False) or [text]
        return f"\n{indent}".join(_esc(line) for line in lines)

    def code(self, text: str) -> str:
        lines = [line.rstrip() for line in text.split("\n") if line.strip()]
        self.page.code.extend(lines)
        self.page.visible.extend(("code", line) for line in lines)
        return _esc(text)

    def links(self, items: Iterable[tuple[str, str]], each: str) -> str:
        """One boilerplate line per link: `each` is a format with {href} and {text}."""
        return "".join(each.format(href=_attr(href), text=self.boil(text)) for text, href in items)

    def link_line(self, items: list[tuple[str, str]], sep: str, tag: str = "a") -> str:
        """Links on one line (a menu, a legal row): one boilerplate line."""
        self.boil(sep.join(text for text, _ in items))
        return _esc(sep).join(f'<{tag} href="{_attr(href)}">{_esc(text)}</{tag}>' for text, href in items)

    def title(self, text: str) -> str:
        self.page.head_title = collapse(text)
        return _esc(text)

    def body(self, indent: str, wrap: bool = False, skip_title: bool = True) -> None:
        """The document's blocks (title first unless skipped) as headings, paragraphs, lists and code."""
        in_list = False
        blocks = self.page.blocks[1:] if skip_title else self.page.blocks
        for n, (tag, text) in enumerate(blocks):
            if in_list and tag != "li":
                self.raw(f"{indent}</ul>\n")
                in_list = False
            if tag == "li":
                if not in_list:
                    self.raw(f"{indent}<ul>\n")
                    in_list = True
                self.raw(f"{indent}  <li>{self.main(text)}</li>\n")
            elif tag == "pre":
                self.raw(f'{indent}<pre><code class="language-python">{self.code(text)}</code></pre>\n')
            elif tag == "p":
                close = "" if self.page.unclosed and n % 2 else "</p>"
                self.raw(f"{indent}<p>{self.main(text, indent + '  ', wrap)}{close}\n")
            else:
                slug = _slug(text)[:40]
                self.raw(f'{indent}<{tag} id="{slug}">{self.main(text)}</{tag}>\n')
        if in_list:
            self.raw(f"{indent}</ul>\n")


def _charset_head(page: Page, always_meta: bool) -> str:
    where, label = page.charset.split(":", 1)
    if where == "meta" and label == "iso-8859-1":
        return '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">\n'
    if where == "meta" or (always_meta and where == "header" and label == "utf-8"):
        return f'<meta charset="{label}">\n'
    return ""


def _html_open(page: Page) -> str:
    return f'<html lang="{page.lang}">\n' if page.lang else "<html>\n"


def _when(page: Page) -> datetime.datetime:
    return START - datetime.timedelta(days=30 + _int(page.key, "crawl-posted") % 900)


def _blog(w: _Writer, page: Page, related: list[tuple[str, str]]) -> None:
    site = page.site
    assert site is not None
    tagline = TAGLINES[_int(site.host, "crawl-tagline") % len(TAGLINES)]
    when = _when(page)
    minutes = max(1, sum(len(t.split()) for _, t in page.blocks) // 200)
    w.raw("<!DOCTYPE html>\n", _html_open(page), "<head>\n", _charset_head(page, True),
          '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
          f"<title>{w.title(f'{page.title} | {site.name}')}</title>\n",
          '<link rel="stylesheet" href="/assets/main.css">\n',
          f'<link rel="alternate" type="application/rss+xml" title="{_attr(site.name)}" href="/feed.xml">\n',
          "</head>\n<body>\n")  # fmt: skip
    w.raw('<header class="site-header">\n', f'  <a class="site-title" href="/">{w.boil(site.name)}</a>\n',
          f'  <p class="site-description">{w.boil(tagline)}</p>\n', '  <nav class="site-nav">\n    <ul>\n')  # fmt: skip
    menu = [("Home", "/"), ("Archive", "/archive/"), ("Topics", "/topics/"), ("About", "/about/")]
    w.raw(w.links(menu, '      <li><a href="{href}">{text}</a></li>\n'), "    </ul>\n  </nav>\n</header>\n")
    w.raw('<main class="page-content">\n<article class="post h-entry">\n',
          f'  <h1 class="post-title p-name">{w.main(page.blocks[0][1])}</h1>\n')  # fmt: skip
    meta = f"{_long_date(when)} · {minutes} min read"
    markup = f'<time datetime="{when:%Y-%m-%d}">{_long_date(when)}</time> · {minutes} min read'
    w.raw(f'  <p class="post-meta">{w.boil(meta, markup)}</p>\n', '  <div class="post-content e-content">\n')
    w.body("  ")
    w.raw("  </div>\n</article>\n", '<aside class="sidebar">\n', f"  <h2>{w.boil('Related posts')}</h2>\n  <ul>\n")
    w.raw(w.links(related, '    <li><a href="{href}">{text}</a></li>\n'), "  </ul>\n</aside>\n</main>\n")
    w.raw('<footer class="site-footer">\n', f"  <p>{w.boil(f'© {START.year} {site.name}. All rights reserved.')}</p>\n",
          f"  <p>{w.link_line([('Privacy policy', '/privacy/'), ('Contact us', '/contact/')], ' · ')}</p>\n",
          "</footer>\n</body>\n</html>\n")  # fmt: skip


def _news(w: _Writer, page: Page, related: list[tuple[str, str]]) -> None:
    site = page.site
    assert site is not None
    when = _when(page)
    author = AUTHORS[_int(page.key, "crawl-author") % len(AUTHORS)]
    first = next((t for tag, t in page.blocks if tag == "p"), page.title)
    w.raw("<!DOCTYPE html>\n", _html_open(page), "<head>\n", _charset_head(page, False),
          f"<title>{w.title(f'{page.title} - {site.name}')}</title>\n",
          f'<meta name="description" content="{_attr(collapse(first)[:150])}">\n',
          "<script>window.dataLayer = window.dataLayer || [];\n",
          "function gtag(){dataLayer.push(arguments);} gtag('js', new Date());</script>\n",
          "<style>.cookie-banner{position:fixed;bottom:0;width:100%} .menu a{margin:0 8px}</style>\n",
          "</head>\n<body>\n")  # fmt: skip
    cookie = "We use cookies to improve your experience on our website."
    w.raw('<div id="cookie-consent" class="cookie-banner">\n', f"  <span>{w.boil(cookie)}</span>\n",
          f"  {w.link_line([('Cookie settings', '/cookies/'), ('Accept all cookies', '#accept')], ' ')}\n",
          '</div>\n<div class="wrapper">\n<div class="top">\n',
          f'  <div class="logo"><a href="/">{w.boil(site.name)}</a></div>\n')  # fmt: skip
    sections = ("World", "Science", "Culture", "Travel", "Food", "Opinion")
    menu = [(s, f"/{s.lower()}/") for s in sections]
    w.raw(f'  <div class="menu">{w.link_line(menu, " ")}</div>\n</div>\n<div class="main-col">\n',
          '  <div class="article-header">\n', f'    <div class="kicker">{w.boil(page.section)}</div>\n',
          f"    <h1>{w.main(page.blocks[0][1])}</h1>\n",
          f'    <div class="byline">{w.boil(f"By {author} | {_long_date(when)}")}</div>\n  </div>\n')  # fmt: skip
    share = [("Share on Facebook", "https://facebook.example/share"), ("Share on X", "https://x.example/intent"),
             ("Email", "mailto:?subject=" + _slug(page.title))]  # fmt: skip
    w.raw(f'  <div class="share-bar">{w.link_line(share, " ")}</div>\n', '  <div class="article-body">\n')
    w.body("    ", wrap=True)
    promo = "Get the week's best stories in your inbox every Friday."
    w.raw("  </div>\n", f'  <div class="promo"><p>{w.boil(promo)}</p>',
          f'<a class="button" href="/newsletter/">{w.boil("Sign up")}</a></div>\n</div>\n',
          f'<div class="related-links">\n  <h3>{w.boil("More stories")}</h3>\n  <ul>\n',
          w.links(related, '    <li><a href="{href}">{text}</a></li>\n'), "  </ul>\n</div>\n",
          '<div class="footer">\n', f"  <p>{w.boil(f'© {START.year} {site.name} Media Ltd. All rights reserved.')}",
          "</p>\n")  # fmt: skip
    legal = [("Privacy policy", "/privacy/"), ("Terms of use", "/terms/"), ("Contact us", "/contact/")]
    w.raw(f"  <p>{w.link_line(legal, ' | ')}</p>\n</div>\n</div>\n</body>\n</html>\n")  # fmt: skip


def _table(w: _Writer, page: Page, related: list[tuple[str, str]]) -> None:
    site = page.site
    assert site is not None
    w.raw('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n',
          "<HTML>\n<HEAD>\n", _charset_head(page, False).replace("<meta", "<META"),
          f"<TITLE>{w.title(f'{site.name}: {page.title}')}</TITLE>\n</HEAD>\n",
          '<BODY BGCOLOR="#FFFFFF" TEXT="#000000" LINK="#0000CC" VLINK="#551A8B">\n',
          '<TABLE WIDTH="100%" BORDER="0" CELLPADDING="4" CELLSPACING="0">\n<TR>\n')  # fmt: skip
    nav = [("Home", "/index.htm"), ("About", "/about.htm"), ("Links", "/links.htm"), ("Guestbook", "/guestbook.htm"),
           ("Contact", "/contact.htm")]  # fmt: skip
    w.raw(f'<TD COLSPAN="2" CLASS="navrow" BGCOLOR="#CCCCFF"><FONT FACE="Arial">{w.link_line(nav, " | ", "A")}',
          "</FONT></TD>\n</TR>\n<TR>\n", '<TD WIDTH="180" VALIGN="top" CLASS="sidebar" BGCOLOR="#EEEEEE">\n',
          f"<B>{w.boil('Pages')}</B><BR>\n", w.links(related, '<A HREF="{href}">{text}</A><BR>\n'),
          "</TD>\n", '<TD VALIGN="top" CLASS="content">\n', f"<H1>{w.main(page.blocks[0][1])}</H1>\n")  # fmt: skip
    w.body("", wrap=True)
    notice = f"Copyright © 1998-{START.year} {site.name}"
    legal = [("Privacy", "/privacy.htm"), ("Terms of use", "/terms.htm")]
    markup = f"Copyright &copy; 1998-{START.year} {_esc(site.name)} | " + " | ".join(
        f'<A HREF="{href}">{text}</A>' for text, href in legal
    )
    line = w.boil(f"{notice} | " + " | ".join(text for text, _ in legal), markup)
    w.raw("</TD>\n</TR>\n<TR>\n", f'<TD COLSPAN="2" CLASS="footer" ALIGN="center"><FONT SIZE="1">{line}</FONT></TD>\n',
          "</TR>\n</TABLE>\n</BODY>\n</HTML>\n")  # fmt: skip


def _portal(w: _Writer, page: Page, related: list[tuple[str, str]]) -> None:
    site = page.site
    assert site is not None
    when = _when(page) + datetime.timedelta(days=20)
    w.raw("<!DOCTYPE html>\n", _html_open(page), "<head>\n", _charset_head(page, True),
          f"<title>{w.title(f'{page.title} — {site.name}')}</title>\n",
          '<link rel="stylesheet" href="/_static/docs.css">\n<script src="/_static/search.js" defer></script>\n',
          '</head>\n<body class="docs">\n<div class="topbar">\n',
          f'  <a class="brand" href="/">{w.boil(site.name)}</a>\n  <ul class="topnav">\n')  # fmt: skip
    top = [("Guides", "/guides/"), ("API reference", "/docs/"), ("Community", "/community/")]
    w.raw(w.links(top, '    <li><a href="{href}">{text}</a></li>\n'), "  </ul>\n",
          '  <form class="search" action="/search"><input type="search" name="q" placeholder="Search the docs">'
          "</form>\n</div>\n", '<nav class="breadcrumb" aria-label="Breadcrumb">\n  <ol>\n')  # fmt: skip
    crumbs = [("Docs", "/docs/"), (page.section, f"/docs/{_slug(page.section)}/")]
    w.raw(w.links(crumbs, '    <li><a href="{href}">{text}</a></li>\n'), "  </ol>\n</nav>\n",
          '<div class="layout">\n  <div class="sidebar">\n',
          f'    <p class="toc-title">{w.boil("In this section")}</p>\n',
          '    <ul class="toc">\n', w.links(related, '      <li><a href="{href}">{text}</a></li>\n'),
          "    </ul>\n  </div>\n", '  <div class="doc-content" role="main">\n',
          f"    <h1>{w.main(page.blocks[0][1])}</h1>\n")  # fmt: skip
    w.body("    ")
    buttons = '<button value="yes">Yes</button> <button value="no">No</button>'
    helpful = w.boil("Was this page helpful? Yes No", f"Was this page helpful? {buttons}")
    edit = f"https://git.{site.host}/docs/edit/main{page.path.rstrip('/')}.md"
    w.raw("  </div>\n</div>\n", f'<div class="feedback">{helpful}</div>\n',
          f'<div class="edit-page"><a href="{_attr(edit)}">{w.boil("Edit this page")}</a></div>\n',
          f'<div class="last-updated">{w.boil(f"Last updated on {_long_date(when)} by docs-bot")}</div>\n',
          '<footer class="docs-footer">\n', f"  <p>{w.boil(f'© {START.year} {site.name} contributors.')}</p>\n",
          f"  <p>{w.link_line([('Privacy policy', '/privacy/'), ('Terms of use', '/terms/')], ' | ')}</p>\n",
          "</footer>\n</body>\n</html>\n")  # fmt: skip


SHAPES = {"blog": _blog, "news": _news, "table": _table, "portal": _portal}


def render(pages: list[Page]) -> None:
    """Markup of every page; the sidebar links of a page are other pages of its site."""
    for page in pages:
        # other pages of the site; not one with a title as short as "io", which reads as part of any word
        same_site = [p for p in pages if p.site == page.site and p.key != page.key and len(p.title) >= 4]
        picks = ranked(same_site, f"crawl-related-{page.key}", lambda p: p.key)[:4]
        related = [(p.title, p.path) for p in picks]
        writer = _Writer(page)
        SHAPES[page.family](writer, page, related)
        page.html = "".join(writer.parts)
        body = "\n".join([*page.main, *page.code])
        if not _encodable(body, page.codec):
            raise SystemExit(f"{page.key}: its text is not {page.codec}")


def nonascii_words(main: list[str]) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall("\n".join(main)):
        if not word.isascii() and word not in seen:
            seen.append(word)
    return seen[:20]


# ---------------------------------------------------------------------------------------------- fetches


@dataclass
class Fetch:
    """One request and what came back for it."""

    key: str
    url: str
    kind: str
    status: int
    reason: str
    mime: str | None
    body: bytes  # the entity as the server meant it, before any content coding
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)  # after Server and Content-Type
    page: Page | None = None
    site: Site | None = None
    charset: str | None = None
    expect_doc: bool | None = False
    truncated: bool = False
    original: Fetch | None = None  # revisit: the fetch it revisits
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    # set when the records are written
    date: datetime.datetime = START
    record_id: str = ""
    payload_digest: str = ""
    visible: list[tuple[str, str]] = field(default_factory=list)  # of the page, what arrived


def _page_fetch(page: Page, kind: str = "page", key: str | None = None) -> Fetch:
    label = page.declared
    content_type = "text/html" + (f"; charset={label}" if page.charset.startswith("header:") else "")
    label_case = {"shift_jis": "Shift_JIS", "gb2312": "GB2312"}.get(label, label)
    content_type = content_type.replace(f"charset={label}", f"charset={label_case}")
    headers = [("Vary", "Accept-Encoding")] if page.encoding else []
    if page.family == "portal":
        etag = '"' + hashlib.blake2b(page.html.encode("utf-8"), digest_size=8).hexdigest() + '"'
        headers += [("ETag", etag), ("Cache-Control", "max-age=600")]
    if page.family == "table":
        modified = _when(page) - datetime.timedelta(days=400)
        headers.append(("Last-Modified", format_datetime(modified, usegmt=True)))
    expect: bool | None = page.doc.kind != "junk" or None
    body = page.html.encode(page.codec, "xmlcharrefreplace")
    return Fetch(key or page.key, page.url, kind, 200, "OK", "text/html", body, content_type, headers, page, page.site,
                 page.charset, expect, visible=page.visible)  # fmt: skip


def _png(width: int, height: int, seed: str) -> bytes:
    """A small valid RGB PNG, its IDAT written by compress.zlib_stream."""
    base = hashlib.blake2b(seed.encode(), digest_size=6).digest()
    rows = b"".join(
        b"\x00" + bytes((base[c] + 9 * x + 5 * y * (c + 1)) % 256 for x in range(width) for c in range(3))
        for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib_stream(rows)) + chunk(b"IEND", b"")


PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
       b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")  # fmt: skip


def _nginx_page(status: int, reason: str) -> bytes:
    page = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}"
            f"</h1></center>\r\n<hr><center>{SERVERS['blog']}</center>\r\n</body>\r\n</html>\r\n")  # fmt: skip
    return page.encode("ascii")


def _apache_moved(location: str) -> bytes:
    return ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>301 Moved Permanently</title>\n'
            f'</head><body>\n<h1>Moved Permanently</h1>\n<p>The document has moved <a href="{_attr(location)}">'
            "here</a>.</p>\n</body></html>\n").encode("ascii")  # fmt: skip


def other_fetches(pages: list[Page], sites: list[Site]) -> list[Fetch]:
    """The fetches that must not become documents."""
    by_family = {f: [s for s in sites if s.family == f] for f in FAMILIES}
    blog, news, table, portal = (by_family[f][0] for f in FAMILIES)
    html_utf8 = "text/html; charset=utf-8"
    fetches: list[Fetch] = []

    def add(key: str, site: Site, path: str, kind: str, status: int, content_type: str, body: bytes,
            charset: str | None = None, headers: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        mime = content_type.split(";", 1)[0]
        fetches.append(Fetch(key, site.url(path), kind, status, HTTPStatus(status).phrase, mime, body, content_type,
                             list(headers), site=site, charset=charset))  # fmt: skip

    # redirects to pages of the crawl: http -> https, no trailing slash, an old query URL
    targets = {f: ranked([p for p in pages if p.site == by_family[f][0] and p.path.endswith(("/", ".htm"))],
                         "crawl-redirect", lambda p: p.key)[0] for f in ("blog", "portal", "table")}  # fmt: skip
    old_name = targets["table"].path.rsplit("/", 1)[1].removesuffix(".htm")
    moved = [("redirect-scheme", targets["blog"].path), ("redirect-slash", targets["portal"].path.rstrip("/")),
             ("redirect-query", f"/index.php?page={old_name}")]  # fmt: skip
    for (key, path), target in zip(moved, targets.values(), strict=True):
        site = target.site
        assert site is not None
        body = {"blog": _nginx_page(301, "Moved Permanently"), "portal": b"",
                "table": _apache_moved(target.url)}[site.family]  # fmt: skip
        site = Site(site.family, site.name, site.host, "http", site.ip) if key == "redirect-scheme" else site
        add(key, site, path, "redirect", 301, html_utf8, body, "header:utf-8", (("Location", target.url),))

    # 404s in three server styles, a server error
    add("notfound-nginx", blog, "/2019/02/a-post-that-moved/", "notfound", 404, html_utf8,
        _nginx_page(404, "Not Found"), "header:utf-8")  # fmt: skip
    sorry = "Sorry, the page you were looking for does not exist or has been moved."
    styled = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Page not found - {news.name}'
              f'</title>\n</head>\n<body>\n<div class="top"><div class="logo"><a href="/">{news.name}</a></div></div>\n'
              f'<div class="main-col">\n  <h1>Page not found</h1>\n  <p>{sorry}</p>\n  <p><a href="/">Go to the '
              f"front page</a></p>\n</div>\n</body>\n</html>\n")  # fmt: skip
    add("notfound-styled", news, "/world/old-story-19990412.html", "notfound", 404, "text/html",
        styled.encode("utf-8"), "meta:utf-8")  # fmt: skip
    apache = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found</title>\n'
              "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n"
              "</body></html>\n")  # fmt: skip
    add("notfound-apache", table, "/pages/oldlinks.htm", "notfound", 404, "text/html; charset=iso-8859-1",
        apache.encode("ascii"), "header:iso-8859-1")  # fmt: skip
    error = (b"<html><head><title>Internal Server Error</title></head>"
             b"<body><h1><p>Internal Server Error</p></h1></body></html>")  # fmt: skip
    add("server-error", portal, "/search?q=sourdough+starter", "server_error", 500, "text/html", error,
        "undeclared:utf-8")  # fmt: skip

    # binaries, JSON, an empty page, robots.txt
    add("png-logo", blog, "/assets/logo.png", "binary", 200, "image/png", _png(16, 16, blog.host),
        headers=(("Cache-Control", "max-age=86400"),))  # fmt: skip
    add("png-spacer", table, "/images/spacer.png", "binary", 200, "image/png", _png(1, 1, table.host))
    add("pdf", news, "/files/annual-report-2023.pdf", "binary", 200, "application/pdf", PDF)
    latest = ranked([p for p in pages if p.site == news], "crawl-json", lambda p: p.key)[:5]
    stories = [{"title": p.title, "url": p.url} for p in latest]
    listing = json.dumps({"site": news.name, "generated": _warc_date(START), "stories": stories}, ensure_ascii=False)
    add("json", news, "/api/v1/latest.json", "json", 200, "application/json; charset=utf-8", listing.encode("utf-8"))
    add("empty", blog, "/tag/misc/page/9/", "empty", 200, html_utf8, b"", "header:utf-8")
    robots = (f"User-agent: *\nDisallow: /search\nDisallow: /admin/\nCrawl-delay: 5\n\n"
              f"Sitemap: {news.url('/sitemap.xml')}\n")  # fmt: skip
    add("robots", news, "/robots.txt", "robots", 200, "text/plain", robots.encode("ascii"))
    return fetches


# ---------------------------------------------------------------------------------------------- records


def _coded(fetch: Fetch) -> tuple[bytes, list[tuple[str, str]]]:
    """The payload as sent (content coding, then chunks) and the headers that describe it."""
    page = fetch.page
    body, headers = fetch.body, []
    encoding = page.encoding if page else None
    if encoding == "gzip":
        body = gzip_member(body)
    elif encoding == "br":
        body = brotli_stored(body)
    elif encoding == "deflate":
        body = zlib_stream(body)
    if encoding:
        headers.append(("Content-Encoding", encoding))
    if fetch.status == 304:
        return body, headers
    if page and page.chunked:
        chunks = [body[i : i + CHUNK_SIZE] for i in range(0, len(body), CHUNK_SIZE)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(len(body))))
    return body, headers


def _http_response(fetch: Fetch) -> tuple[bytes, bytes]:
    """(HTTP head, payload) of a response."""
    assert fetch.site is not None
    payload, coding = _coded(fetch)
    fields = [("Date", format_datetime(fetch.date, usegmt=True)), ("Server", fetch.site.server)]
    if fetch.content_type:
        fields.append(("Content-Type", fetch.content_type))
    fields += coding + fetch.headers + [("Connection", "close")]
    head = f"HTTP/1.1 {fetch.status} {fetch.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("ascii"), payload


def _http_request(fetch: Fetch) -> bytes:
    path = fetch.url.split("/", 3)[3] if fetch.url.count("/") >= 3 else ""
    host = fetch.url.split("/", 3)[2]
    fields = [("Host", host), ("User-Agent", USER_AGENT),
              ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
              ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "br,gzip,deflate")]  # fmt: skip
    fields += [*fetch.request_headers, ("Connection", "close")]
    head = f"GET /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("ascii")


def warc_record(version: str, kind: str, date: str, rid: str, content_type: str, block: bytes,
                extra: list[tuple[str, str]], payload_digest: str | None = None) -> bytes:  # fmt: skip
    fields = [("WARC-Type", kind), ("WARC-Date", date), ("WARC-Record-ID", rid), ("Content-Length", str(len(block))),
              ("Content-Type", content_type), *extra]  # fmt: skip
    if payload_digest:
        fields.append(("WARC-Payload-Digest", payload_digest))
    fields.append(("WARC-Block-Digest", sha1_digest(block)))
    head = f"WARC/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def gzip_record(record: bytes) -> bytes:
    """One gzip member per record, as Common Crawl writes them: mtime 0, no file name."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        gz.write(record)
    return buffer.getvalue()


def _fields(pairs: list[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in pairs).encode("utf-8")


def _order(pages: list[Page], truncated: Page, others: list[Fetch]) -> list[Fetch]:
    """Fetches in crawl order: robots.txt first, then by keyed rank; the second fetch of a URL and the
    revisit late, each well after the fetch it repeats."""
    robots = [f for f in others if f.kind == "robots"]
    rest = [_page_fetch(p) for p in pages] + [f for f in others if f.kind != "robots"]
    trunc = _page_fetch(truncated, "truncated")
    trunc.truncated, trunc.expect_doc = True, None
    fetches = robots + ranked([*rest, trunc], "crawl-order", lambda f: f.key)
    early = fetches[: len(fetches) // 2]

    def first(family: str) -> Fetch:
        return next(f for f in early if f.page and f.page.family == family and f.page.doc.kind == "web_en")

    first_blog, first_portal = first("blog"), first("portal")
    assert first_blog.page is not None and first_portal.page is not None
    again = _page_fetch(first_blog.page, "duplicate_url", f"{first_blog.key}#again")
    again.expect_doc = False
    revisit = Fetch(f"{first_portal.key}#revisit", first_portal.url, "revisit", 304, "Not Modified", None, b"",
                    headers=[h for h in first_portal.headers if h[0] in ("ETag", "Cache-Control")],
                    site=first_portal.site, original=first_portal)  # fmt: skip
    etag = dict(first_portal.headers)["ETag"]
    revisit.request_headers = [("If-None-Match", etag)]
    fetches.insert(len(fetches) * 3 // 4, again)
    fetches.insert(len(fetches) - 3, revisit)
    return fetches


def _truth(fetch: Fetch) -> dict[str, Any]:
    page = fetch.page
    main, code, boiler = ([line for role, line in fetch.visible if role == want] for want in ("main", "code", "boiler"))
    return {
        "record_id": fetch.record_id,
        "url": fetch.url,
        "status": fetch.status,
        "mime": fetch.mime,
        "kind": fetch.kind,
        "expect_doc": fetch.expect_doc,
        "sample_id": page.doc.doc_id if page else None,
        "label_kind": page.doc.kind if page else None,
        "family": page.family if page else None,
        "charset": fetch.charset,
        "content_encoding": page.encoding if page else None,
        "chunked": bool(page and page.chunked),
        "main": main,
        "code": code,
        "boiler": boiler,
        "nonascii": nonascii_words(main),
    }


@dataclass
class CrawlSummary:
    """What README.md says about the crawl."""

    warc_records: Counter[str]
    warc_bytes: int
    wet_records: int
    wet_bytes: int
    kinds: Counter[str]
    families: Counter[str]
    charsets: Counter[str]
    encodings: Counter[str]
    sites: list[Site]
    truth: list[dict[str, Any]]
    unclosed: int  # pages with paragraphs left open
    no_lang: int  # pages without <html lang>
    wrapped: int  # pages with hard-wrapped paragraphs


def write_crawl(out: Path, docs: list[Doc]) -> CrawlSummary:
    """Write crawl.warc.gz, crawl.warc.wet.gz and crawl_truth.jsonl.gz into `out`."""
    sites = make_sites()
    pages, truncated = select_pages(docs)
    assign(pages, truncated, sites)
    render([*pages, truncated])
    fetches = _order(pages, truncated, other_fetches(pages, sites))

    info_id = record_id("warcinfo")
    info = _fields([
        ("software", "gemmaflow scripts/make_sample_corpus.py (sample crawl)"),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ("isPartOf", "gemmaflow-sample-crawl"),
        ("description", "A made-up crawl of .example sites whose pages hold texts of the gemmaflow sample corpus"),
        ("robots", "checked via robots.txt"),
        ("http-header-user-agent", USER_AGENT),
    ])  # fmt: skip
    warc = [warc_record("1.1", "warcinfo", _warc_date(START), info_id, "application/warc-fields", info,
                        [("WARC-Filename", WARC_FILE)])]  # fmt: skip
    moment = START
    wet_texts: list[tuple[Fetch, str]] = []
    for fetch in fetches:
        moment += datetime.timedelta(seconds=1 + _int(fetch.key, "crawl-gap") % 37)
        fetch.date = moment
        date = _warc_date(moment)
        request_id = record_id(f"request|{fetch.key}")
        fetch.record_id = record_id(f"response|{fetch.key}")
        site = fetch.site
        assert site is not None
        common = [("WARC-Warcinfo-ID", info_id)]
        warc.append(warc_record("1.1", "request", date, request_id, "application/http; msgtype=request",
                                _http_request(fetch), [*common, ("WARC-IP-Address", site.ip),
                                                       ("WARC-Target-URI", fetch.url)]))  # fmt: skip
        response_type = "application/http; msgtype=response"
        concurrent = [*common, ("WARC-Concurrent-To", request_id), ("WARC-IP-Address", site.ip),
                      ("WARC-Target-URI", fetch.url)]  # fmt: skip
        if fetch.original is not None:
            original = fetch.original
            head, _ = _http_response(fetch)
            extra = [*concurrent, ("WARC-Profile", REVISIT_PROFILE), ("WARC-Refers-To", original.record_id),
                     ("WARC-Refers-To-Target-URI", original.url),
                     ("WARC-Refers-To-Date", _warc_date(original.date))]  # fmt: skip
            warc.append(warc_record("1.1", "revisit", date, fetch.record_id, response_type, head, extra,
                                    original.payload_digest))  # fmt: skip
        else:
            head, payload = _http_response(fetch)
            fetch.payload_digest = sha1_digest(payload)
            extra = list(concurrent)
            if fetch.truncated:
                cut, keep = _cut(fetch)
                payload, fetch.visible = payload[:cut], fetch.visible[:keep]
                fetch.payload_digest = sha1_digest(payload)
                extra.append(("WARC-Truncated", "length"))
            if fetch.body and fetch.mime:
                extra.append(("WARC-Identified-Payload-Type", fetch.mime))
            warc.append(warc_record("1.1", "response", date, fetch.record_id, response_type, head + payload, extra,
                                    fetch.payload_digest))  # fmt: skip
            if fetch.page is not None:
                lines = [fetch.page.head_title] + [line for _, line in fetch.visible]
                wet_texts.append((fetch, "\n".join(lines) + "\n"))
        fetch_ms = 40 + _int(fetch.key, "crawl-fetch-ms") % 900
        about = [*common, ("WARC-Concurrent-To", fetch.record_id), ("WARC-Target-URI", fetch.url)]
        warc.append(warc_record("1.1", "metadata", date, record_id(f"metadata|{fetch.key}"), "application/warc-fields",
                                _fields([("fetchTimeMs", str(fetch_ms))]), about))  # fmt: skip

    wet_info_id = record_id("wet-warcinfo")
    wet_info = _fields([
        ("Software-Info", "gemmaflow scripts/make_sample_corpus.py (sample crawl text)"),
        ("Extracted-Date", format_datetime(moment + datetime.timedelta(hours=6), usegmt=True)),
        ("isPartOf", "gemmaflow-sample-crawl"),
        ("description", f"Visible text of the HTML pages of {WARC_FILE}"),
    ])  # fmt: skip
    wet = [warc_record("1.0", "warcinfo", _warc_date(START), wet_info_id, "application/warc-fields", wet_info,
                       [("WARC-Filename", WET_FILE)])]  # fmt: skip
    for fetch, text in wet_texts:
        wet.append(warc_record("1.0", "conversion", _warc_date(fetch.date), record_id(f"conversion|{fetch.key}"),
                               "text/plain", text.encode("utf-8"),
                               [("WARC-Target-URI", fetch.url), ("WARC-Refers-To", fetch.record_id)]))  # fmt: skip

    (out / WARC_FILE).write_bytes(b"".join(gzip_record(r) for r in warc))
    (out / WET_FILE).write_bytes(b"".join(gzip_record(r) for r in wet))
    truth = [_truth(f) for f in fetches]
    lines = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truth).encode("utf-8")
    (out / TRUTH_FILE).write_bytes(gzip_record(lines))

    html_pages = [f.page for f in fetches if f.kind == "page" and f.page]
    return CrawlSummary(
        warc_records=Counter(r.split(b"\r\n", 2)[1].decode().split(": ", 1)[1] for r in warc),
        warc_bytes=sum(len(r) for r in warc),
        wet_records=len(wet),
        wet_bytes=sum(len(r) for r in wet),
        kinds=Counter(f"{f.kind} (expect_doc {json.dumps(f.expect_doc)})" for f in fetches),
        families=Counter(p.family for p in html_pages),
        charsets=Counter(p.charset for p in html_pages),
        encodings=Counter((p.encoding or "identity") + (" + chunked" if p.chunked else "") for p in html_pages),
        sites=sites,
        truth=truth,
        unclosed=sum(1 for p in html_pages if p.unclosed),
        no_lang=sum(1 for p in html_pages if not p.lang),
        wrapped=sum(1 for p in html_pages if p.family in ("news", "table")),
    )


def _cut(fetch: Fetch) -> tuple[int, int]:
    """Where the truncated payload ends, in the middle of the page's middle paragraph (not inside a UTF-8
    sequence), and how many of its visible lines arrived whole."""
    page = fetch.page
    assert page is not None and not page.encoding and not page.chunked
    paragraphs = [text for tag, text in page.blocks if tag == "p"]
    middle = paragraphs[len(paragraphs) // 2]
    keep = page.visible.index(("main", collapse(middle)))
    markup = _esc(middle).encode(page.codec)
    start = fetch.body.index(markup)
    cut = start + len(markup) // 2
    while cut > start and fetch.body[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut, keep
