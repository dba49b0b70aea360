"""Each Beam job on another runner against the DirectRunner: the same input and config, the same output.

Shared by the tests of every runner the jobs support (Dask, the portable runner). The comparison
is of what a user reads: the rows of every sink (by id, not by shard: shard counts are the
runner's choice), every folder, stats.json's counts, and for pack and sft the manifest, shard
checksums included. Every input is chosen so that each stage drops something, so a grouping or
side input that a runner mistranslates changes a count.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.commands.common import sample_path
from gemmaflow.pipeline.config import ClassifyConfig, CurateConfig, PiiConfig
from gemmaflow.pipeline.jobs.beam_job import BeamJob, run_beam_job
from gemmaflow.pipeline.jobs.curate import run_curate
from gemmaflow.pipeline.jobs.pack import run_pack
from gemmaflow.pipeline.jobs.sft import run_sft
from gemmaflow.pipeline.pack_config import PackingConfig, SftConfig
from gemmaflow.pipeline.records import CURATED_SCHEMA
from gemmaflow.pipeline.run_output import COMPLETE_FILE
from tests.conftest import DATA, write_jsonl
from tests.pipeline.test_beam_job import NumbersConfig, build_numbers
from tests.pipeline.test_pack_pipeline import config as pack_config
from tests.pipeline.test_pack_pipeline import curated_corpus

SINKS = ("data", "rejected", "dead_letter")


def rows(folder: Path) -> list[str]:
    """Every row of a Parquet sink, as sorted JSON lines (the same rows, whatever the sharding)."""
    if not folder.exists():
        return []
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in pq.read_table(folder).to_pylist())


def counts(output: Path) -> dict[str, Any]:
    """stats.json without what differs by run (the run record, seconds spent)."""
    stats = json.loads((output / "stats.json").read_text())
    stages = [{k: v for k, v in stage.items() if k != "seconds"} for stage in stats["stages"]]
    return {"chain": stats["chain"], "accounting": stats["accounting"], "stages": stages}


def dropped(output: Path, stage: str) -> int:
    return next(sum(s["dropped"].values()) for s in counts(output)["stages"] if s["stage"] == stage)


def folders(output: Path) -> list[str]:
    """Every folder and top-level file: a sink that never ran or a temporary folder left behind shows here."""
    return sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_dir() or p.parent == output)


def assert_same_run(direct: Path, other: Path, runner: str) -> None:
    assert folders(direct) == folders(other)
    for sink in SINKS:
        assert rows(direct / sink) == rows(other / sink), sink
    assert counts(direct) == counts(other)
    assert json.loads((other / "stats.json").read_text())["run"]["runner"] == runner


def curate_inputs(folder: Path) -> list[str]:
    """The fixture corpus with planted near-duplicates and a contaminated page (JSONL), part of it
    again as Parquet, and the bundled WET crawl: every reader, and every curate stage drops something."""
    base = {
        record["id"]: record for record in map(json.loads, (DATA / "fixture_corpus.jsonl").read_text().splitlines()[:3])
    }
    rivers, bread = base["en-1"]["text"], base["en-2"]["text"]
    benchmark = json.loads(Path(sample_path("benchmark.jsonl")).read_text().splitlines()[0])["question"]
    planted = [
        {"id": "en-1-near-a", "text": rivers.replace("Bridges", "Stone bridges"), "url": "https://example.net/a"},
        {"id": "en-1-near-b", "text": rivers.replace("parks", "gardens"), "url": "https://example.net/b"},
        {"id": "en-2-contaminated", "text": f"{bread}\n\n{benchmark}", "url": "https://example.net/c"},
    ]
    jsonl = folder / "corpus.jsonl"
    jsonl.write_text((DATA / "fixture_corpus.jsonl").read_text() + "".join(json.dumps(r) + "\n" for r in planted))
    parquet_rows = [{"id": f"pq-{r['id']}", "text": r["text"], "domain": "web", "signals": {}} for r in base.values()]
    pq.write_table(pa.Table.from_pylist(parquet_rows, schema=CURATED_SCHEMA), folder / "part.parquet")
    return [str(jsonl), str(folder / "part.parquet"), sample_path("crawl.warc.wet.gz")]


def assert_curate_matches_direct(tmp_path: Path, beam_args: list[str], runner: str) -> None:
    """curate with every stage on (decontamination against the bundled benchmark) on both runners."""
    inputs = curate_inputs(tmp_path)
    defaults = CurateConfig()
    config = dataclasses.replace(
        defaults,
        decontamination=dataclasses.replace(defaults.decontamination, benchmarks=(sample_path("benchmark.jsonl"),)),
    )
    run_curate(inputs, str(tmp_path / "direct"), config, echo=False, progress=False)
    run_curate(inputs, str(tmp_path / "other"), config, beam_args, echo=False, progress=False)
    assert_same_run(tmp_path / "direct", tmp_path / "other", runner)
    chain = counts(tmp_path / "other")["chain"]
    assert chain == ["read", "url_dedupe", "normalise", "domain", "language", "heuristics", "classify",
                     "exact_dedupe", "near_dedupe", "decontaminate", "pii", "write"]  # fmt: skip
    for stage in ("near_dedupe", "decontaminate", "exact_dedupe", "url_dedupe", "heuristics"):
        assert dropped(tmp_path / "other", stage) > 0, stage  # each grouping and side input was exercised


def assert_pack_matches_direct(tmp_path: Path, beam_args: list[str], runner: str, tokenizer: Path) -> None:
    """pack on both runners: the same manifest, so the same shards byte for byte."""
    curated_corpus(tmp_path / "curated")
    inputs = [str(tmp_path / "curated" / "*.parquet")]
    direct = run_pack(inputs, str(tokenizer), str(tmp_path / "direct"), pack_config(), echo=False, progress=False)
    other = run_pack(inputs, str(tokenizer), str(tmp_path / "other"), pack_config(), beam_args, echo=False,
                     progress=False)  # fmt: skip
    assert direct == other  # the manifest: every shard's name, sequences, tokens and sha256
    assert direct["splits"]["train"]["shards"] and direct["splits"]["validation"]["shards"]
    assert_same_run(tmp_path / "direct", tmp_path / "other", runner)


def assert_sft_matches_direct(tmp_path: Path, beam_args: list[str], runner: str, tokenizer: Path) -> None:
    """sft with classify and PII on, every example read twice: the same manifest and counts."""
    dolly = Path(sample_path("sft_dolly.jsonl"))
    (tmp_path / "again.jsonl").write_text(dolly.read_text())  # every example twice: exact dedupe drops
    chat = [{"role": "user", "content": "Write to me at jane.doe@example.com please"},
            {"role": "assistant", "content": "I will write to you soon."}]  # fmt: skip
    chats = write_jsonl(tmp_path / "chat.jsonl", [{"id": "c1", "messages": chat}])
    inputs = [str(dolly), str(tmp_path / "again.jsonl"), str(chats)]
    config = SftConfig(packing=PackingConfig(seq_len=1024), classify=ClassifyConfig(enabled=True),
                       pii=PiiConfig(enabled=True, entities=("EMAIL_ADDRESS",)))  # fmt: skip
    direct = run_sft(inputs, str(tokenizer), str(tmp_path / "direct"), config, echo=False, progress=False)
    other = run_sft(inputs, str(tokenizer), str(tmp_path / "other"), config, beam_args, echo=False, progress=False)
    assert direct == other
    assert_same_run(tmp_path / "direct", tmp_path / "other", runner)
    assert counts(tmp_path / "other")["chain"] == ["read", "classify", "exact_dedupe", "prompt_dedupe", "pii",
                                                   "format", "mixture"]
    assert dropped(tmp_path / "other", "exact_dedupe") > 0 and dropped(tmp_path / "other", "classify") > 0


class _FailOnThreeDoFn(beam.DoFn):
    def process(self, n: int) -> Iterator[int]:
        if n == 3:
            raise ValueError("three is not allowed")
        yield n


def assert_a_failing_step_fails_the_run(tmp_path: Path, beam_args: list[str], raised: type[Exception]) -> None:
    """A step that raises fails the run with its message (in the `raised` the runner reports it as),
    and no completion marker is written."""
    out = str(tmp_path / "out")

    def build(pipeline: beam.Pipeline) -> tuple[str, ...]:
        pipeline | "Five" >> beam.Create(range(5)) | "FailOnThree" >> beam.ParDo(_FailOnThreeDoFn())
        return build_numbers(out, 4)(pipeline)

    with pytest.raises(raised, match="three is not allowed"):
        run_beam_job(BeamJob("numbers", [], out, NumbersConfig(), beam_args, echo=False, progress=False), build)
    assert not (tmp_path / "out" / COMPLETE_FILE).exists()
