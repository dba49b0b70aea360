"""`gemmaflow pack`: curated documents -> tokenized, mixed, packed Parquet shards + manifest.json.

    files -> Read -> TokenizeDocuments -> ApplyMixture -> PackAndWriteShards (pipeline/stages/pack.py)
    after the run: shards renamed `shard-i-of-n`, manifest.json, then the completion marker

The shard folder's contract is docs/shard-format.md; `finalise_shards` is shared with `gemmaflow sft`.
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.configio import fingerprint, to_dict
from gemmaflow.core.shard_format import MANIFEST_FILE
from gemmaflow.pipeline.jobs.beam_job import BeamJob, JobResult, run_beam_job
from gemmaflow.pipeline.pack_config import PackConfig, PackingConfig, ShardOutputConfig
from gemmaflow.pipeline.run_output import write_counts
from gemmaflow.pipeline.shards_write import build_manifest, shard_name, split_summary
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.pack import (
    MIXTURE_FILE,
    SHARDS_FILE,
    ApplyMixture,
    PackAndWriteShards,
    TokenizeDocuments,
    read_bytes,
    write_sinks,
)
from gemmaflow.pipeline.stages.read import ReadDocuments, match_inputs
from gemmaflow.pipeline.stages.write import STATS_DIR
from gemmaflow.pipeline.stats import StageCounts
from gemmaflow.pipeline.tokenize import TokenizerInfo, tokenizer_info

PACK_CHAIN = ("read", "tokenize", "mixture")


def _read_json(path: str) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))


def read_plan(output: str) -> dict[str, Any]:
    """The mixture plan `ApplyMixture` wrote for the run in `output` (weights, budget, tokens per group)."""
    return _read_json(FileSystems.join(output, STATS_DIR, MIXTURE_FILE))


def build_pack(pipeline: beam.Pipeline, paths: list[str], tokenizer_path: str, output: str, config: PackConfig,
               pad_id: int) -> tuple[str, ...]:
    """Add the pack graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    read = pipeline | "Read" >> ReadDocuments(paths, config.read, fingerprint(config))
    tokenized = read[KEPT] | "Tokenize" >> TokenizeDocuments(tokenizer_path, config)
    mixed = tokenized[KEPT] | "Mixture" >> ApplyMixture(config.mixture, config.packing.seed, output)
    pack_stats = mixed[KEPT] | "Pack" >> PackAndWriteShards(output, config.packing, config.output, pad_id)
    write_sinks(output, [read[DEAD]], [read[REJECTED]])
    write_counts([read[STATS], tokenized[STATS], mixed[STATS], pack_stats], output)
    return PACK_CHAIN


def finalise_shards(
    result: JobResult,
    output: str,
    *,
    kind: str,
    tokenizer: TokenizerInfo,
    packing: PackingConfig,
    shards: ShardOutputConfig,
    config: Any,
    mixture: dict[str, Any] | None = None,
    realised_tokens: dict[str, int] | None = None,
    sources: dict[str, Any] | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """After the run: name shards `shard-i-of-n` and write manifest.json; returns the manifest.

    `mixture` is the plan, `realised_tokens` the training tokens per mixture group when the groups are not
    the shards' domains (SFT mixes sources), `sources` SFT's per-source counts (build_manifest)."""
    stages = result.stages
    pack = stages.get("pack", StageCounts("pack")).extra
    written = _read_json(FileSystems.join(output, STATS_DIR, SHARDS_FILE))
    splits = {}
    for split in sorted({s["split"] for s in written}):
        entries = sorted((s for s in written if s["split"] == split), key=lambda s: s["index"])
        named = []
        for i, entry in enumerate(entries):
            final = shard_name(split, i, len(entries))
            FileSystems.rename([FileSystems.join(output, entry["path"])], [FileSystems.join(output, final)])
            named.append({"path": final, **{k: v for k, v in entry.items() if k not in ("split", "index", "path")}})
        splits[split] = split_summary(named, pack.get(f"documents.{split}", 0))
    manifest = build_manifest(
        kind=kind, seq_len=packing.seq_len, row_group_size=shards.row_group_size, tokenizer=tokenizer.to_dict(),
        splits=splits, documents_split=pack.get("documents_split", 0),
        truncated_documents=stages.get("tokenize", StageCounts("tokenize")).extra.get("truncated_documents", 0),
        mixture=mixture, realised_tokens=realised_tokens, sources=sources, config=to_dict(config),
        config_fingerprint=fingerprint(config),
    )
    with FileSystems.create(FileSystems.join(output, MANIFEST_FILE)) as handle:
        handle.write((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    if echo and kind == "preference":
        print(f"{manifest['splits']['train']['sequences']} train + {manifest['splits']['validation']['sequences']} "
              f"validation pairs, each sequence at most {packing.seq_len} tokens")
    elif echo:
        train = manifest["splits"]["train"]
        print(f"{train['sequences']} train + {manifest['splits']['validation']['sequences']} validation sequences "
              f"of {packing.seq_len} tokens; padding {manifest['padding_fraction']:.2%}, "
              f"documents split {manifest['documents_split_fraction']:.2%}")
    return manifest


def run_pack(
    inputs: list[str],
    tokenizer_path: str,
    output: str,
    config: PackConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Tokenize and pack curated documents into shards + manifest.json; returns the manifest."""
    paths = match_inputs(inputs)
    info = tokenizer_info(read_bytes(tokenizer_path))
    job = BeamJob("pack", inputs, output, config, beam_args or [], overwrite, echo, progress,
                  run_info={"files": len(paths), "tokenizer": tokenizer_path},
                  max_dead_letter_fraction=config.read.max_dead_letter_fraction)

    def finalise(result: JobResult) -> dict[str, Any]:
        mixture = read_plan(output)
        return finalise_shards(result, output, kind="pretrain", tokenizer=info, packing=config.packing,
                               shards=config.output, config=config, mixture=mixture, echo=echo)

    return run_beam_job(
        job, lambda pipeline: build_pack(pipeline, paths, tokenizer_path, output, config, info.pad_id), finalise
    ).product
