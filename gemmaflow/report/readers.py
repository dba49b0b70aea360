"""Readers for the files a run leaves behind, one per file contract, each tolerant of what it may lack.

A run folder holds whatever the run did: `gemmaflow curate` alone writes only stats.json (and its
Parquet), the demo writes everything. A file that is absent is simply not part of the run (the
reader returns None); a file that is present but malformed raises `ReportInputError` naming the
file, so a report never silently shows half a broken run.

Contracts read here: stats.json (pipeline/stats.py, docs/record-schema.md), the curated Parquet
`signals`/`scores` columns (docs/record-schema.md), the tokenizer's validation report
(tokenizer_train), the shard manifest (docs/shard-format.md), the trainer's metrics.jsonl and the
rule-following RLHF check's rule_following.json (gemmaflow/rule_following.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemmaflow.core.shard_format import MANIFEST_FILE, Manifest, ShardFormatError
from gemmaflow.pipeline.stats import StageCounts, ordered_stages

# Where each file lives in a run folder (`gemmaflow demo`'s layout); a bare `gemmaflow curate`
# output folder has stats.json at its top.
CURATED_STATS = ("curated/stats.json", "stats.json")
TOKENIZER_CARD = "tokenizer/tokenizer_card.json"
PRETRAIN_MANIFEST = f"shards/{MANIFEST_FILE}"
SFT_MANIFEST = f"sft_shards/{MANIFEST_FILE}"
PRETRAIN_METRICS = "pretrain/metrics.jsonl"
SFT_METRICS = "sft/metrics.jsonl"
DEMO_TIMINGS = "demo.json"  # gemmaflow/demo.py: {"seconds": {step: wall seconds}}
EVAL_RESULTS = ("eval/results.json", "results.json")  # `gemmaflow eval --output`: {task: metrics}
SXS_RESULTS = ("sxs/sxs.json", "sxs.json")  # `gemmaflow sxs --output`: win rates per capability
ABLATION = ("ablation/ablation.json", "ablation.json")  # `gemmaflow ablate --output`: figures per variant
RLHF = ("rlhf/rule_following.json", "rule_following.json")  # gemmaflow/rule_following.py: the RLHF check

_STAGE_INT_FIELDS = ("docs_in", "bytes_in", "kept", "bytes_kept")
_STAGE_MAP_FIELDS = ("dropped", "dead_lettered")


class ReportInputError(ValueError):
    """A run file is present but cannot be read as its contract says; the message names the file."""


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc})") from exc


def _require(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise ReportInputError(f"{path}: {message}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------- curate


@dataclass(frozen=True)
class CurateStats:
    """stats.json: the run block, the accounting identity and every stage's counts in chain order."""

    path: Path
    run: dict[str, Any]
    accounting: dict[str, int]
    stages: list[StageCounts]
    chain_names: tuple[str, ...]  # stats.json `chain`: the job's stages in order

    @property
    def output_dir(self) -> Path:
        return self.path.parent

    @property
    def chain(self) -> list[StageCounts]:
        """The stages documents flow through in turn (what the accounting identity covers)."""
        return [s for s in self.stages if s.stage in self.chain_names]

    @property
    def side_stages(self) -> list[StageCounts]:
        """Stages off the chain, e.g. `pii_rejected`, which scrubs the rejected sink."""
        return [s for s in self.stages if s.stage not in self.chain_names]

    def stage(self, name: str) -> StageCounts | None:
        return next((s for s in self.stages if s.stage == name), None)

    def tallies(self, stage: str, prefix: str) -> dict[str, int]:
        """The stage's `extra` tallies starting with `prefix.`, keyed by the rest of the name."""
        counts = self.stage(stage)
        if counts is None:
            return {}
        start = prefix + "."
        return {key[len(start):]: n for key, n in counts.extra.items() if key.startswith(start)}


def read_stats(path: Path) -> CurateStats:
    """Parse and check stats.json; every field the report uses must be there with the right type."""
    document = _load_json(path)
    _require(isinstance(document, dict), path, "expected a JSON object with 'run', 'accounting' and 'stages'")
    stages_raw = document.get("stages")
    _require(isinstance(stages_raw, list) and bool(stages_raw), path, "'stages' must be a non-empty list")
    stages = {}
    for i, raw in enumerate(stages_raw):
        where = f"stages[{i}]"
        _require(isinstance(raw, dict) and isinstance(raw.get("stage"), str), path, f"{where} has no 'stage' name")
        where = f"stage {raw['stage']!r}"
        for name in _STAGE_INT_FIELDS:
            _require(_is_count(raw.get(name)), path, f"{where}: '{name}' must be a non-negative integer")
        for name in (*_STAGE_MAP_FIELDS, "extra"):
            value = raw.get(name, {})
            _require(isinstance(value, dict) and all(_is_count(v) for v in value.values()), path,
                     f"{where}: '{name}' must map names to non-negative integers")
        _require(_is_number(raw.get("seconds", 0.0)), path, f"{where}: 'seconds' must be a number")
        stages[raw["stage"]] = StageCounts.from_dict({"seconds": 0.0, **raw})
    accounting = document.get("accounting", {})
    _require(isinstance(accounting, dict) and all(_is_count(v) for v in accounting.values()), path,
             "'accounting' must map names to non-negative integers")
    run = document.get("run", {})
    _require(isinstance(run, dict), path, "'run' must be an object")
    chain = document.get("chain")
    _require(isinstance(chain, list) and all(isinstance(name, str) for name in chain), path,
             "'chain' must list the job's stage names")
    return CurateStats(path, run, accounting, ordered_stages(stages, chain), tuple(chain))


def find_stats(run_dir: Path) -> Path | None:
    return next((run_dir / rel for rel in CURATED_STATS if (run_dir / rel).is_file()), None)


@dataclass(frozen=True)
class ScoreColumn:
    """One classifier's scores: on documents that passed the classify stage and on those it dropped."""

    name: str
    passed: list[float]
    dropped: list[float]


def _parquet_rows(folder: Path, columns: list[str]) -> Iterable[dict[str, Any]]:
    """Rows of every Parquet file in `folder` with the named columns (a column a file lacks reads as None)."""
    import pyarrow.parquet as pq

    for file in sorted(folder.glob("*.parquet")):
        try:
            parquet = pq.ParquetFile(file)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            table = parquet.read(columns=present)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ReportInputError(f"{file}: not a readable Parquet file ({exc})") from exc
        for row in table.to_pylist():
            yield {c: row.get(c) for c in columns}


def read_classifier_scores(output_dir: Path, stage: str = "classify") -> list[ScoreColumn]:
    """Classifier scores (the `scores` map column, pipeline/classify.py) from a curate output folder.

    Kept documents (data/) and documents rejected after the stage passed it; documents rejected by
    it (rejected/, `reject_stage == stage`) did not, and carry the scores that dropped them.
    """
    passed: dict[str, list[float]] = {}
    dropped: dict[str, list[float]] = {}
    for folder in ("data", "rejected"):
        for row in _parquet_rows(output_dir / folder, ["scores", "reject_stage"]):
            target = dropped if row["reject_stage"] == stage else passed
            for name, value in dict(row["scores"] or {}).items():
                if _is_number(value):
                    target.setdefault(name, []).append(float(value))
    return [ScoreColumn(name, passed.get(name, []), dropped.get(name, [])) for name in sorted({*passed, *dropped})]


# ------------------------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True)
class TokenizerCard:
    """tokenizer_card.json (tokenizer_train/job.py): vocabulary and the held-out validation report."""

    path: Path
    vocab_size: int | None
    config_fingerprint: str
    tokens_per_word: dict[str, float]  # per domain
    bytes_per_token: dict[str, float]
    group_rows: dict[str, dict[str, Any]]  # "domain/lang" -> the report's row
    round_trip: float | None  # fraction of held-out documents that decode back exactly
    unused_share: float | None  # learned pieces never used on the held-out set
    seconds: float | None


def _numbers(rows: dict[str, Any], metric: str) -> dict[str, float]:
    return {str(name): float(row[metric]) for name, row in rows.items()
            if isinstance(row, dict) and _is_number(row.get(metric))}


def _get(document: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def read_tokenizer_card(path: Path) -> TokenizerCard:
    document = _load_json(path)
    _require(isinstance(document, dict) and str(document.get("format", "")).startswith("gemmaflow-tokenizer-card"),
             path, "not a gemmaflow tokenizer card ('format' is not 'gemmaflow-tokenizer-card/N')")
    domains = _get(document, "report", "domains")
    _require(isinstance(domains, dict), path, "'report.domains' must map each domain to its measures")
    groups = _get(document, "report", "groups")
    vocab = _get(document, "model", "vocab_size")
    round_trip = _get(document, "report", "round_trip", "rate")
    unused = _get(document, "report", "vocabulary", "unused_share")
    seconds = document.get("seconds")
    return TokenizerCard(
        path=path,
        vocab_size=vocab if _is_count(vocab) else None,
        config_fingerprint=str(document.get("config_fingerprint", "")),
        tokens_per_word=_numbers(domains, "tokens_per_word"),
        bytes_per_token=_numbers(domains, "bytes_per_token"),
        group_rows={str(k): v for k, v in groups.items() if isinstance(v, dict)} if isinstance(groups, dict) else {},
        round_trip=float(round_trip) if _is_number(round_trip) else None,
        unused_share=float(unused) if _is_number(unused) else None,
        seconds=sum(v for v in seconds.values() if _is_number(v)) if isinstance(seconds, dict) else None,
    )


def read_timings(path: Path) -> dict[str, float]:
    """Wall seconds per step of a `gemmaflow demo` run, in the order the steps ran."""
    document = _load_json(path)
    seconds = document.get("seconds") if isinstance(document, dict) else None
    _require(isinstance(seconds, dict) and all(_is_number(v) for v in seconds.values()), path,
             "'seconds' must map each step to its wall time in seconds")
    return {str(step): float(v) for step, v in seconds.items()}


def find_eval_results(run_dir: Path) -> Path | None:
    return next((run_dir / rel for rel in EVAL_RESULTS if (run_dir / rel).is_file()), None)


def read_eval_results(path: Path) -> dict[str, dict[str, Any]]:
    """results.json of `gemmaflow eval` (model/evaluate.py): task name -> its kind, n and metrics."""
    document = _load_json(path)
    _require(isinstance(document, dict) and bool(document), path, "expected an object of tasks")
    for name, metrics in document.items():
        _require(isinstance(metrics, dict) and metrics.get("kind") in ("multiple_choice", "generate", "perplexity")
                 and _is_count(metrics.get("n")), path, f"task {name!r}: needs a known 'kind' and a count 'n'")
    return document


def find_sxs_results(run_dir: Path) -> Path | None:
    return next((run_dir / rel for rel in SXS_RESULTS if (run_dir / rel).is_file()), None)


_SXS_FIELDS = ("n", "win_rate_a", "ci_low", "ci_high", "wins_a", "wins_b", "ties")


def read_sxs_results(path: Path) -> dict[str, Any]:
    """sxs.json of `gemmaflow sxs` (model/sxs.py): `overall` and `by_capability` summaries, model names, judge."""
    document = _load_json(path)
    _require(isinstance(document, dict) and isinstance(document.get("by_capability"), dict), path,
             "expected an object with 'overall' and 'by_capability'")
    for name, summary in [("overall", document.get("overall")), *document["by_capability"].items()]:
        _require(isinstance(summary, dict) and all(_is_number(summary.get(f)) for f in _SXS_FIELDS), path,
                 f"{name!r} needs {', '.join(_SXS_FIELDS)}")
    return document


def find_ablation(run_dir: Path) -> Path | None:
    return next((run_dir / rel for rel in ABLATION if (run_dir / rel).is_file()), None)


def read_ablation(path: Path) -> dict[str, Any]:
    """ablation.json of `gemmaflow ablate` (gemmaflow/ablate.py): variants with their per-metric summaries."""
    document = _load_json(path)
    variants = document.get("variants") if isinstance(document, dict) else None
    _require(isinstance(variants, dict) and bool(variants), path, "expected an object with 'variants'")
    for name, variant in variants.items():
        summary = variant.get("summary") if isinstance(variant, dict) else None
        _require(isinstance(summary, dict) and _is_number(variant.get("epochs"))
                 and all(isinstance(f, dict) and _is_number(f.get("mean")) for f in summary.values()), path,
                 f"variant {name!r} needs 'epochs' and a 'summary' of {{metric: {{mean, ci95}}}}")
    return document


def find_rlhf(run_dir: Path) -> Path | None:
    return next((run_dir / rel for rel in RLHF if (run_dir / rel).is_file()), None)


_RLHF_CURVES = {"reward": ("accuracy", "eval_accuracy"), "reinforce": ("reward", "kl", "entropy"),
                "dpo": ("accuracy", "reward_margin")}


@dataclass(frozen=True)
class RlhfRun:
    """rule_following.json (gemmaflow/rule_following.py) and, from the metrics.jsonl of the runs beside it,
    the per-step curves the report plots: {run: {metric: [(step, value)]}} (a run absent: no curves)."""

    path: Path
    document: dict[str, Any]
    curves: dict[str, dict[str, list[tuple[float, float]]]]


def read_rlhf(path: Path) -> RlhfRun:
    document = _load_json(path)
    policies = document.get("policies") if isinstance(document, dict) else None
    _require(isinstance(policies, dict) and bool(policies) and isinstance(document.get("reward_model"), dict), path,
             "expected an object with 'policies' and 'reward_model'")
    for name, policy in policies.items():
        _require(isinstance(policy, dict) and all(_is_number(policy.get(k)) for k in ("rule_share", "kl_to_sft",
                                                                                          "samples")), path,
                 f"policy {name!r} needs numeric 'rule_share', 'kl_to_sft' and 'samples'")
    curves = {run: metric_series(path.parent / run / "metrics.jsonl", keys) for run, keys in _RLHF_CURVES.items()
              if (path.parent / run / "metrics.jsonl").is_file()}
    return RlhfRun(path, document, curves)


def metric_series(path: Path, keys: Iterable[str]) -> dict[str, list[tuple[float, float]]]:
    """(step, value) of each key over a metrics.jsonl's records that hold it."""
    series: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
    for record in _metric_records(path):
        for key, points in series.items():
            if _is_number(record.get(key)):
                points.append((float(record["step"]), float(record[key])))
    return series


# ------------------------------------------------------------------------------------------- manifest


def read_manifest(path: Path) -> Manifest:
    """A shard manifest, parsed and checked by the format's own module (gemmaflow.core.shard_format)."""
    try:
        return Manifest.parse(_load_json(path), path)
    except ShardFormatError as exc:
        raise ReportInputError(str(exc)) from exc


# -------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class TrainingMetrics:
    """metrics.jsonl (model/train.py): one record per step (`loss`, `tokens_per_s`, `mfu`, `step_seconds`,
    ...) and one per evaluation (`eval_loss`), each with its `step`."""

    path: Path
    train_loss: list[tuple[float, float]]
    eval_loss: list[tuple[float, float]]
    tokens_per_s: list[float]
    mfu: list[float]
    step_seconds: float  # the steps' own time summed (evaluation and checkpoints excluded)


def _metric_records(path: Path) -> Iterable[dict[str, Any]]:
    """metrics.jsonl's records, each checked to be an object with a numeric `step`."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReportInputError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
            _require(isinstance(record, dict) and _is_number(record.get("step")), path,
                     f"line {lineno}: expected an object with a numeric 'step'")
            yield record


def read_metrics(path: Path) -> TrainingMetrics:
    train: list[tuple[float, float]] = []
    evals: list[tuple[float, float]] = []
    speed: list[float] = []
    mfu: list[float] = []
    seconds = 0.0
    for record in _metric_records(path):
        step = float(record["step"])
        if _is_number(record.get("eval_loss")):
            evals.append((step, float(record["eval_loss"])))
        if _is_number(record.get("loss")):
            train.append((step, float(record["loss"])))
        for key, values in (("tokens_per_s", speed), ("mfu", mfu)):
            if _is_number(record.get(key)):
                values.append(float(record[key]))
        seconds += float(record["step_seconds"]) if _is_number(record.get("step_seconds")) else 0.0
    _require(bool(train or evals), path, "no 'loss' or 'eval_loss' record")
    return TrainingMetrics(path, train, evals, speed, mfu, seconds)
