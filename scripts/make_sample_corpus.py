#!/usr/bin/env python3
"""Regenerate gemmaflow/sample/: the small demo corpus that `gemmaflow curate` reads by default.

    python scripts/make_sample_corpus.py            # writes gemmaflow/sample/
    python scripts/make_sample_corpus.py --out DIR  # somewhere else (e.g. to diff two runs)

What it writes (see the generated README.md for the counts):

* raw.jsonl.gz     {id, text, url, source[, domain]}: the pipeline input, shuffled.
* labels.jsonl.gz  the ground truth per raw id (kind, lang, duplicates, PII spans, contamination).
* benchmark.jsonl  {id, question, answer}: items for the decontamination stage; 5 are pasted into docs.
* sft_dolly.jsonl  {instruction, context, response, category}: dolly-15k-style SFT records, 3 malformed.
* crawl.warc.gz, crawl.warc.wet.gz, crawl_truth.jsonl.gz: a small web crawl (WARC, its WET text) of
  pages made from the raw documents, and per response record what a crawl extractor should get from it
  (scripts/sample_corpus/crawl.py).
* README.md, LICENSE.md, __init__.py (so the folder is package data of `gemmaflow`).

Every text comes from scripts/sample_corpus/ (its README.md says where each file came from):
standard-library docstring pages and code files harvested once from CPython 3.11.7 (PSF License),
and articles, math notes, benchmark and SFT items, word lists and PII sentences written for
gemmaflow (CC0). Junk, duplicates, PII and benchmark contamination are generated from those with a
seeded RNG.

Determinism: no text is read from the interpreter, every choice goes through `random.Random(SEED)`
or a keyed BLAKE2b rank, nothing iterates a set, and gzip is written with mtime=0 and no file name.
The output depends on the data files, on the stop words of the pipeline's Gopher quality rule (the
word-salad junk is made against them) and on zlib (README.md records its version); it is the same
on any Python release. tests/gemmaflow/test_sample_corpus.py rebuilds the sample and compares it
with the bundled files.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sample_corpus import crawl, sources, variants
from sample_corpus.junk import junk_documents
from sample_corpus.similarity import NearDupIndex
from sample_corpus.sources import CPYTHON, CPYTHON_RELEASE, SEED, TEMPLATES, WRITTEN, Doc

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "gemmaflow" / "sample"
MAX_DOC_BYTES = 40_000
KINDS = ("web_en", "web_other", "code", "math", "junk")


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


def build(benchmark: list[dict[str, str]]) -> tuple[list[Doc], float]:
    """All documents, shuffled, with ids; plus the worst unlabelled Jaccard for the README.

    The random draws happen in a fixed order (junk, exact copies, PII, decoys, contamination, near
    copies): reordering these calls changes the sample.
    """
    variants.check_pii_values()
    rng = random.Random(SEED)
    pages, articles, code, math = sources.stdlib_pages(), sources.articles(), sources.code_files(), sources.math_notes()
    english = [d for d in articles if d.kind == "web_en"]
    junk = junk_documents(rng, sources.junk_bases())

    roles = variants.assign_roles(pages + english, code)
    copies = variants.exact_copies(roles.exact_web, variants.EXACT_WEB, rng)
    copies += variants.exact_copies(roles.exact_code, variants.EXACT_CODE, rng)
    variants.inject_pii(roles.pii, rng)
    variants.inject_decoys(roles.decoy_only, rng)
    variants.contaminate(roles.contaminated, benchmark, rng)
    copies += variants.near_copies(roles.near_web, variants.NEAR_WEB, rng)
    copies += variants.near_copies(roles.near_code, variants.NEAR_CODE, rng)
    for doc in roles.explicit_domain:
        doc.domain = "code"

    docs = sorted(pages + articles + code + math + junk + copies, key=lambda d: d.key)
    worst = screen_near_duplicates(docs)
    rng.shuffle(docs)
    for n, doc in enumerate(docs, start=1):
        doc.doc_id = f"sample-{n:05d}"
        if len(doc.text.encode("utf-8")) > MAX_DOC_BYTES:
            raise SystemExit(f"{doc.key} is over {MAX_DOC_BYTES} bytes")
    return docs, worst


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
    docs: list[Doc], labels: list[dict[str, Any]], sizes: dict[str, int], worst: float,
    benchmark: list[dict[str, str]], sft: list[dict[str, Any]], crawled: crawl.CrawlSummary,
) -> str:  # fmt: skip
    """README.md: files, counts per kind, variant and language, duplicates, PII and contamination."""
    jaccards = sorted(d.dup_jaccard for d in docs if d.dup_jaccard is not None)
    exact_dropped = sum(1 for label in labels if label["dup_kind"] == "exact" and label["dup_of"])
    kept_kinds = sum(1 for label in labels if label["kind"] in ("web_en", "code", "math"))
    well_formed = [r for r in sft if r.get("instruction") and isinstance(r.get("response"), str)]
    sft_categories = Counter(str(r["category"]) for r in well_formed)
    template = (TEMPLATES / "README.md.tmpl").read_text(encoding="utf-8")
    return template.format(
        n_docs=len(docs),
        py=CPYTHON_RELEASE,
        zlib=zlib.ZLIB_RUNTIME_VERSION,
        seed=SEED,
        files="\n".join(f"| {name} | {size:,} |" for name, size in sizes.items()),
        kinds=_table(Counter(d.kind for d in docs), ("kind", "docs")),
        variants=_table(Counter(f"{d.kind} / {d.variant}" for d in docs), ("kind / variant", "docs")),
        langs=_table(Counter(d.lang or "null (code)" for d in docs), ("lang", "docs")),
        sources=_table(Counter(d.source for d in docs), ("source", "docs")),
        n_hard_junk=sum(1 for d in docs if d.variant == "word_salad_stopwords"),
        dups=_table(Counter(f"{d.dup_kind} {d.dup_role}" for d in docs if d.dup_kind), ("dup_kind dup_role", "docs")),
        n_groups=len({d.group for d in docs if d.group}),
        jmin=jaccards[0],
        jmed=jaccards[len(jaccards) // 2],
        jmax=jaccards[-1],
        worst=worst,
        pii=_table(Counter(span["type"] for d in docs for span in d.pii), ("PII type", "spans")),
        n_pii_docs=sum(1 for d in docs if d.pii),
        decoys=_table(Counter(span["kind"] for d in docs for span in d.decoys), ("decoy kind", "spans")),
        n_contaminated=sum(1 for d in docs if d.contaminated_with),
        n_bench=len(benchmark),
        n_explicit=sum(1 for d in docs if d.domain),
        exact_dropped=exact_dropped,
        keep_expected=kept_kinds - exact_dropped,
        n_sft=len(sft),
        n_sft_ok=len(well_formed),
        sft_categories=", ".join(f"{k}: {v}" for k, v in sorted(sft_categories.items())),
        **crawl_fields(crawled),
    )


def license_text(docs: list[Doc]) -> str:
    """LICENSE.md: provenance per kind, then the PSF terms from the harvested release's LICENSE.txt."""
    terms = (CPYTHON / "LICENSE.txt").read_text(encoding="utf-8")
    psf_terms = terms[terms.index("B. TERMS AND CONDITIONS") :].strip()
    # A set: two pages are named io (see sources.stdlib_pages); the list names each once.
    pages = {d.key.split(":", 1)[1] for d in docs if d.variant == "stdlib_page" and d.dup_role != "copy"}
    template = (TEMPLATES / "LICENSE.md.tmpl").read_text(encoding="utf-8")
    return template.format(py=CPYTHON_RELEASE, modules=", ".join(sorted(pages)), psf_terms=psf_terms)


def crawl_fields(summary: crawl.CrawlSummary) -> dict[str, Any]:
    """README.md's fields about the web crawl."""
    truth = summary.truth
    return {
        "crawl_warc_records": sum(summary.warc_records.values()),
        "crawl_warc_bytes": summary.warc_bytes,
        "crawl_wet_records": summary.wet_records,
        "crawl_wet_bytes": summary.wet_bytes,
        "crawl_truth_lines": len(truth),
        "crawl_sites": ", ".join(f"{s.name} (`{s.host}`, {s.family})" for s in summary.sites),
        "crawl_pages": sum(summary.families.values()),
        "crawl_types": _table(summary.warc_records, ("WARC-Type", "records")),
        "crawl_kinds": _table(summary.kinds, ("kind", "records")),
        "crawl_label_kinds": _table(Counter(str(t["label_kind"]) for t in truth if t["kind"] == "page"),
                                    ("label_kind", "pages")),
        "crawl_families": _table(summary.families, ("family", "pages")),
        "crawl_charsets": _table(summary.charsets, ("charset", "pages")),
        "crawl_encodings": _table(summary.encodings, ("coding", "pages")),
        "crawl_code_pages": sum(1 for t in truth if t["kind"] == "page" and t["code"]),
        "crawl_unclosed": summary.unclosed,
        "crawl_wrapped": summary.wrapped,
        "crawl_no_lang": summary.no_lang,
        "crawl_cyrillic": "The Russian page is windows-1251: KOI8-R has no em dash, which every Russian article uses."
        if summary.charsets["header:windows-1251"] else "",
    }  # fmt: skip


def write_all(out: Path) -> None:
    benchmark = sources.read_jsonl(WRITTEN / "benchmark.jsonl")
    sft = sources.read_jsonl(WRITTEN / "sft_dolly.jsonl")
    docs, worst = build(benchmark)
    labels = label_records(docs)
    out.mkdir(parents=True, exist_ok=True)
    init = '"""Bundled sample corpus (package data); see README.md."""\n'
    (out / "__init__.py").write_text(init, encoding="utf-8")
    write_gzip(out / "raw.jsonl.gz", jsonl(raw_record(d) for d in sorted(docs, key=lambda d: d.doc_id)))
    write_gzip(out / "labels.jsonl.gz", jsonl(labels))
    (out / "benchmark.jsonl").write_bytes(jsonl(benchmark))
    (out / "sft_dolly.jsonl").write_bytes(jsonl(sft))
    (out / "LICENSE.md").write_text(license_text(docs), encoding="utf-8")
    crawled = crawl.write_crawl(out, docs)
    names = ["raw.jsonl.gz", "labels.jsonl.gz", "benchmark.jsonl", "sft_dolly.jsonl", "LICENSE.md"]
    sizes = {name: (out / name).stat().st_size for name in names}
    (out / "README.md").write_text(readme(docs, labels, sizes, worst, benchmark, sft, crawled), encoding="utf-8")
    kinds = Counter(d.kind for d in docs)
    print(f"wrote {len(docs)} docs to {out}: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS))
    print(", ".join(f"{name} {size:,} B" for name, size in sizes.items()))
    crawl_files = (crawl.WARC_FILE, crawl.WET_FILE, crawl.TRUTH_FILE)
    print(f"crawl: {sum(crawled.warc_records.values())} WARC records, {crawled.wet_records} WET records; "
          + ", ".join(f"{name} {(out / name).stat().st_size:,} B" for name in crawl_files))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: package's)")
    write_all(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
