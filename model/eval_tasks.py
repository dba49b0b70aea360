"""Benchmark task files: a small YAML maps a JSONL file's fields onto one of three task shapes.

Users point a task at the real file they fetched (HellaSwag, ARC, MMLU, PIQA, TruthfulQA MC,
GSM8K, held-out documents) and name its fields; nothing is renamed or copied. The shapes are those of
EleutherAI's lm-evaluation-harness:

- `multiple_choice`: a context, a list of choices and the index of the right one; scored by the
  log-likelihood of each choice after the context.
- `generate`: a prompt and a reference answer; greedy generation, cut at stop sequences, compared
  by exact match after the answer is extracted (GSM8K's "#### 42").
- `perplexity`: documents; bits per byte, overall and per group (domain).

A bare `.jsonl` given as a task uses the default field names and takes its shape from its first
record: `choices` means multiple choice, `answer` generation, `text` perplexity.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from gemmaflow.core.configio import ConfigError, from_dict, load_yaml

TaskKind = Literal["multiple_choice", "generate", "perplexity"]


class TaskFileError(ValueError):
    """A task file does not match its mapping; the message names the task, the line and the field."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: where its items are and which field holds what (field names may be dotted paths)."""

    name: str
    path: str  # JSONL, local or any fsspec URL (gs:// needs gcsfs)
    kind: TaskKind
    # The prompt: a field, or a template with {field} placeholders ("Question: {question}\nAnswer:").
    context: str = "context"
    context_template: str = ""
    # Multiple choice: a field holding a list of strings, or a list of fields (PIQA's sol1, sol2).
    choices: str | tuple[str, ...] = "choices"
    # The right choice: an index, a digit string ("2"), a letter ("C") or a one-hot list ([0, 1, 0]); with
    # `choice_labels` (a field listing each choice's key, ARC's "choices.label"), the key of the right choice.
    label: str = "label"
    choice_labels: str = ""
    # Generation: the reference, and the pattern whose first group is the answer (empty: the whole text).
    answer: str = "answer"
    answer_pattern: str = r"####\s*(-?[0-9][0-9.,]*)"
    stop: tuple[str, ...] = ("\n\n", "Question:")
    max_new_tokens: int = 64
    # Perplexity: the document text, and the field whose value groups bits per byte (absent: "all").
    text: str = "text"
    group: str = "domain"
    # k-shot prompts: examples drawn from `fewshot_path` (default: the task file, the item itself excluded).
    num_fewshot: int = 0
    fewshot_path: str = ""
    fewshot_seed: int = 1234
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    limit: int | None = None  # the first N items only

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task needs a name")
        if self.num_fewshot < 0 or self.max_new_tokens < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("num_fewshot must be >= 0, max_new_tokens and limit >= 1")
        if self.answer_pattern:
            try:
                groups = re.compile(self.answer_pattern).groups
            except re.error as exc:
                raise ValueError(f"answer_pattern {self.answer_pattern!r}: {exc}") from None
            if groups < 1:
                raise ValueError(f"answer_pattern {self.answer_pattern!r} needs a group: (...) around the answer")


@dataclass(frozen=True)
class ChoiceItem:
    index: int
    context: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class GenerateItem:
    index: int
    context: str
    reference: str  # the whole reference text (a few-shot example shows it whole)
    answer: str  # what exact match compares against


@dataclass(frozen=True)
class TextItem:
    index: int
    text: str
    group: str


Item = ChoiceItem | GenerateItem | TextItem


def load_task_spec(path: str | Path) -> TaskSpec:
    """A task YAML, or a bare JSONL with the default field names (its shape read off its first record)."""
    path = str(path)
    if path.endswith((".yaml", ".yml")):
        spec = load_yaml(TaskSpec, path)
        relative = {key: str(Path(path).parent / value) for key in ("path", "fewshot_path")
                    if (value := getattr(spec, key)) and "://" not in value and not Path(value).is_absolute()}
        return from_dict(TaskSpec, {**_as_dict(spec), **relative})  # files sit beside the YAML, as users expect
    if not path.endswith(".jsonl"):
        raise ConfigError(f"a task is a .yaml mapping or a .jsonl file, got {path}")
    first = next(records(path, 1), None)
    if first is None:
        raise TaskFileError(f"{path}: no records")
    fields = first[1]
    kind: TaskKind
    if "choices" in fields:
        kind = "multiple_choice"
    elif "answer" in fields:
        kind = "generate"
    elif "text" in fields:
        kind = "perplexity"
    else:
        raise TaskFileError(f"{path}: a bare task file needs `choices` (multiple choice), `answer` (generate) or "
                            f"`text` (perplexity); its first record has {sorted(fields)}")
    return TaskSpec(name=Path(path).stem, path=path, kind=kind)


def _as_dict(spec: TaskSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def _open(path: str) -> TextIO:
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rt", encoding="utf-8").open()
    return open(path, encoding="utf-8")


def records(path: str, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each non-blank line; a line that is not a JSON object is an error."""
    count = 0
    try:
        handle = _open(path)
    except FileNotFoundError:
        raise TaskFileError(f"task file not found: {path}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskFileError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise TaskFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record
            count += 1
            if limit is not None and count >= limit:
                return


class _Fields:
    """Reads the mapped fields of one record; every mismatch names the task, line and field."""

    def __init__(self, spec: TaskSpec, path: str, number: int, record: dict[str, Any]) -> None:
        self.spec, self.where, self.record = spec, f"task {spec.name!r} ({path}:{number})", record

    def get(self, dotted: str) -> Any:
        node: Any = self.record
        for part in dotted.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                keys = sorted(node) if isinstance(node, dict) else type(node).__name__
                raise TaskFileError(f"{self.where}: field {dotted!r} not found (record has {keys})")
        return node

    def text(self, dotted: str) -> str:
        value = self.get(dotted)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise TaskFileError(f"{self.where}: field {dotted!r} should hold text, got {type(value).__name__}")
        return value

    def context(self) -> str:
        if not self.spec.context_template:
            return self.text(self.spec.context)
        names = [name for _, name, _, _ in string.Formatter().parse(self.spec.context_template) if name]
        return self.spec.context_template.format_map({name: self.text(name) for name in names})

    def choices(self) -> tuple[str, ...]:
        mapping = self.spec.choices
        if isinstance(mapping, tuple):
            values = [self.text(name) for name in mapping]
            field = ", ".join(mapping)
        else:
            values, field = self.get(mapping), mapping
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise TaskFileError(f"{self.where}: field {field!r} should hold a list of strings")
        if len(values) < 2:
            raise TaskFileError(f"{self.where}: field {field!r} holds {len(values)} choice(s); needs at least 2")
        return tuple(values)

    def label(self, n_choices: int) -> int:
        value = self.get(self.spec.label)
        index: int | None = None
        if self.spec.choice_labels:
            keys = self.get(self.spec.choice_labels)
            if not isinstance(keys, list) or len(keys) != n_choices:
                raise TaskFileError(f"{self.where}: field {self.spec.choice_labels!r} should list one key per choice")
            index = keys.index(value) if value in keys else None
            if index is None:
                raise TaskFileError(f"{self.where}: field {self.spec.label!r} = {value!r} is none of the keys "
                                    f"{keys} in field {self.spec.choice_labels!r}")
            return index
        if isinstance(value, bool):
            index = None
        elif isinstance(value, int):
            index = value
        elif isinstance(value, str) and value.strip().isdigit():
            index = int(value)
        elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
            index = ord(value.strip().upper()) - ord("A")
        elif isinstance(value, list) and value.count(1) == 1:
            index = value.index(1)
        if index is None or not 0 <= index < n_choices:
            raise TaskFileError(f"{self.where}: field {self.spec.label!r} = {value!r} is not the index of one of "
                                f"{n_choices} choices (an integer, a digit string, a letter or a one-hot list)")
        return index


def extract_answer(text: str, pattern: str) -> str | None:
    """The first match's first group (GSM8K's strict match), normalised; the whole text when no pattern."""
    if pattern:
        match = re.search(pattern, text)
        if match is None:
            return None
        text = match.group(1)
    return normalise_answer(text)


def normalise_answer(text: str) -> str:
    """Exact match ignores surrounding space, thousands separators and a final full stop ("1,000." = "1000")."""
    text = text.strip().rstrip(".").strip()
    return text.replace(",", "") if re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", text) else text


def load_items(spec: TaskSpec, path: str | None = None, limit: int | None = None) -> list[Item]:
    """The task's items (or its few-shot file's), every mapped field checked before any scoring."""
    path = path or spec.path
    items: list[Item] = []
    for index, (number, record) in enumerate(records(path, limit)):
        fields = _Fields(spec, path, number, record)
        if spec.kind == "multiple_choice":
            choices = fields.choices()
            items.append(ChoiceItem(index, fields.context(), choices, fields.label(len(choices))))
        elif spec.kind == "generate":
            reference = fields.text(spec.answer)
            answer = extract_answer(reference, spec.answer_pattern)
            items.append(GenerateItem(index, fields.context(), reference,
                                      answer if answer is not None else normalise_answer(reference)))
        else:
            group = fields.record.get(spec.group) if spec.group else None
            items.append(TextItem(index, fields.text(spec.text), str(group) if group is not None else "all"))
    if not items:
        raise TaskFileError(f"task {spec.name!r}: {path} holds no records")
    return items


def _shown(item: Item, spec: TaskSpec) -> str:
    """A solved example as a k-shot prompt shows it: the context, the delimiter, the right answer."""
    if isinstance(item, ChoiceItem):
        return item.context + spec.target_delimiter + item.choices[item.label]
    assert isinstance(item, GenerateItem)
    return item.context + spec.target_delimiter + item.reference


def fewshot_prefixes(spec: TaskSpec, items: Sequence[Item], pool: Sequence[Item] | None) -> list[str]:
    """Per item, its k solved examples joined by the few-shot delimiter (empty for 0-shot).

    Examples come from `pool` (the train split) or, without one, from the task's own items with the item
    itself left out, as lm-evaluation-harness does. Drawn with a generator seeded by the task's seed and the
    item's index, so every run, batch size and item order gives the same prompts.
    """
    if spec.num_fewshot == 0:
        return ["" for _ in items]
    if spec.kind == "perplexity":
        raise ValueError(f"task {spec.name!r}: perplexity tasks take no few-shot examples")
    source = sorted(pool if pool is not None else items, key=lambda shot: shot.index)
    needed = spec.num_fewshot + (0 if pool is not None else 1)
    if len(source) < needed:
        raise TaskFileError(f"task {spec.name!r}: {spec.num_fewshot}-shot needs {needed} examples, found {len(source)}")
    prefixes = []
    for item in items:
        rng = random.Random(f"{spec.fewshot_seed}:{item.index}")
        drawn = rng.sample(range(len(source)), needed)
        shots = [source[i] for i in drawn if pool is not None or source[i].index != item.index][: spec.num_fewshot]
        prefixes.append("".join(_shown(shot, spec) + spec.fewshot_delimiter for shot in shots))
    return prefixes
