"""Peak memory, wall time and CPU time of the README's quick-start command as the input grows.

Runs `gemmaflow curate --input X --output Y` (default config, default runner options: what a user
types) as a child process on inputs of 1x, 2x and 4x the base size, all drawn from the front of
the corpus, so every size has the same mix of web, code, math, junk and duplicates. Memory is
sampled from /proc every 0.2 s over the whole process tree (the runner's worker processes
included): `peak_tree_mb` is the largest sum seen, `peak_process_mb` the largest single process.
CPU time is the children's rusage (every process of the tree, once it has been waited for).

    python benchmarks/curate_memory.py --corpus CORPUS                      # 1x = a quarter of it
    python benchmarks/curate_memory.py --corpus CORPUS --base-docs 2000 --json-out memory.json
    python benchmarks/curate_memory.py --corpus CORPUS -- --direct_num_workers 1   # one core

The slope (MB of peak per MB of input, 1x to 4x) says how large an input fits a machine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from side_by_side import add_corpus_argument, zst_jsonl

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


def write_input(corpus: Path, docs: int, path: Path) -> float:
    """The first `docs` records as plain JSONL; returns the file's size in MB."""
    with path.open("w", encoding="utf-8") as out:
        for record in zst_jsonl(corpus / "docs.jsonl.zst", docs):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size / 1e6


def tree_rss_mb(root: int) -> tuple[float, float]:
    """(sum, largest) resident MB over `root` and its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            statm = Path(entry.path, "statm").read_text().split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(statm[1]) * PAGE_MB
    total, largest, stack = 0.0, 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        largest = max(largest, rss.get(pid, 0.0))
        stack.extend(children.get(pid, []))
    return total, largest


def run_curate(input_path: Path, output: Path, config: Path | None, beam_args: list[str]) -> dict[str, float]:
    """One quick-start run in a child process, its process tree sampled until it exits."""
    command = [sys.executable, "-m", "gemmaflow.cli", "curate", "--input", str(input_path), "--output", str(output),
               "--quiet", *(["--config", str(config)] if config else []), *(["--", *beam_args] if beam_args else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    log = output.with_suffix(".log").open("w+")
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    peaks = {"tree": 0.0, "process": 0.0}

    def sample() -> None:
        while child.poll() is None:
            total, largest = tree_rss_mb(child.pid)
            peaks["tree"] = max(peaks["tree"], total)
            peaks["process"] = max(peaks["process"], largest)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    wall = time.perf_counter() - started
    sampler.join()
    if code != 0:
        log.seek(0)
        raise SystemExit(f"curate exited {code} on {input_path}:\n{log.read()[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats = json.loads((output / "stats.json").read_text())
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_tree_mb": round(peaks["tree"]),
            "peak_process_mb": round(peaks["process"]), "kept": stats["accounting"]["kept"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--base-docs", type=int, default=5600, help="documents at 1x (default: 5600, a quarter "
                        "of a 22,401-document corpus)")
    parser.add_argument("--scales", default="1,2,4", help="multiples of --base-docs to run (default: 1,2,4)")
    parser.add_argument("--config", type=Path, help="curate config (default: the defaults)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("beam_args", nargs="*", help="Beam options after --, passed to curate as is")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            input_path = Path(tmp, f"input-{scale}x.jsonl")
            mb = write_input(args.corpus, args.base_docs * scale, input_path)
            row = {"scale": scale, "docs": args.base_docs * scale, "input_mb": round(mb, 1),
                   **run_curate(input_path, Path(tmp, f"out-{scale}x"), args.config, args.beam_args)}
            row["docs_per_cpu_s"] = round(row["docs"] / row["cpu_s"], 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
            input_path.unlink()
    first, last = rows[0], rows[-1]
    if len(rows) > 1:
        slope = (last["peak_tree_mb"] - first["peak_tree_mb"]) / (last["input_mb"] - first["input_mb"])
        print(f"peak grows {slope:.2f} MB per MB of input; {last['scale']}x/{first['scale']}x peak ratio "
              f"{last['peak_tree_mb'] / first['peak_tree_mb']:.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
