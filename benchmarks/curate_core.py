"""Throughput, memory and accuracy of the curation core, side by side with datatrove.

Measures `gemmaflow curate` with the default config (read, normalise, domain, language,
heuristics, classify, exact and near dedupe, PII, Parquet write), and the same chain with PII
off, on a corpus with ground truth in one run with datatrove's LanguageFilter + GopherRepetition +
GopherQuality + C4Quality + FineWebQuality (benchmarks/datatrove_baseline.py, run in its own virtual
environment because datatrove pulls a conflicting fastText wheel), then scores the curated output
against the corpus ground truth: with an external scoring script when `--scorer` names one (run as
`python SCORER --corpus DIR --input-ids INPUT.jsonl --output CURATED_DIR`, its report printed as
is), and always with this script's own per-stage breakdown.

Per-core figures use CPU time (process_time of the whole process, Beam's own threads included),
so they do not depend on how many cores the machine has or what else it is doing. Each gemmaflow run
has a fresh process of its own (`--direct_num_workers 1` unless other Beam options follow `--`).

    python benchmarks/curate_core.py --corpus CORPUS --datatrove-python DT_PYTHON --scorer SCORER
    python benchmarks/curate_core.py --corpus CORPUS --limit 3000          # quicker, gemmaflow side only
    python benchmarks/curate_core.py --corpus CORPUS --json-out results.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard
from side_by_side import add_corpus_argument, add_datatrove_argument, run_datatrove, zst_jsonl


def write_input_sample(corpus: Path, limit: int | None, folder: Path) -> tuple[Path, int, float]:
    """Decompress the first `limit` documents to plain JSONL (the scorer reads plain JSONL)."""
    path = folder / "input.jsonl"
    docs, mb = 0, 0.0
    with (corpus / "docs.jsonl.zst").open("rb") as raw, path.open("w", encoding="utf-8") as out:
        for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8"):
            if not line.strip():
                continue
            if limit is not None and docs >= limit:
                break
            out.write(line)
            docs += 1
            mb += len(json.loads(line)["text"].encode("utf-8")) / 1e6
    return path, docs, mb


def run_gemmaflow(input_path: Path, output: Path, beam_args: list[str], pii: bool = True) -> dict:
    """One curate run in a fresh process (so neither run inherits the other's heap, models or peak)."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_gemmaflow_here, input_path, output, beam_args, pii).result()


def _run_gemmaflow_here(input_path: Path, output: Path, beam_args: list[str], pii: bool) -> dict:
    """One curate run in this process; CPU time covers every Beam thread of the in-process runner."""
    from gemmaflow.pipeline.config import CurateConfig, PiiConfig
    from gemmaflow.pipeline.jobs.curate import run_curate

    config = CurateConfig() if pii else CurateConfig(pii=PiiConfig(enabled=False))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    stats = run_curate([str(input_path)], str(output), config, beam_args or ["--direct_num_workers=1"],
                       overwrite=True, echo=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_s": cpu + children.ru_utime + children.ru_stime,
        "wall_s": wall,
        "kept": stats["accounting"]["kept"],
        # Largest single process: this one, or a worker of --direct_running_mode multi_processing.
        "peak_rss_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss) / 1024,
        "stage_seconds": {s["stage"]: s["seconds"] for s in stats["stages"]},
    }


def score(scorer: Path | None, corpus: Path, input_path: Path, output: Path) -> str:
    """The external scorer's report, or a note that there is none (`--scorer` not given)."""
    if scorer is None:
        return "(external scoring skipped: no --scorer given)\n"
    result = subprocess.run(
        [sys.executable, str(scorer), "--corpus", str(corpus), "--input-ids", str(input_path), "--output",
         str(output)], capture_output=True, text=True, check=True,
    )
    return result.stdout


def breakdown(corpus: Path, input_path: Path, output: Path) -> str:
    """Figures the scorer does not print: per-stage attribution of drops, and exact-dedupe precision.

    Kernel-doc translation pages (url under /translations/) are labelled English in the ground truth
    but are mostly Chinese, Italian or Japanese; retention is shown with and without them.
    """
    import pyarrow.parquet as pq

    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst")}
    urls = {}
    with input_path.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            urls[record["id"]] = record.get("url") or ""
    kept = {i for f in (output / "data").glob("*.parquet") for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}
    rejected = {
        r["id"]: r
        for f in (output / "rejected").glob("*.parquet")
        for r in pq.read_table(f, columns=["id", "reject_stage", "reject_reason", "reject_detail"]).to_pylist()
    }
    unique = [i for i in urls if i in truth and truth[i].get("dup_group") is None]

    def reached_heuristics(i: str) -> bool:
        return i in kept or (i in rejected and rejected[i]["reject_stage"] not in ("read", "normalise", "language"))

    def line(name: str, part: list[str], whole: list[str]) -> str:
        return f"{name:58s} {len(part) / max(1, len(whole)):.4f}  ({len(part)}/{len(whole)})"

    good_en = [i for i in unique if truth[i]["domain"] == "web" and truth[i]["lang"] == "en"
               and truth[i]["quality"] == "good"]
    not_translated = [i for i in good_en if "/translations/" not in urls[i]]
    junk = [i for i in unique if truth[i]["quality"] == "junk"]
    web_at_heuristics = [i for i in good_en if reached_heuristics(i)]
    junk_at_heuristics = [i for i in junk if reached_heuristics(i)]
    by_heuristics = [i for i in rejected if rejected[i]["reject_stage"] == "heuristics"]
    exact = [i for i, r in rejected.items() if r["reject_reason"] == "exact_duplicate"]
    same_group = [i for i in exact if truth[i].get("dup_group") is not None
                  and truth[i]["dup_group"] == truth[rejected[i]["reject_detail"].split("=", 1)[1]].get("dup_group")]
    return "\n".join([
        line("good English web kept, translation pages excluded", [i for i in not_translated if i in kept],
             not_translated),
        line("good English web dropped by heuristics (of those reaching it)",
             [i for i in web_at_heuristics if i in by_heuristics], web_at_heuristics),
        line("junk dropped by heuristics (of those reaching it)",
             [i for i in junk_at_heuristics if i in by_heuristics], junk_at_heuristics),
        line("exact-duplicate removals in their survivor's truth group", same_group, exact),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--scorer", type=Path, help="external curation scoring script (default: none, skipped)")
    parser.add_argument("--limit", type=int, default=None, help="first N documents (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="datatrove repeats (median reported)")
    add_datatrove_argument(parser)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("beam_args", nargs="*", help="extra Beam options after --, e.g. -- --direct_num_workers 2")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        input_path, docs, mb = write_input_sample(args.corpus, args.limit, folder)
        print(f"input: {docs} documents, {mb:.1f} MB of text")
        no_pii = run_gemmaflow(input_path, folder / "out-no-pii", args.beam_args, pii=False)
        no_pii.update(docs_per_s_per_core=docs / no_pii["cpu_s"], mb_per_s_per_core=mb / no_pii["cpu_s"])
        ours = run_gemmaflow(input_path, folder / "out", args.beam_args)
        ours.update(docs_per_s_per_core=docs / ours["cpu_s"], mb_per_s_per_core=mb / ours["cpu_s"])
        accuracy = (score(args.scorer, args.corpus, input_path, folder / "out")
                    + breakdown(args.corpus, input_path, folder / "out"))
        theirs = run_datatrove("curate-core", args.corpus, args.limit, args.repeats, args.datatrove_python)

    print("\n== throughput (per core = per CPU-second)")
    print(f"{'':12}{'docs/s/core':>14}{'MB/s/core':>12}{'CPU s':>10}{'wall s':>10}{'peak MB':>10}{'kept':>8}")
    for name, run in (("gemmaflow", ours), ("  no PII", no_pii)):
        print(f"{name:12}{run['docs_per_s_per_core']:>14.1f}{run['mb_per_s_per_core']:>12.3f}"
              f"{run['cpu_s']:>10.1f}{run['wall_s']:>10.1f}{run['peak_rss_mb']:>10.0f}{run['kept']:>8}")
    if theirs:
        print(f"{'datatrove':12}{theirs['docs_per_s_per_core']:>14.1f}{theirs['mb_per_s_per_core']:>12.3f}"
              f"{theirs['cpu_s']:>10.1f}{'':>10}{theirs['peak_rss_mb']:>10.0f}{theirs['kept']:>8}")
        for name, run in (("default chain", ours), ("without PII", no_pii)):
            print(f"ratio gemmaflow {name} / datatrove (docs/s per core): "
                  f"{run['docs_per_s_per_core'] / theirs['docs_per_s_per_core']:.2f}x")
    print("seconds inside each stage's per-document function:", ours["stage_seconds"])
    print("\n== accuracy against the corpus ground truth\n" + accuracy)
    if args.json_out:
        args.json_out.write_text(json.dumps(
            {"docs": docs, "mb": mb, "gemmaflow": ours, "gemmaflow_no_pii": no_pii, "datatrove": theirs,
             "accuracy": accuracy}, indent=2))


if __name__ == "__main__":
    main()
