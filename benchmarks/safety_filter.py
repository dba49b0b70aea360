"""The shipped `safety` classifier: what it drops of good documents, what it catches, and how fast.

    python benchmarks/safety_filter.py --corpus CORPUS
    python benchmarks/safety_filter.py --corpus CORPUS --json-out safety.json

Three measurements at each candidate threshold on P(offensive), with the model reading whole
documents (its `max_chars`, 20,000 characters), as the classify stage does:
- false positives: the share of the corpus's good documents (truth `quality: good`) at or above the
  threshold, per domain and, for web, per language; the most offensive-looking good documents are
  listed so a reader can see what the model confuses;
- recall on the project's fixtures (tests/data/safety): 30 offensive comments, alone and each pasted
  into the middle of a different good English web page (what a document-level score misses), and the
  hard negatives that must survive: 30 clinical, legal and homonym sentences and 10 medical and legal
  paragraphs;
- speed: documents and characters scored per CPU-second over every good document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from side_by_side import add_corpus_argument, zst_jsonl  # noqa: E402

from gemmaflow.classifiers.model import open_classifier, shipped_model_path  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)
FIXTURES = REPO / "tests" / "data" / "safety"


def fixture(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def flagged(scores: np.ndarray) -> dict[str, float]:
    return {str(t): round(float((scores >= t).mean()), 4) for t in THRESHOLDS}


def embed(line: str, page: str) -> str:
    """`line` as a paragraph of its own in the middle of `page` (between two of its paragraphs)."""
    paragraphs = page.split("\n\n")
    middle = len(paragraphs) // 2
    return "\n\n".join([*paragraphs[:middle], line, *paragraphs[middle:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    model = open_classifier(shipped_model_path("safety"))
    truth = {t["id"]: t for t in zst_jsonl(args.corpus / "truth.jsonl.zst")}
    good = [d for d in zst_jsonl(args.corpus / "docs.jsonl.zst") if truth[d["id"]]["quality"] == "good"]

    start = time.process_time()
    scores = model.predict_proba([d["text"] for d in good])[:, 1]
    cpu = time.process_time() - start
    chars = sum(min(len(d["text"]), model.max_chars) for d in good)

    groups: dict[str, list[float]] = defaultdict(list)
    for doc, score in zip(good, scores.tolist(), strict=True):
        t = truth[doc["id"]]
        groups[t["domain"]].append(score)
        if t["domain"] == "web":
            groups[f"web/{t['lang']}"].append(score)
    false_positives = {k: {"n": len(v), **flagged(np.array(v))} for k, v in sorted(groups.items())}
    worst = [{"score": round(float(scores[i]), 3), "domain": truth[good[i]["id"]]["domain"],
              "lang": truth[good[i]["id"]]["lang"], "start": good[i]["text"][:100]}
             for i in np.argsort(-scores)[:8]]  # fmt: skip

    offensive = fixture("offensive.txt")
    english_pages = [d["text"] for d in good if truth[d["id"]]["domain"] == "web" and truth[d["id"]]["lang"] == "en"
                     and "\n\n" in d["text"]]  # fmt: skip
    hosts = [english_pages[(i * 7919) % len(english_pages)] for i in range(len(offensive))]
    fixtures = {
        "offensive alone (recall)": model.predict_proba(offensive)[:, 1],
        "offensive in a web page (recall)": model.predict_proba(
            [embed(o, h) for o, h in zip(offensive, hosts, strict=True)]
        )[:, 1],
        "hard-negative sentences (flagged)": model.predict_proba(fixture("benign_hard.txt"))[:, 1],
        "medical and legal paragraphs (flagged)": model.predict_proba(fixture("medical_legal.txt"))[:, 1],
    }
    result = {
        "documents": len(good), "cpu_seconds": round(cpu, 2), "docs_per_cpu_second": round(len(good) / cpu),
        "chars_per_cpu_second": round(chars / cpu), "max_chars": model.max_chars,
        "false_positive_rate": false_positives, "highest_scoring_good": worst,
        "fixtures": {k: {"n": len(v), **flagged(v)} for k, v in fixtures.items()},
    }  # fmt: skip

    print(
        f"{len(good):,} good documents scored in {cpu:.1f} CPU-s: {result['docs_per_cpu_second']:,} docs/CPU-s, "
        f"{result['chars_per_cpu_second']:,} chars/CPU-s"
    )
    header = "| | n | " + " | ".join(f">= {t}" for t in THRESHOLDS) + " |"
    print(header + "\n|---|---:|" + "---:|" * len(THRESHOLDS))
    rows = {**{f"good {k} (dropped)": v for k, v in false_positives.items()}, **result["fixtures"]}
    for name, row in rows.items():
        print(f"| {name} | {row['n']:,} | " + " | ".join(f"{row[str(t)]:.2%}" for t in THRESHOLDS) + " |")
    for w in worst:
        print(f"{w['score']:.3f} {w['domain']}/{w['lang']} {w['start']!r}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
