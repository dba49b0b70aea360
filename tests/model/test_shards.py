import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from gemmaflow.model.shards import (
    BatchOrder,
    ShardChecksumError,
    ShardDataset,
    ShardFormatError,
    ShardReader,
    training_arrays,
)
from tests.model.shard_fixtures import write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), seq_len=32, vocab_size=100, train_rows=(10, 7))


def all_rows(folder, split="train"):
    manifest = json.loads((folder / "manifest.json").read_text())
    tables = [pq.read_table(folder / s["path"]) for s in manifest["splits"][split]["shards"]]
    return {name: np.concatenate([np.array(t.column(name).to_pylist()) for t in tables]) for name in
            ("tokens", "segment_ids", "positions", "loss_mask")}


def test_random_access_matches_the_files_row_for_row(shards):
    reader = ShardReader(shards, "train", vocab_size=100)
    expected = all_rows(shards)
    assert len(reader) == 17 and reader.seq_len == 32
    indices = [16, 0, 9, 10, 3, 3]  # across both shards and several row groups, with a repeat
    got = reader.read(indices)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values[indices])


def test_targets_are_the_next_token_of_the_same_segment():
    rows = {"tokens": np.array([[5, 6, 7, 8, 9, 0]]), "segment_ids": np.array([[1, 1, 1, 2, 2, 0]]),
            "positions": np.array([[0, 1, 2, 0, 1, 0]]), "loss_mask": np.array([[1, 1, 0, 1, 1, 0]])}
    arrays = training_arrays(rows)
    np.testing.assert_array_equal(arrays["targets"], [[6, 7, 8, 9, 0, 0]])
    # 5->6 counts; 6->7 is not a target (loss_mask 0, e.g. an SFT prompt); 7->8 crosses documents;
    # 8->9 counts; 9->pad and the last slot have no target.
    np.testing.assert_array_equal(arrays["mask"], [[1, 0, 0, 1, 0, 0]])


def test_batch_order_is_a_function_of_seed_and_step_and_covers_each_epoch():
    order = BatchOrder(num_sequences=10, batch_size=4, seed=7)
    assert order.indices(3) == BatchOrder(10, 4, 7).indices(3)
    assert order.indices(3) != BatchOrder(10, 4, 8).indices(3)
    first_epoch = order.indices(0) + order.indices(1) + order.indices(2)[:2]
    assert sorted(first_epoch) == list(range(10))
    assert BatchOrder(10, 4, 7, shuffle=False).indices(2) == [8, 9, 0, 1]


def test_process_blocks_make_up_the_global_batch(shards):
    data = ShardDataset(ShardReader(shards, "train", vocab_size=100), batch_size=8, seed=1)
    whole = data.batch_at(5, micro_batches=2)["inputs"].reshape(2, 4, 32)
    parts = [data.batch_at(5, micro_batches=2, process_index=p, process_count=2)["inputs"].reshape(2, 2, 32)
             for p in range(2)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def edit_manifest(folder, edit):
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(format_version=2), "version"),
    (lambda m: m.update(format="other"), "format"),
    (lambda m: m["tokenizer"].pop("vocab_size"), "vocab_size"),
    (lambda m: m.update(kind="mystery"), "kind"),
    (lambda m: m["splits"]["train"]["shards"][1].update(sequences=8), "7 rows, the manifest says 8"),
    (lambda m: m["splits"]["train"]["shards"][0].update(path="train/missing.parquet"), "missing"),
])
def test_bad_manifests_are_refused(tmp_path, edit, message):
    folder = write_shards(tmp_path, seq_len=16, vocab_size=50, train_rows=(4, 7), validation_rows=0)
    edit_manifest(folder, edit)
    with pytest.raises(ShardFormatError, match=message):
        ShardReader(folder, "train", vocab_size=50)


def test_model_must_fit_the_shards(shards):
    with pytest.raises(ShardFormatError, match="does not fit"):
        ShardReader(shards, "train", vocab_size=99)
    with pytest.raises(ShardFormatError, match="32-token"):
        ShardReader(shards, "train", vocab_size=100, seq_len=64)
    with pytest.raises(ShardFormatError, match="no split"):
        ShardReader(shards, "test", vocab_size=100)


def test_a_changed_shard_fails_its_checksum_naming_the_file(tmp_path):
    folder = write_shards(tmp_path, seq_len=16, vocab_size=50, train_rows=(4, 4), validation_rows=0)
    victim = folder / "train" / "shard-00001-of-00002.parquet"
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(ShardChecksumError, match=r"shard-00001-of-00002\.parquet") as caught:
        ShardReader(folder, "train", vocab_size=50)
    assert caught.value.path == victim


def test_rows_of_the_wrong_length_are_refused(tmp_path):
    folder = write_shards(tmp_path, seq_len=16, vocab_size=50, train_rows=(4,), validation_rows=0)
    edit_manifest(folder, lambda m: m.update(seq_len=8))
    reader = ShardReader(folder, "train", vocab_size=50)
    with pytest.raises(ShardFormatError, match="not of length 8"):
        reader.read([0])
