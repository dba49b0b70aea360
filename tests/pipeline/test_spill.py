"""Spill files and the read-back step: exact round trips, and a document never lost or doubled silently."""

from __future__ import annotations

import math
import pickle

import pytest
from apache_beam.pvalue import TaggedOutput

from gemmaflow.pipeline.config import NearDedupeConfig
from gemmaflow.pipeline.spill import SpillWriter, delete_spill, read_spill, spill_path
from gemmaflow.pipeline.stages.base import REJECTED
from gemmaflow.pipeline.stages.dedupe import ExactDedupe
from gemmaflow.pipeline.stages.grouping import KeyedDoc, Removal, _ReadBackDoFn, _SpillDoFn
from gemmaflow.pipeline.stages.near_dedupe import NearDedupe


def _doc(i: int) -> dict:
    return {
        "id": f"d{i}",
        "text": "é" * i,
        "signals": {"nan": math.nan, "n": float(i)},
        "turns": [["user", "q"], ["model", "a"]],
        "provenance": {"file": "f", "position": i},
    }


def _spill(folder: str, docs: list[dict]) -> str:
    writer = SpillWriter(folder)
    rows = [writer.write(doc) for doc in docs]
    writer.close()
    assert rows == list(range(len(docs)))
    return writer.spill_id


def test_a_spill_file_gives_back_exactly_what_was_written(tmp_path):
    docs = [_doc(i) for i in range(50)]
    spill_id = _spill(str(tmp_path), docs)
    back = list(read_spill(str(tmp_path), spill_id))
    assert [d["id"] for d in back] == [d["id"] for d in docs]
    assert back[7]["text"] == "é" * 7 and math.isnan(back[7]["signals"]["nan"]) and back[7]["turns"] == docs[7]["turns"]


def test_a_cut_spill_file_is_an_error_not_a_short_read(tmp_path):
    spill_id = _spill(str(tmp_path), [_doc(i) for i in range(20)])
    path = spill_path(str(tmp_path), spill_id)
    with open(path, "rb") as fh:
        data = fh.read()
    import zstandard

    raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 24)
    with open(path, "wb") as fh:
        fh.write(zstandard.ZstdCompressor().compress(raw[: len(raw) - 5]))
    with pytest.raises(OSError, match="ends inside a record"):
        list(read_spill(str(tmp_path), spill_id))


def test_spill_files_have_fresh_names_and_the_folder_is_deleted_whole(tmp_path):
    folder = tmp_path / "_spill"
    ids = {_spill(str(folder), [_doc(1)]) for _ in range(3)}
    assert len(ids) == 3 and len(list(folder.iterdir())) == 3
    delete_spill(str(folder))
    assert not folder.exists()
    delete_spill(str(folder))  # absent is fine


def _read_back(folder: str, spill_id: str, outcomes: list) -> list:
    return list(_ReadBackDoFn(folder).process((spill_id, outcomes)))


def test_read_back_routes_each_row_by_its_outcome(tmp_path):
    spill_id = _spill(str(tmp_path), [_doc(i) for i in range(3)])
    out = _read_back(
        str(tmp_path),
        spill_id,
        [
            (2, {"near_dedupe.cluster_size": 2.0}),
            (0, Removal(spill_id, 0, "exact_dedupe", "exact_duplicate", "survivor=d9")),
            (1, {}),
        ],
    )
    rejected = [item.value for item in out if isinstance(item, TaggedOutput)]
    kept = [item for item in out if not isinstance(item, TaggedOutput)]
    assert all(item.tag == REJECTED for item in out if isinstance(item, TaggedOutput))
    assert [(r["id"], r["reject_stage"], r["reject_detail"]) for r in rejected] == [
        ("d0", "exact_dedupe", "survivor=d9")
    ]
    assert [d["id"] for d in kept] == ["d1", "d2"] and kept[1]["signals"]["near_dedupe.cluster_size"] == 2.0


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ([(0, {}), (1, {})], "got no outcome"),  # row 2 undecided: it would be lost
        ([(0, {}), (1, {}), (2, {}), (1, {})], "decided twice"),  # it would be doubled
        ([(0, {}), (1, {}), (2, {}), (3, {})], "does not hold"),
    ],
)
def test_read_back_refuses_a_row_without_exactly_one_outcome(tmp_path, outcomes, message):
    spill_id = _spill(str(tmp_path), [_doc(i) for i in range(3)])
    with pytest.raises(RuntimeError, match=message):
        _read_back(str(tmp_path), spill_id, outcomes)


def test_what_the_grouping_stages_shuffle_holds_keys_not_texts(tmp_path):
    # The point of spilling: a 35 kB document reaches the runner's shuffle as its keys, under 2 kB
    # (a 256-value MinHash signature is 1 kB of them).
    spill = _SpillDoFn(str(tmp_path), [ExactDedupe(), NearDedupe(NearDedupeConfig())], rows_per_file=2)
    spill.start_bundle()
    docs = [
        {"id": f"d{i}", "text": f"word{i} " * 5000, "domain": "web", "signals": {}, "provenance": {}} for i in range(3)
    ]
    keyed = [k for doc in docs for k in spill.process(doc)]
    stats = list(spill.finish_bundle())
    assert all(isinstance(k, KeyedDoc) and len(pickle.dumps(k)) < 2000 for k in keyed)
    assert [(k.spill_id == keyed[0].spill_id, k.row) for k in keyed] == [(True, 0), (True, 1), (False, 0)]
    assert len(list(tmp_path.iterdir())) == 2  # a new file every rows_per_file documents
    assert sorted(s.value.value.stage for s in stats) == ["exact_dedupe", "near_dedupe"]  # tagged, windowed
