"""Every Beam job on the Dask runner, against a two-process dask.distributed cluster, gives the DirectRunner's output.

One cluster serves the module (its workers import the stages' libraries once). Each job runs on
both runners with the same input and config; the comparison is of what a user reads: the rows of
every sink (by id, not by shard: shard counts are the runner's choice), stats.json's counts, and for
pack and sft the manifest, shard checksums included.
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
from apache_beam.options.pipeline_options import PipelineOptions

from gemmaflow.commands.common import sample_path
from gemmaflow.pipeline.config import ClassifyConfig, CurateConfig, PiiConfig
from gemmaflow.pipeline.jobs.beam_job import BeamJob, run_beam_job
from gemmaflow.pipeline.jobs.curate import run_curate
from gemmaflow.pipeline.jobs.pack import run_pack
from gemmaflow.pipeline.jobs.runners import runner_name
from gemmaflow.pipeline.jobs.sft import run_sft
from gemmaflow.pipeline.pack_config import PackingConfig, SftConfig
from gemmaflow.pipeline.records import CURATED_SCHEMA
from gemmaflow.pipeline.run_output import COMPLETE_FILE
from tests.conftest import DATA, write_jsonl
from tests.pipeline.test_beam_job import NumbersConfig, build_numbers
from tests.pipeline.test_pack_pipeline import config as pack_config
from tests.pipeline.test_pack_pipeline import curated_corpus
from tests.pipeline.test_pack_tokenizer import tiny_tokenizer  # noqa: F401 (fixture)

distributed = pytest.importorskip("distributed")

SINKS = ("data", "rejected", "dead_letter")


@pytest.fixture(scope="module")
def dask_args() -> Iterator[list[str]]:
    """Beam options that run a job on a local cluster of two single-threaded worker processes."""
    with distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        yield ["--runner", "dask", "--dask_client_address", cluster.scheduler_address]


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


def assert_same_run(direct: Path, dask: Path) -> None:
    assert folders(direct) == folders(dask)
    for sink in SINKS:
        assert rows(direct / sink) == rows(dask / sink), sink
    assert counts(direct) == counts(dask)
    assert json.loads((dask / "stats.json").read_text())["run"]["runner"] == "DaskRunner"


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


@pytest.mark.slow
def test_curate_with_every_stage_on_dask_matches_direct(tmp_path, dask_args):
    inputs = curate_inputs(tmp_path)
    defaults = CurateConfig()
    config = dataclasses.replace(
        defaults,
        decontamination=dataclasses.replace(defaults.decontamination, benchmarks=(sample_path("benchmark.jsonl"),)),
    )
    run_curate(inputs, str(tmp_path / "direct"), config, echo=False, progress=False)
    run_curate(inputs, str(tmp_path / "dask"), config, dask_args, echo=False, progress=False)
    assert_same_run(tmp_path / "direct", tmp_path / "dask")
    chain = counts(tmp_path / "dask")["chain"]
    assert chain == ["read", "url_dedupe", "normalise", "domain", "language", "heuristics", "classify",
                     "exact_dedupe", "near_dedupe", "decontaminate", "pii", "write"]  # fmt: skip
    for stage in ("near_dedupe", "decontaminate", "exact_dedupe", "url_dedupe", "heuristics"):
        assert dropped(tmp_path / "dask", stage) > 0, stage  # each grouping and side input was exercised


@pytest.mark.slow
def test_pack_on_dask_matches_direct_shard_for_shard(tmp_path, dask_args, tiny_tokenizer):  # noqa: F811
    curated_corpus(tmp_path / "curated")
    inputs = [str(tmp_path / "curated" / "*.parquet")]
    direct = run_pack(inputs, str(tiny_tokenizer), str(tmp_path / "direct"), pack_config(), echo=False, progress=False)
    dask = run_pack(inputs, str(tiny_tokenizer), str(tmp_path / "dask"), pack_config(), dask_args, echo=False,
                    progress=False)  # fmt: skip
    assert direct == dask  # the manifest: every shard's name, sequences, tokens and sha256
    assert direct["splits"]["train"]["shards"] and direct["splits"]["validation"]["shards"]
    assert_same_run(tmp_path / "direct", tmp_path / "dask")


@pytest.mark.slow
def test_sft_on_dask_matches_direct(tmp_path, dask_args, tiny_tokenizer):  # noqa: F811
    dolly = Path(sample_path("sft_dolly.jsonl"))
    (tmp_path / "again.jsonl").write_text(dolly.read_text())  # every example twice: exact dedupe drops
    chat = [{"role": "user", "content": "Write to me at jane.doe@example.com please"},
            {"role": "assistant", "content": "I will write to you soon."}]  # fmt: skip
    chats = write_jsonl(tmp_path / "chat.jsonl", [{"id": "c1", "messages": chat}])
    inputs = [str(dolly), str(tmp_path / "again.jsonl"), str(chats)]
    config = SftConfig(packing=PackingConfig(seq_len=1024), classify=ClassifyConfig(enabled=True),
                       pii=PiiConfig(enabled=True, entities=("EMAIL_ADDRESS",)))  # fmt: skip
    direct = run_sft(inputs, str(tiny_tokenizer), str(tmp_path / "direct"), config, echo=False, progress=False)
    dask = run_sft(inputs, str(tiny_tokenizer), str(tmp_path / "dask"), config, dask_args, echo=False, progress=False)
    assert direct == dask
    assert_same_run(tmp_path / "direct", tmp_path / "dask")
    assert counts(tmp_path / "dask")["chain"] == ["read", "classify", "exact_dedupe", "pii", "format"]
    assert dropped(tmp_path / "dask", "exact_dedupe") > 0 and dropped(tmp_path / "dask", "classify") > 0


@pytest.mark.slow
def test_dask_workers_starts_a_local_cluster_when_no_address_is_given(tmp_path):
    out = str(tmp_path / "out")
    job = BeamJob("numbers", [], out, NumbersConfig(), ["--runner", "dask", "--dask-workers", "1"], echo=False)
    result = run_beam_job(job, build_numbers(out, 10))
    assert result.stats["accounting"] == {"records_read": 10, "kept": 5, "dropped": 5, "dead_lettered": 0}
    assert result.stats["run"]["runner"] == "DaskRunner"


class _FailOnThreeDoFn(beam.DoFn):
    def process(self, n: int) -> Iterator[int]:
        if n == 3:
            raise ValueError("three is not allowed")
        yield n


@pytest.mark.slow
def test_a_failing_step_fails_the_run_and_writes_no_marker(tmp_path, dask_args):
    out = str(tmp_path / "out")

    def build(pipeline: beam.Pipeline) -> tuple[str, ...]:
        pipeline | "Five" >> beam.Create(range(5)) | "FailOnThree" >> beam.ParDo(_FailOnThreeDoFn())
        return build_numbers(out, 4)(pipeline)

    with pytest.raises(ValueError, match="three is not allowed"):
        run_beam_job(BeamJob("numbers", [], out, NumbersConfig(), dask_args, echo=False, progress=False), build)
    assert not (tmp_path / "out" / COMPLETE_FILE).exists()


@pytest.mark.parametrize("name", ["dask", "DaskRunner", "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_every_dask_name_is_the_dask_runner(name):
    assert runner_name(PipelineOptions(["--runner", name])) == "DaskRunner"
    assert runner_name(PipelineOptions(["--runner", "DataflowRunner"])) == "DataflowRunner"
