"""The whole curate pipeline on small corpora: exact expected counts, bad input, runners, determinism."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gemmaflow.pipeline.config import CurateConfig, NearDedupeConfig, OutputConfig, ReadConfig
from gemmaflow.pipeline.jobs.curate import run_curate
from gemmaflow.pipeline.run_output import OutputExistsError
from gemmaflow.pipeline.stages.read import InputNotFoundError
from tests.conftest import write_jsonl
from tests.pipeline.test_stages_beam import ENGLISH


def read_rows(folder: Path) -> list[dict]:
    files = sorted(folder.glob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_fixture_corpus_exact_counts(fixture_corpus, tmp_path):
    out = tmp_path / "out"
    stats = run_curate([str(fixture_corpus)], str(out), CurateConfig(), echo=False)
    assert stats["accounting"] == {"records_read": 15, "kept": 6, "dropped": 6, "dead_lettered": 3}
    by_stage = {s["stage"]: s for s in stats["stages"]}
    assert by_stage["read"]["dead_lettered"] == {"invalid_json": 1, "missing_text": 1, "text_not_string": 1}
    assert by_stage["language"]["dropped"] == {"not_allowed_language": 3}
    assert by_stage["exact_dedupe"]["dropped"] == {"exact_duplicate": 1}
    assert sum(by_stage["heuristics"]["dropped"].values()) == 2
    kept = {row["id"]: row for row in read_rows(out / "data")}
    assert set(kept) == {"en-1", "en-2", "en-3", "en-4", "code-1", "math-1"}
    assert kept["code-1"]["domain"] == "code" and kept["code-1"]["lang"] is None
    assert kept["math-1"]["domain"] == "math"
    assert kept["en-1"]["lang"] == "en" and kept["en-1"]["lang_score"] > 0.65
    assert dict(kept["en-1"]["signals"])  # the heuristics recorded their signals
    rejected = {row["id"]: row for row in read_rows(out / "rejected")}
    assert rejected["en-2-copy"]["reject_reason"] == "exact_duplicate"
    assert rejected["en-2-copy"]["reject_detail"] == "survivor=en-2"
    assert {rejected[i]["reject_reason"] for i in ("de-1", "fr-1", "junk-lorem")} == {"not_allowed_language"}
    dead = read_rows(out / "dead_letter")
    assert sorted((d["reason"], d["position"]) for d in dead) == [
        ("invalid_json", 3), ("missing_text", 6), ("text_not_string", 8)
    ]
    assert json.loads((out / "stats.json").read_text())["accounting"]["kept"] == 6
    schema = pq.read_schema(next((out / "data").glob("*.parquet")))
    assert {"id", "text", "domain", "lang", "lang_score", "signals", "provenance"} <= set(schema.names)


def _fixture_text(doc_id: str) -> str:
    from tests.conftest import DATA

    for line in (DATA / "fixture_corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.startswith('{"id": "' + doc_id + '"'):
            return json.loads(line)["text"]
    raise KeyError(doc_id)


def _bad_input_files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "malformed": write_jsonl(folder / "malformed.jsonl", ['{"id": "m1", "text": ', '{"id": "m2", "text": "ok"}']),
        "wrong_type": write_jsonl(folder / "wrong_type.jsonl", [{"id": "w1", "text": ["a"]}, {"id": "w2", "text": {}}]),
        "empty_text": write_jsonl(folder / "empty_text.jsonl", [{"id": "e1", "text": ""}, {"id": "e2", "text": "   "}]),
        "nul": write_jsonl(
            folder / "nul.jsonl", [{"id": "n1", "text": "\x00" * 5}, {"id": "n2", "text": ENGLISH + "\x00"}]
        ),
        "empty_file": folder / "empty.jsonl",
    }
    files["empty_file"].write_bytes(b"")
    files["invalid_utf8"] = folder / "invalid_utf8.jsonl"
    prose = _fixture_text("en-3").replace("\n", "\\n").encode()
    files["invalid_utf8"].write_bytes(b'{"id": "u1", "text": "' + prose + b' caf\xe9."}\n')
    files["huge"] = folder / "huge.jsonl"
    files["huge"].write_text(json.dumps({"id": "h1", "text": "word " * 10_000_000}) + "\n")  # 50 MB
    files["bad_parquet"] = folder / "broken.parquet"
    files["bad_parquet"].write_bytes(b"PAR1 this is not a parquet file")
    files["parquet"] = folder / "good.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "p1", "text": ENGLISH + " Parquet."}, {"id": "p2", "text": None}]),
                   files["parquet"])
    files["gz"] = folder / "docs.jsonl.gz"
    files["gz"].write_bytes(gzip.compress(json.dumps({"id": "g1", "text": ENGLISH + " Gzip."}).encode() + b"\n"))
    files["zst"] = folder / "docs.jsonl.zst"
    files["zst"].write_bytes(zstandard.ZstdCompressor().compress(
        json.dumps({"id": "z1", "text": ENGLISH + " Zstandard."}).encode() + b"\n"))
    return files


@dataclass
class BadInputRun:
    stats: dict
    kept: dict[str, dict]
    rejected: dict[str, tuple[str, str]]
    dead: dict[str, list[str]]  # file name -> reasons


@pytest.fixture(scope="module")
def bad_input_run(tmp_path_factory) -> BadInputRun:
    """One pipeline run over every kind of bad input; each test below checks one kind."""
    folder = tmp_path_factory.mktemp("bad")
    _bad_input_files(folder / "in")
    out = folder / "out"
    # Several records carry the same English text plus a suffix: near-dedupe would rightly keep one.
    config = CurateConfig(near_dedupe=NearDedupeConfig(enabled=False))
    stats = run_curate([str(folder / "in" / "*")], str(out), config, echo=False)
    dead: dict[str, list[str]] = {}
    for row in read_rows(out / "dead_letter"):
        dead.setdefault(Path(row["file"]).name, []).append(row["reason"])
    return BadInputRun(
        stats=stats,
        kept={row["id"]: row for row in read_rows(out / "data")},
        rejected={row["id"]: (row["reject_stage"], row["reject_reason"]) for row in read_rows(out / "rejected")},
        dead=dead,
    )


def test_bad_input_every_record_accounted_for(bad_input_run):
    terms = bad_input_run.stats["accounting"]
    # 2 malformed + 2 wrong type + 2 empty + 2 NUL + 0 (empty file) + 1 invalid UTF-8 + 1 huge
    # + 1 unreadable Parquet (one dead letter for the file) + 2 Parquet rows + 1 gzip + 1 zstd
    assert terms["records_read"] == 15
    assert terms["records_read"] == terms["kept"] + terms["dropped"] + terms["dead_lettered"]
    assert len(bad_input_run.kept) + len(bad_input_run.rejected) + sum(map(len, bad_input_run.dead.values())) == 15


def test_malformed_json_line_is_dead_lettered(bad_input_run):
    assert bad_input_run.dead["malformed.jsonl"] == ["invalid_json"]
    assert bad_input_run.rejected["m2"][0] in {"language", "heuristics"}  # the valid line still went through


def test_text_not_a_string_is_dead_lettered(bad_input_run):
    assert bad_input_run.dead["wrong_type.jsonl"] == ["text_not_string", "text_not_string"]


def test_empty_text_is_dropped_with_reason(bad_input_run):
    assert bad_input_run.rejected["e1"] == bad_input_run.rejected["e2"] == ("normalise", "empty_text")


def test_nul_bytes_are_stripped(bad_input_run):
    assert bad_input_run.rejected["n1"] == ("normalise", "empty_text")
    assert "\x00" not in bad_input_run.kept["n2"]["text"]


def test_invalid_utf8_is_replaced_and_counted(bad_input_run):
    assert "\ufffd" in bad_input_run.kept["u1"]["text"]
    stages = {s["stage"]: s for s in bad_input_run.stats["stages"]}
    assert stages["normalise"]["extra"]["invalid_utf8_replaced"] == 1


def test_50_mb_document_is_dead_lettered_with_a_preview_only(bad_input_run):
    assert bad_input_run.dead["huge.jsonl"] == ["document_too_large"]
    assert "h1" not in bad_input_run.rejected and "h1" not in bad_input_run.kept


def test_lines_are_read_with_bounded_memory():
    import io

    from gemmaflow.pipeline.stages.read import OversizedLine, bounded_lines

    data = b'{"a": 1}\n' + b"x" * 5000 + b"\n" + b"tail without newline"
    lines = list(bounded_lines(io.BytesIO(data), 100))
    assert lines[0] == b'{"a": 1}\n' and lines[2] == b"tail without newline"
    assert lines[1] == OversizedLine(b"x" * 100, 5001)
    assert list(bounded_lines(io.BytesIO(b"y" * 300), 100)) == [OversizedLine(b"y" * 100, 300)]


def test_empty_file_contributes_nothing(bad_input_run):
    assert "empty.jsonl" not in bad_input_run.dead
    assert bad_input_run.stats["run"]["files"] == 11


def test_unreadable_parquet_is_one_dead_letter(bad_input_run):
    assert bad_input_run.dead["broken.parquet"] == ["unreadable_file"]


def test_parquet_gzip_and_zstd_inputs_are_read(bad_input_run):
    assert bad_input_run.dead["good.parquet"] == ["missing_text"]
    assert {"p1", "g1", "z1"} <= set(bad_input_run.kept)


def test_glob_matching_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"matched no files: .*nothing-\*\.jsonl"):
        run_curate([str(tmp_path / "nothing-*.jsonl")], str(tmp_path / "out"), CurateConfig(), echo=False)


def test_refuses_to_mix_runs_without_overwrite(fixture_corpus, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "part-old.parquet").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        run_curate([str(fixture_corpus)], str(out), CurateConfig(), echo=False)


def _sorted_rows(folder: Path) -> list[dict]:
    return sorted(read_rows(folder), key=lambda r: r["id"])


def _counts(stats: dict) -> list[tuple]:
    return [(s["stage"], s["docs_in"], s["kept"], s["dropped"]) for s in stats["stages"]]


def _without_fingerprint(folder: Path) -> list[dict]:
    rows = read_rows(folder)
    for row in rows:
        (row.get("provenance") or {}).pop("config_fingerprint", None)
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


@pytest.mark.slow
def test_multi_process_runner_reading_in_ranges_gives_the_same_output(fixture_corpus, tmp_path):
    single = run_curate([str(fixture_corpus)], str(tmp_path / "a"), CurateConfig(), echo=False)
    # The 10 kB file read in ranges of about 1 kB by two worker processes.
    split = CurateConfig(read=ReadConfig(split_bytes=1024))
    multi = run_curate(
        [str(fixture_corpus)], str(tmp_path / "b"), split,
        ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"], echo=False,
    )
    assert fixture_corpus.stat().st_size > 8 * 1024
    assert single["accounting"] == multi["accounting"] and _counts(single) == _counts(multi)
    for sink in ("data", "rejected", "dead_letter"):  # the same rows but for the config they cite
        assert _without_fingerprint(tmp_path / "a" / sink) == _without_fingerprint(tmp_path / "b" / sink)
    assert not (tmp_path / "a" / "_spill").exists() and not (tmp_path / "b" / "_spill").exists()


def test_same_input_same_output(fixture_corpus, tmp_path):
    run_curate([str(fixture_corpus)], str(tmp_path / "a"), CurateConfig(), echo=False)
    run_curate([str(fixture_corpus)], str(tmp_path / "a"), CurateConfig(), overwrite=True, echo=False)
    run_curate([str(fixture_corpus)], str(tmp_path / "b"), CurateConfig(), echo=False)
    assert _sorted_rows(tmp_path / "a" / "data") == _sorted_rows(tmp_path / "b" / "data")
    assert _sorted_rows(tmp_path / "a" / "rejected") == _sorted_rows(tmp_path / "b" / "rejected")


def test_lone_surrogates_are_repaired_not_fatal(tmp_path):
    """Valid JSON may escape a lone surrogate; UTF-8 cannot hold one, and it used to stop the run in Beam's coder."""
    text = "A page about herons with a broken character \\ud800 in the middle of an otherwise fine sentence."
    lines = ['{"id": "s1", "text": "' + text + '", "meta": {"k\\udfff": "v\\ud83d"}}']
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    stats = run_curate([str(path)], str(tmp_path / "out"), CurateConfig(), echo=False)
    assert stats["accounting"]["records_read"] == 1 and stats["accounting"]["dead_lettered"] == 0
    rows = read_rows(tmp_path / "out" / "data") + read_rows(tmp_path / "out" / "rejected")
    [row] = rows
    assert "\ufffd" in row["text"] and dict(row["signals"])["read.surrogates_replaced"] == 3.0
    assert json.loads(row["meta"]) == {"k\ufffd": "v\ufffd"}


def test_row_group_size_is_rows_per_row_group(fixture_corpus, tmp_path):
    # Beam's Parquet sink otherwise buffers 64 MB per open file before its first row group.
    run_curate([str(fixture_corpus)], str(tmp_path / "o"), CurateConfig(output=OutputConfig(row_group_size=2)),
               echo=False)
    sizes = [
        [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        for meta in (pq.ParquetFile(f).metadata for f in (tmp_path / "o" / "data").glob("*.parquet"))
    ]
    assert sizes and all(all(n <= 2 for n in groups) and sum(groups) > 2 for groups in sizes)
