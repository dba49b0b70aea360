"""What the rejected sink's PII pass costs with full texts and with the default preview.

    python benchmarks/rejected_sink.py --corpus CORPUS --limit 3000

Documents the default curate config drops are most of a web crawl, and each used to be scrubbed
whole before `rejected/` was written. This times `PiiScrubber` (default config, NER on prose) on
the same documents both ways, as `PrepareRejected` does it: the whole text, or the text clipped
to the preview plus the scrub margin, scrubbed, then clipped to the preview. CPU seconds of the
scrubbing only (models loaded before the clock starts); characters written per document.
"""

from __future__ import annotations

import argparse
import json
import time

from side_by_side import add_corpus_argument, zst_jsonl

from gemmaflow.pipeline.config import OutputConfig, PiiConfig
from gemmaflow.pipeline.pii.scrubber import PiiScrubber
from gemmaflow.pipeline.stages.rejected import SCRUB_MARGIN_CHARS, clip_text

BATCH = 64


def scrub_all(scrubber: PiiScrubber, texts: list[str], domains: list[str]) -> tuple[list[str], float]:
    started = time.process_time()
    out: list[str] = []
    for i in range(0, len(texts), BATCH):
        out.extend(r.text for r in scrubber.scrub_batch(texts[i : i + BATCH], domains[i : i + BATCH]))
    return out, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--limit", type=int, default=3000)
    args = parser.parse_args()
    docs = list(zst_jsonl(args.corpus / "docs.jsonl.zst", args.limit))
    texts, domains = [d["text"] for d in docs], [d.get("source") or "web" for d in docs]
    limit = OutputConfig().rejected_preview_chars
    scrubber = PiiScrubber(PiiConfig())
    scrub_all(scrubber, texts[:BATCH], domains[:BATCH])  # warm-up: lazy loads inside spaCy and presidio
    full, full_cpu = scrub_all(scrubber, texts, domains)
    clipped, preview_cpu = scrub_all(scrubber, [clip_text(t, limit + SCRUB_MARGIN_CHARS) for t in texts], domains)
    preview = [clip_text(t, limit) for t in clipped]
    report = {
        "docs": len(docs),
        "full": {"cpu_s": round(full_cpu, 2), "docs_per_cpu_s": round(len(docs) / full_cpu, 1),
                 "chars_per_doc": round(sum(map(len, full)) / len(docs))},
        "preview": {"cpu_s": round(preview_cpu, 2), "docs_per_cpu_s": round(len(docs) / preview_cpu, 1),
                    "chars_per_doc": round(sum(map(len, preview)) / len(docs))},
        "speedup": round(full_cpu / preview_cpu, 2),
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
