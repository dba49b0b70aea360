#!/usr/bin/env python3
"""Regenerate gemmaflow/sample/: the small demo corpus that `gemmaflow curate` reads by default.

    python scripts/make_sample_corpus.py            # writes gemmaflow/sample/
    python scripts/make_sample_corpus.py --out DIR  # somewhere else (e.g. to diff two runs)

What it writes (see the generated README.md for the counts):

* raw.jsonl.gz     {id, text, url, source[, domain]}: the pipeline input, shuffled.
* labels.jsonl.gz  the ground truth per raw id (kind, lang, duplicates, PII spans, contamination).
* benchmark.jsonl  {id, question, answer}: items for the decontamination stage; 5 are pasted into docs.
* sft_dolly.jsonl  {instruction, context, response, category}: dolly-15k-style SFT records, 3 malformed.
* README.md, LICENSE.md, __init__.py (so the folder is package data of `gemmaflow`).

Where the text comes from, and why:

* English "web" prose is harvested from the docstrings of the CPython standard library of the
  interpreter running this script (PSF License): real sentences and paragraphs, no network needed.
  Each document is a docs-like page: a module (or one large class) and its public functions.
* Code is whole standard-library `.py` files and CPython's public C headers (PSF License too, so
  the sample needs no GPL/LGPL text).
* Everything else (non-English articles, LaTeX, benchmark and SFT items, a few English articles)
  is embedded at the bottom of this file, written for gemmaflow and dedicated to CC0.
* Junk, duplicates, PII and benchmark contamination are generated from the above with a seeded RNG.

Determinism: only the standard library is used, every choice goes through `random.Random(SEED)`
or a keyed BLAKE2b rank, nothing iterates a set, and gzip is written with mtime=0 and no file
name. The same CPython release (the harvested docstrings and files are part of it) and zlib build
give byte-identical files; README.md records the versions used.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import operator
import platform
import random
import re
import sysconfig
import textwrap
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SEED = 20240611
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "gemmaflow" / "sample"

STDLIB = Path(sysconfig.get_paths()["stdlib"])
INCLUDE = Path(sysconfig.get_paths()["include"])
PY_VERSION = platform.python_version()
CPYTHON_BLOB = f"https://github.com/python/cpython/blob/v{PY_VERSION}"
DOCS_URL = "https://docs.python.org/{minor}/library/".format(minor=".".join(PY_VERSION.split(".")[:2]))

# How many documents of each kind (before duplicates are added).
N_STDLIB_PAGES = 185  # plus the hand-written English articles: ~200 English web docs
N_CODE_PY = 72
N_CODE_H = 8
# Duplicate plan: (number of originals, copies of each) per group kind and domain.
EXACT_WEB = ((4, 2), (16, 1))  # 24 exact copies of English pages
EXACT_CODE = ((6, 1),)  # 6 exact copies of .py files
NEAR_WEB = ((2, 2), (20, 1))  # 24 near copies of English pages
NEAR_CODE = ((6, 1),)  # 6 near copies of .py files
N_PII_DOCS = 30
N_DECOY_ONLY_DOCS = 6
N_CONTAMINATED = 5
N_EXPLICIT_CODE_DOMAIN = 5

MAX_DOC_BYTES = 40_000
PAGE_TARGET_CHARS = 3_600  # a harvested page stops growing past this
MIN_PAGE_WORDS = 120
PER_PACKAGE_PAGES = 10  # no stdlib package dominates the English prose
PER_PACKAGE_CODE = 4
NEAR_DUP_SCREEN = 0.35  # word-5-gram Jaccard above which two unrelated docs count as near duplicates

KINDS = ("web_en", "web_other", "code", "math", "junk")


# --------------------------------------------------------------------------------------------------
# Documents and small helpers
# --------------------------------------------------------------------------------------------------


@dataclass
class Doc:
    """One raw document and its ground truth. `key` is a stable internal name; ids come after the shuffle."""

    key: str
    text: str
    url: str
    source: str
    kind: str
    lang: str | None
    variant: str  # finer kind: stdlib_page, article, py, c_header, latex, markdown, or the junk kind
    origin: str  # where the text came from (see LICENSE.md)
    domain: str | None = None  # written into the raw record only when set
    group: str | None = None  # duplicate group key
    dup_kind: str | None = None
    dup_role: str | None = None  # original | copy
    dup_ops: list[str] | None = None
    dup_jaccard: float | None = None
    pii: list[dict[str, Any]] = field(default_factory=list)
    decoys: list[dict[str, Any]] = field(default_factory=list)
    contaminated_with: str | None = None
    doc_id: str = ""


def rank(key: str, salt: str) -> str:
    """A keyed hash to order candidates: stable when unrelated candidates appear or disappear."""
    return hashlib.blake2b(f"{SEED}|{salt}|{key}".encode(), digest_size=8).hexdigest()


def ranked(items: Iterable[T], salt: str, key: Callable[[T], str] = operator.attrgetter("key")) -> list[T]:
    """`items` in the order of their keyed rank."""
    return sorted(items, key=lambda item: rank(key(item), salt))


def unwrap(text: str, joiner: str = " ") -> str:
    """Dedent hard-wrapped source text and join each paragraph into one line, as web pages store it."""
    paragraphs = re.split(r"\n\s*\n", textwrap.dedent(text).strip())
    return "\n\n".join(joiner.join(line.strip() for line in p.splitlines()) for p in paragraphs)


def shingles(text: str, n: int = 5) -> set[str]:
    """Lower-cased word n-grams, the unit MinHash near-dedupe (datatrove: word 5-grams) compares."""
    words = text.lower().split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDupIndex:
    """Inverted index of word 5-grams, so the screen against near duplicates stays fast."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}
        self.postings: dict[str, list[str]] = {}

    def similar(self, text: str) -> list[tuple[float, str]]:
        """(Jaccard, key) of every indexed text sharing a 5-gram with `text`, most similar first."""
        grams = shingles(text)
        overlap: Counter[str] = Counter()
        for gram in grams:
            overlap.update(self.postings.get(gram, ()))
        scores = [
            (common / (len(grams) + len(self.sets[key]) - common), key) for key, common in overlap.items()
        ]
        return sorted(scores, key=lambda s: (-s[0], s[1]))

    def most_similar(self, text: str) -> tuple[float, str | None]:
        scores = self.similar(text)
        return scores[0] if scores else (0.0, None)

    def add(self, key: str, text: str) -> None:
        grams = shingles(text)
        self.sets[key] = grams
        for gram in grams:
            self.postings.setdefault(gram, []).append(key)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# --------------------------------------------------------------------------------------------------
# English prose: docs-like pages harvested from standard-library docstrings
# --------------------------------------------------------------------------------------------------

SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "site-packages", "__pycache__", "lib2to3", "encodings", "pydoc_data",
     "turtledemo", "ensurepip", "__phello__"}
)  # fmt: skip
# Private pure-Python twins of C modules whose docstrings are the public module's documentation.
PUBLIC_TWIN = {"_pydecimal": "decimal", "_pyio": "io"}
AUTOGEN_MARKERS = ("auto-generated", "autogenerated", "generated by", "do not edit")
# Anything that a PII scrubber would rightly flag, so the only PII in the sample is the injected kind.
NATURAL_PII = re.compile(
    r"[\w.+-]+@[\w-]+\.\w+|\b\d{1,3}(?:\.\d{1,3}){3}\b|\d[\d ().-]{7,}\d|\b[0-9a-f]{4}:[0-9a-f:]+|AKIA"
)
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?!?([^`]*)`")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}(\w[^*\n]*?)\*{1,2}(?![\w*])")
_STOP = re.compile(r"\b(?:the|be|to|of|and|that|have|with)\b")


def stdlib_files(root: Path, suffix: str) -> list[Path]:
    """Public source files under `root`, sorted; test suites, IDLE, generated tables and vendored code
    are skipped."""
    found: list[Path] = []
    for path in sorted(root.rglob(f"*{suffix}")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith("config-") for part in rel.parts[:-1]):
            continue
        found.append(path)
    return found


def module_name(rel: Path) -> str | None:
    """Dotted public module name of a stdlib file, or None for private modules."""
    name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
    if name in PUBLIC_TWIN:
        return PUBLIC_TWIN[name]
    if any(part.startswith("_") for part in name.split(".")):
        return None
    return name


def psf_only(source: str) -> bool:
    """True unless the file carries a copyright notice other than the PSF's (such files may have their
    own licence terms, so they stay out of the sample)."""
    lowered = source.lower()
    return "copyright" not in lowered or "python software foundation" in lowered


def clean_docstring(doc: str) -> list[str]:
    """Prose paragraphs of a docstring, each joined into one line.

    Indented blocks, doctests, bullet and field lists, reST directives and paragraphs that are mostly
    identifiers are dropped; inline reST roles and emphasis are reduced to their text.
    """
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", doc.strip()):
        lines = block.split("\n")
        if any(line.startswith((" ", "\t")) for line in lines):
            continue
        if any(line.lstrip().startswith((">>>", "...", "-", "*", "+", ".. ", "|", ":")) for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        text = _ROLE.sub(r"\1", text).replace("``", "")
        text = _EMPHASIS.sub(r"\1", text)
        text = re.sub(r"\s{2,}", " ", text)
        words = text.split()
        if len(words) < 6 or not text.endswith((".", "!", "?")) or text.endswith("..."):
            continue
        wordy = sum(1 for w in words if re.search(r"[A-Za-z]{2}", w) and not re.search(r"[_()\[\]=<>{}]", w))
        if wordy / len(words) < 0.75 or NATURAL_PII.search(text) or "http" in text or "::" in text:
            continue
        paragraphs.append(text)
    return paragraphs


def _is_property(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    names = [ast.unparse(d) for d in node.decorator_list]
    return any(n in ("property", "cached_property", "functools.cached_property") for n in names)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The parameter list as written, `self`/`cls` dropped; "..." when it is long."""
    args = node.args
    if args.args and args.args[0].arg in ("self", "cls"):
        args = ast.arguments(
            posonlyargs=args.posonlyargs, args=args.args[1:], vararg=args.vararg, kwonlyargs=args.kwonlyargs,
            kw_defaults=args.kw_defaults, kwarg=args.kwarg, defaults=args.defaults,
        )  # fmt: skip
    rendered = ast.unparse(args)
    return rendered if len(rendered) <= 60 else "..."


def _function_sections(body: list[ast.stmt], prefix: str) -> list[tuple[str, list[str]]]:
    sections = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            paragraphs = clean_docstring(ast.get_docstring(node) or "")
            heading = prefix + node.name + ("" if _is_property(node) else f"({_signature(node)})")
            if paragraphs:
                sections.append((heading, paragraphs))
    return sections


@dataclass
class PageUnit:
    """A module, or one large class, whose docstrings become one English page."""

    name: str
    module: str
    sections: list[tuple[str, list[str]]]

    @property
    def words(self) -> int:
        return sum(len(p.split()) for _, paragraphs in self.sections for p in paragraphs)


def page_units(path: Path, module: str) -> list[PageUnit]:
    """Split one stdlib file into pages: each class with enough prose gets its own, the rest share one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_sections: list[tuple[str, list[str]]] = []
    module_doc = clean_docstring(ast.get_docstring(tree) or "")
    if module_doc:
        module_sections.append((module, module_doc))
    module_sections += _function_sections(tree.body, f"{module}.")
    units = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            qualname = f"{module}.{node.name}"
            class_sections = []
            class_doc = clean_docstring(ast.get_docstring(node) or "")
            if class_doc:
                class_sections.append((qualname, class_doc))
            class_sections += _function_sections(node.body, f"{qualname}.")
            unit = PageUnit(qualname, module, class_sections)
            if unit.words >= MIN_PAGE_WORDS:
                units.append(unit)
            else:
                module_sections += class_sections
    unit = PageUnit(module, module, module_sections)
    if unit.words >= MIN_PAGE_WORDS:
        units.insert(0, unit)
    return units


def render_page(unit: PageUnit) -> str:
    """Title line, then each section's heading and paragraphs, until PAGE_TARGET_CHARS is passed.

    Sibling methods often share whole sentences (json.dump and json.dumps share most of their
    docstrings), so a paragraph already on the page is left out, and a section that would push the
    page's repeated word-5-gram share over 0.10 is skipped: pages stay clear of Gopher's repetition rules.
    """
    parts = [unit.name]
    seen: set[str] = set()
    for heading, paragraphs in unit.sections:
        if sum(map(len, parts)) > PAGE_TARGET_CHARS:
            break
        fresh = [p for p in paragraphs if p not in seen]
        if not fresh:
            continue
        candidate = [*parts, heading, *fresh] if heading != unit.name else [*parts, *fresh]
        if len(parts) > 1 and duplicated_ngram_fraction(" ".join(candidate).split()) > 0.10:
            continue
        parts = candidate
        seen.update(fresh)
    return "\n\n".join(parts) + "\n"


def duplicated_ngram_fraction(words: list[str], n: int = 5) -> float:
    """Share of word characters covered by word n-grams that occur more than once (Gopher's measure)."""
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i : i + n])] > 1:
            covered[i : i + n] = [True] * n
    total = sum(map(len, words))
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total if total else 0.0


def looks_like_prose(text: str) -> bool:
    """Cheap stand-in for the pipeline's web rules, so every harvested page is one it should keep.

    The duplicated-5-gram bound (0.10) is Gopher's bound for 10-grams, so every 5..10-gram rule passes.
    """
    words = text.split()
    lines = [line for line in text.splitlines() if line.strip()]
    ended = sum(line.rstrip().endswith((".", "!", "?")) for line in lines)
    return (
        len(words) >= MIN_PAGE_WORDS
        and len(_STOP.findall(text.lower())) >= 10
        and ended / len(lines) > 0.5  # headings (identifiers, maybe code-like) stay a minority
        and duplicated_ngram_fraction(words) <= 0.10
        and len(text.encode()) <= MAX_DOC_BYTES
    )


def harvest_stdlib_units() -> list[PageUnit]:
    """Every candidate page of the standard library, in a stable order."""
    units = []
    for path in stdlib_files(STDLIB, ".py"):
        module = module_name(path.relative_to(STDLIB))
        if module is None or not psf_only(path.read_text(encoding="utf-8")):
            continue
        units.extend(page_units(path, module))
    return units


def page_url(unit: PageUnit) -> str:
    anchor = "" if unit.name == unit.module else f"#{unit.name}"
    return f"{DOCS_URL}{unit.module}.html{anchor}"


def select_stdlib_pages(units: list[PageUnit], index: NearDupIndex) -> tuple[list[Doc], list[PageUnit]]:
    """Pick N_STDLIB_PAGES pages by keyed rank, at most PER_PACKAGE_PAGES per top-level package and none
    a near duplicate of another (posixpath and ntpath share docstrings). Returns (pages, leftovers)."""
    chosen: list[Doc] = []
    leftovers: list[PageUnit] = []
    per_package: Counter[str] = Counter()
    for unit in ranked(units, "stdlib-page", key=lambda u: u.name):
        text = render_page(unit)
        package = unit.module.split(".")[0]
        if len(chosen) >= N_STDLIB_PAGES or per_package[package] >= PER_PACKAGE_PAGES:
            leftovers.append(unit)
            continue
        if not looks_like_prose(text) or index.most_similar(text)[0] > NEAR_DUP_SCREEN:
            continue
        per_package[package] += 1
        key = f"stdlib-page:{unit.name}"
        index.add(key, text)
        chosen.append(
            Doc(key, text, page_url(unit), "stdlib-docstrings", "web_en", "en", "stdlib_page",
                f"cpython-{PY_VERSION}-docstrings")
        )  # fmt: skip
    if len(chosen) < N_STDLIB_PAGES:
        raise SystemExit(f"only {len(chosen)} stdlib pages qualified; lower N_STDLIB_PAGES")
    return chosen, leftovers


def written_english_articles(index: NearDupIndex) -> list[Doc]:
    """Short encyclopedic articles written for gemmaflow: English prose that is not about Python."""
    docs = []
    for slug, title, body in ENGLISH_ARTICLES:
        text = f"{title}\n\n{unwrap(body)}\n"
        key = f"article:{slug}"
        index.add(key, text)
        docs.append(
            Doc(key, text, f"https://encyclopedia.example/en/{slug}", "web-crawl", "web_en", "en", "article",
                "written-for-gemmaflow")
        )  # fmt: skip
    return docs


# --------------------------------------------------------------------------------------------------
# Non-English prose, code and math
# --------------------------------------------------------------------------------------------------


def non_english_articles(index: NearDupIndex) -> list[Doc]:
    """Hand-written articles in other languages; the language filter must drop every one (CJK paragraphs
    are joined without spaces, as those scripts are written)."""
    docs = []
    for lang, slug, title, body in OTHER_LANGUAGE_ARTICLES:
        joiner = "" if lang in ("zh", "ja") else " "
        text = f"{title}\n\n{unwrap(body, joiner)}\n"
        key = f"article-{lang}:{slug}"
        index.add(key, text)
        docs.append(
            Doc(key, text, f"https://encyclopedia.example/{lang}/{slug}", "web-crawl", "web_other", lang,
                "article", "written-for-gemmaflow")
        )  # fmt: skip
    return docs


def code_is_clean(text: str) -> bool:
    """A file the code rules should keep, with nothing a PII scrubber would flag."""
    lines = text.split("\n")
    head = "\n".join(lines[:5]).lower()
    return (
        not any(marker in head for marker in AUTOGEN_MARKERS)
        and max(map(len, lines)) <= 120
        and not NATURAL_PII.search(text)
        and psf_only(text)
    )


def select_code(used_modules: set[str], index: NearDupIndex) -> list[Doc]:
    """Whole .py files (modules not already used for English pages) and public C headers, ranked by key,
    at most PER_PACKAGE_CODE files per top-level package, none a near duplicate of another doc."""
    docs: list[Doc] = []
    per_package: Counter[str] = Counter()
    py_files = [p for p in stdlib_files(STDLIB, ".py") if 1_500 <= p.stat().st_size <= 14_000]
    for path in ranked(py_files, "code-py", key=lambda p: p.relative_to(STDLIB).as_posix()):
        rel = path.relative_to(STDLIB).as_posix()
        module = ".".join(Path(rel).with_suffix("").parts).removesuffix(".__init__")
        module = PUBLIC_TWIN.get(module, module)
        package = module.split(".")[0]
        if module in used_modules or per_package[package] >= PER_PACKAGE_CODE or len(docs) >= N_CODE_PY:
            continue
        text = path.read_text(encoding="utf-8")
        if not code_is_clean(text) or index.most_similar(text)[0] > NEAR_DUP_SCREEN:
            continue
        per_package[package] += 1
        key = f"code-py:{rel}"
        index.add(key, text)
        docs.append(Doc(key, text, f"{CPYTHON_BLOB}/Lib/{rel}", "cpython-source", "code", None, "py",
                        f"cpython-{PY_VERSION}-lib"))  # fmt: skip
    # pyconfig.h is generated by configure for this platform, not a file of the CPython repository.
    headers = [p for p in sorted(INCLUDE.glob("*.h")) if p.name != "pyconfig.h" and p.stat().st_size >= 800]
    headers = [p for p in headers if p.stat().st_size <= 14_000]
    n_headers = 0
    for path in ranked(headers, "code-h", key=lambda p: p.name):
        text = path.read_text(encoding="utf-8")
        if n_headers >= N_CODE_H or not code_is_clean(text) or index.most_similar(text)[0] > NEAR_DUP_SCREEN:
            continue
        n_headers += 1
        key = f"code-h:{path.name}"
        index.add(key, text)
        docs.append(Doc(key, text, f"{CPYTHON_BLOB}/Include/{path.name}", "cpython-source", "code", None,
                        "c_header", f"cpython-{PY_VERSION}-include"))  # fmt: skip
    if len(docs) < N_CODE_PY + N_CODE_H:
        raise SystemExit(f"only {len(docs)} code files qualified")
    return docs


def math_documents(index: NearDupIndex) -> list[Doc]:
    """Hand-written LaTeX sources (.tex) and Markdown notes with $...$ formulas."""
    docs = []
    for slug, lang, body in LATEX_DOCUMENTS:
        text = textwrap.dedent(body).strip() + "\n"
        key = f"math-tex:{slug}"
        index.add(key, text)
        docs.append(Doc(key, text, f"https://notes.example.edu/latex/{slug}.tex", "math-notes", "math", lang,
                        "latex", "written-for-gemmaflow"))  # fmt: skip
    for slug, body in MARKDOWN_MATH:
        text = textwrap.dedent(body).strip() + "\n"
        key = f"math-md:{slug}"
        index.add(key, text)
        docs.append(Doc(key, text, f"https://notes.example.edu/md/{slug}.md", "math-notes", "math", "en",
                        "markdown", "written-for-gemmaflow"))  # fmt: skip
    return docs


# --------------------------------------------------------------------------------------------------
# Junk: generated, seeded, one generator per kind; each is something the curate rules must drop
# --------------------------------------------------------------------------------------------------


def _host(rng: random.Random) -> str:
    return "-".join(rng.sample(JUNK_HOST_WORDS, 2)) + ".example"


def junk_keyword_stuffing(rng: random.Random, i: int) -> str:
    """A few money keywords repeated until they dominate the page (Gopher top-n-gram rules)."""
    keyword, place = KEYWORD_SETS[i % len(KEYWORD_SETS)]
    pieces = []
    for _ in range(rng.randint(45, 70)):
        pieces.append(rng.choice([
            f"{keyword}", f"best {keyword}", f"{keyword} {place}", f"cheap {keyword}", f"{keyword} online",
            f"buy {keyword} now", f"top {keyword} deals", f"{keyword} {keyword}",
        ]))  # fmt: skip
    return f"{keyword.title()} | {keyword} {place}\n\n" + ", ".join(pieces) + ".\n"


def junk_word_salad(rng: random.Random, source_words: list[str], stop_words: bool) -> str:
    """Real words in random order, no punctuation. Without Gopher's stop words the Gopher quality rule
    drops it; with them only C4's sentence rule, FineWeb's punctuation rule or a quality classifier can."""
    words = [w for w in re.findall(r"[a-z]+", " ".join(source_words).lower()) if len(w) <= 14]
    if not stop_words:
        words = [w for w in words if not _STOP.fullmatch(w)]
    rng.shuffle(words)
    words = words[: rng.randint(140, 220)]
    lines = []
    while words:
        take = rng.randint(9, 15)
        lines.append(" ".join(words[:take]))
        words = words[take:]
    return "\n".join(lines) + "\n"


def junk_link_farm(rng: random.Random) -> str:
    """Anchor text and links, one per line, pointing at generated hosts."""
    lines = []
    for _ in range(rng.randint(25, 40)):
        kw = rng.choice(KEYWORD_SETS)[0]
        path = "-".join(rng.sample(JUNK_HOST_WORDS, 3))
        lines.append(f"{rng.choice(LINK_PREFIXES)} {kw} >> http://{_host(rng)}/{path}.html")
    return "\n".join(lines) + "\n"


def junk_boilerplate_nav(rng: random.Random) -> str:
    """A page that is only navigation: menus, breadcrumbs and a footer."""
    menu = rng.sample(NAV_ITEMS, rng.randint(8, 14))
    crumbs = " > ".join(rng.sample(NAV_ITEMS, 3))
    footer = rng.sample(FOOTER_ITEMS, 4)
    year = rng.randint(2009, 2024)
    lines = ["Skip to main content", *menu, crumbs, *footer, f"\u00a9 {year} All rights reserved"]
    return "\n".join(lines) + "\n"


def junk_cookie_legal(rng: random.Random) -> str:
    """Cookie banners and legal boilerplate: C4's policy-line rule empties the page."""
    lines = rng.sample(COOKIE_LINES, rng.randint(3, 6))
    return "\n".join([*lines, " | ".join(rng.sample(COOKIE_BUTTONS, 3))]) + "\n"


def junk_lorem_ipsum(rng: random.Random) -> str:
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


def junk_repeated_line(rng: random.Random, i: int) -> str:
    """One line repeated 30 times (Gopher duplicate-line rules)."""
    line = REPEATED_LINES[i % len(REPEATED_LINES)]
    return "\n".join([line] * 30) + "\n"


def junk_symbols_numbers(rng: random.Random) -> str:
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


def junk_too_short(rng: random.Random, i: int) -> str:
    """Fragments under ten words."""
    return SHORT_FRAGMENTS[i % len(SHORT_FRAGMENTS)] + "\n"


def junk_mojibake(rng: random.Random, base: str) -> str:
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


def junk_documents(rng: random.Random, leftovers: list[PageUnit]) -> list[Doc]:
    """60 junk pages. Word salad and mojibake start from stdlib pages that were NOT selected, so none of
    their text appears anywhere else in the sample."""
    bases = [render_page(u) for u in ranked(leftovers, "junk-base", key=lambda u: u.name)[:12]]
    plan: list[tuple[str, str, Callable[[int], str]]] = []
    plan += [("keyword_stuffing", "en", lambda i: junk_keyword_stuffing(rng, i))] * 7
    plan += [("word_salad", "en", lambda i: junk_word_salad(rng, bases[i].split(), False))] * 4
    plan += [("word_salad_stopwords", "en", lambda i: junk_word_salad(rng, bases[i + 4].split(), True))] * 3
    plan += [("link_farm", "en", lambda i: junk_link_farm(rng))] * 7
    plan += [("boilerplate_nav", "en", lambda i: junk_boilerplate_nav(rng))] * 6
    plan += [("cookie_legal", "en", lambda i: junk_cookie_legal(rng))] * 6
    plan += [("lorem_ipsum", "la", lambda i: junk_lorem_ipsum(rng))] * 6
    plan += [("repeated_line", "en", lambda i: junk_repeated_line(rng, i))] * 6
    plan += [("symbols_numbers", "zxx", lambda i: junk_symbols_numbers(rng))] * 5
    plan += [("too_short", "en", lambda i: junk_too_short(rng, i))] * 5
    plan += [("mojibake", "en", lambda i: junk_mojibake(rng, bases[7 + i][:1400]))] * 5
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
        url = f"http://{_host(rng)}/{'-'.join(rng.sample(JUNK_HOST_WORDS, 2))}.html"
        docs.append(Doc(key, text, url, "web-crawl", "junk", lang, variant, "generated"))
    return docs


# --------------------------------------------------------------------------------------------------
# Roles: which English pages and code files get copies, PII, decoys or a pasted benchmark item
# --------------------------------------------------------------------------------------------------


@dataclass
class Roles:
    """Disjoint groups of documents, one per thing done to them."""

    exact_web: list[Doc]
    near_web: list[Doc]
    pii: list[Doc]
    decoy_only: list[Doc]
    contaminated: list[Doc]
    exact_code: list[Doc]
    near_code: list[Doc]
    explicit_domain: list[Doc]


def _plan_total(plan: Sequence[tuple[int, int]]) -> int:
    return sum(n for n, _ in plan)


def assign_roles(web: list[Doc], code: list[Doc]) -> Roles:
    """Disjoint sets of documents per role, by keyed rank. Near-copy originals need >= 200 words so a few
    edits leave a clear near duplicate; the accented article is always an exact original (its NFD copy)."""
    accented = f"article:{ACCENTED_ARTICLE}"
    pool = sorted(ranked(web, "roles-web"), key=lambda d: d.key != accented)  # stable: accented first
    near_web = [d for d in pool if d.key != accented and len(d.text.split()) >= 200][: _plan_total(NEAR_WEB)]
    near_keys = {d.key for d in near_web}
    rest = [d for d in pool if d.key not in near_keys]
    n_exact = _plan_total(EXACT_WEB)
    exact_web, rest = rest[:n_exact], rest[n_exact:]
    pii, rest = rest[:N_PII_DOCS], rest[N_PII_DOCS:]
    decoy_only, rest = rest[:N_DECOY_ONLY_DOCS], rest[N_DECOY_ONLY_DOCS:]
    contaminated = rest[:N_CONTAMINATED]
    py = [d for d in ranked(code, "roles-code") if d.variant == "py"]
    n_exact_code, n_near_code = _plan_total(EXACT_CODE), _plan_total(NEAR_CODE)
    return Roles(
        exact_web, near_web, pii, decoy_only, contaminated,
        py[:n_exact_code], py[n_exact_code : n_exact_code + n_near_code],
        py[n_exact_code + n_near_code : n_exact_code + n_near_code + N_EXPLICIT_CODE_DOMAIN],
    )  # fmt: skip


def mirror_url(url: str, n: int) -> str:
    """The same page on a generated mirror host (keeps the path, so the extension still says .py/.html)."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    return f"https://mirror{n}.example.net/{path}"


def exact_copies(originals: list[Doc], plan: Sequence[tuple[int, int]], rng: random.Random) -> list[Doc]:
    """Copies whose normalised text equals the original's. Most are byte-identical; a few differ only in
    what the normalise stage repairs (CRLF line ends, Unicode NFD, control characters), so exact dedupe
    is also tested on text that hashes equal only after normalisation."""
    copies = []
    counts = [c for n, c in plan for _ in range(n)]
    special = {0: "nfd", 1: "crlf", 2: "crlf", 3: "control_chars"}
    k = 0
    for original, n_copies in zip(originals, counts, strict=True):
        group = f"exact:{original.key}"
        original.group, original.dup_kind, original.dup_role = group, "exact", "original"
        for c in range(n_copies):
            text = original.text
            variant = special.get(k, "verbatim") if original.kind == "web_en" else "verbatim"
            if variant == "nfd" and text == unicodedata.normalize("NFD", text):
                variant = "verbatim"  # nothing to decompose
            if variant == "nfd":
                text = unicodedata.normalize("NFD", text)
            elif variant == "crlf":
                text = text.replace("\n", "\r\n")
            elif variant == "control_chars":
                lines = text.split("\n")
                for j in sorted(rng.sample(range(len(lines)), min(3, len(lines)))):
                    lines[j] += "\x00"
                text = "\n".join(lines)
            k += 1
            copies.append(
                Doc(f"{original.key}#exact{c}", text, mirror_url(original.url, rng.randint(1, 9)),
                    "code-mirror" if original.kind == "code" else "web-crawl", original.kind, original.lang,
                    original.variant, original.origin, group=group, dup_kind="exact", dup_role="copy",
                    dup_ops=[variant])
            )  # fmt: skip
    return copies


def _edit_prose(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """A few word substitutions/insertions/deletions in body lines, plus a header or footer line."""
    lines = text.split("\n")
    body = [i for i, line in enumerate(lines) if len(line.split()) >= 12]
    ops: list[str] = []
    for op in rng.sample(["substitute", "substitute", "insert", "delete", "substitute"], rng.randint(2, 4)):
        i = rng.choice(body)
        words = lines[i].split(" ")
        j = rng.randrange(1, len(words) - 1)
        if op == "substitute":
            words[j] = rng.choice(NEAR_DUP_WORDS)
        elif op == "insert":
            words.insert(j, rng.choice(NEAR_DUP_WORDS))
        else:
            del words[j]
        lines[i] = " ".join(words)
        ops.append(op)
    if rng.random() < 0.5:
        lines = [rng.choice(NEAR_DUP_HEADERS), "", *lines]
        ops.append("header")
    else:
        lines = [*lines[:-1], "", rng.choice(NEAR_DUP_FOOTERS), ""]  # the text ends in "\n": lines[-1] == ""
        ops.append("footer")
    return "\n".join(lines), ops


def _edit_code(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """A mirror header comment and one or two inserted review comments; the code itself still runs."""
    lines = text.split("\n")
    ops = ["header_comment"]
    for _ in range(rng.randint(1, 2)):
        candidates = [
            i for i, line in enumerate(lines) if line.strip() and not line.rstrip().endswith(("\\", ","))
        ]
        i = rng.choice(candidates[len(candidates) // 4 :])
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines.insert(i, indent + rng.choice(CODE_COMMENTS))
        ops.append("insert_comment")
    header = rng.choice(CODE_HEADERS)
    if lines[0].startswith("#!"):
        lines.insert(1, header)
    else:
        lines.insert(0, header)
    return "\n".join(lines), ops


def near_copies(originals: list[Doc], plan: Sequence[tuple[int, int]], rng: random.Random) -> list[Doc]:
    """Copies with small edits, for the near-dedupe stage; each records its edits and its Jaccard."""
    copies = []
    counts = [c for n, c in plan for _ in range(n)]
    for original, n_copies in zip(originals, counts, strict=True):
        group = f"near:{original.key}"
        original.group, original.dup_kind, original.dup_role = group, "near", "original"
        for c in range(n_copies):
            edit = _edit_code if original.kind == "code" else _edit_prose
            text, ops = edit(original.text, rng)
            score = jaccard(shingles(original.text), shingles(text))
            if not 0.6 <= score < 1.0:
                raise SystemExit(f"near copy of {original.key} has Jaccard {score:.3f}")
            copies.append(
                Doc(f"{original.key}#near{c}", text, mirror_url(original.url, rng.randint(1, 9)),
                    "code-mirror" if original.kind == "code" else "web-crawl", original.kind, original.lang,
                    original.variant, original.origin, group=group, dup_kind="near", dup_role="copy",
                    dup_ops=ops, dup_jaccard=round(score, 4))
            )  # fmt: skip
    return copies


# --------------------------------------------------------------------------------------------------
# PII, decoys and benchmark contamination, inserted as whole paragraphs into English pages
# --------------------------------------------------------------------------------------------------


def _insert_paragraph(text: str, paragraph: str, rng: random.Random) -> str:
    """Insert after a random paragraph (never before the title and its first paragraph)."""
    paragraphs = text.rstrip("\n").split("\n\n")
    at = rng.randint(2, max(2, len(paragraphs)))
    paragraphs.insert(at, paragraph)
    return "\n\n".join(paragraphs) + "\n"


def _fill(template: str, rng: random.Random, cursor: Counter[str]) -> tuple[str, list[tuple[str, str]]]:
    """Fill a template's {type} slots from the value pools, cycling so every value gets used."""
    values: list[tuple[str, str]] = []

    def take(kind: str) -> str:
        pool = PII_VALUES[kind]
        value = pool[cursor[kind] % len(pool)]
        cursor[kind] += 1
        return value

    filled: dict[str, str] = {}
    for name in re.findall(r"\{(\w+)\}", template):
        kind = re.sub(r"_\d+$", "", name)
        if name not in filled:
            filled[name] = take(kind)
            values.append((PII_LABEL_TYPE.get(kind, kind), filled[name]))
    return template.format(**filled), values


def _spans(text: str, values: Iterable[tuple[str, str]], kind_key: str) -> list[dict[str, Any]]:
    """Every occurrence of each value as {start, end, <kind_key>, value}; offsets are code points."""
    spans = []
    for kind, value in sorted(set(values)):
        for match in re.finditer(re.escape(value), text):
            spans.append({"start": match.start(), "end": match.end(), kind_key: kind, "value": value})
    return sorted(spans, key=lambda s: (s["start"], s["end"]))


def inject_pii(docs: list[Doc], rng: random.Random) -> None:
    """1-3 sentences with fictional PII per doc, cycling through the PII types so each appears several
    times; about a third also get a sentence of decoys (numbers that look like PII but are not)."""
    cursor: Counter[str] = Counter()
    kinds = list(PII_TEMPLATES)
    for n, doc in enumerate(docs):
        picked = [kinds[(n + k * 3) % len(kinds)] for k in range(1 + n % 3)]  # 1-3 different types
        sentences, values = [], []
        for kind in picked:
            sentence, used = _fill(rng.choice(PII_TEMPLATES[kind]), rng, cursor)
            sentences.append(sentence)
            values += used
        decoys: list[tuple[str, str]] = []
        if n % 3 == 0:
            sentence, decoys = rng.choice(DECOY_SENTENCES)
            sentences.insert(rng.randint(0, len(sentences)), sentence)
        doc.text = _insert_paragraph(doc.text, " ".join(sentences), rng)
        doc.pii = _spans(doc.text, values, "type")
        doc.decoys = _spans(doc.text, decoys, "kind")


def inject_decoys(docs: list[Doc], rng: random.Random) -> None:
    """Clean pages that carry only decoys: a PII scrubber should leave them untouched."""
    for n, doc in enumerate(docs):
        sentence, decoys = DECOY_SENTENCES[n % len(DECOY_SENTENCES)]
        doc.text = _insert_paragraph(doc.text, sentence, rng)
        doc.decoys = _spans(doc.text, decoys, "kind")


def contaminate(docs: list[Doc], rng: random.Random) -> None:
    """Paste one benchmark item (question and answer, verbatim) into each doc, as a forum page quoting
    a test question would."""
    items = ranked(BENCHMARK, "contaminate", key=lambda b: b["id"])[: len(docs)]
    for doc, item in zip(docs, items, strict=True):
        doc.text = _insert_paragraph(doc.text, f"{item['question']}\n{item['answer']}", rng)
        doc.contaminated_with = item["id"]


# --------------------------------------------------------------------------------------------------
# Assembly and output
# --------------------------------------------------------------------------------------------------


def check_pii_values() -> None:
    """The fake numbers must still be well-formed, or the PII stage would rightly ignore them."""
    for card in PII_VALUES["credit_card"]:
        assert luhn_ok(card), card
    for iban in PII_VALUES["iban"]:
        assert iban_ok(iban), iban
    for _, decoys in DECOY_SENTENCES:
        for kind, value in decoys:
            if kind == "non_luhn_number":
                assert not luhn_ok(value), value


def screen_near_duplicates(docs: list[Doc]) -> float:
    """Largest word-5-gram Jaccard between two docs that are NOT in the same duplicate group."""
    index = NearDupIndex()
    worst = 0.0
    by_key = {d.key: d for d in docs}
    for doc in docs:
        similar = index.similar(doc.text)
        unrelated = [(s, k) for s, k in similar if doc.group is None or by_key[k].group != doc.group]
        if unrelated:
            score, other = unrelated[0]
            worst = max(worst, score)
            if score > 0.5:
                raise SystemExit(f"unlabelled near duplicates: {doc.key} ~ {other} ({score:.2f})")
        index.add(doc.key, doc.text)
    return worst


def build() -> tuple[list[Doc], dict[str, Any]]:
    """All documents, shuffled, with ids; plus facts for the README."""
    check_pii_values()
    rng = random.Random(SEED)
    index = NearDupIndex()
    pages, leftovers = select_stdlib_pages(harvest_stdlib_units(), index)
    articles = written_english_articles(index)
    others = non_english_articles(index)
    used_modules = {d.key.split(":", 1)[1] for d in pages}
    used_modules |= {name.rsplit(".", 1)[0] for name in used_modules}
    code = select_code(used_modules, index)
    math = math_documents(index)
    junk = junk_documents(rng, leftovers)

    roles = assign_roles(pages + articles, code)
    copies = exact_copies(roles.exact_web, EXACT_WEB, rng) + exact_copies(roles.exact_code, EXACT_CODE, rng)
    inject_pii(roles.pii, rng)
    inject_decoys(roles.decoy_only, rng)
    contaminate(roles.contaminated, rng)
    copies += near_copies(roles.near_web, NEAR_WEB, rng) + near_copies(roles.near_code, NEAR_CODE, rng)
    for doc in roles.explicit_domain:
        doc.domain = "code"

    docs = sorted(pages + articles + others + code + math + junk + copies, key=lambda d: d.key)
    worst = screen_near_duplicates(docs)
    rng.shuffle(docs)
    for n, doc in enumerate(docs, start=1):
        doc.doc_id = f"sample-{n:05d}"
        if len(doc.text.encode("utf-8")) > MAX_DOC_BYTES:
            raise SystemExit(f"{doc.key} is over {MAX_DOC_BYTES} bytes")
    modules = sorted({d.key.split(":", 1)[1] for d in pages})
    facts = {"worst_unlabelled_jaccard": worst, "stdlib_modules": modules}
    return docs, facts


def raw_record(doc: Doc) -> dict[str, Any]:
    record: dict[str, Any] = {"id": doc.doc_id, "text": doc.text, "url": doc.url, "source": doc.source}
    if doc.domain is not None:
        record["domain"] = doc.domain
    return record


def label_records(docs: list[Doc]) -> list[dict[str, Any]]:
    """Ground truth per raw id. In each duplicate group the smallest id is the one exact dedupe keeps:
    it has dup_of null; every other member points at it. dup_kind/dup_group are set on all members."""
    survivors: dict[str, str] = {}
    for doc in sorted(docs, key=lambda d: d.doc_id):
        if doc.group is not None:
            survivors.setdefault(doc.group, doc.doc_id)
    by_survivor = sorted(survivors, key=survivors.__getitem__)
    group_ids = {g: f"dg-{n:03d}" for n, g in enumerate(by_survivor, start=1)}
    labels = []
    for doc in sorted(docs, key=lambda d: d.doc_id):
        survivor = survivors.get(doc.group) if doc.group else None
        labels.append({
            "id": doc.doc_id,
            "kind": doc.kind,
            "lang": doc.lang,
            "variant": doc.variant,
            "origin": doc.origin,
            "dup_group": group_ids.get(doc.group) if doc.group else None,
            "dup_of": survivor if survivor != doc.doc_id else None,
            "dup_kind": doc.dup_kind,
            "dup_role": doc.dup_role,
            "dup_ops": doc.dup_ops,
            "dup_jaccard": doc.dup_jaccard,
            "pii": doc.pii,
            "decoys": doc.decoys,
            "contaminated_with": doc.contaminated_with,
        })  # fmt: skip
    return labels


def jsonl(records: Iterable[Any]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def write_gzip(path: Path, data: bytes) -> None:
    """gzip with mtime=0 and no stored file name, so identical input gives identical bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    path.write_bytes(buffer.getvalue())


def _table(counter: Counter[str] | dict[str, int], header: tuple[str, str]) -> str:
    rows = [f"| {header[0]} | {header[1]} |", "|---|---:|"]
    rows += [f"| {k} | {v} |" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(rows)


def readme(
    docs: list[Doc], labels: list[dict[str, Any]], sizes: dict[str, int], facts: dict[str, Any]
) -> str:
    """README.md: files, counts per kind, variant and language, duplicates, PII and contamination."""
    kinds = Counter(d.kind for d in docs)
    variants = Counter(f"{d.kind} / {d.variant}" for d in docs)
    langs = Counter(d.lang or "null (code)" for d in docs)
    dup = Counter(f"{d.dup_kind} {d.dup_role}" for d in docs if d.dup_kind)
    pii = Counter(span["type"] for d in docs for span in d.pii)
    decoys = Counter(span["kind"] for d in docs for span in d.decoys)
    jaccards = sorted(d.dup_jaccard for d in docs if d.dup_jaccard is not None)
    exact_dropped = sum(1 for label in labels if label["dup_kind"] == "exact" and label["dup_of"])
    keep_expected = sum(
        1 for label in labels if label["kind"] in ("web_en", "code", "math")
    ) - exact_dropped
    files = "\n".join(f"| {name} | {size:,} |" for name, size in sizes.items())
    well_formed = [r for r in SFT_RECORDS if r.get("instruction") and isinstance(r.get("response"), str)]
    sft_categories = Counter(str(r["category"]) for r in well_formed)
    return README_TEMPLATE.format(
        n_docs=len(docs),
        py=PY_VERSION,
        zlib=zlib.ZLIB_RUNTIME_VERSION,
        seed=SEED,
        files=files,
        kinds=_table(kinds, ("kind", "docs")),
        variants=_table(variants, ("kind / variant", "docs")),
        langs=_table(langs, ("lang", "docs")),
        sources=_table(Counter(d.source for d in docs), ("source", "docs")),
        n_hard_junk=sum(1 for d in docs if d.variant == "word_salad_stopwords"),
        dups=_table(dup, ("dup_kind dup_role", "docs")),
        n_groups=len({d.group for d in docs if d.group}),
        jmin=jaccards[0],
        jmed=jaccards[len(jaccards) // 2],
        jmax=jaccards[-1],
        worst=facts["worst_unlabelled_jaccard"],
        pii=_table(pii, ("PII type", "spans")),
        n_pii_docs=sum(1 for d in docs if d.pii),
        decoys=_table(decoys, ("decoy kind", "spans")),
        n_contaminated=sum(1 for d in docs if d.contaminated_with),
        n_bench=len(BENCHMARK),
        n_explicit=sum(1 for d in docs if d.domain),
        exact_dropped=exact_dropped,
        keep_expected=keep_expected,
        n_sft=len(SFT_RECORDS),
        n_sft_ok=len(well_formed),
        sft_categories=", ".join(f"{k}: {v}" for k, v in sorted(sft_categories.items())),
    )


def license_text(facts: dict[str, Any]) -> str:
    """LICENSE.md: provenance per kind, then CPython's own terms copied from the interpreter's LICENSE.txt."""
    license_file = STDLIB / "LICENSE.txt"
    terms = license_file.read_text(encoding="utf-8") if license_file.exists() else ""
    start = terms.find("B. TERMS AND CONDITIONS")
    psf_terms = terms[start:].strip() if start >= 0 else "See https://docs.python.org/3/license.html"
    modules = ", ".join(facts["stdlib_modules"])
    return LICENSE_TEMPLATE.format(py=PY_VERSION, modules=modules, psf_terms=psf_terms)


def write_all(out: Path) -> None:
    docs, facts = build()
    labels = label_records(docs)
    out.mkdir(parents=True, exist_ok=True)
    init = '"""Bundled sample corpus (package data); see README.md."""\n'
    (out / "__init__.py").write_text(init, encoding="utf-8")
    write_gzip(out / "raw.jsonl.gz", jsonl(raw_record(d) for d in sorted(docs, key=lambda d: d.doc_id)))
    write_gzip(out / "labels.jsonl.gz", jsonl(labels))
    (out / "benchmark.jsonl").write_bytes(jsonl(BENCHMARK))
    (out / "sft_dolly.jsonl").write_bytes(jsonl(SFT_RECORDS))
    (out / "LICENSE.md").write_text(license_text(facts), encoding="utf-8")
    names = ["raw.jsonl.gz", "labels.jsonl.gz", "benchmark.jsonl", "sft_dolly.jsonl", "LICENSE.md"]
    sizes = {name: (out / name).stat().st_size for name in names}
    (out / "README.md").write_text(readme(docs, labels, sizes, facts), encoding="utf-8")
    kinds = Counter(d.kind for d in docs)
    print(f"wrote {len(docs)} docs to {out}: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS))
    print(", ".join(f"{name} {size:,} B" for name, size in sizes.items()))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: package's)")
    args = parser.parse_args(argv)
    if not PY_VERSION.startswith("3.11."):
        print(f"warning: Python {PY_VERSION}; the committed sample was built with 3.11 and will differ")
    write_all(args.out)


# ==================================================================================================
# Embedded text. Everything below was written for gemmaflow and is dedicated to the public domain
# (CC0 1.0). Facts are kept general; the texts exist to exercise the pipeline, not to teach.
# ==================================================================================================

ACCENTED_ARTICLE = "vienna-coffee-houses"

# (slug, title, body): English articles, hard-wrapped here and unwrapped into one line per paragraph.
ENGLISH_ARTICLES: list[tuple[str, str, str]] = [
    ("tides", "How tides work", """
        Tides are the slow rise and fall of the sea that most coasts see twice a day. They are caused
        mainly by the gravity of the Moon, with a smaller contribution from the Sun. Because gravity
        weakens with distance, the Moon pulls harder on the side of the Earth that faces it than on
        the centre of the planet, and harder on the centre than on the far side.

        The result is that the oceans are stretched into two bulges, one facing the Moon and one on
        the opposite side of the Earth. As the planet turns, a given harbour passes through both
        bulges, which is why many places have two high tides and two low tides in a little more than
        a day. The extra fifty minutes or so come from the Moon moving along its own orbit while the
        Earth rotates.

        When the Sun and the Moon line up, at new moon and full moon, their effects add together and
        the range between high and low water is largest. These are called spring tides, although they
        have nothing to do with the season. When the two bodies are at right angles, the ranges are
        smallest, and sailors speak of neap tides.

        Local geography changes the picture a great deal. Narrow bays and funnel-shaped estuaries can
        amplify the tide to many metres, while enclosed seas such as the Mediterranean have only a
        small range. Tide tables for a port are therefore computed from long records of measurements
        at that port rather than from astronomy alone.
    """),
    ("sourdough", "Sourdough bread", """
        Sourdough is bread leavened by a culture of wild yeasts and lactic acid bacteria instead of
        commercial baker's yeast. The culture, usually called a starter, is a simple mixture of flour
        and water that has been fed regularly until a stable community of microbes has settled in it.
        Bakers keep a starter alive for years by discarding part of it and feeding the rest with
        fresh flour and water.

        The yeasts in the starter produce carbon dioxide, which is trapped by the gluten network of
        the dough and makes it rise. The bacteria produce lactic and acetic acids, which give the
        bread its characteristic sour taste and help it keep longer. The balance between the two
        depends on temperature, hydration and the time the dough is left to ferment.

        Because wild cultures work more slowly than packaged yeast, a sourdough loaf often takes a
        day or more from mixing to baking. Many bakers let the shaped dough rest overnight in a cool
        place, which develops flavour and makes the loaf easier to score. The long fermentation also
        breaks down part of the starches and proteins in the flour, and some people find the bread
        easier to digest as a result.

        Sourdough was the normal way to make leavened bread for thousands of years. It remained
        common in many regions even after industrial yeast became cheap, and it has become popular
        again with home bakers who enjoy the craft of keeping a culture alive.
    """),
    ("printing-press", "The printing press", """
        The movable-type printing press developed in Europe in the middle of the fifteenth century
        changed the way knowledge was copied and shared. Before it, books were written out by hand,
        which made them slow to produce, expensive to buy and prone to copying errors that multiplied
        from one manuscript to the next.

        The key idea was to cast individual letters in metal so that they could be arranged into a
        page, inked, pressed onto paper many times, and then taken apart and reused. Printers combined
        this with an oil-based ink that stuck to metal and with a screw press adapted from the presses
        used for wine and olive oil. A single workshop could now produce hundreds of identical copies
        of a text in the time a scribe needed for one.

        Within a few decades printing shops had opened in most large cities of Europe. Prices of books
        fell, and pamphlets, calendars and broadsheets reached readers who had never owned a book.
        Because every copy of an edition was the same, scholars in different cities could refer to
        the same page and line, which made debate and correction much easier.

        Historians still argue about how much the press caused and how much it simply accelerated,
        but few doubt that the spread of cheap printed text played a part in the growth of literacy,
        in religious and political movements, and in the rise of modern science.
    """),
    ("lighthouses", "Lighthouses", """
        A lighthouse is a tower that carries a bright light to guide ships along a coast and warn
        them of rocks, shoals and the entrances to harbours. Each lighthouse has its own pattern of
        flashes, called its character, so that a navigator who sees a light at night can look it up
        on the chart and work out where the ship is.

        Early lighthouses burned wood or coal in open fires, which were smoky and hard to see from far
        away. Oil lamps with reflectors were an improvement, but the great change came with the
        Fresnel lens in the nineteenth century. By breaking a large lens into rings of glass prisms,
        it could gather almost all of the light from a lamp into a narrow beam that was visible many
        miles out to sea while remaining light enough to rotate.

        For a long time every lighthouse needed keepers who lived on site, trimmed the wicks, wound
        the clockwork that turned the lens and kept the glass clean. Their work was lonely and often
        dangerous, especially on towers built on isolated rocks. Electric lamps and automatic controls
        gradually made the keepers unnecessary, and today most lights are monitored remotely.

        Satellite navigation has reduced the role of lighthouses, but they remain part of the system
        of aids to navigation, because a light that can be seen with the naked eye still works when
        electronic equipment fails.
    """),
    ("honeybee-dance", "The waggle dance of honeybees", """
        Honeybees that have found a good source of nectar or pollen can tell their nest mates where it
        is. They do this with a behaviour known as the waggle dance, performed on the vertical surface
        of the comb inside the dark hive. The dance was decoded in the twentieth century through long
        series of patient observations and experiments.

        During the dance a forager runs forward in a straight line while shaking her abdomen from side
        to side, then loops back to the starting point and repeats the run. The angle of the straight
        run relative to the vertical tells the other bees the direction of the food relative to the
        position of the sun. The length of the waggle run tells them how far away it is: the longer
        the run, the more distant the flowers.

        Bees that follow the dancer pick up the scent of the flowers she has visited and then fly out
        to search in the indicated direction. Not every recruit finds the source on the first try,
        but the information is good enough to concentrate the colony's effort on the richest patches
        of flowers in the landscape.

        The dance is an example of symbolic communication in an insect, and it has made honeybees one
        of the most studied animals in behavioural research. It also shows how a colony can make good
        collective decisions without any single bee having an overview of the whole situation.
    """),
    ("composting", "Composting at home", """
        Composting is the controlled decay of kitchen scraps, garden waste and other organic material
        into a dark, crumbly substance that improves soil. The work is done by bacteria, fungi, worms
        and many small invertebrates, and the gardener's task is mainly to give them the conditions
        they need: air, moisture and a sensible mix of ingredients.

        A useful rule of thumb is to combine green materials, such as vegetable peelings and fresh
        grass clippings, with brown materials, such as dry leaves, straw and shredded cardboard. Green
        materials are rich in nitrogen and decompose quickly, while brown materials supply carbon and
        keep the heap open so that air can reach the microbes. A heap that smells unpleasant usually
        has too much green material or too little air.

        Turning the heap every week or two speeds up the process, because it brings fresh oxygen to
        the centre and mixes the outer layers back in. A well managed heap can become warm to the
        touch in its middle, which helps to kill weed seeds. Without turning, compost still forms, but
        it may take a year or more.

        Finished compost can be dug into beds, spread as a mulch around plants or mixed into potting
        soil. Composting also reduces the amount of waste that has to be collected and sent to
        landfill, which is why many towns encourage it.
    """),
    ("rosetta-stone", "The Rosetta Stone", """
        The Rosetta Stone is a slab of dark granodiorite inscribed with a decree issued in Egypt in the
        second century before the common era. Its importance comes from the fact that the same text
        appears on it three times: in hieroglyphs, in the Demotic script used for everyday documents,
        and in ancient Greek, which scholars of the early nineteenth century could read.

        The stone was found in 1799 near the town of Rashid, known in European languages as Rosetta,
        during building work. Copies of the inscriptions were soon circulated among scholars, and
        several of them tried to use the Greek text as a key to the two Egyptian scripts. Progress was
        slow, because many assumed that hieroglyphs were purely symbolic pictures with no connection
        to sounds.

        The breakthrough came when researchers showed that hieroglyphs combined signs for sounds with
        signs for ideas, and that royal names enclosed in oval rings could be matched to names in the
        Greek text. Knowledge of Coptic, the late form of the Egyptian language, helped to connect the
        sounds to words.

        Once the system was understood, thousands of inscriptions and papyri could be read, and the
        study of ancient Egypt changed from speculation into a discipline based on texts. The stone
        itself is one of the most visited objects in the museum where it is displayed.
    """),
    ("bicycle-balance", "Why a moving bicycle stays upright", """
        A bicycle standing still falls over almost at once, yet a moving bicycle can stay upright with
        little effort from the rider, and sometimes with no rider at all. Explaining why turned out to
        be surprisingly difficult, and the question is still a subject of research.

        The main mechanism is steering. When a bicycle starts to lean to one side, the front wheel
        turns towards that side, so that the wheels move back under the centre of mass and the lean
        is corrected. Riders do this without thinking, but the geometry of the frame helps as well.
        The front wheel touches the ground slightly behind the point where the steering axis meets
        the road, an offset called trail, and this makes the wheel turn into a lean by itself.

        For many years the gyroscopic effect of the spinning wheels was thought to be essential. It
        does contribute, but experiments with specially built bicycles have shown that neither the
        gyroscopic effect nor trail is strictly required. What matters is the overall combination of
        masses and angles, which determines whether the machine steers itself in the right way.

        Above a certain speed a well designed bicycle is stable on its own. Below that speed it has to
        be balanced actively, which is why learners find slow riding so much harder than riding at a
        steady pace.
    """),
    ("water-cycle", "The water cycle", """
        The water cycle describes how water moves between the oceans, the air and the land. It has no
        beginning and no end, but it is convenient to start with evaporation. Energy from the sun
        warms the surface of seas, lakes and wet ground, and water escapes into the air as vapour.
        Plants add more vapour through their leaves, a process called transpiration.

        Warm, moist air rises and cools. Because cold air can hold less vapour than warm air, part of
        the vapour condenses into tiny droplets around particles of dust and salt, forming clouds.
        When the droplets or ice crystals grow large enough, they fall as rain, snow or hail. Most of
        this precipitation falls back into the oceans, but a significant share lands on the
        continents.

        On land, water follows several paths. Some runs off the surface into streams and rivers, some
        soaks into the soil and is taken up by plants, and some seeps deeper to recharge groundwater
        that may stay underground for centuries. In cold regions water can be stored for a long time
        as snow and glacial ice before it melts and rejoins the flow.

        The cycle moves heat as well as water, because evaporation absorbs energy and condensation
        releases it. This transport of heat is one of the engines of the weather, and changes in it
        are closely watched by climate scientists.
    """),
    (ACCENTED_ARTICLE, "The coffee houses of Vienna", """
        The Viennese café is more than a place to drink coffee. For generations it has served as a
        reading room, a meeting place and an extension of the living room for people whose flats were
        small and cold. Guests could sit for hours over a single cup, reading the newspapers that
        hung on wooden holders, and the waiter would bring a fresh glass of water without being asked.

        A typical menu lists a bewildering number of coffee drinks. The Melange is similar to a
        cappuccino, the Einspänner is a strong black coffee served in a glass under a crown of whipped
        cream, and the Kapuziner is named after the brown habit of Capuchin friars. Pastries such as
        Apfelstrudel and the chocolate Sachertorte are served alongside, often with a generous spoon
        of Schlagobers, as whipped cream is called in Austria.

        Around the year 1900 several cafés became famous as meeting places for writers, painters and
        scientists. Debates that began at marble tables found their way into essays, novels and
        manifestos, and some regulars had their post delivered to their favourite café rather than to
        their homes.

        The tradition is recognised today as part of Austria's intangible cultural heritage. Many of
        the historic houses still operate, and visitors are welcome to linger over a Melange and a
        newspaper in the same naïve belief as the old regulars that nothing outside is urgent.
    """),
]

# (lang, slug, title, body): short encyclopedic articles in other languages (ISO 639-1 codes).
OTHER_LANGUAGE_ARTICLES: list[tuple[str, str, str, str]] = [
    ("de", "rhein", "Der Rhein", """
        Der Rhein ist einer der längsten und wirtschaftlich wichtigsten Flüsse Europas. Er entspringt in
        den Schweizer Alpen, fließt durch den Bodensee und bildet danach auf einer langen Strecke die
        Grenze zwischen Deutschland und der Schweiz sowie zwischen Deutschland und Frankreich. In den
        Niederlanden teilt er sich in mehrere Arme und mündet schließlich in die Nordsee.

        Seit der Römerzeit ist der Fluss ein bedeutender Verkehrsweg. Heute transportieren große
        Binnenschiffe vor allem Kohle, Erz, Container und Mineralöl zwischen den Seehäfen an der Küste
        und den Industriegebieten im Landesinneren. Das Mittelrheintal zwischen Bingen und Koblenz mit
        seinen Burgen, Weinbergen und steilen Felsen gehört zum Welterbe der UNESCO und ist ein
        beliebtes Ziel für Touristen.

        Die Wasserqualität des Rheins war in der zweiten Hälfte des zwanzigsten Jahrhunderts sehr
        schlecht. Nach einem schweren Chemieunfall im Jahr 1986 einigten sich die Anliegerstaaten auf
        ein gemeinsames Programm, und seitdem sind sogar Lachse in den Fluss zurückgekehrt.
    """),
    ("de", "buchdruck", "Der Buchdruck mit beweglichen Lettern", """
        Um die Mitte des fünfzehnten Jahrhunderts entwickelte Johannes Gutenberg in Mainz ein Verfahren,
        mit dem sich Bücher in großer Zahl herstellen ließen. Die einzelnen Buchstaben wurden aus einer
        Metalllegierung gegossen, zu Zeilen und Seiten zusammengesetzt, mit Farbe eingefärbt und mit
        einer Presse auf Papier gedruckt. Nach dem Druck konnte man die Lettern wieder auseinandernehmen
        und für die nächste Seite verwenden.

        Das bekannteste Werk aus dieser Werkstatt ist eine zweibändige lateinische Bibel, von der heute
        noch einige Dutzend Exemplare erhalten sind. Innerhalb weniger Jahrzehnte verbreitete sich die
        neue Technik in ganz Europa. Bücher wurden billiger, Flugschriften erreichten ein breites
        Publikum, und Gelehrte konnten sich auf identische Ausgaben eines Textes beziehen.

        Viele Historiker sehen in der Erfindung eine wichtige Voraussetzung für die Reformation, für die
        Ausbreitung der Lesefähigkeit und für den Austausch wissenschaftlicher Erkenntnisse in der
        frühen Neuzeit.
    """),
    ("de", "photosynthese", "Photosynthese", """
        Als Photosynthese bezeichnet man den Vorgang, bei dem Pflanzen, Algen und manche Bakterien aus
        Lichtenergie chemische Energie gewinnen. In den Chloroplasten der Blätter fängt der grüne
        Farbstoff Chlorophyll das Sonnenlicht ein. Mit dieser Energie werden Wasser und Kohlendioxid in
        Traubenzucker umgewandelt, und als Nebenprodukt entsteht Sauerstoff, der an die Luft abgegeben
        wird.

        Der Vorgang läuft in zwei Abschnitten ab. In den lichtabhängigen Reaktionen wird Wasser
        gespalten und die Energie in Form von energiereichen Molekülen gespeichert. In den
        lichtunabhängigen Reaktionen, dem sogenannten Calvin-Zyklus, wird mit Hilfe dieser Moleküle
        Kohlendioxid aus der Luft gebunden und zu Zucker aufgebaut.

        Fast alles Leben auf der Erde hängt direkt oder indirekt von der Photosynthese ab. Sie liefert
        die Nahrung am Anfang der meisten Nahrungsketten, und der Sauerstoff in unserer Atmosphäre ist
        über viele Millionen Jahre durch sie entstanden.
    """),
    ("de", "gletscher", "Gletscher in den Alpen", """
        Ein Gletscher ist eine große Masse aus Eis, die sich unter ihrem eigenen Gewicht langsam talwärts
        bewegt. Er entsteht dort, wo im Winter mehr Schnee fällt, als im Sommer schmelzen kann. Über
        viele Jahre verdichtet sich der Schnee zunächst zu Firn und schließlich zu Gletschereis.

        In den Alpen gibt es mehrere tausend Gletscher, die meisten davon sind allerdings klein. Der
        größte ist der Große Aletschgletscher in der Schweiz, der über zwanzig Kilometer lang ist. Seit
        der Mitte des neunzehnten Jahrhunderts haben fast alle Alpengletscher deutlich an Fläche und
        Dicke verloren, und in den letzten Jahrzehnten hat sich dieser Rückgang noch beschleunigt.

        Gletscher sind wichtige Wasserspeicher. Ihr Schmelzwasser speist im Sommer Flüsse wie die Rhone
        und den Inn, und viele Wasserkraftwerke sind darauf angewiesen. Forscher beobachten die
        Veränderungen daher sehr genau.
    """),
    ("de", "bach", "Johann Sebastian Bach", """
        Johann Sebastian Bach war ein deutscher Komponist und Organist des Barock. Er stammte aus einer
        weitverzweigten Musikerfamilie in Thüringen und arbeitete unter anderem in Weimar, in Köthen und
        viele Jahre lang als Thomaskantor in Leipzig. Dort war er für die Musik in den wichtigsten
        Kirchen der Stadt verantwortlich und unterrichtete die Schüler der Thomasschule.

        Sein Werk umfasst Kantaten, Passionen, Messen, Konzerte und eine große Zahl von Stücken für
        Orgel und Cembalo. Besonders bekannt sind die Matthäus-Passion, die Brandenburgischen Konzerte
        und das Wohltemperierte Klavier, eine Sammlung von Präludien und Fugen in allen Tonarten.

        Zu seinen Lebzeiten galt Bach vor allem als hervorragender Organist, während seine Kompositionen
        bald als altmodisch empfunden wurden. Erst im neunzehnten Jahrhundert wurde seine Musik
        wiederentdeckt, und heute gehört er zu den meistgespielten Komponisten der Welt.
    """),
    ("de", "windenergie", "Windenergie", """
        Windkraftanlagen wandeln die Bewegungsenergie des Windes in elektrischen Strom um. Der Wind
        treibt einen Rotor mit meist drei Blättern an, dessen Drehung über eine Welle auf einen
        Generator übertragen wird. Moderne Anlagen an Land haben Nabenhöhen von mehr als hundert Metern,
        weil der Wind in größerer Höhe stärker und gleichmäßiger weht.

        Besonders ergiebig sind Standorte an der Küste und auf dem offenen Meer. Offshore-Windparks in
        der Nord- und Ostsee liefern große Strommengen, sind aber aufwendig zu bauen und zu warten, und
        der Strom muss über lange Kabel an Land gebracht werden.

        Da der Wind nicht immer gleich stark weht, schwankt die Erzeugung. Netzbetreiber gleichen diese
        Schwankungen mit anderen Kraftwerken, mit Speichern und mit dem Austausch von Strom zwischen
        Regionen aus. Der Ausbau der Windenergie ist ein zentraler Teil der Energiewende.
    """),
    ("fr", "loire", "La Loire et ses châteaux", """
        La Loire est le plus long fleuve coulant entièrement en France. Elle prend sa source au pied du
        mont Gerbier de Jonc, dans le Massif central, puis traverse de nombreuses régions avant de se
        jeter dans l'océan Atlantique près de Saint-Nazaire. Son débit est très irrégulier : il peut
        être faible en été et provoquer de fortes crues au printemps.

        La vallée de la Loire est célèbre pour ses châteaux construits ou transformés à la Renaissance,
        lorsque les rois de France séjournaient volontiers dans la région. Chambord, Chenonceau,
        Amboise et Blois attirent chaque année des millions de visiteurs. Une partie de la vallée est
        inscrite au patrimoine mondial de l'UNESCO pour la qualité de ses paysages culturels.

        Le fleuve est parfois appelé le dernier fleuve sauvage d'Europe, car il a été moins aménagé que
        d'autres grands cours d'eau. Ses bancs de sable abritent de nombreux oiseaux migrateurs.
    """),
    ("fr", "marie-curie", "Marie Curie", """
        Marie Curie, née Maria Skłodowska à Varsovie, est une physicienne et chimiste qui a mené
        l'essentiel de sa carrière en France. Arrivée à Paris pour y faire ses études, elle obtient des
        diplômes en physique et en mathématiques, puis commence des recherches sur le rayonnement
        mystérieux émis par certains minerais.

        Avec son mari Pierre Curie, elle découvre deux nouveaux éléments chimiques, le polonium et le
        radium, et elle invente le terme de radioactivité. Elle reçoit le prix Nobel de physique en
        1903, partagé avec Pierre Curie et Henri Becquerel, puis le prix Nobel de chimie en 1911. Elle
        est la première personne à avoir été récompensée dans deux sciences différentes.

        Pendant la Première Guerre mondiale, elle organise des voitures équipées d'appareils de
        radiologie pour soigner les blessés près du front. Ses travaux ont ouvert la voie à de
        nombreuses applications en médecine et en physique nucléaire.
    """),
    ("fr", "baguette", "La baguette de pain", """
        La baguette est un pain long et mince, à la croûte dorée et croustillante et à la mie légère.
        Elle est devenue l'un des symboles de la France, où des millions de baguettes sont vendues
        chaque jour dans les boulangeries. Sa recette est simple : de la farine de blé, de l'eau, du sel
        et de la levure.

        Le savoir-faire du boulanger fait pourtant toute la différence. La pâte doit être pétrie, puis
        reposer assez longtemps pour développer ses arômes. Le façonnage donne à la baguette sa forme
        allongée, et les entailles faites à la lame juste avant la cuisson permettent à la vapeur de
        s'échapper et dessinent les grignes caractéristiques.

        En France, une baguette dite de tradition ne peut contenir aucun additif. En 2022, les savoir-
        faire artisanaux et la culture de la baguette ont été inscrits sur la liste du patrimoine
        culturel immatériel de l'humanité.
    """),
    ("fr", "volcans-auvergne", "Les volcans d'Auvergne", """
        La chaîne des Puys, en Auvergne, est un alignement d'environ quatre-vingts volcans situé à l'ouest
        de Clermont-Ferrand. Elle s'étend sur une trentaine de kilomètres du nord au sud et compte des
        cônes de scories, des dômes de lave et des cratères d'explosion appelés maars.

        Ces volcans sont relativement jeunes à l'échelle géologique : les dernières éruptions datent
        de quelques milliers d'années seulement. Le puy de Dôme, qui domine l'ensemble, est un dôme
        formé par une lave très visqueuse qui n'a pas pu s'écouler loin de la bouche éruptive.

        En 2018, la chaîne des Puys et la faille de Limagne ont été inscrites au patrimoine mondial de
        l'UNESCO. Le site illustre de façon remarquable la rupture d'un continent. Les randonneurs
        peuvent parcourir de nombreux sentiers, et les eaux minérales de la région sont connues dans le
        monde entier.
    """),
    ("fr", "tour-de-france", "Le Tour de France", """
        Le Tour de France est une course cycliste par étapes créée en 1903 par le journal L'Auto pour
        augmenter ses ventes. Il se déroule chaque année en juillet pendant trois semaines et parcourt
        environ trois mille cinq cents kilomètres, en France et parfois dans des pays voisins.

        Le coureur qui a le temps cumulé le plus faible porte le maillot jaune, dont la couleur
        rappelle le papier du journal fondateur. D'autres classements récompensent le meilleur
        sprinteur, avec le maillot vert, et le meilleur grimpeur, avec le maillot blanc à pois rouges.
        Les étapes de montagne dans les Alpes et les Pyrénées sont souvent décisives.

        L'arrivée finale a lieu traditionnellement sur les Champs-Élysées à Paris. Des millions de
        spectateurs se massent le long des routes, et la course est retransmise à la télévision dans
        de très nombreux pays.
    """),
    ("fr", "jules-verne", "Jules Verne", """
        Jules Verne est un écrivain français né à Nantes, connu pour ses romans d'aventures qui mêlent
        voyages, découvertes géographiques et inventions techniques. Il a publié la plupart de ses
        œuvres dans une collection intitulée les Voyages extraordinaires, chez l'éditeur Pierre-Jules
        Hetzel.

        Parmi ses livres les plus célèbres figurent Vingt Mille Lieues sous les mers, De la Terre à la
        Lune et Le Tour du monde en quatre-vingts jours. Ses héros explorent le fond des océans, le
        centre de la Terre ou l'espace, souvent à bord de machines imaginées avec un grand souci du
        détail scientifique.

        Verne est l'un des auteurs les plus traduits au monde. On le considère souvent comme l'un des
        pères de la science-fiction, et plusieurs générations de scientifiques et d'explorateurs ont
        raconté que la lecture de ses romans avait éveillé leur vocation.
    """),
    ("es", "camino-santiago", "El Camino de Santiago", """
        El Camino de Santiago es un conjunto de rutas de peregrinación que conducen a la catedral de
        Santiago de Compostela, en Galicia, donde según la tradición se conservan los restos del
        apóstol Santiago. Desde la Edad Media, peregrinos de toda Europa han recorrido estos caminos a
        pie, a caballo y, en tiempos modernos, también en bicicleta.

        La ruta más conocida es el Camino Francés, que comienza en los Pirineos y atraviesa Navarra, La
        Rioja, Castilla y León y Galicia. A lo largo del recorrido hay albergues, iglesias, puentes y
        hospitales antiguos que muestran la importancia que tuvo la peregrinación para el desarrollo de
        las ciudades del norte de España.

        Quienes completan al menos los últimos cien kilómetros a pie pueden recibir la Compostela, un
        certificado que se entrega en la oficina del peregrino. Cada año cientos de miles de personas
        hacen el camino por motivos religiosos, culturales o deportivos.
    """),
    ("es", "alhambra", "La Alhambra", """
        La Alhambra es un conjunto de palacios, jardines y fortificaciones situado sobre una colina en
        Granada. Fue construida principalmente durante la dinastía nazarí, entre los siglos trece y
        quince, cuando Granada era el último reino musulmán de la península ibérica.

        Sus salas están decoradas con yeserías finamente talladas, azulejos de colores y techos de
        madera con complejos dibujos geométricos. El Patio de los Leones, con su fuente rodeada de doce
        leones de mármol, y el Patio de los Arrayanes, con su largo estanque, son algunos de los
        espacios más admirados. El agua, traída desde el río Darro por acequias, tiene un papel
        esencial en todo el conjunto.

        Tras la conquista cristiana de 1492 se añadieron nuevos edificios, como el palacio de Carlos V.
        Hoy la Alhambra es uno de los monumentos más visitados de España y forma parte del patrimonio
        mundial.
    """),
    ("es", "andes-llamas", "Las llamas de los Andes", """
        La llama es un camélido sudamericano domesticado hace miles de años en los Andes. Es pariente de
        la alpaca, del guanaco y de la vicuña, y está perfectamente adaptada a la vida en las alturas,
        donde el aire contiene poco oxígeno y las temperaturas cambian bruscamente entre el día y la
        noche.

        Los pueblos andinos utilizaron las llamas como animales de carga en las rutas que unían los
        valles con las zonas altas. Una llama adulta puede transportar una carga moderada durante
        largas jornadas. Además, su lana sirve para tejer mantas y cuerdas, su estiércol se usa como
        combustible y su carne se consume seca o fresca.

        Las llamas son animales sociales que viven en grupos. Cuando se sienten amenazadas pueden
        escupir, aunque normalmente lo hacen contra otras llamas y no contra las personas. Hoy también
        se crían en otros continentes como animales de compañía o para proteger rebaños de ovejas.
    """),
    ("es", "cacao", "El cacao en Mesoamérica", """
        El cacao es el fruto de un árbol tropical cuyas semillas, fermentadas, secadas y tostadas, son
        la materia prima del chocolate. Los pueblos de Mesoamérica, entre ellos los mayas y los mexicas,
        lo cultivaban mucho antes de la llegada de los europeos y lo consideraban un alimento valioso.

        Con las semillas molidas preparaban una bebida espesa, a menudo amarga y especiada con chile o
        vainilla, que se tomaba en ceremonias y banquetes. Las semillas de cacao también se usaban como
        moneda en los mercados, lo que muestra el alto valor que tenían en la economía de la región.

        En el siglo dieciséis el cacao llegó a Europa, donde se empezó a endulzar con azúcar. Con el
        tiempo se inventaron nuevos procesos para separar la manteca de cacao y fabricar chocolate
        sólido. Hoy la mayor parte de la producción mundial procede de África occidental.
    """),
    ("es", "cervantes", "Miguel de Cervantes", """
        Miguel de Cervantes fue un novelista, poeta y dramaturgo español, considerado una de las figuras
        más importantes de la literatura en lengua castellana. Su vida estuvo llena de aventuras: fue
        soldado, resultó herido en la batalla de Lepanto y pasó cinco años cautivo en Argel antes de
        regresar a España.

        Su obra más famosa es El ingenioso hidalgo don Quijote de la Mancha, publicada en dos partes a
        comienzos del siglo diecisiete. La novela cuenta las andanzas de un hidalgo que, tras leer
        demasiados libros de caballerías, decide hacerse caballero andante y recorrer los caminos junto
        a su fiel escudero Sancho Panza.

        El Quijote se considera a menudo la primera novela moderna y ha sido traducido a muchísimas
        lenguas. En honor a su autor, el español se llama a veces la lengua de Cervantes, y el premio
        literario más prestigioso del mundo hispánico lleva su nombre.
    """),
    ("es", "galapagos", "Las islas Galápagos", """
        Las islas Galápagos forman un archipiélago volcánico del océano Pacífico que pertenece a Ecuador
        y se encuentra a unos mil kilómetros de la costa del continente. Las islas surgieron por la
        actividad de un punto caliente situado bajo la placa tectónica, y algunas de ellas todavía
        tienen volcanes activos.

        Su aislamiento ha permitido la evolución de especies que no existen en ningún otro lugar, como
        las tortugas gigantes, las iguanas marinas y varias especies de pinzones. Las observaciones que
        Charles Darwin realizó durante su visita en 1835 contribuyeron a la formulación de su teoría de
        la evolución por selección natural.

        Hoy la mayor parte del archipiélago es parque nacional y reserva marina. El número de
        visitantes está regulado para proteger los ecosistemas, que son muy sensibles a las especies
        introducidas por el ser humano.
    """),
    ("it", "colosseo", "Il Colosseo", """
        Il Colosseo, il cui nome originale era Anfiteatro Flavio, è il più grande anfiteatro costruito
        nell'antica Roma. I lavori iniziarono sotto l'imperatore Vespasiano e furono completati dal
        figlio Tito nell'anno ottanta dopo Cristo. L'edificio poteva ospitare decine di migliaia di
        spettatori, distribuiti su diversi livelli secondo il loro rango sociale.

        Nell'arena si svolgevano combattimenti tra gladiatori, cacce ad animali esotici e spettacoli
        pubblici di vario genere. Sotto il pavimento di legno si trovava un complesso sistema di
        corridoi e montacarichi che permetteva di far comparire improvvisamente uomini e animali.

        Nei secoli successivi il monumento fu danneggiato da terremoti e usato come cava di pietra per
        altri edifici. Nonostante ciò, è rimasto il simbolo di Roma ed è oggi uno dei luoghi più
        visitati d'Italia.
    """),
    ("it", "venezia-laguna", "Venezia e la sua laguna", """
        Venezia sorge su un gruppo di piccole isole in una laguna dell'Adriatico settentrionale. La città
        è attraversata da canali invece che da strade, e i suoi edifici poggiano su fondazioni di pali
        di legno conficcati nel fango. Per secoli fu la capitale di una potente repubblica marinara che
        commerciava con l'Oriente.

        Il Canal Grande, lungo circa quattro chilometri, divide il centro storico in due parti ed è
        attraversato da pochi ponti, tra cui il celebre ponte di Rialto. Gondole, vaporetti e barche da
        trasporto sono ancora oggi i mezzi principali per spostarsi.

        La città deve affrontare il problema dell'acqua alta, cioè delle maree eccezionali che
        allagano piazze e calli. Per proteggerla è stato costruito un sistema di paratoie mobili alle
        bocche di porto, che si sollevano quando è prevista una marea molto alta.
    """),
    ("it", "leonardo", "Leonardo da Vinci", """
        Leonardo da Vinci fu pittore, ingegnere, scienziato e inventore del Rinascimento italiano. Nato
        nei pressi di Vinci, in Toscana, si formò a Firenze nella bottega del Verrocchio e lavorò poi a
        Milano, a Roma e infine in Francia, alla corte del re Francesco primo.

        Tra le sue opere pittoriche più famose ci sono l'Ultima Cena, dipinta sulla parete di un
        refettorio milanese, e la Gioconda, conservata oggi al Louvre. Leonardo sperimentava spesso
        tecniche nuove, non sempre con successo, e lasciò diverse opere incompiute.

        I suoi quaderni contengono migliaia di pagine di appunti e disegni su anatomia, idraulica,
        ottica, botanica e macchine di ogni genere, scritti con la caratteristica scrittura speculare.
        Questi studi mostrano una curiosità instancabile e un metodo basato sull'osservazione diretta
        della natura.
    """),
    ("it", "pasta", "La pasta", """
        La pasta è uno degli alimenti più tipici della cucina italiana. Si prepara con semola di grano
        duro e acqua, a volte con l'aggiunta di uova, e viene modellata in centinaia di formati diversi:
        lunghi come gli spaghetti, corti come le penne, ripieni come i tortellini o larghi come le
        lasagne.

        Ogni formato è pensato per un certo tipo di condimento. I sughi densi e ricchi si abbinano bene
        alla pasta corta e rigata, che li trattiene, mentre i sughi leggeri a base di olio o di pomodoro
        fresco accompagnano spesso la pasta lunga. La cottura al dente, cioè non troppo morbida, è
        considerata essenziale.

        La pasta secca industriale si diffuse a partire dall'Ottocento, in particolare nella zona di
        Napoli, dove il clima favoriva l'essiccazione all'aria aperta. Oggi l'Italia è il maggiore
        produttore e consumatore di pasta al mondo.
    """),
    ("it", "etna", "L'Etna", """
        L'Etna è il vulcano attivo più alto d'Europa e si trova sulla costa orientale della Sicilia, nei
        pressi di Catania. La sua altezza cambia nel tempo a causa delle eruzioni, che depositano nuovo
        materiale sulla cima o ne provocano il crollo.

        Il vulcano è quasi sempre in attività. Le eruzioni possono avvenire dai crateri sommitali, con
        fontane di lava e colonne di cenere, oppure da fratture che si aprono sui fianchi della
        montagna. Nel corso dei secoli le colate laviche hanno distrutto villaggi e raggiunto più volte
        il mare.

        Nonostante il pericolo, le pendici dell'Etna sono densamente abitate, perché i suoli vulcanici
        sono molto fertili e adatti alla coltivazione di viti, agrumi e pistacchi. Nel 2013 il vulcano
        è stato inserito nella lista del patrimonio mondiale dell'UNESCO.
    """),
    ("pt", "amazonia", "A Floresta Amazônica", """
        A Floresta Amazônica é a maior floresta tropical do mundo e ocupa grande parte da bacia do rio
        Amazonas, na América do Sul. A maior parte de sua área fica no Brasil, mas ela também se estende
        pelo Peru, pela Colômbia, pela Bolívia e por outros países vizinhos.

        A floresta abriga uma enorme diversidade de plantas, animais, fungos e microrganismos, muitos
        dos quais ainda não foram descritos pela ciência. Ela também desempenha um papel importante no
        clima, porque as árvores liberam grandes quantidades de vapor de água que formam chuvas em
        regiões distantes.

        Diversos povos indígenas vivem na região há milhares de anos e conhecem profundamente seus
        recursos. O desmatamento para a criação de gado, a agricultura e a mineração é hoje uma das
        maiores ameaças ao equilíbrio da floresta.
    """),
    ("pt", "descobrimentos", "Os Descobrimentos portugueses", """
        Nos séculos quinze e dezesseis, os navegadores portugueses exploraram a costa da África e
        abriram rotas marítimas para a Índia, o Brasil e o Extremo Oriente. Esse período é conhecido em
        Portugal como a época dos Descobrimentos.

        As viagens foram possíveis graças a embarcações como a caravela, capaz de navegar contra o
        vento, e ao aperfeiçoamento de instrumentos como o astrolábio e o quadrante. Em 1498, a frota de
        Vasco da Gama contornou o cabo da Boa Esperança e chegou a Calecute, na Índia. Dois anos depois,
        a expedição de Pedro Álvares Cabral chegou ao litoral do Brasil.

        O comércio de especiarias trouxe grande riqueza a Lisboa, mas a expansão também teve
        consequências violentas para muitos povos da África, da Ásia e da América, incluindo o tráfico
        de pessoas escravizadas.
    """),
    ("pt", "fado", "O fado", """
        O fado é um género musical português que nasceu nos bairros populares de Lisboa, provavelmente
        no início do século dezanove. É cantado geralmente por uma só voz, acompanhada por uma guitarra
        portuguesa, de som brilhante, e por uma viola.

        As letras falam muitas vezes de amor, de ciúme, da vida difícil dos bairros e da saudade, um
        sentimento de falta e de nostalgia considerado muito característico da cultura portuguesa. Além
        do fado de Lisboa, existe a tradição de Coimbra, cantada sobretudo por estudantes
        universitários.

        No século vinte, a cantora Amália Rodrigues levou o fado a palcos de todo o mundo. Em 2011, o
        fado foi inscrito na lista do património cultural imaterial da humanidade, e hoje muitos
        artistas jovens continuam a renová-lo.
    """),
    ("pt", "cafe-brasil", "O café no Brasil", """
        O café chegou ao Brasil no século dezoito e encontrou no Sudeste do país condições muito
        favoráveis de clima e de solo. Durante o século dezanove, as grandes fazendas de café do vale
        do Paraíba e, depois, do interior de São Paulo tornaram-se a base da economia brasileira.

        A expansão das plantações levou à construção de ferrovias para transportar os grãos até o porto
        de Santos e atraiu milhares de imigrantes europeus e japoneses, que substituíram o trabalho
        escravo após a abolição. Cidades inteiras cresceram em torno da produção e do comércio de café.

        Ainda hoje o Brasil é o maior produtor e exportador de café do mundo. O país cultiva
        principalmente as espécies arábica e robusta, e o cafezinho, servido em xícaras pequenas, faz
        parte do dia a dia dos brasileiros.
    """),
    ("pt", "terremoto-lisboa", "O terramoto de Lisboa de 1755", """
        Na manhã de um de novembro de 1755, um fortíssimo sismo atingiu Lisboa. Ao abalo seguiram-se um
        maremoto, que inundou a zona ribeirinha, e vários incêndios que arderam durante dias. Grande
        parte da cidade ficou destruída e morreram dezenas de milhares de pessoas.

        A reconstrução foi dirigida pelo Marquês de Pombal, ministro do rei José primeiro. A Baixa de
        Lisboa foi redesenhada com ruas largas e em grelha, e os novos edifícios receberam uma estrutura
        interna de madeira, a chamada gaiola pombalina, pensada para resistir melhor aos sismos.

        O desastre teve um grande impacto no pensamento europeu. Filósofos como Voltaire discutiram o
        seu significado, e a recolha sistemática de informações sobre o sismo é considerada um dos
        primeiros passos da sismologia moderna.
    """),
    ("nl", "deltawerken", "De Deltawerken", """
        De Deltawerken zijn een reeks dammen, sluizen en stormvloedkeringen in het zuidwesten van
        Nederland. Ze werden gebouwd na de watersnoodramp van 1953, toen een zware storm in combinatie
        met springtij de dijken in Zeeland en Zuid-Holland liet bezwijken en meer dan achttienhonderd
        mensen om het leven kwamen.

        Het plan was om de zeearmen tussen de eilanden af te sluiten, zodat de kustlijn veel korter
        werd. Bij de Oosterschelde besloot men na veel discussie om geen dichte dam te bouwen, maar een
        kering met grote beweegbare schuiven. Die staan normaal open, zodat het getij en het unieke
        zoutwatermilieu behouden blijven, en gaan alleen dicht bij storm.

        De Deltawerken gelden als een van de grootste waterbouwkundige projecten ter wereld en trekken
        ingenieurs en toeristen uit vele landen.
    """),
    ("nl", "molens", "Windmolens in Nederland", """
        Windmolens zijn een van de bekendste symbolen van Nederland. Eeuwenlang werden ze gebruikt om
        water uit de polders te pompen, zodat het lage land droog bleef en bewoond en bewerkt kon
        worden. Andere molens maalden graan, zaagden hout of persten olie uit zaden.

        Bij Kinderdijk staan negentien molens die in de achttiende eeuw werden gebouwd om het water van
        de Alblasserwaard af te voeren. Het gebied staat op de werelderfgoedlijst van UNESCO en laat
        goed zien hoe het beheer van water het Nederlandse landschap heeft gevormd.

        Tegenwoordig doen elektrische gemalen het meeste pompwerk, maar veel molens zijn gerestaureerd
        en worden door vrijwillige molenaars in bedrijf gehouden. Op sommige dagen kunnen bezoekers
        binnen kijken hoe het ingewikkelde houten mechaniek werkt.
    """),
    ("nl", "rembrandt", "Rembrandt van Rijn", """
        Rembrandt van Rijn was een schilder en etser uit de zeventiende eeuw, de periode die in
        Nederland vaak de Gouden Eeuw wordt genoemd. Hij werd geboren in Leiden en werkte het grootste
        deel van zijn leven in Amsterdam, waar hij een drukbezochte werkplaats met leerlingen had.

        Rembrandt staat bekend om zijn meesterlijke gebruik van licht en schaduw. Zijn beroemdste
        schilderij, De Nachtwacht, toont een groep schutters die in beweging komt, en hangt in het
        Rijksmuseum. Daarnaast maakte hij een lange reeks zelfportretten, waarin hij zichzelf op
        verschillende leeftijden met grote eerlijkheid vastlegde.

        Ondanks zijn succes kwam hij later in financiële problemen en moest hij zijn huis en zijn
        verzameling verkopen. Zijn werk heeft generaties kunstenaars beïnvloed.
    """),
    ("nl", "tulpenmanie", "De tulpenmanie", """
        In de jaren dertig van de zeventiende eeuw stegen de prijzen van tulpenbollen in de Republiek der
        Nederlanden tot ongekende hoogten. Tulpen waren kort daarvoor uit het Ottomaanse Rijk naar Europa
        gekomen en golden als luxe. Vooral bollen met gestreepte of gevlamde bloemen waren zeer gewild.

        Handelaren kochten en verkochten bollen die nog in de grond zaten, vaak via afspraken in
        herbergen. In de winter van 1637 stortte de markt plotseling in, omdat kopers de afgesproken
        prijzen niet meer wilden betalen.

        Lange tijd werd de tulpenmanie beschreven als een van de eerste financiële zeepbellen, waarbij
        hele families failliet zouden zijn gegaan. Modern historisch onderzoek laat zien dat de gevolgen
        waarschijnlijk kleiner waren dan de verhalen doen geloven, maar het voorbeeld wordt nog steeds
        vaak aangehaald.
    """),
    ("nl", "fietsen", "Fietsen in Nederland", """
        Nederland is een van de meest fietsvriendelijke landen ter wereld. Er zijn meer fietsen dan
        inwoners, en een groot deel van de korte verplaatsingen naar school, werk en winkels gebeurt op
        de fiets. Het vlakke landschap helpt daarbij, maar de belangrijkste reden is beleid.

        Vanaf de jaren zeventig kozen veel gemeenten ervoor om ruimte te maken voor fietsers, mede naar
        aanleiding van protesten tegen het grote aantal verkeersslachtoffers. Er werden gescheiden
        fietspaden aangelegd, kruispunten werden veiliger gemaakt en bij stations verschenen grote
        fietsenstallingen.

        Kinderen leren al jong zelfstandig fietsen en doen op de basisschool vaak een verkeersexamen.
        De elektrische fiets heeft de afstanden die mensen fietsen de laatste jaren nog vergroot.
    """),
    ("zh", "changcheng", "长城", """
        长城是中国古代修建的大型军事防御工程，
        由城墙、关隘、烽火台等组成，
        东西绵延上万里，因此又称万里长城。
        早在春秋战国时期，各诸侯国就开始修筑长城，
        秦始皇统一六国后，把各国的长城连接起来。

        今天人们看到的长城大多是明朝修建的，
        用砖石砌成，非常坚固。
        八达岭、慕田峪和山海关等地段保存得比较完整，
        每年吸引大量游客前来参观。

        长城不仅是重要的历史遗迹，
        也是中华民族的象征之一。
        一九八七年，长城被列入世界文化遗产名录。
        由于风雨侵蚀和人为破坏，有些地段已经损毁，
        保护长城成为一项长期而艰巨的任务。
    """),
    ("zh", "chawenhua", "中国茶文化", """
        中国是茶的故乡，种茶、饮茶的历史已有几千年。
        唐朝时，陆羽写成《茶经》，
        系统地介绍了茶的种植、采摘、制作和饮用方法，
        对后世影响很大。

        根据加工方法的不同，中国茶可以分为绿茶、红茶、乌龙茶、
        白茶、黄茶和黑茶等几大类。
        西湖龙井、碧螺春和铁观音都是很有名的品种。
        不同地区的人有不同的饮茶习惯，
        例如广东人喜欢喝早茶，一边喝茶一边吃点心。

        茶还通过丝绸之路和海上贸易传到世界各地，
        深刻影响了许多国家的饮食文化。
        今天，喝茶仍然是中国人日常生活中的重要部分。
    """),
    ("ja", "fujisan", "富士山", """
        富士山は静岡県と山梨県にまたがる活火山で、
        標高は三千七百七十六メートルあり、日本で最も高い山である。
        美しい円錐形の姿は古くから多くの人々に親しまれ、
        和歌や浮世絵の題材として繰り返し描かれてきた。

        最後に噴火したのは江戸時代の宝永年間で、
        そのときには江戸の町にも火山灰が降ったと記録されている。
        現在も火山活動は観測されており、
        研究者が地震や地殻変動を注意深く見守っている。

        夏の登山シーズンには、毎年多くの登山者が山頂を目指し、
        山頂で日の出を見ることを楽しみにしている。
        二〇一三年には「信仰の対象と芸術の源泉」として
        世界文化遺産に登録された。
    """),
    ("ja", "shinkansen", "新幹線", """
        新幹線は日本の主要都市を結ぶ高速鉄道である。
        最初の路線である東海道新幹線は一九六四年に
        東京と新大阪の間で開業し、
        東京オリンピックの直前に運行を始めた。

        専用の線路を走るため踏切がなく、
        自動列車制御装置によって安全に高い速度を保つことができる。
        開業以来、乗客が死亡する列車事故はほとんど起きておらず、
        時間の正確さでも世界的に知られている。

        現在では北海道から九州まで路線網が広がり、
        多くの人が出張や旅行に利用している。
        新幹線の成功は、フランスやドイツなど他の国々で
        高速鉄道が建設されるきっかけの一つにもなった。
    """),
    ("ru", "baikal", "Озеро Байкал", """
        Байкал — озеро в южной части Восточной Сибири, самое глубокое озеро на планете. Его наибольшая
        глубина превышает полторы тысячи метров, а в его котловине сосредоточена примерно пятая часть
        всей пресной поверхностной воды Земли.

        Озеро образовалось в тектоническом разломе много миллионов лет назад и продолжает медленно
        расширяться. В Байкал впадают сотни рек, а вытекает из него только одна — Ангара. Вода озера
        необычайно прозрачна, и в ясную погоду камни на дне видны на глубине нескольких десятков
        метров.

        В Байкале обитает множество видов растений и животных, которые не встречаются больше нигде,
        например байкальская нерпа и рыба голомянка. В 1996 году озеро было включено в список
        объектов всемирного наследия ЮНЕСКО.
    """),
    ("ru", "transsib", "Транссибирская магистраль", """
        Транссибирская магистраль — железная дорога, которая соединяет Москву с Владивостоком на берегу
        Тихого океана. Её длина составляет более девяти тысяч километров, и это самая протяжённая
        железнодорожная линия в мире.

        Строительство началось в конце девятнадцатого века и велось одновременно с нескольких концов.
        Рабочим приходилось прокладывать путь через тайгу, болота и горы, строить мосты через крупные
        сибирские реки и обходить озеро Байкал по крутым скалистым берегам.

        Магистраль сыграла огромную роль в освоении Сибири и Дальнего Востока. По ней перевозят грузы
        между Европой и Азией, а поездка на поезде от Москвы до Владивостока занимает около недели и
        привлекает путешественников со всего мира.
    """),
    ("ru", "mendeleev", "Дмитрий Менделеев", """
        Дмитрий Иванович Менделеев — русский химик, который открыл периодический закон химических
        элементов. Он родился в Тобольске, учился в Петербурге и долгие годы преподавал в Петербургском
        университете.

        Работая над учебником химии, Менделеев расположил известные тогда элементы в порядке
        возрастания атомного веса и заметил, что их свойства периодически повторяются. На основе этого
        он составил таблицу, в которой оставил пустые места для ещё не открытых элементов и предсказал
        их свойства. Когда позже были открыты галлий, скандий и германий, предсказания подтвердились.

        Кроме химии, Менделеев занимался метрологией, изучением нефти и развитием промышленности.
        Элемент номер сто один назван менделевием в его честь.
    """),
]

# (slug, lang, LaTeX source): formula-dense notes; some full documents, some section fragments.
LATEX_DOCUMENTS: list[tuple[str, str, str]] = [
    ("pythagoras", "en", r"""
        \documentclass{article}
        \usepackage{amsmath,amssymb,amsthm}
        \newtheorem{theorem}{Theorem}
        \begin{document}
        \section*{The Pythagorean theorem}
        \begin{theorem}
        In a right triangle with legs $a, b$ and hypotenuse $c$ we have $a^2 + b^2 = c^2$.
        \end{theorem}
        \begin{proof}
        Place four copies of the triangle inside a square of side $a + b$ so that their hypotenuses
        bound a tilted inner square of side $c$. Counting the area of the big square in two ways gives
        \begin{align}
          (a + b)^2 &= c^2 + 4 \cdot \tfrac{1}{2} ab, \\
          a^2 + 2ab + b^2 &= c^2 + 2ab,
        \end{align}
        and cancelling $2ab$ on both sides yields $a^2 + b^2 = c^2$.
        \end{proof}
        The converse also holds: if $a^2 + b^2 = c^2$ then the angle opposite $c$ is a right angle,
        by the law of cosines $c^2 = a^2 + b^2 - 2ab\cos\gamma$, which forces $\cos\gamma = 0$.
        \end{document}
    """),
    ("infinitely-many-primes", "en", r"""
        \section{Euclid's theorem}
        \begin{theorem}[Euclid]
        There are infinitely many prime numbers.
        \end{theorem}
        \begin{proof}
        Suppose $p_1, p_2, \dots, p_k$ is a finite list of primes and let
        \[ N = p_1 p_2 \cdots p_k + 1 . \]
        Every integer $N \geq 2$ has a prime divisor $q$. If $q = p_i$ for some $i$, then $q \mid N$ and
        $q \mid p_1 \cdots p_k$, hence $q \mid N - p_1 \cdots p_k = 1$, which is impossible. So $q$ is a
        prime missing from the list, and no finite list contains all primes.
        \end{proof}
        A quantitative refinement is the divergence of $\sum_{p} 1/p$, proved by Euler through
        \[ \sum_{n \le x} \frac{1}{n} \le \prod_{p \le x} \Bigl(1 - \frac{1}{p}\Bigr)^{-1}
           \quad\Longrightarrow\quad \sum_{p \le x} \frac{1}{p} \ge \log\log x - 1 . \]
    """),
    ("geometric-series", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \subsection*{Finite and infinite geometric series}
        For $r \neq 1$ and $n \ge 0$ let $S_n = \sum_{k=0}^{n} r^k$. Multiplying by $r$ shifts every term:
        \begin{align*}
          S_n - r S_n &= (1 + r + \dots + r^n) - (r + r^2 + \dots + r^{n+1}) \\
                      &= 1 - r^{n+1},
        \end{align*}
        so that
        \begin{equation}
          S_n = \frac{1 - r^{n+1}}{1 - r}.
        \end{equation}
        If $|r| < 1$ then $r^{n+1} \to 0$ as $n \to \infty$, and the infinite series converges:
        \begin{equation}
          \sum_{k=0}^{\infty} r^k = \frac{1}{1 - r}, \qquad |r| < 1 .
        \end{equation}
        For example $\sum_{k \ge 1} 2^{-k} = \frac{1}{1 - 1/2} - 1 = 1$, and the repeating decimal
        $0.\overline{3} = 3 \sum_{k \ge 1} 10^{-k} = \frac{1}{3}$. For $|r| \ge 1$ the terms do not tend
        to zero and the series diverges.
        \end{document}
    """),
    ("am-gm", "en", r"""
        \section{The inequality of arithmetic and geometric means}
        For non-negative reals $x_1, \dots, x_n$,
        \[ \frac{x_1 + x_2 + \cdots + x_n}{n} \ \ge\ \sqrt[n]{x_1 x_2 \cdots x_n}, \]
        with equality if and only if $x_1 = x_2 = \cdots = x_n$.
        \paragraph{Two variables.} Since $(\sqrt{x} - \sqrt{y})^2 \ge 0$ we get $x + y \ge 2\sqrt{xy}$.
        \paragraph{General case.} The logarithm is concave on $(0, \infty)$, so by Jensen's inequality
        \[ \log\Bigl(\frac{1}{n}\sum_{i=1}^{n} x_i\Bigr) \ \ge\ \frac{1}{n}\sum_{i=1}^{n} \log x_i
           = \log \Bigl(\prod_{i=1}^{n} x_i\Bigr)^{1/n}, \]
        and exponentiating gives the claim for positive $x_i$; if some $x_i = 0$ the right side is $0$.
        \paragraph{Application.} Among rectangles with perimeter $4s$ the square has the largest area,
        because $ab \le \bigl(\tfrac{a+b}{2}\bigr)^2 = s^2$.
    """),
    ("cauchy-schwarz", "en", r"""
        \documentclass[11pt]{amsart}
        \begin{document}
        \title{Cauchy--Schwarz in inner product spaces}
        \maketitle
        \begin{theorem}
        For vectors $u, v$ in a real inner product space, $|\langle u, v \rangle| \le \|u\| \, \|v\|$.
        \end{theorem}
        \begin{proof}
        If $v = 0$ both sides vanish. Otherwise consider the quadratic polynomial
        \[ p(t) = \|u - t v\|^2 = \|u\|^2 - 2t \langle u, v \rangle + t^2 \|v\|^2 \ \ge 0 . \]
        A quadratic $at^2 + bt + c$ with $a > 0$ that is never negative has discriminant
        $b^2 - 4ac \le 0$, which here reads $4\langle u, v\rangle^2 - 4\|u\|^2\|v\|^2 \le 0$.
        \end{proof}
        Equality holds exactly when $u$ and $v$ are linearly dependent. In $\mathbb{R}^n$ the theorem
        states $\bigl(\sum_i a_i b_i\bigr)^2 \le \bigl(\sum_i a_i^2\bigr)\bigl(\sum_i b_i^2\bigr)$, and for
        square-integrable functions $\bigl|\int f g\bigr|^2 \le \int |f|^2 \int |g|^2$.
        \end{document}
    """),
    ("binomial-theorem", "en", r"""
        \section*{The binomial theorem}
        For a commutative ring and $n \in \mathbb{N}$,
        \begin{equation}\label{eq:binom}
          (x + y)^n = \sum_{k=0}^{n} \binom{n}{k} x^{k} y^{n-k}, \qquad
          \binom{n}{k} = \frac{n!}{k!\,(n-k)!} .
        \end{equation}
        \emph{Proof by induction.} The case $n = 0$ is $1 = 1$. Assume \eqref{eq:binom} for $n$. Then
        \begin{align}
          (x+y)^{n+1} &= (x + y)\sum_{k=0}^{n} \binom{n}{k} x^k y^{n-k} \\
            &= \sum_{k=0}^{n} \binom{n}{k} x^{k+1} y^{n-k} + \sum_{k=0}^{n} \binom{n}{k} x^k y^{n+1-k} \\
            &= \sum_{k=0}^{n+1} \Bigl[\binom{n}{k-1} + \binom{n}{k}\Bigr] x^k y^{n+1-k},
        \end{align}
        and Pascal's rule $\binom{n}{k-1} + \binom{n}{k} = \binom{n+1}{k}$ finishes the step. Setting
        $x = y = 1$ gives $\sum_k \binom{n}{k} = 2^n$, and $x = -1, y = 1$ gives
        $\sum_k (-1)^k \binom{n}{k} = 0$ for $n \ge 1$.
    """),
    ("derivative-of-sine", "en", r"""
        \subsection{The derivative of $\sin x$}
        \begin{lemma}
        $\displaystyle \lim_{h \to 0} \frac{\sin h}{h} = 1$ and $\displaystyle \lim_{h \to 0} \frac{1 -
        \cos h}{h} = 0$.
        \end{lemma}
        \begin{proof}
        For $0 < h < \pi/2$ compare the areas of a triangle, a circular sector and a larger triangle
        in the unit circle: $\tfrac12 \sin h \le \tfrac12 h \le \tfrac12 \tan h$. Hence
        $\cos h \le \frac{\sin h}{h} \le 1$, and squeezing gives the first limit. For the second,
        $\frac{1 - \cos h}{h} = \frac{\sin^2 h}{h (1 + \cos h)} \to 1 \cdot 0 = 0$.
        \end{proof}
        By the addition formula $\sin(x + h) = \sin x \cos h + \cos x \sin h$, so
        \[ \frac{\sin(x+h) - \sin x}{h} = \cos x \, \frac{\sin h}{h} - \sin x \, \frac{1 - \cos h}{h}
           \ \xrightarrow[h \to 0]{}\ \cos x . \]
        Thus $(\sin x)' = \cos x$, and similarly $(\cos x)' = -\sin x$.
    """),
    ("integration-by-parts", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \section{Integration by parts}
        Integrating the product rule $(uv)' = u'v + uv'$ over $[a, b]$ gives
        \begin{equation}
          \int_a^b u(x)\, v'(x)\, dx = \bigl[u(x) v(x)\bigr]_a^b - \int_a^b u'(x)\, v(x)\, dx .
        \end{equation}
        \textbf{Example 1.} With $u = x$ and $v' = e^x$,
        \[ \int x e^x \, dx = x e^x - \int e^x \, dx = (x - 1) e^x + C . \]
        \textbf{Example 2.} With $u = \ln x$ and $v' = 1$,
        \[ \int_1^e \ln x \, dx = \bigl[x \ln x\bigr]_1^e - \int_1^e 1 \, dx = e - (e - 1) = 1 . \]
        \textbf{Example 3.} Applying the rule twice to $I = \int e^x \sin x \, dx$ returns $-I$ on the
        right-hand side, so $I = \tfrac12 e^x(\sin x - \cos x) + C$.
        \end{document}
    """),
    ("gaussian-integral", "en", r"""
        \section{The Gaussian integral}
        \begin{proposition}
        $\displaystyle I = \int_{-\infty}^{\infty} e^{-x^2} \, dx = \sqrt{\pi}.$
        \end{proposition}
        \begin{proof}
        The integral converges because $e^{-x^2} \le e^{1 - 2|x|}$. Squaring and switching to polar
        coordinates $x = r\cos\theta$, $y = r\sin\theta$, $dx\,dy = r\,dr\,d\theta$,
        \begin{align*}
          I^2 &= \int_{\mathbb{R}^2} e^{-(x^2 + y^2)} \, dx \, dy
               = \int_0^{2\pi} \!\! \int_0^{\infty} e^{-r^2} r \, dr \, d\theta \\
              &= 2\pi \Bigl[-\tfrac12 e^{-r^2}\Bigr]_0^{\infty} = \pi .
        \end{align*}
        Since $I > 0$, $I = \sqrt{\pi}$.
        \end{proof}
        Substituting $x = (t - \mu)/(\sigma\sqrt{2})$ shows that the normal density
        $\varphi(t) = \frac{1}{\sigma\sqrt{2\pi}} e^{-(t-\mu)^2/(2\sigma^2)}$ integrates to one.
    """),
    ("fermat-little-theorem", "en", r"""
        \section*{Fermat's little theorem}
        \begin{theorem}
        If $p$ is prime and $p \nmid a$, then $a^{p-1} \equiv 1 \pmod p$.
        \end{theorem}
        \begin{proof}
        The residues $a, 2a, \dots, (p-1)a$ are pairwise distinct modulo $p$: from $ia \equiv ja$ we get
        $p \mid (i - j)a$, hence $p \mid i - j$ and $i = j$. None of them is $0$, so they are a
        permutation of $1, 2, \dots, p - 1$. Multiplying all of them,
        \[ a^{p-1} (p-1)! \equiv (p-1)! \pmod p , \]
        and $(p-1)!$ is invertible modulo $p$, which gives $a^{p-1} \equiv 1$.
        \end{proof}
        Equivalently $a^p \equiv a \pmod p$ for every integer $a$. Euler's generalisation reads
        $a^{\varphi(n)} \equiv 1 \pmod n$ for $\gcd(a, n) = 1$, where $\varphi$ is Euler's totient;
        e.g.\ $\varphi(10) = 4$ and $3^4 = 81 \equiv 1 \pmod{10}$.
    """),
    ("chinese-remainder", "en", r"""
        \documentclass{article}
        \usepackage{amsmath,amsthm}
        \newtheorem*{crt}{Chinese remainder theorem}
        \begin{document}
        \begin{crt}
        Let $m_1, \dots, m_k$ be pairwise coprime and $M = m_1 m_2 \cdots m_k$. For any integers
        $a_1, \dots, a_k$ the system $x \equiv a_i \pmod{m_i}$, $1 \le i \le k$, has a solution, and
        it is unique modulo $M$.
        \end{crt}
        \begin{proof}
        Put $M_i = M / m_i$. Since $\gcd(M_i, m_i) = 1$ there is $y_i$ with $M_i y_i \equiv 1 \pmod{m_i}$.
        Then $x = \sum_{i=1}^{k} a_i M_i y_i$ works, because $M_j \equiv 0 \pmod{m_i}$ for $j \ne i$.
        If $x$ and $x'$ are two solutions, every $m_i$ divides $x - x'$, hence so does their product $M$.
        \end{proof}
        \paragraph{Example.} For $x \equiv 2 \pmod 3$, $x \equiv 3 \pmod 5$, $x \equiv 2 \pmod 7$ we have
        $M = 105$, $M_1 = 35$, $M_2 = 21$, $M_3 = 15$, inverses $y_1 = 2$, $y_2 = 1$, $y_3 = 1$, and
        $x = 2 \cdot 35 \cdot 2 + 3 \cdot 21 + 2 \cdot 15 = 233 \equiv 23 \pmod{105}$.
        \end{document}
    """),
    ("symmetric-eigenvalues", "en", r"""
        \section{Eigenvalues of real symmetric matrices}
        \begin{theorem}
        If $A \in \mathbb{R}^{n \times n}$ satisfies $A^{\top} = A$, all eigenvalues of $A$ are real and
        eigenvectors for distinct eigenvalues are orthogonal.
        \end{theorem}
        \begin{proof}
        Let $Av = \lambda v$ with $v \in \mathbb{C}^n \setminus \{0\}$. Using $\bar{A} = A = A^{\top}$,
        \[ \lambda \, \bar v^{\top} v = \bar v^{\top} A v = (A \bar v)^{\top} v
           = \overline{(A v)}^{\top} v = \bar\lambda \, \bar v^{\top} v , \]
        and $\bar v^{\top} v = \sum_i |v_i|^2 > 0$, so $\lambda = \bar\lambda$. If $Au = \mu u$ and
        $Av = \lambda v$ with $\mu \neq \lambda$, then $\mu\, u^{\top} v = (Au)^{\top} v = u^{\top} A v
        = \lambda\, u^{\top} v$, forcing $u^{\top} v = 0$.
        \end{proof}
        Together with induction on $n$ this yields the spectral theorem $A = Q \Lambda Q^{\top}$ with $Q$
        orthogonal and $\Lambda = \operatorname{diag}(\lambda_1, \dots, \lambda_n)$; in particular
        $\operatorname{tr} A = \sum_i \lambda_i$ and $\det A = \prod_i \lambda_i$.
    """),
    ("vandermonde", "en", r"""
        \subsection*{The Vandermonde determinant}
        For $x_1, \dots, x_n$ in a field,
        \[
          V_n = \det \begin{pmatrix}
            1 & x_1 & x_1^2 & \cdots & x_1^{n-1} \\
            1 & x_2 & x_2^2 & \cdots & x_2^{n-1} \\
            \vdots & \vdots & \vdots & \ddots & \vdots \\
            1 & x_n & x_n^2 & \cdots & x_n^{n-1}
          \end{pmatrix} = \prod_{1 \le i < j \le n} (x_j - x_i) .
        \]
        \emph{Sketch.} Subtract $x_1$ times column $k$ from column $k+1$, for $k = n-1, \dots, 1$. The
        first row becomes $(1, 0, \dots, 0)$ and row $j$ acquires the factor $(x_j - x_1)$, so
        $V_n(x_1, \dots, x_n) = \prod_{j=2}^{n} (x_j - x_1) \, V_{n-1}(x_2, \dots, x_n)$.
        Consequently $V_n \neq 0$ iff the $x_i$ are distinct, which proves that a polynomial of degree
        $< n$ is determined by its values at $n$ distinct points (Lagrange interpolation).
    """),
    ("bayes-theorem", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \section{Bayes' theorem}
        For events $A, B$ with $P(B) > 0$, the definition $P(A \mid B) = P(A \cap B)/P(B)$ gives
        \begin{equation}
          P(A \mid B) = \frac{P(B \mid A)\, P(A)}{P(B)}, \qquad
          P(B) = P(B \mid A) P(A) + P(B \mid A^{c}) P(A^{c}) .
        \end{equation}
        \subsection*{A screening test}
        Let $D$ be ``has the condition'' with prevalence $P(D) = 0.01$, and $T$ a positive test with
        sensitivity $P(T \mid D) = 0.95$ and false-positive rate $P(T \mid D^c) = 0.05$. Then
        \begin{align*}
          P(T) &= 0.95 \cdot 0.01 + 0.05 \cdot 0.99 = 0.059, \\
          P(D \mid T) &= \frac{0.95 \cdot 0.01}{0.059} \approx 0.161 .
        \end{align*}
        Only about $16\%$ of positive results are true positives, because the condition is rare. In
        odds form, posterior odds $=$ likelihood ratio $\times$ prior odds:
        $\frac{0.95}{0.05} \cdot \frac{1}{99} = \frac{19}{99}$.
        \end{document}
    """),
    ("linearity-of-expectation", "en", r"""
        \section{Linearity of expectation and the hat-check problem}
        For random variables $X_1, \dots, X_n$ with finite means, $\mathbb{E}\bigl[\sum_i X_i\bigr] = \sum_i
        \mathbb{E}[X_i]$, whether or not the $X_i$ are independent.
        \paragraph{Fixed points.} Let $\sigma$ be a uniformly random permutation of $\{1, \dots, n\}$ and
        $F = \#\{i : \sigma(i) = i\}$. Writing $F = \sum_{i=1}^{n} \mathbf{1}[\sigma(i) = i]$,
        \[ \mathbb{E}[F] = \sum_{i=1}^{n} \Pr[\sigma(i) = i] = n \cdot \frac{1}{n} = 1 . \]
        \paragraph{Variance.} For $i \ne j$, $\Pr[\sigma(i) = i, \sigma(j) = j] = \frac{1}{n(n-1)}$, so
        \[ \mathbb{E}[F^2] = \sum_i \frac{1}{n} + \sum_{i \ne j} \frac{1}{n(n-1)} = 1 + 1 = 2,
           \qquad \operatorname{Var}(F) = 2 - 1^2 = 1 . \]
        Both moments match those of a $\mathrm{Poisson}(1)$ variable, the limit law of $F$ as $n \to \infty$.
    """),
    ("binomial-variance", "en", r"""
        \subsection{Mean and variance of the binomial distribution}
        Let $X \sim \mathrm{Bin}(n, p)$, i.e.\ $\Pr[X = k] = \binom{n}{k} p^k (1-p)^{n-k}$ for
        $k = 0, \dots, n$. Write $X = \sum_{i=1}^{n} B_i$ with independent Bernoulli variables $B_i$,
        $\Pr[B_i = 1] = p$. Since $B_i^2 = B_i$,
        \begin{align}
          \mathbb{E}[B_i] &= p, &
          \operatorname{Var}(B_i) &= \mathbb{E}[B_i^2] - p^2 = p(1-p).
        \end{align}
        By linearity and independence,
        \begin{equation}
          \mathbb{E}[X] = np, \qquad \operatorname{Var}(X) = \sum_{i=1}^{n} \operatorname{Var}(B_i) = np(1-p).
        \end{equation}
        The probability generating function confirms this: $G(s) = (1 - p + ps)^n$, so
        $G'(1) = np$ and $G''(1) = n(n-1)p^2$, whence $\operatorname{Var}(X) = G''(1) + G'(1) - G'(1)^2
        = np - np^2$.
    """),
    ("binet-formula", "en", r"""
        \documentclass{article}
        \usepackage{amsmath,amssymb}
        \begin{document}
        \section*{A closed form for the Fibonacci numbers}
        Let $F_0 = 0$, $F_1 = 1$ and $F_{n+1} = F_n + F_{n-1}$. The characteristic equation $x^2 = x + 1$ has
        roots $\varphi = \frac{1 + \sqrt5}{2}$ and $\psi = \frac{1 - \sqrt5}{2}$, so every solution of the
        recurrence is $F_n = \alpha \varphi^n + \beta \psi^n$. The initial values give $\alpha + \beta = 0$
        and $\alpha(\varphi - \psi) = 1$, i.e.\ $\alpha = -\beta = 1/\sqrt5$:
        \begin{equation}
          F_n = \frac{\varphi^n - \psi^n}{\sqrt5} .
        \end{equation}
        Since $|\psi| < 1$, $F_n$ is the integer nearest to $\varphi^n/\sqrt5$, and
        $\lim_{n\to\infty} F_{n+1}/F_n = \varphi \approx 1.618$. In matrix form,
        \[ \begin{pmatrix} 1 & 1 \\ 1 & 0 \end{pmatrix}^{n} =
           \begin{pmatrix} F_{n+1} & F_n \\ F_n & F_{n-1} \end{pmatrix}, \]
        and taking determinants yields Cassini's identity $F_{n+1}F_{n-1} - F_n^2 = (-1)^n$.
        \end{document}
    """),
    ("sqrt2-irrational", "en", r"""
        \section{$\sqrt{2}$ is irrational}
        \begin{proof}[Proof by contradiction]
        Suppose $\sqrt2 = p/q$ with integers $p, q > 0$ and $\gcd(p, q) = 1$. Then $p^2 = 2q^2$, so $p^2$ is
        even and therefore $p$ is even, say $p = 2r$. Substituting, $4r^2 = 2q^2$, i.e.\ $q^2 = 2r^2$, so
        $q$ is even as well. This contradicts $\gcd(p, q) = 1$.
        \end{proof}
        The same argument with the fundamental theorem of arithmetic shows that $\sqrt{n}$ is irrational
        unless $n$ is a perfect square: if $n = p^2/q^2$ then every prime $\ell$ satisfies
        $v_\ell(n) = 2 v_\ell(p) - 2 v_\ell(q) \in 2\mathbb{Z}$.
        A quick consequence: $\log_2 3$ is irrational, since $2^{a/b} = 3$ would give $2^a = 3^b$ with
        $a, b \geq 1$, an even number equal to an odd one.
    """),
    ("harmonic-series", "en", r"""
        \subsection*{Divergence of the harmonic series}
        Let $H_n = \sum_{k=1}^{n} \frac1k$. Grouping terms in blocks of length $2^{j}$ (Oresme),
        \[ H_{2^m} = 1 + \tfrac12 + \Bigl(\tfrac13 + \tfrac14\Bigr) + \Bigl(\tfrac15 + \cdots + \tfrac18\Bigr)
           + \cdots \ \ge\ 1 + \frac{m}{2}, \]
        because each block $\sum_{k=2^{j-1}+1}^{2^{j}} \frac1k$ has $2^{j-1}$ terms, each at least $2^{-j}$.
        Hence $H_n \to \infty$. Comparing with an integral gives the sharper estimate
        \[ \ln(n + 1) = \int_1^{n+1} \frac{dx}{x} \ \le\ H_n \ \le\ 1 + \int_1^{n} \frac{dx}{x} = 1 + \ln
        n, \]
        and in fact $H_n = \ln n + \gamma + \frac{1}{2n} + O(n^{-2})$ with Euler's constant
        $\gamma \approx 0.5772$. In contrast, $\sum_{k \ge 1} k^{-s}$ converges for every $s > 1$.
    """),
    ("taylor-exponential", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \section{The exponential series and its remainder}
        Taylor's theorem with the Lagrange remainder gives, for some $\xi$ between $0$ and $x$,
        \begin{equation}
          e^x = \sum_{k=0}^{n} \frac{x^k}{k!} + R_n(x), \qquad R_n(x) = \frac{e^{\xi}}{(n+1)!}\, x^{n+1}.
        \end{equation}
        For fixed $x$, $|R_n(x)| \le e^{|x|} |x|^{n+1}/(n+1)! \to 0$, so $e^x = \sum_{k \ge 0} x^k / k!$ for
        all real $x$. At $x = 1$,
        \[ 0 < e - \sum_{k=0}^{n} \frac{1}{k!} < \frac{3}{(n+1)!}, \]
        and already $n = 9$ gives $e \approx 2.7182815$ with an error below $10^{-6}$.
        \paragraph{Irrationality of $e$.} If $e = p/q$, then $q!\,\bigl(e - \sum_{k \le q} 1/k!\bigr)$ is an
        integer strictly between $0$ and $\frac{3}{q+1} \le 1$ for $q \geq 2$, a contradiction.
        \end{document}
    """),
    ("mean-value-theorem", "en", r"""
        \section{Rolle and the mean value theorem}
        \begin{theorem}[Rolle]
        If $f$ is continuous on $[a, b]$, differentiable on $(a, b)$ and $f(a) = f(b)$, then $f'(c) = 0$
        for some $c \in (a, b)$.
        \end{theorem}
        \begin{theorem}[Mean value theorem]
        If $f$ is continuous on $[a, b]$ and differentiable on $(a, b)$, there is $c \in (a, b)$ with
        \[ f'(c) = \frac{f(b) - f(a)}{b - a} . \]
        \end{theorem}
        \begin{proof}
        Apply Rolle's theorem to $g(x) = f(x) - f(a) - \frac{f(b) - f(a)}{b - a}(x - a)$, which satisfies
        $g(a) = g(b) = 0$; then $0 = g'(c) = f'(c) - \frac{f(b) - f(a)}{b - a}$.
        \end{proof}
        \paragraph{Corollaries.} If $f' \equiv 0$ on an interval, $f$ is constant; if $f' > 0$, $f$ is
        strictly increasing; and $|\sin x - \sin y| \le |x - y|$ since $|\cos| \le 1$.
    """),
    ("fundamental-theorem-calculus", "en", r"""
        \subsection{The fundamental theorem of calculus}
        Let $f \colon [a, b] \to \mathbb{R}$ be continuous and $F(x) = \int_a^x f(t)\, dt$.
        \begin{enumerate}
          \item $F$ is differentiable and $F'(x) = f(x)$ for all $x \in (a, b)$.
          \item If $G' = f$ on $[a, b]$, then $\int_a^b f(t)\, dt = G(b) - G(a)$.
        \end{enumerate}
        \emph{Proof of (1).} For $h \ne 0$,
        \[ \Bigl| \frac{F(x+h) - F(x)}{h} - f(x) \Bigr| = \Bigl| \frac1h \int_x^{x+h} \bigl(f(t) -
        f(x)\bigr) dt \Bigr|
           \le \sup_{|t - x| \le |h|} |f(t) - f(x)| , \]
        which tends to $0$ as $h \to 0$ by continuity of $f$.
        \emph{Proof of (2).} $(F - G)' = 0$, so $F - G$ is constant and
        $\int_a^b f = F(b) - F(a) = G(b) - G(a)$. For instance $\int_0^{\pi} \sin t \, dt
        = [-\cos t]_0^{\pi} = 2$.
    """),
    ("jensen-inequality", "en", r"""
        \documentclass{article}
        \usepackage{amsmath,amsthm}
        \newtheorem{theorem}{Theorem}
        \begin{document}
        \begin{theorem}[Jensen]
        Let $\varphi$ be convex on an interval $I$, $x_1, \dots, x_n \in I$ and weights $w_i \ge 0$ with
        $\sum_i w_i = 1$. Then $\varphi\bigl(\sum_i w_i x_i\bigr) \le \sum_i w_i \varphi(x_i)$.
        \end{theorem}
        \begin{proof}
        Induction on $n$; $n = 1$ is trivial and $n = 2$ is the definition of convexity. For $n > 2$ with
        $w_n < 1$ put $s = 1 - w_n$ and $y = \sum_{i<n} (w_i / s) x_i \in I$. Then
        \begin{align*}
          \varphi\Bigl(\sum_{i=1}^{n} w_i x_i\Bigr) = \varphi\bigl(s y + w_n x_n\bigr)
          &\le s\,\varphi(y) + w_n \varphi(x_n) \\
          &\le \sum_{i<n} w_i \varphi(x_i) + w_n \varphi(x_n).
        \end{align*}
        \end{proof}
        In probabilistic form $\varphi(\mathbb{E}X) \le \mathbb{E}\varphi(X)$; with $\varphi(x) = x^2$ this is
        $\operatorname{Var}(X) \ge 0$, and with $\varphi = -\log$ it gives the AM--GM inequality.
        \end{document}
    """),
    ("markov-chebyshev", "en", r"""
        \section*{Markov's and Chebyshev's inequalities}
        \textbf{Markov.} If $X \ge 0$ and $a > 0$, then $\Pr[X \ge a] \le \mathbb{E}[X]/a$, because
        $a \cdot \mathbf{1}[X \ge a] \le X$ pointwise and expectation is monotone.
        \textbf{Chebyshev.} Applying Markov's inequality to $(X - \mu)^2$ with $\mu = \mathbb{E}X$ and
        $\sigma^2 = \operatorname{Var} X$,
        \[ \Pr\bigl[|X - \mu| \ge k\sigma\bigr] = \Pr\bigl[(X - \mu)^2 \ge k^2\sigma^2\bigr] \le
        \frac{1}{k^2}. \]
        \textbf{Weak law of large numbers.} For i.i.d.\ $X_i$ with mean $\mu$ and variance $\sigma^2$,
        the sample mean $\bar X_n = \frac1n \sum_{i \le n} X_i$ has variance $\sigma^2/n$, so
        \[ \Pr\bigl[|\bar X_n - \mu| \ge \varepsilon\bigr] \le \frac{\sigma^2}{n \varepsilon^2}
           \xrightarrow[n\to\infty]{} 0 . \]
        Exponential (Chernoff) bounds $\Pr[X \ge a] \le e^{-ta}\,\mathbb{E}e^{tX}$ follow the same way from
        Markov's inequality applied to $e^{tX}$, $t > 0$.
    """),
    ("stirling", "en", r"""
        \subsection{A first step towards Stirling's formula}
        Since $\ln$ is increasing, $\int_{k-1}^{k} \ln x \, dx \le \ln k \le \int_{k}^{k+1} \ln x \, dx$.
        Summing over $k = 1, \dots, n$ (the left integral starting at $1$),
        \[ n \ln n - n + 1 \ \le\ \ln n! \ \le\ (n+1)\ln(n+1) - n , \]
        so $\ln n! = n \ln n - n + O(\ln n)$. The trapezoidal rule refines this: the error terms
        $\varepsilon_k = \int_k^{k+1} \ln x\,dx - \tfrac12(\ln k + \ln(k+1))$ are $O(k^{-2})$ and summable,
        which yields a constant $C$ with
        \[ n! \sim C \sqrt{n} \Bigl(\frac{n}{e}\Bigr)^{n} . \]
        Wallis' product $\frac{\pi}{2} = \prod_{k \ge 1} \frac{4k^2}{4k^2 - 1}$ identifies $C = \sqrt{2\pi}$,
        giving $n! \sim \sqrt{2\pi n}\,(n/e)^n$; for $n = 10$ the ratio is already $0.9917$.
    """),
    ("fourier-square-wave", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \section{Fourier series of a square wave}
        Let $f$ be $2\pi$-periodic with $f(x) = 1$ on $(0, \pi)$ and $f(x) = -1$ on $(-\pi, 0)$. It is odd,
        so $a_n = 0$ and
        \begin{equation}
          b_n = \frac{1}{\pi}\int_{-\pi}^{\pi} f(x) \sin(nx)\, dx = \frac{2}{\pi}\int_0^{\pi} \sin(nx)\, dx
              = \frac{2\,(1 - (-1)^n)}{n\pi} .
        \end{equation}
        Hence $b_n = \frac{4}{n\pi}$ for odd $n$ and $0$ for even $n$:
        \begin{equation}
          f(x) \sim \frac{4}{\pi} \sum_{k=0}^{\infty} \frac{\sin\bigl((2k+1)x\bigr)}{2k+1} .
        \end{equation}
        At $x = \pi/2$ this gives Leibniz's series $\frac{\pi}{4} = 1 - \frac13 + \frac15 - \cdots$.
        Parseval's identity $\frac1\pi \int_{-\pi}^{\pi} f^2 = \sum_n b_n^2$ gives $2 = \frac{16}{\pi^2}
        \sum_{k} (2k+1)^{-2}$, i.e.\ $\sum_{k \ge 0} (2k+1)^{-2} = \pi^2/8$ and so $\zeta(2) = \pi^2/6$.
        Near the jump the partial sums overshoot by about $9\%$ (the Gibbs phenomenon).
        \end{document}
    """),
    ("newton-method", "en", r"""
        \section{Quadratic convergence of Newton's method}
        To solve $f(x) = 0$, Newton's method iterates $x_{k+1} = x_k - f(x_k)/f'(x_k)$.
        \begin{theorem}
        Let $f \in C^2$ near a simple root $x^*$ ($f(x^*) = 0 \ne f'(x^*)$). Then for $x_0$ close enough to
        $x^*$ the iterates converge and $|x_{k+1} - x^*| \le M |x_k - x^*|^2$ with
        $M = \sup|f''| / (2 \inf|f'|)$ over a neighbourhood.
        \end{theorem}
        \begin{proof}
        Taylor expansion at $x_k$: $0 = f(x^*) = f(x_k) + f'(x_k)(x^* - x_k) + \tfrac12 f''(\xi_k)(x^* -
        x_k)^2$.
        Dividing by $f'(x_k)$ and rearranging,
        \[ x_{k+1} - x^* = \frac{f''(\xi_k)}{2 f'(x_k)} \, (x_k - x^*)^2 . \]
        \end{proof}
        \paragraph{Example.} For $f(x) = x^2 - 2$ the iteration is $x_{k+1} = \tfrac12(x_k + 2/x_k)$; from
        $x_0 = 1$ we get $1.5$, $1.41\overline{6}$, $1.4142157$, $1.41421356237$, the number of correct
        digits roughly doubling at each step.
    """),
    ("lagrange-multipliers", "en", r"""
        \subsection*{Lagrange multipliers}
        To find extrema of $f(x, y)$ subject to $g(x, y) = c$, look for points where $\nabla f = \lambda
        \nabla g$
        and $g = c$, i.e.\ critical points of $\mathcal{L}(x, y, \lambda) = f - \lambda (g - c)$.
        \paragraph{Example.} Maximise $f = xy$ on the line $x + 2y = 4$:
        \begin{align*}
          \partial_x \mathcal{L} &= y - \lambda = 0, \\
          \partial_y \mathcal{L} &= x - 2\lambda = 0, \\
          \partial_\lambda \mathcal{L} &= -(x + 2y - 4) = 0 .
        \end{align*}
        Thus $x = 2y$, $4y = 4$, so $(x, y) = (2, 1)$, $\lambda = 1$ and $f_{\max} = 2$.
        \paragraph{Interpretation.} The multiplier is the sensitivity of the optimum to the constraint
        level: $\frac{d f^*}{dc} = \lambda$. Indeed for $x + 2y = c$ the optimum is $f^*(c) = c^2/8$ and
        $\frac{d}{dc}\frac{c^2}{8}\big|_{c=4} = 1$. For several constraints,
        $\nabla f = \sum_j \lambda_j \nabla g_j$ at a regular constrained extremum.
    """),
    ("lagrange-group-theorem", "en", r"""
        \documentclass{amsart}
        \begin{document}
        \section{Lagrange's theorem for finite groups}
        \begin{theorem}
        If $H$ is a subgroup of a finite group $G$, then $|H|$ divides $|G|$; in fact $|G| = [G : H]\,|H|$.
        \end{theorem}
        \begin{proof}
        The left cosets $gH = \{gh : h \in H\}$ partition $G$: the relation $a \sim b \iff a^{-1}b \in H$ is
        an equivalence relation whose classes are the cosets. Each coset has exactly $|H|$ elements,
        because $h \mapsto gh$ is a bijection $H \to gH$. If there are $[G:H]$ cosets,
        $|G| = [G : H] \cdot |H|$.
        \end{proof}
        \begin{corollary}
        The order of every $g \in G$ divides $|G|$, so $g^{|G|} = e$. If $|G| = p$ is prime, $G$ is cyclic.
        \end{corollary}
        Applied to the unit group $(\mathbb{Z}/n\mathbb{Z})^{\times}$ of order $\varphi(n)$, the corollary
        is Euler's theorem $a^{\varphi(n)} \equiv 1 \pmod n$. The converse fails: $A_4$ has order $12$ but
        no subgroup of order $6$.
        \end{document}
    """),
    ("euler-planar-graphs", "en", r"""
        \section{Euler's formula for planar graphs}
        \begin{theorem}
        A connected plane graph with $V$ vertices, $E$ edges and $F$ faces (including the outer face)
        satisfies $V - E + F = 2$.
        \end{theorem}
        \begin{proof}
        Induction on $E$. A tree has $E = V - 1$ and $F = 1$, so $V - E + F = 2$. Otherwise the graph has
        a cycle; removing one of its edges merges the two faces on either side, so $E$ and $F$ both
        drop by one and $V - E + F$ is unchanged.
        \end{proof}
        \paragraph{Consequence.} In a simple plane graph with $V \ge 3$ every face is bounded by at least
        three edges and every edge borders at most two faces, so $3F \le 2E$. Substituting into the
        formula,
        \[ E \le 3V - 6 . \]
        For $K_5$ we have $E = 10 > 9 = 3 \cdot 5 - 6$, so $K_5$ is not planar. For bipartite graphs faces
        have length $\ge 4$, giving $E \le 2V - 4$, which rules out $K_{3,3}$ ($9 > 8$).
    """),
    ("catalan-numbers", "en", r"""
        \subsection{Catalan numbers}
        Let $C_n$ count sequences of $n$ opening and $n$ closing brackets that are balanced. Splitting at
        the bracket that closes the first one gives the recurrence
        \[ C_0 = 1, \qquad C_{n+1} = \sum_{k=0}^{n} C_k \, C_{n-k} . \]
        With $C(x) = \sum_{n\ge0} C_n x^n$ this says $C(x) = 1 + x\,C(x)^2$, hence
        \[ C(x) = \frac{1 - \sqrt{1 - 4x}}{2x}, \qquad C_n = \frac{1}{n+1}\binom{2n}{n} . \]
        \emph{Reflection argument.} Of the $\binom{2n}{n}$ lattice paths with steps $\pm1$ from $0$ to $0$,
        the bad ones touch $-1$; reflecting the part before the first touch maps them bijectively to
        paths from $-2$ to $0$, of which there are $\binom{2n}{n+1}$. So
        $C_n = \binom{2n}{n} - \binom{2n}{n+1}$. The first values are $1, 1, 2, 5, 14, 42, 132$, and
        $C_n \sim 4^n / (n^{3/2}\sqrt{\pi})$.
    """),
    ("derangements", "en", r"""
        \documentclass{article}
        \usepackage{amsmath}
        \begin{document}
        \section*{Derangements by inclusion--exclusion}
        A derangement is a permutation with no fixed point. Let $A_i$ be the set of permutations of
        $[n]$ fixing $i$. For any $S \subseteq [n]$ with $|S| = k$, $\bigl|\bigcap_{i \in S} A_i\bigr| =
        (n-k)!$.
        By inclusion--exclusion,
        \begin{align}
          D_n = n! - \Bigl|\bigcup_{i} A_i\Bigr|
              &= \sum_{k=0}^{n} (-1)^k \binom{n}{k} (n-k)! \\
              &= n! \sum_{k=0}^{n} \frac{(-1)^k}{k!} .
        \end{align}
        Therefore $D_n / n! \to e^{-1} \approx 0.3679$, and in fact $D_n$ is the integer nearest to $n!/e$
        for $n \ge 1$. The numbers also satisfy $D_n = (n-1)(D_{n-1} + D_{n-2})$ with $D_1 = 0$, $D_2 = 1$,
        giving $0, 1, 2, 9, 44, 265, 1854$.
        \end{document}
    """),
    ("matrix-exponential", "en", r"""
        \section{The matrix exponential and linear systems}
        For $A \in \mathbb{R}^{n\times n}$ define $e^{A} = \sum_{k \ge 0} A^k / k!$; the series converges
        absolutely since $\|A^k\| \le \|A\|^k$. The solution of $\dot x(t) = A x(t)$, $x(0) = x_0$, is
        \[ x(t) = e^{tA} x_0, \qquad \frac{d}{dt} e^{tA} = A e^{tA} . \]
        \paragraph{Diagonalisable case.} If $A = P \Lambda P^{-1}$ then $e^{tA} =
        P\,\mathrm{diag}(e^{t\lambda_i})\,P^{-1}$.
        \paragraph{Nilpotent part.} For $N = \begin{pmatrix} 0 & 1 \\ 0 & 0 \end{pmatrix}$ we have $N^2 = 0$,
        so $e^{t(\lambda I + N)} = e^{\lambda t}(I + tN) = e^{\lambda t}\begin{pmatrix} 1 & t \\ 0 & 1
        \end{pmatrix}$.
        \paragraph{Rotation.} For $J = \begin{pmatrix} 0 & -1 \\ 1 & 0 \end{pmatrix}$, $J^2 = -I$ and
        \[ e^{\theta J} = \cos\theta\, I + \sin\theta\, J
           = \begin{pmatrix} \cos\theta & -\sin\theta \\ \sin\theta & \cos\theta \end{pmatrix} . \]
        In general $\det e^{A} = e^{\operatorname{tr} A}$, and $e^{A+B} = e^A e^B$ when $AB = BA$.
    """),
    ("heat-equation", "en", r"""
        \subsection*{Separation of variables for the heat equation}
        Consider $u_t = \kappa\, u_{xx}$ on $0 < x < L$, $t > 0$, with $u(0,t) = u(L,t) = 0$ and $u(x,0)
        = f(x)$.
        Trying $u = X(x)T(t)$ gives $\frac{T'}{\kappa T} = \frac{X''}{X} = -\lambda$. The boundary conditions
        force $\lambda_n = (n\pi/L)^2$ and $X_n = \sin(n\pi x / L)$, $n = 1, 2, \dots$, while
        $T_n = e^{-\kappa \lambda_n t}$. Superposing,
        \[ u(x, t) = \sum_{n=1}^{\infty} b_n \, e^{-\kappa (n\pi/L)^2 t} \sin\frac{n\pi x}{L}, \qquad
           b_n = \frac{2}{L}\int_0^L f(x) \sin\frac{n\pi x}{L}\, dx . \]
        High frequencies decay fastest, so the solution is smooth for every $t > 0$. The energy
        $E(t) = \int_0^L u^2\,dx$ satisfies $E'(t) = -2\kappa \int_0^L u_x^2 \, dx \le 0$, which also proves
        uniqueness: the difference of two solutions has $E(0) = 0$ and hence $E \equiv 0$.
    """),
    ("wallis-fr", "fr", r"""
        \documentclass{article}
        \usepackage[french]{babel}
        \usepackage{amsmath}
        \begin{document}
        \section{Les intégrales de Wallis}
        On pose, pour tout entier $n \ge 0$, $W_n = \int_0^{\pi/2} \sin^n t \, dt$. On a $W_0 = \pi/2$ et
        $W_1 = 1$. Une intégration par parties montre que
        \begin{equation}
          W_{n+2} = \frac{n+1}{n+2}\, W_n \qquad (n \ge 0).
        \end{equation}
        On en déduit les formules explicites
        \[ W_{2p} = \frac{(2p)!}{2^{2p}(p!)^2}\cdot\frac{\pi}{2}, \qquad
           W_{2p+1} = \frac{2^{2p}(p!)^2}{(2p+1)!} . \]
        La suite $(W_n)$ est décroissante et strictement positive, et la quantité $(n+1) W_{n+1} W_n$ est
        constante, égale à $\pi/2$. Comme $W_{n+1} \sim W_n$, on obtient l'équivalent
        \[ W_n \sim \sqrt{\frac{\pi}{2n}} \quad (n \to +\infty), \]
        qui permet de déterminer la constante dans la formule de Stirling.
        \end{document}
    """),
    ("exponentialreihe-de", "de", r"""
        \section{Die Exponentialreihe}
        \begin{satz}
        Für jedes $z \in \mathbb{C}$ konvergiert die Reihe $\exp(z) = \sum_{k=0}^{\infty} \frac{z^k}{k!}$
        absolut,
        und es gilt die Funktionalgleichung $\exp(z + w) = \exp(z)\exp(w)$.
        \end{satz}
        \begin{beweis}
        Für $z \ne 0$ ist der Quotient aufeinanderfolgender Glieder
        \[ \Bigl| \frac{z^{k+1}/(k+1)!}{z^k/k!} \Bigr| = \frac{|z|}{k+1} \longrightarrow 0 , \]
        also konvergiert die Reihe nach dem Quotientenkriterium absolut. Mit dem Cauchy-Produkt und dem
        binomischen Lehrsatz folgt
        \[ \exp(z)\exp(w) = \sum_{n=0}^{\infty} \sum_{k=0}^{n} \frac{z^k w^{n-k}}{k!\,(n-k)!}
           = \sum_{n=0}^{\infty} \frac{(z+w)^n}{n!} = \exp(z + w) . \]
        \end{beweis}
        Insbesondere ist $\exp(z) \ne 0$, denn $\exp(z)\exp(-z) = \exp(0) = 1$, und für reelle $x$ gilt
        $\exp(x) > 0$.
    """),
]

# (slug, Markdown): explanations with inline $...$ and display $$...$$ formulas.
MARKDOWN_MATH: list[tuple[str, str]] = [
    ("softmax-cross-entropy", r"""
        # Gradient of softmax cross-entropy

        For logits $z \in \mathbb{R}^K$ the softmax is $p_i = e^{z_i} / \sum_j e^{z_j}$. With a one-hot
        target $y$ the cross-entropy loss is $L = -\sum_i y_i \log p_i = -z_c + \log \sum_j e^{z_j}$, where
        $c$ is the correct class.

        Differentiating the second form directly,

        $$\frac{\partial L}{\partial z_i} = -y_i + \frac{e^{z_i}}{\sum_j e^{z_j}} = p_i - y_i .$$

        So the gradient is simply the predicted distribution minus the target. Two practical notes:

        - Subtracting $m = \max_j z_j$ from every logit leaves $p$ unchanged and avoids overflow, since
          $\log \sum_j e^{z_j} = m + \log \sum_j e^{z_j - m}$.
        - With label smoothing $\varepsilon$ the target becomes
          $y' = (1 - \varepsilon) y + \varepsilon / K$, and the gradient is still $p - y'$.
    """),
    ("gradient-descent-convex", r"""
        # Gradient descent on a smooth convex function

        Let $f$ be convex and $L$-smooth, meaning $\|\nabla f(x) - \nabla f(y)\| \le L \|x - y\|$. Gradient
        descent with step size $\eta = 1/L$ updates $x_{k+1} = x_k - \frac{1}{L}\nabla f(x_k)$.

        Smoothness gives the descent lemma $f(x_{k+1}) \le f(x_k) - \frac{1}{2L}\|\nabla f(x_k)\|^2$, so the
        objective never increases. Combining it with convexity, $f(x_k) - f^* \le \langle \nabla f(x_k),
        x_k - x^* \rangle$,
        and summing a telescoping bound yields

        $$f(x_k) - f^* \le \frac{L \, \|x_0 - x^*\|^2}{2k} .$$

        The rate is $O(1/k)$. If $f$ is also $\mu$-strongly convex the error contracts geometrically,
        $f(x_k) - f^* \le (1 - \mu/L)^k \, (f(x_0) - f^*)$, and the ratio $\kappa = L/\mu$ (the condition
        number) controls how many steps are needed.
    """),
    ("least-squares", r"""
        # Least squares and the normal equations

        Given a design matrix $X \in \mathbb{R}^{n \times d}$ and targets $y \in \mathbb{R}^n$, ordinary
        least squares
        minimises $J(w) = \|Xw - y\|^2$. Expanding, $J(w) = w^\top X^\top X w - 2 y^\top X w + y^\top y$, and
        setting the gradient $\nabla J = 2X^\top X w - 2X^\top y$ to zero gives the normal equations

        $$X^\top X \, \hat w = X^\top y .$$

        When $X$ has full column rank, $\hat w = (X^\top X)^{-1} X^\top y$. Geometrically, $X\hat w$ is the
        orthogonal projection of $y$ onto the column space of $X$, and the residual $r = y - X\hat w$
        satisfies $X^\top r = 0$.

        Adding a ridge penalty $\lambda \|w\|^2$ changes the solution to $\hat w_\lambda = (X^\top X +
        \lambda I)^{-1} X^\top y$,
        which exists for every $\lambda > 0$ even when the columns of $X$ are dependent.
    """),
    ("kl-divergence", r"""
        # Why the KL divergence is never negative

        For discrete distributions $p$ and $q$ on the same set, the Kullback-Leibler divergence is
        $D(p \| q) = \sum_i p_i \log (p_i / q_i)$, with the convention $0 \log 0 = 0$.

        Gibbs' inequality states $D(p \| q) \ge 0$, with equality only when $p = q$. Since $\log$ is
        concave, Jensen's inequality gives

        $$-D(p \| q) = \sum_i p_i \log \frac{q_i}{p_i} \le \log \sum_i p_i \frac{q_i}{p_i} = \log
        \sum_{i: p_i > 0} q_i \le \log 1 = 0 .$$

        The divergence is not symmetric: for $p = (1/2, 1/2)$ and $q = (9/10, 1/10)$ one finds
        $D(p \| q) \approx 0.511$ nats but $D(q \| p) \approx 0.368$ nats. Minimising $D(p \| q_\theta)$ over
        $\theta$ is the same as maximising the expected log-likelihood $\sum_i p_i \log q_{\theta,i}$,
        which is
        why cross-entropy training fits a model distribution to the data.
    """),
]

# --- junk vocabulary (generated hosts use the reserved .example top-level domain) -----------------

JUNK_HOST_WORDS = [
    "best", "cheap", "deals", "mega", "super", "online", "shop", "discount", "top", "win", "free", "fast",
    "casino", "pills", "loans", "travel", "outlet", "bargain", "prime", "lucky", "express", "direct",
]  # fmt: skip
KEYWORD_SETS = [
    ("cheap flights", "to paris"), ("payday loans", "fast approval"), ("replica watches", "sale"),
    ("weight loss pills", "that work"), ("casino bonus", "no deposit"), ("free ringtones", "download"),
    ("seo services", "guaranteed ranking"), ("discount sneakers", "outlet"),
]  # fmt: skip
LINK_PREFIXES = ["Best", "Top 10", "Cheapest", "Official", "Buy", "Discount", "Free", "Trusted"]
NAV_ITEMS = [
    "Home", "About us", "Products", "Services", "Contact", "Login", "Register", "Blog", "News", "Careers",
    "Shop", "Cart", "Wishlist", "Help", "FAQ", "Sitemap", "Search", "Downloads", "Support", "Partners",
    "Gallery", "Events", "Pricing", "Store locator",
]  # fmt: skip
FOOTER_ITEMS = [
    "Imprint", "Accessibility", "Press", "Affiliates", "Newsletter", "Follow us", "Gift cards", "Returns",
    "Shipping", "Investors", "Security", "Jobs",
]  # fmt: skip
COOKIE_LINES = [
    "This website uses cookies to improve your experience.",
    "We use cookies to personalise content and ads and to analyse our traffic.",
    "By continuing to browse you agree to our use of cookies.",
    "Read our Cookie Policy to learn more.",
    "Please review our Privacy Policy and Terms of Service.",
    "Some features of this site use cookies that are strictly necessary.",
    "You can change your cookie settings at any time in the footer.",
    "Our partners use cookies to measure the performance of campaigns.",
    "See the Terms of Use for details on how we process data.",
    "Your privacy matters to us, see our privacy policy.",
    "Essential cookies cannot be switched off.",
    "Analytics cookies help us understand how visitors use cookies and pages.",
    "We updated our Terms of Service on the first of the month.",
    "Third parties may use cookies for advertising.",
    "Cookie Policy | Privacy Policy | Terms of Use",
    "Allow this site to use cookies?",
    "Marketing cookies track visitors across websites.",
    "Preferences are stored for twelve months in accordance with our cookie policy.",
    "You may withdraw consent at any time, see the privacy policy.",
    "Functional cookies remember your language and region.",
]
COOKIE_BUTTONS = ["Accept all", "Reject all", "Manage preferences", "Settings", "OK", "Learn more"]
LOREM_WORDS = [
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod",
    "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "ad", "minim",
    "veniam",
    "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip", "ex", "ea", "commodo",
    "consequat", "duis", "aute", "irure", "in", "reprehenderit", "voluptate", "velit", "esse", "cillum",
    "fugiat", "nulla", "pariatur", "excepteur", "sint", "occaecat", "cupidatat", "non", "proident", "sunt",
    "culpa", "qui", "officia", "deserunt", "mollit", "anim", "id", "est", "laborum",
]  # fmt: skip
REPEATED_LINES = [
    "Click here to claim your free prize now!",
    "Subscribe to our channel for daily updates.",
    "This item is currently out of stock.",
    "Loading, please wait.",
    "Error: the requested resource could not be found.",
    "Share this page with your friends.",
]
SHORT_FRAGMENTS = [
    "404 Not Found",
    "Page 2 of 7. Next page.",
    "Thanks for reading!",
    "Posted by admin in Uncategorized",
    "Continue reading on the app.",
]

# --- near-duplicate edits -----------------------------------------------------------------------

NEAR_DUP_WORDS = ["also", "often", "usually", "simply", "then", "now", "really", "still", "clearly", "indeed"]
NEAR_DUP_HEADERS = [
    "Mirrored from the Python 3.11 documentation.",
    "Archived copy of the reference page.",
    "Reference notes imported from an older wiki.",
]
NEAR_DUP_FOOTERS = [
    "Last reviewed by the documentation team.",
    "This page is part of a community mirror and may lag behind the original.",
    "Found a typo? Corrections are welcome on the mirror's issue tracker.",
]
CODE_COMMENTS = ["# TODO: review this block.", "# NOTE: kept for compatibility.", "# Checked upstream."]
CODE_HEADERS = ["# Mirrored copy; see the upstream repository for history.", "# Vendored for offline use."]

# --- fictional PII: reserved/example values only -------------------------------------------------
# Emails use example.com/.org; phones use 555-01xx (NANP fictional range) or Ofcom's 020 7946 0xxx drama
# range; cards are the networks' published test numbers (Luhn-valid); SSNs come from 987-65-4320..4329,
# which the SSA reserves for advertising (078-05-1120 is avoided: Presidio rejects it as a known sample);
# IPs are documentation ranges (RFC 5737, RFC 3849); IBANs are the registry's published examples
# (checksum-valid); the AWS keys are the ones AWS documentation uses; names are placeholder names.
PII_VALUES: dict[str, list[str]] = {
    "person": ["Jane Doe", "John Doe", "Richard Roe", "Jane Roe", "Mary Major", "Joe Bloggs",
               "John Q. Public", "Erika Mustermann", "Fred Nurk"],
    "email": ["jane.doe@example.com", "john.doe@example.org", "r.roe@example.com", "mary.major@example.org",
              "joe.bloggs@example.com", "helpdesk@example.org", "erika.mustermann@example.com"],
    "phone": ["+1 202-555-0147", "(212) 555-0183", "+1 415-555-0132", "+1 (617) 555-0199", "312-555-0110",
              "+44 20 7946 0958"],
    "credit_card": ["4111 1111 1111 1111", "5555 5555 5555 4444", "4012 8888 8888 1881", "3782 822463 10005",
                    "6011 1111 1111 1117", "5105-1051-0510-5100"],
    "ssn": ["987-65-4321", "987-65-4322", "987-65-4325", "987-65-4328", "219-09-9999"],
    "ipv4": ["192.0.2.44", "198.51.100.23", "203.0.113.7", "192.0.2.201", "198.51.100.178"],
    "ipv6": ["2001:db8::8a2e:370:7334", "2001:db8:85a3::1", "2001:db8:0:1234::42"],
    "iban": ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00",
             "FR14 2004 1010 0505 0001 3M02 606", "NL91 ABNA 0417 1643 00", "ES91 2100 0418 4502 0005 1332"],
    "api_key": ["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE"],
    "api_secret": ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"],
}  # fmt: skip
# Slot names are PII_VALUES keys ("_2" allows a second value of one type in a sentence).
PII_TEMPLATES: dict[str, list[str]] = {
    "email": [
        "If anything on this page is unclear, write to {person} at {email}, who looks after these notes.",
        "Corrections can be mailed to {email}; please mention the section you are referring to.",
    ],
    "phone": [
        "Readers who prefer the telephone can reach {person} on {phone} during office hours.",
        "For urgent questions about the workshop, call the organisers on {phone} before noon.",
    ],
    "credit_card": [
        "In the checkout example the test order was paid with the card number {credit_card}, and the "
        "sandbox accepted it without complaint.",
        "One reader pasted a receipt showing the card {credit_card} for {person}, which is exactly what "
        "a forum post should never contain.",
    ],
    "ssn": [
        "An old support ticket even quoted the social security number {ssn} for {person}, a detail that "
        "should never end up in a bug report.",
        "The sample payroll record lists the employee's SSN as {ssn} next to the salary figures.",
    ],
    "ipv4": [
        "The staging server at {ipv4} handled the benchmark requests, and its logs were kept for a week.",
        "During the test run the client connected from {ipv4} to the cache at {ipv4_2}.",
    ],
    "ipv6": [
        "Over IPv6 the same host answers at {ipv6}, so both address families were exercised.",
        "The firewall rule only admitted traffic from {ipv6} while the migration was running.",
    ],
    "iban": [
        "Conference fees were transferred to the account {iban} in the name of {person}.",
        "Refunds are paid back to the IBAN {iban} that was used for the original payment.",
    ],
    "api_key": [
        "A sample configuration file once shipped with the access key {api_key} and the secret {api_secret}, "
        "which had to be rotated immediately.",
        "The leaked deployment script contained the key {api_key} in plain text, so {person} revoked it.",
    ],
}
PII_LABEL_TYPE = {"api_secret": "api_key"}  # labels call every credential an api_key
# (sentence, [(decoy kind, value)]): numbers that look like PII but are not.
DECOY_SENTENCES: list[tuple[str, list[tuple[str, str]]]] = [
    ("These notes were last checked against Python 3.11.7 and pip 23.2.1 on 2024-03-15.",
     [("version", "3.11.7"), ("version", "23.2.1"), ("date", "2024-03-15")]),
    ("For background, see the textbook with ISBN 978-0-306-40615-7, chapter 4.",
     [("isbn", "978-0-306-40615-7")]),
    ("The archive's SHA-256 digest is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.",
     [("hash", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]),
    ("The order number 4111 1111 1111 1112 on the invoice is not a card number.",
     [("non_luhn_number", "4111 1111 1111 1112")]),
    ("The request id 123e4567-e89b-12d3-a456-426614174000 appears once in the server log.",
     [("uuid", "123e4567-e89b-12d3-a456-426614174000")]),
    ("Build 10.0.19045 was released on 12 March 2024 and fixed commit 3f2a9c1.",
     [("version", "10.0.19045"), ("date", "12 March 2024"), ("hash", "3f2a9c1")]),
]  # fmt: skip

# --- decontamination benchmark: items written for gemmaflow ------------------------------------

BENCHMARK: list[dict[str, str]] = [
    {
        "id": "gfbench-001",
        "question": (
            "A train leaves a station at 9:15 in the morning and travels at a constant speed of 80 "
            "kilometres per hour. How many kilometres has it covered by 11:45 the same morning?"
        ),
        "answer": "200",
    },
    {
        "id": "gfbench-002",
        "question": (
            "A baker uses 350 grams of flour for each loaf of bread. If she has a sack containing 10 "
            "kilograms of flour, how many complete loaves can she bake from it?"
        ),
        "answer": "28",
    },
    {
        "id": "gfbench-003",
        "question": (
            "Which gas do green plants absorb from the atmosphere during photosynthesis and combine with "
            "water to produce sugars and oxygen?"
        ),
        "answer": "Carbon dioxide",
    },
    {
        "id": "gfbench-004",
        "question": (
            "A rectangular garden is 12 metres long and 7 metres wide. A path one metre wide runs all the "
            "way around the outside of the garden. What is the area of the path in square metres?"
        ),
        "answer": "42",
    },
    {
        "id": "gfbench-005",
        "question": (
            "In a class of 30 pupils, 18 play football, 12 play chess and 5 play both. How many pupils in "
            "the class play neither football nor chess?"
        ),
        "answer": "5",
    },
    {
        "id": "gfbench-006",
        "question": (
            "Which layer of the Earth, lying between the crust and the outer core, makes up most of the "
            "planet's volume and slowly flows over geological time?"
        ),
        "answer": "The mantle",
    },
    {
        "id": "gfbench-007",
        "question": (
            "A shop reduces the price of a jacket by 20 percent and then reduces the new price by a "
            "further 10 percent. By what total percentage has the original price been reduced?"
        ),
        "answer": "28 percent",
    },
    {
        "id": "gfbench-008",
        "question": (
            "What is the name of the process by which water vapour in the air cools and changes back into "
            "liquid droplets, for example forming dew on grass in the early morning?"
        ),
        "answer": "Condensation",
    },
    {
        "id": "gfbench-009",
        "question": (
            "Tom is three times as old as his daughter. In twelve years he will be twice as old as she "
            "will be then. How old is Tom's daughter now?"
        ),
        "answer": "12",
    },
    {
        "id": "gfbench-010",
        "question": (
            "Which simple machine consists of a rigid bar that pivots on a fixed point called a fulcrum "
            "and is used to lift heavy loads with less effort?"
        ),
        "answer": "A lever",
    },
    {
        "id": "gfbench-011",
        "question": (
            "A water tank holds 1,200 litres. One pipe fills it in 40 minutes and a second pipe fills it "
            "in 60 minutes. How many minutes do both pipes take to fill the empty tank together?"
        ),
        "answer": "24",
    },
    {
        "id": "gfbench-012",
        "question": (
            "What do we call the imaginary line around the middle of the Earth that lies at zero degrees "
            "of latitude, halfway between the North Pole and the South Pole?"
        ),
        "answer": "The equator",
    },
    {
        "id": "gfbench-013",
        "question": (
            "The sum of three consecutive even numbers is 78. What is the largest of the three numbers?"
        ),
        "answer": "28",
    },
    {
        "id": "gfbench-014",
        "question": (
            "Which organ of the human body pumps blood through the arteries and veins and is divided into "
            "two atria and two ventricles?"
        ),
        "answer": "The heart",
    },
    {
        "id": "gfbench-015",
        "question": (
            "A cyclist rides 15 kilometres north and then 20 kilometres east. How far, in a straight line, "
            "is she from her starting point at the end of the ride?"
        ),
        "answer": "25 kilometres",
    },
    {
        "id": "gfbench-016",
        "question": (
            "When a ray of light passes from air into a glass block at an angle and bends towards the "
            "normal, what is the name of this change of direction?"
        ),
        "answer": "Refraction",
    },
    {
        "id": "gfbench-017",
        "question": (
            "A library lends out 45 books on Monday, 20 percent more books on Tuesday, and half as many on "
            "Wednesday as on Tuesday. How many books does it lend out over the three days?"
        ),
        "answer": "126",
    },
    {
        "id": "gfbench-018",
        "question": (
            "Which unit of measurement is used for electrical resistance and is named after the German "
            "physicist who described the relation between voltage and current?"
        ),
        "answer": "The ohm",
    },
    {
        "id": "gfbench-019",
        "question": (
            "A recipe for four people needs 300 millilitres of milk and 2 eggs. How much milk and how many "
            "eggs are needed to make the same recipe for ten people?"
        ),
        "answer": "750 millilitres of milk and 5 eggs",
    },
    {
        "id": "gfbench-020",
        "question": (
            "What is the name of the boundary around a black hole beyond which nothing, not even light, "
            "can escape its gravitational pull?"
        ),
        "answer": "The event horizon",
    },
]

# --- SFT records in the databricks-dolly-15k schema, written for gemmaflow -------------------------
# The last three are malformed on purpose (missing response, empty instruction, non-string response).


def _sft(instruction: str, response: str, category: str, context: str = "") -> dict[str, Any]:
    return {"instruction": instruction, "context": context, "response": response, "category": category}


SFT_RECORDS: list[dict[str, Any]] = [
    _sft(
        "What is the boiling point of water at sea level in degrees Celsius?",
        "At sea level, where the air pressure is about one standard atmosphere, pure water boils at 100 "
        "degrees Celsius.",
        "open_qa",
    ),
    _sft(
        "Why do we have seasons on Earth?",
        "Seasons happen because the Earth's axis is tilted by about 23.5 degrees relative to its orbit. As "
        "the Earth goes around the Sun, each hemisphere is tilted towards the Sun for part of the year, "
        "receiving more direct sunlight and longer days (summer), and away from it for another part "
        "(winter).",
        "open_qa",
    ),
    _sft(
        "What does a compiler do?",
        "A compiler translates a program written in a high-level programming language into a lower-level "
        "form, such as machine code or bytecode, that a computer or virtual machine can execute.",
        "open_qa",
    ),
    _sft(
        "How many continents are there?",
        "By the most common convention there are seven continents: Africa, Antarctica, Asia, Australia "
        "(Oceania), Europe, North America and South America. Some traditions combine Europe and Asia or "
        "the two Americas and count fewer.",
        "open_qa",
    ),
    _sft(
        "What is the difference between weather and climate?",
        "Weather describes the state of the atmosphere over hours or days, such as today's rain or "
        "tomorrow's temperature. Climate is the long-term pattern of weather in a region, usually averaged "
        "over thirty years or more.",
        "open_qa",
    ),
    _sft(
        "What is a prime number?",
        "A prime number is a whole number greater than 1 whose only positive divisors are 1 and itself. "
        "The first few primes are 2, 3, 5, 7, 11 and 13.",
        "open_qa",
    ),
    _sft(
        "Who wrote the novel Don Quixote?",
        "Don Quixote was written by the Spanish author Miguel de Cervantes. It was published in two parts, "
        "in 1605 and 1615.",
        "open_qa",
    ),
    _sft(
        "What is the function of red blood cells?",
        "Red blood cells carry oxygen from the lungs to the tissues of the body and help carry carbon "
        "dioxide back to the lungs. They contain haemoglobin, the iron-rich protein that binds oxygen.",
        "open_qa",
    ),
    _sft(
        "According to the passage, when was the bridge opened to traffic?",
        "The bridge was opened to traffic in 1932.",
        "closed_qa",
        "Construction of the harbour bridge began in 1924 and took eight years. After load tests with "
        "locomotives, the bridge was opened to traffic in 1932, and it quickly became a symbol of the city.",
    ),
    _sft(
        "How long did the construction take, based on the text?",
        "According to the text, construction took eight years, from 1924 until the bridge opened in 1932.",
        "closed_qa",
        "Construction of the harbour bridge began in 1924 and took eight years. After load tests with "
        "locomotives, the bridge was opened to traffic in 1932, and it quickly became a symbol of the city.",
    ),
    _sft(
        "What did the researchers feed the second group of mice?",
        "The second group of mice was fed the same diet as the first group with added fibre.",
        "closed_qa",
        "In the study, two groups of mice were observed for twelve weeks. The first group received a "
        "standard diet, and the second group received the same diet with added fibre. The second group "
        "gained less weight.",
    ),
    _sft(
        "Which city does the text say the company moved its headquarters to?",
        "The company moved its headquarters to Rotterdam.",
        "closed_qa",
        "Founded in a small workshop in Delft, the company grew quickly during the 1990s. In 2004 it moved "
        "its headquarters to Rotterdam to be closer to the port.",
    ),
    _sft(
        "From the paragraph, what are the two main ingredients of the sauce?",
        "The two main ingredients are tomatoes and olive oil.",
        "closed_qa",
        "The sauce is made mainly from ripe tomatoes and olive oil, simmered slowly for about an hour. "
        "Garlic and basil are added at the end for flavour.",
    ),
    _sft(
        "According to the notice, on which day is the library closed?",
        "According to the notice, the library is closed on Mondays.",
        "closed_qa",
        "The public library is open from Tuesday to Saturday, 9 am to 6 pm, and on Sundays from 11 am to 4 "
        "pm. It is closed on Mondays and on public holidays.",
    ),
    _sft(
        "Based on the text, what caused the delay of the launch?",
        "The launch was delayed by strong winds at the launch site.",
        "closed_qa",
        "The rocket was ready on schedule, but strong winds at the launch site forced controllers to "
        "postpone the launch by two days. It lifted off successfully on Thursday morning.",
    ),
    _sft(
        "Summarise the following paragraph in one sentence.",
        "Honeybees use a waggle dance whose angle and duration tell nest mates the direction and distance "
        "of food.",
        "summarization",
        "When a forager bee finds a good patch of flowers, she returns to the hive and performs a waggle "
        "dance. The angle of her straight run shows the direction of the food relative to the sun, and the "
        "duration of the run shows how far away it is. Other bees follow the dance and then fly out to "
        "find the flowers.",
    ),
    _sft(
        "Give a short summary of this text.",
        "Composting turns a balanced mix of green and brown organic waste into soil-improving material, "
        "and turning the heap speeds it up.",
        "summarization",
        "Composting works best with a mix of green materials such as vegetable scraps and brown materials "
        "such as dry leaves. The microbes that break the material down need air and moisture, so turning "
        "the heap every week or two speeds up the process. The finished compost can be dug into garden "
        "beds.",
    ),
    _sft(
        "Summarise the meeting notes for someone who missed the meeting.",
        "The team agreed to move the release to 14 June, Priya will finish the migration guide, and the "
        "next meeting is on Tuesday.",
        "summarization",
        "We discussed the release schedule. Because two bugs are still open, everyone agreed to move the "
        "release from 7 June to 14 June. Priya will finish the migration guide by Friday. The next meeting "
        "will be on Tuesday at 10 am.",
    ),
    _sft(
        "Summarise the story in two sentences.",
        "A fisherman who lost his net found it months later tangled around a lighthouse rock. He decided "
        "to leave it there as a warning to other boats.",
        "summarization",
        "Old Tomas lost his best net in a winter storm and assumed it had sunk. In spring, rowing past the "
        "lighthouse, he saw it caught on the rocks, full of seaweed and shells. He thought about taking it "
        "home, but instead he tied a red cloth to it so that other boats would see the danger.",
    ),
    _sft(
        "What is the main point of this paragraph?",
        "The main point is that tide tables must be based on local measurements because geography strongly "
        "changes the tides.",
        "summarization",
        "Although tides are caused by the Moon and the Sun, the shape of the coast changes them a great "
        "deal. Funnel-shaped bays can amplify the range to many metres, while enclosed seas have small "
        "tides. For this reason tide tables for each port are computed from long local records.",
    ),
    _sft(
        "Summarise the product review.",
        "The reviewer likes the kettle's speed and design but finds the lid hard to open and the cord "
        "short.",
        "summarization",
        "This kettle boils a full litre in under three minutes and looks great on the counter. However, "
        "the lid is stiff and hard to open with one hand, and the power cord is too short for my kitchen.",
    ),
    _sft(
        "Summarise the history of the printing press in three bullet points.",
        "- Movable metal type was developed in Europe in the mid-fifteenth century.\n- It made books much "
        "cheaper and editions identical.\n- Printed texts helped spread literacy, new ideas and science.",
        "summarization",
    ),
    _sft(
        "Give me five ideas for a rainy weekend at home with children.",
        "1. Build a blanket fort and read stories inside it.\n2. Bake and decorate biscuits.\n3. Hold a "
        "board game tournament with small prizes.\n4. Make a treasure hunt with clues around the "
        "house.\n5. Put on a puppet show using socks and cardboard.",
        "brainstorming",
    ),
    _sft(
        "List some ways to reduce food waste in a household.",
        "Plan meals before shopping, keep a list of what is already in the fridge, store food correctly, "
        "freeze leftovers and bread, use older ingredients first, cook smaller portions, and compost "
        "scraps that cannot be eaten.",
        "brainstorming",
    ),
    _sft(
        "Suggest names for a small bakery that specialises in sourdough bread.",
        "Wild Rise, The Patient Loaf, Crust and Crumb, Mother Dough, Slow Proof Bakery, The Starter Shop.",
        "brainstorming",
    ),
    _sft(
        "What are some good questions to ask at the end of a job interview?",
        "You could ask what a typical day in the role looks like, how success will be measured in the "
        "first six months, what the team's biggest challenge is right now, how the team shares knowledge, "
        "and what the next steps in the hiring process are.",
        "brainstorming",
    ),
    _sft(
        "Brainstorm topics for a school science fair project about water.",
        "Which materials filter muddy water best; how salt affects the freezing point of water; how "
        "quickly different soils absorb rain; whether plants grow better with rainwater or tap water; how "
        "temperature changes the rate of evaporation.",
        "brainstorming",
    ),
    _sft(
        "Give me ideas for exercising without any equipment.",
        "Brisk walking or jogging, stair climbing, push-ups, squats, lunges, planks, burpees, jumping "
        "jacks, wall sits and following a free yoga or stretching routine.",
        "brainstorming",
    ),
    _sft(
        "What could a town do to encourage more people to cycle?",
        "Build separated cycle lanes, make junctions safer, add secure bike parking at stations and shops, "
        "lower speed limits in residential streets, offer bike-sharing, and run cycling lessons for "
        "children and adults.",
        "brainstorming",
    ),
    _sft(
        "Classify each animal as a mammal, bird or reptile: eagle, dolphin, crocodile, bat, penguin, "
        "tortoise.",
        "Eagle: bird. Dolphin: mammal. Crocodile: reptile. Bat: mammal. Penguin: bird. Tortoise: reptile.",
        "classification",
    ),
    _sft(
        "Is the following review positive or negative? 'The battery died after two days and support never "
        "answered my emails.'",
        "Negative.",
        "classification",
    ),
    _sft(
        "Which of these are fruits and which are vegetables: apple, carrot, banana, spinach, cherry, onion?",
        "Fruits: apple, banana, cherry. Vegetables: carrot, spinach, onion.",
        "classification",
    ),
    _sft(
        "Sort these numbers into prime and not prime: 2, 9, 11, 15, 17, 21.",
        "Prime: 2, 11, 17. Not prime: 9, 15, 21.",
        "classification",
    ),
    _sft(
        "Classify the following as renewable or non-renewable energy sources: wind, coal, solar, natural "
        "gas, hydropower, oil.",
        "Renewable: wind, solar, hydropower. Non-renewable: coal, natural gas, oil.",
        "classification",
    ),
    _sft(
        "Tell me whether each of these is a programming language or a database: Python, PostgreSQL, Rust, "
        "SQLite, Java.",
        "Programming languages: Python, Rust, Java. Databases: PostgreSQL, SQLite.",
        "classification",
    ),
    _sft(
        "Is this email spam or not spam? 'Congratulations! You have won a free cruise. Click the link to "
        "claim your prize today.'",
        "Spam.",
        "classification",
    ),
    _sft(
        "Extract all the dates mentioned in the text.",
        "12 May 2021, 3 June 2021 and 1 July 2021.",
        "information_extraction",
        "The application opened on 12 May 2021. Interviews took place on 3 June 2021, and the successful "
        "candidates started work on 1 July 2021.",
    ),
    _sft(
        "List the cities mentioned in the paragraph.",
        "Lisbon, Porto and Coimbra.",
        "information_extraction",
        "The tour starts in Lisbon, where the group spends three nights. It then continues north to Porto, "
        "with a stop in the university town of Coimbra on the way.",
    ),
    _sft(
        "From the recipe, list the ingredients and their quantities.",
        "200 g flour, 2 eggs, 300 ml milk, a pinch of salt, 1 tablespoon of butter.",
        "information_extraction",
        "Whisk 200 g of flour with 2 eggs and a pinch of salt, then slowly add 300 ml of milk until the "
        "batter is smooth. Melt 1 tablespoon of butter in a pan and fry thin pancakes.",
    ),
    _sft(
        "What are the opening hours on Saturday according to the text?",
        "From 10 am to 4 pm.",
        "information_extraction",
        "The museum is open on weekdays from 9 am to 5 pm and on Saturday from 10 am to 4 pm. It is closed "
        "on Sundays.",
    ),
    _sft(
        "Extract the names of the planets mentioned, in the order they appear.",
        "Mars, Jupiter, Saturn.",
        "information_extraction",
        "The probe passed Mars in its first year, used Jupiter's gravity to speed up, and finally reached "
        "Saturn after seven years of flight.",
    ),
    _sft(
        "Pull out the price and the discount from this advert.",
        "Price: 80 euros. Discount: 25 percent.",
        "information_extraction",
        "Our classic rain jacket, normally 80 euros, is now available with a 25 percent discount until the "
        "end of the month.",
    ),
    _sft(
        "Which programming languages does the job advert require?",
        "Python and SQL.",
        "information_extraction",
        "We are looking for a data engineer with at least three years of experience in Python and SQL. "
        "Experience with cloud platforms is a plus.",
    ),
    _sft(
        "Write a short poem about autumn leaves.",
        "Red and golden, light as air,\nthey drift and spin without a care;\nthe branches bare, the "
        "pathway bright,\nautumn whispers soft goodnight.",
        "creative_writing",
    ),
    _sft(
        "Write the opening sentence of a mystery story set in a lighthouse.",
        "The lamp had turned every night for a hundred years, so when the keeper woke to darkness and "
        "silence, he knew at once that someone else was in the tower.",
        "creative_writing",
    ),
    _sft(
        "Write a friendly note to a neighbour asking them to water your plants while you are away.",
        "Hi Sam, I'm away from Friday to Sunday next week. Would you mind watering my tomato plants on the "
        "balcony once a day? The key is under the blue pot. Thank you so much, and let me know if I can "
        "return the favour!",
        "creative_writing",
    ),
    _sft(
        "Describe a busy market in three sentences.",
        "Stallholders call out prices over the clatter of crates and the hum of a hundred conversations. "
        "The air smells of ripe peaches, fresh bread and roasting coffee. Children weave between the "
        "shoppers, clutching paper bags of warm chestnuts.",
        "creative_writing",
    ),
    _sft(
        "Write a haiku about a train journey.",
        "Fields slide past the glass\nstations blur into the rain\na stranger's book sleeps",
        "creative_writing",
    ),
    _sft(
        "Write a two-sentence story about a robot learning to paint.",
        "The robot's first painting was a perfect grid of grey squares, which no one liked. Its hundredth "
        "was a crooked yellow sunflower, and it kept that one for itself.",
        "creative_writing",
    ),
    _sft(
        "Write a short product description for a reusable water bottle.",
        "Stay refreshed all day with our stainless-steel bottle: it keeps drinks cold for 24 hours or hot "
        "for 12, fits in most cup holders, and replaces hundreds of single-use plastic bottles.",
        "creative_writing",
    ),
    _sft(
        "How do I boil an egg so that the yolk is still soft?",
        "Bring a pan of water to a gentle boil, lower the egg in with a spoon and cook it for about six "
        "minutes for a large egg. Then put it in cold water for a minute to stop the cooking before "
        "peeling.",
        "general_qa",
    ),
    _sft(
        "Why is the sky blue?",
        "Sunlight contains all colours. As it passes through the atmosphere, the shorter blue wavelengths "
        "are scattered by air molecules much more than the longer red wavelengths, so blue light reaches "
        "our eyes from every direction of the sky.",
        "general_qa",
    ),
    _sft(
        "What should I consider when choosing a password?",
        "Use a long password, ideally a passphrase of several random words, do not reuse it on other "
        "sites, avoid personal information such as birthdays, and store it in a password manager. Turn on "
        "two-factor authentication where possible.",
        "general_qa",
    ),
    _sft(
        "Is it better to study in one long session or several short ones?",
        "Research on learning generally favours spaced practice: several shorter sessions spread over days "
        "help people remember material longer than one long session covering the same content.",
        "general_qa",
    ),
    _sft(
        "How does a refrigerator keep food cold?",
        "A refrigerator pumps a refrigerant around a closed loop. The refrigerant evaporates inside the "
        "fridge, absorbing heat from the food compartment, and is then compressed and condensed in coils "
        "at the back, where it releases that heat into the room.",
        "general_qa",
    ),
    _sft(
        "What is the difference between a virus and a bacterium?",
        "Bacteria are single-celled living organisms that can reproduce on their own, and many are "
        "harmless or useful. Viruses are much smaller, are not cells, and can only multiply inside the "
        "cells of a host. Antibiotics work against bacteria but not against viruses.",
        "general_qa",
    ),
    _sft(
        "Why do cats purr?",
        "Cats often purr when they are relaxed and content, but they also purr when stressed, ill or "
        "giving birth, so purring seems to be a way of communicating and possibly of calming themselves.",
        "general_qa",
    ),
    # Malformed on purpose: no response; empty instruction; a response that is not a string.
    {"instruction": "Name three primary colours.", "context": "", "category": "open_qa"},
    {"instruction": "", "context": "", "response": "Paris is the capital of France.", "category": "open_qa"},
    {"instruction": "List the first three even numbers.", "context": "", "response": [2, 4, 6],
     "category": "classification"},
]

# --- README.md and LICENSE.md ------------------------------------------------------------------

README_TEMPLATE = """\
# gemmaflow bundled sample corpus

A small, labelled corpus that `gemmaflow curate` reads when no `--input` is given
(`gemmaflow/sample/raw.jsonl.gz`), with the ground truth that tests and demos check the pipeline
against. Generated by `scripts/make_sample_corpus.py` (seed {seed}) with Python {py} and zlib
{zlib}: rerunning it with the same CPython release gives byte-identical files. Do not edit the files
by hand; change the script and regenerate. Provenance and licences: see LICENSE.md.

## Files

| file | bytes |
|---|---:|
{files}

* `raw.jsonl.gz`: {n_docs} records `{{id, text, url, source}}`, shuffled, ids `sample-00001`...
  `source` is a collection name (`stdlib-docstrings`, `cpython-source`, `web-crawl`, `math-notes`,
  `code-mirror`); it says nothing about quality. {n_explicit} code records also carry `"domain": "code"`;
  all others leave the domain to the pipeline (the URL extension or the content decides).
* `labels.jsonl.gz`: one line per raw id: `kind` (web_en, web_other, code, math, junk), `lang` (ISO 639-1;
  `la` for lorem ipsum, `zxx` for no language, null for code), `variant` (finer kind; for junk the junk kind),
  `origin`, `dup_group`, `dup_of`, `dup_kind`, `dup_role`, `dup_ops`, `dup_jaccard`, `pii`
  (`[{{start, end, type, value}}]`), `decoys` (`[{{start, end, kind, value}}]`), `contaminated_with`
  (a benchmark id). Offsets are Python string indices (code points) into the raw `text`.
* `benchmark.jsonl`: {n_bench} `{{id, question, answer}}` items for the decontamination stage.
* `sft_dolly.jsonl`: {n_sft} records in the databricks-dolly-15k schema
  `{{instruction, context, response, category}}`. The last three are malformed on purpose (no
  `response`; empty `instruction`; `response` is a list), for dead-lettering. Categories of the
  {n_sft_ok} well-formed ones: {sft_categories}.

## What curate should do with it

Every `web_en`, `code` and `math` document is meant to be kept, except the exact duplicates that lose
to their group's survivor ({exact_dropped} docs): {keep_expected} documents. Every `web_other` document
is meant to be dropped by the language filter (math is labelled, not filtered, so the French and German
LaTeX notes stay), and every `junk` document by language ID or a heuristic rule, with one deliberate
exception: `word_salad_stopwords` ({n_hard_junk} docs) is real words in random order with natural stop
words and no punctuation, which only a sentence or punctuation rule (C4, FineWeb) or a quality
classifier catches.

## Counts

{kinds}

{variants}

{langs}

{sources}

## Duplicates

{n_groups} groups. In each group the member with the smallest id is the survivor (`dup_of` null); every
other member has `dup_of` = the survivor's id. `dup_role` says which member is the source text.

{dups}

* Exact copies: the same text on another URL. A few differ only in what normalisation repairs (`dup_ops`
  `crlf`, `nfd`, `control_chars`), so they hash equal only after the normalise stage.
* Near copies: 2-4 word substitutions/insertions/deletions plus a header or footer line (prose), or a
  header comment and inserted comments (code). Word-5-gram Jaccard to the original: min {jmin:.3f},
  median {jmed:.3f}, max {jmax:.3f}.
* No two documents outside a group have a word-5-gram Jaccard above {worst:.3f}.

## PII, decoys, contamination

{n_pii_docs} English pages carry injected, fictional PII (documentation-reserved IPs, example.com
emails, 555-01xx phones, published test card numbers and IBANs, SSA advertising SSNs, AWS's example
keys, placeholder names). The harvested text was screened so that it contains no other emails, IPs or
long digit runs; person names that occur naturally in it are not labelled.

{pii}

{decoys}

{n_contaminated} English pages contain one benchmark question and its answer, pasted verbatim.
"""

LICENSE_TEMPLATE = """\
# Licences of the sample corpus

Every text in this folder comes from one of the sources below; `origin` in `labels.jsonl.gz` names the
source of each document.

## Written for gemmaflow (CC0 1.0)

`origin: written-for-gemmaflow`: the English and other-language encyclopedic articles, the LaTeX and
Markdown math notes, `benchmark.jsonl` and `sft_dolly.jsonl` were written for gemmaflow by its authors
and are dedicated to the public domain under CC0 1.0
(https://creativecommons.org/publicdomain/zero/1.0/). The fictional PII sentences, decoy sentences and
near-copy edits inserted into documents are part of this dedication.

`origin: generated`: the junk documents are generated by `scripts/make_sample_corpus.py` from word
lists in that script (CC0 1.0) and, for word salad and mojibake, from standard-library docstrings
(below). Generated link and page hosts use the reserved `.example` top-level domain.

## CPython {py} (PSF License Agreement)

`origin: cpython-{py}-docstrings`, `cpython-{py}-lib`, `cpython-{py}-include`: docstrings of the
Python standard library, whole `.py` files of the standard library (`Lib/`) and public C headers
(`Include/`), taken from the Python {py} installation that ran the generator. URLs point at the
corresponding files or documentation pages. Files that carry a copyright notice other than the Python
Software Foundation's were excluded, so everything here is covered by the licence below.

Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved.

Summary of changes (clause 3 of the PSF License Agreement): docstrings were extracted with `ast`,
doctest examples, indented blocks, lists and reST markup removed, and paragraphs joined into single
lines; docstrings of one module or class were concatenated into one page. Some pages and files were
modified further for testing: fictional PII, decoy and benchmark sentences inserted, near copies with
a few words or comment lines changed, and exact copies with CRLF line ends, Unicode NFD or control
characters.

Modules and classes whose docstrings became pages: {modules}.

The terms below are copied from the `LICENSE.txt` of that Python installation.

```text
{psf_terms}
```
"""


if __name__ == "__main__":
    main()
