"""Near-dedupe speed, memory and accuracy on a corpus with ground truth, side by side with datatrove's MinHash dedup.

gemmaflow side, in this process:
* signature throughput: word n-gram hashing plus MinHash signature (`pipeline.minhash`) for every
  document, per CPU-second, at datatrove-like 128 permutations and at the shipped default (256);
  datasketch's own `MinHash.update_batch` on the same shingles for reference (a sample, it is slow);
* the whole `NearDedupe` stage (signatures, LSH buckets, verification, connected components,
  survivor routing) on the in-process DirectRunner, reading the prepared documents from a JSONL
  file, CPU and wall time, and the CPU time of reading them alone (the runner's own cost);
* peak RSS of the child process that runs the stage (DirectRunner keeps every PCollection in
  memory, so this grows with the corpus; on a distributed runner it is per worker, see README).

datatrove side (benchmarks/datatrove_baseline.py --mode minhash, in datatrove's own venv): its
signature step and the whole signature -> buckets -> cluster -> filter chain, same n-gram size and
datatrove's 14 x 8 = 112 permutations. Both sides see the same raw documents; gemmaflow's get the
domain its domain stage would give (its per-domain settings need it).

Accuracy of both against the corpus ground truth, over all documents (no other stage in front):
near- and exact-duplicate recall (all but one member of each true group removed) and removed
documents that belong to no duplicate group.

    python benchmarks/near_dedupe.py --corpus CORPUS --datatrove-python DT_PYTHON   # 22,401 docs: ~10 minutes
    python benchmarks/near_dedupe.py --corpus CORPUS --limit 3000                   # gemmaflow side only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import apache_beam as beam
from datasketch import MinHash
from side_by_side import add_corpus_argument, add_datatrove_argument, run_datatrove, zst_jsonl

from gemmaflow.pipeline.config import DomainConfig, NearDedupeConfig, NormaliseConfig
from gemmaflow.pipeline.domain import detect_domain
from gemmaflow.pipeline.minhash import permutations, shingle_hashes, signature
from gemmaflow.pipeline.normalise import normalise_text
from gemmaflow.pipeline.records import document_from_record
from gemmaflow.pipeline.shingles import words
from gemmaflow.pipeline.stages.base import REJECTED, STATS
from gemmaflow.pipeline.stages.near_dedupe import NearDedupe
from gemmaflow.pipeline.stats import merge_parts

DATASKETCH_SAMPLE = 1000  # documents fed to datasketch's update_batch (about 1 ms each)


def load_documents(corpus: Path, limit: int | None) -> list[dict[str, Any]]:
    """Documents as the near-dedupe stage receives them: normalised text, domain labelled (untimed)."""
    docs = []
    for position, record in enumerate(zst_jsonl(corpus / "docs.jsonl.zst", limit)):
        doc = document_from_record(record, "docs.jsonl.zst", position, "bench")
        doc["text"] = normalise_text(doc["text"], NormaliseConfig()).text
        doc["domain"], doc["domain_method"] = detect_domain(doc["text"], doc["url"], doc["source"], DomainConfig())
        docs.append(doc)
    return docs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def signature_rate(docs: list[dict], config: NearDedupeConfig, num_perm: int, repeats: int) -> float:
    """Documents per CPU-second for shingling + signature (median of `repeats`)."""
    perms = permutations(num_perm, config.seed)
    ngrams = [config.profile(doc["domain"]).ngram for doc in docs]
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        for doc, ngram in zip(docs, ngrams, strict=True):
            signature(shingle_hashes(doc["text"], ngram), perms)
        runs.append(time.process_time() - start)
    return len(docs) / statistics.median(runs)


def datasketch_rate(docs: list[dict], ngram: int, num_perm: int) -> float:
    """datasketch's MinHash.update_batch (SHA-1 per shingle) on the same word n-grams, per CPU-second."""
    sample = docs[:DATASKETCH_SAMPLE]
    start = time.process_time()
    for doc in sample:
        w = words(doc["text"])
        grams = [" ".join(w[i : i + ngram]).encode() for i in range(max(1, len(w) - ngram + 1))]
        MinHash(num_perm=num_perm).update_batch(grams)
    return len(sample) / (time.process_time() - start)


def run_pipeline(prepared: Path, with_stage: bool, folder: Path) -> None:
    """Read `prepared` documents -> NearDedupe (or just count them) on the in-process DirectRunner.

    Runs in a fresh child process (see `measured`), so its peak RSS is the stage's, not this
    benchmark's; documents come from a file, as they would from the stage before (`beam.Create`
    of the whole corpus would cost the runner more than the stage itself). Writes its CPU time,
    wall time and peak RSS to `folder`.
    """
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with beam.Pipeline() as p:
        docs = p | "Read" >> beam.io.ReadFromText(str(prepared)) | "Decode" >> beam.Map(json.loads)
        if not with_stage:
            _ = docs | "Count" >> beam.combiners.Count.Globally()
        else:
            out = docs | "NearDedupe" >> NearDedupe(NearDedupeConfig())
            _ = (out[REJECTED] | "RejectedIds" >> beam.Map(lambda r: r["id"])
                 | "WriteRejected" >> beam.io.WriteToText(str(folder / "rejected"), num_shards=1))
            _ = (out[STATS] | "Parts" >> beam.combiners.ToList()
                 | "Merge" >> beam.Map(lambda parts: json.dumps(merge_parts(parts)["near_dedupe"].to_dict()))
                 | "WriteStats" >> beam.io.WriteToText(str(folder / "stats"), num_shards=1))
    usage = {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0, "peak_rss_mb": peak_rss_mb()}
    (folder / f"usage-{with_stage}.json").write_text(json.dumps(usage))


def measured(prepared: Path, with_stage: bool, folder: Path) -> dict[str, float]:
    child = multiprocessing.get_context("spawn").Process(target=run_pipeline, args=(prepared, with_stage, folder))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the {'stage' if with_stage else 'read-only'} pipeline failed ({child.exitcode})")
    return json.loads((folder / f"usage-{with_stage}.json").read_text())


def run_ours(docs: list[dict]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = folder / "docs.jsonl"
        prepared.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
        runner = measured(prepared, False, folder)
        stage = measured(prepared, True, folder)
        removed = next(folder.glob("rejected*")).read_text().split()
        stats = json.loads(next(folder.glob("stats*")).read_text())
    return {
        "stage_cpu_s": round(stage["cpu_s"], 2), "stage_wall_s": round(stage["wall_s"], 2),
        "stage_peak_rss_mb": round(stage["peak_rss_mb"], 1), "read_only_cpu_s": round(runner["cpu_s"], 2),
        "read_only_peak_rss_mb": round(runner["peak_rss_mb"], 1), "removed_ids": removed,
        "stats_extra": stats["extra"],
    }


def accuracy(corpus: Path, ids: list[str], removed: set[str]) -> dict[str, Any]:
    """Scorer-style duplicate recall and removals outside any duplicate group, over `ids`."""
    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst")}
    result: dict[str, Any] = {}
    for kind in ("exact", "near"):
        groups = defaultdict(list)
        for i in ids:
            if truth[i].get("dup_kind") == kind:
                groups[truth[i]["dup_group"]].append(i)
        extra = sum(len(m) - 1 for m in groups.values())
        left = sum(max(0, sum(i not in removed for i in m) - 1) for m in groups.values())
        result[f"{kind}_recall"] = round(1 - left / max(1, extra), 4)
    false = [i for i in removed if truth[i].get("dup_group") is None]
    result["removed"] = len(removed)
    result["removed_not_duplicates"] = len(false)
    result["removed_not_duplicates_pct"] = round(100 * len(false) / max(1, len(removed)), 2)
    result["hard_negatives_removed"] = sum(1 for i in false if truth[i].get("hard_negative_group"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--limit", type=int, default=None, help="first N documents (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="signature timing repeats (median reported)")
    parser.add_argument("--datatrove-repeats", type=int, default=1)
    add_datatrove_argument(parser)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    config = NearDedupeConfig()
    docs = load_documents(args.corpus, args.limit)
    ids = [doc["id"] for doc in docs]
    mb = sum(len(doc["text"].encode("utf-8")) for doc in docs) / 1e6
    rss_loaded = peak_rss_mb()
    print(f"input: {len(docs)} documents, {mb:.1f} MB of text; {rss_loaded:.0f} MB resident after loading")
    ours: dict[str, Any] = {
        "signature_docs_per_s_per_core_128": round(signature_rate(docs, config, 128, args.repeats), 1),
        f"signature_docs_per_s_per_core_{config.num_perm}": round(
            signature_rate(docs, config, config.num_perm, args.repeats), 1),
        "datasketch_update_batch_docs_per_s_per_core_128": round(datasketch_rate(docs, config.web.ngram, 128), 1),
    }
    ours.update(run_ours(docs))
    ours["accuracy"] = accuracy(args.corpus, ids, set(ours.pop("removed_ids")))
    theirs = run_datatrove("minhash", args.corpus, args.limit, args.datatrove_repeats, args.datatrove_python,
                           quiet=True)
    if theirs:
        theirs["accuracy"] = accuracy(args.corpus, ids, set(theirs.pop("removed_ids")))

    print("\n== signatures, documents per CPU-second")
    for key in [k for k in ours if k.startswith(("signature", "datasketch"))]:
        print(f"gemmaflow {key:52s} {ours[key]:>10.1f}")
    if theirs:
        rate = theirs["signature_docs_per_s_per_core"]
        print(f"datatrove {'signature (spaCy words, SHA-1, 112 permutations)':52s} {rate:>10.1f}")
        print(f"ratio at 128 permutations: {ours['signature_docs_per_s_per_core_128'] / rate:.1f}x")
    print("\n== whole stage")
    print(f"gemmaflow read + NearDedupe on the in-process DirectRunner: {ours['stage_cpu_s']:.1f} CPU s, "
          f"{ours['stage_wall_s']:.1f} s wall, peak RSS {ours['stage_peak_rss_mb']:.0f} MB "
          f"(read alone: {ours['read_only_cpu_s']:.1f} CPU s, {ours['read_only_peak_rss_mb']:.0f} MB)")
    if theirs:
        print(f"datatrove signature+buckets+cluster+filter: {theirs['cpu_s']:.1f} CPU s; "
              f"peak RSS {theirs['peak_rss_mb']:.0f} MB (the corpus in memory included)")
    print("\n== accuracy on all documents (no other stage in front)")
    print("gemmaflow", json.dumps(ours["accuracy"]))
    if theirs:
        print("datatrove", json.dumps(theirs["accuracy"]))
    print("stage tallies:", json.dumps(ours["stats_extra"]))
    if args.json_out:
        args.json_out.write_text(json.dumps({"docs": len(docs), "mb": mb, "gemmaflow": ours, "datatrove": theirs},
                                            indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
