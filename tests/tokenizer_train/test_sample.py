"""Sampling: budgets per domain, determinism, held-out separation, long lines, empty input."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmaflow.tokenizer_train.config import SampleConfig
from gemmaflow.tokenizer_train.sample import SampleError, domain_targets, parquet_files, sample_corpus, split_long_line
from tests.tokenizer_train.conftest import make_documents, write_curated

MAX_LINE = 4192


def test_domain_weights_are_met_within_two_percent_of_the_budget(curated_dir: Path, tmp_path: Path) -> None:
    budget = 300_000
    weights = {"web": 0.6, "code": 0.25, "math": 0.15}
    config = SampleConfig(byte_budget=budget, domain_weights=weights, heldout_fraction=0.05)
    sample = sample_corpus(str(curated_dir), tmp_path / "train.txt", config, MAX_LINE)
    for domain, weight in weights.items():
        taken = sample.stats["domains"][domain]["taken_bytes"]
        assert abs(taken - weight * budget) <= 0.02 * budget, (domain, taken)
    assert abs(sample.stats["bytes_taken"] - budget) <= 0.02 * budget


def test_a_domain_short_of_its_share_gives_all_it_has_and_the_rest_is_redistributed() -> None:
    targets = domain_targets({"web": 0.5, "code": 0.3, "math": 0.2}, {"web": 10_000, "code": 100, "math": 10_000}, 1000)
    assert targets["code"] == 100
    assert targets["web"] + targets["math"] == 900
    assert targets["web"] / targets["math"] == pytest.approx(0.5 / 0.2, rel=0.01)


def test_sample_is_deterministic_and_depends_on_the_seed(curated_dir: Path, tmp_path: Path) -> None:
    config = SampleConfig(byte_budget=150_000, seed=7)
    texts = [
        sample_corpus(str(curated_dir), tmp_path / f"t{i}.txt", config, MAX_LINE).train_path.read_bytes()
        for i in range(2)
    ]
    assert texts[0] == texts[1]
    other = sample_corpus(str(curated_dir), tmp_path / "t2.txt", SampleConfig(byte_budget=150_000, seed=8), MAX_LINE)
    assert other.train_path.read_bytes() != texts[0]


def test_sample_does_not_depend_on_how_the_rows_are_split_into_files(tmp_path: Path) -> None:
    rows = make_documents()
    config = SampleConfig(byte_budget=120_000)
    one = sample_corpus(str(write_curated(tmp_path / "a", rows, parts=1)), tmp_path / "a.txt", config, MAX_LINE)
    three = sample_corpus(str(write_curated(tmp_path / "b", rows, parts=3)), tmp_path / "b.txt", config, MAX_LINE)
    assert sorted(one.train_path.read_bytes().splitlines()) == sorted(three.train_path.read_bytes().splitlines())


def test_heldout_documents_never_reach_the_training_text(curated_dir: Path, tmp_path: Path) -> None:
    sample = sample_corpus(str(curated_dir), tmp_path / "train.txt", SampleConfig(heldout_fraction=0.2), MAX_LINE)
    assert sample.heldout
    train_lines = set(sample.train_path.read_text(encoding="utf-8").splitlines())
    web_heldout = [d for d in sample.heldout if d.domain == "web" and d.lang == "en"]
    assert web_heldout
    assert all(line not in train_lines for d in web_heldout for line in d.text.split("\n") if line)
    assert {d.domain for d in sample.heldout} == {"web", "code", "math"}
    assert sample.stats["heldout"]["groups"]["code/und"]["docs"] >= 1


def test_long_lines_are_split_and_counted_never_dropped(tmp_path: Path) -> None:
    rows = make_documents()[:3]
    long_line = " ".join(f"word{i}" for i in range(4000)) + " " + "x" * 9000 + "é" * 3000
    rows[0] = {**rows[0], "text": long_line}
    folder = write_curated(tmp_path / "in", rows, parts=1)
    sample = sample_corpus(str(folder), tmp_path / "train.txt", SampleConfig(heldout_fraction=0.0), 1000)
    lines = sample.train_path.read_bytes().split(b"\n")[:-1]
    assert max(len(line) for line in lines) <= 1000
    assert sample.stats["long_lines_split"] >= 1
    pieces = split_long_line(long_line.encode(), 1000)
    assert b"".join(pieces) == long_line.encode()
    assert all(p.decode("utf-8") for p in pieces)  # cut at character boundaries
    assert b"".join(lines[: len(pieces)]) == long_line.encode()


def test_empty_input_fails_with_a_clear_error(tmp_path: Path) -> None:
    folder = write_curated(tmp_path / "empty", [], parts=1)
    with pytest.raises(SampleError, match="holds no text"):
        sample_corpus(str(folder), tmp_path / "train.txt", SampleConfig(), MAX_LINE)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SampleError, match="no Parquet files"):
        parquet_files(str(tmp_path / "nothing"))


def test_only_unweighted_domains_fail_with_the_domains_found(curated_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="domains found: code, math, web"):
        sample_corpus(str(curated_dir), tmp_path / "t.txt", SampleConfig(domain_weights={"legal": 1.0}), MAX_LINE)


def test_fsspec_urls_are_read(curated_dir: Path, tmp_path: Path) -> None:
    """Non-local URLs go through fsspec (gs:// the same way); memory:// needs no network."""
    import fsspec

    memory = fsspec.filesystem("memory")
    for part in sorted((curated_dir / "data").glob("*.parquet")):
        memory.pipe(f"/curated-test/data/{part.name}", part.read_bytes())
    local = sample_corpus(str(curated_dir), tmp_path / "a.txt", SampleConfig(byte_budget=50_000), MAX_LINE)
    remote = sample_corpus("memory://curated-test", tmp_path / "b.txt", SampleConfig(byte_budget=50_000), MAX_LINE)
    assert local.train_path.read_bytes() == remote.train_path.read_bytes()
