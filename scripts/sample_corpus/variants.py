"""What is done to chosen source documents: exact and near copies, fictional PII, decoys, benchmark items.

Each role goes to a disjoint set of documents picked by keyed rank (`assign_roles`). The sentences,
values and edit strings come from written/pii.json and written/word_lists.json. Like the junk
generators, these functions share one `random.Random`, so their call order is part of the output.
"""

from __future__ import annotations

import os
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .similarity import jaccard, shingles
from .sources import WRITTEN, Doc, ranked, read_json

# Duplicate plans: (number of originals, copies of each).
EXACT_WEB = ((4, 2), (16, 1))  # 24 exact copies of English pages
EXACT_CODE = ((6, 1),)  # 6 exact copies of .py files
NEAR_WEB = ((2, 2), (20, 1))  # 24 near copies of English pages
NEAR_CODE = ((6, 1),)  # 6 near copies of .py files
N_PII_DOCS = 30
N_DECOY_ONLY_DOCS = 6
N_CONTAMINATED = 5
N_EXPLICIT_CODE_DOMAIN = 5
ACCENTED_ARTICLE = "article:vienna-coffee-houses"  # its exact copy is the Unicode NFD one

_EDITS = read_json(WRITTEN / "word_lists.json")["near_copy"]
_PII = read_json(WRITTEN / "pii.json")
# Fictional, reserved or published-example values only (see README.md in this folder).
PII_VALUES: dict[str, list[str]] = _PII["values"]
# Slot names are PII_VALUES keys ("_2" allows a second value of one type in a sentence).
PII_TEMPLATES: dict[str, list[str]] = _PII["templates"]
PII_LABEL_TYPE: dict[str, str] = _PII["label_type"]  # labels call every credential an api_key
# (sentence, [(decoy kind, value)]): numbers that look like PII but are not.
DECOY_SENTENCES: list[tuple[str, list[tuple[str, str]]]] = [
    (d["sentence"], [(kind, value) for kind, value in d["spans"]]) for d in _PII["decoys"]
]


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
    pool = sorted(ranked(web, "roles-web"), key=lambda d: d.key != ACCENTED_ARTICLE)  # stable: accented first
    near_web = [d for d in pool if d.key != ACCENTED_ARTICLE and len(d.text.split()) >= 200]
    near_web = near_web[: _plan_total(NEAR_WEB)]
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


def _copy(original: Doc, suffix: str, text: str, rng: random.Random, **dup: Any) -> Doc:
    """A duplicate of `original` on a mirror URL, with the same labels and the given duplicate fields."""
    return Doc(
        f"{original.key}#{suffix}", text, mirror_url(original.url, rng.randint(1, 9)),
        "code-mirror" if original.kind == "code" else "web-crawl", original.kind, original.lang,
        original.variant, original.origin, group=original.group, dup_role="copy", **dup,
    )  # fmt: skip


def exact_copies(originals: list[Doc], plan: Sequence[tuple[int, int]], rng: random.Random) -> list[Doc]:
    """Copies whose normalised text equals the original's. Most are byte-identical; a few differ only in
    what the normalise stage repairs (CRLF line ends, Unicode NFD, control characters), so exact dedupe
    is also tested on text that hashes equal only after normalisation."""
    copies = []
    counts = [c for n, c in plan for _ in range(n)]
    special = {0: "nfd", 1: "crlf", 2: "crlf", 3: "control_chars"}
    k = 0
    for original, n_copies in zip(originals, counts, strict=True):
        original.group, original.dup_kind, original.dup_role = f"exact:{original.key}", "exact", "original"
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
            copies.append(_copy(original, f"exact{c}", text, rng, dup_kind="exact", dup_ops=[variant]))
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
            words[j] = rng.choice(_EDITS["words"])
        elif op == "insert":
            words.insert(j, rng.choice(_EDITS["words"]))
        else:
            del words[j]
        lines[i] = " ".join(words)
        ops.append(op)
    if rng.random() < 0.5:
        lines = [rng.choice(_EDITS["headers"]), "", *lines]
        ops.append("header")
    else:
        lines = [*lines[:-1], "", rng.choice(_EDITS["footers"]), ""]  # the text ends in "\n": lines[-1] == ""
        ops.append("footer")
    return "\n".join(lines), ops


def _edit_code(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """A mirror header comment and one or two inserted review comments; the code itself still runs."""
    lines = text.split("\n")
    ops = ["header_comment"]
    for _ in range(rng.randint(1, 2)):
        candidates = [i for i, line in enumerate(lines) if line.strip() and not line.rstrip().endswith(("\\", ","))]
        i = rng.choice(candidates[len(candidates) // 4 :])
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines.insert(i, indent + rng.choice(_EDITS["code_comments"]))
        ops.append("insert_comment")
    header = rng.choice(_EDITS["code_headers"])
    lines.insert(1 if lines[0].startswith("#!") else 0, header)
    return "\n".join(lines), ops


def near_copies(originals: list[Doc], plan: Sequence[tuple[int, int]], rng: random.Random) -> list[Doc]:
    """Copies with small edits, for the near-dedupe stage; each records its edits and its Jaccard."""
    copies = []
    counts = [c for n, c in plan for _ in range(n)]
    for original, n_copies in zip(originals, counts, strict=True):
        original.group, original.dup_kind, original.dup_role = f"near:{original.key}", "near", "original"
        for c in range(n_copies):
            edit = _edit_code if original.kind == "code" else _edit_prose
            text, ops = edit(original.text, rng)
            score = jaccard(shingles(original.text), shingles(text))
            if not 0.6 <= score < 1.0:
                raise SystemExit(f"near copy of {original.key} has Jaccard {score:.3f}")
            copies.append(
                _copy(original, f"near{c}", text, rng, dup_kind="near", dup_ops=ops, dup_jaccard=round(score, 4))
            )
    return copies


def _insert_paragraph(text: str, paragraph: str, rng: random.Random) -> str:
    """Insert after a random paragraph (never before the title and its first paragraph)."""
    paragraphs = text.rstrip("\n").split("\n\n")
    at = rng.randint(2, max(2, len(paragraphs)))
    paragraphs.insert(at, paragraph)
    return "\n\n".join(paragraphs) + "\n"


def _fill(template: str, cursor: Counter[str]) -> tuple[str, list[tuple[str, str]]]:
    """Fill a template's {type} slots from the value pools, cycling so every value gets used."""
    values: list[tuple[str, str]] = []
    filled: dict[str, str] = {}
    for name in re.findall(r"\{(\w+)\}", template):
        kind = re.sub(r"_\d+$", "", name)
        if name not in filled:
            pool = PII_VALUES[kind]
            filled[name] = pool[cursor[kind] % len(pool)]
            cursor[kind] += 1
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
            sentence, used = _fill(rng.choice(PII_TEMPLATES[kind]), cursor)
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


def contaminate(docs: list[Doc], benchmark: list[dict[str, str]], rng: random.Random) -> None:
    """Paste one benchmark item (question and answer, verbatim) into each doc, as a forum page quoting
    a test question would."""
    items = ranked(benchmark, "contaminate", lambda b: b["id"])[: len(docs)]
    for doc, item in zip(docs, items, strict=True):
        doc.text = _insert_paragraph(doc.text, f"{item['question']}\n{item['answer']}", rng)
        doc.contaminated_with = item["id"]


def check_pii_values() -> None:
    """The fake card numbers and IBANs must pass the checksums the PII stage validates matches with
    (Luhn, mod 97), or it would rightly ignore them; the non-Luhn decoy must fail Luhn."""
    # presidio imports transformers when it is installed, and transformers then TensorFlow: seconds
    # of start-up that the two checksum validators below do not need.
    os.environ.setdefault("USE_TF", "0")
    from gemmaflow.pipeline.pii.recognisers import CreditCardRecognizer, IbanRecognizer

    card, iban = CreditCardRecognizer(), IbanRecognizer()
    bad = [v for v in PII_VALUES["credit_card"] if not card.validate_result(v)]
    bad += [v for v in PII_VALUES["iban"] if not iban.validate_result(v)]
    bad += [v for _, spans in DECOY_SENTENCES for k, v in spans if k == "non_luhn_number" and card.validate_result(v)]
    if bad:
        raise SystemExit(f"fake PII values with the wrong checksum outcome: {bad}")
