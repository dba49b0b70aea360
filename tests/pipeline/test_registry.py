"""The stage registry: one declaration per stage builds each job's chain, stats order and accounting.

The toy stage below is the worked example of docs/adding-a-stage.md: one module's worth of code
(a config section, a DoFn with `judge`, a composite transform), one registry entry, one config
field, and nothing else edited; a curate run then counts it in stats.json like every other stage.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from gemmaflow.core.configio import ConfigError, load_yaml
from gemmaflow.pipeline.config import ClassifyConfig, CurateConfig, NearDedupeConfig, PiiConfig
from gemmaflow.pipeline.jobs.curate import curate_chain, run_curate
from gemmaflow.pipeline.jobs.sft import sft_chain
from gemmaflow.pipeline.pack_config import PrefsConfig, SftConfig
from gemmaflow.pipeline.registry import CURATE, PREFS, REGISTRY, SFT, StageRegistry, StageSpec
from gemmaflow.pipeline.stages.base import Document, DocumentStageDoFn, Verdict, stage_outputs

# ------------------------------------------------------------------ the worked example: a toy stage


@dataclass(frozen=True)
class ShoutConfig:
    """Drop documents that shout: at least `max_exclamations` exclamation marks."""

    enabled: bool = True
    max_exclamations: int = 3


class _ShoutDoFn(DocumentStageDoFn):
    def __init__(self, config: ShoutConfig) -> None:
        super().__init__("shout")
        self.config = config

    def judge(self, doc: Document) -> Verdict:
        marks = doc["text"].count("!")
        return ("too_many_exclamations", f"{marks} marks") if marks >= self.config.max_exclamations else None


class DropShouting(beam.PTransform):
    def __init__(self, config: ShoutConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        return stage_outputs(docs, "JudgeShouting", _ShoutDoFn(self.config))


@dataclass(frozen=True)
class ShoutingCurateConfig(CurateConfig):
    shout: ShoutConfig = field(default_factory=ShoutConfig)


SHOUT = StageSpec("shout", "shout", DropShouting, frozenset({CURATE}))

# ------------------------------------------------------------------------------------------ tests


def fast(config: CurateConfig) -> CurateConfig:
    """Only the cheap stages (no model loads), so the test is about the registry, not the models."""
    return dataclasses.replace(
        config, language=dataclasses.replace(config.language, enabled=False), classify=ClassifyConfig(enabled=False),
        near_dedupe=NearDedupeConfig(enabled=False), pii=PiiConfig(enabled=False),
    )


def test_a_stage_added_through_the_registry_alone_is_run_and_counted(tmp_path):
    docs = [{"id": f"calm{i}", "text": f"Document number {i} speaks in an even voice about topic {i}. " * 8}
            for i in range(6)]
    docs += [{"id": f"loud{i}", "text": f"Document {i} is exciting!!! Truly exciting! " * 8} for i in range(4)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    registry = REGISTRY.with_stage(SHOUT, after="normalise")
    config = fast(load_yaml(ShoutingCurateConfig, None, {"shout.max_exclamations": 3}))

    assert curate_chain(config, registry)[:3] == ("read", "normalise", "shout")
    stats = run_curate([str(path)], str(tmp_path / "out"), config, echo=False, progress=False, registry=registry)

    shout = next(s for s in stats["stages"] if s["stage"] == "shout")
    assert (shout["docs_in"], shout["kept"], shout["dropped"]) == (10, 6, {"too_many_exclamations": 4})
    assert stats["chain"][:3] == ["read", "normalise", "shout"]
    assert [s["stage"] for s in stats["stages"]][:3] == ["read", "normalise", "shout"]
    assert stats["accounting"]["dropped"] >= 4
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert sorted(r["id"] for r in rejected if r["reject_stage"] == "shout") == [f"loud{i}" for i in range(4)]
    assert json.loads((tmp_path / "out" / "_COMPLETE.json").read_text())["job"] == "curate"


def test_switching_the_section_off_removes_the_stage():
    registry = REGISTRY.with_stage(SHOUT, after="normalise")
    config = ShoutingCurateConfig(shout=ShoutConfig(enabled=False))
    assert "shout" not in curate_chain(config, registry)
    assert "shout" not in curate_chain(CurateConfig())  # the shipped registry is untouched


def test_chains_follow_registry_order_and_each_job_takes_its_stages():
    config = CurateConfig(pii=PiiConfig(enabled=True))
    assert curate_chain(config) == ("read", "normalise", "domain", "language", "heuristics", "classify",
                                    "exact_dedupe", "near_dedupe", "pii", "write")  # fmt: skip
    benchmarks = dataclasses.replace(config.decontamination, benchmarks=("b.jsonl",))
    assert "decontaminate" in curate_chain(dataclasses.replace(config, decontamination=benchmarks))
    # SFT: the safety classifier on the answers, exact and prompt dedupe and PII by default, decontamination
    # with benchmarks, then the mixture over sources; each stage switched off is left out.
    assert sft_chain(SftConfig()) == ("read", "classify", "exact_dedupe", "prompt_dedupe", "pii", "format",
                                      "mixture")
    assert [e.name for e in SftConfig().classify.classifiers] == ["safety"]
    sft = SftConfig(decontamination=benchmarks, pii=PiiConfig(enabled=False))
    assert sft_chain(sft) == ("read", "classify", "exact_dedupe", "prompt_dedupe", "decontaminate", "format",
                              "mixture")
    assert [s.name for s in REGISTRY.chain(SFT, sft)] == ["classify", "exact_dedupe", "prompt_dedupe",
                                                          "decontaminate"]
    assert "near_dedupe" not in sft_chain(sft) and "prompt_dedupe" not in curate_chain(config)
    # Preference pairs: the same shared stages; PII on by default (pairs are written by people).
    assert [s.name for s in REGISTRY.chain(PREFS, PrefsConfig())] == ["classify", "exact_dedupe", "pii"]


def test_registry_refuses_mistakes():
    with pytest.raises(ValueError, match="declared twice"):
        StageRegistry((SHOUT, SHOUT))
    with pytest.raises(ValueError, match="unknown job 'distill'"):
        StageSpec("x", "x", DropShouting, frozenset({"distill"}))
    with pytest.raises(ValueError, match="no stage named 'nowhere'"):
        REGISTRY.with_stage(SHOUT, after="nowhere")
    with pytest.raises(ValueError, match="needs config section 'shout', which CurateConfig lacks"):
        REGISTRY.with_stage(SHOUT, after="normalise").chain(CURATE, CurateConfig())


def missing_word_list(section: ShoutConfig) -> None:
    raise OSError("no such word list")


def test_start_of_job_checks_name_the_section():
    checked = dataclasses.replace(SHOUT, validate=missing_word_list)
    with pytest.raises(ConfigError, match=r"^shout: no such word list$"):
        REGISTRY.with_stage(checked, after="normalise").validate(CURATE, ShoutingCurateConfig())
