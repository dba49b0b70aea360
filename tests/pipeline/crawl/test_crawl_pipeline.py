"""`gemmaflow curate` from the bundled sample crawl (WARC and WET) to Parquet: exact counts, every
skipped record accounted for, extraction quality against the crawl's truth file."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gemmaflow.commands.common import sample_path
from gemmaflow.pipeline.config import CrawlConfig, CurateConfig, ReadConfig, load_curate_config
from gemmaflow.pipeline.crawl.documents import Page, warc_events
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.jobs.curate import curate_chain, run_curate

from .warcdata import per_record_gzip, response

WARC = sample_path("crawl.warc.gz")
WET = sample_path("crawl.warc.wet.gz")
WARC_SKIPPED = {
    "warcinfo": 1, "request": 69, "metadata": 69, "revisit": 1, "status_3xx": 3, "status_4xx": 3, "status_5xx": 1,
    "mime_image": 2, "mime_application": 2, "mime_text": 1, "empty_body": 1, "truncated": 1,
}  # fmt: skip


def truth() -> list[dict]:
    with gzip.open(sample_path("crawl_truth.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def rows(folder: Path) -> list[dict]:
    return [row for path in sorted(folder.glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def reader_only(tmp_path: Path, **crawl: object) -> CurateConfig:
    """The read and URL stages with the costly document stages switched off (the counts asserted
    are the read and url_dedupe stages', which do not depend on later stages)."""
    text = """
language: {enabled: false}
classify: {enabled: false}
near_dedupe: {enabled: false}
pii: {enabled: false}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text + ("crawl: " + json.dumps(crawl) if crawl else ""))
    return load_curate_config(path)


def by_stage(stats: dict) -> dict[str, dict]:
    return {stage["stage"]: stage for stage in stats["stages"]}


def test_warc_and_wet_to_parquet_exact_counts(tmp_path):
    out = tmp_path / "out"
    stats = run_curate([WARC, WET], str(out), reader_only(tmp_path), echo=False, progress=False)
    stages = by_stage(stats)
    read = stages["read"]
    skipped = {k.removeprefix("crawl.skipped."): v for k, v in read["extra"].items() if k.startswith("crawl.skipped.")}
    # the WET file: one warcinfo record and 55 conversion records, all of them text
    assert skipped == {**WARC_SKIPPED, "warcinfo": 2}
    assert read["extra"]["crawl.records"] == 208 + 56 == read["docs_in"] + sum(skipped.values())
    assert read["docs_in"] == 54 + 55
    assert read["dropped"] == {} and read["dead_lettered"] == {}
    charsets = {k: v for k, v in read["extra"].items() if k.startswith("crawl.charset.")}
    assert sum(charsets.values()) == 54 and charsets["crawl.charset.meta"] >= 2  # one per WARC page
    assert stages["url_dedupe"]["dropped"] == {"duplicate_url": 2}  # the refetched page, in the WARC and in the WET
    assert stats["chain"][:2] == ["read", "url_dedupe"]

    pages = [t for t in truth() if t["kind"] in ("page", "duplicate_url")]
    data, rejected = rows(out / "data"), rows(out / "rejected")
    warc_docs = [row for row in data + rejected if row["source"] == "warc"]
    assert len(warc_docs) == len(pages) == 54
    not_pages = {t["record_id"] for t in truth() if t["expect_doc"] is False and t["kind"] != "duplicate_url"}
    made = {json.loads(row["meta"])["warc_record_id"] for row in warc_docs}
    assert len(not_pages) == 14 and not not_pages & made  # no document from a record that is no page
    [duplicate] = [row for row in rejected if row["reject_reason"] == "duplicate_url" and row["source"] == "warc"]
    [original] = [t for t in truth() if t["url"] == duplicate["url"] and t["kind"] == "page"]
    kept_fetch = next(row for row in data if row["url"] == duplicate["url"] and row["source"] == "warc")
    assert json.loads(kept_fetch["meta"])["warc_record_id"] == original["record_id"]  # the earliest fetch
    assert json.loads(duplicate["meta"])["warc_date"] > json.loads(kept_fetch["meta"])["warc_date"]
    assert rows(out / "dead_letter") == []


def test_latest_fetch_and_url_lists(tmp_path):
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("# test list\ngranite-gazette.example\n")
    config = reader_only(tmp_path, url_dedupe="latest", block_domain_files=[str(blocked)])
    out = tmp_path / "out"
    stats = run_curate([WARC], str(out), config, echo=False, progress=False)
    granite = [t for t in truth() if "granite-gazette.example" in t["url"] and t["kind"] in ("page", "duplicate_url")]
    assert by_stage(stats)["read"]["dropped"]["blocked_domain"] == len(granite) > 0
    [duplicate] = [row for row in rows(out / "rejected") if row["reject_reason"] == "duplicate_url"]
    [original] = [t for t in truth() if t["url"] == duplicate["url"] and t["kind"] == "page"]
    assert json.loads(duplicate["meta"])["warc_record_id"] == original["record_id"]  # the earlier fetch goes


def test_format_override_and_dry_run_chain(tmp_path):
    renamed = tmp_path / "crawl.bin"
    renamed.write_bytes(Path(WARC).read_bytes())
    config = reader_only(tmp_path)
    assert curate_chain(config, paths=[str(renamed)])[1] != "url_dedupe"
    warc_config = CurateConfig(read=ReadConfig(format="warc"))
    assert curate_chain(warc_config, paths=[str(renamed)])[1] == "url_dedupe"
    assert "url_dedupe" not in curate_chain(CurateConfig(crawl=CrawlConfig(url_dedupe="off")), paths=[WARC])


def test_a_missing_url_list_fails_before_reading(tmp_path):
    from gemmaflow.core.configio import ConfigError

    config = reader_only(tmp_path, block_domain_files=[str(tmp_path / "nope.txt")])
    with pytest.raises(ConfigError, match=r"nope\.txt"):
        run_curate([WARC], str(tmp_path / "out"), config, echo=False, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_broken_file_among_good_ones_is_dead_lettered(tmp_path):
    good = per_record_gzip(
        [response(b"<html><body><p>" + b"Herons fish in the shallows. " * 20 + b"</p></body></html>")]
    )
    (tmp_path / "good.warc.gz").write_bytes(good)
    (tmp_path / "cut.warc.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "notwarc.warc").write_text("just text\n" * 20)
    out = tmp_path / "out"
    stats = run_curate([str(tmp_path / "*.warc*")], str(out), reader_only(tmp_path), echo=False, progress=False)
    dead = sorted((Path(d["file"]).name, d["reason"]) for d in rows(out / "dead_letter"))
    assert dead == [("cut.warc.gz", "truncated_record"), ("notwarc.warc", "not_a_warc_file")]
    assert by_stage(stats)["read"]["kept"] == 1


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _found(piece: str, text_words: list[str], trigrams: set[tuple[str, ...]]) -> bool:
    """A paragraph is found when 80% of its word 3-grams are (a shorter one: its words in sequence)."""
    words = _words(piece)
    if len(words) < 3:
        return " ".join(words) in " ".join(text_words)
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return sum(g in trigrams for g in grams) / len(grams) >= 0.8


def test_extraction_quality_on_the_sample_crawl():
    with open(WARC, "rb") as stream:
        events = list(warc_events(stream, WARC, CrawlConfig(), UrlFilter(), "fp"))
    pages = {json.loads(e.doc["meta"])["warc_record_id"]: e.doc["text"] for e in events if isinstance(e, Page)}
    recall, leak, code, charset = [], [], [], []
    for t in truth():
        if t["kind"] != "page" or not t["main"] or t["record_id"] not in pages:
            continue
        text = pages[t["record_id"]]
        words = _words(text)
        trigrams = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
        lines = set(text.split("\n"))
        recall += [_found(p, words, trigrams) for p in t["main"]]
        leak += [_found(b, words, trigrams) if len(_words(b)) >= 3 else b in lines for b in t["boiler"]]
        code += [line in lines for line in t["code"]]
        if t["nonascii"]:
            charset.append(all(word in text for word in t["nonascii"]))
    assert len(pages) == 54 and len(code) > 100 and len(charset) >= 10
    assert sum(recall) / len(recall) >= 0.98  # measured: 1.000
    assert sum(leak) / len(leak) <= 0.02  # measured: 0.000
    assert all(code) and all(charset)


def test_sample_truth_is_what_the_reader_sees():
    """The reader's page count equals the truth file's, so the counts above are the crawl's, not luck."""
    with open(WARC, "rb") as stream:
        data = stream.read()
    events = list(warc_events(io.BytesIO(data), WARC, CrawlConfig(keep_truncated=True), UrlFilter(), "fp"))
    expected = sum(t["kind"] in ("page", "duplicate_url", "truncated") for t in truth())
    assert sum(isinstance(e, Page) for e in events) == expected == 55


@pytest.mark.slow
def test_multi_process_runner_gives_the_same_output(tmp_path):
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("lantern-library.example\n")
    config = reader_only(tmp_path, block_domain_files=[str(blocked)])
    single = run_curate([WARC, WET], str(tmp_path / "a"), config, echo=False, progress=False)
    multi = run_curate([WARC, WET], str(tmp_path / "b"), config,
                       ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
                       echo=False, progress=False)  # fmt: skip
    assert single["accounting"] == multi["accounting"]
    assert by_stage(single)["read"]["extra"] == by_stage(multi)["read"]["extra"]

    def ids(folder: Path) -> list[tuple[str, str]]:
        return sorted((row["id"], row["text"]) for row in rows(folder))

    assert ids(tmp_path / "a" / "data") == ids(tmp_path / "b" / "data")
    assert ids(tmp_path / "a" / "rejected") == ids(tmp_path / "b" / "rejected")
