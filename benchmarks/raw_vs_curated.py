"""Raw vs curated vs strict, DCLM's way at toy scale, as one `gemmaflow ablate` config
(configs/ablate-raw-vs-curated.yaml): the same small Gemma trained for the same number of tokens on a
corpus's raw text, on gemmaflow's default curation of it and on the strict web profile, three seeds
each, all scored on the same clean held-out English web pages (bits per byte) and the bundled tasks.
The corpus (`--corpus`) holds docs.jsonl.zst and its ground truth truth.jsonl.zst, which picks the
held-out pages.

    python benchmarks/raw_vs_curated.py --corpus CORPUS                                  # the full config
    python benchmarks/raw_vs_curated.py --corpus CORPUS --steps 40 --seeds 0 --fraction 0.05   # a quick look

Held-out split: every source file (truth `source_key`) hashed to bucket 0 of 10 is held out; its
good English web pages that are neither duplicate copies nor contaminated form the evaluation set,
and nothing of a held-out source (nor any copy of it) is in any training arm. The tokenizer is
trained on the raw arm's text, so it favours no curated arm. Every arm packs with the same config
and trains with the same steps and batch, so each sees exactly steps x batch x seq_len tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from side_by_side import add_corpus_argument, zst_jsonl  # noqa: E402


def bucket(key: str, salt: str, buckets: int) -> int:
    digest = hashlib.blake2b(f"{salt}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def split_corpus(corpus: Path, fraction: float) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(raw training documents, evaluation documents, counts)."""
    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst")}
    docs = list(zst_jsonl(corpus / "docs.jsonl.zst"))
    held_groups = {truth[d["id"]]["dup_group"] for d in docs
                   if bucket(truth[d["id"]]["source_key"], "heldout", 10) == 0 and truth[d["id"]].get("dup_group")}
    train, evaluation = [], []
    for doc in docs:
        t = truth[doc["id"]]
        if bucket(t["source_key"], "heldout", 10) == 0:
            if (t["domain"], t["lang"], t["quality"]) == ("web", "en", "good") and t.get("dup_role") != "copy" \
                    and not t.get("contaminated_with"):
                evaluation.append(doc)
        elif (not t.get("dup_group") or t["dup_group"] not in held_groups) \
                and bucket(doc["id"], "sample", 10_000) < fraction * 10_000:
            train.append(doc)
    counts = {"corpus_docs": len(docs), "train_raw_docs": len(train), "eval_docs": len(evaluation),
              "train_raw_mb": round(sum(len(d["text"].encode()) for d in train) / 1e6, 2),
              "eval_mb": round(sum(len(d["text"].encode()) for d in evaluation) / 1e6, 2)}
    return train, evaluation, counts


def write_jsonl(docs: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gemmaflow-raw-vs-curated",
                        help="scratch folder: the split corpus and the ablation's output (ablation/)")
    parser.add_argument("--fraction", type=float, default=0.25, help="share of the training pool used (raw side)")
    parser.add_argument("--config", default=str(REPO / "configs" / "ablate-raw-vs-curated.yaml"))
    parser.add_argument("--steps", type=int, help="training steps per model (default: the train config's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the ablation config's)")
    args = parser.parse_args()

    from gemmaflow.ablate import load_ablation_config, markdown_table, run_ablation

    args.work.mkdir(parents=True, exist_ok=True)
    train_docs, eval_docs, counts = split_corpus(args.corpus, args.fraction)
    print(json.dumps(counts))
    write_jsonl(train_docs, args.work / "raw.jsonl")
    write_jsonl([{"id": d["id"], "text": d["text"], "domain": "web"} for d in eval_docs], args.work / "heldout.jsonl")
    config = load_ablation_config(args.config)
    changes: dict[str, Any] = {"input": (str(args.work / "raw.jsonl"),), "heldout": str(args.work / "heldout.jsonl"),
                               "benchmarks": (str(args.corpus / "benchmark.jsonl"),)}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    document = run_ablation(dataclasses.replace(config, **changes), args.work / "ablation", overwrite=True)
    document["counts"] = counts
    (args.work / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    print(markdown_table(document))
    print(f"wall time {document['wall_seconds']:.0f} s; {document['budget_tokens']:,} training tokens per model; "
          f"`gemmaflow report {args.work / 'ablation'}` plots it")


if __name__ == "__main__":
    main()
