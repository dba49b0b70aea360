"""`gemmaflow demo`: every job of the project, in order, on the bundled sample, into one run folder.

It is a tour, not a new code path: each step calls the same public function as its own subcommand
(`run_curate`, `train_tokenizer`, `run_pack`, `train`, `run_sft`, `GemmaLM.generate`, the report),
with the configs named in `configs/demo.yaml`, so what the demo shows is what users run.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from gemmaflow.commands.common import sample_path
from gemmaflow.core.chat import generation_prompt
from gemmaflow.core.configio import load_yaml

# Where each artefact lands inside the run folder; the report reads the same names.
CURATED = "curated"
TOKENIZER = "tokenizer"
SHARDS = "shards"
SFT_SHARDS = "sft_shards"
PRETRAIN = "pretrain"
SFT = "sft"
SAMPLES = "samples.md"
REPORT = "report.html"
INDEX = "INDEX.md"
TIMINGS = "demo.json"
EVAL = "eval"
ABLATION = "ablation"
RLHF = "rlhf"
DEMO_OUTPUTS = frozenset({CURATED, TOKENIZER, SHARDS, SFT_SHARDS, PRETRAIN, SFT, SAMPLES, REPORT, INDEX, TIMINGS, EVAL,
                          ABLATION, RLHF})


class DemoInputError(FileNotFoundError):
    """An input the demo config names does not exist."""


@dataclass(frozen=True)
class DemoConfig:
    """Which config each job uses (a bundled config name or a file path) and what to sample."""

    curate: str = "curate.yaml"
    tokenizer: str = "tokenizer-demo.yaml"
    pack: str = "pack-demo.yaml"
    pretrain: str = "train-tiny.yaml"
    sft: str = "sft-demo.yaml"
    sft_train: str = "train-tiny.yaml"  # with model.init_from = the pretrained model and the SFT keys below
    raw_input: str = "raw.jsonl.gz"  # bundled sample files (gemmaflow/sample) unless a path
    crawl_input: str = "crawl.warc.gz"  # a WARC crawl curated with raw_input ("" leaves it out)
    benchmark: str = "benchmark.jsonl"
    sft_input: str = "sft_dolly.jsonl"
    prompts: tuple[str, ...] = ("The Python standard library", "def main(", "Let $x$ be")
    chat_prompt: str = "What is a Python dictionary?"
    max_length: int = 64  # tokens per sample, prompt included
    pretrain_steps: int | None = None  # None: the train config's own value
    sft_steps: int = 100
    sft_learning_rate: float = 1e-3
    tasks: tuple[str, ...] = ("sample",)  # task files the pretrained model is scored on (`sample`: bundled)
    # A two-variant data ablation on raw_input: an ablation config whose input and held-out documents the
    # demo fills in (raw_input, the bundled held-out task); "" leaves the step out.
    ablation: str = "ablate-demo.yaml"
    ablation_steps: int | None = None  # None: the ablation config's
    # RLHF on a rule whose right answer is known (gemmaflow/rule_following.py): preference pairs, a reward model,
    # REINFORCE and DPO; a RuleFollowingConfig file ("" leaves the step out).
    rlhf: str = "rule-following.yaml"
    rlhf_steps: int | None = None  # None: the config's; else every training run of the step takes this many
    beam_args: tuple[str, ...] = field(default_factory=tuple)


def bundled_config(name: str) -> str:
    """A config path: `name` itself when it exists, else the file of that name in gemmaflow's configs
    (package data `gemmaflow.configs` when installed; the checkout's configs/ in an editable install)."""
    if Path(name).is_file():
        return name
    try:
        return str(resources.files("gemmaflow.configs").joinpath(name))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parents[1] / "configs" / name)


def _sample(name: str) -> str:
    """`name` itself when it is a file, else the bundled sample file of that name."""
    return name if Path(name).is_file() else sample_path(name)


class StageLines:
    """Prints `[i/n] name: what ... done in s` lines and keeps the timings for the report."""

    def __init__(self, names: list[str], stream: TextIO) -> None:
        self.names = names
        self.stream = stream
        self.seconds: dict[str, float] = {}

    def run(self, name: str, what: str, fn: Callable[[], str]) -> None:
        index = self.names.index(name) + 1
        print(f"[{index}/{len(self.names)}] {name}: {what}", file=self.stream, flush=True)
        start = time.perf_counter()
        summary = fn()
        self.seconds[name] = round(time.perf_counter() - start, 2)
        print(f"      {summary}  ({self.seconds[name]:.1f} s)", file=self.stream, flush=True)


STEPS = ["curate", "tokenizer", "pack", "pretrain", "sample", "eval", "sft", "sft-train", "chat", "rlhf", "ablate",
         "report"]


def run_demo(out: str | Path, config: DemoConfig, stream: TextIO | None = None, overwrite: bool = False) -> Path:
    """Run every step into `out` and return the path of report.html."""
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.train import train
    from gemmaflow.model.train_config import load_train_config
    from gemmaflow.pipeline.config import load_curate_config
    from gemmaflow.pipeline.jobs.curate import run_curate
    from gemmaflow.pipeline.jobs.pack import run_pack
    from gemmaflow.pipeline.jobs.sft import run_sft
    from gemmaflow.pipeline.pack_config import load_pack_config, load_sft_config
    from gemmaflow.pipeline.run_output import prepare_output
    from gemmaflow.tokenizer_train.config import load_tokenizer_config
    from gemmaflow.tokenizer_train.job import train_tokenizer

    run_dir = Path(out)
    for name in (config.raw_input, config.crawl_input, config.benchmark, config.sft_input):
        if name and not Path(_sample(name)).is_file():  # before anything is deleted or written
            raise DemoInputError(f"demo input {name} is neither a file nor a bundled sample")
    # only what an earlier demo wrote is deleted (never the folder itself: `--output .` is a checkout)
    prepare_output(str(run_dir), overwrite, "demo", owned_names=DEMO_OUTPUTS)
    stream = stream or sys.stdout
    lines = StageLines([s for s in STEPS if (s != "ablate" or config.ablation) and (s != "rlhf" or config.rlhf)],
                       stream)
    beam_args = list(config.beam_args)
    tokenizer_model = run_dir / TOKENIZER / "tokenizer.model"
    samples: dict[str, Any] = {}

    def with_benchmark(job_config: Any) -> Any:
        """A curate or sft config that also decontaminates against the demo's benchmark file."""
        decontamination = job_config.decontamination
        benchmarks = (*decontamination.benchmarks, _sample(config.benchmark))
        return dataclasses.replace(job_config, decontamination=dataclasses.replace(decontamination,
                                                                                   benchmarks=benchmarks))

    def curate() -> str:
        curate_config = with_benchmark(load_curate_config(bundled_config(config.curate)))
        inputs = [_sample(config.raw_input)] + ([_sample(config.crawl_input)] if config.crawl_input else [])
        stats = run_curate(inputs, str(run_dir / CURATED), curate_config, beam_args, echo=False)
        terms = stats["accounting"]
        read = next(stage for stage in stats["stages"] if stage["stage"] == "read")
        crawl = f" (crawl: {read['extra']['crawl.records']} records)" if "crawl.records" in read["extra"] else ""
        return f"{terms['records_read']} documents read{crawl}, {terms['kept']} kept, {terms['dropped']} dropped, " \
               f"{terms['dead_lettered']} dead-lettered"

    def tokenizer() -> str:
        tokenizer_config = load_tokenizer_config(bundled_config(config.tokenizer))
        card = train_tokenizer(str(run_dir / CURATED / "data"), str(run_dir / TOKENIZER), tokenizer_config)
        return f"{card['model']['vocab_size']:,}-piece vocabulary (demo size; the default is 256,000)"

    def pack() -> str:
        manifest = run_pack([str(run_dir / CURATED / "data" / "*.parquet")], str(tokenizer_model),
                            str(run_dir / SHARDS), load_pack_config(bundled_config(config.pack)), beam_args,
                            echo=False)
        train_split = manifest["splits"]["train"]
        return f"{train_split['sequences']} sequences of {manifest['seq_len']} tokens, " \
               f"padding {manifest['padding_fraction']:.2%}"

    def pretrain() -> str:
        overrides: dict[str, Any] = {}
        if config.pretrain_steps is not None:
            overrides["steps"] = config.pretrain_steps
        train_config = load_train_config(bundled_config(config.pretrain), overrides)
        result = train(run_dir / SHARDS, train_config, run_dir / PRETRAIN, stream=stream)
        return _train_summary(result)

    def sample() -> str:
        lm = GemmaLM.from_pretrained(run_dir / PRETRAIN / "final", tokenizer=tokenizer_model)
        texts = lm.generate(list(config.prompts), max_length=config.max_length)
        samples["pretrain"] = dict(zip(config.prompts, texts, strict=True))
        return f"{len(texts)} continuations written to {SAMPLES}"

    def evaluate_tasks() -> str:
        from gemmaflow.commands.eval import task_paths
        from gemmaflow.model.eval_tasks import load_task_spec
        from gemmaflow.model.evaluate import evaluate

        lm = GemmaLM.from_pretrained(run_dir / PRETRAIN / "final", tokenizer=tokenizer_model)
        results, _ = evaluate(lm, [load_task_spec(path) for path in task_paths(list(config.tasks))])
        (run_dir / EVAL).mkdir()
        table = {r.name: {"kind": r.kind, **r.metrics} for r in results}
        (run_dir / EVAL / "results.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
        return f"{len(results)} tasks scored into {EVAL}/results.json"

    def ablate() -> str:
        from gemmaflow.ablate import load_ablation_config, run_ablation

        ablation = load_ablation_config(bundled_config(config.ablation))
        changes: dict[str, Any] = {"input": (_sample(config.raw_input),), "beam_args": tuple(beam_args),
                                   "heldout": sample_path("tasks/heldout.jsonl")}
        if config.ablation_steps is not None:
            changes["steps"] = config.ablation_steps
        document = run_ablation(dataclasses.replace(ablation, **changes), run_dir / ABLATION,
                                stream=io.StringIO())  # its own step lines stay inside this demo step
        bpb = {name: v["summary"]["ablation_heldout/bits_per_byte"]["mean"] for name, v in document["variants"].items()}
        return f"{len(bpb)} variants x {len(document['seeds'])} seeds; held-out bits per byte " + ", ".join(
            f"{name} {value:.3f}" for name, value in bpb.items())

    def sft() -> str:
        manifest = run_sft([_sample(config.sft_input)], str(tokenizer_model), str(run_dir / SFT_SHARDS),
                           with_benchmark(load_sft_config(bundled_config(config.sft))), beam_args, echo=False)
        train_split = manifest["splits"]["train"]
        return f"{train_split['sequences']} SFT sequences, {train_split['loss_tokens']} answer tokens in the loss"

    def sft_train() -> str:
        overrides: dict[str, Any] = {"model.init_from": str(run_dir / PRETRAIN / "final"), "kind": "sft",
                                     "steps": config.sft_steps, "optimizer.learning_rate": config.sft_learning_rate,
                                     "eval_every": 0, "checkpoint_every": config.sft_steps}
        train_config = load_train_config(bundled_config(config.sft_train), overrides)
        result = train(run_dir / SFT_SHARDS, train_config, run_dir / SFT, stream=stream)
        return _train_summary(result)

    def chat() -> str:
        lm = GemmaLM.from_pretrained(run_dir / SFT / "final", tokenizer=tokenizer_model)
        prompt = lm.encode(generation_prompt(config.chat_prompt))
        answer = lm.generate([prompt], max_length=len(prompt) + config.max_length)[0][len(prompt):]
        samples["chat"] = {config.chat_prompt: lm.decode(answer)}
        return f"chat answer written to {SAMPLES}"

    def rlhf() -> str:
        from gemmaflow.rule_following import load_rule_config, run_rule_following

        changes: dict[str, Any] = {"beam_args": tuple(beam_args)}
        if config.rlhf_steps is not None:
            changes.update({name: config.rlhf_steps for name in ("sft_steps", "reward_steps", "reinforce_steps",
                                                                 "dpo_steps")})
        result = run_rule_following(run_dir / RLHF, load_rule_config(bundled_config(config.rlhf), changes))
        share = {name: policy["rule_share"] for name, policy in result["policies"].items()}
        kl = {name: policy["kl_to_sft"] for name, policy in result["policies"].items()}
        return (f"reward model: {result['reward_model']['accuracy']:.2f} held-out pairwise accuracy; answers "
                f"following the rule: SFT {share['sft']:.0%}, REINFORCE {share['reinforce']:.0%} (KL "
                f"{kl['reinforce']:.2f}), DPO {share['dpo']:.0%} (KL {kl['dpo']:.2f})")

    def report() -> str:
        from gemmaflow.report.build import write_report

        (run_dir / TIMINGS).write_text(json.dumps({"seconds": lines.seconds}, indent=2) + "\n", encoding="utf-8")
        write_report(run_dir, run_dir / REPORT)
        return f"{REPORT} written"

    lines.run("curate", "WARC extraction, normalise, language, heuristics, dedupe, decontaminate, PII, classifiers",
              curate)
    lines.run("tokenizer", "SentencePiece BPE with Gemma's special tokens", tokenizer)
    lines.run("pack", "tokenize and pack with the demo mixture weights", pack)
    lines.run("pretrain", "a small Gemma on the packed shards", pretrain)
    lines.run("sample", "greedy continuations from the pretrained model", sample)
    lines.run("eval", "the bundled benchmark-shaped tasks, scored as lm-evaluation-harness scores them",
              evaluate_tasks)
    lines.run("sft", "dolly-format instructions, cleaned like curate (safety, dedupe, decontaminate, PII) -> Gemma "
              "chat turns with loss masks", sft)
    lines.run("sft-train", "fine-tune the pretrained model on the SFT shards", sft_train)
    lines.run("chat", "ask the fine-tuned model a question", chat)
    if config.rlhf:
        lines.run("rlhf", "preference pairs whose preferred answer follows a checkable rule -> a reward model, "
                  "REINFORCE and DPO; the rule-following share before and after", rlhf)
    if config.ablation:
        lines.run("ablate", "raw vs curated: the same model trained on each, two seeds, then evaluated", ablate)
    (run_dir / SAMPLES).write_text(_samples_markdown(samples), encoding="utf-8")
    lines.run("report", "plots of every stage", report)
    (run_dir / INDEX).write_text(_index(lines.seconds), encoding="utf-8")
    print(f"done in {sum(lines.seconds.values()):.0f} s: open {run_dir / REPORT}; {run_dir / INDEX} lists "
          "every artefact", file=stream)
    return run_dir / REPORT


def _train_summary(result: Any) -> str:
    parts = [f"{result.step} steps, final train loss {result.loss:.3f}"]
    if result.eval_loss is not None:
        parts.append(f"validation loss {result.eval_loss:.3f}")
    return ", ".join(parts)


def _samples_markdown(samples: dict[str, Any]) -> str:
    lines = ["# Samples", "", "Greedy decoding; a model this small on this little text mostly echoes its data.", ""]
    for title, key in (("Pretrained model: continuations", "pretrain"), ("Fine-tuned model: chat", "chat")):
        lines += [f"## {title}", ""]
        for prompt, text in samples.get(key, {}).items():
            lines += [f"**Prompt:** `{prompt}`", "", "```", text, "```", ""]
    return "\n".join(lines)


def _index(seconds: dict[str, float]) -> str:
    rows = [
        (REPORT, "the run report: plots of every stage (open in a browser; no network needed)"),
        (SAMPLES, "text sampled from the pretrained and the fine-tuned model"),
        (f"{CURATED}/data/", "curated Parquet (docs/record-schema.md)"),
        (f"{CURATED}/rejected/", "every dropped document with its stage and reason"),
        (f"{CURATED}/dead_letter/", "unreadable input records with the reason"),
        (f"{CURATED}/stats.json", "per-stage counts, drop reasons and timings"),
        (f"{TOKENIZER}/tokenizer.model", "the SentencePiece model; tokenizer_card.json: settings and validation"),
        (f"{SHARDS}/", "packed pretraining shards and manifest.json (docs/shard-format.md)"),
        (f"{SFT_SHARDS}/", "packed SFT shards with answer-only loss masks"),
        (f"{PRETRAIN}/", "pretraining checkpoints, metrics.jsonl and the final model (final/)"),
        (f"{SFT}/", "fine-tuning checkpoints, metrics.jsonl and the final model (final/)"),
        (f"{EVAL}/results.json", "the pretrained model's scores on the bundled tasks (gemmaflow eval)"),
        (f"{ABLATION}/ablation.json", "raw vs curated: each trained over two seeds and evaluated (gemmaflow ablate)"),
        (f"{RLHF}/rule_following.json", "RLHF check: reward-model accuracy, rule-following share and KL of the SFT, "
                                        "REINFORCE and DPO policies; their runs beside it"),
        (TIMINGS, "seconds per demo step"),
    ]
    table = "\n".join(f"| `{path}` | {what} |" for path, what in rows)
    timing = "\n".join(f"| {name} | {s:.1f} |" for name, s in seconds.items())
    return (f"# gemmaflow demo run\n\n| path | what |\n|---|---|\n{table}\n\n"
            f"## Seconds per step\n\n| step | seconds |\n|---|---:|\n{timing}\n")


def load_demo_config(path: str | None) -> DemoConfig:
    return load_yaml(DemoConfig, bundled_config(path or "demo.yaml"))
