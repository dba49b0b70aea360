"""Classifier config is validated before anything runs: entries when the config is built (no I/O there),
model files and labels when a job starts (the registry's start-of-job check)."""

from __future__ import annotations

import pytest
import yaml

from gemmaflow.core.configio import ConfigError
from gemmaflow.pipeline.config import ClassifierEntry, ClassifyConfig, CurateConfig, load_curate_config
from gemmaflow.pipeline.jobs.curate import curate_chain, run_curate
from gemmaflow.pipeline.registry import CURATE, REGISTRY
from tests.classifiers.synthetic import train_small


@pytest.fixture(scope="module")
def quality_path(tmp_path_factory) -> str:
    return str(train_small(tmp_path_factory.mktemp("cfg-models"), "quality", ["good", "junk"], n_per_label=60))


def write_config(tmp_path, classifiers: list[dict]) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"classify": {"enabled": True, "classifiers": classifiers}}))
    return str(path)


def load_and_start(path: str) -> None:
    """What a curate run does first: load the config (no I/O), then the stages' start-of-job checks."""
    REGISTRY.validate(CURATE, load_curate_config(path))


def test_missing_model_fails_when_the_job_starts(tmp_path):
    path = write_config(tmp_path, [{"name": "q", "model_path": str(tmp_path / "none.ftz"), "label": "good"}])
    load_curate_config(path)  # building the config reads no file
    with pytest.raises(ConfigError, match=r"classify: classifier model not found: .*none\.ftz"):
        load_and_start(path)


def test_file_that_is_not_fasttext_fails_when_the_job_starts(tmp_path):
    (tmp_path / "m.bin").write_text("hello")
    with pytest.raises(ConfigError, match="not a fastText model"):
        load_and_start(write_config(tmp_path, [{"name": "q", "model_path": str(tmp_path / "m.bin")}]))


def test_label_absent_from_the_model_is_rejected(tmp_path, quality_path):
    with pytest.raises(ConfigError, match="label 'toxic' is not in the model"):
        load_and_start(write_config(tmp_path, [{"name": "q", "model_path": quality_path, "label": "toxic",
                                                "action": "drop"}]))  # fmt: skip
    with pytest.raises(ConfigError, match="write_domain needs domain labels"):
        load_and_start(write_config(tmp_path, [{"name": "q", "model_path": quality_path, "write_domain": True}]))


def test_a_bad_model_stops_run_curate_before_it_touches_the_output(tmp_path, fixture_corpus):
    config = CurateConfig(classify=ClassifyConfig(classifiers=(ClassifierEntry("q", str(tmp_path / "gone.bin")),)))
    with pytest.raises(ConfigError, match="classifier model not found"):
        run_curate([str(fixture_corpus)], str(tmp_path / "out"), config, echo=False, progress=False)
    assert not (tmp_path / "out").exists()


def test_entry_rules(quality_path):
    with pytest.raises(ValueError, match="needs a label"):
        ClassifierEntry("q", quality_path, action="drop")
    with pytest.raises(ValueError, match="threshold"):
        ClassifierEntry("q", quality_path, threshold=1.5)
    with pytest.raises(ValueError, match="unknown domain"):
        ClassifierEntry("q", quality_path, domains=("prose",))
    with pytest.raises(ValueError, match="leave label empty"):
        ClassifierEntry("q", quality_path, label="good", write_domain=True)
    with pytest.raises(ValueError, match="used twice"):
        ClassifyConfig(classifiers=(ClassifierEntry("q", quality_path), ClassifierEntry("q", quality_path)))


def test_stage_plan_runs_classify_after_heuristics(quality_path):
    import dataclasses

    config = dataclasses.replace(CurateConfig(), classify=ClassifyConfig(
        enabled=True, classifiers=(ClassifierEntry("q", quality_path, label="good", action="keep-only"),)))  # fmt: skip
    chain = curate_chain(config)
    assert chain.index("classify") == chain.index("heuristics") + 1
    off = dataclasses.replace(config, classify=ClassifyConfig(enabled=False))
    assert "classify" not in curate_chain(off)
