"""The near-dedupe and decontaminate stages on DirectRunner: planted duplicates and contamination, known answers."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gemmaflow.cli import EXIT_USER_ERROR, main
from gemmaflow.pipeline.config import CurateConfig, DecontaminationConfig, NearDedupeConfig
from gemmaflow.pipeline.jobs.curate import curate_chain, run_curate
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.decontaminate import Decontaminate
from gemmaflow.pipeline.stages.near_dedupe import NearDedupe
from gemmaflow.pipeline.stats import merge_parts
from tests.conftest import write_jsonl
from tests.pipeline.test_minhash import edited, prose
from tests.pipeline.test_stages_beam import ENGLISH, doc, ids

QUESTION = (
    "Fill in the blank: the scheduler ____ on individual tasks and strives to provide fair processor time "
    "to each runnable task in the system."
)


def text(words: list[str]) -> str:
    return " ".join(words)


def planted_corpus() -> list[dict]:
    """Known answers: cluster {a-copy1, a-copy2, a-orig}, a 26-link chain c00~...~c25, everything else unique."""
    original = prose(1, 600)
    header = prose(2, 400)
    docs = [
        doc("a-orig", text(original)),
        doc("a-copy1", text(edited(original, 18, seed=1))),  # 3% of words changed
        doc("a-copy2", text(prose(3, 30) + edited(original, 12, seed=2)) + "\n\nRelated posts"),  # header added
        doc("hn-1", text(header + prose(4, 600))),  # hard negatives: a long shared header, different bodies
        doc("hn-2", text(header + prose(5, 600))),
        doc("unique", text(prose(6, 500))),
        doc("code-1", "def f(x):\n    return x + 1\n" * 3, "code"),
        doc("punctuation", "!!! ... ???"),
        doc("one-word", "hello"),
        doc("other-word", "world"),
    ]
    link = prose(7, 400)
    for i in range(26):  # each link is about 0.7 similar to its neighbours, far less to the far end
        docs.append(doc(f"c{i:02d}", text(link)))
        link = edited(link, 12, seed=100 + i)
    return docs


def merged_stats(stats: beam.PCollection) -> beam.PCollection:
    return stats | "Parts" >> beam.combiners.ToList() | "Merge" >> beam.Map(lambda p: merge_parts(p)["near_dedupe"])


def test_planted_near_duplicates_and_chain_come_out_as_known_clusters(tmp_path):
    chain_ids = [f"c{i:02d}" for i in range(26)]
    expected_rejected = [("a-copy2", "cluster=a-copy1 survivor=a-copy1 size=3"),
                         ("a-orig", "cluster=a-copy1 survivor=a-copy1 size=3")]
    expected_rejected += [(c, "cluster=c00 survivor=c00 size=26") for c in chain_ids[1:]]
    with TestPipeline() as p:
        stage = NearDedupe(NearDedupeConfig(components_rounds=5)).on_documents(str(tmp_path))
        out = p | beam.Create(planted_corpus()) | stage
        assert_that(ids(out[KEPT], "Ids"), equal_to(
            ["a-copy1", "hn-1", "hn-2", "unique", "code-1", "punctuation", "one-word", "other-word", "c00"]
        ), label="Kept")
        assert_that(out[REJECTED] | beam.Map(lambda r: (r["id"], r["reject_detail"])),
                    equal_to(expected_rejected), label="Rejected")
        assert_that(out[REJECTED] | "Why" >> beam.Map(lambda r: (r["reject_stage"], r["reject_reason"])),
                    equal_to([("near_dedupe", "near_duplicate")] * 27), label="Reasons")
        assert_that(out[KEPT] | beam.Filter(lambda d: "near_dedupe.cluster_size" in d["signals"])
                    | beam.Map(lambda d: (d["id"], d["signals"]["near_dedupe.cluster_size"])),
                    equal_to([("a-copy1", 3.0), ("c00", 26.0)]), label="SurvivorSignals")
        totals = merged_stats(out[STATS]) | beam.Map(lambda c: (
            c.docs_in, c.kept, c.dropped, {k: v for k, v in c.extra.items() if k.startswith(("cluster", "no_", "comp"))}
        ))
        assert_that(totals, equal_to([(36, 9, {"near_duplicate": 27},
                                       {"clusters": 2, "cluster_size.3-4": 1, "cluster_size.17-32": 1,
                                        "no_words": 1})]), label="Stats")


@pytest.mark.slow
def test_unsettled_components_remove_fewer_documents_never_a_survivor(tmp_path):
    link, docs = prose(9, 300), []
    for i in range(26):
        docs.append(doc(f"c{i:02d}", text(link)))
        link = edited(link, 10, seed=200 + i)
    with TestPipeline() as p:
        out = p | beam.Create(docs) | NearDedupe(NearDedupeConfig(components_rounds=1)).on_documents(str(tmp_path))
        kept = beam.pvalue.AsList(ids(out[KEPT], "Ids"))
        survivors = out[REJECTED] | beam.Map(lambda r: r["reject_detail"].split("survivor=")[1].split()[0])
        assert_that(survivors | beam.Map(lambda s, k: s in k, kept) | beam.Distinct(), equal_to([True]),
                    label="SurvivorsKept")
        tallies = ("components.unsettled", "components.unsettled_clusters_kept")
        unsettled = merged_stats(out[STATS]) | beam.Map(lambda c: (c.kept > 1, *(c.extra[t] > 0 for t in tallies)))
        assert_that(unsettled, equal_to([(True, True, True)]), label="Unsettled")


def test_highest_signal_survives_and_oversized_buckets_become_stars(tmp_path):
    body = prose(8, 300)
    docs = [doc(f"d{i}", text(edited(body, i, seed=i))) for i in range(5)]
    for i, d in enumerate(docs):
        d["signals"]["quality"] = [0.2, 0.9, 0.5, float("nan"), 0.9][i]
    config = NearDedupeConfig(
        survivor="highest_signal", survivor_signal="quality", max_bucket_size=2, components_rounds=2
    )
    with TestPipeline() as p:
        out = p | beam.Create(docs) | NearDedupe(config).on_documents(str(tmp_path))
        assert_that(ids(out[KEPT], "Ids"), equal_to(["d1"]), label="Kept")  # 0.9, tie with d4 broken by id
        assert_that(out[REJECTED] | beam.Map(lambda r: r["reject_detail"]),
                    equal_to(["cluster=d0 survivor=d1 size=5"] * 4), label="Detail")
        assert_that(merged_stats(out[STATS]) | beam.Map(lambda c: c.extra["oversized_buckets"] > 0),
                    equal_to([True]), label="Oversized")


def _benchmark(tmp_path) -> str:
    rows = [{"id": "q1", "question": QUESTION, "answer": "operates"}, {"id": "q2", "text": ENGLISH}, "", {"no": 1}]
    return str(write_jsonl(tmp_path / "sched_bench.jsonl", rows))


def test_decontaminate_drops_matches_naming_the_item(tmp_path):
    docs = [
        doc("exact", f"Revision notes.\nQ: {QUESTION}\nA: operates"),
        doc("edited", QUESTION.upper().replace("individual", "single").replace(":", " -")),
        doc("clean", "The river flows past the old mill and under the stone bridge every day of the year."),
        doc("empty", ""),
    ]
    config = DecontaminationConfig(benchmarks=(_benchmark(tmp_path),))
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Decontaminate(config)
        assert_that(ids(out[KEPT], "Ids"), equal_to(["clean", "empty"]), label="Kept")
        why = out[REJECTED] | beam.Map(lambda r: (r["id"], r["reject_reason"], r["reject_detail"].split(" ngrams")[0]))
        expected = [(i, "benchmark_contamination", "benchmark=sched_bench item=q1") for i in ("exact", "edited")]
        assert_that(why, equal_to(expected), label="Why")
        assert_that(out[STATS] | beam.combiners.ToList() | beam.Map(lambda p: merge_parts(p)["decontaminate"].extra),
                    equal_to([{"contaminated.sched_bench": 2}]), label="PerBenchmark")


def test_decontaminate_redacts_when_configured(tmp_path):
    docs = [doc("mixed", f"Intro text here.\n{QUESTION} operates\nOutro text here."), doc("only", QUESTION)]
    config = DecontaminationConfig(benchmarks=(_benchmark(tmp_path),), action="redact", redaction_marker="[x]")
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Decontaminate(config)
        assert_that(out[KEPT] | beam.Map(lambda d: (d["id"], d["text"])),
                    equal_to([("mixed", "Intro text here.\n[x]\nOutro text here.")]), label="Redacted")
        assert_that(ids(out[REJECTED], "Dropped"), equal_to(["only"]), label="NothingLeft")


@pytest.mark.slow
def test_curate_wires_both_stages_and_the_counts_add_up(fixture_corpus, tmp_path):
    lines = fixture_corpus.read_text(encoding="utf-8").splitlines()
    en1 = json.loads(next(line for line in lines if line.startswith('{"id": "en-1"')))["text"]
    words = en1.split(" ")
    words[10], words[40] = "cities", "water"
    extra = [{"id": "en-1-near", "text": " ".join(words)},
             {"id": "en-quiz", "text": f"{ENGLISH}\n\nQuiz time. {QUESTION} Answer: operates."}]
    corpus = write_jsonl(tmp_path / "in.jsonl", [*lines, *extra])
    config = CurateConfig(decontamination=DecontaminationConfig(benchmarks=(_benchmark(tmp_path),)))
    assert curate_chain(config)[-5:] == ("exact_dedupe", "near_dedupe", "decontaminate", "pii", "write")
    stats = run_curate([str(corpus)], str(tmp_path / "out"), config, echo=False)
    by_stage = {s["stage"]: s for s in stats["stages"]}
    assert by_stage["near_dedupe"]["dropped"] == {"near_duplicate": 1}
    assert by_stage["near_dedupe"]["extra"]["cluster_size.2"] == 1
    assert by_stage["decontaminate"]["dropped"] == {"benchmark_contamination": 1}
    assert by_stage["decontaminate"]["docs_in"] == by_stage["near_dedupe"]["kept"]
    terms = stats["accounting"]
    assert terms["records_read"] == terms["kept"] + terms["dropped"] + terms["dead_lettered"]


def test_cli_benchmark_option_adds_the_stage_and_a_bad_glob_is_a_user_error(fixture_corpus, tmp_path, capsys):
    bench = _benchmark(tmp_path)
    assert main(["curate", "--output", str(tmp_path / "dry"), "--dry-run", "--benchmark", bench]) == 0
    assert "-> near_dedupe -> decontaminate -> pii -> write" in capsys.readouterr().out
    missing = str(tmp_path / "nothing-*.jsonl")
    code = main(["curate", "--input", str(fixture_corpus), "--output", str(tmp_path / "o"), "--benchmark", missing])
    assert code == EXIT_USER_ERROR
    assert f"decontamination.benchmarks: input pattern matched no files: {missing}" in capsys.readouterr().err
