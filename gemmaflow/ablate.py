"""`gemmaflow ablate`: which data is better, measured the way the field measures it.

FineWeb (Penedo et al., 2024, section 3) and DCLM (Li et al., 2024, section 3) compare data by
training the same small model on each variant for the same number of tokens, over several seeds,
and evaluating every model on the same held-out data and benchmarks. Here each variant is a curate
config applied to the ablation's input (or a shard folder packed elsewhere); all variants share one
tokenizer, one pack config and one train config (so one model shape and one token budget), and each
trains once per seed. Every model is scored on held-out bits per byte and the task files; each
figure is reported as the mean over seeds with a 95% Student-t interval.

Like the demo this is orchestration, not a new code path: each step calls the public function of
its own subcommand (`run_curate`, `train_tokenizer`, `run_pack`, `train`, `evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gemmaflow.core.configio import load_yaml
from gemmaflow.demo import bundled_config

RESULT_FILE = "ablation.json"
TOKENIZER = "tokenizer"
HELDOUT_TASK = "ablation_heldout"
# Two-sided 95% Student-t critical values by degrees of freedom (seeds - 1); beyond 30, the normal's.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}


class AblationInputError(ValueError):
    """The ablation config names something missing or inconsistent (found before any work)."""


@dataclass(frozen=True)
class AblationVariant:
    """One arm: a curate config applied to the ablation's input, or a shard folder packed elsewhere."""

    name: str
    curate: str = ""  # a curate config: a bundled name (configs/) or a path
    shards: str = ""  # or a `gemmaflow pack` output folder, packed with the ablation's tokenizer

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"variant name {self.name!r}: a non-empty name without '/' (it names a folder)")
        if bool(self.curate) == bool(self.shards):
            raise ValueError(f"variant {self.name!r}: give exactly one of `curate` or `shards`")


@dataclass(frozen=True)
class AblationConfig:
    variants: tuple[AblationVariant, ...]
    input: tuple[str, ...] = ()  # raw documents every curate variant reads
    heldout: str = ""  # JSONL documents {text, domain} scored as bits per byte (overall and per domain)
    tasks: tuple[str, ...] = ()  # task files for `gemmaflow eval` (`sample`: the bundled tasks)
    seeds: tuple[int, ...] = (0, 1, 2)
    train: str = "train-tiny.yaml"  # one model shape and token budget (steps x batch x seq_len) for all
    steps: int | None = None  # None: the train config's
    pack: str = "pack-ablate.yaml"
    tokenizer: str = ""  # a SentencePiece .model; empty: trained on the first curate variant's output
    tokenizer_config: str = "tokenizer-demo.yaml"
    benchmarks: tuple[str, ...] = ()  # decontamination files added to every curate variant
    eval_batch_size: int = 16
    beam_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError("an ablation needs at least two variants with distinct names")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: at least one, none repeated")
        if not self.tokenizer and not any(v.curate for v in self.variants):
            raise ValueError("with only shard-folder variants, name the `tokenizer` they were packed with")


def load_ablation_config(path: str) -> AblationConfig:
    """The YAML, with relative file paths resolved beside it (configs named bare stay bundled names)."""
    config = load_yaml(AblationConfig, path)
    here = Path(path).parent

    def near(value: str) -> str:  # beside the YAML when it is there; else as given (a bundled config name)
        if value and "://" not in value and not Path(value).is_absolute() and (here / value).exists():
            return str(here / value)
        return value

    return dataclasses.replace(
        config, input=tuple(map(near, config.input)), heldout=near(config.heldout),
        tasks=tuple(t if t == "sample" else near(t) for t in config.tasks), tokenizer=near(config.tokenizer),
        benchmarks=tuple(map(near, config.benchmarks)),
        variants=tuple(dataclasses.replace(v, curate=near(v.curate), shards=near(v.shards)) for v in config.variants))


def t_interval(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% Student-t interval (None for a single seed)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    df = len(values) - 1
    critical = _T95.get(df) or next((_T95[k] for k in sorted(_T95) if k >= df), 1.96)
    return mean, critical * float(np.std(values, ddof=1)) / math.sqrt(len(values))


def headline_metrics(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The figures an ablation compares, flattened: `task/metric` (and `heldout/bpb/<domain>`)."""
    flat: dict[str, float] = {}
    for task, metrics in results.items():
        if metrics["kind"] == "perplexity":
            flat[f"{task}/bits_per_byte"] = metrics["bits_per_byte"]
            for group, figures in metrics.get("by_group", {}).items():
                flat[f"{task}/bits_per_byte/{group}"] = figures["bits_per_byte"]
        elif metrics["kind"] == "multiple_choice":
            flat[f"{task}/acc"] = metrics["acc"]
            flat[f"{task}/acc_norm"] = metrics["acc_norm"]
        else:
            flat[f"{task}/exact_match"] = metrics["exact_match"]
    return flat


def summarise(per_seed: dict[int, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Per metric: mean over seeds and the 95% interval's half-width."""
    keys = sorted(set().union(*(m.keys() for m in per_seed.values())))
    summary = {}
    for key in keys:
        mean, half = t_interval([m[key] for m in per_seed.values() if key in m])
        summary[key] = {"mean": mean, "ci95": half}
    return summary


def check_inputs(config: AblationConfig) -> None:
    """Every file the config names exists: found now, not after an hour of training."""
    if not config.heldout and not config.tasks:
        raise AblationInputError("give `heldout` documents or `tasks` (or both): something to evaluate on")
    if any(v.curate for v in config.variants) and not config.input:
        raise AblationInputError("curate variants need `input`: the raw documents they curate")
    missing = [p for p in (*config.input, config.heldout, config.tokenizer, *config.benchmarks)
               if p and "://" not in p and not Path(p).exists()]
    missing += [v.shards for v in config.variants if v.shards and not Path(v.shards).is_dir()]
    missing += [p for p in (bundled_config(v.curate) for v in config.variants if v.curate) if not Path(p).is_file()]
    missing += [p for p in (bundled_config(config.train), bundled_config(config.pack)) if not Path(p).is_file()]
    if missing:
        raise AblationInputError(f"ablation inputs not found: {', '.join(missing)}")


def run_ablation(config: AblationConfig, out: str | Path, stream: TextIO | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Curate and pack each variant, train it once per seed, evaluate every model; returns ablation.json."""
    from gemmaflow.core.shard_format import MANIFEST_FILE
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.eval_tasks import TaskSpec, load_task_spec
    from gemmaflow.model.evaluate import evaluate
    from gemmaflow.model.train import train
    from gemmaflow.model.train_config import load_train_config
    from gemmaflow.pipeline.config import load_curate_config
    from gemmaflow.pipeline.jobs.curate import run_curate
    from gemmaflow.pipeline.jobs.pack import run_pack
    from gemmaflow.pipeline.pack_config import load_pack_config
    from gemmaflow.pipeline.run_output import prepare_output, write_completion_marker
    from gemmaflow.tokenizer_train.config import load_tokenizer_config
    from gemmaflow.tokenizer_train.job import train_tokenizer

    check_inputs(config)
    stream = stream or sys.stdout
    out = Path(out)
    names = frozenset({RESULT_FILE, TOKENIZER, *(v.name for v in config.variants)})
    prepare_output(str(out), overwrite, "ablate", owned_names=names)
    beam_args = list(config.beam_args)
    seconds: dict[str, float] = {}

    def step(name: str, fn: Any) -> Any:
        print(f"[ablate] {name} ...", file=stream, flush=True)
        began = time.perf_counter()
        result = fn()
        seconds[name] = round(time.perf_counter() - began, 1)
        print(f"[ablate] {name}: {seconds[name]:.1f} s", file=stream, flush=True)
        return result

    specs = []
    if config.heldout:
        specs.append(TaskSpec(name=HELDOUT_TASK, path=config.heldout, kind="perplexity"))
    if config.tasks:
        from gemmaflow.commands.eval import task_paths

        specs += [load_task_spec(path) for path in task_paths(list(config.tasks))]
    if len({s.name for s in specs}) != len(specs):
        raise AblationInputError(f"two evaluation tasks share a name: {sorted(s.name for s in specs)}")

    shards: dict[str, Path] = {}
    curated: dict[str, Path] = {}
    counts: dict[str, dict[str, Any]] = {}
    for variant in config.variants:
        if variant.curate:
            curate_config = load_curate_config(bundled_config(variant.curate))
            decontamination = dataclasses.replace(curate_config.decontamination, benchmarks=(
                *curate_config.decontamination.benchmarks, *config.benchmarks))
            curate_config = dataclasses.replace(curate_config, decontamination=decontamination)
            stats = step(f"{variant.name}: curate", lambda c=curate_config, v=variant: run_curate(
                list(config.input), str(out / v.name / "curated"), c, beam_args, echo=False))
            curated[variant.name] = out / variant.name / "curated" / "data"
            counts[variant.name] = {"documents_kept": stats["accounting"]["kept"],
                                    "documents_read": stats["accounting"]["records_read"]}
        else:
            shards[variant.name] = Path(variant.shards)
    tokenizer = config.tokenizer
    if not tokenizer:
        first = next(v.name for v in config.variants if v.curate)
        step(f"tokenizer (trained on {first})", lambda: train_tokenizer(
            str(curated[first]), str(out / TOKENIZER), load_tokenizer_config(bundled_config(config.tokenizer_config))))
        tokenizer = str(out / TOKENIZER / "tokenizer.model")
    pack_config = load_pack_config(bundled_config(config.pack))
    for name, data in curated.items():
        step(f"{name}: pack", lambda d=data, n=name: run_pack(
            [str(d / "*.parquet")], tokenizer, str(out / n / "shards"), pack_config, beam_args, echo=False))
        shards[name] = out / name / "shards"

    overrides: dict[str, Any] = {} if config.steps is None else {"steps": config.steps}
    base = load_train_config(bundled_config(config.train), overrides)
    manifests = {name: json.loads((folder / MANIFEST_FILE).read_text()) for name, folder in shards.items()}
    seq_lens = {m["seq_len"] for m in manifests.values()}
    if len(seq_lens) != 1:
        raise AblationInputError(f"variants pack rows of different lengths {sorted(seq_lens)}: token budgets differ")
    budget = base.steps * base.batch_size * base.grad_accum_steps * seq_lens.pop()
    variants: dict[str, Any] = {}
    for variant in config.variants:
        available = manifests[variant.name]["splits"]["train"]["non_pad_tokens"]
        per_seed: dict[int, dict[str, float]] = {}
        for seed in config.seeds:
            run_dir = out / variant.name / f"seed-{seed}"
            train_config = dataclasses.replace(base, seed=seed)
            with (out / variant.name / f"train-seed-{seed}.log").open("w") as log:
                step(f"{variant.name}: train seed {seed}",
                     lambda r=run_dir, c=train_config, v=variant, log=log: train(shards[v.name], c, r, stream=log))
            lm = GemmaLM.from_pretrained(run_dir / "final", tokenizer=tokenizer)
            results, _ = step(f"{variant.name}: evaluate seed {seed}",
                              lambda lm=lm: evaluate(lm, specs, batch_size=config.eval_batch_size))
            table = {r.name: {"kind": r.kind, **r.metrics} for r in results}
            (run_dir / "eval").mkdir(exist_ok=True)
            (run_dir / "eval" / "results.json").write_text(json.dumps(table, indent=2) + "\n")
            per_seed[seed] = headline_metrics(table)
        variants[variant.name] = {
            "source": variant.curate or variant.shards, **counts.get(variant.name, {}),
            "train_tokens_available": available, "epochs": budget / max(available, 1),
            "per_seed": {str(s): m for s, m in per_seed.items()}, "summary": summarise(per_seed),
        }
    document = {"budget_tokens": budget, "seeds": list(config.seeds), "tokenizer": tokenizer,
                "tasks": [s.name for s in specs], "variants": variants, "seconds": seconds,
                "wall_seconds": round(sum(seconds.values()), 1)}
    (out / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n")
    write_completion_marker(str(out), {"job": "ablate"})
    return document


def markdown_table(document: dict[str, Any], metrics: list[str] | None = None) -> str:
    """Variants as rows, headline metrics as columns: `mean ± half-width` over the seeds."""
    variants = document["variants"]
    keys = metrics or sorted({k for v in variants.values() for k in v["summary"] if k.count("/") == 1})
    lines = ["| variant | epochs | " + " | ".join(keys) + " |", "|---|---:|" + "---:|" * len(keys)]
    for name, variant in variants.items():
        cells = []
        for key in keys:
            figure = variant["summary"].get(key)
            if figure is None:
                cells.append("")
            else:
                cells.append(f"{figure['mean']:.4f}" + (f" ± {figure['ci95']:.4f}" if figure["ci95"] is not None
                                                         else ""))
        lines.append(f"| {name} | {variant['epochs']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
