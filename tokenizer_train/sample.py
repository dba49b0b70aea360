"""Draw the tokenizer's training text from curated Parquet: seeded, per-domain byte budgets, streaming.

Two passes over the Parquet files, in sorted file order. The first reads only `id`, `domain`, `lang`
and the byte length of `text` (no document text is kept) and gives every document two keys from
BLAKE2b(seed, id): one sets aside the held-out documents, the other orders the rest within their
domain; each domain takes its smallest-key documents up to its share of the budget. The second pass
streams the chosen documents' text to the training file, one paragraph (text line) per line, and
keeps a bounded held-out set in memory for the report. Memory is O(number of documents), never the
corpus. Input is a local path or any fsspec URL (`gs://bucket/curated`), read through pyarrow.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from gemmaflow.core.run_markers import refusal, unfinished_run
from gemmaflow.tokenizer_train.config import SampleConfig

log = logging.getLogger(__name__)

NO_LANGUAGE = "und"  # ISO 639 "undetermined": the curated `lang` is null for code
_NEWLINE = ord("\n")


class SampleError(ValueError):
    """The input cannot give a training sample (no files, no text, missing columns)."""


@dataclass(frozen=True)
class HeldOutDocument:
    text: str
    domain: str
    lang: str


@dataclass(frozen=True)
class Sample:
    train_path: Path
    heldout: tuple[HeldOutDocument, ...]
    stats: dict[str, Any]


def _filesystem(url: str) -> tuple[Any, str]:
    """A pyarrow filesystem and the path inside it; non-local URLs go through fsspec (gs://, s3://)."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem as FsspecLocal
    from pyarrow.fs import FSSpecHandler, LocalFileSystem, PyFileSystem

    fs, root = fsspec.core.url_to_fs(url)
    if isinstance(fs, FsspecLocal):
        return LocalFileSystem(), root
    return PyFileSystem(FSSpecHandler(fs)), root


def parquet_files(url: str) -> tuple[Any, list[str]]:
    """The curated Parquet files under `url`, sorted: `URL/data/part-*.parquet` (a `gemmaflow curate`
    output folder), else `*.parquet` directly in `URL`, else `URL` as a glob or a single file."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    if fs.isdir(f"{root}/data"):
        found = fs.glob(f"{root}/data/part-*.parquet")
    elif fs.isdir(root):
        found = fs.glob(f"{root}/*.parquet")
    else:
        found = fs.glob(root)
    if not found:
        raise SampleError(f"no Parquet files found at {url} (looked for data/part-*.parquet, *.parquet, a glob)")
    run = unfinished_run(url if "://" in url else found[0])
    if run is not None:
        raise SampleError(refusal(url, run))
    pafs, _ = _filesystem(url)
    return pafs, sorted(found)


def _doc_keys(seed: int, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniform keys in [0, 1) per id: (order key, held-out key)."""
    order = np.empty(len(ids), dtype=np.float64)
    held = np.empty(len(ids), dtype=np.float64)
    salt = f"{seed}\x00".encode()
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(salt + doc_id.encode(), digest_size=16).digest()
        order[i] = int.from_bytes(digest[:8], "big") / 2**64
        held[i] = int.from_bytes(digest[8:], "big") / 2**64
    return order, held


def _batches(files: list[str], filesystem: Any, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    dataset = ds.dataset(files, format="parquet", filesystem=filesystem)
    missing = sorted({"id", "text", "domain"} - set(dataset.schema.names))
    if missing:
        raise SampleError(f"input is not curated Parquet: missing column(s) {', '.join(missing)}")
    present = [c for c in columns if c in dataset.schema.names]
    for fragment in dataset.get_fragments():  # the order of `files`: deterministic
        yield from fragment.to_batches(columns=present, batch_size=batch_rows)


@dataclass(frozen=True)
class _Index:
    """Pass-1 facts per document, in scan order."""

    domain: np.ndarray  # object array of str
    lang: np.ndarray  # object array of str
    nbytes: np.ndarray  # int64
    order_key: np.ndarray
    heldout_key: np.ndarray


def _scan(files: list[str], filesystem: Any, config: SampleConfig) -> _Index:
    domains: list[np.ndarray] = []
    langs: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    order_keys: list[np.ndarray] = []
    heldout_keys: list[np.ndarray] = []
    for batch in _batches(files, filesystem, ["id", "domain", "lang", "text"], config.batch_rows):
        text = batch.column("text")
        sizes.append(pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False).astype(np.int64))
        ids = [str(v) for v in batch.column("id").to_pylist()]
        order, held = _doc_keys(config.seed, ids)
        order_keys.append(order)
        heldout_keys.append(held)
        domains.append(np.array(batch.column("domain").to_pylist(), dtype=object))
        lang = batch.column("lang").to_pylist() if "lang" in batch.schema.names else [None] * batch.num_rows
        langs.append(np.array([v or NO_LANGUAGE for v in lang], dtype=object))
    if not sizes:
        return _Index(*(np.array([], dtype=t) for t in (object, object, np.int64, np.float64, np.float64)))
    return _Index(
        np.concatenate(domains), np.concatenate(langs), np.concatenate(sizes),
        np.concatenate(order_keys), np.concatenate(heldout_keys),
    )  # fmt: skip


def domain_targets(weights: dict[str, float], available: dict[str, int], budget: int) -> dict[str, int]:
    """Bytes to take per domain: `budget` split by weight; a domain with less text than its share gives
    all it has and its shortfall goes to the others in proportion to their weights."""
    targets = {d: 0 for d in weights}
    open_domains = {d for d, w in weights.items() if w > 0}
    remaining = budget
    while open_domains and remaining > 0:
        total_weight = sum(weights[d] for d in open_domains)
        share = {d: remaining * weights[d] / total_weight for d in open_domains}
        short = {d for d in open_domains if available.get(d, 0) - targets[d] <= share[d]}
        if not short:
            for d in open_domains:
                targets[d] += round(share[d])
            break
        for d in short:
            give = available.get(d, 0) - targets[d]
            targets[d] += give
            remaining -= give
        open_domains -= short
    return targets


def _take_smallest_keys(keys: np.ndarray, sizes: np.ndarray, target: int) -> np.ndarray:
    """Mask of the smallest-key items whose byte total is closest to `target` (within one item)."""
    mask = np.zeros(len(keys), dtype=bool)
    if target <= 0 or len(keys) == 0:
        return mask
    order = np.argsort(keys, kind="stable")
    cumulative = np.cumsum(sizes[order])
    n = int(np.searchsorted(cumulative, target, side="left"))  # first prefix reaching the target
    if n < len(order):
        below = cumulative[n - 1] if n > 0 else 0
        n = n + 1 if cumulative[n] - target <= target - below else n
    mask[order[:n]] = True
    return mask


def _select(index: _Index, config: SampleConfig) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Masks (train, held-out) over the scan order, and the budget accounting."""
    heldout_pool = index.heldout_key < config.heldout_fraction
    eligible = ~heldout_pool & (index.nbytes > 0)
    available = {d: int(index.nbytes[eligible & (index.domain == d)].sum()) for d in config.domain_weights}
    targets = domain_targets(config.domain_weights, available, config.byte_budget)
    train = np.zeros(len(index.nbytes), dtype=bool)
    for domain, target in targets.items():
        members = np.flatnonzero(eligible & (index.domain == domain))
        train[members[_take_smallest_keys(index.order_key[members], index.nbytes[members], target)]] = True
    heldout = np.zeros(len(index.nbytes), dtype=bool)
    pool = heldout_pool & (index.nbytes > 0) & np.isin(index.domain, list(config.domain_weights))
    for group in sorted(set(zip(index.domain[pool], index.lang[pool], strict=True))):
        members = np.flatnonzero(pool & (index.domain == group[0]) & (index.lang == group[1]))
        chosen = _take_smallest_keys(
            index.order_key[members], index.nbytes[members], config.heldout_max_bytes_per_group
        )
        heldout[members[chosen]] = True
    budget = {
        domain: {
            "weight": config.domain_weights[domain],
            "wanted_bytes": round(
                config.byte_budget * config.domain_weights[domain] / sum(config.domain_weights.values())
            ),
            "available_bytes": available[domain],
            "target_bytes": targets[domain],
        }
        for domain in config.domain_weights
    }
    return train, heldout, budget


def split_long_line(line: bytes, max_bytes: int) -> list[bytes]:
    """Cut a line into pieces of at most `max_bytes`, at the last space in the second half of each
    window when there is one (the space starts the next piece, as SentencePiece's word boundary
    marker does), else at a UTF-8 character boundary."""
    pieces = []
    start = 0
    while len(line) - start > max_bytes:
        cut = line.rfind(b" ", start + max_bytes // 2, start + max_bytes + 1)
        if cut <= start:
            cut = start + max_bytes
            while line[cut] & 0xC0 == 0x80:  # continuation byte: step back to a character start
                cut -= 1
        pieces.append(line[start:cut])
        start = cut
    pieces.append(line[start:])
    return pieces


def sample_corpus(input_url: str, train_path: Path, config: SampleConfig, max_line_bytes: int) -> Sample:
    """Write the training text to `train_path` and return the held-out documents and sample stats."""
    filesystem, files = parquet_files(input_url)
    index = _scan(files, filesystem, config)
    if int(index.nbytes.sum()) == 0:
        raise SampleError(f"the input at {input_url} holds no text ({len(index.nbytes)} documents, 0 bytes)")
    train_mask, heldout_mask, budget = _select(index, config)
    if not train_mask.any():
        found = sorted(set(index.domain[index.nbytes > 0]))
        raise SampleError(
            f"no documents of the weighted domains {sorted(config.domain_weights)} in {input_url} "
            f"(domains found: {', '.join(map(str, found)) or 'none'})"
        )
    counts = {d: {"docs": 0, "bytes": 0, "lines": 0} for d in config.domain_weights}
    lines_split = extra_pieces = empty_lines = 0
    heldout: list[HeldOutDocument] = []
    row = 0
    with train_path.open("wb") as out:
        for batch in _batches(files, filesystem, ["text", "domain", "lang"], config.batch_rows):
            n = batch.num_rows
            take = train_mask[row : row + n] | heldout_mask[row : row + n]
            if take.any():
                picked = batch.filter(pa.array(take))
                is_train = train_mask[row : row + n][take]
                has_lang = "lang" in picked.schema.names
                langs = picked.column("lang").to_pylist() if has_lang else [None] * picked.num_rows
                for text, domain, lang, train in zip(
                    picked.column("text").to_pylist(),
                    picked.column("domain").to_pylist(),
                    langs,
                    is_train,
                    strict=True,
                ):
                    if not train:
                        heldout.append(HeldOutDocument(text, domain, lang or NO_LANGUAGE))
                        continue
                    data = text.encode("utf-8")
                    tally = counts[domain]
                    tally["docs"] += 1
                    tally["bytes"] += len(data)
                    for line in data.split(b"\n"):
                        if not line:
                            empty_lines += 1
                            continue
                        pieces = [line] if len(line) <= max_line_bytes else split_long_line(line, max_line_bytes)
                        if len(pieces) > 1:
                            lines_split += 1
                            extra_pieces += len(pieces) - 1
                        for piece in pieces:
                            out.write(piece)
                            out.write(b"\n")
                        tally["lines"] += len(pieces)
            row += n
    heldout_groups: dict[str, dict[str, int]] = {}
    for doc in heldout:
        group = heldout_groups.setdefault(f"{doc.domain}/{doc.lang}", {"docs": 0, "bytes": 0})
        group["docs"] += 1
        group["bytes"] += len(doc.text.encode("utf-8"))
    for domain, tally in counts.items():
        budget[domain].update(taken_bytes=tally["bytes"], docs=tally["docs"], lines=tally["lines"])
    available = sum(b["available_bytes"] for b in budget.values())
    if available < config.byte_budget:
        log.warning("the input holds %d bytes of trainable text, less than the %d-byte budget: all of it is used",
                    available, config.byte_budget)  # fmt: skip
    else:
        for domain, row in budget.items():
            if row["available_bytes"] < row["wanted_bytes"]:
                log.warning("domain %s: wanted %d bytes, only %d available; the rest went to the other domains",
                            domain, row["wanted_bytes"], row["available_bytes"])  # fmt: skip
    stats = {
        "input": input_url,
        "files": len(files),
        "documents_scanned": len(index.nbytes),
        "bytes_scanned": int(index.nbytes.sum()),
        "documents_skipped_unweighted_domain": int((~np.isin(index.domain, list(config.domain_weights))).sum()),
        "byte_budget": config.byte_budget,
        "bytes_taken": sum(t["bytes"] for t in counts.values()),
        "domains": budget,
        "lines": sum(t["lines"] for t in counts.values()),
        "empty_lines_skipped": empty_lines,
        "long_lines_split": lines_split,
        "long_line_extra_pieces": extra_pieces,
        "max_line_bytes": max_line_bytes,
        "heldout": {"documents": len(heldout), "groups": dict(sorted(heldout_groups.items()))},
    }
    return Sample(train_path, tuple(heldout), stats)
