"""The sample's source documents, read from the data files in this folder, and the keyed rank that orders them.

Every document becomes a `Doc` carrying its ground truth. Which documents are read is fixed by the
files, not by a listing order: every choice downstream goes through `rank`, so adding or removing a
file never reshuffles the others.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SEED = 20240611
HERE = Path(__file__).resolve().parent
CPYTHON = HERE / "cpython"  # harvested from CPython's standard library (PSF License)
WRITTEN = HERE / "written"  # written for gemmaflow (CC0 1.0)
TEMPLATES = HERE / "templates"  # README.md and LICENSE.md of the bundled sample

# The CPython release the texts in cpython/ were harvested from: it names their origin in the labels and
# pins the URLs of the code files.
CPYTHON_RELEASE = "3.11.7"
CPYTHON_BLOB = f"https://github.com/python/cpython/blob/v{CPYTHON_RELEASE}"
WRITTEN_ORIGIN = "written-for-gemmaflow"
# Math notes by file extension: (key prefix, variant, URL folder).
MATH_FORMATS = {".tex": ("math-tex", "latex", "latex"), ".md": ("math-md", "markdown", "md")}


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file, gzipped when its name ends in .gz."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    # split("\n"), not splitlines(): json.dumps leaves U+2028 and U+0085 unescaped inside strings.
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def stdlib_pages() -> list[Doc]:
    """English "web" pages: the docstrings of one standard-library module or class each.

    Two pages share the name `io` (Lib/_pyio.py documents the io module too). Their keys tie in every
    sort, so their order, by source path, decides which gets the smaller id after the shuffle.
    """
    return [
        Doc(f"stdlib-page:{r['name']}", r["text"], r["url"], "stdlib-docstrings", "web_en", "en", "stdlib_page",
            f"cpython-{CPYTHON_RELEASE}-docstrings")
        for r in sorted(read_jsonl(CPYTHON / "pages.jsonl.gz"), key=lambda r: (r["name"], r["path"]))
    ]  # fmt: skip


def junk_bases() -> list[str]:
    """Docstring pages that are in no other document, for word salad and mojibake, in their keyed order."""
    return [r["text"] for r in ranked(read_jsonl(CPYTHON / "junk_bases.jsonl.gz"), "junk-base", lambda r: r["name"])]


def code_files() -> list[Doc]:
    """Whole standard-library .py files (`Lib/...`) and public C headers (`Include/...`)."""
    docs = []
    for record in read_jsonl(CPYTHON / "code.jsonl.gz"):
        top, rel = record["path"].split("/", 1)
        prefix, variant, part = ("code-py", "py", "lib") if top == "Lib" else ("code-h", "c_header", "include")
        docs.append(
            Doc(f"{prefix}:{rel}", record["text"], f"{CPYTHON_BLOB}/{record['path']}", "cpython-source", "code",
                None, variant, f"cpython-{CPYTHON_RELEASE}-{part}")
        )  # fmt: skip
    return docs


def articles() -> list[Doc]:
    """Encyclopedic articles, `articles/<lang>/<slug>.txt`: English ones are kept, the others are for the
    language filter to drop. Each file is the document's text exactly (title, blank line, paragraphs)."""
    docs = []
    for path in sorted((WRITTEN / "articles").glob("*/*.txt")):
        lang, slug = path.parent.name, path.stem
        english = lang == "en"
        docs.append(
            Doc(f"article:{slug}" if english else f"article-{lang}:{slug}", path.read_text(encoding="utf-8"),
                f"https://encyclopedia.example/{lang}/{slug}", "web-crawl", "web_en" if english else "web_other",
                lang, "article", WRITTEN_ORIGIN)
        )  # fmt: skip
    return docs


def math_notes() -> list[Doc]:
    """LaTeX sources and Markdown notes with formulas, `math/<lang>/<slug>.{tex,md}`, each file verbatim."""
    docs = []
    for path in sorted((WRITTEN / "math").glob("*/*")):
        if path.suffix not in MATH_FORMATS:
            continue
        prefix, variant, folder = MATH_FORMATS[path.suffix]
        docs.append(
            Doc(f"{prefix}:{path.stem}", path.read_text(encoding="utf-8"),
                f"https://notes.example.edu/{folder}/{path.name}", "math-notes", "math", path.parent.name, variant,
                WRITTEN_ORIGIN)
        )  # fmt: skip
    return docs
