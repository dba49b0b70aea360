"""Raw vs curated, DCLM's way at toy scale: the same small Gemma, the same number of training tokens,
one trained on a corpus's raw text and one on gemmaflow's curated output of the same raw text,
both evaluated on the same clean held-out English web pages. The corpus (`--corpus`) holds
docs.jsonl.zst and its ground truth truth.jsonl.zst, which picks the held-out pages.

    python benchmarks/raw_vs_curated.py --corpus CORPUS                              # ~15 minutes on 2 cores
    python benchmarks/raw_vs_curated.py --corpus CORPUS --steps 40 --fraction 0.05   # a quick look

Held-out split: every source file (truth `source_key`) hashed to bucket 0 of 10 is held out; its
good English web pages that are neither duplicate copies nor contaminated form the evaluation set,
and nothing of a held-out source (nor any copy of it) is in either training arm. The tokenizer is
trained on the raw training text, so it favours neither arm. Both arms pack with the same config
and train with the same seed, steps and batch, so each sees exactly steps x batch x seq_len tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def write_parquet(docs: list[dict], path: Path) -> None:
    """Documents as curate-shaped Parquet (id, text, domain) so the tokenizer and pack jobs read them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs],
                      "domain": [d.get("source", "web") for d in docs]})
    pq.write_table(table, path)


def write_jsonl(docs: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")


def evaluate(model_dir: Path, eval_shards: Path, train_config: Any, batches: int) -> tuple[float, int]:
    """Mean cross-entropy per target token of the model in `model_dir` over the evaluation shards."""
    import jax.numpy as jnp

    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.shards import ShardDataset, ShardReader
    from gemmaflow.model.train import make_eval_step

    lm = GemmaLM.from_pretrained(model_dir)
    reader = ShardReader(eval_shards, "train", vocab_size=lm.config.vocab_size)
    dataset = ShardDataset(reader, train_config.batch_size, seed=0, shuffle=False)
    eval_fn = make_eval_step(lm.config, train_config)
    sums = np.zeros(2)
    for index in range(min(batches, len(reader) // train_config.batch_size)):
        arrays = dataset.batch_at(index)
        batch = {k: jnp.asarray(v[None]) for k, v in arrays.items()}
        sums += np.asarray(eval_fn(lm.params, None, batch))
    return float(sums[0] / sums[1]), int(sums[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gemmaflow-raw-vs-curated",
                        help="scratch folder for both arms' curated data, tokenizer, shards and models")
    parser.add_argument("--fraction", type=float, default=0.25, help="share of the training pool used (raw side)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-batches", type=int, default=64)
    parser.add_argument("--train-config", default=str(REPO / "configs" / "train-raw-vs-curated.yaml"))
    args = parser.parse_args()

    from gemmaflow.model.train import train
    from gemmaflow.model.train_config import load_train_config
    from gemmaflow.pipeline.config import load_curate_config
    from gemmaflow.pipeline.jobs.curate import run_curate
    from gemmaflow.pipeline.jobs.pack import run_pack
    from gemmaflow.pipeline.pack_config import load_pack_config
    from gemmaflow.tokenizer_train.config import load_tokenizer_config
    from gemmaflow.tokenizer_train.job import train_tokenizer

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        result = fn()
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {seconds[name]} s", flush=True)
        return result

    train_docs, eval_docs, counts = split_corpus(args.corpus, args.fraction)
    print(json.dumps(counts))
    write_jsonl(train_docs, work / "raw.jsonl")
    write_parquet(train_docs, work / "raw" / "data" / "part-00000.parquet")
    write_parquet(eval_docs, work / "eval" / "data" / "part-00000.parquet")

    curate_config = load_curate_config(str(REPO / "configs" / "curate.yaml"))
    curate_config = dataclasses.replace(curate_config, decontamination=dataclasses.replace(
        curate_config.decontamination, benchmarks=(str(args.corpus / "benchmark.jsonl"),)))
    stats = timed("curate", lambda: run_curate([str(work / "raw.jsonl")], str(work / "curated"), curate_config,
                                               [], overwrite=True, echo=False))
    counts["curated_docs"] = stats["accounting"]["kept"]

    tokenizer_config = load_tokenizer_config(str(REPO / "configs" / "tokenizer-demo.yaml"))
    timed("tokenizer", lambda: train_tokenizer(str(work / "raw" / "data"), str(work / "tokenizer"),
                                               tokenizer_config, overwrite=True))
    tokenizer = str(work / "tokenizer" / "tokenizer.model")

    pack_config = load_pack_config(str(REPO / "configs" / "pack-demo.yaml"))
    pack_config = dataclasses.replace(
        pack_config, packing=dataclasses.replace(pack_config.packing, validation_fraction=0.0),
        mixture=dataclasses.replace(pack_config.mixture, weights={}, token_budget=0))
    manifests = {}
    for arm, source in (("raw", work / "raw" / "data"), ("curated", work / "curated" / "data"),
                        ("eval", work / "eval" / "data")):
        manifests[arm] = timed(f"pack_{arm}", lambda source=source, arm=arm: run_pack(
            [str(source / "*.parquet")], tokenizer, str(work / f"shards_{arm}"), pack_config, [], overwrite=True,
            echo=False))

    train_config = load_train_config(args.train_config, {"steps": args.steps})
    results: dict[str, Any] = {"counts": counts, "steps": args.steps, "batch_size": train_config.batch_size,
                               "seq_len": manifests["raw"]["seq_len"]}
    results["train_tokens_per_arm"] = args.steps * train_config.batch_size * results["seq_len"]
    for arm in ("raw", "curated"):
        results[f"{arm}_available_tokens"] = manifests[arm]["splits"]["train"]["non_pad_tokens"]
        out = work / f"model_{arm}"
        with open(work / f"train_{arm}.log", "w") as log:
            trained = timed(f"train_{arm}", lambda arm=arm, out=out, log=log: train(
                work / f"shards_{arm}", train_config, out, stream=log))
        loss, tokens = evaluate(out / "final", work / "shards_eval", train_config, args.eval_batches)
        results[arm] = {"final_train_loss": round(trained.loss, 4), "heldout_loss": round(loss, 4),
                        "heldout_perplexity": round(math.exp(loss), 2), "heldout_tokens": tokens}
        print(f"{arm}: held-out loss {loss:.4f} (perplexity {math.exp(loss):.1f}) over {tokens} tokens", flush=True)
    results["seconds"] = seconds
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
