"""`gemmaflow sft`: dolly/chat JSONL -> Gemma chat turns packed with loss masks into shards.

    files -> ParseExamples (dead letters: malformed records) -> the registry's sft stages
          (classify, exact dedupe, PII: the curate stages, with their counters) -> FormatChat
          -> PackAndWriteShards; every rejected example -> [ScrubRejected] -> rejected/
    after the run: shard names, manifest.json (kind "sft", tokens per category), the completion marker
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.configio import fingerprint
from gemmaflow.pipeline.jobs.beam_job import BeamJob, JobResult, run_beam_job
from gemmaflow.pipeline.jobs.pack import finalise_shards
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.records import REJECTED_SCHEMA
from gemmaflow.pipeline.registry import REGISTRY, SFT, StageRegistry, StageSpec, apply_chain, chain_names
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


def build_chat_graph(pipeline: beam.Pipeline, paths: list[str], output: str, config: Any, stages: Sequence[StageSpec],
                     *, pairs: bool, format_step: beam.PTransform, write_step: beam.PTransform) -> None:
    """The graph `gemmaflow sft` and `gemmaflow prefs` share: parse, the registry's stages, format, write.

    Rejected records reach the rejected sink scrubbed when PII is on (those dropped before the PII stage
    are scrubbed on the way; the format step's already were), dead letters the dead-letter sink.
    """
    parsed = pipeline | "Read" >> ParseExamples(paths, config.context_separator, fingerprint(config), pairs=pairs)
    chain = apply_chain(parsed[KEPT], stages, config, FileSystems.join(output, SPILL_DIR))
    formatted = chain.kept | "Format" >> format_step
    stats = [parsed[STATS], *chain.stats, formatted[STATS]]

    rejected = [parsed[REJECTED], *chain.rejected] | "GatherChainRejected" >> beam.Flatten()
    if config.pii.enabled:
        scrubbed = rejected | "ScrubRejected" >> ScrubRejected(config.pii)
        rejected = scrubbed[KEPT]
        stats.append(scrubbed[STATS])
    rejected_rows = (
        [rejected, formatted[REJECTED]]
        | "GatherRejectedExamples" >> beam.Flatten()
        | "ToSinkRows" >> beam.Map(sink_row)
    )
    stats.append(formatted[KEPT] | "Pack" >> write_step)
    write_sinks(output, [parsed[DEAD]], [rejected_rows], rejected_schema=REJECTED_SCHEMA)
    write_counts(stats, output)


def build_sft(pipeline: beam.Pipeline, paths: list[str], tokenizer_path: str, output: str, config: SftConfig,
              pad_id: int, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """Add the sft graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    stages = registry.chain(SFT, config)
    build_chat_graph(pipeline, paths, output, config, stages, pairs=False,
                     format_step=FormatChat(tokenizer_path, config),
                     write_step=PackAndWriteShards(output, config.packing, config.output, pad_id))
    return chain_names(SOURCE, stages, SINK)


def run_chat_job(job_name: str, kind: str, inputs: list[str], tokenizer_path: str, output: str, config: Any,
                 build: Callable[[beam.Pipeline, list[str], int], tuple[str, ...]], beam_args: list[str] | None,
                 overwrite: bool, echo: bool, progress: bool, registry: StageRegistry) -> dict[str, Any]:
    """Check the config and tokenizer, run the job, name the shards and write the manifest; returns it.

    `build(pipeline, paths, pad_id)` adds the job's graph (`build_sft`, `build_prefs`)."""
    registry.validate(job_name, config)
    paths = match_inputs(inputs)
    model_bytes = read_bytes(tokenizer_path)
    info = tokenizer_info(model_bytes)
    ChatTokens.from_processor(load_processor(model_bytes))  # fail before the pipeline starts, not on a worker
    job = BeamJob(job_name, inputs, output, config, beam_args or [], overwrite, echo, progress,
                  run_info={"files": len(paths), "tokenizer": tokenizer_path})

    def finalise(result: JobResult) -> dict[str, Any]:
        return finalise_shards(result, output, kind=kind, tokenizer=info, packing=config.packing,
                               shards=config.output, config=config, echo=echo)

    return run_beam_job(job, lambda pipeline: build(pipeline, paths, info.pad_id), finalise).product


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
    return run_chat_job(
        SFT, "sft", inputs, tokenizer_path, output, config,
        lambda pipeline, paths, pad_id: build_sft(pipeline, paths, tokenizer_path, output, config, pad_id, registry),
        beam_args, overwrite, echo, progress, registry)
