"""Tokenizer training side by side: `gemmaflow tokenizer train` (SentencePiece BPE) vs Hugging Face
`tokenizers` BPE, same text, same vocabulary size.

Input: a `gemmaflow curate` output folder (`--curated`, e.g. from `gemmaflow curate --input
raw.jsonl --output curated`). Ours held about 90 MB of curated text, so the benchmark repeats it:
every curated document is written `copies` times (ids suffixed `~k`) into a benchmark Parquet
folder, enough for each domain's share of the byte budget; the sampler then draws the budget from
those copies. Before copying, about 2% of the English web documents (by a hash of the original id)
are set aside as the held-out set, so no copy of them is trained on; bytes per token and encode
throughput are measured on them.

Each side runs in its own child process (wall time, CPU time, peak RSS from its VmHWM):
- gemmaflow: the whole job (sample, vocabulary check, SentencePiece training, validation report),
  keeping its training text;
- tokenizers: BpeTrainer on that same training text file, byte-level (GPT-2 style: ByteLevel
  pre-tokenizer with its regex, digits split one by one like Gemma's `split_digits`), the same number
  of special tokens and the same vocabulary size.

    python benchmarks/tokenizer.py --curated CURATED            # 200 MB, vocab 256,000
    python benchmarks/tokenizer.py --curated CURATED --mb 20 --vocab-size 32000   # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HELDOUT_MODULUS = 50  # one English web document in 50 is held out


def _vm_hwm_mb() -> float:
    """VmHWM of this process (ru_maxrss survives exec, so it would count the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _is_heldout(doc_id: str) -> bool:
    return int(hashlib.blake2b(doc_id.encode(), digest_size=8).hexdigest(), 16) % HELDOUT_MODULUS == 0


def prepare(curated: str, work: Path, target_bytes: int, weights: dict[str, float]) -> dict[str, Any]:
    """Write the repeated benchmark Parquet and the held-out English web documents (untimed)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table = ds.dataset(sorted(Path(curated, "data").glob("part-*.parquet")), format="parquet").to_table()
    rows = table.to_pylist()
    heldout = [r["text"] for r in rows if r["domain"] == "web" and r["lang"] == "en" and _is_heldout(r["id"])]
    keep = [r for r in rows if not (r["domain"] == "web" and r["lang"] == "en" and _is_heldout(r["id"]))]
    per_domain = {d: sum(len(r["text"].encode()) for r in keep if r["domain"] == d) for d in weights}
    total_weight = sum(weights.values())
    copies = max(math.ceil(target_bytes * w / total_weight / max(per_domain[d], 1)) for d, w in weights.items())
    out = work / "curated" / "data"
    out.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        copy = [{**r, "id": f"{r['id']}~{k}"} for r in keep]
        pq.write_table(pa.Table.from_pylist(copy, schema=table.schema), out / f"part-{k:05d}.parquet")
    (work / "heldout_en_web.json").write_text(json.dumps(heldout), encoding="utf-8")
    return {
        "curated_documents": len(rows),
        "curated_bytes_by_domain": per_domain,
        "copies": copies,
        "heldout_en_web_documents": len(heldout),
        "heldout_en_web_bytes": sum(len(t.encode()) for t in heldout),
    }


def _run_child(args: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["child_wall_s"] = time.perf_counter() - start
    return result


def child_gemmaflow(work: Path, vocab_size: int, target_bytes: int, weights: dict[str, float]) -> dict[str, Any]:
    from gemmaflow.tokenizer_train.config import SampleConfig, TokenizerConfig, TrainerConfig
    from gemmaflow.tokenizer_train.job import train_tokenizer

    config = TokenizerConfig(
        sample=SampleConfig(byte_budget=target_bytes, domain_weights=weights, heldout_fraction=0.005),
        trainer=TrainerConfig(vocab_size=vocab_size),
    )
    start, cpu = time.perf_counter(), time.process_time()
    card = train_tokenizer(str(work / "curated"), str(work / "sp"), config, overwrite=True, keep_text_in=str(work))
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": _vm_hwm_mb(),
        "seconds": card["seconds"],
        "threads": config.trainer.threads,
        "sample": {k: card["sample"][k] for k in ("bytes_taken", "lines", "long_lines_split", "domains")},
        "round_trip_rate": card["report"]["round_trip"]["rate"],
        "report_overall": card["report"]["overall"],
    }


def child_hf(work: Path, vocab_size: int, special_count: int) -> dict[str, Any]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[f"<special{i}>" for i in range(special_count)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    start, cpu = time.perf_counter(), time.process_time()
    tokenizer.train([str(work / "train.txt")], trainer)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    tokenizer.save(str(work / "hf_tokenizer.json"))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": _vm_hwm_mb(), "vocab_size": tokenizer.get_vocab_size()}


def _median_rate(encode, texts: list[str], repeats: int = 3) -> tuple[int, float, float]:
    """(tokens, tokens per CPU-second, tokens per wall-second), medians over `repeats` batched runs."""
    cpu_rates, wall_rates, tokens = [], [], 0
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        tokens = sum(len(ids) for ids in encode(texts))
        cpu_rates.append(tokens / max(time.process_time() - cpu, 1e-9))
        wall_rates.append(tokens / max(time.perf_counter() - start, 1e-9))
    return tokens, statistics.median(cpu_rates), statistics.median(wall_rates)


def evaluate(work: Path) -> dict[str, Any]:
    """Bytes per token and batched encode throughput of both tokenizers on the held-out English web."""
    import sentencepiece as spm
    from tokenizers import Tokenizer

    texts = json.loads((work / "heldout_en_web.json").read_text(encoding="utf-8"))
    nbytes = sum(len(t.encode()) for t in texts)
    sp = spm.SentencePieceProcessor(model_file=str(work / "sp" / "tokenizer.model"))
    hf = Tokenizer.from_file(str(work / "hf_tokenizer.json"))
    threads = len(os.sched_getaffinity(0))
    sp_tokens, sp_cpu, sp_wall = _median_rate(lambda t: sp.encode(t, num_threads=threads), texts)
    hf_tokens, hf_cpu, hf_wall = _median_rate(lambda t: [e.ids for e in hf.encode_batch(t)], texts)
    sp_exact = sum(sp.decode(ids) == t for ids, t in zip(sp.encode(texts), texts, strict=True))
    hf_exact = sum(hf.decode(e.ids) == t for e, t in zip(hf.encode_batch(texts), texts, strict=True))
    return {
        "documents": len(texts),
        "bytes": nbytes,
        "sentencepiece": {"tokens": sp_tokens, "bytes_per_token": nbytes / sp_tokens, "tokens_per_cpu_s": sp_cpu,
                          "tokens_per_wall_s": sp_wall, "round_trip_exact": sp_exact / len(texts)},
        "tokenizers": {"tokens": hf_tokens, "bytes_per_token": nbytes / hf_tokens, "tokens_per_cpu_s": hf_cpu,
                       "tokens_per_wall_s": hf_wall, "round_trip_exact": hf_exact / len(texts)},
        "threads": threads,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curated", required=True, help="a `gemmaflow curate` output folder")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "gemmaflow-tokenizer-bench"),
                        help="scratch folder (benchmark Parquet, models)")
    parser.add_argument("--mb", type=float, default=200.0, help="training text budget in MB (10^6 bytes)")
    parser.add_argument("--vocab-size", type=int, default=256_000)
    parser.add_argument("--child", choices=["gemmaflow", "tokenizers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    target = int(args.mb * 1e6)
    weights = {"web": 0.6, "code": 0.25, "math": 0.15}
    if args.child == "gemmaflow":
        print(json.dumps(child_gemmaflow(work, args.vocab_size, target, weights)))
        return
    if args.child == "tokenizers":
        from gemmaflow.core.chat import CORE_PIECES
        from gemmaflow.tokenizer_train.config import TrainerConfig
        from gemmaflow.tokenizer_train.train import fixed_pieces

        specials = len(CORE_PIECES) + len(fixed_pieces(TrainerConfig()))
        print(json.dumps(child_hf(work, args.vocab_size, specials)))
        return
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"budget_bytes": target, "vocab_size": args.vocab_size}
    results["prepare"] = prepare(args.curated, work, target, weights)
    print("prepared:", json.dumps(results["prepare"]), flush=True)
    common = ["--work", str(work), "--mb", str(args.mb), "--vocab-size", str(args.vocab_size)]
    results["gemmaflow"] = _run_child(["--child", "gemmaflow", *common])
    print("gemmaflow:", json.dumps(results["gemmaflow"]), flush=True)
    results["tokenizers"] = _run_child(["--child", "tokenizers", *common])
    print("tokenizers:", json.dumps(results["tokenizers"]), flush=True)
    results["heldout_en_web"] = evaluate(work)
    (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    g, h, e = results["gemmaflow"], results["tokenizers"], results["heldout_en_web"]
    sp_bpt, hf_bpt = e["sentencepiece"]["bytes_per_token"], e["tokenizers"]["bytes_per_token"]
    print(f"\n{'':34}{'gemmaflow (SentencePiece)':>28}{'HF tokenizers (byte-level)':>28}")
    print(f"{'training wall s':34}{g['seconds']['train']:>28.1f}{h['wall_s']:>28.1f}")
    print(f"{'whole job wall s (sample..report)':34}{g['wall_s']:>28.1f}{'':>28}")
    print(f"{'training process CPU s':34}{g['cpu_s']:>28.1f}{h['cpu_s']:>28.1f}")
    print(f"{'peak RSS MB':34}{g['peak_rss_mb']:>28.0f}{h['peak_rss_mb']:>28.0f}")
    print(f"{'held-out en web bytes/token':34}{sp_bpt:>28.3f}{hf_bpt:>28.3f}")
    print(f"{'  SentencePiece vs tokenizers':34}{(sp_bpt / hf_bpt - 1):>+28.2%}")
    print(f"{'encode tokens/CPU-s (batched)':34}{e['sentencepiece']['tokens_per_cpu_s']:>28,.0f}"
          f"{e['tokenizers']['tokens_per_cpu_s']:>28,.0f}")  # fmt: skip
    print(f"{'round trip exact (held-out)':34}{e['sentencepiece']['round_trip_exact']:>28.2%}"
          f"{e['tokenizers']['round_trip_exact']:>28.2%}")  # fmt: skip
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
