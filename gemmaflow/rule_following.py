"""RLHF on a task whose right answer is known: preferred answers use the number format the question asks for.

The project writes its own data: questions that ask for a number in digits or in words ("Write 12 in
words.", "How do you write seven in digits?"); the preferred answer gives the number in the requested
form ("It is twelve."), the rejected one in the other form ("It is 12."). In the SFT examples half the
answers use the wrong form, so the SFT model follows the rule about half the time; a reward model
trained on the pairs, REINFORCE against it and DPO on the same pairs should each raise that share,
and the share is counted, not judged: `follows_rule` reads the answer's last word, which must be a
number word or digits as asked. (Questions that need a sum were tried first: the tiny model that fits
the time budget does not learn addition from a few thousand examples, so it wrote made-up number
words, and REINFORCE learned to produce word-like nonsense the reward model could not tell apart.)

Every step is the public function of its own command, with bundled configs: `gemmaflow tokenizer
train` (skipped when a tokenizer is given), `gemmaflow sft`, `gemmaflow prefs`, then `gemmaflow
train` four times (kind sft, reward, reinforce, dpo). The figures land in `rule_following.json`:
cleaning counts per stage for both datasets, reward-model accuracy on held-out pairs, and for the SFT,
REINFORCE and DPO policies the share of sampled answers that follow the rule on held-out questions and
their KL to the SFT policy, with wall times.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gemmaflow.core.chat import generation_prompt
from gemmaflow.core.configio import load_yaml

TEMPLATES = ("Write {x} in {form}.", "How do you write {x} in {form}?", "Give {x} in {form}.",
             "Please express {x} in {form}.")
FORMS = ("digits", "words")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_LAST_WORD = re.compile(r"([A-Za-z]+|\d+)\W*$")

RESULT_FILE = "rule_following.json"
DATA_OUTPUTS = ("sft.jsonl", "prefs.jsonl", "heldout_prefs.jsonl", "heldout.jsonl", "corpus")
OUTPUTS = ("data", "tokenizer", "sft_shards", "pref_shards", "sft", "reward", "reinforce", "dpo", RESULT_FILE)


@dataclass(frozen=True)
class RuleFollowingConfig:
    """Sizes, steps and the bundled configs each step starts from (their step counts are replaced)."""

    heldout_fraction: float = 0.2  # of the (template, number, how it is given, form) questions: never trained on
    pairs: int = 3000
    sft_examples: int = 3000
    samples_per_question: int = 4  # sampled answers per held-out question when measuring the share
    max_new_tokens: int = 12
    tokenizer: str = "tokenizer-rule.yaml"
    sft: str = "sft-rule.yaml"
    prefs: str = "prefs-rule.yaml"
    train: str = "train-rule.yaml"
    sft_steps: int = 150
    reward_steps: int = 100
    reinforce_steps: int = 200
    dpo_steps: int = 120
    policy_learning_rate: float = 1e-3  # REINFORCE and DPO (no warmup): a smaller step than SFT's
    seed: int = 0
    beam_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 < self.heldout_fraction < 1:
            raise ValueError("heldout_fraction must be in (0, 1)")
        for name in ("pairs", "sft_examples", "samples_per_question", "max_new_tokens", "sft_steps", "reward_steps",
                     "reinforce_steps", "dpo_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def load_rule_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RuleFollowingConfig:
    return load_yaml(RuleFollowingConfig, path, overrides)


# --- The task ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    text: str
    number: int
    form: str  # "digits" or "words": what the question asks for


def spelled(number: int, form: str) -> str:
    return str(number) if form == "digits" else NUMBER_WORDS[number]


def questions(config: RuleFollowingConfig) -> tuple[list[Question], list[Question]]:
    """Every (template, number, form it is given in, form asked for) question, split by a seeded shuffle into
    (training, held-out)."""
    every = [Question(t.format(x=spelled(n, given), form=form), n, form) for t in TEMPLATES
             for n in range(len(NUMBER_WORDS)) for given in FORMS for form in FORMS]
    order = np.random.default_rng([config.seed, 1]).permutation(len(every))
    held = max(1, round(len(every) * config.heldout_fraction))
    return [every[i] for i in order[held:]], [every[i] for i in order[:held]]


def answer(number: int, form: str) -> str:
    return f"It is {spelled(number, form)}."


def other(form: str) -> str:
    return FORMS[1 - FORMS.index(form)]


def follows_rule(question: str, reply: str) -> bool:
    """The reply's last word is a number in the form the question asks for (digits, or a number word)."""
    form = "words" if re.search(r"\bwords\b", question) else "digits"
    last = _LAST_WORD.search(reply.strip())
    if last is None:
        return False
    word = last.group(1)
    return word.isdigit() if form == "digits" else word.lower() in NUMBER_WORDS


def pair_records(pool: Sequence[Question], count: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """`{id, prompt, chosen, rejected}` records (UltraFeedback-binarized's string shape): the same number, in the
    requested form and in the other. Explicit ids keep the pipelines' splits and survivors the same wherever
    the files lie (without one a record's id comes from its file path)."""
    return [{"id": f"pair-{n:05d}", "prompt": q.text, "chosen": answer(q.number, q.form),
             "rejected": answer(q.number, other(q.form))}
            for n, q in enumerate(pool[i] for i in rng.integers(len(pool), size=count))]


def sft_records(pool: Sequence[Question], count: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """dolly-shaped `{id, instruction, response}` records, half of them in the form not asked for."""
    records = []
    for n, index in enumerate(rng.integers(len(pool), size=count)):
        question = pool[index]
        form = question.form if rng.random() < 0.5 else other(question.form)
        records.append({"id": f"sft-{n:05d}", "instruction": question.text, "response": answer(question.number, form),
                        "category": "numbers"})
    return records


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def write_data(folder: Path, config: RuleFollowingConfig) -> dict[str, Any]:
    """The task's files: sft.jsonl, prefs.jsonl (training questions), heldout_prefs.jsonl, heldout.jsonl, and
    corpus/ (their text as the curated Parquet `gemmaflow tokenizer train` reads)."""
    train_pool, heldout = questions(config)
    rng = np.random.default_rng(config.seed)
    heldout_pairs = [{"prompt": q.text, "chosen": answer(q.number, q.form),
                      "rejected": answer(q.number, other(q.form))} for q in heldout]
    files = {"sft": write_jsonl(folder / "sft.jsonl", sft_records(train_pool, config.sft_examples, rng)),
             "prefs": write_jsonl(folder / "prefs.jsonl", pair_records(train_pool, config.pairs, rng)),
             "heldout_prefs": write_jsonl(folder / "heldout_prefs.jsonl", heldout_pairs),
             "heldout": write_jsonl(folder / "heldout.jsonl", [{"prompt": q.text} for q in heldout])}
    _write_corpus(folder / "corpus", [files["sft"], files["prefs"]])
    return {"files": files, "training_questions": len(train_pool), "heldout_questions": [q.text for q in heldout]}


def _write_corpus(folder: Path, sources: Sequence[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" ".join(str(v) for key, v in json.loads(line).items() if key != "id")
             for source in sources for line in Path(source).read_text(encoding="utf-8").splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": [str(i) for i in range(len(texts))], "domain": ["web"] * len(texts),
                             "lang": ["en"] * len(texts), "text": texts}), folder / "part-0.parquet")


# --- Measuring ---------------------------------------------------------------------------------


def sample_answers(lm: Any, prompts: Sequence[str], samples: int, max_new_tokens: int, seed: int) -> list[list[int]]:
    """`samples` answers per prompt from the policy itself (temperature 1), as token lists (stop token kept)."""
    from gemmaflow.model.sampling import Sampler, SamplerKind

    ids = [lm.encode(generation_prompt(p)) for p in prompts for _ in range(samples)]
    longest = max(len(i) for i in ids)
    rows = lm.generate(ids, max_length=longest + max_new_tokens, sampler=Sampler(SamplerKind.RANDOM), seed=seed)
    return [row[len(prompt):] for row, prompt in zip(rows, ids, strict=True)]


def measure_policy(path: Path, reference: Any, prompts: Sequence[str], config: RuleFollowingConfig) -> dict[str, Any]:
    """Share of sampled answers that follow the rule, and the policy's KL to `reference` on those samples
    (mean over samples of log pi - log pi_ref of the answer: an unbiased estimate of KL(pi || pi_ref))."""
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.evaluate import Request, loglikelihoods

    lm = GemmaLM.from_pretrained(path)
    answers = sample_answers(lm, prompts, config.samples_per_question, config.max_new_tokens, config.seed)
    repeated = [p for p in prompts for _ in range(config.samples_per_question)]
    followed = [follows_rule(p, lm.decode(a)) for p, a in zip(repeated, answers, strict=True)]
    requests = [Request(tuple(lm.encode(generation_prompt(p))), tuple(a))
                for p, a in zip(repeated, answers, strict=True)]
    kl = np.subtract(loglikelihoods(lm, requests), loglikelihoods(reference, requests))
    return {"samples": len(followed), "rule_share": float(np.mean(followed)), "kl_to_sft": float(np.mean(kl)),
            "mean_answer_tokens": float(np.mean([len(a) for a in answers])),
            "examples": [{"prompt": p, "answer": lm.decode(a)} for p, a in zip(repeated[:8], answers[:8], strict=True)]}


def reward_accuracy(path: Path, heldout_pairs: str) -> dict[str, Any]:
    """The reward model's pairwise accuracy on held-out pairs (questions it never saw)."""
    from gemmaflow.model.reward import GemmaRewardModel

    records = [json.loads(line) for line in Path(heldout_pairs).read_text(encoding="utf-8").splitlines()]
    model = GemmaRewardModel.from_pretrained(path)
    prompts = [r["prompt"] for r in records]
    chosen = model.score(prompts, [r["chosen"] for r in records])
    rejected = model.score(prompts, [r["rejected"] for r in records])
    return {"pairs": len(records), "accuracy": float(np.mean(chosen > rejected))}


# --- The run -----------------------------------------------------------------------------------


def _stage_counts(stats_path: Path) -> dict[str, Any]:
    """Per stage of a pipeline's stats.json: in, kept and dropped (with reasons), as the report shows them."""
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    return {"accounting": stats.get("accounting"),
            "stages": [{key: stage[key] for key in ("stage", "docs_in", "kept", "dropped", "dead_lettered")}
                       for stage in stats.get("stages", [])]}


def run_rule_following(out: str | Path, config: RuleFollowingConfig, *, tokenizer: str | Path | None = None,
                       stream: TextIO | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run every step into `out` and return (and write) the figures.

    `out` is a run folder like any job's: empty, or with `overwrite` one of our earlier runs (only what that
    run wrote is deleted); the generated data is marked finished before the jobs read it, the run last.
    """
    import io

    from gemmaflow.core.configio import to_dict
    from gemmaflow.demo import bundled_config
    from gemmaflow.model.api import GemmaLM
    from gemmaflow.model.train import train
    from gemmaflow.model.train_config import load_train_config
    from gemmaflow.pipeline.jobs.prefs import run_prefs
    from gemmaflow.pipeline.jobs.sft import run_sft
    from gemmaflow.pipeline.pack_config import load_prefs_config, load_sft_config
    from gemmaflow.pipeline.run_output import prepare_output, write_completion_marker

    out = Path(out)
    prepare_output(str(out), overwrite, "rule-following", owned_names=frozenset(OUTPUTS))
    log = stream or io.StringIO()
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        result = fn()
        seconds[name] = round(time.perf_counter() - start, 2)
        print(f"rule-following: {name} done in {seconds[name]:.1f} s", file=log, flush=True)
        return result

    def generate() -> dict[str, Any]:
        prepare_output(str(out / "data"), False, "rule-following data", owned_names=frozenset(DATA_OUTPUTS))
        written = write_data(out / "data", config)
        write_completion_marker(str(out / "data"), {"job": "rule-following data", "config": to_dict(config)})
        return written

    data = timed("data", generate)
    files = data["files"]
    if tokenizer is None:
        tokenizer = timed("tokenizer", lambda: _train_tokenizer(out, bundled_config(config.tokenizer)))
    tokenizer = str(tokenizer)
    beam_args = list(config.beam_args)
    timed("sft_data", lambda: run_sft([files["sft"]], tokenizer, str(out / "sft_shards"),
                                      load_sft_config(bundled_config(config.sft)), beam_args, echo=False,
                                      progress=False))
    timed("pref_data", lambda: run_prefs([files["prefs"]], tokenizer, str(out / "pref_shards"),
                                         load_prefs_config(bundled_config(config.prefs)), beam_args, echo=False,
                                         progress=False))
    base = bundled_config(config.train)

    def fit(name: str, shards: str, overrides: dict[str, Any]) -> Path:
        train(out / shards, load_train_config(base, {"tokenizer": tokenizer, "seed": config.seed, **overrides}),
              out / name, stream=log)
        return out / name

    sft = timed("sft_train", lambda: fit("sft", "sft_shards", {"kind": "sft", "steps": config.sft_steps}))
    reward = timed("reward_train", lambda: fit("reward", "pref_shards", {
        "kind": "reward", "steps": config.reward_steps, "model.init_from": str(sft)}))
    policy = {"model.init_from": str(sft), "optimizer.learning_rate": config.policy_learning_rate,
              "optimizer.warmup_fraction": 0.0}
    reinforce = timed("reinforce_train", lambda: fit("reinforce", "pref_shards", {
        "kind": "reinforce", "steps": config.reinforce_steps, "reinforce.reward_model": str(reward),
        "reinforce.max_new_tokens": config.max_new_tokens, **policy}))
    dpo = timed("dpo_train", lambda: fit("dpo", "pref_shards", {"kind": "dpo", "steps": config.dpo_steps, **policy}))
    reference = GemmaLM.from_pretrained(sft)
    prompts = data["heldout_questions"]
    policies = timed("measure", lambda: {name: measure_policy(path, reference, prompts, config)
                                         for name, path in (("sft", sft), ("reinforce", reinforce), ("dpo", dpo))})
    document = {
        "task": "the preferred answer gives the number in the requested form (digits or words)",
        "data": {"training_questions": data["training_questions"], "heldout_questions": len(prompts),
                 "sft": _stage_counts(out / "sft_shards" / "stats.json"),
                 "prefs": _stage_counts(out / "pref_shards" / "stats.json")},
        "reward_model": {**timed("reward_eval", lambda: reward_accuracy(reward, files["heldout_prefs"])),
                         "training_eval": _last_eval(reward / "metrics.jsonl")},
        "policies": policies,
        "training": {name: _training_summary(out / name / "metrics.jsonl") for name in ("reinforce", "dpo")},
        "seconds": seconds,
    }
    document["seconds"]["total"] = round(sum(seconds.values()), 2)
    (out / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    write_completion_marker(str(out), {"job": "rule-following", "config": to_dict(config)})
    return document


def _train_tokenizer(out: Path, config_path: str) -> Path:
    """A SentencePiece model with Gemma's conventions, trained by `gemmaflow tokenizer train` on the task's text."""
    from gemmaflow.tokenizer_train.config import load_tokenizer_config
    from gemmaflow.tokenizer_train.job import train_tokenizer

    train_tokenizer(str(out / "data" / "corpus"), str(out / "tokenizer"), load_tokenizer_config(config_path))
    return out / "tokenizer" / "tokenizer.model"


def _last_eval(metrics: Path) -> dict[str, Any]:
    evals = [json.loads(line) for line in metrics.read_text().splitlines() if '"eval_loss"' in line]
    return evals[-1] if evals else {}


def _training_summary(metrics: Path) -> dict[str, Any]:
    """First and last tenth of a run's per-step metrics (mean), so the curves' ends can be quoted."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    tenth = max(1, len(steps) // 10)
    keys = [k for k in ("reward", "kl", "response_length", "entropy", "accuracy", "reward_margin", "loss")
            if k in steps[0]]
    return {"steps": len(steps), **{f"first_{k}": float(np.mean([s[k] for s in steps[:tenth]])) for k in keys},
            **{f"last_{k}": float(np.mean([s[k] for s in steps[-tenth:]])) for k in keys}}
