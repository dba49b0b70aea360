"""Two versions of gemmaflow on the same input, in one run: same kept ids, and documents/s per core.

A refactor should change neither what `gemmaflow curate` keeps nor how fast it runs. This script
checks out `--before` (a git revision of this repository) into a temporary worktree, runs
`gemmaflow curate` from it and from `--after` (default: this checkout, uncommitted edits included)
on the same input, alternating the two for `--rounds` rounds so machine load falls on both alike,
and reports:

- whether the sorted lists of kept ids are identical (and how many differ if not);
- documents read per CPU-second (user + system time of the curate process and its workers), which
  does not depend on how many cores the machine has or what else runs on it;
- wall time and peak resident memory of each run.

    python benchmarks/curate_versions.py --before 7c08806 -- --input corpus/docs.jsonl.zst
    python benchmarks/curate_versions.py --before main --rounds 2 --json-out cmp.json -- --input 'raw/*.jsonl'

Arguments after `--` go to both `gemmaflow curate` runs (input, config, benchmarks, Beam options).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CurateRun:
    version: str
    read: int
    kept: int
    cpu_s: float
    wall_s: float
    peak_rss_mb: float

    @property
    def docs_per_cpu_s(self) -> float:
        return self.read / self.cpu_s


def checkout(revision: str, folder: Path) -> Path:
    """A detached worktree of `revision` under `folder` (removed again by `remove_checkout`)."""
    tree = folder / f"gemmaflow-{revision.replace('/', '_')}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision],
                   check=True, capture_output=True)
    return tree


def remove_checkout(tree: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)


def run_curate(version: str, source: Path, output: Path, curate_args: list[str]) -> CurateRun:
    """`gemmaflow curate` with `source` first on the import path; CPU time and peak memory from its rusage."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "gemmaflow.cli", "curate", "--output", str(output), "--overwrite", *curate_args]
    wall0 = time.perf_counter()
    process = subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, its waited-for workers included
    wall = time.perf_counter() - wall0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{version}: gemmaflow curate failed (exit {os.waitstatus_to_exitcode(status)})")
    accounting = json.loads((output / "stats.json").read_text())["accounting"]
    return CurateRun(version, accounting["records_read"], accounting["kept"], usage.ru_utime + usage.ru_stime, wall,
                     usage.ru_maxrss / 1024)


def kept_ids(output: Path) -> list[str]:
    return sorted(pq.read_table(output / "data", columns=["id"]).column("id").to_pylist())


def compare_ids(before: list[str], after: list[str]) -> dict[str, int | bool]:
    only_before, only_after = set(before) - set(after), set(after) - set(before)
    return {"identical": before == after, "kept_before": len(before), "kept_after": len(after),
            "only_before": len(only_before), "only_after": len(only_after)}


def summarise(runs: list[CurateRun]) -> dict[str, float]:
    return {
        "docs_per_cpu_s": statistics.median(run.docs_per_cpu_s for run in runs),
        "wall_s": statistics.median(run.wall_s for run in runs),
        "cpu_s": statistics.median(run.cpu_s for run in runs),
        "peak_rss_mb": max(run.peak_rss_mb for run in runs),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--after", type=Path, default=REPO, help="source tree of the new version (default: here)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each version, alternating")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv[:split])
    curate_args = argv[split + 1:]

    with tempfile.TemporaryDirectory(prefix="curate-versions-") as scratch:
        folder = Path(scratch)
        before_tree = checkout(args.before, folder)
        try:
            runs: dict[str, list[CurateRun]] = {"before": [], "after": []}
            for round_index in range(args.rounds):
                for version, tree in (("before", before_tree), ("after", args.after.resolve())):
                    run = run_curate(version, tree, folder / f"{version}-{round_index}", curate_args)
                    runs[version].append(run)
                    print(f"round {round_index + 1} {version:6s}: {run.read} read, {run.kept} kept, "
                          f"{run.cpu_s:.1f} CPU-s, {run.docs_per_cpu_s:.1f} docs/CPU-s, {run.wall_s:.1f} s wall, "
                          f"{run.peak_rss_mb:.0f} MB peak", flush=True)
            ids = compare_ids(kept_ids(folder / "before-0"), kept_ids(folder / "after-0"))
        finally:
            remove_checkout(before_tree)

    result = {"before": args.before, "curate_args": curate_args, "kept_ids": ids,
              "summary": {version: summarise(version_runs) for version, version_runs in runs.items()},
              "runs": [asdict(run) for version_runs in runs.values() for run in version_runs]}
    before, after = result["summary"]["before"], result["summary"]["after"]
    print(f"kept ids identical: {ids['identical']} ({ids['kept_before']} before, {ids['kept_after']} after, "
          f"{ids['only_before']} only before, {ids['only_after']} only after)")
    print(f"documents per CPU-second: {before['docs_per_cpu_s']:.1f} before, {after['docs_per_cpu_s']:.1f} after "
          f"({after['docs_per_cpu_s'] / before['docs_per_cpu_s'] - 1:+.1%})")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0 if ids["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
