"""Tokenize + pack throughput, padding and memory with a 256k-vocabulary tokenizer, side by side with datatrove.

Input is a `gemmaflow curate` output folder (`--curated`, e.g. from `gemmaflow curate --input
raw.jsonl --output curated`). The tokenizer is the tokenizer room's model when given
(`--tokenizer`), otherwise a 256k BPE SentencePiece model with Gemma's settings trained once on
about 30 MB of the curated text and cached in the system's temporary folder (about 21 minutes on
2 cores). The datatrove side runs in datatrove's own environment (`--datatrove-python`).

    python benchmarks/pack.py --curated CURATED --prepare-tokenizer   # train (or reuse) the cached 256k model only
    python benchmarks/pack.py --curated CURATED --datatrove-python DT_PYTHON   # the full measurement
"""

from __future__ import annotations

import argparse
import fcntl
import io
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from side_by_side import add_datatrove_argument

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_CACHE = Path(tempfile.gettempdir()) / "gemmaflow-pack-bench" / "tokenizer-256k.model"
TRAINING_BYTES = 30_000_000


def curated_texts(curated: Path, limit_bytes: int | None = None) -> list[str]:
    import pyarrow.parquet as pq

    texts, total = [], 0
    for path in sorted((curated / "data").glob("*.parquet")):
        for text in pq.read_table(path, columns=["text"]).column("text").to_pylist():
            texts.append(text)
            total += len(text.encode("utf-8"))
            if limit_bytes is not None and total >= limit_bytes:
                return texts
    return texts


def train_256k(curated: Path, model_path: Path) -> Path:
    """Gemma's SentencePiece settings (Gemma report, 2024) at 256,000 pieces; cached, trained under a file lock once."""
    import sentencepiece as spm

    from gemmaflow.core.chat import BOS_ID, END_OF_TURN, EOS_ID, MASK_PIECE, PAD_ID, START_OF_TURN, UNK_ID

    model_path.parent.mkdir(parents=True, exist_ok=True)
    with open(model_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if model_path.exists():
            return model_path
        text = "\n".join(curated_texts(curated, TRAINING_BYTES))
        sentences = (line for line in text.splitlines() if line.strip())
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences, model_writer=buffer, model_type="bpe", vocab_size=256_000,
            byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True, add_dummy_prefix=False,
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID, unk_id=UNK_ID,
            user_defined_symbols=[MASK_PIECE, START_OF_TURN, END_OF_TURN],
            character_coverage=0.9999, input_sentence_size=4_000_000, shuffle_input_sentence=True,
            max_sentence_length=16384, hard_vocab_limit=False, num_threads=2, minloglevel=1,
        )
        tmp = model_path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.rename(model_path)
    return model_path


def documents(curated: Path, limit: int | None) -> list[dict]:
    """id, text, domain of the curated documents (the datatrove side, without pyarrow, reads a JSONL copy)."""
    if curated.suffix == ".jsonl":
        import json

        with curated.open(encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines]
        return rows[:limit] if limit else rows
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for path in sorted((curated / "data").glob("*.parquet")):
        rows += pq.read_table(path, columns=["id", "text", "domain"]).to_pylist()
    return rows[:limit] if limit else rows


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss survives exec, so it would count the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def windows_of(curated: Path, limit: int | None, window: int) -> Iterator[list[dict]]:
    """The curated documents, `window` at a time, streamed from Parquet (never the whole corpus in memory)."""
    import pyarrow.parquet as pq

    seen = 0
    for path in sorted((curated / "data").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=window, columns=["id", "text", "domain"]):
            docs = batch.to_pylist()[: None if limit is None else limit - seen]
            seen += len(docs)
            if docs:
                yield docs
            if limit is not None and seen >= limit:
                return


def core_loop(curated: Path, model: Path, limit: int | None, seq_len: int, window: int) -> dict:
    """What one pack worker does, in one process: batched encode, best-fit per window, shard bytes + checksum.

    Documents stream window by window, so peak memory follows the window, not the corpus.
    """
    import time

    from gemmaflow.pipeline.packing import PackItem, pack_window
    from gemmaflow.pipeline.shards_write import parquet_bytes, rows_to_table
    from gemmaflow.pipeline.tokenize import encode_documents, load_processor

    processor = load_processor(model.read_bytes())
    cpu0 = time.process_time()
    documents = tokens = non_pad = split = 0
    for batch in windows_of(curated, limit, window):
        items = []
        for b in range(0, len(batch), 256):
            part = batch[b:b + 256]
            arrays, _ = encode_documents(processor, [d["text"] for d in part], True, True, 1)
            items += [PackItem(d["id"], d["domain"], a) for d, a in zip(part, arrays, strict=True)]
        units, stats = pack_window(items, seq_len)
        documents, split = documents + stats.documents, split + stats.documents_split
        rows = [row for unit in units for row in unit]
        for r in range(0, len(rows), 1024):
            table, tally = rows_to_table(rows[r:r + 1024], seq_len, 0)
            parquet_bytes(table, 64, "zstd")
            tokens, non_pad = tokens + tally.tokens, non_pad + tally.non_pad_tokens
    cpu = time.process_time() - cpu0
    return {"documents": documents, "non_pad_tokens": non_pad, "cpu_s": cpu, "tokens_per_cpu_s": non_pad / cpu,
            "padding": 1 - non_pad / tokens, "documents_split_fraction": split / documents,
            "peak_rss_mb": peak_rss_mb()}


def run_child(args: list[str], python: str = sys.executable) -> dict:
    import json
    import subprocess

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([python, __file__, *args, "--json-out", out.name], check=True)
        return json.loads(Path(out.name).read_text())


def beam_end_to_end(curated: Path, model: Path, seq_len: int, limit: int | None, beam_args: list[str]) -> dict:
    """`run_pack` on the in-process DirectRunner: CPU of every Beam thread, tokens from the manifest."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from gemmaflow.pipeline.jobs.pack import run_pack
    from gemmaflow.pipeline.pack_config import PackConfig, PackingConfig

    with tempfile.TemporaryDirectory() as tmp:
        inputs = str(curated / "data" / "*.parquet")
        if limit:  # the first `limit` curated rows, all columns, as one input file
            table = pa.concat_tables(pq.read_table(p) for p in sorted((curated / "data").glob("*.parquet")))
            Path(tmp, "in").mkdir()
            pq.write_table(table.slice(0, limit), f"{tmp}/in/part-0.parquet")
            inputs = f"{tmp}/in/*.parquet"
        cpu0 = time.process_time()
        config = PackConfig(packing=PackingConfig(seq_len=seq_len))
        manifest = run_pack([inputs], str(model), f"{tmp}/out", config, beam_args, echo=False)
        cpu = time.process_time() - cpu0
    non_pad = sum(manifest["splits"][s]["non_pad_tokens"] for s in ("train", "validation"))
    return {"non_pad_tokens": non_pad, "cpu_s": cpu, "tokens_per_cpu_s": non_pad / cpu,
            "padding": manifest["padding_fraction"], "documents_split_fraction": manifest["documents_split_fraction"],
            "peak_rss_mb": peak_rss_mb()}


def hf_tokenizer_json(model: Path) -> Path:
    """The same SentencePiece model as a `tokenizers` file (transformers' Gemma converter), cached beside it."""
    target = model.with_suffix(".tokenizer.json")
    if not target.exists():
        from transformers import GemmaTokenizerFast

        GemmaTokenizerFast(vocab_file=str(model), from_slow=True).backend_tokenizer.save(str(target))
    return target


def datatrove_side(curated: Path, tokenizer_json: Path, limit: int | None) -> dict:
    """datatrove's DocumentTokenizer (encode_batch, .ds files, document shuffle), run in its own venv."""
    import time

    from datatrove.data import Document
    from datatrove.pipeline.tokens import DocumentTokenizer

    docs = [Document(text=d["text"], id=d["id"]) for d in documents(curated, limit)]
    with tempfile.TemporaryDirectory() as tmp:
        step = DocumentTokenizer(f"{tmp}/out", str(tokenizer_json), local_working_dir=f"{tmp}/work",
                                 save_filename="bench", shuffle_documents=True, seed=0)
        cpu0 = time.process_time()
        step.run(iter(docs), rank=0, world_size=1)
        cpu = time.process_time() - cpu0
        token_bytes = 2 if step.tokenizer.get_vocab_size() < 2**16 else 4  # datatrove's id width
        tokens = sum(f.stat().st_size for f in Path(tmp, "out").glob("*.ds")) // token_bytes
    return {"tokens": tokens, "cpu_s": cpu, "tokens_per_cpu_s": tokens / cpu, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curated", type=Path, required=True, help="a `gemmaflow curate` output folder")
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece .model (default: the cached 256k model)")
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--prepare-tokenizer", action="store_true", help="train or reuse the cached model, then stop")
    parser.add_argument("--mode", choices=["all", "core", "beam", "datatrove"], default="all")
    parser.add_argument("--limit", type=int, help="first N curated documents (default: all)")
    parser.add_argument("--json-out", type=Path)
    add_datatrove_argument(parser)
    args = parser.parse_args(argv)
    model = args.tokenizer or TOKENIZER_CACHE
    if args.mode == "datatrove":
        result = datatrove_side(args.curated, model, args.limit)  # `model` is the tokenizer.json here
    elif args.mode == "core":
        result = core_loop(args.curated, model, args.limit, args.seq_len, args.window)
    elif args.mode == "beam":
        result = beam_end_to_end(args.curated, model, args.seq_len, args.limit, ["--direct_num_workers", "1"])
    else:
        model = model if model.exists() else train_256k(args.curated, TOKENIZER_CACHE)
        print(f"tokenizer: {model}")
        if args.prepare_tokenizer:
            return 0
        common = ["--curated", str(args.curated), "--tokenizer", str(model), "--seq-len", str(args.seq_len),
                  "--window", str(args.window)]
        total = args.limit or len(documents(args.curated, None))
        limit = ["--limit", str(total)]
        result = {
            "core_half": run_child([*common, "--mode", "core", "--limit", str(total // 2)]),
            "core_full": run_child([*common, "--mode", "core", *limit]),
            "beam": run_child([*common, "--mode", "beam", *limit]),
        }
        if args.datatrove_python is None:
            print("datatrove side skipped: no --datatrove-python given (see benchmarks/README.md)")
        else:
            tokenizer_json = hf_tokenizer_json(model)
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as copy:
                for doc in documents(args.curated, total):
                    copy.write(json.dumps(doc) + "\n")
                copy.flush()
                result["datatrove"] = run_child(["--curated", copy.name, "--tokenizer", str(tokenizer_json),
                                                 "--mode", "datatrove"], python=str(args.datatrove_python))
            theirs = result["datatrove"]["tokens_per_cpu_s"]
            result["speedup_core_vs_datatrove"] = result["core_full"]["tokens_per_cpu_s"] / theirs
            result["speedup_beam_vs_datatrove"] = result["beam"]["tokens_per_cpu_s"] / theirs
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
