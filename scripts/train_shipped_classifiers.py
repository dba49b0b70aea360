"""Build the labeled JSONL for the shipped classifiers from a corpus with ground truth, then train them.

    python scripts/train_shipped_classifiers.py --corpus CORPUS           # -> classifiers/models/
    python scripts/train_shipped_classifiers.py --corpus CORPUS --work build/classifiers --models classifiers/models

What each model learns (labels from the corpus's truth.jsonl.zst, text from docs.jsonl.zst):
- domain: every document, labelled by its true domain (web, code, math);
- quality: web documents only, `good` (real reference and documentation pages, every language) against
  `junk` (the corpus's generated junk kinds: keyword stuffing, word salad, link farms, boilerplate
  navigation, lorem ipsum, repeated lines, symbol and number dumps, cookie notices, too short,
  mojibake, truncated pages).
The split group is the truth's `source_key` (the source file), so the validation figures in each
card are on source files the model never saw; generated junk has one source for all, so each junk
document (with its duplicates, `dup_group`) is its own group. Each model is trained by the exact
`gemmaflow classifier train` command printed here and recorded in its card.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[1]
GEMMAFLOW = [sys.executable, "-m", "gemmaflow.cli"]

# Per model: the train flags beyond --data/--out. 1,500 characters keep the stage above 2,000
# documents/s per core (3,000 raise domain macro-F1 by 0.003 at half the speed). Quality's threshold
# keeps 98% of good validation pages (the target: lose at most 5%).
MODELS: dict[str, list[str]] = {
    "domain": ["--max-chars", "1500", "--epoch", "10", "--dim", "16", "--word-ngrams", "2", "--bucket", "200000"],
    "quality": ["--max-chars", "1500", "--epoch", "10", "--dim", "16", "--word-ngrams", "2", "--bucket", "200000",
                "--positive-label", "good", "--min-recall", "0.98"],
}  # fmt: skip


def zst_jsonl(path: Path) -> Iterator[dict]:
    with path.open("rb") as raw:
        for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def split_group(truth: dict) -> str:
    if truth["source_key"] == "synthetic/junk":
        return f"synthetic/junk/{truth.get('dup_group') or truth['id']}"
    return truth["source_key"]


def build_labeled(corpus: Path, work: Path) -> dict[str, Path]:
    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst")}
    work.mkdir(parents=True, exist_ok=True)
    paths = {name: work / f"{name}.jsonl" for name in MODELS}
    with paths["domain"].open("w", encoding="utf-8") as domain, paths["quality"].open("w", encoding="utf-8") as quality:
        for doc in zst_jsonl(corpus / "docs.jsonl.zst"):
            t = truth[doc["id"]]
            row = {"id": doc["id"], "text": doc["text"], "group": split_group(t)}
            domain.write(json.dumps({**row, "label": t["domain"]}, ensure_ascii=False) + "\n")
            if t["domain"] == "web":
                quality.write(json.dumps({**row, "label": t["quality"]}, ensure_ascii=False) + "\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True,
                        help="a folder with docs.jsonl.zst and its ground truth truth.jsonl.zst")
    parser.add_argument("--work", default="build/classifiers", help="where the labeled JSONL is written")
    parser.add_argument("--models", default="classifiers/models", help="where the .ftz models and cards go")
    parser.add_argument("--only", choices=sorted(MODELS), action="append", help="train only these models")
    args = parser.parse_args()
    paths = build_labeled(Path(args.corpus), Path(args.work))
    for name in args.only or MODELS:
        command = ["classifier", "train", "--data", str(paths[name]), "--out", f"{args.models}/{name}.ftz",
                   "--name", name, "--label-field", "label", "--text-field", "text", "--split-field", "group",
                   "--quantize", *MODELS[name]]  # fmt: skip
        print("gemmaflow " + shlex.join(command), flush=True)
        subprocess.run([*GEMMAFLOW, *command], cwd=REPO, check=True)


if __name__ == "__main__":
    main()
