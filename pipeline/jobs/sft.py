"""`gemmaflow sft`: dolly/chat JSONL -> Gemma chat turns packed with loss masks into shards.

    files -> ParseExamples (dead letters: malformed records) -> the registry's sft stages
          (classify, exact dedupe, PII: the curate stages, with their counters) -> FormatChat
          -> PackAndWriteShards; every rejected example -> [ScrubRejected] -> rejected/
    after the run: shard names, manifest.json (kind "sft", tokens per category), the completion marker
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.configio import fingerprint
from gemmaflow.pipeline.jobs.beam_job import BeamJob, JobResult, run_beam_job
from gemmaflow.pipeline.jobs.pack import finalise_shards
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.records import REJECTED_SCHEMA
from gemmaflow.pipeline.registry import REGISTRY, SFT, StageRegistry, apply_chain, chain_names
from gemmaflow.pipeline.run_output import write_counts
from gemmaflow.pipeline.sft import ChatTokens
from gemmaflow.pipeline.spill import SPILL_DIR
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.pack import PackAndWriteShards, read_bytes, write_sinks
from gemmaflow.pipeline.stages.pii import ScrubRejected
from gemmaflow.pipeline.stages.read import match_inputs
from gemmaflow.pipeline.stages.sft import FormatChat, ParseExamples, sink_row
from gemmaflow.pipeline.tokenize import load_processor, tokenizer_info

SOURCE = "read"
SINK = "format"


def sft_chain(config: SftConfig, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """The stage names an sft run with `config` goes through (for the accounting check and dry runs)."""
    return chain_names(SOURCE, registry.chain(SFT, config), SINK)


def build_sft(pipeline: beam.Pipeline, paths: list[str], tokenizer_path: str, output: str, config: SftConfig,
              pad_id: int, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """Add the sft graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    stages = registry.chain(SFT, config)
    parsed = pipeline | "Read" >> ParseExamples(paths, config.context_separator, fingerprint(config))
    chain = apply_chain(parsed[KEPT], stages, config, FileSystems.join(output, SPILL_DIR))
    formatted = chain.kept | "Format" >> FormatChat(tokenizer_path, config)
    stats = [parsed[STATS], *chain.stats, formatted[STATS]]

    rejected = chain.rejected | "GatherChainRejected" >> beam.Flatten()
    if config.pii.enabled:  # stages before PII rejected unscrubbed examples; FormatChat's are scrubbed already
        scrubbed = rejected | "ScrubRejected" >> ScrubRejected(config.pii)
        rejected = scrubbed[KEPT]
        stats.append(scrubbed[STATS])
    rejected_rows = (
        [rejected, formatted[REJECTED]]
        | "GatherRejectedExamples" >> beam.Flatten()
        | "ToSinkRows" >> beam.Map(sink_row)
    )
    stats.append(formatted[KEPT] | "Pack" >> PackAndWriteShards(output, config.packing, config.output, pad_id))
    write_sinks(output, [parsed[DEAD]], [rejected_rows], rejected_schema=REJECTED_SCHEMA)
    write_counts(stats, output)
    return chain_names(SOURCE, stages, SINK)


def run_sft(
    inputs: list[str],
    tokenizer_path: str,
    output: str,
    config: SftConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
    progress: bool = True,
    registry: StageRegistry = REGISTRY,
) -> dict[str, Any]:
    """Format, clean and pack SFT examples into shards + manifest.json; returns the manifest."""
    registry.validate(SFT, config)
    paths = match_inputs(inputs)
    model_bytes = read_bytes(tokenizer_path)
    info = tokenizer_info(model_bytes)
    ChatTokens.from_processor(load_processor(model_bytes))  # fail before the pipeline starts, not on a worker
    job = BeamJob("sft", inputs, output, config, beam_args or [], overwrite, echo, progress,
                  run_info={"files": len(paths), "tokenizer": tokenizer_path})

    def finalise(result: JobResult) -> dict[str, Any]:
        return finalise_shards(result, output, kind="sft", tokenizer=info, packing=config.packing,
                               shards=config.output, config=config, echo=echo)

    return run_beam_job(
        job, lambda pipeline: build_sft(pipeline, paths, tokenizer_path, output, config, info.pad_id, registry),
        finalise,
    ).product
