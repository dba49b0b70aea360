"""Beam stage: URL-level exact dedupe of crawl pages (the same URL fetched twice keeps one fetch).

A crawl refetches pages (Common Crawl's monthly crawls overlap); the copies are the same URL with
nearly the same text, and keeping one by fetch date is cheaper and surer than leaving them to
near-dedupe. Pages group under `url_key` (pipeline/crawl/urls.py) per format (a WET record is
the text of a WARC response, not a second fetch); the survivor is the earliest
(or latest) WARC-Date, ties broken by document id, so every runner keeps the same one. Documents
that are not crawl pages pass through, counted as kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import apache_beam as beam

from gemmaflow.pipeline.crawl.urls import url_key
from gemmaflow.pipeline.records import rejected_row
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, CountingDoFn, Document, utf8_len

STAGE = "url_dedupe"
CRAWL_SOURCES = ("warc", "wet")
UNKEYED = "unkeyed"
Survivor = Literal["earliest", "latest"]


def fetch_date(doc: Document) -> str:
    """The page's WARC-Date (ISO 8601, so strings order as times); "" when it has none."""
    return str(json.loads(doc["meta"] or "{}").get("warc_date") or "")


def split_by_fetch(docs: Iterable[Document], survivor: Survivor) -> tuple[Document, list[Document]]:
    """The fetch to keep and the others. Independent of the order the group arrives in."""
    by_id = sorted(docs, key=lambda doc: doc["id"])
    if not by_id:
        raise ValueError("a URL group cannot be empty")
    pick = min if survivor == "earliest" else max
    kept = pick(by_id, key=fetch_date)  # min/max return the first of equals: the smallest id
    return kept, [doc for doc in by_id if doc is not kept]


class _KeyByUrlDoFn(CountingDoFn):
    """Keys crawl pages by URL; passes (and counts) every other document."""

    def __init__(self) -> None:
        super().__init__(STAGE)

    def process(self, doc: Document) -> Iterator[Any]:
        if doc["source"] in CRAWL_SOURCES and doc["url"]:
            yield f"{doc['source']} {url_key(doc['url'])}", doc
            return
        nbytes = utf8_len(doc["text"])
        self.counts.record_in(nbytes)
        self.counts.record_kept(nbytes)
        yield beam.pvalue.TaggedOutput(UNKEYED, doc)


class _KeepFetchDoFn(CountingDoFn):
    def __init__(self, survivor: Survivor) -> None:
        super().__init__(STAGE)
        self.survivor = survivor

    def process(self, group: tuple[str, Iterable[Document]]) -> Iterator[Any]:
        _, docs = group
        kept, others = split_by_fetch(docs, self.survivor)
        for doc in (kept, *others):
            self.counts.record_in(utf8_len(doc["text"]))
        self.counts.record_kept(utf8_len(kept["text"]))
        if others:
            kept["signals"]["url_dedupe.fetches"] = float(len(others) + 1)
        yield kept
        for doc in others:
            self.counts.record_dropped("duplicate_url")
            detail = f"kept {self.survivor} fetch {kept['id']}"
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(doc, STAGE, "duplicate_url", detail))


class UrlDedupe(beam.PTransform):
    """Crawl pages -> one page per URL (`kept`), the other fetches (`rejected`), `stats`."""

    def __init__(self, survivor: Survivor) -> None:
        super().__init__()
        self.survivor = survivor

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        keyed = docs | "KeyByUrl" >> beam.ParDo(_KeyByUrlDoFn()).with_outputs(STATS, UNKEYED, main=KEPT)
        grouped = (
            keyed[KEPT]
            | "GroupFetches" >> beam.GroupByKey()
            | "KeepOneFetch" >> beam.ParDo(_KeepFetchDoFn(self.survivor)).with_outputs(STATS, REJECTED, main=KEPT)
        )
        kept = (grouped[KEPT], keyed[UNKEYED]) | "JoinUnkeyed" >> beam.Flatten()
        stats = (keyed[STATS], grouped[STATS]) | "GatherStats" >> beam.Flatten()
        return {KEPT: kept, REJECTED: grouped[REJECTED], STATS: stats}
