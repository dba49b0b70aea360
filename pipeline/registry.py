"""The stage registry: every document stage declared once, and every job's chain built from it.

A document stage is a composite `PTransform` from documents to `{kept, rejected, stats}`. Its
declaration says which section of a job's config configures it, when it is on, how to build it and
which jobs run it. From this one list come each job's chain (in registry order), the `--dry-run`
graph, the stage order in stats.json and the chain the accounting check walks. Adding a stage is
one module, one `StageSpec` in `REGISTRY` and one config section (docs/adding-a-stage.md).

Registry order is the curate order: cheap filters first, the classifiers' quality score before
near-dedupe (which can prefer the best-scored survivor), PII last, on the fewest documents. SFT's
prompt dedupe sits with near dedupe: both run on keys while the records wait in spill files.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from gemmaflow.core.configio import ConfigError
from gemmaflow.pipeline.config import ClassifyConfig
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.classify import Classify
from gemmaflow.pipeline.stages.decontaminate import Decontaminate
from gemmaflow.pipeline.stages.dedupe import ExactDedupe
from gemmaflow.pipeline.stages.domain import DetectDomain
from gemmaflow.pipeline.stages.grouping import GroupingStage, GroupOnKeys
from gemmaflow.pipeline.stages.heuristics import ApplyHeuristics
from gemmaflow.pipeline.stages.language import IdentifyLanguage
from gemmaflow.pipeline.stages.near_dedupe import NearDedupe, PromptDedupe
from gemmaflow.pipeline.stages.normalise import Normalise
from gemmaflow.pipeline.stages.pii import ScrubPii

CURATE = "curate"
SFT = "sft"
PREFS = "prefs"
JOBS = (CURATE, SFT, PREFS)


def section_enabled(section: Any) -> bool:
    """The default switch: the section's own `enabled` flag (a section without one is always on)."""
    return bool(getattr(section, "enabled", True))


@dataclass(frozen=True)
class StageSpec:
    """One document stage: its name in stats and reasons, its config section, and how to build it.

    `build` receives the job config's `section` attribute and returns the stage's transform;
    `enabled` receives the same section and says whether the job runs the stage; `validate`, if
    given, checks what the section names (model files, say) when a job starts, before any data is
    read, raising ValueError or OSError with a message for the user.
    """

    name: str
    section: str
    build: Callable[[Any], beam.PTransform]
    jobs: frozenset[str]
    enabled: Callable[[Any], bool] = section_enabled
    validate: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.jobs) - set(JOBS))
        if unknown:
            raise ValueError(f"stage {self.name}: unknown job {unknown[0]!r} (jobs: {', '.join(JOBS)})")

    @property
    def label(self) -> str:
        """The Beam step label: `near_dedupe` -> `NearDedupe` (unique, stable across runs)."""
        return self.name.title().replace("_", "")

    def section_of(self, config: Any) -> Any:
        try:
            return getattr(config, self.section)
        except AttributeError:
            raise ValueError(
                f"stage {self.name} needs config section {self.section!r}, which {type(config).__name__} lacks"
            ) from None


@dataclass(frozen=True)
class StageRegistry:
    """An ordered set of stage declarations; jobs take one (the shipped `REGISTRY` by default)."""

    stages: tuple[StageSpec, ...]

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.stages]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"stage {duplicated[0]!r} is declared twice")

    def chain(self, job: str, config: Any) -> tuple[StageSpec, ...]:
        """The stages `job` runs with `config`, in registry order."""
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r} (jobs: {', '.join(JOBS)})")
        return tuple(spec for spec in self.stages if job in spec.jobs and spec.enabled(spec.section_of(config)))

    def validate(self, job: str, config: Any) -> None:
        """Run every enabled stage's start-of-job check; raises ConfigError naming the section."""
        for spec in self.chain(job, config):
            if spec.validate is None:
                continue
            try:
                spec.validate(spec.section_of(config))
            except (ValueError, OSError) as exc:
                raise ConfigError(f"{spec.section}: {exc}") from exc

    def with_stage(self, spec: StageSpec, *, after: str) -> StageRegistry:
        """A registry with `spec` inserted after the stage named `after` (how a user adds a stage)."""
        names = [s.name for s in self.stages]
        if after not in names:
            raise ValueError(f"no stage named {after!r} to insert {spec.name!r} after")
        position = names.index(after) + 1
        return dataclasses.replace(self, stages=(*self.stages[:position], spec, *self.stages[position:]))


def _jobs(*names: str) -> frozenset[str]:
    return frozenset(names)


REGISTRY = StageRegistry((
    StageSpec("normalise", "normalise", Normalise, _jobs(CURATE)),
    StageSpec("domain", "domain", DetectDomain, _jobs(CURATE)),
    StageSpec("language", "language", IdentifyLanguage, _jobs(CURATE)),
    StageSpec("heuristics", "heuristics", ApplyHeuristics, _jobs(CURATE)),
    StageSpec("classify", "classify", Classify, _jobs(CURATE, SFT, PREFS),
              enabled=lambda section: section.enabled and bool(section.classifiers),
              validate=ClassifyConfig.validate_models),
    StageSpec("exact_dedupe", "exact_dedupe", ExactDedupe, _jobs(CURATE, SFT, PREFS)),
    StageSpec("near_dedupe", "near_dedupe", NearDedupe, _jobs(CURATE)),
    StageSpec("prompt_dedupe", "prompt_dedupe", PromptDedupe, _jobs(SFT)),
    StageSpec("decontaminate", "decontamination", Decontaminate, _jobs(CURATE, SFT),
              enabled=lambda section: bool(section.benchmarks)),
    StageSpec("pii", "pii", ScrubPii, _jobs(CURATE, SFT, PREFS)),
))  # fmt: skip


@dataclass
class ChainOutputs:
    """What a chain leaves: the documents every stage kept, and each stage's rejected and stats outputs."""

    kept: beam.PCollection
    rejected: list[beam.PCollection]
    stats: list[beam.PCollection]


def apply_chain(docs: beam.PCollection, stages: Sequence[StageSpec], config: Any, spill: str) -> ChainOutputs:
    """Run `docs` through `stages` in order, each built from its section of `config`.

    Consecutive grouping stages (exact and near dedupe) run together on the documents' keys while
    the documents wait in spill files under the folder `spill` (pipeline/stages/grouping.py).
    """
    rejected: list[beam.PCollection] = []
    stats: list[beam.PCollection] = []
    built = [(spec.label, spec.build(spec.section_of(config))) for spec in stages]
    for is_grouping, run in itertools.groupby(built, key=lambda pair: isinstance(pair[1], GroupingStage)):
        steps = list(run)
        if is_grouping:
            steps = [("GroupOnKeys" + "".join(label for label, _ in steps), GroupOnKeys(steps, spill))]  # type: ignore[arg-type]
        for label, transform in steps:
            result = docs | label >> transform
            docs = result[KEPT]
            rejected.append(result[REJECTED])
            stats.append(result[STATS])
    return ChainOutputs(docs, rejected, stats)


def chain_names(source: str, stages: Iterable[StageSpec], sink: str) -> tuple[str, ...]:
    """The accounting chain: the job's source stage, its registry stages, its sink stage."""
    return (source, *(spec.name for spec in stages), sink)
