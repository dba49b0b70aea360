"""WARC in, main text out: gemmaflow's crawl reader against datatrove's WarcReader + Trafilatura,
the extractors side by side, and the reader's memory on a 1 GB WARC.

    python benchmarks/crawl_extract.py --warc 'CRAWL/warc/*.warc.gz'
    python benchmarks/crawl_extract.py --warc 'CRAWL/warc/*.warc.gz' --datatrove \\
        --truth CRAWL/truth.jsonl.zst --scorer path/to/score_extraction.py --memory-gb 1

What each part measures (CPU time, `time.process_time()`, so figures are per core):

* speed: read + URL filter + extract, gemmaflow's plain functions (`warc_events`, the read stage's
  per-file work without Beam) with a 1,000-entry domain blocklist, every HTML 200 page extracted.
  datatrove (with `--datatrove`, in its own environment made by benchmarks/datatrove_env.py) runs
  WarcReader -> Trafilatura(favour_precision) on the same files in a child process
  (benchmarks/datatrove_crawl.py), its extraction sandbox's CPU included.
* framing: fastwarc against warcio iterating the same files (records and blocks, no decoding), and
  gemmaflow's reader on fastwarc.
* extractors: every HTML 200 page decoded once, then each extractor over all of them; with
  `--truth` and `--scorer` each output is scored by the scorer (`python SCORER TRUTH OUTPUT.jsonl`).
* memory: a WARC of `--memory-gb` GB built by repeating the input's gzip members, read end to end
  in a child process; its peak RSS next to the peak for one copy of the input.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gemmaflow.pipeline.config import CrawlConfig
from gemmaflow.pipeline.crawl.charset import decode_html
from gemmaflow.pipeline.crawl.documents import Dropped, Page, charset_param, mime_type, warc_events
from gemmaflow.pipeline.crawl.extract import extract_page
from gemmaflow.pipeline.crawl.http import BodyDecodeError, decode_body
from gemmaflow.pipeline.crawl.urls import UrlFilter
from gemmaflow.pipeline.crawl.warc import WarcRecord, iter_records

HERE = Path(__file__).resolve().parent


def read_and_extract(paths: list[str], url_filter: UrlFilter) -> dict[str, float]:
    """gemmaflow's per-file read stage work over `paths`: pages made, CPU seconds."""
    pages = dropped = 0
    start = time.process_time()
    for path in paths:
        with open(path, "rb") as stream:
            for event in warc_events(stream, path, CrawlConfig(), url_filter, "bench"):
                pages += isinstance(event, Page)
                dropped += isinstance(event, Dropped)
    seconds = time.process_time() - start
    return {"pages": pages, "dropped": dropped, "cpu_s": seconds, "pages_per_cpu_s": (pages + dropped) / seconds}


def blocklist(size: int) -> UrlFilter:
    """A blocklist of made-up domains that match nothing: the cost of looking URLs up, not of drops."""
    return UrlFilter.from_lists(block_domains=[f"blocked-{i}.invalid" for i in range(size)])


def _cpu(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def framing(paths: list[str]) -> dict[str, float]:
    """CPU seconds to iterate every record and read its block: fastwarc and warcio (when installed)
    as libraries, and gemmaflow's reader on fastwarc (HTTP headers parsed, records typed)."""

    def fastwarc_raw() -> None:
        from fastwarc.warc import ArchiveIterator

        for path in paths:
            with open(path, "rb") as stream:
                for record in ArchiveIterator(stream, parse_http=False):
                    record.reader.read()

    def gemmaflow_reader() -> None:
        for path in paths:
            with open(path, "rb") as stream:
                for record in iter_records(stream):
                    if isinstance(record, WarcRecord) and record.record_type == "response":
                        record.read_payload(1 << 30)

    result = {"fastwarc_cpu_s": _cpu(fastwarc_raw), "gemmaflow_reader_cpu_s": _cpu(gemmaflow_reader)}
    try:
        from warcio.archiveiterator import ArchiveIterator as WarcioIterator
    except ImportError:
        return result

    def warcio_raw() -> None:
        for path in paths:
            with open(path, "rb") as stream:
                for record in WarcioIterator(stream):
                    record.raw_stream.read()

    result["warcio_cpu_s"] = _cpu(warcio_raw)
    return result


def html_pages(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(url, decoded HTML) of every HTML 200 response, decoded as the reader decodes it."""
    for path in paths:
        with open(path, "rb") as stream:
            for record in iter_records(stream):
                if not isinstance(record, WarcRecord) or record.record_type != "response":
                    continue
                content_type = record.http_headers.get("content-type")
                if record.http_status != 200 or mime_type(content_type) not in ("text/html", "application/xhtml+xml"):
                    continue
                if record.header("WARC-Truncated"):
                    continue
                try:
                    body = decode_body(record.read_payload(1 << 26), record.http_headers.get("transfer-encoding"),
                                       record.http_headers.get("content-encoding"), 1 << 26)  # fmt: skip
                except BodyDecodeError:
                    continue
                if body.strip():
                    yield record.header("WARC-Target-URI") or "", decode_html(body, charset_param(content_type)).text


def _resiliparse_plain(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, preserve_formatting=True, alt_texts=False)


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "trafilatura (favour precision, no comments: datatrove's setting)": lambda html: extract_page(
        html, "trafilatura", boilerplate_rules=False
    ).text,
    "resiliparse main-content": _resiliparse_plain,
    "gemmaflow default (resiliparse + furniture pruning + edge rules)": lambda html: extract_page(html).text,
}


def compare_extractors(pages: list[tuple[str, str]], truth: Path | None, scorer: Path | None) -> list[dict]:
    rows = []
    for name, extract in EXTRACTORS.items():
        start = time.process_time()
        texts = [(url, extract(html)) for url, html in pages]
        seconds = time.process_time() - start
        row: dict = {"extractor": name, "pages_per_cpu_s": len(pages) / seconds}
        if truth and scorer:
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
                for url, text in texts:
                    out.write(json.dumps({"url": url, "text": text}) + "\n")
            scored = subprocess.run([sys.executable, str(scorer), str(truth), out.name], capture_output=True,
                                    text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
            os.unlink(out.name)
            row.update(dict(item.split("=", 1) for item in scored.split()))
        rows.append(row)
    return rows


def run_datatrove(paths: list[str]) -> dict | None:
    try:
        sys.path.insert(0, str(HERE))
        from datatrove_env import datatrove_python

        python = datatrove_python()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"datatrove side skipped: its environment could not be made ({exc})")
        return None
    out = subprocess.run([str(python), str(HERE / "datatrove_crawl.py"), *paths], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"datatrove side failed:\n{out.stderr[-3000:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_reading(path: str) -> float:
    """Peak RSS (MB) of a fresh child process that reads and extracts all of `path` (Linux)."""
    # VmHWM, not ru_maxrss: a child started by fork + exec inherits its parent's ru_maxrss on Linux
    code = (
        "import re, sys\n"
        "from gemmaflow.pipeline.config import CrawlConfig\n"
        "from gemmaflow.pipeline.crawl.documents import warc_events\n"
        "from gemmaflow.pipeline.crawl.urls import UrlFilter\n"
        "n = sum(1 for _ in warc_events(open(sys.argv[1], 'rb'), sys.argv[1], CrawlConfig(), UrlFilter(), 'm'))\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(n, int(hwm) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def memory(paths: list[str], gigabytes: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.warc.gz"
        with one.open("wb") as out:
            for path in paths:
                out.write(Path(path).read_bytes())  # gzip members concatenate into one valid file
        big = Path(folder) / "big.warc.gz"
        copy = one.read_bytes()
        with big.open("wb") as out:
            while out.tell() < gigabytes * 1e9:
                out.write(copy)
        return {"small_mb": one.stat().st_size / 1e6, "small_peak_rss_mb": peak_rss_reading(str(one)),
                "big_mb": big.stat().st_size / 1e6, "big_peak_rss_mb": peak_rss_reading(str(big))}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warc", required=True, help="glob of WARC files (.warc or .warc.gz)")
    parser.add_argument("--datatrove", action="store_true", help="also run datatrove (its own venv, made on first use)")
    parser.add_argument("--truth", type=Path, help="extraction ground truth for --scorer")
    parser.add_argument("--scorer", type=Path, help="script scoring a {url, text} JSONL against --truth")
    parser.add_argument("--memory-gb", type=float, default=0.0, help="build and read a WARC of this size (0: skip)")
    parser.add_argument("--skip-speed", action="store_true", help="only the extractor table and memory")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(args.warc))
    if not paths:
        raise SystemExit(f"no file matches {args.warc}")
    result: dict = {"files": len(paths), "mb": sum(os.path.getsize(p) for p in paths) / 1e6}
    if not args.skip_speed:
        result["framing"] = framing(paths)
        result["gemmaflow"] = read_and_extract(paths, blocklist(1000))
    if args.datatrove and not args.skip_speed:
        result["datatrove"] = run_datatrove(paths)
        if result["datatrove"]:
            result["speedup_per_core"] = result["gemmaflow"]["pages_per_cpu_s"] / result["datatrove"]["pages_per_cpu_s"]
    result["extractors"] = compare_extractors(list(html_pages(paths)), args.truth, args.scorer)
    if args.memory_gb:
        result["memory"] = memory(paths, args.memory_gb)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
