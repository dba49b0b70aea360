"""`gemmaflow pack` end to end on the DirectRunner: row invariants, token accounting, mixture, determinism, manifest."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import main
from gemmaflow.model.shards import ShardChecksumError, ShardReader
from gemmaflow.pipeline.jobs.pack import run_pack
from gemmaflow.pipeline.mixture import split_of
from gemmaflow.pipeline.pack_config import MixtureConfig, PackConfig, PackingConfig, ShardOutputConfig
from gemmaflow.pipeline.records import CURATED_SCHEMA
from gemmaflow.pipeline.tokenize import load_processor
from tests.pipeline.test_pack_tokenizer import generated_text, tiny_tokenizer  # noqa: F401 (fixture)

SEQ_LEN = 128


def curated_corpus(folder: Path, n: int = 240, long_every: int = 10) -> list[dict]:
    """Curated-schema Parquet in two files: short and long (over SEQ_LEN tokens) documents of three domains."""
    rng = random.Random(11)
    docs = [{"id": f"doc-{i:04d}", "text": generated_text(rng, 300 if i % long_every == 0 else rng.randrange(3, 60)),
             "domain": ("web", "code", "math")[i % 3], "signals": {}} for i in range(n)]
    folder.mkdir(parents=True)
    for part in range(2):
        pq.write_table(pa.Table.from_pylist(docs[part::2], schema=CURATED_SCHEMA), folder / f"part-{part}.parquet")
    return docs


def config(**mixture) -> PackConfig:
    return PackConfig(
        packing=PackingConfig(seq_len=SEQ_LEN, window_documents=64, validation_fraction=0.1, seed=3),
        output=ShardOutputConfig(sequences_per_shard=40, row_group_size=8),
        mixture=MixtureConfig(**mixture),
    )


def split_rows(out: Path, manifest: dict, split: str) -> dict[str, np.ndarray]:
    tables = [pq.read_table(out / shard["path"]) for shard in manifest["splits"][split]["shards"]]
    return {column: np.array(pa.concat_tables(tables).column(column).to_pylist()) for column in
            ("tokens", "segment_ids", "positions", "loss_mask")}


@pytest.fixture(scope="module")
def packed(tmp_path_factory, tiny_tokenizer):  # noqa: F811
    root = tmp_path_factory.mktemp("pack")
    docs = curated_corpus(root / "curated")
    out = root / "shards"
    manifest = run_pack([str(root / "curated" / "*.parquet")], str(tiny_tokenizer), str(out), config(), echo=False)
    return docs, out, manifest


def test_rows_are_exactly_seq_len_with_consistent_segments_and_positions(packed):
    _, out, manifest = packed
    for split in ("train", "validation"):
        rows = split_rows(out, manifest, split)
        assert rows["tokens"].shape == (manifest["splits"][split]["sequences"], SEQ_LEN)
        for tokens, segments, positions, mask in zip(*(rows[c] for c in rows), strict=True):
            pad = segments == 0
            used = int((~pad).sum())
            assert segments[0] == 1 and not pad[:used].any()  # padding only after the last document
            assert (np.diff(segments[:used]) >= 0).all()
            assert (tokens[pad] == 0).all() and (positions[pad] == 0).all() and (mask[pad] == 0).all()
            assert (mask[~pad] == 1).all()
            for segment in np.unique(segments[~pad]):
                assert positions[segments == segment].tolist() == list(range(int((segments == segment).sum())))


def test_every_token_once_and_validation_held_out_by_document(packed, tiny_tokenizer):  # noqa: F811
    docs, out, manifest = packed
    processor = load_processor(tiny_tokenizer.read_bytes())
    for split in ("train", "validation"):
        mine = [d for d in docs if split_of(d["id"], 0.1, 3) == split]
        expected = Counter(t for d in mine for t in [2, *processor.encode(d["text"]), 1])
        rows = split_rows(out, manifest, split)
        assert Counter(rows["tokens"][rows["segment_ids"] > 0].tolist()) == expected
        assert manifest["splits"][split]["non_pad_tokens"] == sum(expected.values())
        assert manifest["splits"][split]["documents"] == len(mine)
    long_docs = sum(len(processor.encode(d["text"])) + 2 > SEQ_LEN for d in docs)
    assert manifest["documents_split"] == long_docs > 0
    assert manifest["documents_split_fraction"] == pytest.approx(long_docs / len(docs))


def test_manifest_lists_checksummed_shards_the_reader_accepts(packed, tiny_tokenizer):  # noqa: F811
    _, out, manifest = packed
    train = manifest["splits"]["train"]
    assert [s["path"] for s in train["shards"]] == [
        f"train/shard-{i:05d}-of-{len(train['shards']):05d}.parquet" for i in range(len(train["shards"]))
    ]
    assert sum(s["sequences"] for s in train["shards"]) == train["sequences"] == train["tokens"] // SEQ_LEN
    assert manifest["tokenizer"]["vocab_size"] == 600 and manifest["seq_len"] == SEQ_LEN
    assert pq.ParquetFile(out / train["shards"][0]["path"]).metadata.row_group(0).num_rows <= 8
    reader = ShardReader(out, "train", vocab_size=600, seq_len=SEQ_LEN)
    assert len(reader) == train["sequences"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounting"] == {"records_read": 240, "kept": 240, "dropped": 0, "dead_lettered": 0}


def test_checksum_mismatch_is_detected_by_the_reader(packed, tmp_path):
    import shutil

    _, out, manifest = packed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = copy / manifest["splits"]["train"]["shards"][0]["path"]
    table = pq.read_table(shard)
    pq.write_table(table, shard, compression="snappy")  # same rows, different bytes
    with pytest.raises(ShardChecksumError, match=shard.name):
        ShardReader(copy, "train", vocab_size=600)


def test_cli_with_a_mixture_config_realises_the_weights_within_one_percent(tmp_path, tiny_tokenizer, capsys):  # noqa: F811
    curated_corpus(tmp_path / "curated", n=900, long_every=1000)
    weights = {"web": 0.6, "code": 0.25, "math": 0.15}
    (tmp_path / "pack.yaml").write_text(
        "packing: {window_documents: 64, validation_fraction: 0.1, seed: 3}\n"
        "output: {sequences_per_shard: 40, row_group_size: 8}\n"
        "mixture: {weights: {web: 0.6, code: 0.25, math: 0.15}, token_budget: 20000}\n"
    )
    out = tmp_path / "out"
    args = ["pack", "--input", str(tmp_path / "curated" / "*.parquet"), "--output", str(out),
            "--config", str(tmp_path / "pack.yaml"), "--seq-len", str(SEQ_LEN)]
    assert main([*args, "--tokenizer", str(tiny_tokenizer)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seq_len"] == SEQ_LEN and manifest["config"]["mixture"]["token_budget"] == 20_000
    realised = manifest["mixture"]["realised_tokens"]
    assert realised == manifest["splits"]["train"]["tokens_per_domain"]
    total = sum(realised.values())
    assert total == pytest.approx(20_000, rel=0.01)
    for domain, weight in weights.items():
        assert realised[domain] / total == pytest.approx(weight, rel=0.01)
    assert manifest["mixture"]["weights"] == weights
    stats = json.loads((out / "stats.json").read_text())
    mixture = next(s for s in stats["stages"] if s["stage"] == "mixture")
    assert mixture["dropped"]["not_sampled"] > 0 and mixture["extra"]["copies"] > 0

    assert main([*args, "--tokenizer", str(tiny_tokenizer)]) == 2  # output exists
    (tmp_path / "bad.model").write_bytes(b"nope")
    assert main([*args, "--overwrite", "--tokenizer", str(tmp_path / "bad.model")]) == 2
    assert "not a SentencePiece model" in capsys.readouterr().err


@pytest.mark.slow
def test_same_bytes_again_on_the_multi_process_runner(packed, tmp_path, tiny_tokenizer):  # noqa: F811
    """Determinism: a second run, on another runner mode, writes byte-identical shards (same checksums)."""
    _, out, manifest = packed
    multi = run_pack([str(out.parent / "curated" / "*.parquet")], str(tiny_tokenizer), str(tmp_path / "multi"),
                     config(), ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"], echo=False)
    for split in ("train", "validation"):
        assert multi["splits"][split] == manifest["splits"][split]
    assert multi["config_fingerprint"] == manifest["config_fingerprint"]
